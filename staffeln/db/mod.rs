//! The database room: staffeln's tables on MySQL/MariaDB or SQLite, through one
//! code path.
//!
//! What lives here:
//! * `backend.rs`: [`Backend`], which server a connection speaks to (the
//!   floor: the URL, the errors and the migrations name it);
//! * [`url`]: `[database] connection` in its SQLAlchemy/OpenStack forms
//!   (`mysql+pymysql://…?charset=utf8&plugin=dbcounter`, `sqlite:////abs/path`)
//!   parsed into a typed [`DbUrl`] that prints its password as `***`;
//! * [`mysql`]: MySQL/MariaDB through the pure-Rust `mysql_async` client,
//!   driven synchronously ([`mysql::MysqlConn`]), and what a URL's host,
//!   socket, TLS and timeout arguments mean for it;
//! * [`pool`]: [`AnyConnection`] (diesel `MultiConnection` over both backends),
//!   per-connection setup, start-up retries (`max_retries`, `retry_interval`),
//!   the r2d2 pool behind [`Database`], `ping()` for health checks, and
//!   [`create_database`] for a MySQL database that does not exist yet;
//! * [`migrate`]: embedded migrations from `migrations/mysql/` and
//!   `migrations/sqlite/` (same version names in both), walked explicitly per
//!   backend: `upgrade`, `create_schema`, `downgrade_one`, `downgrade_to_base`,
//!   `version`;
//! * [`schema`] and [`models`]: the hand-written tables and their rows;
//! * one file per table with its queries: [`backups`] (`backup_data`),
//!   [`reports`] (`report_timestamp`), [`tasks`] (`queue_data` as the
//!   conductors' queue, `cycles`), [`leases`], [`stamps`] (`server_stamps`),
//!   [`audit`] (`retention_audit`), [`restore_drills`]; [`history`] joins a backup with the cycle
//!   that made it;
//! * [`legacy`]: the original (Python) Staffeln's tables, set aside and
//!   adopted by [`migrate::upgrade_report`];
//! * [`error`]: [`DbError`], which names the URL (masked), migration or query
//!   that failed and keeps the cause in `source()`;
//! * `open.rs`: [`DbSettings::from_config`] (the `[database]` options,
//!   the URL checked before anything starts) and [`open_database`] (connect
//!   and check the schema is current), what the daemons start with.
//!
//! What it never knows: OpenStack (ids are plain strings here), AMQP, HTTP, or
//! what a decision means; callers bring plain values and get rows back. The
//! `[database]` options arrive as a plain [`DbSettings`].
//!
//! No file here imports another in a circle (`tests/it/house.rs`); this file
//! only declares and re-exports.
//!
//! Everything here blocks (the MySQL client on its own I/O thread, SQLite
//! compiled in). Async callers wrap a unit of
//! database work in `tokio::task::spawn_blocking`, with a connection from
//! [`Database::conn`], and pass `&mut *conn` to the table functions.
//!
//! Backend-specific SQL is dispatched by a `match` on [`AnyConnection`]: the
//! claim in [`tasks`] is MySQL `SELECT … FOR UPDATE SKIP LOCKED` (diesel cannot
//! express locking clauses on the multi-backend) and a SQLite
//! `immediate_transaction` (writers serialised). New tables and columns come
//! as new migrations in both trees, never as edits to an applied one.

pub mod assurance;
pub mod audit;
mod backend;
pub mod backups;
pub mod error;
pub mod history;
pub mod leases;
pub mod legacy;
pub mod migrate;
pub mod models;
pub mod mysql;
mod open;
pub mod pool;
pub mod reports;
pub mod restore_drills;
pub mod schema;
pub mod stamps;
pub mod tasks;
pub mod url;

pub use backend::Backend;
pub use error::{DbError, MigrationDirection};
pub use open::open_database;
pub use pool::{AnyConnection, Database, DbConn, DbSettings, create_database};
pub use url::{DbUrl, MysqlUrl};

//! Connections and the pool: one [`AnyConnection`] type for MySQL/MariaDB and
//! SQLite, opened by URL scheme, set up per connection, pooled with r2d2.
//!
//! * Connecting: [`Database::connect`] parses `[database] connection` ([`DbUrl`]),
//!   then tries to open one connection up to `max_retries` times (`-1`: forever),
//!   `retry_interval` apart, logging `SQL connection failed. N attempts left.` after
//!   each failure, like oslo.db. Only then is the pool built, so a service that
//!   starts before its database waits instead of failing. Differences from oslo.db:
//!   N counts the attempts really left (oslo.db logs one more), there is no sleep
//!   after the last attempt, and `max_retries = 0` means one attempt (oslo.db skips
//!   the check). Only failures to reach the server are retried; a bad URL or a
//!   failing per-connection setup (e.g. an invalid `mysql_sql_mode`) fails at once.
//! * Each connection is opened for its own backend (never through diesel's
//!   derived `establish`, which hides the server's error) and set up: MySQL
//!   through the pure-Rust client of [`super::mysql`] (`time_zone = '+00:00'`,
//!   `utf8mb4`, then `SET SESSION sql_mode = …`, skipped when `mysql_sql_mode`
//!   is `None`), SQLite (compiled in, `libsqlite3-sys/bundled`)
//!   `PRAGMA busy_timeout`, `foreign_keys = ON`, `journal_mode = WAL`.
//! * Lost connections: every checkout runs `SELECT 1` (r2d2 `test_on_check_out`,
//!   [`Manager::is_valid`]), and a connection whose transaction manager is broken
//!   is dropped when returned ([`Manager::has_broken`]); either way r2d2 opens a
//!   fresh one, so a restarted server costs one failed ping per pooled connection,
//!   not an error. Connections older than `connection_recycle_time` are retired.
//! * Pool size: `max_pool_size` connections at most (`0`, "no limit" in oslo.db,
//!   becomes [`UNLIMITED_POOL_SIZE`]); one connection is kept open when idle;
//!   a checkout waits up to r2d2's 30 s for a free connection.
//!
//! All of this is blocking: async callers run database work in
//! `tokio::task::spawn_blocking`. One MySQL attempt is bounded by the URL's
//! `connect_timeout` (10 s by default), so a black-holed host costs at most that
//! per attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sql_types::Text;
use diesel::{Connection, ConnectionError, QueryableByName, RunQueryDsl, SqliteConnection};
use tracing::{debug, warn};

use super::backend::Backend;
use super::error::DbError;
use super::mysql::{ClientOptions, MysqlConn};
use super::url::DbUrl;

/// How long a SQLite connection waits for another writer's lock before failing
/// with `database is locked`.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`Database::ping`] waits for a pooled connection.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool size used when `max_pool_size = 0` (oslo.db's "no limit").
pub const UNLIMITED_POOL_SIZE: u32 = 1024;

/// One connection to either backend; queries are written once against it.
/// `Sqlite` stays last: diesel's derived `establish` tries variants in order and
/// SQLite accepts any string as a file name.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Mysql(MysqlConn),
    Sqlite(SqliteConnection),
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Mysql(_) => Backend::Mysql,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The `[database]` settings this room needs, as plain data (the configuration
/// room converts its `DatabaseOpts` into this).
#[derive(Clone)]
pub struct DbSettings {
    /// `[database] connection`, an SQLAlchemy URL (secret: holds the password).
    pub connection: String,
    /// Start-up connection attempts; `-1` retries forever.
    pub max_retries: i64,
    /// Pause between two start-up attempts.
    pub retry_interval: Duration,
    /// `SET SESSION sql_mode` value for every MySQL connection; `None` keeps the
    /// server's mode, `Some("")` clears it (as oslo.db does).
    pub mysql_sql_mode: Option<String>,
    /// Most connections open at once; `0` means [`UNLIMITED_POOL_SIZE`].
    pub max_pool_size: u32,
    /// Connections older than this are replaced; zero keeps them forever.
    pub connection_recycle_time: Duration,
}

impl DbSettings {
    /// `connection` with oslo.db's defaults for everything else
    /// (10 attempts 10 s apart, `TRADITIONAL`, 5 connections, recycled hourly).
    pub fn new(connection: impl Into<String>) -> DbSettings {
        DbSettings {
            connection: connection.into(),
            max_retries: 10,
            retry_interval: Duration::from_secs(10),
            mysql_sql_mode: Some("TRADITIONAL".to_owned()),
            max_pool_size: 5,
            connection_recycle_time: Duration::from_secs(3600),
        }
    }
}

impl From<&crate::conf::DatabaseOpts> for DbSettings {
    /// The `[database]` options.
    fn from(opts: &crate::conf::DatabaseOpts) -> DbSettings {
        DbSettings {
            connection: opts.connection.expose().to_owned(),
            max_retries: opts.max_retries,
            retry_interval: Duration::from_secs(opts.retry_interval),
            mysql_sql_mode: Some(opts.mysql_sql_mode.clone()),
            max_pool_size: opts.max_pool_size,
            connection_recycle_time: Duration::from_secs(u64::try_from(opts.connection_recycle_time).unwrap_or(0)),
        }
    }
}

impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSettings")
            .field("connection", &super::url::mask_password(&self.connection))
            .field("max_retries", &self.max_retries)
            .field("retry_interval", &self.retry_interval)
            .field("mysql_sql_mode", &self.mysql_sql_mode)
            .field("max_pool_size", &self.max_pool_size)
            .field("connection_recycle_time", &self.connection_recycle_time)
            .finish()
    }
}

/// Opens and checks [`AnyConnection`]s for r2d2, by URL scheme.
pub struct Manager {
    url: DbUrl,
    target: Target,
    mysql_sql_mode: Option<String>,
}

/// What a connection is opened with; holds the password, never printed.
enum Target {
    Mysql(ClientOptions),
    Sqlite(String),
}

impl Manager {
    /// Fails when the URL's arguments make no sense to the client
    /// (`ssl_mode=SOMETIMES`), naming the masked URL.
    fn new(url: DbUrl, mysql_sql_mode: Option<String>) -> Result<Manager, DbError> {
        let target = match &url {
            DbUrl::Mysql(m) => Target::Mysql(
                ClientOptions::from_url(m, std::path::Path::exists)
                    .map_err(|reason| DbError::InvalidUrl { url: url.to_string(), reason })?,
            ),
            DbUrl::Sqlite { path, .. } => Target::Sqlite(path.to_string_lossy().into_owned()),
        };
        Ok(Manager { url, target, mysql_sql_mode })
    }

    /// Opens one connection and runs the per-connection setup.
    fn open(&self) -> Result<AnyConnection, ConnectionError> {
        let setup_failed = ConnectionError::CouldntSetupConfiguration;
        match &self.target {
            Target::Mysql(options) => {
                let mut conn = MysqlConn::open(options)?;
                if let Some(mode) = &self.mysql_sql_mode {
                    diesel::sql_query("SET SESSION sql_mode = ?")
                        .bind::<Text, _>(mode)
                        .execute(&mut conn)
                        .map_err(setup_failed)?;
                }
                Ok(AnyConnection::Mysql(conn))
            }
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;",
                    SQLITE_BUSY_TIMEOUT.as_millis()
                ))
                .map_err(setup_failed)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl Manager {
    /// [`Manager::open`] under the start-up retry policy of `settings`.
    fn open_with_retries(&self, settings: &DbSettings) -> Result<AnyConnection, DbError> {
        let masked = self.url.to_string();
        retry_connect(
            settings.max_retries,
            settings.retry_interval,
            || self.open(),
            |err| matches!(err, ConnectionError::BadConnection(_)),
            |left, err| match left {
                Some(left) => {
                    warn!(db.url = %masked, "SQL connection failed. {left} attempts left. ({err})")
                }
                None => warn!(db.url = %masked, "SQL connection failed. Retrying forever. ({err})"),
            },
        )
        .map_err(|(attempts, source)| DbError::Connect { url: masked.clone(), attempts, source })
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").field("url", &self.url).finish_non_exhaustive()
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        self.open()
    }

    /// `SELECT 1` on checkout: a connection the server dropped fails here and is
    /// replaced by r2d2.
    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.ping().map_err(ConnectionError::CouldntSetupConfiguration)
    }

    /// A connection left in a broken transaction is not put back.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// Logs the pool's background connection failures (r2d2 would use `log`).
#[derive(Debug)]
struct TracingErrorHandler {
    url: String,
}

impl r2d2::HandleError<ConnectionError> for TracingErrorHandler {
    fn handle_error(&self, error: ConnectionError) {
        warn!(db.url = %self.url, "SQL connection to {} failed: {error}", self.url);
    }
}

/// A pooled connection; derefs to [`AnyConnection`].
pub type DbConn = r2d2::PooledConnection<Manager>;

/// The database: a pool of connections to one MySQL/MariaDB database or SQLite
/// file. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    url: Arc<DbUrl>,
    /// One permit per pool connection: see [`Database::turn`].
    turns: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("url", &self.url.to_string()).finish_non_exhaustive()
    }
}

impl Database {
    /// Parses the URL, waits for the server per `max_retries`/`retry_interval`,
    /// and builds the pool. Blocking.
    pub fn connect(settings: &DbSettings) -> Result<Database, DbError> {
        let url = DbUrl::parse(&settings.connection)?;
        if let DbUrl::Mysql(m) = &url
            && !m.ignored_params.is_empty()
        {
            warn!(
                db.url = %url,
                "[database] connection: ignoring unknown query argument(s) {}",
                m.ignored_params.join(", ")
            );
        }
        let masked = url.to_string();
        let manager = Manager::new(url.clone(), settings.mysql_sql_mode.clone())?;
        let mut first = manager.open_with_retries(settings)?;
        warn_on_lax_sql_mode(&mut first, &masked);
        drop(first);

        let max_size = if settings.max_pool_size == 0 { UNLIMITED_POOL_SIZE } else { settings.max_pool_size };
        let recycle = Some(settings.connection_recycle_time).filter(|d| !d.is_zero());
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .max_lifetime(recycle)
            .test_on_check_out(true)
            .error_handler(Box::new(TracingErrorHandler { url: masked }))
            .build_unchecked(manager);
        debug!(db.url = %url, "database pool ready ({max_size} connections at most)");
        let turns = Arc::new(tokio::sync::Semaphore::new(max_size as usize));
        Ok(Database { pool, url: Arc::new(url), turns })
    }

    /// Waits, without holding a thread, until fewer calls than the pool has
    /// connections are under way; the call holds the turn while it runs.
    /// Async callers take a turn before they move a call to a blocking
    /// thread: a burst of sixty calls then uses as many threads as the pool
    /// has connections, not sixty threads of which most wait for one (each
    /// thread kept its own allocator cache: megabytes at 10,000 volumes),
    /// and none of them runs into the pool's 30 s checkout timeout.
    pub async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed; without a permit the call still runs.
        self.turns.clone().acquire_owned().await.ok()
    }

    /// A connection from the pool (checked with `SELECT 1` first). Blocking.
    pub fn conn(&self) -> Result<DbConn, DbError> {
        self.pool.get().map_err(|source| DbError::Pool { url: self.url.to_string(), source })
    }

    /// [`Database::conn`], waiting at most `timeout` for a connection instead
    /// of r2d2's 30 s (request handlers with a deadline of their own).
    pub fn conn_timeout(&self, timeout: Duration) -> Result<DbConn, DbError> {
        self.pool.get_timeout(timeout).map_err(|source| DbError::Pool { url: self.url.to_string(), source })
    }

    /// Health check: takes a connection (waiting at most [`PING_TIMEOUT`] for
    /// one, not the pool's 30 s) and runs `SELECT 1`.
    pub fn ping(&self) -> Result<(), DbError> {
        let mut conn = self
            .pool
            .get_timeout(PING_TIMEOUT)
            .map_err(|source| DbError::Pool { url: self.url.to_string(), source })?;
        diesel::sql_query("SELECT 1").execute(&mut *conn).map_err(DbError::query("SELECT 1"))?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The parsed URL (prints masked).
    pub fn url(&self) -> &DbUrl {
        &self.url
    }
}

/// Creates the database named in `settings.connection` on its MySQL/MariaDB
/// server if it does not exist yet (`CHARACTER SET utf8mb4`), connecting to the
/// server itself under the same retry policy; returns true when it was created.
/// The user needs the `CREATE` privilege. A no-op returning false for SQLite
/// (the file is created on first connect) and for a URL that names no database.
/// devstack and kolla create the database themselves; this serves
/// `staffeln-manage` and quick starts.
pub fn create_database(settings: &DbSettings) -> Result<bool, DbError> {
    let url = DbUrl::parse(&settings.connection)?;
    let DbUrl::Mysql(m) = &url else {
        return Ok(false);
    };
    let Some(name) = m.database.as_deref() else {
        return Ok(false);
    };
    let server = Manager::new(DbUrl::Mysql(m.with_database(None)), None)?;
    let mut conn = server.open_with_retries(settings)?;
    let sql = format!("CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4", name.replace('`', "``"));
    diesel::sql_query(sql).execute(&mut conn).map(|created| created > 0).map_err(DbError::query("CREATE DATABASE"))
}

/// Calls `attempt` until it succeeds, at most `max_retries` times (`< 0`:
/// forever; `0` counts as one), sleeping `interval` between attempts. After each
/// retriable failure `log` gets the attempts left (`None`: unlimited). A failure
/// for which `retriable` is false ends the loop at once, unlogged (the caller
/// reports it). The error carries the number of attempts made.
pub(crate) fn retry_connect<T, E>(
    max_retries: i64,
    interval: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    retriable: impl Fn(&E) -> bool,
    log: impl Fn(Option<u64>, &E),
) -> Result<T, (u64, E)> {
    let limit = u64::try_from(max_retries).ok().map(|n| n.max(1));
    let mut made: u64 = 0;
    loop {
        made += 1;
        match attempt() {
            Ok(conn) => return Ok(conn),
            Err(err) => {
                if !retriable(&err) {
                    return Err((made, err));
                }
                let left = limit.map(|limit| limit.saturating_sub(made));
                log(left, &err);
                if left == Some(0) {
                    return Err((made, err));
                }
                std::thread::sleep(interval);
            }
        }
    }
}

#[derive(QueryableByName)]
struct SqlMode {
    #[diesel(sql_type = Text)]
    mode: String,
}

/// oslo.db's check: without strict mode MySQL truncates over-long values silently.
fn warn_on_lax_sql_mode(conn: &mut AnyConnection, url: &str) {
    let AnyConnection::Mysql(conn) = conn else {
        return;
    };
    match diesel::sql_query("SELECT @@SESSION.sql_mode AS mode").get_result::<SqlMode>(conn) {
        Ok(SqlMode { mode }) if !(mode.contains("TRADITIONAL") || mode.contains("STRICT_ALL_TABLES")) => {
            warn!(
                db.url = %url,
                "MySQL SQL mode is '{mode}', consider enabling TRADITIONAL or STRICT_ALL_TABLES"
            )
        }
        Ok(_) => {}
        Err(err) => warn!(db.url = %url, "cannot read the MySQL SQL mode: {err}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::cell::{Cell, RefCell};

    /// What `retry_connect` returned, and the attempts-left values it logged.
    type Outcome = (Result<u64, (u64, String)>, Vec<Option<u64>>);

    fn run(max_retries: i64, fail_times: u64, retriable: bool) -> Outcome {
        let calls = Cell::new(0u64);
        let logged = RefCell::new(Vec::new());
        let result = retry_connect(
            max_retries,
            Duration::ZERO,
            || {
                calls.set(calls.get() + 1);
                if calls.get() <= fail_times { Err(format!("failure {}", calls.get())) } else { Ok(calls.get()) }
            },
            |_| retriable,
            |left, _| logged.borrow_mut().push(left),
        );
        (result, logged.into_inner())
    }

    #[test]
    fn attempts_are_bounded_by_max_retries_and_counted() {
        assert_eq!(run(3, 10, true), (Err((3, "failure 3".to_owned())), vec![Some(2), Some(1), Some(0)]));
        assert_eq!(run(3, 2, true), (Ok(3), vec![Some(2), Some(1)]));
        assert_eq!(run(1, 10, true), (Err((1, "failure 1".to_owned())), vec![Some(0)]));
        assert_eq!(run(0, 10, true), (Err((1, "failure 1".to_owned())), vec![Some(0)]));
        assert_eq!(run(5, 0, true), (Ok(1), vec![]));
    }

    #[test]
    fn minus_one_retries_until_success() {
        assert_eq!(run(-1, 25, true), (Ok(26), vec![None; 25]));
    }

    #[test]
    fn non_retriable_failures_stop_at_once() {
        assert_eq!(run(10, 10, false), (Err((1, "failure 1".to_owned())), vec![]));
    }

    #[test]
    fn settings_debug_masks_the_password() {
        let s = DbSettings::new("mysql+pymysql://staffeln:s3cr3t@db/staffeln");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_beyond_the_pool_size_wait_for_a_turn_without_a_thread() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}", dir.path().join("turns.sqlite").display());
        let settings = DbSettings { max_pool_size: 2, max_retries: 0, ..DbSettings::new(url) };
        let db = Database::connect(&settings).unwrap();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls = (0..20).map(|_| {
            let (db, running, most) = (db.clone(), running.clone(), most.clone());
            async move {
                let turn = db.turn().await;
                tokio::task::spawn_blocking(move || {
                    let _turn = turn;
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    let conn = db.conn();
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    conn.map(drop)
                })
                .await
            }
        });
        let results = futures_util::future::join_all(calls).await;
        assert!(results.iter().all(|r| matches!(r, Ok(Ok(())))));
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2, "at most the pool's 2 calls ran at once");
    }
}

//! The conductor room: two machines that share one database, one cloud and
//! one clock, and the loops and RPC topic that drive them.
//!
//! The halves mirror each other; each reads, decides with a pure function,
//! then acts and records:
//!
//! | step | [`backup`] | [`retention`] |
//! |---|---|---|
//! | settings | `PlanSettings`, `Limits`, `WaitSettings` | [`retention::RetentionSettings`] |
//! | read | `backup/discovery.rs`: flagged servers, volumes, backups, quotas | `retention/inventory.rs`: backups, rows, volumes, servers |
//! | decide (pure) | `backup/plan.rs`: one decision per volume | `retention/plan.rs`: one decision per backup |
//! | act | `backup/cycle.rs` writes the plan (leader); `backup/worker.rs` creates and watches backups (every conductor) | `retention/run.rs`: audit, then delete wave by wave |
//! | pure helpers | `limits.rs`, `waiting.rs`, `stamps.rs` | |
//! | tell | `backup/report.rs`: the digests | `staffeln.backup.delete.end` |
//!
//! Shared by both halves, at this level:
//! * [`Conductor`] (`node.rs`): identity, database, cloud, settings, clock,
//!   events; [`ConductorError`] (`error.rs`); [`ConductorSettings`]
//!   (`settings.rs`), built once from the configuration before the
//!   conductor starts.
//! * [`schedule`] (pure): when the next cycle or run is due;
//!   [`clock`]: the system clock, or an emulated one in tests;
//!   [`lease`]: the leases (`backup-cycle`, `retention-cycle`,
//!   `report-round`) on that clock, renewed while work runs.
//! * [`runner`]: the loops side by side (backups and digests; retention).
//! * [`manager`] and [`rpcapi`]: the RPC topic, server and typed client;
//!   the wire shapes and version history live in `rpcapi.rs`.
//! * [`events`]: `staffeln.backup.*` and `staffeln.cycle.end` notifications.
//! * `daemon.rs`: [`connect`] and [`serve`], what staffeln-conductor runs.
//!
//! Many conductors share one database: one leads (a lease with a fencing
//! token), all execute (see `doc/conductors.md`). The conductor knows
//! objects, not JSON, SQL text or AMQP frames. This file is the room's
//! front door only: it declares and re-exports, and defines nothing the
//! room's files use.

pub mod assurance;
pub mod backup;
pub mod checkpoint;
pub mod clock;
mod daemon;
mod error;
pub mod events;
pub(crate) mod grouped;
pub mod lease;
pub mod manager;
mod node;
pub mod retention;
pub mod rpcapi;
pub mod runner;
pub mod schedule;
mod settings;

pub use daemon::{connect, serve};
pub use error::ConductorError;
pub use lease::{BACKUP_LEASE, REPORT_LEASE, RETENTION_LEASE};
pub use node::Conductor;
pub use settings::ConductorSettings;

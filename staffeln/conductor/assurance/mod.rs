//! Assurance: knowing the backups are good. Three questions, each a pure
//! decision over plain data with its I/O at the edge:
//!
//! * `rpo.rs` (pure): is each flagged volume's newest good backup younger
//!   than its expected period (the schedule's period plus one cycle)?
//! * `quota.rs` (pure): from a project's backup count and size growth per
//!   cycle, less what retention frees, on which day does its `backups` or
//!   `backup_gigabytes` quota run out, and is that within the horizon?
//! * `drill.rs` (pure): which backups a restore drill samples (within the
//!   caps, never a volume's only backup while retention rotates it) and
//!   what a drill's outcome is, from what Cinder showed.
//! * `restore.rs`: restores through Cinder in the backup's project (the
//!   `staffeln restore` path) and runs a drill: restore into a scratch
//!   volume, wait until it is `available`, check its size, delete it,
//!   record the result.

mod check;
pub mod drill;
pub mod quota;
mod restore;
pub mod rpo;
mod settings;
pub mod watch;

pub use check::{Assessment, schedule_period};
pub use restore::DrillReport;
pub use settings::AssuranceSettings;

//! The retention half of the conductor: which of Staffeln's backups to
//! delete, and deleting them without ever touching a backup Staffeln did not
//! make or a full whose incrementals stay.
//!
//! * [`settings`]: [`RetentionSettings`], the rules, schedule and limits.
//! * [`inventory`]: reads every backup, the rows Staffeln recorded, the
//!   volumes (gone only when their own project confirms it) and the servers
//!   whose metadata may carry rules.
//! * [`plan`] (pure): one decision per backup with its reason and delete
//!   wave: ownership floor, busy, errors, age, archival tiers, then the
//!   floors (last successful, chains, Cinder's word).
//! * [`run`]: one run by the leader of the `retention-cycle` lease: check it
//!   is due, read, decide, record every decision in `retention_audit`, then
//!   delete wave by wave (a chain newest first), renewing the lease; and
//!   the preview, which deletes and writes nothing.
//! * [`gone`]: the wait between delete waves ended by Cinder's
//!   `backup.delete.end` (`[cinder_notifications]`), the list poll kept as
//!   the slower fallback; its decisions pure.
//!
//! Its mirror is [`super::backup`]: read, decide purely, act and record.

pub mod gone;
pub mod inventory;
pub mod plan;
pub mod run;
pub mod settings;

pub use settings::RetentionSettings;

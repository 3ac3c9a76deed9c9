//! The backup half of the conductor: find the flagged servers, plan one
//! backup per volume, let every conductor create and watch the backups,
//! stamp the servers, and mail the digests.
//!
//! * [`discovery`]: reads the fleet (all-tenant list calls, quotas, what
//!   the database knows) into the planner's [`plan::Fleet`].
//! * [`plan`] (pure): the flag rule ([`plan::flagged`]) and one decision per
//!   volume with its reason (back up full or incremental, skip, wait, fail).
//! * [`cycle`]: one cycle by the leader of the `backup-cycle` lease: check
//!   it is due, discover and plan while the lease is renewed, write the plan
//!   under the lease's fencing token.
//! * [`worker`]: every conductor claims planned tasks under [`limits`]
//!   (pure), creates the backups (fenced by the claim's token, idempotently
//!   by the task id in the backup's metadata), watches those in flight
//!   ([`waiting`], pure: wait, stop waiting, cancel only when asked, report
//!   as stuck), records them and sets `last-backup-time` ([`stamps`], pure).
//! * [`notified`]: completion by Cinder's `backup.create.end` events, the
//!   poll kept as the slower fallback.
//! * [`report`]: the per-project digests of finished cycles, one round at a
//!   time across conductors.
//!
//! Its mirror is [`super::retention`]: read, decide purely, act and record.

pub mod cycle;
pub mod discovery;
pub mod limits;
pub mod notified;
pub mod plan;
pub mod report;
pub mod stamps;
pub mod waiting;
pub mod worker;

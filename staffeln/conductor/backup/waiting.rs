//! What to do about a backup Cinder is still creating: a pure decision from
//! plain data and `now`.
//!
//! * A running backup is never cancelled by default. After
//!   `backup_cycle_timeout` the cycle stops *waiting* for it: the task becomes
//!   `unfinished` (its cycle can close and its digest go out, saying so), the
//!   backup keeps running, and the worker still watches it and records it
//!   when Cinder finishes it (or fails the task when Cinder fails it).
//! * Cancelling (force-deleting the backup) at that point is the operator's
//!   explicit choice, `backup_cancel_on_timeout`.
//! * A backup that takes longer than its volume would take at
//!   `backup_stuck_throughput` MiB/s, plus [`STUCK_GRACE`] for the backup
//!   service to take it up, is reported once as possibly stuck (log,
//!   `staffeln.backup.create.stuck`, the `staffeln_backups_stuck` metric, the
//!   digest) and never deleted for it.
//!
//! Why a size-scaled expectation: Cinder gives no progress for a backup being
//! created. Its `updated_at` moves when the backup service takes the backup
//! up and when it finishes, not while data is copied, so "`updated_at` did
//! not move for an hour" is true of every healthy large backup. The volume
//! size, and the time since Cinder accepted the create, are what there is.

use chrono::{DateTime, Duration, Utc};

/// Time allowed on top of the size-scaled expectation: queueing at the
/// backup service, snapshotting an in-use volume, small volumes.
pub const STUCK_GRACE: Duration = Duration::minutes(30);

/// The options that govern waiting (`[conductor]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitSettings {
    /// `backup_cycle_timeout`: how long a cycle waits for one backup.
    pub timeout: Duration,
    /// `backup_cancel_on_timeout`: force-delete a backup the cycle stops
    /// waiting for, instead of leaving it running.
    pub cancel_on_timeout: bool,
    /// `backup_stuck_throughput`: the slowest rate (MiB/s) a healthy backup
    /// is expected to reach.
    pub stuck_throughput_mib: u32,
}

/// A backup being created, as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// When Cinder accepted the create.
    pub started_at: DateTime<Utc>,
    /// The volume's size (a full backup reads all of it).
    pub size_gb: u64,
    /// The cycle already stopped waiting (the task is `unfinished`).
    pub given_up: bool,
    /// Already reported as possibly stuck.
    pub stuck_reported: bool,
}

/// What the worker does with the task now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitAction {
    /// Keep waiting (or, for an `unfinished` task, keep watching).
    Wait,
    /// Stop waiting; leave the backup running (default).
    GiveUp,
    /// Stop waiting and force-delete the backup (`backup_cancel_on_timeout`).
    Cancel,
}

/// The decision about one backup being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: WaitAction,
    /// Report the backup as possibly stuck now (only the first time).
    pub report_stuck: bool,
}

/// How long a backup of `size_gb` may take before it looks stuck: the
/// volume read at `throughput_mib` MiB/s, plus [`STUCK_GRACE`].
pub fn expected_duration(size_gb: u64, throughput_mib: u32) -> Duration {
    let mib = size_gb.saturating_mul(1024);
    let secs = mib / u64::from(throughput_mib.max(1));
    STUCK_GRACE + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1_000_000))
}

/// Decides about one backup still being created.
pub fn judge(backup: &InFlight, settings: &WaitSettings, now: DateTime<Utc>) -> Verdict {
    let elapsed = now - backup.started_at;
    let report_stuck =
        !backup.stuck_reported && elapsed > expected_duration(backup.size_gb, settings.stuck_throughput_mib);
    let action = if backup.given_up || elapsed < settings.timeout {
        WaitAction::Wait
    } else if settings.cancel_on_timeout {
        WaitAction::Cancel
    } else {
        WaitAction::GiveUp
    };
    Verdict { action, report_stuck }
}

/// Why the cycle stopped waiting for `backup_id` (task reason, log, digest).
pub fn give_up_reason(backup_id: &str, timeout: Duration) -> String {
    format!(
        "backup {backup_id} was still being created when backup_cycle_timeout ({}) passed; it was left running \
         (not cancelled) and is recorded when Cinder finishes it",
        human(timeout)
    )
}

/// Why `backup_id` looks stuck (log, notification, digest).
pub fn stuck_reason(backup_id: &str, size_gb: u64, elapsed: Duration, throughput_mib: u32) -> String {
    format!(
        "backup {backup_id} of a {size_gb} GiB volume has been creating for {}, longer than {} (its size at \
         backup_stuck_throughput = {throughput_mib} MiB/s, plus {}): it may be stuck; check the cinder-backup \
         service. Staffeln does not cancel it",
        human(elapsed),
        human(expected_duration(size_gb, throughput_mib)),
        human(STUCK_GRACE)
    )
}

/// `1d2h`, `12h`, `2h30min`, `45s`: days, hours, minutes, and seconds only
/// under a minute.
pub fn human(d: Duration) -> String {
    let total = d.num_seconds().max(0);
    if total < 60 {
        return format!("{total}s");
    }
    let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60);
    let mut out = String::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (minutes, "min")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).single().unwrap_or_default()
    }

    const DEFAULTS: WaitSettings =
        WaitSettings { timeout: Duration::hours(12), cancel_on_timeout: false, stuck_throughput_mib: 10 };

    #[test]
    fn a_running_backup_is_waited_for_then_left_running_and_cancelled_only_on_request() {
        let cancel = WaitSettings { cancel_on_timeout: true, ..DEFAULTS };
        let fresh = InFlight { started_at: t0(), size_gb: 100, given_up: false, stuck_reported: false };
        let given_up = InFlight { given_up: true, ..fresh };
        let h = Duration::hours;
        // (backup, settings, hours since the create, expected action)
        let cases: &[(InFlight, WaitSettings, Duration, WaitAction)] = &[
            (fresh, DEFAULTS, Duration::zero(), WaitAction::Wait),
            (fresh, DEFAULTS, h(2), WaitAction::Wait), // a 2-hour backup is never cancelled
            (fresh, DEFAULTS, h(11) + Duration::minutes(59), WaitAction::Wait),
            (fresh, DEFAULTS, h(12), WaitAction::GiveUp), // the bound: stop waiting, leave it running
            (fresh, DEFAULTS, h(200), WaitAction::GiveUp),
            (given_up, DEFAULTS, h(200), WaitAction::Wait), // still watched for adoption
            (fresh, cancel, h(2), WaitAction::Wait),
            (fresh, cancel, h(12), WaitAction::Cancel), // only when the operator asked
            (given_up, cancel, h(30), WaitAction::Wait),
        ];
        for (i, (backup, settings, after, action)) in cases.iter().enumerate() {
            assert_eq!(judge(backup, settings, t0() + *after).action, *action, "case {i}: {after} {settings:?}");
        }
    }

    #[test]
    fn stuck_means_slower_than_the_floor_rate_for_its_size_and_is_reported_once() {
        // 100 GiB at 10 MiB/s: 10240 s (2h50min40s), plus 30 min.
        assert_eq!(expected_duration(100, 10), Duration::seconds(10_240) + STUCK_GRACE);
        assert_eq!(expected_duration(0, 10), STUCK_GRACE);
        assert_eq!(expected_duration(1, 0), Duration::seconds(1024) + STUCK_GRACE, "a zero rate counts as 1 MiB/s");
        let b = InFlight { started_at: t0(), size_gb: 100, given_up: false, stuck_reported: false };
        let at = |secs: i64| t0() + Duration::seconds(secs) + STUCK_GRACE;
        assert!(!judge(&b, &DEFAULTS, at(10_240)).report_stuck, "exactly the expectation is not stuck");
        assert!(judge(&b, &DEFAULTS, at(10_241)).report_stuck);
        let reported = InFlight { stuck_reported: true, ..b };
        assert!(!judge(&reported, &DEFAULTS, at(50_000)).report_stuck, "once");
        // Stuck and past the timeout at once: both are said.
        let v = judge(&b, &DEFAULTS, t0() + Duration::hours(13));
        assert_eq!(v, Verdict { action: WaitAction::GiveUp, report_stuck: true });
        // A small volume gets the grace: 1 GiB is stuck after 31min42s, not before.
        let small = InFlight { size_gb: 1, ..b };
        assert!(!judge(&small, &DEFAULTS, t0() + Duration::minutes(31)).report_stuck);
        assert!(judge(&small, &DEFAULTS, t0() + Duration::minutes(32)).report_stuck);
    }

    #[test]
    fn reasons_name_the_backup_the_bound_and_that_nothing_was_cancelled() {
        let r = give_up_reason("b-1", Duration::hours(12));
        assert!(r.contains("b-1") && r.contains("backup_cycle_timeout (12h)") && r.contains("not cancelled"), "{r}");
        let s = stuck_reason("b-1", 100, Duration::hours(4), 10);
        assert!(s.contains("100 GiB") && s.contains("4h") && s.contains("3h20min") && s.contains("not cancel"), "{s}");
        let cases = [(0, "0s"), (45, "45s"), (60, "1min"), (3600, "1h"), (9000, "2h30min"), (93_600, "1d2h")];
        for (secs, text) in cases {
            assert_eq!(human(Duration::seconds(secs)), text);
        }
    }
}

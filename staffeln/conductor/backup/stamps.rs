//! `last-backup-time`: which flagged servers a cycle owes it to, and what to
//! do when Nova refuses or fails the write. Pure; the worker reads the
//! cycle's tasks, calls these, writes the metadata and records the outcome in
//! `server_stamps`.
//!
//! * A server is owed the stamp once every volume attached to it when the
//!   cycle was planned is backed up in that cycle, whichever server the
//!   volume's task was planned for (a volume attached to two flagged servers
//!   is backed up once, and both servers are stamped). Skipped volumes do not
//!   count; a volume that failed, waited, or whose backup was still running
//!   when the cycle stopped waiting means no stamp (until that backup is
//!   recorded after all).
//! * A failed write is retried at later polls, [`MAX_ATTEMPTS`] times in all
//!   with doubling pauses from [`FIRST_RETRY`], then reported in the digest.
//!   A server in ERROR (Nova answers 409 "… in vm_state error"), a server that
//!   is gone (404) and any other refusal (4xx) are reported at once: retrying
//!   would not change Nova's answer. A 409 for a lock or a task in progress,
//!   and 5xx, are retried.
//! * A value older than one already written to the server (an older cycle
//!   whose last backup finished late) is not written.

use chrono::{DateTime, Duration, Utc};

use crate::objects::TaskState;

/// Writes per server and cycle, the first one included.
pub const MAX_ATTEMPTS: i32 = 5;
/// The pause after the first failed write; it doubles after each failure.
pub const FIRST_RETRY: Duration = Duration::minutes(1);

/// One task of the cycle as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeOutcome<'a> {
    pub volume_id: &'a str,
    pub state: TaskState,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a server is owed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// Some of its volumes are still being backed up.
    Wait,
    /// Not every volume was backed up: no stamp (the reason says which).
    NotOwed { reason: String },
    /// Write this value (the newest end of its volumes' backups).
    Write { value: String },
}

/// The stamp a server is owed, from the tasks of its cycle for the volumes
/// attached to it (`mine`: one per volume, whichever server it was planned
/// for).
pub fn owed(mine: &[VolumeOutcome<'_>]) -> Owed {
    let mine: Vec<&VolumeOutcome<'_>> = mine.iter().filter(|t| t.state != TaskState::Skipped).collect();
    if mine.iter().any(|t| t.state.is_active()) {
        return Owed::Wait;
    }
    if mine.is_empty() {
        return Owed::NotOwed { reason: "no volume of the server was backed up in this cycle".to_owned() };
    }
    if let Some(t) = mine.iter().find(|t| t.state != TaskState::Done) {
        return Owed::NotOwed {
            reason: format!("volume {} was not backed up in this cycle ({})", t.volume_id, t.state),
        };
    }
    let at = mine.iter().filter_map(|t| t.finished_at).max().unwrap_or_default();
    Owed::Write { value: stamp_value(at) }
}

/// The metadata value: ISO 8601 in UTC, to the second (`2026-12-02T10:00:00Z`).
pub fn stamp_value(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether `value` is not newer than what was already written to the server
/// (values of [`stamp_value`] sort as times).
pub fn superseded(value: &str, newest_written: Option<&str>) -> bool {
    newest_written.is_some_and(|newest| newest >= value)
}

/// Why a write failed, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteFailure {
    /// 409 for a server in ERROR: it stays so until an operator acts.
    ErrorState(String),
    /// 409 for a lock or a task in progress: it passes.
    Conflict(String),
    /// 404: the server was deleted.
    Gone(String),
    /// Any other 4xx (e.g. the metadata item limit).
    Refused(String),
    /// 5xx, 429 or no answer.
    Transient(String),
}

/// Classifies Nova's answer to a metadata write (`status` of an API error,
/// `None` for no answer).
pub fn classify_write_error(status: Option<u16>, message: &str) -> WriteFailure {
    let message = message.to_owned();
    match status {
        Some(409) if message.contains("vm_state error") => WriteFailure::ErrorState(message),
        Some(409) => WriteFailure::Conflict(message),
        Some(404) => WriteFailure::Gone(message),
        Some(429) | None => WriteFailure::Transient(message),
        Some(code) if code >= 500 => WriteFailure::Transient(message),
        Some(_) => WriteFailure::Refused(message),
    }
}

/// What follows a failed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    /// Stop and report this.
    GiveUp(String),
}

/// After the `attempts`-th write (from 1) failed with `failure` at `now`.
pub fn after_failure(failure: &WriteFailure, attempts: i32, now: DateTime<Utc>) -> AfterFailure {
    let retry = |what: &str, message: &str| {
        if attempts >= MAX_ATTEMPTS {
            AfterFailure::GiveUp(format!("{what} {attempts} times: {message}"))
        } else {
            let pause = FIRST_RETRY * 2_i32.saturating_pow(u32::try_from(attempts.max(1) - 1).unwrap_or(0));
            AfterFailure::RetryAt(now + pause)
        }
    };
    match failure {
        WriteFailure::ErrorState(m) => {
            AfterFailure::GiveUp(format!("Nova refuses metadata changes while the server is in ERROR: {m}"))
        }
        WriteFailure::Gone(_) => AfterFailure::GiveUp("the server no longer exists".to_owned()),
        WriteFailure::Refused(m) => AfterFailure::GiveUp(format!("Nova refused the metadata change: {m}")),
        WriteFailure::Conflict(m) => retry("Nova refused the metadata change (409)", m),
        WriteFailure::Transient(m) => retry("the metadata change failed", m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(2026, 12, 2, hour, 0, 0).single()
    }

    fn t<'a>(volume_id: &'a str, state: TaskState, hour: u32) -> VolumeOutcome<'a> {
        VolumeOutcome { volume_id, state, finished_at: at(hour) }
    }

    /// The tasks of `volume_ids` among `tasks` (what the worker looks up).
    fn owed_to(volume_ids: &[&str], tasks: &[VolumeOutcome<'_>]) -> Owed {
        let mine: Vec<VolumeOutcome<'_>> =
            tasks.iter().filter(|t| volume_ids.contains(&t.volume_id)).copied().collect();
        owed(&mine)
    }

    #[test]
    fn a_server_is_owed_the_stamp_when_all_its_volumes_are_backed_up_by_whichever_task() {
        use TaskState::*;
        // The shared volume `s` has one task (planned for the first server).
        let tasks = [t("a", Done, 1), t("s", Done, 3), t("b", Done, 2), t("k", Skipped, 4)];
        let write = |h| Owed::Write { value: stamp_value(at(h).unwrap_or_default()) };
        assert_eq!(owed_to(&["a", "s"], &tasks), write(3), "first server");
        assert_eq!(owed_to(&["s"], &tasks), write(3), "second server: only the shared volume");
        assert_eq!(owed_to(&["b", "k"], &tasks), write(2), "skipped volumes do not count");
        assert!(matches!(owed_to(&["k"], &tasks), Owed::NotOwed { .. }), "all skipped");
        for state in [Planned, Claimed, Creating] {
            let tasks = [t("a", Done, 1), t("s", state, 0)];
            assert_eq!(owed_to(&["s"], &tasks), Owed::Wait, "{state}");
            assert_eq!(owed_to(&["a", "s"], &tasks), Owed::Wait, "{state}");
        }
        for state in [Failed, Waiting, Unfinished] {
            let tasks = [t("a", Done, 1), t("s", state, 0)];
            match owed_to(&["a", "s"], &tasks) {
                Owed::NotOwed { reason } => assert!(reason.contains("volume s") && reason.contains(state.as_str())),
                other => panic!("{state}: {other:?}"),
            }
        }
        assert_eq!(stamp_value(at(3).unwrap_or_default()), "2026-12-02T03:00:00Z");
    }

    #[test]
    fn an_older_value_never_replaces_a_newer_one() {
        assert!(!superseded("2026-12-02T03:00:00Z", None));
        assert!(!superseded("2026-12-02T03:00:00Z", Some("2026-12-02T02:59:59Z")));
        assert!(superseded("2026-12-02T03:00:00Z", Some("2026-12-02T03:00:00Z")));
        assert!(superseded("2026-12-01T23:00:00Z", Some("2026-12-02T03:00:00Z")));
    }

    #[test]
    fn failed_writes_are_retried_with_doubling_pauses_then_reported_and_refusals_at_once() {
        let now = at(0).unwrap_or_default();
        let busy = classify_write_error(
            Some(409),
            "Cannot 'update metadata' instance x while it is in task_state resize_migrating",
        );
        assert!(matches!(busy, WriteFailure::Conflict(_)));
        let waits: Vec<AfterFailure> = (1..=MAX_ATTEMPTS).map(|n| after_failure(&busy, n, now)).collect();
        let m = Duration::minutes;
        assert_eq!(
            waits[..4],
            [
                AfterFailure::RetryAt(now + m(1)),
                AfterFailure::RetryAt(now + m(2)),
                AfterFailure::RetryAt(now + m(4)),
                AfterFailure::RetryAt(now + m(8)),
            ]
        );
        assert!(matches!(&waits[4], AfterFailure::GiveUp(r) if r.contains("409") && r.contains("5 times")));
        // (status, message, gives up at the first failure)
        let cases = [
            (Some(409), "Cannot 'update metadata' instance x while it is in vm_state error", true),
            (Some(409), "Instance x is locked", false),
            (Some(404), "Instance x could not be found.", true),
            (Some(403), "Maximum number of metadata items exceeds 128", true),
            (Some(400), "Invalid input", true),
            (Some(500), "boom", false),
            (Some(503), "boom", false),
            (Some(429), "slow down", false),
            (None, "connection reset", false),
        ];
        for (status, message, at_once) in cases {
            let outcome = after_failure(&classify_write_error(status, message), 1, now);
            assert_eq!(matches!(outcome, AfterFailure::GiveUp(_)), at_once, "{status:?} {message}: {outcome:?}");
        }
        match after_failure(&classify_write_error(Some(409), "… in vm_state error"), 1, now) {
            AfterFailure::GiveUp(r) => assert!(r.contains("ERROR"), "{r}"),
            other => panic!("{other:?}"),
        }
    }
}

//! The conductor's loops, side by side until a stop is requested:
//!
//! * the **backup loop** tries a backup cycle when one is due (whichever
//!   conductor takes the lease plans it), then checks the backups in flight
//!   and at once refills the slots they freed (the pipeline stays full: a
//!   batch never waits a poll), sends the digests that are due, and waits:
//!   until the next attempt, at most `poll_interval`, or until an on-demand
//!   trigger or one of Cinder's events that ended a task wakes it. The
//!   backups in flight are listed by one conductor per interval among all
//!   of them (the `backup-poll` turn), every `poll_interval`, or every
//!   `[cinder_notifications] fallback_poll_interval` while Cinder's events
//!   arrive; a loop woken by an event lists nothing;
//! * the **retention loop** runs retention when it is due. It runs beside the
//!   backup loop, so that a retention run waiting for Cinder to delete a
//!   chain (up to `retention_delete_timeout`) never holds up creating and
//!   checking backups.
//!
//! A loop that finds the lease of a due cycle held by another conductor
//! tries again when that lease expires, not at once: a conductor that died
//! holding the lease costs the others one lease query each per
//! `poll_interval`, not a tight loop. A failed attempt (the database is
//! down) is retried after `poll_interval`.
//!
//! When the loops end, the conductor gives up its leases ([`run`]'s caller
//! stops the RPC server first), so that the others and on-demand triggers
//! need not wait for them to expire.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, error, info, info_span, warn};

use super::backup::cycle::{BackupScope, CycleOutcome};
use super::node::Conductor;
use super::retention::run::RetentionOutcome;
use crate::notify::Mailer;
use crate::service::Shutdown;
use crate::service::memory::give_back_free_memory;

/// When a loop next tries what is due at `due`, held off until `not_before`
/// (a lease another conductor holds, or a failed attempt's pause). `None`:
/// nothing is scheduled.
pub fn next_attempt(due: Option<DateTime<Utc>>, not_before: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    due.map(|due| not_before.map_or(due, |nb| due.max(nb)))
}

/// When the backup loop wakes: at the next attempt or one `poll` from
/// `now`, whichever comes first.
pub fn wake_at(now: DateTime<Utc>, attempt: Option<DateTime<Utc>>, poll: Duration) -> DateTime<Utc> {
    let polled = now.checked_add_signed(poll).unwrap_or(DateTime::<Utc>::MAX_UTC);
    attempt.map_or(polled, |at| at.min(polled))
}

/// What an attempt came to, as the loop sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Ran, was not due, or the lease was lost: the schedule decides again.
    Done,
    /// Another conductor holds the lease until then.
    Led(DateTime<Utc>),
    /// Failed (the error was logged).
    Failed,
}

/// Until when the loop holds off after `attempt` at `now`.
pub fn hold_off(attempt: &Attempt, now: DateTime<Utc>, retry: Duration) -> Option<DateTime<Utc>> {
    match attempt {
        Attempt::Done => None,
        Attempt::Led(expires_at) => Some(*expires_at),
        Attempt::Failed => Some(now.checked_add_signed(retry).unwrap_or(DateTime::<Utc>::MAX_UTC)),
    }
}

/// What the backup loop needs besides the conductor.
#[derive(Clone)]
pub struct Loops {
    pub mailer: Arc<Mailer>,
    pub report_period: Duration,
    /// The pause before undelivered digests are tried again.
    pub report_retry: Duration,
    /// Woken when an on-demand trigger planned a cycle.
    pub wake: Arc<Notify>,
}

/// Runs the backup loop and, beside it, the retention loop until `shutdown`
/// is requested. The caller then stops the RPC server and releases the
/// conductor's leases ([`Conductor::release_leases`]).
pub async fn run(conductor: &Conductor, loops: &Loops, shutdown: Shutdown) {
    let retention = tokio::spawn(
        retention_loop(conductor.clone(), shutdown.clone())
            .instrument(info_span!("retention"))
            .with_current_subscriber(),
    );
    let assurance = super::assurance::watch::wanted(conductor).then(|| {
        tokio::spawn(
            super::assurance::watch::assurance_loop(conductor.clone(), shutdown.clone())
                .instrument(info_span!("assurance"))
                .with_current_subscriber(),
        )
    });
    backup_loop(conductor, loops, shutdown).await;
    if let Some(Err(err)) = match assurance {
        Some(task) => Some(task.await),
        None => None,
    } {
        error!("the assurance loop failed: {err}");
    }
    if let Err(err) = retention.await {
        error!("the retention loop failed: {err}");
    }
}

fn poll(conductor: &Conductor) -> Duration {
    Duration::from_std(conductor.settings.poll_interval).unwrap_or(Duration::seconds(10))
}

async fn backup_loop(conductor: &Conductor, loops: &Loops, mut shutdown: Shutdown) {
    let clock = &conductor.clock;
    let poll = poll(conductor);
    let mut not_before: Option<DateTime<Utc>> = None;
    let mut next_report = clock.now();
    // When the backups in flight are next checked: one poll from the last
    // check, whatever woke the loop in between.
    let mut next_check = clock.now();
    loop {
        let due = match conductor.last_cycle_start().await {
            Ok(last) => conductor.settings.backup_schedule.next_due(last, conductor.started_at),
            Err(err) => {
                error!("cannot read the last backup cycle, retried in {} s: {err}", poll.num_seconds());
                None
            }
        };
        let attempt = next_attempt(due, not_before);
        tokio::select! {
            () = shutdown.requested() => break,
            () = clock.park_until(Some(wake_at(next_check, attempt, Duration::zero()))) => {}
            () = loops.wake.notified() => clock.took_wake(),
        }
        if attempt.is_some_and(|at| at <= clock.now()) {
            let outcome = match conductor
                .try_backup_cycle(false, &BackupScope::default())
                .instrument(info_span!("cycle", kind = "backup"))
                .await
            {
                Ok(CycleOutcome::Led(held)) => Attempt::Led(held.expires_at),
                Ok(_) => Attempt::Done,
                Err(err) => {
                    error!("backup cycle failed, retried in {} s: {err}", poll.num_seconds());
                    Attempt::Failed
                }
            };
            not_before = hold_off(&outcome, clock.now(), poll);
        }
        let report = clock.now() >= next_report;
        async {
            // Checked first, so that the slots this poll finds free are
            // refilled now, not one poll later. Woken before the check is
            // due (a slot one of Cinder's events freed, a trigger), nothing
            // is listed.
            let checked = if clock.now() >= next_check {
                next_check = clock.now() + poll;
                conductor.poll_in_turn().await.map(drop)
            } else {
                conductor.tend().await
            };
            if let Err(err) = checked {
                error!("checking backups failed: {err}");
            }
            if let Err(err) = conductor.work_once().await {
                error!("starting backups failed: {err}");
            }
            if report && let Some(retry) = send_due_reports(conductor, loops).await {
                next_report = clock.now() + retry;
            }
        }
        .instrument(info_span!("work"))
        .await;
        give_back_free_memory();
    }
}

/// Sends the digests that are due; the pause before the next try when some
/// could not be delivered.
async fn send_due_reports(conductor: &Conductor, loops: &Loops) -> Option<Duration> {
    let retry = loops.report_retry;
    match conductor.send_reports(&loops.mailer, loops.report_period, false, None).await {
        Ok(summary) if summary.failed.is_empty() => None,
        Ok(_) => Some(retry),
        Err(err) => {
            error!("sending digests failed, retried in {} s: {err}", retry.num_seconds());
            Some(retry)
        }
    }
}

async fn retention_loop(conductor: Conductor, mut shutdown: Shutdown) {
    let clock = conductor.clock.clone();
    let settings = conductor.settings.retention.clone();
    let poll = poll(&conductor);
    let mut not_before: Option<DateTime<Utc>> = None;
    loop {
        let due = match conductor.last_retention_start().await {
            Ok(last) => settings.schedule.next_due(last, conductor.started_at),
            Err(err) => {
                error!("cannot read the last retention run, retried in {} s: {err}", poll.num_seconds());
                not_before = hold_off(&Attempt::Failed, clock.now(), poll);
                Some(clock.now())
            }
        };
        let attempt = next_attempt(due, not_before);
        tokio::select! {
            () = shutdown.requested() => break,
            () = clock.park_until(attempt) => {}
        }
        if attempt.is_none_or(|at| at > clock.now()) {
            continue;
        }
        let run =
            conductor.try_retention(&settings, false, clock.now()).instrument(info_span!("cycle", kind = "retention"));
        let outcome = tokio::select! {
            () = shutdown.requested() => {
                warn!("stopping during a retention run; the next run decides again about what it left");
                break;
            }
            outcome = run => outcome,
        };
        give_back_free_memory();
        let attempt = match outcome {
            Ok(RetentionOutcome::Led(held)) => Attempt::Led(held.expires_at),
            Ok(_) => Attempt::Done,
            Err(err) => {
                error!("retention failed, retried in {} s: {}", poll.num_seconds(), crate::errors::chain(&err));
                Attempt::Failed
            }
        };
        not_before = hold_off(&attempt, clock.now(), poll);
    }
    info!("retention loop stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single().unwrap_or_default() + Duration::seconds(secs)
    }

    #[test]
    fn a_due_cycle_waits_for_a_lease_held_elsewhere_and_nothing_else() {
        let cases: &[(Option<i64>, Option<i64>, Option<i64>)] = &[
            // (due, not before, next attempt)
            (None, None, None),                  // no schedule
            (None, Some(120), None),             // a lease does not make anything due
            (Some(0), None, Some(0)),            // due now: now
            (Some(-60), None, Some(-60)),        // overdue: at once
            (Some(0), Some(120), Some(120)),     // due, but the lease runs until +120 s
            (Some(0), Some(-5), Some(0)),        // the lease has expired already
            (Some(1800), Some(120), Some(1800)), // the next cycle comes after the lease anyway
        ];
        for &(due, nb, expected) in cases {
            assert_eq!(next_attempt(due.map(t), nb.map(t)), expected.map(t), "due {due:?}, not before {nb:?}");
        }
    }

    #[test]
    fn the_loop_wakes_at_the_attempt_or_after_one_poll_interval() {
        let poll = Duration::seconds(10);
        assert_eq!(wake_at(t(0), None, poll), t(10));
        assert_eq!(wake_at(t(0), Some(t(3)), poll), t(3));
        assert_eq!(wake_at(t(0), Some(t(120)), poll), t(10));
        assert_eq!(wake_at(t(0), Some(t(-30)), poll), t(-30), "overdue: at once");
    }

    #[test]
    fn after_an_attempt_the_loop_holds_off_for_the_lease_or_one_poll_interval() {
        let retry = Duration::seconds(10);
        assert_eq!(hold_off(&Attempt::Done, t(0), retry), None);
        assert_eq!(hold_off(&Attempt::Led(t(115)), t(0), retry), Some(t(115)));
        assert_eq!(hold_off(&Attempt::Failed, t(0), retry), Some(t(10)));
    }
}

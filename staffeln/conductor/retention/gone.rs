//! Retention's wait for its deletes, ended by Cinder's events: with
//! `[cinder_notifications]`, a run whose deletes come in waves (a chain,
//! newest first) reads Cinder's `backup.delete.end` while it runs, and a
//! wave starts as soon as the deletes it waits for are announced, not at the
//! next list poll of the backups being deleted.
//!
//! The run reads from a private queue of its own (auto-delete, gone with
//! the run), bound to Cinder's exchange like the conductors' shared queue:
//! the shared queue hands each event to one conductor, and the run needs
//! every `delete.end` of its backups, whichever conductor leads retention.
//!
//! The list poll stays, slower while events arrive
//! (`fallback_poll_interval`), as in the backup loop: a failed delete
//! (`error_deleting`) publishes no `.end`, and an event can be lost.
//! The decisions ([`next_poll`], [`still_waiting`]) are pure.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::plan::RetentionDecision;
use crate::conductor::node::Conductor;
use crate::errors::chain;
use crate::objects::BackupId;
use crate::openstack::{BackupEventKind, backup_event};
use crate::rpc::{ListenTarget, ListenerHandle, Notification, NotificationListener, Transport};

/// Whether Cinder's events are read while a wait runs, and whether they
/// arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsNow {
    /// `[cinder_notifications] fallback_poll_interval`.
    pub fallback: StdDuration,
    /// One of Cinder's backup events arrived within `fallback`.
    pub flowing: bool,
}

/// When the wait next lists the backups being deleted: without events at
/// once, then `backoff` after each list; with events every `backoff` until
/// they arrive, and every `fallback` (at least `backoff`) while they do.
pub fn next_poll(last: DateTime<Utc>, polled: bool, backoff: StdDuration, events: Option<EventsNow>) -> DateTime<Utc> {
    let pause = match events {
        None if !polled => StdDuration::ZERO,
        None | Some(EventsNow { flowing: false, .. }) => backoff,
        Some(EventsNow { fallback, flowing: true }) => fallback.max(backoff),
    };
    Duration::from_std(pause).ok().and_then(|p| last.checked_add_signed(p)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The deletes still waited for: not announced gone by an event, and still
/// `deleting` in the last list (when there was one).
pub fn still_waiting<'a>(
    pending: &[&'a RetentionDecision],
    gone: &HashSet<BackupId>,
    deleting: Option<&HashSet<BackupId>>,
) -> Vec<&'a RetentionDecision> {
    pending
        .iter()
        .copied()
        .filter(|d| !gone.contains(&d.backup_id) && deleting.is_none_or(|l| l.contains(&d.backup_id)))
        .collect()
}

#[derive(Debug, Default)]
struct Seen {
    /// Backups Cinder announced deleted (`backup.delete.end`).
    gone: HashSet<BackupId>,
    /// When the last backup event arrived.
    last_event: Option<DateTime<Utc>>,
}

/// What a run's listener has read so far.
#[derive(Debug, Clone)]
pub struct DeleteEvents {
    seen: Arc<Mutex<Seen>>,
    /// Bumped at every `backup.delete.end`.
    changed: Arc<watch::Sender<u64>>,
}

impl DeleteEvents {
    fn new() -> DeleteEvents {
        DeleteEvents { seen: Arc::default(), changed: Arc::new(watch::Sender::new(0)) }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The backups announced deleted.
    pub fn gone(&self) -> HashSet<BackupId> {
        self.seen().gone.clone()
    }

    /// When the last backup event arrived.
    pub fn last_event(&self) -> Option<DateTime<Utc>> {
        self.seen().last_event
    }

    /// A receiver that wakes at each `backup.delete.end` from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn on(&self, n: &Notification, now: DateTime<Utc>) {
        let event = match backup_event(&n.publisher_id, &n.event_type, &n.payload) {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(bad) => {
                warn!("retention: notification {} dropped: {bad}", n.message_id);
                return;
            }
        };
        let mut seen = self.seen();
        seen.last_event = Some(now);
        if event.kind == BackupEventKind::DeleteEnd {
            debug!("Cinder: backup.delete.end of backup {}", event.backup.id);
            seen.gone.insert(event.backup.id);
            drop(seen);
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// A retention run's listener of Cinder's events.
pub struct RunListener {
    handle: ListenerHandle,
    transport: Transport,
    pub events: DeleteEvents,
}

impl RunListener {
    /// Stops reading; the broker deletes the run's queue.
    pub async fn stop(self) {
        self.handle.stop().await;
        self.transport.close().await;
    }
}

impl Conductor {
    /// Starts reading Cinder's backup events for retention run `run_id`,
    /// before its first delete; `None` without `[cinder_notifications]`, or
    /// when the broker cannot be reached (the run then waits by polling).
    pub async fn listen_for_deletes(&self, run_id: &str) -> Option<RunListener> {
        let settings = self.settings.cinder_events.as_ref()?;
        let target = ListenTarget {
            queue: format!("{}.retention.{run_id}", settings.target.queue),
            private: true,
            ..settings.target.clone()
        };
        let transport = match Transport::new(&settings.rpc) {
            Ok(t) => t,
            Err(err) => {
                warn!(
                    "retention: cannot read Cinder's events ({}); its deletes are waited for by polling",
                    chain(&err)
                );
                return None;
            }
        };
        let events = DeleteEvents::new();
        let (ev, clock) = (events.clone(), self.clock.clone());
        let started = NotificationListener::start(&transport, target, move |n: Notification| {
            ev.on(&n, clock.now());
            std::future::ready(())
        })
        .await;
        match started {
            Ok(handle) => Some(RunListener { handle, transport, events }),
            Err(err) => {
                warn!(
                    "retention: cannot read Cinder's events ({}); its deletes are waited for by polling",
                    chain(&err)
                );
                transport.close().await;
                None
            }
        }
    }

    /// Whether Cinder's events arrive: one reached the run's listener, or
    /// this conductor's shared one, within `fallback`.
    pub(crate) fn delete_events_now(&self, events: &DeleteEvents, fallback: StdDuration) -> EventsNow {
        let now = self.clock.now();
        let within =
            |at: Option<DateTime<Utc>>| at.is_some_and(|at| Duration::from_std(fallback).is_ok_and(|f| now - at < f));
        EventsNow { fallback, flowing: within(events.last_event()) || within(self.backup_events_seen_at()) }
    }
}

/// Logs what ended a wait.
pub(crate) fn log_ended(pending: &[&RetentionDecision], gone: &HashSet<BackupId>) {
    let by_event: Vec<String> =
        pending.iter().filter(|d| gone.contains(&d.backup_id)).map(|d| d.backup_id.0.clone()).collect();
    if by_event.is_empty() {
        debug!("retention: the {} deletes waited for are done (list)", pending.len());
    } else {
        info!(
            "retention: Cinder's backup.delete.end ended the wait for {} of {} deletes ({})",
            by_event.len(),
            pending.len(),
            by_event.join(", ")
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conductor::retention::plan::{RetentionAction, RetentionReason};
    use crate::objects::{BackupKind, BackupStatus, ProjectId, VolumeId};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const MS20: StdDuration = StdDuration::from_millis(20);

    #[test]
    fn without_events_the_first_list_is_at_once_then_after_each_backoff() {
        let t = at("2026-12-02T10:00:00Z");
        assert_eq!(next_poll(t, false, MS20, None), t);
        assert_eq!(next_poll(t, true, MS20, None), t + Duration::milliseconds(20));
    }

    #[test]
    fn with_events_the_list_waits_for_the_fallback_while_they_arrive_and_backs_off_when_they_do_not() {
        let t = at("2026-12-02T10:00:00Z");
        let fallback = StdDuration::from_secs(120);
        let flowing = EventsNow { fallback, flowing: true };
        assert_eq!(next_poll(t, false, MS20, Some(flowing)), t + Duration::seconds(120), "not at once");
        assert_eq!(next_poll(t, true, MS20, Some(flowing)), t + Duration::seconds(120));
        let long = StdDuration::from_secs(600);
        assert_eq!(next_poll(t, true, long, Some(flowing)), t + Duration::seconds(600), "never faster than backoff");
        let silent = EventsNow { fallback, flowing: false };
        assert_eq!(next_poll(t, false, MS20, Some(silent)), t + Duration::milliseconds(20));
    }

    fn decision(id: &str) -> RetentionDecision {
        RetentionDecision {
            backup_id: BackupId(id.into()),
            backup_name: None,
            volume_id: VolumeId("v".into()),
            project_id: ProjectId("p".into()),
            created_at: at("2026-12-01T10:00:00Z"),
            status: BackupStatus::Available,
            kind: BackupKind::Incremental,
            action: RetentionAction::Delete,
            reason: RetentionReason::Expired { age_secs: 86_400, retention_secs: 3600, volume_gone: false },
            message: String::new(),
            wave: Some(0),
            rules: String::new(),
        }
    }

    #[test]
    fn a_delete_is_done_when_its_event_came_or_the_list_no_longer_has_it_deleting() {
        let (a, b, c) = (decision("a"), decision("b"), decision("c"));
        let pending = [&a, &b, &c];
        let ids = |v: Vec<&RetentionDecision>| v.into_iter().map(|d| d.backup_id.0.clone()).collect::<Vec<_>>();
        let gone: HashSet<BackupId> = [BackupId("a".into())].into();
        assert_eq!(ids(still_waiting(&pending, &gone, None)), ["b", "c"], "no list yet: only events count");
        let deleting: HashSet<BackupId> = [BackupId("a".into()), BackupId("c".into())].into();
        assert_eq!(ids(still_waiting(&pending, &gone, Some(&deleting))), ["c"]);
        let all: HashSet<BackupId> = ["a", "b", "c"].iter().map(|s| BackupId((*s).into())).collect();
        assert!(still_waiting(&pending, &all, None).is_empty());
    }
}

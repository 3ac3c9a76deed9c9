//! Completion by events: Cinder's backup service publishes
//! `backup.create.end` when a backup is available; the conductor reads it
//! from a queue of its own (`[cinder_notifications]`) and records the task
//! at once, then wakes its loop so that the freed slot is refilled without
//! waiting for the next poll. The list poll stays, slower while events
//! arrive (`fallback_poll_interval`), for what events do not say: Cinder
//! publishes nothing when a backup fails, and an event can be lost.
//!
//! The queue is Staffeln's own, bound to Cinder's exchange with the routing
//! key `<topic>.info`: the exchange gives every bound queue its own copy, so
//! Ceilometer's `notifications.info` keeps all of its messages. All
//! conductors read the one queue, so each event is handled once, by any of
//! them (the task is in the shared database).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::conductor::error::ConductorError;
use crate::conductor::node::Conductor;
use crate::conductor::settings::CinderEventSettings;
use crate::db::tasks;
use crate::objects::{BackupStatus, TaskState};
use crate::openstack::{BackupEvent, BackupEventKind, backup_event};
use crate::rpc::{ListenerHandle, Notification, NotificationListener, Transport};

/// What an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A task ended (its slot is free).
    Ended,
    /// Not Staffeln's business, or nothing to do (a start, a backup no
    /// task waits for, an aborted create: the poll decides).
    Nothing,
}

impl Conductor {
    /// When this conductor last handled one of Cinder's backup events
    /// (`None`: never): while they arrive, the poll is the slower fallback.
    pub fn backup_events_seen_at(&self) -> Option<DateTime<Utc>> {
        let ms = self.cinder_events_seen.load(Ordering::Relaxed);
        (ms != i64::MIN).then(|| DateTime::<Utc>::from_timestamp_millis(ms)).flatten()
    }

    /// How many of Cinder's backup events this conductor handled.
    pub fn backup_events_handled(&self) -> u64 {
        self.cinder_events_handled.load(Ordering::Relaxed)
    }

    /// Handles one notification from Cinder's exchange: a backup event of
    /// a backup a task waits for records that task now and wakes `wake`
    /// (the backup loop, which refills the slot). A bad payload is logged,
    /// naming what was wrong, and dropped. A backup event counts as handled
    /// ([`Conductor::backup_events_handled`]) once all that is done.
    pub async fn on_cinder_notification(&self, n: &Notification, wake: &Notify) -> Result<Handled, ConductorError> {
        let event = match backup_event(&n.publisher_id, &n.event_type, &n.payload) {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(Handled::Nothing),
            Err(bad) => {
                warn!("notification {} dropped: {bad}", n.message_id);
                return Ok(Handled::Nothing);
            }
        };
        self.cinder_events_seen.store(self.clock.now().timestamp_millis(), Ordering::Relaxed);
        let handled = self.on_backup_event(&event).await;
        if let Ok(Handled::Ended) = handled {
            self.clock.wake(wake);
        }
        self.cinder_events_handled.fetch_add(1, Ordering::Relaxed);
        handled
    }

    /// Records the task of `event`'s backup when the event ends it.
    pub async fn on_backup_event(&self, event: &BackupEvent) -> Result<Handled, ConductorError> {
        if event.kind != BackupEventKind::CreateEnd {
            debug!("Cinder: {:?} of backup {}", event.kind, event.backup.id);
            return Ok(Handled::Nothing);
        }
        let backup = &event.backup;
        if !matches!(backup.status, BackupStatus::Available | BackupStatus::Error) {
            // Aborted (the backup is being deleted): the poll finds out what became of it.
            info!(
                "Cinder ended the create of backup {} in status {}; its task is left to the poll",
                backup.id, backup.status
            );
            return Ok(Handled::Nothing);
        }
        let id = vec![backup.id.0.clone()];
        let rows = self.db_call(move |conn| tasks::by_backup_ids(conn, &id)).await?;
        let Some(task) =
            rows.into_iter().find(|t| matches!(t.task_state(), TaskState::Creating | TaskState::Unfinished))
        else {
            return Ok(Handled::Nothing);
        };
        if task.volume_id != backup.volume_id.0 {
            warn!(
                "Cinder's backup.create.end of backup {} names volume {}, but task {} backs up volume {}: ignored, \
                 the poll reads the backup",
                backup.id, backup.volume_id, task.task_id, task.volume_id
            );
            return Ok(Handled::Nothing);
        }
        let ended = self.record(&task, backup).await?;
        if ended {
            info!(
                task.id = %task.task_id, volume.id = %task.volume_id,
                "task {} ended by Cinder's backup.create.end of backup {} (status {}, from {})",
                task.task_id, backup.id, backup.status, event.host.as_deref().unwrap_or("an unknown host")
            );
        }
        Ok(if ended { Handled::Ended } else { Handled::Nothing })
    }
}

/// Starts reading Cinder's backup events for `conductor`; each event that
/// ends a task wakes `wake` (the backup loop), which refills the slot.
pub async fn listen(
    conductor: &Conductor,
    settings: &CinderEventSettings,
    wake: Arc<Notify>,
) -> Result<(ListenerHandle, Transport), ConductorError> {
    let transport = Transport::new(&settings.rpc)?;
    let c = conductor.clone();
    let handle = NotificationListener::start(&transport, settings.target.clone(), move |n: Notification| {
        let (c, wake) = (c.clone(), wake.clone());
        async move {
            match c.on_cinder_notification(&n, &wake).await {
                Ok(_) => {}
                // The database is down: the poll records the task later.
                Err(err) => warn!("Cinder notification {} ({}) not handled: {err}", n.message_id, n.event_type),
            }
        }
    })
    .await?;
    Ok((handle, transport))
}

//! Event notifications (`[oslo_messaging_notifications]`): what the
//! conductor tells listeners such as a billing or audit service, in the
//! `messagingv2` envelope on the `notifications` topic, as Cinder's
//! `backup.create.end` is told.
//!
//! | event type | priority | when |
//! |---|---|---|
//! | `staffeln.backup.create.start` | INFO | Cinder accepted a create |
//! | `staffeln.backup.create.end` | INFO | the backup is available |
//! | `staffeln.backup.create.error` | ERROR | a task failed |
//! | `staffeln.backup.create.stuck` | WARN | a backup being created looks stuck (it is not cancelled) |
//! | `staffeln.backup.create.unfinished` | WARN | the cycle stopped waiting for a backup Cinder is still making (it is left running) |
//! | `staffeln.backup.delete.end` | INFO | retention deleted a backup ([`Events::backup_deleted`]) |
//! | `staffeln.cycle.end` | INFO | a backup cycle has no active task left |
//!
//! Emitting never waits for the broker: events go through a bounded queue
//! to one task that publishes them in order; when the broker is down they
//! are dropped with a warning, never retried into the backup path. With the
//! default driver (none, or `noop`) nothing is queued and no connection is
//! opened.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::conf::{Config, SettingsError};
use crate::db::tasks::{CycleRow, TaskRow};
use crate::objects::Backup;
use crate::rpc::{Notifier, Priority, RpcSettings, Transport, TransportError};

pub const BACKUP_CREATE_START: &str = "staffeln.backup.create.start";
pub const BACKUP_CREATE_END: &str = "staffeln.backup.create.end";
pub const BACKUP_CREATE_ERROR: &str = "staffeln.backup.create.error";
pub const BACKUP_CREATE_STUCK: &str = "staffeln.backup.create.stuck";
pub const BACKUP_CREATE_UNFINISHED: &str = "staffeln.backup.create.unfinished";
pub const BACKUP_DELETE_END: &str = "staffeln.backup.delete.end";
pub const CYCLE_END: &str = "staffeln.cycle.end";
/// A flagged volume's newest good backup is older than its expected period.
pub const RPO_MISSED: &str = "staffeln.rpo.missed";
/// A volume that was out of its RPO is back within it.
pub const RPO_RESTORED: &str = "staffeln.rpo.restored";
/// A project's backup quota is projected to run out within the horizon.
pub const QUOTA_PROJECTED: &str = "staffeln.quota.exhaustion.projected";

/// Events waiting for the broker; more are dropped.
const QUEUE: usize = 1024;

/// The payload of `staffeln.backup.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupPayload {
    pub task_id: Option<String>,
    pub cycle_id: Option<String>,
    pub project_id: String,
    pub instance_id: Option<String>,
    pub instance_name: Option<String>,
    pub volume_id: String,
    pub volume_name: Option<String>,
    pub backup_id: Option<String>,
    pub backup_name: Option<String>,
    pub incremental: Option<bool>,
    pub size_gb: Option<i64>,
    pub availability_zone: Option<String>,
    /// Why it failed (`create.error`), looks stuck (`create.stuck`), was
    /// left running (`create.unfinished`) or was deleted (`delete.end`).
    pub reason: Option<String>,
}

impl BackupPayload {
    fn of_task(task: &TaskRow) -> BackupPayload {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        BackupPayload {
            task_id: Some(task.task_id.clone()),
            cycle_id: Some(task.cycle_id.clone()),
            project_id: task.project_id.clone(),
            instance_id: non_empty(&task.instance_id),
            instance_name: non_empty(&task.instance_name),
            volume_id: task.volume_id.clone(),
            volume_name: non_empty(&task.volume_name),
            backup_id: non_empty(&task.backup_id),
            backup_name: non_empty(&task.backup_name),
            incremental: Some(task.incremental),
            size_gb: Some(task.size_gb),
            availability_zone: task.availability_zone.clone(),
            reason: None,
        }
    }
}

/// A backup retention deleted, as plain data (for `staffeln.backup.delete.end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedBackup {
    pub backup_id: String,
    pub project_id: String,
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub backup_name: Option<String>,
    pub incremental: Option<bool>,
    /// Why it was deleted (`older than retention_time 2w3d`).
    pub reason: String,
}

/// The payload of `staffeln.cycle.end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CyclePayload {
    pub cycle_id: String,
    pub kind: String,
    pub leader: String,
    pub started_at: String,
    pub planned: i64,
    /// Tasks per end state.
    pub counts: BTreeMap<String, usize>,
    pub summary: String,
}

struct Event {
    priority: Priority,
    event_type: &'static str,
    payload: Value,
}

/// `[oslo_messaging_notifications]` as the conductor uses it: which drivers,
/// and for `messagingv2` where and as whom to publish.
#[derive(Clone, Debug, Default)]
pub struct EventSettings {
    /// `log`: one INFO line per event.
    pub log: bool,
    /// `messagingv2`.
    pub messaging: Option<MessagingSettings>,
}

/// Where `messagingv2` notifications go.
#[derive(Clone, Debug)]
pub struct MessagingSettings {
    /// `[oslo_messaging_notifications] transport_url`, else the RPC one.
    pub rpc: RpcSettings,
    /// `staffeln-conductor.<host>`.
    pub publisher_id: String,
    pub topics: Vec<String>,
}

impl EventSettings {
    /// From `[oslo_messaging_notifications]`, the drivers chosen as oslo
    /// chooses them; an unknown driver, or `messagingv2` without a transport
    /// URL, names the option.
    pub fn from_config(conf: &Config) -> Result<EventSettings, SettingsError> {
        let opts = &conf.oslo_messaging_notifications;
        let bad = |value: &str, reason: &str| {
            SettingsError::new("oslo_messaging_notifications", "driver", value, reason.to_owned())
        };
        let mut settings = EventSettings::default();
        for driver in &opts.driver {
            match driver.trim() {
                "" | "noop" => {}
                "log" => settings.log = true,
                "messagingv2" if settings.messaging.is_none() => {
                    let rpc = RpcSettings::notifications_from_config(conf)?;
                    if rpc.transport_url.is_none() {
                        return Err(bad(
                            driver,
                            "messagingv2 needs [oslo_messaging_notifications] transport_url or [DEFAULT] transport_url",
                        ));
                    }
                    settings.messaging = Some(MessagingSettings {
                        rpc,
                        publisher_id: format!("staffeln-conductor.{}", conf.default.host),
                        topics: opts.topics.clone(),
                    });
                }
                "messagingv2" => {}
                "messaging" => {
                    return Err(bad(driver, "messaging (format 1.0) is not supported by Staffeln; use messagingv2"));
                }
                _ => return Err(bad(driver, "expected one of messagingv2, log, noop")),
            }
        }
        Ok(settings)
    }
}

/// Where the conductor's events go. Cheap to clone; the default sends nothing.
#[derive(Clone, Debug, Default)]
pub struct Events {
    /// `messagingv2`: the queue to the publishing task.
    messaging: Option<mpsc::Sender<Event>>,
    /// `log`: one INFO line per event.
    log: bool,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.priority.wire_name(), self.event_type)
    }
}

impl Events {
    /// Nothing is sent.
    pub fn noop() -> Events {
        Events::default()
    }

    /// Starts what `settings` ask for: with `messagingv2`, the publishing
    /// task on the current runtime (the connection opens with the first
    /// event). Fails only when a TLS file of the transport cannot be read.
    pub async fn start(settings: &EventSettings) -> Result<Events, TransportError> {
        let mut events = Events { messaging: None, log: settings.log };
        if let Some(messaging) = &settings.messaging {
            let transport = Transport::new(&messaging.rpc)?;
            let notifier = Notifier::new(&transport, &messaging.publisher_id, messaging.topics.clone());
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(publish(notifier, transport, rx));
            events.messaging = Some(tx);
        }
        Ok(events)
    }

    /// Sends nothing and opens nothing.
    pub fn is_noop(&self) -> bool {
        self.messaging.is_none() && !self.log
    }

    fn emit(&self, priority: Priority, event_type: &'static str, payload: impl Serialize) {
        if self.is_noop() {
            return;
        }
        let payload = match serde_json::to_value(payload) {
            Ok(payload) => payload,
            Err(err) => {
                warn!("notification {event_type} not sent: cannot encode its payload: {err}");
                return;
            }
        };
        if self.log {
            info!(target: "staffeln.notification", "notification {event_type} ({}): {payload}", priority.wire_name());
        }
        if let Some(tx) = &self.messaging
            && let Err(err) = tx.try_send(Event { priority, event_type, payload })
        {
            warn!("notification {event_type} dropped: {QUEUE} notifications wait for the broker already ({err})");
        }
    }

    /// `staffeln.backup.create.start`: Cinder accepted backup `backup_id`.
    pub fn backup_create_start(&self, task: &TaskRow, backup_id: &str, incremental: bool) {
        let mut p = BackupPayload::of_task(task);
        p.backup_id = Some(backup_id.to_owned());
        p.incremental = Some(incremental);
        self.emit(Priority::Info, BACKUP_CREATE_START, p);
    }

    /// `staffeln.backup.create.end`: the backup of `task` is available.
    pub fn backup_create_end(&self, task: &TaskRow, backup: &Backup) {
        let mut p = BackupPayload::of_task(task);
        p.backup_id = Some(backup.id.0.clone());
        p.incremental = Some(backup.is_incremental);
        self.emit(Priority::Info, BACKUP_CREATE_END, p);
    }

    /// `staffeln.backup.create.error`: `task` failed for `reason`.
    pub fn backup_create_error(&self, task: &TaskRow, reason: &str) {
        let mut p = BackupPayload::of_task(task);
        p.reason = Some(reason.to_owned());
        self.emit(Priority::Error, BACKUP_CREATE_ERROR, p);
    }

    /// `staffeln.backup.create.stuck`: the backup of `task` looks stuck.
    pub fn backup_create_stuck(&self, task: &TaskRow, reason: &str) {
        let mut p = BackupPayload::of_task(task);
        p.reason = Some(reason.to_owned());
        self.emit(Priority::Warn, BACKUP_CREATE_STUCK, p);
    }

    /// `staffeln.backup.create.unfinished`: the cycle of `task` stopped
    /// waiting for its backup, which was left running.
    pub fn backup_create_unfinished(&self, task: &TaskRow, reason: &str) {
        let mut p = BackupPayload::of_task(task);
        p.reason = Some(reason.to_owned());
        self.emit(Priority::Warn, BACKUP_CREATE_UNFINISHED, p);
    }

    /// `staffeln.backup.delete.end`: retention deleted a backup.
    pub fn backup_deleted(&self, deleted: &DeletedBackup) {
        let p = BackupPayload {
            task_id: None,
            cycle_id: None,
            project_id: deleted.project_id.clone(),
            instance_id: deleted.instance_id.clone(),
            instance_name: None,
            volume_id: deleted.volume_id.clone(),
            volume_name: None,
            backup_id: Some(deleted.backup_id.clone()),
            backup_name: deleted.backup_name.clone(),
            incremental: deleted.incremental,
            size_gb: None,
            availability_zone: None,
            reason: Some(deleted.reason.clone()),
        };
        self.emit(Priority::Info, BACKUP_DELETE_END, p);
    }

    /// `staffeln.cycle.end`: `cycle` has no active task left.
    pub fn cycle_end(&self, cycle: &CycleRow, counts: &BTreeMap<&str, usize>, summary: &str) {
        let p = CyclePayload {
            cycle_id: cycle.id.clone(),
            kind: cycle.kind.clone(),
            leader: cycle.leader.clone(),
            started_at: cycle.started_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            planned: i64::from(cycle.planned),
            counts: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            summary: summary.to_owned(),
        };
        self.emit(Priority::Info, CYCLE_END, p);
    }
}

impl Events {
    /// `staffeln.rpo.missed` (`missed`) or `staffeln.rpo.restored`.
    pub fn rpo(
        &self,
        missed: bool,
        project_id: &str,
        volume_id: &str,
        last_success: Option<DateTime<Utc>>,
        reason: &str,
    ) {
        let p = serde_json::json!({
            "project_id": project_id,
            "volume_id": volume_id,
            "last_success": last_success.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "reason": (!reason.is_empty()).then_some(reason),
        });
        if missed {
            self.emit(Priority::Warn, RPO_MISSED, p);
        } else {
            self.emit(Priority::Info, RPO_RESTORED, p);
        }
    }

    /// `staffeln.quota.exhaustion.projected`.
    pub fn quota_projected(&self, project_id: &str, quota: &str, at: DateTime<Utc>, message: &str) {
        let p = serde_json::json!({
            "project_id": project_id,
            "quota": quota,
            "exhausted_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "message": message,
        });
        self.emit(Priority::Warn, QUOTA_PROJECTED, p);
    }
}

/// Publishes queued events in order until every [`Events`] is dropped.
async fn publish(notifier: Notifier, transport: Transport, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        if let Err(err) = notifier.notify(None, event.priority, event.event_type, event.payload).await {
            warn!("notification {} not sent: {}", event.event_type, crate::errors::chain(&err));
        }
    }
    transport.close().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn events(conf: &Config) -> Result<Events, String> {
        let settings = EventSettings::from_config(conf).map_err(|e| e.to_string())?;
        Events::start(&settings).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn drivers_are_chosen_like_oslo_and_noop_opens_nothing() {
        let mut conf = Config::default();
        assert!(events(&conf).await.unwrap().is_noop(), "no driver: nothing");
        conf.oslo_messaging_notifications.driver = vec!["noop".to_owned()];
        assert!(events(&conf).await.unwrap().is_noop());
        conf.oslo_messaging_notifications.driver = vec!["log".to_owned()];
        assert!(!events(&conf).await.unwrap().is_noop());
        conf.oslo_messaging_notifications.driver = vec!["messagingv2".to_owned()];
        let err = events(&conf).await.unwrap_err();
        assert!(err.starts_with("[oslo_messaging_notifications] driver = \"messagingv2\": messagingv2 needs"), "{err}");
        conf.default.transport_url = Some(crate::conf::Secret::new("fake://"));
        assert!(events(&conf).await.unwrap().messaging.is_some());
        for (driver, expected) in [("messaging", "format 1.0"), ("routing", "expected one of")] {
            conf.oslo_messaging_notifications.driver = vec![driver.to_owned()];
            let err = events(&conf).await.unwrap_err();
            assert!(err.contains(expected), "{driver}: {err}");
        }
    }
}

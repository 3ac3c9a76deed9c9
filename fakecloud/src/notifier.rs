//! Cinder's backup notifications, as its backup service publishes them with
//! `[oslo_messaging_notifications] driver = messagingv2`: `backup.create.start`
//! and `.end`, `backup.delete.start` and `.end`, from publisher
//! `backup.<host>`, with the payload of `_usage_from_backup`
//! (cinder/volume/volume_utils.py), in the oslo.messaging 2.0 envelope, to
//! the topic exchange (Cinder's `control_exchange`, `openstack`) with the
//! routing key `<topic>.info`. As Cinder, nothing is published when a backup
//! fails.
//!
//! As real Cinder 29 publishes them (seen on the functional tier): the
//! `backup.create.start` payload has no `service` and no `service_metadata`
//! yet (the backup service sets them after announcing the start); a chunked
//! driver sends `backup.createprogress` at 0 and at 100 percent, with the
//! usage and `backup_percent`, `id`, `list`, `prefix` and `volume_meta`;
//! `backup.delete.end` carries status `deleted`; the context's
//! `auth_token` is null.
//!
//! Where the emulator differs: Cinder's notifier also declares and binds the
//! queue `<topic>.info` so that events wait for Ceilometer; the emulator does
//! not, so that a shared test broker does not collect events no one reads.
//! A listener's own queue bound to the exchange gets them all the same. Both
//! progress notifications go out when the backup completes, just before its
//! `backup.create.end` (Cinder sends the first when the copy starts).
//!
//! The world queues the notifications ([`World::notify_backup`]); one task
//! publishes them in order, with publisher confirms, reconnecting after a
//! pause when the broker goes away (nothing queued is lost meanwhile).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::shared::Shared;
use super::state::{Backup, World};

/// Where the emulated Cinder publishes its notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationTarget {
    /// `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// Cinder's `control_exchange`: `openstack`.
    pub exchange: String,
    /// Cinder's `[oslo_messaging_notifications] topics`: `notifications`.
    pub topic: String,
}

impl NotificationTarget {
    pub fn new(amqp_url: &str) -> NotificationTarget {
        NotificationTarget {
            amqp_url: amqp_url.to_owned(),
            exchange: "openstack".into(),
            topic: "notifications".into(),
        }
    }
}

/// `_usage_from_backup(backup)`.
pub(crate) fn usage(b: &Backup) -> Value {
    json!({
        "tenant_id": b.project_id,
        "user_id": b.user_id,
        "availability_zone": b.availability_zone,
        "backup_id": b.id,
        "host": b.host,
        "display_name": b.name,
        "created_at": b.created_at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
        "status": b.status,
        "volume_id": b.volume_id,
        "size": b.size,
        "service_metadata": format!("volume_{}/{}/az_{}_backup_{}", b.volume_id, b.created_at.format("%Y%m%d%H%M%S"), b.availability_zone.as_deref().unwrap_or("nova"), b.id),
        "service": "cinder.backup.drivers.ceph.CephBackupDriver",
        "fail_reason": b.fail_reason,
        "parent_id": b.parent_id,
        "num_dependent_backups": b.num_dependent_backups,
        "snapshot_id": b.snapshot_id,
    })
}

/// The payload of `event_type` about `b`: the usage, as Cinder's backup
/// service has it at that point.
pub(crate) fn payload(event_type: &str, b: &Backup) -> Value {
    let mut p = usage(b);
    if event_type == "backup.create.start" {
        p["service"] = Value::Null;
        p["service_metadata"] = Value::Null;
    }
    p
}

/// The payload of a `backup.createprogress` at `percent` (the chunked
/// driver's `_send_progress_notification`: the usage and the object list's
/// progress).
pub(crate) fn progress_payload(b: &Backup, percent: u8) -> Value {
    let mut p = usage(b);
    let prefix = p["service_metadata"].clone();
    let done = percent >= 100;
    if let Some(o) = p.as_object_mut() {
        o.insert("backup_percent".into(), if done { json!(100) } else { json!(0.0) });
        o.insert("id".into(), json!(if done { 2 } else { 1 }));
        o.insert(
            "list".into(),
            if done { json!([{"00001": {"compression": "zlib", "length": 1}}]) } else { json!([]) },
        );
        o.insert("prefix".into(), prefix);
        o.insert("volume_meta".into(), Value::Null);
        o.insert("status".into(), json!("creating"));
    }
    p
}

/// The inner message of one notification.
pub(crate) fn message(event_type: &str, b: &Backup, id: &str, now: DateTime<Utc>) -> Value {
    inner(event_type, b, payload(event_type, b), id, now)
}

fn inner(event_type: &str, b: &Backup, payload: Value, id: &str, now: DateTime<Utc>) -> Value {
    json!({
        "message_id": id,
        "publisher_id": format!("backup.{}", b.host.as_deref().unwrap_or("backup-1")),
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": now.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        "_unique_id": id.replace('-', ""),
        "_context_project_id": b.project_id,
        "_context_user_id": b.user_id,
        "_context_request_id": format!("req-{id}"),
        "_context_auth_token": null,
    })
}

/// The 2.0 envelope around `inner`.
pub(crate) fn envelope(inner: &Value) -> Vec<u8> {
    json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string().into_bytes()
}

impl World {
    /// Queues `event_type` about backup `id` when notifications are on;
    /// a `backup.create.end` of a volume marked lost is dropped instead.
    pub(crate) fn notify_backup(&mut self, event_type: &str, id: &str) {
        if !self.notifications_on {
            return;
        }
        let Some(b) = self.backups.get(id).cloned().or_else(|| self.deleted.iter().rev().find(|b| b.id == id).cloned())
        else {
            return;
        };
        if event_type == "backup.create.end" && self.lose_create_end.remove(&b.volume_id) {
            self.notification_counts.lost += 1;
            return;
        }
        let message_id = self.new_uuid();
        let now = self.now();
        self.outbox.push_back(message(event_type, &b, &message_id, now));
        self.notification_counts.queued += 1;
        self.outbox_ready.notify_one();
    }

    /// Queues the two `backup.createprogress` of backup `id` (0 and 100
    /// percent) when notifications are on.
    pub(crate) fn notify_progress(&mut self, id: &str) {
        if !self.notifications_on {
            return;
        }
        let Some(b) = self.backups.get(id).cloned() else {
            return;
        };
        for percent in [0, 100] {
            let message_id = self.new_uuid();
            let now = self.now();
            let m = inner("backup.createprogress", &b, progress_payload(&b, percent), &message_id, now);
            self.outbox.push_back(m);
            self.notification_counts.queued += 1;
            self.notification_counts.progress += 1;
        }
        self.outbox_ready.notify_one();
    }
}

/// Publishes what the world queues until `stop`.
pub(crate) async fn publish_loop(shared: Arc<Shared>, target: NotificationTarget, mut stop: watch::Receiver<bool>) {
    let ready = shared.world().outbox_ready.clone();
    loop {
        let channel = tokio::select! {
            () = stopped(&mut stop) => return,
            ch = open(&target) => ch,
        };
        let (conn, channel) = match channel {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!("fake Cinder cannot reach {} for its notifications: {err}; retrying", target.amqp_url);
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        loop {
            let next = shared.world().outbox.front().cloned();
            let Some(inner) = next else {
                tokio::select! {
                    () = stopped(&mut stop) => {
                        let _ = conn.close(200, "OK".into()).await;
                        return;
                    }
                    () = ready.notified() => continue,
                }
            };
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf-8".into())
                .with_delivery_mode(2)
                .with_priority(0);
            let key = format!("{}.info", target.topic);
            let body = envelope(&inner);
            let sent = async {
                channel
                    .basic_publish(
                        target.exchange.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        props,
                    )
                    .await?
                    .await
            }
            .await;
            match sent {
                Ok(_) => {
                    let mut w = shared.world();
                    w.outbox.pop_front();
                    w.notification_counts.queued = w.notification_counts.queued.saturating_sub(1);
                    w.notification_counts.published += 1;
                }
                Err(err) => {
                    tracing::warn!("fake Cinder lost its broker connection ({err}); reconnecting");
                    break;
                }
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn open(target: &NotificationTarget) -> Result<(lapin::Connection, lapin::Channel), lapin::Error> {
    let conn = lapin::Connection::connect(&target.amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    channel
        .exchange_declare(
            target.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((conn, channel))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn backup() -> Backup {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:01.5Z").unwrap().with_timezone(&Utc);
        Backup {
            id: "b1".into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            volume_id: "v1".into(),
            name: Some("n".into()),
            description: None,
            status: "available".into(),
            size: 10,
            object_count: 40,
            container: None,
            availability_zone: Some("nova".into()),
            snapshot_id: None,
            parent_id: Some("b0".into()),
            num_dependent_backups: 0,
            fail_reason: None,
            metadata: Default::default(),
            created_at: at,
            updated_at: at,
            data_timestamp: at,
            pending: None,
            restore_volume_id: None,
            host: Some("backup-2".into()),
            queued: false,
        }
    }

    #[test]
    fn the_payload_has_the_fields_of_cinders_usage_from_backup() {
        let p = usage(&backup());
        let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "availability_zone",
                "backup_id",
                "created_at",
                "display_name",
                "fail_reason",
                "host",
                "num_dependent_backups",
                "parent_id",
                "service",
                "service_metadata",
                "size",
                "snapshot_id",
                "status",
                "tenant_id",
                "user_id",
                "volume_id"
            ]
        );
        assert_eq!(p["created_at"], "2026-12-02T10:00:01.500000+00:00", "isoformat() of an aware time");
        let m = message("backup.create.end", &backup(), "m1", backup().created_at);
        assert_eq!(m["publisher_id"], "backup.backup-2");
        assert_eq!(m["priority"], "INFO");
        assert_eq!(m["timestamp"], "2026-12-02 10:00:01.500000");
    }

    #[test]
    fn a_create_start_has_no_service_yet_and_progress_carries_the_drivers_fields_as_cinder_29s() {
        let start = message("backup.create.start", &backup(), "m1", backup().created_at);
        assert_eq!((&start["payload"]["service"], &start["payload"]["service_metadata"]), (&Value::Null, &Value::Null));
        let end = message("backup.create.end", &backup(), "m2", backup().created_at);
        assert!(end["payload"]["service"].is_string());
        for (percent, id) in [(0, 1), (100, 2)] {
            let p = progress_payload(&backup(), percent);
            for key in ["backup_percent", "id", "list", "prefix", "volume_meta", "backup_id", "tenant_id"] {
                assert!(p.get(key).is_some(), "{key} in {p}");
            }
            assert_eq!((p["id"].as_u64(), p["status"].as_str()), (Some(id), Some("creating")));
            assert_eq!(p["backup_percent"].as_f64(), Some(f64::from(percent)));
        }
    }

    #[test]
    fn the_envelope_carries_the_message_as_a_json_string() {
        let inner = json!({"event_type": "backup.create.end", "payload": {"backup_id": "b1"}});
        let outer: Value = serde_json::from_slice(&envelope(&inner)).unwrap();
        assert_eq!(outer["oslo.version"], "2.0");
        let back: Value = serde_json::from_str(outer["oslo.message"].as_str().unwrap()).unwrap();
        assert_eq!(back, inner);
    }
}

//! Cinder's backup notifications, read into [`crate::objects`]: the payload
//! of `backup.create.start/end` and `backup.delete.start/end` that Cinder's
//! backup service publishes (publisher `backup.<host>`), built by
//! `_usage_from_backup` in `cinder/volume/volume_utils.py`:
//!
//! ```text
//! tenant_id, user_id, availability_zone, backup_id, host, display_name,
//! created_at (isoformat), status, volume_id, size, service_metadata,
//! service, fail_reason, parent_id, num_dependent_backups, snapshot_id
//! ```
//!
//! A pure function of the notification's publisher, event type and payload
//! (the envelope is `rpc`'s): other event types (`volume.*`, `snapshot.*`,
//! Staffeln's own `staffeln.*`) are `Ok(None)`; a backup event whose payload
//! lacks a field Staffeln needs is an error naming it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::wire::parse_time;
use crate::objects::{Backup, BackupId, BackupStatus, ProjectId, VolumeId};

/// Which of Cinder's backup events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupEventKind {
    /// `backup.create.start`: the backup service took the backup up.
    CreateStart,
    /// `backup.create.end`: the backup is available (or the create was
    /// aborted because the backup is being deleted: see its status).
    CreateEnd,
    /// `backup.delete.start`.
    DeleteStart,
    /// `backup.delete.end`: the backup is gone.
    DeleteEnd,
}

impl BackupEventKind {
    /// The kind of `event_type`; `None` for any other event.
    pub fn of(event_type: &str) -> Option<BackupEventKind> {
        Some(match event_type {
            "backup.create.start" => BackupEventKind::CreateStart,
            "backup.create.end" => BackupEventKind::CreateEnd,
            "backup.delete.start" => BackupEventKind::DeleteStart,
            "backup.delete.end" => BackupEventKind::DeleteEnd,
            _ => return None,
        })
    }
}

/// One of Cinder's backup events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEvent {
    pub kind: BackupEventKind,
    /// The backup as the event describes it (no metadata: Cinder's payload
    /// has none).
    pub backup: Backup,
    /// The cinder-backup host (`host` of the payload, else the publisher's
    /// `backup.<host>`).
    pub host: Option<String>,
}

/// A backup event Staffeln cannot read. `Display` names the event, the
/// publisher and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBackupEvent {
    #[error("Cinder notification {event_type} from {publisher_id}: the payload is not a JSON object: {found}")]
    NotAnObject { event_type: String, publisher_id: String, found: String },
    #[error("Cinder notification {event_type} from {publisher_id}: the payload lacks {field}")]
    Missing { event_type: String, publisher_id: String, field: &'static str },
    #[error(
        "Cinder notification {event_type} from {publisher_id}: payload field {field} = {found}: expected {expected}"
    )]
    BadField { event_type: String, publisher_id: String, field: &'static str, found: String, expected: &'static str },
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}…", text.chars().take(80).collect::<String>()) } else { text }
}

/// Reads a notification as one of Cinder's backup events: `Ok(None)` when
/// `event_type` is not one of them.
pub fn backup_event(
    publisher_id: &str,
    event_type: &str,
    payload: &Value,
) -> Result<Option<BackupEvent>, BadBackupEvent> {
    let Some(kind) = BackupEventKind::of(event_type) else {
        return Ok(None);
    };
    let (ev, publisher) = (event_type.to_owned(), publisher_id.to_owned());
    let Value::Object(p) = payload else {
        return Err(BadBackupEvent::NotAnObject { event_type: ev, publisher_id: publisher, found: shown(payload) });
    };
    let missing = |field| BadBackupEvent::Missing { event_type: ev.clone(), publisher_id: publisher.clone(), field };
    let bad = |field, found: &Value, expected| BadBackupEvent::BadField {
        event_type: ev.clone(),
        publisher_id: publisher.clone(),
        field,
        found: shown(found),
        expected,
    };
    // A required string.
    let text = |field: &'static str| match p.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(missing(field)),
        Some(other) => Err(bad(field, other, "a non-empty string")),
    };
    // An optional string.
    let maybe = |field: &'static str| match p.get(field) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(other) => Err(bad(field, other, "a string or null")),
    };
    // An optional count.
    let count = |field: &'static str| match p.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| bad(field, v, "a whole number of at least 0")),
    };
    let backup_id = text("backup_id")?;
    let volume_id = text("volume_id")?;
    let project_id = text("tenant_id")?;
    let status = BackupStatus::parse(&text("status")?);
    let created_at = match p.get("created_at") {
        Some(Value::String(s)) => {
            parse_time(s).ok_or_else(|| bad("created_at", &Value::from(s.clone()), "an ISO 8601 time"))?
        }
        None | Some(Value::Null) => return Err(missing("created_at")),
        Some(other) => return Err(bad("created_at", other, "an ISO 8601 time")),
    };
    let host = maybe("host")?
        .filter(|h| !h.is_empty())
        .or_else(|| publisher_id.strip_prefix("backup.").filter(|h| !h.is_empty()).map(str::to_owned));
    let backup = Backup {
        id: BackupId(backup_id),
        name: maybe("display_name")?,
        volume_id: VolumeId(volume_id),
        project_id: ProjectId(project_id),
        status,
        size_gb: count("size")?,
        is_incremental: maybe("parent_id")?.is_some_and(|p| !p.is_empty()),
        has_dependent_backups: count("num_dependent_backups")? > 0,
        created_at,
        metadata: BTreeMap::new(),
        availability_zone: maybe("availability_zone")?,
        fail_reason: maybe("fail_reason")?,
    };
    Ok(Some(BackupEvent { kind, backup, host }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `_usage_from_backup` of an available incremental backup, as Cinder
    /// 2026.1 publishes it.
    fn payload() -> Value {
        json!({
            "tenant_id": "p1", "user_id": "u1", "availability_zone": "nova",
            "backup_id": "b1", "host": "backup-2", "display_name": "vol-a_2026-12-02",
            "created_at": "2026-12-02T10:00:01+00:00", "status": "available",
            "volume_id": "v1", "size": 10, "service_metadata": "volume_v1/20261202/az_nova_backup_b1",
            "service": "cinder.backup.drivers.ceph.CephBackupDriver", "fail_reason": null,
            "parent_id": "b0", "num_dependent_backups": 0, "snapshot_id": null
        })
    }

    #[test]
    fn a_create_end_reads_as_the_backup_it_describes() {
        let ev = backup_event("backup.backup-2", "backup.create.end", &payload()).unwrap().unwrap();
        assert_eq!(ev.kind, BackupEventKind::CreateEnd);
        assert_eq!(ev.host.as_deref(), Some("backup-2"));
        let b = ev.backup;
        assert_eq!((b.id.0.as_str(), b.volume_id.0.as_str(), b.project_id.0.as_str()), ("b1", "v1", "p1"));
        assert_eq!(b.status, BackupStatus::Available);
        assert_eq!((b.size_gb, b.is_incremental, b.has_dependent_backups), (10, true, false));
        assert_eq!(b.created_at.to_rfc3339(), "2026-12-02T10:00:01+00:00");
        assert_eq!(b.name.as_deref(), Some("vol-a_2026-12-02"));
        assert_eq!(b.availability_zone.as_deref(), Some("nova"));
        assert_eq!(b.fail_reason, None);
    }

    #[test]
    fn every_backup_event_is_read_and_other_events_are_not_ours() {
        for (event_type, kind) in [
            ("backup.create.start", BackupEventKind::CreateStart),
            ("backup.create.end", BackupEventKind::CreateEnd),
            ("backup.delete.start", BackupEventKind::DeleteStart),
            ("backup.delete.end", BackupEventKind::DeleteEnd),
        ] {
            assert_eq!(backup_event("backup.h", event_type, &payload()).unwrap().unwrap().kind, kind);
        }
        for other in [
            "volume.create.end",
            "backup.restore.end",
            "backup.createprogress",
            "staffeln.backup.create.end",
            "backup.create",
        ] {
            assert_eq!(backup_event("backup.h", other, &json!("anything")).unwrap(), None, "{other}");
        }
    }

    #[test]
    fn a_full_backup_a_missing_host_and_an_unknown_status_read_as_cinder_means_them() {
        let mut p = payload();
        p["parent_id"] = Value::Null;
        p["host"] = Value::Null;
        p["status"] = json!("error");
        p["fail_reason"] = json!("ceph is down");
        p["created_at"] = json!("2026-12-02T10:00:01.123456");
        let ev = backup_event("backup.ceph-backup-1", "backup.create.end", &p).unwrap().unwrap();
        assert!(!ev.backup.is_incremental);
        assert_eq!(ev.host.as_deref(), Some("ceph-backup-1"), "from the publisher");
        assert_eq!(ev.backup.status, BackupStatus::Error);
        assert_eq!(ev.backup.fail_reason.as_deref(), Some("ceph is down"));
        p["status"] = json!("deleting");
        let ev = backup_event("backup.h", "backup.create.end", &p).unwrap().unwrap();
        assert_eq!(ev.backup.status, BackupStatus::Deleting, "an aborted create says so in its status");
    }

    /// What real Cinder 29 published on the functional tier (ids shortened).
    #[test]
    fn cinder_29s_create_start_and_delete_end_read_as_published() {
        let start = json!({
            "availability_zone": null, "backup_id": "bdc6", "created_at": "2026-12-02T16:47:23+00:00",
            "display_name": "boot-2026-12-02-16-47-20", "fail_reason": null, "host": "staffeln-fn",
            "num_dependent_backups": 0, "parent_id": null, "service": null, "service_metadata": null,
            "size": 1, "snapshot_id": null, "status": "creating", "tenant_id": "db95", "user_id": "dfba",
            "volume_id": "4f41"
        });
        let ev = backup_event("backup.staffeln-fn", "backup.create.start", &start).unwrap().unwrap();
        assert_eq!((ev.kind, ev.host.as_deref()), (BackupEventKind::CreateStart, Some("staffeln-fn")));
        assert_eq!((ev.backup.status, ev.backup.availability_zone), (BackupStatus::Creating, None));
        assert_eq!(ev.backup.created_at.to_rfc3339(), "2026-12-02T16:47:23+00:00");
        let mut end = start.clone();
        end["availability_zone"] = json!("nova");
        end["service"] = json!("cinder.backup.drivers.posix.PosixBackupDriver");
        end["parent_id"] = json!("a8da");
        end["status"] = json!("deleted");
        let ev = backup_event("backup.staffeln-fn", "backup.delete.end", &end).unwrap().unwrap();
        assert_eq!(ev.kind, BackupEventKind::DeleteEnd);
        assert!(ev.backup.is_incremental);
        assert_eq!(ev.backup.status.to_string(), "deleted");
        let mut progress = end.clone();
        progress["backup_percent"] = json!(100);
        progress["status"] = json!("creating");
        assert_eq!(backup_event("backup.staffeln-fn", "backup.createprogress", &progress).unwrap(), None);
    }

    #[test]
    fn a_bad_payload_names_the_event_the_publisher_and_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "payload is not a JSON object: [1,2]"),
            (json!({}), "lacks backup_id"),
            (
                {
                    let mut p = payload();
                    p.as_object_mut().unwrap().remove("tenant_id");
                    p
                },
                "lacks tenant_id",
            ),
            (
                {
                    let mut p = payload();
                    p["volume_id"] = json!(7);
                    p
                },
                "payload field volume_id = 7: expected a non-empty string",
            ),
            (
                {
                    let mut p = payload();
                    p["created_at"] = json!("yesterday");
                    p
                },
                "payload field created_at = \"yesterday\": expected an ISO 8601 time",
            ),
            (
                {
                    let mut p = payload();
                    p["size"] = json!(-1);
                    p
                },
                "payload field size = -1: expected a whole number",
            ),
            (
                {
                    let mut p = payload();
                    p["status"] = json!("");
                    p
                },
                "payload field status = \"\": expected a non-empty string",
            ),
        ];
        for (payload, expected) in cases {
            let err = backup_event("backup.h1", "backup.create.end", &payload).unwrap_err().to_string();
            assert!(err.starts_with("Cinder notification backup.create.end from backup.h1: "), "{err}");
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }
}

//! Test controls: fault injection, backup outcomes, the emulated clock and
//! call counters, in process ([`Control`]) and over HTTP (`/_fake/...`).

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Req, Resp, Service};
use super::shared::Shared;
use super::state::World;
use super::steering::{BackupDeletePolicy, BackupOutcome, Fault, FaultEffect, PolicyChecks};

/// In-process handle on a running [`super::FakeCloud`]; cheap to clone.
#[derive(Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

impl Control {
    /// What became of Cinder's notifications so far (`notifier.rs`).
    pub fn notification_counts(&self) -> super::steering::NotificationCounts {
        self.shared.world().notification_counts
    }

    /// Drops the next `backup.create.end` of volume `volume_id`: an event
    /// lost on the way (the backup still becomes available).
    pub fn lose_create_end(&self, volume_id: &str) {
        self.shared.world().lose_create_end.insert(volume_id.to_owned());
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.shared.world()
    }

    /// Calls per `"<METHOD> /<service><route>"`, e.g. `"GET /volume/backups/detail"`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.world().calls.clone()
    }

    /// Calls of one method and route, e.g. `call_count("POST", "/volume/backups")`.
    pub fn call_count(&self, method: &str, route: &str) -> u64 {
        self.world().calls.get(&format!("{} {route}", method.to_ascii_uppercase())).copied().unwrap_or(0)
    }

    pub fn reset_calls(&self) {
        self.world().calls.clear();
    }

    /// Makes Cinder enforce `backup:delete` through the guard (`None`: not).
    pub fn set_backup_delete_policy(&self, policy: Option<BackupDeletePolicy>) {
        let mut w = self.world();
        w.backup_delete_policy = policy;
        w.policy_checks = PolicyChecks::default();
    }

    /// The `backup:delete` checks made since the policy was set.
    pub fn policy_checks(&self) -> PolicyChecks {
        self.world().policy_checks
    }

    /// Replaces a backup's metadata, as its owner could (Cinder >= 3.43).
    pub fn set_backup_metadata(&self, id: &str, metadata: BTreeMap<String, String>) -> bool {
        let mut w = self.world();
        let now = w.now();
        match w.backups.get_mut(id) {
            Some(b) => {
                b.metadata = metadata;
                b.updated_at = now;
                true
            }
            None => false,
        }
    }

    /// A backup's metadata; `None` once it is gone.
    pub fn backup_metadata(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.world().backups.get(id).map(|b| b.metadata.clone())
    }

    /// Adds a fault; returns its id.
    pub fn add_fault(&self, fault: Fault) -> u64 {
        let mut w = self.world();
        let id = w.next_fault_id;
        w.next_fault_id += 1;
        w.faults.push((id, fault));
        id
    }

    pub fn remove_fault(&self, id: u64) {
        self.world().faults.retain(|(i, _)| *i != id);
    }

    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// Outcome of backup creations, for one volume or (`None`) all volumes.
    pub fn set_create_outcome(&self, volume_id: Option<&str>, outcome: BackupOutcome) {
        self.world().create_outcomes.insert(volume_id.map(str::to_owned), outcome);
    }

    /// Outcome of backup deletions, for one volume or (`None`) all volumes.
    pub fn set_delete_outcome(&self, volume_id: Option<&str>, outcome: BackupOutcome) {
        self.world().delete_outcomes.insert(volume_id.map(str::to_owned), outcome);
    }

    /// Outcome of restores, by the backed-up volume's id or (`None`) for
    /// all: `Error` leaves the new volume `error_restoring`.
    pub fn set_restore_outcome(&self, volume_id: Option<&str>, outcome: BackupOutcome) {
        self.world().restore_outcomes.insert(volume_id.map(str::to_owned), outcome);
    }

    /// Volumes of a project (ids), e.g. to find the ones restores made.
    pub fn volume_ids(&self, project_id: &str) -> Vec<String> {
        let w = self.world();
        let mut ids: Vec<String> =
            w.volumes.values().filter(|v| v.project_id == project_id).map(|v| v.id.clone()).collect();
        ids.sort();
        ids
    }

    /// Size (GiB) of a volume; `None` once it is gone.
    pub fn volume_size(&self, id: &str) -> Option<i64> {
        self.world().volumes.get(id).map(|v| v.size)
    }

    /// Runs the backup transitions that are due now; returns how many ran.
    pub fn tick(&self) -> usize {
        self.world().tick(false)
    }

    /// Moves the emulated clock forward, then ticks.
    pub fn advance(&self, by: std::time::Duration) -> usize {
        let mut w = self.world();
        w.clock.advance(chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero()));
        w.tick(false)
    }

    /// Runs every pending transition whatever its due time (stuck ones stay).
    pub fn settle(&self) -> usize {
        self.world().tick(true)
    }

    /// Makes every token issued so far expire now.
    pub fn expire_tokens(&self) {
        let mut w = self.world();
        let now = w.now();
        for t in w.tokens.values_mut() {
            t.expires_at = now - chrono::Duration::seconds(1);
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.world().now()
    }

    /// When the next backup or volume transition is due on the emulated
    /// clock (`None`: nothing is pending).
    pub fn next_transition(&self) -> Option<DateTime<Utc>> {
        self.world().next_transition()
    }

    pub fn project_id(&self, name: &str) -> Option<String> {
        self.world().project_ref(name).map(|p| p.id.clone())
    }

    pub fn user_id(&self, name: &str) -> Option<String> {
        self.world().user_by_name(name).map(|u| u.id.clone())
    }

    pub fn server_id(&self, name: &str) -> Option<String> {
        self.world().servers.values().find(|s| s.name == name).map(|s| s.id.clone())
    }

    pub fn volume_id(&self, name: &str) -> Option<String> {
        self.world().volumes.values().find(|v| v.name.as_deref() == Some(name)).map(|v| v.id.clone())
    }

    /// Puts server `id` into a Nova status (`ACTIVE`, `ERROR`, …) and task
    /// state (`Some("resize_migrating")`, `None`), as Nova operations do;
    /// metadata writes are then refused with 409 as Nova refuses them. False
    /// when there is no such server.
    pub fn set_server_state(&self, id: &str, status: &str, task_state: Option<&str>) -> bool {
        let mut w = self.world();
        let now = w.now();
        match w.servers.get_mut(id) {
            Some(s) => {
                s.status = status.to_ascii_uppercase();
                s.task_state = task_state.map(str::to_owned);
                s.updated_at = now;
                true
            }
            None => false,
        }
    }

    /// Deletes volume `id` as its owner would mid-cycle: detached from its
    /// servers, then deleted; its backups stay (Cinder keeps them). Refused
    /// as Cinder refuses it while the volume is `backing-up` (`Err` with
    /// Cinder's reason; the caller may try again) or when there is no such
    /// volume.
    pub fn delete_volume(&self, id: &str) -> Result<(), String> {
        let mut w = self.world();
        let now = w.now();
        let Some(volume) = w.volumes.get(id) else {
            return Err(format!("Volume {id} could not be found."));
        };
        if volume.status == "backing-up" {
            return Err(format!(
                "Invalid volume: Volume {id} status must be available or error, but current status is: backing-up."
            ));
        }
        for server in w.servers.values_mut() {
            if server.volumes.iter().any(|v| v == id) {
                server.volumes.retain(|v| v != id);
                server.updated_at = now;
            }
        }
        w.volumes.remove(id);
        Ok(())
    }

    /// The metadata of server `id`.
    pub fn server_metadata(&self, id: &str) -> Option<BTreeMap<String, String>> {
        self.world().servers.get(id).map(|s| s.metadata.clone())
    }

    pub fn volume_status(&self, id: &str) -> Option<String> {
        self.world().volumes.get(id).map(|v| v.status.clone())
    }

    /// Status of a backup; `None` once it is gone.
    pub fn backup_status(&self, id: &str) -> Option<String> {
        self.world().backups.get(id).map(|b| b.status.clone())
    }

    /// Every backup Cinder has now, any status, by id.
    pub fn backups(&self) -> Vec<BackupRecord> {
        let mut all: Vec<BackupRecord> = self.world().backups.values().map(BackupRecord::of).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every backup deleted since the cloud started, in the order they went.
    pub fn deleted_backups(&self) -> Vec<BackupRecord> {
        self.world().deleted.iter().map(BackupRecord::of).collect()
    }

    /// Ids of the backups of a volume, any status.
    pub fn backups_of(&self, volume_id: &str) -> Vec<String> {
        let mut ids: Vec<String> =
            self.world().backups.values().filter(|b| b.volume_id == volume_id).map(|b| b.id.clone()).collect();
        ids.sort();
        ids
    }
}

/// A backup as the controls show it (live or deleted): what a test checks
/// after the fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupRecord {
    pub id: String,
    pub project_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub status: String,
    pub parent_id: Option<String>,
    pub fail_reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

impl BackupRecord {
    fn of(b: &super::state::Backup) -> BackupRecord {
        BackupRecord {
            id: b.id.clone(),
            project_id: b.project_id.clone(),
            volume_id: b.volume_id.clone(),
            name: b.name.clone(),
            status: b.status.clone(),
            parent_id: b.parent_id.clone(),
            fail_reason: b.fail_reason.clone(),
            metadata: b.metadata.clone(),
            created_at: b.created_at,
        }
    }
}

/// What injected faults do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultVerdict {
    /// Answer now with this status (and `Retry-After`), without acting.
    Answer { code: u16, retry_after: Option<u64> },
    /// Handle the request after `delay` (and, with `hold`, once that fault
    /// is removed); with `then_status`, replace the real answer by that
    /// status once the request took effect.
    Proceed { delay: std::time::Duration, then_status: Option<u16>, hold: Option<u64> },
}

/// Decides what injected faults do to one request.
pub(crate) fn apply_faults(w: &mut World, service: Service, method: &str, route: &str) -> FaultVerdict {
    use rand::Rng;
    let mut delay = std::time::Duration::ZERO;
    let mut then_status = None;
    let mut hold = None;
    let mut i = 0;
    while i < w.faults.len() {
        let (id, f) = &w.faults[i];
        let id = *id;
        if !f.matches(service, method, route) {
            i += 1;
            continue;
        }
        let p = f.probability;
        if p < 1.0 && !w.rng.random_bool(p.clamp(0.0, 1.0)) {
            i += 1;
            continue;
        }
        let effect = f.effect.clone();
        if let Some(n) = w.faults[i].1.times.as_mut() {
            *n = n.saturating_sub(1);
            // A hold stays (no longer matching) until removed: its removal
            // releases the requests it holds.
            if *n == 0 && effect != FaultEffect::Hold {
                w.faults.remove(i);
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
        match effect {
            FaultEffect::Latency { millis } => delay += std::time::Duration::from_millis(millis),
            FaultEffect::Status { code } => return FaultVerdict::Answer { code, retry_after: None },
            FaultEffect::RateLimit { retry_after } => {
                return FaultVerdict::Answer { code: 429, retry_after: Some(retry_after) };
            }
            FaultEffect::StatusAfterEffect { code } => then_status = then_status.or(Some(code)),
            FaultEffect::Hold => hold = hold.or(Some(id)),
        }
    }
    FaultVerdict::Proceed { delay, then_status, hold }
}

/// `/_fake/...`: the control endpoint (no authentication; bind it to loopback).
pub(crate) fn handle(control: &Control, req: &Req, rest: &[&str]) -> Resp {
    let body = req.json().unwrap_or(Value::Null);
    let bad = |m: &str| Resp::json(400, &json!({"error": m}));
    match (req.method.as_str(), rest) {
        ("GET", ["calls"]) => Resp::ok(&json!({"calls": control.calls()})),
        ("GET", ["notifications"]) => Resp::ok(&json!(control.notification_counts())),
        ("POST", ["notifications", "lose"]) => match body.get("volume_id").and_then(Value::as_str) {
            Some(volume_id) => {
                control.lose_create_end(volume_id);
                Resp::empty(204)
            }
            None => bad("expected {\"volume_id\": \"…\"}"),
        },
        ("DELETE", ["calls"]) => {
            control.reset_calls();
            Resp::empty(204)
        }
        ("GET", ["faults"]) => {
            let faults: Vec<Value> =
                control.shared.world().faults.iter().map(|(id, f)| json!({"id": id, "fault": f})).collect();
            Resp::ok(&json!({ "faults": faults }))
        }
        ("POST", ["faults"]) => match serde_json::from_value::<Fault>(body) {
            Ok(f) => Resp::json(201, &json!({"id": control.add_fault(f)})),
            Err(e) => bad(&format!("invalid fault: {e}")),
        },
        ("DELETE", ["faults"]) => {
            control.clear_faults();
            Resp::empty(204)
        }
        ("DELETE", ["faults", id]) => match id.parse() {
            Ok(id) => {
                control.remove_fault(id);
                Resp::empty(204)
            }
            Err(_) => bad("fault ids are integers"),
        },
        ("POST", ["outcome"]) => {
            #[derive(Deserialize)]
            struct Body {
                operation: String,
                #[serde(default)]
                volume_id: Option<String>,
                outcome: BackupOutcome,
            }
            match serde_json::from_value::<Body>(body) {
                Ok(b) if b.operation == "create" => {
                    control.set_create_outcome(b.volume_id.as_deref(), b.outcome);
                    Resp::empty(204)
                }
                Ok(b) if b.operation == "delete" => {
                    control.set_delete_outcome(b.volume_id.as_deref(), b.outcome);
                    Resp::empty(204)
                }
                Ok(b) if b.operation == "restore" => {
                    control.set_restore_outcome(b.volume_id.as_deref(), b.outcome);
                    Resp::empty(204)
                }
                Ok(_) => bad("operation is create, delete or restore"),
                Err(e) => bad(&format!("invalid outcome: {e}")),
            }
        }
        ("POST", ["tick"]) => Resp::ok(&json!({"transitions": control.tick()})),
        ("POST", ["settle"]) => Resp::ok(&json!({"transitions": control.settle()})),
        ("POST", ["advance"]) => match body.get("seconds").and_then(Value::as_f64) {
            Some(s) if s >= 0.0 => {
                let n = control.advance(std::time::Duration::from_secs_f64(s));
                Resp::ok(&json!({"transitions": n, "now": control.now().to_rfc3339()}))
            }
            _ => bad("expected {\"seconds\": <non-negative number>}"),
        },
        ("POST", ["expire_tokens"]) => {
            control.expire_tokens();
            Resp::empty(204)
        }
        ("GET", ["clock"]) => Resp::ok(&json!({
            "now": control.now().to_rfc3339(),
            "next_transition": control.next_transition().map(|at| at.to_rfc3339()),
        })),
        ("GET", ["policy", "backup_delete"]) => {
            let w = control.shared.world();
            Resp::ok(
                &json!({"policy": w.backup_delete_policy, "rule": w.backup_delete_policy.as_ref().map(BackupDeletePolicy::rule),
                             "checks": w.policy_checks}),
            )
        }
        ("PUT", ["policy", "backup_delete"]) => match serde_json::from_value::<BackupDeletePolicy>(body) {
            Ok(p) => {
                control.set_backup_delete_policy(Some(p));
                Resp::empty(204)
            }
            Err(e) => bad(&format!(
                "invalid policy: {e} (expected {{\"guard_url\": \"http://…?backup_id=%(id)s\", \"remote_timeout\": <seconds>}})"
            )),
        },
        ("DELETE", ["policy", "backup_delete"]) => {
            control.set_backup_delete_policy(None);
            Resp::empty(204)
        }
        _ => Resp::json(404, &json!({"error": "no such control route"})),
    }
}

//! Client side of the conductor RPC API: topic `[conductor] topic`
//! (`staffeln-conductor`), one server per conductor named `[DEFAULT] host`.
//! [`super::manager`] serves it; the argument and result shapes below are
//! the wire format of both, and a stock Python `RPCClient` sees the same
//! (`client.prepare(version="1.0").call(ctxt, "get_status")`). They are the
//! contract, written out here field by field: no internal type goes on the
//! wire through a serde derive of its own, so that changing the conductor
//! never changes the API by accident; the manager converts.
//!
//! Version history (add a line and bump [`VERSION`]; servers keep answering
//! older calls within the major version):
//! * 1.0: ping, get_status, list_tasks, backup_now, retention_now, report_now.
//! * 1.1: backup_now's result names the conductor holding the backup-cycle
//!   lease, when it expires and how many seconds are left
//!   (`lease_holder`, `lease_expires_at`, `retry_after`) when nothing was
//!   planned because of it.
//! * 1.2: restore_backup (a Staffeln backup into a new volume in its
//!   project) and list_restore_drills.
//!
//! Failures come back as oslo does it: `NoSuchMethod`, `UnsupportedVersion`,
//! `TypeError` for keyword arguments that do not fit (unknown name, wrong
//! type), and Staffeln's own classes (Python raises them as `RemoteError`):
//! [`INVALID_PARAMETER`], [`CONDUCTOR_ERROR`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::objects::TaskState;
use crate::rpc::{Context, RpcClient, RpcError, Target, Transport};

/// The newest version this client speaks and the manager serves.
pub const VERSION: &str = "1.2";
/// `[conductor] topic`'s default.
pub const DEFAULT_TOPIC: &str = "staffeln-conductor";
/// `list_tasks`' default `limit`.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The largest `limit` `list_tasks` accepts.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// A parameter has the right type but a value the method refuses.
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// The conductor failed (database, cloud); the message says why.
pub const CONDUCTOR_ERROR: &str = "ConductorError";

/// Arguments of methods that take none (`ping`, `get_status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `backup_now(project_id=None, server_id=None)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupNowArgs {
    /// Only servers of this project.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Only this server.
    #[serde(default)]
    pub server_id: Option<String>,
}

/// What `retention_now(dry_run=True)` returns: what a run would decide now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPreview {
    pub dry_run: bool,
    pub decisions: Vec<RetentionDecisionInfo>,
}

/// One backup's retention decision. Times are RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDecisionInfo {
    pub backup_id: String,
    pub backup_name: Option<String>,
    pub volume_id: String,
    pub project_id: String,
    pub created_at: String,
    /// Cinder's status of the backup (`available`, `error`, …).
    pub status: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// `keep`, `delete` or `skip` (busy now; the next run decides).
    pub action: String,
    pub reason: RetentionReasonInfo,
    /// The reason as a sentence.
    pub message: String,
    /// Deletes only: wave 0 goes first, wave n once waves below n are gone.
    pub wave: Option<u32>,
    /// The rules applied and where they came from.
    pub rules: String,
}

/// Why, as a stable `code` with what the rule looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RetentionReasonInfo {
    /// Kept: not made by Staffeln (which of the two marks is missing).
    NotStaffelns { missing_row: bool, missing_metadata: bool },
    /// Skipped: Cinder is working on it.
    InProgress { status: String },
    /// Skipped: a status this version does not know.
    UnknownStatus { status: String },
    /// Kept: younger than the retention time.
    WithinRetention { age_secs: i64, retention_secs: i64 },
    /// Kept by archival tiers: `[tier, bucket]` pairs (`["daily", "2026-11-25"]`).
    Archival { tiers: Vec<(String, String)> },
    /// Kept: the newest successful backup of a volume that still exists.
    LastSuccessful,
    /// Kept: a backup that stays (`child`) is an incremental on it.
    ChainParent { child: String },
    /// Kept: Cinder says incrementals depend on it and none could be placed.
    UnplacedDependents,
    /// Deleted: older than the retention time and kept by no tier.
    Expired { age_secs: i64, retention_secs: i64, volume_gone: bool },
    /// Deleted: Cinder failed it.
    ErrorState { status: String },
}

/// What `retention_now` without `dry_run` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRan {
    pub ran: bool,
    pub summary: Option<RetentionSummaryInfo>,
    pub message: Option<String>,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSummaryInfo {
    pub run_id: String,
    pub volumes: u64,
    pub kept: u64,
    pub skipped: u64,
    /// Deletes decided.
    pub to_delete: u64,
    /// Deletes Cinder accepted (or the backup was already gone).
    pub deleted: u64,
    /// Left for the next run.
    pub deferred: u64,
    /// Refused for reasons Staffeln cannot fix itself (e.g. no role).
    pub failed: u64,
    /// `backup_data` rows forgotten because Cinder no longer has the backup.
    pub rows_removed: u64,
    /// Rule values reported and ignored (invalid server metadata).
    pub warnings: Vec<String>,
}

/// Arguments of `retention_now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionNowArgs {
    #[serde(default)]
    pub project_id: Option<String>,
    /// Say what would be deleted, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `report_now(project_id=None)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportNowArgs {
    #[serde(default)]
    pub project_id: Option<String>,
}

/// `list_tasks(status=None, project_id=None, limit=100)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTasksArgs {
    /// A task state: planned, claimed, creating, done, failed, skipped, waiting.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// 1 to [`MAX_LIST_LIMIT`]; `None` is [`DEFAULT_LIST_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What `ping` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// `[DEFAULT] host` of the conductor that answered.
    pub host: String,
    /// Its lease holder name (`host:pid`).
    pub holder: String,
    /// The newest API version it serves.
    pub version: String,
}

/// A backup cycle as `get_status` shows it. Times are RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleInfo {
    pub cycle_id: String,
    /// The conductor that planned it.
    pub leader: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Tasks written by the plan.
    pub planned: i64,
    /// `4 done, 1 failed` once finished.
    pub summary: Option<String>,
}

/// What `get_status` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub host: String,
    pub holder: String,
    /// This conductor holds the backup-cycle lease.
    pub leader: bool,
    /// Who holds the lease (`host:pid`), expired or not; `None`: nobody yet.
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<String>,
    pub last_cycle: Option<CycleInfo>,
    /// When the schedule plans the next cycle; `None`: no schedule.
    pub next_cycle_at: Option<String>,
    /// Tasks per state, every state present.
    pub tasks: BTreeMap<String, i64>,
    pub version: String,
}

/// One task as `list_tasks` returns it. Times are RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub task_id: String,
    pub cycle_id: String,
    pub state: String,
    pub project_id: String,
    pub instance_id: String,
    pub instance_name: String,
    pub volume_id: String,
    pub volume_name: String,
    /// `None` until Cinder accepted the create.
    pub backup_id: Option<String>,
    pub backup_name: String,
    pub incremental: bool,
    pub availability_zone: Option<String>,
    pub size_gb: i64,
    pub attempts: i64,
    pub claimed_by: Option<String>,
    /// Why it was skipped, waits or failed.
    pub reason: Option<String>,
    /// Why a full was taken out of turn.
    pub note: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// What `backup_now` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTriggered {
    /// A cycle was planned.
    pub planned: bool,
    /// The conductor that planned it, or that leads when nothing was planned.
    pub leader: Option<String>,
    pub cycle_id: Option<String>,
    pub backups: u64,
    pub skipped: u64,
    pub waiting: u64,
    pub failed: u64,
    /// One sentence for the operator.
    pub message: String,
    /// Nothing was planned because this conductor (`host:pid`) holds the
    /// backup-cycle lease (1.1).
    #[serde(default)]
    pub lease_holder: Option<String>,
    /// When that lease expires unless its holder renews it, RFC 3339 (1.1).
    #[serde(default)]
    pub lease_expires_at: Option<String>,
    /// Seconds until then: a trigger sent afterwards is planned by whichever
    /// conductor takes the lease (1.1).
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// A digest that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFailure {
    pub project_id: String,
    pub error: String,
}

/// What `report_now` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSent {
    /// Projects whose digest was delivered (or recorded, without
    /// `[notification] sender_email`).
    pub delivered: Vec<String>,
    /// Projects whose digest failed; retried with the next digests.
    pub failed: Vec<ReportFailure>,
    /// Why nothing was sent, when nothing was.
    pub held_back: Option<String>,
}

/// `restore_backup(backup_id, name=None)` (1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBackupArgs {
    pub backup_id: String,
    /// The new volume's name; Cinder's `restore_backup_<id>` when absent.
    #[serde(default)]
    pub name: Option<String>,
}

/// What `restore_backup` returns: the volume Cinder restores into, in the
/// backup's project (`restoring-backup` until done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStarted {
    pub backup_id: String,
    pub volume_id: String,
    pub volume_name: Option<String>,
    pub project_id: String,
}

/// `list_restore_drills(project_id=None, limit=None)` (1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDrillsArgs {
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One recorded restore drill, newest first. Times are RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillInfo {
    pub backup_id: String,
    pub volume_id: String,
    pub project_id: String,
    pub scratch_volume_id: Option<String>,
    /// `passed` or `failed`.
    pub result: String,
    pub message: Option<String>,
    pub duration_secs: i64,
    pub conductor: String,
    pub started_at: String,
    pub finished_at: String,
}

/// A call that failed, or whose result does not have the documented shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("{method} returned an unexpected result")]
    BadReply {
        method: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The typed client of the conductor topic. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ConductorApi {
    client: RpcClient,
    timeout: Option<Duration>,
}

impl ConductorApi {
    /// A client of any conductor of `topic` (the broker picks one).
    pub fn new(transport: &Transport, topic: &str) -> ConductorApi {
        ConductorApi { client: RpcClient::new(transport, Target::new(topic)), timeout: None }
    }

    /// The same client aimed at the conductor of `host`.
    pub fn to_server(&self, host: &str) -> ConductorApi {
        ConductorApi { client: self.client.to_server(host), timeout: self.timeout }
    }

    /// Calls wait `timeout` (default: `rpc_response_timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> ConductorApi {
        self.timeout = Some(timeout);
        self
    }

    pub fn target(&self) -> &Target {
        self.client.target()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        ctx: &Context,
        method: &'static str,
        args: Value,
        version: &str,
    ) -> Result<T, ApiError> {
        let value = self.client.call(ctx, method, args, version, self.timeout).await?;
        serde_json::from_value(value).map_err(|source| ApiError::BadReply { method, source })
    }

    pub async fn ping(&self, ctx: &Context) -> Result<Pong, ApiError> {
        self.call(ctx, "ping", json!({}), "1.0").await
    }

    pub async fn get_status(&self, ctx: &Context) -> Result<Status, ApiError> {
        self.call(ctx, "get_status", json!({}), "1.0").await
    }

    /// Newest first.
    pub async fn list_tasks(
        &self,
        ctx: &Context,
        status: Option<TaskState>,
        project_id: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<TaskInfo>, ApiError> {
        let args = json!({"status": status.map(TaskState::as_str), "project_id": project_id, "limit": limit});
        self.call(ctx, "list_tasks", args, "1.0").await
    }

    /// Plans a backup cycle now (of one project or server when given) and
    /// returns what was planned. Any conductor may receive it; a conductor
    /// that does not lead passes it to the one that does.
    pub async fn backup_now(
        &self,
        ctx: &Context,
        project_id: Option<&str>,
        server_id: Option<&str>,
    ) -> Result<BackupTriggered, ApiError> {
        self.call(ctx, "backup_now", json!({"project_id": project_id, "server_id": server_id}), "1.0").await
    }

    /// `backup_now` without waiting for the answer.
    pub async fn cast_backup_now(
        &self,
        ctx: &Context,
        project_id: Option<&str>,
        server_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let args = json!({"project_id": project_id, "server_id": server_id});
        Ok(self.client.cast(ctx, "backup_now", args, "1.0").await?)
    }

    /// Runs retention now ([`RetentionRan`]), or with `dry_run` returns its
    /// preview ([`RetentionPreview`]) without deleting anything.
    pub async fn retention_now(
        &self,
        ctx: &Context,
        project_id: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.call(ctx, "retention_now", json!({"project_id": project_id, "dry_run": dry_run}), "1.0").await
    }

    /// Sends the digests of finished cycles' unreported results now,
    /// whatever `report_period` says (of one project when given).
    pub async fn report_now(&self, ctx: &Context, project_id: Option<&str>) -> Result<ReportSent, ApiError> {
        self.call(ctx, "report_now", json!({"project_id": project_id}), "1.0").await
    }

    /// Restores a Staffeln backup into a new volume in the backup's project.
    pub async fn restore_backup(
        &self,
        ctx: &Context,
        backup_id: &str,
        name: Option<&str>,
    ) -> Result<RestoreStarted, ApiError> {
        self.call(ctx, "restore_backup", json!({"backup_id": backup_id, "name": name}), "1.2").await
    }

    /// Recorded restore drills, newest first.
    pub async fn list_restore_drills(
        &self,
        ctx: &Context,
        project_id: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<DrillInfo>, ApiError> {
        self.call(ctx, "list_restore_drills", json!({"project_id": project_id, "limit": limit}), "1.2").await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_take_python_defaults_and_refuse_unknown_names() {
        let a: ListTasksArgs = serde_json::from_value(json!({})).unwrap();
        assert_eq!(a, ListTasksArgs::default());
        let a: ListTasksArgs = serde_json::from_value(json!({"limit": null, "status": "done"})).unwrap();
        assert_eq!((a.limit, a.status.as_deref()), (None, Some("done")));
        assert!(serde_json::from_value::<ListTasksArgs>(json!({"limit": -1})).is_err());
        assert!(serde_json::from_value::<BackupNowArgs>(json!({"project": "p"})).is_err());
        assert!(serde_json::from_value::<NoArgs>(json!({"x": 1})).is_err());
        let r: RetentionNowArgs = serde_json::from_value(json!({"project_id": "p"})).unwrap();
        assert!(!r.dry_run);
    }
}

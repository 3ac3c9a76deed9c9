//! What every conductor does with the shared queue: claim planned tasks under
//! the concurrency limits, create their backups in Cinder with a token of the
//! volume's project, check the backups in flight with list calls, and record
//! the outcome.
//!
//! A create is idempotent: each backup carries its task id in its metadata,
//! and a task taken over from a conductor that died (its claim expired)
//! first looks for a backup with its id before creating one.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, Utc};
use futures_util::TryStreamExt;
use tracing::{Instrument, info, info_span, warn};

use super::limits::{Slot, pick};
use super::{AUTOMATED_KEY, Conductor, ConductorError, INSTANCE_KEY, TASK_KEY};
use crate::db::models::NewBackup;
use crate::db::tasks::{self, TaskRow};
use crate::objects::{Backup, BackupId, BackupKind, BackupStatus, ProjectId, ServerId, TaskState, VolumeId};
use crate::openstack::{BackupFilter, BackupRequest, OpenStack, OpenStackError};

/// Candidates read per claim.
const CLAIM_WINDOW: i64 = 500;

/// How a failed create is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateFailure {
    /// Cinder has no full backup to chain an incremental to: take a full.
    NeedsFull,
    /// The volume is busy (another backup or a restore): next cycle.
    Busy(String),
    /// Cannot be backed up now; the reason names why.
    Failed(String),
}

/// Classifies Cinder's answer to a create (pure).
pub fn classify_create_error(err: &OpenStackError, project: &ProjectId) -> CreateFailure {
    let message = err.last().message().unwrap_or("").to_owned();
    let status = err.last().status();
    if status == Some(400) && message.contains("No backups available to do an incremental backup") {
        return CreateFailure::NeedsFull;
    }
    if status == Some(400) && (message.contains("\"backing-up\"") || message.contains("\"restoring-backup\"")) {
        return CreateFailure::Busy(format!("volume is busy with another backup or a restore: {message}"));
    }
    if err.last().is_quota_exceeded() {
        return CreateFailure::Failed(format!("Cinder quota exceeded: {message}"));
    }
    if err.last().is_unauthorized() || err.last().is_forbidden() {
        return CreateFailure::Failed(format!(
            "no role in project {project}: grant the service user a role there ({err})"
        ));
    }
    CreateFailure::Failed(err.to_string())
}

impl Conductor {
    /// Claims what may start now and creates those backups. Returns how many
    /// tasks were claimed.
    pub async fn work_once(&self) -> Result<usize, ConductorError> {
        let holder = self.holder.clone();
        let ttl = self.settings.claim_timeout;
        let limits = self.settings.limits;
        let claimed = self
            .db_call(move |conn| {
                tasks::claim(conn, &holder, ttl, CLAIM_WINDOW, |candidates, in_flight| {
                    pick(&slots(candidates), &slots(in_flight), limits, limits.overall)
                })
            })
            .await?;
        let count = claimed.len();
        let runs = claimed.into_iter().map(|task| {
            let span =
                info_span!("task", task.id = %task.task_id, volume.id = %task.volume_id, project.id = %task.project_id);
            self.execute(task).instrument(span)
        });
        futures_util::future::join_all(runs).await;
        Ok(count)
    }

    /// Creates the backup of one claimed task (or adopts the one a dead
    /// conductor created) and records the outcome. Errors are recorded on the
    /// task, never lost.
    async fn execute(&self, task: TaskRow) {
        if let Err(err) = self.try_execute(&task).await {
            warn!("task {} left claimed after an error, retried when the claim expires: {err}", task.task_id);
        }
    }

    async fn try_execute(&self, task: &TaskRow) -> Result<(), ConductorError> {
        let project = ProjectId(task.project_id.clone());
        let os = match self.os.for_project(&project) {
            Ok(os) => os,
            Err(err) => {
                let reason = format!("cannot act in project {project}: {err}");
                return self.finish(task, TaskState::Failed, &reason).await;
            }
        };
        if task.attempts > 1
            && let Some(found) = find_task_backup(&os, task).await?
        {
            info!("task {} adopts backup {} created before its conductor stopped", task.task_id, found.id);
            return self.mark_creating(task, &found.id, found.is_incremental, task.note.clone()).await;
        }
        let mut kind = if task.incremental { BackupKind::Incremental } else { BackupKind::Full };
        let mut note = task.note.clone();
        loop {
            let request = backup_request(task, kind);
            match os.create_backup(&request).await {
                Ok(id) => {
                    info!("{kind} backup {id} of volume {} started", task.volume_id);
                    self.events.backup_create_start(task, &id.0, kind == BackupKind::Incremental);
                    return self.mark_creating(task, &id, kind == BackupKind::Incremental, note).await;
                }
                Err(err) => match classify_create_error(&err, &project) {
                    CreateFailure::NeedsFull if kind == BackupKind::Incremental => {
                        note = Some("full instead of incremental: Cinder found no backup to build on".to_owned());
                        kind = BackupKind::Full;
                    }
                    CreateFailure::NeedsFull => {
                        return self.finish(task, TaskState::Failed, &err.to_string()).await;
                    }
                    CreateFailure::Busy(reason) => {
                        info!("volume {} waits for the next cycle: {reason}", task.volume_id);
                        return self.finish(task, TaskState::Waiting, &reason).await;
                    }
                    CreateFailure::Failed(reason) => {
                        warn!("backup of volume {} failed: {reason}", task.volume_id);
                        return self.finish(task, TaskState::Failed, &reason).await;
                    }
                },
            }
        }
    }

    async fn mark_creating(
        &self,
        task: &TaskRow,
        backup: &BackupId,
        incremental: bool,
        note: Option<String>,
    ) -> Result<(), ConductorError> {
        let (id, holder, backup) = (task.id, self.holder.clone(), backup.0.clone());
        let kept = self
            .db_call(move |conn| tasks::mark_creating(conn, id, &holder, &backup, incremental, note.as_deref()))
            .await?;
        if !kept {
            warn!("task {} was taken over by another conductor before its backup was recorded", task.task_id);
        }
        Ok(())
    }

    async fn finish(&self, task: &TaskRow, state: TaskState, reason: &str) -> Result<(), ConductorError> {
        let (id, text) = (task.id, reason.to_owned());
        let ended = self
            .db_call(move |conn| tasks::finish(conn, id, &[TaskState::Claimed, TaskState::Creating], state, &text))
            .await?;
        if ended && state == TaskState::Failed {
            self.events.backup_create_error(task, reason);
        }
        Ok(())
    }

    /// Checks the backups being created: completes the available ones, fails
    /// the ones in error, cancels the ones past `backup_cycle_timeout`, sets
    /// `last-backup-time` on servers whose volumes are all done, and closes
    /// finished cycles. Returns how many tasks ended.
    pub async fn poll_once(&self) -> Result<usize, ConductorError> {
        let creating = self.db_call(|conn| tasks::in_state(conn, TaskState::Creating)).await?;
        let mut ended = 0;
        if !creating.is_empty() {
            ended += self.check_creating(creating).await?;
        }
        self.close_cycles().await?;
        Ok(ended)
    }

    async fn check_creating(&self, creating: Vec<TaskRow>) -> Result<usize, ConductorError> {
        let now = Utc::now();
        let by_backup: HashMap<String, &TaskRow> = creating.iter().map(|t| (t.backup_id.clone(), t)).collect();
        // One list call (usually one page) for everything still creating.
        let still: HashSet<String> = self
            .os
            .backups(&BackupFilter { status: Some(BackupStatus::Creating), ..BackupFilter::default() })
            .map_ok(|b| b.id.0)
            .try_collect()
            .await?;
        let mut ended = 0;
        let mut left: HashMap<String, &TaskRow> = HashMap::new();
        for (backup_id, task) in &by_backup {
            if still.contains(backup_id) {
                let started = task.started_at.map(|s| s.and_utc()).unwrap_or(now);
                if now - started > self.settings.cycle_timeout {
                    self.cancel(task).await?;
                    ended += 1;
                }
            } else {
                left.insert(backup_id.clone(), *task);
            }
        }
        if left.is_empty() {
            return Ok(ended);
        }
        // Finished ones: newest-first lists of available and error backups,
        // read only as far back as the oldest of them started.
        let oldest = left.values().filter_map(|t| t.started_at).min().map(|t| t.and_utc()).unwrap_or(now);
        let horizon = oldest - Duration::minutes(5);
        for status in [BackupStatus::Available, BackupStatus::Error] {
            if left.is_empty() {
                break;
            }
            let mut stream = self.os.backups(&BackupFilter { status: Some(status.clone()), ..BackupFilter::default() });
            while let Some(backup) = stream.try_next().await? {
                if let Some(task) = left.remove(&backup.id.0) {
                    ended += usize::from(self.record(task, &backup).await?);
                }
                if left.is_empty() || backup.created_at < horizon {
                    break;
                }
            }
        }
        // Anything else (deleted meanwhile, or listed out of order): ask one by one.
        for task in left.into_values() {
            match self.os.backup(&BackupId(task.backup_id.clone())).await {
                Ok(backup) => ended += usize::from(self.record(task, &backup).await?),
                Err(err) if err.last().is_not_found() => {
                    let reason =
                        format!("backup {} disappeared from Cinder while it was being created", task.backup_id);
                    self.finish(task, TaskState::Failed, &reason).await?;
                    ended += 1;
                }
                Err(err) => warn!("cannot read backup {}: {err}", task.backup_id),
            }
        }
        Ok(ended)
    }

    /// Records a finished backup; true when the task ended.
    async fn record(&self, task: &TaskRow, backup: &Backup) -> Result<bool, ConductorError> {
        match &backup.status {
            BackupStatus::Available => {
                let row = NewBackup {
                    backup_id: backup.id.0.clone(),
                    project_id: task.project_id.clone(),
                    volume_id: task.volume_id.clone(),
                    instance_id: task.instance_id.clone(),
                    backup_completed: 1,
                    incremental: backup.is_incremental,
                };
                let id = task.id;
                let done = self.db_call(move |conn| tasks::complete(conn, id, &row)).await?;
                if done {
                    info!(task.id = %task.task_id, volume.id = %task.volume_id, "backup {} of volume {} is available", backup.id, task.volume_id);
                    self.events.backup_create_end(task, backup);
                    self.maybe_set_last_backup_time(task).await?;
                }
                Ok(done)
            }
            BackupStatus::Error => {
                let reason = format!(
                    "Cinder failed the backup {}: {}",
                    backup.id,
                    backup.fail_reason.as_deref().unwrap_or("no reason given")
                );
                warn!(task.id = %task.task_id, volume.id = %task.volume_id, "{reason}");
                self.finish(task, TaskState::Failed, &reason).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A backup past `backup_cycle_timeout`: cancel it in Cinder
    /// (force-delete) and fail the task; the next cycle tries again.
    async fn cancel(&self, task: &TaskRow) -> Result<(), ConductorError> {
        let timeout = self.settings.cycle_timeout.num_seconds();
        let reason = match self.os.force_delete_backup(&BackupId(task.backup_id.clone())).await {
            Ok(()) => {
                format!("backup {} did not finish within backup_cycle_timeout ({timeout} s); cancelled", task.backup_id)
            }
            Err(err) => format!(
                "backup {} did not finish within backup_cycle_timeout ({timeout} s); cancelling it failed: {err}",
                task.backup_id
            ),
        };
        warn!(task.id = %task.task_id, volume.id = %task.volume_id, "{reason}");
        self.finish(task, TaskState::Failed, &reason).await
    }

    /// Sets the server's `last-backup-time` once every volume of it planned
    /// for backup in this cycle is done.
    async fn maybe_set_last_backup_time(&self, task: &TaskRow) -> Result<(), ConductorError> {
        let cycle = task.cycle_id.clone();
        let siblings = self.db_call(move |conn| tasks::of_cycle(conn, &cycle)).await?;
        let mine: Vec<&TaskRow> = siblings
            .iter()
            .filter(|t| t.instance_id == task.instance_id && t.task_state() != TaskState::Skipped)
            .collect();
        if mine.is_empty() || !mine.iter().all(|t| t.task_state() == TaskState::Done) {
            return Ok(());
        }
        let at = mine.iter().filter_map(|t| t.finished_at).max().map(|t| t.and_utc()).unwrap_or_else(Utc::now);
        let value = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let server = ServerId(task.instance_id.clone());
        match self.os.set_server_metadata(&server, &self.settings.last_backup_key, &value).await {
            Ok(()) => info!(server.id = %server, "server {server}: {} = {value}", self.settings.last_backup_key),
            Err(err) => {
                warn!(server.id = %server, "cannot set {} on server {server}: {err}", self.settings.last_backup_key)
            }
        }
        Ok(())
    }

    /// Marks cycles finished once none of their tasks is still active.
    async fn close_cycles(&self) -> Result<(), ConductorError> {
        let open = self.db_call(|conn| tasks::open_cycles(conn, "backup")).await?;
        for cycle in open {
            let id = cycle.id.clone();
            let rows = self.db_call(move |conn| tasks::of_cycle(conn, &id)).await?;
            if rows.iter().any(|t| t.task_state().is_active()) {
                continue;
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for row in &rows {
                *counts.entry(row.state.as_str()).or_default() += 1;
            }
            let summary = counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
            info!(cycle.id = %cycle.id, "backup cycle {} finished: {summary}", cycle.id);
            let (id, text) = (cycle.id.clone(), summary.clone());
            self.db_call(move |conn| tasks::finish_cycle(conn, &id, &text)).await?;
            self.events.cycle_end(&cycle, &counts, &summary);
        }
        Ok(())
    }
}

/// The tasks as the limits see them.
fn slots(rows: &[TaskRow]) -> Vec<Slot<'_>> {
    rows.iter()
        .map(|r| Slot { id: r.id, project_id: &r.project_id, availability_zone: r.availability_zone.as_deref() })
        .collect()
}

/// The create request of a task.
fn backup_request(task: &TaskRow, kind: BackupKind) -> BackupRequest {
    let mut request = BackupRequest::new(VolumeId(task.volume_id.clone()));
    request.name = Some(task.backup_name.clone());
    request.description = Some(format!("Automated backup by Staffeln (task {})", task.task_id));
    request.force = task.force_backup;
    request.kind = kind;
    request.metadata = BTreeMap::from([
        (AUTOMATED_KEY.to_owned(), "True".to_owned()),
        (TASK_KEY.to_owned(), task.task_id.clone()),
        (INSTANCE_KEY.to_owned(), task.instance_id.clone()),
    ]);
    request
}

/// The backup a previous attempt of `task` created, if any (one list call,
/// filtered by volume).
async fn find_task_backup(os: &OpenStack, task: &TaskRow) -> Result<Option<Backup>, ConductorError> {
    let filter = BackupFilter { volume_id: Some(VolumeId(task.volume_id.clone())), ..BackupFilter::default() };
    let mut stream = os.backups(&filter);
    while let Some(backup) = stream.try_next().await? {
        if backup.metadata.get(TASK_KEY).is_some_and(|t| *t == task.task_id) {
            return Ok(Some(backup));
        }
    }
    Ok(None)
}

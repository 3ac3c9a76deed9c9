//! What every conductor does with the shared queue: claim planned tasks under
//! the concurrency limits, create their backups in Cinder with a token of the
//! volume's project, check the backups in flight with list calls, record the
//! outcome, and set the servers' `last-backup-time`.
//!
//! Creates are fenced and idempotent:
//! * every claim carries a token (the task's claim count); before each create
//!   attempt the worker confirms it still holds the claim with that token (a
//!   conditional update that also extends the claim), and the create is
//!   recorded, or the task ended, only under the same token. A conductor that
//!   stalled past `claim_timeout` (SIGSTOP, a paused VM, a partition) and
//!   resumed finds its token stale and neither creates nor records anything;
//! * each backup carries its task id in its metadata, and before any create
//!   that may repeat an earlier one (a task taken over from another
//!   conductor, or a retry after an answer that does not say whether Cinder
//!   acted: 5xx, a timeout) the worker looks for the task's backup and adopts
//!   it. Creates are sent once by the HTTP client; the worker retries them
//!   itself, on the client's retry schedule, only after confirming its claim
//!   and looking.
//!
//! What remains: a conductor that confirms its claim and then stalls for
//! longer than `claim_timeout` before its create reaches Cinder can still
//! add a backup after another conductor made one. Cinder refuses it while
//! the other backup runs (the volume is `backing-up`); otherwise it is logged
//! as a duplicate and, carrying `__automated_backup`, rotated by retention.
//!
//! Waiting ([`super::waiting`]): a backup still running after
//! `backup_cycle_timeout` is left running (its task becomes `unfinished`)
//! and recorded when Cinder finishes it; it is cancelled only with
//! `backup_cancel_on_timeout`. One that looks stuck is reported once.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, SubsecRound, Utc};
use futures_util::TryStreamExt;
use tracing::{Instrument, info, info_span, warn};

use super::limits::{Slot, Utilisation, ZoneCaps, most_at_once, pick, warm_first, zone_caps};
use super::stamps::{AfterFailure, Owed, VolumeOutcome, after_failure, classify_write_error, owed, superseded};
use super::waiting::{InFlight, WaitAction, give_up_reason, judge, stuck_reason};
use crate::conductor::checkpoint::{self, Point};
use crate::conductor::error::ConductorError;
use crate::conductor::lease::POLL_TURN;
use crate::conductor::node::Conductor;
use crate::db::backups;
use crate::db::models::NewBackup;
use crate::db::stamps::{self, StampRow};
use crate::db::tasks::{self, TaskRow};
use crate::objects::metadata::{AUTOMATED_KEY, AUTOMATED_VALUE, INSTANCE_KEY, TASK_KEY};
use crate::objects::{Backup, BackupId, BackupKind, BackupStatus, ProjectId, ServerId, TaskState, VolumeId};
use crate::openstack::retry::{Decision, RetryPolicy};
use crate::openstack::{BackupFilter, BackupRequest, OpenStack, OpenStackError};

/// Candidates read per claim.
const CLAIM_WINDOW: i64 = 500;
/// How long a conductor holds a stamp it is writing before another may try.
const STAMP_HOLD: Duration = Duration::minutes(5);
/// How long the cinder-backup hosts read from Cinder are used before they
/// are read again.
const BACKUP_HOSTS_TTL: Duration = Duration::seconds(600);
/// Metadata writes in flight at once.
const STAMP_CONCURRENCY: usize = 8;
/// Stamps decided per database read.
const STAMP_PAGE: i64 = 200;

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

/// Whether Cinder may have made the backup although the create failed: an
/// error answer from the server side (5xx) or no complete answer. A 4xx or
/// a connection never made means it did not.
pub fn create_may_have_acted(err: &OpenStackError) -> bool {
    use crate::openstack::retry::Outcome;
    match err.retry_outcome() {
        Some(Outcome::Status { code, .. }) => code >= 500,
        Some(Outcome::NoAnswer) => true,
        Some(Outcome::ConnectFailed) | None => false,
    }
}

/// The wait before the next attempt after `err`, or `None` to stop (pure
/// apart from the jitter): the client's retry schedule, treating the create
/// as idempotent because the worker looks for the task's backup first.
fn retry_wait(
    policy: &RetryPolicy,
    err: &OpenStackError,
    attempt: u32,
    elapsed: std::time::Duration,
) -> Option<std::time::Duration> {
    let outcome = err.retry_outcome()?;
    match policy.decide(outcome, true, attempt, elapsed, rand::random::<f64>()) {
        Decision::RetryAfter(wait) => Some(wait),
        Decision::GiveUp => None,
    }
}

impl Conductor {
    /// Claims what may start now and creates those backups. Returns how many
    /// tasks were claimed.
    pub async fn work_once(&self) -> Result<usize, ConductorError> {
        let claimed = self.claim_tasks().await?;
        let count = claimed.len();
        self.execute_claimed(claimed).await;
        Ok(count)
    }

    /// The first half of [`Conductor::work_once`]: claims the tasks that may
    /// start now under the concurrency limits, for `claim_timeout`.
    pub async fn claim_tasks(&self) -> Result<Vec<TaskRow>, ConductorError> {
        let holder = self.holder.clone();
        let ttl = self.settings.claim_timeout;
        let limits = self.settings.limits;
        let zones = self.zone_caps().await;
        let now = self.clock.db_now();
        let warm: Vec<String> = self.os.warm_projects().into_iter().map(|p| p.0).collect();
        self.db_call(move |conn| {
            tasks::claim(conn, &holder, now, ttl, CLAIM_WINDOW, |candidates, in_flight| {
                let warm: HashSet<&str> = warm.iter().map(String::as_str).collect();
                let elsewhere: HashSet<&str> = in_flight
                    .iter()
                    .filter(|t| t.claimed_by.as_deref().is_some_and(|by| by != holder))
                    .map(|t| t.project_id.as_str())
                    .collect();
                let ordered = warm_first(&slots(candidates), &warm, &elsewhere);
                pick(&ordered, &slots(in_flight), limits, &zones, limits.overall)
            })
        })
        .await
    }

    /// The cap of each availability zone, from Cinder's cinder-backup hosts
    /// (read again after [`BACKUP_HOSTS_TTL`]); while they cannot be read,
    /// every zone has the fallback cap, and why is logged once (again only
    /// after the list was read in between).
    pub async fn zone_caps(&self) -> ZoneCaps {
        let now = self.clock.now();
        let fresh = {
            let seen = self.backup_hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.read_at.is_some_and(|at| now - at < BACKUP_HOSTS_TTL)
        };
        if !fresh {
            let read = self.os.backup_hosts().await;
            let mut seen = self.backup_hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.read_at = Some(now);
            match read {
                Ok(hosts) => {
                    seen.hosts = Some(hosts);
                    seen.warned = false;
                }
                Err(err) => {
                    seen.hosts = None;
                    if !seen.warned {
                        seen.warned = true;
                        let cap = self.settings.limits.fallback_per_az();
                        warn!(
                            "cannot read Cinder's cinder-backup services ({err}); every availability zone runs at \
                             most {cap} backups at once (max_concurrent_backups_per_az, or one backup host's share) \
                             until they can be read"
                        );
                    }
                }
            }
        }
        let seen = self.backup_hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        zone_caps(seen.hosts.as_deref(), self.settings.limits)
    }

    /// The second half of [`Conductor::work_once`]: creates the backups of
    /// `claimed` tasks (or adopts the ones an earlier attempt made) and
    /// records the outcomes. Errors are recorded on the task, never lost.
    pub async fn execute_claimed(&self, claimed: Vec<TaskRow>) {
        if !claimed.is_empty() {
            checkpoint::reach(Point::Claiming);
        }
        let runs = claimed.into_iter().map(|task| {
            let span =
                info_span!("task", task.id = %task.task_id, volume.id = %task.volume_id, project.id = %task.project_id);
            async move {
                if let Err(err) = self.try_execute(&task).await {
                    warn!("task {} left claimed after an error, retried when the claim expires: {err}", task.task_id);
                }
            }
            .instrument(span)
        });
        futures_util::future::join_all(runs).await;
    }

    async fn try_execute(&self, task: &TaskRow) -> Result<(), ConductorError> {
        let project = ProjectId(task.project_id.clone());
        let os = match self.os.for_project(&project) {
            Ok(os) => os,
            Err(err) => {
                let reason = format!("cannot act in project {project}: {err}");
                return self.finish_claimed(task, TaskState::Failed, &reason).await;
            }
        };
        let policy = os.retry_policy().clone();
        let started = std::time::Instant::now();
        let mut kind = if task.incremental { BackupKind::Incremental } else { BackupKind::Full };
        let mut note = task.note.clone();
        // A task claimed before may have a backup already (its conductor
        // died or stalled after the create).
        let mut look_first = task.claim_token() > 1;
        let mut attempt: u32 = 0;
        loop {
            if !self.confirm_claim(task).await? {
                info!(
                    "task {} was taken over by another conductor while this one waited; it creates nothing for it",
                    task.task_id
                );
                return Ok(());
            }
            if look_first {
                match find_task_backup(&os, task).await {
                    Ok(Some(found)) => {
                        info!("task {} adopts backup {} made by an earlier attempt", task.task_id, found.id);
                        return self.mark_creating(task, &found.id, found.is_incremental, note).await.map(|_| ());
                    }
                    Ok(None) => {}
                    // Whether a backup exists is unknown: never create blindly.
                    Err(err) => match retry_wait(&policy, &err, attempt, started.elapsed()) {
                        Some(wait) => {
                            warn!("cannot look for the backup of task {} yet, retrying: {err}", task.task_id);
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                        // Left claimed: looked for again when the claim expires.
                        None if err.is_transient() => return Err(err.into()),
                        // Refused (no role in the project, …): it cannot be done.
                        None => {
                            let reason = match classify_create_error(&err, &project) {
                                CreateFailure::Failed(reason) | CreateFailure::Busy(reason) => reason,
                                CreateFailure::NeedsFull => err.to_string(),
                            };
                            warn!("backup of volume {} failed: {reason}", task.volume_id);
                            return self.finish_claimed(task, TaskState::Failed, &reason).await;
                        }
                    },
                }
            }
            let request = backup_request(task, kind);
            let err = match os.create_backup_once(&request).await {
                Ok(id) => {
                    checkpoint::reach(Point::AfterCreate);
                    info!("{kind} backup {id} of volume {} started", task.volume_id);
                    let incremental = kind == BackupKind::Incremental;
                    if self.mark_creating(task, &id, incremental, note).await? {
                        self.events.backup_create_start(task, &id.0, incremental);
                    } else {
                        // Staffeln made it: recorded as its own (a row beside
                        // the marker), so that retention rotates it like any
                        // other instead of leaving it unowned for ever.
                        let row = NewBackup {
                            backup_id: id.0.clone(),
                            project_id: task.project_id.clone(),
                            volume_id: task.volume_id.clone(),
                            instance_id: task.instance_id.clone(),
                            backup_completed: 0,
                            incremental: kind == BackupKind::Incremental,
                        };
                        let recorded = self.db_call(move |conn| backups::insert(conn, &row)).await;
                        warn!(
                            "backup {id} of volume {} was created for task {} after another conductor took the task \
                             over; if that conductor made its own backup, this one is a duplicate ({}; it carries {} \
                             and is rotated by retention)",
                            task.volume_id,
                            task.task_id,
                            match &recorded {
                                Ok(_) => "recorded as Staffeln's".to_owned(),
                                Err(err) => format!("not recorded: {err}"),
                            },
                            AUTOMATED_KEY
                        );
                    }
                    return Ok(());
                }
                Err(err) => err,
            };
            match classify_create_error(&err, &project) {
                CreateFailure::NeedsFull if kind == BackupKind::Incremental => {
                    note = Some("full instead of incremental: Cinder found no backup to build on".to_owned());
                    kind = BackupKind::Full;
                }
                CreateFailure::NeedsFull => {
                    return self.finish_claimed(task, TaskState::Failed, &err.to_string()).await;
                }
                CreateFailure::Busy(reason) => {
                    info!("volume {} waits for the next cycle: {reason}", task.volume_id);
                    return self.finish_claimed(task, TaskState::Waiting, &reason).await;
                }
                CreateFailure::Failed(reason) => {
                    let acted = create_may_have_acted(&err);
                    if let Some(wait) = retry_wait(&policy, &err, attempt, started.elapsed()) {
                        warn!(
                            "creating the backup of volume {} failed, retrying in {} ms{}: {err}",
                            task.volume_id,
                            wait.as_millis(),
                            if acted { " after looking for it (Cinder may have made it)" } else { "" }
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        look_first |= acted;
                        continue;
                    }
                    if acted || look_first {
                        // The last answer does not say whether Cinder made it.
                        if let Ok(Some(found)) = find_task_backup(&os, task).await {
                            info!("task {} adopts backup {} after its create failed: {err}", task.task_id, found.id);
                            return self.mark_creating(task, &found.id, found.is_incremental, note).await.map(|_| ());
                        }
                    }
                    let reason =
                        if attempt > 0 { format!("{reason} (after {} attempts)", attempt + 1) } else { reason };
                    warn!("backup of volume {} failed: {reason}", task.volume_id);
                    return self.finish_claimed(task, TaskState::Failed, &reason).await;
                }
            }
        }
    }

    /// Whether this conductor still holds `task`'s claim with its token;
    /// extends the claim when it does.
    async fn confirm_claim(&self, task: &TaskRow) -> Result<bool, ConductorError> {
        let (id, holder, token) = (task.id, self.holder.clone(), task.claim_token());
        let (now, ttl) = (self.clock.db_now(), self.settings.claim_timeout);
        self.db_call(move |conn| tasks::confirm_claim(conn, id, &holder, token, now, ttl)).await
    }

    /// Records the create under the claim's token; false when the claim was
    /// lost.
    async fn mark_creating(
        &self,
        task: &TaskRow,
        backup: &BackupId,
        incremental: bool,
        note: Option<String>,
    ) -> Result<bool, ConductorError> {
        let (id, holder, token, backup) = (task.id, self.holder.clone(), task.claim_token(), backup.0.clone());
        let now = self.clock.db_now();
        let kept = self
            .db_call(move |conn| {
                tasks::mark_creating(conn, id, &holder, token, &backup, incremental, note.as_deref(), now)
            })
            .await?;
        if !kept {
            warn!("task {} was taken over by another conductor before its backup was recorded", task.task_id);
        }
        Ok(kept)
    }

    /// Ends a claimed task under the claim's token.
    async fn finish_claimed(&self, task: &TaskRow, state: TaskState, reason: &str) -> Result<(), ConductorError> {
        let (id, holder, token, text) = (task.id, self.holder.clone(), task.claim_token(), reason.to_owned());
        let now = self.clock.db_now();
        let ended =
            self.db_call(move |conn| tasks::finish_claimed(conn, id, &holder, token, state, &text, now)).await?;
        if !ended {
            info!("task {} was taken over by another conductor; its outcome here is not recorded", task.task_id);
        } else if state == TaskState::Failed {
            self.events.backup_create_error(task, reason);
        }
        Ok(())
    }

    /// Ends a task whose backup was created (`creating` or `unfinished`).
    async fn finish(&self, task: &TaskRow, state: TaskState, reason: &str) -> Result<bool, ConductorError> {
        let (id, text, now) = (task.id, reason.to_owned(), self.clock.db_now());
        let from = [TaskState::Creating, TaskState::Unfinished];
        let ended = self.db_call(move |conn| tasks::finish(conn, id, &from, state, &text, now)).await?;
        if ended && state == TaskState::Failed {
            self.events.backup_create_error(task, reason);
        }
        Ok(ended)
    }

    /// Checks the backups being created (and those their cycles stopped
    /// waiting for): records the available ones, fails the ones in error,
    /// stops waiting for (or, when asked, cancels) the ones past
    /// `backup_cycle_timeout`, reports the ones that look stuck, sets
    /// `last-backup-time` on servers whose volumes are all done, and closes
    /// finished cycles. Returns how many tasks ended.
    pub async fn poll_once(&self) -> Result<usize, ConductorError> {
        self.poll(None).await
    }

    /// [`Conductor::poll_once`] as the loops run it: the backups are listed
    /// only by the conductor that takes the [`POLL_TURN`] (one per interval
    /// among all conductors), every [`Conductor::poll_every`]; stamps and
    /// cycles are seen to on every call.
    pub async fn poll_in_turn(&self) -> Result<usize, ConductorError> {
        self.poll(Some(self.poll_every())).await
    }

    /// What a loop woken by an event (a Cinder event that ended a task, an
    /// on-demand trigger) does before it refills the slots: stamps and
    /// cycles, no list call.
    pub async fn tend(&self) -> Result<(), ConductorError> {
        self.stamp_servers().await?;
        self.close_cycles().await
    }

    /// How often the backups being created are listed: `poll_interval`, or
    /// `[cinder_notifications] fallback_poll_interval` while Cinder's
    /// backup events arrive (one was handled within that time).
    pub fn poll_every(&self) -> Duration {
        let poll = Duration::from_std(self.settings.poll_interval).unwrap_or(Duration::seconds(10));
        match (&self.settings.cinder_events, self.backup_events_seen_at()) {
            (Some(events), Some(seen)) if self.clock.now() - seen < events.fallback_poll => {
                events.fallback_poll.max(poll)
            }
            _ => poll,
        }
    }

    async fn poll(&self, turn: Option<Duration>) -> Result<usize, ConductorError> {
        let watched =
            self.db_call(|conn| tasks::in_states(conn, &[TaskState::Creating, TaskState::Unfinished])).await?;
        let mut ended = 0;
        if !watched.is_empty() {
            let mine = match turn {
                None => true,
                Some(every) => self.take_turn(POLL_TURN, every).await?,
            };
            if mine {
                ended += self.check_backups(watched).await?;
            }
        }
        self.stamp_servers().await?;
        self.close_cycles().await?;
        Ok(ended)
    }

    async fn check_backups(&self, watched: Vec<TaskRow>) -> Result<usize, ConductorError> {
        checkpoint::reach(Point::Polling);
        let now = self.clock.now();
        let (given_up, recent): (Vec<&TaskRow>, Vec<&TaskRow>) =
            watched.iter().partition(|t| t.task_state() == TaskState::Unfinished);
        let mut ended = 0;
        let mut one_by_one: Vec<&TaskRow> = Vec::new();
        if !recent.is_empty() {
            // One newest-first list of every status (usually one page), read
            // only as far back as the oldest of them started: what is still
            // creating, what became available and what failed, in one call.
            let mut left: HashMap<&str, &TaskRow> = recent.iter().map(|t| (t.backup_id.as_str(), *t)).collect();
            let oldest = recent.iter().filter_map(|t| t.started_at).min().map(|t| t.and_utc()).unwrap_or(now);
            let horizon = oldest - Duration::minutes(5);
            let mut stream = self.os.backups(&BackupFilter::default());
            while let Some(backup) = stream.try_next().await? {
                if let Some(task) = left.remove(backup.id.0.as_str()) {
                    ended += usize::from(match backup.status {
                        BackupStatus::Creating => self.judge_running(task, &backup, false, now).await?,
                        _ => self.record(task, &backup).await?,
                    });
                }
                if left.is_empty() || backup.created_at < horizon {
                    break;
                }
            }
            // Deleted meanwhile, listed out of order: asked one by one.
            one_by_one.extend(left.into_values());
        }
        if !given_up.is_empty() {
            // Few, and maybe started long ago: those still creating are in
            // the list of creating backups; the others are asked one by one,
            // not found by reading the lists back to when they started.
            let still: HashMap<String, Backup> = self
                .os
                .backups(&BackupFilter { status: Some(BackupStatus::Creating), ..BackupFilter::default() })
                .map_ok(|b| (b.id.0.clone(), b))
                .try_collect()
                .await?;
            for task in given_up {
                match still.get(&task.backup_id) {
                    Some(backup) => ended += usize::from(self.judge_running(task, backup, true, now).await?),
                    None => one_by_one.push(task),
                }
            }
        }
        for task in one_by_one {
            match self.os.backup(&BackupId(task.backup_id.clone())).await {
                Ok(backup) => ended += usize::from(self.record(task, &backup).await?),
                Err(err) if err.last().is_not_found() => {
                    let reason =
                        format!("backup {} disappeared from Cinder while it was being created", task.backup_id);
                    warn!(task.id = %task.task_id, volume.id = %task.volume_id, "{reason}");
                    ended += usize::from(self.finish(task, TaskState::Failed, &reason).await?);
                }
                Err(err) => warn!("cannot read backup {}: {err}", task.backup_id),
            }
        }
        Ok(ended)
    }

    /// Applies the waiting decision to a backup Cinder is still creating;
    /// true when the task ended (stopped waiting or cancelled).
    async fn judge_running(
        &self,
        task: &TaskRow,
        backup: &Backup,
        given_up: bool,
        now: chrono::DateTime<Utc>,
    ) -> Result<bool, ConductorError> {
        let wait = self.settings.wait;
        let started_at = task.started_at.map(|s| s.and_utc()).unwrap_or(now);
        let size_gb = u64::try_from(task.size_gb).unwrap_or(0).max(backup.size_gb);
        let in_flight = InFlight { started_at, size_gb, given_up, stuck_reported: task.stuck_at.is_some() };
        let verdict = judge(&in_flight, &wait, now);
        if verdict.report_stuck {
            let id = task.id;
            let db_now = self.clock.db_now();
            if self.db_call(move |conn| tasks::mark_stuck(conn, id, db_now)).await? {
                let reason = stuck_reason(&task.backup_id, size_gb, now - started_at, wait.stuck_throughput_mib);
                warn!(task.id = %task.task_id, volume.id = %task.volume_id, project.id = %task.project_id, "{reason}");
                self.events.backup_create_stuck(task, &reason);
            }
        }
        match verdict.action {
            WaitAction::Wait => Ok(false),
            WaitAction::GiveUp => {
                let reason = give_up_reason(&task.backup_id, wait.timeout);
                let (id, text, db_now) = (task.id, reason.clone(), self.clock.db_now());
                let ended = self.db_call(move |conn| tasks::give_up_waiting(conn, id, &text, db_now)).await?;
                if ended {
                    warn!(task.id = %task.task_id, volume.id = %task.volume_id, "{reason}");
                    self.events.backup_create_unfinished(task, &reason);
                }
                Ok(ended)
            }
            WaitAction::Cancel => self.cancel(task).await,
        }
    }

    /// Records a finished backup; true when the task ended.
    pub(crate) async fn record(&self, task: &TaskRow, backup: &Backup) -> Result<bool, ConductorError> {
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
                let late = task.task_state() == TaskState::Unfinished;
                let note = late.then(|| {
                    format!(
                        "finished after its cycle stopped waiting for it (backup_cycle_timeout {})",
                        super::waiting::human(self.settings.wait.timeout)
                    )
                });
                let (id, now) = (task.id, self.clock.db_now());
                let done = self.db_call(move |conn| tasks::complete(conn, id, &row, note.as_deref(), now)).await?;
                if done {
                    info!(task.id = %task.task_id, volume.id = %task.volume_id, "backup {} of volume {} is available{}", backup.id, task.volume_id, if late { ", after its cycle stopped waiting: recorded now" } else { "" });
                    self.events.backup_create_end(task, backup);
                    if late {
                        let cycle = task.cycle_id.clone();
                        self.db_call(move |conn| stamps::reopen(conn, &cycle, now)).await?;
                    }
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
                self.finish(task, TaskState::Failed, &reason).await
            }
            _ => Ok(false),
        }
    }

    /// `backup_cancel_on_timeout`: a backup past `backup_cycle_timeout` is
    /// cancelled in Cinder (force-delete) and its task fails; the next cycle
    /// tries again.
    async fn cancel(&self, task: &TaskRow) -> Result<bool, ConductorError> {
        let timeout = super::waiting::human(self.settings.wait.timeout);
        let reason = match self.os.force_delete_backup(&BackupId(task.backup_id.clone())).await {
            Ok(()) => format!(
                "backup {} did not finish within backup_cycle_timeout ({timeout}); cancelled (force-deleted) as \
                 backup_cancel_on_timeout asks",
                task.backup_id
            ),
            Err(err) => format!(
                "backup {} did not finish within backup_cycle_timeout ({timeout}); cancelling it as \
                 backup_cancel_on_timeout asks failed: {err}",
                task.backup_id
            ),
        };
        warn!(task.id = %task.task_id, volume.id = %task.volume_id, "{reason}");
        let (id, text, now) = (task.id, reason.clone(), self.clock.db_now());
        let ended = self
            .db_call(move |conn| tasks::finish(conn, id, &[TaskState::Creating], TaskState::Failed, &text, now))
            .await?;
        if ended {
            self.events.backup_create_error(task, &reason);
        }
        Ok(ended)
    }

    /// Writes `last-backup-time` to the servers their cycles owe it to (every
    /// volume attached to the server backed up), retrying failed writes on
    /// later polls and giving up (reported in the digest) as
    /// [`super::stamps`] says.
    async fn stamp_servers(&self) -> Result<(), ConductorError> {
        let now = self.clock.now();
        let db_now = self.clock.db_now();
        // Page by page, so that after a large cycle (thousands of servers
        // owed at once) only a page of stamps and their tasks is in memory.
        let mut after = 0;
        loop {
            let page = self.db_call(move |conn| stamps::ready(conn, db_now, after, STAMP_PAGE)).await?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.id;
            let full = page.len() as i64 == STAMP_PAGE;
            self.stamp_page(&page, now, db_now).await?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Decides and writes one page of stamps, reading only the tasks of the
    /// page's volumes.
    async fn stamp_page(
        &self,
        page: &[StampRow],
        now: chrono::DateTime<Utc>,
        db_now: chrono::NaiveDateTime,
    ) -> Result<(), ConductorError> {
        let mut volumes_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for stamp in page {
            volumes_of
                .entry(stamp.cycle_id.clone())
                .or_default()
                .extend(stamp.volumes().into_iter().map(str::to_owned));
        }
        // Per cycle, each volume's task (one per volume and cycle).
        let mut outcomes: HashMap<String, HashMap<String, (TaskState, Option<chrono::NaiveDateTime>)>> = HashMap::new();
        for (cycle, volumes) in volumes_of {
            for chunk in volumes.chunks(STAMP_PAGE as usize) {
                let (cycle_id, chunk) = (cycle.clone(), chunk.to_vec());
                let rows = self
                    .db_call(move |conn| {
                        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
                        tasks::outcomes(conn, &cycle_id, &ids)
                    })
                    .await?;
                let of_cycle = outcomes.entry(cycle.clone()).or_default();
                for (volume, state, finished) in rows {
                    of_cycle.insert(volume, (TaskState::parse(&state).unwrap_or(TaskState::Failed), finished));
                }
            }
        }
        let mut writes = Vec::new();
        for stamp in page {
            let mine: Vec<VolumeOutcome<'_>> = stamp
                .volumes()
                .into_iter()
                .filter_map(|v| {
                    let (state, finished) = outcomes.get(&stamp.cycle_id)?.get(v)?;
                    Some(VolumeOutcome { volume_id: v, state: *state, finished_at: finished.map(|f| f.and_utc()) })
                })
                .collect();
            match owed(&mine) {
                Owed::Wait => {}
                Owed::NotOwed { reason } => {
                    let id = stamp.id;
                    self.db_call(move |c| stamps::end(c, id, stamps::NOT_OWED, None, Some(&reason), db_now)).await?;
                }
                Owed::Write { value } => writes.push((stamp, value)),
            }
        }
        // A few writes at once: after a large cycle, thousands are due.
        for batch in writes.chunks(STAMP_CONCURRENCY) {
            let results =
                futures_util::future::join_all(batch.iter().map(|(stamp, value)| self.write_stamp(stamp, value, now)))
                    .await;
            results.into_iter().collect::<Result<(), ConductorError>>()?;
        }
        Ok(())
    }

    async fn write_stamp(
        &self,
        stamp: &StampRow,
        value: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), ConductorError> {
        let (id, seen, db_now) = (stamp.id, stamp.attempts, self.clock.db_now());
        if !self.db_call(move |c| stamps::take_attempt(c, id, seen, db_now, STAMP_HOLD)).await? {
            return Ok(()); // another conductor is writing it
        }
        let key = &self.settings.last_backup_key;
        let server = ServerId(stamp.server_id.clone());
        let server_id = stamp.server_id.clone();
        let newest = self.db_call(move |c| stamps::newest_written(c, &server_id)).await?;
        if superseded(value, newest.as_deref()) {
            let reason = format!("{key} of server {server} is already {}", newest.unwrap_or_default());
            self.db_call(move |c| stamps::end(c, id, stamps::SUPERSEDED, None, Some(&reason), db_now)).await?;
            return Ok(());
        }
        match self.os.set_server_metadata(&server, key, value).await {
            Ok(()) => {
                info!(server.id = %server, "server {server}: {key} = {value}");
                let value = value.to_owned();
                self.db_call(move |c| stamps::end(c, id, stamps::DONE, Some(&value), None, db_now)).await?;
            }
            Err(err) => {
                let failure =
                    classify_write_error(err.last().status(), err.last().message().unwrap_or(&err.to_string()));
                match after_failure(&failure, seen + 1, now) {
                    AfterFailure::RetryAt(at) => {
                        let reason = format!("setting {key} failed, retried at {}: {err}", at.to_rfc3339());
                        warn!(server.id = %server, "server {server}: {reason}");
                        // As the database stores it, comparable with `db_now`.
                        let at = at.naive_utc().trunc_subsecs(6);
                        self.db_call(move |c| stamps::retry_at(c, id, at, &reason, db_now)).await?;
                    }
                    AfterFailure::GiveUp(reason) => {
                        let reason = format!("{key} could not be set: {reason}");
                        warn!(server.id = %server, project.id = %stamp.project_id, "server {server}: {reason}");
                        self.db_call(move |c| stamps::end(c, id, stamps::FAILED, None, Some(&reason), db_now)).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Marks cycles finished once none of their tasks is still active.
    async fn close_cycles(&self) -> Result<(), ConductorError> {
        let open = self.db_call(|conn| tasks::open_cycles(conn, "backup")).await?;
        for cycle in open {
            // Asked of the database on every poll; the rows are read once,
            // when the cycle closes (at 10,000 volumes they are megabytes).
            let id = cycle.id.clone();
            if self.db_call(move |conn| tasks::cycle_has_active(conn, &id)).await? {
                continue;
            }
            let id = cycle.id.clone();
            let rows = self.db_call(move |conn| tasks::of_cycle(conn, &id)).await?;
            if rows.iter().any(|t| t.task_state().is_active()) {
                continue; // a task was planned again in between
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for row in &rows {
                *counts.entry(row.state.as_str()).or_default() += 1;
            }
            let summary = counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
            let zones = self.zone_caps().await;
            let used = utilisation(&rows, cycle.started_at, self.clock.db_now(), self.settings.limits, &zones);
            info!(cycle.id = %cycle.id, "backup cycle {} finished: {summary}; {used}", cycle.id);
            let (id, text, ratio, at) = (cycle.id.clone(), summary.clone(), used.ratio(), self.clock.db_now());
            self.db_call(move |conn| {
                tasks::finish_cycle(conn, &id, &text, at)?;
                ratio.map_or(Ok(()), |r| tasks::set_slot_utilisation(conn, &id, r))
            })
            .await?;
            self.events.cycle_end(&cycle, &counts, &summary);
        }
        Ok(())
    }
}

/// How full the cycle that started at `started` kept its slots: the tasks
/// whose backups were created count from the create to when their end was
/// recorded; the cycle lasts until the last of those ends (`now` when none).
fn utilisation(
    rows: &[TaskRow],
    started: chrono::NaiveDateTime,
    now: chrono::NaiveDateTime,
    limits: super::limits::Limits,
    zones: &ZoneCaps,
) -> Utilisation {
    let ran: Vec<&TaskRow> = rows.iter().filter(|r| r.started_at.is_some() && r.finished_at.is_some()).collect();
    let seconds = |d: Duration| d.num_milliseconds().max(0) as f64 / 1000.0;
    let busy_slot_seconds = ran.iter().filter_map(|r| Some(seconds(r.finished_at? - r.started_at?))).sum::<f64>();
    let end = ran.iter().filter_map(|r| r.finished_at).max().unwrap_or(now);
    let ran: Vec<Slot<'_>> = ran.into_iter().map(slot).collect();
    let slots = most_at_once(&ran, limits, zones);
    Utilisation { busy_slot_seconds, slots, cycle_seconds: seconds(end - started) }
}

/// The tasks as the limits see them.
fn slots(rows: &[TaskRow]) -> Vec<Slot<'_>> {
    rows.iter().map(slot).collect()
}

fn slot(r: &TaskRow) -> Slot<'_> {
    Slot { id: r.id, project_id: &r.project_id, availability_zone: r.availability_zone.as_deref() }
}

/// The create request of a task.
fn backup_request(task: &TaskRow, kind: BackupKind) -> BackupRequest {
    let mut request = BackupRequest::new(VolumeId(task.volume_id.clone()));
    request.name = Some(task.backup_name.clone());
    request.description = Some(format!("Automated backup by Staffeln (task {})", task.task_id));
    request.force = task.force_backup;
    request.kind = kind;
    request.metadata = BTreeMap::from([
        (AUTOMATED_KEY.to_owned(), AUTOMATED_VALUE.to_owned()),
        (TASK_KEY.to_owned(), task.task_id.clone()),
        (INSTANCE_KEY.to_owned(), task.instance_id.clone()),
    ]);
    request
}

/// The backup an earlier attempt of `task` created, if any (one list call,
/// filtered by volume, in the volume's project).
async fn find_task_backup(os: &OpenStack, task: &TaskRow) -> Result<Option<Backup>, OpenStackError> {
    let filter = BackupFilter { volume_id: Some(VolumeId(task.volume_id.clone())), ..BackupFilter::default() };
    let mut stream = os.backups(&filter);
    while let Some(backup) = stream.try_next().await? {
        if backup.task_id() == Some(task.task_id.as_str()) {
            return Ok(Some(backup));
        }
    }
    Ok(None)
}

impl Conductor {
    /// Plans a cycle when one is due, then starts and checks backups until
    /// nothing is in flight or `deadline` passes (tests, the demo).
    pub async fn run_until_idle(&self, deadline: std::time::Duration) -> Result<(), ConductorError> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            self.work_once().await?;
            self.poll_once().await?;
            let active = self.db_call(tasks::active_volume_ids).await?;
            if active.is_empty() || tokio::time::Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50).min(self.settings.poll_interval)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> OpenStackError {
        OpenStackError::Api {
            method: "POST".into(),
            url: "http://cinder/v3/p/backups".into(),
            status,
            fault: None,
            message: "x".into(),
            request_id: None,
        }
    }

    #[test]
    fn only_server_errors_and_lost_answers_may_hide_a_created_backup() {
        for (status, acted) in [(500, true), (502, true), (503, true), (504, true), (400, false), (413, false)] {
            assert_eq!(create_may_have_acted(&api(status)), acted, "{status}");
        }
        assert!(!create_may_have_acted(&OpenStackError::Config("x".into())));
    }
}

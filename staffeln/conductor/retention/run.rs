//! One retention run by the leader of the `retention-cycle` lease.
//! Take the lease, check a run is due, read what Cinder and the database
//! hold ([`super::inventory`]), forget the `backup_data` rows whose backups are gone, decide with
//! [`super::plan::plan`], record every decision in `retention_audit`,
//! then delete, wave by wave (a chain newest-first), up to
//! `max_concurrent_deletes` at once, and record what came of each delete.
//!
//! Nothing here decides what to keep. What it adds is fail-closed I/O:
//! * a listing that fails ends the run before anything is deleted;
//! * a volume missing from the all-projects list is "gone" only when a listing
//!   in its own project agrees;
//! * a row is forgotten only when it is older than the listing and Cinder
//!   answers 404 for its backup;
//! * Cinder's "Incremental backups exist", 5xx and other refusals leave the
//!   backup for the next run (and the older backups of its chain with it);
//!   they do not fail the run;
//! * the lease is renewed before each wave; a run that lost it stops deleting.
//!
//! [`Conductor::retention_preview`] runs the same reading and deciding with
//! no lease and no writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use tracing::{debug, info, warn};

use super::gone::{DeleteEvents, log_ended, next_poll, still_waiting};
use super::inventory::Listing;
use super::plan::{RetentionAction, RetentionDecision, RetentionPlan, plan, stale_rows};
use super::settings::RetentionSettings;
use crate::conductor::checkpoint::{self, Point};
use crate::conductor::error::ConductorError;
use crate::conductor::lease::{LeaseHeld, RETENTION_LEASE};
use crate::conductor::node::{Conductor, naive};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::{backups, tasks};
use crate::objects::metadata::INSTANCE_KEY;
use crate::objects::{BackupId, BackupKind, BackupStatus, ProjectId, VolumeId};
use crate::openstack::{BackupFilter, OpenStackError};

/// `cycles.kind` of retention runs.
pub const RETENTION_KIND: &str = "retention";

/// What an attempt at a retention run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionOutcome {
    Ran(RetentionSummary),
    /// No run is due: another conductor ran it, or the schedule says later.
    NotDue,
    /// Another conductor holds the retention lease.
    Led(LeaseHeld),
    /// The lease went to another conductor before or during the run.
    LeaseLost,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    pub run_id: String,
    pub volumes: usize,
    pub kept: usize,
    pub skipped: usize,
    /// Deletes decided.
    pub to_delete: usize,
    /// Deletes Cinder accepted (or the backup was already gone).
    pub deleted: usize,
    /// Left for the next run (dependents, 5xx, busy, waits that ran out).
    pub deferred: usize,
    /// Refused for good reasons Staffeln cannot fix itself (e.g. no role).
    pub failed: usize,
    /// `backup_data` rows forgotten because Cinder no longer has the backup.
    pub rows_removed: usize,
    /// Rule values reported and ignored (invalid server metadata).
    pub warnings: Vec<String>,
}

/// What came of one delete.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Deleted,
    Gone,
    Deferred { code: &'static str, reason: String },
    Failed(String),
}

impl Outcome {
    fn audit(&self) -> (&'static str, &'static str, String) {
        match self {
            Outcome::Deleted => ("deleted", "delete_accepted", "Cinder accepted the delete".to_owned()),
            Outcome::Gone => ("gone", "already_gone", "Cinder no longer has the backup".to_owned()),
            Outcome::Deferred { code, reason } => ("deferred", code, reason.clone()),
            Outcome::Failed(reason) => ("failed", "delete_failed", reason.clone()),
        }
    }
}

/// How Cinder's answer to a delete is taken: nothing here fails the run.
fn classify_delete_error(err: &OpenStackError) -> Outcome {
    if err.is_not_found() {
        Outcome::Gone
    } else if err.is_conflict_with_dependents() {
        Outcome::Deferred {
            code: "has_dependents",
            reason: format!("Cinder refused: incremental backups exist for this backup; retried next run ({err})"),
        }
    } else if err.is_transient() {
        Outcome::Deferred { code: "cinder_error", reason: format!("Cinder failed; retried next run ({err})") }
    } else if err.status() == Some(400) || err.is_conflict() {
        Outcome::Deferred { code: "cinder_refused", reason: format!("Cinder refused; retried next run ({err})") }
    } else {
        Outcome::Failed(err.to_string())
    }
}

fn decision_entry(run_id: &str, d: &RetentionDecision, action: &str, code: &str, reason: String) -> NewAuditEntry {
    NewAuditEntry {
        run_id: run_id.to_owned(),
        backup_id: d.backup_id.0.clone(),
        volume_id: d.volume_id.0.clone(),
        project_id: d.project_id.0.clone(),
        backup_status: d.status.to_string(),
        backup_created_at: Some(naive(d.created_at)),
        action: action.to_owned(),
        reason_code: code.to_owned(),
        reason,
    }
}

impl Conductor {
    /// When the newest retention run started (shared by all conductors).
    pub async fn last_retention_start(&self) -> Result<Option<DateTime<Utc>>, ConductorError> {
        let row = self.db_call(|conn| tasks::latest_cycle(conn, RETENTION_KIND)).await?;
        Ok(row.map(|r| r.started_at.and_utc()))
    }

    /// Every backup of the volumes with a backup of Staffeln's (of `project`
    /// only, when given), with the decision a run would take now and why.
    /// Deletes nothing, writes nothing, takes no lease.
    pub async fn retention_preview(
        &self,
        settings: &RetentionSettings,
        project: Option<&ProjectId>,
    ) -> Result<Vec<RetentionDecision>, ConductorError> {
        let (inventory, _) = self.retention_inventory(project).await?;
        let planned = plan(&inventory, &settings.rules, INSTANCE_KEY, self.clock.now());
        for w in &planned.warnings {
            warn!("retention preview: {w}");
        }
        Ok(planned.decisions)
    }

    /// Runs retention if this conductor leads it (lease `retention-cycle`)
    /// and a run is due on `retention_schedule` / `retention_service_period`,
    /// or `force`. `None` when another conductor leads or no run is due.
    pub async fn run_retention(
        &self,
        settings: &RetentionSettings,
        force: bool,
    ) -> Result<Option<RetentionSummary>, ConductorError> {
        self.run_retention_at(settings, force, self.clock.now()).await
    }

    /// [`Conductor::run_retention`] with the rules' `now` given (tests and
    /// benchmarks age backups this way; the schedule uses the conductor's
    /// clock).
    pub async fn run_retention_at(
        &self,
        settings: &RetentionSettings,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<RetentionSummary>, ConductorError> {
        Ok(match self.try_retention(settings, force, now).await? {
            RetentionOutcome::Ran(summary) => Some(summary),
            _ => None,
        })
    }

    /// One attempt at a retention run, saying what came of it.
    pub async fn try_retention(
        &self,
        settings: &RetentionSettings,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<RetentionOutcome, ConductorError> {
        let token = match self.renew_retention_lease(settings).await? {
            Ok(token) => token,
            Err(held) => {
                info!(
                    "conductor {} leads retention (its lease runs until {}); not running it",
                    held.holder,
                    held.expires_at.to_rfc3339()
                );
                return Ok(RetentionOutcome::Led(held));
            }
        };
        let started = self.clock.now();
        if !force {
            let last = self.last_retention_start().await?;
            if settings.schedule.next_due(last, self.started_at).is_none_or(|at| at > started) {
                return Ok(RetentionOutcome::NotDue);
            }
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        let (holder, id) = (self.holder.clone(), run_id.clone());
        let opened = self
            .db_call(move |conn| {
                let header = tasks::PlanHeader {
                    lease: RETENTION_LEASE,
                    holder: &holder,
                    token,
                    cycle_id: &id,
                    kind: RETENTION_KIND,
                    started_at: naive(started),
                };
                tasks::insert_plan(conn, &header, &[])
            })
            .await?;
        if opened.is_none() {
            warn!("lost the retention lease before the run started");
            return Ok(RetentionOutcome::LeaseLost);
        }
        info!(run.id = %run_id, "retention run {run_id} started by {}", self.holder);
        let mut summary = RetentionSummary { run_id: run_id.clone(), ..RetentionSummary::default() };
        let pass = self.retention_pass(settings, token, now, &mut summary);
        let result = self.with_lease(RETENTION_LEASE, token, settings.lease_time, pass).await;
        let line = match &result {
            Some(Ok(())) => format!(
                "{} volumes: {} kept, {} skipped, {} to delete: {} deleted, {} deferred, {} failed; {} rows forgotten",
                summary.volumes,
                summary.kept,
                summary.skipped,
                summary.to_delete,
                summary.deleted,
                summary.deferred,
                summary.failed,
                summary.rows_removed
            ),
            Some(Err(err)) => format!("failed: {err}"),
            None => "stopped: another conductor took the retention lease".to_owned(),
        };
        let id = run_id.clone();
        let text = line.clone();
        let at = self.clock.db_now();
        self.db_call(move |conn| tasks::finish_cycle(conn, &id, &text, at)).await?;
        match result {
            Some(result) => result?,
            None => return Ok(RetentionOutcome::LeaseLost),
        }
        info!(run.id = %run_id, "retention run {run_id} finished: {line}");
        Ok(RetentionOutcome::Ran(summary))
    }

    /// Takes or renews the retention lease: the fencing token, or who holds it.
    async fn renew_retention_lease(
        &self,
        settings: &RetentionSettings,
    ) -> Result<Result<i64, LeaseHeld>, ConductorError> {
        self.take_lease(RETENTION_LEASE, settings.lease_time).await
    }

    async fn retention_pass(
        &self,
        settings: &RetentionSettings,
        token: i64,
        now: DateTime<Utc>,
        summary: &mut RetentionSummary,
    ) -> Result<(), ConductorError> {
        let run_id = summary.run_id.clone();
        let (inventory, listing) = self.retention_inventory(None).await?;
        summary.rows_removed = self.forget_stale_rows(settings, &run_id, &listing).await?;
        let RetentionPlan { decisions, warnings } = plan(&inventory, &settings.rules, INSTANCE_KEY, now);
        for w in &warnings {
            warn!(run.id = %run_id, "retention: {w}");
        }
        summary.warnings = warnings;
        summary.volumes = inventory.volumes.len();
        let mut entries = Vec::with_capacity(decisions.len());
        for d in &decisions {
            match d.action {
                RetentionAction::Keep => {
                    summary.kept += 1;
                    debug!(backup.id = %d.backup_id, volume.id = %d.volume_id, project.id = %d.project_id, "retention: keep backup {}: {}", d.backup_id, d.message);
                }
                RetentionAction::Skip => {
                    summary.skipped += 1;
                    info!(backup.id = %d.backup_id, volume.id = %d.volume_id, project.id = %d.project_id, "retention: skip backup {}: {}", d.backup_id, d.message);
                }
                RetentionAction::Delete => {
                    summary.to_delete += 1;
                    info!(backup.id = %d.backup_id, volume.id = %d.volume_id, project.id = %d.project_id, "retention: delete backup {} of volume {}: {}", d.backup_id, d.volume_id, d.message);
                }
            }
            entries.push(decision_entry(&run_id, d, d.action.as_str(), d.reason.code(), d.message.clone()));
        }
        self.db_call(move |conn| audit::insert(conn, &entries)).await?;
        let outcomes = self.delete_in_waves(settings, token, &run_id, &decisions).await?;
        let mut entries = Vec::with_capacity(outcomes.len());
        for (d, outcome) in &outcomes {
            match outcome {
                Outcome::Deleted => {
                    summary.deleted += 1;
                    self.events.backup_deleted(&crate::conductor::events::DeletedBackup {
                        backup_id: d.backup_id.0.clone(),
                        project_id: d.project_id.0.clone(),
                        volume_id: d.volume_id.0.clone(),
                        instance_id: None,
                        backup_name: d.backup_name.clone(),
                        incremental: Some(d.kind == BackupKind::Incremental),
                        reason: d.message.clone(),
                    });
                }
                Outcome::Gone => summary.deleted += 1,
                Outcome::Deferred { reason, .. } => {
                    summary.deferred += 1;
                    info!(backup.id = %d.backup_id, volume.id = %d.volume_id, "retention: backup {} left for the next run: {reason}", d.backup_id);
                }
                Outcome::Failed(reason) => {
                    summary.failed += 1;
                    warn!(backup.id = %d.backup_id, volume.id = %d.volume_id, project.id = %d.project_id, "retention: cannot delete backup {}: {reason}", d.backup_id);
                }
            }
            let (action, code, reason) = outcome.audit();
            entries.push(decision_entry(&run_id, d, action, code, reason));
        }
        self.db_call(move |conn| audit::insert(conn, &entries)).await?;
        Ok(())
    }

    /// Forgets `backup_data` rows of backups Cinder no longer has: not listed,
    /// recorded before the listing began, and 404 on a direct read.
    async fn forget_stale_rows(
        &self,
        settings: &RetentionSettings,
        run_id: &str,
        listing: &Listing,
    ) -> Result<usize, ConductorError> {
        if !listing.complete {
            return Ok(0);
        }
        let absent: Vec<String> =
            listing.rows.iter().filter(|id| !listing.listed.contains(&BackupId((*id).clone()))).cloned().collect();
        if absent.is_empty() {
            return Ok(0);
        }
        let recorded = self
            .db_call(move |conn| {
                let mut out = Vec::new();
                for id in absent {
                    if let Some(row) = backups::get(conn, &id)? {
                        out.push(row);
                    }
                }
                Ok(out)
            })
            .await?;
        let pairs: Vec<(String, chrono::NaiveDateTime)> =
            recorded.iter().map(|r| (r.backup_id.clone(), r.created_at)).collect();
        let stale: Vec<String> =
            stale_rows(&pairs, &listing.listed, listing.since).into_iter().map(str::to_owned).collect();
        let rows: HashMap<String, _> = recorded.into_iter().map(|r| (r.backup_id.clone(), r)).collect();
        // Asked in the row's own project, so that a service user without the
        // admin view (404 for other projects' backups) cannot forget rows.
        let confirmed: Vec<String> =
            futures_util::stream::iter(stale.into_iter().filter_map(|id| rows.get(&id).cloned()))
                .map(|row| self.confirm_row_gone(row))
                .buffer_unordered(settings.max_concurrent_deletes)
                .filter_map(std::future::ready)
                .collect()
                .await;
        if confirmed.is_empty() {
            return Ok(0);
        }
        let entries: Vec<NewAuditEntry> = confirmed
            .iter()
            .filter_map(|id| rows.get(id))
            .map(|r| NewAuditEntry {
                run_id: run_id.to_owned(),
                backup_id: r.backup_id.clone(),
                volume_id: r.volume_id.clone(),
                project_id: r.project_id.clone(),
                backup_status: "gone".to_owned(),
                backup_created_at: Some(r.created_at),
                action: "forget".to_owned(),
                reason_code: "backup_gone".to_owned(),
                reason: format!("Cinder no longer has backup {}; its backup_data row is removed", r.backup_id),
            })
            .collect();
        for id in &confirmed {
            info!(backup.id = %id, "retention: Cinder no longer has backup {id}; forgetting its row");
        }
        let removed = self
            .db_call(move |conn| {
                let mut n = 0;
                for id in &confirmed {
                    n += usize::from(backups::delete(conn, id)?);
                }
                audit::insert(conn, &entries)?;
                Ok(n)
            })
            .await?;
        Ok(removed)
    }

    /// Deletes wave by wave: wave n starts once the accepted deletes of the
    /// volumes' earlier waves are gone from Cinder. A volume with a delete
    /// that was not accepted, or not finished in time, keeps its later waves
    /// for the next run. The lease is renewed before each wave. When a wave
    /// waits for an earlier one and `[cinder_notifications]` is on, Cinder's
    /// `backup.delete.end` ends the wait ([`super::gone`]); its listener
    /// starts before the first delete and stops with the deletes.
    async fn delete_in_waves<'a>(
        &self,
        settings: &RetentionSettings,
        token: i64,
        run_id: &str,
        decisions: &'a [RetentionDecision],
    ) -> Result<Vec<(&'a RetentionDecision, Outcome)>, ConductorError> {
        let waits = decisions.iter().any(|d| d.action == RetentionAction::Delete && d.wave.is_some_and(|w| w > 0));
        let listener = if waits { self.listen_for_deletes(run_id).await } else { None };
        let outcomes = self.delete_waves(settings, token, decisions, listener.as_ref().map(|l| &l.events)).await;
        if let Some(listener) = listener {
            listener.stop().await;
        }
        outcomes
    }

    async fn delete_waves<'a>(
        &self,
        settings: &RetentionSettings,
        token: i64,
        decisions: &'a [RetentionDecision],
        events: Option<&DeleteEvents>,
    ) -> Result<Vec<(&'a RetentionDecision, Outcome)>, ConductorError> {
        let mut waves: BTreeMap<u32, Vec<&RetentionDecision>> = BTreeMap::new();
        for d in decisions.iter().filter(|d| d.action == RetentionAction::Delete) {
            waves.entry(d.wave.unwrap_or(0)).or_default().push(d);
        }
        let mut last_wave: HashMap<&VolumeId, u32> = HashMap::new();
        for (wave, items) in &waves {
            for d in items {
                let w = last_wave.entry(&d.volume_id).or_insert(*wave);
                *w = (*w).max(*wave);
            }
        }
        let deadline = Duration::from_std(settings.delete_timeout)
            .ok()
            .and_then(|d| self.clock.now().checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut blocked: HashMap<VolumeId, String> = HashMap::new();
        let mut outcomes = Vec::new();
        let mut in_flight: Vec<&RetentionDecision> = Vec::new();
        for (wave, items) in waves {
            if !in_flight.is_empty() {
                for (d, why) in self.wait_gone(settings, token, &in_flight, deadline, events).await? {
                    blocked.entry(d.volume_id.clone()).or_insert(why);
                }
                in_flight.clear();
            }
            let held = self.renew_retention_lease(settings).await?;
            let lease_lost = held != Ok(token);
            let mut ready = Vec::new();
            for d in items {
                if lease_lost {
                    let reason = "this conductor lost the retention lease; the next run decides again".to_owned();
                    outcomes.push((d, Outcome::Deferred { code: "lease_lost", reason }));
                } else if let Some(why) = blocked.get(&d.volume_id) {
                    let reason = format!("a newer backup of its chain is not deleted yet ({why}); retried next run");
                    outcomes.push((d, Outcome::Deferred { code: "chain_waiting", reason }));
                } else {
                    ready.push(d);
                }
            }
            if lease_lost {
                warn!("lost the retention lease before delete wave {wave}; stopping");
                continue;
            }
            // By index: a closure over references would make the run's future
            // not `Send` for every lifetime (rustc #64552), which the RPC
            // handler needs.
            let ready_ref = &ready;
            let results: Vec<(&RetentionDecision, Outcome)> = futures_util::stream::iter(0..ready.len())
                .map(|i| {
                    let d = ready_ref[i];
                    futures_util::FutureExt::map(self.delete_boxed(d), move |outcome| (d, outcome))
                })
                .buffer_unordered(settings.max_concurrent_deletes)
                .collect()
                .await;
            for (d, outcome) in results {
                let more = last_wave.get(&d.volume_id).is_some_and(|w| *w > wave);
                match &outcome {
                    Outcome::Deleted if more => in_flight.push(d),
                    Outcome::Deleted | Outcome::Gone => {}
                    Outcome::Deferred { .. } | Outcome::Failed(_) => {
                        blocked
                            .entry(d.volume_id.clone())
                            .or_insert_with(|| format!("backup {} was not deleted", d.backup_id));
                    }
                }
                outcomes.push((d, outcome));
            }
        }
        Ok(outcomes)
    }

    /// Whether the backup of a `backup_data` row is gone from Cinder (asked
    /// in the row's project); its id when it is.
    fn confirm_row_gone(
        &self,
        row: crate::db::models::BackupRow,
    ) -> futures_util::future::BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            let project = ProjectId(row.project_id.clone());
            let os = match self.os.for_project(&project) {
                Ok(os) => os,
                Err(err) => {
                    warn!(project.id = %project, "cannot check backup {} in project {project}; its row stays: {err}", row.backup_id);
                    return None;
                }
            };
            match os.backup(&BackupId(row.backup_id.clone())).await {
                Err(err) if err.is_not_found() => Some(row.backup_id.clone()),
                Ok(_) => None,
                Err(err) => {
                    warn!("cannot check whether backup {} still exists; its row stays: {err}", row.backup_id);
                    None
                }
            }
        })
    }

    /// [`Self::delete_one`] as a boxed future: a named lifetime keeps the
    /// retention run's future `Send` for the RPC handler.
    fn delete_boxed<'s>(&'s self, d: &'s RetentionDecision) -> futures_util::future::BoxFuture<'s, Outcome> {
        Box::pin(self.delete_one(d))
    }

    async fn delete_one(&self, d: &RetentionDecision) -> Outcome {
        checkpoint::reach(Point::RetentionDelete);
        // A plain delete goes through the backup's project, with a token
        // scoped there (the service user needs only `member`), so that Cinder
        // checks its dependents there and its `backup:delete` policy asks
        // staffeln-api, which allows Staffeln's service user; the default
        // handle when no such token is possible (an application credential).
        // Force-deleting a backup stuck in error_deleting is admin-only in
        // Cinder: it goes with the default handle's token, which discovery
        // already needs with the admin role.
        let result = if d.status == BackupStatus::ErrorDeleting {
            self.os.force_delete_backup(&d.backup_id).await
        } else {
            let os = self.os.for_project(&d.project_id).unwrap_or_else(|_| self.os.clone());
            os.delete_backup(&d.backup_id).await
        };
        match result {
            Ok(()) => Outcome::Deleted,
            Err(err) => classify_delete_error(&err),
        }
    }

    /// Waits until none of `pending` is `deleting` in Cinder any more (the
    /// list says so, or Cinder announced its `backup.delete.end` in
    /// `events`), or `deadline`; returns those still deleting, with why.
    /// Renews the lease. With events the list is read every
    /// `fallback_poll_interval` while they arrive ([`next_poll`]).
    async fn wait_gone<'a>(
        &self,
        settings: &RetentionSettings,
        token: i64,
        pending: &[&'a RetentionDecision],
        deadline: DateTime<Utc>,
        events: Option<&DeleteEvents>,
    ) -> Result<Vec<(&'a RetentionDecision, String)>, ConductorError> {
        let fallback = self.settings.cinder_events.as_ref().and_then(|c| c.fallback_poll.to_std().ok());
        let mut backoff = StdDuration::from_millis(20);
        let mut deleting: Option<HashSet<BackupId>> = None;
        let (mut last, mut polled) = (self.clock.now(), false);
        let mut announced = events.map(DeleteEvents::subscribe);
        loop {
            if let Some(rx) = announced.as_mut() {
                rx.borrow_and_update();
            }
            let gone = events.map(DeleteEvents::gone).unwrap_or_default();
            let left = still_waiting(pending, &gone, deleting.as_ref());
            if left.is_empty() {
                log_ended(pending, &gone);
                return Ok(Vec::new());
            }
            let now = self.clock.now();
            let timed_out = || {
                let why =
                    format!("still deleting after retention_delete_timeout ({} s)", settings.delete_timeout.as_secs());
                left.iter().map(|d| (*d, format!("backup {} {why}", d.backup_id))).collect()
            };
            if polled && now >= deadline {
                return Ok(timed_out());
            }
            let state = events.zip(fallback).map(|(e, f)| self.delete_events_now(e, f));
            let mut poll_at = next_poll(last, polled, backoff, state);
            if events.is_some() {
                // Events may end the wait before; the deadline's list decides.
                poll_at = poll_at.min(deadline);
            }
            if now >= poll_at {
                deleting = Some(
                    self.os
                        .backups(&BackupFilter { status: Some(BackupStatus::Deleting), ..BackupFilter::default() })
                        .map_ok(|b| b.id)
                        .try_collect()
                        .await?,
                );
                if polled {
                    backoff = (backoff * 2).min(settings.poll_interval.max(StdDuration::from_millis(20)));
                }
                (last, polled) = (self.clock.now(), true);
                continue;
            }
            if poll_at > deadline {
                return Ok(timed_out());
            }
            if self.renew_retention_lease(settings).await? != Ok(token) {
                return Ok(left.into_iter().map(|d| (d, "the retention lease was lost".to_owned())).collect());
            }
            match announced.as_mut() {
                Some(rx) => {
                    tokio::select! {
                        () = self.clock.sleep_until(poll_at) => {}
                        changed = rx.changed() => {
                            if changed.is_err() {
                                // The listener is gone: the list decides.
                                announced = None;
                            }
                        }
                    }
                }
                None => self.clock.sleep_until(poll_at).await,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> OpenStackError {
        OpenStackError::Api {
            method: "DELETE".into(),
            url: "http://cinder/v3/p/backups/b".into(),
            status,
            fault: None,
            message: message.into(),
            request_id: None,
        }
    }

    #[test]
    fn cinder_answers_to_a_delete_leave_the_backup_for_the_next_run_or_fail_it() {
        assert_eq!(classify_delete_error(&api(404, "Backup b could not be found.")), Outcome::Gone);
        let dependents = classify_delete_error(&api(400, "Invalid backup: Incremental backups exist for this backup."));
        assert!(matches!(dependents, Outcome::Deferred { code: "has_dependents", .. }), "{dependents:?}");
        for status in [500, 503, 429] {
            let o = classify_delete_error(&api(status, "boom"));
            assert!(matches!(o, Outcome::Deferred { code: "cinder_error", .. }), "{status}: {o:?}");
        }
        let busy = classify_delete_error(&api(400, "Invalid backup: Backup status must be available or error"));
        assert!(matches!(busy, Outcome::Deferred { code: "cinder_refused", .. }), "{busy:?}");
        assert!(matches!(classify_delete_error(&api(403, "Policy doesn't allow")), Outcome::Failed(_)));
    }
}

//! One backup cycle, run by the leader: take the lease, check the cycle is
//! still due, discover and plan while the lease is renewed, write the plan
//! under the lease's fencing token. Every decision is logged with its
//! reason; the tasks then wait in the shared queue for any conductor's
//! worker.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::plan::{Decision, plan};
use crate::conductor::checkpoint::{self, Point};
use crate::conductor::error::ConductorError;
use crate::conductor::lease::{BACKUP_LEASE, LeaseHeld};
use crate::conductor::node::{Conductor, naive};
use crate::db::stamps::NewStamp;
use crate::db::tasks;
use crate::objects::{BackupKind, ProjectId, Server, ServerId, TaskState};

/// What a planned cycle holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleSummary {
    pub cycle_id: String,
    pub backups: usize,
    pub skipped: usize,
    pub waiting: usize,
    pub failed: usize,
}

/// What an attempt at a backup cycle came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    Planned(CycleSummary),
    /// No cycle is due: another conductor planned it, or the schedule says later.
    NotDue,
    /// Another conductor holds the backup-cycle lease.
    Led(LeaseHeld),
    /// The lease went to another conductor while this one planned: the plan
    /// was dropped.
    LeaseLost,
}

impl CycleOutcome {
    pub fn planned(self) -> Option<CycleSummary> {
        match self {
            CycleOutcome::Planned(summary) => Some(summary),
            _ => None,
        }
    }
}

/// Which flagged servers an on-demand cycle plans; the default is all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupScope {
    pub project_id: Option<ProjectId>,
    pub server_id: Option<ServerId>,
}

impl BackupScope {
    pub fn admits(&self, server: &Server) -> bool {
        self.project_id.as_ref().is_none_or(|p| *p == server.project_id)
            && self.server_id.as_ref().is_none_or(|s| *s == server.id)
    }
}

impl Conductor {
    /// When the newest backup cycle started, from the database (shared by all
    /// conductors, so a restart or a new leader keeps the rhythm).
    pub async fn last_cycle_start(&self) -> Result<Option<chrono::DateTime<Utc>>, ConductorError> {
        let row = self.db_call(|conn| tasks::latest_cycle(conn, "backup")).await?;
        Ok(row.map(|r| r.started_at.and_utc()))
    }

    /// Runs one backup cycle if this conductor leads and a cycle is due (or
    /// `force`, for on-demand triggers). `None` when another conductor leads
    /// or the cycle is not due.
    pub async fn run_backup_cycle(&self, force: bool) -> Result<Option<CycleSummary>, ConductorError> {
        Ok(self.try_backup_cycle(force, &BackupScope::default()).await?.planned())
    }

    /// [`Conductor::run_backup_cycle`] planning only the servers `scope`
    /// admits (on-demand triggers for one project or server). The cycle
    /// counts as a cycle for the schedule all the same.
    pub async fn run_backup_cycle_in(
        &self,
        force: bool,
        scope: &BackupScope,
    ) -> Result<Option<CycleSummary>, ConductorError> {
        Ok(self.try_backup_cycle(force, scope).await?.planned())
    }

    /// One attempt at a backup cycle, saying what came of it: who leads when
    /// this conductor does not, whether it was due.
    pub async fn try_backup_cycle(&self, force: bool, scope: &BackupScope) -> Result<CycleOutcome, ConductorError> {
        let ttl = self.settings.lease_time;
        let token = match self.take_lease(BACKUP_LEASE, ttl).await? {
            Ok(token) => token,
            Err(held) => {
                info!(
                    "conductor {} leads backup cycles (its lease runs until {}); not planning",
                    held.holder,
                    held.expires_at.to_rfc3339()
                );
                return Ok(CycleOutcome::Led(held));
            }
        };
        let started = self.clock.now();
        if !force {
            let last = self.last_cycle_start().await?;
            let due = self.settings.backup_schedule.next_due(last, self.started_at).is_some_and(|at| at <= started);
            if !due {
                return Ok(CycleOutcome::NotDue);
            }
        }
        match self.with_lease(BACKUP_LEASE, token, ttl, self.plan_cycle(token, scope, started)).await {
            Some(outcome) => outcome,
            None => Ok(CycleOutcome::LeaseLost),
        }
    }

    /// Discovers, plans and writes one cycle that started at `started`.
    async fn plan_cycle(
        &self,
        token: i64,
        scope: &BackupScope,
        started: DateTime<Utc>,
    ) -> Result<CycleOutcome, ConductorError> {
        let cycle_id = uuid::Uuid::new_v4().to_string();
        info!(cycle.id = %cycle_id, "backup cycle {cycle_id} started by {}", self.holder);
        let mut fleet = self.discover().await?;
        fleet.servers.retain(|s| scope.admits(s));
        let planned = plan(&fleet, &self.settings.plan, started);
        checkpoint::reach(Point::Planning);
        let mut summary = CycleSummary { cycle_id: cycle_id.clone(), ..CycleSummary::default() };
        let mut new_tasks = Vec::with_capacity(planned.len());
        for p in &planned {
            let volume_name = p.volume_name.clone().unwrap_or_default();
            let mut task = tasks::NewTask {
                task_id: uuid::Uuid::new_v4().to_string(),
                state: TaskState::Planned,
                project_id: p.project_id.0.clone(),
                volume_id: p.volume_id.0.clone(),
                volume_name,
                instance_id: p.server_id.0.clone(),
                instance_name: p.server_name.clone(),
                incremental: false,
                backup_name: String::new(),
                force_backup: false,
                availability_zone: p.availability_zone.clone(),
                size_gb: i64::try_from(p.size_gb).unwrap_or(i64::MAX),
                note: None,
                reason: None,
            };
            match &p.decision {
                Decision::Backup { kind, name, force, note } => {
                    summary.backups += 1;
                    task.incremental = *kind == BackupKind::Incremental;
                    task.backup_name = name.clone();
                    task.force_backup = *force;
                    task.note = note.clone();
                    info!(volume.id = %p.volume_id, project.id = %p.project_id, "plan: {kind} backup of volume {} as {name}{}", p.volume_id, note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default());
                }
                Decision::Skip { reason } => {
                    summary.skipped += 1;
                    task.state = TaskState::Skipped;
                    task.reason = Some(reason.clone());
                    info!(volume.id = %p.volume_id, project.id = %p.project_id, "plan: volume {} skipped: {reason}", p.volume_id);
                }
                Decision::Wait { reason } => {
                    summary.waiting += 1;
                    task.state = TaskState::Waiting;
                    task.reason = Some(reason.clone());
                    info!(volume.id = %p.volume_id, project.id = %p.project_id, "plan: volume {} waits for the next cycle: {reason}", p.volume_id);
                }
                Decision::Fail { reason } => {
                    summary.failed += 1;
                    task.state = TaskState::Failed;
                    task.reason = Some(reason.clone());
                    warn!(volume.id = %p.volume_id, project.id = %p.project_id, "plan: volume {} cannot be backed up: {reason}", p.volume_id);
                }
            }
            new_tasks.push(task);
        }
        // Every flagged server is owed last-backup-time once all the volumes
        // attached to it are backed up, also those planned for another server.
        let stamps: Vec<NewStamp> = fleet
            .servers
            .iter()
            .filter(|s| !s.volume_ids.is_empty())
            .map(|s| NewStamp {
                server_id: s.id.0.clone(),
                server_name: s.name.clone(),
                project_id: s.project_id.0.clone(),
                volume_ids: s.volume_ids.iter().map(|v| v.0.clone()).collect(),
            })
            .collect();
        let holder = self.holder.clone();
        let id = cycle_id.clone();
        let written = self
            .db_call(move |conn| {
                let header = tasks::PlanHeader {
                    lease: BACKUP_LEASE,
                    holder: &holder,
                    token,
                    cycle_id: &id,
                    kind: "backup",
                    started_at: naive(started),
                };
                tasks::insert_plan_with_stamps(conn, &header, &new_tasks, &stamps)
            })
            .await?;
        if written.is_none() {
            warn!(cycle.id = %cycle_id, "lost the backup-cycle lease while planning; the plan was dropped");
            return Ok(CycleOutcome::LeaseLost);
        }
        info!(
            cycle.id = %cycle_id,
            "backup cycle {cycle_id} planned: {} backups, {} skipped, {} waiting, {} failed",
            summary.backups, summary.skipped, summary.waiting, summary.failed
        );
        Ok(CycleOutcome::Planned(summary))
    }
}

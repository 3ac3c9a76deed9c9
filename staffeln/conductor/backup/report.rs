//! The digests: after cycles finish, each project with results gets one
//! digest of them (and the operator one of all projects), no more often than
//! `report_period`. Results are marked reported only once their project's
//! digest was delivered; a digest that cannot be sent leaves its results for
//! the next attempt.
//!
//! A round of digests runs under the `report-round` lease (renewed while it
//! sends, released when it ends), so that of several conductors only one
//! sends at a time, and the next one sees the round recorded: one digest per
//! project and period however many conductors there are.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Duration;
use futures_util::TryStreamExt;
use tracing::{info, warn};

use crate::conductor::checkpoint::{self, Point};
use crate::conductor::error::ConductorError;
use crate::conductor::lease::REPORT_LEASE;
use crate::conductor::node::{Conductor, naive};
use crate::db::stamps::{self, StampRow};
use crate::db::tasks::{self, TaskRow};
use crate::db::{leases, reports};
use crate::notify::{BackupResult, Mailer, ProjectBackups, SkippedVolume, UnstampedServer, needs_member_emails};
use crate::objects::{BackupKind, ProjectId, TaskState};

/// What one round of digests did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportSummary {
    /// Projects whose digest was delivered (their results are now reported).
    pub delivered: Vec<String>,
    /// Projects whose digest failed, with the error; retried next time.
    pub failed: Vec<(String, String)>,
    /// Why nothing was sent, when nothing was.
    pub held_back: Option<String>,
}

/// Groups finished, unreported tasks, and servers whose `last-backup-time`
/// could not be set, by project into digest input (pure).
pub fn group_results(
    rows: &[TaskRow],
    unstamped: &[StampRow],
    names: &BTreeMap<String, String>,
) -> Vec<ProjectBackups> {
    let mut by_project: BTreeMap<&str, ProjectBackups> = BTreeMap::new();
    let new_project = |project_id: &str| ProjectBackups {
        project_id: project_id.to_owned(),
        project_name: names.get(project_id).cloned().unwrap_or_else(|| project_id.to_owned()),
        results: Vec::new(),
        skipped: Vec::new(),
        unstamped: Vec::new(),
        backups_quota: None,
        gigabytes_quota: None,
        member_emails: Vec::new(),
        assurance: None,
    };
    for row in rows {
        let entry = by_project.entry(row.project_id.as_str()).or_insert_with(|| new_project(&row.project_id));
        let state = row.task_state();
        match state {
            TaskState::Done | TaskState::Failed | TaskState::Unfinished => entry.results.push(BackupResult {
                server_id: row.instance_id.clone(),
                server_name: row.instance_name.clone(),
                volume_id: row.volume_id.clone(),
                volume_name: row.volume_name.clone(),
                backup_id: (!row.backup_id.is_empty()).then(|| row.backup_id.clone()),
                backup_name: row.backup_name.clone(),
                kind: if row.incremental { BackupKind::Incremental } else { BackupKind::Full },
                size_gb: u64::try_from(row.size_gb).unwrap_or(0),
                success: state == TaskState::Done,
                in_progress: state == TaskState::Unfinished,
                fail_reason: (state != TaskState::Done).then(|| {
                    let reason = row.reason.clone().unwrap_or_else(|| "no reason recorded".to_owned());
                    match row.stuck_at {
                        Some(at) if state == TaskState::Unfinished => format!(
                            "{reason}; it looked stuck at {} (slower than backup_stuck_throughput)",
                            at.and_utc().format("%Y-%m-%d %H:%M UTC")
                        ),
                        _ => reason,
                    }
                }),
            }),
            TaskState::Skipped | TaskState::Waiting => entry.skipped.push(SkippedVolume {
                server_id: row.instance_id.clone(),
                server_name: row.instance_name.clone(),
                volume_id: row.volume_id.clone(),
                volume_name: row.volume_name.clone(),
                reason: match (state, &row.reason) {
                    (TaskState::Waiting, Some(r)) => format!("retried next cycle: {r}"),
                    (_, Some(r)) => r.clone(),
                    (_, None) => "no reason recorded".to_owned(),
                },
            }),
            _ => {}
        }
    }
    for stamp in unstamped {
        let entry = by_project.entry(stamp.project_id.as_str()).or_insert_with(|| new_project(&stamp.project_id));
        entry.unstamped.push(UnstampedServer {
            server_id: stamp.server_id.clone(),
            server_name: stamp.server_name.clone(),
            reason: stamp.reason.clone().unwrap_or_else(|| "no reason recorded".to_owned()),
        });
    }
    by_project.into_values().collect()
}

impl Conductor {
    /// Sends the digests of finished cycles' unreported results, unless the
    /// last digest went out less than `report_period` ago (`force` ignores
    /// the period: on-demand reports), or another conductor is sending them
    /// now. `project` limits the round to one.
    pub async fn send_reports(
        &self,
        mailer: &Mailer,
        report_period: Duration,
        force: bool,
        project: Option<&ProjectId>,
    ) -> Result<ReportSummary, ConductorError> {
        let ttl = self.settings.lease_time;
        let token = match self.take_lease(REPORT_LEASE, ttl).await? {
            Ok(token) => token,
            Err(held) => {
                return Ok(ReportSummary {
                    held_back: Some(format!("conductor {} is sending digests", held.holder)),
                    ..Default::default()
                });
            }
        };
        let round =
            self.with_lease(REPORT_LEASE, token, ttl, self.report_round(mailer, report_period, force, project, token));
        let out = round.await;
        let (holder, now) = (self.holder.clone(), naive(self.clock.now()));
        if let Err(err) = self.db_call(move |c| leases::release_at(c, REPORT_LEASE, &holder, now)).await {
            warn!("cannot release the report-round lease; it expires on its own: {err}");
        }
        out.unwrap_or_else(|| {
            Ok(ReportSummary { held_back: Some("lost the report-round lease".into()), ..Default::default() })
        })
    }

    /// One round of digests, under the report-round lease.
    async fn report_round(
        &self,
        mailer: &Mailer,
        report_period: Duration,
        force: bool,
        project: Option<&ProjectId>,
        token: i64,
    ) -> Result<ReportSummary, ConductorError> {
        let now = self.clock.now();
        if !force
            && let Some(last) = self.db_call(reports::latest).await?
            && now - last.created_at.and_utc() < report_period
        {
            return Ok(ReportSummary { held_back: Some("within report_period".into()), ..Default::default() });
        }
        let open: HashSet<String> =
            self.db_call(|c| tasks::open_cycles(c, "backup")).await?.into_iter().map(|c| c.id).collect();
        let of = project.map(|p| p.0.clone());
        let rows = self.db_call(move |c| tasks::unreported_of_closed_cycles(c, of.as_deref())).await?;
        let mut unstamped = self.db_call(stamps::unreported_failures).await?;
        // A server that could not be stamped is reported with its cycle's
        // results: alone, before the cycle closes, it would take the round
        // (and the report period) from the cycle's own digest.
        unstamped.retain(|s| !open.contains(&s.cycle_id) && project.is_none_or(|p| p.as_str() == s.project_id));
        if rows.is_empty() && unstamped.is_empty() {
            return Ok(ReportSummary { held_back: Some("no unreported results".into()), ..Default::default() });
        }
        let names: BTreeMap<String, String> = match self.os.projects().map_ok(|p| (p.id.0, p.name)).try_collect().await
        {
            Ok(names) => names,
            Err(err) => {
                warn!("cannot read project names, digests use project ids: {err}");
                BTreeMap::new()
            }
        };
        let mut projects = group_results(&rows, &unstamped, &names);
        // The rows are now in `projects`; only their ids are kept, by project.
        let mut row_ids: HashMap<String, Vec<i64>> = HashMap::new();
        for row in rows {
            row_ids.entry(row.project_id).or_default().push(row.id);
        }
        let assurance = self.assurance_for_digest().await;
        for p in &mut projects {
            p.assurance = assurance.get(p.project_id.as_str()).cloned();
        }
        for p in &mut projects {
            let id = ProjectId(p.project_id.clone());
            match self.os.backup_quota(&id).await {
                Ok(q) => {
                    p.backups_quota = Some(q.backups);
                    p.gigabytes_quota = Some(q.gigabytes);
                }
                Err(err) => {
                    warn!(project.id = %id, "cannot read the backup quota of project {id} for its digest: {err}")
                }
            }
            if needs_member_emails(mailer.settings()) {
                p.member_emails = self.member_emails(&id).await;
            }
        }
        checkpoint::reach(Point::DigestSend);
        // Each digest is marked as reported as soon as it is delivered, and
        // only while this conductor still holds the round: a conductor that
        // dies (or is paused) mid-round leaves only the undelivered ones to
        // the next round, and one that lost the lease sends nothing more.
        let mut summary = ReportSummary::default();
        for project in projects.iter().filter(|p| p.has_backups()) {
            let (holder, name) = (self.holder.clone(), REPORT_LEASE);
            if !self.db_call(move |c| leases::holds(c, name, &holder, token)).await? {
                warn!("lost the report-round lease during the round; the other digests are left to its holder");
                return Ok(ReportSummary { held_back: Some("lost the report-round lease".into()), ..summary });
            }
            let p = mailer.send_project(project, now).await;
            checkpoint::reach(Point::DigestSent);
            match p.result {
                Ok(_) => {
                    let ids = row_ids.remove(&p.project_id).unwrap_or_default();
                    self.db_call(move |c| tasks::mark_reported(c, &ids)).await?;
                    let stamp_ids: Vec<i64> =
                        unstamped.iter().filter(|s| s.project_id == p.project_id).map(|s| s.id).collect();
                    if !stamp_ids.is_empty() {
                        let now = self.clock.db_now();
                        self.db_call(move |c| stamps::mark_reported(c, &stamp_ids, now)).await?;
                    }
                    summary.delivered.push(p.project_id);
                }
                Err(err) => summary.failed.push((p.project_id, err.to_string())),
            }
        }
        // Projects with only skipped volumes get no digest: their rows are done with.
        let quiet: Vec<i64> = projects
            .iter()
            .filter(|p| !p.has_backups())
            .flat_map(|p| row_ids.remove(&p.project_id).unwrap_or_default())
            .collect();
        if !quiet.is_empty() {
            self.db_call(move |c| tasks::mark_reported(c, &quiet)).await?;
        }
        let operator = if summary.delivered.is_empty() && summary.failed.is_empty() {
            None
        } else {
            mailer.send_operator(&projects, now).await
        };
        if let Some(Err(err)) = &operator {
            warn!("the operator digest was not delivered: {err}");
        }
        if !summary.delivered.is_empty() {
            let sender = mailer.settings().sender_email.clone();
            let at = naive(self.clock.now());
            self.db_call(move |c| reports::insert_at(c, sender.as_deref(), at)).await?;
        }
        info!("digests: {} delivered, {} failed", summary.delivered.len(), summary.failed.len());
        Ok(summary)
    }

    /// E-mail addresses of the project's members (Keystone role assignments).
    async fn member_emails(&self, project: &ProjectId) -> Vec<String> {
        let assignments: Vec<_> = match self.os.role_assignments(project).try_collect().await {
            Ok(a) => a,
            Err(err) => {
                warn!(project.id = %project, "cannot list the members of project {project}: {err}");
                return Vec::new();
            }
        };
        let users: HashSet<_> = assignments.into_iter().map(|a| a.user_id).collect();
        let mut emails = Vec::new();
        for user in users {
            match self.os.user(&user).await {
                Ok(u) => emails.extend(u.email),
                Err(err) => warn!("cannot read user {user}: {err}"),
            }
        }
        emails.sort();
        emails
    }
}

//! The assessment: reads the fleet (the backup half's discovery), then
//! decides RPO compliance and quota projections with the pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::quota::{self, Growth, Projection, QuotaInput};
use super::rpo::{self, Compliance, RpoStatus, VolumeBackups};
use crate::conductor::backup::plan::Fleet;
use crate::conductor::error::ConductorError;
use crate::conductor::node::Conductor;
use crate::conductor::schedule::Schedule;
use crate::db::assurance::{QuotaRow, RpoRow};
use crate::objects::metadata::is_set;
use crate::objects::{BackupStatus, ProjectId};

/// RPO compliance and quota projections at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub at: DateTime<Utc>,
    /// The expected period every volume is held to.
    pub expected: Duration,
    pub rpo: Vec<RpoStatus>,
    pub projections: Vec<Projection>,
}

impl Assessment {
    /// Over all projects.
    pub fn compliance(&self) -> Compliance {
        Compliance::of(&self.rpo)
    }

    /// Per project.
    pub fn compliance_by_project(&self) -> BTreeMap<ProjectId, Compliance> {
        let mut out: BTreeMap<ProjectId, Vec<&RpoStatus>> = BTreeMap::new();
        for s in &self.rpo {
            out.entry(s.project_id.clone()).or_default().push(s);
        }
        out.into_iter().map(|(p, list)| (p, Compliance::of(list))).collect()
    }

    /// The projections to warn about now.
    pub fn warnings(&self) -> impl Iterator<Item = &Projection> {
        self.projections.iter().filter(|p| p.warn)
    }
}

/// The time between two scheduled cycles from `now` on (a period, or the
/// gap between two cron firings); zero without a schedule.
pub fn schedule_period(schedule: &Schedule, now: DateTime<Utc>) -> Duration {
    let Some(first) = schedule.next_due(Some(now), now) else {
        return Duration::zero();
    };
    match schedule.next_due(Some(first), first) {
        Some(second) => second - first,
        None => Duration::zero(),
    }
}

impl Conductor {
    /// Reads the fleet and assesses it now (the conductor's clock), and
    /// stores the result for staffeln-api's /metrics.
    pub async fn assess(&self) -> Result<Assessment, ConductorError> {
        let fleet = self.discover().await?;
        let last_cycle = self
            .db_call(|c| crate::db::tasks::latest_finished_cycle(c, "backup"))
            .await?
            .and_then(|c| c.finished_at.map(|f| f - c.started_at));
        let a = self.assess_fleet(&fleet, self.clock.now(), last_cycle);
        let at = a.at.naive_utc();
        let rpo: Vec<RpoRow> = a
            .rpo
            .iter()
            .map(|s| RpoRow {
                project_id: s.project_id.0.clone(),
                volume_id: s.volume_id.0.clone(),
                last_success: s.last_success.map(|t| t.naive_utc()),
                within_rpo: s.within(),
                reason: s.miss.as_ref().map(|m| m.reason().chars().take(1024).collect()),
                assessed_at: at,
            })
            .collect();
        let quotas: Vec<QuotaRow> = a
            .projections
            .iter()
            .map(|p| QuotaRow {
                project_id: p.project_id.0.clone(),
                quota: p.exhausted.map(|(_, r)| r.as_str().to_owned()),
                exhausted_at: p.exhausted.map(|(t, _)| t.naive_utc()),
                warn: p.warn,
                assessed_at: at,
            })
            .collect();
        self.db_call(move |c| crate::db::assurance::replace(c, &rpo, &quotas)).await?;
        Ok(a)
    }

    /// Assesses a fleet read earlier: flagged volumes (not skipped) against
    /// the schedule's period plus `last_cycle`, the newest finished backup
    /// cycle's duration (see [`rpo::expected_period`]), and
    /// each project's quota against what a cycle adds (its flagged volumes)
    /// and what retention frees (Staffeln's backups at `retention_time`).
    pub fn assess_fleet(&self, fleet: &Fleet, now: DateTime<Utc>, last_cycle: Option<Duration>) -> Assessment {
        let s = &self.settings;
        let period = schedule_period(&s.backup_schedule, now);
        let expected = rpo::expected_period(period, last_cycle);
        let mut volumes = Vec::new();
        let mut per_cycle: BTreeMap<ProjectId, Growth> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for server in &fleet.servers {
            for vid in &server.volume_ids {
                let Some(volume) = fleet.volumes.get(vid) else { continue };
                if is_set(&volume.metadata, &s.plan.skip_volume_metadata_key) || !seen.insert(vid.clone()) {
                    continue;
                }
                let own: Vec<_> =
                    fleet.backups.get(vid).into_iter().flatten().filter(|b| fleet.own.contains(&b.id)).collect();
                let last_success =
                    own.iter().filter(|b| b.status == BackupStatus::Available).map(|b| b.created_at).max();
                let last_failure = own
                    .iter()
                    .filter(|b| b.status == BackupStatus::Error && Some(b.created_at) > last_success)
                    .max_by_key(|b| b.created_at)
                    .map(|b| b.fail_reason.clone().unwrap_or_else(|| "backup error".to_owned()));
                volumes.push(VolumeBackups {
                    project_id: volume.project_id.clone(),
                    volume_id: vid.clone(),
                    volume_name: volume.name.clone(),
                    last_success,
                    last_failure,
                });
                let g = per_cycle.entry(volume.project_id.clone()).or_default();
                g.backups += 1.0;
                g.gigabytes += volume.size_gb as f64;
            }
        }
        let rpo = rpo::assess(&volumes, now, expected);
        let retention = s.retention.rules.retention.duration();
        let next_cycle = s.backup_schedule.next_due(Some(now), now).unwrap_or(now);
        let projections = fleet
            .quotas
            .iter()
            .map(|(project, q)| {
                let expiries = fleet
                    .backups
                    .values()
                    .flatten()
                    .filter(|b| &b.project_id == project && fleet.own.contains(&b.id))
                    .map(|b| (b.created_at + retention, b.size_gb))
                    .collect();
                let input = QuotaInput {
                    quota: q.clone(),
                    per_cycle: per_cycle.get(project).copied().unwrap_or_default(),
                    expiries,
                    next_cycle,
                    cycle: period,
                    retention,
                };
                quota::project(&input, now, s.assurance.quota_horizon)
            })
            .collect();
        Assessment { at: now, expected, rpo, projections }
    }
}

impl Conductor {
    /// What each project's digest says about its protection: RPO
    /// compliance, a quota warning (also logged), and the drills since the
    /// last digest. Empty when the fleet cannot be read (logged).
    pub async fn assurance_for_digest(&self) -> BTreeMap<String, crate::notify::ProjectAssurance> {
        let mut out: BTreeMap<String, crate::notify::ProjectAssurance> = BTreeMap::new();
        let a = match self.assess().await {
            Ok(a) => a,
            Err(err) => {
                tracing::warn!("cannot assess RPO compliance and quotas for the digests: {err}");
                return out;
            }
        };
        for (project, c) in a.compliance_by_project() {
            let entry = out.entry(project.0).or_default();
            entry.within = c.within;
            entry.total = c.total;
        }
        for s in &a.rpo {
            if let Some(miss) = &s.miss {
                out.entry(s.project_id.0.clone()).or_default().misses.push(crate::notify::RpoMiss {
                    volume: s.volume_name.clone().unwrap_or_else(|| s.volume_id.0.clone()),
                    reason: miss.reason(),
                });
            }
        }
        for p in a.warnings() {
            if let Some(message) = p.message(a.at) {
                tracing::warn!(project.id = %p.project_id, "{message}");
                out.entry(p.project_id.0.clone()).or_default().quota_warning = Some(message);
            }
        }
        let since = (a.at - self.settings.report_period).naive_utc();
        match self.db_call(move |c| crate::db::restore_drills::since(c, since)).await {
            Ok(rows) => {
                for d in rows {
                    let text = match &d.message {
                        None => format!(
                            "backup {} of volume {}: {} in {} s",
                            d.backup_id, d.volume_id, d.result, d.duration_secs
                        ),
                        Some(m) => format!(
                            "backup {} of volume {}: {} in {} s: {m}",
                            d.backup_id, d.volume_id, d.result, d.duration_secs
                        ),
                    };
                    out.entry(d.project_id).or_default().drills.push(text);
                }
            }
            Err(err) => tracing::warn!("cannot read the restore drills for the digests: {err}"),
        }
        out
    }
}

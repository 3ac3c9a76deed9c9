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
    /// Reads the fleet and assesses it now (the conductor's clock).
    pub async fn assess(&self) -> Result<Assessment, ConductorError> {
        let fleet = self.discover().await?;
        Ok(self.assess_fleet(&fleet, self.clock.now()))
    }

    /// Assesses a fleet read earlier: flagged volumes (not skipped) against
    /// the schedule's period plus one cycle (`backup_cycle_timeout`), and
    /// each project's quota against what a cycle adds (its flagged volumes)
    /// and what retention frees (Staffeln's backups at `retention_time`).
    pub fn assess_fleet(&self, fleet: &Fleet, now: DateTime<Utc>) -> Assessment {
        let s = &self.settings;
        let period = schedule_period(&s.backup_schedule, now);
        let expected = rpo::expected_period(period, s.wait.timeout);
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

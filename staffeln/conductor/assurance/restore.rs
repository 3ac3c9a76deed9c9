//! The edge of assurance: restores through Cinder, and restore drills.
//!
//! A restore goes through the handle of the backup's project: Cinder makes
//! the new volume there and charges it to that project's volume quota, as
//! when the tenant restores it (the self-service path). Only Staffeln's
//! backups are restored here (its metadata mark, or a row it adopted).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::drill::{self, DrillCaps, DrillPick, DrillResult};
use crate::conductor::error::ConductorError;
use crate::conductor::node::Conductor;
use crate::db::backups as backup_rows;
use crate::db::restore_drills::{self, NewDrill};
use crate::objects::{BackupId, ProjectId, VolumeId, VolumeStatus};
use crate::openstack::{BackupFilter, Restore};

/// How often a drill looks at its scratch volume.
const POLL: chrono::Duration = chrono::Duration::seconds(10);

/// One drill's outcome, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    pub pick: DrillPick,
    pub scratch_volume_id: Option<VolumeId>,
    pub result: DrillResult,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl Conductor {
    /// Restores Staffeln's backup `id` into a new volume in the backup's
    /// project (named `name`, or as Cinder names it). Returns at once:
    /// the volume is `restoring-backup` until Cinder is done. Returns the
    /// restore and the project it happens in.
    pub async fn restore_backup(
        &self,
        id: &BackupId,
        name: Option<&str>,
    ) -> Result<(Restore, ProjectId), ConductorError> {
        let backup = self.os.backup(id).await?;
        if !backup.is_marked_automated() {
            let key = id.0.clone();
            let row = self.db_call(move |c| backup_rows::get(c, &key)).await?;
            if row.is_none() {
                return Err(ConductorError::NotStaffelns { backup: id.0.clone() });
            }
        }
        let os = self.os.for_project(&backup.project_id)?;
        let restore = os.restore_backup(id, None, name).await?;
        tracing::info!(backup = %id, volume = %restore.volume_id, project = %backup.project_id, "restore started");
        Ok((restore, backup.project_id))
    }

    /// One drill round: samples Staffeln's backups (within `caps`, leaving
    /// out volumes in `rotating`), restores each into a scratch volume,
    /// waits up to `timeout` (on the conductor's clock) for it to be
    /// `available` with the backup's size, deletes it and records the drill.
    pub async fn run_drills(
        &self,
        caps: DrillCaps,
        rotating: &HashSet<VolumeId>,
        timeout: chrono::Duration,
    ) -> Result<Vec<DrillReport>, ConductorError> {
        let backups: Vec<crate::objects::Backup> = self
            .os
            .backups(&BackupFilter::default())
            .try_filter(|b| futures_util::future::ready(b.is_marked_automated()))
            .try_collect()
            .await?;
        let last: HashMap<VolumeId, DateTime<Utc>> = self
            .db_call(restore_drills::last_per_volume)
            .await?
            .into_iter()
            .map(|(v, t)| (VolumeId(v), t.and_utc()))
            .collect();
        for volume in drill::held_for_rotation(&backups, rotating) {
            tracing::info!(
                volume.id = %volume,
                "restore drill: volume {volume} left out: retention's plan deletes backups of it \
                 and its only good backup must stay available"
            );
        }
        let picks = drill::sample(&backups, rotating, &last, caps);
        let mut reports = Vec::with_capacity(picks.len());
        for pick in picks {
            let report = self.drill(pick, timeout).await;
            let row = NewDrill {
                backup_id: report.pick.backup_id.0.clone(),
                volume_id: report.pick.volume_id.0.clone(),
                project_id: report.pick.project_id.0.clone(),
                scratch_volume_id: report.scratch_volume_id.as_ref().map(|v| v.0.clone()),
                result: report.result.as_str().to_owned(),
                message: report.result.message().map(str::to_owned),
                duration_secs: (report.finished_at - report.started_at).num_seconds(),
                conductor: self.holder.clone(),
                started_at: report.started_at.naive_utc(),
                finished_at: report.finished_at.naive_utc(),
            };
            self.db_call(move |c| restore_drills::insert(c, &row)).await?;
            match &report.result {
                DrillResult::Passed => tracing::info!(
                    backup = %report.pick.backup_id, volume = %report.pick.volume_id,
                    "restore drill passed in {} s", (report.finished_at - report.started_at).num_seconds()
                ),
                DrillResult::Failed(why) => tracing::warn!(
                    backup = %report.pick.backup_id, volume = %report.pick.volume_id, "restore drill failed: {why}"
                ),
            }
            reports.push(report);
        }
        Ok(reports)
    }

    async fn drill(&self, pick: DrillPick, timeout: chrono::Duration) -> DrillReport {
        let started_at = self.clock.now();
        let name = format!("staffeln-drill-{}", pick.backup_id);
        let os = match self.os.for_project(&pick.project_id) {
            Ok(os) => os,
            Err(err) => return failed(pick, None, started_at, self.clock.now(), &err),
        };
        let restore = match os.restore_backup(&pick.backup_id, None, Some(&name)).await {
            Ok(r) => r,
            Err(err) => return failed(pick, None, started_at, self.clock.now(), &err),
        };
        let scratch = restore.volume_id;
        let deadline = started_at + timeout;
        let mut seen = None;
        loop {
            match os.volume(&scratch).await {
                Ok(v) if v.status == VolumeStatus::RestoringBackup => {}
                Ok(v) => {
                    seen = Some((v.status, v.size_gb));
                    break;
                }
                Err(err) => return failed(pick, Some(scratch), started_at, self.clock.now(), &err),
            }
            if self.clock.now() >= deadline {
                break;
            }
            // Parked, so that an emulated clock's `settled` counts the wait.
            self.clock.park_until(Some(self.clock.now() + POLL)).await;
        }
        let finished_at = self.clock.now();
        let mut result = drill::judge(pick.size_gb, seen.as_ref().map(|(s, g)| (s, *g)));
        // The scratch volume goes whatever the result; a restore still
        // running cannot be deleted and is named in the result instead.
        if let Err(err) = os.delete_volume(&scratch).await {
            let why = format!("scratch volume {scratch} not deleted: {}", crate::errors::chain(&err));
            result = match result {
                DrillResult::Passed => DrillResult::Failed(why),
                DrillResult::Failed(m) => DrillResult::Failed(format!("{m}; {why}")),
            };
        }
        DrillReport { pick, scratch_volume_id: Some(scratch), result, started_at, finished_at }
    }
}

fn failed(
    pick: DrillPick,
    scratch: Option<VolumeId>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    err: &dyn std::error::Error,
) -> DrillReport {
    let result = DrillResult::Failed(crate::errors::chain(err));
    DrillReport { pick, scratch_volume_id: scratch, result, started_at, finished_at }
}

//! Discovery: what the cloud holds, read with all-tenant list calls (one
//! stream per resource, following pagination) plus one quota read per
//! project with a flagged server, and what Staffeln's database knows. The
//! result is the planner's [`Fleet`]; nothing here decides anything.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};
use tracing::{debug, warn};

use super::plan::{Fleet, flagged};
use crate::conductor::checkpoint::{self, Point};
use crate::conductor::error::ConductorError;
use crate::conductor::grouped::grouped;
use crate::conductor::node::Conductor;
use crate::objects::{BackupId, BackupStatus, ProjectId, VolumeId};
use crate::openstack::BackupFilter;

/// Quota reads in flight at once.
const QUOTA_CONCURRENCY: usize = 16;

impl Conductor {
    /// Reads the fleet: flagged servers, their volumes, those volumes'
    /// backups, the quotas of their projects, and Staffeln's own records.
    pub async fn discover(&self) -> Result<Fleet, ConductorError> {
        checkpoint::reach(Point::Discovery);
        let plan = &self.settings.plan;
        let servers: Vec<_> =
            self.os.servers(None).try_filter(|s| std::future::ready(flagged(s, plan))).try_collect().await?;
        let wanted: HashSet<VolumeId> = servers.iter().flat_map(|s| s.volume_ids.iter().cloned()).collect();
        let volumes: HashMap<_, _> = self
            .os
            .volumes(None)
            .try_filter(|v| std::future::ready(wanted.contains(&v.id)))
            .map_ok(|v| (v.id.clone(), v))
            .try_collect()
            .await?;
        let mut listed = Vec::new();
        let mut own: HashSet<BackupId> = HashSet::new();
        let mut all = self.os.backups(&BackupFilter::default());
        while let Some(mut backup) = all.try_next().await? {
            if !wanted.contains(&backup.volume_id) {
                continue;
            }
            if backup.is_marked_automated() {
                own.insert(backup.id.clone());
            }
            // Read for the mark only; nothing after discovery reads it, and
            // a map per backup of a large cloud is megabytes.
            backup.metadata.clear();
            listed.push(backup);
        }
        let backups: HashMap<VolumeId, Vec<_>> = grouped(listed, |b| &b.volume_id).into_iter().collect();
        own.extend(self.db_call(crate::db::backups::all_ids).await?.into_iter().map(BackupId));
        let busy: HashSet<VolumeId> =
            self.db_call(crate::db::tasks::active_volume_ids).await?.into_iter().map(VolumeId).collect();
        // The cycle that made the newest backup of Staffeln's of each volume
        // (the backup_min_interval floor counts from its start).
        let newest: Vec<String> = backups
            .values()
            .filter_map(|list| {
                list.iter()
                    .filter(|b| own.contains(&b.id) && b.status != BackupStatus::Error)
                    .max_by_key(|b| b.created_at)
                    .map(|b| b.id.0.clone())
            })
            .collect();
        let made_at: HashMap<BackupId, _> = self
            .db_call(move |conn| crate::db::history::cycle_starts(conn, &newest))
            .await?
            .into_iter()
            .map(|(id, at)| (BackupId(id), at.and_utc()))
            .collect();

        let projects: HashSet<ProjectId> = servers.iter().map(|s| s.project_id.clone()).collect();
        let quotas: HashMap<_, _> = futures_util::stream::iter(projects)
            .map(|project| async move {
                match self.os.backup_quota(&project).await {
                    Ok(quota) => Some((project, quota)),
                    Err(err) => {
                        // Planned without a quota check; Cinder's 413 still guards the create.
                        warn!(project.id = %project, "cannot read the backup quota of project {project}: {err}");
                        None
                    }
                }
            })
            .buffer_unordered(QUOTA_CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await;
        debug!(
            servers = servers.len(),
            volumes = volumes.len(),
            backups = backups.values().map(Vec::len).sum::<usize>(),
            projects = quotas.len(),
            "discovery done"
        );
        Ok(Fleet { servers, volumes, backups, own, quotas, busy, made_at })
    }
}

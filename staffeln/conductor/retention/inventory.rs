//! What a retention run reads: every backup Cinder lists (all projects, or
//! one), which of them Staffeln recorded, the volumes they belong to and
//! whether those still exist (confirmed in the volume's own project: a
//! listing that does not show a volume is not proof that it is gone), and
//! the servers whose metadata may carry rules. The mirror of the backup
//! half's discovery; nothing here decides anything.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tracing::warn;

use super::plan::{Candidate, Inventory, VolumeInput};
use crate::conductor::error::ConductorError;
use crate::conductor::grouped::grouped;
use crate::conductor::node::Conductor;
use crate::db::backups;
use crate::objects::metadata::INSTANCE_KEY;
use crate::objects::{BackupId, ProjectId, Server, ServerId, VolumeId};
use crate::openstack::BackupFilter;

/// What the listing saw, for forgetting rows.
pub(super) struct Listing {
    pub(super) since: DateTime<Utc>,
    pub(super) listed: HashSet<BackupId>,
    pub(super) rows: HashSet<String>,
    /// Every project was listed (no project filter).
    pub(super) complete: bool,
}

impl Conductor {
    /// Reads the volumes with a backup of Staffeln's (all, or `project`'s),
    /// their servers, and which backups Staffeln recorded.
    pub(super) async fn retention_inventory(
        &self,
        project: Option<&ProjectId>,
    ) -> Result<(Inventory, Listing), ConductorError> {
        let since = Utc::now();
        let rows: HashSet<String> = self.db_call(backups::all_ids).await?.into_iter().collect();
        let adopted: HashSet<String> = self.db_call(backups::adopted_ids).await?.into_iter().collect();
        let filter = BackupFilter { project_id: project.cloned(), ..BackupFilter::default() };
        let mut all = Vec::new();
        let mut listed = HashSet::new();
        let mut stream = self.os.backups(&filter);
        while let Some(backup) = stream.try_next().await? {
            listed.insert(backup.id.clone());
            let has_row = rows.contains(backup.id.as_str());
            let has_marker = backup.is_marked_automated();
            let adopted = adopted.contains(backup.id.as_str());
            all.push(Candidate { backup, has_row, has_marker, adopted });
        }
        let mut by_volume: BTreeMap<VolumeId, Vec<Candidate>> =
            grouped(all, |c| &c.backup.volume_id).into_iter().collect();
        // Volumes nobody at Staffeln backed up are not retention's business.
        by_volume.retain(|_, backups| backups.iter().any(|c| c.has_row || c.has_marker));
        let listing = Listing { since, listed, rows, complete: project.is_none() };
        if by_volume.is_empty() {
            return Ok((Inventory::default(), listing));
        }
        let mut attachments: HashMap<VolumeId, Vec<ServerId>> = HashMap::new();
        let mut volumes = self.os.volumes(project);
        while let Some(v) = volumes.try_next().await? {
            if by_volume.contains_key(&v.id) {
                attachments.insert(v.id, v.attachments);
            }
        }
        let gone = self.confirm_gone(&by_volume, &attachments).await;
        let wanted: HashSet<ServerId> = by_volume
            .iter()
            .flat_map(|(vid, backups)| {
                let attached = attachments.get(vid).cloned().unwrap_or_default();
                let named = backups
                    .iter()
                    .filter_map(|c| c.backup.metadata.get(INSTANCE_KEY).map(|s| ServerId(s.clone())))
                    .collect::<Vec<_>>();
                attached.into_iter().chain(named)
            })
            .collect();
        let servers: HashMap<ServerId, Server> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.os
                .servers(project)
                .try_filter(|s| std::future::ready(wanted.contains(&s.id)))
                .map_ok(|s| (s.id.clone(), s))
                .try_collect()
                .await?
        };
        let volumes = by_volume
            .into_iter()
            .map(|(volume_id, backups)| VolumeInput {
                exists: !gone.contains(&volume_id),
                attachments: attachments.get(&volume_id).cloned().unwrap_or_default(),
                volume_id,
                backups,
            })
            .collect();
        Ok((Inventory { volumes, servers }, listing))
    }

    /// Volumes missing from the all-projects list that their own project's
    /// list confirms are gone. Any doubt (no role, an error) keeps a volume.
    async fn confirm_gone(
        &self,
        by_volume: &BTreeMap<VolumeId, Vec<Candidate>>,
        listed: &HashMap<VolumeId, Vec<ServerId>>,
    ) -> HashSet<VolumeId> {
        let mut missing: BTreeMap<ProjectId, Vec<VolumeId>> = BTreeMap::new();
        for (vid, backups) in by_volume {
            // Listed, or no volume id to look for: the volume counts as existing.
            if listed.contains_key(vid) || vid.as_str().trim().is_empty() {
                continue;
            }
            let projects: BTreeSet<&ProjectId> = backups.iter().map(|c| &c.backup.project_id).collect();
            // Backups of one volume in several projects: too odd to call gone.
            if let [project] = projects.into_iter().collect::<Vec<_>>()[..] {
                missing.entry(project.clone()).or_default().push(vid.clone());
            }
        }
        let mut gone = HashSet::new();
        for (project, vids) in missing {
            let os = match self.os.for_project(&project) {
                Ok(os) => os,
                Err(err) => {
                    warn!(project.id = %project, "cannot confirm that volumes of project {project} are gone; their last backups stay: {err}");
                    continue;
                }
            };
            let found: Result<HashSet<VolumeId>, _> = os.volumes(Some(&project)).map_ok(|v| v.id).try_collect().await;
            match found {
                Ok(found) => gone.extend(vids.into_iter().filter(|v| !found.contains(v))),
                Err(err) => {
                    warn!(project.id = %project, "cannot list the volumes of project {project}; their last backups stay: {err}")
                }
            }
        }
        gone
    }
}

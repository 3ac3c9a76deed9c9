//! Restore drills (pure): which backups a drill samples, and what a drill's
//! result is from what Cinder showed.
//!
//! The sample: per volume its newest `available` backup made by Staffeln,
//! volumes drilled longest ago (or never) first, at most `sample` in all and
//! `per_project` per project (the same caps that bound a project's
//! concurrent backups: a restore uses the same backup service). A volume
//! whose only good backup retention is rotating now is left out: a restore
//! holds that backup `restoring`, and retention must not find the volume
//! without a backup it can keep.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::conductor::retention::plan::RetentionAction;
use crate::objects::{Backup, BackupId, BackupStatus, ProjectId, VolumeId, VolumeStatus};

/// The caps of one drill run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillCaps {
    /// Backups restored per run at most.
    pub sample: usize,
    /// Per project at most.
    pub per_project: usize,
}

/// A backup chosen for a drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillPick {
    pub backup_id: BackupId,
    pub volume_id: VolumeId,
    pub project_id: ProjectId,
    pub size_gb: u64,
}

/// Chooses the drill sample from `backups` (Staffeln's backups, any status).
/// `rotating`: volumes whose backups retention is deleting now;
/// `last_drilled`: when each volume was last drilled.
pub fn sample(
    backups: &[Backup],
    rotating: &HashSet<VolumeId>,
    last_drilled: &HashMap<VolumeId, DateTime<Utc>>,
    caps: DrillCaps,
) -> Vec<DrillPick> {
    let mut newest: BTreeMap<&VolumeId, &Backup> = BTreeMap::new();
    for b in backups.iter().filter(|b| b.status == BackupStatus::Available) {
        let slot = newest.entry(&b.volume_id).or_insert(b);
        if (b.created_at, &b.id.0) > (slot.created_at, &slot.id.0) {
            *slot = b;
        }
    }
    // Cinder holds a volume's backups while one of them is `restoring`
    // or `deleting`; a volume with work on it waits for the next drill.
    let busy: HashSet<&VolumeId> = backups.iter().filter(|b| b.status.is_in_progress()).map(|b| &b.volume_id).collect();
    let held = held_for_rotation(backups, rotating);
    let mut candidates: Vec<&Backup> = newest
        .into_iter()
        .filter(|(v, _)| !busy.contains(v))
        .filter(|(v, _)| !held.contains(*v))
        .map(|(_, b)| b)
        .collect();
    candidates.sort_by(|a, b| {
        last_drilled
            .get(&a.volume_id)
            .cmp(&last_drilled.get(&b.volume_id))
            .then_with(|| a.volume_id.0.cmp(&b.volume_id.0))
    });
    let mut per_project: HashMap<&ProjectId, usize> = HashMap::new();
    let mut picks = Vec::new();
    for b in candidates {
        if picks.len() >= caps.sample {
            break;
        }
        let n = per_project.entry(&b.project_id).or_default();
        if *n >= caps.per_project {
            continue;
        }
        *n += 1;
        picks.push(DrillPick {
            backup_id: b.id.clone(),
            volume_id: b.volume_id.clone(),
            project_id: b.project_id.clone(),
            size_gb: b.size_gb,
        });
    }
    picks
}

/// The volumes of `rotating` whose only good (`available`) backup among
/// `backups` the sample leaves out, sorted: a drill would hold it
/// `restoring` while retention rotates the volume.
pub fn held_for_rotation(backups: &[Backup], rotating: &HashSet<VolumeId>) -> Vec<VolumeId> {
    let mut good: BTreeMap<&VolumeId, usize> = BTreeMap::new();
    for b in backups.iter().filter(|b| b.status == BackupStatus::Available && rotating.contains(&b.volume_id)) {
        *good.entry(&b.volume_id).or_default() += 1;
    }
    good.into_iter().filter(|(_, n)| *n == 1).map(|(v, _)| v.clone()).collect()
}

/// How a drill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillResult {
    /// The scratch volume became `available` with the backup's size.
    Passed,
    /// It did not; why.
    Failed(String),
}

impl DrillResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            DrillResult::Passed => "passed",
            DrillResult::Failed(_) => "failed",
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            DrillResult::Passed => None,
            DrillResult::Failed(m) => Some(m),
        }
    }
}

/// Judges a drill from the scratch volume as last seen (`None`: it never
/// left `restoring-backup` before the deadline).
pub fn judge(expected_gb: u64, seen: Option<(&VolumeStatus, u64)>) -> DrillResult {
    match seen {
        None => DrillResult::Failed("the restore did not finish in time".to_owned()),
        Some((VolumeStatus::Available, size)) if size == expected_gb => DrillResult::Passed,
        Some((VolumeStatus::Available, size)) => {
            DrillResult::Failed(format!("the restored volume has {size} GiB, the backup {expected_gb} GiB"))
        }
        Some((status, _)) => DrillResult::Failed(format!("the restored volume is {status}, not available")),
    }
}

/// The volumes retention is about to rotate: those its plan deletes a
/// backup of (each `(volume, action)` of the plan's decisions).
pub fn rotating<'a>(plan: impl IntoIterator<Item = (&'a VolumeId, RetentionAction)>) -> HashSet<VolumeId> {
    plan.into_iter().filter(|(_, a)| *a == RetentionAction::Delete).map(|(v, _)| v.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn b(id: &str, vol: &str, project: &str, status: &str, hours_ago: i64) -> Backup {
        Backup {
            id: BackupId(id.into()),
            name: None,
            volume_id: VolumeId(vol.into()),
            project_id: ProjectId(project.into()),
            status: BackupStatus::parse(status),
            size_gb: 10,
            is_incremental: false,
            has_dependent_backups: false,
            created_at: DateTime::<Utc>::UNIX_EPOCH + Duration::days(100) - Duration::hours(hours_ago),
            metadata: BTreeMap::new(),
            availability_zone: None,
            fail_reason: None,
        }
    }

    #[test]
    fn the_sample_takes_each_volumes_newest_good_backup_least_recently_drilled_first_within_the_caps() {
        let backups = [
            b("a-old", "va", "p1", "available", 48),
            b("a-new", "va", "p1", "available", 24),
            b("a-err", "va", "p1", "error", 1),
            b("b1", "vb", "p1", "available", 10),
            b("c1", "vc", "p1", "available", 10),
            b("d1", "vd", "p2", "available", 10),
        ];
        let mut drilled = HashMap::new();
        drilled.insert(VolumeId("vb".into()), DateTime::<Utc>::UNIX_EPOCH);
        let caps = DrillCaps { sample: 3, per_project: 2 };
        let picks = sample(&backups, &HashSet::new(), &drilled, caps);
        let ids: Vec<&str> = picks.iter().map(|p| p.backup_id.0.as_str()).collect();
        // Never-drilled first (va, vc in p1, then vd in p2), p1 capped at 2.
        assert_eq!(ids, ["a-new", "c1", "d1"]);
        let one = sample(&backups, &HashSet::new(), &drilled, DrillCaps { sample: 1, per_project: 5 });
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn a_volumes_only_backup_is_not_drilled_while_retention_rotates_it() {
        let backups = [
            b("a1", "va", "p", "available", 5),
            b("b1", "vb", "p", "available", 5),
            b("b0", "vb", "p", "available", 30),
        ];
        let rotating: HashSet<VolumeId> = [VolumeId("va".into()), VolumeId("vb".into())].into();
        let picks = sample(&backups, &rotating, &HashMap::new(), DrillCaps { sample: 10, per_project: 10 });
        let ids: Vec<&str> = picks.iter().map(|p| p.backup_id.0.as_str()).collect();
        assert_eq!(ids, ["b1"], "va's only backup is left out; vb has two");
        assert_eq!(held_for_rotation(&backups, &rotating), [VolumeId("va".into())]);
        assert!(held_for_rotation(&backups, &HashSet::new()).is_empty(), "nothing rotates");
        // A volume with a backup in flight waits.
        let busy = [b("a1", "va", "p", "available", 5), b("a2", "va", "p", "deleting", 50)];
        assert!(sample(&busy, &HashSet::new(), &HashMap::new(), DrillCaps { sample: 10, per_project: 10 }).is_empty());
    }

    #[test]
    fn a_drill_passes_only_on_an_available_volume_of_the_backups_size() {
        assert_eq!(judge(10, Some((&VolumeStatus::Available, 10))), DrillResult::Passed);
        assert_eq!(
            judge(10, Some((&VolumeStatus::Available, 5))).message(),
            Some("the restored volume has 5 GiB, the backup 10 GiB")
        );
        assert_eq!(
            judge(10, Some((&VolumeStatus::ErrorRestoring, 10))).message(),
            Some("the restored volume is error_restoring, not available")
        );
        assert_eq!(judge(10, None).as_str(), "failed");
    }

    #[test]
    fn the_volumes_retention_deletes_from_are_rotating_the_kept_and_skipped_not() {
        let (va, vb, vc) = (VolumeId("va".into()), VolumeId("vb".into()), VolumeId("vc".into()));
        let plan = [
            (&va, RetentionAction::Keep),
            (&va, RetentionAction::Delete),
            (&vb, RetentionAction::Keep),
            (&vc, RetentionAction::Skip),
        ];
        assert_eq!(rotating(plan), HashSet::from([va.clone()]));
        assert!(rotating([]).is_empty());
    }
}

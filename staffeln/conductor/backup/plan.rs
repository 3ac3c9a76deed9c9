//! The backup plan of one cycle: a pure function of what discovery found, the
//! settings and `now`. No I/O here; the cycle fetches, calls [`plan`], applies
//! the result and logs every decision with its reason.
//!
//! Rules, in the order they are applied to each volume of each flagged server:
//! 1. A server is flagged ([`flagged`]) when its metadata
//!    `backup_metadata_key` reads true (`objects::metadata`: `true`, `yes`,
//!    `1`, `on`, …, any case). Discovery reads only flagged servers, with
//!    the same rule; the plan is what decides.
//! 2. A volume attached to several flagged servers is planned once.
//! 3. A volume Cinder does not list is a failure ("volume not found").
//! 4. `skip_volume_metadata_key` set to a true value: skipped.
//! 5. A volume with a task of an earlier cycle still in progress, or one that is `backing-up` or `restoring-backup` waits for the next
//!    cycle: Cinder refuses a second operation, and this is not a failure.
//! 6. Other statuses than `available`/`in-use` fail with the status named.
//! 7. A volume whose last Staffeln backup is truly recent is skipped (the
//!    `backup_min_interval` floor; 0 disables it). The interval is measured
//!    between the starts of the cycles that made the backups, not from
//!    Cinder's `created_at`: a backup is created some time after its cycle
//!    starts (discovery, the queue, the concurrency limits), so with
//!    `backup_service_period` = `backup_min_interval` every second cycle
//!    would find the last backup "too young" and skip it. A cycle that starts
//!    up to a tenth of the interval early is still on time ([`too_recent`]):
//!    cron cycles and cycles after a late one start a little late or early.
//!    A backup without a known cycle (made before the upgrade from the
//!    original Staffeln) counts from its `created_at`.
//! 8. The per-project volume limit, then Cinder's `backups` and
//!    `backup_gigabytes` quotas (counting what this plan already takes) are
//!    checked before any create; a volume over either fails with the limit
//!    and the usage named.
//! 9. Full or incremental: incrementals follow a full of Staffeln's own, up
//!    to `full_backup_depth` of them. Cinder makes the newest backup of the
//!    volume the parent of an incremental, whoever made it, so when the newest
//!    available backup is not Staffeln's own the plan takes a full and says why.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::objects::{
    Backup, BackupId, BackupKind, BackupQuota, BackupStatus, ProjectId, Server, ServerId, Volume, VolumeId,
    VolumeStatus,
};

/// The flag rule: whether the plan backs up `server`'s volumes (its
/// metadata `backup_metadata_key` reads true). Discovery pre-filters with
/// it; [`plan`] decides with it.
pub fn flagged(server: &Server, settings: &PlanSettings) -> bool {
    server.is_flagged(&settings.backup_metadata_key)
}

/// What the planner needs from the configuration.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub backup_metadata_key: String,
    pub skip_volume_metadata_key: String,
    pub full_backup_depth: u32,
    pub backup_min_interval: Duration,
    pub name_template: String,
    pub date_format: String,
    /// Volumes one project may have backed up per cycle (`None`: no limit).
    pub project_volume_limit: Option<u32>,
    pub project_volume_limit_overrides: BTreeMap<ProjectId, u32>,
}

/// What discovery found, indexed for the planner.
#[derive(Debug, Default)]
pub struct Fleet {
    pub servers: Vec<Server>,
    pub volumes: HashMap<VolumeId, Volume>,
    /// Every backup of each volume, any maker, any status. Discovery does
    /// not keep their metadata: what it says is in `own`.
    pub backups: HashMap<VolumeId, Vec<Backup>>,
    /// Backups Staffeln made (its database rows, or `__automated_backup`).
    pub own: HashSet<BackupId>,
    pub quotas: HashMap<ProjectId, BackupQuota>,
    /// Volumes with a task of an earlier cycle still in progress.
    pub busy: HashSet<VolumeId>,
    /// When the cycle that made each of Staffeln's backups started (for the
    /// newest backup of each volume at least).
    pub made_at: HashMap<BackupId, DateTime<Utc>>,
}

/// The decision for one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create a backup. `note` says why a full was taken out of turn.
    Backup { kind: BackupKind, name: String, force: bool, note: Option<String> },
    /// Not backed up, on purpose (skip flag, too recent).
    Skip { reason: String },
    /// Not backed up this cycle; the next cycle tries again (volume busy).
    Wait { reason: String },
    /// Cannot be backed up: the reason names what is wrong.
    Fail { reason: String },
}

/// One volume of one flagged server, and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    pub project_id: ProjectId,
    pub server_id: ServerId,
    pub server_name: String,
    pub volume_id: VolumeId,
    pub volume_name: Option<String>,
    pub availability_zone: Option<String>,
    pub size_gb: u64,
    pub decision: Decision,
}

/// The slack of the `backup_min_interval` floor: a tenth of the interval.
pub fn min_interval_tolerance(min_interval: Duration) -> Duration {
    min_interval / 10
}

/// Whether a volume whose last backup of Staffeln's was made by the cycle
/// that started at `made` is too recent to back up in the cycle starting at
/// `now`: less than `min_interval`, less its tolerance, lies between the two
/// cycle starts. A zero interval never is.
pub fn too_recent(made: DateTime<Utc>, now: DateTime<Utc>, min_interval: Duration) -> bool {
    min_interval > Duration::zero() && now - made < min_interval - min_interval_tolerance(min_interval)
}

/// Kind of the next backup, from the volume's own successful backups, newest
/// first: a full starts every chain and `depth` incrementals follow it.
pub fn next_backup_kind(recent: &[BackupKind], depth: u32) -> BackupKind {
    let incrementals = recent.iter().take_while(|k| **k == BackupKind::Incremental).count();
    let has_full = incrementals < recent.len();
    if has_full && incrementals < depth as usize { BackupKind::Incremental } else { BackupKind::Full }
}

/// Renders the backup name template: `{volume_name}` (the volume id when it
/// has no name), `{volume_id}`, `{server_name}`, `{server_id}`,
/// `{project_id}`, `{backup_date}`; at most 255 characters.
pub fn backup_name(template: &str, date_format: &str, server: &Server, volume: &Volume, now: DateTime<Utc>) -> String {
    let date = format_date(now, date_format);
    let volume_name = volume.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(volume.id.as_str());
    let name = template
        .replace("{volume_name}", volume_name)
        .replace("{volume_id}", volume.id.as_str())
        .replace("{server_name}", &server.name)
        .replace("{server_id}", server.id.as_str())
        .replace("{project_id}", server.project_id.as_str())
        .replace("{backup_date}", &date);
    name.chars().take(255).collect()
}

/// `strftime`-formats `when`; a format chrono cannot render yields the
/// RFC 3339 form instead of a panic.
pub fn format_date(when: DateTime<Utc>, format: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    match write!(out, "{}", when.format(format)) {
        Ok(()) => out,
        Err(_) => when.to_rfc3339(),
    }
}

/// Per-project running totals while planning.
#[derive(Default)]
struct Usage {
    volumes: u32,
    backups: i64,
    gigabytes: i64,
}

/// The plan for one cycle, in a stable order (project, server, volume).
pub fn plan(fleet: &Fleet, settings: &PlanSettings, now: DateTime<Utc>) -> Vec<PlannedVolume> {
    let mut servers: Vec<&Server> = fleet.servers.iter().filter(|s| flagged(s, settings)).collect();
    servers.sort_by(|a, b| (&a.project_id, &a.id).cmp(&(&b.project_id, &b.id)));
    let mut seen = HashSet::new();
    let mut usage: HashMap<&ProjectId, Usage> = HashMap::new();
    let mut out = Vec::new();
    for server in servers {
        let mut volume_ids = server.volume_ids.clone();
        volume_ids.sort();
        for volume_id in volume_ids {
            if !seen.insert(volume_id.clone()) {
                continue;
            }
            let Some(volume) = fleet.volumes.get(&volume_id) else {
                out.push(PlannedVolume {
                    project_id: server.project_id.clone(),
                    server_id: server.id.clone(),
                    server_name: server.name.clone(),
                    volume_id: volume_id.clone(),
                    volume_name: None,
                    availability_zone: None,
                    size_gb: 0,
                    decision: Decision::Fail { reason: format!("volume {volume_id} not found in Cinder") },
                });
                continue;
            };
            let decision = decide(fleet, settings, server, volume, &mut usage, now);
            out.push(PlannedVolume {
                project_id: volume.project_id.clone(),
                server_id: server.id.clone(),
                server_name: server.name.clone(),
                volume_id: volume.id.clone(),
                volume_name: volume.name.clone(),
                availability_zone: volume.availability_zone.clone(),
                size_gb: volume.size_gb,
                decision,
            });
        }
    }
    out
}

fn decide<'a>(
    fleet: &Fleet,
    settings: &PlanSettings,
    server: &Server,
    volume: &'a Volume,
    usage: &mut HashMap<&'a ProjectId, Usage>,
    now: DateTime<Utc>,
) -> Decision {
    if volume.skips_backup(&settings.skip_volume_metadata_key) {
        return Decision::Skip { reason: format!("volume metadata {} is set", settings.skip_volume_metadata_key) };
    }
    if fleet.busy.contains(&volume.id) {
        return Decision::Wait { reason: "a backup of this volume from an earlier cycle is still in progress".into() };
    }
    match &volume.status {
        VolumeStatus::BackingUp | VolumeStatus::RestoringBackup => {
            return Decision::Wait {
                reason: format!(
                    "volume is {}: another backup or restore is running; retried next cycle",
                    volume.status
                ),
            };
        }
        status if !status.can_back_up() => {
            return Decision::Fail {
                reason: format!("volume status is {status}; only available or in-use volumes can be backed up"),
            };
        }
        _ => {}
    }
    let history: &[Backup] = fleet.backups.get(&volume.id).map(Vec::as_slice).unwrap_or(&[]);
    let mut own_available: Vec<&Backup> =
        history.iter().filter(|b| fleet.own.contains(&b.id) && b.status == BackupStatus::Available).collect();
    own_available.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    let last_own = history
        .iter()
        .filter(|b| fleet.own.contains(&b.id) && b.status != BackupStatus::Error)
        .max_by_key(|b| b.created_at);
    if let Some(last) = last_own {
        let made = fleet.made_at.get(&last.id).copied();
        let since = made.unwrap_or(last.created_at);
        if too_recent(since, now, settings.backup_min_interval) {
            let interval = settings.backup_min_interval;
            return Decision::Skip {
                reason: format!(
                    "last Staffeln backup {} {} {}, {} s ago: within backup_min_interval ({} s, less a tolerance of {} s)",
                    last.id,
                    if made.is_some() { "was made by the cycle that started at" } else { "was created at" },
                    since.to_rfc3339(),
                    (now - since).num_seconds(),
                    interval.num_seconds(),
                    min_interval_tolerance(interval).num_seconds(),
                ),
            };
        }
    }
    let project = usage.entry(&volume.project_id).or_default();
    let limit =
        settings.project_volume_limit_overrides.get(&volume.project_id).copied().or(settings.project_volume_limit);
    if let Some(limit) = limit
        && project.volumes >= limit
    {
        return Decision::Fail {
            reason: format!(
                "project volume limit reached: {limit} volumes per cycle, {} already planned",
                project.volumes
            ),
        };
    }
    if let Some(quota) = fleet.quotas.get(&volume.project_id) {
        let size = i64::try_from(volume.size_gb).unwrap_or(i64::MAX);
        if quota.gigabytes.would_exceed(project.gigabytes + size) {
            return Decision::Fail {
                reason: format!(
                    "backup_gigabytes quota exceeded: limit {} GB, in use {} GB, reserved {} GB, this cycle {} GB, volume {size} GB",
                    quota.gigabytes.limit, quota.gigabytes.in_use, quota.gigabytes.reserved, project.gigabytes
                ),
            };
        }
        if quota.backups.would_exceed(project.backups + 1) {
            return Decision::Fail {
                reason: format!(
                    "backups quota exceeded: limit {}, in use {}, reserved {}, this cycle {}",
                    quota.backups.limit, quota.backups.in_use, quota.backups.reserved, project.backups
                ),
            };
        }
        project.gigabytes += size;
        project.backups += 1;
    }
    project.volumes += 1;

    let kinds: Vec<BackupKind> = own_available.iter().map(|b| b.kind()).collect();
    let mut kind = next_backup_kind(&kinds, settings.full_backup_depth);
    let mut note = None;
    if kind == BackupKind::Incremental {
        let newest_available =
            history.iter().filter(|b| b.status == BackupStatus::Available).max_by_key(|b| b.created_at);
        if let Some(newest) = newest_available.filter(|b| !fleet.own.contains(&b.id)) {
            kind = BackupKind::Full;
            note = Some(format!(
                "full instead of incremental: the newest backup of the volume ({}) was not made by Staffeln, and Cinder would chain the incremental to it",
                newest.id
            ));
        }
    }
    Decision::Backup {
        kind,
        name: backup_name(&settings.name_template, &settings.date_format, server, volume, now),
        force: volume.status == VolumeStatus::InUse,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Quota;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).single().unwrap_or_default()
    }

    fn settings() -> PlanSettings {
        PlanSettings {
            backup_metadata_key: "__staffeln_backup".into(),
            skip_volume_metadata_key: "skip-volume-backup".into(),
            full_backup_depth: 2,
            backup_min_interval: Duration::seconds(1800),
            name_template: "{volume_name}-{backup_date}".into(),
            date_format: "%Y-%m-%d-%H-%M-%S".into(),
            project_volume_limit: None,
            project_volume_limit_overrides: BTreeMap::new(),
        }
    }

    fn server(id: &str, project: &str, flag: Option<&str>, volumes: &[&str]) -> Server {
        Server {
            id: id.into(),
            name: format!("vm-{id}"),
            project_id: project.into(),
            status: "ACTIVE".into(),
            metadata: flag.map(|v| [("__staffeln_backup".to_owned(), v.to_owned())].into()).unwrap_or_default(),
            volume_ids: volumes.iter().map(|v| VolumeId::from(*v)).collect(),
        }
    }

    fn volume(id: &str, project: &str, status: VolumeStatus, size: u64) -> Volume {
        Volume {
            id: id.into(),
            name: Some(format!("vol-{id}")),
            project_id: project.into(),
            status,
            size_gb: size,
            metadata: BTreeMap::new(),
            availability_zone: Some("nova".into()),
            attachments: vec![],
            bootable: false,
        }
    }

    fn backup(id: &str, volume: &str, kind: BackupKind, hours_ago: i64, status: BackupStatus) -> Backup {
        Backup {
            id: id.into(),
            name: None,
            volume_id: volume.into(),
            project_id: "p1".into(),
            status,
            size_gb: 1,
            is_incremental: kind == BackupKind::Incremental,
            has_dependent_backups: false,
            created_at: now() - Duration::hours(hours_ago),
            metadata: BTreeMap::new(),
            availability_zone: None,
            fail_reason: None,
        }
    }

    fn fleet(servers: Vec<Server>, volumes: Vec<Volume>) -> Fleet {
        Fleet { servers, volumes: volumes.into_iter().map(|v| (v.id.clone(), v)).collect(), ..Fleet::default() }
    }

    fn decision_of<'a>(plan: &'a [PlannedVolume], volume: &str) -> &'a Decision {
        &plan.iter().find(|p| p.volume_id.as_str() == volume).unwrap_or_else(|| panic!("{volume} not planned")).decision
    }

    #[test]
    fn a_full_starts_every_chain_and_the_depth_bounds_it() {
        use BackupKind::{Full as F, Incremental as I};
        let cases: &[(&[BackupKind], u32, BackupKind)] =
            &[(&[], 2, F), (&[F], 2, I), (&[I, F], 2, I), (&[I, I, F], 2, F), (&[I, I], 2, F), (&[F], 0, F)];
        for &(recent, depth, expected) in cases {
            assert_eq!(next_backup_kind(recent, depth), expected, "recent={recent:?} depth={depth}");
        }
    }

    #[test]
    fn only_flagged_servers_are_planned_with_any_true_spelling() {
        let f = fleet(
            vec![
                server("s1", "p1", Some("true"), &["v1"]),
                server("s2", "p1", Some("YES"), &["v2"]),
                server("s3", "p1", Some("1"), &["v3"]),
                server("s4", "p1", Some("no"), &["v4"]),
                server("s5", "p1", None, &["v5"]),
            ],
            ["v1", "v2", "v3", "v4", "v5"].iter().map(|v| volume(v, "p1", VolumeStatus::Available, 1)).collect(),
        );
        let plan = plan(&f, &settings(), now());
        let planned: Vec<&str> = plan.iter().map(|p| p.volume_id.as_str()).collect();
        assert_eq!(planned, ["v1", "v2", "v3"]);
    }

    #[test]
    fn statuses_skip_flag_and_missing_volumes_get_their_reasons() {
        let mut skipped = volume("v5", "p1", VolumeStatus::Available, 1);
        skipped.metadata.insert("skip-volume-backup".into(), "True".into());
        let f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1", "v2", "v3", "v4", "v5", "gone"])],
            vec![
                volume("v1", "p1", VolumeStatus::InUse, 1),
                volume("v2", "p1", VolumeStatus::BackingUp, 1),
                volume("v3", "p1", VolumeStatus::Error, 1),
                volume("v4", "p1", VolumeStatus::RestoringBackup, 1),
                skipped,
            ],
        );
        let plan = plan(&f, &settings(), now());
        assert!(matches!(decision_of(&plan, "v1"), Decision::Backup { force: true, kind: BackupKind::Full, .. }));
        assert!(matches!(decision_of(&plan, "v2"), Decision::Wait { reason } if reason.contains("backing-up")));
        assert!(matches!(decision_of(&plan, "v3"), Decision::Fail { reason } if reason.contains("error")));
        assert!(matches!(decision_of(&plan, "v4"), Decision::Wait { reason } if reason.contains("restoring-backup")));
        assert!(matches!(decision_of(&plan, "v5"), Decision::Skip { reason } if reason.contains("skip-volume-backup")));
        assert!(matches!(decision_of(&plan, "gone"), Decision::Fail { reason } if reason.contains("not found")));
    }

    #[test]
    fn names_follow_the_template_and_fall_back_to_the_volume_id() {
        let mut unnamed = volume("v2", "p1", VolumeStatus::Available, 1);
        unnamed.name = None;
        let f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1", "v2"])],
            vec![volume("v1", "p1", VolumeStatus::Available, 1), unnamed],
        );
        let plan = plan(&f, &settings(), now());
        let names: Vec<String> = plan
            .iter()
            .filter_map(|p| match &p.decision {
                Decision::Backup { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["vol-v1-2026-11-25-12-00-00", "v2-2026-11-25-12-00-00"]);
        let long = Volume { name: Some("x".repeat(300)), ..volume("v3", "p1", VolumeStatus::Available, 1) };
        assert_eq!(backup_name("{volume_name}-{backup_date}", "%Y", &f.servers[0], &long, now()).chars().count(), 255);
    }

    #[test]
    fn incrementals_follow_own_fulls_and_a_foreign_newest_backup_forces_a_full() {
        let mut f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1", "v2"])],
            vec![volume("v1", "p1", VolumeStatus::Available, 1), volume("v2", "p1", VolumeStatus::Available, 1)],
        );
        f.backups.insert("v1".into(), vec![backup("b1", "v1", BackupKind::Full, 24, BackupStatus::Available)]);
        f.backups.insert(
            "v2".into(),
            vec![
                backup("b2", "v2", BackupKind::Full, 24, BackupStatus::Available),
                backup("user", "v2", BackupKind::Full, 2, BackupStatus::Available),
            ],
        );
        f.own = ["b1", "b2"].into_iter().map(BackupId::from).collect();
        let plan = plan(&f, &settings(), now());
        assert!(matches!(decision_of(&plan, "v1"), Decision::Backup { kind: BackupKind::Incremental, note: None, .. }));
        match decision_of(&plan, "v2") {
            Decision::Backup { kind: BackupKind::Full, note: Some(note), .. } => {
                assert!(note.contains("user"), "{note}")
            }
            other => panic!("expected a full with a note, got {other:?}"),
        }
    }

    #[test]
    fn the_min_interval_floor_skips_recent_volumes_and_zero_disables_it() {
        let mut f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1"])],
            vec![volume("v1", "p1", VolumeStatus::Available, 1)],
        );
        let mut recent = backup("b1", "v1", BackupKind::Full, 0, BackupStatus::Available);
        recent.created_at = now() - Duration::minutes(10);
        f.backups.insert("v1".into(), vec![recent]);
        f.own.insert("b1".into());
        let plan1 = plan(&f, &settings(), now());
        assert!(
            matches!(decision_of(&plan1, "v1"), Decision::Skip { reason } if reason.contains("backup_min_interval"))
        );
        let no_floor = PlanSettings { backup_min_interval: Duration::zero(), ..settings() };
        let plan2 = plan(&f, &no_floor, now());
        assert!(matches!(decision_of(&plan2, "v1"), Decision::Backup { .. }));
    }

    #[test]
    fn too_recent_measures_between_cycle_starts_with_a_tenth_of_slack() {
        let min = Duration::seconds(1800);
        let cases: &[(i64, i64, bool)] = &[
            // (seconds between the cycle starts, interval, too recent)
            (1800, 1800, false), // the default period: every cycle is due
            (1799, 1800, false), // a cron cycle that woke a second earlier than the last
            (1620, 1800, false), // a tenth early: still on time
            (1619, 1800, true),
            (600, 1800, true), // an on-demand trigger ten minutes after a cycle
            (0, 1800, true),
            (-30, 1800, true),              // clocks apart: the last cycle "in the future"
            (5, 0, false),                  // 0 disables the floor
            (86_400 - 3600, 86_400, false), // a daily cron an hour late yesterday
        ];
        for &(gap, interval, expected) in cases {
            let made = now() - Duration::seconds(gap);
            assert_eq!(
                too_recent(made, now(), Duration::seconds(interval)),
                expected,
                "gap {gap} s, interval {interval} s"
            );
        }
        assert_eq!(min_interval_tolerance(min), Duration::seconds(180));
    }

    #[test]
    fn the_floor_counts_from_the_cycle_that_made_the_backup_not_from_cinders_created_at() {
        let mut f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1", "v2"])],
            vec![volume("v1", "p1", VolumeStatus::Available, 1), volume("v2", "p1", VolumeStatus::Available, 1)],
        );
        // Both backups were created 20 minutes after their cycle started (queued
        // behind the concurrency limits); that cycle started 30 minutes ago.
        for (id, vol) in [("b1", "v1"), ("b2", "v2")] {
            let mut b = backup(id, vol, BackupKind::Full, 0, BackupStatus::Available);
            b.created_at = now() - Duration::minutes(10);
            f.backups.insert(vol.into(), vec![b]);
            f.own.insert(id.into());
        }
        f.made_at.insert("b1".into(), now() - Duration::minutes(30));
        let plan = plan(&f, &settings(), now());
        assert!(matches!(decision_of(&plan, "v1"), Decision::Backup { .. }), "{plan:?}");
        // b2's cycle is unknown (made before an upgrade): its created_at counts.
        match decision_of(&plan, "v2") {
            Decision::Skip { reason } => {
                assert!(reason.contains("b2 was created at") && reason.contains("600 s ago"), "{reason}");
                assert!(reason.contains("backup_min_interval (1800 s, less a tolerance of 180 s)"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quotas_and_project_limits_count_what_the_plan_already_takes() {
        let mut f = fleet(
            vec![
                server("s1", "p1", Some("true"), &["v1", "v2", "v3"]),
                server("s2", "p2", Some("true"), &["w1", "w2"]),
            ],
            vec![
                volume("v1", "p1", VolumeStatus::Available, 10),
                volume("v2", "p1", VolumeStatus::Available, 10),
                volume("v3", "p1", VolumeStatus::Available, 10),
                volume("w1", "p2", VolumeStatus::Available, 1),
                volume("w2", "p2", VolumeStatus::Available, 1),
            ],
        );
        // p1: room for two more backups by count, 25 GB by size.
        f.quotas.insert(
            "p1".into(),
            BackupQuota {
                project_id: "p1".into(),
                backups: Quota { limit: 10, in_use: 8, reserved: 0 },
                gigabytes: Quota { limit: 100, in_use: 75, reserved: 0 },
            },
        );
        let mut s = settings();
        s.project_volume_limit = Some(10);
        s.project_volume_limit_overrides.insert("p2".into(), 1);
        let plan = plan(&f, &s, now());
        assert!(matches!(decision_of(&plan, "v1"), Decision::Backup { .. }));
        assert!(matches!(decision_of(&plan, "v2"), Decision::Backup { .. }));
        match decision_of(&plan, "v3") {
            Decision::Fail { reason } => {
                assert!(reason.contains("backup_gigabytes quota exceeded: limit 100 GB, in use 75 GB"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(decision_of(&plan, "w1"), Decision::Backup { .. }));
        assert!(
            matches!(decision_of(&plan, "w2"), Decision::Fail { reason } if reason.contains("project volume limit reached: 1"))
        );
    }

    #[test]
    fn the_backups_count_quota_fails_before_cinder_would() {
        let mut f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1", "v2"])],
            vec![volume("v1", "p1", VolumeStatus::Available, 1), volume("v2", "p1", VolumeStatus::Available, 1)],
        );
        f.quotas.insert(
            "p1".into(),
            BackupQuota {
                project_id: "p1".into(),
                backups: Quota { limit: 10, in_use: 9, reserved: 0 },
                gigabytes: Quota { limit: -1, in_use: 0, reserved: 0 },
            },
        );
        let plan = plan(&f, &settings(), now());
        assert!(matches!(decision_of(&plan, "v1"), Decision::Backup { .. }));
        assert!(
            matches!(decision_of(&plan, "v2"), Decision::Fail { reason } if reason.contains("backups quota exceeded: limit 10, in use 9"))
        );
    }

    #[test]
    fn a_volume_shared_by_two_flagged_servers_is_planned_once() {
        let f = fleet(
            vec![server("s1", "p1", Some("true"), &["v1"]), server("s2", "p1", Some("true"), &["v1"])],
            vec![volume("v1", "p1", VolumeStatus::InUse, 1)],
        );
        assert_eq!(plan(&f, &settings(), now()).len(), 1);
    }
}

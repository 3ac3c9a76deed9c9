//! The retention plan: which backups of one volume to delete, and why every
//! other one stays. A pure function of the volume's backups, the rules and
//! `now`; the run ([`super::run`]) reads ([`super::inventory`]), calls
//! [`plan`], writes every decision to the audit table and deletes.
//!
//! Rules, in the order they are applied to each backup of a volume:
//! 1. **Ownership floor.** A backup is Staffeln's only when it has a
//!    `backup_data` row *and* `__automated_backup` metadata, or a row adopted
//!    from the original (Python) Staffeln, which set no metadata on its
//!    backups (origin `staffeln-py`, see `db::legacy`); anything else is kept
//!    (fail closed).
//! 2. **Busy.** A backup that is `creating`, `restoring` or `deleting`, or in
//!    a status this version does not know, is skipped; the next run looks again.
//! 3. **Errors.** Staffeln's backups in `error` or `error_deleting` are deleted.
//! 4. **Age.** An available backup younger than the retention time
//!    (`retention_time`, or the server metadata `retention_metadata_key`) is
//!    kept.
//! 5. **Archival tiers** (`archival_rules`, or the server metadata
//!    `archival_metadata_key`): among Staffeln's available backups of the
//!    volume, the latest N, and the newest of each of the last N calendar
//!    days, ISO weeks, months and years (in `backup_timezone`) that have a
//!    backup, are kept. Tiers count independently (like restic's `--keep-*`).
//! 6. Everything else of Staffeln's that is available is expired: deleted.
//!
//! Then the floors, repeated until nothing changes:
//! * **Last successful.** The newest available backup of Staffeln's of a
//!   volume that still exists is kept. For a volume that no longer exists
//!   this floor is lifted: its backups follow rules 1–6, so the last one
//!   goes once it is older than the retention time (and no tier keeps it).
//! * **Chains.** Cinder does not tell an incremental's parent; it chains a
//!   new incremental to the newest available backup of the volume, so the
//!   parent of an incremental is taken to be the newest older backup that
//!   could have been available (not `creating` or `error`; on equal times,
//!   all of them). Every parent of a backup that is not deleted is kept.
//! * **Cinder's word.** A backup Cinder marks `has_dependent_backups` is
//!   deleted only when every incremental inferred to depend on it is deleted
//!   first in the same run; when none is inferred it is kept.
//!
//! Deletes carry a wave: a backup is deleted only after the backups of
//! earlier waves (its incrementals, newer) are gone, so a chain goes
//! newest-first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::conf::types::{DURATION_EXPECTED, OsloDuration};
use crate::objects::{Backup, BackupId, BackupKind, BackupStatus, ProjectId, Server, ServerId, VolumeId};

/// One archival tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Latest,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Tier {
    pub const ALL: [Tier; 5] = [Tier::Latest, Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Latest => "latest",
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
        }
    }

    fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The calendar bucket of `at` in `tz` (`None` for `latest`).
    pub fn bucket(self, at: DateTime<Utc>, tz: Tz) -> Option<String> {
        let local = at.with_timezone(&tz).date_naive();
        match self {
            Tier::Latest => None,
            Tier::Daily => Some(local.format("%Y-%m-%d").to_string()),
            Tier::Weekly => {
                let w = local.iso_week();
                Some(format!("{}-W{:02}", w.year(), w.week()))
            }
            Tier::Monthly => Some(local.format("%Y-%m").to_string()),
            Tier::Yearly => Some(local.format("%Y").to_string()),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many backups each archival tier keeps (0: the tier is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchivalRules {
    pub latest: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl ArchivalRules {
    /// Parses `latest:3,daily:7,weekly:4,monthly:12,yearly:2` (any subset,
    /// any order, spaces allowed; empty: no tiers).
    pub fn parse(text: &str) -> Result<ArchivalRules, RulesError> {
        let bad = |problem: String| RulesError::BadArchival { text: text.to_owned(), problem };
        let mut rules = ArchivalRules::default();
        let mut seen = HashSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tier, count) = part.split_once(':').ok_or_else(|| bad(format!("{part:?} has no ':'")))?;
            let tier = Tier::parse(&tier.trim().to_ascii_lowercase())
                .ok_or_else(|| bad(format!("unknown tier {:?}", tier.trim())))?;
            let count: u32 =
                count.trim().parse().map_err(|_| bad(format!("{:?} is not a count for {tier}", count.trim())))?;
            if !seen.insert(tier) {
                return Err(bad(format!("{tier} is given twice")));
            }
            *rules.slot(tier) = count;
        }
        Ok(rules)
    }

    pub fn count(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Latest => self.latest,
            Tier::Daily => self.daily,
            Tier::Weekly => self.weekly,
            Tier::Monthly => self.monthly,
            Tier::Yearly => self.yearly,
        }
    }

    fn slot(&mut self, tier: Tier) -> &mut u32 {
        match tier {
            Tier::Latest => &mut self.latest,
            Tier::Daily => &mut self.daily,
            Tier::Weekly => &mut self.weekly,
            Tier::Monthly => &mut self.monthly,
            Tier::Yearly => &mut self.yearly,
        }
    }

    /// Each tier at the larger of the two counts (keeps whatever either keeps).
    pub fn union(self, other: ArchivalRules) -> ArchivalRules {
        let mut out = self;
        for tier in Tier::ALL {
            *out.slot(tier) = self.count(tier).max(other.count(tier));
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        Tier::ALL.iter().all(|t| self.count(*t) == 0)
    }
}

impl fmt::Display for ArchivalRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> =
            Tier::ALL.iter().filter(|t| self.count(**t) > 0).map(|t| format!("{t}:{}", self.count(*t))).collect();
        f.write_str(&parts.join(","))
    }
}

/// A retention time or archival rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("{text:?}: expected {DURATION_EXPECTED}, longer than zero")]
    BadRetention { text: String },
    #[error("{text:?}: expected tier:count pairs such as latest:3,daily:7,weekly:4,monthly:12,yearly:2 ({problem})")]
    BadArchival { text: String, problem: String },
}

impl RulesError {
    /// What was expected, without the value (the caller names it).
    pub fn reason(&self) -> String {
        match self {
            RulesError::BadRetention { .. } => format!("expected {DURATION_EXPECTED}, longer than zero"),
            RulesError::BadArchival { problem, .. } => {
                format!("expected tier:count pairs such as latest:3,daily:7,weekly:4,monthly:12,yearly:2 ({problem})")
            }
        }
    }
}

/// A retention time: the duration grammar of `retention_time`, never zero.
/// Kept as the typed duration it was read as, and shown as written (`2w3d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionTime {
    written: OsloDuration,
    duration: Duration,
}

impl RetentionTime {
    /// A duration the configuration loader already typed; refused when zero.
    pub fn new(written: OsloDuration) -> Result<RetentionTime, RulesError> {
        let bad = || RulesError::BadRetention { text: written.to_string() };
        let secs = i64::try_from(written.as_secs()).map_err(|_| bad())?;
        let duration = Duration::try_seconds(secs).filter(|d| *d > Duration::zero()).ok_or_else(bad)?;
        Ok(RetentionTime { written, duration })
    }

    /// A retention time written in server metadata (`retention_metadata_key`).
    pub fn parse(text: &str) -> Result<RetentionTime, RulesError> {
        let written =
            OsloDuration::parse(text.trim()).ok_or_else(|| RulesError::BadRetention { text: text.to_owned() })?;
        RetentionTime::new(written)
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for RetentionTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.written.fmt(f)
    }
}

/// A retention time written in server metadata, as a duration.
pub fn parse_retention(text: &str) -> Result<Duration, RulesError> {
    RetentionTime::parse(text).map(|r| r.duration())
}

/// The rules of the configuration and the metadata keys that override them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSettings {
    /// `retention_time`.
    pub retention: RetentionTime,
    pub archival: ArchivalRules,
    pub retention_key: String,
    pub archival_key: String,
    /// Zone of the archival calendar.
    pub timezone: Tz,
}

/// The rules one volume's backups follow, and where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub retention: Duration,
    pub archival: ArchivalRules,
    /// `retention_time 2w3d, archival_rules none` or the servers whose
    /// metadata set them.
    pub source: String,
}

/// The rules of a volume, from the metadata of the servers it belongs to
/// (attached now, or named by its backups). Invalid values are reported in
/// the returned warnings and ignored: that server follows the configuration.
/// With several servers the most keeping wins: the longest retention and, per
/// tier, the largest count.
pub fn rules_for(settings: &RuleSettings, servers: &[&Server]) -> (Rules, Vec<String>) {
    let global = Rules {
        retention: settings.retention.duration(),
        archival: settings.archival,
        source: format!("retention_time {}, archival_rules {}", settings.retention, settings.archival),
    };
    let mut warnings = Vec::new();
    let mut merged: Option<Rules> = None;
    let mut sources = Vec::new();
    let mut servers: Vec<&&Server> = servers.iter().collect();
    servers.sort_by(|a, b| a.id.cmp(&b.id));
    servers.dedup_by(|a, b| a.id == b.id);
    for server in servers {
        let mut rules = global.clone();
        let mut overridden = Vec::new();
        if let Some(value) = server.metadata.get(&settings.retention_key) {
            match parse_retention(value) {
                Ok(d) => {
                    rules.retention = d;
                    overridden.push(format!("{}={}", settings.retention_key, value.trim()));
                }
                Err(err) => warnings.push(format!(
                    "server {} metadata {}: {err}; ignored, retention_time {} applies",
                    server.id, settings.retention_key, settings.retention
                )),
            }
        }
        if let Some(value) = server.metadata.get(&settings.archival_key) {
            match ArchivalRules::parse(value) {
                Ok(a) => {
                    rules.archival = a;
                    overridden.push(format!("{}={}", settings.archival_key, value.trim()));
                }
                Err(err) => warnings.push(format!(
                    "server {} metadata {}: {err}; ignored, archival_rules {} applies",
                    server.id, settings.archival_key, settings.archival
                )),
            }
        }
        sources.push(if overridden.is_empty() {
            format!("server {}: configuration", server.id)
        } else {
            format!("server {}: {}", server.id, overridden.join(", "))
        });
        merged = Some(match merged {
            None => rules,
            Some(m) => Rules {
                retention: m.retention.max(rules.retention),
                archival: m.archival.union(rules.archival),
                source: String::new(),
            },
        });
    }
    match merged {
        None => (global, warnings),
        Some(mut rules) => {
            if sources.iter().all(|s| s.ends_with(": configuration")) {
                rules.source = global.source;
            } else {
                rules.source = format!(
                    "retention {}s, archival {} ({})",
                    rules.retention.num_seconds(),
                    rules.archival,
                    sources.join("; ")
                );
            }
            (rules, warnings)
        }
    }
}

/// One backup of a volume as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub backup: Backup,
    /// Staffeln's database has a `backup_data` row for it.
    pub has_row: bool,
    /// Its metadata carries `__automated_backup` = true.
    pub has_marker: bool,
    /// Its row was adopted from the original Staffeln's database, which is
    /// all the original left to say the backup is its own.
    pub adopted: bool,
}

impl Candidate {
    /// Staffeln made it: a row and the metadata, or an adopted row.
    pub fn is_own(&self) -> bool {
        self.has_row && (self.has_marker || self.adopted)
    }
}

/// What retention does with a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionAction {
    Keep,
    Delete,
    /// Busy now: the next run decides.
    Skip,
}

impl RetentionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionAction::Keep => "keep",
            RetentionAction::Delete => "delete",
            RetentionAction::Skip => "skip",
        }
    }
}

impl fmt::Display for RetentionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why: one variant per rule and floor, with what the rule looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionReason {
    /// Kept: not made by Staffeln (which of the two marks is missing).
    NotStaffelns { missing_row: bool, missing_metadata: bool },
    /// Skipped: Cinder is working on it.
    InProgress { status: String },
    /// Skipped: a status this version does not know.
    UnknownStatus { status: String },
    /// Kept: younger than the retention time.
    WithinRetention { age_secs: i64, retention_secs: i64 },
    /// Kept by archival tiers: `(tier, bucket)`, `latest` with its rank.
    Archival { tiers: Vec<(Tier, String)> },
    /// Kept: the newest successful backup of a volume that still exists.
    LastSuccessful,
    /// Kept: a backup that stays depends on it.
    ChainParent { child: BackupId },
    /// Kept: Cinder says incrementals depend on it and none could be placed.
    UnplacedDependents,
    /// Deleted: older than the retention time and kept by no tier.
    Expired { age_secs: i64, retention_secs: i64, volume_gone: bool },
    /// Deleted: Cinder failed it.
    ErrorState { status: String },
}

impl RetentionReason {
    /// A short stable name, e.g. `expired`.
    pub fn code(&self) -> &'static str {
        match self {
            RetentionReason::NotStaffelns { .. } => "not_staffelns",
            RetentionReason::InProgress { .. } => "in_progress",
            RetentionReason::UnknownStatus { .. } => "unknown_status",
            RetentionReason::WithinRetention { .. } => "within_retention",
            RetentionReason::Archival { .. } => "archival",
            RetentionReason::LastSuccessful => "last_successful",
            RetentionReason::ChainParent { .. } => "chain_parent",
            RetentionReason::UnplacedDependents => "unplaced_dependents",
            RetentionReason::Expired { .. } => "expired",
            RetentionReason::ErrorState { .. } => "error_state",
        }
    }
}

fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m}min"),
        (0, h, m) => format!("{h}h{m:02}min"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

impl fmt::Display for RetentionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionReason::NotStaffelns { missing_row, missing_metadata } => {
                let what = match (missing_row, missing_metadata) {
                    (true, true) => "no backup_data row and no __automated_backup metadata",
                    (true, false) => "no backup_data row",
                    _ => "no __automated_backup metadata",
                };
                write!(f, "not made by Staffeln ({what})")
            }
            RetentionReason::InProgress { status } => write!(f, "backup is {status}; retried next run"),
            RetentionReason::UnknownStatus { status } => write!(f, "unknown backup status {status:?}; left alone"),
            RetentionReason::WithinRetention { age_secs, retention_secs } => {
                write!(f, "{} old, within the retention time of {}", human(*age_secs), human(*retention_secs))
            }
            RetentionReason::Archival { tiers } => {
                let list: Vec<String> = tiers.iter().map(|(t, b)| format!("{t} {b}")).collect();
                write!(f, "kept by archival tiers: {}", list.join(", "))
            }
            RetentionReason::LastSuccessful => f.write_str("newest successful backup of a volume that still exists"),
            RetentionReason::ChainParent { child } => write!(f, "backup {child}, which stays, is an incremental on it"),
            RetentionReason::UnplacedDependents => {
                f.write_str("Cinder reports dependent incrementals that cannot be placed in a chain")
            }
            RetentionReason::Expired { age_secs, retention_secs, volume_gone } => write!(
                f,
                "{} old, past the retention time of {}{}",
                human(*age_secs),
                human(*retention_secs),
                if *volume_gone { "; its volume no longer exists" } else { "" }
            ),
            RetentionReason::ErrorState { status } => write!(f, "backup is in {status}"),
        }
    }
}

/// The decision on one backup: what, why, and in which delete wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionDecision {
    pub backup_id: BackupId,
    pub backup_name: Option<String>,
    pub volume_id: VolumeId,
    pub project_id: ProjectId,
    pub created_at: DateTime<Utc>,
    pub status: BackupStatus,
    pub kind: BackupKind,
    pub action: RetentionAction,
    pub reason: RetentionReason,
    /// The reason as a sentence.
    pub message: String,
    /// Deletes only: 0 goes first; wave n after waves < n are gone.
    pub wave: Option<u32>,
    /// The rules applied and where they came from.
    pub rules: String,
}

/// Could this backup have been available when a later incremental was made?
fn could_be_parent(status: &BackupStatus) -> bool {
    !matches!(status, BackupStatus::Creating | BackupStatus::Error)
}

/// Parents of each backup (indices into `backups`): for an incremental, the
/// newest strictly older backups that could have been available (all of
/// them when several share that time); none for a full.
pub fn infer_parents(backups: &[Backup]) -> Vec<Vec<usize>> {
    backups
        .iter()
        .map(|child| {
            if !child.is_incremental {
                return Vec::new();
            }
            let newest_older = backups
                .iter()
                .filter(|b| b.created_at < child.created_at && could_be_parent(&b.status))
                .map(|b| b.created_at)
                .max();
            match newest_older {
                None => Vec::new(),
                Some(at) => backups
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.created_at == at && could_be_parent(&b.status))
                    .map(|(i, _)| i)
                    .collect(),
            }
        })
        .collect()
}

/// The decisions for every backup of one volume, newest first.
pub fn plan_volume(
    backups: &[Candidate],
    volume_exists: bool,
    rules: &Rules,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<RetentionDecision> {
    let plain: Vec<Backup> = backups.iter().map(|c| c.backup.clone()).collect();
    let parents = infer_parents(&plain);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); backups.len()];
    for (child, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(child);
        }
    }
    let retention_secs = rules.retention.num_seconds();
    // Staffeln's available backups, newest first (ties: larger id first, any fixed order will do).
    let mut own_available: Vec<usize> = (0..backups.len())
        .filter(|&i| backups[i].is_own() && backups[i].backup.status == BackupStatus::Available)
        .collect();
    own_available.sort_by(|&a, &b| {
        let (a, b) = (&backups[a].backup, &backups[b].backup);
        (b.created_at, &b.id).cmp(&(a.created_at, &a.id))
    });
    let archival = archival_keeps(&own_available, &plain, &rules.archival, tz);

    let mut decided: Vec<(RetentionAction, RetentionReason)> = backups
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let b = &c.backup;
            if !c.is_own() {
                return (
                    RetentionAction::Keep,
                    RetentionReason::NotStaffelns {
                        missing_row: !c.has_row,
                        missing_metadata: !c.has_marker && !c.adopted,
                    },
                );
            }
            match &b.status {
                BackupStatus::Creating | BackupStatus::Restoring | BackupStatus::Deleting => {
                    (RetentionAction::Skip, RetentionReason::InProgress { status: b.status.to_string() })
                }
                BackupStatus::Unknown(s) => {
                    (RetentionAction::Skip, RetentionReason::UnknownStatus { status: s.clone() })
                }
                BackupStatus::Error | BackupStatus::ErrorDeleting => {
                    (RetentionAction::Delete, RetentionReason::ErrorState { status: b.status.to_string() })
                }
                BackupStatus::Available => {
                    let age_secs = (now - b.created_at).num_seconds();
                    if age_secs <= retention_secs {
                        (RetentionAction::Keep, RetentionReason::WithinRetention { age_secs, retention_secs })
                    } else if let Some(tiers) = archival.get(&i) {
                        (RetentionAction::Keep, RetentionReason::Archival { tiers: tiers.clone() })
                    } else {
                        (
                            RetentionAction::Delete,
                            RetentionReason::Expired { age_secs, retention_secs, volume_gone: !volume_exists },
                        )
                    }
                }
            }
        })
        .collect();

    // Floor: the newest successful backup of a volume that still exists.
    if volume_exists
        && let Some(&newest) = own_available.first()
        && decided[newest].0 == RetentionAction::Delete
    {
        decided[newest] = (RetentionAction::Keep, RetentionReason::LastSuccessful);
    }
    // Floors on chains, until nothing changes.
    loop {
        let mut changed = false;
        let mut stack: Vec<usize> = (0..backups.len()).filter(|&i| decided[i].0 != RetentionAction::Delete).collect();
        while let Some(child) = stack.pop() {
            for &p in &parents[child] {
                if decided[p].0 == RetentionAction::Delete {
                    let reason = RetentionReason::ChainParent { child: backups[child].backup.id.clone() };
                    decided[p] = (RetentionAction::Keep, reason);
                    stack.push(p);
                    changed = true;
                }
            }
        }
        for i in 0..backups.len() {
            if decided[i].0 == RetentionAction::Delete
                && backups[i].backup.has_dependent_backups
                && children[i].is_empty()
            {
                decided[i] = (RetentionAction::Keep, RetentionReason::UnplacedDependents);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Waves: a delete waits for the deletes of its incrementals (all newer).
    let mut by_newest: Vec<usize> = (0..backups.len()).collect();
    by_newest.sort_by(|&a, &b| {
        let (a, b) = (&backups[a].backup, &backups[b].backup);
        (b.created_at, &b.id).cmp(&(a.created_at, &a.id))
    });
    let mut wave: Vec<Option<u32>> = vec![None; backups.len()];
    for &i in &by_newest {
        if decided[i].0 == RetentionAction::Delete {
            let after = children[i].iter().filter_map(|&c| wave[c]).max();
            wave[i] = Some(after.map_or(0, |w| w + 1));
        }
    }
    by_newest
        .into_iter()
        .map(|i| {
            let b = &backups[i].backup;
            let (action, reason) = decided[i].clone();
            RetentionDecision {
                backup_id: b.id.clone(),
                backup_name: b.name.clone(),
                volume_id: b.volume_id.clone(),
                project_id: b.project_id.clone(),
                created_at: b.created_at,
                status: b.status.clone(),
                kind: b.kind(),
                action,
                message: reason.to_string(),
                reason,
                wave: wave[i],
                rules: rules.source.clone(),
            }
        })
        .collect()
}

/// Which of `own_available` (newest first) the archival tiers keep, with
/// the tiers and buckets that keep each.
fn archival_keeps(
    own_available: &[usize],
    backups: &[Backup],
    rules: &ArchivalRules,
    tz: Tz,
) -> BTreeMap<usize, Vec<(Tier, String)>> {
    let mut keeps: BTreeMap<usize, Vec<(Tier, String)>> = BTreeMap::new();
    for tier in Tier::ALL {
        let n = rules.count(tier) as usize;
        if n == 0 {
            continue;
        }
        let mut seen: Vec<String> = Vec::new();
        for (rank, &i) in own_available.iter().enumerate() {
            match tier.bucket(backups[i].created_at, tz) {
                None if rank < n => keeps.entry(i).or_default().push((tier, format!("#{}", rank + 1))),
                None => break,
                Some(bucket) => {
                    if seen.last() == Some(&bucket) {
                        continue;
                    }
                    if seen.len() == n {
                        break;
                    }
                    seen.push(bucket.clone());
                    keeps.entry(i).or_default().push((tier, bucket));
                }
            }
        }
    }
    keeps
}

/// `backup_data` rows whose backup Cinder no longer lists: recorded before
/// the listing began (`listed_since`) and absent from it. Rows written since
/// may belong to backups the listing could not see yet.
pub fn stale_rows<'a>(
    rows: &'a [(String, NaiveDateTime)],
    listed: &HashSet<BackupId>,
    listed_since: DateTime<Utc>,
) -> Vec<&'a str> {
    rows.iter()
        .filter(|(id, at)| at.and_utc() < listed_since && !listed.contains(&BackupId(id.clone())))
        .map(|(id, _)| id.as_str())
        .collect()
}

/// The servers a volume's rules come from: those it is attached to, and
/// those its backups of Staffeln's were made for (`instance_key`), when they
/// still exist.
pub fn related_servers<'a>(
    attachments: &[ServerId],
    backups: &[Candidate],
    instance_key: &str,
    servers: &'a HashMap<ServerId, Server>,
) -> Vec<&'a Server> {
    let mut ids: Vec<ServerId> = attachments.to_vec();
    for c in backups.iter().filter(|c| c.is_own()) {
        if let Some(id) = c.backup.metadata.get(instance_key) {
            ids.push(ServerId(id.clone()));
        }
    }
    ids.sort();
    ids.dedup();
    ids.iter().filter_map(|id| servers.get(id)).collect()
}

/// One volume with backups, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInput {
    pub volume_id: VolumeId,
    /// Cinder still has the volume. Discovery says `false` only when the
    /// volume's own project confirms it is gone (fail closed).
    pub exists: bool,
    /// Servers the volume is attached to.
    pub attachments: Vec<ServerId>,
    /// Every backup of the volume, whoever made it.
    pub backups: Vec<Candidate>,
}

/// What discovery found: the volumes with a backup of Staffeln's, and the
/// servers whose metadata may carry their rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub volumes: Vec<VolumeInput>,
    pub servers: HashMap<ServerId, Server>,
}

/// The decisions of one run, and the rule values that were reported and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Volume by volume (by id), each volume's backups newest first.
    pub decisions: Vec<RetentionDecision>,
    pub warnings: Vec<String>,
}

/// Decides every backup of every volume of `inventory`.
pub fn plan(inventory: &Inventory, settings: &RuleSettings, instance_key: &str, now: DateTime<Utc>) -> RetentionPlan {
    let mut volumes: Vec<&VolumeInput> = inventory.volumes.iter().collect();
    volumes.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
    let mut out = RetentionPlan::default();
    for volume in volumes {
        let servers = related_servers(&volume.attachments, &volume.backups, instance_key, &inventory.servers);
        let (rules, warnings) = rules_for(settings, &servers);
        for w in warnings {
            if !out.warnings.contains(&w) {
                out.warnings.push(w);
            }
        }
        out.decisions.extend(plan_volume(&volume.backups, volume.exists, &rules, settings.timezone, now));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

//! The digest as a decision: what one backup cycle means for a project (or for
//! the operator, over all projects), as a view model the templates only print.
//! Pure: no I/O, `now` is passed in.
//!
//! The input types are deliberately plain; the conductor fills them from the
//! shared `objects` (Server, Volume, Backup, BackupQuota); `BackupKind` and
//! `Quota` are the shared ones.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::objects::{BackupKind, Quota};

/// One backup attempted in the cycle, successful or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupResult {
    pub server_id: String,
    /// Empty when the server has no name; the id is shown instead.
    pub server_name: String,
    pub volume_id: String,
    /// Empty when the volume has no name; the id is shown instead.
    pub volume_name: String,
    /// `None` when Cinder never created the backup.
    pub backup_id: Option<String>,
    pub backup_name: String,
    pub kind: BackupKind,
    pub size_gb: u64,
    pub success: bool,
    /// Neither a success nor a failure yet: Cinder was still making the
    /// backup when the cycle stopped waiting for it (`fail_reason` says so).
    pub in_progress: bool,
    /// Why it failed (or is still running); `None` for a success.
    pub fail_reason: Option<String>,
}

/// A server whose `last-backup-time` could not be set, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstampedServer {
    pub server_id: String,
    pub server_name: String,
    pub reason: String,
}

/// A volume the cycle did not back up, and why (skip metadata, status, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedVolume {
    pub server_id: String,
    pub server_name: String,
    pub volume_id: String,
    pub volume_name: String,
    pub reason: String,
}

/// A project and what its cycle produced: the input of one project digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectBackups {
    pub project_id: String,
    pub project_name: String,
    pub results: Vec<BackupResult>,
    pub skipped: Vec<SkippedVolume>,
    /// Servers whose `last-backup-time` could not be set.
    pub unstamped: Vec<UnstampedServer>,
    /// Cinder `backups` quota (a count); `None` when it could not be read.
    pub backups_quota: Option<Quota>,
    /// Cinder `backup_gigabytes` quota; `None` when it could not be read.
    pub gigabytes_quota: Option<Quota>,
    /// E-mail addresses of the project's members (from Keystone role
    /// assignments); only used when neither `receiver` nor
    /// `project_receiver_domain` is set, see `receivers::needs_member_emails`.
    pub member_emails: Vec<String>,
    /// RPO compliance, quota foresight and restore drills of the project;
    /// `None` when they could not be assessed.
    pub assurance: Option<ProjectAssurance>,
}

/// What the digest says about a project's protection (issue 19): how many
/// flagged volumes are within their RPO, which are not and why, a
/// projected quota exhaustion, and the restore drills since the last digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProjectAssurance {
    pub within: usize,
    pub total: usize,
    pub misses: Vec<RpoMiss>,
    /// The warning's sentence, when the quota runs out within the horizon.
    pub quota_warning: Option<String>,
    /// One sentence per drill.
    pub drills: Vec<String>,
}

/// A volume out of its RPO, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpoMiss {
    pub volume: String,
    pub reason: String,
}

impl ProjectBackups {
    /// A project gets a digest when the cycle attempted at least one backup in
    /// it, or a server's `last-backup-time` could not be set; skipped volumes
    /// alone do not make a digest.
    pub fn has_backups(&self) -> bool {
        !self.results.is_empty() || !self.unstamped.is_empty()
    }
}

/// Colour of a usage or an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Green,
    Yellow,
    Red,
}

impl Band {
    /// CSS class name (`green`, `yellow`, `red`).
    pub fn class(self) -> &'static str {
        match self {
            Band::Green => "green",
            Band::Yellow => "yellow",
            Band::Red => "red",
        }
    }

    /// Inline CSS for mail clients that drop `<style>`.
    pub fn style(self) -> &'static str {
        match self {
            Band::Green => "background-color:#d4edda;color:#155724",
            Band::Yellow => "background-color:#fff3cd;color:#856404",
            Band::Red => "background-color:#f8d7da;color:#721c24",
        }
    }
}

/// Quota colour for a usage percentage: green below 50 %, yellow from 50 % to
/// 80 % inclusive, red above 80 %.
pub fn colour_band(pct: f64) -> Band {
    if pct < 50.0 {
        Band::Green
    } else if pct <= 80.0 {
        Band::Yellow
    } else {
        Band::Red
    }
}

/// Succeeded / failed / skipped volumes, and backups still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub running: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.running += other.running;
    }
}

/// One quota as shown: `limit_text` is `unlimited` for -1, `percent_text` is
/// e.g. `49 %`; `band` is `None` when the quota is unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaLine {
    /// `backups` or `backup_gigabytes`.
    pub resource: &'static str,
    /// `Backups` or `Backup gigabytes`.
    pub label: &'static str,
    pub known: bool,
    pub unlimited: bool,
    pub limit: Option<i64>,
    pub used: Option<i64>,
    pub percent: Option<f64>,
    pub limit_text: String,
    pub used_text: String,
    pub percent_text: String,
    pub band: Option<Band>,
}

/// One backup as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeLine {
    pub server_id: String,
    /// The server's name, or its id when it has none.
    pub server: String,
    pub volume_id: String,
    /// The volume's name, or its id when it has none.
    pub volume: String,
    pub backup_name: String,
    /// Empty when no backup was created.
    pub backup_id: String,
    pub kind: BackupKind,
    pub size_gb: u64,
    pub success: bool,
    /// Cinder is still making the backup (see [`BackupResult::in_progress`]).
    pub in_progress: bool,
    /// `true`, `false` or `still running`: what the success column shows.
    pub outcome: String,
    /// Green for a success, yellow for a backup still running, red for a
    /// failure.
    pub band: Band,
    /// Empty for a success.
    pub fail_reason: String,
}

impl VolumeLine {
    /// `full` or `incremental`.
    pub fn kind_text(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// One skipped volume as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedLine {
    pub server_id: String,
    pub server: String,
    pub volume_id: String,
    pub volume: String,
    pub reason: String,
}

/// One server whose `last-backup-time` could not be set, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnstampedLine {
    pub server_id: String,
    pub server: String,
    pub reason: String,
}

/// Everything about one project in a digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectSection {
    pub project_id: String,
    pub project_name: String,
    pub quotas: Vec<QuotaLine>,
    /// Failures first, then backups still running, then successes; by server
    /// and volume within each.
    pub volumes: Vec<VolumeLine>,
    pub skipped: Vec<SkippedLine>,
    /// Servers whose `last-backup-time` could not be set.
    pub unstamped: Vec<UnstampedLine>,
    pub counts: Counts,
    pub assurance: Option<ProjectAssurance>,
    /// Lines of this project that this digest leaves out: the operator
    /// digest lists what did not succeed, up to [`OPERATOR_DIGEST_LINES`];
    /// every line is in the project's own digest.
    pub not_listed: usize,
}

/// At most this many volumes and servers are listed in the operator digest,
/// failures and backups still running first; successes are only counted.
/// Listing every volume of a 10,000-volume cloud made a mail of 8 MB (HTML
/// and text), 11 MB base64-encoded, which a stock Postfix
/// (`message_size_limit` 10 MB) refuses.
pub const OPERATOR_DIGEST_LINES: usize = 1_000;

impl ProjectSection {
    /// Volumes and servers listed.
    fn lines(&self) -> usize {
        self.volumes.len() + self.skipped.len() + self.unstamped.len()
    }
}

/// Whom a digest is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scope {
    /// One project's digest.
    Project { project_id: String, project_name: String },
    /// The operator's digest of every project.
    Operator,
}

/// The view model of one digest mail, the templates' only input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub scope: Scope,
    pub subject: String,
    /// `2026-11-25 16:14:48 UTC`.
    pub backup_time: String,
    #[serde(skip)]
    pub generated_at: DateTime<Utc>,
    pub projects: Vec<ProjectSection>,
    pub counts: Counts,
    /// What a resend of this digest shares with its first send: the scope
    /// and the results reported (not the time of rendering, nor quotas
    /// read at that moment). The Message-ID is made of it, so a digest sent
    /// again after a conductor died between the delivery and the "reported"
    /// mark carries the same Message-ID as the first, and mail systems can
    /// drop the copy.
    #[serde(skip)]
    pub identity: String,
}

/// 128-bit FNV-1a over the parts of a digest that a resend repeats.
fn identity<'a>(scope: &str, projects: impl Iterator<Item = &'a ProjectBackups>) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let mut eat = |text: &str| {
        for b in text.bytes().chain(std::iter::once(0xff)) {
            h ^= u128::from(b);
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    };
    eat(scope);
    for p in projects {
        eat(&p.project_id);
        for r in &p.results {
            eat(&r.volume_id);
            eat(r.backup_id.as_deref().unwrap_or(""));
            eat(if r.success {
                "ok"
            } else if r.in_progress {
                "running"
            } else {
                "failed"
            });
            eat(r.fail_reason.as_deref().unwrap_or(""));
        }
        for s in &p.skipped {
            eat(&s.volume_id);
            eat(&s.reason);
        }
        for u in &p.unstamped {
            eat(&u.server_id);
            eat(&u.reason);
        }
    }
    format!("{h:032x}")
}

impl Digest {
    /// For logs and errors: `project demo (4f1c…)` or `operator digest`.
    pub fn describe(&self) -> String {
        match &self.scope {
            Scope::Project { project_id, project_name } => format!("project {project_name} ({project_id})"),
            Scope::Operator => "operator digest".to_owned(),
        }
    }

    /// The operator's digest of every project.
    pub fn is_operator(&self) -> bool {
        self.scope == Scope::Operator
    }

    /// How many lines the operator digest lists at most.
    pub fn line_limit(&self) -> usize {
        OPERATOR_DIGEST_LINES
    }
}

/// The digest of one project's cycle.
pub fn project_digest(project: &ProjectBackups, now: DateTime<Utc>) -> Digest {
    let section = project_section(project);
    let counts = section.counts;
    let name = single_line(&project.project_name);
    Digest {
        scope: Scope::Project { project_id: project.project_id.clone(), project_name: project.project_name.clone() },
        subject: format!("Staffeln backups for project {name}: {}", counts_text(counts)),
        backup_time: time_text(now),
        generated_at: now,
        projects: vec![section],
        counts,
        identity: identity("project", std::iter::once(project)),
    }
}

/// The operator's digest over the projects given (those with backups), in
/// project-name order.
pub fn operator_digest(projects: &[ProjectBackups], now: DateTime<Utc>) -> Digest {
    let mut with_backups: Vec<&ProjectBackups> = projects.iter().filter(|p| p.has_backups()).collect();
    with_backups.sort_by(|a, b| a.project_name.cmp(&b.project_name).then_with(|| a.project_id.cmp(&b.project_id)));
    let mut room = OPERATOR_DIGEST_LINES;
    // Each section is cut as it is made, so that a large cloud's successes
    // are never all held at once.
    let sections: Vec<ProjectSection> = with_backups
        .into_iter()
        .map(|project| {
            let mut section = project_section(project);
            let before = section.lines();
            section.volumes.retain(|v| !v.success);
            keep_within(&mut section.volumes, &mut room);
            keep_within(&mut section.unstamped, &mut room);
            keep_within(&mut section.skipped, &mut room);
            section.not_listed = before - section.lines();
            section
        })
        .collect();
    let mut counts = Counts::default();
    for section in &sections {
        counts.add(section.counts);
    }
    let n = sections.len();
    let projects_text = if n == 1 { "1 project".to_owned() } else { format!("{n} projects") };
    Digest {
        scope: Scope::Operator,
        subject: format!("Staffeln backups for {projects_text}: {}", counts_text(counts)),
        backup_time: time_text(now),
        generated_at: now,
        projects: sections,
        counts,
        identity: identity("operator", projects.iter().filter(|p| p.has_backups())),
    }
}

/// Cuts `lines` to what is left of `room`, and takes it from `room`.
fn keep_within<T>(lines: &mut Vec<T>, room: &mut usize) {
    lines.truncate(*room);
    *room -= lines.len();
}

/// What counts against the limit, as Cinder counts it: in use plus reserved.
pub fn quota_used(quota: Quota) -> i64 {
    quota.in_use.max(0).saturating_add(quota.reserved.max(0))
}

/// Usage ([`quota_used`]) as a percentage of `limit`: `None` for unlimited
/// (negative limit); a zero limit is full (100 %) whatever is used.
pub fn usage_percent(quota: Quota) -> Option<f64> {
    if quota.limit < 0 {
        return None;
    }
    if quota.limit == 0 {
        return Some(100.0);
    }
    Some(quota_used(quota) as f64 * 100.0 / quota.limit as f64)
}

fn quota_line(resource: &'static str, label: &'static str, unit: &str, quota: Option<Quota>) -> QuotaLine {
    let Some(quota) = quota else {
        return QuotaLine {
            resource,
            label,
            known: false,
            unlimited: false,
            limit: None,
            used: None,
            percent: None,
            limit_text: "unknown".to_owned(),
            used_text: "unknown".to_owned(),
            percent_text: "unknown".to_owned(),
            band: None,
        };
    };
    let percent = usage_percent(quota);
    let used = quota_used(quota);
    let used_text = format!("{used}{unit}");
    match percent {
        None => QuotaLine {
            resource,
            label,
            known: true,
            unlimited: true,
            limit: None,
            used: Some(used),
            percent: None,
            limit_text: "unlimited".to_owned(),
            used_text,
            percent_text: "unlimited".to_owned(),
            band: Some(Band::Green),
        },
        Some(pct) => QuotaLine {
            resource,
            label,
            known: true,
            unlimited: false,
            limit: Some(quota.limit),
            used: Some(used),
            percent: Some(pct),
            limit_text: format!("{}{unit}", quota.limit),
            used_text,
            percent_text: percent_text(pct),
            band: Some(colour_band(pct)),
        },
    }
}

/// `49 %`, `80.5 %`: one decimal, none when whole.
fn percent_text(pct: f64) -> String {
    let rounded = (pct * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 { format!("{rounded:.0} %") } else { format!("{rounded:.1} %") }
}

fn project_section(project: &ProjectBackups) -> ProjectSection {
    let mut volumes: Vec<VolumeLine> = project
        .results
        .iter()
        .map(|r| VolumeLine {
            server_id: r.server_id.clone(),
            server: name_or_id(&r.server_name, &r.server_id),
            volume_id: r.volume_id.clone(),
            volume: name_or_id(&r.volume_name, &r.volume_id),
            backup_name: r.backup_name.clone(),
            backup_id: r.backup_id.clone().unwrap_or_default(),
            kind: r.kind,
            size_gb: r.size_gb,
            success: r.success,
            in_progress: r.in_progress && !r.success,
            outcome: match (r.success, r.in_progress) {
                (true, _) => "true",
                (false, true) => "still running",
                (false, false) => "false",
            }
            .to_owned(),
            band: match (r.success, r.in_progress) {
                (true, _) => Band::Green,
                (false, true) => Band::Yellow,
                (false, false) => Band::Red,
            },
            fail_reason: match (&r.fail_reason, r.success) {
                (Some(reason), _) => reason.clone(),
                (None, true) => String::new(),
                (None, false) => "unknown".to_owned(),
            },
        })
        .collect();
    // Failures, then backups still running, then successes.
    let rank = |v: &VolumeLine| (v.success, v.in_progress);
    volumes.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| a.server.cmp(&b.server)).then_with(|| a.volume.cmp(&b.volume))
    });
    let mut skipped: Vec<SkippedLine> = project
        .skipped
        .iter()
        .map(|s| SkippedLine {
            server_id: s.server_id.clone(),
            server: name_or_id(&s.server_name, &s.server_id),
            volume_id: s.volume_id.clone(),
            volume: name_or_id(&s.volume_name, &s.volume_id),
            reason: s.reason.clone(),
        })
        .collect();
    skipped.sort_by(|a, b| a.server.cmp(&b.server).then_with(|| a.volume.cmp(&b.volume)));
    let mut unstamped: Vec<UnstampedLine> = project
        .unstamped
        .iter()
        .map(|u| UnstampedLine {
            server_id: u.server_id.clone(),
            server: name_or_id(&u.server_name, &u.server_id),
            reason: u.reason.clone(),
        })
        .collect();
    unstamped.sort_by(|a, b| a.server.cmp(&b.server).then_with(|| a.server_id.cmp(&b.server_id)));
    let succeeded = volumes.iter().filter(|v| v.success).count();
    let running = volumes.iter().filter(|v| v.in_progress).count();
    let counts = Counts { succeeded, failed: volumes.len() - succeeded - running, skipped: skipped.len(), running };
    ProjectSection {
        project_id: project.project_id.clone(),
        project_name: project.project_name.clone(),
        quotas: vec![
            quota_line("backups", "Backups", "", project.backups_quota),
            quota_line("backup_gigabytes", "Backup gigabytes", " GB", project.gigabytes_quota),
        ],
        volumes,
        skipped,
        unstamped,
        counts,
        assurance: project.assurance.clone(),
        not_listed: 0,
    }
}

fn name_or_id(name: &str, id: &str) -> String {
    if name.trim().is_empty() { id.to_owned() } else { name.to_owned() }
}

fn counts_text(c: Counts) -> String {
    let running = if c.running > 0 { format!(", {} still running", c.running) } else { String::new() };
    format!("{} succeeded, {} failed, {} skipped{running}", c.succeeded, c.failed, c.skipped)
}

fn time_text(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A user-supplied name made safe for a header: control characters (CR, LF,
/// tabs, …) become spaces.
fn single_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 16, 14, 48).single().unwrap()
    }

    fn result(server: &str, volume: &str, success: bool) -> BackupResult {
        BackupResult {
            server_id: format!("{server}-id"),
            server_name: server.to_owned(),
            volume_id: format!("{volume}-id"),
            volume_name: volume.to_owned(),
            backup_id: success.then(|| format!("{volume}-backup")),
            backup_name: format!("{volume}-backup-name"),
            kind: BackupKind::Full,
            size_gb: 10,
            success,
            in_progress: false,
            fail_reason: (!success).then(|| "quota exceeded".to_owned()),
        }
    }

    fn project(name: &str, results: Vec<BackupResult>) -> ProjectBackups {
        ProjectBackups {
            project_id: format!("{name}-id"),
            project_name: name.to_owned(),
            results,
            skipped: vec![SkippedVolume {
                server_id: "s-id".into(),
                server_name: "s".into(),
                volume_id: "v-id".into(),
                volume_name: String::new(),
                reason: "skip metadata set".into(),
            }],
            unstamped: vec![],
            backups_quota: Some(Quota { limit: 10, in_use: 4, reserved: 0 }),
            gigabytes_quota: Some(Quota { limit: -1, in_use: 300, reserved: 0 }),
            member_emails: vec![],
            assurance: None,
        }
    }

    #[test]
    fn bands_switch_at_50_and_after_80() {
        let cases = [
            (0.0, Band::Green),
            (49.0, Band::Green),
            (49.99, Band::Green),
            (50.0, Band::Yellow),
            (80.0, Band::Yellow),
            (80.01, Band::Red),
            (81.0, Band::Red),
            (250.0, Band::Red),
        ];
        for (pct, band) in cases {
            assert_eq!(colour_band(pct), band, "pct={pct}");
        }
    }

    #[test]
    fn quota_lines_from_usage() {
        // (limit, in_use, percent text, band)
        let cases: &[(i64, i64, &str, Option<Band>)] = &[
            (100, 0, "0 %", Some(Band::Green)),
            (100, 49, "49 %", Some(Band::Green)),
            (100, 50, "50 %", Some(Band::Yellow)),
            (100, 80, "80 %", Some(Band::Yellow)),
            (100, 81, "81 %", Some(Band::Red)),
            (5, 4, "80 %", Some(Band::Yellow)),
            (3, 1, "33.3 %", Some(Band::Green)),
            (0, 0, "100 %", Some(Band::Red)),
            (-1, 12, "unlimited", Some(Band::Green)),
        ];
        for &(limit, in_use, text, band) in cases {
            let line = quota_line("backups", "Backups", "", Some(Quota { limit, in_use, reserved: 0 }));
            assert_eq!(line.percent_text, text, "limit={limit} in_use={in_use}");
            assert_eq!(line.band, band, "limit={limit} in_use={in_use}");
            assert_eq!(line.unlimited, limit == -1);
        }
        // Reserved counts against the limit, as in Cinder.
        let reserved = quota_line("backups", "Backups", "", Some(Quota { limit: 100, in_use: 40, reserved: 10 }));
        assert_eq!((reserved.used_text.as_str(), reserved.percent_text.as_str()), ("50", "50 %"));
        assert_eq!(reserved.band, Some(Band::Yellow));
        let unknown = quota_line("backups", "Backups", "", None);
        assert_eq!((unknown.known, unknown.band, unknown.limit_text.as_str()), (false, None, "unknown"));
        let unlimited = quota_line(
            "backup_gigabytes",
            "Backup gigabytes",
            " GB",
            Some(Quota { limit: -1, in_use: 7, reserved: 0 }),
        );
        assert_eq!((unlimited.limit_text.as_str(), unlimited.used_text.as_str()), ("unlimited", "7 GB"));
    }

    #[test]
    fn the_subject_names_project_and_counts() {
        let p = project("demo", vec![result("web", "a", true), result("web", "b", false), result("db", "c", true)]);
        let d = project_digest(&p, now());
        assert_eq!(d.subject, "Staffeln backups for project demo: 2 succeeded, 1 failed, 1 skipped");
        assert_eq!(d.backup_time, "2026-11-25 16:14:48 UTC");
        assert_eq!(d.describe(), "project demo (demo-id)");
    }

    #[test]
    fn the_subject_stays_one_line() {
        let p = project("evil\r\nBcc: x@example.com", vec![result("web", "a", true)]);
        let d = project_digest(&p, now());
        assert!(!d.subject.contains(['\r', '\n']), "{:?}", d.subject);
        assert!(d.subject.starts_with("Staffeln backups for project evil  Bcc: x@example.com:"));
    }

    #[test]
    fn failures_come_first_and_names_fall_back_to_ids() {
        let mut nameless = result("", "", true);
        nameless.server_id = "srv-1".into();
        nameless.volume_id = "vol-1".into();
        let p = project("demo", vec![result("web", "a", true), nameless, result("web", "b", false)]);
        let d = project_digest(&p, now());
        let section = &d.projects[0];
        let order: Vec<(&str, &str, bool)> =
            section.volumes.iter().map(|v| (v.server.as_str(), v.volume.as_str(), v.success)).collect();
        assert_eq!(order, [("web", "b", false), ("srv-1", "vol-1", true), ("web", "a", true)]);
        assert_eq!(section.volumes[0].band, Band::Red);
        assert_eq!(section.volumes[0].fail_reason, "quota exceeded");
        assert_eq!(section.volumes[1].band, Band::Green);
        assert_eq!(section.skipped[0].volume, "v-id");
    }

    #[test]
    fn a_failure_without_reason_says_unknown() {
        let mut r = result("web", "a", false);
        r.fail_reason = None;
        let d = project_digest(&project("demo", vec![r]), now());
        assert_eq!(d.projects[0].volumes[0].fail_reason, "unknown");
    }

    #[test]
    fn a_backup_still_running_is_neither_success_nor_failure_and_unstamped_servers_are_listed() {
        let mut running = result("db", "big", false);
        running.in_progress = true;
        running.fail_reason = Some("still being created; left running".into());
        let mut p = project("demo", vec![result("web", "a", true), running, result("web", "b", false)]);
        p.unstamped = vec![UnstampedServer {
            server_id: "s1".into(),
            server_name: String::new(),
            reason: "Nova refuses metadata changes while the server is in ERROR".into(),
        }];
        let d = project_digest(&p, now());
        assert_eq!(d.subject, "Staffeln backups for project demo: 1 succeeded, 1 failed, 1 skipped, 1 still running");
        let section = &d.projects[0];
        let order: Vec<(&str, &str, Band)> =
            section.volumes.iter().map(|v| (v.volume.as_str(), v.outcome.as_str(), v.band)).collect();
        assert_eq!(
            order,
            [("b", "false", Band::Red), ("big", "still running", Band::Yellow), ("a", "true", Band::Green)]
        );
        assert_eq!(section.unstamped[0].server, "s1");
        // A project with only a server that could not be stamped still gets its digest.
        let mut only = project("quiet", vec![]);
        assert!(!only.has_backups());
        only.unstamped = p.unstamped.clone();
        assert!(only.has_backups());
    }

    #[test]
    fn the_operator_digest_sums_projects_with_backups() {
        let projects = [
            project("zeta", vec![result("web", "a", false)]),
            project("alpha", vec![result("web", "a", true), result("web", "b", true)]),
            project("idle", vec![]),
        ];
        let d = operator_digest(&projects, now());
        assert_eq!(d.scope, Scope::Operator);
        let names: Vec<&str> = d.projects.iter().map(|s| s.project_name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(d.counts, Counts { succeeded: 2, failed: 1, skipped: 2, running: 0 });
        assert_eq!(d.subject, "Staffeln backups for 2 projects: 2 succeeded, 1 failed, 2 skipped");
        assert_eq!(
            operator_digest(&projects[1..2], now()).subject.split(':').next(),
            Some("Staffeln backups for 1 project")
        );
    }

    #[test]
    fn the_operator_digest_lists_what_did_not_succeed_up_to_its_limit() {
        let mut alpha =
            project("alpha", vec![result("web", "a", true), result("web", "b", false), result("db", "c", true)]);
        alpha.unstamped =
            vec![UnstampedServer { server_id: "db-id".into(), server_name: "db".into(), reason: "ERROR".into() }];
        let projects = [project("beta", vec![result("app", "d", true)]), alpha];
        let d = operator_digest(&projects, now());
        let alpha = &d.projects[0];
        assert_eq!(alpha.volumes.iter().map(|v| v.volume.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!((alpha.skipped.len(), alpha.unstamped.len(), alpha.not_listed), (1, 1, 2));
        let beta = &d.projects[1];
        assert!(beta.volumes.is_empty());
        assert_eq!((beta.skipped.len(), beta.not_listed), (1, 1));
        // Successes are counted all the same.
        assert_eq!(d.counts, Counts { succeeded: 3, failed: 1, skipped: 2, running: 0 });
        // A project's own digest still lists everything.
        let own = project_digest(&projects[1], now());
        assert_eq!((own.projects[0].volumes.len(), own.projects[0].not_listed), (3, 0));

        // Past the limit, the projects later by name keep only their counts.
        let many: Vec<ProjectBackups> = (0..600)
            .map(|p| {
                let failed = (0..2).map(|v| result(&format!("s{p}"), &format!("f{v}"), false));
                let ok = (0..5).map(|v| result(&format!("s{p}"), &format!("ok{v}"), true));
                project(&format!("p{p:03}"), failed.chain(ok).collect())
            })
            .collect();
        let d = operator_digest(&many, now());
        let listed: usize = d.projects.iter().map(ProjectSection::lines).sum();
        let left_out: usize = d.projects.iter().map(|s| s.not_listed).sum();
        assert_eq!(listed, OPERATOR_DIGEST_LINES);
        assert_eq!(listed + left_out, 600 * 8);
        assert_eq!(d.projects[0].lines(), 3, "the first projects are listed whole (but for successes)");
        assert_eq!(d.projects[599].lines(), 0);
        assert_eq!(d.counts.failed, 1_200);
        assert!(d.projects.iter().flat_map(|s| &s.volumes).all(|v| !v.success));
    }
}

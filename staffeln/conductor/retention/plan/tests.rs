//! Table tests of each rule and floor, a year of daily backups checked
//! against hand-computed sets, and properties over random histories.

use super::*;
use std::collections::BTreeSet;

use chrono::TimeZone;
use proptest::prelude::*;

const UTC: Tz = chrono_tz::UTC;
const DAY: i64 = 86_400;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).single().unwrap()
}

fn rules(retention_secs: i64, archival: &str) -> Rules {
    Rules {
        retention: Duration::seconds(retention_secs),
        archival: ArchivalRules::parse(archival).unwrap(),
        source: "test".into(),
    }
}

/// An own, available full backup made `hours_ago`.
fn own(id: &str, hours_ago: i64) -> Candidate {
    Candidate {
        backup: Backup {
            id: id.into(),
            name: Some(format!("name-{id}")),
            volume_id: "v1".into(),
            project_id: "p1".into(),
            status: BackupStatus::Available,
            size_gb: 1,
            is_incremental: false,
            has_dependent_backups: false,
            created_at: now() - Duration::hours(hours_ago),
            metadata: BTreeMap::from([("__automated_backup".to_owned(), "True".to_owned())]),
            availability_zone: None,
            fail_reason: None,
        },
        has_row: true,
        has_marker: true,
        adopted: false,
    }
}

fn incr(mut c: Candidate) -> Candidate {
    c.backup.is_incremental = true;
    c
}

fn status(mut c: Candidate, s: BackupStatus) -> Candidate {
    c.backup.status = s;
    c
}

fn decide(backups: &[Candidate], exists: bool, r: &Rules) -> BTreeMap<String, (RetentionAction, &'static str)> {
    plan_volume(backups, exists, r, UTC, now())
        .into_iter()
        .map(|d| (d.backup_id.0.clone(), (d.action, d.reason.code())))
        .collect()
}

use RetentionAction::{Delete as D, Keep as K, Skip as S};

#[test]
fn ownership_needs_both_the_row_and_the_metadata() {
    let mut no_row = own("no-row", 1000);
    no_row.has_row = false;
    let mut no_marker = own("no-marker", 1000);
    no_marker.has_marker = false;
    let mut neither = status(own("neither", 1000), BackupStatus::Error);
    neither.has_row = false;
    neither.has_marker = false;
    let r = rules(DAY, "");
    let got = decide(&[no_row, no_marker, neither, own("mine", 900), own("newest", 1)], true, &r);
    assert_eq!(got["no-row"], (K, "not_staffelns"));
    assert_eq!(got["no-marker"], (K, "not_staffelns"));
    assert_eq!(got["neither"], (K, "not_staffelns"), "not even an error backup of someone else's");
    assert_eq!(got["mine"], (D, "expired"));
    assert_eq!(got["newest"], (K, "within_retention"));
}

#[test]
fn a_row_adopted_from_the_original_staffeln_stands_in_for_the_metadata() {
    // The original Staffeln set no metadata; its backup_data rows are adopted on upgrade.
    let adopted = |id: &str, hours_ago: i64| {
        let mut c = own(id, hours_ago);
        c.backup.metadata.clear();
        c.has_marker = false;
        c.adopted = true;
        c
    };
    let mut user = own("user", 1000);
    user.has_row = false;
    user.has_marker = false;
    let mut marked_only = own("marker-no-row", 1000);
    marked_only.has_row = false;
    let r = rules(DAY, "");
    let backups = [
        adopted("old-py", 1000),
        status(adopted("failed-py", 2000), BackupStatus::Error),
        adopted("recent-py", 2),
        user,
        marked_only,
        own("newest", 1),
    ];
    let got = decide(&backups, true, &r);
    assert_eq!(got["old-py"], (D, "expired"));
    assert_eq!(got["failed-py"], (D, "error_state"));
    assert_eq!(got["recent-py"], (K, "within_retention"));
    assert_eq!(got["user"], (K, "not_staffelns"), "a user's backup is never Staffeln's");
    assert_eq!(got["marker-no-row"], (K, "not_staffelns"));
    // The newest of a volume is kept whoever made it, the original or this Staffeln.
    let got = decide(&[adopted("only-py", 1000)], true, &r);
    assert_eq!(got["only-py"], (K, "last_successful"));
}

#[test]
fn busy_and_unknown_statuses_are_skipped_and_errors_deleted() {
    let r = rules(DAY, "");
    let backups = [
        status(own("creating", 500), BackupStatus::Creating),
        status(own("restoring", 500), BackupStatus::Restoring),
        status(own("deleting", 500), BackupStatus::Deleting),
        status(own("odd", 500), BackupStatus::Unknown("paused".into())),
        status(own("error", 1), BackupStatus::Error),
        status(own("error-deleting", 1), BackupStatus::ErrorDeleting),
        own("ok", 2),
    ];
    let got = decide(&backups, true, &r);
    assert_eq!(got["creating"], (S, "in_progress"));
    assert_eq!(got["restoring"], (S, "in_progress"));
    assert_eq!(got["deleting"], (S, "in_progress"));
    assert_eq!(got["odd"], (S, "unknown_status"));
    assert_eq!(got["error"], (D, "error_state"), "even a young one");
    assert_eq!(got["error-deleting"], (D, "error_state"));
    assert_eq!(got["ok"], (K, "within_retention"));
}

#[test]
fn the_last_successful_backup_of_a_live_volume_stays_and_of_a_gone_one_goes() {
    let r = rules(DAY, "");
    let backups = [own("old", 1000), own("older", 2000), status(own("failed", 10), BackupStatus::Error)];
    let live = decide(&backups, true, &r);
    assert_eq!(live["old"], (K, "last_successful"));
    assert_eq!(live["older"], (D, "expired"));
    assert_eq!(live["failed"], (D, "error_state"));
    let gone = decide(&backups, false, &r);
    assert_eq!(gone["old"], (D, "expired"), "floor lifted once past the retention time");
    let young = decide(&[own("young", 2)], false, &r);
    assert_eq!(young["young"], (K, "within_retention"), "a gone volume's backups still get their time");
}

#[test]
fn a_kept_incremental_keeps_its_whole_chain_and_deletes_go_newest_first() {
    let r = rules(DAY, "");
    // f1 <- i1 <- i2 (expired chain), f2 <- i3 (i3 within retention) <- i4 (creating).
    let backups = [
        own("f1", 500),
        incr(own("i1", 400)),
        incr(own("i2", 300)),
        own("f2", 200),
        incr(own("i3", 2)),
        status(incr(own("i4", 1)), BackupStatus::Creating),
    ];
    let d = plan_volume(&backups, true, &r, UTC, now());
    let by: BTreeMap<&str, &RetentionDecision> = d.iter().map(|d| (d.backup_id.as_str(), d)).collect();
    assert_eq!(by["f2"].action, K);
    assert_eq!(by["f2"].reason, RetentionReason::ChainParent { child: "i3".into() });
    assert_eq!(by["i3"].action, K);
    assert_eq!((by["i2"].action, by["i2"].wave), (D, Some(0)));
    assert_eq!((by["i1"].action, by["i1"].wave), (D, Some(1)));
    assert_eq!((by["f1"].action, by["f1"].wave), (D, Some(2)));
    let ids: Vec<&str> = d.iter().map(|d| d.backup_id.as_str()).collect();
    assert_eq!(ids, ["i4", "i3", "f2", "i2", "i1", "f1"], "newest first");
}

#[test]
fn a_creating_incremental_keeps_its_parent() {
    let r = rules(DAY, "");
    let backups = [own("f1", 500), own("f2", 400), status(incr(own("i1", 1)), BackupStatus::Creating)];
    let got = decide(&backups, false, &r);
    assert_eq!(got["f2"], (K, "chain_parent"));
    assert_eq!(got["f1"], (D, "expired"));
}

#[test]
fn an_incrementals_parent_is_the_newest_older_backup_whoever_made_it() {
    let r = rules(DAY, "");
    let mut users = own("users", 400);
    users.has_row = false;
    users.has_marker = false;
    let backups = [own("f1", 500), users, status(own("failed", 350), BackupStatus::Error), incr(own("i1", 2))];
    let got = decide(&backups, true, &r);
    assert_eq!(got["users"], (K, "not_staffelns"), "the parent of i1");
    assert_eq!(got["f1"], (D, "expired"), "not a parent: the user's backup is newer");
    assert_eq!(got["failed"], (D, "error_state"), "an error backup is never a parent");
}

#[test]
fn cinders_dependents_flag_guards_what_inference_cannot_place() {
    let r = rules(DAY, "");
    let mut flagged = own("flagged", 500);
    flagged.backup.has_dependent_backups = true;
    let got = decide(&[flagged.clone(), own("newest", 1)], true, &r);
    assert_eq!(got["flagged"], (K, "unplaced_dependents"));
    // With its (inferred) incremental deleted first, it may go.
    let got = decide(&[flagged, incr(own("child", 400)), own("newest", 1)], true, &r);
    assert_eq!(got["child"], (D, "expired"));
    assert_eq!(got["flagged"], (D, "expired"));
}

#[test]
fn equal_times_make_every_candidate_a_parent() {
    let r = rules(DAY, "");
    let backups = [own("a", 500), own("b", 500), incr(own("i", 2))];
    let got = decide(&backups, true, &r);
    assert_eq!(got["a"], (K, "chain_parent"));
    assert_eq!(got["b"], (K, "chain_parent"));
}

#[test]
fn archival_rules_parse_and_name_what_is_wrong() {
    let a = ArchivalRules::parse(" latest:3, daily:7,WEEKLY:4,monthly:12,yearly:2 ").unwrap();
    assert_eq!(a, ArchivalRules { latest: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2 });
    assert_eq!(a.to_string(), "latest:3,daily:7,weekly:4,monthly:12,yearly:2");
    assert_eq!(ArchivalRules::parse("").unwrap(), ArchivalRules::default());
    assert_eq!(ArchivalRules::default().to_string(), "none");
    for (bad, what) in [
        ("daily", "has no ':'"),
        ("hourly:3", "unknown tier \"hourly\""),
        ("daily:-1", "is not a count"),
        ("daily:x", "is not a count"),
        ("daily:1,daily:2", "daily is given twice"),
    ] {
        let err = ArchivalRules::parse(bad).unwrap_err().to_string();
        assert!(err.contains(what) && err.contains(bad), "{bad}: {err}");
    }
    assert_eq!(parse_retention("20min").unwrap(), Duration::minutes(20));
    assert_eq!(parse_retention("2w3d").unwrap(), Duration::days(17));
    for bad in ["0s", "0min", "", "abc", "-1d", "3 days", "1d2w"] {
        let err = parse_retention(bad).unwrap_err().to_string();
        assert!(err.contains(&format!("{bad:?}")) && err.contains("longer than zero"), "{bad}: {err}");
    }
}

fn server(id: &str, meta: &[(&str, &str)]) -> Server {
    Server {
        id: id.into(),
        name: id.into(),
        project_id: "p1".into(),
        status: "ACTIVE".into(),
        metadata: meta.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        volume_ids: vec![],
    }
}

fn settings() -> RuleSettings {
    RuleSettings {
        retention: RetentionTime::parse("2w3d").unwrap(),
        archival: ArchivalRules { daily: 7, ..ArchivalRules::default() },
        retention_key: "__staffeln_retention".into(),
        archival_key: "__staffeln_archival".into(),
        timezone: UTC,
    }
}

#[test]
fn server_metadata_overrides_and_invalid_values_are_reported_never_zero() {
    let s = settings();
    let (r, w) = rules_for(&s, &[]);
    assert_eq!((r.retention, r.archival.daily, w.len()), (Duration::days(17), 7, 0));
    assert_eq!(r.source, "retention_time 2w3d, archival_rules daily:7");
    let short = server("vm1", &[("__staffeln_retention", "20min"), ("__staffeln_archival", "latest:2")]);
    let (r, w) = rules_for(&s, &[&short]);
    assert_eq!(r.retention, Duration::minutes(20));
    assert_eq!(r.archival, ArchivalRules { latest: 2, ..ArchivalRules::default() });
    assert!(w.is_empty() && r.source.contains("__staffeln_retention=20min"), "{}", r.source);
    for bad in ["0s", "soon", ""] {
        let vm = server("vm2", &[("__staffeln_retention", bad), ("__staffeln_archival", "daily:x")]);
        let (r, w) = rules_for(&s, &[&vm]);
        assert_eq!(r.retention, Duration::days(17), "{bad:?} is ignored, not zero");
        assert_eq!(r.archival.daily, 7);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("vm2") && w[0].contains("__staffeln_retention") && w[0].contains("ignored"), "{w:?}");
    }
    // Two servers: the most keeping wins.
    let long = server("vm3", &[("__staffeln_retention", "1y"), ("__staffeln_archival", "monthly:3")]);
    let (r, _) = rules_for(&s, &[&short, &long]);
    assert_eq!(r.retention, Duration::days(365));
    assert_eq!(r.archival, ArchivalRules { latest: 2, monthly: 3, ..ArchivalRules::default() });
}

#[test]
fn stale_rows_are_old_and_unlisted() {
    let listed: HashSet<BackupId> = [BackupId::from("here")].into();
    let since = now();
    let old = (since - Duration::hours(1)).naive_utc();
    let fresh = (since + Duration::seconds(1)).naive_utc();
    let rows = vec![("here".to_owned(), old), ("gone".to_owned(), old), ("new".to_owned(), fresh)];
    assert_eq!(stale_rows(&rows, &listed, since), ["gone"]);
}

// ---------------------------------------------------------------- a year of daily backups

/// Daily backups at `hour`:00 UTC from 2025-01-01 to 2025-12-31 (365), a
/// full every `chain` days (1: all fulls), ids `YYYY-MM-DD` (the UTC date).
fn year(hour: u32, chain: i64) -> Vec<Candidate> {
    let start = Utc.with_ymd_and_hms(2025, 1, 1, hour, 0, 0).single().unwrap();
    (0..365)
        .map(|d| {
            let at = start + Duration::days(d);
            let mut c = own(&at.format("%Y-%m-%d").to_string(), 0);
            c.backup.created_at = at;
            c.backup.is_incremental = d % chain != 0;
            c
        })
        .collect()
}

fn kept(backups: &[Candidate], r: &Rules, tz: Tz, at: DateTime<Utc>) -> Vec<String> {
    let mut out: Vec<String> = plan_volume(backups, true, r, tz, at)
        .into_iter()
        .filter(|d| d.action != RetentionAction::Delete)
        .map(|d| d.backup_id.0)
        .collect();
    out.sort();
    out
}

fn dates(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_year_of_daily_backups_with_age_only() {
    let at = Utc.with_ymd_and_hms(2025, 12, 31, 12, 0, 0).single().unwrap();
    let got = kept(&year(2, 1), &rules(7 * DAY, ""), UTC, at);
    // 2025-12-24 02:00 is 7 d 10 h old: past 7 days.
    let want =
        dates(&["2025-12-25", "2025-12-26", "2025-12-27", "2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31"]);
    assert_eq!(got, want);
}

#[test]
fn a_year_of_daily_backups_with_grandfather_father_son_tiers() {
    let at = Utc.with_ymd_and_hms(2025, 12, 31, 12, 0, 0).single().unwrap();
    let r = rules(DAY, "latest:3,daily:7,weekly:4,monthly:12,yearly:2");
    let got = kept(&year(2, 1), &r, UTC, at);
    #[rustfmt::skip]
    let want = dates(&[
        // daily:7 (latest:3 and the 1-day age fall inside it)
        "2025-12-25", "2025-12-26", "2025-12-27", "2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31",
        // weekly:4: ISO weeks 2026-W01 (the 31st), 2025-W52 (28th), W51 (21st), W50 (14th)
        "2025-12-21", "2025-12-14",
        // monthly:12: the last day of each month of 2025 (December's is the 31st)
        "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30",
        "2025-07-31", "2025-08-31", "2025-09-30", "2025-10-31", "2025-11-30",
        // yearly:2: only 2025 has backups, and its newest is the 31st
    ]);
    assert_eq!(got, want);
    let d = plan_volume(&year(2, 1), true, &r, UTC, at);
    let nov = d.iter().find(|d| d.backup_id.as_str() == "2025-11-30").unwrap();
    assert_eq!(nov.reason, RetentionReason::Archival { tiers: vec![(Tier::Monthly, "2025-11".into())] });
    let last = d.iter().find(|d| d.backup_id.as_str() == "2025-12-31").unwrap();
    assert_eq!(last.reason.code(), "within_retention");
}

#[test]
fn a_year_of_daily_backups_bucketed_in_the_configured_zone() {
    // 23:00 UTC is the next day in Berlin (00:00 in winter, 01:00 in summer).
    let at = Utc.with_ymd_and_hms(2025, 12, 31, 23, 30, 0).single().unwrap();
    let r = rules(DAY, "monthly:3");
    let berlin = kept(&year(23, 1), &r, chrono_tz::Europe::Berlin, at);
    // Local months 2026-01 (UTC 12-31), 2025-12 (local 12-31 = UTC 12-30), 2025-11 (UTC 11-29).
    assert_eq!(berlin, dates(&["2025-11-29", "2025-12-30", "2025-12-31"]));
    let utc = kept(&year(23, 1), &r, UTC, at);
    assert_eq!(utc, dates(&["2025-10-31", "2025-11-30", "2025-12-31"]));
}

#[test]
fn a_year_of_weekly_chains_keeps_the_chain_under_the_kept_incrementals() {
    let at = Utc.with_ymd_and_hms(2025, 12, 31, 12, 0, 0).single().unwrap();
    let backups = year(2, 7); // fulls on days 0, 7, …, 350, 357, 364
    let d = plan_volume(&backups, true, &rules(10 * DAY, ""), UTC, at);
    let mut keep: Vec<String> =
        d.iter().filter(|d| d.action != RetentionAction::Delete).map(|d| d.backup_id.0.clone()).collect();
    keep.sort();
    // Age keeps days 355 (12-22) to 364; 355 is an incremental of the chain
    // whose full is day 350 (12-17), so 350 to 354 stay too.
    let want: Vec<String> = (350..365)
        .map(|i| Utc.with_ymd_and_hms(2025, 1, 1, 2, 0, 0).single().unwrap() + Duration::days(i))
        .map(|t| t.format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(keep, want);
    assert_eq!(d.iter().filter(|d| d.action == RetentionAction::Delete).count(), 350);
    // Each deleted chain of 7 goes in waves 0 (its newest incremental) to 6 (its full).
    let waves: BTreeSet<u32> = d.iter().filter_map(|d| d.wave).collect();
    assert_eq!(waves, (0..7).collect());
    let full = d.iter().find(|d| d.backup_id.as_str() == "2025-01-01").unwrap();
    assert_eq!(full.wave, Some(6));
}

// ---------------------------------------------------------------- properties

/// A volume's history as Cinder makes it: backups in time order, each
/// incremental chained to the newest available backup at that time (the
/// truth the planner must infer), later status changes, random ownership.
#[derive(Debug, Clone)]
struct History {
    backups: Vec<Candidate>,
    parent: Vec<Option<usize>>,
    exists: bool,
    retention_hours: i64,
    archival: ArchivalRules,
}

#[derive(Debug, Clone)]
struct Step {
    gap_hours: i64,
    incremental: bool,
    outcome: u8,
    later: u8,
    has_row: bool,
    has_marker: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (1i64..96, any::<bool>(), 0u8..10, 0u8..20, prop::bool::weighted(0.85), prop::bool::weighted(0.85)).prop_map(
        |(gap_hours, incremental, outcome, later, has_row, has_marker)| Step {
            gap_hours,
            incremental,
            outcome,
            later,
            has_row,
            has_marker,
        },
    )
}

fn history() -> impl Strategy<Value = History> {
    // Each tier is off more often than not, so that the floors get their turn.
    let tier = |max: u32| prop::option::weighted(0.35, 1..max).prop_map(|n| n.unwrap_or(0));
    (
        prop::collection::vec(step(), 0..30),
        any::<bool>(),
        1i64..400,
        0i64..500,
        (tier(4), tier(8), tier(5), tier(4), tier(3)),
    )
        .prop_map(|(steps, exists, retention_hours, idle_hours, (latest, daily, weekly, monthly, yearly))| {
            // The newest backup was made `idle_hours` before now.
            let total: i64 = steps.iter().map(|s| s.gap_hours).sum::<i64>() + idle_hours;
            let mut at = now() - Duration::hours(total);
            let mut backups: Vec<Candidate> = Vec::new();
            let mut parent = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                at += Duration::hours(s.gap_hours);
                // Cinder's pick: the newest backup available at creation time.
                let p = backups
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.backup.status == BackupStatus::Available)
                    .max_by_key(|(_, b)| b.backup.created_at)
                    .map(|(j, _)| j);
                let incremental = s.incremental && p.is_some();
                let mut c = own(&format!("b{i:02}"), 0);
                c.backup.created_at = at;
                c.backup.is_incremental = incremental;
                c.has_row = s.has_row;
                c.has_marker = s.has_marker;
                c.backup.status = match s.outcome {
                    0 => BackupStatus::Error,
                    1 if i + 1 == steps.len() => BackupStatus::Creating,
                    _ => BackupStatus::Available,
                };
                parent.push(if incremental { p } else { None });
                backups.push(c);
            }
            // Later changes: restores, deletes under way or failed, odd statuses.
            for (c, s) in backups.iter_mut().zip(&steps) {
                if c.backup.status == BackupStatus::Available {
                    c.backup.status = match s.later {
                        0 => BackupStatus::Restoring,
                        1 => BackupStatus::Deleting,
                        2 => BackupStatus::ErrorDeleting,
                        3 => BackupStatus::Unknown("paused".into()),
                        _ => BackupStatus::Available,
                    };
                }
            }
            for (j, c) in backups.iter_mut().enumerate() {
                c.backup.has_dependent_backups = parent.contains(&Some(j));
            }
            History {
                backups,
                parent,
                exists,
                retention_hours,
                archival: ArchivalRules { latest, daily, weekly, monthly, yearly },
            }
        })
}

fn rules_of(h: &History) -> Rules {
    Rules { retention: Duration::hours(h.retention_hours), archival: h.archival, source: String::new() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_floors_hold_for_every_history(h in history()) {
        let r = rules_of(&h);
        let decisions = plan_volume(&h.backups, h.exists, &r, UTC, now());
        prop_assert_eq!(decisions.len(), h.backups.len());
        let by: HashMap<&str, &RetentionDecision> = decisions.iter().map(|d| (d.backup_id.as_str(), d)).collect();
        let deleted = |i: usize| by[h.backups[i].backup.id.as_str()].action == RetentionAction::Delete;
        let wave = |i: usize| by[h.backups[i].backup.id.as_str()].wave;
        for (i, c) in h.backups.iter().enumerate() {
            let d = by[c.backup.id.as_str()];
            if d.action != RetentionAction::Delete {
                prop_assert_eq!(d.wave, None);
                continue;
            }
            // Only Staffeln's own, never a busy or unknown one.
            prop_assert!(c.has_row && (c.has_marker || c.adopted), "deleted a backup Staffeln did not make: {:?}", d);
            prop_assert!(
                matches!(c.backup.status, BackupStatus::Available | BackupStatus::Error | BackupStatus::ErrorDeleting),
                "deleted a {} backup", c.backup.status
            );
            // An available one only when expired.
            if c.backup.status == BackupStatus::Available {
                prop_assert!(now() - c.backup.created_at > r.retention, "deleted a young backup: {:?}", d);
            }
            // Its true incrementals go first, in earlier waves.
            for (child, p) in h.parent.iter().enumerate() {
                if *p == Some(i) {
                    prop_assert!(deleted(child), "{} deleted under its kept incremental {}", c.backup.id, h.backups[child].backup.id);
                    prop_assert!(wave(child) < wave(i), "wave of {} not before its parent's", h.backups[child].backup.id);
                }
            }
        }
        // The last successful backup of a live volume stays.
        if h.exists {
            let newest = h.backups.iter().enumerate()
                .filter(|(_, c)| c.is_own() && c.backup.status == BackupStatus::Available)
                .max_by_key(|(_, c)| c.backup.created_at)
                .map(|(i, _)| i);
            if let Some(n) = newest {
                prop_assert!(!deleted(n), "deleted the last successful backup {}", h.backups[n].backup.id);
            }
        }
        // Whatever stays keeps its whole true chain.
        for (child, p) in h.parent.iter().enumerate() {
            if let Some(p) = p && !deleted(child) {
                prop_assert!(!deleted(*p), "deleted {} under {}, which stays", h.backups[*p].backup.id, h.backups[child].backup.id);
            }
        }
    }

    /// Dependents flags at random, unrelated to any chain: a backup Cinder
    /// says has dependents is still deleted only after incrementals of it.
    #[test]
    fn cinders_dependents_flag_is_never_overruled(h in history(), flags in prop::collection::vec(any::<bool>(), 30)) {
        let mut backups = h.backups.clone();
        for (c, f) in backups.iter_mut().zip(flags) {
            c.backup.has_dependent_backups = f;
        }
        let decisions = plan_volume(&backups, h.exists, &rules_of(&h), UTC, now());
        let plain: Vec<Backup> = backups.iter().map(|c| c.backup.clone()).collect();
        let parents = infer_parents(&plain);
        let by: HashMap<&str, &RetentionDecision> = decisions.iter().map(|d| (d.backup_id.as_str(), d)).collect();
        for (i, c) in backups.iter().enumerate() {
            let d = by[c.backup.id.as_str()];
            if d.action == RetentionAction::Delete && c.backup.has_dependent_backups {
                let children: Vec<usize> = (0..backups.len()).filter(|&k| parents[k].contains(&i)).collect();
                prop_assert!(!children.is_empty(), "deleted {} whose dependents are unknown", c.backup.id);
                for k in children {
                    let ck = by[backups[k].backup.id.as_str()];
                    prop_assert_eq!(ck.action, RetentionAction::Delete);
                    prop_assert!(ck.wave < d.wave);
                }
            }
        }
    }
}

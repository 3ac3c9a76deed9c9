//! Assurance (issue 19) against the emulated cloud on an emulated clock:
//! a restore drill end to end (restore, `available`, size, delete, row), a
//! drill that fails, and a simulated month of daily cycles with injected
//! failures whose RPO compliance and quota projection are printed, the
//! projected exhaustion warned about before the quota is hit.

use std::collections::HashSet;

use chrono::Duration;
use staffeln::conductor::assurance::drill::{DrillCaps, DrillResult};
use staffeln::db::restore_drills;
use staffeln::objects::{BackupId, ProjectId};
use staffeln_fakecloud::{BackupOutcome, Scenario};

use crate::simulated::{Sim, quiet_mailer, settings};
use crate::support::TestDb;

/// One project `p1` whose quota holds `backups` backups, four flagged
/// volumes; `p2` with one volume and room to spare.
fn month_scenario(backups: i64) -> Scenario {
    let json = serde_json::json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "p1", "quota": {"backups": backups, "backup_gigabytes": 100000, "volumes": 50, "gigabytes": 10000}},
            {"name": "p2", "quota": {"backups": 1000, "backup_gigabytes": 100000}}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"], "p2": ["admin"]}}
        ],
        "servers": [
            {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-a", "vol-b"]},
            {"project": "p1", "name": "db", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-c", "vol-d"]},
            {"project": "p2", "name": "app", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-f"]}
        ],
        "volumes": [
            {"project": "p1", "name": "vol-a", "size": 10},
            {"project": "p1", "name": "vol-b", "size": 5},
            {"project": "p1", "name": "vol-c", "size": 5},
            {"project": "p1", "name": "vol-d", "size": 2},
            {"project": "p2", "name": "vol-f", "size": 1}
        ]
    });
    serde_json::from_value(json).expect("scenario")
}

/// Daily cycles, two weeks of retention, a week of quota warning.
fn daily(c: &mut staffeln::conf::Config) {
    c.conductor.backup_service_period = 86_400;
    c.conductor.backup_min_interval = 3_600;
    c.conductor.retention_service_period = 3_600;
}

/// Runs one daily cycle: jumps to its due time, lets its backups finish.
async fn one_cycle(sim: &Sim) {
    let c = &sim.conductors[0];
    let last = c.last_cycle_start().await.expect("last cycle");
    let due = c.settings.backup_schedule.next_due(last, c.started_at).expect("a schedule");
    sim.step_to(due).await;
    let poll = Duration::from_std(c.settings.poll_interval).expect("poll");
    sim.finish_tasks(poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_month_shows_compliance_and_warns_of_the_quota_before_it_is_hit() {
    let s = settings(|c| {
        daily(c);
        c.conductor.retention_time = staffeln::conf::types::OsloDuration::parse("2w").expect("2w");
        // Full backups only: retention deletes in one wave and never waits
        // on the clock for a chain's newer backups (the loops stay parked).
        c.conductor.full_backup_depth = 0;
    });
    let mut sim = Sim::new(TestDb::sqlite(), month_scenario(40), 1, s).await;
    sim.start(quiet_mailer());
    let control = sim.cloud.control();
    let p1 = ProjectId(control.project_id("p1").expect("p1"));
    let vol_f = sim.vid("vol-f");
    let vol_b = sim.vid("vol-b");
    let start = sim.clock.now();
    let mut first_warning: Option<(i64, String)> = None;
    let mut quota_hit: Option<i64> = None;
    let mut lines = Vec::new();
    for day in 0..30 {
        // Injected failures: vol-f's backups fail on days 5 to 8, vol-b's
        // on days 20 and 21.
        let fail =
            |on: bool| if on { BackupOutcome::Error { reason: "injected".into() } } else { BackupOutcome::Succeed };
        control.set_create_outcome(Some(&vol_f), fail((5..=8).contains(&day)));
        control.set_create_outcome(Some(&vol_b), fail((20..=21).contains(&day)));
        one_cycle(&sim).await;
        let c = &sim.conductors[0];
        let a = c.assess().await.expect("assessment");
        let cycle = c
            .db_call(|conn| staffeln::db::tasks::latest_finished_cycle(conn, "backup"))
            .await
            .expect("cycles")
            .expect("a finished cycle");
        let took = cycle.finished_at.expect("finished") - cycle.started_at;
        assert!(took < Duration::hours(12), "a cycle, not backup_cycle_timeout: {took}");
        assert!(took > Duration::zero(), "both stamps on the conductor's clock: {took}");
        assert_eq!(
            a.expected,
            Duration::days(1) + took,
            "the period plus the newest cycle's duration, not backup_cycle_timeout"
        );
        let all = a.compliance();
        let quota = c.os.backup_quota(&p1).await.expect("quota");
        let made_today = sim_backups_made_since(&sim, &p1, sim.clock.now() - Duration::hours(20)).await;
        if made_today < 4 && quota_hit.is_none() {
            quota_hit = Some(day);
        }
        let warn = a.warnings().find(|p| p.project_id == p1).and_then(|p| p.message(a.at));
        if let (None, Some(w)) = (&first_warning, &warn) {
            first_warning = Some((day, w.clone()));
        }
        let misses: Vec<String> = a
            .rpo
            .iter()
            .filter_map(|r| {
                r.miss.as_ref().map(|m| format!("{}: {}", r.volume_name.clone().unwrap_or_default(), m.reason()))
            })
            .collect();
        let line = format!(
            "day {day:2}: {} of {} volumes within RPO; p1 backups {}/{}; made today in p1: {made_today}; warning: {}{}",
            all.within,
            all.total,
            quota.backups.in_use,
            quota.backups.limit,
            warn.is_some(),
            if misses.is_empty() { String::new() } else { format!("; misses: {}", misses.join(", ")) }
        );
        println!("  {line}");
        lines.push(line);
    }
    sim.stop().await;
    println!("simulated month from {}", start.to_rfc3339());
    let (warned, message) = first_warning.expect("a projected quota warning");
    let hit = quota_hit.expect("the quota of 40 is hit within the month (4 a day kept 2 weeks)");
    println!("first warning on day {warned}: {message}");
    println!("quota first hit on day {hit}");
    assert!(warned < hit, "warned on day {warned}, before the quota was hit on day {hit}");
    assert!(lines.iter().any(|l| l.contains("vol-f: ")), "the injected failures show as RPO misses");
}

async fn sim_backups_made_since(sim: &Sim, project: &ProjectId, since: chrono::DateTime<chrono::Utc>) -> usize {
    use futures_util::TryStreamExt;
    let filter = staffeln::openstack::BackupFilter { project_id: Some(project.clone()), ..Default::default() };
    let all: Vec<staffeln::objects::Backup> =
        sim.conductors[0].os.backups(&filter).try_collect().await.expect("backups");
    all.iter().filter(|b| b.created_at >= since && b.status == staffeln::objects::BackupStatus::Available).count()
}

/// Steps the simulation's clock (and the cloud's) until `task` is done.
async fn drive<T>(sim: &Sim, task: tokio::task::JoinHandle<T>) -> T {
    while !task.is_finished() {
        sim.step(Duration::seconds(10)).await;
    }
    task.await.expect("the drill task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_drill_restores_checks_deletes_and_records_and_a_failed_one_says_why() {
    let mut sim = Sim::new(TestDb::sqlite(), month_scenario(100), 1, settings(daily)).await;
    sim.start(quiet_mailer());
    one_cycle(&sim).await;
    let control = sim.cloud.control();
    let c = sim.conductors[0].clone();
    let caps = DrillCaps { sample: 2, per_project: 1 };
    let task = {
        let c = c.clone();
        tokio::spawn(async move { c.run_drills(caps, &HashSet::new(), Duration::hours(1)).await })
    };
    let reports = drive(&sim, task).await.expect("drills");
    assert_eq!(reports.len(), 2, "one per project (per_project 1)");
    control.settle();
    for r in &reports {
        assert_eq!(r.result, DrillResult::Passed, "{r:?}");
        let scratch = r.scratch_volume_id.as_ref().expect("scratch");
        assert_eq!(control.volume_status(&scratch.0), None, "the scratch volume is deleted");
    }
    let rows = c.db_call(|conn| restore_drills::list(conn, None, 10)).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.result == "passed" && r.duration_secs > 0), "{rows:?}");
    let drilled: HashSet<&str> = rows.iter().map(|r| r.volume_id.as_str()).collect();

    // The next drill takes volumes not drilled yet; a restore Cinder fails
    // is recorded as failed, with why, and its scratch volume deleted.
    control.set_restore_outcome(None, BackupOutcome::Error { reason: "broken".into() });
    let task = {
        let c = c.clone();
        let caps = DrillCaps { sample: 1, per_project: 1 };
        tokio::spawn(async move { c.run_drills(caps, &HashSet::new(), Duration::hours(1)).await })
    };
    let reports = drive(&sim, task).await.expect("drills");
    assert_eq!(reports[0].result.message(), Some("the restored volume is error_restoring, not available"));
    assert!(!drilled.contains(reports[0].pick.volume_id.0.as_str()), "least recently drilled first");
    let rows = c.db_call(|conn| restore_drills::list(conn, None, 10)).await.expect("rows");
    assert_eq!((rows.len(), rows[0].result.as_str()), (3, "failed"));
    control.settle();
    let scratch = reports[0].scratch_volume_id.as_ref().expect("scratch");
    assert_eq!(control.volume_status(&scratch.0), None, "deleted after the failure too");

    // `staffeln restore`'s path: a new volume in the backup's project.
    control.set_restore_outcome(None, BackupOutcome::Succeed);
    let backup = BackupId(rows[0].backup_id.clone());
    let (restore, project) = c.restore_backup(&backup, Some("mine")).await.expect("restore");
    assert_eq!(restore.volume_name.as_deref(), Some("mine"));
    assert_eq!(project.0, rows[0].project_id);
    assert!(control.volume_ids(&project.0).contains(&restore.volume_id.0));
    sim.stop().await;
}

/// Issue 19.3: the scheduled drill round (the assurance loop, with the plan
/// retention would run now) leaves out a volume whose only good backup
/// retention is rotating, says so in the log, and drills the others (whose
/// older backups retention rotates too, but which keep newer ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_drill_leaves_out_a_volume_whose_only_good_backup_retention_rotates_and_says_so() {
    use staffeln::conductor::retention::plan::RetentionAction;
    let s = settings(|c| {
        daily(c);
        c.conductor.retention_time = staffeln::conf::types::OsloDuration::parse("1d").expect("1d");
        // Retention does not run by itself: its plan is pending when the drill comes.
        c.conductor.retention_service_period = 0;
        c.conductor.restore_drill_period = 50 * 3_600;
        c.conductor.restore_drill_sample = 10;
        // Full backups: a day-old one is not kept as an incremental's parent.
        c.conductor.full_backup_depth = 0;
    });
    let mut sim = Sim::new(TestDb::sqlite(), month_scenario(100), 1, s).await;
    let log = sim.start_logged(quiet_mailer());
    let control = sim.cloud.control();
    let c = sim.conductors[0].clone();
    let poll = Duration::from_std(c.settings.poll_interval).expect("poll");
    // Day 0: a backup of every volume. Then vol-a is deleted: its backup,
    // the only one, expires after a day and retention's plan deletes it.
    sim.step(Duration::seconds(1)).await;
    control.settle();
    sim.finish_tasks(poll).await;
    let vol_a = sim.vid("vol-a");
    let a_backups = sim.backups_of("vol-a").await;
    assert_eq!(a_backups.len(), 1, "{a_backups:?}");
    control.delete_volume(&vol_a).expect("vol-a deleted");
    one_cycle(&sim).await;
    one_cycle(&sim).await;
    let plan = c.retention_preview(&c.settings.retention, None).await.expect("plan");
    let deleted = |v: &str| plan.iter().any(|d| d.volume_id.0 == v && d.action == RetentionAction::Delete);
    assert!(deleted(&vol_a), "retention's plan deletes vol-a's only backup: {plan:#?}");
    assert!(deleted(&sim.vid("vol-b")), "and vol-b's oldest, vol-b keeping newer ones: {plan:#?}");

    // The round comes at restore_drill_period; each restore finishes on the clock.
    sim.step_to(c.started_at + Duration::hours(50)).await;
    let mut rows = Vec::new();
    for _ in 0..60 {
        rows = c.db_call(|conn| restore_drills::list(conn, None, 100)).await.expect("rows");
        if rows.len() >= 4 {
            break;
        }
        sim.step(Duration::seconds(10)).await;
    }
    let mut drilled: Vec<String> = rows.iter().map(|r| r.volume_id.clone()).collect();
    drilled.sort();
    let mut want: Vec<String> = ["vol-b", "vol-c", "vol-d", "vol-f"].iter().map(|v| sim.vid(v)).collect();
    want.sort();
    assert_eq!(drilled, want, "every volume but vol-a drilled once: {rows:?}");
    assert!(rows.iter().all(|r| r.result == "passed"), "{rows:?}");
    control.settle();
    for r in &rows {
        let scratch = r.scratch_volume_id.as_deref().expect("a scratch volume");
        assert_eq!(control.volume_status(scratch), None, "scratch volume {scratch} deleted");
    }
    let said = format!("volume {vol_a} left out: retention's plan deletes backups of it");
    assert_eq!(log.lines_with(&said), 1, "the round says why vol-a was not drilled:\n{}", log.text());
    assert_eq!(log.lines_with("restore drill: 4 backups restored and checked"), 1, "{}", log.text());
    // vol-a's only backup was never restored: still there, available.
    assert_eq!(control.backup_status(&a_backups[0].id.0).as_deref(), Some("available"));
    sim.stop().await;
}

/// Issue 19.3, as real Cinder showed it: a drill over the project's volume
/// quota is refused (413) before any volume is made; the drill is recorded
/// as failed with Cinder's words and no scratch volume, the others pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_over_the_projects_volume_quota_fails_with_cinders_words_and_makes_nothing() {
    let mut scenario = month_scenario(100);
    // p2 holds vol-f and room for no other volume.
    scenario.projects[2].quota.volumes = 1;
    let mut sim = Sim::new(TestDb::sqlite(), scenario, 1, settings(daily)).await;
    sim.start(quiet_mailer());
    one_cycle(&sim).await;
    let control = sim.cloud.control();
    let c = sim.conductors[0].clone();
    let p2 = control.project_id("p2").expect("p2");
    let p2_volumes = control.volume_ids(&p2);
    let task = {
        let c = c.clone();
        tokio::spawn(async move {
            c.run_drills(DrillCaps { sample: 10, per_project: 10 }, &HashSet::new(), Duration::hours(1)).await
        })
    };
    let reports = drive(&sim, task).await.expect("drills");
    assert_eq!(reports.len(), 5, "{reports:?}");
    let vol_f = sim.vid("vol-f");
    for r in &reports {
        if r.pick.volume_id.0 == vol_f {
            let why = r.result.message().unwrap_or_default();
            assert!(why.contains("413"), "{why}");
            assert!(why.contains("Maximum number of volumes allowed (1) exceeded for quota 'volumes'."), "{why}");
            assert_eq!(r.scratch_volume_id, None);
        } else {
            assert_eq!(r.result, DrillResult::Passed, "{r:?}");
        }
    }
    assert_eq!(control.volume_ids(&p2), p2_volumes, "nothing made in p2");
    let project = p2.clone();
    let rows = c.db_call(move |conn| restore_drills::list(conn, Some(&project), 10)).await.expect("rows");
    assert_eq!((rows.len(), rows[0].result.as_str(), rows[0].scratch_volume_id.as_deref()), (1, "failed", None));
    sim.stop().await;
}

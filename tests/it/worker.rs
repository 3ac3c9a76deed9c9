//! The conductor's worker on a real cloud's time scales and failures (issue
//! 15), against the emulated cloud and the real databases, with emulated
//! clocks (the cloud's and the conductors') pushed forward together:
//! * long backups are waited for and never cancelled by default; past
//!   `backup_cycle_timeout` they are left running and recorded when they
//!   finish; stuck ones are reported, not deleted;
//! * every flagged server sharing a volume gets `last-backup-time`, failed
//!   writes are retried, servers Nova refuses (ERROR) are reported;
//! * a conductor that stalls past its claim never creates or records for a
//!   task another conductor took, and a 503 storm makes no duplicate.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::Duration;
use staffeln::conductor::clock::Clock;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::stamps;
use staffeln::db::tasks::{self, TaskRow};
use staffeln::notify::{Mailer, NotifySettings};
use staffeln::objects::metadata::TASK_KEY;
use staffeln::objects::{TaskState, VolumeId};
use staffeln::openstack::{BackupFilter, OpenStack, Secret, Settings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

use crate::conductor::{Rig, conductor, scenario, state};
use crate::support::TestDb;

/// The defaults of `[conductor]`, but every flagged volume is due.
fn defaults() -> ConductorSettings {
    let mut s = ConductorSettings::from_config(&Config::default()).unwrap();
    s.plan.backup_min_interval = Duration::zero();
    s.poll_interval = StdDuration::from_millis(20);
    s
}

/// p1: `big` (200 GiB) on server `vault`, `small` (10 GiB) on `web`; `shared`
/// (multiattach) on `web` and `worker`; `broken` is in ERROR with `scratch`.
fn fleet() -> Scenario {
    serde_json::from_value(serde_json::json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 100, "backup_gigabytes": 5000}}],
        "users": [{"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
                   "roles": {"admin": ["admin"], "p1": ["admin"]}}],
        "servers": [
            {"project": "p1", "name": "vault", "metadata": {"__staffeln_backup": "true"}, "volumes": ["big"]},
            {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["small", "shared"]},
            {"project": "p1", "name": "worker", "metadata": {"__staffeln_backup": "true"}, "volumes": ["shared"]},
            {"project": "p1", "name": "broken", "status": "ERROR", "metadata": {"__staffeln_backup": "true"},
             "volumes": ["scratch"]}
        ],
        "volumes": [
            {"project": "p1", "name": "big", "size": 200},
            {"project": "p1", "name": "small", "size": 10},
            {"project": "p1", "name": "shared", "size": 5, "multiattach": true},
            {"project": "p1", "name": "scratch", "size": 1}
        ]
    }))
    .unwrap()
}

/// A rig whose backups take `backup_duration` of emulated time, and the
/// conductor's emulated clock.
async fn timed(db: TestDb, sc: Scenario, s: ConductorSettings, backup_duration: StdDuration) -> (Rig, Clock) {
    let cloud = FakeCloud::start(sc, FakeOptions { backup_duration, ..FakeOptions::default() }).unwrap();
    let clock = Clock::emulated(chrono::Utc::now());
    let conductor = conductor(&cloud, &db, "host-a:1", s).await.with_clock(clock.clone());
    (Rig { cloud, db, conductor }, clock)
}

/// Moves the cloud's and the conductor's time forward together.
fn advance(rig: &Rig, clock: &Clock, by: Duration) {
    clock.advance(by);
    rig.cloud.control().advance(by.to_std().unwrap());
}

async fn task_of(rig: &Rig, cycle: &str, volume: &str) -> TaskRow {
    rig.tasks_of(cycle).await.remove(&rig.vid(volume)).unwrap_or_else(|| panic!("no task for {volume}"))
}

fn server_meta(rig: &Rig, server: &str) -> BTreeMap<String, String> {
    let control = rig.cloud.control();
    control.server_metadata(&control.server_id(server).unwrap()).unwrap()
}

/// Sends the digests (forced) into files and returns their text.
async fn digests(rig: &Rig, dir: &Path) -> String {
    let settings = NotifySettings { report_dir: Some(dir.to_owned()), ..NotifySettings::default() };
    let mailer = Mailer::new(settings).unwrap();
    let summary = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert!(summary.failed.is_empty(), "{summary:?}");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

// --- point 1: long backups -----------------------------------------------------

/// A full backup of a 200 GiB volume that takes two hours is waited for with
/// the default options: never cancelled, not reported as stuck, recorded
/// when it finishes. (Before issue 15 the default cancelled it after 5 min.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_hour_backup_is_never_cancelled_and_is_recorded() {
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(2 * 3600)).await;
    let cycle = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    rig.conductor.work_once().await.unwrap();
    let backup = task_of(&rig, &cycle, "big").await.backup_id;
    assert!(!backup.is_empty());
    for step in 1..=11 {
        advance(&rig, &clock, Duration::minutes(10));
        rig.conductor.poll_once().await.unwrap();
        let t = task_of(&rig, &cycle, "big").await;
        assert_eq!(state(&t), TaskState::Creating, "after {} min: {:?}", step * 10, t.reason);
        assert_eq!(t.stuck_at, None, "a 200 GiB backup taking two hours is not stuck");
        assert_eq!(rig.cloud.control().backup_status(&backup).as_deref(), Some("creating"), "never cancelled");
    }
    advance(&rig, &clock, Duration::minutes(10));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "big").await;
    assert_eq!(state(&t), TaskState::Done, "{:?}", t.reason);
    assert_eq!(t.backup_id, backup);
    let row = rig.conductor.db_call(move |c| staffeln::db::backups::get(c, &backup)).await.unwrap();
    assert!(row.is_some(), "recorded in backup_data");
    assert!(server_meta(&rig, "vault").contains_key("last-backup-time"));
}

/// Past backup_cycle_timeout (12 h by default) the cycle stops waiting: the
/// task is `unfinished`, the digest says the backup still runs, the backup
/// is left alone; when Cinder finishes it two hours later it is recorded,
/// the next digest reports it done and the server is stamped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cycle_timeout_a_backup_is_left_running_and_adopted_when_it_finishes() {
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(14 * 3600)).await;
    let cycle = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    rig.conductor.work_once().await.unwrap();
    let backup = task_of(&rig, &cycle, "big").await.backup_id;
    for _ in 0..11 {
        advance(&rig, &clock, Duration::hours(1));
        rig.conductor.poll_once().await.unwrap();
        assert_eq!(state(&task_of(&rig, &cycle, "big").await), TaskState::Creating);
    }
    advance(&rig, &clock, Duration::hours(1) + Duration::seconds(1));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "big").await;
    assert_eq!(state(&t), TaskState::Unfinished);
    let reason = t.reason.clone().unwrap();
    assert!(reason.contains("backup_cycle_timeout (12h)") && reason.contains("left running"), "{reason}");
    assert_eq!(rig.cloud.control().backup_status(&backup).as_deref(), Some("creating"), "not cancelled");
    let open = rig.conductor.db_call(|c| tasks::open_cycles(c, "backup")).await.unwrap();
    assert!(open.is_empty(), "the cycle finished without it: {open:?}");
    assert!(!server_meta(&rig, "vault").contains_key("last-backup-time"), "not backed up yet");
    let dir = tempfile::tempdir().unwrap();
    let first = digests(&rig, dir.path()).await;
    assert!(first.contains("still running") && first.contains("left running"), "{first}");

    advance(&rig, &clock, Duration::hours(2));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "big").await;
    assert_eq!(state(&t), TaskState::Done, "{:?}", t.reason);
    assert!(t.note.as_deref().unwrap_or("").contains("stopped waiting"), "{:?}", t.note);
    let id = backup.clone();
    assert!(rig.conductor.db_call(move |c| staffeln::db::backups::get(c, &id)).await.unwrap().is_some());
    assert!(server_meta(&rig, "vault").contains_key("last-backup-time"), "stamped once recorded");
    let dir = tempfile::tempdir().unwrap();
    let second = digests(&rig, dir.path()).await;
    assert!(second.contains(&backup) && !second.contains("still running"), "{second}");
}

/// With backup_cancel_on_timeout (the operator's explicit choice) a backup
/// still running at backup_cycle_timeout is cancelled in Cinder and its task
/// fails with that reason; before the timeout it is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_option_force_deletes_a_backup_past_the_timeout() {
    let mut s = defaults();
    s.wait.cancel_on_timeout = true;
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), s, StdDuration::from_secs(60)).await;
    let small = rig.vid("small");
    rig.cloud.control().set_create_outcome(Some(&small), staffeln_fakecloud::BackupOutcome::Stick);
    let cycle = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    rig.conductor.work_once().await.unwrap();
    let backup = task_of(&rig, &cycle, "small").await.backup_id;
    advance(&rig, &clock, Duration::hours(11));
    rig.conductor.poll_once().await.unwrap();
    assert_eq!(state(&task_of(&rig, &cycle, "small").await), TaskState::Creating, "not before the timeout");
    assert_eq!(rig.cloud.control().backup_status(&backup).as_deref(), Some("creating"));
    advance(&rig, &clock, Duration::hours(1) + Duration::seconds(1));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "small").await;
    assert_eq!(state(&t), TaskState::Failed);
    let reason = t.reason.unwrap();
    assert!(reason.contains("backup_cycle_timeout (12h)") && reason.contains("backup_cancel_on_timeout"), "{reason}");
    rig.cloud.control().settle();
    assert_eq!(rig.cloud.control().backup_status(&backup), None, "force-deleted in Cinder");
}

/// A backup that makes no progress is reported once as possibly stuck (task,
/// metric query, digest) and never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_backup_is_reported_and_never_deleted() {
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(60)).await;
    let small = rig.vid("small");
    rig.cloud.control().set_create_outcome(Some(&small), staffeln_fakecloud::BackupOutcome::Stick);
    let cycle = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    rig.conductor.work_once().await.unwrap();
    let backup = task_of(&rig, &cycle, "small").await.backup_id;
    // 10 GiB at 10 MiB/s is 17 min, plus 30 min: not stuck at 45 min, stuck at 50.
    advance(&rig, &clock, Duration::minutes(45));
    rig.conductor.poll_once().await.unwrap();
    assert_eq!(task_of(&rig, &cycle, "small").await.stuck_at, None);
    advance(&rig, &clock, Duration::minutes(5));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "small").await;
    let first = t.stuck_at.expect("reported as stuck");
    assert_eq!(state(&t), TaskState::Creating, "still waited for");
    let stuck = rig.conductor.db_call(tasks::stuck_by_project).await.unwrap();
    assert_eq!(stuck, [(t.project_id.clone(), 1)], "staffeln_backups_stuck");
    advance(&rig, &clock, Duration::hours(1));
    rig.conductor.poll_once().await.unwrap();
    assert_eq!(task_of(&rig, &cycle, "small").await.stuck_at, Some(first), "reported once");
    advance(&rig, &clock, Duration::hours(11));
    rig.conductor.poll_once().await.unwrap();
    let t = task_of(&rig, &cycle, "small").await;
    assert_eq!(state(&t), TaskState::Unfinished);
    assert_eq!(rig.cloud.control().backup_status(&backup).as_deref(), Some("creating"), "never deleted");
    let dir = tempfile::tempdir().unwrap();
    let text = digests(&rig, dir.path()).await;
    assert!(text.contains("looked stuck"), "{text}");
}

/// The stuck report and the backup left running reach a stock oslo.messaging
/// listener as WARN notifications naming the backup and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_and_unfinished_backups_are_announced_to_a_stock_listener() {
    use crate::rpcapi::{Listener, Names};
    crate::support::require_broker().await;
    let names = Names::new(&["node-w"]);
    let mut listener = Listener::start(&names.exchange, &names.events).await;
    let conf = names.config("node-w", true);
    let (mut rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(60)).await;
    let events = staffeln::conductor::events::EventSettings::from_config(&conf).unwrap();
    rig.conductor =
        rig.conductor.clone().with_events(staffeln::conductor::events::Events::start(&events).await.unwrap());
    let small = rig.vid("small");
    rig.cloud.control().set_create_outcome(Some(&small), staffeln_fakecloud::BackupOutcome::Stick);
    let cycle = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    rig.conductor.work_once().await.unwrap();
    let backup = task_of(&rig, &cycle, "small").await.backup_id;
    advance(&rig, &clock, Duration::minutes(50));
    rig.conductor.poll_once().await.unwrap();
    advance(&rig, &clock, Duration::hours(12));
    rig.conductor.poll_once().await.unwrap();
    let mut seen: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    while !(seen.contains_key("staffeln.backup.create.stuck") && seen.contains_key("staffeln.backup.create.unfinished"))
    {
        let line = listener.next().await;
        for event in serde_json::Deserializer::from_str(&line).into_iter::<serde_json::Value>() {
            let event = event.unwrap_or_else(|e| panic!("{e}: {line}"));
            if event["payload"]["backup_id"] == backup.as_str() {
                seen.insert(event["event_type"].as_str().unwrap().to_owned(), event);
            }
        }
    }
    let stuck = &seen["staffeln.backup.create.stuck"];
    assert_eq!(stuck["priority"], "warn", "{stuck}");
    assert!(stuck["payload"]["reason"].as_str().unwrap().contains("may be stuck"), "{stuck}");
    assert_eq!(stuck["payload"]["volume_id"], small.as_str());
    let left = &seen["staffeln.backup.create.unfinished"];
    assert_eq!(left["priority"], "warn", "{left}");
    assert!(left["payload"]["reason"].as_str().unwrap().contains("left running"), "{left}");
    assert!(!seen.contains_key("staffeln.backup.create.error"), "nothing failed or was cancelled: {seen:?}");
    listener.stop().await;
}

// --- point 4: last-backup-time ---------------------------------------------------

/// A volume attached to two flagged servers is backed up once and both
/// servers are stamped; a server in ERROR (Nova's 409) is reported at once
/// in the digest and not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_of_a_shared_volume_are_stamped_and_a_server_in_error_is_reported() {
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(60)).await;
    let cycle = rig.full_cycle().await.cycle_id;
    assert_eq!(rig.backups_of("shared").await.len(), 1, "backed up once");
    let web = server_meta(&rig, "web").remove("last-backup-time");
    let worker = server_meta(&rig, "worker").remove("last-backup-time");
    assert!(web.is_some() && worker.is_some(), "web {web:?}, worker {worker:?}");
    assert!(!server_meta(&rig, "broken").contains_key("last-backup-time"));
    let id = cycle.clone();
    let rows = rig.conductor.db_call(move |c| stamps::of_cycle(c, &id)).await.unwrap();
    let broken_id = rig.cloud.control().server_id("broken").unwrap();
    let broken = rows.iter().find(|s| s.server_id == broken_id).unwrap();
    assert_eq!(broken.state, stamps::FAILED);
    assert!(broken.reason.as_deref().unwrap().contains("ERROR"), "{:?}", broken.reason);
    assert_eq!(broken.attempts, 1);
    for _ in 0..3 {
        advance(&rig, &clock, Duration::hours(1));
        rig.conductor.poll_once().await.unwrap();
    }
    let calls = rig.cloud.control().call_count("POST", "/compute/servers/{id}/metadata");
    assert_eq!(calls, 4, "vault, web, worker and one try for broken: {:?}", rig.cloud.control().calls());
    let dir = tempfile::tempdir().unwrap();
    let text = digests(&rig, dir.path()).await;
    assert!(text.contains("last-backup-time could not be set") && text.contains("broken"), "{text}");
}

/// A write Nova refuses for a passing reason (a task in progress) is retried
/// at later polls until it works, and given up (reported) after five tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_metadata_write_is_retried_and_then_reported() {
    let (rig, clock) = timed(TestDb::sqlite(), fleet(), defaults(), StdDuration::from_secs(60)).await;
    let control = rig.cloud.control();
    let (web, vault) = (control.server_id("web").unwrap(), control.server_id("vault").unwrap());
    control.set_server_state(&web, "ACTIVE", Some("resize_migrating"));
    control.set_server_state(&vault, "ACTIVE", Some("image_snapshot"));
    rig.full_cycle().await;
    assert!(!server_meta(&rig, "web").contains_key("last-backup-time"), "Nova refused");
    // The resize ends; the next try after the pause works.
    control.set_server_state(&web, "ACTIVE", None);
    rig.conductor.poll_once().await.unwrap();
    assert!(!server_meta(&rig, "web").contains_key("last-backup-time"), "not before the pause");
    advance(&rig, &clock, Duration::minutes(1));
    rig.conductor.poll_once().await.unwrap();
    assert!(server_meta(&rig, "web").contains_key("last-backup-time"), "retried");
    // vault stays busy: 1 + 2 + 4 + 8 min of pauses, five tries, then reported.
    for _ in 0..6 {
        advance(&rig, &clock, Duration::minutes(10));
        rig.conductor.poll_once().await.unwrap();
    }
    let rows = rig.conductor.db_call(stamps::unreported_failures).await.unwrap();
    let failed = rows.iter().find(|s| s.server_id == vault).expect("vault given up");
    assert_eq!(failed.attempts, stamps_max());
    assert!(failed.reason.as_deref().unwrap().contains("409"), "{:?}", failed.reason);
}

fn stamps_max() -> i32 {
    staffeln::conductor::backup::stamps::MAX_ATTEMPTS
}

// --- point 6: fencing ------------------------------------------------------------

fn each_volume_has_one_backup(rig: &Rig, label: &str) {
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        let backups = rig.cloud.control().backups_of(&rig.vid(v));
        assert_eq!(backups.len(), 1, "{label}: {v}: {backups:?}");
    }
}

/// Conductor A claims, then stalls past claim_timeout (a SIGSTOP between the
/// claim and the create); B takes the tasks over and makes the backups; A
/// resumes and must neither create nor record anything.
async fn a_conductor_paused_past_its_claim_creates_nothing(db: TestDb) {
    let label = db.label();
    let clock = Clock::emulated(chrono::Utc::now());
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let s = crate::conductor::settings();
    let a = conductor(&cloud, &db, "host-a:1", s.clone()).await.with_clock(clock.clone());
    let b = conductor(&cloud, &db, "host-b:2", s.clone()).await.with_clock(clock.clone());
    let rig = Rig { cloud, db, conductor: a.clone() };
    let cycle = a.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    let held = a.claim_tasks().await.unwrap();
    assert_eq!(held.len(), 5, "{label}: vol-a, vol-b, vol-d, vol-f, vol-g");
    // A is paused; its claims expire.
    clock.advance(s.claim_timeout + Duration::seconds(1));
    assert_eq!(b.work_once().await.unwrap(), 5, "{label}: B takes every expired claim");
    rig.cloud.control().settle();
    b.poll_once().await.unwrap();
    // Had A been stopped after its create instead, recording it (or ending
    // the task) under its stale token is refused too.
    let stale = held[0].clone();
    let (id, token) = (stale.id, stale.claim_token());
    assert_eq!(token, 1, "{label}");
    let now = clock.db_now();
    let refused = a
        .db_call(move |c| {
            Ok((
                tasks::confirm_claim(c, id, "host-a:1", token, now, Duration::minutes(5))?,
                tasks::mark_creating(c, id, "host-a:1", token, "stale-backup", false, None, now)?,
                tasks::finish_claimed(c, id, "host-a:1", token, TaskState::Failed, "stale", now)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(refused, (false, false, false), "{label}");
    // A resumes where it stopped.
    a.execute_claimed(held).await;
    rig.cloud.control().settle();
    a.poll_once().await.unwrap();
    each_volume_has_one_backup(&rig, label);
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        let t = task_of(&rig, &cycle, v).await;
        assert_eq!(state(&t), TaskState::Done, "{label}: {v}: {:?}", t.reason);
        assert_eq!(t.claimed_by.as_deref(), Some("host-b:2"), "{label}: {v}");
        assert_eq!(t.claim_token(), 2, "{label}: {v}");
        assert_eq!(rig.cloud.control().backups_of(&t.volume_id), std::slice::from_ref(&t.backup_id), "{label}: {v}");
    }
    // vol-g (no role in p3) failed under B's claim, and A did not overwrite it.
    let g = task_of(&rig, &cycle, "vol-g").await;
    assert_eq!((state(&g), g.claimed_by.as_deref()), (TaskState::Failed, Some("host-b:2")), "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_paused_past_its_claim_creates_nothing_on_sqlite() {
    a_conductor_paused_past_its_claim_creates_nothing(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_paused_past_its_claim_creates_nothing_on_mariadb() {
    a_conductor_paused_past_its_claim_creates_nothing(TestDb::mysql()).await;
}

/// A client with a short retry budget (the storm outlasts it).
async fn impatient(cloud: &FakeCloud) -> OpenStack {
    let c = cloud.credentials("staffeln").unwrap();
    let settings = Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_millis(300),
        ..Settings::default()
    };
    OpenStack::connect(&settings).await.unwrap()
}

/// A 503 storm longer than claim_timeout, in which Cinder makes each backup
/// and the answer is lost (503 after the effect), and listings fail too:
/// conductor A creates once, cannot tell whether it worked, and does not
/// create again; B takes the task over once A's claim expired, finds A's
/// backup by its task id and adopts it without a create of its own; A's stale
/// claims then do nothing. One backup per volume.
async fn a_503_storm_makes_no_duplicate(db: TestDb) {
    let label = db.label();
    let clock = Clock::emulated(chrono::Utc::now());
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let mut s = crate::conductor::settings();
    s.claim_timeout = Duration::minutes(1);
    let a = Conductor::new("host-a:1".into(), db.db().clone(), impatient(&cloud).await, s.clone())
        .with_clock(clock.clone());
    let b = conductor(&cloud, &db, "host-b:2", s.clone()).await.with_clock(clock.clone());
    let rig = Rig { cloud, db, conductor: a.clone() };
    let cycle = a.run_backup_cycle(true).await.unwrap().unwrap().cycle_id;
    let control = rig.cloud.control();
    control.add_fault(Fault::new(
        Service::Volume,
        Some("POST"),
        Some("/backups"),
        FaultEffect::StatusAfterEffect { code: 503 },
    ));
    let lists = control.add_fault(Fault::new(
        Service::Volume,
        Some("GET"),
        Some("/backups"),
        FaultEffect::Status { code: 503 },
    ));
    let held = a.claim_tasks().await.unwrap();
    a.execute_claimed(held.clone()).await;
    let creates = control.call_count("POST", "/volume/backups");
    assert_eq!(creates, 4, "{label}: one create per volume of p1/p2, none repeated blindly");
    each_volume_has_one_backup(&rig, label);
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        assert_eq!(state(&task_of(&rig, &cycle, v).await), TaskState::Claimed, "{label}: {v}: left claimed");
    }
    // The listings come back, the creates still fail; A's claims expire.
    control.remove_fault(lists);
    clock.advance(s.claim_timeout + Duration::seconds(1));
    b.work_once().await.unwrap();
    assert_eq!(control.call_count("POST", "/volume/backups"), creates, "{label}: B adopted, created nothing");
    a.execute_claimed(held).await;
    control.clear_faults();
    control.settle();
    b.poll_once().await.unwrap();
    each_volume_has_one_backup(&rig, label);
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        let t = task_of(&rig, &cycle, v).await;
        assert_eq!(state(&t), TaskState::Done, "{label}: {v}: {:?}", t.reason);
        assert_eq!(t.claimed_by.as_deref(), Some("host-b:2"), "{label}: {v}");
        let filter = BackupFilter { volume_id: Some(VolumeId(t.volume_id.clone())), ..BackupFilter::default() };
        let backups: Vec<_> = futures_util::TryStreamExt::try_collect(rig.conductor.os.backups(&filter)).await.unwrap();
        assert_eq!(backups[0].metadata.get(TASK_KEY), Some(&t.task_id), "{label}: {v}");
        assert_eq!(backups[0].id.0, t.backup_id, "{label}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_longer_than_the_claim_makes_no_duplicate_on_sqlite() {
    a_503_storm_makes_no_duplicate(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_longer_than_the_claim_makes_no_duplicate_on_mariadb() {
    a_503_storm_makes_no_duplicate(TestDb::mysql()).await;
}

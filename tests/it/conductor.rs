//! The backup cycle against the emulated cloud and the real databases:
//! selection, skip flag, naming, incremental cadence and fallback, limits and
//! quota, last-backup-time, timeouts, the behaviours of a real Cinder and
//! Keystone (issue 10), conductors that die or run side by side, and faults.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures_util::TryStreamExt;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::tasks::{self, TaskRow};
use staffeln::objects::metadata::TASK_KEY;
use staffeln::objects::{BackupKind, ProjectId, TaskState, VolumeId};
use staffeln::openstack::{BackupFilter, BackupRequest, OpenStack, Secret, Settings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

use crate::support::TestDb;

/// Projects p1 and p2 where the service user has a role, p3 where it has none.
pub(crate) fn scenario() -> Scenario {
    let json = serde_json::json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "p1", "quota": {"backups": 50, "backup_gigabytes": 1000}},
            {"name": "p2", "quota": {"backups": 50, "backup_gigabytes": 1000}},
            {"name": "p3"}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"], "p2": ["admin"]}},
            {"name": "alice", "password": "alice-secret", "roles": {"p1": ["member"]}}
        ],
        "servers": [
            {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-a", "vol-b"]},
            {"project": "p1", "name": "db", "metadata": {"__staffeln_backup": "YES"}, "volumes": ["vol-c", "vol-d"]},
            {"project": "p1", "name": "idle", "metadata": {"__staffeln_backup": "no"}, "volumes": ["vol-e"]},
            {"project": "p2", "name": "app", "metadata": {"__staffeln_backup": "1"}, "volumes": ["vol-f"]},
            {"project": "p3", "name": "lost", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-g"]}
        ],
        "volumes": [
            {"project": "p1", "name": "vol-a", "size": 10},
            {"project": "p1", "name": "vol-b", "size": 5},
            {"project": "p1", "name": "vol-c", "size": 5, "metadata": {"skip-volume-backup": "True"}},
            {"project": "p1", "name": "vol-d", "size": 5},
            {"project": "p1", "name": "vol-e", "size": 5},
            {"project": "p2", "name": "vol-f", "size": 1},
            {"project": "p3", "name": "vol-g", "size": 1}
        ]
    });
    serde_json::from_value(json).unwrap()
}

pub(crate) struct Rig {
    pub(crate) cloud: FakeCloud,
    pub(crate) db: TestDb,
    pub(crate) conductor: Conductor,
}

pub(crate) fn settings() -> ConductorSettings {
    let mut s = ConductorSettings::from_config(&Config::default()).unwrap();
    s.plan.backup_min_interval = Duration::zero();
    s.poll_interval = StdDuration::from_millis(20);
    s
}

pub(crate) async fn os_for(cloud: &FakeCloud, user: &str) -> OpenStack {
    let c = cloud.credentials(user).unwrap();
    let settings = Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_secs(30),
        ..Settings::default()
    };
    OpenStack::connect(&settings).await.unwrap()
}

pub(crate) async fn conductor(cloud: &FakeCloud, db: &TestDb, holder: &str, s: ConductorSettings) -> Conductor {
    Conductor::new(holder.to_owned(), db.db().clone(), os_for(cloud, "staffeln").await, s)
}

pub(crate) async fn rig_with(db: TestDb, scenario: Scenario, s: ConductorSettings) -> Rig {
    let cloud = FakeCloud::start(scenario, FakeOptions::default()).unwrap();
    let conductor = conductor(&cloud, &db, "host-a:1", s).await;
    Rig { cloud, db, conductor }
}

impl Rig {
    pub(crate) fn vid(&self, name: &str) -> String {
        self.cloud.control().volume_id(name).unwrap()
    }

    /// Plans a cycle, starts its backups, lets the cloud finish them, records.
    pub(crate) async fn full_cycle(&self) -> staffeln::conductor::backup::cycle::CycleSummary {
        let summary = self.conductor.run_backup_cycle(true).await.unwrap().expect("this conductor leads");
        self.settle().await;
        summary
    }

    pub(crate) async fn settle(&self) {
        for _ in 0..20 {
            self.conductor.work_once().await.unwrap();
            self.cloud.control().settle();
            self.conductor.poll_once().await.unwrap();
            if self.active().await.is_empty() {
                return;
            }
        }
        panic!("tasks still active: {:?}", self.active().await);
    }

    pub(crate) async fn active(&self) -> Vec<String> {
        self.conductor.db_call(tasks::active_volume_ids).await.unwrap()
    }

    pub(crate) async fn tasks_of(&self, cycle: &str) -> HashMap<String, TaskRow> {
        let cycle = cycle.to_owned();
        let rows = self.conductor.db_call(move |c| tasks::of_cycle(c, &cycle)).await.unwrap();
        rows.into_iter().map(|t| (t.volume_id.clone(), t)).collect()
    }

    pub(crate) async fn backups_of(&self, volume: &str) -> Vec<staffeln::objects::Backup> {
        let filter = BackupFilter { volume_id: Some(VolumeId(self.vid(volume))), ..BackupFilter::default() };
        self.conductor.os.backups(&filter).try_collect().await.unwrap()
    }
}

pub(crate) fn state(t: &TaskRow) -> TaskState {
    t.task_state()
}

async fn selection_naming_kinds_and_last_backup_time(db: TestDb) {
    let rig = rig_with(db, scenario(), settings()).await;
    let label = rig.db.label();
    let first = rig.full_cycle().await;
    let tasks = rig.tasks_of(&first.cycle_id).await;
    // web (true) and db (YES) in p1, app (1) in p2, lost in p3; idle (no) is not planned.
    for v in ["vol-a", "vol-b", "vol-c", "vol-d", "vol-f", "vol-g"] {
        assert!(tasks.contains_key(&rig.vid(v)), "{label}: {v} planned");
    }
    assert!(!tasks.contains_key(&rig.vid("vol-e")), "{label}: unflagged server");
    let t = |v: &str| tasks[&rig.vid(v)].clone();
    assert_eq!(state(&t("vol-c")), TaskState::Skipped, "{label}");
    assert!(t("vol-c").reason.unwrap().contains("skip-volume-backup"));
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        assert_eq!(state(&t(v)), TaskState::Done, "{label}: {v}: {:?}", t(v).reason);
        assert!(!t(v).incremental, "{label}: the first backup is a full");
    }
    // Issue 10.3: no role in p3 fails that project only, with a clear reason.
    let lost = t("vol-g");
    assert_eq!(state(&lost), TaskState::Failed, "{label}");
    let reason = lost.reason.unwrap();
    assert!(reason.contains("no role in project") && reason.contains("grant the service user a role"), "{reason}");
    // ...and the metrics name it (staffeln_project_no_role).
    let cycle = first.cycle_id.clone();
    let no_role = rig.conductor.db_call(move |c| tasks::projects_without_role(c, &cycle)).await.unwrap();
    assert_eq!(no_role, [rig.cloud.control().project_id("p3").unwrap()], "{label}");

    // Names, metadata, ownership by the volume's project, backup_data rows.
    let backups = rig.backups_of("vol-a").await;
    assert_eq!(backups.len(), 1, "{label}");
    let b = &backups[0];
    let name = b.name.clone().unwrap();
    assert!(name.starts_with("vol-a-20") && name.len() == "vol-a-2026-11-25-12-00-00".len(), "{name}");
    assert_eq!(b.metadata.get("__automated_backup").map(String::as_str), Some("True"));
    assert_eq!(b.metadata.get(TASK_KEY), Some(&t("vol-a").task_id));
    assert_eq!(b.project_id.as_str(), rig.cloud.control().project_id("p1").unwrap());
    let row = rig.conductor.db_call({
        let id = b.id.0.clone();
        move |c| staffeln::db::backups::get(c, &id)
    });
    assert!(row.await.unwrap().is_some(), "{label}: backup_data row");

    // last-backup-time on servers whose volumes are all backed up (db: vol-c skipped, vol-d done).
    let admin = &rig.conductor.os;
    let servers: Vec<_> = admin.servers(None).try_collect().await.unwrap();
    let meta = |n: &str| servers.iter().find(|s| s.name == n).unwrap().metadata.get("last-backup-time").cloned();
    for n in ["web", "db", "app"] {
        let value = meta(n).unwrap_or_else(|| panic!("{label}: {n} has no last-backup-time"));
        assert!(chrono::DateTime::parse_from_rfc3339(&value).is_ok() && value.ends_with('Z'), "{value}");
    }
    assert_eq!(meta("lost"), None, "{label}: not backed up, not stamped");

    // Cadence: two incrementals after the full (full_backup_depth = 2), then a full.
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let s = rig.full_cycle().await;
        kinds.push(rig.tasks_of(&s.cycle_id).await[&rig.vid("vol-a")].incremental);
    }
    assert_eq!(kinds, [true, true, false], "{label}");
    let all = rig.backups_of("vol-a").await;
    assert_eq!(all.len(), 4, "{label}");
    assert_eq!(all.iter().filter(|b| b.is_incremental).count(), 2, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_naming_kinds_and_last_backup_time_on_sqlite() {
    selection_naming_kinds_and_last_backup_time(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_naming_kinds_and_last_backup_time_on_mariadb() {
    selection_naming_kinds_and_last_backup_time(TestDb::mysql()).await;
}

/// Issue 10.1: a user's manual backup made after Staffeln's last one would
/// become the parent of an incremental: Staffeln takes a full and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_newer_backup_makes_the_next_one_a_full() {
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    rig.full_cycle().await;
    let alice = os_for(&rig.cloud, "alice").await;
    let mut manual = BackupRequest::new(VolumeId(rig.vid("vol-b")));
    manual.name = Some("alice-manual".into());
    let manual_id = alice.create_backup(&manual).await.unwrap();
    rig.cloud.control().settle();
    let s = rig.full_cycle().await;
    let tasks = rig.tasks_of(&s.cycle_id).await;
    let b = &tasks[&rig.vid("vol-b")];
    assert!(!b.incremental, "full, not a child of the user's backup");
    assert!(b.note.as_deref().unwrap_or("").contains(manual_id.as_str()), "{:?}", b.note);
    assert!(tasks[&rig.vid("vol-a")].incremental, "other volumes keep their chain");
}

/// Without the handling, Cinder's "no backups available" would fail the task;
/// Staffeln retries as a full and notes why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_without_a_full_in_cinder_is_retried_as_a_full() {
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    rig.full_cycle().await;
    let s = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap();
    // The full vanishes between planning and the create (an operator deleted it).
    for b in rig.backups_of("vol-a").await {
        rig.conductor.os.force_delete_backup(&b.id).await.unwrap();
    }
    rig.cloud.control().settle();
    rig.settle().await;
    let t = &rig.tasks_of(&s.cycle_id).await[&rig.vid("vol-a")];
    assert_eq!(state(t), TaskState::Done, "{:?}", t.reason);
    assert!(!t.incremental);
    assert!(t.note.as_deref().unwrap_or("").contains("no backup to build on"), "{:?}", t.note);
}

/// Issue 10.2: a volume busy with another backup waits for the next cycle,
/// without failing and without a second backup in the same cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_being_backed_up_waits_for_the_next_cycle() {
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    let alice = os_for(&rig.cloud, "alice").await;
    let mut manual = BackupRequest::new(VolumeId(rig.vid("vol-b")));
    manual.force = true;
    alice.create_backup(&manual).await.unwrap(); // vol-b is backing-up until the cloud settles
    let s = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap();
    let t = &rig.tasks_of(&s.cycle_id).await[&rig.vid("vol-b")];
    assert_eq!(state(t), TaskState::Waiting);
    assert!(t.reason.as_deref().unwrap().contains("backing-up"), "{:?}", t.reason);
    rig.settle().await;
    assert_eq!(rig.backups_of("vol-b").await.len(), 1, "only the user's backup in this cycle");
    let next = rig.full_cycle().await;
    assert_eq!(state(&rig.tasks_of(&next.cycle_id).await[&rig.vid("vol-b")]), TaskState::Done);
}

/// The same at create time: the volume became busy after planning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_becomes_busy_after_planning_waits_too() {
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    let s = rig.conductor.run_backup_cycle(true).await.unwrap().unwrap();
    let alice = os_for(&rig.cloud, "alice").await;
    let mut manual = BackupRequest::new(VolumeId(rig.vid("vol-b")));
    manual.force = true;
    alice.create_backup(&manual).await.unwrap();
    rig.conductor.work_once().await.unwrap();
    let t = &rig.tasks_of(&s.cycle_id).await[&rig.vid("vol-b")];
    assert_eq!(state(t), TaskState::Waiting, "{:?}", t.reason);
}

/// Issue 10.4: Cinder's default backups quota is 10; a plan that would not
/// fit fails with the quota reason before calling Cinder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_project_limits_fail_before_cinder_is_called() {
    let mut sc = scenario();
    sc.projects[1].quota.backups = 2; // p1 plans vol-a, vol-b, vol-d
    let mut s = settings();
    s.plan.project_volume_limit_overrides.insert(ProjectId("nothing".into()), 0);
    let rig = rig_with(TestDb::sqlite(), sc, s).await;
    rig.cloud.control().reset_calls();
    let cycle = rig.full_cycle().await;
    let tasks = rig.tasks_of(&cycle.cycle_id).await;
    let failed: Vec<&TaskRow> = ["vol-a", "vol-b", "vol-d"]
        .iter()
        .map(|v| &tasks[&rig.vid(v)])
        .filter(|t| state(t) == TaskState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "two fit the quota of 2");
    let reason = failed[0].reason.clone().unwrap();
    assert!(reason.contains("backups quota exceeded: limit 2, in use 0"), "{reason}");
    let creates = rig.cloud.control().call_count("POST", "/volume/backups");
    assert_eq!(
        creates,
        3,
        "vol-a, vol-b, vol-d minus the one over quota, plus vol-f: {:?}",
        rig.cloud.control().calls()
    );
}

/// A conductor killed between the Cinder create and the database write must
/// not cause a second backup: the next conductor finds it by its task id.
async fn a_conductor_killed_after_the_create_causes_no_second_backup(db: TestDb) {
    let label = db.label();
    let mut s = settings();
    s.claim_timeout = Duration::zero(); // the dead conductor's claim expires at once
    let rig = rig_with(db, scenario(), s.clone()).await;
    rig.conductor.run_backup_cycle(true).await.unwrap().unwrap();
    // Conductor A claims everything and creates one backup, then "dies".
    let claimed = rig
        .conductor
        .db_call(|c| {
            tasks::claim(c, "dead-host:1", staffeln::db::models::now(), Duration::zero(), 100, |cands, _| {
                cands.iter().map(|t| t.id).collect()
            })
        })
        .await
        .unwrap();
    let victim = claimed.iter().find(|t| t.volume_name == "vol-a").unwrap().clone();
    let os = rig.conductor.os.for_project(&ProjectId(victim.project_id.clone())).unwrap();
    let mut req = BackupRequest::new(VolumeId(victim.volume_id.clone()));
    req.force = true;
    req.metadata = BTreeMap::from([
        (TASK_KEY.to_owned(), victim.task_id.clone()),
        ("__automated_backup".to_owned(), "True".to_owned()),
    ]);
    os.create_backup(&req).await.unwrap();
    // Conductor B takes the expired claims over.
    tokio::time::sleep(StdDuration::from_millis(5)).await;
    let b = conductor(&rig.cloud, &rig.db, "host-b:2", s).await;
    b.work_once().await.unwrap();
    rig.cloud.control().settle();
    b.poll_once().await.unwrap();
    let backups = rig.backups_of("vol-a").await;
    assert_eq!(backups.len(), 1, "{label}: {backups:?}");
    let t = &rig.tasks_of(&victim.cycle_id).await[&victim.volume_id];
    assert_eq!(state(t), TaskState::Done, "{label}");
    assert_eq!(t.backup_id, backups[0].id.0, "{label}: adopted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_killed_after_the_create_causes_no_second_backup_on_sqlite() {
    a_conductor_killed_after_the_create_causes_no_second_backup(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_killed_after_the_create_causes_no_second_backup_on_mariadb() {
    a_conductor_killed_after_the_create_causes_no_second_backup(TestDb::mysql()).await;
}

/// Two and three conductors on one database: one plans, all execute, and
/// each volume gets exactly one backup per cycle.
async fn conductors_side_by_side(db: TestDb, n: usize) {
    let label = db.label();
    let rig = rig_with(db, scenario(), settings()).await;
    let mut all = vec![rig.conductor.clone()];
    for i in 1..n {
        all.push(conductor(&rig.cloud, &rig.db, &format!("host-{i}:{i}"), settings()).await);
    }
    for round in 0..2 {
        let planned = futures_util::future::join_all(all.iter().map(|c| c.run_backup_cycle(round == 0))).await;
        let leaders = planned.into_iter().map(Result::unwrap).filter(Option::is_some).count();
        assert!(leaders <= 1, "{label}: {leaders} conductors planned the same cycle");
        for _ in 0..10 {
            futures_util::future::join_all(all.iter().map(|c| c.work_once())).await;
            rig.cloud.control().settle();
            futures_util::future::join_all(all.iter().map(|c| c.poll_once())).await;
        }
    }
    let cycles = rig.conductor.db_call(|c| tasks::open_cycles(c, "backup")).await.unwrap();
    assert!(cycles.is_empty(), "{label}: {cycles:?}");
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        let backups = rig.backups_of(v).await;
        assert_eq!(backups.len(), 1, "{label}, {n} conductors: {v}: {backups:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_conductors_on_mariadb_make_one_backup_per_volume() {
    conductors_side_by_side(TestDb::mysql(), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_conductors_on_mariadb_make_one_backup_per_volume() {
    conductors_side_by_side(TestDb::mysql(), 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_conductors_on_sqlite_make_one_backup_per_volume() {
    conductors_side_by_side(TestDb::sqlite(), 3).await;
}

/// 5xx at 20 % and latency on Nova and Cinder are absorbed by retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_and_latency_are_absorbed() {
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    let control = rig.cloud.control();
    for service in [Service::Compute, Service::Volume] {
        let mut fault = Fault::new(service, Some("GET"), None, FaultEffect::Status { code: 503 });
        fault.probability = 0.2;
        control.add_fault(fault);
        control.add_fault(Fault::new(service, None, None, FaultEffect::Latency { millis: 5 }));
    }
    let cycle = rig.full_cycle().await;
    let tasks = rig.tasks_of(&cycle.cycle_id).await;
    for v in ["vol-a", "vol-b", "vol-d", "vol-f"] {
        assert_eq!(state(&tasks[&rig.vid(v)]), TaskState::Done, "{v}: {:?}", tasks[&rig.vid(v)].reason);
    }
    let kinds: Vec<BackupKind> = rig.backups_of("vol-a").await.iter().map(|b| b.kind()).collect();
    assert_eq!(kinds, [BackupKind::Full]);
}

/// After a cycle, each project with results gets one digest (and the
/// operator one of all projects, naming the project without a role); a
/// digest that cannot be sent leaves its results for the next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_follow_a_cycle_and_survive_an_smtp_outage() {
    use crate::notify::{Mode, SmtpSink};
    use staffeln::notify::{Mailer, NotifySettings, SmtpSecurity};
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    rig.full_cycle().await;
    let mut notify = NotifySettings {
        project_receiver_domain: Some("corp.example".into()),
        admin_receiver: vec!["ops@corp.example".into()],
        sender_email: Some("staffeln@corp.example".into()),
        smtp_server_domain: "127.0.0.1".into(),
        smtp_security: SmtpSecurity::None,
        smtp_timeout: StdDuration::from_secs(10),
        ..NotifySettings::default()
    };
    // SMTP down: nothing is marked reported.
    notify.smtp_server_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = Mailer::new(notify.clone()).unwrap();
    let summary = rig.conductor.send_reports(&down, Duration::zero(), true, None).await.unwrap();
    assert!(summary.delivered.is_empty() && summary.failed.len() == 3, "{summary:?}");
    // SMTP up: every project's digest goes out once.
    let sink = SmtpSink::start(Mode::Plain, None);
    notify.smtp_server_port = sink.port;
    let up = Mailer::new(notify).unwrap();
    let summary = rig.conductor.send_reports(&up, Duration::hours(24), false, None).await.unwrap();
    assert_eq!(summary.delivered.len(), 3, "{summary:?}");
    let mails = sink.mails();
    let to = |addr: &str| mails.iter().filter(|m| m.rcpt_tos.iter().any(|r| r == addr)).collect::<Vec<_>>();
    let p1 = to("p1@corp.example");
    assert_eq!(p1.len(), 1, "{mails:#?}");
    assert!(p1[0].subject.contains("p1"), "{}", p1[0].subject);
    let html = p1[0].html();
    for v in ["vol-a", "vol-b", "vol-d"] {
        assert!(html.contains(v), "{v} in the p1 digest");
    }
    assert!(html.contains("vol-c") && html.contains("skip-volume-backup"), "skipped volume and its reason");
    let ops = to("ops@corp.example");
    assert_eq!(ops.len(), 1);
    assert!(ops[0].html().contains("no role in project"), "the operator sees the project without a role");
    // Nothing left; and within report_period nothing is sent again.
    let again = rig.conductor.send_reports(&up, Duration::hours(24), false, None).await.unwrap();
    assert!(again.delivered.is_empty() && again.held_back.is_some(), "{again:?}");
    assert_eq!(sink.mails().len(), mails.len());
}

/// Issue 18 (chaos, checkpoint `digest_sent`): a conductor that died after a
/// digest was delivered but before its results were marked as reported made
/// every conductor after it send the digest again, each a new mail. Each
/// digest is now marked as soon as it is delivered, and a resend of the same
/// results carries the same Message-ID, so mail systems can drop the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sent_again_after_a_crash_keeps_its_message_id() {
    use crate::notify::{Mode, SmtpSink};
    use diesel::connection::SimpleConnection;
    use staffeln::notify::{Mailer, NotifySettings, SmtpSecurity};
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    rig.full_cycle().await;
    let sink = SmtpSink::start(Mode::Plain, None);
    let notify = NotifySettings {
        project_receiver_domain: Some("corp.example".into()),
        sender_email: Some("staffeln@corp.example".into()),
        smtp_server_domain: "127.0.0.1".into(),
        smtp_server_port: sink.port,
        smtp_security: SmtpSecurity::None,
        smtp_timeout: StdDuration::from_secs(10),
        ..NotifySettings::default()
    };
    let mailer = Mailer::new(notify).unwrap();
    let first = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert_eq!(first.delivered.len(), 3, "{first:?}");
    // The crash: delivered, never marked.
    rig.db
        .db()
        .conn()
        .unwrap()
        .batch_execute("UPDATE queue_data SET reported_at = NULL; DELETE FROM report_timestamp;")
        .unwrap();
    let again = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert_eq!(again.delivered.len(), 3, "{again:?}");
    let mails = sink.mails();
    let p1: Vec<_> = mails.iter().filter(|m| m.rcpt_tos.iter().any(|r| r == "p1@corp.example")).collect();
    assert_eq!(p1.len(), 2, "{mails:#?}");
    let id = p1[0].message_id.clone().expect("a digest carries a Message-ID");
    assert!(id.starts_with("<staffeln-digest-") && id.ends_with("@corp.example>"), "{id}");
    assert_eq!(p1[1].message_id.as_deref(), Some(id.as_str()), "the resend is recognisable as the same digest");
    let p2 = mails.iter().find(|m| m.rcpt_tos.iter().any(|r| r == "p2@corp.example")).unwrap();
    assert_ne!(p2.message_id.as_deref(), Some(id.as_str()), "another project's digest is another message");
}

/// Issue 18 (chaos, a server going to ERROR mid-cycle): a server that could
/// not be stamped while its cycle was still running made a digest round of
/// its own, which took the report period: the cycle's results waited a day.
/// Stamp failures now go out with their cycle's digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamp_failure_waits_for_its_cycles_digest() {
    use crate::notify::{Mode, SmtpSink};
    use diesel::connection::SimpleConnection;
    use staffeln::notify::{Mailer, NotifySettings, SmtpSecurity};
    let rig = rig_with(TestDb::sqlite(), scenario(), settings()).await;
    rig.full_cycle().await;
    let sink = SmtpSink::start(Mode::Plain, None);
    let notify = NotifySettings {
        project_receiver_domain: Some("corp.example".into()),
        sender_email: Some("staffeln@corp.example".into()),
        smtp_server_domain: "127.0.0.1".into(),
        smtp_server_port: sink.port,
        smtp_security: SmtpSecurity::None,
        smtp_timeout: StdDuration::from_secs(10),
        ..NotifySettings::default()
    };
    let mailer = Mailer::new(notify).unwrap();
    let first = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert_eq!(first.delivered.len(), 3, "{first:?}");
    // The next cycle is planned, and one of its servers fails to be stamped
    // (in ERROR) before its backups are done.
    let open = rig.conductor.run_backup_cycle(true).await.unwrap().expect("this conductor leads");
    let failed = format!(
        "UPDATE server_stamps SET state = 'failed', reason = 'server is in ERROR' WHERE cycle_id = '{}'",
        open.cycle_id
    );
    rig.db.db().conn().unwrap().batch_execute(&failed).unwrap();
    let early = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert!(early.delivered.is_empty(), "no digest while the cycle runs: {early:?}");
    assert_eq!(sink.mails().len(), 3);
    // Once the cycle is closed, the failure goes out with its results.
    rig.settle().await;
    let later = rig.conductor.send_reports(&mailer, Duration::zero(), true, None).await.unwrap();
    assert!(!later.delivered.is_empty(), "{later:?}");
    let mails = sink.mails();
    assert!(mails[3..].iter().any(|m| m.html().contains("server is in ERROR")), "{mails:#?}");
}

/// Issue 18 (chaos, SIGSTOP past claim_timeout): a conductor whose create
/// reached Cinder only after another conductor had taken its task over made
/// a backup no task records and no `backup_data` row owns, so retention
/// never rotated it. It is now recorded as Staffeln's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_created_after_its_task_was_taken_over_is_recorded() {
    let db = TestDb::sqlite();
    let mut s = settings();
    s.claim_timeout = Duration::zero(); // a claim expires at once
    let rig = rig_with(db, scenario(), s.clone()).await;
    rig.conductor.run_backup_cycle(true).await.unwrap().unwrap();
    // The slow conductor's creates reach Cinder three seconds late.
    let slow = Fault::new(Service::Volume, Some("POST"), Some("/backups"), FaultEffect::Latency { millis: 3000 });
    let fault = rig.cloud.control().add_fault(slow);
    let a = rig.conductor.clone();
    let late = tokio::spawn(async move { a.work_once().await });
    while rig.cloud.control().call_count("POST", "/volume/backups") == 0 {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    rig.cloud.control().remove_fault(fault);
    // Another conductor takes the expired claims over and makes its backups.
    let b = conductor(&rig.cloud, &rig.db, "host-b:2", s).await;
    b.work_once().await.unwrap();
    // Its backups are done (the volumes are no longer backing-up, so Cinder
    // accepts the late creates) before those reach Cinder.
    rig.cloud.control().settle();
    late.await.unwrap().unwrap();
    rig.cloud.control().settle();
    b.poll_once().await.unwrap();
    let rows: std::collections::HashSet<String> =
        rig.conductor.db_call(staffeln::db::backups::all_ids).await.unwrap().into_iter().collect();
    let recorded: std::collections::HashSet<String> = rig
        .conductor
        .db_call(|c| tasks::list(c, None, None, 100))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.backup_id)
        .collect();
    let mut extra = 0;
    for name in ["vol-a", "vol-b", "vol-d"] {
        for b in rig.backups_of(name).await {
            assert!(
                rows.contains(&b.id.0) || recorded.contains(&b.id.0),
                "{name}: backup {} is owned by nothing",
                b.id
            );
            extra += usize::from(!recorded.contains(&b.id.0));
        }
    }
    assert!(extra > 0, "the late creates made backups of their own (the window this test is about)");
}

/// Issue 10.4, at Cinder: when the quota could not be checked beforehand,
/// Cinder's 413 `BackupLimitExceeded` fails the task with Cinder's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cinders_413_fails_the_task_with_the_quota_reason() {
    let mut sc = scenario();
    sc.projects[1].quota.backups = 1;
    let rig = rig_with(TestDb::sqlite(), sc, settings()).await;
    // Quota reads fail, so the plan cannot count; Cinder must refuse.
    rig.cloud.control().add_fault(Fault::new(
        Service::Volume,
        Some("GET"),
        Some("/os-quota-sets"),
        FaultEffect::Status { code: 404 },
    ));
    let cycle = rig.full_cycle().await;
    let tasks = rig.tasks_of(&cycle.cycle_id).await;
    let p1: Vec<&TaskRow> = ["vol-a", "vol-b", "vol-d"].iter().map(|v| &tasks[&rig.vid(v)]).collect();
    assert_eq!(p1.iter().filter(|t| state(t) == TaskState::Done).count(), 1);
    let failed: Vec<String> =
        p1.iter().filter(|t| state(t) == TaskState::Failed).map(|t| t.reason.clone().unwrap()).collect();
    assert_eq!(failed.len(), 2);
    for reason in failed {
        assert!(
            reason.contains("Cinder quota exceeded")
                && reason.contains("Maximum number of backups allowed (1) exceeded"),
            "{reason}"
        );
    }
}

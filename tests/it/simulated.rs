//! The conductors' loops (`conductor::runner`) on an emulated clock against
//! the emulated cloud and the real databases (issue 15): the schedule's
//! defaults over a simulated day (a period and a cron expression), three
//! conductors sharing one MariaDB database for a day (one backup per volume
//! per cycle, one digest per project per report period), a leader that keeps
//! its lease through a long discovery, a conductor that died holding the
//! lease, retention beside the backup loop, one round of digests at a time.
//!
//! The emulated clock moves only when a test moves it; after each move the
//! test waits until every loop is parked again with a deadline in the future
//! (`Clock::settled`), so no assertion depends on the machine's speed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use staffeln::conductor::backup::cycle::{BackupScope, CycleOutcome};
use staffeln::conductor::clock::Clock;
use staffeln::conductor::runner::{self, Loops};
use staffeln::conductor::{BACKUP_LEASE, Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::{leases, stamps, tasks};
use staffeln::notify::{Mailer, NotifySettings, SmtpSecurity};
use staffeln::objects::VolumeId;
use staffeln::openstack::{BackupFilter, OpenStack, Secret, Settings};
use staffeln::service::{ShutdownTrigger, shutdown_channel};
use staffeln_fakecloud::{BackupOutcome, FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};
use tokio::sync::Notify;
use tracing::instrument::WithSubscriber;

use crate::notify::{Mode, SmtpSink};
use crate::support::TestDb;

/// How long (real time) the loops may take to settle after a step.
const SETTLE: StdDuration = StdDuration::from_secs(120);

/// Two projects, three flagged servers, five volumes (one skipped), quotas
/// that hold a day of backups.
pub(crate) fn scenario() -> Scenario {
    let json = serde_json::json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "p1", "quota": {"backups": 1000, "backup_gigabytes": 100000}},
            {"name": "p2", "quota": {"backups": 1000, "backup_gigabytes": 100000}}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"], "p2": ["admin"]}}
        ],
        "servers": [
            {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-a", "vol-b"]},
            {"project": "p1", "name": "db", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-c", "vol-s"]},
            {"project": "p2", "name": "app", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-f"]}
        ],
        "volumes": [
            {"project": "p1", "name": "vol-a", "size": 10},
            {"project": "p1", "name": "vol-b", "size": 5},
            {"project": "p1", "name": "vol-c", "size": 5},
            {"project": "p1", "name": "vol-s", "size": 5, "metadata": {"skip-volume-backup": "true"}},
            {"project": "p2", "name": "vol-f", "size": 1}
        ]
    });
    serde_json::from_value(json).unwrap()
}

/// The volumes the scenario backs up.
const BACKED_UP: [&str; 4] = ["vol-a", "vol-b", "vol-c", "vol-f"];

fn cloud(scenario: Scenario) -> FakeCloud {
    cloud_with(scenario, FakeOptions::default())
}

pub(crate) fn cloud_with(scenario: Scenario, opts: FakeOptions) -> FakeCloud {
    // Tokens outlive the simulated days: the clock jumps by hours.
    let opts = FakeOptions { token_ttl: StdDuration::from_secs(40 * 86_400), ..opts };
    FakeCloud::start(scenario, opts).unwrap()
}

async fn openstack(cloud: &FakeCloud) -> OpenStack {
    let c = cloud.credentials("staffeln").unwrap();
    let settings = Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_secs(30),
        // A request the emulator holds (FaultEffect::Hold) waits for the
        // test, however long a loaded machine makes it take.
        request_timeout: StdDuration::from_secs(600),
        ..Settings::default()
    };
    OpenStack::connect(&settings).await.unwrap()
}

/// The defaults of `[conductor]` (with `extra` applied).
pub(crate) fn settings(extra: impl FnOnce(&mut Config)) -> ConductorSettings {
    let mut conf = Config::default();
    extra(&mut conf);
    ConductorSettings::from_config(&conf).unwrap()
}

/// Conductors sharing one database, one emulated clock and the cloud, with
/// their loops running.
pub(crate) struct Sim {
    pub(crate) cloud: FakeCloud,
    /// Kept until the end (a MariaDB database is dropped with it).
    _db: TestDb,
    pub(crate) clock: Clock,
    pub(crate) conductors: Vec<Conductor>,
    trigger: ShutdownTrigger,
    loops: Vec<tokio::task::JoinHandle<()>>,
    /// What wakes each conductor's backup loop (an on-demand trigger, a
    /// Cinder event that freed a slot).
    pub(crate) wakes: Vec<Arc<Notify>>,
}

impl Sim {
    pub(crate) async fn new(db: TestDb, scenario: Scenario, n: usize, s: ConductorSettings) -> Sim {
        Sim::with_cloud(db, cloud(scenario), n, s).await
    }

    pub(crate) async fn with_cloud(db: TestDb, cloud: FakeCloud, n: usize, s: ConductorSettings) -> Sim {
        let clock = Clock::emulated(cloud.control().now());
        let mut conductors = Vec::new();
        for i in 0..n {
            let os = openstack(&cloud).await;
            let c = Conductor::new(format!("host-{i}:{}", 100 + i), db.db().clone(), os, s.clone())
                .with_clock(clock.clone());
            conductors.push(c);
        }
        let (trigger, _) = shutdown_channel();
        let wakes = (0..n).map(|_| Arc::new(Notify::new())).collect();
        Sim { cloud, _db: db, clock, conductors, trigger, loops: Vec::new(), wakes }
    }

    /// Starts every conductor's loops, with `mailer` for the digests.
    pub(crate) fn start(&mut self, mailer: Mailer) {
        self.start_logging(mailer, None);
    }

    /// As [`Sim::start`], the loops' log records (all levels) going to the
    /// returned capture.
    pub(crate) fn start_logged(&mut self, mailer: Mailer) -> Captured {
        let log = Captured::default();
        self.start_logging(mailer, Some(log.clone()));
        log
    }

    fn start_logging(&mut self, mailer: Mailer, log: Option<Captured>) {
        let mailer = Arc::new(mailer);
        for (c, wake) in self.conductors.iter().zip(&self.wakes) {
            let loops = Loops {
                mailer: mailer.clone(),
                report_period: Duration::seconds(86_400),
                report_retry: Duration::minutes(5),
                wake: wake.clone(),
            };
            let (c, shutdown) = (c.clone(), self.trigger.subscribe());
            let run = async move {
                runner::run(&c, &loops, shutdown).await;
                c.release_leases().await;
            };
            self.loops.push(match &log {
                Some(log) => {
                    let subscriber = tracing_subscriber::fmt()
                        .with_max_level(tracing::Level::DEBUG)
                        .with_writer(log.clone())
                        .with_ansi(false)
                        .finish();
                    tokio::spawn(run.with_subscriber(subscriber))
                }
                None => tokio::spawn(run),
            });
        }
    }

    /// The cloud's clock catches up with the conductors' and runs the
    /// backup transitions that are due.
    pub(crate) fn sync_cloud(&self) {
        let control = self.cloud.control();
        match (self.clock.now() - control.now()).to_std() {
            Ok(lag) if !lag.is_zero() => {
                control.advance(lag);
            }
            _ => {
                control.tick();
            }
        }
    }

    /// Moves the clock to `at` and waits until every loop is parked again.
    pub(crate) async fn step_to(&self, at: DateTime<Utc>) {
        self.clock.advance_to(at);
        self.sync_cloud();
        // Backup and retention loops, and the assurance loop where it runs.
        let assurance = self.conductors.iter().filter(|c| staffeln::conductor::assurance::watch::wanted(c)).count();
        let loops = 2 * self.loops.len() + assurance.min(self.loops.len());
        self.clock.settled(loops, SETTLE).await.unwrap_or_else(|e| panic!("at {}: {e}", at.to_rfc3339()));
    }

    pub(crate) async fn step(&self, by: Duration) {
        self.step_to(self.clock.now() + by).await;
    }

    pub(crate) async fn active(&self) -> Vec<String> {
        self.conductors[0].db_call(tasks::active_volume_ids).await.unwrap()
    }

    /// Steps by `poll` until no task is active.
    pub(crate) async fn finish_tasks(&self, poll: Duration) {
        for _ in 0..30 {
            if self.active().await.is_empty() {
                return;
            }
            self.step(poll).await;
        }
        panic!("tasks still active: {:?}", self.active().await);
    }

    pub(crate) fn vid(&self, name: &str) -> String {
        self.cloud.control().volume_id(name).unwrap()
    }

    pub(crate) async fn backups_of(&self, volume: &str) -> Vec<staffeln::objects::Backup> {
        let filter = BackupFilter { volume_id: Some(VolumeId(self.vid(volume))), ..BackupFilter::default() };
        self.conductors[0].os.backups(&filter).try_collect().await.unwrap()
    }

    pub(crate) async fn cycles(&self, kind: &'static str) -> usize {
        let rows = self.conductors[0]
            .db_call(move |c| {
                use diesel::prelude::*;
                use staffeln::db::schema::cycles::dsl;
                dsl::cycles
                    .filter(dsl::kind.eq(kind))
                    .count()
                    .get_result::<i64>(c)
                    .map_err(|e| staffeln::db::DbError::Query { query: "count cycles", source: e })
            })
            .await
            .unwrap();
        usize::try_from(rows).unwrap()
    }

    pub(crate) async fn stop(mut self) {
        self.trigger.trigger();
        for handle in std::mem::take(&mut self.loops) {
            tokio::time::timeout(StdDuration::from_secs(60), handle).await.expect("the loops stop").unwrap();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.trigger.trigger();
        for handle in &self.loops {
            handle.abort();
        }
    }
}

/// A mailer that records nothing and sends nothing (no `sender_email`).
pub(crate) fn quiet_mailer() -> Mailer {
    Mailer::new(NotifySettings::default()).unwrap()
}

fn smtp_mailer(port: u16) -> Mailer {
    Mailer::new(NotifySettings {
        project_receiver_domain: Some("corp.example".into()),
        sender_email: Some("staffeln@corp.example".into()),
        smtp_server_domain: "127.0.0.1".into(),
        smtp_server_port: port,
        smtp_security: SmtpSecurity::None,
        smtp_timeout: StdDuration::from_secs(10),
        ..NotifySettings::default()
    })
    .unwrap()
}

/// Runs `cycles` scheduled cycles: jumps to each one's due time (plus
/// `late(k)` seconds, a loop that wakes late), lets the backups finish.
async fn run_day(sim: &Sim, cycles: usize, late: impl Fn(usize) -> i64) {
    let c = &sim.conductors[0];
    let poll = Duration::from_std(c.settings.poll_interval).unwrap();
    let before = sim.cycles("backup").await;
    for k in 0..cycles {
        let last = c.last_cycle_start().await.unwrap();
        let due = c.settings.backup_schedule.next_due(last, c.started_at).expect("a schedule");
        sim.step_to(due + Duration::seconds(late(k))).await;
        assert_eq!(sim.cycles("backup").await, before + k + 1, "cycle {k} at {} was planned, once", due.to_rfc3339());
        sim.finish_tasks(poll).await;
    }
}

async fn assert_backups_per_volume(sim: &Sim, n: usize, what: &str) {
    for v in BACKED_UP {
        let backups = sim.backups_of(v).await;
        assert_eq!(backups.len(), n, "{what}: {v} has {} backups, one per cycle expected", backups.len());
        let full = backups.iter().filter(|b| !b.is_incremental).count();
        assert_eq!(full, n.div_ceil(3), "{what}: {v}: a full and two incrementals per chain (full_backup_depth 2)");
    }
    assert!(sim.backups_of("vol-s").await.is_empty(), "{what}: the skipped volume");
}

/// Issue 15.2: with the defaults (backup_service_period = backup_min_interval
/// = 1800), a day has 48 cycles and every one backs up every volume (not
/// every second one: 24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_period_backs_up_every_volume_in_each_of_a_days_48_cycles() {
    let mut sim = Sim::new(TestDb::sqlite(), scenario(), 1, settings(|_| {})).await;
    sim.start(quiet_mailer());
    run_day(&sim, 48, |_| 0).await;
    assert_backups_per_volume(&sim, 48, "backup_service_period 1800").await;
    sim.stop().await;
}

/// The same with a cron schedule every half hour whose cycles start up to
/// half a minute late (a busy loop, a slow database): 48 backups each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_hourly_cron_schedule_backs_up_every_volume_in_each_of_a_days_48_cycles() {
    let s = settings(|conf| {
        conf.conductor.backup_service_period = 0;
        conf.conductor.backup_schedule = "*/30 * * * *".into();
    });
    let mut sim = Sim::new(TestDb::sqlite(), scenario(), 1, s).await;
    sim.start(quiet_mailer());
    // Late by 0..29 s, in an order where many cycles start later than the next.
    run_day(&sim, 48, |k| i64::try_from((k * 17) % 30).unwrap()).await;
    assert_backups_per_volume(&sim, 48, "backup_schedule */30").await;
    let started: Vec<DateTime<Utc>> = {
        use diesel::prelude::*;
        use staffeln::db::schema::cycles::dsl;
        let rows: Vec<chrono::NaiveDateTime> = sim.conductors[0]
            .db_call(|c| {
                dsl::cycles
                    .filter(dsl::kind.eq("backup"))
                    .order(dsl::started_at.asc())
                    .select(dsl::started_at)
                    .load(c)
                    .map_err(|e| staffeln::db::DbError::Query { query: "cycle starts", source: e })
            })
            .await
            .unwrap();
        rows.into_iter().map(|t| t.and_utc()).collect()
    };
    let shortest = started.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(shortest < Duration::seconds(1800), "some cycles started less than 30 min apart: {shortest}");
    sim.stop().await;
}

/// Issue 15.3, the whole: three conductors sharing one MariaDB database for a
/// simulated day with the defaults: each cycle planned once, one backup per
/// volume per cycle, one digest per project per report period, retention
/// runs beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_conductors_on_one_mariadb_for_a_day_back_up_once_per_cycle_and_mail_once_per_period() {
    let sink = SmtpSink::start(Mode::Plain, None);
    let mut sim = Sim::new(TestDb::mysql(), scenario(), 3, settings(|_| {})).await;
    sim.start(smtp_mailer(sink.port));
    let t0 = sim.clock.now();
    run_day(&sim, 48, |_| 0).await;
    assert_backups_per_volume(&sim, 48, "three conductors").await;
    // Each cycle: one task per planned volume, whoever executed it.
    let leaders: BTreeMap<String, usize> = {
        use diesel::prelude::*;
        use staffeln::db::schema::cycles::dsl;
        let rows: Vec<(String, i32)> = sim.conductors[0]
            .db_call(|c| {
                dsl::cycles
                    .filter(dsl::kind.eq("backup"))
                    .select((dsl::leader, dsl::planned))
                    .load(c)
                    .map_err(|e| staffeln::db::DbError::Query { query: "cycles", source: e })
            })
            .await
            .unwrap();
        assert!(rows.iter().all(|(_, planned)| *planned == 5), "five volumes per cycle: {rows:?}");
        rows.into_iter().fold(BTreeMap::new(), |mut m, (leader, _)| {
            *m.entry(leader).or_default() += 1;
            m
        })
    };
    assert_eq!(leaders.values().sum::<usize>(), 48, "{leaders:?}");
    let done = sim.conductors[0].db_call(|c| tasks::in_state(c, staffeln::objects::TaskState::Done)).await.unwrap();
    let claimed_by: BTreeMap<String, usize> = done.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.claimed_by.clone().unwrap_or_default()).or_default() += 1;
        m
    });
    assert_eq!(done.len(), 48 * BACKED_UP.len(), "{claimed_by:?}");
    // Retention ran about every 20 minutes of the day, one conductor at a time.
    let runs = sim.cycles("retention").await;
    assert!((24..=73).contains(&runs), "{runs} retention runs");

    let per_project = |mails: &[crate::notify::Mail]| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for mail in mails {
            for rcpt in &mail.rcpt_tos {
                *m.entry(rcpt.clone()).or_default() += 1;
            }
        }
        m
    };
    let first_day = per_project(&sink.mails());
    assert_eq!(
        first_day,
        BTreeMap::from([("p1@corp.example".to_owned(), 1), ("p2@corp.example".to_owned(), 1)]),
        "one digest per project in the first report period"
    );
    // The next period: the first cycle after it, then one more digest each.
    run_day(&sim, 1, |_| 0).await;
    sim.step_to(t0 + Duration::seconds(86_400 + 60)).await;
    sim.step(Duration::seconds(10)).await;
    let two_days = per_project(&sink.mails());
    assert_eq!(
        two_days,
        BTreeMap::from([("p1@corp.example".to_owned(), 2), ("p2@corp.example".to_owned(), 2)]),
        "one more digest per project once report_period has passed"
    );
    sim.stop().await;
}

/// Collects what a subscriber writes, for counting log lines.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub(crate) fn lines_with(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains(needle)).count()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Issue 15.3: a conductor that died holding the lease of a due cycle: the
/// others try again when the lease expires, not in a tight loop (about 6,000
/// attempts, each four lease statements, in ten seconds before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_dead_conductor_is_waited_out_not_polled_in_a_tight_loop() {
    let mut sim = Sim::new(TestDb::sqlite(), scenario(), 1, settings(|_| {})).await;
    let ttl = sim.conductors[0].settings.lease_time;
    let dead_until = sim.clock.now() + ttl;
    let now = sim.clock.now().naive_utc();
    sim.conductors[0].db_call(move |c| leases::acquire_at(c, BACKUP_LEASE, "dead-host:1", ttl, now)).await.unwrap();
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt().with_writer(log.clone()).with_ansi(false).finish();
    let (c, shutdown) = (sim.conductors[0].clone(), sim.trigger.subscribe());
    let loops = Loops {
        mailer: Arc::new(quiet_mailer()),
        report_period: Duration::days(1),
        report_retry: Duration::minutes(5),
        wake: Arc::new(Notify::new()),
    };
    sim.loops.push(tokio::spawn(
        async move {
            runner::run(&c, &loops, shutdown).await;
        }
        .with_subscriber(subscriber),
    ));
    let leads = "dead-host:1 leads backup cycles";
    // The loop parks (a tight loop never does: `settled` would time out).
    sim.clock.settled(2, SETTLE).await.unwrap_or_else(|e| panic!("{e}; {} attempts", log.lines_with(leads)));
    assert_eq!(log.lines_with(leads), 1, "one attempt, then it waits for the lease");
    // Ten seconds, second by second: at most one poll_interval's wake-up, no attempt.
    for _ in 0..10 {
        sim.step(Duration::seconds(1)).await;
    }
    assert_eq!(log.lines_with(leads), 1, "no attempt while the lease runs");
    assert_eq!(sim.cycles("backup").await, 0);
    // The lease runs out: the next attempt takes it and plans.
    sim.step_to(dead_until + Duration::seconds(1)).await;
    assert_eq!(sim.cycles("backup").await, 1, "planned once the dead conductor's lease expired");
    assert_eq!(log.lines_with(leads), 1);
    sim.stop().await;
}

/// Issue 15.3: a discovery longer than leader_lease_time keeps the lease
/// (renewed while it runs), so the plan is written and no other conductor
/// plans the same cycle meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_longer_than_the_lease_time_keeps_the_lease_and_its_plan() {
    let sim = Sim::new(TestDb::sqlite(), scenario(), 2, settings(|_| {})).await;
    let (a, b) = (sim.conductors[0].clone(), sim.conductors[1].clone());
    let ttl = a.settings.lease_time;
    // Nova holds the server list until the test lets it answer, after
    // emulated time has run three lease times.
    let nova_answers =
        sim.cloud.control().add_fault(Fault::new(Service::Compute, Some("GET"), Some("/servers"), FaultEffect::Hold));
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt().with_writer(log.clone()).with_ansi(false).finish();
    let planning = tokio::spawn(
        async move { a.try_backup_cycle(false, &BackupScope::default()).await.unwrap() }.with_subscriber(subscriber),
    );
    let lease = || async { b.db_call(|c| leases::get(c, BACKUP_LEASE)).await.unwrap() };
    // Time moves only once Nova has the server list's request: the leader
    // then works under its lease, and its renewals are counted from now (on
    // a loaded machine the planning task may not have run yet when the lease
    // row appears; moving the clock before it has would push its renewals
    // past the assertions below).
    let servers_asked =
        || sim.cloud.control().calls().iter().any(|(k, n)| k.starts_with("GET /compute/servers") && *n > 0);
    let deadline = std::time::Instant::now() + crate::support::HANG;
    while !servers_asked() && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert!(servers_asked(), "the leader never asked Nova for its servers");
    assert!(lease().await.is_some_and(|l| l.holder == "host-0:100"), "the leader holds the lease while it discovers");
    // Three lease times in steps of ten seconds. Renewed every ttl/3, the
    // lease always has at least ttl - ttl/3 - one step left; without renewal
    // it would run out after the twelfth step.
    let step = Duration::seconds(10);
    let left_at_least = ttl - staffeln::conductor::lease::renew_every(ttl) - step;
    let end = sim.clock.now() + ttl * 3;
    while sim.clock.now() < end {
        sim.clock.advance(step);
        let now = sim.clock.now();
        let mut held = lease().await.unwrap();
        let deadline = std::time::Instant::now() + crate::support::HANG;
        while std::time::Instant::now() < deadline {
            if held.expires_at.and_utc() - now >= left_at_least {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
            held = lease().await.unwrap();
        }
        assert!(
            held.holder == "host-0:100" && held.expires_at.and_utc() - now >= left_at_least,
            "at {}: the leader's lease was not renewed during its discovery: {held:?}; the leader's log:\n{}",
            now.to_rfc3339(),
            log.text()
        );
    }
    assert!(!planning.is_finished(), "discovery still waits for Nova");
    let other = b.try_backup_cycle(false, &BackupScope::default()).await.unwrap();
    assert!(matches!(&other, CycleOutcome::Led(held) if held.holder == "host-0:100"), "{other:?}");
    sim.cloud.control().remove_fault(nova_answers);
    let outcome = planning.await.unwrap();
    assert!(matches!(&outcome, CycleOutcome::Planned(s) if s.backups == 4), "{outcome:?}");
    assert_eq!(sim.cycles("backup").await, 1);
}

/// Issue 15.3: retention runs beside the backup loop: while a retention run
/// waits for Cinder to delete a chain (up to retention_delete_timeout, half
/// an hour), the backup loop plans, creates and completes backups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_on_while_a_retention_run_waits_for_deletes() {
    let mut sc = scenario();
    let old = |days: i64| (Utc::now() - Duration::days(days)).to_rfc3339();
    let backups = serde_json::json!([
        {"id": "00000000-0000-4000-8000-000000000001", "volume": "vol-f", "name": "old-full", "status": "available",
         "created_at": old(30), "metadata": {"__automated_backup": "True"}},
        {"id": "00000000-0000-4000-8000-000000000002", "volume": "vol-f", "name": "old-incr", "status": "available",
         "parent": "00000000-0000-4000-8000-000000000001", "created_at": old(29),
         "metadata": {"__automated_backup": "True"}},
        {"id": "00000000-0000-4000-8000-000000000003", "volume": "vol-f", "name": "recent", "status": "available",
         "created_at": old(1), "metadata": {"__automated_backup": "True"}}
    ]);
    sc.backups = serde_json::from_value(backups).unwrap();
    let mut sim = Sim::new(TestDb::sqlite(), sc, 1, settings(|_| {})).await;
    for id in 1..=3 {
        let row = staffeln::db::models::NewBackup {
            backup_id: format!("00000000-0000-4000-8000-00000000000{id}"),
            project_id: sim.cloud.control().project_id("p2").unwrap(),
            volume_id: sim.vid("vol-f"),
            instance_id: String::new(),
            backup_completed: 1,
            incremental: id == 2,
        };
        sim.conductors[0].db_call(move |c| staffeln::db::backups::insert(c, &row).map(drop)).await.unwrap();
    }
    // The incremental's delete never finishes: the run waits for it before the full.
    sim.cloud.control().set_delete_outcome(Some(&sim.vid("vol-f")), BackupOutcome::Stick);
    sim.start(quiet_mailer());
    // The backup loop is parked; the retention loop is busy waiting, not parked.
    sim.clock.settled(1, SETTLE).await.unwrap();
    let open = sim.conductors[0].db_call(|c| tasks::open_cycles(c, "retention")).await.unwrap();
    assert_eq!(open.len(), 1, "the retention run is waiting for the delete");
    for _ in 0..6 {
        sim.clock.advance(Duration::seconds(10));
        sim.sync_cloud();
        sim.clock.settled(1, SETTLE).await.unwrap();
    }
    let done = sim.conductors[0].db_call(|c| tasks::in_state(c, staffeln::objects::TaskState::Done)).await.unwrap();
    assert_eq!(done.len(), BACKED_UP.len(), "the cycle's backups completed during the retention run");
    let open = sim.conductors[0].db_call(|c| tasks::open_cycles(c, "retention")).await.unwrap();
    assert_eq!(open.len(), 1, "and the retention run is still waiting");
    sim.stop().await;
}

/// Issue 15.3: three conductors sending digests at the same moment send one
/// per project between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_conductors_sending_digests_at_once_send_one_per_project() {
    let sink = SmtpSink::start(Mode::Plain, None);
    let sim = Sim::new(TestDb::mysql(), scenario(), 3, settings(|_| {})).await;
    let c = &sim.conductors[0];
    c.run_backup_cycle(true).await.unwrap().unwrap();
    for _ in 0..10 {
        c.work_once().await.unwrap();
        sim.cloud.control().settle();
        c.poll_once().await.unwrap();
    }
    assert!(sim.active().await.is_empty());
    let mailer = smtp_mailer(sink.port);
    let rounds = futures_util::future::join_all(
        sim.conductors.iter().map(|c| c.send_reports(&mailer, Duration::days(1), false, None)),
    )
    .await;
    let delivered: usize = rounds.into_iter().map(|r| r.unwrap().delivered.len()).sum();
    assert_eq!(delivered, 2, "p1 and p2, once");
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "{:?}", mails.iter().map(|m| &m.rcpt_tos).collect::<Vec<_>>());
}

/// `count` flagged servers in project p1 (quota for a day), one volume each.
fn many_volumes(count: usize) -> Scenario {
    let servers: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({"project": "p1", "name": format!("vm-{i}"),
                "metadata": {"__staffeln_backup": "true"}, "volumes": [format!("vol-{i}")]})
        })
        .collect();
    let volumes: Vec<serde_json::Value> =
        (0..count).map(|i| serde_json::json!({"project": "p1", "name": format!("vol-{i}"), "size": 1})).collect();
    serde_json::from_value(serde_json::json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 1000, "backup_gigabytes": 100000}}],
        "users": [{"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
                   "roles": {"admin": ["admin"], "p1": ["admin"]}}],
        "servers": servers,
        "volumes": volumes
    }))
    .unwrap()
}

/// One conductor over [`many_volumes`] with backups of 59 emulated seconds,
/// stepped to its first cycle's due time. The emulator's clock stands still
/// between steps: on the wall clock a loaded machine let a backup end more
/// than the 1 s margin after a poll, and a test failed (seen in a loaded run
/// of the suite).
async fn at_first_cycle_on_a_frozen_clock(volumes: usize, s: ConductorSettings) -> Sim {
    let opts =
        FakeOptions { backup_duration: StdDuration::from_secs(59), frozen_clock: true, ..FakeOptions::default() };
    let mut sim = Sim::with_cloud(TestDb::sqlite(), cloud_with(many_volumes(volumes), opts), 1, s).await;
    sim.start(quiet_mailer());
    let c = &sim.conductors[0];
    let due = c.settings.backup_schedule.next_due(c.last_cycle_start().await.unwrap(), c.started_at).unwrap();
    sim.step_to(due).await;
    sim
}

/// Issue 17.1: a freed slot is refilled on the poll that sees it free, not on
/// the poll after. 12 volumes, 4 at a time (the zone's limit), backups that
/// take 59 emulated seconds, polled every 10 s: each batch is seen finished
/// on the poll at +60 s and the next starts on that same poll, so the cycle
/// ends after 3 × 60 s (it took 3 × 60 + 2 × 10 s when a batch waited a poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_freed_by_a_finished_backup_is_refilled_on_the_same_poll() {
    let (volumes, cap, poll) = (12_usize, 4_usize, 10_i64);
    let s = settings(|conf| {
        conf.conductor.max_concurrent_backups_per_az = Some(u32::try_from(cap).unwrap());
        conf.conductor.poll_interval = u64::try_from(poll).unwrap();
    });
    let sim = at_first_cycle_on_a_frozen_clock(volumes, s).await;
    let c = &sim.conductors[0];
    assert_eq!(sim.active().await.len(), volumes, "the cycle planned every volume");
    let mut elapsed = 0;
    let mut most_in_flight = 0;
    while !sim.active().await.is_empty() {
        let creating = c.db_call(|c| tasks::in_states(c, &[staffeln::objects::TaskState::Creating])).await.unwrap();
        most_in_flight = most_in_flight.max(creating.len());
        assert!(elapsed < 600, "the cycle did not end in 600 s; still active: {:?}", sim.active().await);
        sim.step(Duration::seconds(poll)).await;
        elapsed += poll;
    }
    assert_eq!(most_in_flight, cap, "the zone's limit is kept and filled");
    let batches = i64::try_from(volumes.div_ceil(cap)).unwrap();
    assert_eq!(elapsed, batches * 60, "{batches} batches of 60 s back to back, no poll lost between batches");
    // Recorded for the metric: 12 × 60 busy slot-seconds of 4 slots × 180 s
    // (0.9 when a poll was lost between batches).
    let cycle = c.db_call(|c| tasks::latest_finished_cycle(c, "backup")).await.unwrap().expect("the cycle closed");
    let used = cycle.slot_utilisation.expect("slot utilisation recorded");
    assert!(used > 0.99, "slot utilisation {used}");
    for i in 0..volumes {
        assert_eq!(sim.backups_of(&format!("vol-{i}")).await.len(), 1, "vol-{i}: one backup");
    }
    sim.stop().await;
}

/// Stamps are decided a page at a time (200 servers per read) and only for
/// servers whose every task ended: 450 servers, 15 backups at once (one
/// cinder-backup host), so that servers become owed in waves while most
/// still wait; every server gets its `last-backup-time`, each once, and the
/// cycle closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_owed_across_several_pages_are_each_stamped_once() {
    let (volumes, poll) = (450_usize, 10_i64);
    let s = settings(|conf| {
        conf.conductor.max_concurrent_backups_per_project = 15;
        conf.conductor.poll_interval = u64::try_from(poll).unwrap();
    });
    let sim = at_first_cycle_on_a_frozen_clock(volumes, s).await;
    let c = &sim.conductors[0];
    let mut elapsed = 0;
    while c.db_call(|c| tasks::latest_finished_cycle(c, "backup")).await.unwrap().is_none() {
        assert!(elapsed < 2400, "the cycle did not close in 2400 s; still active: {}", sim.active().await.len());
        sim.step(Duration::seconds(poll)).await;
        elapsed += poll;
    }
    let cycle = c.db_call(|c| tasks::latest_finished_cycle(c, "backup")).await.unwrap().unwrap().id;
    let rows = c.db_call(move |conn| stamps::of_cycle(conn, &cycle)).await.unwrap();
    assert_eq!(rows.len(), volumes);
    let not_done: Vec<_> = rows.iter().filter(|r| r.state != stamps::DONE).collect();
    assert!(not_done.is_empty(), "{not_done:?}");
    let writes = sim.cloud.control().call_count("POST", "/compute/servers/{id}/metadata");
    assert_eq!(writes, volumes as u64, "one metadata write per server");
    sim.stop().await;
}

/// `per_zone` flagged servers in project p1 in each of zones `a` and `b`
/// (volume `vol-{zone}-{i}`), with four backup hosts in `a` and, in `b`, one
/// up and one down.
fn two_zones(per_zone: usize) -> Scenario {
    let mut servers = Vec::new();
    let mut volumes = Vec::new();
    for zone in ["a", "b"] {
        for i in 0..per_zone {
            servers.push(serde_json::json!({"project": "p1", "name": format!("vm-{zone}-{i}"),
                "availability_zone": zone,
                "metadata": {"__staffeln_backup": "true"}, "volumes": [format!("vol-{zone}-{i}")]}));
            volumes.push(serde_json::json!({"project": "p1", "name": format!("vol-{zone}-{i}"), "size": 1,
                "availability_zone": zone}));
        }
    }
    serde_json::from_value(serde_json::json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 1000, "backup_gigabytes": 100000}}],
        "users": [{"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
                   "roles": {"admin": ["admin"], "p1": ["admin"]}}],
        "servers": servers,
        "volumes": volumes,
        "backup_hosts": [
            {"host": "backup-a1", "zone": "a"}, {"host": "backup-a2", "zone": "a"},
            {"host": "backup-a3", "zone": "a"}, {"host": "backup-a4", "zone": "a"},
            {"host": "backup-b1", "zone": "b"}, {"host": "backup-b2", "zone": "b", "state": "down"}
        ]
    }))
    .unwrap()
}

/// Runs a cycle over [`two_zones`] (70 volumes in each) with one conductor,
/// `faults` set on the cloud first, and returns the most backups seen being
/// created at once in zone `a` and in zone `b`. Every volume gets its one
/// backup.
async fn most_at_once_per_zone(faults: &[Fault]) -> (usize, usize) {
    let (per_zone, poll) = (70_usize, 10_i64);
    let s = settings(|conf| {
        conf.conductor.max_concurrent_backups_per_project = 1000;
        conf.conductor.poll_interval = u64::try_from(poll).unwrap();
    });
    let opts = FakeOptions { backup_duration: StdDuration::from_secs(59), ..FakeOptions::default() };
    let cloud = cloud_with(two_zones(per_zone), opts);
    for fault in faults {
        cloud.control().add_fault(fault.clone());
    }
    let mut sim = Sim::with_cloud(TestDb::sqlite(), cloud, 1, s).await;
    sim.start(quiet_mailer());
    let c = &sim.conductors[0];
    let due = c.settings.backup_schedule.next_due(c.last_cycle_start().await.unwrap(), c.started_at).unwrap();
    sim.step_to(due).await;
    assert_eq!(sim.active().await.len(), 2 * per_zone, "the cycle planned every volume");
    let (mut most_a, mut most_b, mut elapsed) = (0, 0, 0);
    while !sim.active().await.is_empty() {
        let creating = c.db_call(|c| tasks::in_states(c, &[staffeln::objects::TaskState::Creating])).await.unwrap();
        let in_a = creating.iter().filter(|t| t.availability_zone.as_deref() == Some("a")).count();
        most_a = most_a.max(in_a);
        most_b = most_b.max(creating.len() - in_a);
        assert!(elapsed < 1200, "the cycle did not end in 1200 s; still active: {:?}", sim.active().await);
        sim.step(Duration::seconds(poll)).await;
        elapsed += poll;
    }
    for zone in ["a", "b"] {
        for i in 0..per_zone {
            assert_eq!(sim.backups_of(&format!("vol-{zone}-{i}")).await.len(), 1, "vol-{zone}-{i}: one backup");
        }
    }
    sim.stop().await;
    (most_a, most_b)
}

/// Issue 17.2: a zone's cap follows its cinder-backup hosts, as Cinder's
/// service list gives them: four up in `a` run 4 × 15 = 60 backups at once,
/// `b` (one up, one down) runs 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_zone_runs_one_share_per_usable_backup_host_at_once() {
    assert_eq!(most_at_once_per_zone(&[]).await, (60, 15));
}

/// Issue 17.2: when the service list cannot be read (the service user may
/// not list services: 403), every zone falls back to one host's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_service_list_each_zone_runs_one_hosts_share() {
    let refused = Fault::new(Service::Volume, Some("GET"), Some("/os-services"), FaultEffect::Status { code: 403 });
    assert_eq!(most_at_once_per_zone(&[refused]).await, (15, 15));
}

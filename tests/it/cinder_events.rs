//! Completion by Cinder's events (issue 17.3) against a real RabbitMQ: the
//! emulator publishes `backup.create.start/end` as Cinder's backup service
//! does (messagingv2, exchange, `<topic>.info`), the conductors read them
//! from a queue of Staffeln's own, and a backup whose `create.end` arrives is
//! recorded at once, with no list poll; one whose event was lost is found by
//! the fallback poll. Also: one poll per interval among three conductors
//! (issue 17, one poller).
//!
//! Each test has its own exchange and queue on the shared broker, so tests
//! running side by side do not read each other's events; both are deleted
//! at the end.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use staffeln::conductor::backup::notified;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Secret;
use staffeln::db::tasks;
use staffeln::objects::TaskState;
use staffeln_fakecloud::{BackupOutcome, FakeOptions, NotificationTarget};

use crate::simulated::{Sim, cloud_with, quiet_mailer, scenario, settings};
use crate::support::{Cleanup, HANG, TestDb, broker_addr, require_broker, unique_name};

/// The volumes the scenario backs up.
const BACKED_UP: usize = 4;

fn list_polls(calls: &BTreeMap<String, u64>) -> u64 {
    calls.iter().filter(|(k, _)| k.starts_with("GET ") && k.ends_with("/backups/detail")).map(|(_, n)| n).sum()
}

/// Waits (real time, bounded by [`HANG`]) until `what` holds.
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < HANG, "waited {HANG:?} for {what}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn states(c: &Conductor) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (state, n) in c.db_call(tasks::counts_by_state).await.unwrap() {
        out.insert(state, usize::try_from(n).unwrap());
    }
    out
}

/// Conductors reading Cinder's events from their own queue on a fresh
/// exchange, against an emulator publishing there.
struct EventSim {
    sim: Sim,
    listeners: Vec<(staffeln::rpc::ListenerHandle, staffeln::rpc::Transport)>,
    _cleanup: Cleanup,
}

impl EventSim {
    async fn new(conductors: usize, fallback: u64) -> EventSim {
        require_broker().await;
        let exchange = unique_name("staffeln-events-x");
        let queue = unique_name("staffeln-events-q");
        let cleanup = Cleanup { queues: vec![queue.clone()], exchanges: vec![exchange.clone()] };
        let target = NotificationTarget {
            amqp_url: format!("amqp://guest:guest@{}/%2f", broker_addr()),
            exchange: exchange.clone(),
            topic: "notifications".into(),
        };
        let cloud = cloud_with(scenario(), FakeOptions { notifications: Some(target), ..FakeOptions::default() });
        let s: ConductorSettings = settings(|conf| {
            conf.cinder_notifications.enabled = true;
            conf.cinder_notifications.transport_url =
                Some(Secret::new(format!("rabbit://guest:guest@{}/", broker_addr())));
            conf.cinder_notifications.exchange = exchange.clone();
            conf.cinder_notifications.queue = queue.clone();
            conf.cinder_notifications.fallback_poll_interval = fallback;
        });
        let events = s.cinder_events.clone().expect("enabled");
        let mut sim = Sim::with_cloud(TestDb::mysql(), cloud, conductors, s).await;
        let mut listeners = Vec::new();
        for (c, wake) in sim.conductors.iter().zip(&sim.wakes) {
            listeners.push(notified::listen(c, &events, wake.clone()).await.unwrap());
        }
        sim.start(quiet_mailer());
        EventSim { sim, listeners, _cleanup: cleanup }
    }

    fn handled(&self) -> u64 {
        self.sim.conductors.iter().map(Conductor::backup_events_handled).sum()
    }

    /// Plans the first cycle and waits until every create.start is read.
    async fn start_cycle(&self) {
        let c = &self.sim.conductors[0];
        let due = c.settings.backup_schedule.next_due(None, c.started_at).unwrap();
        self.sim.step_to(due).await;
        until("the creates to start", || async { states(c).await.get("creating") == Some(&BACKED_UP) }).await;
        until("Cinder's backup.create.start events", || async { self.handled() >= BACKED_UP as u64 }).await;
    }

    async fn stop(self) {
        for (listener, transport) in self.listeners {
            listener.stop().await;
            transport.close().await;
        }
        self.sim.stop().await;
    }
}

/// Issue 17.3: the backups complete in Cinder; their `backup.create.end`
/// events record the tasks while the clock stands still (no poll is due), and
/// the emulator counts no list call after the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_complete_by_their_events_with_no_list_poll_after_them() {
    let es = EventSim::new(1, 3600).await;
    es.start_cycle().await;
    let c = &es.sim.conductors[0];
    let before = list_polls(&es.sim.cloud.control().calls());
    // The backups take 5 s in the emulator; the poll is 10 s away, and while
    // events arrive the fallback poll is an hour away.
    es.sim.step(Duration::seconds(5)).await;
    // The emulator's clock runs on beside the conductors': finish them all.
    es.sim.cloud.control().settle();
    until("every task done", || async { states(c).await.get("done") == Some(&BACKED_UP) }).await;
    let counts = es.sim.cloud.control().notification_counts();
    // As real Cinder: a start, two progress notifications and an end per
    // backup; the conductors handle the start and the end and drop the rest.
    assert_eq!(counts.published, 4 * BACKED_UP as u64, "{counts:?}");
    assert_eq!(counts.progress, 2 * BACKED_UP as u64, "{counts:?}");
    // An event counts as handled once its task is recorded and the loop
    // woken, a moment after the task shows as done.
    until("every start and end handled", || async { es.handled() >= 2 * BACKED_UP as u64 }).await;
    assert_eq!(es.handled(), 2 * BACKED_UP as u64);
    assert_eq!(list_polls(&es.sim.cloud.control().calls()), before, "no list poll after the events");
    // Each done task recorded its backup.
    let done = c.db_call(|conn| tasks::in_state(conn, TaskState::Done)).await.unwrap();
    let ids: Vec<String> = done.iter().map(|t| t.backup_id.clone()).collect();
    assert_eq!(c.db_call(move |conn| tasks::by_backup_ids(conn, &ids)).await.unwrap().len(), BACKED_UP);
    es.stop().await;
}

/// Issue 17.3: an event lost on the way (or a failure, which Cinder does not
/// announce) is found by the list poll, which runs every
/// fallback_poll_interval while events arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_event_was_lost_is_completed_by_the_fallback_poll() {
    let es = EventSim::new(1, 60).await;
    let control = es.sim.cloud.control();
    let lost = es.sim.vid("vol-b");
    control.lose_create_end(&lost);
    control.set_create_outcome(Some(&lost), BackupOutcome::Stick);
    es.start_cycle().await;
    let c = &es.sim.conductors[0];
    es.sim.step(Duration::seconds(5)).await;
    control.settle();
    until("the three others done by their events", || async { states(c).await.get("done") == Some(&3) }).await;
    // The events woke the loop (at +5 s), which listed nothing; its next
    // poll is one poll_interval later and finds vol-b still being made.
    let before = list_polls(&control.calls());
    es.sim.step(Duration::seconds(10)).await;
    assert_eq!(list_polls(&control.calls()), before + 1, "one poll_interval after the events");
    // vol-b becomes available; its event is lost.
    control.set_create_outcome(Some(&lost), BackupOutcome::Succeed);
    control.settle();
    assert_eq!(control.notification_counts().lost, 1);
    // Events arrived: the next poll is one fallback_poll_interval (60 s)
    // after that one, not one poll_interval (10 s).
    for _ in 0..5 {
        es.sim.step(Duration::seconds(10)).await;
    }
    assert_eq!(list_polls(&control.calls()), before + 1, "no poll within the fallback interval");
    assert_eq!(states(c).await.get("creating"), Some(&1));
    es.sim.step(Duration::seconds(10)).await;
    until("the lost one done by the poll", || async { states(c).await.get("done") == Some(&BACKED_UP) }).await;
    assert!(list_polls(&control.calls()) > before + 1);
    es.stop().await;
}

/// Issue 17: three conductors list the backups being created once per
/// poll interval between them, not once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_conductors_poll_once_per_interval_between_them() {
    // Backups of an hour: none finishes while the test counts.
    let cloud =
        cloud_with(scenario(), FakeOptions { backup_duration: StdDuration::from_secs(3600), ..FakeOptions::default() });
    let mut sim = Sim::with_cloud(TestDb::mysql(), cloud, 3, settings(|_| {})).await;
    sim.start(quiet_mailer());
    let c = &sim.conductors[0];
    let due = c.settings.backup_schedule.next_due(None, c.started_at).unwrap();
    sim.step_to(due).await;
    until("the creates to start", || async { states(c).await.get("creating") == Some(&BACKED_UP) }).await;
    let mut polls = Vec::new();
    for _ in 0..4 {
        let before = sim.cloud.control().calls();
        sim.step(Duration::seconds(10)).await;
        let after = sim.cloud.control().calls();
        // A poll reads the creating list (one page) and, when something left
        // it, the lists of finished ones: nothing finishes here.
        polls.push(list_polls(&after) - list_polls(&before));
    }
    assert_eq!(polls, [1, 1, 1, 1], "one list call per interval among three conductors");
    sim.cloud.control().settle();
    sim.finish_tasks(Duration::seconds(10)).await;
    assert_eq!(states(c).await.get("done"), Some(&BACKED_UP));
    sim.stop().await;
}

/// Issue 17.3, retention: a run whose deletes come in two waves (an
/// expired chain, newest first) waits for the first wave through Cinder's
/// `backup.delete.end`, read from a private queue of the run's own (two other
/// conductors share the conductors' queue meanwhile): the run lists the
/// backups exactly as often as its preview does (no list of the backups
/// being deleted, no read of one), and the chain is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_waits_for_its_deletes_by_their_events_with_no_poll() {
    use staffeln::conductor::retention::plan::RetentionAction;
    use staffeln::objects::{ProjectId, VolumeId};
    use staffeln::openstack::BackupRequest;

    use crate::retention::{base_scenario, days, incr, os_for, own, retention_settings};

    require_broker().await;
    let exchange = unique_name("staffeln-events-x");
    let queue = unique_name("staffeln-events-q");
    let _cleanup = Cleanup { queues: vec![queue.clone()], exchanges: vec![exchange.clone()] };
    let backups = [own("f1", "vol-a", days(30)), incr(own("i1", "vol-a", days(29)), "f1"), own("f2", "vol-a", days(1))];
    let servers = serde_json::json!([
        {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-a"]}
    ]);
    let volumes = serde_json::json!([
        {"project": "p1", "name": "vol-a", "size": 1}, {"project": "p1", "name": "vol-x", "size": 1}
    ]);
    let (scenario, ids) = base_scenario(&backups, servers, volumes);
    let target = NotificationTarget {
        amqp_url: format!("amqp://guest:guest@{}/%2f", broker_addr()),
        exchange: exchange.clone(),
        topic: "notifications".into(),
    };
    let opts = FakeOptions {
        delete_duration: StdDuration::from_millis(50),
        backup_duration: StdDuration::from_millis(50),
        notifications: Some(target),
        ..FakeOptions::default()
    };
    let cloud = staffeln_fakecloud::FakeCloud::start(scenario, opts).unwrap();
    let control = cloud.control();
    let ticker = tokio::spawn({
        let control = cloud.control();
        async move {
            loop {
                control.tick();
                tokio::time::sleep(StdDuration::from_millis(10)).await;
            }
        }
    });
    let s: ConductorSettings = settings(|conf| {
        conf.cinder_notifications.enabled = true;
        conf.cinder_notifications.transport_url = Some(Secret::new(format!("rabbit://guest:guest@{}/", broker_addr())));
        conf.cinder_notifications.exchange = exchange.clone();
        conf.cinder_notifications.queue = queue.clone();
        conf.cinder_notifications.fallback_poll_interval = 3600;
    });
    let events = s.cinder_events.clone().expect("enabled");
    let db = crate::support::TestDb::mysql();
    let c = Conductor::new("host-a:1".into(), db.db().clone(), os_for(&cloud, "staffeln", HANG).await, s.clone());
    // Two more conductors read the shared queue, which hands each event to
    // one of the three: the run still sees every delete.end (its own queue).
    let (mut others, mut readers) = (Vec::new(), vec![c.clone()]);
    for i in 0..2 {
        let o =
            Conductor::new(format!("host-b:{i}"), db.db().clone(), os_for(&cloud, "staffeln", HANG).await, s.clone());
        others.push(notified::listen(&o, &events, std::sync::Arc::new(tokio::sync::Notify::new())).await.unwrap());
        readers.push(o);
    }
    for name in ["f1", "i1", "f2"] {
        let row = staffeln::db::models::NewBackup {
            backup_id: ids[name].clone(),
            project_id: control.project_id("p1").unwrap(),
            volume_id: control.volume_id("vol-a").unwrap(),
            instance_id: String::new(),
            backup_completed: 1,
            incremental: name == "i1",
        };
        c.db_call(move |conn| staffeln::db::backups::insert(conn, &row)).await.unwrap();
    }
    // The conductor reads Cinder's events (a backup of another volume, by
    // someone else, says they arrive), as a conductor with
    // [cinder_notifications] does.
    let shared = notified::listen(&c, &events, std::sync::Arc::new(tokio::sync::Notify::new())).await.unwrap();
    // The shared queue hands each event to one of the three: backups are
    // made until one reached the conductor that runs retention.
    let p1 = ProjectId(control.project_id("p1").unwrap());
    let other = BackupRequest::new(VolumeId(control.volume_id("vol-x").unwrap()));
    let handled = || readers.iter().map(Conductor::backup_events_handled).sum::<u64>();
    let started = Instant::now();
    let mut made = 0;
    while c.backup_events_handled() == 0 {
        assert!(started.elapsed() < HANG, "no event reached the conductor after {made} backups");
        c.os.for_project(&p1).unwrap().create_backup(&other).await.unwrap();
        made += 1;
        // Its start and its end read (the next backup of the volume waits for it).
        until("the backup's events read", || async { handled() >= 2 * made }).await;
    }

    let rs = retention_settings("7d", "");
    let preview = c.retention_preview(&rs, None).await.unwrap();
    let deletes: Vec<(String, Option<u32>)> = preview
        .iter()
        .filter(|d| d.action == RetentionAction::Delete)
        .map(|d| (d.backup_id.0.clone(), d.wave))
        .collect();
    assert_eq!(deletes, [(ids["i1"].clone(), Some(0)), (ids["f1"].clone(), Some(1))], "two waves: {preview:#?}");
    control.reset_calls();
    c.retention_preview(&rs, None).await.unwrap();
    let preview_calls = control.calls();
    control.reset_calls();
    let summary = c.run_retention(&rs, true).await.unwrap().expect("this conductor leads retention");
    let run_calls = control.calls();
    assert_eq!((summary.to_delete, summary.deleted, summary.deferred), (2, 2, 0), "{summary:?}");
    assert_eq!(control.backup_status(&ids["i1"]), None, "the first wave is gone before the second starts");
    // The last wave's delete was accepted; Cinder finishes it after the run.
    until("the full deleted", || async { control.backup_status(&ids["f1"]).is_none() }).await;
    assert_eq!(control.backup_status(&ids["f2"]).as_deref(), Some("available"));
    assert_eq!(
        list_polls(&run_calls),
        list_polls(&preview_calls),
        "the run listed what its preview lists, no backups being deleted: run {run_calls:#?}, preview {preview_calls:#?}"
    );
    let reads: u64 = run_calls
        .iter()
        .filter(|(k, _)| k.starts_with("GET ") && k.contains("/backups/") && !k.ends_with("/backups/detail"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(reads, 0, "no backup read one by one: {run_calls:#?}");
    let deletes: u64 = run_calls.iter().filter(|(k, _)| k.starts_with("DELETE ")).map(|(_, n)| n).sum();
    assert_eq!(deletes, 2, "{run_calls:#?}");
    for (listener, transport) in others.into_iter().chain([shared]) {
        listener.stop().await;
        transport.close().await;
    }
    ticker.abort();
}

//! Retention against the emulated cloud and the real databases: the floors,
//! per-VM overrides, archival tiers, chains deleted newest-first, error
//! clean-up, orphans, forgotten rows, a Cinder that refuses deletes with
//! dependents or fails with 5xx, the audit rows, leadership, and the preview.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use staffeln::conductor::retention::plan::{RetentionAction, RetentionDecision};
use staffeln::conductor::retention::run::RetentionSummary;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conductor::{RETENTION_LEASE, retention::RetentionSettings};
use staffeln::conf::Config;
use staffeln::db::audit::{self, AuditRow};
use staffeln::db::models::NewBackup;
use staffeln::objects::ProjectId;
use staffeln::openstack::{OpenStack, Secret, Settings};
use staffeln_fakecloud::{BackupOutcome, FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

use crate::support::TestDb;

/// One backup of the scenario: (name, volume, days old, incremental parent,
/// status, marked `__automated_backup`, with a `backup_data` row).
pub(crate) struct B {
    name: &'static str,
    volume: &'static str,
    age: Duration,
    parent: Option<&'static str>,
    status: &'static str,
    marker: bool,
    row: bool,
}

pub(crate) fn own(name: &'static str, volume: &'static str, age: Duration) -> B {
    B { name, volume, age, parent: None, status: "available", marker: true, row: true }
}

pub(crate) fn incr(mut b: B, parent: &'static str) -> B {
    b.parent = Some(parent);
    b
}

pub(crate) fn days(n: i64) -> Duration {
    Duration::days(n)
}

struct Rig {
    cloud: FakeCloud,
    db: TestDb,
    conductor: Conductor,
    settings: RetentionSettings,
    /// Backup name → id.
    ids: HashMap<&'static str, String>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

pub(crate) fn base_scenario(
    backups: &[B],
    servers: serde_json::Value,
    volumes: serde_json::Value,
) -> (Scenario, HashMap<&'static str, String>) {
    let now = Utc::now();
    let ids: HashMap<&'static str, String> =
        backups.iter().map(|b| (b.name, uuid::Uuid::new_v4().to_string())).collect();
    let specs: Vec<serde_json::Value> = backups
        .iter()
        .map(|b| {
            let mut metadata = serde_json::Map::new();
            if b.marker {
                metadata.insert("__automated_backup".into(), json!("True"));
            }
            json!({
                "id": ids[b.name], "volume": b.volume, "name": b.name, "status": b.status,
                "parent": b.parent.map(|p| ids[p].clone()),
                "created_at": (now - b.age).to_rfc3339(), "metadata": metadata,
            })
        })
        .collect();
    let scenario = json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 100}}, {"name": "p2", "quota": {"backups": 100}}],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"], "p2": ["admin"]}},
            {"name": "alice", "password": "alice-secret", "roles": {"p1": ["member"]}}
        ],
        "servers": servers,
        "volumes": volumes,
        "backups": specs,
    });
    (serde_json::from_value(scenario).unwrap(), ids)
}

pub(crate) fn retention_settings(retention: &str, archival: &str) -> RetentionSettings {
    let mut conf = Config::default();
    conf.conductor.retention_time = staffeln::conf::types::OsloDuration::parse(retention).unwrap();
    conf.conductor.archival_rules = archival.to_owned();
    conf.conductor.max_concurrent_deletes = 4;
    let mut s = ConductorSettings::from_config(&conf).unwrap().retention;
    s.poll_interval = StdDuration::from_millis(20);
    s.delete_timeout = StdDuration::from_secs(30);
    s
}

pub(crate) async fn os_for(cloud: &FakeCloud, user: &str, retry_timeout: StdDuration) -> OpenStack {
    let c = cloud.credentials(user).unwrap();
    let settings = Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout,
        ..Settings::default()
    };
    OpenStack::connect(&settings).await.unwrap()
}

async fn rig(
    db: TestDb,
    backups: &[B],
    servers: serde_json::Value,
    volumes: serde_json::Value,
    s: RetentionSettings,
) -> Rig {
    rig_with(db, backups, servers, volumes, s, StdDuration::from_secs(30), |_, _| {}).await
}

/// Starts the cloud without ticks, lets `prepare` steer it, writes the
/// `backup_data` rows, then ticks every 10 ms (deletes take 50 ms).
async fn rig_with(
    db: TestDb,
    backups: &[B],
    servers: serde_json::Value,
    volumes: serde_json::Value,
    s: RetentionSettings,
    retry_timeout: StdDuration,
    prepare: impl FnOnce(&FakeCloud, &HashMap<&'static str, String>),
) -> Rig {
    let project_of: HashMap<String, String> = volumes
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v["project"].as_str().unwrap().to_owned()))
        .collect();
    let (scenario, ids) = base_scenario(backups, servers, volumes);
    let opts = FakeOptions {
        delete_duration: StdDuration::from_millis(50),
        backup_duration: StdDuration::from_millis(50),
        ..FakeOptions::default()
    };
    let cloud = FakeCloud::start(scenario, opts).unwrap();
    prepare(&cloud, &ids);
    let control = cloud.control();
    let ticker = tokio::spawn(async move {
        loop {
            control.tick();
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    });
    let settings = ConductorSettings::from_config(&Config::default()).unwrap();
    let conductor =
        Conductor::new("host-a:1".into(), db.db().clone(), os_for(&cloud, "staffeln", retry_timeout).await, settings);
    for b in backups.iter().filter(|b| b.row) {
        let volume_id = cloud.control().volume_id(b.volume).unwrap();
        let project = cloud.control().project_id(&project_of[b.volume]).unwrap();
        let row = NewBackup {
            backup_id: ids[b.name].clone(),
            project_id: project,
            volume_id,
            instance_id: String::new(),
            backup_completed: 1,
            incremental: b.parent.is_some(),
        };
        conductor.db_call(move |c| staffeln::db::backups::insert(c, &row)).await.unwrap();
    }
    Rig { cloud, db, conductor, settings: s, ids, ticker: Some(ticker) }
}

impl Rig {
    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    fn exists(&self, name: &str) -> bool {
        self.cloud.control().backup_status(self.id(name)).is_some()
    }

    async fn run(&self) -> RetentionSummary {
        self.conductor.run_retention(&self.settings, true).await.unwrap().expect("this conductor leads retention")
    }

    async fn audit_of_run(&self, run: &str) -> Vec<AuditRow> {
        let run = run.to_owned();
        self.conductor.db_call(move |c| audit::of_run(c, &run)).await.unwrap()
    }

    /// (action, reason_code) rows of a backup in one run, in order.
    async fn audit(&self, run: &str, name: &str) -> Vec<(String, String)> {
        let id = self.id(name).to_owned();
        self.audit_of_run(run)
            .await
            .into_iter()
            .filter(|r| r.backup_id == id)
            .map(|r| (r.action, r.reason_code))
            .collect()
    }

    async fn has_row(&self, name: &str) -> bool {
        let id = self.id(name).to_owned();
        self.conductor.db_call(move |c| staffeln::db::backups::get(c, &id)).await.unwrap().is_some()
    }

    /// Waits (bounded) until the cloud has finished its deletes.
    async fn until_gone(&self, names: &[&str]) {
        let deadline = std::time::Instant::now() + crate::support::HANG;
        while std::time::Instant::now() < deadline {
            if names.iter().all(|n| !self.exists(n)) {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        panic!("still there: {:?}", names.iter().filter(|n| self.exists(n)).collect::<Vec<_>>());
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn fleet() -> (Vec<B>, serde_json::Value, serde_json::Value) {
    let backups = vec![
        // vol-a (web, configuration: 7 days): an expired chain, a kept chain, foreign and half-marked backups, an error.
        own("a-f1", "vol-a", days(30)),
        incr(own("a-i1", "vol-a", days(29)), "a-f1"),
        incr(own("a-i2", "vol-a", days(28)), "a-i1"),
        B { row: false, marker: false, ..own("a-user", "vol-a", days(25)) },
        own("a-f2", "vol-a", days(20)),
        incr(own("a-i3", "vol-a", days(2)), "a-f2"),
        B { row: false, ..own("a-marker-only", "vol-a", days(40)) },
        B { marker: false, ..own("a-row-only", "vol-a", days(41)) },
        B { status: "error", ..own("a-err", "vol-a", Duration::hours(1)) },
        // vol-b (short: 20min): the older one goes, the last successful one stays.
        own("b-1", "vol-b", Duration::hours(2)),
        own("b-2", "vol-b", Duration::hours(1)),
        // vol-c (tiers: latest:2 with 1h): the two newest stay.
        own("c-1", "vol-c", days(4)),
        own("c-2", "vol-c", days(3)),
        own("c-3", "vol-c", days(2)),
        own("c-4", "vol-c", days(1)),
        // vol-d (bad: "soon"): ignored, so 7 days, not zero.
        own("d-1", "vol-d", days(10)),
        own("d-2", "vol-d", days(3)),
        own("d-3", "vol-d", days(2)),
        // vol-e (p2): a backup being created keeps its parent; an old one goes.
        own("e-old", "vol-e", days(40)),
        own("e-1", "vol-e", days(30)),
        B { status: "creating", ..incr(own("e-2", "vol-e", Duration::hours(1)), "e-1") },
    ];
    let servers = json!([
        {"project": "p1", "name": "web", "volumes": ["vol-a"]},
        {"project": "p1", "name": "short", "metadata": {"__staffeln_retention": "20min"}, "volumes": ["vol-b"]},
        {"project": "p1", "name": "tiers", "metadata": {"__staffeln_retention": "1h", "__staffeln_archival": "latest:2"}, "volumes": ["vol-c"]},
        {"project": "p1", "name": "bad", "metadata": {"__staffeln_retention": "soon"}, "volumes": ["vol-d"]},
        {"project": "p2", "name": "app", "volumes": ["vol-e"]}
    ]);
    let volumes = json!([
        {"project": "p1", "name": "vol-a"}, {"project": "p1", "name": "vol-b"}, {"project": "p1", "name": "vol-c"},
        {"project": "p1", "name": "vol-d"}, {"project": "p2", "name": "vol-e"}
    ]);
    (backups, servers, volumes)
}

async fn floors_overrides_tiers_chains_and_audit(db: TestDb) {
    let label = db.label();
    let (backups, servers, volumes) = fleet();
    let rig = rig_with(
        db,
        &backups,
        servers,
        volumes,
        retention_settings("7d", ""),
        StdDuration::from_secs(30),
        |cloud, _| {
            cloud.control().set_create_outcome(Some(&cloud.control().volume_id("vol-e").unwrap()), BackupOutcome::Stick)
        },
    )
    .await;

    // The preview decides the same, and deletes nothing.
    let preview = rig.conductor.retention_preview(&rig.settings, None).await.unwrap();
    let decided: BTreeMap<String, RetentionAction> =
        preview.iter().map(|d| (d.backup_id.0.clone(), d.action)).collect();
    let deleted_names = ["a-f1", "a-i1", "a-i2", "a-err", "b-1", "c-1", "c-2", "d-1", "e-old"];
    for b in &backups {
        let want = if deleted_names.contains(&b.name) {
            RetentionAction::Delete
        } else if b.name == "e-2" {
            RetentionAction::Skip
        } else {
            RetentionAction::Keep
        };
        assert_eq!(decided.get(rig.id(b.name)), Some(&want), "{label}: preview of {}", b.name);
    }
    assert!(backups.iter().all(|b| rig.exists(b.name)), "{label}: the preview deleted something");

    let summary = rig.run().await;
    assert_eq!(
        (summary.to_delete, summary.deleted, summary.deferred, summary.failed),
        (9, 9, 0, 0),
        "{label}: {summary:?}"
    );
    assert_eq!(summary.skipped, 1, "{label}: e-2 is being created");
    assert_eq!(summary.warnings.len(), 1, "{label}: {:?}", summary.warnings);
    assert!(
        summary.warnings[0].contains("__staffeln_retention") && summary.warnings[0].contains("ignored"),
        "{:?}",
        summary.warnings
    );
    rig.until_gone(&deleted_names).await;
    for b in &backups {
        assert_eq!(rig.exists(b.name), !deleted_names.contains(&b.name), "{label}: {}", b.name);
    }

    // Every decision and every outcome is in the audit, with its reason.
    let run = summary.run_id.clone();
    assert_eq!(
        rig.audit(&run, "a-i2").await,
        [pair("delete", "expired"), pair("deleted", "delete_accepted")],
        "{label}"
    );
    assert_eq!(rig.audit(&run, "a-err").await, [pair("delete", "error_state"), pair("deleted", "delete_accepted")]);
    assert_eq!(rig.audit(&run, "a-f2").await, [pair("keep", "chain_parent")], "{label}");
    assert_eq!(rig.audit(&run, "a-i3").await, [pair("keep", "within_retention")]);
    assert_eq!(rig.audit(&run, "a-user").await, [pair("keep", "not_staffelns")]);
    assert_eq!(rig.audit(&run, "a-marker-only").await, [pair("keep", "not_staffelns")]);
    assert_eq!(rig.audit(&run, "a-row-only").await, [pair("keep", "not_staffelns")]);
    assert_eq!(rig.audit(&run, "b-2").await, [pair("keep", "last_successful")], "{label}: 20min override");
    assert_eq!(rig.audit(&run, "c-3").await, [pair("keep", "archival")], "{label}: latest:2 override");
    assert_eq!(rig.audit(&run, "d-2").await, [pair("keep", "within_retention")], "{label}: bad value is not zero");
    assert_eq!(rig.audit(&run, "e-2").await, [pair("skip", "in_progress")]);
    assert_eq!(rig.audit(&run, "e-1").await, [pair("keep", "last_successful")]);
    let rows = rig.audit_of_run(&run).await;
    let c3 = rows.iter().find(|r| r.backup_id == rig.id("c-3")).unwrap();
    assert!(c3.reason.contains("latest #2"), "{label}: {}", c3.reason);
    let a_f2 = rows.iter().find(|r| r.backup_id == rig.id("a-f2")).unwrap();
    assert!(a_f2.reason.contains(rig.id("a-i3")), "{label}: names the incremental: {}", a_f2.reason);
    // The chain went newest-first: a-i2's delete was accepted before a-i1's, a-i1's before a-f1's.
    let order: Vec<&str> = rows.iter().filter(|r| r.action == "deleted").map(|r| r.backup_id.as_str()).collect();
    let pos = |n: &str| order.iter().position(|id| *id == rig.id(n)).unwrap();
    assert!(pos("a-i2") < pos("a-i1") && pos("a-i1") < pos("a-f1"), "{label}: {order:?}");

    // Next run: the deleted backups' rows are forgotten, nothing else changes.
    assert!(rig.has_row("a-f1").await);
    let next = rig.run().await;
    assert_eq!((next.to_delete, next.rows_removed), (0, 9), "{label}: {next:?}");
    assert!(!rig.has_row("a-f1").await && rig.has_row("a-f2").await, "{label}");
    assert_eq!(rig.audit(&next.run_id, "a-f1").await, [pair("forget", "backup_gone")], "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floors_overrides_tiers_chains_and_audit_on_sqlite() {
    floors_overrides_tiers_chains_and_audit(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floors_overrides_tiers_chains_and_audit_on_mariadb() {
    floors_overrides_tiers_chains_and_audit(TestDb::mysql()).await;
}

/// The scenario gives f1 an incremental that the listing cannot place (it
/// is older than its parent, and in error so Cinder does not flag f1): the
/// planner deletes f1, Cinder refuses, the backup stays for the next run and
/// the run goes on. 5xx answers are left for the next run in the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cinder_refusals_and_5xx_leave_backups_for_the_next_run() {
    let backups = vec![
        own("f1", "vol-a", days(20)),
        B { status: "error", marker: false, row: false, ..incr(own("hidden-child", "vol-a", days(30)), "f1") },
        own("old", "vol-b", days(20)),
        own("keep-a", "vol-a", days(1)),
        own("keep-b", "vol-b", days(1)),
    ];
    let servers = json!([{"project": "p1", "name": "web", "volumes": ["vol-a", "vol-b"]}]);
    let volumes = json!([{"project": "p1", "name": "vol-a"}, {"project": "p1", "name": "vol-b"}]);
    let rig = rig_with(
        TestDb::sqlite(),
        &backups,
        servers,
        volumes,
        retention_settings("7d", ""),
        StdDuration::from_millis(300),
        |_, _| {},
    )
    .await;
    let control = rig.cloud.control();
    // First Cinder fails every delete with 503 until the client gives up.
    let fault = control.add_fault(Fault::new(
        Service::Volume,
        Some("DELETE"),
        Some("/backups/{id}"),
        FaultEffect::Status { code: 503 },
    ));
    let s = rig.run().await;
    assert_eq!((s.to_delete, s.deleted, s.deferred, s.failed), (2, 0, 2, 0), "{s:?}");
    assert_eq!(rig.audit(&s.run_id, "old").await, [pair("delete", "expired"), pair("deferred", "cinder_error")]);
    assert_eq!(rig.audit(&s.run_id, "f1").await, [pair("delete", "expired"), pair("deferred", "cinder_error")]);
    assert!(rig.exists("f1") && rig.exists("old"));
    // The cloud recovers: the next run deletes "old"; Cinder refuses f1, which has an incremental.
    control.remove_fault(fault);
    let s = rig.run().await;
    assert_eq!((s.to_delete, s.deleted, s.deferred, s.failed), (2, 1, 1, 0), "{s:?}");
    assert_eq!(rig.audit(&s.run_id, "old").await, [pair("delete", "expired"), pair("deleted", "delete_accepted")]);
    assert_eq!(rig.audit(&s.run_id, "f1").await, [pair("delete", "expired"), pair("deferred", "has_dependents")]);
    let rows = rig.audit_of_run(&s.run_id).await;
    let refused = rows.iter().find(|r| r.backup_id == rig.id("f1") && r.action == "deferred").unwrap();
    assert!(refused.reason.contains("Incremental backups exist"), "{}", refused.reason);
    rig.until_gone(&["old"]).await;
    assert!(rig.exists("f1") && rig.exists("hidden-child") && rig.exists("keep-a") && rig.exists("keep-b"));
}

async fn import_orphan(cloud: &FakeCloud) -> String {
    let admin = cloud.admin();
    let http = reqwest::Client::new();
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": admin.username, "password": admin.password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"id": admin.project_id}}}});
    let resp = http.post(format!("{}/auth/tokens", cloud.auth_url())).json(&body).send().await.unwrap();
    let token = resp.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let id = uuid::Uuid::new_v4().to_string();
    let record = json!({"id": id, "size": 1, "display_name": "orphan", "metadata": {"__automated_backup": "True"}});
    let url = base64(&serde_json::to_vec(&record).unwrap());
    let import = json!({"backup-record": {"backup_service": "cinder.backup.drivers.swift.SwiftBackupDriver", "backup_url": url}});
    let resp = http
        .post(format!("{}/volume/v3/{}/backups/import_record", cloud.base_url(), admin.project_id))
        .header("x-auth-token", token)
        .header("openstack-api-version", "volume 3.64")
        .json(&import)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().await.unwrap());
    id
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A backup whose volume no longer exists follows the rules with the floor
/// lifted: it goes once past the retention time, while the last backup of a
/// live volume of the same age stays. Rows of backups Cinder no longer has
/// are forgotten (only when they predate the listing and Cinder says 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_lose_the_floor_and_stale_rows_are_forgotten() {
    let backups = vec![own("live", "vol-a", Duration::zero())];
    let servers = json!([{"project": "p1", "name": "web", "volumes": ["vol-a"]}]);
    let volumes = json!([{"project": "p1", "name": "vol-a"}]);
    let rig = rig(TestDb::sqlite(), &backups, servers, volumes, retention_settings("7d", "")).await;
    let orphan = import_orphan(&rig.cloud).await;
    let deadline = std::time::Instant::now() + crate::support::HANG;
    while rig.cloud.control().backup_status(&orphan).as_deref() != Some("available") {
        assert!(std::time::Instant::now() < deadline, "the orphan never became available");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let (id, row) = (
        orphan.clone(),
        NewBackup {
            backup_id: orphan.clone(),
            project_id: rig.cloud.control().project_id("admin").unwrap(),
            volume_id: "00000000-0000-0000-0000-000000000000".into(),
            instance_id: String::new(),
            backup_completed: 1,
            incremental: false,
        },
    );
    rig.conductor.db_call(move |c| staffeln::db::backups::insert(c, &row)).await.unwrap();
    let ghost = NewBackup {
        backup_id: "ghost-backup".into(),
        project_id: rig.cloud.control().project_id("p1").unwrap(),
        volume_id: "v".into(),
        instance_id: String::new(),
        backup_completed: 1,
        incremental: false,
    };
    rig.conductor.db_call(move |c| staffeln::db::backups::insert(c, &ghost)).await.unwrap();

    // Now: both young; in 30 days: the orphan goes, the live volume's last backup stays.
    let young = rig.conductor.run_retention_at(&rig.settings, true, Utc::now()).await.unwrap().unwrap();
    assert_eq!(young.to_delete, 0, "{young:?}");
    assert_eq!(young.rows_removed, 1, "the ghost row");
    let later: DateTime<Utc> = Utc::now() + days(30);
    let s = rig.conductor.run_retention_at(&rig.settings, true, later).await.unwrap().unwrap();
    assert_eq!((s.to_delete, s.deleted), (1, 1), "{s:?}");
    let rows = rig.audit_of_run(&s.run_id).await;
    let o = rows.iter().find(|r| r.backup_id == id && r.action == "delete").unwrap();
    assert_eq!(o.reason_code, "expired");
    assert!(o.reason.contains("no longer exists"), "{}", o.reason);
    assert_eq!(rig.audit(&s.run_id, "live").await, [pair("keep", "last_successful")]);
    let young_rows = rig.audit_of_run(&young.run_id).await;
    let ghost = young_rows.iter().find(|r| r.backup_id == "ghost-backup").unwrap();
    assert_eq!((ghost.action.as_str(), ghost.reason_code.as_str()), ("forget", "backup_gone"));
}

/// Only the holder of the retention lease runs retention; the backup-cycle
/// lease is another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_runs_retention_and_the_schedule_gates_it() {
    let backups = vec![own("old", "vol-a", days(30)), own("new", "vol-a", days(1))];
    let servers = json!([{"project": "p1", "name": "web", "volumes": ["vol-a"]}]);
    let volumes = json!([{"project": "p1", "name": "vol-a"}]);
    let rig = rig(TestDb::sqlite(), &backups, servers, volumes, retention_settings("7d", "")).await;
    let other = Conductor::new(
        "host-b:2".into(),
        rig.db.db().clone(),
        os_for(&rig.cloud, "staffeln", StdDuration::from_secs(30)).await,
        ConductorSettings::from_config(&Config::default()).unwrap(),
    );
    let held = rig
        .conductor
        .db_call(|c| staffeln::db::leases::acquire(c, "backup-cycle", "host-b:2", Duration::seconds(60)))
        .await
        .unwrap();
    assert!(held.is_some());
    let first = rig.conductor.run_retention(&rig.settings, false).await.unwrap();
    assert!(first.is_some(), "never ran: due at once, even with another backup-cycle leader");
    assert!(other.run_retention(&rig.settings, true).await.unwrap().is_none(), "host-a holds {RETENTION_LEASE}");
    let again = rig.conductor.run_retention(&rig.settings, false).await.unwrap();
    assert!(again.is_none(), "not due again within retention_service_period");
}

/// The preview of one project lists only its backups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_of_a_project_lists_its_backups_only() {
    let (backups, servers, volumes) = fleet();
    let rig = rig(TestDb::sqlite(), &backups, servers, volumes, retention_settings("7d", "")).await;
    let p2 = ProjectId(rig.cloud.control().project_id("p2").unwrap());
    let preview: Vec<RetentionDecision> = rig.conductor.retention_preview(&rig.settings, Some(&p2)).await.unwrap();
    let mut names: Vec<&str> = backups
        .iter()
        .filter(|b| preview.iter().any(|d| d.backup_id.as_str() == rig.id(b.name)))
        .map(|b| b.name)
        .collect();
    names.sort();
    assert_eq!(names, ["e-1", "e-2", "e-old"]);
    assert!(preview.iter().all(|d| d.project_id == p2));
}

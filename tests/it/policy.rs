//! Cinder's `backup:delete` policy end to end, both sides real: the emulated
//! Cinder enforcing `rule:admin_api or (project_id:%(project_id)s and
//! role:member and http://…staffeln-api…)` with one API worker, staffeln-api
//! answering its `http:` check, the conductor's retention deleting with
//! tokens where the service user holds only `member`, and a tenant at the
//! `openstack`-level API, on SQLite and MariaDB.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};
use staffeln::api::{self, ApiHandle, ApiSettings};
use staffeln::conductor::retention::RetentionSettings;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::models::NewBackup;
use staffeln::openstack::{OpenStack, Secret, Settings};
use staffeln_fakecloud::{BackupDeletePolicy, FakeCloud, FakeOptions, Scenario};

use crate::support::TestDb;

/// One backup of the scenario.
struct B {
    name: &'static str,
    volume: &'static str,
    age: Duration,
    parent: Option<&'static str>,
    /// `__automated_backup` metadata and a `backup_data` row: Staffeln's.
    staffelns: bool,
    status: &'static str,
}

fn b(name: &'static str, volume: &'static str, days: i64) -> B {
    B { name, volume, age: Duration::days(days), parent: None, staffelns: true, status: "available" }
}

/// Staffeln's service user is `admin` only in its own project (discovery
/// lists every project) and `member` in p1 and p2, where it backs up and
/// deletes; alice is a member of p1.
fn scenario(backups: &[B], ids: &HashMap<&'static str, String>) -> Scenario {
    let now = Utc::now();
    let specs: Vec<Value> = backups
        .iter()
        .map(|x| {
            let metadata =
                if x.staffelns { json!({"__automated_backup": "True"}) } else { json!({"purpose": "alice's own"}) };
            json!({"id": ids[x.name], "volume": x.volume, "name": x.name, "status": x.status,
                   "parent": x.parent.map(|p| ids[p].clone()), "created_at": (now - x.age).to_rfc3339(),
                   "metadata": metadata})
        })
        .collect();
    serde_json::from_value(json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 100}}, {"name": "p2", "quota": {"backups": 100}}],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["member"], "p2": ["member"]}},
            {"name": "alice", "password": "alice-secret", "roles": {"p1": ["member"]}}
        ],
        "servers": [
            {"project": "p1", "name": "web", "volumes": ["vol-a", "vol-b"]},
            {"project": "p2", "name": "app", "volumes": ["vol-e"]}
        ],
        "volumes": [{"project": "p1", "name": "vol-a"}, {"project": "p1", "name": "vol-b"}, {"project": "p2", "name": "vol-e"}],
        "backups": specs,
    }))
    .unwrap()
}

fn settings_of(cloud: &FakeCloud, user: &str) -> Settings {
    let c = cloud.credentials(user).unwrap();
    Settings {
        auth_url: Some(c.auth_url),
        username: Some(c.username),
        password: Some(Secret::new(c.password)),
        project_name: Some(c.project_name),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_millis(500),
        ..Settings::default()
    }
}

/// The emulated cloud with one Cinder API worker, staffeln-api (as the
/// service user) and Cinder's policy pointed at it, and the conductor.
struct Rig {
    cloud: FakeCloud,
    db: TestDb,
    api: Option<ApiHandle>,
    conductor: Conductor,
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

impl Rig {
    async fn new(db: TestDb, backups: &[B]) -> Rig {
        let ids: HashMap<&'static str, String> =
            backups.iter().map(|x| (x.name, uuid::Uuid::new_v4().to_string())).collect();
        let opts = FakeOptions {
            delete_duration: StdDuration::from_millis(50),
            cinder_workers: Some(1),
            ..FakeOptions::default()
        };
        let cloud = FakeCloud::start(scenario(backups, &ids), opts).unwrap();
        let control = cloud.control();
        let settings = ApiSettings {
            host: "127.0.0.1".into(),
            port: 0,
            request_timeout: StdDuration::from_secs(5),
            lookup_timeout: StdDuration::from_secs(2),
            openstack: Some(settings_of(&cloud, "staffeln")),
            ..ApiSettings::default()
        };
        let api = api::start(settings, db.db().clone()).await.unwrap();
        let guard = format!("{}/v1/backup?backup_id=%(id)s", api.url(false));
        control.set_backup_delete_policy(Some(BackupDeletePolicy {
            guard_url: guard,
            remote_timeout: StdDuration::from_secs(30),
        }));
        let os = OpenStack::connect(&settings_of(&cloud, "staffeln")).await.unwrap();
        let conductor = Conductor::new(
            "host-a:1".into(),
            db.db().clone(),
            os,
            ConductorSettings::from_config(&Config::default()).unwrap(),
        );
        let project_of = |volume: &str| if volume == "vol-e" { "p2" } else { "p1" };
        for x in backups.iter().filter(|x| x.staffelns) {
            let row = NewBackup {
                backup_id: ids[x.name].clone(),
                project_id: control.project_id(project_of(x.volume)).unwrap(),
                volume_id: control.volume_id(x.volume).unwrap(),
                instance_id: String::new(),
                backup_completed: 1,
                incremental: x.parent.is_some(),
            };
            conductor.db_call(move |c| staffeln::db::backups::insert(c, &row)).await.unwrap();
        }
        let ticking = control.clone();
        let ticker = tokio::spawn(async move {
            loop {
                ticking.tick();
                tokio::time::sleep(StdDuration::from_millis(10)).await;
            }
        });
        Rig { cloud, db, api: Some(api), conductor, ids, ticker: Some(ticker) }
    }

    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    fn exists(&self, name: &str) -> bool {
        self.cloud.control().backup_status(self.id(name)).is_some()
    }

    async fn until_gone(&self, names: &[&str]) {
        let deadline = Instant::now() + crate::support::HANG;
        while names.iter().any(|n| self.exists(n)) {
            assert!(
                Instant::now() < deadline,
                "still there: {:?}",
                names.iter().filter(|n| self.exists(n)).collect::<Vec<_>>()
            );
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }

    /// staffeln-api's counters.
    async fn guard_metrics(&self) -> String {
        let url = format!("{}/metrics", self.api.as_ref().unwrap().url(false));
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    async fn stop(&mut self) {
        if let Some(api) = self.api.take() {
            api.stop().await.unwrap();
        }
    }
}

fn retention_settings() -> RetentionSettings {
    let mut conf = Config::default();
    conf.conductor.retention_time = staffeln::conf::types::OsloDuration::parse("7d").unwrap();
    conf.conductor.max_concurrent_deletes = 4;
    let mut s = ConductorSettings::from_config(&conf).unwrap().retention;
    s.poll_interval = StdDuration::from_millis(20);
    s.delete_timeout = StdDuration::from_secs(30);
    s
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

async fn retention_deletes_through_the_guard(db: TestDb) {
    let label = db.label();
    let backups = [
        // vol-a: an expired chain (newest first through the guard) and a kept full.
        b("a-f1", "vol-a", 30),
        B { parent: Some("a-f1"), ..b("a-i1", "vol-a", 29) },
        B { parent: Some("a-i1"), ..b("a-i2", "vol-a", 28) },
        b("a-keep", "vol-a", 1),
        // vol-b: expired fulls and a kept one.
        b("b-1", "vol-b", 20),
        b("b-2", "vol-b", 15),
        b("b-keep", "vol-b", 2),
        // vol-e in p2.
        b("e-1", "vol-e", 40),
        b("e-2", "vol-e", 10),
        b("e-keep", "vol-e", 3),
        // Stuck in error_deleting: only an admin may force-delete it, with the
        // token of the service user's own project (no guard involved).
        B { status: "error_deleting", ..b("e-stuck", "vol-e", 5) },
        // alice's own backup of vol-a, expired by Staffeln's rules: never Staffeln's to delete.
        B { staffelns: false, ..b("alice-own", "vol-a", 60) },
    ];
    let mut rig = Rig::new(db, &backups).await;
    let control = rig.cloud.control();
    control.reset_calls();
    let expired = ["a-f1", "a-i1", "a-i2", "b-1", "b-2", "e-1", "e-2", "e-stuck"];

    let summary =
        rig.conductor.run_retention(&retention_settings(), true).await.unwrap().expect("this conductor leads");
    assert_eq!(
        (summary.to_delete, summary.deleted, summary.deferred, summary.failed),
        (8, 8, 0, 0),
        "{label}: every expired automated backup is deleted through the guard: {summary:?}"
    );
    rig.until_gone(&expired).await;
    for x in &backups {
        assert_eq!(rig.exists(x.name), !expired.contains(&x.name), "{label}: {}", x.name);
    }
    // Each plain delete went with a member token (an admin token would have
    // passed `rule:admin_api` without asking) and the guard allowed it.
    let checks = control.policy_checks();
    assert_eq!((checks.allowed, checks.refused, checks.failed), (7, 0, 0), "{label}: {checks:?}");
    // The guard never called back into the one Cinder worker.
    assert_eq!(control.call_count("GET", "/volume/backups/{id}"), 0, "{label}");
    let metrics = rig.guard_metrics().await;
    assert_eq!(metric(&metrics, "staffeln_api_guard_cinder_lookups_total"), 0.0, "{label}");
    assert_eq!(metric(&metrics, "staffeln_api_guard_decisions_total{result=\"allowed\"}"), 7.0, "{label}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_through_the_guard_with_only_member_on_sqlite() {
    retention_deletes_through_the_guard(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_through_the_guard_with_only_member_on_mariadb() {
    retention_deletes_through_the_guard(TestDb::mysql()).await;
}

/// alice's requests to the emulated Cinder (microversion 3.64).
struct Tenant {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Tenant {
    async fn login(cloud: &FakeCloud, user: &str) -> Tenant {
        let c = cloud.credentials(user).unwrap();
        let http = reqwest::Client::new();
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": c.username, "domain": {"name": "Default"}, "password": c.password}}},
            "scope": {"project": {"id": c.project_id}}}});
        let resp = http.post(format!("{}/auth/tokens", c.auth_url)).json(&body).send().await.unwrap();
        let token = resp.headers()["x-subject-token"].to_str().unwrap().to_owned();
        Tenant { http, base: format!("{}/volume/v3/{}", cloud.base_url(), c.project_id), token }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", "volume 3.64");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, id: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, &format!("/backups/{id}"), None).await
    }

    async fn set_metadata(&self, id: &str, metadata: Value) -> u16 {
        self.call(reqwest::Method::PUT, &format!("/backups/{id}"), Some(json!({"backup": {"metadata": metadata}})))
            .await
            .0
    }
}

const REFUSED: &str = "Policy doesn't allow backup:delete to be performed.";

async fn tenants_are_refused_on_automated_backups(db: TestDb) {
    let label = db.label();
    let backups = [
        b("auto", "vol-a", 3),
        b("auto-2", "vol-b", 3),
        b("being-made", "vol-b", 0),
        B { staffelns: false, ..b("alice-own", "vol-a", 1) },
        B { staffelns: false, ..b("alice-marks", "vol-a", 1) },
    ];
    let mut rig = Rig::new(db, &backups).await;
    let control = rig.cloud.control();
    // "being-made": Staffeln's task recorded the backup as Cinder accepted the
    // create; no backup_data row yet (it is added once the backup is available).
    let (task_backup, task_project) = (rig.id("being-made").to_owned(), control.project_id("p1").unwrap());
    let task_volume = control.volume_id("vol-b").unwrap();
    let sql = format!(
        "DELETE FROM backup_data WHERE backup_id = '{task_backup}'; \
         INSERT INTO queue_data (task_id, cycle_id, state, backup_id, project_id, volume_id, backup_status, \
         instance_id, volume_name, instance_name, backup_name, created_at) VALUES ('t-made', 'c-1', 'creating', \
         '{task_backup}', '{task_project}', '{task_volume}', 1, 's', 'vol-b', 'web', 'vol-b-now', '2026-11-25 10:00:00')"
    );
    rig.db.db().conn().unwrap().batch_execute(&sql).unwrap();
    control.reset_calls();
    let alice = Tenant::login(&rig.cloud, "alice").await;

    // An automated backup: refused.
    let (status, body) = alice.delete(rig.id("auto")).await;
    assert_eq!((status, body["forbidden"]["message"].as_str()), (403, Some(REFUSED)), "{label}: {body}");
    // alice removes Staffeln's metadata (Cinder >= 3.43): still refused, by the database.
    for name in ["auto", "being-made"] {
        assert_eq!(alice.set_metadata(rig.id(name), json!({})).await, 200, "{label}");
        assert_eq!(control.backup_metadata(rig.id(name)), Some(BTreeMap::new()));
        let (status, body) = alice.delete(rig.id(name)).await;
        assert_eq!(status, 403, "{label}: {name} without its metadata: {body}");
    }
    // Her own backup: deleted.
    let (status, body) = alice.delete(rig.id("alice-own")).await;
    assert_eq!(status, 202, "{label}: {body}");
    rig.until_gone(&["alice-own"]).await;
    // Marking her own backup as automated only refuses herself.
    assert_eq!(alice.set_metadata(rig.id("alice-marks"), json!({"__automated_backup": "True"})).await, 200);
    assert_eq!(alice.delete(rig.id("alice-marks")).await.0, 403, "{label}");
    assert!(rig.exists("auto") && rig.exists("being-made") && rig.exists("alice-marks"), "{label}");
    // Every answer came from the target and the database, with one Cinder worker.
    let checks = control.policy_checks();
    assert_eq!((checks.allowed, checks.refused, checks.failed), (1, 4, 0), "{label}: {checks:?}");
    assert_eq!(control.call_count("GET", "/volume/backups/{id}"), 0, "{label}: the guard called Cinder");
    let metrics = rig.guard_metrics().await;
    assert_eq!(metric(&metrics, "staffeln_api_guard_cinder_lookups_total"), 0.0, "{label}");

    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_refused_on_automated_backups_and_delete_their_own_on_sqlite() {
    tenants_are_refused_on_automated_backups(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_refused_on_automated_backups_and_delete_their_own_on_mariadb() {
    tenants_are_refused_on_automated_backups(TestDb::mysql()).await;
}

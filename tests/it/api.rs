//! staffeln-api against its real peers: the stock oslo.policy Enforcer
//! evaluating Cinder's `backup:delete` rule, the emulated Keystone and Cinder,
//! MariaDB and SQLite; plus the binary with a configuration file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use serde_json::{Value, json};
use staffeln::api::{self, ApiHandle, ApiSettings, TlsFiles};
use staffeln::db::backups;
use staffeln::db::models::NewBackup;
use staffeln::openstack::{Secret, Settings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

use crate::support::{TestDb, python, run_python};

const FORM: &str = "application/x-www-form-urlencoded";
const PY_POLICY: &str = include_str!("py/policy_check.py");
const PY_METRICS: &str = include_str!("py/parse_metrics.py");

/// A user's own backup in `demo`: Cinder has it without Staffeln's mark.
const MANUAL: &str = "11111111-1111-4111-8111-111111111111";
/// An automated backup of `demo` recorded in `backup_data`, with no mark in
/// Cinder (the database alone must refuse it).
const RECORDED: &str = "22222222-2222-4222-8222-222222222222";
/// An automated backup of `demo` known only by its Cinder metadata.
const MARKED: &str = "33333333-3333-4333-8333-333333333333";
/// An automated backup of `other`, recorded.
const OTHER_RECORDED: &str = "44444444-4444-4444-8444-444444444444";
/// Nobody's backup.
const UNKNOWN: &str = "55555555-5555-4555-8555-555555555555";
const SERVER: &str = "66666666-6666-4666-8666-666666666666";

fn scenario() -> Scenario {
    serde_json::from_value(json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "demo"}, {"name": "other"}],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"]}},
            {"name": "alice", "password": "alice-secret", "roles": {"demo": ["member"]}},
            {"name": "bob", "password": "bob-secret", "roles": {"other": ["member"]}}
        ],
        "volumes": [
            {"project": "demo", "name": "vol-a", "size": 10},
            {"project": "demo", "name": "vol-c", "size": 5},
            {"project": "other", "name": "vol-b", "size": 1}
        ],
        "backups": [
            {"id": MANUAL, "volume": "vol-a", "name": "mine"},
            {"id": RECORDED, "volume": "vol-a", "name": "nightly-a"},
            {"id": MARKED, "volume": "vol-a", "name": "nightly-b", "metadata": {"__automated_backup": "True"}},
            {"id": OTHER_RECORDED, "volume": "vol-b", "name": "nightly-c"}
        ]
    }))
    .unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The fake cloud, a database with Staffeln's records, the API on port 0.
struct Rig {
    cloud: FakeCloud,
    db: TestDb,
    api: Option<ApiHandle>,
    base: String,
    http: reqwest::Client,
    demo: String,
    other: String,
}

fn test_settings() -> ApiSettings {
    ApiSettings {
        host: "127.0.0.1".into(),
        port: 0,
        // Generous for the requests that must succeed on a loaded machine;
        // the tests of the timeouts themselves wait for them to pass.
        request_timeout: Duration::from_secs(15),
        lookup_timeout: Duration::from_secs(5),
        client_timeout: Duration::from_secs(3),
        cache_ttl: Duration::ZERO,
        ..ApiSettings::default()
    }
}

fn cloud_settings(cloud: &FakeCloud) -> Settings {
    let c = cloud.admin();
    Settings {
        auth_url: Some(c.auth_url),
        username: Some(c.username),
        password: Some(Secret::new(c.password)),
        project_name: Some(c.project_name),
        request_timeout: Duration::from_secs(5),
        retry_timeout: Duration::from_millis(300),
        max_retry_interval: Duration::from_millis(50),
        ..Settings::default()
    }
}

/// Records RECORDED (demo) and OTHER_RECORDED (other) in `backup_data`, and
/// the tasks that made them.
fn seed(db: &TestDb, demo: &str, other: &str, vol_a: &str, vol_b: &str) {
    let mut conn = db.db().conn().unwrap();
    for (id, project, volume) in [(RECORDED, demo, vol_a), (OTHER_RECORDED, other, vol_b)] {
        let row = NewBackup {
            backup_id: id.into(),
            project_id: project.into(),
            volume_id: volume.into(),
            instance_id: SERVER.into(),
            backup_completed: 1,
            incremental: false,
        };
        backups::insert(&mut conn, &row).unwrap();
    }
    let tasks = [
        ("t1", "done", RECORDED, demo, vol_a, "nightly-a", 10),
        ("t2", "done", OTHER_RECORDED, other, vol_b, "nightly-c", 1),
        ("t3", "failed", "", demo, vol_a, "nightly-x", 10),
        ("t4", "done", "99999999-9999-4999-8999-999999999999", demo, vol_a, "expired", 10),
        ("t5", "planned", "", other, vol_b, "next", 1),
    ];
    for (task, state, backup, project, volume, name, size) in tasks {
        conn.batch_execute(&format!(
            "INSERT INTO queue_data (task_id, cycle_id, state, backup_id, project_id, volume_id, backup_status, \
             instance_id, volume_name, instance_name, backup_name, size_gb, created_at) VALUES \
             ('{task}', 'c-{task}', '{state}', '{backup}', '{project}', '{volume}', 0, '{SERVER}', 'v', 's', '{name}', \
             {size}, '2026-11-25 10:00:00')"
        ))
        .unwrap();
    }
    conn.batch_execute(
        "INSERT INTO cycles (id, kind, leader, fencing_token, started_at, finished_at, planned, slot_utilisation) \
         VALUES ('c1', 'backup', 'h:1', 1, '2026-11-25 10:00:00', '2026-11-25 10:00:42.5', 5, 0.97)",
    )
    .unwrap();
}

impl Rig {
    async fn new(db: TestDb, settings: ApiSettings) -> Rig {
        let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
        let control = cloud.control();
        let demo = control.project_id("demo").unwrap();
        let other = control.project_id("other").unwrap();
        seed(&db, &demo, &other, &control.volume_id("vol-a").unwrap(), &control.volume_id("vol-b").unwrap());
        let settings = ApiSettings { openstack: Some(cloud_settings(&cloud)), ..settings };
        let api = api::start(settings, db.db().clone()).await.unwrap();
        let base = api.url(false);
        Rig { cloud, db, api: Some(api), base, http: client(), demo, other }
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn guard(&self, id: &str) -> (u16, String) {
        let (status, _, body) = self.get(&format!("/v1/backup?backup_id={id}")).await;
        (status, body)
    }

    /// Runs the Enforcer for each `(label, id, target project, user project)`.
    async fn enforce(&self, cases: &[(&str, &str, &str, &str)], content_type: &str) -> BTreeMap<String, Value> {
        enforce(&self.base, cases, content_type, None).await
    }

    /// Runs the Enforcer for cases built with [`case`].
    async fn enforce_cases(&self, cases: Vec<Value>, content_type: &str) -> BTreeMap<String, Value> {
        enforce_values(&self.base, cases, content_type, None).await
    }

    async fn stop(&mut self) {
        if let Some(api) = self.api.take() {
            api.stop().await.unwrap();
        }
    }
}

/// One case of `policy_check.py`: a member of `user_project` (an admin
/// when it is `"admin"`) deleting backup `id` of `project`.
fn case(label: &str, id: &str, project: &str, user_project: &str) -> Value {
    json!({"label": label, "id": id, "project_id": project, "user_project": user_project,
           "admin": user_project == "admin"})
}

/// `case` with the backup's metadata (as Cinder sends it in the target) and
/// the caller's user id.
fn case_with(label: &str, id: &str, project: &str, metadata: Value, user_id: Option<&str>) -> Value {
    let mut c = case(label, id, project, project);
    c["metadata"] = metadata;
    if let Some(user) = user_id {
        c["user_id"] = json!(user);
    }
    c
}

async fn enforce(
    base: &str,
    cases: &[(&str, &str, &str, &str)],
    content_type: &str,
    ca: Option<&Path>,
) -> BTreeMap<String, Value> {
    let cases: Vec<Value> = cases.iter().map(|(label, id, project, user)| case(label, id, project, user)).collect();
    enforce_values(base, cases, content_type, ca).await
}

async fn enforce_values(
    base: &str,
    cases: Vec<Value>,
    content_type: &str,
    ca: Option<&Path>,
) -> BTreeMap<String, Value> {
    let mut args = vec![base.to_owned(), Value::Array(cases).to_string(), content_type.to_owned()];
    if let Some(ca) = ca {
        args.push(ca.display().to_string());
    }
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(PY_POLICY, &args)
    })
    .await
    .unwrap();
    serde_json::from_str(out.trim()).unwrap()
}

fn expect(results: &BTreeMap<String, Value>, want: &[(&str, bool)], context: &str) {
    for (label, allowed) in want {
        assert_eq!(results.get(*label), Some(&Value::Bool(*allowed)), "{context}: {label}: {results:?}");
    }
}

async fn oslo_policy_decisions(db: TestDb) {
    let mut rig = Rig::new(db, test_settings()).await;
    let label = rig.db.label();
    let (demo, other) = (rig.demo.clone(), rig.other.clone());
    let staffeln = rig.cloud.control().user_id("staffeln").unwrap();
    let hash = format!("{MANUAL}#x");
    let amp = format!("x&backup_id={MANUAL}");
    let tail = format!("{MANUAL}&x=1");
    let marked = json!({"__automated_backup": "True", "__staffeln_task_id": "t9"});
    let cases = || {
        vec![
            case("manual", MANUAL, &demo, &demo),
            case("recorded", RECORDED, &demo, &demo),
            // Cinder sends the backup's metadata: the mark refuses without the database.
            case_with("marked", MARKED, &demo, marked.clone(), None),
            // A tenant removed the metadata (Cinder >= 3.43): the database still refuses.
            case_with("recorded-unmarked", RECORDED, &demo, json!({}), None),
            // A tenant marked its own backup: it refuses only itself.
            case_with("self-marked", MANUAL, &demo, json!({"__automated_backup": "true"}), None),
            case("unknown", UNKNOWN, &demo, &demo),
            case("other-project", OTHER_RECORDED, &other, &demo),
            case("admin-recorded", RECORDED, &demo, "admin"),
            // Staffeln's service user, with a member token of demo: its own backups pass.
            case_with("service-user-recorded", RECORDED, &demo, json!({}), Some(&staffeln)),
            case_with("service-user-marked", MARKED, &demo, marked.clone(), Some(&staffeln)),
            case("hash-in-id", &hash, &demo, &demo),
            case("ampersand-in-id", &amp, &demo, &demo),
            case("ampersand-after-id", &tail, &demo, &demo),
            case("percent-in-id", "%41", &demo, &demo),
        ]
    };
    let want = [
        ("manual", true),
        ("recorded", false),
        ("marked", false),
        ("recorded-unmarked", false),
        ("self-marked", false),
        ("unknown", true),
        ("other-project", false),
        ("admin-recorded", true),
        ("service-user-recorded", true),
        ("service-user-marked", true),
        ("hash-in-id", false),
        ("ampersand-in-id", false),
        ("ampersand-after-id", false),
        ("percent-in-id", false),
    ];
    rig.cloud.control().reset_calls();
    for content_type in [FORM, "application/json"] {
        let results = rig.enforce_cases(cases(), content_type).await;
        expect(&results, &want, &format!("{label}, {content_type}"));
    }
    // Every answer came from the body and the database: Cinder was never asked.
    assert_eq!(rig.cloud.control().call_count("GET", "/volume/backups/{id}"), 0, "{label}");
    // The short-circuits kept admins and other projects away from the guard:
    // 12 requests per round reached it (all but other-project and admin).
    let (_, _, metrics) = rig.get("/metrics").await;
    let total: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("staffeln_api_guard_decisions_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, 24, "{label}:\n{metrics}");
    assert!(metrics.contains("staffeln_api_guard_cinder_lookups_total 0"), "{label}:\n{metrics}");
    // People see the same answers with GET (Cinder tells the metadata), and
    // the status and the header say why.
    assert_eq!(rig.guard(MANUAL).await, (200, "True".to_owned()));
    assert_eq!(rig.guard(RECORDED).await, (401, "False".to_owned()));
    assert_eq!(rig.guard(MARKED).await, (401, "False".to_owned()));
    let (_, headers, _) = rig.get(&format!("/v1/backup?backup_id={MARKED}")).await;
    assert_eq!(headers["x-staffeln-decided-by"], "cinder");
    let (_, headers, _) = rig.get(&format!("/v1/backup?backup_id={RECORDED}")).await;
    assert_eq!(headers["x-staffeln-decided-by"], "database");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oslo_policy_allows_manual_backups_and_refuses_automated_ones_on_mariadb() {
    oslo_policy_decisions(TestDb::mysql()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oslo_policy_allows_manual_backups_and_refuses_automated_ones_on_sqlite() {
    oslo_policy_decisions(TestDb::sqlite()).await;
}

/// Breaks the database under the running API: MariaDB loses its database,
/// SQLite its table.
fn break_database(db: &TestDb) {
    let mut conn = db.db().conn().unwrap();
    match db.label() {
        "MariaDB" => {
            let name = db.url.rsplit('/').next().unwrap().to_owned();
            conn.batch_execute(&format!("DROP DATABASE `{name}`")).unwrap();
        }
        _ => conn.batch_execute("ALTER TABLE backup_data RENAME TO backup_data_gone").unwrap(),
    }
}

async fn fails_closed_without_database(db: TestDb) {
    let mut rig = Rig::new(db, test_settings()).await;
    let label = rig.db.label();
    let demo = rig.demo.clone();
    assert_eq!(rig.guard(MANUAL).await.1, "True", "{label}: before");
    break_database(&rig.db);
    let results = rig.enforce(&[("manual", MANUAL, &demo, &demo), ("recorded", RECORDED, &demo, &demo)], FORM).await;
    expect(&results, &[("manual", false), ("recorded", false)], label);
    let (status, headers, body) = rig.get(&format!("/v1/backup?backup_id={MANUAL}")).await;
    assert_eq!(status, 503, "{label}: {body}");
    let request_id = headers["x-openstack-request-id"].to_str().unwrap().to_owned();
    assert!(body.starts_with("Error: cannot decide") && body.contains(&request_id), "{label}: {body}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_fails_closed_when_mariadb_loses_its_database() {
    fails_closed_without_database(TestDb::mysql()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_fails_closed_when_sqlite_loses_its_table() {
    fails_closed_without_database(TestDb::sqlite()).await;
}

/// oslo.policy's body carries the target: a failing or slow Cinder changes
/// nothing, because the guard does not ask it. Requests without a target ask
/// Cinder within `[api] lookup_timeout` and fail closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_does_not_need_cinder_and_fails_closed_when_it_must_ask() {
    let mut rig = Rig::new(TestDb::sqlite(), test_settings()).await;
    let demo = rig.demo.clone();
    let control = rig.cloud.control();
    let fault = control.add_fault(Fault::new(
        Service::Volume,
        Some("GET"),
        Some("/backups/{id}"),
        FaultEffect::Status { code: 500 },
    ));
    let marked = json!({"__automated_backup": "True"});
    let cases = vec![
        case("manual", MANUAL, &demo, &demo),
        case_with("marked", MARKED, &demo, marked, None),
        case("recorded", RECORDED, &demo, &demo),
        case("unknown", UNKNOWN, &demo, &demo),
    ];
    let results = rig.enforce_cases(cases, FORM).await;
    expect(&results, &[("manual", true), ("marked", false), ("recorded", false), ("unknown", true)], "500");
    assert_eq!(control.call_count("GET", "/volume/backups/{id}"), 0, "no Cinder call with a target");
    // A person's GET has no target: Cinder fails, so the guard refuses.
    let (status, headers, body) = rig.get(&format!("/v1/backup?backup_id={MANUAL}")).await;
    assert_eq!((status, headers["x-staffeln-decided-by"].to_str().unwrap()), (503, "cinder"), "{body}");
    assert!(body.starts_with("Error: ") && body.contains("the Cinder lookup failed"), "{body}");
    control.remove_fault(fault);

    // Slower than [api] lookup_timeout (5 s): refused, not hanging.
    let slow =
        control.add_fault(Fault::new(Service::Volume, Some("GET"), None, FaultEffect::Latency { millis: 60_000 }));
    let (status, body) = rig.guard(MANUAL).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the Cinder lookup failed"), "{body}");
    // The database still answers alone for what it knows.
    assert_eq!(rig.guard(RECORDED).await, (401, "False".to_owned()));
    control.remove_fault(slow);
    assert_eq!(rig.guard(MANUAL).await, (200, "True".to_owned()));
    rig.stop().await;
}

/// A Keystone slower than `[api] lookup_timeout` delays learning Staffeln's
/// service user, but cannot keep the guard from learning it: the background
/// learner waits as long as any OpenStack request may. (Found by running a
/// deployment on a loaded machine: with the learner bounded by
/// lookup_timeout, each slow token request was cancelled and retention was
/// refused for minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keystone_slower_than_lookup_timeout_still_lets_the_guard_learn_the_service_user() {
    let db = TestDb::sqlite();
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let control = cloud.control();
    let (demo, other) = (control.project_id("demo").unwrap(), control.project_id("other").unwrap());
    seed(&db, &demo, &other, &control.volume_id("vol-a").unwrap(), &control.volume_id("vol-b").unwrap());
    control.add_fault(Fault::new(
        Service::Identity,
        Some("POST"),
        Some("/auth/tokens"),
        FaultEffect::Latency { millis: 1_500 },
    ));
    let settings = ApiSettings {
        lookup_timeout: Duration::from_secs(1),
        openstack: Some(cloud_settings(&cloud)),
        ..test_settings()
    };
    let api = api::start(settings, db.db().clone()).await.unwrap();
    let base = api.url(false);
    let mut rig = Rig { cloud, db, api: Some(api), base, http: client(), demo: demo.clone(), other };
    let staffeln = rig.cloud.control().user_id("staffeln").unwrap();
    let marked = json!({"__automated_backup": "True"});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let case = case_with("service-user-marked", MARKED, &demo, marked.clone(), Some(&staffeln));
        let results = rig.enforce_cases(vec![case], FORM).await;
        if results.get("service-user-marked") == Some(&Value::Bool(true)) {
            break;
        }
        assert!(Instant::now() < deadline, "the guard never learned the service user: {results:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_what_was_wrong() {
    let mut rig = Rig::new(TestDb::sqlite(), ApiSettings { max_body_size: 4096, ..test_settings() }).await;
    let url = format!("{}/v1/backup", rig.base);
    let post = |query: String, ct: &'static str, body: Vec<u8>| {
        let req = rig.http.post(format!("{url}{query}")).header("content-type", ct).body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let id = resp.headers().get("x-openstack-request-id").map(|v| v.to_str().unwrap().to_owned());
            (status, id, resp.text().await.unwrap())
        }
    };
    let form = "application/x-www-form-urlencoded";
    let long = "a".repeat(3000);
    let cases: Vec<(String, &str, Vec<u8>, u16, &str)> = vec![
        (String::new(), form, Vec::new(), 400, "backup_id is missing"),
        (format!("?backup_id={long}"), form, Vec::new(), 400, "3000 bytes"),
        (format!("?backup_id={MANUAL}&backup_id={RECORDED}"), form, Vec::new(), 400, "given 2 times"),
        ("?backup_id=%41".into(), form, Vec::new(), 400, "\"A\" is not a backup id"),
        ("?backup_id=".into(), form, Vec::new(), 400, "it is empty"),
        (String::new(), form, b"target=%7Bnot+json".to_vec(), 400, "not a JSON document"),
        (String::new(), "application/json", b"[1]".to_vec(), 400, "not an object"),
        (String::new(), "text/plain", b"hello".to_vec(), 415, "unsupported content type"),
        (
            format!("?backup_id={MANUAL}"),
            form,
            format!("target=%7B%22id%22%3A%22{RECORDED}%22%7D").into_bytes(),
            400,
            "is not the target's id",
        ),
        (format!("?backup_id={MANUAL}"), form, vec![b'x'; 5000], 413, "larger than 4096 bytes"),
    ];
    for (query, ct, body, status, needle) in cases {
        let (got, request_id, text) = post(query.clone(), ct, body).await;
        assert_eq!(got, status, "{query}: {text}");
        assert!(text.starts_with("Error: ") && text.contains(needle), "{query}: {needle:?} not in {text:?}");
        let request_id = request_id.expect("every answer carries its request id");
        assert!(request_id.starts_with("req-") && uuid::Uuid::try_parse(&request_id[4..]).is_ok(), "{request_id}");
    }
    // A body larger than the limit without Content-Length (chunked), still
    // being sent when the limit is passed: the client reads the refusal, not
    // a connection reset under its feet.
    let chunks = futures_util::stream::unfold(0, |sent| async move {
        if sent == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(vec![b'x'; 1000]))), sent + 1))
    });
    let resp = rig
        .http
        .post(format!("{url}?backup_id={MANUAL}"))
        .header("content-type", form)
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // Other methods and paths.
    let resp = rig.http.delete(format!("{url}?backup_id={MANUAL}")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    assert_ne!(resp.text().await.unwrap(), "True");
    // A request head larger than staffeln-api reads (64 KiB).
    let resp = rig
        .http
        .get(format!("{url}?backup_id={}", "b".repeat(40_000)))
        .header("x-padding-1", "p".repeat(30_000))
        .header("x-padding-2", "p".repeat(30_000))
        .header("x-padding-3", "p".repeat(30_000))
        .header("x-padding-4", "p".repeat(30_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 431);
    assert_ne!(resp.text().await.unwrap(), "True");
    assert_eq!(rig.get("/v1/backup/").await.0, 404);
    assert_eq!(rig.get("/v2/backup").await.0, 404);
    // None of this was counted as an answer about a backup.
    let (_, _, metrics) = rig.get("/metrics").await;
    assert!(metrics.contains("staffeln_api_guard_decisions_total{result=\"allowed\"} 0"), "{metrics}");
    assert!(metrics.contains("staffeln_api_guard_decisions_total{result=\"bad_request\"} 11"), "{metrics}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let mut rig = Rig::new(TestDb::sqlite(), test_settings()).await;
    let addr = rig.api.as_ref().unwrap().addr;
    let answers = tokio::task::spawn_blocking(move || {
        // Headers that never end: the connection is closed (client_timeout 3 s).
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stalled.write_all(b"POST /v1/backup HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut buf = Vec::new();
        let headers = stalled.read_to_end(&mut buf).map(|_| String::from_utf8_lossy(&buf).into_owned());
        // A body that never ends: 408.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /v1/backup?backup_id={MANUAL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"target\""
        );
        slow.write_all(head.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = slow.read_to_end(&mut buf);
        (headers, String::from_utf8_lossy(&buf).into_owned())
    })
    .await
    .unwrap();
    let (headers, body) = answers;
    match headers {
        Ok(text) => assert!(!text.contains("True"), "{text}"),
        Err(err) => assert_ne!(err.kind(), std::io::ErrorKind::WouldBlock, "the stalled connection stayed open"),
    }
    assert!(body.starts_with("HTTP/1.1 408"), "{body}");
    assert!(body.contains("did not arrive within 3 s") && !body.ends_with("True"), "{body}");
    // The server still serves.
    assert_eq!(rig.guard(MANUAL).await.0, 200);
    rig.stop().await;
}

/// A token for `user` from the fake Keystone, scoped to its project.
async fn token(cloud: &FakeCloud, user: &str) -> String {
    let c = cloud.credentials(user).unwrap();
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": c.username,
            "domain": {"name": "Default"}, "password": c.password}}},
        "scope": {"project": {"id": c.project_id}}}});
    let resp = client().post(format!("{}/auth/tokens", c.auth_url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.headers()["x-subject-token"].to_str().unwrap().to_owned()
}

async fn list(rig: &Rig, token: Option<&str>, query: &str) -> (u16, Value) {
    let mut req = rig.http.get(format!("{}/v1/backups{query}", rig.base));
    if let Some(token) = token {
        req = req.header("x-auth-token", token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn ids(doc: &Value) -> Vec<String> {
    doc["backups"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_needs_a_token_and_shows_only_its_project() {
    let mut rig = Rig::new(TestDb::mysql(), test_settings()).await;
    let (status, doc) = list(&rig, None, "").await;
    assert_eq!(status, 401, "{doc}");
    assert!(doc["unauthorized"]["message"].as_str().unwrap().contains("X-Auth-Token"), "{doc}");
    assert_eq!(list(&rig, Some("gAAAAAbogus"), "").await.0, 401);

    let alice = token(&rig.cloud, "alice").await;
    let (status, doc) = list(&rig, Some(&alice), "").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(ids(&doc), vec![RECORDED.to_owned()], "alice sees demo's automated backups only");
    let b = &doc["backups"][0];
    assert_eq!(b["project_id"], rig.demo.as_str());
    assert_eq!(b["server_id"], SERVER);
    assert_eq!(b["status"], "available");
    assert_eq!(b["name"], "nightly-a");
    assert_eq!(b["size"], 10);
    assert_eq!(b["incremental"], false);
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::repo_root().join("api-ref/source/samples/backups-list-response.json"))
            .unwrap(),
    )
    .unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(b), keys(&sample["backups"][0]), "the answer has the documented fields");
    assert_eq!(doc["backups_links"], json!([]));

    let (status, doc) = list(&rig, Some(&alice), "?all_projects=true").await;
    assert_eq!(status, 403, "{doc}");
    let bob = token(&rig.cloud, "bob").await;
    assert_eq!(ids(&list(&rig, Some(&bob), "").await.1), vec![OTHER_RECORDED.to_owned()]);
    // A marker from another project is not a page of this listing.
    let (status, doc) = list(&rig, Some(&alice), &format!("?marker={OTHER_RECORDED}")).await;
    assert_eq!(status, 400, "{doc}");

    // The admin sees every project, page by page.
    let admin = token(&rig.cloud, "staffeln").await;
    let (status, doc) = list(&rig, Some(&admin), "?all_projects=true").await;
    assert_eq!(status, 200, "{doc}");
    let mut all = ids(&doc);
    all.sort();
    assert_eq!(all, vec![RECORDED.to_owned(), OTHER_RECORDED.to_owned()]);
    let mut paged = Vec::new();
    let mut next = Some(format!("{}/v1/backups?all_projects=true&limit=1", rig.base));
    while let Some(url) = next.take() {
        let doc: Value = rig.http.get(&url).header("x-auth-token", &admin).send().await.unwrap().json().await.unwrap();
        paged.extend(ids(&doc));
        next = doc["backups_links"].get(0).map(|l| l["href"].as_str().unwrap().to_owned());
        assert!(paged.len() <= 2, "pagination does not end: {doc}");
    }
    paged.sort();
    assert_eq!(paged, all);
    // Filters.
    let vol_b = rig.cloud.control().volume_id("vol-b").unwrap();
    let filtered = |q: String| {
        let admin = admin.clone();
        let rig = &rig;
        async move { ids(&list(rig, Some(&admin), &format!("?all_projects=1&{q}")).await.1) }
    };
    assert_eq!(filtered(format!("volume_id={vol_b}")).await, vec![OTHER_RECORDED.to_owned()]);
    assert_eq!(filtered(format!("server_id={SERVER}&status=available")).await.len(), 2);
    assert!(filtered("status=error".into()).await.is_empty());
    assert!(filtered("created_since=2999-01-01T00:00:00Z".into()).await.is_empty());
    assert_eq!(filtered("created_until=2999-01-01".into()).await.len(), 2);
    let (status, doc) = list(&rig, Some(&admin), "?volume=x").await;
    assert_eq!(status, 400);
    assert!(doc["badRequest"]["message"].as_str().unwrap().contains("unknown query parameter"), "{doc}");
    rig.stop().await;
}

/// `id`: "which of these backups did Staffeln record?" in one call, within
/// the token's project, at most `[api] max_limit` ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_a_set_of_ids() {
    let mut rig = Rig::new(TestDb::sqlite(), ApiSettings { max_limit: 3, ..test_settings() }).await;
    let alice = token(&rig.cloud, "alice").await;
    let asked = |ids: &[&str]| format!("?id={}", ids.join(","));
    // Of a page of ids, only the recorded ones of the token's project come back:
    // not the manual one, not an unknown one, not another project's.
    let (status, doc) = list(&rig, Some(&alice), &asked(&[MANUAL, RECORDED, OTHER_RECORDED])).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(ids(&doc), vec![RECORDED.to_owned()], "{doc}");
    let (status, doc) = list(&rig, Some(&alice), &asked(&[UNKNOWN, MARKED])).await;
    assert_eq!((status, ids(&doc)), (200, vec![]), "{doc}");
    // The admin, across projects; a repeated id counts once.
    let admin = token(&rig.cloud, "staffeln").await;
    let (status, doc) =
        list(&rig, Some(&admin), &format!("?all_projects=true&id={RECORDED},{OTHER_RECORDED},{RECORDED}")).await;
    assert_eq!(status, 200, "{doc}");
    let mut got = ids(&doc);
    got.sort();
    assert_eq!(got, vec![RECORDED.to_owned(), OTHER_RECORDED.to_owned()]);
    // Combined with the other filters (and).
    let (_, doc) = list(&rig, Some(&admin), &format!("?all_projects=true&id={RECORDED}&status=creating")).await;
    assert_eq!(ids(&doc), Vec::<String>::new(), "{doc}");
    // Refused, naming what was wrong: more ids than max_limit, a bad id, an empty item.
    let message = |doc: &Value| doc["badRequest"]["message"].as_str().unwrap_or_default().to_owned();
    let (status, doc) = list(&rig, Some(&alice), &asked(&[MANUAL, RECORDED, MARKED, UNKNOWN])).await;
    assert_eq!(status, 400, "{doc}");
    assert!(message(&doc).contains("id lists 4 backups; at most 3"), "{doc}");
    let (status, doc) = list(&rig, Some(&alice), &format!("?id={RECORDED},nope")).await;
    assert_eq!(status, 400, "{doc}");
    assert!(message(&doc).contains("id \"nope\"") && message(&doc).contains("UUID"), "{doc}");
    let (status, doc) = list(&rig, Some(&alice), &format!("?id={RECORDED},")).await;
    assert_eq!(status, 400, "{doc}");
    assert!(message(&doc).contains("separated by commas"), "{doc}");
    let (status, doc) = list(&rig, Some(&alice), &format!("?id={RECORDED}&id={MANUAL}")).await;
    assert_eq!(status, 400, "{doc}");
    assert!(message(&doc).contains("id is given more than once"), "{doc}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_the_version_document() {
    let mut rig = Rig::new(TestDb::mysql(), test_settings()).await;
    let (status, _, body) = rig.get("/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"status": "ok", "database": "ok"}));
    assert_eq!((rig.get("/healthcheck").await.0, rig.get("/healthcheck").await.2), (200, "OK".to_owned()));
    let head = rig.http.head(format!("{}/healthcheck", rig.base)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let (status, _, body) = rig.get("/").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["versions"][0]["id"], "v1");
    assert_eq!(doc["versions"][0]["status"], "CURRENT");
    assert_eq!(doc["versions"][0]["links"][0]["href"], format!("{}/v1/", rig.base));

    break_database(&rig.db);
    let (status, _, body) = rig.get("/v1/health").await;
    assert_eq!(status, 503, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["status"], "error");
    assert!(doc["database"].as_str().unwrap().contains("backup_data get"), "{doc}");
    assert_eq!(rig.get("/healthcheck").await.0, 200, "liveness does not depend on the database");
    rig.stop().await;
}

/// Parses Prometheus text with the stock parser: `(name, labels) → value`.
fn parse_metrics(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut child = Command::new(python())
        .args(["-c", PY_METRICS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    samples.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count() {
    let mut rig =
        Rig::new(TestDb::sqlite(), ApiSettings { cache_ttl: Duration::from_secs(600), ..test_settings() }).await;
    for id in [MANUAL, MANUAL, RECORDED, RECORDED, MARKED, UNKNOWN] {
        rig.guard(id).await;
    }
    let _ = rig.get("/v1/backup").await;
    let (status, headers, text) = rig.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let sample =
        std::fs::read_to_string(crate::support::repo_root().join("api-ref/source/samples/metrics-response.txt"))
            .unwrap();
    let (samples, documented) =
        tokio::task::spawn_blocking(move || (parse_metrics(&text), parse_metrics(&sample))).await.unwrap();
    // The api-ref sample parses, and shows only series the endpoint serves.
    for (name, _) in documented.keys() {
        assert!(samples.keys().any(|(n, _)| n == name), "the api-ref sample shows {name}, the endpoint does not");
    }
    let get = |name: &str, l: &[(&str, &str)]| {
        samples.get(&(name.to_owned(), labels(l))).copied().unwrap_or_else(|| panic!("no {name}{l:?} in {samples:?}"))
    };
    // prometheus_client strips `_total` from counter family names but keeps it on samples.
    let decisions = "staffeln_api_guard_decisions_total";
    assert_eq!(get(decisions, &[("result", "allowed")]), 3.0);
    assert_eq!(get(decisions, &[("result", "denied")]), 3.0);
    assert_eq!(get(decisions, &[("result", "bad_request")]), 1.0);
    // RECORDED the second time: remembered as automated.
    assert_eq!(get("staffeln_api_guard_cache_hits_total", &[]), 1.0);
    // GETs carry no target: MANUAL twice, MARKED and UNKNOWN made the guard ask Cinder.
    assert_eq!(get("staffeln_api_guard_cinder_lookups_total", &[]), 4.0);
    assert_eq!(get("staffeln_api_requests_total", &[("route", "/v1/backup"), ("status", "200")]), 3.0);
    assert_eq!(get("staffeln_api_requests_total", &[("route", "/v1/backup"), ("status", "401")]), 3.0);
    assert_eq!(get("staffeln_database_up", &[]), 1.0);
    let vol_a = rig.cloud.control().volume_id("vol-a").unwrap();
    let demo = rig.demo.clone();
    let last = get("staffeln_volume_last_backup_timestamp_seconds", &[("project_id", &demo), ("volume_id", &vol_a)]);
    assert!((last - chrono::Utc::now().timestamp() as f64).abs() < 3600.0, "{last}");
    let by_project = |result: &str| get("staffeln_project_backups", &[("project_id", &demo), ("result", result)]);
    assert_eq!((by_project("created"), by_project("failed"), by_project("deleted")), (2.0, 1.0, 1.0));
    assert_eq!(get("staffeln_queue_tasks", &[("state", "done")]), 3.0);
    assert_eq!(get("staffeln_queue_tasks", &[("state", "planned")]), 1.0);
    assert_eq!(get("staffeln_queue_tasks", &[("state", "creating")]), 0.0);
    assert_eq!(get("staffeln_last_backup_cycle_duration_seconds", &[]), 42.5);
    assert_eq!(get("staffeln_last_backup_cycle_slot_utilisation", &[]), 0.97);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_verify_the_certificate_and_get_the_same_answers() {
    let certs = crate::support::test_certs();
    let tls = TlsFiles { cert: certs.cert.clone(), key: certs.key.clone() };
    let mut rig = Rig::new(TestDb::sqlite(), ApiSettings { tls: Some(tls), ..test_settings() }).await;
    let https = rig.api.as_ref().unwrap().url(true);
    let demo = rig.demo.clone();
    let results = enforce(
        &https,
        &[("manual", MANUAL, &demo, &demo), ("recorded", RECORDED, &demo, &demo)],
        FORM,
        Some(&certs.ca),
    )
    .await;
    expect(&results, &[("manual", true), ("recorded", false)], "https");
    // Plain HTTP on the HTTPS port gets no answer at all.
    assert!(
        rig.http
            .get(format!("{}/healthcheck", rig.base))
            .send()
            .await
            .map(|r| r.status().as_u16() != 200)
            .unwrap_or(true)
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_open_requests_finish_and_refuses_new_ones() {
    // The guard waits for Cinder as long as the test holds Cinder's answer.
    let settings = ApiSettings { lookup_timeout: Duration::from_secs(120), ..test_settings() };
    let mut rig = Rig::new(TestDb::sqlite(), settings).await;
    let addr = rig.api.as_ref().unwrap().addr;
    let cinder_answers =
        rig.cloud.control().add_fault(Fault::new(Service::Volume, Some("GET"), Some("/backups"), FaultEffect::Hold));
    let http = rig.http.clone();
    let url = format!("{}/v1/backup?backup_id={MANUAL}", rig.base);
    let open = tokio::spawn(async move {
        let resp = http.post(url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    // Wait until the request is in the guard (it waits for Cinder), then stop.
    let deadline = Instant::now() + crate::support::HANG;
    while rig.cloud.control().call_count("GET", "/volume/backups/{id}") == 0 {
        assert!(Instant::now() < deadline, "the request never reached Cinder");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stop while the request waits; Cinder answers once the listener is closed.
    let control = rig.cloud.control();
    let release = async {
        let deadline = Instant::now() + crate::support::HANG;
        while TcpStream::connect(addr).is_ok() {
            assert!(Instant::now() < deadline, "the listener stayed open after the stop began");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!open.is_finished(), "the open request was cut short by the stop");
        control.remove_fault(cinder_answers);
    };
    tokio::join!(rig.stop(), release);
    assert_eq!(open.await.unwrap(), (200, "True".to_owned()), "the open request finished");
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}

// ---------------------------------------------------------------------------
// The binary.

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_from_its_config_file_and_stops_on_sigterm() {
    let db = TestDb::sqlite();
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let control = cloud.control();
    let demo = control.project_id("demo").unwrap();
    let other = control.project_id("other").unwrap();
    seed(&db, &demo, &other, &control.volume_id("vol-a").unwrap(), &control.volume_id("vol-b").unwrap());
    let admin = cloud.admin();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let conf = dir.path().join("staffeln.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nlog_file = {}\ngraceful_shutdown_timeout = 10\n\
             [api]\nhost = 127.0.0.1\nport = 0\nrequest_timeout = 3\n\
             [database]\nconnection = {}\n\
             [openstack]\nauth_url = {}\nusername = {}\npassword = {}\nproject_name = {}\n",
            log.display(),
            db.url,
            admin.auth_url,
            admin.username,
            admin.password,
            admin.project_name
        ),
    )
    .unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_staffeln-api"))
            .arg("--config-file")
            .arg(&conf)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + crate::support::HANG;
    let url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("staffeln-api listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("staffeln-api exited with {status}:\n{text}");
        }
        assert!(Instant::now() < deadline, "staffeln-api never listened:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let http = client();
    let guard = |id: &str| http.get(format!("{url}/v1/backup?backup_id={id}")).send();
    assert_eq!(guard(RECORDED).await.unwrap().text().await.unwrap(), "False");
    assert_eq!(guard(MARKED).await.unwrap().text().await.unwrap(), "False");
    assert_eq!(guard(MANUAL).await.unwrap().text().await.unwrap(), "True");
    assert_eq!(http.get(format!("{url}/v1/health")).send().await.unwrap().status().as_u16(), 200);

    assert_eq!(sigterm(child.0.id()), 0);
    let deadline = Instant::now() + crate::support::HANG;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "staffeln-api did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}:\n{text}");
    assert!(text.contains("staffeln-api stopping"), "{text}");
}

/// SIGTERM to `pid` through the `kill` command (the crate forbids `unsafe`).
fn sigterm(pid: u32) -> i32 {
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().map(|s| s.code().unwrap_or(1)).unwrap_or(1)
}

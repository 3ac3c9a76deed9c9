//! The conductor RPC API (manager, rpcapi, the `staffeln` CLI) and the event
//! notifications, against a real RabbitMQ (127.0.0.1:5672, or
//! `STAFFELN_TEST_RABBIT_ADDR`), the stock Python oslo.messaging of the test
//! venv, the emulated cloud and a SQLite database. Every test uses its own
//! exchange, topics and hosts, and deletes the queues it made.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{Value, json};
use staffeln::conductor::backup::cycle::BackupScope;
use staffeln::conductor::events::Events;
use staffeln::conductor::manager::{self, RpcService};
use staffeln::conductor::rpcapi::ConductorApi;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::{Config, Secret};
use staffeln::db::tasks;
use staffeln::objects::{ProjectId, TaskState};
use staffeln::openstack::{OpenStack, Settings};
use staffeln::rpc::{Context, RpcError, RpcSettings, Transport};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Scenario};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{self, Cleanup, TestDb, broker_addr, require_broker};

const PY_CLIENT: &str = include_str!("py/rpc_client.py");
const PY_LISTENER: &str = include_str!("py/notify_listener.py");
const STAFFELN: &str = env!("CARGO_BIN_EXE_staffeln");

/// Short-lived reply and fanout queues, for Rust and Python alike.
fn broker_url() -> String {
    format!("rabbit://guest:guest@{}/?rabbit_transient_queues_ttl=120", broker_addr())
}

/// Projects p1 and p2 where the service user has a role, p3 where it has none.
fn scenario() -> Scenario {
    let json = json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "p1", "quota": {"backups": 50, "backup_gigabytes": 1000}},
            {"name": "p2", "quota": {"backups": 50, "backup_gigabytes": 1000}},
            {"name": "p3"}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"], "p2": ["admin"]}}
        ],
        "servers": [
            {"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-a", "vol-b"]},
            {"project": "p2", "name": "app", "metadata": {"__staffeln_backup": "1"}, "volumes": ["vol-f"]},
            {"project": "p3", "name": "lost", "metadata": {"__staffeln_backup": "true"}, "volumes": ["vol-g"]}
        ],
        "volumes": [
            {"project": "p1", "name": "vol-a", "size": 10},
            {"project": "p1", "name": "vol-b", "size": 5},
            {"project": "p2", "name": "vol-f", "size": 1},
            {"project": "p3", "name": "vol-g", "size": 1}
        ]
    });
    serde_json::from_value(json).unwrap()
}

/// Volumes planned for backup in a full cycle of [`scenario`].
const PLANNED: usize = 4;

/// Names of one test: its exchange, topic, notification topic.
pub(crate) struct Names {
    pub(crate) exchange: String,
    topic: String,
    pub(crate) events: String,
    _cleanup: Cleanup,
}

impl Names {
    pub(crate) fn new(hosts: &[&str]) -> Names {
        let (exchange, topic, events) =
            (support::unique_name("rpcapi_x"), support::unique_name("rpcapi_t"), support::unique_name("rpcapi_n"));
        let mut queues =
            vec![topic.clone(), format!("{events}.info"), format!("{events}.warn"), format!("{events}.error")];
        queues.extend(hosts.iter().map(|h| format!("{topic}.{h}")));
        let exchanges = vec![exchange.clone(), format!("{topic}_fanout")];
        Names { _cleanup: Cleanup { queues, exchanges }, exchange, topic, events }
    }

    pub(crate) fn config(&self, host: &str, notifications: bool) -> Config {
        let mut conf = Config::default();
        conf.default.host = host.to_owned();
        conf.default.transport_url = Some(Secret::new(broker_url()));
        conf.default.control_exchange = self.exchange.clone();
        conf.default.rpc_response_timeout = 20;
        conf.conductor.topic = self.topic.clone();
        conf.oslo_messaging_rabbit.rabbit_retry_backoff = 1;
        conf.oslo_messaging_rabbit.rabbit_interval_max = 2;
        if notifications {
            conf.oslo_messaging_notifications.driver = vec!["messagingv2".to_owned()];
            conf.oslo_messaging_notifications.topics = vec![self.events.clone()];
        }
        conf
    }

    /// A config file for the `staffeln` CLI.
    fn cli_config(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("staffeln.conf");
        let text = format!(
            "[DEFAULT]\ntransport_url = {}\ncontrol_exchange = {}\n[conductor]\ntopic = {}\n",
            broker_url(),
            self.exchange,
            self.topic
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn settings_of(conf: &Config) -> ConductorSettings {
    let mut s = ConductorSettings::from_config(conf).unwrap();
    s.plan.backup_min_interval = Duration::zero();
    s.poll_interval = StdDuration::from_millis(20);
    s
}

async fn openstack(cloud: &FakeCloud) -> OpenStack {
    let c = cloud.credentials("staffeln").unwrap();
    let settings = Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(staffeln::openstack::Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_secs(30),
        ..Settings::default()
    };
    OpenStack::connect(&settings).await.unwrap()
}

/// A conductor of the emulated cloud serving the topic as `host`.
struct Node {
    conductor: Conductor,
    rpc: RpcService,
}

async fn node(cloud: &FakeCloud, db: &TestDb, conf: &Config) -> Node {
    let holder = format!("{}:1", conf.default.host);
    let s = settings_of(conf);
    let events = Events::start(&s.events).await.unwrap();
    let mailer = std::sync::Arc::new(staffeln::notify::Mailer::new(s.notify.clone()).unwrap());
    let conductor = Conductor::new(holder, db.db().clone(), openstack(cloud).await, s).with_events(events);
    let rpc = manager::start_rpc(&conductor, mailer).await.unwrap();
    Node { conductor, rpc }
}

/// A client of the topic, once `host` answers.
async fn client(conf: &Config, host: &str) -> (Transport, ConductorApi) {
    let transport = Transport::new(&RpcSettings::from_config(conf).unwrap()).unwrap();
    let api = ConductorApi::new(&transport, &conf.conductor.topic).with_timeout(StdDuration::from_secs(20));
    let probe = api.to_server(host).with_timeout(StdDuration::from_secs(2));
    for _ in 0..30 {
        match probe.ping(&ctx("req-probe")).await {
            Ok(pong) => {
                assert_eq!(pong.host, host);
                return (transport, api);
            }
            Err(staffeln::conductor::rpcapi::ApiError::Rpc(RpcError::Timeout { .. })) => continue,
            Err(err) => panic!("ping of {host}: {err}"),
        }
    }
    panic!("the conductor RPC server of {host} did not come up");
}

fn ctx(request_id: &str) -> Context {
    let mut c = Context::new();
    c.insert("request_id".into(), json!(request_id));
    c
}

/// Runs the stock Python client over `ops`; one outcome per op.
async fn python_client(exchange: &str, topic: &str, ops: Value) -> Vec<Value> {
    let args = [broker_url(), exchange.to_owned(), topic.to_owned(), ops.to_string()];
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        support::run_python(PY_CLIENT, &refs)
    })
    .await
    .unwrap();
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("python client output {out:?}: {e}"))
}

/// Runs the `staffeln` CLI; a hung CLI fails the test instead of hanging it.
async fn staffeln(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(STAFFELN).args(args).kill_on_drop(true).output();
    match tokio::time::timeout(StdDuration::from_secs(120), run).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("staffeln {args:?} did not end"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_python_client_drives_the_conductor_topic() {
    require_broker().await;
    let names = Names::new(&["node-a"]);
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let conf = names.config("node-a", false);
    let node = node(&cloud, &db, &conf).await;
    let (transport, _api) = client(&conf, "node-a").await;
    let p2 = cloud.control().project_id("p2").unwrap();

    let ops = json!([
        {"kind": "call", "method": "ping"},
        {"kind": "call", "method": "get_status"},
        {"kind": "call", "method": "backup_now", "server": "node-a"},
        {"kind": "call", "method": "get_status"},
        {"kind": "call", "method": "list_tasks", "args": {"status": "planned"}},
        {"kind": "call", "method": "list_tasks", "args": {"project_id": p2, "limit": null}},
        {"kind": "call", "method": "list_tasks", "args": {"limit": 1}},
        {"kind": "call", "method": "list_tasks", "args": {"status": "bogus"}},
        {"kind": "call", "method": "list_tasks", "args": {"limit": 0}},
        {"kind": "call", "method": "list_tasks", "args": {"colour": "red"}},
        {"kind": "call", "method": "list_tasks", "args": {"limit": "ten"}},
        {"kind": "call", "method": "backup_now", "args": {"project_id": ""}},
        {"kind": "call", "method": "ping", "version": "1.3"},
        {"kind": "call", "method": "ping", "version": "2.0"},
        {"kind": "call", "method": "frobnicate"},
        {"kind": "call", "method": "retention_now", "args": {"dry_run": true}},
        {"kind": "call", "method": "report_now"}
    ]);
    let out = python_client(&names.exchange, &names.topic, ops).await;
    let ok = |i: usize| -> &Value {
        assert!(out[i].get("ok").is_some(), "op {i} failed: {}", out[i]);
        &out[i]["ok"]
    };
    let raised = |i: usize, exc: &str, exc_type: Option<&str>| {
        assert_eq!(out[i]["exc"], exc, "op {i}: {}", out[i]);
        if let Some(t) = exc_type {
            assert_eq!(out[i]["exc_type"], t, "op {i}: {}", out[i]);
        }
        out[i]["value"].as_str().unwrap().to_owned()
    };

    assert_eq!(ok(0)["host"], "node-a");
    assert_eq!(ok(0)["version"], "1.2");
    let before = ok(1);
    assert_eq!((before["leader"].clone(), before["last_cycle"].clone()), (json!(false), Value::Null), "{before}");
    let states: BTreeSet<&str> = before["tasks"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        states,
        BTreeSet::from(["claimed", "creating", "done", "failed", "planned", "skipped", "unfinished", "waiting"])
    );
    assert!(before["next_cycle_at"].is_string(), "a period schedules the next cycle: {before}");

    let triggered = ok(2);
    assert_eq!(triggered["planned"], true, "{triggered}");
    assert_eq!(triggered["backups"], PLANNED, "{triggered}");
    assert_eq!(triggered["leader"], "node-a:1");
    let cycle = triggered["cycle_id"].as_str().unwrap();

    let after = ok(3);
    assert_eq!(after["leader"], true, "{after}");
    assert_eq!(after["lease_holder"], "node-a:1");
    assert_eq!(after["last_cycle"]["cycle_id"], cycle);
    assert_eq!(after["tasks"]["planned"], PLANNED, "{after}");

    let planned = ok(4).as_array().unwrap();
    assert_eq!(planned.len(), PLANNED);
    assert!(planned.iter().all(|t| t["state"] == "planned" && t["cycle_id"] == cycle && t["backup_id"].is_null()));
    let of_p2 = ok(5).as_array().unwrap();
    assert_eq!(of_p2.len(), 1, "{of_p2:?}");
    assert_eq!((of_p2[0]["project_id"].as_str(), of_p2[0]["instance_name"].as_str()), (Some(p2.as_str()), Some("app")));
    assert_eq!(ok(6).as_array().unwrap().len(), 1, "limit");

    assert!(raised(7, "RemoteError", Some("InvalidParameter")).contains("status \"bogus\" is not one of planned"));
    assert!(raised(8, "RemoteError", Some("InvalidParameter")).contains("limit 0 is not between 1 and 10000"));
    assert!(raised(9, "TypeError", None).contains("unknown field `colour`"), "{}", out[9]);
    raised(10, "TypeError", None);
    assert!(raised(11, "RemoteError", Some("InvalidParameter")).contains("project_id is empty"));
    raised(12, "RemoteError", Some("UnsupportedVersion"));
    raised(13, "RemoteError", Some("UnsupportedVersion"));
    assert!(raised(14, "RemoteError", Some("NoSuchMethod")).contains("frobnicate"));
    assert_eq!(ok(15), &json!({"dry_run": true, "decisions": []}), "nothing backed up yet, nothing to decide");
    assert_eq!(ok(16), &json!({"delivered": [], "failed": [], "held_back": "no unreported results"}));

    // Only the one backup_now planned anything.
    let rows = node.conductor.db_call(|c| tasks::list(c, None, None, 100)).await.unwrap();
    assert_eq!(rows.len(), PLANNED);
    node.rpc.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conductor_that_does_not_lead_passes_backup_now_to_the_leader() {
    require_broker().await;
    let names = Names::new(&["node-a", "node-b"]);
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let a = node(&cloud, &db, &names.config("node-a", false)).await;
    let b = node(&cloud, &db, &names.config("node-b", false)).await;
    let conf = names.config("client", false);
    let (transport, api) = client(&conf, "node-a").await;
    let _ = client(&conf, "node-b").await;

    // node-a leads: it planned a cycle of p3 and holds the lease.
    let p3 = BackupScope { project_id: Some(ProjectId(cloud.control().project_id("p3").unwrap())), server_id: None };
    a.conductor.run_backup_cycle_in(true, &p3).await.unwrap().expect("node-a takes the free lease");
    let to_b = api.to_server("node-b");
    let status = to_b.get_status(&ctx("req-1")).await.unwrap();
    assert!(!status.leader && status.lease_holder.as_deref() == Some("node-a:1"), "{status:?}");

    let p1 = cloud.control().project_id("p1").unwrap();
    let first = to_b.backup_now(&ctx("req-2"), Some(&p1), None).await.unwrap();
    assert!(first.planned, "{first:?}");
    assert_eq!(first.leader.as_deref(), Some("node-a:1"), "node-b passed it to the leader: {first:?}");
    assert_eq!((first.backups, first.skipped, first.waiting, first.failed), (2, 0, 0, 0), "only p1's two volumes");

    // The same request again (a retry) plans nothing more.
    let again = to_b.backup_now(&ctx("req-2"), Some(&p1), None).await.unwrap();
    assert_eq!(again.cycle_id, first.cycle_id);
    let cycle = first.cycle_id.clone().unwrap();
    let rows = a.conductor.db_call(move |c| tasks::of_cycle(c, &cycle)).await.unwrap();
    assert_eq!(rows.len(), 2);

    // A server that matches nothing plans an empty cycle, and says so.
    let none = api.backup_now(&ctx("req-3"), None, Some("no-such-server")).await.unwrap();
    assert!(none.planned && none.backups == 0, "{none:?}");
    assert!(none.message.contains("no flagged server matched server no-such-server"), "{}", none.message);

    // A cast reaches one conductor (either) and plans as well.
    let p2 = cloud.control().project_id("p2").unwrap();
    api.cast_backup_now(&ctx("req-4"), Some(&p2), None).await.unwrap();
    let mut p2_tasks = Vec::new();
    let deadline = std::time::Instant::now() + support::HANG;
    while std::time::Instant::now() < deadline {
        let project = p2.clone();
        p2_tasks = a.conductor.db_call(move |c| tasks::list(c, None, Some(&project), 10)).await.unwrap();
        if !p2_tasks.is_empty() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(p2_tasks.len(), 1, "the cast planned vol-f");
    assert_eq!(p2_tasks[0].volume_name, "vol-f");

    a.rpc.stop().await;
    b.rpc.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_status_lists_tasks_and_triggers_backups() {
    require_broker().await;
    let names = Names::new(&["node-a"]);
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let conf = names.config("node-a", false);
    let node = node(&cloud, &db, &conf).await;
    let (transport, _api) = client(&conf, "node-a").await;
    let dir = tempfile::tempdir().unwrap();
    let file = names.cli_config(dir.path());
    let file = file.to_str().unwrap();

    let out = staffeln(&["--config-file", file, "status", "-f", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(status["host"], "node-a");
    assert_eq!(status["leader"], false);
    assert_eq!(status["tasks"]["planned"], 0);

    let out = staffeln(&["--config-file", file, "backup", "trigger"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("+---"), "{table}");
    assert!(table.contains("| planned  | true ") && table.contains(&format!("| backups  | {PLANNED} ")), "{table}");

    let out = staffeln(&["--config-file", file, "task", "list", "-f", "value", "--status", "planned"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), PLANNED, "{lines:?}");
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(uuid::Uuid::parse_str(fields[0]).map(|_| fields[1]), Ok("planned"), "{line}");
    }
    let p2 = cloud.control().project_id("p2").unwrap();
    let out = staffeln(&["--config-file", file, "task", "list", "--project", &p2, "-f", "yaml"]).await;
    let listed: Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{}", text(&out.stdout));
    assert_eq!(listed[0]["server"], "app");

    let rows = node.conductor.db_call(|c| tasks::list(c, Some(TaskState::Planned), None, 100)).await.unwrap();
    assert_eq!(rows.len(), PLANNED, "the CLI's trigger planned the cycle");

    let out = staffeln(&["--config-file", file, "retention", "trigger", "--dry-run", "-f", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let preview: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(preview["dry_run"], true, "{preview}");
    assert_eq!(preview["decisions"], json!([]), "{preview}");
    let out = staffeln(&["--config-file", file, "retention", "preview", "-f", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_str::<Value>(&text(&out.stdout)).unwrap(), json!([]), "nothing backed up yet");

    let out = staffeln(&["--config-file", file, "report", "send", "-f", "value"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\n\nno unreported results\n", "delivered, failed, held_back");

    let out = staffeln(&["--config-file", file, "task", "list", "--status", "legacy"]).await;
    assert_eq!(out.status.code(), Some(2), "clap refuses the state: {}", text(&out.stderr));

    node.rpc.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_clearly_when_no_conductor_answers() {
    require_broker().await;
    let names = Names::new(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = names.cli_config(dir.path());
    let out = staffeln(&["--config-file", file.to_str().unwrap(), "ping", "--timeout", "2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "staffeln: no conductor answered on topic {} within 2 s: is staffeln-conductor running and is \
             transport_url right?\n",
            names.topic
        )
    );
    assert!(out.stdout.is_empty());

    let bare = dir.path().join("bare.conf");
    std::fs::write(&bare, "[DEFAULT]\n").unwrap();
    let out = staffeln(&["--config-file", bare.to_str().unwrap(), "status"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("staffeln: [DEFAULT] transport_url is unset"), "{}", text(&out.stderr));
}

/// A lease left by a conductor that is gone (it expires in 90 s).
async fn lease_left_by_a_gone_conductor(conductor: &Conductor) {
    conductor
        .db_call(|c| staffeln::db::leases::acquire(c, "backup-cycle", "gone-host:99", Duration::seconds(90)))
        .await
        .unwrap()
        .expect("the lease was free");
}

/// Issue 15.7, through the RPC path (`fake://`): a trigger while the lease
/// holder is gone answers at once with who holds the lease and when it
/// expires, instead of waiting for a conductor that will not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_while_the_lease_holder_is_gone_names_it_and_its_expiry() {
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let mut conf = Config::default();
    conf.default.host = "node-a".into();
    conf.default.transport_url = Some(Secret::new(format!("fake:///{}", support::unique_name("lease"))));
    // The holder gets a sixth (5 s) to answer a ping; the answer comes
    // within the client's timeout (30 s, else the call fails), however
    // loaded the machine.
    conf.default.rpc_response_timeout = 30;
    let node = node(&cloud, &db, &conf).await;
    lease_left_by_a_gone_conductor(&node.conductor).await;
    let (transport, api) = client(&conf, "node-a").await;
    let answer = api.backup_now(&ctx("req-gone"), None, None).await.unwrap();
    assert!(!answer.planned, "{answer:?}");
    assert_eq!(answer.lease_holder.as_deref(), Some("gone-host:99"));
    assert_eq!(answer.leader.as_deref(), Some("gone-host:99"));
    let left = answer.retry_after.expect("seconds until the lease expires");
    assert!((80..=90).contains(&left), "{answer:?}");
    let expires = chrono::DateTime::parse_from_rfc3339(answer.lease_expires_at.as_deref().unwrap()).unwrap();
    let lease = node.conductor.db_call(|c| staffeln::db::leases::get(c, "backup-cycle")).await.unwrap().unwrap();
    assert_eq!(expires.timestamp(), lease.expires_at.and_utc().timestamp(), "{answer:?}");
    for part in ["gone-host:99 holds the backup-cycle lease but does not answer", &format!("in {left} s")] {
        assert!(answer.message.contains(part), "{part:?} in {}", answer.message);
    }
    assert!(answer.message.ends_with("restart staffeln-conductor on gone-host)"), "{}", answer.message);
    let rows = node.conductor.db_call(|c| tasks::list(c, None, None, 10)).await.unwrap();
    assert!(rows.is_empty(), "nothing planned");
    node.rpc.stop().await;
    transport.close().await;
}

/// Issue 15.7, the CLI: what to do, on stderr, and status 75 (try later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_how_long_to_wait_when_the_lease_holder_is_gone() {
    require_broker().await;
    let names = Names::new(&["node-a", "gone-host"]);
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let mut conf = names.config("node-a", false);
    conf.default.rpc_response_timeout = 30; // the holder gets 5 s to answer a ping
    let node = node(&cloud, &db, &conf).await;
    lease_left_by_a_gone_conductor(&node.conductor).await;
    let (transport, _api) = client(&conf, "node-a").await;
    let dir = tempfile::tempdir().unwrap();
    let file = names.cli_config(dir.path());
    let out = staffeln(&["--config-file", file.to_str().unwrap(), "backup", "trigger"]).await;
    assert_eq!(out.status.code(), Some(75), "{}{}", text(&out.stdout), text(&out.stderr));
    let table = text(&out.stdout);
    for row in ["| planned          | false", "| lease_holder     | gone-host:99", "| retry_after      | "] {
        assert!(table.contains(row), "{row:?} in\n{table}");
    }
    let stderr = text(&out.stderr);
    let hint = stderr.lines().last().unwrap_or_default();
    assert!(
        hint.starts_with("staffeln: no cycle planned: conductor gone-host:99 holds the backup-cycle lease until 20")
            && hint.contains(" s and run `staffeln backup trigger` again, or restart staffeln-conductor on gone-host"),
        "{stderr}"
    );
    let wait: u64 = hint.split("wait ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!((60..=90).contains(&wait), "{hint}");
    node.rpc.stop().await;
    transport.close().await;
}

/// The stock notification listener; prints one JSON line per event.
pub(crate) struct Listener {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Listener {
    pub(crate) async fn start(exchange: &str, topic: &str) -> Listener {
        let mut child = tokio::process::Command::new(support::python())
            .args(["-u", "-c", PY_LISTENER, &broker_url(), exchange, topic])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut listener = Listener { child, lines: BufReader::new(stdout).lines() };
        assert_eq!(listener.next().await, "READY");
        listener
    }

    pub(crate) async fn next(&mut self) -> String {
        match tokio::time::timeout(StdDuration::from_secs(60), self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!("no line from the notification listener: {other:?}"),
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let _ = tokio::time::timeout(StdDuration::from_secs(30), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_listener_receives_the_events_of_a_real_cycle() {
    require_broker().await;
    let names = Names::new(&["node-a"]);
    let mut listener = Listener::start(&names.exchange, &names.events).await;
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let db = TestDb::sqlite();
    let conf = names.config("node-a", true);
    let node = node(&cloud, &db, &conf).await;
    let conductor = &node.conductor;

    let summary = conductor.run_backup_cycle(true).await.unwrap().unwrap();
    for _ in 0..20 {
        conductor.work_once().await.unwrap();
        cloud.control().settle();
        conductor.poll_once().await.unwrap();
        if conductor.db_call(tasks::active_volume_ids).await.unwrap().is_empty() {
            break;
        }
    }
    // 3 backups start and end, the one in p3 fails (no role), the cycle ends.
    // The listener's executor threads may print them out of order: read
    // until all of them are in (a missing one fails on the listener's timeout).
    let mut seen: Vec<(String, String, Value)> = Vec::new();
    let count = |seen: &[(String, String, Value)], kind: &str| seen.iter().filter(|(t, _, _)| t == kind).count();
    while count(&seen, "staffeln.cycle.end") == 0
        || count(&seen, "staffeln.backup.create.end") < 3
        || count(&seen, "staffeln.backup.create.error") < 1
    {
        let line = listener.next().await;
        // The listener's threads may print two events on one line.
        for event in serde_json::Deserializer::from_str(&line).into_iter::<Value>() {
            let event = event.unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(event["publisher_id"], "staffeln-conductor.node-a", "{event}");
            assert!(event["metadata"]["message_id"].is_string() && event["metadata"]["timestamp"].is_string());
            let kind = event["event_type"].as_str().unwrap().to_owned();
            seen.push((kind, event["priority"].as_str().unwrap().to_owned(), event["payload"].clone()));
        }
    }
    let of = |kind: &str| seen.iter().filter(|(t, _, _)| t == kind).collect::<Vec<_>>();
    let ends = of("staffeln.backup.create.end");
    assert_eq!(ends.len(), 3, "{seen:?}");
    let vol_a = cloud.control().volume_id("vol-a").unwrap();
    let end_a = ends.iter().find(|(_, _, p)| p["volume_id"] == vol_a.as_str()).expect("vol-a's create.end");
    assert_eq!(end_a.1, "info");
    assert_eq!(end_a.2["cycle_id"], summary.cycle_id.as_str());
    assert_eq!(end_a.2["instance_name"], "web");
    assert_eq!(end_a.2["incremental"], false);
    let backup = end_a.2["backup_id"].as_str().expect("the backup id");
    let start_a = of("staffeln.backup.create.start");
    assert_eq!(start_a.len(), 3, "{seen:?}");
    assert!(start_a.iter().any(|(_, _, p)| p["backup_id"] == backup), "create.start names the same backup");
    let errors = of("staffeln.backup.create.error");
    assert_eq!(errors.len(), 1, "{seen:?}");
    assert_eq!(errors[0].1, "error");
    assert!(errors[0].2["reason"].as_str().unwrap().contains("no role in project"), "{:?}", errors[0]);
    let cycle_end = &of("staffeln.cycle.end")[0].2;
    assert_eq!(cycle_end["cycle_id"], summary.cycle_id.as_str());
    assert_eq!(cycle_end["counts"], json!({"done": 3, "failed": 1}), "{cycle_end}");

    // The finished cycle's digests go out on demand (recorded: no sender is set), once.
    let (transport, api) = client(&conf, "node-a").await;
    let sent = api.report_now(&ctx("req-r1"), None).await.unwrap();
    let p1 = cloud.control().project_id("p1").unwrap();
    assert!(sent.delivered.contains(&p1) && sent.failed.is_empty(), "{sent:?}");
    let again = api.report_now(&ctx("req-r2"), None).await.unwrap();
    assert_eq!(again.held_back.as_deref(), Some("no unreported results"), "{again:?}");

    listener.stop().await;
    node.rpc.stop().await;
    transport.close().await;
}

/// `staffeln restore` and `staffeln restore-drill list` through the real
/// binary, over RPC, against a conductor and the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_restores_a_staffeln_backup_into_a_new_volume_and_lists_drills() {
    require_broker().await;
    let names = Names::new(&["node-a"]);
    let cloud = FakeCloud::start(scenario(), FakeOptions::default()).unwrap();
    let control = cloud.control();
    let db = TestDb::sqlite();
    let conf = names.config("node-a", false);
    let node = node(&cloud, &db, &conf).await;
    let (transport, _api) = client(&conf, "node-a").await;
    let dir = tempfile::tempdir().unwrap();
    let file = names.cli_config(dir.path());
    let file = file.to_str().unwrap();

    // A backup Staffeln made (marked automated) of p1's 10 GB vol-a.
    let p1 = control.project_id("p1").unwrap();
    let vol_a = control.volume_id("vol-a").unwrap();
    let mut request = staffeln::openstack::BackupRequest::new(staffeln::objects::VolumeId(vol_a.clone()));
    request.metadata.insert(staffeln::objects::metadata::AUTOMATED_KEY.to_owned(), "true".to_owned());
    let os = node.conductor.os.for_project(&ProjectId(p1.clone())).unwrap();
    let backup = os.create_backup(&request).await.unwrap();
    control.settle();
    assert_eq!(control.backup_status(&backup.0).as_deref(), Some("available"));

    let out =
        staffeln(&["--config-file", file, "restore", &backup.0, "--volume-name", "restored-a", "-f", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(shown["backup_id"], backup.0.as_str(), "{shown}");
    assert_eq!(shown["project_id"], p1.as_str(), "{shown}");
    assert_eq!(shown["volume_name"], "restored-a", "{shown}");
    let volume = shown["volume_id"].as_str().expect("volume_id").to_owned();
    assert_ne!(volume, vol_a);
    control.settle();
    assert_eq!(control.volume_status(&volume).as_deref(), Some("available"));
    assert_eq!(control.volume_size(&volume), Some(10), "the backup's size");
    assert!(control.volume_ids(&p1).contains(&volume), "the new volume is in the backup's project");

    // A backup id Cinder does not know: a clear error, non-zero exit.
    let out = staffeln(&["--config-file", file, "restore", "no-such-backup"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("no-such-backup"), "the error names the backup: {err}");
    assert!(control.volume_ids(&p1).len() == 3, "no volume was made: {:?}", control.volume_ids(&p1));

    let out = staffeln(&["--config-file", file, "restore-drill", "list", "-f", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([]), "no drill has run");

    node.rpc.stop().await;
    transport.close().await;
}

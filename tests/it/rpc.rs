//! The rpc room against a real RabbitMQ (127.0.0.1:5672, or
//! `STAFFELN_TEST_RABBIT_URL`) and the stock Python oslo.messaging peers of
//! the test venv. Every test uses its own exchange and topic names and
//! deletes what it declared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use staffeln::rpc::{
    Context, MethodTable, Notifier, RpcClient, RpcError, RpcFailure, RpcServer, RpcSettings, Target, Transport,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::support::{self, Cleanup, amqp_connect, broker_addr, require_broker};

const PY_CLIENT: &str = include_str!("py/rpc_client.py");
const PY_SERVER: &str = include_str!("py/rpc_server.py");
const PY_LISTENER: &str = include_str!("py/notify_listener.py");

/// `host:port` of the broker.
fn url_for(addr: &str) -> String {
    format!("rabbit://guest:guest@{addr}/")
}

/// Test settings: short-lived reply and fanout queues, quick reconnects.
fn settings(url: &str, exchange: &str) -> RpcSettings {
    let mut s = RpcSettings {
        transport_url: Some(url.to_owned()),
        control_exchange: exchange.to_owned(),
        rpc_response_timeout: Duration::from_secs(20),
        ..RpcSettings::default()
    };
    s.rabbit.rabbit_transient_queues_ttl = 120;
    s.rabbit.rabbit_retry_backoff = 1;
    s.rabbit.rabbit_interval_max = 2;
    s
}

/// The URL the Python peers use: same broker, short-lived reply queues.
fn py_url() -> String {
    format!("{}?rabbit_transient_queues_ttl=120", url_for(&broker_addr()))
}

fn ctx() -> Context {
    let mut c = Context::new();
    c.insert("project_id".into(), json!("p-rust"));
    c.insert("request_id".into(), json!("req-rust"));
    c
}

fn cleanup(exchange: &str, topic: &str, servers: &[&str]) -> Cleanup {
    let mut queues = vec![topic.to_owned()];
    queues.extend(servers.iter().map(|s| format!("{topic}.{s}")));
    Cleanup { queues, exchanges: vec![exchange.to_owned(), format!("{topic}_fanout")] }
}

/// The test endpoint at version 1.3. Casts and slow calls report to `events`.
fn endpoint(
    server: &str,
    events: mpsc::UnboundedSender<(String, String, Value)>,
    runs: Arc<AtomicUsize>,
) -> MethodTable {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ping {
        value: Value,
    }
    let server = server.to_owned();
    let record = {
        let (server, events) = (server.clone(), events.clone());
        move |call: staffeln::rpc::Call| {
            let _ = events.send((server.clone(), call.method.clone(), Value::Object(call.args.clone())));
            async { Ok::<_, RpcFailure>(Value::Null) }
        }
    };
    MethodTable::new("1.3")
        .method("ping", |call| async move {
            let args: Ping = call.args()?;
            Ok(json!({"pong": args.value, "project_id": call.context.get("project_id")}))
        })
        .method("whoami", |call| async move { Ok(Value::Object(call.context)) })
        .method("fail", |_call| async move { Err(RpcFailure::remote("BackupFailed", "volume v1 is in error")) })
        .method("value_error", |_call| async move { Err(RpcFailure::builtin("ValueError", "bad value")) })
        .method("record", record)
        .method("slow", move |call| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let secs = call.args.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Ok(json!("done"))
            }
        })
}

async fn start_server(
    transport: &Transport,
    topic: &str,
    server: &str,
) -> (staffeln::rpc::ServerHandle, mpsc::UnboundedReceiver<(String, String, Value)>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let ep = Arc::new(endpoint(server, tx, runs.clone()));
    let handle = RpcServer::start(transport, Target::new(topic).with_server(server), vec![ep])
        .await
        .expect("the Rust server starts");
    (handle, rx, runs)
}

/// `len` bytes of text that differ along their length.
fn big_text(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

/// Runs the stock Python client over `ops` and returns one outcome per op.
async fn python_client(exchange: &str, topic: &str, ops: Value) -> Vec<Value> {
    let args = [py_url(), exchange.to_owned(), topic.to_owned(), ops.to_string()];
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        support::run_python(PY_CLIENT, &refs)
    })
    .await
    .expect("the python client ran");
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str::<Vec<Value>>(line).unwrap_or_else(|e| panic!("python client output {out:?}: {e}"))
}

/// A long-running stock Python peer; stdout lines arrive on `lines`. Killed on drop.
struct PyPeer {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl PyPeer {
    async fn start(script: &str, args: &[&str]) -> PyPeer {
        let mut child = tokio::process::Command::new(support::python())
            .arg("-u")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the python peer starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut peer = PyPeer { child, lines: BufReader::new(stdout).lines() };
        let ready = peer.next_line(Duration::from_secs(60)).await;
        assert_eq!(ready, "READY", "the python peer did not come up");
        peer
    }

    async fn next_line(&mut self, within: Duration) -> String {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!("no line from the python peer within {within:?}: {other:?}"),
        }
    }

    /// Closes stdin (the peer stops gracefully) and waits for it.
    async fn stop(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_python_client_calls_the_rust_server() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["node1"]);
    let transport = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let (server, _events, _runs) = start_server(&transport, &topic, "node1").await;

    let ops = json!([
        {"kind": "call", "method": "ping", "args": {"value": {"k": [1, "two", null, true, 1.5], "u": "café ☃"}}},
        {"kind": "call", "method": "ping", "args": {"value": 7}, "server": "node1", "version": "1.3"},
        {"kind": "call", "method": "whoami"},
        {"kind": "call", "method": "nope"},
        {"kind": "call", "method": "_private"},
        {"kind": "call", "method": "ping", "args": {"value": 1}, "version": "1.4"},
        {"kind": "call", "method": "ping", "args": {"value": 1}, "version": "2.0"},
        {"kind": "call", "method": "ping", "args": {"value": 1}, "namespace": "other"},
        {"kind": "call", "method": "fail"},
        {"kind": "call", "method": "value_error"},
        {"kind": "call", "method": "ping", "args": {"value": 1, "c": 2}},
        {"kind": "call", "method": "slow", "args": {"seconds": 3.5}, "timeout": 30, "call_monitor_timeout": 2},
        // Many times the frame size Staffeln asks the broker for, both ways
        // (one argument of a command line holds at most 128 KiB).
        {"kind": "call", "method": "ping", "args": {"value": big_text(100_000)}}
    ]);
    let out = python_client(&exchange, &topic, ops).await;
    let expect_exc = |i: usize, exc: &str, exc_type: Option<&str>| {
        assert_eq!(out[i]["exc"], exc, "op {i}: {}", out[i]);
        if let Some(t) = exc_type {
            assert_eq!(out[i]["exc_type"], t, "op {i}: {}", out[i]);
        }
    };
    assert_eq!(out[0]["ok"]["pong"], json!({"k": [1, "two", null, true, 1.5], "u": "café ☃"}), "{}", out[0]);
    assert_eq!(out[0]["ok"]["project_id"], "p-probe");
    assert_eq!(out[1]["ok"]["pong"], 7, "{}", out[1]);
    assert_eq!(out[2]["ok"]["user_id"], "u-probe", "context unpacked: {}", out[2]);
    assert_eq!(out[2]["ok"]["roles"], json!(["member"]));
    assert!(out[2]["ok"].get("client_timeout").is_some(), "{}", out[2]);
    expect_exc(3, "RemoteError", Some("NoSuchMethod"));
    assert!(out[3]["value"].as_str().unwrap().contains("Endpoint does not support RPC method nope"), "{}", out[3]);
    expect_exc(4, "RemoteError", Some("NoSuchMethod"));
    expect_exc(5, "RemoteError", Some("UnsupportedVersion"));
    assert!(
        out[5]["value"].as_str().unwrap().contains("Endpoint does not support RPC version 1.4. Attempted method: ping")
    );
    expect_exc(6, "RemoteError", Some("UnsupportedVersion"));
    expect_exc(7, "RemoteError", Some("UnsupportedVersion"));
    expect_exc(8, "RemoteError", Some("BackupFailed"));
    assert!(out[8]["value"].as_str().unwrap().contains("volume v1 is in error"), "{}", out[8]);
    expect_exc(9, "ValueError", None);
    assert_eq!(out[9]["module"], "builtins");
    expect_exc(10, "TypeError", None);
    assert!(out[10]["value"].as_str().unwrap().contains("unknown field `c`"), "{}", out[10]);
    assert_eq!(out[11]["ok"], "done", "heartbeats kept a 3.5 s call alive under call_monitor_timeout=2: {}", out[11]);
    assert_eq!(out[12]["ok"]["pong"], big_text(100_000), "a call and its reply of 100 kB");

    server.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_casts_fanout_casts_and_timeouts_reach_the_rust_servers() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["node1", "node2"]);
    let transport = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let (server1, mut events1, _) = start_server(&transport, &topic, "node1").await;
    let (server2, mut events2, _) = start_server(&transport, &topic, "node2").await;

    let ops = json!([
        {"kind": "cast", "method": "record", "args": {"value": "to-node2"}, "server": "node2"},
        {"kind": "cast", "method": "record", "args": {"value": "to-all"}, "fanout": true},
        {"kind": "call", "method": "slow", "args": {"seconds": 3}, "timeout": 1, "server": "node1"}
    ]);
    let out = python_client(&exchange, &topic, ops).await;
    assert_eq!(out[0]["ok"], Value::Null, "{}", out[0]);
    assert_eq!(out[1]["ok"], Value::Null, "{}", out[1]);
    assert_eq!(out[2]["exc"], "MessagingTimeout", "{}", out[2]);

    let within = support::HANG;
    let mut seen2 = Vec::new();
    for _ in 0..2 {
        let (server, method, args) = tokio::time::timeout(within, events2.recv()).await.unwrap().unwrap();
        assert_eq!((server.as_str(), method.as_str()), ("node2", "record"));
        seen2.push(args["value"].as_str().unwrap().to_owned());
    }
    seen2.sort();
    assert_eq!(seen2, ["to-all", "to-node2"]);
    let (_, _, args) = tokio::time::timeout(within, events1.recv()).await.unwrap().unwrap();
    assert_eq!(args["value"], "to-all", "node1 got the fanout cast only");

    server1.stop().await;
    server2.stop().await;
    assert!(events1.try_recv().is_err(), "node1 got nothing else");
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_a_stock_python_server() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["pynode"]);
    let mut peer = PyPeer::start(PY_SERVER, &[&py_url(), &exchange, &topic, "pynode"]).await;
    let transport = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let client = RpcClient::new(&transport, Target::new(&topic));
    let t = Some(Duration::from_secs(15));

    let pong = client.call(&ctx(), "ping", json!({"value": {"a": [1, 2]}}), "1.3", t).await.unwrap();
    assert_eq!(pong, json!({"pong": {"a": [1, 2]}, "project_id": "p-rust"}));
    let pong = client.to_server("pynode").call(&ctx(), "ping", json!({"value": 2}), "1.0", t).await.unwrap();
    assert_eq!(pong["pong"], 2);
    // A call and a reply of many frames (FRAME_MAX is 16 KiB).
    let pong = client.call(&ctx(), "ping", json!({"value": big_text(1_000_000)}), "1.0", t).await.unwrap();
    assert!(pong["pong"] == big_text(1_000_000), "the 1 MB value came back changed");

    let remote = |r: Result<Value, RpcError>| match r {
        Err(RpcError::Remote { exc_type, module, message, .. }) => (exc_type, module, message),
        other => panic!("expected a remote failure, got {other:?}"),
    };
    let (exc_type, module, message) = remote(client.call(&ctx(), "fail", json!({"kind": "custom"}), "1.0", t).await);
    assert_eq!((exc_type.as_str(), module.as_str(), message.as_str()), ("ProbeError", "__main__", "boom"));
    let (exc_type, module, _) = remote(client.call(&ctx(), "fail", json!({"kind": "value"}), "1.0", t).await);
    assert_eq!((exc_type.as_str(), module.as_str()), ("ValueError", "builtins"));
    let (exc_type, _, message) = remote(client.call(&ctx(), "nope", json!({}), "1.0", t).await);
    assert_eq!(exc_type, "NoSuchMethod", "{message}");
    let (exc_type, _, _) = remote(client.call(&ctx(), "ping", json!({"value": 1}), "1.9", t).await);
    assert_eq!(exc_type, "UnsupportedVersion");
    let (exc_type, _, _) = remote(client.call(&ctx(), "ping", json!({"wrong": 1}), "1.0", t).await);
    assert_eq!(exc_type, "TypeError");

    client.cast(&ctx(), "record", json!({"value": "cast-1"}), "1.0").await.unwrap();
    assert_eq!(peer.next_line(support::HANG).await, r#"CAST "cast-1""#);
    client.fanout_cast(&ctx(), "record", json!({"value": "fan-1"}), "1.0").await.unwrap();
    assert_eq!(peer.next_line(support::HANG).await, r#"CAST "fan-1""#);

    match client.call(&ctx(), "ping", json!([1]), "1.0", t).await {
        Err(RpcError::InvalidArgs { method, .. }) => assert_eq!(method, "ping"),
        other => panic!("expected InvalidArgs, got {other:?}"),
    }
    peer.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_of_the_url_are_tried_in_turn() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["node1"]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed on drop
    let url = format!("rabbit://nobody:sekrit@{dead},guest:guest@{}/", broker_addr());
    let transport = Transport::new(&settings(&url, &exchange)).unwrap();
    assert!(!format!("{transport:?}").contains("sekrit"));
    let (server, _events, _) = start_server(&transport, &topic, "node1").await;
    let client = RpcClient::new(&transport, Target::new(&topic));
    for i in 0..3 {
        assert_eq!(client.call(&ctx(), "ping", json!({"value": i}), "1.0", None).await.unwrap()["pong"], i);
    }
    server.stop().await;
    transport.close().await;

    let only_dead = Transport::new(&settings(&format!("rabbit://nobody:sekrit@{dead}/"), &exchange)).unwrap();
    match RpcClient::new(&only_dead, Target::new(&topic))
        .call(&ctx(), "ping", json!({}), "1.0", Some(Duration::from_secs(3)))
        .await
    {
        Err(err @ RpcError::Connect { .. }) => {
            let text = format!("{err}");
            assert!(text.contains(&dead.to_string()) && !text.contains("sekrit"), "{text}");
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_answers_times_out() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &[]);
    let transport = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let client = RpcClient::new(&transport, Target::new(&topic));
    match client.call(&ctx(), "ping", json!({"value": 1}), "1.0", Some(Duration::from_secs(1))).await {
        Err(err @ RpcError::Timeout { .. }) => assert!(err.to_string().contains(&topic), "{err}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_listener_receives_rust_notifications() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("notif"));
    let mut cleanup = cleanup(&exchange, &topic, &[]);
    cleanup.queues = vec![format!("{topic}.info"), format!("{topic}.error")];
    let mut peer = PyPeer::start(PY_LISTENER, &[&py_url(), &exchange, &topic]).await;
    let transport = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let notifier = Notifier::new(&transport, "staffeln.host1", vec![topic.clone()]);
    let mut context = ctx();
    context.insert("auth_token".into(), json!("sekrit-token"));

    notifier.info(Some(&context), "staffeln.backup.create.end", json!({"backup_id": "b1", "size": 1})).await.unwrap();
    let got: Value = serde_json::from_str(&peer.next_line(support::HANG).await).unwrap();
    assert_eq!(got["priority"], "info");
    assert_eq!(got["event_type"], "staffeln.backup.create.end");
    assert_eq!(got["publisher_id"], "staffeln.host1");
    assert_eq!(got["payload"], json!({"backup_id": "b1", "size": 1}));
    assert_eq!(got["metadata"]["message_id"].as_str().unwrap().len(), 36);
    assert!(got["metadata"]["timestamp"].as_str().unwrap().starts_with("20"), "{got}");
    assert_eq!(got["ctxt"]["project_id"], "p-rust");
    assert_eq!(got["ctxt"]["auth_token"], Value::Null, "the token is redacted");

    notifier.error(None, "staffeln.backup.create.error", json!({"reason": "quota"})).await.unwrap();
    let got: Value = serde_json::from_str(&peer.next_line(support::HANG).await).unwrap();
    assert_eq!(
        (got["priority"].as_str(), got["event_type"].as_str()),
        (Some("error"), Some("staffeln.backup.create.error"))
    );
    peer.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_messages_leaves_the_server_serving() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["node1"]);
    let mut s = settings(&url_for(&broker_addr()), &exchange);
    s.rabbit.kombu_missing_consumer_retry_timeout = 1;
    let transport = Transport::new(&s).unwrap();
    let (server, _events, _) = start_server(&transport, &topic, "node1").await;

    let junk: &[&[u8]] = &[
        b"",
        b"junk",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"null",
        br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#,
        br#"{"oslo.version": "2.0", "oslo.message": 5}"#,
        br#"{"oslo.version": "2.0", "oslo.message": "{nope"}"#,
        br#"{"method": 5, "args": {}}"#,
        br#"{"method": "ping", "args": [1], "_msg_id": "m1", "_reply_q": "reply_nobody_here"}"#,
        br#"{"method": "ping", "_msg_id": "m2"}"#,
        br#"{"method": "ping", "args": {"value": 1}, "version": "x.y", "_unique_id": 5}"#,
    ];
    let conn = amqp_connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    for round in 0..50 {
        for (i, body) in junk.iter().enumerate() {
            let key = if (round + i) % 2 == 0 { topic.clone() } else { format!("{topic}.node1") };
            let props = lapin::BasicProperties::default().with_content_type("application/json".into());
            ch.basic_publish(exchange.as_str().into(), key.as_str().into(), Default::default(), body, props)
                .await
                .unwrap();
        }
    }
    let client = RpcClient::new(&transport, Target::new(&topic));
    let pong =
        client.call(&ctx(), "ping", json!({"value": "after"}), "1.0", Some(Duration::from_secs(20))).await.unwrap();
    assert_eq!(pong["pong"], "after");
    let out = python_client(&exchange, &topic, json!([{"kind": "call", "method": "ping", "args": {"value": 3}}])).await;
    assert_eq!(out[0]["ok"]["pong"], 3, "{}", out[0]);
    let q = ch
        .queue_declare(
            topic.as_str().into(),
            lapin::options::QueueDeclareOptions { passive: true, ..Default::default() },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.message_count(), 0, "nothing left behind or requeued");
    let _ = conn.close(200, "OK".into()).await;
    server.stop().await;
    transport.close().await;
}

/// A loopback TCP proxy whose links can be cut, to simulate a broker outage
/// without disturbing the shared broker.
struct Proxy {
    addr: String,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, r) = (links.clone(), refuse.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if r.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let upstream = upstream.clone();
                l.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy { addr, links, refuse, accept }
    }

    /// Cuts every link and refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.refuse.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.refuse.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_recover_from_a_cut_broker_link_without_losing_the_call_in_flight() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("staffeln=info").try_init();
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["node1"]);
    let proxy = Proxy::start(broker_addr()).await;
    let transport = Transport::new(&settings(&url_for(&proxy.addr), &exchange)).unwrap();
    let (server, _events, runs) = start_server(&transport, &topic, "node1").await;
    let client_transport = Transport::new(&settings(&url_for(&proxy.addr), &exchange)).unwrap();
    let client = RpcClient::new(&client_transport, Target::new(&topic));
    let t = Some(Duration::from_secs(40));
    assert_eq!(client.call(&ctx(), "ping", json!({"value": 1}), "1.0", t).await.unwrap()["pong"], 1);

    // A call is being handled when every link to the broker drops.
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.call(&ctx(), "slow", json!({"seconds": 2}), "1.0", t).await })
    };
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();

    assert_eq!(in_flight.await.unwrap().unwrap(), "done", "the call in flight was answered");
    assert_eq!(client.call(&ctx(), "ping", json!({"value": 2}), "1.0", t).await.unwrap()["pong"], 2);
    let out = python_client(&exchange, &topic, json!([{"kind": "call", "method": "ping", "args": {"value": 3}}])).await;
    assert_eq!(out[0]["ok"]["pong"], 3, "the server consumes again: {}", out[0]);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the redelivered request did not run twice");
    server.stop().await;
    transport.close().await;
    client_transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_declarations_match_a_python_server_on_the_same_topic() {
    require_broker().await;
    let (exchange, topic) = (support::unique_name("rpc_x"), support::unique_name("rpc_t"));
    let _cleanup = cleanup(&exchange, &topic, &["pynode", "node1"]);
    let py_durable = format!("{}&amqp_durable_queues=true", py_url());
    let peer = PyPeer::start(PY_SERVER, &[&py_durable, &exchange, &topic, "pynode"]).await;

    // Declared like the Python server: accepted by the broker.
    let mut durable = settings(&url_for(&broker_addr()), &exchange);
    durable.rabbit.amqp_durable_queues = true;
    let transport = Transport::new(&durable).unwrap();
    let (server, _events, _) = start_server(&transport, &topic, "node1").await;
    let client = RpcClient::new(&transport, Target::new(&topic));
    for i in 0..4 {
        let pong =
            client.call(&ctx(), "ping", json!({"value": i}), "1.0", Some(Duration::from_secs(15))).await.unwrap();
        assert_eq!(pong["pong"], i);
    }

    // Declared otherwise: the broker refuses, and the error says what.
    let plain = Transport::new(&settings(&url_for(&broker_addr()), &exchange)).unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let ep = Arc::new(endpoint("node2", tx, Arc::default()));
    match RpcServer::start(&plain, Target::new(&topic).with_server("node2"), vec![ep]).await {
        Err(err @ RpcError::Broker { .. }) => {
            let text =
                format!("{err}: {}", std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default());
            assert!(text.contains("PRECONDITION_FAILED") || text.contains("inequivalent"), "{text}");
        }
        Ok(_) => panic!("a non-durable declaration was accepted next to durable Python queues"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    server.stop().await;
    peer.stop().await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_transport_round_trips_in_process() {
    let vhost = support::unique_name("fake");
    let transport =
        Transport::new(&RpcSettings { transport_url: Some(format!("fake:///{vhost}")), ..RpcSettings::default() })
            .unwrap();
    let (server, mut events, _) = start_server(&transport, "conductor", "host1").await;
    let other =
        Transport::new(&RpcSettings { transport_url: Some(format!("fake:///{vhost}")), ..RpcSettings::default() })
            .unwrap();
    let client = RpcClient::new(&other, Target::new("conductor"));
    let t = Some(Duration::from_secs(5));
    assert_eq!(client.call(&ctx(), "ping", json!({"value": 5}), "1.2", t).await.unwrap()["pong"], 5);
    match client.call(&ctx(), "nope", json!({}), "1.0", t).await {
        Err(RpcError::Remote { exc_type, .. }) => assert_eq!(exc_type, "NoSuchMethod"),
        other => panic!("{other:?}"),
    }
    client.to_server("host1").cast(&ctx(), "record", json!({"value": "c"}), "1.0").await.unwrap();
    client.fanout_cast(&ctx(), "record", json!({"value": "f"}), "1.0").await.unwrap();
    // The cast and the fanout cast travel on different queues: either may come first.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (_, _, args) = tokio::time::timeout(support::HANG, events.recv()).await.unwrap().unwrap();
        seen.push(args["value"].as_str().unwrap_or_default().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["c", "f"]);
    match RpcClient::new(&other, Target::new("nobody"))
        .call(&ctx(), "ping", json!({}), "1.0", Some(Duration::from_millis(200)))
        .await
    {
        Err(RpcError::Timeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    Notifier::new(&other, "staffeln.host1", vec!["notifications".into()])
        .info(None, "staffeln.demo", json!({}))
        .await
        .unwrap();
    server.stop().await;
}

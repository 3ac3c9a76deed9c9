//! staffeln-bench-rpc: `ping` round trips over a loopback RabbitMQ, Rust
//! client → Rust server, then stock Python client → stock Python server
//! (oslo.messaging, threading executor), in the same run. Prints p50/p99.
//!
//! usage: staffeln-bench-rpc [--count N] [--warmup N] [--url rabbit://…] [--python PATH]
//! (`STAFFELN_TEST_PYTHON` also names the Python with oslo.messaging.)

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use staffeln::rpc::{Context, MethodTable, RpcClient, RpcServer, RpcSettings, Target, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const PY_SERVER: &str = r#"
import sys
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic = sys.argv[1:4]
class Endpoint:
    def ping(self, ctxt, value):
        return value
cfg.CONF([])
transport = om.get_rpc_transport(cfg.CONF, url=url)
srv = om.get_rpc_server(transport, om.Target(topic=topic, server="bench", exchange=exchange), [Endpoint()], executor="threading")
srv.start()
print("READY", flush=True)
sys.stdin.read()
srv.stop()
srv.wait()
"#;

const PY_CLIENT: &str = r#"
import json, sys, time
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic, warmup, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
cfg.CONF([])
transport = om.get_rpc_transport(cfg.CONF, url=url)
client = om.get_rpc_client(transport, om.Target(topic=topic, exchange=exchange)).prepare(timeout=30)
ctxt = {"project_id": "p-bench", "request_id": "req-bench"}
for i in range(warmup):
    client.call(ctxt, "ping", value=i)
micros = []
for i in range(count):
    t = time.perf_counter()
    client.call(ctxt, "ping", value=i)
    micros.append((time.perf_counter() - t) * 1e6)
print(json.dumps(micros))
"#;

struct Args {
    count: usize,
    warmup: usize,
    url: String,
    python: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 2000,
        warmup: 200,
        url: "rabbit://guest:guest@127.0.0.1:5672/?rabbit_transient_queues_ttl=120".to_owned(),
        python: std::env::var("STAFFELN_TEST_PYTHON").unwrap_or_else(|_| ".venv-test/bin/python".to_owned()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--warmup" => args.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--url" => args.url = value()?,
            "--python" => args.python = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.count == 0 {
        return Err("--count must be at least 1".to_owned());
    }
    Ok(args)
}

/// p50, p99 and mean of microsecond samples.
fn summary(mut micros: Vec<f64>) -> (f64, f64, f64) {
    micros.sort_by(f64::total_cmp);
    let pick = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    (pick(0.50), pick(0.99), mean)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), staffeln::rpc::envelope::new_id())
}

async fn rust_round_trips(args: &Args, exchange: &str, topic: &str) -> Result<Vec<f64>, String> {
    let settings = RpcSettings {
        transport_url: Some(args.url.clone()),
        control_exchange: exchange.to_owned(),
        ..RpcSettings::default()
    };
    let server_transport = Transport::new(&settings).map_err(|e| e.to_string())?;
    let client_transport = Transport::new(&settings).map_err(|e| e.to_string())?;
    let endpoint = MethodTable::new("1.0")
        .method("ping", |call| async move { Ok(call.args.get("value").cloned().unwrap_or(Value::Null)) });
    let server = RpcServer::start(&server_transport, Target::new(topic).with_server("bench"), vec![Arc::new(endpoint)])
        .await
        .map_err(|e| e.to_string())?;
    let client = RpcClient::new(&client_transport, Target::new(topic));
    let ctx = Context::from_iter([
        ("project_id".to_owned(), json!("p-bench")),
        ("request_id".to_owned(), json!("req-bench")),
    ]);
    let mut micros = Vec::with_capacity(args.count);
    for i in 0..args.warmup + args.count {
        let started = Instant::now();
        let got = client.call(&ctx, "ping", json!({"value": i}), "1.0", Some(Duration::from_secs(30))).await;
        let elapsed = started.elapsed();
        if got.map_err(|e| e.to_string())? != json!(i) {
            return Err(format!("ping {i} came back wrong"));
        }
        if i >= args.warmup {
            micros.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    server.stop().await;
    server_transport.close().await;
    client_transport.close().await;
    Ok(micros)
}

async fn python_round_trips(args: &Args, exchange: &str, topic: &str) -> Result<Vec<f64>, String> {
    let mut server = tokio::process::Command::new(&args.python)
        .args(["-u", "-c", PY_SERVER, &args.url, exchange, topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", args.python))?;
    let stdout = server.stdout.take().ok_or("no stdout from the python server")?;
    let mut lines = BufReader::new(stdout).lines();
    match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
        Ok(Ok(Some(line))) if line == "READY" => {}
        other => return Err(format!("the python server did not start: {other:?}")),
    }
    let out = tokio::process::Command::new(&args.python)
        .args(["-c", PY_CLIENT, &args.url, exchange, topic, &args.warmup.to_string(), &args.count.to_string()])
        .stderr(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", args.python))?;
    if let Some(mut stdin) = server.stdin.take() {
        let _ = stdin.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), server.wait()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .map_err(|e| format!("python client output {text:?}: {e}"))
}

/// Removes the topic queues the servers left and the exchange (the fanout
/// and reply queues go by themselves).
async fn cleanup(url: &str, exchange: &str, topics: &[&str]) {
    let amqp = url.replacen("rabbit://", "amqp://", 1);
    let amqp = amqp.split('?').next().unwrap_or_default().trim_end_matches('/').to_owned() + "/%2f";
    if let Ok(conn) = lapin::Connection::connect(&amqp, lapin::ConnectionProperties::default()).await
        && let Ok(ch) = conn.create_channel().await
    {
        for topic in topics {
            for q in [topic.to_string(), format!("{topic}.bench")] {
                let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
            }
        }
        let _ = ch.exchange_delete(exchange.into(), Default::default()).await;
        let _ = conn.close(200, "OK".into()).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("staffeln-bench-rpc: {err}");
            return ExitCode::from(2);
        }
    };
    let exchange = unique("bench_x");
    let (rust_topic, py_topic) = (unique("bench_rust"), unique("bench_py"));
    let rust = rust_round_trips(&args, &exchange, &rust_topic).await;
    let python = python_round_trips(&args, &exchange, &py_topic).await;
    cleanup(&args.url, &exchange, &[&rust_topic, &py_topic]).await;
    let (rust, python) = match (rust, python) {
        (Ok(r), Ok(p)) => (summary(r), summary(p)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("staffeln-bench-rpc: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "ping round trips over {} ({} measured, {} warm-up), microseconds:",
        staffeln::rpc::mask_url(&args.url),
        args.count,
        args.warmup
    );
    println!("{:<34} {:>9} {:>9} {:>9}", "", "p50", "p99", "mean");
    println!("{:<34} {:>9.0} {:>9.0} {:>9.0}", "Rust client -> Rust server", rust.0, rust.1, rust.2);
    println!("{:<34} {:>9.0} {:>9.0} {:>9.0}", "Python client -> Python server", python.0, python.1, python.2);
    println!("Rust p50 / Python p50 = {:.2} (target <= 0.50)", rust.0 / python.0);
    ExitCode::SUCCESS
}

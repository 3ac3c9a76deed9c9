//! staffeln-bench-cycle: a whole backup cycle, from discovery to every
//! backup available, `last-backup-time` on every server, a retention run and
//! the digests, by several conductors sharing one MariaDB database, against
//! the emulator with backups that take `--backup-seconds` of emulated time.
//!
//! Each conductor runs its real loops (`conductor::runner`) in a process of
//! its own (this binary, started with `--conductor`), on an emulated clock
//! that this process moves forward step by step, after which it waits until
//! every loop of every conductor is parked again; the emulator's clock,
//! frozen between steps (`--frozen-clock`), is moved with them. A step ends
//! at the next `poll_interval` or, with `--events`, at the emulator's next
//! backup transition if that comes first: a backup made at `t` completes
//! at exactly `t + --backup-seconds`, its `backup.create.end` is published
//! and handled then, as on a cloud where the event arrives when the backup
//! ends. So an hour of emulated backups takes the seconds the conductors
//! need for their work, and the figures printed are on the emulated clock
//! (cycle time) and the real one (what the machine spent), with API calls
//! by endpoint and the peak RSS of each conductor.
//!
//! `cargo build --release -p staffeln-fakecloud && cargo run --release --bin
//! staffeln-bench-cycle -- --projects 50 --servers 500 --volumes 1000`
//! (defaults: the 500 / 5,000 / 10,000, 60 s backups, 3 conductors).

mod fleet;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use diesel::connection::SimpleConnection;
use staffeln::conductor::backup::notified;
use staffeln::conductor::clock::Clock;
use staffeln::conductor::runner::{self, Loops};
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::{Database, DbSettings, create_database, migrate, reports, stamps, tasks};
use staffeln::notify::{Mailer, NotifySettings};
use staffeln::openstack::{OpenStack, Secret, Settings};
use staffeln::service::shutdown_channel;
use tokio::sync::Notify;

#[derive(Parser, Clone)]
#[command(name = "staffeln-bench-cycle", about = "Benchmarks a whole backup cycle with several conductors")]
struct Cli {
    #[arg(long, default_value_t = 500)]
    projects: usize,
    #[arg(long, default_value_t = 5000)]
    servers: usize,
    #[arg(long, default_value_t = 10000)]
    volumes: usize,
    /// Emulated seconds a backup takes in Cinder.
    #[arg(long, default_value_t = 60.0)]
    backup_seconds: f64,
    /// Backups take --backup-seconds give or take half of this (uniformly):
    /// with 0 every backup of a batch ends at the same instant, which a
    /// poll either just catches or just misses.
    #[arg(long, default_value_t = 0.0)]
    backup_seconds_spread: f64,
    #[arg(long, default_value_t = 3)]
    conductors: usize,
    /// MariaDB server (a database staffeln_bench_<pid> is made and dropped).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    mysql: String,
    /// `[conductor] poll_interval`, seconds.
    #[arg(long, default_value_t = 10)]
    poll_interval: u64,
    /// Completion by events: the emulator publishes Cinder's backup
    /// notifications to RabbitMQ and the conductors read them
    /// (`[cinder_notifications]`).
    #[arg(long)]
    events: bool,
    /// The broker of --events (an exchange and a queue of the benchmark's
    /// own are made there and deleted).
    #[arg(long, default_value = "127.0.0.1:5672")]
    rabbit: String,
    /// `[cinder_notifications] fallback_poll_interval` with --events, seconds.
    #[arg(long, default_value_t = 120)]
    fallback_poll_interval: u64,
    /// A command each conductor runs under, split at spaces, e.g.
    /// `heaptrack -o /tmp/conductor`: to profile the conductors (their peak
    /// RSS is then the wrapper's).
    #[arg(long)]
    wrap: Option<String>,
    /// cinder-backup hosts in the fleet's zone, each running at most 15
    /// backups at once (Cinder's backup_max_operations, emulated).
    #[arg(long, default_value_t = 1)]
    backup_hosts: u16,
    #[arg(long, hide = true)]
    exchange: Option<String>,
    // The conductor process's arguments (set by the benchmark).
    #[arg(long, hide = true)]
    conductor: Option<usize>,
    #[arg(long, hide = true)]
    db_url: Option<String>,
    #[arg(long, hide = true)]
    auth_url: Option<String>,
    #[arg(long, hide = true)]
    start: Option<DateTime<Utc>>,
}

fn settings(cli: &Cli, db_url: &str, auth_url: &str) -> Result<ConductorSettings, Box<dyn std::error::Error>> {
    let mut conf = Config::default();
    conf.conductor.poll_interval = cli.poll_interval;
    if let (true, Some(exchange)) = (cli.events, &cli.exchange) {
        conf.cinder_notifications.enabled = true;
        conf.cinder_notifications.transport_url =
            Some(staffeln::conf::Secret::new(format!("rabbit://guest:guest@{}/", cli.rabbit)));
        conf.cinder_notifications.exchange = exchange.clone();
        conf.cinder_notifications.queue = format!("{exchange}-staffeln");
        conf.cinder_notifications.fallback_poll_interval = cli.fallback_poll_interval;
    }
    // One cycle: the next is not due before this one ends.
    conf.conductor.backup_service_period = 30 * 86_400;
    conf.conductor.backup_min_interval = 30 * 86_400;
    let mut s = ConductorSettings::from_config(&conf)?;
    s.database = DbSettings::new(db_url);
    s.openstack = Settings {
        auth_url: Some(auth_url.to_owned()),
        username: Some("staffeln".into()),
        password: Some(Secret::new("staffeln-secret")),
        project_name: Some("admin".into()),
        ..Settings::default()
    };
    Ok(s)
}

/// The conductor process: its loops on an emulated clock; on stdin
/// `advance <rfc3339>` (answered `settled` once every loop is parked again),
/// `retention`, `digests` (answered `done <seconds>`) and `stop`.
async fn conductor(cli: Cli, index: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (Some(db_url), Some(auth_url), Some(start)) = (&cli.db_url, &cli.auth_url, cli.start) else {
        return Err("--conductor needs --db-url, --auth-url and --start".into());
    };
    let s = settings(&cli, db_url, auth_url)?;
    let db = Database::connect(&s.database)?;
    let os = OpenStack::connect(&s.openstack).await?;
    let clock = Clock::emulated(start);
    let c = Conductor::new(format!("bench-{index}:{}", std::process::id()), db, os, s).with_clock(clock.clone());
    let mailer = Arc::new(Mailer::new(NotifySettings::default())?);
    let wake = Arc::new(Notify::new());
    let listener = match &c.settings.cinder_events {
        Some(events) => Some(notified::listen(&c, events, wake.clone()).await?),
        None => None,
    };
    let loops =
        Loops { mailer: mailer.clone(), report_period: Duration::days(1), report_retry: Duration::minutes(5), wake };
    let (trigger, _) = shutdown_channel();
    let running = {
        let (c, shutdown) = (c.clone(), trigger.subscribe());
        tokio::spawn(async move { runner::run(&c, &loops, shutdown).await })
    };
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
    let mut out = std::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("advance"), Some(at)) => {
                clock.advance_to(at.parse()?);
                clock.settled(2, StdDuration::from_secs(3600)).await?;
                writeln!(out, "settled")?;
            }
            (Some("retention"), _) => {
                let t = Instant::now();
                let ran = c.run_retention(&c.settings.retention, true).await?;
                writeln!(
                    out,
                    "done {:.3} {}",
                    t.elapsed().as_secs_f64(),
                    ran.map(|s| format!("{s:?}")).unwrap_or_default()
                )?;
            }
            (Some("digests"), _) => {
                let t = Instant::now();
                let sent = c.send_reports(&mailer, Duration::days(1), true, None).await?;
                writeln!(
                    out,
                    "done {:.3} {} projects",
                    t.elapsed().as_secs_f64(),
                    sent.delivered.len() + sent.failed.len()
                )?;
            }
            (Some("handled"), _) => writeln!(out, "handled {}", c.backup_events_handled())?,
            (Some("stop"), _) => break,
            _ => return Err(format!("unknown command {line:?}").into()),
        }
        out.flush()?;
    }
    trigger.trigger();
    running.await?;
    if let Some((listener, transport)) = listener {
        listener.stop().await;
        transport.close().await;
    }
    c.release_leases().await;
    Ok(())
}

/// The environment the shipped systemd unit gives staffeln-conductor (its
/// `Environment=` lines: the C library's allocator settings), so that the
/// conductors measured here run as deployed.
fn deployed_environment() -> Vec<(String, String)> {
    const UNIT: &str = include_str!("../../etc/systemd/staffeln-conductor.service");
    UNIT.lines()
        .filter_map(|line| line.trim().strip_prefix("Environment="))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A conductor process as the driver sees it.
struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Node {
    fn ask(&mut self, line: &str) -> Result<String, Box<dyn std::error::Error>> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            return Err(format!("conductor {} exited while asked {line:?}", self.child.id()).into());
        }
        Ok(answer.trim().to_owned())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "stop");
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops the benchmark's database at the end, also after an error.
struct BenchDb {
    server: Database,
    name: String,
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = self.server.conn() {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

#[derive(serde::Deserialize)]
struct Calls {
    calls: BTreeMap<String, u64>,
}

#[derive(serde::Deserialize)]
struct NotificationCounts {
    queued: u64,
    published: u64,
    /// `backup.createprogress`: published, read and dropped, not handled.
    #[serde(default)]
    progress: u64,
}

/// Deletes the benchmark's exchange and queue at the end, also after an error.
struct BrokerCleanup {
    rabbit: String,
    exchange: String,
}

impl Drop for BrokerCleanup {
    fn drop(&mut self) {
        let (url, exchange) = (format!("amqp://guest:guest@{}/%2f", self.rabbit), self.exchange.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(conn) = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
                    && let Ok(ch) = conn.create_channel().await
                {
                    let queue = format!("{exchange}-staffeln");
                    let _ = ch.queue_delete(queue.as_str().into(), Default::default()).await;
                    let _ = ch.exchange_delete(exchange.as_str().into(), Default::default()).await;
                    let _ = conn.close(200, "OK".into()).await;
                }
            });
        })
        .join();
    }
}

#[derive(serde::Deserialize)]
struct CloudClock {
    now: DateTime<Utc>,
    /// When the emulator's next backup transition is due.
    next_transition: Option<DateTime<Utc>>,
}

fn sum(calls: &BTreeMap<String, u64>, f: impl Fn(&str) -> bool) -> u64 {
    calls.iter().filter(|(k, _)| f(k)).map(|(_, n)| n).sum()
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect()
}

async fn drive(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("staffeln-bench-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let scenario = fleet::fleet(cli.projects, cli.servers, cli.volumes, true);
    println!(
        "fleet: {} projects, {} flagged servers, {} volumes; backups take {} ± {} emulated s; {} backup host(s) of \
         15 operations; {} conductors on MariaDB; poll_interval {} s; {}",
        cli.projects,
        scenario.servers.len(),
        scenario.volumes.len(),
        cli.backup_seconds,
        cli.backup_seconds_spread / 2.0,
        cli.backup_hosts,
        cli.conductors,
        cli.poll_interval,
        if cli.events {
            format!("completion by Cinder's events through RabbitMQ, fallback poll {} s", cli.fallback_poll_interval)
        } else {
            "completion by list polls".to_owned()
        }
    );
    let exchange = format!("staffeln-bench-{}", std::process::id());
    let mut cloud_args = vec![
        "--backup-seconds".to_owned(),
        cli.backup_seconds.to_string(),
        "--backup-seconds-spread".to_owned(),
        cli.backup_seconds_spread.to_string(),
        "--backup-hosts".to_owned(),
        cli.backup_hosts.to_string(),
        "--backup-max-operations".to_owned(),
        "15".to_owned(),
        "--frozen-clock".to_owned(),
    ];
    if cli.events {
        cloud_args.extend([
            "--amqp-url".to_owned(),
            format!("amqp://guest:guest@{}/%2f", cli.rabbit),
            "--notification-exchange".to_owned(),
            exchange.clone(),
        ]);
    }
    let _broker = cli.events.then(|| BrokerCleanup { rabbit: cli.rabbit.clone(), exchange: exchange.clone() });
    let cloud = fleet::start_cloud(&scenario, &dir, &cloud_args)?;
    drop(scenario);

    let name = format!("staffeln_bench_{}", std::process::id());
    let db_url = format!("{}/{name}", cli.mysql.trim_end_matches('/'));
    let bench_db = BenchDb { server: Database::connect(&DbSettings::new(cli.mysql.clone()))?, name };
    create_database(&DbSettings::new(db_url.clone()))?;
    let db = Database::connect(&DbSettings::new(db_url.clone()))?;
    migrate::upgrade(&db)?;

    let http = reqwest::Client::builder().timeout(StdDuration::from_secs(120)).build()?;
    let cloud_clock =
        || async { http.get(format!("{}/clock", cloud.control)).send().await?.json::<CloudClock>().await };
    let calls = || async {
        Ok::<_, reqwest::Error>(http.get(format!("{}/calls", cloud.control)).send().await?.json::<Calls>().await?.calls)
    };
    let start = cloud_clock().await?.now;
    let exe = std::env::current_exe()?;
    let mut nodes = Vec::new();
    for i in 0..cli.conductors {
        let mut wrap = cli.wrap.as_deref().unwrap_or_default().split_whitespace();
        let mut command = match wrap.next() {
            Some(wrapper) => {
                let mut c = Command::new(wrapper);
                c.args(wrap).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let mut child = command
            .envs(deployed_environment())
            .args(["--conductor", &i.to_string(), "--db-url", &db_url, "--auth-url", &cloud.auth_url])
            .args(["--start", &start.to_rfc3339(), "--poll-interval", &cli.poll_interval.to_string()])
            .args(["--rabbit", &cli.rabbit, "--exchange", &exchange])
            .args(["--fallback-poll-interval", &cli.fallback_poll_interval.to_string()])
            .args(cli.events.then_some("--events"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        nodes.push(Node { child, stdin, stdout });
    }
    let s = settings(&Cli { exchange: Some(exchange.clone()), ..cli.clone() }, &db_url, &cloud.auth_url)?;
    let poll = Duration::from_std(s.poll_interval)?;
    let due = s.backup_schedule.next_due(None, start).ok_or("no backup schedule")?;
    http.delete(format!("{}/calls", cloud.control)).send().await?;

    // Step the clocks until every backup is available and every server
    // stamped: to the next poll, or with events to the next backup
    // transition when it comes first.
    let real = Instant::now();
    let mut at = due;
    let mut next_poll = due;
    let mut steps = 0_u64;
    let (mut available_at, mut planned_calls) = (None, None);
    let (ended_at, utilisation) = loop {
        let lag = (at - cloud_clock().await?.now).num_milliseconds();
        if lag > 0 {
            http.post(format!("{}/advance", cloud.control))
                .json(&serde_json::json!({"seconds": lag as f64 / 1000.0}))
                .send()
                .await?;
        }
        if cli.events {
            // The events of what happened up to now are read before the
            // clocks move on, as they would be in the time between polls.
            let published = loop {
                let n: NotificationCounts =
                    http.get(format!("{}/notifications", cloud.control)).send().await?.json().await?;
                if n.queued == 0 {
                    break n.published.saturating_sub(n.progress);
                }
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            };
            let waited = Instant::now();
            loop {
                let mut handled = 0;
                for node in &mut nodes {
                    let answer = node.ask("handled")?;
                    handled += answer.trim_start_matches("handled ").parse::<u64>()?;
                }
                if handled >= published {
                    break;
                }
                if waited.elapsed() > StdDuration::from_secs(600) {
                    return Err(format!("{handled} of {published} events handled after 10 minutes").into());
                }
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
        }
        for node in &mut nodes {
            node.ask(&format!("advance {}", at.to_rfc3339()))?;
        }
        steps += 1;
        let db_now = at.naive_utc();
        let (active, due_stamps, open, finished) = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || -> Result<_, staffeln::db::DbError> {
                let mut c = db.conn()?;
                Ok((
                    tasks::active_volume_ids(&mut c)?.len(),
                    stamps::due(&mut c, db_now)?.len(),
                    tasks::open_cycles(&mut c, "backup")?.len(),
                    tasks::latest_finished_cycle(&mut c, "backup")?,
                ))
            })
            .await??
        };
        if planned_calls.is_none() {
            planned_calls = Some(calls().await?);
        }
        if active == 0 && available_at.is_none() && finished.is_some() {
            available_at = Some(at);
        }
        if active == 0 && due_stamps == 0 && open == 0 && finished.is_some() {
            break (at, finished.and_then(|f| f.slot_utilisation));
        }
        if at - due > Duration::days(7) {
            return Err(format!("after 7 emulated days, {active} tasks are still active").into());
        }
        if at >= next_poll {
            next_poll += poll;
        }
        let transition = if cli.events { cloud_clock().await?.next_transition.filter(|t| *t > at) } else { None };
        at = transition.map_or(next_poll, |t| t.min(next_poll));
    };
    let real_backup = real.elapsed();
    let backup_calls = calls().await?;
    let planned_calls = planned_calls.unwrap_or_default();

    println!("API calls of discovery and planning (the first step):");
    for (endpoint, n) in &planned_calls {
        println!("  {n:>7}  {endpoint}");
    }
    let t = Instant::now();
    let retention = nodes[0].ask("retention")?;
    let retention_real = t.elapsed();
    let after_retention = calls().await?;
    let digests = nodes[0].ask("digests")?;
    let after_digests = calls().await?;

    // Figures.
    let (done, failed, projects, mailed_at) = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || -> Result<_, staffeln::db::DbError> {
            let mut c = db.conn()?;
            let done = tasks::in_state(&mut c, staffeln::objects::TaskState::Done)?;
            let projects: std::collections::HashSet<String> = done.iter().map(|t| t.project_id.clone()).collect();
            let failed = tasks::in_state(&mut c, staffeln::objects::TaskState::Failed)?.len();
            Ok((done.len(), failed, projects.len(), reports::latest(&mut c)?.map(|r| r.created_at.and_utc())))
        })
        .await??
    };
    // The fleet's one zone has --backup-hosts hosts of 15 operations each.
    let zone_cap = s.limits.per_backup_host.saturating_mul(usize::from(cli.backup_hosts));
    let cap = s.limits.overall.min(s.limits.per_az.map_or(zone_cap, |az| az.min(zone_cap))).max(1);
    let ideal = (done as f64 / cap as f64).ceil() * cli.backup_seconds;
    let cycle = (ended_at - due).num_milliseconds() as f64 / 1000.0;
    let available = available_at.map(|a| (a - due).num_milliseconds() as f64 / 1000.0).unwrap_or(cycle);
    println!("backups: {done} done, {failed} failed; {steps} steps");
    println!(
        "cycle (emulated): every backup available after {available:.0} s, every server stamped after {cycle:.0} s; \
         ideal ceil({done} / {cap} slots) x {} s = {ideal:.0} s; ratio {:.3} (target <= 1.05)",
        cli.backup_seconds,
        cycle / ideal.max(1.0)
    );
    println!(
        "slot utilisation (recorded for the metric): {}",
        utilisation.map(|u| format!("{:.1}%", u * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    println!(
        "real time: backup phase {:.1} s, retention {:.1} s ({retention}), a forced digest round afterwards: {digests}",
        real_backup.as_secs_f64(),
        retention_real.as_secs_f64()
    );
    match mailed_at {
        Some(at) => println!(
            "digests: the conductors' report loop sent the round {:.0} s after the cycle began (in the backup phase)",
            (at - due).num_milliseconds() as f64 / 1000.0
        ),
        None => println!("digests: the conductors' report loop sent no round during the backup phase"),
    }
    println!("API calls of the backup phase by endpoint:");
    for (endpoint, n) in &backup_calls {
        println!("  {n:>7}  {endpoint}");
    }
    let total = sum(&backup_calls, |_| true);
    let discovery = sum(&planned_calls, |k| k.starts_with("GET ") && k.ends_with("/detail"));
    let creates = sum(&backup_calls, |k| k.starts_with("POST ") && k.ends_with("/backups"));
    let metadata = sum(&backup_calls, |k| k.contains("/metadata"));
    let quota = sum(&backup_calls, |k| k.contains("os-quota-sets"));
    let auth = sum(&backup_calls, |k| k.contains("/auth/tokens"));
    // One poll per interval; with events, one per fallback interval.
    let every = if cli.events { cli.fallback_poll_interval } else { cli.poll_interval };
    let intervals = (cycle / every.max(1) as f64).ceil() as u64;
    // A token scoped to each project backed up (the backups belong to the
    // project), and each conductor's own.
    let tokens = (projects + cli.conductors) as u64;
    let unavoidable = discovery + creates + metadata + quota + intervals + tokens;
    let polls = sum(&backup_calls, |k| k.starts_with("GET ") && k.ends_with("/backups/detail"))
        + sum(&backup_calls, |k| k.starts_with("GET ") && k.contains("/backups/") && !k.ends_with("/detail"));
    println!(
        "API calls: {total} total ({auth} token requests); unavoidable: discovery list pages {discovery} + creates \
         {creates} + metadata writes {metadata} + quota reads {quota} + one poll per {} interval {intervals} + a \
         token per project and conductor {tokens} = {unavoidable}; ratio {:.3} (target <= 1.05); backup reads of \
         the backup phase (list pages and shows) {polls}",
        if cli.events { "fallback" } else { "poll" },
        total as f64 / unavoidable.max(1) as f64
    );
    // A duplicate needs a second create: Cinder makes one backup per call.
    println!(
        "duplicates: {} ({creates} backups created for {done} tasks done; target 0)",
        creates.saturating_sub(done as u64)
    );
    println!("API calls of the retention run: {}", sum(&diff(&after_retention, &backup_calls), |_| true));
    println!("API calls of the digests: {}", sum(&diff(&after_digests, &after_retention), |_| true));
    for (i, node) in nodes.iter().enumerate() {
        println!(
            "conductor {i}: peak RSS {:.1} MiB (target < 64 MiB)",
            fleet::peak_rss_kib(&node.child.id().to_string()) as f64 / 1024.0
        );
    }
    drop(nodes);
    drop(db);
    drop(bench_db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("staffeln-bench-cycle: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.conductor {
        Some(index) => runtime.block_on(conductor(cli, index)),
        None => runtime.block_on(drive(cli)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("staffeln-bench-cycle: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

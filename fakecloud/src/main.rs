//! staffeln-fakecloud: serves the in-process OpenStack emulator on a port,
//! prints the auth URL and credentials, and runs until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use staffeln_fakecloud::{BackupDeletePolicy, BackupHostSpec, FakeCloud, FakeOptions, NotificationTarget, Scenario};

/// Keystone v3, Nova v2.1 and Cinder v3 emulator for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "staffeln-fakecloud", version)]
struct Args {
    /// JSON scenario file (projects, users, servers, volumes, backups);
    /// without it and --generate, the small built-in scenario.
    #[arg(long, conflicts_with = "generate")]
    scenario: Option<PathBuf>,
    /// Generate a fleet instead: PROJECTS,SERVERS,VOLUMES (e.g. 500,5000,10000).
    #[arg(long, value_parser = parse_fleet)]
    generate: Option<(usize, usize, usize)>,
    /// Seed for --generate and for generated ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seconds a backup stays `creating` (emulated clock).
    #[arg(long, default_value_t = 5.0)]
    backup_seconds: f64,
    /// Backups take --backup-seconds give or take half of this (seconds,
    /// uniformly from --seed).
    #[arg(long, default_value_t = 0.0)]
    backup_seconds_spread: f64,
    /// Milliseconds between two ticks of the backup state machine.
    #[arg(long, default_value_t = 500)]
    tick_ms: u64,
    /// Enforce Cinder's backup:delete as Staffeln's deployment configures
    /// it, with this http: check (e.g.
    /// http://127.0.0.1:8808/v1/backup?backup_id=%(id)s); also settable later
    /// with PUT /_fake/policy/backup_delete.
    #[arg(long)]
    guard_url: Option<String>,
    /// Seconds Cinder waits for the guard ([oslo_policy] remote_timeout).
    #[arg(long, default_value = "60", value_parser = parse_seconds, requires = "guard_url")]
    guard_timeout: Duration,
    /// Cinder API workers: requests served at a time (1: a single-worker
    /// cinder-api); unlimited when absent.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    cinder_workers: Option<u16>,
    /// Publish Cinder's backup notifications (messagingv2) to this broker,
    /// e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(long)]
    amqp_url: Option<String>,
    /// The exchange of the notifications (Cinder's control_exchange).
    #[arg(long, default_value = "openstack", requires = "amqp_url")]
    notification_exchange: String,
    /// The topic of the notifications (routing key <topic>.info).
    #[arg(long, default_value = "notifications", requires = "amqp_url")]
    notification_topic: String,
    /// cinder-backup hosts in zone nova (backup-1 … backup-N), replacing
    /// the scenario's.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    backup_hosts: Option<u16>,
    /// Cinder's backup_max_operations: backups one host runs at once (more
    /// wait for a slot); no limit when absent.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    backup_max_operations: Option<u16>,
    /// The emulated clock stands still between advances (POST
    /// /_fake/advance) instead of running with the wall clock.
    #[arg(long)]
    frozen_clock: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 => Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}")),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

fn parse_fleet(text: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<&str> = text.split(',').collect();
    let [p, s, v] = parts.as_slice() else {
        return Err("expected PROJECTS,SERVERS,VOLUMES".into());
    };
    let n = |x: &str| x.trim().parse::<usize>().map_err(|e| format!("{x:?}: {e}"));
    Ok((n(p)?, n(s)?, n(v)?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut scenario = match (&args.scenario, args.generate) {
        (Some(path), _) => match Scenario::from_file(path) {
            Ok(s) => s,
            Err(err) => return fail(&err, ExitCode::from(2)),
        },
        (None, Some((p, s, v))) => Scenario::generate(p, s, v, args.seed),
        (None, None) => Scenario::small(),
    };
    if let Some(n) = args.backup_hosts {
        scenario.backup_hosts = (1..=n).map(|i| BackupHostSpec::new(&format!("backup-{i}"), "nova")).collect();
    }
    let opts = FakeOptions {
        listen: args.listen,
        backup_duration: Duration::from_secs_f64(args.backup_seconds.max(0.0)),
        backup_spread: Duration::from_secs_f64(
            args.backup_seconds_spread.clamp(0.0, 2.0 * args.backup_seconds.max(0.0)),
        ),
        auto_tick: Some(Duration::from_millis(args.tick_ms.max(1))),
        seed: args.seed,
        backup_delete_policy: args
            .guard_url
            .clone()
            .map(|url| BackupDeletePolicy { guard_url: url, remote_timeout: args.guard_timeout }),
        cinder_workers: args.cinder_workers.map(usize::from),
        notifications: args.amqp_url.as_deref().map(|url| NotificationTarget {
            amqp_url: url.to_owned(),
            exchange: args.notification_exchange.clone(),
            topic: args.notification_topic.clone(),
        }),
        backup_max_operations: args.backup_max_operations.map(usize::from),
        frozen_clock: args.frozen_clock,
        ..FakeOptions::default()
    };
    let opts_policy = opts.backup_delete_policy.clone();
    let cloud = match FakeCloud::start(scenario, opts) {
        Ok(c) => c,
        Err(err) => return fail(&err, ExitCode::FAILURE),
    };
    let admin = cloud.admin();
    println!("OS_AUTH_URL={}", cloud.auth_url());
    println!("OS_USERNAME={}", admin.username);
    println!("OS_PASSWORD={}", admin.password);
    println!("OS_PROJECT_NAME={}", admin.project_name);
    println!("OS_USER_DOMAIN_NAME={}", admin.user_domain_name);
    println!("OS_PROJECT_DOMAIN_NAME={}", admin.project_domain_name);
    println!("OS_IDENTITY_API_VERSION=3");
    println!("# control: {}", cloud.control_url());
    if let Some(policy) = &opts_policy {
        println!("# backup:delete: {}", policy.rule());
    }
    let waited = tokio::runtime::Builder::new_current_thread().enable_all().build().map(|rt| rt.block_on(stopped()));
    if let Err(err) = waited {
        return fail(&err, ExitCode::FAILURE);
    }
    cloud.shutdown();
    ExitCode::SUCCESS
}

async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn fail(err: &dyn std::error::Error, code: ExitCode) -> ExitCode {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    eprintln!("staffeln-fakecloud: {line}");
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}

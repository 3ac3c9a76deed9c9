//! staffeln-bench-conductor: one discovery-and-plan pass of the backup cycle
//! over the emulator's generated fleet, printing wall time, API calls by
//! endpoint and peak RSS.
//!
//! The emulated cloud runs in its own process (`staffeln-fakecloud`, built
//! next to this binary), so the RSS printed is the conductor's alone. Run:
//! `cargo run --release --bin staffeln-bench-conductor -- [--projects 500 --servers 5000 --volumes 10000]`.

mod fleet;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::{Database, DbSettings, migrate};
use staffeln::openstack::{OpenStack, Secret, Settings};

#[derive(Parser)]
#[command(name = "staffeln-bench-conductor", about = "Benchmarks one discovery-and-plan pass")]
struct Cli {
    #[arg(long, default_value_t = 500)]
    projects: usize,
    #[arg(long, default_value_t = 5000)]
    servers: usize,
    #[arg(long, default_value_t = 10000)]
    volumes: usize,
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("staffeln-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let scenario = fleet::fleet(cli.projects, cli.servers, cli.volumes, false);
    let flagged = scenario.servers.len();
    println!("fleet: {} projects, {flagged} flagged servers, {} volumes", cli.projects, scenario.volumes.len());
    let cloud = fleet::start_cloud(&scenario, &dir, &[])?;
    drop(scenario);

    let db = Database::connect(&DbSettings::new(format!("sqlite:///{}", dir.join("bench.sqlite").display())))?;
    migrate::upgrade(&db)?;
    let os = OpenStack::connect(&Settings {
        auth_url: Some(cloud.auth_url.clone()),
        username: Some("staffeln".into()),
        password: Some(Secret::new("staffeln-secret")),
        project_name: Some("admin".into()),
        ..Settings::default()
    })
    .await?;
    let settings = ConductorSettings::from_config(&Config::default())?;
    let conductor = Conductor::new("bench:1".into(), db, os, settings);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    http.delete(format!("{}/calls", cloud.control)).send().await?;

    let started = Instant::now();
    let summary = conductor.run_backup_cycle(true).await?.ok_or("not the leader")?;
    let wall = started.elapsed();

    #[derive(serde::Deserialize)]
    struct Calls {
        calls: BTreeMap<String, u64>,
    }
    let calls = http.get(format!("{}/calls", cloud.control)).send().await?.json::<Calls>().await?.calls;
    let total: u64 = calls.values().sum();
    let list_pages: u64 =
        calls.iter().filter(|(k, _)| k.starts_with("GET ") && k.ends_with("/detail")).map(|(_, n)| n).sum();
    let quota_reads: u64 = calls.iter().filter(|(k, _)| k.contains("os-quota-sets")).map(|(_, n)| n).sum();
    let creates: u64 =
        calls.iter().filter(|(k, _)| k.starts_with("POST ") && k.ends_with("/backups")).map(|(_, n)| n).sum();
    let floor = list_pages + creates + quota_reads;
    println!(
        "discovery-and-plan pass (discover, plan, write {} tasks): {:.3} s",
        summary.backups + summary.skipped + summary.waiting + summary.failed,
        wall.as_secs_f64()
    );
    println!(
        "planned: {} backups, {} skipped, {} waiting, {} failed",
        summary.backups, summary.skipped, summary.waiting, summary.failed
    );
    println!("API calls by endpoint:");
    for (endpoint, n) in &calls {
        println!("  {n:>6}  {endpoint}");
    }
    println!(
        "API calls: {total} total; list pages {list_pages} + creates {creates} + quota reads {quota_reads} = {floor}; ratio {:.4} (target <= 1.05)",
        total as f64 / floor.max(1) as f64
    );
    println!("peak RSS: {:.1} MiB (target < 64 MiB)", fleet::peak_rss_kib("self") as f64 / 1024.0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("staffeln-bench-conductor: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("staffeln-bench-conductor: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

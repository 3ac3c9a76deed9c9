//! staffeln-bench-retention: one retention run over expired backups on the
//! emulated cloud (default 1,000 across 100 projects, in chains of a full and
//! incrementals, plus one young backup per volume that stays), with a SQLite
//! database holding their `backup_data` rows. Prints wall time, what the run
//! decided and did, and the API calls the emulator counted; then the next
//! run, which forgets the rows of the deleted backups.
//!
//! usage: staffeln-bench-retention [--projects N] [--per-project N] [--chain N]
//!        [--concurrency N] [--latency-ms N] [--delete-ms N]
//!
//! The deletes are bounded by `--concurrency` (max_concurrent_deletes), the
//! per-request `--latency-ms` injected into Cinder, and the emulated time a
//! delete takes (`--delete-ms`), which the newer backups of a chain must
//! finish before the older ones start. For reference, staffeln-py sleeps
//! 2 s after each delete: 1,000 deletes take at least 33 minutes there.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::json;
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::models::NewBackup;
use staffeln::db::{Database, DbSettings};
use staffeln::openstack::{OpenStack, Secret, Settings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    projects: usize,
    per_project: usize,
    chain: usize,
    concurrency: u32,
    latency_ms: u64,
    delete_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { projects: 100, per_project: 10, chain: 5, concurrency: 10, latency_ms: 20, delete_ms: 200 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"));
        let n = number(&value)?;
        let size = usize::try_from(n).map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--projects" => args.projects = size,
            "--per-project" => args.per_project = size,
            "--chain" => args.chain = size,
            "--concurrency" => args.concurrency = u32::try_from(n).map_err(|e| format!("{flag}: {e}"))?,
            "--latency-ms" => args.latency_ms = n,
            "--delete-ms" => args.delete_ms = n,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.projects == 0 || args.per_project == 0 || args.chain == 0 || args.concurrency == 0 {
        return Err("--projects, --per-project, --chain and --concurrency must be at least 1".to_owned());
    }
    Ok(args)
}

/// Projects with one volume each: `per_project` expired backups in chains of
/// `chain` (a full, then incrementals), and a young full that stays.
/// Returns the scenario and the backups to record in `backup_data`.
fn scenario(args: &Args) -> Result<(Scenario, Vec<NewBackup>), Error> {
    let now = Utc::now();
    let mut roles = serde_json::Map::new();
    roles.insert("admin".into(), json!(["admin"]));
    let (mut projects, mut volumes, mut backups, mut rows) =
        (vec![json!({"name": "admin"})], Vec::new(), Vec::new(), Vec::new());
    for p in 0..args.projects {
        let project = format!("project-{p:04}");
        let project_id = uuid::Uuid::new_v4().simple().to_string();
        let volume_id = uuid::Uuid::new_v4().to_string();
        roles.insert(project.clone(), json!(["admin"]));
        projects.push(json!({"id": project_id, "name": project, "quota": {"backups": -1, "backup_gigabytes": -1}}));
        volumes.push(json!({"id": volume_id, "project": project, "name": format!("volume-{p:04}")}));
        let mut parent: Option<String> = None;
        for b in 0..=args.per_project {
            let id = uuid::Uuid::new_v4().to_string();
            let young = b == args.per_project;
            let age = if young { Duration::days(1) } else { Duration::days(60) - Duration::hours(b as i64) };
            let incremental = !young && b % args.chain != 0;
            backups.push(json!({
                "id": id, "volume": volume_id, "name": format!("backup-{p:04}-{b:02}"),
                "parent": if incremental { parent.clone() } else { None },
                "created_at": (now - age).to_rfc3339(),
                "metadata": {"__automated_backup": "True"},
            }));
            rows.push(NewBackup {
                backup_id: id.clone(),
                project_id: project_id.clone(),
                volume_id: volume_id.clone(),
                instance_id: String::new(),
                backup_completed: 1,
                incremental,
            });
            parent = Some(id);
        }
    }
    let scenario = json!({
        "service_user": "staffeln",
        "projects": projects,
        "users": [{"name": "staffeln", "password": "staffeln-secret", "default_project": "admin", "roles": roles}],
        "volumes": volumes,
        "backups": backups,
    });
    Ok((serde_json::from_value(scenario)?, rows))
}

async fn run(args: Args) -> Result<(), Error> {
    let (scenario, rows) = scenario(&args)?;
    let opts = FakeOptions {
        auto_tick: Some(StdDuration::from_millis(10)),
        delete_duration: StdDuration::from_millis(args.delete_ms),
        ..FakeOptions::default()
    };
    let cloud = FakeCloud::start(scenario, opts)?;
    let control = cloud.control();
    if args.latency_ms > 0 {
        control.add_fault(Fault::new(Service::Volume, None, None, FaultEffect::Latency { millis: args.latency_ms }));
    }
    let path = std::env::temp_dir().join(format!("staffeln-bench-retention-{}.sqlite", std::process::id()));
    let result = bench(&args, &cloud, rows, &path).await;
    let _ = std::fs::remove_file(&path);
    result
}

async fn bench(args: &Args, cloud: &FakeCloud, rows: Vec<NewBackup>, path: &std::path::Path) -> Result<(), Error> {
    let control = cloud.control();
    let url = format!("sqlite:///{}", path.display());
    let db = tokio::task::spawn_blocking(move || -> Result<Database, Error> {
        let db = Database::connect(&DbSettings::new(&url))?;
        staffeln::db::migrate::upgrade(&db)?;
        let mut conn = db.conn()?;
        for row in &rows {
            staffeln::db::backups::insert(&mut conn, row)?;
        }
        Ok(db)
    })
    .await??;
    let admin = cloud.admin();
    let os = OpenStack::connect(&Settings {
        auth_url: Some(admin.auth_url.clone()),
        username: Some(admin.username.clone()),
        password: Some(Secret::new(admin.password.clone())),
        project_name: Some(admin.project_name.clone()),
        ..Settings::default()
    })
    .await?;
    let mut conf = Config::default();
    conf.conductor.max_concurrent_deletes = args.concurrency;
    let conductor_settings = ConductorSettings::from_config(&conf)?;
    let settings = conductor_settings.retention.clone();
    let conductor = Conductor::new(format!("bench:{}", std::process::id()), db, os, conductor_settings);
    let expired = args.projects * args.per_project;
    println!(
        "{expired} expired backups ({} projects x {}, chains of {}), {} young ones that stay; \
         max_concurrent_deletes {}, Cinder latency {} ms per request, a delete takes {} ms",
        args.projects, args.per_project, args.chain, args.projects, args.concurrency, args.latency_ms, args.delete_ms
    );
    for (label, rows_pass) in [("retention run", false), ("next run (forgets the rows)", true)] {
        control.reset_calls();
        let started = Instant::now();
        let summary = conductor.run_retention(&settings, true).await?.ok_or("another conductor leads retention")?;
        let wall = started.elapsed();
        let calls = control.calls();
        let total: u64 = calls.values().sum();
        println!("\n{label}: {:.2} s wall", wall.as_secs_f64());
        println!(
            "  decided: {} volumes, {} kept, {} skipped, {} to delete; done: {} deleted, {} deferred, {} failed, {} rows forgotten",
            summary.volumes,
            summary.kept,
            summary.skipped,
            summary.to_delete,
            summary.deleted,
            summary.deferred,
            summary.failed,
            summary.rows_removed
        );
        println!("  API calls: {total}");
        let grouped: BTreeMap<String, u64> = calls.into_iter().collect();
        for (route, n) in grouped {
            println!("    {n:>6}  {route}");
        }
        if !rows_pass && summary.deleted != expired {
            return Err(format!("expected {expired} deletes, got {}", summary.deleted).into());
        }
    }
    println!("\nfor reference: staffeln-py sleeps 2 s per delete: {expired} deletes take >= {} min", expired * 2 / 60);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("staffeln-bench-retention: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("staffeln-bench-retention: cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut line = err.to_string();
            let mut cause = err.source();
            while let Some(c) = cause {
                line.push_str(": ");
                line.push_str(&c.to_string());
                cause = c.source();
            }
            eprintln!("staffeln-bench-retention: {line}");
            ExitCode::FAILURE
        }
    }
}

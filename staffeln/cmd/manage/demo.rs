//! `staffeln-manage demo`: Staffeln end to end on embedded defaults, with no
//! service to install: the built-in emulated cloud (Keystone, Nova, Cinder)
//! in process with a seeded fleet, SQLite in a (temporary) directory, digests
//! written to files. It runs a backup cycle (the emulated backup service
//! finishes the backups as emulated time advances), then the digests, and
//! prints what happened.

use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use staffeln::conductor::{self, Conductor};
use staffeln::conf::{self, Config, Source};
use staffeln::db::{Database, DbSettings, migrate, tasks};
use staffeln::fakecloud::{FakeCloud, FakeOptions, Scenario};
use staffeln::notify::{Mailer, NotifySettings};
use staffeln::objects::TaskState;
use staffeln::service::{self, logging};

use crate::Failure;

/// The demo fleet: three projects; flagged and unflagged servers; a volume
/// with the skip flag; `finance` at its backups quota.
fn fleet() -> Result<Scenario, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "webshop", "quota": {"backups": 20, "backup_gigabytes": 500}},
            {"name": "analytics", "quota": {"backups": 20, "backup_gigabytes": 500}},
            {"name": "finance", "quota": {"backups": 1, "backup_gigabytes": 500}}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-demo-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "webshop": ["admin"], "analytics": ["admin"], "finance": ["admin"]}},
            {"name": "alice", "password": "alice-demo", "email": "alice@webshop.example", "roles": {"webshop": ["member"]}}
        ],
        "servers": [
            {"project": "webshop", "name": "shop-web", "metadata": {"__staffeln_backup": "true"}, "volumes": ["shop-root", "shop-uploads"]},
            {"project": "webshop", "name": "shop-db", "metadata": {"__staffeln_backup": "yes"}, "volumes": ["shop-db-data", "shop-db-scratch"]},
            {"project": "webshop", "name": "shop-build", "volumes": ["build-cache"]},
            {"project": "analytics", "name": "warehouse", "metadata": {"__staffeln_backup": "1"}, "volumes": ["warehouse-data"]},
            {"project": "finance", "name": "ledger", "metadata": {"__staffeln_backup": "true"}, "volumes": ["ledger-data", "ledger-archive"]}
        ],
        "volumes": [
            {"project": "webshop", "name": "shop-root", "size": 20, "bootable": true},
            {"project": "webshop", "name": "shop-uploads", "size": 50},
            {"project": "webshop", "name": "shop-db-data", "size": 100},
            {"project": "webshop", "name": "shop-db-scratch", "size": 10, "metadata": {"skip-volume-backup": "true"}},
            {"project": "webshop", "name": "build-cache", "size": 30},
            {"project": "analytics", "name": "warehouse-data", "size": 200},
            {"project": "finance", "name": "ledger-data", "size": 10},
            {"project": "finance", "name": "ledger-archive", "size": 40}
        ]
    }))
}

fn step(started: Instant, text: &str) {
    println!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
}

/// The demo's configuration: embedded defaults plus the state directory,
/// the emulated cloud's credentials and the digest directory, given the way
/// an operator would (command-line options, as oslo.config reads them).
fn demo_config(dir: &Path, cloud: &FakeCloud) -> Result<Config, Failure> {
    let admin = cloud.admin();
    let set = |group: &str, name: &str, value: String| Source::Cli { group: group.into(), name: name.into(), value };
    let sources = [
        set("DEFAULT", "state_path", dir.display().to_string()),
        set("DEFAULT", "log_file", dir.join("staffeln-demo.log").display().to_string()),
        set("openstack", "auth_url", admin.auth_url.clone()),
        set("openstack", "username", admin.username.clone()),
        set("openstack", "password", admin.password.clone()),
        set("openstack", "project_name", admin.project_name.clone()),
        set("notification", "report_dir", dir.join("digests").display().to_string()),
        set("notification", "admin_receiver", "ops@cloud.example".into()),
        set("notification", "project_receiver_domain", "tenants.example".into()),
    ];
    Ok(conf::load(&sources, &Default::default()).map_err(Failure::config)?.config)
}

pub fn run(dir: Option<&Path>) -> Result<(), Failure> {
    let dir: PathBuf = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("staffeln-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let runtime = service::runtime()?;
    runtime.block_on(demo(&dir))
}

async fn demo(dir: &Path) -> Result<(), Failure> {
    let started = Instant::now();
    println!("Staffeln demo: state in {}", dir.display());
    let cloud = FakeCloud::start(fleet()?, FakeOptions::default())?;
    step(started, &format!("emulated cloud up at {} (Keystone v3, Nova v2.1, Cinder v3)", cloud.auth_url()));
    let config = demo_config(dir, &cloud)?;
    let _log = logging::init("staffeln-demo", &service::log_settings(&config))?;
    step(
        started,
        &format!("configuration: embedded defaults; oslo.log lines go to {}", dir.join("staffeln-demo.log").display()),
    );

    let db = Database::connect(&DbSettings::from(&config.database))?;
    let applied = migrate::upgrade(&db)?;
    step(started, &format!("database {} created ({} migrations)", db.url(), applied.len()));
    drop(db);

    let conductor: Conductor = conductor::connect(&config).await?;
    step(started, "conductor connected to the cloud as the service user; discovering flagged servers in all projects");
    let summary = conductor
        .run_backup_cycle(true)
        .await?
        .ok_or_else(|| std::io::Error::other("the demo conductor did not get the lead"))?;
    step(
        started,
        &format!(
            "cycle {} planned: {} backups, {} skipped, {} waiting, {} failed",
            summary.cycle_id, summary.backups, summary.skipped, summary.waiting, summary.failed
        ),
    );
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let started_now = conductor.work_once().await?;
        if started_now > 0 {
            step(started, &format!("{started_now} backups requested from Cinder; advancing emulated time"));
        }
        cloud.control().advance(StdDuration::from_secs(10));
        conductor.poll_once().await?;
        let active = conductor.db_call(tasks::active_volume_ids).await?;
        if active.is_empty() || Instant::now() > deadline {
            break;
        }
    }
    let cycle_id = summary.cycle_id.clone();
    let rows = conductor.db_call(move |c| tasks::of_cycle(c, &cycle_id)).await?;
    println!("\n  {:<14} {:<16} {:<9} {:<12} detail", "server", "volume", "state", "kind");
    for row in &rows {
        let kind = match row.task_state() {
            TaskState::Done | TaskState::Creating => {
                if row.incremental {
                    "incremental"
                } else {
                    "full"
                }
            }
            _ => "-",
        };
        let detail = match row.task_state() {
            TaskState::Done => format!("backup {} ({})", row.backup_name, row.backup_id),
            _ => row.reason.clone().unwrap_or_default(),
        };
        println!("  {:<14} {:<16} {:<9} {:<12} {detail}", row.instance_name, row.volume_name, row.state, kind);
    }
    println!();

    let mailer = Mailer::new(NotifySettings::from_opts(&config.notification))?;
    let report = conductor.send_reports(&mailer, Duration::zero(), true, None).await?;
    step(started, &format!("digests for {} projects written (no SMTP sender configured)", report.delivered.len()));
    let digests = dir.join("digests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&digests)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in &files {
        println!("          {}", file.display());
    }
    println!(
        "\nDone in {:.1} s. Digests: {}  Log: {}  Database: {}",
        started.elapsed().as_secs_f64(),
        digests.display(),
        dir.join("staffeln-demo.log").display(),
        dir.join("staffeln.sqlite").display()
    );
    Ok(())
}

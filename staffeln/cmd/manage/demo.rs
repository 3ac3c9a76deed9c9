//! `staffeln-manage demo`: Staffeln end to end on embedded defaults, with no
//! service to install: the built-in emulated cloud (Keystone, Nova, Cinder)
//! in process with a seeded fleet, SQLite in a (temporary) directory, the
//! in-process `fake://` RPC transport, digests written to files. It runs a
//! backup cycle (the emulated backup service finishes the backups as emulated
//! time advances), two more cycles (one triggered over RPC, as
//! `staffeln backup trigger` does), then starts staffeln-api and makes the
//! emulated Cinder (one API worker, as devstack runs it) enforce
//! `backup:delete` through it, as the devstack plugin configures Cinder; a
//! retention pass three days later deletes through that policy with the
//! service user holding only `member` in the tenants' projects; the digests;
//! and a tenant is refused Staffeln's backup but deletes its own. Then it
//! prints what happened.

use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use std::sync::Arc;

use staffeln::api::{ApiHandle, ApiSettings};
use staffeln::conductor::backup::cycle::CycleSummary;
use staffeln::conductor::rpcapi::ConductorApi;
use staffeln::conductor::{self, Conductor, ConductorSettings, manager};
use staffeln::conf::{self, Config, Source};
use staffeln::db::{Database, migrate, tasks};
use staffeln::notify::Mailer;
use staffeln::objects::TaskState;
use staffeln::rpc::Transport;
use staffeln::service;
use staffeln::service::logging::{self, LogSettings};
use staffeln_fakecloud::{BackupDeletePolicy, FakeCloud, FakeOptions, Scenario};

use crate::Failure;

/// The demo fleet: three projects; flagged and unflagged servers; a volume
/// with the skip flag; `finance` at its backups quota. Staffeln's service
/// user is `admin` in its own project only (discovery lists every project)
/// and `member` in the projects it backs up, as the devstack plugin sets it up.
fn fleet() -> Result<Scenario, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "service_user": "staffeln",
        "projects": [
            {"name": "admin"},
            {"name": "webshop", "quota": {"backups": 40, "backup_gigabytes": 4000}},
            {"name": "analytics", "quota": {"backups": 40, "backup_gigabytes": 4000}},
            {"name": "finance", "quota": {"backups": 1, "backup_gigabytes": 500}}
        ],
        "users": [
            {"name": "staffeln", "password": "staffeln-demo-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "webshop": ["member"], "analytics": ["member"], "finance": ["member"]}},
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
        set("DEFAULT", "transport_url", "fake://".into()),
        set("conductor", "backup_min_interval", "0".into()),
        set("conductor", "full_backup_depth", "1".into()),
        set("conductor", "retention_time", "1d".into()),
        set("conductor", "poll_interval", "1".into()),
        set("api", "host", "127.0.0.1".into()),
        set("api", "port", "0".into()),
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
    // The emulated backup service also moves on its own (deletes take half a
    // second), so retention's waits end as they would on a real cloud.
    // One Cinder API worker, as devstack runs cinder-api: a guard that called
    // back into Cinder would wait for itself.
    let options = FakeOptions {
        auto_tick: Some(StdDuration::from_millis(100)),
        delete_duration: StdDuration::from_millis(500),
        cinder_workers: Some(1),
        ..FakeOptions::default()
    };
    let cloud = FakeCloud::start(fleet()?, options)?;
    step(started, &format!("emulated cloud up at {} (Keystone v3, Nova v2.1, Cinder v3)", cloud.auth_url()));
    let config = demo_config(dir, &cloud)?;
    let _log = logging::init("staffeln-demo", &LogSettings::from_config(&config).map_err(Failure::config)?)?;
    let settings = ConductorSettings::from_config(&config).map_err(Failure::config)?;
    let api_settings = ApiSettings::from_config(&config).map_err(Failure::config)?;
    step(
        started,
        &format!("configuration: embedded defaults; oslo.log lines go to {}", dir.join("staffeln-demo.log").display()),
    );

    let db = Database::connect(&settings.database)?;
    let applied = migrate::upgrade(&db)?;
    step(started, &format!("database {} created ({} migrations)", db.url(), applied.len()));
    drop(db);

    let conductor: Conductor = conductor::connect(&settings).await?;
    step(started, "conductor connected to the cloud as the service user; discovering flagged servers in all projects");
    let first = conductor
        .run_backup_cycle(true)
        .await?
        .ok_or_else(|| std::io::Error::other("the demo conductor did not get the lead"))?;
    report_plan(started, &first);
    settle(started, &conductor, &cloud).await?;
    print_cycle(&conductor, &first.cycle_id).await?;

    // On-demand triggers go over the conductor's RPC topic (fake:// here,
    // RabbitMQ in a deployment), exactly as `staffeln backup trigger` sends them.
    let mailer = Arc::new(Mailer::new(settings.notify.clone())?);
    let rpc = manager::start_rpc(&conductor, mailer.clone()).await?;
    rpc.serving().await;
    let rpc_settings = settings.rpc.clone().unwrap_or_default();
    let transport = Transport::new(&rpc_settings)?;
    let api = ConductorApi::new(&transport, &settings.topic);
    let ctx = Default::default();
    for n in 2..=3 {
        let triggered = api.backup_now(&ctx, None, None).await?;
        step(
            started,
            &format!(
                "cycle {n} triggered over RPC: {} backups planned ({})",
                triggered.backups,
                if n == 2 { "incrementals" } else { "fulls again: full_backup_depth = 1" }
            ),
        );
        settle(started, &conductor, &cloud).await?;
    }
    let status = api.get_status(&ctx).await?;
    step(
        started,
        &format!("status over RPC: leader {}, tasks {:?}", status.lease_holder.unwrap_or_default(), status.tasks),
    );
    rpc.stop().await;

    // From here on Cinder asks staffeln-api before every backup:delete, with
    // the rule the devstack plugin writes into Cinder's policy.yaml.
    let db = Database::connect(&api_settings.database)?;
    let os_settings = settings.openstack.clone();
    let api = staffeln::api::start(api_settings, db.clone()).await?;
    let policy = BackupDeletePolicy::new(format!("http://{}/v1/backup?backup_id=%(id)s", api.addr));
    step(started, &format!("staffeln-api listening on {}; Cinder's policy now reads", api.addr));
    println!("          \"backup:delete\": \"{}\"", policy.rule());
    cloud.control().set_backup_delete_policy(Some(policy));

    // Retention three days later: retention_time is 1d, but each volume keeps
    // its newest backup, and a full is deleted only after its incrementals.
    let later = chrono::Utc::now() + Duration::days(3);
    let retention = &conductor.settings.retention;
    let preview = conductor.retention_preview(retention, None).await?;
    step(
        started,
        &format!("retention preview (as `staffeln retention trigger --dry-run`): {} backups considered", preview.len()),
    );
    let ran = conductor.run_retention_at(retention, true, later).await?;
    if let Some(r) = &ran {
        step(
            started,
            &format!(
                "retention three days later: {} kept, {} deleted, {} left for the next run",
                r.kept, r.deleted, r.deferred
            ),
        );
    }
    let checks = cloud.control().policy_checks();
    step(
        started,
        &format!(
            "Cinder asked staffeln-api {} times: {} deletes allowed for Staffeln's service user (a member token of \
             each project, no admin role there), {} refused; the guard asked Cinder {} times",
            checks.allowed + checks.refused + checks.failed,
            checks.allowed,
            checks.refused + checks.failed,
            cloud.control().call_count("GET", "/volume/backups/{id}")
        ),
    );
    cloud.control().settle();

    let report = conductor.send_reports(&mailer, Duration::zero(), true, None).await?;
    step(started, &format!("digests for {} projects written (no SMTP sender configured)", report.delivered.len()));

    tenant(started, &db, &os_settings, &api, &cloud).await?;
    api.stop().await?;

    let digests = dir.join("digests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&digests)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    println!("\nDigests:");
    for file in &files {
        println!("  {}", file.display());
    }
    println!(
        "\nDone in {:.1} s. Log: {}  Database: {}",
        started.elapsed().as_secs_f64(),
        dir.join("staffeln-demo.log").display(),
        dir.join("staffeln.sqlite").display()
    );
    Ok(())
}

fn report_plan(started: Instant, s: &CycleSummary) {
    step(
        started,
        &format!(
            "cycle {} planned: {} backups, {} skipped, {} waiting, {} failed",
            s.cycle_id, s.backups, s.skipped, s.waiting, s.failed
        ),
    );
}

/// Starts and checks backups while emulated time advances, until none is active.
async fn settle(started: Instant, conductor: &Conductor, cloud: &FakeCloud) -> Result<(), Failure> {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let n = conductor.work_once().await?;
        if n > 0 {
            step(started, &format!("{n} backups requested from Cinder; advancing emulated time"));
        }
        cloud.control().advance(StdDuration::from_secs(10));
        conductor.poll_once().await?;
        if conductor.db_call(tasks::active_volume_ids).await?.is_empty() || Instant::now() > deadline {
            return Ok(());
        }
    }
}

async fn print_cycle(conductor: &Conductor, cycle_id: &str) -> Result<(), Failure> {
    let id = cycle_id.to_owned();
    let rows = conductor.db_call(move |c| tasks::of_cycle(c, &id)).await?;
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
    Ok(())
}

/// A tenant, alice of webshop, at the guard and at Cinder: the question
/// Cinder's policy asks before her `backup:delete`, then the deletes
/// themselves through the emulated Cinder.
async fn tenant(
    started: Instant,
    db: &Database,
    os_settings: &staffeln::openstack::Settings,
    api: &ApiHandle,
    cloud: &FakeCloud,
) -> Result<(), Failure> {
    let control = cloud.control();
    let alice = cloud.credentials("alice").ok_or_else(|| std::io::Error::other("no user alice"))?;
    // One of Staffeln's backups of her project that is still there.
    let automated = {
        let mut conn = db.conn()?;
        staffeln::db::backups::list_by_project(&mut conn, &alice.project_id)?
            .into_iter()
            .map(|row| row.backup_id)
            .find(|id| control.backup_status(id).as_deref() == Some("available"))
            .unwrap_or_default()
    };
    // alice makes a backup of her own.
    let alice_os = staffeln::openstack::OpenStack::connect(&staffeln::openstack::Settings {
        auth_url: Some(alice.auth_url.clone()),
        username: Some(alice.username.clone()),
        password: Some(staffeln::openstack::Secret::new(alice.password.clone())),
        project_name: Some(alice.project_name.clone()),
        ..os_settings.clone()
    })
    .await?;
    let volume = control.volume_id("shop-uploads").unwrap_or_default();
    let mut request = staffeln::openstack::BackupRequest::new(staffeln::objects::VolumeId(volume));
    request.name = Some("alice-before-upgrade".into());
    let manual = alice_os.create_backup(&request).await?;
    control.settle();

    let http = reqwest::Client::new();
    for (label, id) in [("Staffeln's backup", automated.clone()), ("alice's own backup", manual.0.clone())] {
        // The form body oslo.policy's http: check sends: the backup as Cinder
        // has it (with its metadata), alice as her token says.
        let target = serde_json::json!({"id": id, "project_id": alice.project_id,
                                        "metadata": control.backup_metadata(&id).unwrap_or_default()});
        let credentials = serde_json::json!({"user_id": alice.user_id, "project_id": alice.project_id,
                                             "roles": ["member", "reader"], "is_admin": false});
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rule", "\"backup:delete\"")
            .append_pair("target", &target.to_string())
            .append_pair("credentials", &credentials.to_string())
            .finish();
        let response = http
            .post(format!("http://{}/v1/backup?backup_id={id}", api.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        let verdict = if body == "True" { "may delete it" } else { "may not delete it" };
        step(started, &format!("guard: {label} {id}: HTTP {status} {body:?}: the user {verdict}"));
    }
    for (label, id) in [("Staffeln's backup", automated), ("her own backup", manual.0)] {
        let outcome = match alice_os.delete_backup(&staffeln::objects::BackupId(id.clone())).await {
            Ok(()) => "accepted (202)".to_owned(),
            Err(err) => format!("refused: {}", err.message().unwrap_or("no message")),
        };
        step(started, &format!("alice deletes {label} {id} through Cinder: {outcome}"));
    }
    Ok(())
}

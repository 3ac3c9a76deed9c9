//! Upgrading from the original (Python) Staffeln (issue 15.5): a MariaDB
//! database built by replaying the original's schema history
//! (`fixtures/staffeln-py-mysql.sql`) with rows of its own, upgraded by
//! `staffeln-manage db upgrade`; then retention rotates the adopted backups
//! (deletes the expired ones, keeps the rest) and the deletion guard refuses
//! tenants on them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::json;
use staffeln::api::{self, ApiSettings};
use staffeln::conductor::{Conductor, ConductorSettings};
use staffeln::conf::Config;
use staffeln::db::{backups, migrate};
use staffeln::openstack::{OpenStack, Secret, Settings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Scenario};

use crate::support::TestDb;

const FIXTURE: &str = include_str!("fixtures/staffeln-py-mysql.sql");

/// One backup of the scenario: id, volume, days old, incremental parent, status.
type Spec = (&'static str, &'static str, i64, Option<&'static str>, &'static str);

/// The original made all but the last, a tenant's own.
const BACKUPS: [Spec; 7] = [
    // An expired full and its incremental.
    ("11111111-0000-4000-8000-000000000001", "vol-a", 30, None, "available"),
    ("11111111-0000-4000-8000-000000000002", "vol-a", 29, Some("11111111-0000-4000-8000-000000000001"), "available"),
    // A recent one.
    ("11111111-0000-4000-8000-000000000003", "vol-a", 1, None, "available"),
    // Expired, but the newest of vol-b.
    ("11111111-0000-4000-8000-000000000004", "vol-b", 25, None, "available"),
    // A failed one, kept by the original for its retention.
    ("11111111-0000-4000-8000-000000000005", "vol-c", 3650, None, "error"),
    // Being created when the original stopped.
    ("11111111-0000-4000-8000-000000000006", "vol-c", 0, None, "available"),
    // A tenant's own.
    ("11111111-0000-4000-8000-000000000007", "vol-a", 40, None, "available"),
];

fn id(n: usize) -> &'static str {
    BACKUPS[n - 1].0
}

fn scenario() -> Scenario {
    let now = Utc::now();
    let backups: Vec<serde_json::Value> = BACKUPS
        .iter()
        .map(|(id, volume, days, parent, status)| {
            json!({"id": id, "volume": volume, "status": status, "parent": parent,
                   "created_at": (now - Duration::days(*days) - Duration::minutes(5)).to_rfc3339()})
        })
        .collect();
    serde_json::from_value(json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "p1", "quota": {"backups": 100}}],
        "users": [
            {"name": "staffeln", "password": "staffeln-secret", "default_project": "admin",
             "roles": {"admin": ["admin"], "p1": ["admin"]}},
            {"name": "alice", "password": "alice-secret", "roles": {"p1": ["member"]}}
        ],
        "servers": [{"project": "p1", "name": "web", "metadata": {"__staffeln_backup": "true"},
                     "volumes": ["vol-a", "vol-b", "vol-c"]}],
        "volumes": [
            {"project": "p1", "name": "vol-a", "size": 1},
            {"project": "p1", "name": "vol-b", "size": 1},
            {"project": "p1", "name": "vol-c", "size": 1}
        ],
        "backups": backups,
    }))
    .unwrap()
}

/// The original's records of the scenario's backups, as it wrote them.
fn seed_original(db: &TestDb, cloud: &FakeCloud) {
    let control = cloud.control();
    let project = control.project_id("p1").unwrap();
    let server = control.server_id("web").unwrap();
    let vol = |name: &str| control.volume_id(name).unwrap();
    let at = |days: i64| (Utc::now() - Duration::days(days)).format("%Y-%m-%d %H:%M:%S").to_string();
    let mut sql = String::new();
    // backup_data: completed backups, and a failed one dated ten years back
    // (the original's way of having retention look at it soon).
    for (n, completed, incremental) in [(1, 1, "0"), (2, 1, "1"), (3, 1, "0"), (4, 1, "0"), (5, 0, "NULL")] {
        let (bid, volume, days, ..) = BACKUPS[n - 1];
        sql.push_str(&format!(
            "INSERT INTO backup_data (created_at, backup_id, project_id, volume_id, instance_id, backup_completed, \
             incremental) VALUES ('{}', '{bid}', '{project}', '{}', '{server}', {completed}, {incremental});\n",
            at(days),
            vol(volume)
        ));
    }
    // queue_data of its last cycle: one done, one still being created when
    // it stopped (not in backup_data), one that never got a backup.
    for (backup, status, volume) in [(id(3), 2, "vol-a"), (id(6), 1, "vol-c"), ("NULL", 0, "vol-b")] {
        sql.push_str(&format!(
            "INSERT INTO queue_data (created_at, backup_id, project_id, volume_id, backup_status, instance_id, \
             volume_name, instance_name, incremental, reason) VALUES ('{}', '{backup}', '{project}', '{}', {status}, \
             '{server}', '{volume}', 'web', 0, NULL);\n",
            at(0),
            vol(volume)
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO report_timestamp (id, created_at, sender) VALUES ('{}', '{}', 'staffeln@example.org');\n",
        uuid::Uuid::new_v4(),
        at(0)
    ));
    db.db().conn().unwrap().batch_execute(&sql).unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(db: &TestDb, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(&mut *db.db().conn().unwrap()).unwrap().n
}

fn manage_db_upgrade(dir: &Path, url: &str) -> (bool, String, String) {
    let conf = dir.join("staffeln.conf");
    std::fs::write(&conf, format!("[database]\nconnection = {url}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_staffeln-manage"))
        .arg("--config-file")
        .arg(&conf)
        .args(["db", "upgrade"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn openstack(cloud: &FakeCloud) -> OpenStack {
    let c = cloud.credentials("staffeln").unwrap();
    OpenStack::connect(&Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: StdDuration::from_millis(20),
        retry_timeout: StdDuration::from_secs(30),
        ..Settings::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_upgrade_adopts_the_original_staffelns_backups_and_retention_rotates_them() {
    let opts = FakeOptions {
        delete_duration: StdDuration::ZERO,
        auto_tick: Some(StdDuration::from_millis(20)),
        ..FakeOptions::default()
    };
    let cloud = FakeCloud::start(scenario(), opts).unwrap();
    let db = TestDb::mysql_empty();
    db.db().conn().unwrap().batch_execute(FIXTURE).unwrap();
    seed_original(&db, &cloud);
    // A conductor refuses the original's database until it is upgraded.
    assert!(migrate::ensure_current(db.db()).is_err());

    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = manage_db_upgrade(dir.path(), &db.url);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "found the original Staffeln's schema (alembic revision 5b2e78435231): its tables \
                         backup_data, queue_data, report_timestamp, alembic_version are kept as staffeln_py_*"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("adopted 6 backups of the original Staffeln (5 recorded, 1 still being created when it stopped)"),
        "{stdout}"
    );
    migrate::ensure_current(db.db()).unwrap();
    // Nothing was lost: the original's tables are kept, row for row.
    let tables = db.tables();
    for (table, rows) in [("backup_data", 5), ("queue_data", 3), ("report_timestamp", 1), ("alembic_version", 1)] {
        let kept = format!("staffeln_py_{table}");
        assert!(tables.contains(&kept), "{kept} in {tables:?}");
        assert_eq!(count(&db, &format!("SELECT COUNT(*) AS n FROM {kept}")), rows, "{kept}");
    }
    let adopted = backups::adopted_ids(&mut db.db().conn().unwrap()).unwrap();
    assert_eq!(adopted.len(), 6, "{adopted:?}");
    let row = backups::get(&mut db.db().conn().unwrap(), id(2)).unwrap().expect("adopted row");
    assert_eq!((row.origin.as_str(), row.incremental, row.backup_completed), ("staffeln-py", true, 1));
    assert_eq!(row.instance_id, cloud.control().server_id("web").unwrap());
    let in_flight = backups::get(&mut db.db().conn().unwrap(), id(6)).unwrap().expect("adopted in-flight row");
    assert_eq!(in_flight.backup_completed, 0, "not known to be complete");
    // A second run adopts nothing twice.
    let (ok, again, _) = manage_db_upgrade(dir.path(), &db.url);
    assert!(ok && again.contains("database schema already at") && !again.contains("adopted"), "{again}");
    assert_eq!(backups::adopted_ids(&mut db.db().conn().unwrap()).unwrap().len(), 6);

    // Retention with the defaults (retention_time 2w3d) rotates them as Staffeln's own.
    let settings = ConductorSettings::from_config(&Config::default()).unwrap();
    let conductor = Conductor::new("host-a:1".into(), db.db().clone(), openstack(&cloud).await, settings);
    let run = conductor.run_retention(&conductor.settings.retention, true).await.unwrap().expect("ran");
    assert_eq!((run.to_delete, run.deleted, run.failed), (3, 3, 0), "{run:?}");
    cloud.control().settle(); // the last wave's deletes, accepted, finish
    let left: BTreeMap<String, String> =
        (1..=7).filter_map(|n| cloud.control().backup_status(id(n)).map(|s| (id(n).to_owned(), s))).collect();
    let expected: BTreeMap<String, String> =
        [3, 4, 6, 7].iter().map(|n| (id(*n).to_owned(), "available".to_owned())).collect();
    assert_eq!(
        left, expected,
        "expired full and incremental and the failed one deleted; recent, last and the tenant's kept"
    );
    let decisions = conductor.retention_preview(&conductor.settings.retention, None).await.unwrap();
    let reason = |n: usize| decisions.iter().find(|d| d.backup_id.as_str() == id(n)).map(|d| d.reason.code());
    assert_eq!(reason(4), Some("last_successful"));
    assert_eq!(reason(7), Some("not_staffelns"));

    // The guard refuses tenants on the adopted backups, allows their own.
    let c = cloud.admin();
    let cloud_settings = Settings {
        auth_url: Some(c.auth_url),
        username: Some(c.username),
        password: Some(Secret::new(c.password)),
        project_name: Some(c.project_name),
        ..Settings::default()
    };
    let api_settings = ApiSettings {
        host: "127.0.0.1".into(),
        port: 0,
        cache_ttl: StdDuration::ZERO,
        openstack: Some(cloud_settings),
        ..ApiSettings::default()
    };
    let api = api::start(api_settings, db.db().clone()).await.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let guard = |backup: &'static str| {
        let (http, url) = (http.clone(), format!("{}/v1/backup?backup_id={backup}", api.url(false)));
        async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for n in [3, 4, 6] {
        assert_eq!(guard(id(n)).await, (401, "False".to_owned()), "adopted backup {n}");
    }
    assert_eq!(guard(id(7)).await, (200, "True".to_owned()), "the tenant's own");
    api.stop().await.unwrap();
}

/// The original's `create_schema` alone (no alembic history, its final
/// models: integer ids everywhere), on SQLite: set aside and adopted too.
#[test]
fn a_database_made_by_the_originals_create_schema_is_adopted_on_sqlite() {
    let db = TestDb::sqlite_empty();
    db.db()
        .conn()
        .unwrap()
        .batch_execute(
            "CREATE TABLE backup_data (created_at DATETIME, updated_at DATETIME, id INTEGER NOT NULL PRIMARY KEY, \
               backup_id VARCHAR(100), project_id VARCHAR(100), volume_id VARCHAR(100), instance_id VARCHAR(100), \
               backup_completed INTEGER, incremental BOOLEAN, CONSTRAINT unique_backup0uuid UNIQUE (backup_id));
             CREATE TABLE queue_data (created_at DATETIME, updated_at DATETIME, id INTEGER NOT NULL PRIMARY KEY, \
               backup_id VARCHAR(100), project_id VARCHAR(100), volume_id VARCHAR(100), backup_status INTEGER, \
               instance_id VARCHAR(100), volume_name VARCHAR(100), instance_name VARCHAR(100), incremental BOOLEAN, \
               reason VARCHAR(255));
             CREATE TABLE report_timestamp (created_at DATETIME, updated_at DATETIME, id INTEGER NOT NULL PRIMARY KEY, \
               sender VARCHAR(255));
             INSERT INTO backup_data (created_at, backup_id, project_id, volume_id, instance_id, backup_completed, \
               incremental) VALUES ('2026-10-01 02:00:00', 'b-1', 'p1', 'v1', 's1', 1, 0), \
               (NULL, 'b-2', 'p1', 'v1', NULL, 1, NULL);
             INSERT INTO queue_data (backup_id, project_id, volume_id, backup_status, instance_id) VALUES \
               ('b-1', 'p1', 'v1', 2, 's1'), ('NULL', 'p1', 'v2', 0, 's1'), ('b-3', 'p1', 'v2', 1, 's1');",
        )
        .unwrap();
    let upgrade = migrate::upgrade_report(db.db()).unwrap();
    let found = upgrade.legacy.expect("the original's schema");
    assert_eq!((found.alembic_version, found.tables.len()), (None, 3));
    let adoption = upgrade.adoption.expect("adopted");
    assert_eq!((adoption.backups, adoption.in_flight, adoption.adopted_total), (2, 1, 3));
    assert_eq!(adoption.set_aside.len(), 3);
    let mut conn = db.db().conn().unwrap();
    let b2 = backups::get(&mut conn, "b-2").unwrap().expect("b-2");
    assert_eq!((b2.instance_id.as_str(), b2.incremental, b2.origin.as_str()), ("", false, "staffeln-py"));
    let b1 = backups::get(&mut conn, "b-1").unwrap().expect("b-1");
    assert_eq!(b1.created_at.to_string(), "2026-10-01 02:00:00", "the original's time is kept");
    assert!(db.tables().contains("staffeln_py_report_timestamp"));
    let again = migrate::upgrade_report(db.db()).unwrap();
    assert_eq!((again.legacy, again.applied.len()), (None, 0));
    assert_eq!(again.adoption.map(|a| (a.backups, a.in_flight, a.adopted_total)), Some((0, 0, 3)));
}

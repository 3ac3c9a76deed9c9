//! Restores and restore drills (issue 19) against real Cinder: `staffeln
//! restore` restores Staffeln's backup into a new volume of the backup's
//! project (and refuses the tenant's own backup), and a scheduled drill
//! round restores the backup into a scratch volume, sees it `available`
//! with the backup's size, deletes it and records the drill, leaving the
//! tenant's volumes and backups as they were.

use std::time::Duration;

use serde_json::Value;

use crate::cloud::{Os, Staffeln, Tenant, serial, task_for, wait_until};
use crate::scenarios::{api_get, text};

/// What Cinder says when a restore's new volume is over the volumes quota.
const QUOTA_REFUSED: &str = "exceeded for quota 'volumes'";

/// `(id, name, status)` of a volume or backup.
type Row = (String, String, String);

/// The tenant's volumes and backups, sorted.
fn inventory(t: &Tenant) -> (Vec<Row>, Vec<Row>) {
    let row = |v: &Value| (text(&v["ID"]).to_owned(), text(&v["Name"]).to_owned(), text(&v["Status"]).to_owned());
    let mut volumes: Vec<_> =
        Os::admin().json(&["volume", "list", "--project", &t.project_id]).as_array().unwrap().iter().map(row).collect();
    let mut backups: Vec<_> = t.backups().iter().map(row).collect();
    volumes.sort();
    backups.sort();
    (volumes, backups)
}

#[test]
fn staffeln_restores_its_backup_for_the_tenant_and_a_drill_restores_checks_deletes_and_records() {
    let _one = serial();
    let t = Tenant::new("drill");
    t.grant_staffeln();
    let boot = t.volumes(&[(Some("boot"), true)]).remove(0);
    let server = t.server("app", &boot);
    t.user.run(&["server", "set", "--property", "__staffeln_backup=true", &server]);
    let bytes = b"what the restore must bring back".repeat(4000);
    t.write_volume(&boot, 3 << 20, &bytes);
    // The tenant's own backup: neither restored by Staffeln nor drilled.
    let manual = t.user.id(&["volume", "backup", "create", "--force", "--name", "mine", &boot]);
    assert_eq!(t.wait_backup(&manual)["status"], "available");

    let started = std::time::Instant::now();
    let staffeln = Staffeln::start("", false);
    staffeln.backup_cycle();
    let tasks = staffeln.tasks();
    let done: Vec<&Value> = task_for(&tasks, &t, "boot").into_iter().filter(|t| t["state"] == "done").collect();
    assert_eq!(done.len(), 1, "{tasks:#?}");
    let backup = text(&done[0]["backup_id"]).to_owned();

    // `staffeln restore` refuses a backup Staffeln did not make.
    let refused = staffeln.cli_output(&["restore", &manual]);
    let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(!refused.status.success(), "restored the tenant's own backup: {said}");
    assert!(said.contains(&manual), "{said}");

    // … and restores Staffeln's into a new volume of the tenant's project.
    let r = staffeln.cli(&["restore", &backup, "--volume-name", "restored-by-staffeln"]);
    assert_eq!(r["backup_id"], backup.as_str(), "{r}");
    assert_eq!(r["project_id"], t.project_id.as_str(), "{r}");
    assert_eq!(r["volume_name"], "restored-by-staffeln", "{r}");
    let restored = text(&r["volume_id"]).to_owned();
    let v = wait_until("the restored volume available", Duration::from_secs(120), || {
        let v = t.user.json(&["volume", "show", &restored]);
        assert!(!text(&v["status"]).starts_with("error"), "{v}");
        (v["status"] == "available").then_some(v)
    });
    assert_eq!((v["name"].as_str(), v["size"].as_u64()), (Some("restored-by-staffeln"), Some(1)), "{v}");
    let admin_view = Os::admin().json(&["volume", "show", &restored]);
    assert_eq!(admin_view["os-vol-tenant-attr:tenant_id"], t.project_id.as_str(), "{admin_view}");
    assert_eq!(t.read_volume(&restored, 3 << 20, bytes.len()), bytes);
    wait_until("the backup available again after the restore", Duration::from_secs(60), || {
        (t.backup(&backup)["status"] == "available").then_some(())
    });

    // The project's volume quota used up: Cinder refuses the new volume, and
    // `staffeln restore` says why.
    let used = t.user.json(&["volume", "list"]).as_array().map_or(0, Vec::len).to_string();
    Os::admin().run(&["quota", "set", "--volumes", &used, &t.project_id]);
    let over = staffeln.cli_output(&["restore", &backup]);
    let said = format!("{}{}", String::from_utf8_lossy(&over.stdout), String::from_utf8_lossy(&over.stderr));
    println!("staffeln restore over the volume quota: {said}");
    assert!(!over.status.success(), "{said}");
    assert!(said.contains(QUOTA_REFUSED), "{said}");
    drop(staffeln);

    // A drill round, on the schedule the option sets: the first one runs
    // `restore_drill_period` after the conductor starts. Still over the
    // volume quota, it fails and says why; with room again, the next passes.
    let before = inventory(&t);
    let staffeln = Staffeln::start("restore_drill_period = 15\n", true);
    let drilled_at = std::time::Instant::now();
    let list = || {
        let list = staffeln.cli(&["restore-drill", "list", "--project", &t.project_id]);
        list.as_array().cloned().unwrap_or_default()
    };
    let first =
        wait_until("a restore drill of the tenant's backup recorded", Duration::from_secs(240), || list().pop());
    println!("restore drill over the volume quota: {first:#}");
    assert_eq!(first["result"], "failed", "{first:#}");
    assert!(text(&first["message"]).contains(QUOTA_REFUSED), "{first:#}");
    assert!(first["scratch_volume_id"].is_null(), "no scratch volume made: {first:#}");
    Os::admin().run(&["quota", "set", "--volumes", "10", &t.project_id]);
    let drills = wait_until("a restore drill passed", Duration::from_secs(240), || {
        let rows = list();
        (rows.first()?["result"] == "passed").then_some(rows)
    });
    let (_, metrics) = api_get("/metrics", "none");
    drop(staffeln);
    let round = drilled_at.elapsed();
    let failed = drills.len() - 1;
    assert!(drills[1..].iter().all(|d| d["result"] == "failed"), "{drills:#?}");
    let d = &drills[0];
    assert_eq!(d["result"], "passed", "{d:#}");
    assert_eq!((d["backup_id"].as_str(), d["volume_id"].as_str()), (Some(backup.as_str()), Some(boot.as_str())));
    assert!(d["message"].is_null() || d["message"] == "", "{d:#}");
    let secs = d["duration_secs"].as_i64().unwrap_or(-1);
    assert!(secs >= 0, "{d:#}");
    let scratch = text(&d["scratch_volume_id"]).to_owned();
    assert!(!scratch.is_empty() && scratch != boot && scratch != restored, "{d:#}");
    assert!(metrics.contains("staffeln_restore_drills{result=\"passed\"} 1"), "{metrics}");
    assert!(metrics.contains(&format!("staffeln_restore_drills{{result=\"failed\"}} {failed}")), "{metrics}");
    assert!(metrics.contains(&format!("staffeln_restore_drill_last_duration_seconds {secs}")), "{metrics}");
    println!("restore drill on real Cinder: {secs} s (recorded); round seen {round:?} after the conductor started");

    // The scratch volume is gone; the tenant's volumes and backups are as they were.
    wait_until("the scratch volume deleted", Duration::from_secs(60), || {
        (!Os::admin().try_run(&["volume", "show", &scratch]).status.success()).then_some(())
    });
    assert_eq!(inventory(&t), before, "the drill left the tenant's volumes and backups as they were");
    println!("scenario: {:?} from the first cycle", started.elapsed());
}

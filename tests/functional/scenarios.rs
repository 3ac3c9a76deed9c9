//! The scenarios: tenants use the real `openstack` CLI against real Keystone,
//! Nova and Cinder; Staffeln runs as its own binaries with a MariaDB database
//! per scenario; Cinder's `backup:delete` asks staffeln-api exactly as the
//! devstack plugin configures it.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use crate::cloud::{Os, Staffeln, Tenant, env, serial, task_for, wait_until};

const FLAG: &str = "__staffeln_backup=true";

/// `GET path` on staffeln-api with a token; (status, body).
pub(crate) fn api_get(path: &str, token: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", env().guard_port)).expect("staffeln-api answers");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

pub(crate) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A server's metadata (`openstack server show` properties).
fn server_properties(os: &Os, server: &str) -> Value {
    os.json(&["server", "show", server])["properties"].clone()
}

/// The backup ids of finished tasks of the tenant's volume `label`, oldest first.
fn done_backups(tasks: &[Value], tenant: &Tenant, label: &str) -> Vec<String> {
    let mut rows: Vec<&Value> = task_for(tasks, tenant, label).into_iter().filter(|t| t["state"] == "done").collect();
    rows.sort_by_key(|t| text(&t["finished_at"]).to_owned());
    rows.iter().map(|t| text(&t["backup_id"]).to_owned()).collect()
}

#[test]
fn one_cycle_backs_up_flagged_servers_respects_skip_quota_and_roles_and_lists_for_the_tenant() {
    let _one = serial();
    // A tenant with a flagged server (boot, named data, unnamed and
    // skip-flagged volumes attached through Nova) and an unflagged server.
    let t = Tenant::new("flagged");
    t.grant_staffeln();
    let v = t.volumes(&[
        (Some("boot"), true),
        (Some("data"), false),
        (None, false),
        (Some("scratch"), false),
        (Some("other-boot"), true),
    ]);
    let (boot, data, unnamed, skipped, other_boot) = (&v[0], &v[1], &v[2], &v[3], &v[4]);
    t.user.run(&["volume", "set", "--property", "skip-volume-backup=true", skipped]);
    let server = t.server("web", boot);
    t.attach(&server, &[data, unnamed, skipped]);
    t.user.run(&["server", "set", "--property", FLAG, &server]);
    let other = t.server("unflagged", other_boot);
    // The tenant's own backup, made before Staffeln runs.
    let manual = t.user.id(&["volume", "backup", "create", "--force", "--name", "mine", data]);
    assert_eq!(t.wait_backup(&manual)["status"], "available");

    // A project at its backups quota, and one where the service user has no role.
    let full = Tenant::new("quota");
    full.grant_staffeln();
    let full_boot = full.volumes(&[(Some("boot"), true)]).remove(0);
    let full_server = full.server("db", &full_boot);
    full.user.run(&["server", "set", "--property", FLAG, &full_server]);
    let theirs = full.user.id(&["volume", "backup", "create", "--force", &full_boot]);
    full.wait_backup(&theirs);
    Os::admin().run(&["quota", "set", "--backups", "1", &full.project_id]);
    let norole = Tenant::new("norole");
    let norole_boot = norole.volumes(&[(Some("boot"), true)]).remove(0);
    let norole_server = norole.server("app", &norole_boot);
    norole.user.run(&["server", "set", "--property", FLAG, &norole_server]);

    let staffeln = Staffeln::start("", true);
    // The RPC trigger from the CLI plans the cycle; the conductor runs it.
    let triggered = staffeln.backup_cycle();
    assert_eq!(triggered["planned"], true, "{triggered}");
    let tasks = staffeln.tasks();

    // Boot, data and unnamed volumes: one full backup each, owned by the tenant's project.
    for (volume, label) in [(boot, "boot"), (data, "data"), (unnamed, unnamed.as_str())] {
        let name_prefix = format!("{label}-");
        let ids = done_backups(&tasks, &t, label);
        assert_eq!(ids.len(), 1, "one backup of {volume}: {tasks:#?}");
        let b = t.backup(&ids[0]);
        assert_eq!(b["status"], "available", "{b}");
        assert_eq!(b["is_incremental"], false, "{b}");
        assert!(text(&b["name"]).starts_with(&name_prefix), "name {} of {volume}", b["name"]);
        assert_eq!(b["metadata"]["__automated_backup"], "True", "{b}");
    }
    let own: Vec<String> = t.backups().iter().map(|b| text(&b["ID"]).to_owned()).collect();
    assert_eq!(own.len(), 4, "three automated backups and the manual one, in the tenant's project: {own:?}");

    // Nothing of the skip-flagged volume nor of the unflagged server.
    assert!(done_backups(&tasks, &t, "scratch").is_empty(), "{tasks:#?}");
    assert!(task_for(&tasks, &t, "other-boot").is_empty(), "{tasks:#?}");
    assert!(t.backups().iter().all(|b| b["Volume"] != "scratch" && b["Volume"] != "other-boot"));

    // The project at its quota: not attempted (Cinder would refuse with 413),
    // reported as a failure with Cinder's numbers, nothing created.
    let q = task_for(&tasks, &full, "boot");
    assert_eq!(q.len(), 1, "{tasks:#?}");
    assert_eq!(q[0]["state"], "failed", "{:#?}", q[0]);
    assert!(q[0]["backup_id"].is_null(), "{:#?}", q[0]);
    assert!(text(&q[0]["reason"]).contains("backups quota exceeded"), "{:#?}", q[0]);
    assert_eq!(full.backups().len(), 1);

    // The project without a role: failed, saying so; nothing created.
    let n = task_for(&tasks, &norole, "boot");
    assert_eq!(n.len(), 1, "{tasks:#?}");
    assert_eq!(n[0]["state"], "failed", "{:#?}", n[0]);
    assert!(text(&n[0]["reason"]).contains("no role in project"), "{:#?}", n[0]);
    assert!(norole.backups().is_empty());

    // last-backup-time on the flagged server only.
    let props = server_properties(&t.user, &server);
    let at = text(&props["last-backup-time"]);
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "last-backup-time {at:?} in {props}");
    assert!(server_properties(&t.user, &other).get("last-backup-time").is_none());

    // The listing API with the tenant's token: its automated backups, not its own.
    let token = t.user.run(&["token", "issue", "-f", "value", "-c", "id"]);
    let (status, body) = api_get("/v1/backups", token.trim());
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    let mut ids: Vec<&str> = listed["backups"].as_array().unwrap().iter().map(|b| text(&b["id"])).collect();
    ids.sort_unstable();
    let mut want: Vec<String> =
        ["boot", "data", unnamed.as_str()].iter().flat_map(|v| done_backups(&tasks, &t, v)).collect();
    want.sort_unstable();
    assert_eq!(ids, want, "{body}");
    let (status, _) = api_get("/v1/backups", "not-a-token");
    assert_eq!(status, 401);
}

#[test]
fn two_cycles_make_a_full_and_an_incremental_that_the_tenant_restores_byte_for_byte() {
    let _one = serial();
    let t = Tenant::new("chain");
    t.grant_staffeln();
    let v = t.volumes(&[(Some("boot"), true), (Some("data"), false)]);
    let (boot, data) = (&v[0], &v[1]);
    let server = t.server("db", boot);
    t.attach(&server, &[data]);
    t.user.run(&["server", "set", "--property", FLAG, &server]);
    let staffeln = Staffeln::start("full_backup_depth = 2\n", false);

    let first: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    t.write_volume(data, 1 << 20, &first);
    staffeln.backup_cycle();
    let second = b"written between the full and the incremental".repeat(1000);
    t.write_volume(data, 700 << 20, &second);
    staffeln.backup_cycle();

    let tasks = staffeln.tasks();
    let chain = done_backups(&tasks, &t, "data");
    assert_eq!(chain.len(), 2, "{tasks:#?}");
    let (full, incr) = (t.backup(&chain[0]), t.backup(&chain[1]));
    assert_eq!(full["is_incremental"], false, "{full}");
    assert_eq!(incr["is_incremental"], true, "{incr}");
    assert_eq!(full["has_dependent_backups"], true, "{full}");

    // The tenant restores the incremental into a new volume: the bytes come back.
    let restored = t.user.json(&["volume", "backup", "restore", &chain[1], "restored"]);
    let new_volume = text(&restored["volume_id"]).to_owned();
    assert!(!new_volume.is_empty(), "{restored}");
    wait_until("the restore finished", Duration::from_secs(120), || {
        let v = t.user.json(&["volume", "show", &new_volume]);
        assert!(!text(&v["status"]).starts_with("error"), "{v}");
        (v["status"] == "available").then_some(())
    });
    assert_eq!(t.read_volume(&new_volume, 1 << 20, first.len()), first);
    assert_eq!(t.read_volume(&new_volume, 700 << 20, second.len()), second);
    assert_eq!(t.read_volume(&new_volume, 0, 4096), vec![0; 4096]);
    // The whole disk, not only the written places.
    let (a, b) = (t.volume_file(data), t.volume_file(&new_volume));
    assert_eq!(first_difference(&a, &b), None, "{} and {} differ", a.display(), b.display());
}

/// The offset of the first MiB where the two disks differ. A disk is its
/// file read up to the volume's size, zeros past the file's end: Cinder's
/// restore truncates a regular file after the last chunk it writes, which a
/// block device would ignore.
fn first_difference(a: &std::path::Path, b: &std::path::Path) -> Option<u64> {
    const SIZE: u64 = 1 << 30;
    let (mut fa, mut fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    while offset < SIZE {
        ba.fill(0);
        bb.fill(0);
        read_full(&mut fa, &mut ba);
        read_full(&mut fb, &mut bb);
        if ba != bb {
            return Some(offset);
        }
        offset += 1 << 20;
    }
    None
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

#[test]
fn retention_deletes_expired_automated_backups_through_cinders_policy_and_the_guard() {
    let _one = serial();
    let t = Tenant::new("retention");
    // As the devstack plugin does it: member in the tenant's project, nothing more.
    t.grant_staffeln();
    let v = t.volumes(&[(Some("boot"), true), (Some("notes"), false)]);
    let (boot, own_volume) = (&v[0], &v[1]);
    let server = t.server("app", boot);
    t.user.run(&["server", "set", "--property", FLAG, &server]);
    let staffeln = Staffeln::start("full_backup_depth = 1\nretention_time = 1s\n", true);

    // Full, incremental, full: the first chain can go, the newest cannot.
    for _ in 0..3 {
        staffeln.backup_cycle();
    }
    let tasks = staffeln.tasks();
    let ids = done_backups(&tasks, &t, "boot");
    assert_eq!(ids.len(), 3, "{tasks:#?}");
    let kinds: Vec<Value> = ids.iter().map(|id| t.backup(id)["is_incremental"].clone()).collect();
    assert_eq!(kinds, [false, true, false], "{ids:?}");
    let manual = t.user.id(&["volume", "backup", "create", "--name", "mine", own_volume]);
    t.wait_backup(&manual);

    // The tenant may not delete an automated backup: Cinder asks the guard, which refuses.
    let refused = t.user.try_run(&["volume", "backup", "delete", &ids[2]]);
    assert!(!refused.status.success(), "the tenant deleted an automated backup");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("403") || err.contains("Policy doesn't allow backup:delete"), "{err}");
    assert_eq!(t.backup(&ids[2])["status"], "available");

    // Retention, triggered over RPC, deletes the expired chain through the same policy.
    let run = staffeln.cli(&["--timeout", "300", "retention", "trigger"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<String> = t.backups().iter().map(|b| text(&b["ID"]).to_owned()).collect();
        if !left.contains(&ids[0]) && !left.contains(&ids[1]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention left the expired chain {:?} in {left:?}; it answered {run:#}",
            &ids[..2]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let left: Vec<String> = t.backups().iter().map(|b| text(&b["ID"]).to_owned()).collect();
    assert!(left.contains(&ids[2]), "the newest backup is kept: {left:?} after {run}");
    assert!(left.contains(&manual), "the tenant's own backup is not Staffeln's: {left:?}");

    // The tenant deletes its own backup: the guard allows it.
    t.user.run(&["volume", "backup", "delete", &manual]);
    wait_until("the tenant's backup deleted", Duration::from_secs(60), || {
        (!t.backups().iter().any(|b| b["ID"] == manual.as_str())).then_some(())
    });
}

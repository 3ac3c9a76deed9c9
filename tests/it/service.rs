//! The binaries' lifecycle as an operator meets it: one-line configuration
//! errors with exit status 2, oslo.log lines, SIGHUP reload, SIGTERM drain.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// kolla-ansible's fluentd multiline start pattern for oslo.log records.
const KOLLA_RECORD_START: &str = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.\d{3} \d+ \S+ \S+ \[.*\]";

fn bin(name: &str) -> PathBuf {
    match name {
        "staffeln-conductor" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-conductor")),
        "staffeln-api" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-api")),
        "staffeln-manage" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-manage")),
        other => panic!("unknown binary {other}"),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A config file in `dir` using SQLite in `dir` and logging to `dir/conductor.log`.
fn base_config(dir: &Path, extra: &str, cloud: Option<&staffeln_fakecloud::FakeCloud>) -> PathBuf {
    let conf = dir.join("staffeln.conf");
    let openstack = cloud.map_or(String::new(), |c| {
        let a = c.admin();
        format!(
            "[openstack]\nauth_url = {}\nusername = {}\npassword = {}\nproject_name = {}\n",
            a.auth_url, a.username, a.password, a.project_name
        )
    });
    write(
        &conf,
        &format!(
            "[DEFAULT]\nstate_path = {}\nlog_file = {}\ngraceful_shutdown_timeout = 5\n{extra}\n[database]\nconnection = sqlite:///$state_path/staffeln.sqlite\n{openstack}",
            dir.display(),
            dir.join("conductor.log").display()
        ),
    );
    conf
}

fn small_cloud() -> staffeln_fakecloud::FakeCloud {
    staffeln_fakecloud::FakeCloud::start(
        staffeln_fakecloud::Scenario::small(),
        staffeln_fakecloud::FakeOptions::default(),
    )
    .unwrap()
}

/// A daemon as systemd runs it: no terminal, stderr kept for assertions.
/// A daemon killed when dropped, also when its test fails.
struct Daemon(Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_daemon(name: &str, conf: &Path) -> Daemon {
    Daemon(
        Command::new(bin(name))
            .arg("--config-file")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn manage(conf: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("staffeln-manage")).arg("--config-file").arg(conf).args(args).output().unwrap()
}

/// Waits until `file` contains `needle`, returns the whole text.
fn wait_for_log(file: &Path, needle: &str) -> String {
    let deadline = Instant::now() + crate::support::HANG;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{needle:?} never appeared in {}:\n{text}", file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_malformed_config_stops_each_binary_with_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    write(&conf, "[conductor]\nbackup_service_period = ten\n");
    for name in ["staffeln-conductor", "staffeln-api", "staffeln-manage"] {
        let mut cmd = Command::new(bin(name));
        cmd.arg("--config-file").arg(&conf);
        if name == "staffeln-manage" {
            cmd.args(["db", "version"]);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name} must print exactly one line, got:\n{stderr}");
        let line = lines[0];
        for part in [conf.to_str().unwrap(), "conductor", "backup_service_period", "ten", "integer"] {
            assert!(line.contains(part), "{name}: {part:?} missing from {line:?}");
        }
        assert!(!line.contains("panicked") && !line.contains("backtrace"), "{line}");
    }
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    write(&conf, "[DEFAULT]\ndebug = true\n[conductor\n");
    let out = Command::new(bin("staffeln-conductor")).arg("--config-file").arg(&conf).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:3", conf.display())), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_missing_config_file_is_fatal() {
    let out =
        Command::new(bin("staffeln-conductor")).args(["--config-file", "/nonexistent/staffeln.conf"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/staffeln.conf"), "{stderr}");
}

#[test]
fn conductor_logs_oslo_lines_reloads_on_sighup_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = small_cloud();
    let conf = base_config(dir.path(), "debug = false", Some(&cloud));
    let out = manage(&conf, &["db", "upgrade"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = dir.path().join("conductor.log");
    let mut child = spawn_daemon("staffeln-conductor", &conf);
    let text = wait_for_log(&log, "staffeln-conductor started");
    let start = regex::Regex::new(KOLLA_RECORD_START).unwrap();
    for line in text.lines() {
        assert!(start.is_match(line), "not an oslo.log record start: {line:?}");
    }
    let pid = child.id().to_string();
    let started = text.lines().find(|l| l.contains("staffeln-conductor started")).unwrap();
    let fields: Vec<&str> = started.splitn(7, ' ').collect();
    assert_eq!(fields[2], pid, "process id in {started:?}");
    assert_eq!((fields[3], fields[4], fields[5]), ("INFO", "staffeln.service", "[-]"), "{started:?}");
    assert!(!text.contains(" DEBUG "), "debug is off:\n{text}");

    // Turn debug on and change a restart-only option, then SIGHUP.
    let conf2 = base_config(dir.path(), "debug = true\n[api]\nport = 9999", Some(&cloud));
    assert_eq!(conf, conf2);
    signal(&child, "HUP");
    // Each change is its own line; a loaded machine may show the file between them.
    wait_for_log(&log, "Option DEFAULT.debug changed from [False] to [True]");
    wait_for_log(&log, "api.port");

    // A broken file on reload keeps the old configuration.
    write(&conf, "[DEFAULT]\nbroken\n");
    signal(&child, "HUP");
    wait_for_log(&log, "configuration not reloaded");
    assert!(child.try_wait().unwrap().is_none(), "a bad reload must not stop the service");

    signal(&child, "TERM");
    let status = wait_exit(&mut child, crate::support::HANG);
    assert!(status.success(), "SIGTERM is a graceful stop: {status:?}");
    let text = wait_for_log(&log, "Caught SIGTERM");
    assert!(text.contains("staffeln-conductor stopped"), "{text}");
    let mut stderr = String::new();
    BufReader::new(child.stderr.take().unwrap()).lines().for_each(|l| stderr.push_str(&l.unwrap()));
    assert!(stderr.is_empty(), "nothing on stderr when logging to a file: {stderr}");
}

#[test]
fn log_dir_alone_names_the_file_after_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("staffeln.conf");
    write(
        &conf,
        &format!(
            "[DEFAULT]\nstate_path = {0}\nlog_dir = {0}/logs\n[database]\nconnection = sqlite:///$state_path/s.sqlite\n",
            dir.path().display()
        ),
    );
    let out = manage(&conf, &["db", "upgrade"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.path().join("logs/staffeln-manage.log")).unwrap();
    assert!(!text.is_empty());
}

/// `staffeln-manage db upgrade` creates the schema on an empty database given
/// as an OpenStack URL; `db version` then names the newest migration.
#[test]
fn manage_db_upgrade_creates_the_schema_on_empty_mariadb_and_sqlite() {
    use crate::support::TestDb;
    let head = staffeln::db::migrate::known_versions().pop().unwrap();
    for t in [TestDb::mysql_empty(), TestDb::sqlite_empty()] {
        let dir = tempfile::tempdir().unwrap();
        let url = t.url.replacen("mysql://", "mysql+pymysql://", 1);
        let url = if url.starts_with("mysql") { format!("{url}?charset=utf8&plugin=dbcounter") } else { url };
        let conf = dir.path().join("staffeln.conf");
        write(
            &conf,
            &format!(
                "[DEFAULT]\nuse_stderr = false\nlog_dir = {}\n[database]\nconnection = {url}\nmax_retries = 1\n",
                dir.path().display()
            ),
        );
        let version = manage(&conf, &["db", "version"]);
        assert!(version.status.success(), "{}: {}", t.label(), String::from_utf8_lossy(&version.stderr));
        assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), "empty", "{}", t.label());
        let out = manage(&conf, &["db", "upgrade"]);
        assert!(out.status.success(), "{}: {}", t.label(), String::from_utf8_lossy(&out.stderr));
        let tables = t.tables();
        for table in ["backup_data", "queue_data", "report_timestamp", "leases", "cycles"] {
            assert!(tables.contains(table), "{}: {table} missing: {tables:?}", t.label());
        }
        let version = manage(&conf, &["db", "version"]);
        assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), head, "{}", t.label());
        assert!(version.stderr.is_empty(), "{}: {}", t.label(), String::from_utf8_lossy(&version.stderr));
        let again = manage(&conf, &["db", "create_schema"]);
        assert!(again.status.success(), "{}", t.label());
        assert!(String::from_utf8_lossy(&again.stdout).contains("already at"), "{}", t.label());
    }
}

#[test]
fn a_daemon_refuses_an_outdated_schema_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = base_config(dir.path(), "", None);
    let out =
        Command::new(bin("staffeln-conductor")).arg("--config-file").arg(&conf).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("staffeln-manage db upgrade"), "{stderr}");
}

#[test]
fn manage_config_generate_writes_the_committed_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("sample.conf");
    let out = Command::new(bin("staffeln-manage"))
        .args(["config", "generate", "--output-file"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed =
        std::fs::read_to_string(crate::support::repo_root().join("etc/staffeln/staffeln.conf.sample")).unwrap();
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), committed, "regenerate with: tox -e genconfig");
}

/// README's first command: the demo runs end to end on embedded defaults.
#[test]
fn the_demo_backs_up_the_seeded_fleet_and_writes_digests() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("staffeln-manage")).args(["demo", "--dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("planned: 5 backups, 1 skipped, 0 waiting, 1 failed"), "{stdout}");
    assert!(stdout.contains("backups quota exceeded"), "finance is at its quota: {stdout}");
    assert_eq!(stdout.lines().filter(|l| l.contains(" done ")).count(), 5, "{stdout}");
    assert!(stdout.contains("cycle 2 triggered over RPC: 4 backups planned"), "{stdout}");
    assert!(stdout.contains("retention three days later: 5 kept, 8 deleted"), "{stdout}");
    assert!(
        stdout.contains("Staffeln's backup") && stdout.contains("\"False\": the user may not delete it"),
        "{stdout}"
    );
    assert!(stdout.contains("alice's own backup") && stdout.contains("\"True\": the user may delete it"), "{stdout}");
    // Retention deleted through Cinder's policy and the guard, with member tokens.
    assert!(stdout.contains("and role:member and http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("8 deletes allowed for Staffeln's service user"), "{stdout}");
    assert!(stdout.contains("0 refused; the guard asked Cinder 0 times"), "{stdout}");
    let tenant = |what: &str| stdout.lines().find(|l| l.contains(what)).unwrap_or_default().to_owned();
    assert!(
        tenant("alice deletes Staffeln's backup")
            .contains("refused: Policy doesn't allow backup:delete to be performed."),
        "{stdout}"
    );
    assert!(tenant("alice deletes her own backup").ends_with("accepted (202)"), "{stdout}");
    let digests: Vec<_> = std::fs::read_dir(dir.path().join("digests")).unwrap().collect();
    assert_eq!(digests.len(), 4, "three projects and the operator: {stdout}");
    let log = std::fs::read_to_string(dir.path().join("staffeln-demo.log")).unwrap();
    let record = regex::Regex::new(KOLLA_RECORD_START).unwrap();
    assert!(log.lines().next().is_some_and(|l| record.is_match(l)), "{log}");
    assert!(log.contains("Staffeln backups for project webshop"), "without a sender the digest goes to the log");
}

/// The daemon itself: cycles on its cron schedule against the emulated
/// cloud, backups completed and recorded, stopped by SIGTERM.
#[test]
fn the_conductor_daemon_runs_cycles_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = staffeln_fakecloud::Scenario::small();
    scenario.servers[0].metadata.insert("__staffeln_backup".into(), "true".into());
    if let Some(user) = scenario.users.iter_mut().find(|u| u.name == "staffeln") {
        user.roles.insert("demo".into(), vec!["admin".into()]);
    }
    let cloud = staffeln_fakecloud::FakeCloud::start(
        scenario,
        staffeln_fakecloud::FakeOptions { auto_tick: Some(Duration::from_millis(100)), ..Default::default() },
    )
    .unwrap();
    let extra = "[conductor]\nbackup_service_period = 0\nbackup_schedule = */2 * * * * *\npoll_interval = 1\nbackup_min_interval = 3600";
    let conf = base_config(dir.path(), extra, Some(&cloud));
    assert!(manage(&conf, &["db", "upgrade"]).status.success());
    let log = dir.path().join("conductor.log");
    let mut child = spawn_daemon("staffeln-conductor", &conf);
    wait_for_log(&log, "planned: 1 backups");
    wait_for_log(&log, "is available");
    // The stamp is logged after the backup is seen available.
    wait_for_log(&log, "last-backup-time");
    wait_for_log(&log, "finished: 1 done");
    // The next scheduled cycle skips the volume: backup_min_interval.
    wait_for_log(&log, "within backup_min_interval");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, crate::support::HANG).success());
    assert_eq!(cloud.control().backups_of(&cloud.control().volume_id("data-1").unwrap()).len(), 1);
}

/// Issue 15.3: a conductor stopped by SIGTERM gives up its leases, so that
/// another conductor (or an on-demand trigger) need not wait up to
/// leader_lease_time for them to expire.
#[test]
fn a_conductor_stopped_by_sigterm_releases_its_leases() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = staffeln_fakecloud::Scenario::small();
    scenario.servers[0].metadata.insert("__staffeln_backup".into(), "true".into());
    if let Some(user) = scenario.users.iter_mut().find(|u| u.name == "staffeln") {
        user.roles.insert("demo".into(), vec!["admin".into()]);
    }
    let opts = staffeln_fakecloud::FakeOptions { auto_tick: Some(Duration::from_millis(100)), ..Default::default() };
    let cloud = staffeln_fakecloud::FakeCloud::start(scenario, opts).unwrap();
    let conf = base_config(dir.path(), "[conductor]\npoll_interval = 1\nleader_lease_time = 3600", Some(&cloud));
    assert!(manage(&conf, &["db", "upgrade"]).status.success());
    let log = dir.path().join("conductor.log");
    let mut child = spawn_daemon("staffeln-conductor", &conf);
    wait_for_log(&log, "planned: 1 backups");
    wait_for_log(&log, "retention run");
    let url = format!("sqlite:///{}", dir.path().join("staffeln.sqlite").display());
    let db = staffeln::db::Database::connect(&staffeln::db::DbSettings::new(&url)).unwrap();
    let lease = |name: &str| staffeln::db::leases::get(&mut db.conn().unwrap(), name).unwrap().unwrap();
    let now = staffeln::db::models::now();
    for name in ["backup-cycle", "retention-cycle"] {
        assert!(lease(name).expires_at > now, "{name} is held while the conductor runs: {:?}", lease(name));
    }
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, crate::support::HANG).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let now = staffeln::db::models::now();
    for name in ["backup-cycle", "retention-cycle"] {
        let held = lease(name);
        assert!(held.expires_at < now, "{name} was released on stop (not held for an hour): {held:?}");
        assert!(text.contains(&format!("released lease {name}")), "{text}");
    }
}

/// `staffeln-manage ceph-compression apply|show` drive the `ceph` CLI named
/// by `[ceph_compression] ceph_cli`; an invalid combination stops with one
/// line and status 2 before any call.
#[test]
fn manage_ceph_compression_applies_through_the_ceph_cli_and_refuses_bad_combinations() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ceph = dir.path().join("ceph");
    write(
        &ceph,
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$(dirname \"$0\")/calls\"\n\
         case \"$*\" in *' get '*) printf '{\"pool\":\"backups\",\"pool_id\":3,\"%s\":\"zstd\"}\\n' \"$6\" ;; esac\n",
    );
    std::fs::set_permissions(&ceph, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.path().join("c.conf");
    let write_conf = |extra: &str| {
        write(&conf, &format!("[ceph_compression]\nceph_cli = {}\npool = backups\n{extra}", ceph.display()));
    };
    write_conf("mode = force\nalgorithm = zstd\n");
    let out = manage(&conf, &["ceph-compression", "apply"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert!(calls.contains("osd pool set backups compression_algorithm zstd"), "{calls}");
    assert!(calls.contains("osd pool set backups compression_mode force"), "{calls}");
    std::fs::remove_file(dir.path().join("calls")).unwrap();
    write_conf("mode = none\nalgorithm = zstd\n");
    let out = manage(&conf, &["ceph-compression", "apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("[ceph_compression]"), "{stderr}");
    assert!(!dir.path().join("calls").exists(), "no ceph call for a refused configuration");
}

/// Runs `name` on `conf` (with `args`) and returns its exit status and the
/// lines it printed on stderr.
fn run_once(name: &str, conf: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Command::new(bin(name)).arg("--config-file").arg(conf).args(args).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect();
    (out.status.code(), stderr)
}

/// A configuration that loads but holds a value the room cannot use (a time
/// zone that does not exist, a retention rule or schedule that does not
/// parse, a limit that is not a number, a database URL of no known kind)
/// stops the binary before anything starts, as a grammar error does: one
/// line `prog: [group] option = "value": what was expected`, exit status 2,
/// no log file opened, no database created.
#[test]
fn a_value_a_room_cannot_use_stops_the_binary_with_one_line_and_status_2() {
    type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "staffeln-conductor",
            &[],
            "[conductor]\nbackup_timezone = Mars/Olympus\n",
            "[conductor] backup_timezone = \"Mars/Olympus\": expected an IANA time zone",
        ),
        (
            "staffeln-conductor",
            &[],
            "[conductor]\nretention_time = 0d\n",
            "[conductor] retention_time = \"0d\": expected a duration such as 2w3d",
        ),
        (
            "staffeln-conductor",
            &[],
            "[conductor]\narchival_rules = daily:7,hourly:24\n",
            "[conductor] archival_rules = \"daily:7,hourly:24\": expected tier:count pairs",
        ),
        (
            "staffeln-conductor",
            &[],
            "[conductor]\nproject_volume_limits = p1:many\n",
            "[conductor] project_volume_limits = \"p1:many\": expected project_id:number",
        ),
        (
            "staffeln-conductor",
            &[],
            "[conductor]\nbackup_schedule = every night\n",
            "[conductor] backup_schedule = \"every night\": expected a cron expression such as \"0 2 * * *\": ",
        ),
        (
            "staffeln-conductor",
            &[],
            "[DEFAULT]\ntransport_url = amqp://guest:sekrit@broker/\n",
            "[DEFAULT] transport_url = \"amqp://guest:***@broker/\": unsupported scheme \"amqp\"",
        ),
        (
            "staffeln-api",
            &[],
            "[api]\nenabled_ssl = true\n",
            "[api] enabled_ssl = \"True\": HTTPS needs both ssl_cert_file and ssl_key_file",
        ),
        (
            "staffeln-api",
            &[],
            "[database]\nconnection = postgresql://staffeln:sekrit@db/staffeln\n",
            "[database] connection = \"postgresql://staffeln:***@db/staffeln\": ",
        ),
        (
            "staffeln-manage",
            &["db", "version"],
            "[database]\nconnection = postgresql://staffeln:sekrit@db/staffeln\n",
            "[database] connection = \"postgresql://staffeln:***@db/staffeln\": ",
        ),
    ];
    for (name, args, values, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("staffeln.conf");
        // The bad value comes last, so that it overrides the base file's.
        write(
            &conf,
            &format!(
                "[DEFAULT]\nstate_path = {}\nlog_file = {}\n[database]\nconnection = sqlite:///$state_path/staffeln.sqlite\n{values}",
                dir.path().display(),
                dir.path().join("staffeln.log").display()
            ),
        );
        let (code, lines) = run_once(name, &conf, args);
        assert_eq!(code, Some(2), "{name} with {values:?}: {lines:?}");
        assert_eq!(lines.len(), 1, "{name} with {values:?} must print exactly one line: {lines:?}");
        assert!(lines[0].starts_with(&format!("{name}: {expected}")), "{name} with {values:?}: {:?}", lines[0]);
        assert!(!lines[0].contains("sekrit"), "a password in {:?}", lines[0]);
        assert!(!dir.path().join("staffeln.log").exists(), "{name} with {values:?} started logging");
        assert!(!dir.path().join("staffeln.sqlite").exists(), "{name} with {values:?} touched the database");
    }
}

//! The functional environment as the scenarios meet it: the real cloud that
//! `tools/functional-env up` started (read from its `env.json`), the real
//! `openstack` CLI acting as the admin or as a tenant, tenants that clean up
//! after themselves, and Staffeln's own binaries run as daemons that die with
//! the test.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestDb, unique_name};

const UP: &str = "run `tools/functional-env up` (tools/run-tests does it; STAFFELN_SKIP_FUNCTIONAL=1 skips this tier)";

/// What `tools/functional-env up` wrote to `run/env.json`.
pub struct Env {
    pub facts: Value,
    pub openstack_cli: PathBuf,
    pub volume_dir: PathBuf,
    pub guard_port: u16,
    pub logs: PathBuf,
}

impl Env {
    pub fn auth_url(&self) -> &str {
        self.facts["auth_url"].as_str().unwrap_or_default()
    }
    pub fn password(&self) -> &str {
        self.facts["password"].as_str().unwrap_or_default()
    }
    pub fn flavor(&self) -> &str {
        self.facts["flavor"].as_str().unwrap_or_default()
    }
}

fn functional_home() -> PathBuf {
    std::env::var_os("STAFFELN_FUNCTIONAL_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/staffeln-functional")
    })
}

/// The running environment; fails the test loudly, naming the command to
/// run, when it is not up.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = functional_home().join("run/env.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("the functional environment is not up ({} cannot be read: {e}): {UP}", path.display())
        });
        let facts: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let port = |name: &str| facts["ports"][name].as_u64().unwrap_or(0) as u16;
        let keystone = port("keystone");
        if std::net::TcpStream::connect(("127.0.0.1", keystone)).is_err() {
            panic!("the functional environment is not up (Keystone does not answer on 127.0.0.1:{keystone}): {UP}");
        }
        Env {
            openstack_cli: PathBuf::from(facts["openstack_cli"].as_str().unwrap_or_default()),
            volume_dir: PathBuf::from(facts["volume_dir"].as_str().unwrap_or_default()),
            guard_port: port("guard"),
            logs: PathBuf::from(facts["logs"].as_str().unwrap_or_default()),
            facts,
        }
    })
}

/// The scenarios share one cloud, and a conductor looks at every project:
/// one scenario at a time (nextest runs them in the `functional` test group
/// of one thread; this lock does the same under `cargo test`).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Credentials for the `openstack` CLI.
#[derive(Clone)]
pub struct Os {
    vars: Vec<(&'static str, String)>,
    pub who: String,
}

impl Os {
    fn with(user: &str, password: &str, project: &str) -> Os {
        let env = env();
        Os {
            vars: vec![
                ("OS_AUTH_URL", env.auth_url().to_owned()),
                ("OS_USERNAME", user.to_owned()),
                ("OS_PASSWORD", password.to_owned()),
                ("OS_PROJECT_NAME", project.to_owned()),
                ("OS_USER_DOMAIN_NAME", "Default".to_owned()),
                ("OS_PROJECT_DOMAIN_NAME", "Default".to_owned()),
                ("OS_REGION_NAME", "RegionOne".to_owned()),
                ("OS_IDENTITY_API_VERSION", "3".to_owned()),
                ("OS_INTERFACE", "public".to_owned()),
            ],
            who: format!("{user} in {project}"),
        }
    }

    /// The cloud's admin (admin in the admin project).
    pub fn admin() -> Os {
        Os::with("admin", env().password(), "admin")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&env().openstack_cli);
        cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin").envs(self.vars.iter().map(|(k, v)| (*k, v)));
        cmd
    }

    /// Runs `openstack args…`, whatever comes of it.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", env().openstack_cli.display()))
    }

    /// Runs `openstack args…`; fails the test with stderr when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            out.status.success(),
            "`openstack {}` as {} failed:\n{}",
            args.join(" "),
            self.who,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `openstack args… -f json`, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let text = self.run(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("`openstack {}`: not JSON ({e}): {text}", all.join(" ")))
    }

    /// `openstack args… -f value -c id`.
    pub fn id(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-f", "value", "-c", "id"]);
        self.run(&all).trim().to_owned()
    }
}

/// Waits until `check` gives a value; fails naming `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?} (cloud logs: {})", env().logs.display());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A project with a user holding `member` in it, as a tenant of the cloud;
/// on drop everything in it (servers, backups, volumes), the user and the
/// project are deleted.
pub struct Tenant {
    pub name: String,
    pub project_id: String,
    pub user: Os,
    admin: Os,
}

impl Tenant {
    pub fn new(prefix: &str) -> Tenant {
        let admin = Os::admin();
        let name = unique_name(&format!("fn_{prefix}"));
        let project_id = admin.id(&["project", "create", "--domain", "Default", &name]);
        let password = format!("{name}-pw");
        admin.run(&["user", "create", "--domain", "Default", "--project", &name, "--password", &password, &name]);
        admin.run(&["role", "add", "--user", &name, "--project", &name, "member"]);
        let user = Os::with(&name, &password, &name);
        Tenant { name, project_id, user, admin }
    }

    /// Gives the Staffeln service user `member` here, as the devstack
    /// plugin's `create_staffeln_accounts` does for STAFFELN_BACKUP_PROJECTS.
    pub fn grant_staffeln(&self) {
        self.admin.run(&[
            "role",
            "add",
            "--user",
            "staffeln",
            "--user-domain",
            "Default",
            "--project",
            &self.project_id,
            "member",
        ]);
    }

    /// 1 GiB volumes, `(name or None, bootable)` each, all available; their ids.
    pub fn volumes(&self, specs: &[(Option<&str>, bool)]) -> Vec<String> {
        let ids: Vec<String> = specs
            .iter()
            .map(|(name, bootable)| {
                let mut args = vec!["volume", "create", "--size", "1"];
                if *bootable {
                    args.push("--bootable");
                }
                args.push(name.unwrap_or(""));
                self.user.id(&args)
            })
            .collect();
        self.wait_volumes(&ids, "available");
        ids
    }

    /// Waits until every volume of `ids` has `status` (one listing per look).
    pub fn wait_volumes(&self, ids: &[String], status: &str) {
        wait_until(&format!("volumes {ids:?} {status}"), Duration::from_secs(90), || {
            let list = self.user.json(&["volume", "list"]);
            let rows = list.as_array().cloned().unwrap_or_default();
            let mut all = true;
            for id in ids {
                let now = rows.iter().find(|v| v["ID"] == id.as_str()).map(|v| v["Status"].clone());
                let now = now.as_ref().and_then(Value::as_str).unwrap_or_default();
                assert!(!now.starts_with("error"), "volume {id} is {now}");
                all &= now == status;
            }
            all.then_some(())
        });
    }

    /// A server booted from `boot_volume`, no network, ACTIVE.
    pub fn server(&self, name: &str, boot_volume: &str) -> String {
        let flavor = env().flavor();
        self.user.id(&[
            "server",
            "create",
            "--flavor",
            flavor,
            "--volume",
            boot_volume,
            "--nic",
            "none",
            "--wait",
            name,
        ])
    }

    /// Attaches through Nova; the volumes end `in-use`.
    pub fn attach(&self, server: &str, volumes: &[&String]) {
        for volume in volumes {
            self.user.run(&["server", "add", "volume", server, volume]);
        }
        let ids: Vec<String> = volumes.iter().map(|v| (*v).clone()).collect();
        self.wait_volumes(&ids, "in-use");
    }

    /// The tenant's backups (its own view), newest first.
    pub fn backups(&self) -> Vec<Value> {
        let list = self.admin.json(&["volume", "backup", "list", "--project", &self.project_id, "--long"]);
        list.as_array().cloned().unwrap_or_default()
    }

    /// `openstack volume backup show` as the admin.
    pub fn backup(&self, id: &str) -> Value {
        self.admin.json(&["volume", "backup", "show", id])
    }

    /// Waits until the backup leaves `creating`; returns its record.
    pub fn wait_backup(&self, id: &str) -> Value {
        wait_until(&format!("backup {id} done"), Duration::from_secs(120), || {
            let b = self.backup(id);
            (b["status"] != "creating").then_some(b)
        })
    }

    /// The volume's sparse file (what the VM's disk holds).
    pub fn volume_file(&self, id: &str) -> PathBuf {
        env().volume_dir.join(format!("volume-{id}"))
    }

    /// Writes `bytes` into the volume at `offset`, as the VM would.
    pub fn write_volume(&self, id: &str, offset: u64, bytes: &[u8]) {
        use std::io::{Seek, SeekFrom, Write};
        let path = self.volume_file(id);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap_or_else(|e| {
            panic!("cannot open {}: {e}", path.display());
        });
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }

    pub fn read_volume(&self, id: &str, offset: u64, len: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.volume_file(id);
        let mut f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0; len];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    /// Deletes the servers (Nova finishes in the background) and the
    /// backups, newest first; the volumes stay (sparse files, attached until
    /// Nova is done), unflagged and in a deleted project: no later
    /// scenario's conductor looks at them.
    fn cleanup(&self) {
        let a = &self.admin;
        let ids = |args: &[&str]| -> Vec<String> {
            let out = a.try_run(args);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect()
        };
        let servers =
            ids(&["server", "list", "--all-projects", "--project", &self.project_id, "-f", "value", "-c", "ID"]);
        if !servers.is_empty() {
            let mut args = vec!["server", "delete"];
            args.extend(servers.iter().map(String::as_str));
            a.try_run(&args);
        }
        // Newest first (the listing's order): an incremental before its parent,
        // which Cinder refuses to delete until the incremental is gone.
        for pass in 0..2 {
            let backups = ids(&["volume", "backup", "list", "--project", &self.project_id, "-f", "value", "-c", "ID"]);
            if backups.is_empty() {
                break;
            }
            if pass > 0 {
                std::thread::sleep(Duration::from_secs(3));
            }
            let mut args = vec!["volume", "backup", "delete", "--force"];
            args.extend(backups.iter().map(String::as_str));
            a.try_run(&args);
        }
        a.try_run(&["user", "delete", &self.name]);
        a.try_run(&["project", "delete", &self.project_id]);
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---------------------------------------------------------------------------
// Staffeln's binaries.

fn binary(name: &str) -> PathBuf {
    match name {
        "staffeln-api" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-api")),
        "staffeln-conductor" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-conductor")),
        "staffeln-manage" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-manage")),
        "staffeln" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln")),
        other => panic!("{other} is not a Staffeln binary"),
    }
}

/// A daemon that is stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ")).rev().take(40).collect();
            eprintln!("--- last lines (DEBUG left out) of {} ({}):", self.name, self.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// staffeln-conductor (and staffeln-api on the port Cinder's policy asks)
/// with a MariaDB database of their own, configured as the devstack plugin
/// configures them, plus `[conductor]` options of the scenario.
pub struct Staffeln {
    // Dropped in this order: the daemons stop before their database goes.
    daemons: Vec<Daemon>,
    _db: TestDb,
    pub conf: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Staffeln {
    pub fn start(conductor_options: &str, api: bool) -> Staffeln {
        let env = env();
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::mysql_empty();
        let exchange = unique_name("staffeln_fn");
        let conf = dir.path().join("staffeln.conf");
        let text = format!(
            "[DEFAULT]\nhost = {exchange}\ndebug = true\ngraceful_shutdown_timeout = 5\n\
             transport_url = rabbit://guest:guest@{rabbit}/\ncontrol_exchange = {exchange}\n\
             rpc_response_timeout = 300\n\
             [database]\nconnection = {db}\n\
             [api]\nhost = 127.0.0.1\nport = {port}\n\
             [openstack]\nauth_url = {auth}\nusername = staffeln\npassword = {pw}\nuser_domain_name = Default\n\
             project_name = service\nproject_domain_name = Default\nregion_name = RegionOne\ninterface = public\n\
             [conductor]\ntopic = {exchange}\nbackup_service_period = 0\nretention_service_period = 0\n\
             backup_min_interval = 0\npoll_interval = 1\nreport_period = 86400000\n{conductor_options}\n",
            rabbit = crate::support::broker_addr(),
            db = db.url,
            port = env.guard_port,
            auth = env.auth_url(),
            pw = env.password(),
        );
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(binary("staffeln-manage"))
            .arg("--config-file")
            .arg(&conf)
            .args(["db", "upgrade"])
            .output()
            .unwrap();
        assert!(out.status.success(), "staffeln-manage db upgrade: {}", String::from_utf8_lossy(&out.stderr));
        let mut s = Staffeln { daemons: Vec::new(), _db: db, conf, dir };
        if api {
            s.spawn("staffeln-api");
            let port = env.guard_port;
            wait_until("staffeln-api listening", Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
            });
        }
        s.spawn("staffeln-conductor");
        wait_until("the conductor answering on its topic", Duration::from_secs(30), || {
            s.cli_output(&["--timeout", "2", "ping"]).status.success().then_some(())
        });
        s
    }

    fn spawn(&mut self, name: &'static str) {
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(binary(name))
            .arg("--config-file")
            .arg(&self.conf)
            .arg("--log-file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push(Daemon { name, child, log });
    }

    pub fn cli_output(&self, args: &[&str]) -> Output {
        Command::new(binary("staffeln")).arg("--config-file").arg(&self.conf).args(args).output().unwrap()
    }

    /// `staffeln args… -f json`, parsed; fails the test when it fails.
    pub fn cli(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.cli_output(&all);
        assert!(
            out.status.success(),
            "`staffeln {}` failed ({}):\n{}{}",
            all.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("`staffeln {}`: not JSON: {e}", all.join(" ")))
    }

    /// Every task, newest first.
    pub fn tasks(&self) -> Vec<Value> {
        self.cli(&["task", "list", "--limit", "1000"]).as_array().cloned().unwrap_or_default()
    }

    /// `staffeln backup trigger` (the conductor's RPC topic), then waits
    /// until no task of the cycle is planned, claimed or creating.
    pub fn backup_cycle(&self) -> Value {
        let triggered = self.cli(&["backup", "trigger"]);
        wait_until("the cycle's backups finished", Duration::from_secs(300), || {
            let busy = self
                .tasks()
                .into_iter()
                .filter(|t| matches!(t["state"].as_str(), Some("planned" | "claimed" | "creating")));
            (busy.count() == 0).then_some(())
        });
        triggered
    }
}

/// The tasks of the tenant's volume `label` (its name, or its id when it
/// has none), as `staffeln task list` shows them.
pub fn task_for<'a>(tasks: &'a [Value], tenant: &Tenant, label: &str) -> Vec<&'a Value> {
    tasks.iter().filter(|t| t["volume"] == label && t["project_id"] == tenant.project_id.as_str()).collect()
}

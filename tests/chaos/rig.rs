//! What one trial runs: the emulated cloud (in this process, so that its
//! whole state can be read afterwards), a database of its own, a real SMTP
//! sink (aiosmtpd from the test venv) and three real `staffeln-conductor`
//! processes. Every child process is killed when the rig is dropped, also
//! when a trial panics.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use staffeln::db::{Database, DbSettings};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Scenario};

/// Secrets the logs must never show.
pub const DB_PASSWORD: &str = "chaos-db-pw-5d1e";
pub const KEYSTONE_PASSWORD: &str = "chaos-keystone-pw-77c2";
pub const DB_USER: &str = "staffeln_chaos";
const DB_PREFIX: &str = "staffeln_chaos_";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let path = std::env::var_os("STAFFELN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-test/bin/python"));
    assert!(
        path.exists(),
        "the Python test venv is missing ({}): run `tools/setup-test-env` (aiosmtpd is the SMTP peer)",
        path.display()
    );
    path
}

/// `STAFFELN_TEST_MYSQL_URL` or the shared MariaDB, as root (no database).
pub fn mysql_server_url() -> String {
    std::env::var("STAFFELN_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

// ---------------------------------------------------------------------------
// The database.

/// A database of its own on a MariaDB server, reached by the conductors as a
/// user with a password (so that the logs can be searched for it); dropped
/// with the rig.
pub struct ChaosDb {
    admin: Database,
    pub name: String,
    /// `[database] connection` of the conductors.
    pub url: String,
    pub db: Database,
}

impl ChaosDb {
    /// `server` is a root URL without database, e.g. `mysql://root@127.0.0.1:3306`.
    pub fn create(server: &str, n: u32) -> ChaosDb {
        let settings = DbSettings { max_retries: 1, max_pool_size: 2, ..DbSettings::new(server) };
        let admin = Database::connect(&settings).and_then(|db| db.ping().map(|()| db)).unwrap_or_else(|e| {
            panic!(
                "cannot reach MariaDB at {}: {}: start MariaDB (tools/run-tests does) or set STAFFELN_TEST_MYSQL_URL",
                staffeln::db::url::mask_password(server),
                chain(&e)
            )
        });
        sweep_leftovers(&admin);
        let name = format!("{DB_PREFIX}{}_{n}", std::process::id());
        let sql = format!(
            "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4; \
             CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'; \
             CREATE USER IF NOT EXISTS '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}'; \
             GRANT ALL PRIVILEGES ON `{name}`.* TO '{DB_USER}'@'%'; \
             GRANT ALL PRIVILEGES ON `{name}`.* TO '{DB_USER}'@'localhost';"
        );
        admin.conn().unwrap_or_else(|e| panic!("MariaDB: {}", chain(&e))).batch_execute(&sql).unwrap_or_else(|e| {
            panic!("{sql}: {e}");
        });
        let host = server.split('@').next_back().unwrap_or("127.0.0.1:3306").trim_end_matches('/');
        let url = format!("mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{host}/{name}");
        let db = Database::connect(&DbSettings { max_retries: 3, max_pool_size: 2, ..DbSettings::new(&url) })
            .unwrap_or_else(|e| panic!("connect to the chaos database: {}", chain(&e)));
        staffeln::db::migrate::upgrade(&db).unwrap_or_else(|e| panic!("migrations: {}", chain(&e)));
        ChaosDb { admin, name, url, db }
    }

    /// Runs SQL as root (e.g. `KILL` of the conductors' sessions).
    pub fn admin_execute(&self, sql: &str) -> Result<(), String> {
        let mut conn = self.admin.conn().map_err(|e| chain(&e))?;
        conn.batch_execute(sql).map_err(|e| e.to_string())
    }

    /// Ids of the sessions the conductors hold on this database.
    pub fn sessions(&self) -> Vec<u64> {
        use diesel::{QueryableByName, RunQueryDsl, sql_types::BigInt};
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let Ok(mut conn) = self.admin.conn() else { return Vec::new() };
        let q =
            format!("SELECT CAST(ID AS SIGNED) AS id FROM information_schema.PROCESSLIST WHERE DB = '{}'", self.name);
        diesel::sql_query(q)
            .load::<Id>(&mut conn)
            .map(|rows| rows.into_iter().filter_map(|r| u64::try_from(r.id).ok()).collect())
            .unwrap_or_default()
    }
}

/// Drops the databases of chaos runs whose process is gone (killed before
/// its rig was dropped).
fn sweep_leftovers(admin: &Database) {
    use diesel::{QueryableByName, RunQueryDsl, sql_types::Text};
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let Ok(mut conn) = admin.conn() else { return };
    let q = "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'staffeln\\_chaos\\_%'";
    let names = diesel::sql_query(q).load::<Name>(&mut conn).unwrap_or_default();
    for Name { name } in names {
        let pid = name.strip_prefix(DB_PREFIX).and_then(|rest| rest.split('_').next()).unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
        }
    }
}

impl Drop for ChaosDb {
    fn drop(&mut self) {
        let _ = self.admin_execute(&format!("DROP DATABASE IF EXISTS `{}`", self.name));
    }
}

// ---------------------------------------------------------------------------
// The SMTP sink.

/// aiosmtpd saving each message as JSON (recipients, Message-ID, subject).
const SINK: &str = r#"
import email, json, logging, os, socket, sys, warnings
warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
from aiosmtpd.controller import Controller
port, out = int(sys.argv[1]), sys.argv[2]
class Sink:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.n += 1
        msg = email.message_from_bytes(envelope.original_content)
        rec = {"rcpt_tos": envelope.rcpt_tos, "message_id": msg.get("Message-ID"), "subject": msg.get("Subject")}
        path = os.path.join(out, "%05d.json" % Sink.n)
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".tmp", path)
        return "250 OK saved"
if port == 0:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
c = Controller(Sink(), hostname="127.0.0.1", port=port)
c.start()
print("READY", port, flush=True)
sys.stdin.read()
c.stop()
"#;

/// One mail as the sink saved it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub message_id: Option<String>,
}

pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl Smtp {
    pub fn start(dir: &Path, port: u16) -> Smtp {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut child = Command::new(python())
            .arg("-c")
            .arg(SINK)
            .arg(port.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd from the test venv: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let Some(port) = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aiosmtpd did not start (is aiosmtpd in the test venv?); it said {line:?}");
        };
        Smtp { child: Some(child), port, dir: dir.to_owned() }
    }

    /// SMTP down: the sink stops; [`Smtp::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        if self.child.is_none() {
            let again = Smtp::start(&self.dir, self.port);
            *self = again;
        }
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// The conductors.

/// One `staffeln-conductor` process slot: the process (when running), its
/// configuration, its stderr file.
pub struct Conductor {
    pub index: usize,
    pub host: String,
    pub conf: PathBuf,
    pub stderr: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    pub stopped: bool,
}

impl Conductor {
    pub fn new(index: usize, dir: &Path, conf_text: &str) -> Conductor {
        let host = format!("chaos-{index}");
        let conf = dir.join(format!("conductor-{index}.conf"));
        let log = dir.join(format!("conductor-{index}.log"));
        let text = format!("[DEFAULT]\nhost = {host}\nlog_file = {}\n{conf_text}", log.display());
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        Conductor {
            index,
            host,
            conf,
            stderr: dir.join(format!("conductor-{index}.stderr")),
            log,
            child: None,
            stopped: false,
        }
    }

    /// Starts the process; `checkpoint` arms `STAFFELN_TEST_CHECKPOINT`.
    pub fn start(&mut self, checkpoint: Option<&str>) {
        if self.child.is_some() {
            return;
        }
        let stderr: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap_or_else(|e| panic!("{}: {e}", self.stderr.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_staffeln-conductor"));
        cmd.arg("--config-file").arg(&self.conf).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        cmd.env_remove(staffeln::conductor::checkpoint::CHECKPOINT_ENV);
        if let Some(point) = checkpoint {
            cmd.env(staffeln::conductor::checkpoint::CHECKPOINT_ENV, point);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start staffeln-conductor: {e}"));
        self.child = Some(child);
        self.stopped = false;
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The process ended on its own: its status, and the slot is free.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(c.id().to_string()).status();
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stopped = false;
    }

    pub fn sigstop(&mut self) {
        self.signal("STOP");
        self.stopped = true;
    }

    pub fn sigcont(&mut self) {
        self.signal("CONT");
        self.stopped = false;
    }

    /// SIGTERM, then waits (bounded by `within`; SIGKILL after that).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.sigcont();
        self.signal("TERM");
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the process wrote: its log file and its stderr.
    pub fn output(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        text
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        self.sigcont();
        self.kill9();
    }
}

/// Appends a line to the trial's journal (what the harness did, and when).
pub fn journal(path: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{} {line}", chrono::Utc::now().format("%H:%M:%S%.3f"));
    }
}

// ---------------------------------------------------------------------------
// The cloud.

/// Names of what the scenario holds, for the checks.
pub struct World {
    pub projects: Vec<String>,
    /// Flagged volumes by name (these are due in the trial's cycle).
    pub flagged_volumes: Vec<String>,
    pub flagged_servers: Vec<String>,
    /// A volume of an unflagged server: never backed up.
    pub unflagged_volumes: Vec<String>,
}

/// Three projects; in each two flagged servers with two volumes each, one
/// unflagged server with one volume. Each flagged volume starts with an old
/// automated chain (a full and two incrementals, past `retention_time`), an old
/// automated backup in `error`, and a user's own backup.
pub fn scenario() -> (Scenario, World) {
    let mut projects = vec![serde_json::json!({"name": "admin"})];
    let mut users = vec![serde_json::json!({
        "name": "staffeln", "password": KEYSTONE_PASSWORD, "email": "staffeln@example.org",
        "default_project": "admin", "roles": {"admin": ["admin"]}
    })];
    let (mut servers, mut volumes, mut backups) = (Vec::new(), Vec::new(), Vec::new());
    let mut world = World {
        projects: Vec::new(),
        flagged_volumes: Vec::new(),
        flagged_servers: Vec::new(),
        unflagged_volumes: Vec::new(),
    };
    let old = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    for p in 0..3 {
        let project = format!("chaos-p{p}");
        projects.push(serde_json::json!({"name": project, "quota": {"backups": 200, "backup_gigabytes": 5000}}));
        users[0]["roles"][&project] = serde_json::json!(["admin"]);
        users.push(serde_json::json!({"name": format!("user-p{p}"), "password": format!("user-pw-{p}"),
            "email": format!("user-p{p}@example.org"), "roles": {project.clone(): ["member"]}}));
        world.projects.push(project.clone());
        for s in 0..2 {
            let server = format!("p{p}-s{s}");
            let vols: Vec<String> = (0..2).map(|v| format!("p{p}-s{s}-v{v}")).collect();
            servers.push(serde_json::json!({"project": project, "name": server,
                "metadata": {"__staffeln_backup": "true"}, "volumes": vols}));
            world.flagged_servers.push(server.clone());
            for v in &vols {
                volumes.push(serde_json::json!({"project": project, "name": v, "size": 1 + (p + s) % 3}));
                world.flagged_volumes.push(v.clone());
                let auto = serde_json::json!({"__automated_backup": "True"});
                backups.push(serde_json::json!({"volume": v, "name": format!("{v}-F0"), "created_at": old(40), "metadata": auto}));
                backups.push(serde_json::json!({"volume": v, "name": format!("{v}-I0"), "created_at": old(39),
                    "parent": format!("{v}-F0"), "metadata": auto}));
                backups.push(serde_json::json!({"volume": v, "name": format!("{v}-I1"), "created_at": old(38),
                    "parent": format!("{v}-I0"), "metadata": auto}));
                backups.push(serde_json::json!({"volume": v, "name": format!("{v}-E0"), "created_at": old(38),
                    "status": "error", "metadata": auto}));
                backups.push(serde_json::json!({"volume": v, "name": format!("{v}-user"), "created_at": old(40)}));
            }
        }
        let quiet = format!("p{p}-quiet");
        let qv = format!("p{p}-quiet-v0");
        servers.push(serde_json::json!({"project": project, "name": quiet, "volumes": [qv]}));
        volumes.push(serde_json::json!({"project": project, "name": qv, "size": 1}));
        world.unflagged_volumes.push(qv);
    }
    let json = serde_json::json!({"service_user": "staffeln", "projects": projects, "users": users,
        "servers": servers, "volumes": volumes, "backups": backups});
    let scenario: Scenario = serde_json::from_value(json).unwrap_or_else(|e| panic!("the chaos scenario: {e}"));
    (scenario, world)
}

pub fn start_cloud(scenario: Scenario, seed: u64) -> FakeCloud {
    let opts = FakeOptions {
        backup_duration: Duration::from_secs(2),
        delete_duration: Duration::from_secs(1),
        auto_tick: Some(Duration::from_millis(200)),
        seed,
        ..FakeOptions::default()
    };
    FakeCloud::start(scenario, opts).unwrap_or_else(|e| panic!("the emulator: {e}"))
}

/// Records the scenario's automated backups as Staffeln's own (rows in
/// `backup_data`), as an earlier run of Staffeln would have.
pub fn record_initial_rows(db: &Database, cloud: &FakeCloud) {
    let control = cloud.control();
    let mut conn = db.conn().unwrap_or_else(|e| panic!("{}", chain(&e)));
    for b in control.backups() {
        if !b.metadata.contains_key("__automated_backup") {
            continue;
        }
        let row = staffeln::db::models::NewBackup {
            backup_id: b.id.clone(),
            project_id: b.project_id.clone(),
            volume_id: b.volume_id.clone(),
            instance_id: String::new(),
            backup_completed: i32::from(b.status == "available"),
            incremental: b.parent_id.is_some(),
        };
        staffeln::db::backups::insert(&mut conn, &row).unwrap_or_else(|e| panic!("{}", chain(&e)));
    }
}

/// The conductors' common configuration (after `[DEFAULT] host/log_file`).
pub fn conductor_conf(
    cloud: &FakeCloud,
    db_url: &str,
    smtp_port: u16,
    state: &Path,
    extra: &BTreeMap<&str, String>,
) -> String {
    let a = cloud.admin();
    // With a broker: the RPC server, and the notifications through it.
    let (transport, notifications) = match extra.get("transport_url") {
        Some(t) => (format!("transport_url = {t}\n"), "[oslo_messaging_notifications]\ndriver = messagingv2\n"),
        None => (String::new(), ""),
    };
    format!(
        "state_path = {state}\ngraceful_shutdown_timeout = 5\n{transport}\
         [conductor]\nbackup_service_period = 3600\nbackup_min_interval = 3600\npoll_interval = 1\n\
         claim_timeout = 10\nleader_lease_time = 10\nretention_service_period = 4\nretention_time = 2w3d\n\
         full_backup_depth = 1\nreport_period = 3600\nretention_delete_timeout = 20s\n\
         [database]\nconnection = {db_url}\nmax_retries = -1\nretry_interval = 1\n\
         [notification]\nsender_email = staffeln@example.org\nsmtp_server_domain = 127.0.0.1\n\
         smtp_server_port = {smtp_port}\nsmtp_security = none\nproject_receiver_domain = example.org\nsmtp_timeout = 10\n\
         {notifications}[openstack]\nauth_url = {}\nusername = {}\npassword = {}\nproject_name = {}\n",
        a.auth_url,
        a.username,
        a.password,
        a.project_name,
        state = state.display(),
    )
}

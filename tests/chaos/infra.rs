//! The servers a trial runs on. Most trials use a database of their own on
//! the shared MariaDB; the trials that restart a server get the suite's own
//! `mariadbd` and RabbitMQ node, on other ports with their data under a
//! temporary directory, started on first use and stopped (with every child)
//! when the suite ends, so that a restart never touches a shared service.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::trial::Kind;

/// How long a server may take to come up (a loaded machine, InnoDB recovery).
const START_LIMIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} exited ({status}) before it listened on {port}; its log {}:\n{text}", log.display());
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port} within {START_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL to the child's process group (it was started as its leader).
/// The `--` matters: util-linux `kill -KILL -<n>` without it does not read
/// `-<n>` as a process group, and ends up signalling every process the
/// user may signal.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", group.as_str()]).status();
    let _ = child.kill();
    let _ = child.wait();
}

/// The suite's own mariadbd: `mariadb-install-db` into a temporary
/// directory, then `mariadbd` on a port of its own.
pub struct OwnMariadb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl OwnMariadb {
    pub fn start() -> OwnMariadb {
        let dir =
            tempfile::Builder::new().prefix("staffeln-chaos-mariadb-").tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"])
            .output()
            .unwrap_or_else(|e| panic!("mariadb-install-db is needed for the database restart trials: {e}"));
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = OwnMariadb { port: free_port(), dir, child: None };
        db.spawn();
        db
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = d.join("mariadbd.err");
        let mut child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", d.join("mariadbd.sock").display()))
            .arg(format!("--pid-file={}", d.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args(["--user=root", "--innodb-buffer-pool-size=32M", "--max-connections=200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mariadbd: {e}"));
        wait_for_port(self.port, "mariadbd", &mut child, &log);
        self.child = Some(child);
    }

    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// A crash and a restart: SIGKILL, then the same data directory and port.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
        self.spawn();
    }
}

impl Drop for OwnMariadb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }
}

/// The suite's own RabbitMQ node: its own node name, AMQP and distribution
/// ports, Mnesia and log directories under a temporary directory.
pub struct OwnRabbit {
    dir: tempfile::TempDir,
    port: u16,
    name: String,
    child: Option<Child>,
}

impl OwnRabbit {
    pub fn start() -> OwnRabbit {
        let dir = tempfile::Builder::new().prefix("staffeln-chaos-rabbit-").tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap_or_else(|e| panic!("{e}"));
        let mut rabbit = OwnRabbit {
            port: free_port(),
            name: format!("staffeln-chaos-{}@localhost", std::process::id()),
            dir,
            child: None,
        };
        rabbit.spawn();
        rabbit
    }

    fn spawn(&mut self) {
        let d: PathBuf = self.dir.path().to_owned();
        let log = d.join("server.out");
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("rabbit.pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rabbitmq-server: {e}"));
        wait_for_port(self.port, "rabbitmq-server", &mut child, &log);
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("rabbit://guest:guest@127.0.0.1:{}/", self.port)
    }

    /// A crash and a restart of the node (SIGKILL of its process group).
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
        self.spawn();
    }
}

impl Drop for OwnRabbit {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }
}

/// The servers of the suite, started when a trial first needs them.
#[derive(Default)]
pub struct Infra {
    mariadb: Option<OwnMariadb>,
    rabbit: Option<OwnRabbit>,
}

use std::os::unix::process::CommandExt;

impl Infra {
    /// Root URL (no database) of the MariaDB a trial of `kind` uses.
    pub fn mysql_server_url(&mut self, kind: Kind) -> String {
        if kind == Kind::DbRestart {
            self.mariadb.get_or_insert_with(OwnMariadb::start).root_url()
        } else {
            crate::rig::mysql_server_url()
        }
    }

    /// `[DEFAULT] transport_url` of a trial of `kind`, if it has one.
    pub fn transport_url(&mut self, kind: Kind) -> Option<String> {
        (kind == Kind::BrokerRestart).then(|| self.rabbit.get_or_insert_with(OwnRabbit::start).url())
    }

    pub fn restart_mariadb(&mut self) {
        if let Some(m) = &mut self.mariadb {
            m.restart();
        }
    }

    pub fn restart_rabbit(&mut self) {
        if let Some(r) = &mut self.rabbit {
            r.restart();
        }
    }
}

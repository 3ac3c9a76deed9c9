//! Fixtures shared by the integration tests: the Python peers' venv, the real
//! MariaDB server, unique names. A missing peer fails the test loudly with what
//! to start or install; nothing is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the source tree (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the test venv holding the stock OpenStack peers
/// (oslo.config, oslo.messaging, oslo.policy, python-openstackclient, aiosmtpd).
/// `STAFFELN_TEST_PYTHON` overrides; `tools/run-tests` creates `.venv-test/`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("STAFFELN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-test/bin/python"));
    assert!(
        path.exists(),
        "the Python test venv is missing ({}): run `tools/run-tests` once, or `tools/setup-test-env`, \
         or set STAFFELN_TEST_PYTHON to a python with oslo.config, oslo.messaging, oslo.policy, \
         python-openstackclient and aiosmtpd installed",
        path.display()
    );
    path
}

/// Runs `python -c script args…` and returns stdout; panics with stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test venv's python: {e}"));
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Path of the `bin/` directory of the test venv (for the `openstack` CLI).
pub fn venv_bin() -> PathBuf {
    python().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Server part of the MariaDB URL (no database): `STAFFELN_TEST_MYSQL_URL` or
/// `mysql://root@127.0.0.1:3306`.
pub fn mysql_server_url() -> String {
    std::env::var("STAFFELN_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

/// How long a test waits for something that must happen (a log line, a
/// process exit, a peer's answer) before calling it a hang. Only a bound:
/// waits end on the event itself, so a loaded machine makes a test slower,
/// never red.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// A name unique to this process and call, for databases, queues, exchanges.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------
// TestDb: one database per test, on MariaDB or in a SQLite file.

use std::collections::BTreeSet;
use std::sync::{Once, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use staffeln::db::{AnyConnection, Database, DbSettings, DbUrl};

const TEST_DB_PREFIX: &str = "staffeln_test_";

/// A database of its own for one test: `staffeln_test_<pid>_<epoch>_<n>` on the
/// MariaDB of [`mysql_server_url`] (dropped on `Drop`), or a SQLite file in a
/// temporary directory (removed on `Drop`). [`TestDb::mysql`] and
/// [`TestDb::sqlite`] hand it over migrated to head; the `_empty` variants do not.
pub struct TestDb {
    /// `[database] connection` for this database.
    pub url: String,
    db: Option<Database>,
    kind: TestDbKind,
}

enum TestDbKind {
    Mysql { name: String },
    Sqlite { _dir: tempfile::TempDir },
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// A connection to the MariaDB server itself (no database), shared by the tests.
fn mysql_admin() -> &'static Database {
    static ADMIN: OnceLock<Database> = OnceLock::new();
    ADMIN.get_or_init(|| {
        let server = mysql_server_url();
        let settings = DbSettings { max_retries: 1, ..test_settings(&server) };
        Database::connect(&settings).and_then(|db| db.ping().map(|()| db)).unwrap_or_else(|e| {
            panic!(
                "cannot reach MariaDB at {}: {}: start MariaDB on 127.0.0.1:3306 or set \
                 STAFFELN_TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306)",
                staffeln::db::url::mask_password(&server),
                error_chain(&e)
            )
        })
    })
}

/// Runs SQL on the MariaDB server (no database selected).
pub fn mysql_admin_execute(sql: &str) {
    let mut conn = mysql_admin().conn().unwrap_or_else(|e| panic!("MariaDB admin connection: {}", error_chain(&e)));
    conn.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Settings for tests: one quick attempt, small pool.
pub fn test_settings(connection: &str) -> DbSettings {
    DbSettings { max_retries: 1, retry_interval: Duration::ZERO, max_pool_size: 4, ..DbSettings::new(connection) }
}

/// `err` followed by its `source()` chain, as the binaries print it.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// Drops `staffeln_test_*` databases left by crashed runs: those whose process
/// is gone and that are older than ten minutes, or older than six hours. Other
/// test processes sharing the server keep their live databases.
fn sweep_leftover_test_databases() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        let mut conn = mysql_admin().conn().unwrap_or_else(|e| panic!("MariaDB admin connection: {}", error_chain(&e)));
        let names: Vec<NameRow> = diesel::sql_query(
            "SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'staffeln\\_test\\_%'",
        )
        .load(&mut *conn)
        .unwrap_or_default();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for NameRow { name } in names {
            let mut parts = name.trim_start_matches(TEST_DB_PREFIX).split('_');
            let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
            let created = parts.next().and_then(|p| p.parse::<u64>().ok());
            let (Some(pid), Some(created)) = (pid, created) else { continue };
            let age = now.saturating_sub(created);
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            if (gone && age > 600) || age > 6 * 3600 {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    });
}

impl TestDb {
    /// A fresh MariaDB database, migrated to head.
    pub fn mysql() -> TestDb {
        TestDb::mysql_empty().migrated()
    }

    /// A fresh SQLite file, migrated to head.
    pub fn sqlite() -> TestDb {
        TestDb::sqlite_empty().migrated()
    }

    /// Both backends, migrated: run one test body on each.
    pub fn both() -> [TestDb; 2] {
        [TestDb::mysql(), TestDb::sqlite()]
    }

    /// A fresh, empty MariaDB database (no migrations run).
    pub fn mysql_empty() -> TestDb {
        sweep_leftover_test_databases();
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let name = format!(
            "{TEST_DB_PREFIX}{}_{epoch}_{}",
            std::process::id(),
            unique_name("x").rsplit('_').next().unwrap_or("0")
        );
        mysql_admin_execute(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"));
        let url = format!("{}/{name}", mysql_server_url().trim_end_matches('/'));
        let mut test_db = TestDb { url, db: None, kind: TestDbKind::Mysql { name } };
        test_db.db = Some(test_db.connect());
        test_db
    }

    /// A fresh, empty SQLite file in a temporary directory (URL `sqlite:////abs/path`).
    pub fn sqlite_empty() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory for SQLite");
        let path = dir.path().join("staffeln.sqlite");
        let url = format!("sqlite:///{}", path.display());
        let mut test_db = TestDb { url, db: None, kind: TestDbKind::Sqlite { _dir: dir } };
        test_db.db = Some(test_db.connect());
        test_db
    }

    /// A new pool on this database with [`test_settings`].
    pub fn connect(&self) -> Database {
        Database::connect(&test_settings(&self.url))
            .unwrap_or_else(|e| panic!("connect to {}: {}", self.url, error_chain(&e)))
    }

    fn migrated(self) -> TestDb {
        staffeln::db::migrate::upgrade(self.db())
            .unwrap_or_else(|e| panic!("migrations apply to an empty database: {}", error_chain(&e)));
        self
    }

    /// The pool of this database.
    pub fn db(&self) -> &Database {
        self.db.as_ref().expect("TestDb holds its Database until dropped")
    }

    /// "MariaDB" or "SQLite", for assertion messages.
    pub fn label(&self) -> &'static str {
        match self.kind {
            TestDbKind::Mysql { .. } => "MariaDB",
            TestDbKind::Sqlite { .. } => "SQLite",
        }
    }

    /// Names of the tables in this database (MySQL: information_schema, SQLite: sqlite_master).
    pub fn tables(&self) -> BTreeSet<String> {
        let mut conn = self.db().conn().expect("a connection");
        let sql = match &*conn {
            AnyConnection::Mysql(_) => {
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()"
            }
            AnyConnection::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            }
        };
        let rows: Vec<NameRow> = diesel::sql_query(sql).load(&mut *conn).expect("list tables");
        rows.into_iter().map(|r| r.name).collect()
    }

    /// Names of the indexes (and unique constraints) of `table`.
    pub fn indexes(&self, table: &str) -> BTreeSet<String> {
        let mut conn = self.db().conn().expect("a connection");
        let sql = match &*conn {
            AnyConnection::Mysql(_) => {
                "SELECT DISTINCT index_name AS name FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
            AnyConnection::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
        };
        let rows: Vec<NameRow> = diesel::sql_query(sql).bind::<Text, _>(table).load(&mut *conn).expect("list indexes");
        rows.into_iter().map(|r| r.name).collect()
    }

    /// The server part of this database's URL, parsed.
    pub fn parsed_url(&self) -> DbUrl {
        DbUrl::parse(&self.url).expect("TestDb URLs parse")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.db.take());
        if let TestDbKind::Mysql { name } = &self.kind {
            // IF EXISTS, so that a test that failed half-way still cleans up.
            if let Ok(mut conn) = mysql_admin().conn() {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    }
}

/// A private CA and a server certificate for 127.0.0.1 (and localhost)
/// signed by it, made with the openssl CLI in a temporary directory.
pub struct TestCerts {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn test_certs() -> TestCerts {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca =
        vec!["req", "-x509", "-days", "2", "-subj", "/CN=Staffeln test CA", "-keyout", "ca.key", "-out", "ca.pem"];
    ca.extend(ec);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(d, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"];
    csr.extend(ec);
    openssl(d, &csr);
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ];
    openssl(d, &sign);
    TestCerts { ca: d.join("ca.pem"), cert: d.join("server.pem"), key: d.join("server.key"), _dir: dir }
}

/// The RabbitMQ the tests use: `STAFFELN_TEST_RABBIT_ADDR` or 127.0.0.1:5672.
pub fn broker_addr() -> String {
    std::env::var("STAFFELN_TEST_RABBIT_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".to_owned())
}

/// A plain AMQP connection to the test broker (guest/guest, vhost `/`).
pub async fn amqp_connect() -> Result<lapin::Connection, lapin::Error> {
    let url = format!("amqp://guest:guest@{}/%2f", broker_addr());
    lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
}

/// Fails the test loudly when RabbitMQ is not there.
pub async fn require_broker() {
    if let Err(err) = amqp_connect().await {
        panic!(
            "RabbitMQ is not reachable at {} ({err}): start it (tools/run-tests does) or set STAFFELN_TEST_RABBIT_ADDR",
            broker_addr()
        );
    }
}

/// Deletes the named queues and exchanges when dropped, even after a failure.
pub struct Cleanup {
    pub queues: Vec<String>,
    pub exchanges: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let queues = std::mem::take(&mut self.queues);
        let exchanges = std::mem::take(&mut self.exchanges);
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = amqp_connect().await else {
                    return;
                };
                for q in queues {
                    if let Ok(ch) = conn.create_channel().await {
                        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                    }
                }
                for x in exchanges {
                    if let Ok(ch) = conn.create_channel().await {
                        let _ = ch.exchange_delete(x.as_str().into(), Default::default()).await;
                    }
                }
                let _ = conn.close(200, "OK".into()).await;
            });
        })
        .join();
    }
}

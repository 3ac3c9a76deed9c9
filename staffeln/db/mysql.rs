//! MySQL/MariaDB through the pure-Rust `mysql_async` client, driven
//! synchronously, so that building Staffeln needs no C client library
//! (libmariadb, libmysqlclient) and the binaries link none.
//!
//! * [`MysqlConn`] wraps diesel-async's `AsyncConnectionWrapper<AsyncMysqlConnection>`
//!   and implements diesel's blocking traits by forwarding, so that it is the
//!   `Mysql` variant of [`AnyConnection`](super::AnyConnection) (diesel's
//!   `MultiConnection`), runs the embedded migrations and takes locking
//!   clauses (`FOR UPDATE SKIP LOCKED`) like diesel's own `MysqlConnection`.
//! * The I/O of every connection is driven by one small tokio runtime owned by
//!   this module (one worker thread, `staffeln-db-io`), never by the caller's:
//!   a pooled connection outlives the runtime of whoever opened it (a test's, an
//!   r2d2 thread's), and a connection handed from thread to thread keeps
//!   working. The calls block the calling thread, as libmariadb's did: async
//!   code should call the database from `tokio::task::spawn_blocking` (on an
//!   async worker thread a call works, but stalls that worker meanwhile).
//! * [`ClientOptions::from_url`] decides what a [`MysqlUrl`] means for the client
//!   (a pure function, unit-tested): TCP or Unix socket, TLS, connect timeout.
//!
//! What a URL means, as libmariadb did it before, unless said otherwise:
//! * host `localhost` (or none) without `unix_socket` connects through the local
//!   server's socket: `$MYSQL_UNIX_PORT`, else the first existing of
//!   [`DEFAULT_SOCKETS`]; when none exists, TCP to `localhost`. Any other host is TCP.
//! * `connect_timeout` (seconds, PyMySQL's argument) bounds one connection
//!   attempt, handshake included; default [`DEFAULT_CONNECT_TIMEOUT`] (PyMySQL's
//!   10 s). libmariadb could not be given one through diesel, so a black-holed
//!   host used to block for the kernel's TCP timeout.
//! * TLS (rustls, the Mozilla roots built in): `ssl_mode` as MySQL's clients
//!   spell it: `DISABLED`; `PREFERRED` (TLS when the server offers it, else
//!   plain); `REQUIRED` (encrypted; the certificate is checked against `ssl_ca`
//!   when one is given, else not at all); `VERIFY_CA` (chain checked, host name
//!   not); `VERIFY_IDENTITY` (chain and host name). Without `ssl_mode`, the
//!   rules of PyMySQL, which `mysql+pymysql://` URLs were written for: `ssl_ca`
//!   means TLS with chain and host name checked (`ssl_check_hostname=false`
//!   leaves the name unchecked); `ssl_cert`/`ssl_key` alone mean TLS without
//!   checks; no `ssl_*` argument means no TLS. `ssl_cert` + `ssl_key` present a
//!   client certificate. With `ssl_ca`, only that CA is trusted.
//! * The session: `time_zone = '+00:00'` and `utf8mb4` (diesel-async's setup,
//!   the same as diesel's own MySQL connection), `CLIENT_FOUND_ROWS`, then the
//!   pool's `sql_mode`.
//!
//! Errors: a failure to reach or log in to the server is
//! `ConnectionError::BadConnection` (retried at start-up by the pool) and names
//! the address (`127.0.0.1:3306`, `socket /run/mysqld/mysqld.sock`) and the
//! server's or the system's reason; never the password. Server errors inside
//! queries keep diesel's kinds (1062 duplicate key → `UniqueViolation`, …);
//! MariaDB's lock wait timeout (1205) and deadlock (1213) arrive as
//! `DatabaseErrorKind::Unknown` with the server's message.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use diesel::connection::{
    CacheSize, Connection, ConnectionSealed, Instrumentation, LoadConnection, MultiConnectionHelper, SimpleConnection,
    TransactionManager, TransactionManagerStatus,
};
use diesel::mysql::Mysql;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::{ConnectionError, ConnectionResult, QueryResult};
use diesel_async::AsyncMysqlConnection;
use diesel_async::async_connection_wrapper::{AsyncConnectionWrapper, BlockOn};
use mysql_async::{ClientIdentity, OptsBuilder, SslOpts};

use super::url::MysqlUrl;

/// Where the local server's socket is looked for when the URL names
/// `localhost` and no `unix_socket` (Debian/Ubuntu, older Debian, RHEL, macOS).
pub const DEFAULT_SOCKETS: [&str; 4] =
    ["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"];

/// One connection attempt's limit when the URL has no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime whose worker thread drives the database sockets and timers.
static DB_IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    // Creating a runtime fails only when the process cannot create a thread
    // or an epoll instance; nothing could be done about that here.
    #[allow(clippy::expect_used)]
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("staffeln-db-io")
        .enable_io()
        .enable_time()
        .build()
        .expect("cannot start the database I/O thread")
});

/// diesel-async's `BlockOn`: polls the future on the calling thread, parking
/// it between wake-ups, with [`DB_IO`] as the runtime its sockets and timers
/// register with. Unlike `Handle::block_on`, this may block any thread,
/// including an async worker of another runtime (as libmariadb's calls did),
/// and it opts out of that runtime's cooperative budget, which would
/// otherwise keep the future pending.
pub struct DbIo;

struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

impl BlockOn for DbIo {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let _io = DB_IO.enter();
        let mut f = std::pin::pin!(tokio::task::coop::unconstrained(f));
        let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    fn get_runtime() -> Self {
        DbIo
    }
}

type Inner = AsyncConnectionWrapper<AsyncMysqlConnection, DbIo>;

/// How a [`MysqlUrl`] is to be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Tcp { host: String, port: u16 },
    Socket(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Socket(path) => write!(f, "socket {}", path.display()),
        }
    }
}

/// The TLS decision for one URL (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tls {
    Off,
    /// TLS when the server offers it, else plain.
    Preferred(TlsCheck),
    Required(TlsCheck),
}

/// What is verified of the server's certificate, and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCheck {
    pub verify_chain: bool,
    pub verify_hostname: bool,
    /// `ssl_ca`: the only CA trusted when given.
    pub ca: Option<PathBuf>,
    /// `ssl_cert` and `ssl_key`.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// Everything the client needs from a [`MysqlUrl`], password included (never printed).
#[derive(Clone)]
pub struct ClientOptions {
    pub address: Address,
    pub tls: Tls,
    pub connect_timeout: Duration,
    user: String,
    password: Option<String>,
    database: Option<String>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// What `url` means for the client; `socket_exists` tells whether a
    /// default socket is there (the file system, in production).
    /// The URL's arguments were checked when it was parsed.
    pub fn from_url(url: &MysqlUrl, socket_exists: impl Fn(&Path) -> bool) -> Result<ClientOptions, String> {
        let param = |key: &str| url.param(key);
        let address = match param("unix_socket") {
            Some(path) => Address::Socket(PathBuf::from(path)),
            None if url.host == "localhost" => {
                let from_env = std::env::var_os("MYSQL_UNIX_PORT").map(PathBuf::from);
                from_env.or_else(|| DEFAULT_SOCKETS.iter().map(PathBuf::from).find(|p| socket_exists(p))).map_or_else(
                    || Address::Tcp { host: url.host.clone(), port: url.port.unwrap_or(3306) },
                    Address::Socket,
                )
            }
            None => Address::Tcp { host: url.host.clone(), port: url.port.unwrap_or(3306) },
        };
        let connect_timeout = match param("connect_timeout") {
            Some(v) => Duration::from_secs(
                v.parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("connect_timeout must be a number of seconds above 0, not `{v}`"))?,
            ),
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let ca = param("ssl_ca").map(PathBuf::from);
        let client_identity = match (param("ssl_cert"), param("ssl_key")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) => None,
            _ => return Err("ssl_cert and ssl_key go together: give both or neither".to_owned()),
        };
        let check_hostname = match param("ssl_check_hostname").map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => return Err(format!("ssl_check_hostname must be true or false, not `{other}`")),
        };
        let check = |verify_chain: bool, verify_hostname: bool| TlsCheck {
            verify_chain,
            verify_hostname,
            ca: ca.clone(),
            client_identity: client_identity.clone(),
        };
        let mode = param("ssl_mode").map(str::to_ascii_uppercase);
        let tls = match mode.as_deref() {
            Some("DISABLED") => Tls::Off,
            Some("PREFERRED") => Tls::Preferred(check(ca.is_some(), false)),
            Some("REQUIRED") => Tls::Required(check(ca.is_some(), false)),
            Some("VERIFY_CA") => Tls::Required(check(true, false)),
            Some("VERIFY_IDENTITY") => Tls::Required(check(true, true)),
            Some(other) => {
                return Err(format!(
                    "ssl_mode must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY, not `{other}`"
                ));
            }
            None if ca.is_some() => Tls::Required(check(true, check_hostname)),
            None if client_identity.is_some() => Tls::Required(check(false, false)),
            None => Tls::Off,
        };
        Ok(ClientOptions {
            address,
            tls,
            connect_timeout,
            user: url.user.clone(),
            password: url.password().map(str::to_owned),
            database: url.database.clone(),
        })
    }

    /// mysql_async's options, TLS as given (`None`: plain).
    fn builder(&self, tls: Option<&TlsCheck>) -> OptsBuilder {
        let mut builder = OptsBuilder::default()
            .user(Some(&self.user).filter(|u| !u.is_empty()))
            .pass(self.password.as_deref())
            .db_name(self.database.as_deref())
            .prefer_socket(false)
            // diesel-async caches statements itself; diesel sets FOUND_ROWS too.
            .stmt_cache_size(0)
            .client_found_rows(true);
        builder = match &self.address {
            Address::Tcp { host, port } => builder.ip_or_hostname(host.clone()).tcp_port(*port),
            Address::Socket(path) => builder.socket(Some(path.to_string_lossy().into_owned())),
        };
        if let Some(check) = tls {
            let mut ssl = SslOpts::default()
                .with_danger_accept_invalid_certs(!check.verify_chain)
                .with_danger_skip_domain_validation(!check.verify_hostname);
            if let Some(ca) = &check.ca {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]).with_disable_built_in_roots(true);
            }
            if let Some((cert, key)) = &check.client_identity {
                ssl = ssl.with_client_identity(Some(ClientIdentity::new(cert.clone().into(), key.clone().into())));
            }
            builder = builder.ssl_opts(Some(ssl));
        }
        builder
    }

    /// One connection attempt, bounded by `connect_timeout`.
    async fn connect(&self) -> ConnectionResult<AsyncMysqlConnection> {
        let attempt = |tls: Option<TlsCheck>| {
            let opts = self.builder(tls.as_ref());
            async move {
                match tokio::time::timeout(self.connect_timeout, mysql_async::Conn::new(opts)).await {
                    Ok(result) => result,
                    Err(_) => Err(mysql_async::Error::Other(
                        format!("no answer within connect_timeout ({} s)", self.connect_timeout.as_secs()).into(),
                    )),
                }
            }
        };
        let conn = match &self.tls {
            Tls::Off => attempt(None).await,
            Tls::Required(check) => attempt(Some(check.clone())).await,
            Tls::Preferred(check) => match attempt(Some(check.clone())).await {
                Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {
                    attempt(None).await
                }
                other => other,
            },
        };
        let conn = conn.map_err(|e| {
            let tls = match (&self.tls, &e) {
                (Tls::Required(_), mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {
                    " (the URL asks for TLS; the server offers none)"
                }
                _ => "",
            };
            ConnectionError::BadConnection(format!("cannot connect to {}: {e}{tls}", self.address))
        })?;
        AsyncMysqlConnection::try_from(conn).await
    }
}

/// One MySQL/MariaDB connection, blocking (see the module doc).
pub struct MysqlConn(Inner);

impl MysqlConn {
    /// Opens a connection as `options` say.
    pub fn open(options: &ClientOptions) -> ConnectionResult<MysqlConn> {
        let io = DbIo::get_runtime();
        let conn = io.block_on(options.connect())?;
        Ok(MysqlConn(Inner::from(conn)))
    }
}

impl SimpleConnection for MysqlConn {
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.0.batch_execute(query)
    }
}

impl ConnectionSealed for MysqlConn {}

/// Forwards to the wrapped connection's transaction manager.
pub struct MysqlTransactionManager;

type InnerTm = <Inner as Connection>::TransactionManager;

impl TransactionManager<MysqlConn> for MysqlTransactionManager {
    type TransactionStateData = <InnerTm as TransactionManager<Inner>>::TransactionStateData;

    fn begin_transaction(conn: &mut MysqlConn) -> QueryResult<()> {
        InnerTm::begin_transaction(&mut conn.0)
    }

    fn rollback_transaction(conn: &mut MysqlConn) -> QueryResult<()> {
        InnerTm::rollback_transaction(&mut conn.0)
    }

    fn commit_transaction(conn: &mut MysqlConn) -> QueryResult<()> {
        InnerTm::commit_transaction(&mut conn.0)
    }

    fn transaction_manager_status_mut(conn: &mut MysqlConn) -> &mut TransactionManagerStatus {
        InnerTm::transaction_manager_status_mut(&mut conn.0)
    }

    fn is_broken_transaction_manager(conn: &mut MysqlConn) -> bool {
        InnerTm::is_broken_transaction_manager(&mut conn.0)
    }
}

impl Connection for MysqlConn {
    type Backend = Mysql;
    type TransactionManager = MysqlTransactionManager;

    /// A `mysql://` URL in the client's own form; Staffeln opens connections
    /// with [`MysqlConn::open`] (diesel's derived `MultiConnection::establish`
    /// needs this).
    fn establish(database_url: &str) -> ConnectionResult<Self> {
        let url =
            super::url::DbUrl::parse(database_url).map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
        let super::url::DbUrl::Mysql(url) = url else {
            return Err(ConnectionError::InvalidConnectionUrl("not a MySQL URL".to_owned()));
        };
        let options = ClientOptions::from_url(&url, Path::exists).map_err(ConnectionError::InvalidConnectionUrl)?;
        MysqlConn::open(&options)
    }

    fn execute_returning_count<T>(&mut self, source: &T) -> QueryResult<usize>
    where
        T: QueryFragment<Mysql> + QueryId,
    {
        self.0.execute_returning_count(source)
    }

    fn transaction_state(
        &mut self,
    ) -> &mut <MysqlTransactionManager as TransactionManager<Self>>::TransactionStateData {
        self.0.transaction_state()
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.0.instrumentation()
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.0.set_instrumentation(instrumentation)
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        self.0.set_prepared_statement_cache_size(size)
    }
}

impl LoadConnection for MysqlConn {
    type Cursor<'conn, 'query>
        = <Inner as LoadConnection>::Cursor<'conn, 'query>
    where
        Self: 'conn;
    type Row<'conn, 'query>
        = <Inner as LoadConnection>::Row<'conn, 'query>
    where
        Self: 'conn;

    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> QueryResult<Self::Cursor<'conn, 'query>>
    where
        T: Query + QueryFragment<Mysql> + QueryId + 'query,
        Mysql: diesel::expression::QueryMetadata<T::SqlType>,
    {
        self.0.load(source)
    }
}

impl MultiConnectionHelper for MysqlConn {
    fn to_any<'a>(
        lookup: &mut <Mysql as diesel::sql_types::TypeMetadata>::MetadataLookup,
    ) -> &mut (dyn std::any::Any + 'a) {
        lookup
    }

    fn from_any(
        lookup: &mut dyn std::any::Any,
    ) -> Option<&mut <Mysql as diesel::sql_types::TypeMetadata>::MetadataLookup> {
        lookup.downcast_mut()
    }
}

impl diesel::r2d2::R2D2Connection for MysqlConn {
    fn ping(&mut self) -> QueryResult<()> {
        self.0.ping()
    }

    fn is_broken(&mut self) -> bool {
        self.0.is_broken()
    }
}

impl diesel::migration::MigrationConnection for MysqlConn {
    fn setup(&mut self) -> QueryResult<usize> {
        self.0.setup()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::db::url::DbUrl;

    fn options(raw: &str, sockets: &[&str]) -> Result<ClientOptions, String> {
        let DbUrl::Mysql(url) = DbUrl::parse(raw).unwrap() else { panic!("{raw}") };
        ClientOptions::from_url(&url, |p| sockets.iter().any(|s| Path::new(s) == p))
    }

    fn tls(raw: &str) -> Tls {
        options(raw, &[]).unwrap().tls
    }

    #[test]
    fn tcp_unless_localhost_or_a_socket_is_named() {
        let o = options("mysql+pymysql://u:pw@db.example:3307/staffeln", &[]).unwrap();
        assert_eq!(o.address, Address::Tcp { host: "db.example".into(), port: 3307 });
        assert_eq!(o.address.to_string(), "db.example:3307");
        let o = options("mysql://u@127.0.0.1/staffeln", &["/run/mysqld/mysqld.sock"]).unwrap();
        assert_eq!(o.address, Address::Tcp { host: "127.0.0.1".into(), port: 3306 });
        let o = options("mysql://u@[::1]:3306/staffeln", &[]).unwrap();
        assert_eq!(o.address.to_string(), "[::1]:3306");
        let o = options("mysql://u@/staffeln?unix_socket=/tmp/s", &[]).unwrap();
        assert_eq!(o.address, Address::Socket("/tmp/s".into()));
        assert_eq!(o.address.to_string(), "socket /tmp/s");
    }

    #[test]
    fn localhost_means_the_first_default_socket_that_exists() {
        if std::env::var_os("MYSQL_UNIX_PORT").is_some() {
            return; // the environment decides; covered by the integration tests
        }
        let o = options("mysql://u@localhost/staffeln", &["/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"]).unwrap();
        assert_eq!(o.address, Address::Socket("/var/lib/mysql/mysql.sock".into()));
        let o = options("mysql://u@localhost:3307/staffeln", &[]).unwrap();
        assert_eq!(o.address, Address::Tcp { host: "localhost".into(), port: 3307 });
    }

    #[test]
    fn connect_timeout_defaults_to_pymysqls_and_is_checked() {
        assert_eq!(options("mysql://u@h/d", &[]).unwrap().connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(options("mysql://u@h/d?connect_timeout=3", &[]).unwrap().connect_timeout, Duration::from_secs(3));
        assert!(options("mysql://u@h/d?connect_timeout=0", &[]).unwrap_err().contains("connect_timeout"));
        assert!(options("mysql://u@h/d?connect_timeout=soon", &[]).unwrap_err().contains("`soon`"));
    }

    #[test]
    fn tls_follows_ssl_mode_then_pymysql() {
        let check = |chain, host, ca: Option<&str>| TlsCheck {
            verify_chain: chain,
            verify_hostname: host,
            ca: ca.map(PathBuf::from),
            client_identity: None,
        };
        assert_eq!(tls("mysql://u@h/d"), Tls::Off);
        assert_eq!(tls("mysql://u@h/d?ssl_ca=/ca.pem&ssl_mode=DISABLED"), Tls::Off);
        assert_eq!(tls("mysql://u@h/d?ssl_mode=preferred"), Tls::Preferred(check(false, false, None)));
        assert_eq!(tls("mysql://u@h/d?ssl_mode=REQUIRED"), Tls::Required(check(false, false, None)));
        assert_eq!(
            tls("mysql://u@h/d?ssl_mode=REQUIRED&ssl_ca=/ca.pem"),
            Tls::Required(check(true, false, Some("/ca.pem")))
        );
        assert_eq!(tls("mysql://u@h/d?ssl_mode=VERIFY_CA"), Tls::Required(check(true, false, None)));
        assert_eq!(
            tls("mysql://u@h/d?ssl_mode=VERIFY_IDENTITY&ssl_ca=/ca.pem"),
            Tls::Required(check(true, true, Some("/ca.pem")))
        );
        // PyMySQL: a CA means chain and host name checked, unless told otherwise.
        assert_eq!(tls("mysql+pymysql://u@h/d?ssl_ca=/ca.pem"), Tls::Required(check(true, true, Some("/ca.pem"))));
        assert_eq!(
            tls("mysql+pymysql://u@h/d?ssl_ca=/ca.pem&ssl_check_hostname=false"),
            Tls::Required(check(true, false, Some("/ca.pem")))
        );
        let Tls::Required(c) = tls("mysql://u@h/d?ssl_cert=/c.pem&ssl_key=/k.pem") else { panic!() };
        assert_eq!((c.verify_chain, c.client_identity), (false, Some(("/c.pem".into(), "/k.pem".into()))));
        assert!(options("mysql://u@h/d?ssl_mode=SOMETIMES", &[]).unwrap_err().contains("`SOMETIMES`"));
        assert!(options("mysql://u@h/d?ssl_cert=/c.pem", &[]).unwrap_err().contains("ssl_key"));
        assert!(options("mysql://u@h/d?ssl_ca=/c&ssl_check_hostname=maybe", &[]).unwrap_err().contains("maybe"));
    }

    #[test]
    fn debug_hides_the_password() {
        let o = options("mysql://u:s3cr3t@h/d", &[]).unwrap();
        assert!(!format!("{o:?}").contains("s3cr3t"));
    }
}

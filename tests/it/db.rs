//! The database room against real MariaDB and SQLite files: migrations walked
//! up, down and up; OpenStack URL forms; start-up retries; rows through the one
//! code path on both backends; no password in any error.

use std::net::TcpListener;
use std::path::{Component, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use staffeln::db::models::{NewBackup, now};
use staffeln::db::{AnyConnection, Database, DbError, DbSettings, DbUrl, backups, migrate, reports};

use crate::support::{TestDb, error_chain, mysql_admin_execute, mysql_server_url, test_settings};

const TABLES: [&str; 7] =
    ["backup_data", "queue_data", "report_timestamp", "leases", "cycles", "retention_audit", "server_stamps"];

/// The server's host and port, from `STAFFELN_TEST_MYSQL_URL` or the default.
fn server_host_port() -> String {
    match DbUrl::parse(&mysql_server_url()).expect("the test server URL parses") {
        DbUrl::Mysql(m) => format!("{}:{}", m.host, m.port.unwrap_or(3306)),
        other => panic!("STAFFELN_TEST_MYSQL_URL must be a MySQL URL, got {other}"),
    }
}

/// A TCP port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Everything an operator could see of an error: its chain and its Debug form.
fn all_text(err: &DbError) -> String {
    format!("{} / {err:?}", error_chain(err))
}

fn connect_err(settings: &DbSettings) -> DbError {
    match Database::connect(settings) {
        Ok(db) => panic!("connecting to {} unexpectedly worked: {db:?}", settings.connection.replace("s3cr3t", "***")),
        Err(e) => e,
    }
}

// --- migrations -------------------------------------------------------------

fn walk_migrations(t: TestDb) {
    let who = t.label();
    let db = t.db();
    let head = migrate::known_versions().last().cloned().expect("at least one migration");
    assert_eq!(migrate::version(db).unwrap(), None, "{who}: empty database");

    let applied = migrate::upgrade(db).unwrap();
    assert_eq!(applied, migrate::known_versions(), "{who}: upgrade applies every migration");
    assert_eq!(migrate::version(db).unwrap(), Some(head.clone()), "{who}");
    let tables = t.tables();
    for table in TABLES {
        assert!(tables.contains(table), "{who}: {table} after upgrade: {tables:?}");
    }
    let indexes = t.indexes("backup_data");
    for index in ["ix_backup_data_project_id", "ix_backup_data_volume_id_created_at"] {
        assert!(indexes.contains(index), "{who}: {index}: {indexes:?}");
    }
    let queue_indexes = t.indexes("queue_data");
    for index in [
        "ix_queue_data_backup_status",
        "ix_queue_data_project_id",
        "ux_queue_data_task_id",
        "ux_queue_data_cycle_volume",
        "ix_queue_data_state",
        "ix_queue_data_backup_id",
    ] {
        assert!(queue_indexes.contains(index), "{who}: {index}: {queue_indexes:?}");
    }
    assert!(t.indexes("report_timestamp").contains("ix_report_timestamp_created_at"), "{who}");
    assert!(t.indexes("retention_audit").contains("ix_retention_audit_backup"), "{who}");
    // 2026-12-02-100000_backup_waits_and_stamps: queue_data.stuck_at, server_stamps.
    let stamp_indexes = t.indexes("server_stamps");
    for index in ["ux_server_stamps_cycle_server", "ix_server_stamps_state", "ix_server_stamps_server"] {
        assert!(stamp_indexes.contains(index), "{who}: {index}: {stamp_indexes:?}");
    }
    let mut conn = db.conn().unwrap();
    staffeln::db::tasks::stuck_by_project(&mut conn).unwrap_or_else(|e| panic!("{who}: queue_data.stuck_at: {e}"));
    staffeln::db::stamps::unreported_failures(&mut conn).unwrap_or_else(|e| panic!("{who}: server_stamps: {e}"));
    drop(conn);
    assert!(columns(&t, "backup_data").contains("origin"), "{who}: backup_data.origin (2026-12-02-200000)");
    assert_eq!(migrate::upgrade(db).unwrap(), Vec::<String>::new(), "{who}: nothing left to apply");

    let mut newest_first = migrate::known_versions();
    newest_first.reverse();
    assert_eq!(
        migrate::downgrade_to_base(db).unwrap(),
        newest_first,
        "{who}: downgrade reverts every migration, newest first"
    );
    let tables = t.tables();
    for table in TABLES {
        assert!(!tables.contains(table), "{who}: {table} after downgrade: {tables:?}");
    }
    assert_eq!(migrate::version(db).unwrap(), None, "{who}: back at base");
    assert_eq!(migrate::downgrade_one(db).unwrap(), None, "{who}: nothing to revert at base");

    assert_eq!(migrate::create_schema(db).unwrap(), migrate::known_versions(), "{who}: up again");
    let tables = t.tables();
    for table in TABLES {
        assert!(tables.contains(table), "{who}: {table} after the second upgrade: {tables:?}");
    }
    assert_eq!(migrate::version(db).unwrap(), Some(head), "{who}");
}

/// Column names of `table`.
fn columns(t: &TestDb, table: &str) -> std::collections::BTreeSet<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let mut conn = t.db().conn().unwrap();
    let sql = match &*conn {
        AnyConnection::Mysql(_) => {
            "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?"
        }
        AnyConnection::Sqlite(_) => "SELECT name FROM pragma_table_info(?)",
    };
    let rows: Vec<Name> = diesel::sql_query(sql).bind::<Text, _>(table).load(&mut *conn).unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

#[test]
fn migrations_walk_up_down_up_on_mariadb() {
    walk_migrations(TestDb::mysql_empty());
}

#[test]
fn migrations_walk_up_down_up_on_sqlite() {
    walk_migrations(TestDb::sqlite_empty());
}

/// A `backup_data` that is neither this Staffeln's nor the original's is
/// left alone, and the error says what was found.
#[test]
fn an_unknown_backup_data_table_is_refused_and_left_alone() {
    for t in [TestDb::sqlite_empty(), TestDb::mysql_empty()] {
        let who = t.label();
        t.db()
            .conn()
            .unwrap()
            .batch_execute("CREATE TABLE backup_data (x INTEGER); INSERT INTO backup_data VALUES (7);")
            .unwrap();
        let err = migrate::upgrade(t.db()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot upgrade this database: table backup_data is neither this Staffeln's nor the original \
             Staffeln's (no column backup_id, project_id, volume_id, instance_id); it was left alone",
            "{who}"
        );
        assert_eq!(columns(&t, "backup_data"), ["x".to_owned()].into(), "{who}");
        assert!(!t.tables().contains("staffeln_py_backup_data"), "{who}");
    }
}

#[test]
fn both_migration_trees_carry_the_same_versions() {
    let root = crate::support::repo_root().join("migrations");
    let list = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(list("mysql"), list("sqlite"));
    assert!(!list("mysql").is_empty());
}

#[test]
fn mysql_tables_are_innodb_utf8mb4_with_microsecond_times() {
    #[derive(QueryableByName, Debug, PartialEq)]
    struct TableInfo {
        #[diesel(sql_type = Text)]
        engine: String,
        #[diesel(sql_type = Text)]
        collation: String,
    }
    #[derive(QueryableByName)]
    struct Precision {
        #[diesel(sql_type = BigInt)]
        precision: i64,
    }
    let t = TestDb::mysql();
    let mut conn = t.db().conn().unwrap();
    for table in TABLES {
        let time_column = match table {
            "leases" => "expires_at",
            "cycles" => "started_at",
            _ => "created_at",
        };
        let info: TableInfo = diesel::sql_query(
            "SELECT engine, table_collation AS collation FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind::<Text, _>(table)
        .get_result(&mut *conn)
        .unwrap();
        assert_eq!(info.engine, "InnoDB", "{table}");
        assert!(info.collation.starts_with("utf8mb4"), "{table}: {info:?}");
        let p: Precision = diesel::sql_query(
            "SELECT CAST(datetime_precision AS SIGNED) AS `precision` FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
        )
        .bind::<Text, _>(table)
        .bind::<Text, _>(time_column)
        .get_result(&mut *conn)
        .unwrap();
        assert_eq!(p.precision, 6, "{table}.{time_column}");
    }
    assert!(t.indexes("backup_data").contains("unique_backup0uuid"));
}

// --- URLs and connecting ----------------------------------------------------

#[test]
fn a_devstack_url_connects_to_mariadb() {
    let t = TestDb::mysql_empty();
    let name = t.url.rsplit('/').next().unwrap().to_owned();
    let user = match t.parsed_url() {
        DbUrl::Mysql(m) => m.user,
        other => panic!("{other}"),
    };
    let url = format!("mysql+pymysql://{user}@{}/{name}?charset=utf8&plugin=dbcounter", server_host_port());
    let db = Database::connect(&test_settings(&url)).unwrap_or_else(|e| panic!("{url}: {}", error_chain(&e)));
    db.ping().unwrap();
    migrate::upgrade(&db).unwrap();
    assert_eq!(migrate::version(t.db()).unwrap(), migrate::known_versions().last().cloned());
}

#[test]
fn sqlite_relative_and_absolute_urls_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("rel.sqlite");
    // The same file spelt relative to the working directory: up to `/`, then down.
    let cwd = std::env::current_dir().unwrap();
    let ups = cwd.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let mut rel: PathBuf = std::iter::repeat_n("..", ups).collect();
    rel.push(abs.strip_prefix("/").unwrap());
    assert!(rel.is_relative());

    let relative = Database::connect(&test_settings(&format!("sqlite:///{}", rel.display()))).unwrap();
    migrate::upgrade(&relative).unwrap();
    backups::insert(&mut relative.conn().unwrap(), &new_backup("b-rel", "p1")).unwrap();

    let absolute = Database::connect(&test_settings(&format!("sqlite:///{}", abs.display()))).unwrap();
    assert_eq!(migrate::version(&absolute).unwrap(), migrate::known_versions().last().cloned());
    let row = backups::get(&mut absolute.conn().unwrap(), "b-rel").unwrap();
    assert_eq!(row.map(|r| r.project_id).as_deref(), Some("p1"));
}

#[test]
fn sql_mode_is_set_per_connection_and_none_keeps_the_servers() {
    #[derive(QueryableByName)]
    struct Modes {
        #[diesel(sql_type = Text)]
        session: String,
        #[diesel(sql_type = Text)]
        global: String,
    }
    let t = TestDb::mysql_empty();
    let modes = |mode: Option<&str>| {
        let settings = DbSettings { mysql_sql_mode: mode.map(str::to_owned), ..test_settings(&t.url) };
        let db = Database::connect(&settings).unwrap();
        let mut conn = db.conn().unwrap();
        let m: Modes = diesel::sql_query("SELECT @@SESSION.sql_mode AS session, @@GLOBAL.sql_mode AS global")
            .get_result(&mut *conn)
            .unwrap();
        (m.session, m.global)
    };
    let (session, _) = modes(Some("ANSI_QUOTES"));
    assert_eq!(session, "ANSI_QUOTES");
    let (session, _) = modes(Some("TRADITIONAL"));
    assert!(session.contains("STRICT_ALL_TABLES"), "{session}");
    let (session, global) = modes(None);
    assert_eq!(session, global);
}

#[test]
fn an_invalid_sql_mode_fails_at_once_without_retrying() {
    let t = TestDb::mysql_empty();
    let settings = DbSettings {
        mysql_sql_mode: Some("NOT_A_MODE".to_owned()),
        max_retries: 5,
        retry_interval: Duration::from_millis(1),
        ..test_settings(&t.url)
    };
    match connect_err(&settings) {
        DbError::Connect { attempts, .. } => assert_eq!(attempts, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_up_retries_max_retries_times_against_a_closed_port() {
    let url = format!("mysql+pymysql://root@127.0.0.1:{}/staffeln", closed_port());
    let settings = DbSettings { max_retries: 3, retry_interval: Duration::from_millis(1), ..test_settings(&url) };
    let err = connect_err(&settings);
    match &err {
        DbError::Connect { attempts, url: shown, .. } => {
            assert_eq!(*attempts, 3);
            assert_eq!(shown, &url);
        }
        other => panic!("{other:?}"),
    }
    let text = error_chain(&err);
    assert!(text.contains("3 attempts") && text.contains(&url), "{text}");
    // The cause is the server's, not diesel's "invalid connection url".
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.to_lowercase().contains("invalid connection url"), "{text}");
}

#[test]
fn a_missing_sqlite_directory_is_retried_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/missing/dir/staffeln.sqlite", dir.path().display());
    let settings = DbSettings { max_retries: 2, retry_interval: Duration::from_millis(1), ..test_settings(&url) };
    match connect_err(&settings) {
        DbError::Connect { attempts, url: shown, .. } => {
            assert_eq!(attempts, 2);
            assert_eq!(shown, url);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_password_never_appears_in_an_error() {
    let host_port = server_host_port();
    let urls = [
        // nothing listens
        format!("mysql+pymysql://staffeln:s3cr3t@127.0.0.1:{}/staffeln?charset=utf8", closed_port()),
        // the server refuses the credentials
        format!("mysql://staffeln_nobody:s3cr3t@{host_port}/staffeln"),
        // the host does not resolve
        "mysql+pymysql://staffeln:s3cr3t@nonexistent.invalid/staffeln".to_owned(),
        // not a URL the parser accepts
        "mysql://staffeln:s3cr3t@db:port/staffeln".to_owned(),
        "postgresql://staffeln:s3cr3t@db/staffeln".to_owned(),
        "mysql://staffeln:s3cr3t@db/staffeln?read_default_file=/etc/my.cnf".to_owned(),
    ];
    for url in urls {
        let err = connect_err(&test_settings(&url));
        let text = all_text(&err);
        assert!(!text.contains("s3cr3t"), "the password leaked: {text}");
        assert!(text.contains("staffeln:***@") || text.contains("staffeln_nobody:***@"), "{text}");
    }
}

#[test]
fn a_connection_killed_by_the_server_is_replaced() {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let t = TestDb::mysql();
    let db = Database::connect(&DbSettings { max_pool_size: 1, ..test_settings(&t.url) }).unwrap();
    let id = |db: &Database| {
        let mut conn = db.conn().unwrap();
        diesel::sql_query("SELECT CAST(CONNECTION_ID() AS SIGNED) AS id").get_result::<Id>(&mut *conn).unwrap().id
    };
    let first = id(&db);
    mysql_admin_execute(&format!("KILL CONNECTION {first}"));
    let second = id(&db);
    assert_ne!(first, second, "the killed connection was handed out again");
    db.ping().unwrap();
}

// --- rows -------------------------------------------------------------------

fn new_backup(backup_id: &str, project_id: &str) -> NewBackup {
    NewBackup {
        backup_id: backup_id.to_owned(),
        project_id: project_id.to_owned(),
        volume_id: format!("vol-{backup_id}"),
        instance_id: "srv-1".to_owned(),
        backup_completed: 1,
        incremental: backup_id.ends_with("-incr"),
    }
}

#[test]
fn backup_rows_round_trip_on_both_backends() {
    for t in TestDb::both() {
        let who = t.label();
        let mut conn = t.db().conn().unwrap();
        let conn: &mut AnyConnection = &mut conn;
        let before = now();
        let full = backups::insert(conn, &new_backup("b-1", "p1")).unwrap();
        let incr = backups::insert(conn, &new_backup("b-2-incr", "p1")).unwrap();
        backups::insert(conn, &new_backup("b-3", "p2")).unwrap();
        let after = now();

        assert_eq!(
            (full.backup_id.as_str(), full.volume_id.as_str(), full.backup_completed, full.incremental),
            ("b-1", "vol-b-1", 1, false),
            "{who}"
        );
        assert!(incr.incremental, "{who}");
        assert!(before <= full.created_at && full.created_at <= after, "{who}: {full:?}");
        assert_eq!(full.updated_at, None, "{who}");
        assert_eq!(backups::get(conn, "b-1").unwrap(), Some(full.clone()), "{who}");
        assert_eq!(backups::get(conn, "nope").unwrap(), None, "{who}");

        let p1: Vec<_> = backups::list_by_project(conn, "p1").unwrap().into_iter().map(|r| r.backup_id).collect();
        assert_eq!(p1, ["b-1", "b-2-incr"], "{who}");

        assert!(backups::delete(conn, "b-1").unwrap(), "{who}");
        assert!(!backups::delete(conn, "b-1").unwrap(), "{who}: already gone");
        assert_eq!(backups::get(conn, "b-1").unwrap(), None, "{who}");
    }
}

#[test]
fn backup_id_is_unique_on_both_backends() {
    for t in TestDb::both() {
        let who = t.label();
        let mut conn = t.db().conn().unwrap();
        backups::insert(&mut conn, &new_backup("b-dup", "p1")).unwrap();
        let err = backups::insert(&mut conn, &new_backup("b-dup", "p2")).unwrap_err();
        assert!(err.is_duplicate(), "{who}: {err:?}");
        assert!(error_chain(&err).contains("backup_id b-dup"), "{who}: {}", error_chain(&err));
        assert_eq!(backups::list_by_project(&mut conn, "p2").unwrap(), vec![], "{who}");
    }
}

#[test]
fn report_timestamps_round_trip_on_both_backends() {
    for t in TestDb::both() {
        let who = t.label();
        let mut conn = t.db().conn().unwrap();
        let conn: &mut AnyConnection = &mut conn;
        assert_eq!(reports::latest(conn).unwrap(), None, "{who}");
        reports::insert(conn, Some("conductor-1")).unwrap();
        reports::insert(conn, None).unwrap();
        reports::insert(conn, Some("conductor-2")).unwrap();
        let latest = reports::latest(conn).unwrap().expect("a report");
        assert_eq!(latest.sender.as_deref(), Some("conductor-2"), "{who}");
    }
}

#[test]
fn sqlite_connections_enforce_foreign_keys_and_use_wal() {
    #[derive(QueryableByName)]
    struct Pragmas {
        #[diesel(sql_type = BigInt)]
        foreign_keys: i64,
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    let t = TestDb::sqlite();
    let mut conn = t.db().conn().unwrap();
    conn.batch_execute("SELECT 1").unwrap();
    let p: Pragmas = diesel::sql_query(
        "SELECT (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
         (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode",
    )
    .get_result(&mut *conn)
    .unwrap();
    assert_eq!((p.foreign_keys, p.journal_mode.as_str()), (1, "wal"));
}

#[test]
fn create_database_creates_a_missing_mysql_database_once() {
    let t = TestDb::mysql_empty();
    let name = t.url.rsplit('/').next().unwrap().to_owned();
    mysql_admin_execute(&format!("DROP DATABASE `{name}`"));
    let settings = test_settings(&t.url);
    match Database::connect(&settings) {
        Err(DbError::Connect { .. }) => {}
        other => panic!("the database should be gone: {other:?}"),
    }
    assert!(staffeln::db::create_database(&settings).unwrap(), "created");
    assert!(!staffeln::db::create_database(&settings).unwrap(), "already there");
    let db = Database::connect(&settings).unwrap();
    migrate::upgrade(&db).unwrap();
    assert!(!staffeln::db::create_database(&test_settings("sqlite:////tmp/x.sqlite")).unwrap());
}

// --- the pure-Rust MySQL client -------------------------------------------------

/// How the server sees this connection: `localhost` over its Unix socket,
/// `host:port` over TCP.
fn peer_of(conn: &mut AnyConnection) -> String {
    #[derive(QueryableByName)]
    struct Host {
        #[diesel(sql_type = Text)]
        host: String,
    }
    diesel::sql_query("SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()")
        .get_result::<Host>(conn)
        .unwrap()
        .host
}

/// The URL of `t` with another host part and extra query arguments.
fn url_via(t: &TestDb, host: &str, query: &str) -> String {
    let DbUrl::Mysql(m) = t.parsed_url() else { panic!("a MariaDB TestDb") };
    let auth = match m.password() {
        Some(pw) => format!("{}:{}", m.user, url::form_urlencoded::byte_serialize(pw.as_bytes()).collect::<String>()),
        None => m.user.clone(),
    };
    format!("mysql+pymysql://{auth}@{host}/{}{query}", m.database.unwrap())
}

/// `unix_socket` and, as libmariadb did, a bare `localhost` reach the server
/// over its socket; an address is TCP.
#[test]
fn localhost_and_unix_socket_go_through_the_servers_socket() {
    #[derive(QueryableByName)]
    struct Socket {
        #[diesel(sql_type = Text)]
        socket: String,
    }
    let t = TestDb::mysql();
    let socket =
        diesel::sql_query("SELECT @@socket AS socket").get_result::<Socket>(&mut *t.db().conn().unwrap()).unwrap();
    let socket = socket.socket;
    assert!(std::path::Path::new(&socket).exists(), "the server's socket {socket} is on this machine");

    let tcp = peer_of(&mut t.db().conn().unwrap());
    assert!(tcp.starts_with("127.0.0.1:") || tcp.starts_with("localhost:"), "TCP: {tcp}");

    let named = Database::connect(&test_settings(&url_via(&t, "", &format!("?unix_socket={socket}")))).unwrap();
    assert_eq!(peer_of(&mut named.conn().unwrap()), "localhost", "unix_socket={socket}");
    assert_eq!(migrate::version(&named).unwrap(), migrate::known_versions().last().cloned());

    if staffeln::db::mysql::DEFAULT_SOCKETS.contains(&socket.as_str()) {
        let bare = Database::connect(&test_settings(&url_via(&t, "localhost", ""))).unwrap();
        assert_eq!(peer_of(&mut bare.conn().unwrap()), "localhost", "localhost means the default socket");
    }
}

/// A server that accepts the TCP connection but never greets (a listener
/// nobody accepts on) fails one attempt after `connect_timeout`, named.
#[test]
fn a_silent_server_fails_after_connect_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("mysql+pymysql://staffeln:s3cr3t@127.0.0.1:{port}/staffeln?connect_timeout=1");
    let err = connect_err(&test_settings(&url));
    let text = all_text(&err);
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("connect_timeout (1 s)"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    drop(silent);
}

/// TLS as asked for: `ssl_mode=PREFERRED` falls back to plain on a server
/// without TLS and `REQUIRED` fails saying so; on a server with TLS both
/// are encrypted.
#[test]
fn ssl_mode_required_and_preferred_against_the_test_server() {
    #[derive(QueryableByName)]
    struct Var {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let t = TestDb::mysql();
    let have_ssl = diesel::sql_query("SELECT @@have_ssl AS value").get_result::<Var>(&mut *t.db().conn().unwrap());
    let server_tls = have_ssl.unwrap().value == "YES";
    let host = server_host_port();
    let cipher = |db: &Database| {
        diesel::sql_query(
            "SELECT variable_value AS value FROM information_schema.session_status WHERE variable_name = 'Ssl_cipher'",
        )
        .get_result::<Var>(&mut *db.conn().unwrap())
        .unwrap()
        .value
    };
    let preferred = Database::connect(&test_settings(&url_via(&t, &host, "?ssl_mode=PREFERRED"))).unwrap();
    assert_eq!(cipher(&preferred).is_empty(), !server_tls, "PREFERRED");
    let required = Database::connect(&test_settings(&url_via(&t, &host, "?ssl_mode=REQUIRED")));
    if server_tls {
        assert!(!cipher(&required.unwrap()).is_empty(), "REQUIRED is encrypted");
    } else {
        let text = all_text(&required.unwrap_err());
        assert!(text.contains("the URL asks for TLS; the server offers none"), "{text}");
    }
    let bad = connect_err(&test_settings(&url_via(&t, &host, "?ssl_mode=SOMETIMES")));
    assert!(matches!(bad, DbError::InvalidUrl { .. }) && all_text(&bad).contains("`SOMETIMES`"), "{bad:?}");
}

/// A connection belongs to no caller's runtime: opened in a runtime's
/// blocking thread, it keeps working after that runtime is gone (the pool
/// hands connections from thread to thread).
#[test]
fn connections_outlive_the_runtime_that_opened_them() {
    use diesel::Connection;
    let t = TestDb::mysql();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let url = t.url.clone();
    let mut any = runtime
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut any = AnyConnection::Mysql(staffeln::db::mysql::MysqlConn::establish(&url).unwrap());
                backups::insert(&mut any, &new_backup("b-rt", "p1")).unwrap();
                any
            })
            .await
        })
        .unwrap();
    drop(runtime);
    let row = backups::get(&mut any, "b-rt").unwrap();
    assert_eq!(row.map(|r| r.project_id).as_deref(), Some("p1"));
}

/// A MariaDB server of the test's own with TLS (the shared one has none):
/// a fresh data directory, the test CA's certificate for 127.0.0.1, a free
/// port; stopped and removed on drop.
struct TlsMariaDb {
    child: std::process::Child,
    port: u16,
    certs: crate::support::TestCerts,
    _dir: tempfile::TempDir,
}

impl TlsMariaDb {
    fn start() -> TlsMariaDb {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let as_root = euid_is_root();
        let user = if as_root { "--user=root".to_owned() } else { String::new() };
        let install = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .args(Some(&user).filter(|u| !u.is_empty()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db (apt-get install mariadb-server): {e}"));
        assert!(install.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&install.stderr));
        let certs = crate::support::test_certs();
        let port = closed_port();
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("s.sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args(["--bind-address=127.0.0.1", "--skip-networking=0", "--skip-log-error"])
            .arg(format!("--port={port}"))
            .arg(format!("--ssl-ca={}", certs.ca.display()))
            .arg(format!("--ssl-cert={}", certs.cert.display()))
            .arg(format!("--ssl-key={}", certs.key.display()))
            .args(Some(&user).filter(|u| !u.is_empty()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = TlsMariaDb { child, port, certs, _dir: dir };
        let deadline = std::time::Instant::now() + crate::support::HANG;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the TLS MariaDB exited at start: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "the TLS MariaDB never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self, query: &str) -> String {
        format!("mysql+pymysql://root@127.0.0.1:{}/mysql{query}", self.port)
    }
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn euid_is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// TLS end to end against a server with the test CA's certificate for
/// 127.0.0.1: `ssl_ca` alone checks chain and host name (PyMySQL's rule),
/// another CA is refused, `REQUIRED` encrypts without checking, and every
/// connection is really encrypted.
#[test]
fn tls_to_mariadb_checks_the_certificate_as_asked() {
    #[derive(QueryableByName)]
    struct Cipher {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let server = TlsMariaDb::start();
    let cipher = |url: &str| {
        let db = Database::connect(&test_settings(url)).unwrap_or_else(|e| panic!("{url}: {}", all_text(&e)));
        diesel::sql_query(
            "SELECT variable_value AS value FROM information_schema.session_status WHERE variable_name = 'Ssl_cipher'",
        )
        .get_result::<Cipher>(&mut *db.conn().unwrap())
        .unwrap()
        .value
    };
    let ca = server.certs.ca.display().to_string();
    assert!(!cipher(&server.url(&format!("?ssl_ca={ca}"))).is_empty(), "ssl_ca: verified TLS");
    assert!(!cipher(&server.url(&format!("?ssl_ca={ca}&ssl_mode=VERIFY_IDENTITY"))).is_empty());
    assert!(!cipher(&server.url("?ssl_mode=REQUIRED")).is_empty(), "REQUIRED without a CA");
    assert!(cipher(&server.url("")).is_empty(), "no ssl_* argument: plain, as before");

    // Another CA: the server's certificate is refused, and the error says so.
    let other = crate::support::test_certs();
    let err = connect_err(&test_settings(&server.url(&format!("?ssl_ca={}", other.ca.display()))));
    let text = all_text(&err);
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port)) && text.to_lowercase().contains("certificate"),
        "{text}"
    );
}

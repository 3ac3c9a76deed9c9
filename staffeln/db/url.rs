//! `[database] connection` in the SQLAlchemy form OpenStack deployments write,
//! turned into a typed [`DbUrl`].
//!
//! Accepted forms (the `+driver` part of the scheme is ignored, as oslo.db's
//! dialect is what matters):
//!
//! | written | meaning |
//! |---|---|
//! | `mysql://`, `mysql+pymysql://`, `mysql+mysqldb://`, `mariadb://`, `mariadb+pymysql://`, … | MySQL/MariaDB through the pure-Rust client ([`super::mysql`]) |
//! | `sqlite:///relative/path` | SQLite file relative to the working directory |
//! | `sqlite:////abs/path` | SQLite file at `/abs/path` |
//! | `sqlite://`, `sqlite:///`, `sqlite:///:memory:` | in-memory SQLite: **rejected** (see below) |
//! | anything else (`postgresql://`, …) | rejected, the error names the scheme |
//!
//! MySQL query arguments, decided one by one:
//! * kept for the client ([`super::mysql`] says what each means): `unix_socket`,
//!   `connect_timeout`, `ssl_ca`, `ssl_cert`, `ssl_key`, `ssl_mode`, `ssl_check_hostname`;
//! * dropped on purpose: `charset` (every connection uses `utf8mb4`, a superset of the
//!   `utf8` oslo.db adds), `plugin` (SQLAlchemy engine plugins such as devstack's
//!   `dbcounter` have no meaning here);
//! * rejected: `read_default_file` / `read_default_group` (the client reads no
//!   `my.cnf`; silently ignoring them would connect as the wrong user: put user,
//!   password, host and database in the URL), `database` (it would conflict
//!   with the path);
//! * anything else is dropped and listed in [`MysqlUrl::ignored_params`], so the pool
//!   can log a warning naming it.
//!
//! In-memory SQLite is rejected because every pooled connection would open its
//! own, empty database: the migrations of one connection would be invisible to
//! the next. Tests use a temporary file instead.
//!
//! The password never leaves this module in text: [`DbUrl`]'s `Display` and
//! `Debug` print it as `***`, and [`mask_password`] does the same for a string
//! that could not be parsed (errors carry only masked text).

use std::fmt;
use std::path::PathBuf;

use super::backend::Backend;
use super::error::DbError;

/// Query arguments the client receives as they were written (see `super::mysql`).
const MYSQL_KEPT_PARAMS: &[&str] =
    &["unix_socket", "connect_timeout", "ssl_ca", "ssl_cert", "ssl_key", "ssl_mode", "ssl_check_hostname"];
/// Query arguments dropped on purpose (see the module doc).
const MYSQL_DROPPED_PARAMS: &[&str] = &["charset", "plugin"];
/// Query arguments that cannot be honoured and are refused.
const MYSQL_REJECTED_PARAMS: &[&str] = &["read_default_file", "read_default_group", "database"];
/// Query argument names whose values are secrets (PyMySQL accepts a password there).
const SECRET_PARAMS: &[&str] = &["password", "passwd"];

/// A parsed `[database] connection`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Mysql(MysqlUrl),
    Sqlite {
        /// The database file, relative to the working directory unless absolute.
        path: PathBuf,
        /// The URL as written, password-free by construction.
        written: String,
    },
}

/// The parts of a MySQL/MariaDB URL. The password is private: read it through
/// [`MysqlUrl::password`], and only to open a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlUrl {
    /// The scheme as written (`mysql+pymysql`), for messages.
    pub scheme: String,
    /// User name, percent-decoded.
    pub user: String,
    password: Option<String>,
    /// Host name or address (`localhost`, the local socket, when the URL has none).
    pub host: String,
    pub port: Option<u16>,
    /// The database; `None` when the URL names only the server.
    pub database: Option<String>,
    /// Arguments passed on to the client (see the module doc), in the order written.
    pub params: Vec<(String, String)>,
    /// Names of the arguments that were dropped because nothing here knows them.
    pub ignored_params: Vec<String>,
    /// The URL as written with the password replaced by `***`.
    masked: String,
}

impl MysqlUrl {
    /// The password, percent-decoded. Only for opening a connection.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// This server with another database (`None`: the server itself), e.g. to
    /// create the database before connecting to it.
    pub fn with_database(&self, database: Option<&str>) -> MysqlUrl {
        let mut other = self.clone();
        other.database = database.map(str::to_owned);
        let path_start = other.masked.find("://").map_or(0, |i| i + 3);
        let (head, tail) = other.masked.split_at(path_start);
        let query = tail.find('?').map_or("", |i| &tail[i..]);
        let authority = tail.split(['/', '?', '#']).next().unwrap_or("");
        other.masked = format!("{head}{authority}/{}{query}", database.unwrap_or(""));
        other
    }

    /// The value of a kept query argument (the last one written).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("params", &self.params)
            .field("ignored_params", &self.ignored_params)
            .finish()
    }
}

impl DbUrl {
    /// Parses `[database] connection`. Errors carry the URL with its password masked.
    pub fn parse(raw: &str) -> Result<DbUrl, DbError> {
        let raw = raw.trim();
        let invalid = |reason: String| DbError::InvalidUrl { url: mask_password(raw), reason };
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(invalid(
                "expected an SQLAlchemy URL such as mysql+pymysql://user:password@host/staffeln \
                 or sqlite:////var/lib/staffeln/staffeln.sqlite"
                    .to_owned(),
            ));
        };
        let dialect = scheme.split('+').next().unwrap_or(scheme).to_ascii_lowercase();
        match dialect.as_str() {
            "mysql" | "mariadb" => parse_mysql(raw, scheme, rest).map(DbUrl::Mysql).map_err(invalid),
            "sqlite" => parse_sqlite(rest).map_err(invalid),
            _ => Err(invalid(format!(
                "unsupported database scheme `{scheme}`: staffeln speaks MySQL/MariaDB \
                 (mysql://, mysql+pymysql://, mariadb://) and SQLite (sqlite:///path)"
            ))),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Mysql(_) => Backend::Mysql,
            DbUrl::Sqlite { .. } => Backend::Sqlite,
        }
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Mysql(m) => f.write_str(&m.masked),
            DbUrl::Sqlite { written, .. } => f.write_str(written),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Mysql(m) => f.debug_tuple("Mysql").field(m).finish(),
            DbUrl::Sqlite { path, .. } => f.debug_struct("Sqlite").field("path", path).finish(),
        }
    }
}

fn parse_mysql(raw: &str, scheme: &str, rest: &str) -> Result<MysqlUrl, String> {
    // The url crate does the RFC 3986 work (IPv6 hosts, percent-decoding, ports);
    // it only needs a scheme it does not special-case.
    // `user@/db?unix_socket=…` (no host) is valid for SQLAlchemy but not for the
    // url crate: spell the client library's default, `localhost` (the local socket).
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = if rest[..authority_end].ends_with('@') {
        format!("{}localhost{}", &rest[..authority_end], &rest[authority_end..])
    } else {
        rest.to_owned()
    };
    let parsed = url::Url::parse(&format!("mysql://{rest}")).map_err(|e| format!("not a valid URL ({e})"))?;
    let decode = |s: &str| -> Result<String, String> {
        percent_decode(s).ok_or_else(|| "user or password is not valid percent-encoded UTF-8".to_owned())
    };
    let user = decode(parsed.username())?;
    let password = parsed.password().map(decode).transpose()?;
    let host = match parsed.host() {
        Some(url::Host::Ipv6(addr)) => addr.to_string(),
        Some(h) => decode(&h.to_string())?,
        None => String::new(),
    };
    let mut segments = parsed.path_segments().map(|s| s.collect::<Vec<_>>()).unwrap_or_default();
    segments.retain(|s| !s.is_empty());
    if segments.len() > 1 {
        return Err(format!("the path must name one database, not `/{}`", segments.join("/")));
    }
    let database = segments.first().map(|s| decode(s)).transpose()?;

    let mut params = Vec::new();
    let mut ignored_params = Vec::new();
    for (key, value) in parsed.query_pairs() {
        let key = key.into_owned();
        if MYSQL_KEPT_PARAMS.contains(&key.as_str()) {
            params.push((key, value.into_owned()));
        } else if MYSQL_DROPPED_PARAMS.contains(&key.as_str()) {
            // deliberately dropped, see the module doc
        } else if MYSQL_REJECTED_PARAMS.contains(&key.as_str()) {
            return Err(format!(
                "query argument `{key}` is not supported; put user, password, host and \
                 database in the URL itself"
            ));
        } else if !ignored_params.contains(&key) {
            ignored_params.push(key);
        }
    }
    Ok(MysqlUrl {
        scheme: scheme.to_owned(),
        user,
        password,
        host,
        port: parsed.port(),
        database,
        params,
        ignored_params,
        masked: mask_password(raw),
    })
}

fn parse_sqlite(rest: &str) -> Result<DbUrl, String> {
    // SQLAlchemy: `sqlite://<nohost>/<path>`: one slash ends the (empty)
    // authority, what follows is the path as written (so `////abs` is `/abs`).
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() {
        return Err(format!(
            "SQLite URLs take no query arguments here (got `?{query}`); write sqlite:///relative/path \
             or sqlite:////absolute/path"
        ));
    }
    let path = match location.split_once('/') {
        Some(("", path)) => path,
        Some((host, _)) => {
            return Err(format!(
                "a SQLite URL has no host (got `{host}`); write sqlite:///relative/path or \
                 sqlite:////absolute/path"
            ));
        }
        None if location.is_empty() => "",
        None => {
            return Err(format!(
                "a SQLite URL has no host (got `{location}`); write sqlite:///relative/path or \
                 sqlite:////absolute/path"
            ));
        }
    };
    if path.is_empty() || path == ":memory:" {
        return Err("in-memory SQLite is not supported: every pooled connection would see its own \
                    empty database; use a file, e.g. sqlite:////var/lib/staffeln/staffeln.sqlite"
            .to_owned());
    }
    Ok(DbUrl::Sqlite { path: PathBuf::from(path), written: format!("sqlite://{rest}") })
}

/// RFC 3986 percent-decoding (`+` stays `+`); `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `raw` with the password of its user-info and the values of `password=` /
/// `passwd=` query arguments replaced by `***`. Works on strings that are not
/// valid URLs, so that every error can show what was written.
pub fn mask_password(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        // Not URL-shaped: nothing can be told apart from a password.
        return "***".to_owned();
    };
    let (head, tail) = raw.split_at(scheme_end);
    let authority_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let (authority, after) = tail.split_at(authority_end);
    let mut out = String::from(head);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match after.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&masked.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn mysql(raw: &str) -> MysqlUrl {
        match DbUrl::parse(raw).unwrap() {
            DbUrl::Mysql(m) => m,
            other => panic!("{raw}: expected MySQL, got {other:?}"),
        }
    }

    fn err(raw: &str) -> String {
        let e = DbUrl::parse(raw).expect_err(raw);
        let text = format!("{e} / {e:?}");
        assert!(!text.contains("s3cr3t"), "{raw}: the password leaked: {text}");
        text
    }

    #[test]
    fn every_mysql_dialect_and_driver_is_mysql() {
        for scheme in ["mysql", "mysql+pymysql", "mysql+mysqldb", "MySQL+PyMySQL", "mariadb", "mariadb+pymysql"] {
            let m = mysql(&format!("{scheme}://staffeln:pw@db.example:3307/staffeln"));
            assert_eq!(m.scheme, scheme);
            assert_eq!((m.user.as_str(), m.password()), ("staffeln", Some("pw")));
            assert_eq!((m.host.as_str(), m.port), ("db.example", Some(3307)));
            assert_eq!(m.database.as_deref(), Some("staffeln"));
        }
    }

    #[test]
    fn devstack_query_arguments_are_dropped_and_socket_and_tls_kept() {
        let m = mysql(
            "mysql+pymysql://root:pw@127.0.0.1/staffeln?charset=utf8&plugin=dbcounter\
             &unix_socket=/run/mysqld/mysqld.sock&ssl_ca=/etc/ca.pem&ssl_mode=required&connect_timeout=5\
             &read_timeout=30",
        );
        assert_eq!(
            m.params,
            [
                ("unix_socket".to_owned(), "/run/mysqld/mysqld.sock".to_owned()),
                ("ssl_ca".to_owned(), "/etc/ca.pem".to_owned()),
                ("ssl_mode".to_owned(), "required".to_owned()),
                ("connect_timeout".to_owned(), "5".to_owned()),
            ]
        );
        assert_eq!(m.ignored_params, ["read_timeout"]);
        assert_eq!(m.param("ssl_mode"), Some("required"));
        assert_eq!(m.param("charset"), None);
    }

    #[test]
    fn my_cnf_arguments_are_refused() {
        let text = err("mysql+pymysql://u:s3cr3t@h/db?read_default_file=/etc/my.cnf");
        assert!(text.contains("read_default_file"), "{text}");
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        let m = mysql("mysql://st%40ff:p%40ss%2Fw%3Ard+x@[::1]:3306/db%2Dx");
        assert_eq!((m.user.as_str(), m.password()), ("st@ff", Some("p@ss/w:rd+x")));
        assert_eq!(m.host, "::1");
        assert_eq!(m.database.as_deref(), Some("db-x"));
    }

    #[test]
    fn server_only_and_socket_only_urls() {
        let m = mysql("mysql://root@localhost");
        assert_eq!((m.host.as_str(), m.database.as_deref(), m.password()), ("localhost", None, None));
        let m = mysql("mysql://root@/staffeln?unix_socket=/tmp/s");
        assert_eq!(m.host, "localhost");
        assert_eq!(m.param("unix_socket"), Some("/tmp/s"));
        let other = m.with_database(Some("other"));
        assert_eq!(other.database.as_deref(), Some("other"));
        assert_eq!(DbUrl::Mysql(other).to_string(), "mysql://root@/other?unix_socket=/tmp/s");
    }

    #[test]
    fn two_path_segments_are_refused() {
        let text = err("mysql://u:s3cr3t@h/a/b");
        assert!(text.contains("one database"), "{text}");
    }

    #[test]
    fn sqlite_relative_and_absolute_paths() {
        let cases = [
            ("sqlite:///staffeln.sqlite", "staffeln.sqlite"),
            ("sqlite:///var/staffeln.sqlite", "var/staffeln.sqlite"),
            ("sqlite:////var/lib/staffeln/staffeln.sqlite", "/var/lib/staffeln/staffeln.sqlite"),
            ("sqlite+pysqlite:////tmp/a b.db", "/tmp/a b.db"),
        ];
        for (raw, path) in cases {
            match DbUrl::parse(raw).unwrap() {
                DbUrl::Sqlite { path: p, written } => {
                    assert_eq!(p, PathBuf::from(path), "{raw}");
                    assert_eq!(written, raw.replace("+pysqlite", ""), "{raw}");
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn in_memory_and_hosted_sqlite_are_refused() {
        for raw in ["sqlite://", "sqlite:///", "sqlite:///:memory:"] {
            assert!(err(raw).contains("in-memory SQLite is not supported"), "{raw}");
        }
        assert!(err("sqlite://host/x.db").contains("no host"));
        assert!(err("sqlite:////x.db?mode=ro").contains("no query arguments"));
    }

    #[test]
    fn unknown_schemes_are_named() {
        let text = err("postgresql+psycopg2://staffeln:s3cr3t@db/staffeln");
        assert!(text.contains("unsupported database scheme `postgresql+psycopg2`"), "{text}");
        assert!(text.contains("postgresql+psycopg2://staffeln:***@db/staffeln"), "{text}");
        assert!(err("staffeln.sqlite").contains("expected an SQLAlchemy URL"));
    }

    #[test]
    fn unparsable_urls_do_not_leak_the_password() {
        err("mysql://u:s3cr3t@h:notaport/db");
        err("mysql://u:s3cr3t@h:99999/db");
        err("mysql+pymysql://u:s3cr3t@h/db?read_default_group=x&password=s3cr3t");
    }

    #[test]
    fn display_and_debug_mask_the_password() {
        let url = DbUrl::parse("mysql+pymysql://staffeln:s3cr3t@db:3306/staffeln?charset=utf8&passwd=s3cr3t").unwrap();
        assert_eq!(url.to_string(), "mysql+pymysql://staffeln:***@db:3306/staffeln?charset=utf8&passwd=***");
        assert!(!format!("{url:?}").contains("s3cr3t"), "{url:?}");
    }

    #[test]
    fn masking_works_on_any_text() {
        let cases = [
            ("mysql://u:p@h/db", "mysql://u:***@h/db"),
            ("mysql://u:p@ss@h/db", "mysql://u:***@h/db"),
            ("mysql://u@h/db", "mysql://u@h/db"),
            ("mysql://h/db?password=x&a=b", "mysql://h/db?password=***&a=b"),
            ("mysql://u:p@h", "mysql://u:***@h"),
            ("no scheme u:p@h", "***"),
        ];
        for (raw, masked) in cases {
            assert_eq!(mask_password(raw), masked, "{raw}");
        }
    }
}

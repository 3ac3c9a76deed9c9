//! The deletion guard: `POST` (oslo.policy) and `GET` (people)
//! `/v1/backup?backup_id=<uuid>`.
//!
//! oslo.policy allows the deletion iff the body is exactly `True`, ignores
//! the status, and turns a refused connection or a timeout into an error of
//! the user's `DELETE` (see `oslo-policy-http-check.md`). So:
//!
//! * **Which backup.** The id comes from the `backup_id` query parameter or,
//!   when the query has none, from the `id` of the body's `target` (form
//!   fields holding JSON documents, or one JSON object). oslo.policy does not
//!   escape what it puts in the URL, so the id must be a UUID (Cinder's ids
//!   are), may appear once, and must equal the target's id when both are
//!   there. Anything else is a 400 whose body is not `True`.
//! * **The decision** is [`decide`], a pure function of what the database and
//!   Cinder said: refused (`False`, 401) when `backup_data` has the backup or
//!   Cinder's metadata carries `__automated_backup` = true; allowed (`True`,
//!   200) when the database does not know it and Cinder says it is a manual
//!   backup, or does not know it either; undecided (503, not `True`) when the
//!   database or Cinder failed. Cinder is asked only when the database does
//!   not know the backup.
//! * **A backup nobody knows** (no row, Cinder 404) is allowed: no evidence
//!   makes it automated, and Cinder, which asks the guard only after loading
//!   the backup, answers the `DELETE` with 404 itself if it is gone. The one
//!   way this could let an automated backup go is a service user that cannot
//!   see other projects' backups (Cinder answers 404 to non-admins): the
//!   Staffeln service user must have the admin role, as the conductor needs
//!   anyway; backups Staffeln recorded are refused from the database alone.
//! * **Fast.** Allowed and refused answers are cached for `[api] cache_ttl`
//!   (whether a backup is automated never changes); the request timeout
//!   bounds everything else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::Value;
use tracing::{debug, error, info};

use super::App;
use super::error::{RequestError, text};
use crate::db::backups;
use crate::objects::BackupId;
use crate::service::chain;

/// The Cinder backup metadata key the conductor sets to `True` on the
/// backups it creates (`conductor::AUTOMATED_KEY`; a test keeps them equal).
pub const AUTOMATED_KEY: &str = "__automated_backup";

/// How long a shown input may be in an error message.
const SHOWN_MAX: usize = 40;

/// Why the backup id of a guard request cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "backup_id is missing: call /v1/backup?backup_id=<uuid>, or send oslo.policy's body with the backup \
         as target"
    )]
    Missing,
    #[error("backup_id is given {count} times in the query; give it once")]
    Repeated { count: usize },
    #[error("{source_name} {shown} is not a backup id: {reason}")]
    Malformed { source_name: &'static str, shown: String, reason: String },
    #[error("backup_id {query} of the query is not the target's id {target}")]
    Mismatch { query: String, target: String },
    #[error("the body's {field} is not valid: {reason}")]
    Body { field: &'static str, reason: String },
    #[error("unsupported content type {0:?}: send application/x-www-form-urlencoded or application/json")]
    UnsupportedContentType(String),
}

/// `value` quoted, escaped and cut for an error message.
pub(crate) fn shown(value: &str) -> String {
    let count = value.chars().count();
    if count <= SHOWN_MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_MAX).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

/// A canonical (lower-case, hyphenated) UUID, or why `value` is not one.
pub(crate) fn parse_uuid(source_name: &'static str, value: &str) -> Result<String, IdError> {
    let malformed = |reason: String| IdError::Malformed { source_name, shown: shown(value), reason };
    if value.is_empty() {
        return Err(malformed("it is empty".to_owned()));
    }
    if value.len() != 36 {
        return Err(malformed(format!("a UUID has 36 characters, this has {}", value.chars().count())));
    }
    match uuid::Uuid::try_parse(value) {
        Ok(id) => Ok(id.hyphenated().to_string()),
        Err(_) => Err(malformed("expected hexadecimal digits grouped 8-4-4-4-12".to_owned())),
    }
}

/// The backup a guard request is about: the `backup_id` of `query` and/or
/// the `id` of the body's `target` (form-encoded JSON fields, or one JSON
/// object, by `content_type`; an empty body has no target).
pub fn backup_id(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<BackupId, IdError> {
    let from_query: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "backup_id")
        .map(|(_, v)| v.into_owned())
        .collect();
    if from_query.len() > 1 {
        return Err(IdError::Repeated { count: from_query.len() });
    }
    let from_query = from_query.into_iter().next();
    let from_target = target_id(content_type, body)?;
    let id = match (from_query, from_target) {
        (Some(q), Some(t)) => {
            let q = parse_uuid("backup_id", &q)?;
            let t = parse_uuid("target id", &t)?;
            if q != t {
                return Err(IdError::Mismatch { query: q, target: t });
            }
            q
        }
        (Some(q), None) => parse_uuid("backup_id", &q)?,
        (None, Some(t)) => parse_uuid("target id", &t)?,
        (None, None) => return Err(IdError::Missing),
    };
    Ok(BackupId(id))
}

/// The `id` of the body's `target`, if the body has one.
fn target_id(content_type: Option<&str>, body: &[u8]) -> Result<Option<String>, IdError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mime = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let target: Option<Value> = match mime.as_str() {
        "application/x-www-form-urlencoded" => {
            let mut targets = url::form_urlencoded::parse(body).filter(|(k, _)| k == "target").map(|(_, v)| v);
            let first = targets.next();
            if targets.next().is_some() {
                return Err(IdError::Body { field: "target", reason: "it is given more than once".to_owned() });
            }
            match first {
                None => None,
                Some(text) => Some(
                    serde_json::from_str(&text)
                        .map_err(|e| IdError::Body { field: "target", reason: format!("not a JSON document: {e}") })?,
                ),
            }
        }
        "application/json" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| IdError::Body { field: "JSON body", reason: e.to_string() })?;
            match doc {
                Value::Object(mut map) => map.remove("target"),
                _ => return Err(IdError::Body { field: "JSON body", reason: "not an object".to_owned() }),
            }
        }
        _ => return Err(IdError::UnsupportedContentType(mime)),
    };
    match target {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => match map.get("id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(id)) => Ok(Some(id.clone())),
            Some(other) => Err(IdError::Malformed {
                source_name: "target id",
                shown: shown(&other.to_string()),
                reason: "not a string".to_owned(),
            }),
        },
        Some(_) => Err(IdError::Body { field: "target", reason: "not a JSON object".to_owned() }),
    }
}

/// What the database said about a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbLookup {
    /// `backup_data` has it: Staffeln made it.
    Automated,
    /// No row.
    Unknown,
    /// The query failed.
    Failed,
}

/// What Cinder said about a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CinderLookup {
    /// Its metadata carries `__automated_backup` = true.
    Automated,
    /// It exists without that mark.
    Manual,
    /// 404.
    NotFound,
    /// Any other failure (no answer, 5xx, no credentials).
    Failed,
}

/// The guard's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `True`: not an automated backup.
    Allow,
    /// `False`: an automated backup.
    Deny,
    /// Could not decide; never `True`.
    Error,
}

impl Verdict {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allow => "allowed",
            Verdict::Deny => "denied",
            Verdict::Error => "error",
        }
    }
}

/// Whether the database's answer leaves the question to Cinder.
pub fn needs_cinder(db: DbLookup) -> bool {
    db == DbLookup::Unknown
}

/// The decision (see the module doc); `cinder` is `None` when Cinder was not
/// asked. Only positive evidence allows.
pub fn decide(db: DbLookup, cinder: Option<CinderLookup>) -> Verdict {
    match (db, cinder) {
        (DbLookup::Automated, _) | (_, Some(CinderLookup::Automated)) => Verdict::Deny,
        (DbLookup::Failed, _) => Verdict::Error,
        (DbLookup::Unknown, Some(CinderLookup::Manual | CinderLookup::NotFound)) => Verdict::Allow,
        (DbLookup::Unknown, Some(CinderLookup::Failed) | None) => Verdict::Error,
    }
}

/// Whether a metadata value means "yes" (`True`, `true`, `yes`, `1`).
pub fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
}

/// Recent decisions by backup id, for `ttl`; at most `capacity` of them
/// (when full, expired ones go, and if none has expired the cache starts
/// over). Only allowed and refused answers are kept, never failures.
pub(crate) struct DecisionCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<String, (Verdict, Instant)>>,
}

impl DecisionCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> DecisionCache {
        DecisionCache { ttl, capacity, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Verdict, Instant)>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> Option<Verdict> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.lock();
        map.get(id).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| *v)
    }

    pub(crate) fn put(&self, id: &str, verdict: Verdict) {
        if self.ttl.is_zero() || self.capacity == 0 || verdict == Verdict::Error {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(id) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(id.to_owned(), (verdict, now + self.ttl));
    }
}

/// The response to a verdict.
pub fn respond(verdict: Verdict, id: &BackupId, request_id: &str) -> Response<Full<Bytes>> {
    match verdict {
        Verdict::Allow => text(StatusCode::OK, "True"),
        Verdict::Deny => text(StatusCode::UNAUTHORIZED, "False"),
        Verdict::Error => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Error: cannot decide whether backup {id} is an automated backup; refused. \
                 See the staffeln-api log, request {request_id}."
            ),
        ),
    }
}

/// The guard's handler.
pub(crate) async fn check(
    app: &App,
    request_id: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, RequestError> {
    let id = match backup_id(query, content_type, body) {
        Ok(id) => id,
        Err(err) => {
            app.counters.guard_bad_request();
            info!("deletion guard: refused a malformed request: {err}");
            return Err(err.into());
        }
    };
    if let Some(verdict) = app.decisions.get(id.as_str()) {
        app.counters.guard(verdict, true);
        debug!(backup.id = %id, "deletion guard: {} (cached)", verdict.label());
        return Ok(respond(verdict, &id, request_id));
    }
    let db = lookup_db(app, &id).await;
    let cinder = if needs_cinder(db) { Some(lookup_cinder(app, &id).await) } else { None };
    let verdict = decide(db, cinder);
    match verdict {
        Verdict::Deny => {
            let by = if db == DbLookup::Automated { "recorded in the database" } else { "marked in Cinder" };
            info!(backup.id = %id, "deletion guard: backup {id} is an automated backup ({by}): refused")
        }
        Verdict::Allow => debug!(backup.id = %id, "deletion guard: backup {id} is not an automated backup: allowed"),
        Verdict::Error => {
            error!(backup.id = %id, "deletion guard: cannot decide about backup {id} (database: {db:?}, Cinder: {cinder:?}): refused")
        }
    }
    app.decisions.put(id.as_str(), verdict);
    app.counters.guard(verdict, false);
    Ok(respond(verdict, &id, request_id))
}

async fn lookup_db(app: &App, id: &BackupId) -> DbLookup {
    let db = app.db.clone();
    let key = id.0.clone();
    let wait = app.db_wait();
    let found = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn_timeout(wait)?;
        backups::get(&mut conn, &key)
    })
    .await;
    match found {
        Ok(Ok(Some(_))) => DbLookup::Automated,
        Ok(Ok(None)) => DbLookup::Unknown,
        Ok(Err(err)) => {
            error!(backup.id = %id, "deletion guard: database lookup of backup {id} failed: {}", chain(&err));
            DbLookup::Failed
        }
        Err(err) => {
            error!(backup.id = %id, "deletion guard: database lookup of backup {id} did not finish: {err}");
            DbLookup::Failed
        }
    }
}

async fn lookup_cinder(app: &App, id: &BackupId) -> CinderLookup {
    let os = match app.cloud.client().await {
        Ok(os) => os,
        Err(err) => {
            error!(backup.id = %id, "deletion guard: cannot ask Cinder about backup {id}: {}", chain(&err));
            return CinderLookup::Failed;
        }
    };
    match os.backup(id).await {
        Ok(backup) if backup.metadata.get(AUTOMATED_KEY).is_some_and(|v| is_true(v)) => CinderLookup::Automated,
        Ok(_) => CinderLookup::Manual,
        Err(err) if err.is_not_found() => {
            debug!(backup.id = %id, "deletion guard: Cinder does not know backup {id}");
            CinderLookup::NotFound
        }
        Err(err) => {
            error!(backup.id = %id, "deletion guard: Cinder lookup of backup {id} failed: {}", chain(&err));
            CinderLookup::Failed
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ID: &str = "0b9a1f4e-6c3d-4b0e-9a59-5d3f8e1c2a10";
    const OTHER: &str = "5c3f1b4a-8e2d-4f6a-9b1c-7d0e2f3a4b5c";

    #[test]
    fn only_positive_evidence_allows() {
        use CinderLookup as C;
        use DbLookup as D;
        use Verdict::{Allow, Deny, Error};
        let cases: &[(DbLookup, Option<CinderLookup>, Verdict)] = &[
            (D::Automated, None, Deny),            // recorded: no need to ask Cinder
            (D::Automated, Some(C::Manual), Deny), // the record wins over missing metadata
            (D::Automated, Some(C::Failed), Deny),
            (D::Unknown, Some(C::Automated), Deny), // made, not recorded yet (or lost)
            (D::Unknown, Some(C::Manual), Allow),   // a user's own backup
            (D::Unknown, Some(C::NotFound), Allow), // nobody's: Cinder 404s the delete itself
            (D::Unknown, Some(C::Failed), Error),   // fail closed
            (D::Unknown, None, Error),              // Cinder not asked: cannot tell
            (D::Failed, None, Error),               // fail closed
            (D::Failed, Some(C::Manual), Error),    // the database might have known better
            (D::Failed, Some(C::NotFound), Error),
            (D::Failed, Some(C::Automated), Deny), // a refusal is safe either way
        ];
        for &(db, cinder, expected) in cases {
            assert_eq!(decide(db, cinder), expected, "db={db:?} cinder={cinder:?}");
        }
        assert!(needs_cinder(D::Unknown));
        assert!(!needs_cinder(D::Automated) && !needs_cinder(D::Failed));
    }

    fn form(target: &str) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rule", "\"backup:delete\"")
            .append_pair("target", target)
            .append_pair("credentials", "{\"is_admin\": false}")
            .finish()
            .into_bytes()
    }

    #[test]
    fn the_id_comes_from_the_query_or_the_target() {
        let q = format!("backup_id={ID}");
        assert_eq!(backup_id(Some(&q), None, b"").unwrap().0, ID);
        let body = form(&format!("{{\"id\": \"{ID}\", \"project_id\": \"p\", \"metadata\": {{}}}}"));
        assert_eq!(backup_id(None, Some("application/x-www-form-urlencoded"), &body).unwrap().0, ID);
        assert_eq!(backup_id(Some(&q), None, &body).unwrap().0, ID, "both, equal");
        let json = format!("{{\"rule\": \"backup:delete\", \"target\": {{\"id\": \"{ID}\"}}, \"credentials\": {{}}}}");
        assert_eq!(backup_id(None, Some("application/json"), json.as_bytes()).unwrap().0, ID);
        // Upper case is Cinder's id all the same.
        let upper = format!("backup_id={}", ID.to_uppercase());
        assert_eq!(backup_id(Some(&upper), None, b"").unwrap().0, ID);
        // Other query parameters and a target without id are fine.
        let q2 = format!("x=1&backup_id={ID}");
        assert_eq!(backup_id(Some(&q2), Some("application/x-www-form-urlencoded"), &form("{}")).unwrap().0, ID);
    }

    #[test]
    fn bad_ids_are_refused_with_what_was_wrong() {
        let err = |q: Option<&str>, ct: Option<&str>, body: &[u8]| backup_id(q, ct, body).unwrap_err();
        assert_eq!(err(None, None, b""), IdError::Missing);
        assert_eq!(err(Some("backup_id"), None, b"").to_string(), "backup_id \"\" is not a backup id: it is empty");
        assert_eq!(err(Some(&format!("backup_id={ID}&backup_id={OTHER}")), None, b""), IdError::Repeated { count: 2 });
        // `&` in a target id injects a parameter (oslo.policy does not escape).
        let injected = format!("backup_id=x&backup_id={ID}");
        assert_eq!(err(Some(&injected), None, b""), IdError::Repeated { count: 2 });
        // `%41` arrives decoded; `#` cut the rest off: the target disagrees.
        let e = err(Some("backup_id=%41"), None, b"").to_string();
        assert!(e.contains("\"A\"") && e.contains("36 characters"), "{e}");
        let cut = &ID[..20];
        let body = form(&format!("{{\"id\": \"{cut}#{}\"}}", &ID[21..]));
        assert!(matches!(err(Some(&format!("backup_id={cut}")), None, &body), IdError::Malformed { .. }));
        let body = form(&format!("{{\"id\": \"{OTHER}\"}}"));
        assert_eq!(
            err(Some(&format!("backup_id={ID}")), None, &body),
            IdError::Mismatch { query: ID.into(), target: OTHER.into() }
        );
        // Very long ids are cut in the message.
        let long = format!("backup_id={}", "a".repeat(5000));
        let e = err(Some(&long), None, b"").to_string();
        assert!(e.len() < 200 && e.contains("5000 bytes"), "{e}");
        // Bodies.
        assert!(matches!(err(None, None, &form("{not json")), IdError::Body { field: "target", .. }));
        assert!(matches!(err(None, None, &form("[1]")), IdError::Body { field: "target", .. }));
        assert!(matches!(err(None, None, &form("{\"id\": 7}")), IdError::Malformed { .. }));
        assert!(matches!(err(None, Some("application/json"), b"[]"), IdError::Body { .. }));
        assert_eq!(err(None, Some("text/plain"), b"x"), IdError::UnsupportedContentType("text/plain".into()));
        assert!(matches!(
            err(Some("backup_id=not-a-uuid-but-36-characters-long!!"), None, b""),
            IdError::Malformed { .. }
        ));
    }

    #[test]
    fn metadata_truth() {
        for yes in ["True", "true", " TRUE ", "1", "yes"] {
            assert!(is_true(yes), "{yes}");
        }
        for no in ["False", "", "0", "no", "y"] {
            assert!(!is_true(no), "{no}");
        }
    }

    #[test]
    fn the_cache_keeps_decisions_not_failures_and_stays_bounded() {
        let cache = DecisionCache::new(Duration::from_secs(60), 2);
        cache.put("a", Verdict::Deny);
        cache.put("b", Verdict::Allow);
        cache.put("e", Verdict::Error);
        assert_eq!(cache.get("a"), Some(Verdict::Deny));
        assert_eq!(cache.get("b"), Some(Verdict::Allow));
        assert_eq!(cache.get("e"), None);
        cache.put("c", Verdict::Allow); // full, nothing expired: starts over
        assert_eq!(cache.get("c"), Some(Verdict::Allow));
        assert!(cache.lock().len() <= 2);
        let off = DecisionCache::new(Duration::ZERO, 10);
        off.put("a", Verdict::Deny);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn the_key_matches_the_conductors() {
        assert_eq!(AUTOMATED_KEY, crate::conductor::AUTOMATED_KEY);
    }
}

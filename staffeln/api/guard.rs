//! The deletion guard: `POST` (oslo.policy) and `GET` (people)
//! `/v1/backup?backup_id=<uuid>`.
//!
//! oslo.policy allows the deletion iff the body is exactly `True`, ignores
//! the status, and turns a refused connection or a timeout into an error of
//! the user's `DELETE`. Cinder builds the body it posts from the backup row
//! (`target`: id, project, metadata, …) and from the caller's token
//! (`credentials`: user, project, roles); see `api-ref/source/guard.inc` for
//! the threat model. So:
//!
//! * **Which backup.** The id comes from the `backup_id` query parameter or,
//!   when the query has none, from the `id` of the body's `target` (form
//!   fields holding JSON documents, or one JSON object). oslo.policy does not
//!   escape what it puts in the URL, so the id must be a UUID (Cinder's ids
//!   are), may appear once, and must equal the target's id when both are
//!   there. Anything else is a 400 whose body is not `True`.
//! * **Who asks.** A caller whose `credentials.user_id` is Staffeln's own
//!   service user (learnt from staffeln-api's Keystone token of
//!   `[openstack]`, the credentials the conductor uses too) or one of
//!   `[api] trusted_user_ids` is allowed: retention deletes Staffeln's own
//!   backups through the same policy, with a `member` token of the backup's
//!   project.
//! * **Which backup it is.** Anyone else is refused (`False`, 401) when the
//!   backup is automated: the target's metadata carries `__automated_backup`
//!   = true; or the database knows it (`backup_data`, a task that recorded
//!   its id, or the task its `__staffeln_task_id` metadata names), which a
//!   tenant cannot edit away. Otherwise allowed (`True`, 200).
//! * **No call back into Cinder** when the body has the target: Cinder's
//!   API worker is waiting for this answer, and a single-worker cinder-api
//!   would deadlock. Only a request without a target (a person's `GET`, a
//!   `POST` with the query alone) asks Cinder for the backup's metadata,
//!   within `[api] lookup_timeout`, and says so in the log and in the
//!   `X-Staffeln-Decided-By` header.
//! * **Fail closed.** A failed database or Cinder lookup is a 503 whose body
//!   is not `True`, unless the backup is automated by what is known anyway.
//! * **The decision** is [`decide`], a pure function of those facts.
//! * **Cache.** Only the fact "this backup is automated", from the database
//!   or Cinder, is remembered for `[api] cache_ttl`: never an answer, so a
//!   trusted caller's `True` cannot reach anyone else, and never anything a
//!   request body said, so a forged body cannot change later answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value};
use tracing::{debug, error, info, warn};

use super::App;
use super::error::{RequestError, text};
use crate::db::{backups, tasks};
use crate::objects::BackupId;
use crate::service::chain;

/// The Cinder backup metadata key the conductor sets to `True` on the
/// backups it creates (`conductor::AUTOMATED_KEY`; a test keeps them equal).
pub const AUTOMATED_KEY: &str = "__automated_backup";
/// The Cinder backup metadata key naming the conductor's task that made the
/// backup (`conductor::TASK_KEY`).
pub const TASK_KEY: &str = "__staffeln_task_id";
/// The response header naming what the answer rests on ([`Basis::label`]).
pub const DECIDED_BY: &str = "x-staffeln-decided-by";

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

/// One guard request, parsed: the backup, what the body's target says about
/// it, and who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    pub id: BackupId,
    /// The target's `metadata`; `None` when the request has no target with
    /// metadata (then the guard may have to ask Cinder).
    pub metadata: Option<BTreeMap<String, String>>,
    /// `credentials.user_id`, when the body has credentials naming a user.
    pub caller: Option<String>,
}

impl CheckRequest {
    /// What the target's metadata says, if there is a target.
    pub fn marking(&self) -> Option<Marking> {
        self.metadata.as_ref().map(Marking::of)
    }

    /// The target's `__staffeln_task_id`, if any.
    pub fn task_id(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(task_of)
    }
}

/// The task a backup's metadata names, if any.
fn task_of(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata.get(TASK_KEY).map(|t| t.trim()).filter(|t| !t.is_empty())
}

/// Parses a guard request: the `backup_id` of `query` and/or the `id` of the
/// body's `target`, the target's metadata and the credentials' user (form
/// fields holding JSON documents, or one JSON object, by `content_type`; an
/// empty body has neither).
pub fn parse_request(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<CheckRequest, IdError> {
    let from_query: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "backup_id")
        .map(|(_, v)| v.into_owned())
        .collect();
    if from_query.len() > 1 {
        return Err(IdError::Repeated { count: from_query.len() });
    }
    let from_query = from_query.into_iter().next();
    let (target, credentials) = body_documents(content_type, body)?;
    let target = match target {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(IdError::Body { field: "target", reason: "not a JSON object".to_owned() }),
    };
    let from_target = match target.as_ref().and_then(|t| t.get("id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(IdError::Malformed {
                source_name: "target id",
                shown: shown(&other.to_string()),
                reason: "not a string".to_owned(),
            });
        }
    };
    let id = match (from_query, &from_target) {
        (Some(q), Some(t)) => {
            let q = parse_uuid("backup_id", &q)?;
            let t = parse_uuid("target id", t)?;
            if q != t {
                return Err(IdError::Mismatch { query: q, target: t });
            }
            q
        }
        (Some(q), None) => parse_uuid("backup_id", &q)?,
        (None, Some(t)) => parse_uuid("target id", t)?,
        (None, None) => return Err(IdError::Missing),
    };
    // Metadata counts only on a target that names the backup: it is then
    // Cinder's row of this backup (a target without id describes nothing).
    let metadata = match (&from_target, target.as_ref().and_then(|t| t.get("metadata"))) {
        (Some(_), Some(Value::Object(map))) => Some(strings(map)),
        (Some(_), None | Some(Value::Null)) | (None, _) => None,
        (Some(_), Some(other)) => {
            return Err(IdError::Body {
                field: "target",
                reason: format!("metadata {} is not a JSON object", shown(&other.to_string())),
            });
        }
    };
    let caller = match credentials {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => match map.get("user_id") {
            Some(Value::String(user)) if !user.is_empty() => Some(user.clone()),
            _ => None,
        },
        Some(_) => return Err(IdError::Body { field: "credentials", reason: "not a JSON object".to_owned() }),
    };
    Ok(CheckRequest { id: BackupId(id), metadata, caller })
}

/// The backup id a guard request is about (see [`parse_request`]).
pub fn backup_id(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<BackupId, IdError> {
    parse_request(query, content_type, body).map(|r| r.id)
}

/// Cinder's metadata values are strings; anything else is kept as its JSON text.
fn strings(map: &Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The body's `target` and `credentials` documents, if the body has them.
fn body_documents(content_type: Option<&str>, body: &[u8]) -> Result<(Option<Value>, Option<Value>), IdError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let mime = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => {
            let field = |name: &'static str| -> Result<Option<Value>, IdError> {
                let mut values = url::form_urlencoded::parse(body).filter(|(k, _)| k == name).map(|(_, v)| v);
                let first = values.next();
                if values.next().is_some() {
                    return Err(IdError::Body { field: name, reason: "it is given more than once".to_owned() });
                }
                first
                    .map(|text| {
                        serde_json::from_str(&text)
                            .map_err(|e| IdError::Body { field: name, reason: format!("not a JSON document: {e}") })
                    })
                    .transpose()
            };
            Ok((field("target")?, field("credentials")?))
        }
        "application/json" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| IdError::Body { field: "JSON body", reason: e.to_string() })?;
            match doc {
                Value::Object(mut map) => Ok((map.remove("target"), map.remove("credentials"))),
                _ => Err(IdError::Body { field: "JSON body", reason: "not an object".to_owned() }),
            }
        }
        _ => Err(IdError::UnsupportedContentType(mime)),
    }
}

/// Whether a metadata value means "yes" (`True`, `true`, `yes`, `1`).
pub fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
}

// ---------------------------------------------------------------------------
// The decision.

/// Who is asking, as far as the guard trusts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Staffeln's own service user (the user of staffeln-api's token).
    ServiceUser,
    /// A user of `[api] trusted_user_ids`.
    Listed,
    /// Anyone else, or a request without credentials.
    Untrusted,
}

impl Trust {
    /// The trust in `caller` (`credentials.user_id`), given the service
    /// user's id (when known) and the trusted ids.
    pub fn of(caller: Option<&str>, service_user: Option<&str>, listed: &[String]) -> Trust {
        match caller {
            Some(user) if service_user == Some(user) => Trust::ServiceUser,
            Some(user) if listed.iter().any(|l| l == user) => Trust::Listed,
            _ => Trust::Untrusted,
        }
    }
}

/// What a backup's metadata says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// `__automated_backup` = true.
    Marked,
    /// No such mark.
    Unmarked,
}

impl Marking {
    pub fn of(metadata: &BTreeMap<String, String>) -> Marking {
        if metadata.get(AUTOMATED_KEY).is_some_and(|v| is_true(v)) { Marking::Marked } else { Marking::Unmarked }
    }
}

/// What the database said about a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbLookup {
    /// `backup_data` has it, or a task recorded its id: Staffeln made it.
    Recorded,
    /// The task its `__staffeln_task_id` metadata names exists and recorded
    /// no other backup: Staffeln is making it.
    TaskNamed,
    /// Neither.
    Unknown,
    /// The query failed.
    Failed,
}

/// What Cinder said about a backup (asked only without a target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CinderLookup {
    /// Its metadata carries `__automated_backup` = true.
    Marked,
    /// It exists without that mark.
    Unmarked,
    /// 404.
    NotFound,
    /// Any other failure (no answer within `lookup_timeout`, 5xx, no
    /// credentials).
    Failed,
}

/// Everything a decision rests on; `None` where nobody was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub trust: Trust,
    /// The backup is remembered as automated (from an earlier database or
    /// Cinder answer).
    pub cached: bool,
    /// What the request's target metadata says; `None` without a target.
    pub target: Option<Marking>,
    pub db: Option<DbLookup>,
    pub cinder: Option<CinderLookup>,
}

impl Facts {
    /// Facts about a caller before any lookup.
    pub fn new(trust: Trust, cached: bool, target: Option<Marking>) -> Facts {
        Facts { trust, cached, target, db: None, cinder: None }
    }

    /// Whether the database must be asked: nothing so far settles it.
    pub fn needs_db(&self) -> bool {
        self.trust == Trust::Untrusted && !self.cached && self.target != Some(Marking::Marked) && self.db.is_none()
    }

    /// Whether Cinder must be asked: the request has no target and the
    /// database does not know the backup.
    pub fn needs_cinder(&self) -> bool {
        self.trust == Trust::Untrusted
            && !self.cached
            && self.target.is_none()
            && self.db == Some(DbLookup::Unknown)
            && self.cinder.is_none()
    }
}

/// The guard's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `True`: the caller may delete the backup.
    Allow,
    /// `False`: an automated backup, and the caller is not Staffeln.
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

/// What an answer rests on (the `X-Staffeln-Decided-By` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The caller is Staffeln's service user.
    ServiceUser,
    /// The caller is in `[api] trusted_user_ids`.
    TrustedUser,
    /// The backup was remembered as automated.
    Cache,
    /// The request's target metadata (and, when it says nothing, the database).
    Target,
    /// The database.
    Database,
    /// Cinder, asked because the request had no target.
    Cinder,
}

impl Basis {
    pub fn label(self) -> &'static str {
        match self {
            Basis::ServiceUser => "service-user",
            Basis::TrustedUser => "trusted-user",
            Basis::Cache => "cache",
            Basis::Target => "target",
            Basis::Database => "database",
            Basis::Cinder => "cinder",
        }
    }
}

/// The decision (see the module doc): trusted callers pass; any evidence
/// that the backup is automated refuses; only positive evidence that it is
/// not allows; a failed lookup that could have mattered is an error.
pub fn decide(f: &Facts) -> (Verdict, Basis) {
    use Verdict::{Allow, Deny, Error};
    match f.trust {
        Trust::ServiceUser => return (Allow, Basis::ServiceUser),
        Trust::Listed => return (Allow, Basis::TrustedUser),
        Trust::Untrusted => {}
    }
    if f.cached {
        return (Deny, Basis::Cache);
    }
    if f.target == Some(Marking::Marked) {
        return (Deny, Basis::Target);
    }
    if matches!(f.db, Some(DbLookup::Recorded | DbLookup::TaskNamed)) {
        return (Deny, Basis::Database);
    }
    if f.cinder == Some(CinderLookup::Marked) {
        return (Deny, Basis::Cinder);
    }
    match (f.db, f.target, f.cinder) {
        (Some(DbLookup::Unknown), Some(Marking::Unmarked), _) => (Allow, Basis::Target),
        (Some(DbLookup::Unknown), None, Some(CinderLookup::Unmarked | CinderLookup::NotFound)) => {
            (Allow, Basis::Cinder)
        }
        (Some(DbLookup::Unknown), None, _) => (Error, Basis::Cinder),
        (Some(DbLookup::Failed) | None, _, _) => (Error, Basis::Database),
        // Covered above; refuse should the table ever grow.
        (Some(DbLookup::Recorded | DbLookup::TaskNamed), _, _) => (Deny, Basis::Database),
        (Some(DbLookup::Unknown), Some(Marking::Marked), _) => (Deny, Basis::Target),
    }
}

// ---------------------------------------------------------------------------
// State: the service user's id and the backups known to be automated.

/// Staffeln's service user id, learnt from staffeln-api's own token.
#[derive(Default)]
pub(crate) struct ServiceUser {
    id: RwLock<Option<String>>,
}

impl ServiceUser {
    pub(crate) fn get(&self) -> Option<String> {
        self.id.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn set(&self, id: String) {
        let mut slot = self.id.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.as_deref() != Some(id.as_str()) {
            info!(user.id = %id, "deletion guard: backup deletions by Staffeln's service user {id} are allowed");
            *slot = Some(id);
        }
    }
}

/// Backups known to be automated (from the database or Cinder, never from a
/// request body), by id, for `ttl`; at most `capacity` of them (when full,
/// expired ones go, and if none has expired the cache starts over).
pub(crate) struct AutomatedCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<String, Instant>>,
}

impl AutomatedCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> AutomatedCache {
        AutomatedCache { ttl, capacity, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        self.lock().get(id).is_some_and(|until| *until > Instant::now())
    }

    pub(crate) fn insert(&self, id: &str) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(id) {
            map.retain(|_, until| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(id.to_owned(), now + self.ttl);
    }
}

// ---------------------------------------------------------------------------
// The handler.

/// The response to a verdict.
pub fn respond(verdict: Verdict, basis: Basis, id: &BackupId, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = match verdict {
        Verdict::Allow => text(StatusCode::OK, "True"),
        Verdict::Deny => text(StatusCode::UNAUTHORIZED, "False"),
        Verdict::Error => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Error: cannot decide whether backup {id} is an automated backup ({} failed); refused. \
                 See the staffeln-api log, request {request_id}.",
                if basis == Basis::Cinder { "the Cinder lookup" } else { "the database lookup" }
            ),
        ),
    };
    resp.headers_mut().insert(DECIDED_BY, HeaderValue::from_static(basis.label()));
    resp
}

/// The guard's handler.
pub(crate) async fn check(
    app: &App,
    request_id: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, RequestError> {
    let req = match parse_request(query, content_type, body) {
        Ok(req) => req,
        Err(err) => {
            app.counters.guard_bad_request();
            info!("deletion guard: refused a malformed request: {err}");
            return Err(err.into());
        }
    };
    let id = &req.id;
    let listed = &app.settings.trusted_user_ids;
    let trust = Trust::of(req.caller.as_deref(), app.service_user.get().as_deref(), listed);
    let mut facts = Facts::new(trust, false, req.marking());
    if trust == Trust::Untrusted {
        facts.cached = app.automated.contains(id.as_str());
    }
    if facts.needs_db() {
        facts.db = Some(lookup_db(app, id, req.task_id()).await);
        if facts.db == Some(DbLookup::Recorded) {
            app.automated.insert(id.as_str());
        }
    }
    if facts.needs_cinder() {
        debug!(backup.id = %id, "deletion guard: the request carries no target: asking Cinder about backup {id}");
        app.counters.cinder_lookup();
        let (cinder, task) = lookup_cinder(app, id).await;
        facts.cinder = Some(cinder);
        if cinder == CinderLookup::Marked {
            app.automated.insert(id.as_str());
        } else if let Some(task) = task {
            facts.db = Some(lookup_db(app, id, Some(&task)).await);
        }
    }
    let (mut verdict, mut basis) = decide(&facts);
    // Staffeln's own deletions while the service user's id is not known yet
    // (Keystone was down at start): learn it now, only when it matters.
    if verdict != Verdict::Allow
        && let Some(caller) = req.caller.as_deref()
        && app.service_user.get().is_none()
        && app.cloud.configured()
        && learn_inline(app).await.as_deref() == Some(caller)
    {
        facts.trust = Trust::ServiceUser;
        (verdict, basis) = decide(&facts);
    }
    log_decision(id, req.caller.as_deref(), &facts, verdict, basis);
    app.counters.guard(verdict, facts.cached);
    Ok(respond(verdict, basis, id, request_id))
}

fn log_decision(id: &BackupId, caller: Option<&str>, facts: &Facts, verdict: Verdict, basis: Basis) {
    let who = caller.unwrap_or("an unnamed caller");
    match (verdict, basis) {
        (Verdict::Allow, Basis::ServiceUser | Basis::TrustedUser) => {
            debug!(backup.id = %id, "deletion guard: backup {id} is deleted by Staffeln ({who}, {}): allowed", basis.label())
        }
        (Verdict::Allow, Basis::Cinder) => info!(
            backup.id = %id,
            "deletion guard: backup {id} is not an automated backup (the request carried no target; Cinder was \
             asked: {:?}): allowed",
            facts.cinder
        ),
        (Verdict::Allow, _) => {
            debug!(backup.id = %id, "deletion guard: backup {id} is not an automated backup: allowed for {who}")
        }
        (Verdict::Deny, _) => {
            let by = match basis {
                Basis::Cache | Basis::Database => "recorded in the database",
                Basis::Cinder => "marked in Cinder, asked because the request carried no target",
                _ => "marked in its metadata",
            };
            info!(backup.id = %id, "deletion guard: backup {id} is an automated backup ({by}): refused for {who}")
        }
        (Verdict::Error, _) => error!(
            backup.id = %id,
            "deletion guard: cannot decide about backup {id} (database: {:?}, Cinder: {:?}): refused for {who}",
            facts.db,
            facts.cinder
        ),
    }
}

async fn learn_inline(app: &App) -> Option<String> {
    match learn_service_user(app).await {
        Ok(id) => Some(id),
        Err(err) => {
            warn!("deletion guard: cannot learn Staffeln's service user, so its deletions are refused too: {err}");
            None
        }
    }
}

async fn lookup_db(app: &App, id: &BackupId, task: Option<&str>) -> DbLookup {
    let db = app.db.clone();
    let key = id.0.clone();
    let task = task.map(str::to_owned);
    let wait = app.db_wait();
    let found = tokio::task::spawn_blocking(move || -> Result<DbLookup, crate::db::DbError> {
        let mut conn = db.conn_timeout(wait)?;
        if backups::get(&mut conn, &key)?.is_some() || tasks::records_backup(&mut conn, &key)? {
            return Ok(DbLookup::Recorded);
        }
        match task {
            Some(task) if tasks::task_may_own(&mut conn, &task, &key)? => Ok(DbLookup::TaskNamed),
            _ => Ok(DbLookup::Unknown),
        }
    })
    .await;
    match found {
        Ok(Ok(found)) => found,
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

/// Asks Cinder for the backup's metadata within `lookup_timeout`: the
/// answer, and the task its metadata names when it is not marked.
async fn lookup_cinder(app: &App, id: &BackupId) -> (CinderLookup, Option<String>) {
    let wait = app.settings.lookup_timeout;
    let asked = tokio::time::timeout(wait, async {
        let os = app.cloud.client().await.map_err(|e| chain(&e))?;
        match os.backup(id).await {
            Ok(backup) => Ok(Some(backup.metadata)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(chain(&err)),
        }
    })
    .await;
    match asked {
        Ok(Ok(Some(metadata))) => match Marking::of(&metadata) {
            Marking::Marked => (CinderLookup::Marked, None),
            Marking::Unmarked => (CinderLookup::Unmarked, task_of(&metadata).map(str::to_owned)),
        },
        Ok(Ok(None)) => {
            debug!(backup.id = %id, "deletion guard: Cinder does not know backup {id}");
            (CinderLookup::NotFound, None)
        }
        Ok(Err(err)) => {
            error!(backup.id = %id, "deletion guard: Cinder lookup of backup {id} failed: {err}");
            (CinderLookup::Failed, None)
        }
        Err(_) => {
            error!(
                backup.id = %id,
                "deletion guard: Cinder did not answer about backup {id} within {} s ([api] lookup_timeout); a \
                 Cinder API worker may be waiting for this very answer",
                wait.as_secs()
            );
            (CinderLookup::Failed, None)
        }
    }
}

/// The service user's id from staffeln-api's own token (Keystone is asked
/// only when the token is due), within `lookup_timeout`; remembered.
pub(crate) async fn learn_service_user(app: &App) -> Result<String, String> {
    let asked = tokio::time::timeout(app.settings.lookup_timeout, async {
        let os = app.cloud.client().await.map_err(|e| chain(&e))?;
        os.user_id().await.map_err(|e| chain(&e))
    })
    .await;
    let id = match asked {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(format!(
                "Keystone did not answer within {} s ([api] lookup_timeout)",
                app.settings.lookup_timeout.as_secs()
            ));
        }
    };
    app.service_user.set(id.clone());
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

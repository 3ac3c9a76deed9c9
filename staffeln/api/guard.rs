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

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use tracing::{debug, error, info, warn};

use super::app::App;
pub use super::decide::{Basis, CinderLookup, DbLookup, Facts, Marking, Trust, Verdict, decide};
use super::error::{RequestError, text};
pub use super::request::{CheckRequest, IdError, backup_id, parse_request};
use crate::db::{backups, tasks};
use crate::objects::BackupId;
use crate::objects::metadata::task_of;
use crate::service::chain;

/// The response header naming what the answer rests on ([`Basis::label`]).
pub const DECIDED_BY: &str = "x-staffeln-decided-by";

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
    match learn_service_user(app, app.settings.lookup_timeout).await {
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
/// only when the token is due), within `wait`; remembered. A request that
/// finds it unknown waits `[api] lookup_timeout` (Cinder is waiting); the
/// background learner waits as long as any OpenStack request may take, so
/// that a slow Keystone does not keep it from ever learning.
pub(crate) async fn learn_service_user(app: &App, wait: std::time::Duration) -> Result<String, String> {
    let asked = tokio::time::timeout(wait, async {
        let os = app.cloud.client().await.map_err(|e| chain(&e))?;
        os.user_id().await.map_err(|e| chain(&e))
    })
    .await;
    let id = match asked {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(format!("Keystone did not answer within {} s", wait.as_secs()));
        }
    };
    app.service_user.set(id.clone());
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

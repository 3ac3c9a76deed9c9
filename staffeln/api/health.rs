//! `GET /v1/health` (the database answers the guard's query), `GET /healthcheck`
//! (oslo.middleware's liveness path: `OK` while serving, 503 once a stop was
//! requested) and the version document at `/`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::json;
use tracing::warn;

use super::app::App;
use super::error::{json as json_response, text};
use crate::db::backups;
use crate::service::chain;

/// `/v1/health`: 200 `{"status": "ok", "database": "ok"}` when the guard's
/// own query (a `backup_data` lookup) succeeds, else 503 with the error (the
/// URL in it is masked). `SELECT 1` alone would miss a dropped database or
/// table behind a pooled connection.
pub(crate) async fn health(app: &App) -> Response<Full<Bytes>> {
    let db = app.db.clone();
    let wait = app.db_wait();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn_timeout(wait)?;
        backups::get(&mut conn, "00000000-0000-0000-0000-000000000000")
    })
    .await;
    let problem = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(chain(&err)),
        Err(err) => Some(format!("the database check did not finish: {err}")),
    };
    match problem {
        None => json_response(StatusCode::OK, &json!({"status": "ok", "database": "ok"})),
        Some(problem) => {
            warn!("health check: the database is not available: {problem}");
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "error", "database": problem}))
        }
    }
}

/// `/healthcheck`.
pub(crate) fn healthcheck(app: &App) -> Response<Full<Bytes>> {
    if app.draining.load(Ordering::Relaxed) {
        text(StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY SHUTDOWN")
    } else {
        text(StatusCode::OK, "OK")
    }
}

/// `/`: the versions served.
pub(crate) fn versions(base: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        &json!({"versions": [{"id": "v1", "status": "CURRENT", "links": [{"rel": "self", "href": format!("{base}/v1/")}]}]}),
    )
}

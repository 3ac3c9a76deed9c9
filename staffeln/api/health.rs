//! `GET /v1/health` (the database answers), `GET /healthcheck`
//! (oslo.middleware's liveness path: `OK` while serving, 503 once a stop was
//! requested) and the version document at `/`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::json;
use tracing::warn;

use super::App;
use super::error::{json as json_response, text};
use crate::service::chain;

/// `/v1/health`: 200 `{"status": "ok", "database": "ok"}` when `SELECT 1`
/// succeeds (waiting at most 5 s for a connection), else 503 with the error (the URL in
/// it is masked).
pub(crate) async fn health(app: &App) -> Response<Full<Bytes>> {
    let db = app.db.clone();
    let outcome = tokio::task::spawn_blocking(move || db.ping()).await;
    let problem = match outcome {
        Ok(Ok(())) => None,
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

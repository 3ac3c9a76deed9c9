//! Every way a request is refused, and how each becomes a status and a body.
//!
//! The guard's routes answer plain text (`Error: …`), never `True`, so that
//! oslo.policy denies; the JSON routes answer OpenStack's fault shape,
//! `{"badRequest": {"code": 400, "message": "…"}}`. Messages name the input
//! that was wrong; causes of server-side failures are logged, not sent.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::query::QueryError;
use super::request::IdError;

/// The body a route answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`: the guard, `/healthcheck`, `/metrics`.
    Text,
    /// OpenStack's JSON fault body.
    Json,
}

/// Why a request was not served as asked.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the request body is larger than {limit} bytes ([api] max_request_body_size)")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    #[error("unsupported content type {0:?}: send application/x-www-form-urlencoded or application/json")]
    UnsupportedMediaType(String),
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A backend failed; the cause was logged under the request id.
    #[error("{0}")]
    Unavailable(String),
    #[error("the request did not finish within {secs} s ([api] request_timeout)")]
    Timeout { secs: u64 },
    #[error("{method} is not allowed on {path}; allowed: {allow}")]
    MethodNotAllowed { method: String, path: String, allow: &'static str },
    #[error("no such resource: {0}")]
    NotFound(String),
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Id(IdError::UnsupportedContentType(_)) | RequestError::UnsupportedMediaType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            RequestError::Id(_) | RequestError::Query(_) | RequestError::BodyRead(_) => StatusCode::BAD_REQUEST,
            RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            RequestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            RequestError::Forbidden(_) => StatusCode::FORBIDDEN,
            RequestError::Unavailable(_) | RequestError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    /// The response: `Error: <message>` as text, or the JSON fault.
    pub fn into_response(self, format: Format) -> Response<Full<Bytes>> {
        let status = self.status();
        let message = self.to_string();
        let mut resp = match format {
            Format::Text => text(status, format!("Error: {message}")),
            Format::Json => {
                let body = serde_json::json!({ fault_name(status): { "code": status.as_u16(), "message": message } });
                json(status, &body)
            }
        };
        if let RequestError::MethodNotAllowed { allow, .. } = self {
            resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        }
        if status == StatusCode::UNAUTHORIZED && format == Format::Json {
            resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Keystone"));
        }
        resp
    }
}

/// The fault key Nova and Cinder use for a status.
fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "methodNotAllowed",
        408 => "requestTimeout",
        413 => "requestEntityTooLarge",
        415 => "unsupportedMediaType",
        _ => "serviceUnavailable",
    }
}

/// A `text/plain` response with exactly `body` (no trailing newline: the
/// guard's `True` must be exact).
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// An `application/json` response.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(resp: Response<Full<Bytes>>) -> String {
        String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn refusals_never_say_true_and_name_the_input() {
        let resp = RequestError::Id(IdError::Missing).into_response(Format::Text);
        assert_eq!(resp.status(), 400);
        let text = body(resp).await;
        assert!(text.starts_with("Error: ") && text.contains("backup_id"), "{text}");

        let resp = RequestError::BodyTooLarge { limit: 1024 }.into_response(Format::Json);
        assert_eq!(resp.status(), 413);
        let doc: serde_json::Value = serde_json::from_str(&body(resp).await).unwrap();
        assert_eq!(doc["requestEntityTooLarge"]["code"], 413);
        assert!(doc["requestEntityTooLarge"]["message"].as_str().unwrap().contains("1024 bytes"));

        let resp =
            RequestError::MethodNotAllowed { method: "PUT".into(), path: "/v1/backup".into(), allow: "GET, POST" }
                .into_response(Format::Text);
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[ALLOW], "GET, POST");
    }
}

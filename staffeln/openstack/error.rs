//! Typed errors of the OpenStack client.
//!
//! An API error carries what an operator needs to find the failing call in
//! the services' logs: method, URL (never with credentials: tokens travel in
//! headers and URLs are stripped of user info), status, the
//! `x-openstack-request-id`, and the message from the service's error body.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to Keystone, Nova or Cinder.
#[derive(Debug, thiserror::Error)]
pub enum OpenStackError {
    /// The service answered with an error status.
    #[error("{method} {url}: {status}{}: {message}{}", fault_suffix(.fault), request_id_suffix(.request_id))]
    Api {
        method: String,
        url: String,
        status: u16,
        /// Nova/Cinder fault name (`itemNotFound`, `overLimit`, …) or
        /// Keystone's title.
        fault: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    /// No answer (connection refused, reset, timed out).
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON we expected.
    #[error("{method} {url}: unexpected response body{}", request_id_suffix(.request_id))]
    Decode {
        method: String,
        url: String,
        request_id: Option<String>,
        #[source]
        source: serde_json::Error,
    },
    /// Retries gave up: the last attempt's error is the source.
    #[error("gave up after {attempts} attempts in {:.1}s", .elapsed.as_secs_f64())]
    RetriesExhausted {
        attempts: u32,
        elapsed: Duration,
        #[source]
        last: Box<OpenStackError>,
    },
    /// The configuration cannot be used (missing option, bad clouds.yaml).
    #[error("OpenStack configuration: {0}")]
    Config(String),
    /// A clouds.yaml file exists but cannot be read or parsed.
    #[error("cannot use {}", .path.display())]
    CloudsFile {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The token's catalog has no endpoint for a service.
    #[error(
        "no {service_type} endpoint with interface {interface}{} in the service catalog",
        region.as_deref().map(|r| format!(" in region {r}")).unwrap_or_default()
    )]
    NoEndpoint { service_type: String, interface: String, region: Option<String> },
    /// The cloud's API is older than what Staffeln needs.
    #[error("{service} at {url} supports microversions up to {max}, Staffeln needs at least {required}")]
    TooOld { service: String, url: String, required: String, max: String },
    /// A token scoped to `wanted` cannot be had with these credentials.
    #[error(
        "cannot act in project {wanted}: the application credential is bound to project {bound}; \
         use password authentication for a service user with a role in every project"
    )]
    ScopeUnavailable { wanted: String, bound: String },
    /// The response broke a rule of the API (e.g. a pagination loop).
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
}

fn fault_suffix(fault: &Option<String>) -> String {
    fault.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
}

fn request_id_suffix(id: &Option<String>) -> String {
    id.as_deref().map(|r| format!(" (request {r})")).unwrap_or_default()
}

impl OpenStackError {
    /// The error of the last attempt when retries gave up, else `self`.
    pub fn last(&self) -> &OpenStackError {
        match self {
            OpenStackError::RetriesExhausted { last, .. } => last.last(),
            other => other,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self.last() {
            OpenStackError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's request id (`x-openstack-request-id`), when known.
    pub fn request_id(&self) -> Option<&str> {
        match self.last() {
            OpenStackError::Api { request_id, .. } | OpenStackError::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The message from the service's error body.
    pub fn message(&self) -> Option<&str> {
        match self.last() {
            OpenStackError::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// 409: e.g. Nova refuses metadata changes of a locked or busy server.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Cinder's quota errors (413 `overLimit`, `BackupLimitExceeded`,
    /// `VolumeBackupSizeExceedsAvailableQuota`) and Nova's metadata item limit
    /// (403 "Maximum number of metadata items exceeds …").
    pub fn is_quota_exceeded(&self) -> bool {
        match self.last() {
            OpenStackError::Api { status: 413, .. } => true,
            OpenStackError::Api { status: 403, message, .. } => message.contains("Maximum number of"),
            _ => false,
        }
    }

    /// Cinder refuses to delete a backup that incremental backups depend on.
    pub fn is_conflict_with_dependents(&self) -> bool {
        match self.last() {
            OpenStackError::Api { status: 400, message, .. } => message.contains("Incremental backups exist"),
            _ => false,
        }
    }

    /// How this failure counts for [`super::retry::RetryPolicy::decide`]
    /// (the last attempt's, when retries gave up). `None` for failures that
    /// are not answers or transport errors (configuration, decoding, …):
    /// those are never retried.
    pub fn retry_outcome(&self) -> Option<super::retry::Outcome> {
        use super::retry::Outcome;
        match self.last() {
            OpenStackError::Api { status, .. } => Some(Outcome::Status { code: *status, retry_after: None }),
            OpenStackError::Transport { source, .. } if source.is_connect() => Some(Outcome::ConnectFailed),
            OpenStackError::Transport { .. } => Some(Outcome::NoAnswer),
            _ => None,
        }
    }

    /// The cloud, not the request, was at fault (5xx, no answer).
    pub fn is_transient(&self) -> bool {
        match self.last() {
            OpenStackError::Api { status, .. } => *status >= 500 || *status == 429,
            OpenStackError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// The message and fault name found in an OpenStack error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub fault: Option<String>,
    pub message: String,
}

/// Reads Nova/Cinder `{"<fault>": {"code", "message"}}` and Keystone
/// `{"error": {"code", "title", "message"}}` bodies; anything else becomes a
/// short excerpt of the text (HTML pages of proxies, plain text).
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::Object(err)) = map.get("error") {
            let message = err.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
            let title = err.get("title").and_then(|t| t.as_str()).map(str::to_owned);
            if !message.is_empty() {
                return ErrorBody { fault: title, message };
            }
        }
        for (fault, value) in &map {
            if let Some(message) = value.get("message").and_then(|m| m.as_str()) {
                return ErrorBody { fault: Some(fault.clone()), message: message.to_owned() };
            }
        }
        // `{"message": "..."}` (some proxies, older services)
        if let Some(message) = map.get("message").and_then(|m| m.as_str()) {
            return ErrorBody { fault: None, message: message.to_owned() };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = if text.is_empty() {
        "(empty body)".to_owned()
    } else if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    };
    ErrorBody { fault: None, message }
}

/// A URL fit for logs and errors: no user info (`user:password@`).
pub(crate) fn redact_url(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn nova_and_cinder_fault_bodies() {
        let b = parse_error_body(br#"{"itemNotFound": {"code": 404, "message": "Backup 5f could not be found."}}"#);
        assert_eq!(b.fault.as_deref(), Some("itemNotFound"));
        assert_eq!(b.message, "Backup 5f could not be found.");
        let b = parse_error_body(
            br#"{"overLimit": {"code": 413, "message": "BackupLimitExceeded: Maximum number of backups allowed (10) exceeded", "retryAfter": "0"}}"#,
        );
        assert_eq!(b.fault.as_deref(), Some("overLimit"));
        assert!(b.message.starts_with("BackupLimitExceeded"));
    }

    #[test]
    fn keystone_error_bodies() {
        let b = parse_error_body(
            br#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication.", "identity": {}}}"#,
        );
        assert_eq!(b.fault.as_deref(), Some("Unauthorized"));
        assert_eq!(b.message, "The request you have made requires authentication.");
    }

    #[test]
    fn other_bodies_become_a_short_excerpt() {
        let b = parse_error_body(b"<html>\n<body>502   Bad Gateway</body></html>");
        assert_eq!(b.fault, None);
        assert_eq!(b.message, "<html> <body>502 Bad Gateway</body></html>");
        let long = "x".repeat(500);
        assert_eq!(parse_error_body(long.as_bytes()).message.chars().count(), 201);
        assert_eq!(parse_error_body(b"").message, "(empty body)");
        assert_eq!(parse_error_body(br#"{"message": "nope"}"#).message, "nope");
    }

    #[test]
    fn urls_lose_their_credentials() {
        let u = url::Url::parse("https://admin:s3cret@ks.example:5000/v3?x=1").unwrap();
        let s = redact_url(&u);
        assert!(!s.contains("s3cret") && !s.contains("admin"), "{s}");
        assert_eq!(s, "https://ks.example:5000/v3?x=1");
    }

    #[test]
    fn helpers_classify_api_errors() {
        let api = |status: u16, message: &str| OpenStackError::Api {
            method: "POST".into(),
            url: "http://c/v3/backups".into(),
            status,
            fault: None,
            message: message.into(),
            request_id: Some("req-1".into()),
        };
        assert!(api(404, "x").is_not_found());
        assert!(api(413, "BackupLimitExceeded: …").is_quota_exceeded());
        assert!(api(403, "Maximum number of metadata items exceeds 128").is_quota_exceeded());
        assert!(!api(403, "Policy doesn't allow").is_quota_exceeded());
        assert!(api(400, "Invalid backup: Incremental backups exist for this backup.").is_conflict_with_dependents());
        let wrapped = OpenStackError::RetriesExhausted {
            attempts: 3,
            elapsed: Duration::from_secs(2),
            last: Box::new(api(503, "busy")),
        };
        assert_eq!(wrapped.status(), Some(503));
        assert_eq!(wrapped.request_id(), Some("req-1"));
        assert!(wrapped.is_transient());
        let text = api(400, "bad").to_string();
        assert_eq!(text, "POST http://c/v3/backups: 400: bad (request req-1)");
    }
}

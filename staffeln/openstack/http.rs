//! One HTTP exchange with retries: the reqwest client, the retry loop around
//! [`RetryPolicy`], request ids, and the mapping of error answers to
//! [`OpenStackError`]. Tokens travel in a sensitive header and are never
//! logged; URLs are logged without user info.

use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tracing::{debug, warn};
use url::Url;

use super::error::{OpenStackError, parse_error_body, redact_url};
use super::retry::{Decision, Outcome, RetryPolicy, parse_retry_after};
use super::settings::{Secret, Settings};

const REQUEST_ID: &str = "x-openstack-request-id";
const COMPUTE_REQUEST_ID: &str = "x-compute-request-id";

/// One request, ready to be sent (and sent again).
pub(super) struct Request {
    pub method: Method,
    pub url: Url,
    pub token: Option<Secret>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
    /// Safe to send twice (see `retry.rs`).
    pub idempotent: bool,
    /// Sent once, whatever the answer: the caller decides about retries
    /// (the worker's fenced, look-first backup create).
    pub once: bool,
}

/// A successful (< 400) answer.
pub(super) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub request_id: Option<String>,
    pub method: String,
    pub url: String,
}

impl Response {
    pub(super) fn decode<T>(
        &self,
        parse: impl FnOnce(&[u8]) -> Result<T, serde_json::Error>,
    ) -> Result<T, OpenStackError> {
        parse(&self.body).map_err(|source| OpenStackError::Decode {
            method: self.method.clone(),
            url: self.url.clone(),
            request_id: self.request_id.clone(),
            source,
        })
    }
}

pub(super) struct Http {
    client: reqwest::Client,
    policy: RetryPolicy,
}

/// Connections kept open for reuse per API host, as many as the Python
/// clients keep (requests' `pool_maxsize`). A burst of creates opens more;
/// those beyond this are closed when their answer is read. Each kept
/// connection holds a read buffer sized by the largest answer it read (up to
/// about 400 KiB after a list page), so an unbounded pool grew the
/// conductor by megabytes over a cycle.
const IDLE_CONNECTIONS_PER_HOST: usize = 10;

impl Http {
    /// The retry rules of this client.
    pub(super) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub(super) fn new(
        settings: &Settings,
        cacert: Option<&std::path::Path>,
        insecure: bool,
    ) -> Result<Self, OpenStackError> {
        // reqwest is built with rustls-no-provider: pick ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("staffeln/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = cacert {
            let pem = std::fs::read(path)
                .map_err(|e| OpenStackError::CloudsFile { path: path.to_owned(), source: Box::new(e) })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| OpenStackError::CloudsFile { path: path.to_owned(), source: Box::new(e) })?;
            builder = builder.tls_certs_merge(certs);
        }
        if insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client =
            builder.build().map_err(|e| OpenStackError::Config(format!("cannot build the HTTP client: {e}")))?;
        let policy = RetryPolicy {
            retry_timeout: settings.retry_timeout,
            max_interval: settings.max_retry_interval,
            skip_codes: settings.skip_retry_codes.clone(),
            initial_interval: super::retry::INITIAL_INTERVAL.min(settings.max_retry_interval),
        };
        Ok(Http { client, policy })
    }

    /// Sends `req`, retrying as the policy says. Answers ≥ 400 become
    /// [`OpenStackError::Api`].
    pub(super) async fn send(&self, req: &Request) -> Result<Response, OpenStackError> {
        let token = match &req.token {
            Some(token) => {
                let mut value = HeaderValue::from_str(token.expose())
                    .map_err(|_| OpenStackError::Config("the token is not a valid header value".to_owned()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let start = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let (outcome, err) = match self.once(req, token.as_ref()).await {
                Ok(resp) if resp.status.as_u16() < 400 => return Ok(resp),
                Ok(resp) => {
                    let retry_after = resp
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
                    let outcome = Outcome::Status { code: resp.status.as_u16(), retry_after };
                    (outcome, api_error(resp))
                }
                Err((outcome, err)) => (outcome, err),
            };
            if req.once {
                return Err(err);
            }
            match self.policy.decide(outcome, req.idempotent, attempt, start.elapsed(), rand::random::<f64>()) {
                Decision::RetryAfter(wait) => {
                    warn!(
                        http.method = %req.method,
                        http.url = %redact_url(&req.url),
                        retry.attempt = attempt + 1,
                        retry.wait_ms = wait.as_millis() as u64,
                        "OpenStack request failed, retrying: {err}"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Decision::GiveUp if attempt == 0 => return Err(err),
                Decision::GiveUp => {
                    return Err(OpenStackError::RetriesExhausted {
                        attempts: attempt + 1,
                        elapsed: start.elapsed(),
                        last: Box::new(err),
                    });
                }
            }
        }
    }

    /// One attempt. Transport failures come back with their retry class.
    async fn once(&self, req: &Request, token: Option<&HeaderValue>) -> Result<Response, (Outcome, OpenStackError)> {
        let shown_url = redact_url(&req.url);
        let mut builder = self.client.request(req.method.clone(), req.url.clone()).header(ACCEPT, "application/json");
        if let Some(token) = token {
            builder = builder.header("x-auth-token", token.clone());
        }
        for (name, value) in &req.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if let Some(body) = &req.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let started = Instant::now();
        let transport = |e: reqwest::Error| {
            let outcome = if e.is_connect() { Outcome::ConnectFailed } else { Outcome::NoAnswer };
            debug!(http.method = %req.method, http.url = %shown_url, "OpenStack request got no answer: {e}");
            (
                outcome,
                OpenStackError::Transport {
                    method: req.method.to_string(),
                    url: shown_url.clone(),
                    source: e.without_url(),
                },
            )
        };
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        let request_id = headers
            .get(REQUEST_ID)
            .or_else(|| headers.get(COMPUTE_REQUEST_ID))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        debug!(
            http.method = %req.method,
            http.url = %shown_url,
            http.status = status.as_u16(),
            request.id = request_id.as_deref().unwrap_or("-"),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "OpenStack request"
        );
        Ok(Response { status, headers, body, request_id, method: req.method.to_string(), url: shown_url })
    }
}

fn api_error(resp: Response) -> OpenStackError {
    let parsed = parse_error_body(&resp.body);
    OpenStackError::Api {
        method: resp.method,
        url: resp.url,
        status: resp.status.as_u16(),
        fault: parsed.fault,
        message: parsed.message,
        request_id: resp.request_id,
    }
}

//! One request: its id and span, the body (bounded in size and time), the
//! route, the request timeout, the counters, the `x-openstack-request-id`
//! header on the way out.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response};
use tracing::{Instrument, debug, info_span};

use super::app::App;
use super::error::{Format, RequestError};
use super::{backups, guard, health, metrics};

const REQUEST_ID: &str = "x-openstack-request-id";

/// A route: its label in the metrics, the methods it takes, its body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Versions,
    Guard,
    Backups,
    Health,
    Healthcheck,
    Metrics,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Versions,
            "/v1/backup" => Route::Guard,
            "/v1/backups" => Route::Backups,
            "/v1/health" => Route::Health,
            "/healthcheck" => Route::Healthcheck,
            "/metrics" => Route::Metrics,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Route::Versions => "/",
            Route::Guard => "/v1/backup",
            Route::Backups => "/v1/backups",
            Route::Health => "/v1/health",
            Route::Healthcheck => "/healthcheck",
            Route::Metrics => "/metrics",
        }
    }

    fn allow(self) -> &'static str {
        match self {
            Route::Guard => "GET, POST",
            Route::Healthcheck => "GET, HEAD",
            _ => "GET",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Guard => method == Method::GET || method == Method::POST,
            Route::Healthcheck => method == Method::GET || method == Method::HEAD,
            _ => method == Method::GET,
        }
    }

    fn format(self) -> Format {
        match self {
            Route::Versions | Route::Backups | Route::Health => Format::Json,
            Route::Guard | Route::Healthcheck | Route::Metrics => Format::Text,
        }
    }
}

/// A caller's `x-openstack-request-id` when it has the `req-<uuid>` form
/// (oslo.middleware's global request id); anything else is ignored.
fn global_request_id(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let uuid = value.strip_prefix("req-")?;
    uuid::Uuid::try_parse(uuid).ok().map(|_| value.to_owned())
}

/// Serves one request; never fails (every error is a response).
pub(crate) async fn handle(
    app: Arc<App>,
    tls: bool,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let global = global_request_id(&req);
    let span = info_span!(
        "request",
        request_id = %request_id,
        global_request_id = global.as_deref().unwrap_or("None"),
        http.method = %req.method(),
        http.path = %req.uri().path(),
    );
    let started = Instant::now();
    let route = Route::of(req.uri().path());
    let label = route.map_or("other", Route::label);
    let method = req.method().clone();
    let mut resp = async {
        let resp = match route {
            None => RequestError::NotFound(req.uri().path().chars().take(200).collect()).into_response(Format::Json),
            Some(route) if !route.allows(req.method()) => RequestError::MethodNotAllowed {
                method: req.method().to_string(),
                path: route.label().to_owned(),
                allow: route.allow(),
            }
            .into_response(route.format()),
            Some(route) => {
                let base = base_url(&req, tls);
                let (parts, body) = req.into_parts();
                let body = if route == Route::Guard {
                    let limit = app.settings.max_body_size;
                    let wait = app.settings.client_timeout;
                    match tokio::time::timeout(wait, read_body(&parts.headers, body, limit)).await {
                        Ok(Ok(body)) => Ok(body),
                        Ok(Err(err)) => Err(err),
                        Err(_) => Err(RequestError::BodyTimeout { secs: wait.as_secs() }),
                    }
                } else {
                    Ok(Bytes::new())
                };
                let secs = app.settings.request_timeout.as_secs();
                let answer = match body {
                    Err(err) => {
                        if route == Route::Guard {
                            app.counters.guard_bad_request();
                        }
                        Ok(Err(err))
                    }
                    Ok(body) => {
                        let work = dispatch(&app, route, &base, &request_id, &parts, &body);
                        tokio::time::timeout(app.settings.request_timeout, work).await
                    }
                };
                match answer {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(err)) => err.into_response(route.format()),
                    Err(_) => {
                        if route == Route::Guard {
                            app.counters.guard(guard::Verdict::Error, false);
                        }
                        tracing::error!("request timed out after {secs} s: refused");
                        RequestError::Timeout { secs }.into_response(route.format())
                    }
                }
            }
        };
        debug!(
            http.status = resp.status().as_u16(),
            "{method} {label} answered {} in {:.1} ms",
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        resp
    }
    .instrument(span)
    .await;
    app.counters.request(label, resp.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    if method == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    Ok(resp)
}

async fn dispatch(
    app: &App,
    route: Route,
    base: &str,
    request_id: &str,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, RequestError> {
    match route {
        Route::Versions => Ok(health::versions(base)),
        Route::Health => Ok(health::health(app).await),
        Route::Healthcheck => Ok(health::healthcheck(app)),
        Route::Metrics => Ok(metrics::metrics(app).await),
        Route::Backups => backups::list(app, &parts.headers, parts.uri.query(), base).await,
        Route::Guard => {
            let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            guard::check(app, request_id, parts.uri.query(), content_type, body).await
        }
    }
}

/// `scheme://host` as the client called the API (for links).
fn base_url(req: &Request<Incoming>, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// How much of a body over the limit is still read, and thrown away, before
/// the 413 goes out. A client that is still sending when the server closes
/// gets a reset instead of the answer; reading on lets a body somewhat over
/// the limit end first (the read stays bounded by `client_timeout`).
const DRAIN_AFTER_LIMIT: u64 = 1 << 20;

/// The whole body, at most `limit` bytes. A larger one is refused, after
/// reading and dropping up to [`DRAIN_AFTER_LIMIT`] more of it so that the
/// client reads the refusal rather than a reset connection.
async fn read_body<B>(headers: &hyper::HeaderMap, mut body: B, limit: usize) -> Result<Bytes, RequestError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let limit_bytes = limit as u64;
    let drained = limit_bytes.saturating_add(DRAIN_AFTER_LIMIT);
    if declared.is_some_and(|n| n > drained) {
        return Err(RequestError::BodyTooLarge { limit });
    }
    let mut kept = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| RequestError::BodyRead(err.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len() as u64);
        if seen > drained {
            break;
        }
        if seen <= limit_bytes {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit_bytes || declared.is_some_and(|n| n > limit_bytes) {
        return Err(RequestError::BodyTooLarge { limit });
    }
    Ok(kept.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        assert_eq!(Route::of("/v1/backup"), Some(Route::Guard));
        assert_eq!(Route::of("/v1/backup/"), None);
        assert!(Route::Guard.allows(&Method::POST) && Route::Guard.allows(&Method::GET));
        assert!(!Route::Guard.allows(&Method::DELETE));
        assert!(!Route::Backups.allows(&Method::POST));
        assert!(Route::Healthcheck.allows(&Method::HEAD));
        assert_eq!(Route::Guard.format(), Format::Text);
        assert_eq!(Route::Backups.format(), Format::Json);
    }

    /// A body of `chunks` frames of `size` bytes, counting the frames read.
    fn chunked(
        chunks: usize,
        size: usize,
        read: Arc<std::sync::atomic::AtomicUsize>,
    ) -> http_body_util::StreamBody<
        impl futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, Infallible>> + Unpin,
    > {
        http_body_util::StreamBody::new(futures_util::stream::iter((0..chunks).map(move |_| {
            read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(hyper::body::Frame::data(Bytes::from(vec![b'x'; size])))
        })))
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_read_to_its_end_before_the_refusal_and_no_further_than_a_bound() {
        let headers = hyper::HeaderMap::new();
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let within = read_body(&headers, chunked(4, 1000, read.clone()), 4096).await;
        assert_eq!(within.map(|b| b.len()).ok(), Some(4000));

        read.store(0, std::sync::atomic::Ordering::SeqCst);
        let over = read_body(&headers, chunked(10, 1000, read.clone()), 4096).await;
        assert!(matches!(over, Err(RequestError::BodyTooLarge { limit: 4096 })), "{over:?}");
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 10, "the whole body was read before the answer");

        read.store(0, std::sync::atomic::Ordering::SeqCst);
        let endless = read_body(&headers, chunked(10_000, 1 << 10, read.clone()), 4096).await;
        assert!(matches!(endless, Err(RequestError::BodyTooLarge { .. })), "{endless:?}");
        let frames = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(frames < 1030 + 5, "read {frames} KiB frames of a 10,000 KiB body");

        let mut declared = hyper::HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("2000000"));
        read.store(0, std::sync::atomic::Ordering::SeqCst);
        let huge = read_body(&declared, chunked(2000, 1000, read.clone()), 4096).await;
        assert!(matches!(huge, Err(RequestError::BodyTooLarge { .. })), "{huge:?}");
        assert_eq!(
            read.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a declared length past the bound is refused unread"
        );
    }
}

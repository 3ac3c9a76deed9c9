//! The listener: one hyper HTTP/1 server on its own thread and runtime, path
//! prefixes `/identity`, `/compute`, `/volume` and `/_fake`, call counting,
//! fault injection, request ids, graceful stop; Cinder's `backup:delete`
//! policy check against the guard (made without holding the world), and
//! Cinder's API workers when their number is limited.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::watch;

use super::control::{self, Control};
use super::http::{Req, Resp, Service, fault};
use super::shared::Shared;
use super::urls::split_project;
use super::{cinder, keystone, nova, policy};

/// The route a request counts under: version and project id dropped, ids
/// written `{id}`, metadata keys `{key}`.
fn route_of(service: Service, segs: &[&str]) -> String {
    let mut rest = segs;
    if rest.first().is_some_and(|s| s.starts_with('v') && s[1..].starts_with(|c: char| c.is_ascii_digit())) {
        rest = &rest[1..];
        if service != Service::Identity {
            rest = split_project(rest).1;
        }
    }
    let mut out = String::new();
    let mut prev = "";
    for s in rest {
        out.push('/');
        let collection = matches!(
            prev,
            "servers" | "volumes" | "backups" | "projects" | "users" | "os-quota-sets" | "flavors" | "attachments"
        );
        if collection && !matches!(*s, "detail" | "import_record") {
            out.push_str("{id}");
        } else if prev == "metadata" {
            out.push_str("{key}");
        } else {
            out.push_str(s);
        }
        prev = s;
    }
    out
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let query =
        parts.uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let req = Req { method: parts.method, path: parts.uri.path().to_owned(), query, headers: parts.headers, body };
    let resp = dispatch(&shared, &req).await;
    Ok(into_hyper(resp))
}

async fn dispatch(shared: &Arc<Shared>, req: &Req) -> Resp {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let service = match segs.first().copied() {
        Some("identity") => Service::Identity,
        Some("compute") => Service::Compute,
        Some("volume") => Service::Volume,
        Some("_fake") => {
            let control = Control { shared: shared.clone() };
            return with_request_id(control::handle(&control, req, &segs[1..]), None);
        }
        _ => {
            let resp = Resp::json(
                404,
                &json!({"error": {"code": 404, "title": "Not Found",
                "message": "The resource could not be found."}}),
            );
            return with_request_id(resp, None);
        }
    };
    let segs = &segs[1..];
    let route = route_of(service, segs);
    shared.world().calls.entry(format!("{} /{service}{route}", req.method)).and_modify(|n| *n += 1).or_insert(1);
    // A busy single-worker cinder-api: the request waits for the worker.
    let _worker = match (&shared.cinder_workers, service) {
        (Some(workers), Service::Volume) => workers.acquire().await.ok(),
        _ => None,
    };
    let verdict = control::apply_faults(&mut shared.world(), service, req.method.as_str(), &route);
    let resp = match verdict {
        control::FaultVerdict::Answer { code, retry_after } => injected(service, code, retry_after),
        control::FaultVerdict::Proceed { delay, then_status, hold } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(id) = hold {
                while shared.world().faults.iter().any(|(held, _)| *held == id) {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            let urls = &shared.urls;
            let resp = match service {
                Service::Identity => keystone::handle(&mut shared.world(), urls, req, segs),
                Service::Compute => nova::handle(&mut shared.world(), urls, req, segs),
                Service::Volume => volume(shared, req, segs).await,
            };
            match then_status {
                Some(code) => injected(service, code, None),
                None => resp,
            }
        }
    };
    with_request_id(resp, Some(service))
}

/// A Cinder request, with `backup:delete`'s `http:` check made (when the
/// policy asks for it) without holding the world.
async fn volume(shared: &Arc<Shared>, req: &Req, segs: &[&str]) -> Resp {
    let urls = &shared.urls;
    let step = cinder::authorize(&shared.world(), urls, req, segs);
    match step {
        cinder::Authorization::Proceed => cinder::handle(&mut shared.world(), urls, req, segs),
        cinder::Authorization::Answer(resp) => {
            shared.world().policy_checks.refused_by_rule += 1;
            resp
        }
        cinder::Authorization::Ask { check, mv } => {
            let answer = policy::ask(shared.http(), &check).await;
            let passed = answer.as_ref().is_ok_and(|body| policy::passes(body));
            {
                let mut w = shared.world();
                let counts = &mut w.policy_checks;
                match &answer {
                    Ok(_) if passed => counts.allowed += 1,
                    Ok(_) => counts.refused += 1,
                    Err(_) => counts.failed += 1,
                }
            }
            match answer {
                Ok(_) if passed => cinder::handle(&mut shared.world(), urls, req, segs),
                Ok(body) => {
                    tracing::info!("fake Cinder: the guard at {} answered {body:?}: 403", check.url);
                    cinder::policy_outcome(&Ok(body), mv)
                }
                Err(err) => {
                    tracing::warn!("fake Cinder: the guard at {} failed: {err}: 500", check.url);
                    cinder::policy_outcome(&Err(err), mv)
                }
            }
        }
    }
}

fn injected(service: Service, code: u16, retry_after: Option<u64>) -> Resp {
    let message = format!("Injected fault: HTTP {code}.");
    match retry_after {
        Some(secs) if service == Service::Compute => {
            Resp::json(429, &json!({"overLimit": {"code": 429, "message": message, "retryAfter": secs.to_string()}}))
                .with("retry-after", secs.to_string())
        }
        Some(secs) => fault(service, 429, message).with("retry-after", secs.to_string()),
        None => fault(service, code, message),
    }
}

fn with_request_id(mut resp: Resp, service: Option<Service>) -> Resp {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    if matches!(service, Some(Service::Compute | Service::Volume)) {
        resp = resp.with("x-compute-request-id", id.clone());
    }
    resp.with("x-openstack-request-id", id)
}

fn into_hyper(resp: Resp) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = resp.body.map(Bytes::from).unwrap_or_default();
    builder.body(Full::new(body)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Serves `listener` until `stop` turns true, then drains open connections
/// for at most two seconds.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    auto_tick: Option<Duration>,
    notifications: Option<super::notifier::NotificationTarget>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let publisher =
        notifications.map(|target| tokio::spawn(super::notifier::publish_loop(shared.clone(), target, stop.clone())));
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    if let Some(every) = auto_tick {
        let shared = shared.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = interval.tick() => { shared.world().tick(false); }
                }
            }
        });
    }
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let svc = service_fn(move |req| handle(shared.clone(), req));
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
    if let Some(publisher) = publisher {
        let _ = tokio::time::timeout(Duration::from_secs(2), publisher).await;
    }
    Ok(())
}

/// Binds `addr` now, so that the port is known before the thread starts.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<(std::net::TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_drop_versions_and_project_ids() {
        let r = |s: Service, p: &str| route_of(s, &p.split('/').filter(|x| !x.is_empty()).collect::<Vec<_>>());
        assert_eq!(r(Service::Volume, "v3/0a1b/backups/detail"), "/backups/detail");
        assert_eq!(r(Service::Volume, "v3/backups/5f1c-e2/action"), "/backups/{id}/action");
        assert_eq!(r(Service::Compute, "v2.1/servers/abc/metadata/k"), "/servers/{id}/metadata/{key}");
        assert_eq!(r(Service::Identity, "v3/auth/tokens"), "/auth/tokens");
        assert_eq!(r(Service::Volume, ""), "");
    }
}

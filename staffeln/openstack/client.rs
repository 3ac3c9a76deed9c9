//! [`OpenStack`], the facade of this room: one HTTP client and one token
//! cache shared by all clones, a handle per project, and the call pipeline
//! every service file uses (token, endpoint, microversion, retries, one new
//! token on 401, pagination). The service files (`keystone.rs`, `nova.rs`,
//! `cinder.rs`) add one `impl OpenStack` block each, on top of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};
use url::Url;

use super::auth::{self, AuthConfig, ScopeKey, Token, TokenCache};
use super::catalog::{self, Microversion, ServiceType};
use super::clouds::SearchPaths;
use super::error::OpenStackError;
use super::http::{Http, Request, Response};
use super::retry;
use super::settings::Settings;
use super::wire;
use crate::objects::ProjectId;

/// A listing: items in the services' order, fetched page by page as the
/// stream is polled. An error ends the stream.
pub type ItemStream<T> = BoxStream<'static, Result<T, OpenStackError>>;

/// The Nova microversion Staffeln speaks (see the room doc).
pub const NOVA_MICROVERSION: Microversion = Microversion::new(2, 1);
/// The oldest Cinder microversion Staffeln accepts (backup metadata).
pub const CINDER_MIN_MICROVERSION: Microversion = Microversion::new(3, 43);
/// The Cinder microversion Staffeln asks for when the cloud offers it.
pub const CINDER_MICROVERSION: Microversion = Microversion::new(3, 64);

/// How a call may be repeated by the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    idempotent: bool,
    once: bool,
}

impl Sending {
    pub(super) fn retried(idempotent: bool) -> Sending {
        Sending { idempotent, once: false }
    }
}

/// The Keystone/Nova/Cinder client; see the module doc.
#[derive(Clone)]
pub struct OpenStack {
    shared: Arc<Shared>,
    scope: ScopeKey,
    pub(super) project_id: ProjectId,
}

struct Shared {
    http: Http,
    config: AuthConfig,
    tokens: TokenCache,
    /// Negotiated microversion by service and version root URL.
    versions: Mutex<HashMap<(ServiceType, String), Microversion>>,
    default_project: ProjectId,
}

impl std::fmt::Debug for OpenStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStack")
            .field("identity_url", &self.shared.config.identity_url.as_str())
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

impl OpenStack {
    /// Resolves the configuration (clouds.yaml from the standard places when
    /// `cloud` is set), builds the HTTP client and authenticates.
    pub async fn connect(settings: &Settings) -> Result<OpenStack, OpenStackError> {
        Self::connect_with(settings, &SearchPaths::standard()).await
    }

    /// [`OpenStack::connect`] with explicit clouds.yaml/secure.yaml locations.
    pub async fn connect_with(settings: &Settings, paths: &SearchPaths) -> Result<OpenStack, OpenStackError> {
        let config = auth::resolve(settings, paths)?;
        let http = Http::new(settings, config.cacert.as_deref(), config.insecure)?;
        let tokens = TokenCache::default();
        let token = tokens.get(&None, || auth::issue_token(&http, &config, &None)).await?;
        let default_project = token.project_id.clone();
        debug!(project.id = %default_project, "connected to Keystone at {}", config.identity_url);
        Ok(OpenStack {
            shared: Arc::new(Shared {
                http,
                config,
                tokens,
                versions: Mutex::new(HashMap::new()),
                default_project: default_project.clone(),
            }),
            scope: None,
            project_id: default_project,
        })
    }

    /// The project this handle acts in.
    pub fn project_id(&self) -> &ProjectId {
        &self.project_id
    }

    /// A handle acting in `project`, with a token scoped there (issued on
    /// first use, then reused). Shares the HTTP client and token cache.
    ///
    /// With password credentials the service user needs a role in
    /// `project`, else the first call fails with Keystone's 401. With an
    /// application credential only its own project is possible: any other
    /// fails here with [`OpenStackError::ScopeUnavailable`].
    pub fn for_project(&self, project: &ProjectId) -> Result<OpenStack, OpenStackError> {
        if *project == self.shared.default_project {
            return Ok(OpenStack { shared: self.shared.clone(), scope: None, project_id: project.clone() });
        }
        if let auth::Credentials::AppCredential { .. } = self.shared.config.credentials {
            return Err(OpenStackError::ScopeUnavailable {
                wanted: project.to_string(),
                bound: self.shared.default_project.to_string(),
            });
        }
        Ok(OpenStack { shared: self.shared.clone(), scope: Some(project.clone()), project_id: project.clone() })
    }

    /// The projects this handle's token cache holds a fresh project-scoped
    /// token for: work in them costs no new token.
    pub fn warm_projects(&self) -> Vec<ProjectId> {
        let mut warm = self.shared.tokens.fresh_projects();
        warm.push(self.shared.default_project.clone());
        warm
    }

    /// The Keystone user id these credentials authenticate as, from the
    /// handle's current token (a new token is issued when it is due, so the
    /// id follows a credential that changed owner).
    pub async fn user_id(&self) -> Result<String, OpenStackError> {
        Ok(self.token().await?.user_id.clone())
    }

    /// The microversion used with `service` (negotiated on first use).
    pub async fn microversion(&self, service: ServiceType) -> Result<Option<Microversion>, OpenStackError> {
        let token = self.token().await?;
        Ok(self.endpoint(service, &token).await?.1)
    }

    async fn token(&self) -> Result<Arc<Token>, OpenStackError> {
        let shared = &self.shared;
        shared.tokens.get(&self.scope, || auth::issue_token(&shared.http, &shared.config, &self.scope)).await
    }

    /// Base URL (no trailing slash) and microversion of `service` for `token`.
    async fn endpoint(
        &self,
        service: ServiceType,
        token: &Token,
    ) -> Result<(String, Option<Microversion>), OpenStackError> {
        let config = &self.shared.config;
        let url = match config.endpoint_overrides.get(service.as_str()) {
            Some(template) => catalog::expand_url_template(template, token.project_id.as_str(), &token.user_id),
            None => match token.catalog.url_for(service, config.interface, config.region.as_deref()) {
                Ok(url) => url.to_owned(),
                Err(_) if service == ServiceType::Identity => config.identity_url.to_string(),
                Err(e) => return Err(e),
            },
        };
        match service {
            ServiceType::Identity => Ok((auth::identity_v3_url(&url)?.as_str().trim_end_matches('/').to_owned(), None)),
            ServiceType::Compute | ServiceType::BlockStorage => {
                let url = url.trim_end_matches('/').to_owned();
                let mv = self.negotiated(service, &url, token).await?;
                Ok((url, Some(mv)))
            }
        }
    }

    async fn negotiated(&self, service: ServiceType, url: &str, token: &Token) -> Result<Microversion, OpenStackError> {
        let (root, _) = catalog::split_project_segment(url, token.project_id.as_str());
        let key = (service, root.to_owned());
        if let Some(mv) = self.lock_versions().get(&key) {
            return Ok(*mv);
        }
        let mv = self.discover(service, root, token).await?;
        self.lock_versions().insert(key, mv);
        Ok(mv)
    }

    fn lock_versions(&self) -> std::sync::MutexGuard<'_, HashMap<(ServiceType, String), Microversion>> {
        self.shared.versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the version document (`<root>/`, then the unversioned root) and
    /// negotiates. Without any document the preferred version is used and a
    /// warning logged: the service will answer 406 if it cannot do it.
    async fn discover(&self, service: ServiceType, root: &str, token: &Token) -> Result<Microversion, OpenStackError> {
        let (major, required, preferred) = match service {
            ServiceType::Compute => (2, NOVA_MICROVERSION, NOVA_MICROVERSION),
            _ => (3, CINDER_MIN_MICROVERSION, CINDER_MICROVERSION),
        };
        let candidates = [Some(format!("{root}/")), catalog::unversioned_root(root)];
        for candidate in candidates.into_iter().flatten() {
            let Ok(url) = Url::parse(&candidate) else {
                continue;
            };
            let mut req = Request {
                method: Method::GET,
                url,
                token: None,
                headers: Vec::new(),
                body: None,
                idempotent: true,
                once: false,
            };
            let mut answer = self.shared.http.send(&req).await;
            if answer.as_ref().err().is_some_and(OpenStackError::is_unauthorized) {
                req.token = Some(token.value.clone());
                answer = self.shared.http.send(&req).await;
            }
            let resp = match answer {
                Ok(resp) => resp,
                Err(e) => {
                    debug!(service = %service, "no version document at {candidate}: {e}");
                    continue;
                }
            };
            let info = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|doc| catalog::version_info(&doc, major));
            if let Some(info) = info {
                let mv = catalog::negotiate(service, root, &info, required, preferred)?;
                debug!(service = %service, microversion = %mv, max = ?info.max.map(|m| m.to_string()), "negotiated microversion at {root}");
                return Ok(mv);
            }
        }
        warn!(service = %service, "no version document found for {root}; assuming microversion {preferred}");
        Ok(preferred)
    }

    /// One call to `service`: token, endpoint, microversion, retries, and one
    /// re-issue of the token on 401.
    pub(super) async fn call<B: Serialize + ?Sized>(
        &self,
        service: ServiceType,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&B>,
        idempotent: bool,
    ) -> Result<Response, OpenStackError> {
        self.call_with_headers(service, method, path, query, Vec::new(), body, Sending::retried(idempotent)).await
    }

    /// [`OpenStack::call`] sent exactly once (a 401 still gets one new
    /// token): the caller retries, after checking it still should.
    pub(super) async fn call_once<B: Serialize + ?Sized>(
        &self,
        service: ServiceType,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response, OpenStackError> {
        let once = Sending { idempotent: false, once: true };
        self.call_with_headers(service, method, path, &[], Vec::new(), body, once).await
    }

    /// The retry rules of this client (`retry_timeout`, `max_retry_interval`,
    /// `skip_retry_codes`), for callers that retry themselves.
    pub fn retry_policy(&self) -> &retry::RetryPolicy {
        self.shared.http.policy()
    }

    /// [`OpenStack::call`] with extra request headers (`X-Subject-Token`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn call_with_headers<B: Serialize + ?Sized>(
        &self,
        service: ServiceType,
        method: Method,
        path: &str,
        query: &[(String, String)],
        extra_headers: Vec<(HeaderName, HeaderValue)>,
        body: Option<&B>,
        sending: Sending,
    ) -> Result<Response, OpenStackError> {
        let body = match body {
            Some(b) => Some(Bytes::from(
                serde_json::to_vec(b).map_err(|e| OpenStackError::Config(format!("cannot encode request: {e}")))?,
            )),
            None => None,
        };
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let (base, mv) = self.endpoint(service, &token).await?;
            let mut url = Url::parse(&format!("{base}{path}"))
                .map_err(|e| OpenStackError::Config(format!("bad {service} endpoint {base:?}: {e}")))?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let req = Request {
                method: method.clone(),
                url,
                token: Some(token.value.clone()),
                headers: microversion_headers(service, mv).into_iter().chain(extra_headers.iter().cloned()).collect(),
                body: body.clone(),
                idempotent: sending.idempotent,
                once: sending.once,
            };
            match self.shared.http.send(&req).await {
                Err(e) if e.is_unauthorized() && !renewed => {
                    debug!(project.id = %self.project_id, "token rejected by {service}; issuing a new one");
                    self.shared.tokens.invalidate(&self.scope, &token).await;
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    /// A listing at `path` that follows `next` links: each page's items
    /// converted by `convert` (None drops an item).
    pub(super) fn paginate<B, T, F>(
        &self,
        service: ServiceType,
        path: String,
        query: Vec<(String, String)>,
        key: &'static str,
        convert: F,
    ) -> ItemStream<T>
    where
        B: DeserializeOwned + Send + 'static,
        T: Send + 'static,
        F: Fn(B, &ProjectId) -> Option<T> + Send + Sync + 'static,
    {
        let this = self.clone();
        let convert = Arc::new(convert);
        let pages = stream::try_unfold(Some(query), move |state| {
            let this = this.clone();
            let path = path.clone();
            let convert = convert.clone();
            async move {
                let Some(query) = state else { return Ok(None) };
                let resp = this.call::<()>(service, Method::GET, &path, &query, None, true).await?;
                let page: wire::Page<B> = resp.decode(|b| wire::parse_page(b, key))?;
                if page.truncated && page.next.is_none() {
                    warn!(
                        service = %service,
                        "{} returned a truncated list without a next link; raise Keystone's list_limit",
                        resp.url
                    );
                }
                let empty = page.items.is_empty();
                let items: Vec<T> = page.items.into_iter().filter_map(|b| convert(b, &this.project_id)).collect();
                let next = match page.next {
                    Some(href) if !empty => {
                        let next = next_query(&href).ok_or_else(|| OpenStackError::Protocol {
                            url: resp.url.clone(),
                            message: format!("unusable next link {href:?}"),
                        })?;
                        if next == query {
                            return Err(OpenStackError::Protocol {
                                url: resp.url.clone(),
                                message: "the next link repeats the current page (endless pagination)".to_owned(),
                            });
                        }
                        Some(next)
                    }
                    _ => None,
                };
                Ok(Some((items, next)))
            }
        });
        pages.map_ok(|items| stream::iter(items.into_iter().map(Ok))).try_flatten().boxed()
    }
}

/// The query of a `next` link. Only the query is used: the path stays the
/// endpoint's own, so a service that renders links with a wrong host (a
/// common proxy misconfiguration) still pages correctly.
fn next_query(href: &str) -> Option<Vec<(String, String)>> {
    let url = Url::parse(href).or_else(|_| Url::parse("http://relative.invalid/")?.join(href)).ok()?;
    Some(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

fn microversion_headers(service: ServiceType, mv: Option<Microversion>) -> Vec<(HeaderName, HeaderValue)> {
    let Some(mv) = mv else { return Vec::new() };
    let value = |s: String| HeaderValue::from_str(&s).ok();
    let mut headers = Vec::new();
    match service {
        ServiceType::Compute => {
            if let Some(v) = value(format!("compute {mv}")) {
                headers.push((HeaderName::from_static("openstack-api-version"), v));
            }
            if let Some(v) = value(mv.to_string()) {
                headers.push((HeaderName::from_static("x-openstack-nova-api-version"), v));
            }
        }
        ServiceType::BlockStorage => {
            if let Some(v) = value(format!("volume {mv}")) {
                headers.push((HeaderName::from_static("openstack-api-version"), v));
            }
        }
        ServiceType::Identity => {}
    }
    headers
}

/// Percent-encodes one path segment (ids are uuids, but never trust input).
pub(super) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn next_links_keep_only_their_query() {
        let q = next_query("http://wrong-host:8776/v3/p/volumes/detail?all_tenants=True&marker=abc").unwrap();
        assert_eq!(q, vec![pair("all_tenants", "True"), pair("marker", "abc")]);
        let q = next_query("/v3/projects?limit=2&marker=b%20c").unwrap();
        assert_eq!(q, vec![pair("limit", "2"), pair("marker", "b c")]);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("5f1c-e2_x.y~"), "5f1c-e2_x.y~");
        assert_eq!(seg("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn microversion_headers_per_service() {
        let h = microversion_headers(ServiceType::Compute, Some(NOVA_MICROVERSION));
        let shown: Vec<(String, String)> =
            h.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
        assert_eq!(
            shown,
            vec![pair("openstack-api-version", "compute 2.1"), pair("x-openstack-nova-api-version", "2.1")]
        );
        let h = microversion_headers(ServiceType::BlockStorage, Some(CINDER_MICROVERSION));
        assert_eq!(h[0].1.to_str().unwrap(), "volume 3.64");
        assert!(microversion_headers(ServiceType::Identity, None).is_empty());
    }
}

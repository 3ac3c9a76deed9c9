//! Keystone v3 authentication: which credentials to use, issuing
//! project-scoped tokens, and caching them per project.
//!
//! * Methods: `password` (user by id or name + domain) and
//!   `application_credential` (by id, or by name + user).
//! * Scope: the configured project (`project_name`/`project_id`), or any
//!   project by id for [`super::OpenStack::for_project`]. The service user
//!   needs a role there (typically `admin`, or `member` on each project).
//!   Application credentials cannot request a scope: their token is always
//!   for the credential's own project, so asking for another project fails
//!   with [`OpenStackError::ScopeUnavailable`] instead of silently creating
//!   resources in the wrong project.
//! * A token is reused until shortly before it expires (the margin is the
//!   smaller of 2 minutes and a tenth of its lifetime), measured with the
//!   local monotonic clock from the token's own lifetime, so clock skew
//!   between Staffeln and Keystone does not matter. A 401 from Nova or Cinder
//!   drops the token; the call is repeated once with a new one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use tracing::debug;
use url::Url;

use super::catalog::Catalog;
use super::clouds::{self, CloudEntry, SearchPaths};
use super::error::OpenStackError;
use super::http::{Http, Request};
use super::settings::{Interface, Secret, Settings};
use super::wire::{self, DomainRef, ProjectRef, TokenBody, UserRef};
use crate::objects::ProjectId;

/// How Staffeln proves who it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Credentials {
    Password { user: UserRef, password: Secret, project: Option<ProjectRef> },
    AppCredential { id: Option<String>, name_and_user: Option<(String, UserRef)>, secret: Secret },
}

/// Everything needed to authenticate and find endpoints, from Settings and
/// (optionally) a clouds.yaml entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AuthConfig {
    /// Keystone's v3 base, e.g. `http://ks:5000/v3`.
    pub identity_url: Url,
    pub credentials: Credentials,
    pub region: Option<String>,
    pub interface: Interface,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
    /// Endpoint URL templates by service type, from clouds.yaml.
    pub endpoint_overrides: std::collections::BTreeMap<String, String>,
}

/// Builds the auth configuration: from clouds.yaml when `settings.cloud` is
/// set, else from the explicit options.
pub(super) fn resolve(settings: &Settings, paths: &SearchPaths) -> Result<AuthConfig, OpenStackError> {
    match &settings.cloud {
        Some(name) if !name.is_empty() => {
            let entry = clouds::load_cloud(name, paths)?;
            from_cloud(settings, &entry)
        }
        _ => from_settings(settings),
    }
}

fn missing(what: &str, source: &str) -> OpenStackError {
    OpenStackError::Config(format!("{what} is required ({source})"))
}

fn from_settings(s: &Settings) -> Result<AuthConfig, OpenStackError> {
    let src = "[openstack] options";
    let auth_url = s.auth_url.as_deref().filter(|u| !u.is_empty()).ok_or_else(|| missing("auth_url", src))?;
    let credentials = if let Some(id) = s.application_credential_id.as_ref().filter(|i| !i.is_empty()) {
        let secret =
            s.application_credential_secret.clone().ok_or_else(|| missing("application_credential_secret", src))?;
        Credentials::AppCredential { id: Some(id.clone()), name_and_user: None, secret }
    } else {
        let username = s.username.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
            missing("username and password (or application_credential_id and application_credential_secret)", src)
        })?;
        let password = s.password.clone().ok_or_else(|| missing("password", src))?;
        let project = s.project_name.clone().filter(|p| !p.is_empty()).ok_or_else(|| missing("project_name", src))?;
        Credentials::Password {
            user: UserRef::Name { name: username, domain: DomainRef::Name(s.user_domain_name.clone()) },
            password,
            project: Some(ProjectRef::Name { name: project, domain: DomainRef::Name(s.project_domain_name.clone()) }),
        }
    };
    Ok(AuthConfig {
        identity_url: identity_v3_url(auth_url)?,
        credentials,
        region: s.region_name.clone().filter(|r| !r.is_empty()),
        interface: s.interface,
        cacert: s.cacert.clone(),
        insecure: s.insecure,
        endpoint_overrides: Default::default(),
    })
}

fn from_cloud(s: &Settings, e: &CloudEntry) -> Result<AuthConfig, OpenStackError> {
    let src = format!("cloud {:?} in {}", s.cloud.as_deref().unwrap_or_default(), e.source.display());
    let a = &e.auth;
    let auth_url = a.auth_url.as_deref().ok_or_else(|| missing("auth.auth_url", &src))?;
    let domain = |id: &Option<String>, name: &Option<String>| -> DomainRef {
        match (id, name, &a.domain_id, &a.domain_name) {
            (Some(id), _, _, _) => DomainRef::Id(id.clone()),
            (None, Some(name), _, _) => DomainRef::Name(name.clone()),
            (None, None, Some(id), _) => DomainRef::Id(id.clone()),
            (None, None, None, Some(name)) => DomainRef::Name(name.clone()),
            (None, None, None, None) => DomainRef::Name("Default".to_owned()),
        }
    };
    let user = match (&a.user_id, &a.username) {
        (Some(id), _) => Some(UserRef::Id(id.clone())),
        (None, Some(name)) => {
            Some(UserRef::Name { name: name.clone(), domain: domain(&a.user_domain_id, &a.user_domain_name) })
        }
        (None, None) => None,
    };
    let auth_type = e.auth_type.as_deref().unwrap_or("password");
    let is_app_cred = auth_type.contains("applicationcredential")
        || auth_type.contains("application_credential")
        || ((a.application_credential_id.is_some() || a.application_credential_name.is_some()) && a.password.is_none());
    let credentials = if is_app_cred {
        let secret = a
            .application_credential_secret
            .clone()
            .ok_or_else(|| missing("auth.application_credential_secret", &src))?;
        match (&a.application_credential_id, &a.application_credential_name, user) {
            (Some(id), _, _) => Credentials::AppCredential { id: Some(id.clone()), name_and_user: None, secret },
            (None, Some(name), Some(user)) => {
                Credentials::AppCredential { id: None, name_and_user: Some((name.clone(), user)), secret }
            }
            _ => {
                return Err(missing(
                    "auth.application_credential_id (or application_credential_name with username or user_id)",
                    &src,
                ));
            }
        }
    } else if matches!(auth_type, "password" | "v3password") {
        let user = user.ok_or_else(|| missing("auth.username or auth.user_id", &src))?;
        let password = a.password.clone().ok_or_else(|| missing("auth.password", &src))?;
        let project = match (&a.project_id, &a.project_name) {
            (Some(id), _) => Some(ProjectRef::Id(id.clone())),
            (None, Some(name)) => Some(ProjectRef::Name {
                name: name.clone(),
                domain: domain(&a.project_domain_id, &a.project_domain_name),
            }),
            (None, None) => None,
        };
        Credentials::Password { user, password, project }
    } else {
        return Err(OpenStackError::Config(format!(
            "auth_type {auth_type:?} of {src} is not supported (use password, v3password or v3applicationcredential)"
        )));
    };
    let interface = match &e.interface {
        Some(i) => i.parse().map_err(|msg: String| OpenStackError::Config(format!("{src}: {msg}")))?,
        None => s.interface,
    };
    Ok(AuthConfig {
        identity_url: identity_v3_url(auth_url)?,
        credentials,
        region: s.region_name.clone().filter(|r| !r.is_empty()).or_else(|| e.region_name.clone()),
        interface,
        cacert: s.cacert.clone().or_else(|| e.cacert.clone()),
        insecure: s.insecure || e.insecure.unwrap_or(false),
        endpoint_overrides: e.endpoint_overrides.clone(),
    })
}

/// Keystone's v3 base from an auth URL: kept when its path ends in a `v3`
/// segment, else `/v3` is appended (as keystoneauth's v3 plugins do).
pub(super) fn identity_v3_url(auth_url: &str) -> Result<Url, OpenStackError> {
    let mut url = Url::parse(auth_url.trim())
        .map_err(|e| OpenStackError::Config(format!("auth_url {auth_url:?} is not a URL: {e}")))?;
    let path = url.path().trim_end_matches('/').to_owned();
    let last = path.rsplit('/').next().unwrap_or_default();
    if last == "v3" || last.starts_with("v3.") {
        url.set_path(&path);
    } else {
        url.set_path(&format!("{path}/v3"));
    }
    url.set_query(None);
    Ok(url)
}

/// An issued token and what came with it.
pub(super) struct Token {
    pub value: Secret,
    pub project_id: ProjectId,
    pub user_id: String,
    pub catalog: Catalog,
    /// Local instant after which the token is not used any more.
    pub refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &self.value)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// When to stop using a token with this lifetime, received `received`.
pub(super) fn refresh_at(received: Instant, lifetime: Duration) -> Instant {
    let margin = (lifetime / 10).min(Duration::from_secs(120));
    received + lifetime.saturating_sub(margin)
}

/// Which token: the configured scope, or a project by id.
pub(super) type ScopeKey = Option<ProjectId>;

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Token>>>>;

/// Tokens by scope; one issue at a time per scope.
#[derive(Default)]
pub(super) struct TokenCache {
    slots: Mutex<HashMap<ScopeKey, Slot>>,
}

impl TokenCache {
    fn slot(&self, key: &ScopeKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// The cached token of `key` if still fresh, else a new one from `issue`.
    pub(super) async fn get<F, Fut>(&self, key: &ScopeKey, issue: F) -> Result<Arc<Token>, OpenStackError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, OpenStackError>>,
    {
        let slot = self.slot(key);
        let mut current = slot.lock().await;
        if let Some(token) = current.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.clone());
        }
        let token = Arc::new(issue().await?);
        *current = Some(token.clone());
        drop(current);
        self.forget_stale();
        Ok(token)
    }

    /// Drops the slots whose token is no longer used (expired, or rejected)
    /// and that nobody is issuing into: a conductor scopes a token to each
    /// project it backs up, and a cloud of thousands of projects would
    /// otherwise keep every one of them, catalog included, for good.
    fn forget_stale(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        slots.retain(|_, slot| match slot.try_lock() {
            Ok(token) => token.as_ref().is_some_and(|t| now < t.refresh_at),
            Err(_busy) => true,
        });
    }

    /// The projects whose scoped token is cached and still fresh (a token
    /// being issued right now is not counted).
    pub(super) fn fresh_projects(&self) -> Vec<ProjectId> {
        let slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        slots
            .iter()
            .filter_map(|(key, slot)| {
                let project = key.as_ref()?;
                let token = slot.try_lock().ok()?;
                token.as_ref().filter(|t| now < t.refresh_at).map(|_| project.clone())
            })
            .collect()
    }

    /// Drops `used` (rejected with 401) unless it was already replaced.
    pub(super) async fn invalidate(&self, key: &ScopeKey, used: &Arc<Token>) {
        let slot = self.slot(key);
        let mut current = slot.lock().await;
        if current.as_ref().is_some_and(|t| Arc::ptr_eq(t, used)) {
            *current = None;
        }
    }
}

/// `POST /v3/auth/tokens` for `scope`.
pub(super) async fn issue_token(http: &Http, config: &AuthConfig, scope: &ScopeKey) -> Result<Token, OpenStackError> {
    let body = match (&config.credentials, scope) {
        (Credentials::Password { user, password, project }, None) => {
            wire::password_auth_body(user, password, project.as_ref())
        }
        (Credentials::Password { user, password, .. }, Some(pid)) => {
            wire::password_auth_body(user, password, Some(&ProjectRef::Id(pid.0.clone())))
        }
        (Credentials::AppCredential { id, name_and_user, secret }, _) => {
            wire::app_credential_auth_body(id.as_deref(), name_and_user.as_ref().map(|(n, u)| (n.as_str(), u)), secret)
        }
    };
    let mut url = config.identity_url.clone();
    url.set_path(&format!("{}/auth/tokens", config.identity_url.path().trim_end_matches('/')));
    let body =
        serde_json::to_vec(&body).map_err(|e| OpenStackError::Config(format!("cannot encode auth request: {e}")))?;
    let received = Instant::now();
    let resp = http
        .send(&Request {
            method: Method::POST,
            url,
            token: None,
            headers: Vec::new(),
            body: Some(body.into()),
            idempotent: true,
            once: false,
        })
        .await?;
    let value =
        resp.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).map(Secret::new).ok_or_else(|| {
            OpenStackError::Protocol { url: resp.url.clone(), message: "no X-Subject-Token in the answer".to_owned() }
        })?;
    let body: TokenBody = resp.decode(|b| wire::parse_one(b, "token"))?;
    let Some(project) = body.project else {
        return Err(OpenStackError::Config(
            "Keystone issued a token without a project: set project_name (or project_id in clouds.yaml)".to_owned(),
        ));
    };
    if let Some(wanted) = scope
        && wanted.0 != project.id
    {
        return Err(OpenStackError::Protocol {
            url: resp.url.clone(),
            message: format!("asked for a token for project {wanted}, got one for {}", project.id),
        });
    }
    let lifetime = match body.issued_at {
        Some(issued) => body.expires_at - issued,
        None => body.expires_at - chrono::Utc::now(),
    };
    let lifetime = lifetime.to_std().unwrap_or(Duration::ZERO);
    debug!(
        project.id = %project.id,
        request.id = resp.request_id.as_deref().unwrap_or("-"),
        lifetime_s = lifetime.as_secs(),
        "issued a Keystone token"
    );
    Ok(Token {
        value,
        project_id: ProjectId(project.id),
        user_id: body.user.id,
        catalog: wire::into_catalog(body.catalog),
        refresh_at: refresh_at(received, lifetime),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn identity_urls_get_a_v3_suffix_once() {
        let cases = [
            ("http://ks:5000", "http://ks:5000/v3"),
            ("http://ks:5000/", "http://ks:5000/v3"),
            ("http://ks:5000/v3", "http://ks:5000/v3"),
            ("http://ks:5000/v3/", "http://ks:5000/v3"),
            ("https://lb/identity", "https://lb/identity/v3"),
            ("https://lb/identity/v3.14/", "https://lb/identity/v3.14"),
        ];
        for (input, want) in cases {
            assert_eq!(identity_v3_url(input).unwrap().as_str(), want, "{input}");
        }
        assert!(identity_v3_url("not a url").is_err());
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let t0 = Instant::now();
        assert_eq!(refresh_at(t0, Duration::from_secs(3600)), t0 + Duration::from_secs(3480));
        assert_eq!(refresh_at(t0, Duration::from_secs(60)), t0 + Duration::from_secs(54));
        assert_eq!(refresh_at(t0, Duration::ZERO), t0);
    }

    fn token(project: &str, refresh_at: Instant) -> Token {
        Token {
            value: Secret::new(format!("tok-{project}")),
            project_id: ProjectId::from(project),
            user_id: "u".into(),
            catalog: Catalog::default(),
            refresh_at,
        }
    }

    #[tokio::test]
    async fn one_issue_per_scope_even_when_asked_concurrently() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let cache = Arc::new(TokenCache::default());
        let issued = Arc::new(AtomicU32::new(0));
        let far = Instant::now() + Duration::from_secs(3600);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (cache, issued) = (cache.clone(), issued.clone());
            let key: ScopeKey = if i % 2 == 0 { None } else { Some(ProjectId::from("p")) };
            tasks.push(tokio::spawn(async move {
                cache
                    .get(&key, || async {
                        issued.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok(token("x", far))
                    })
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(issued.load(Ordering::SeqCst), 2, "one per scope");

        // A rejected token is dropped once; a stale handle does not drop its successor.
        let key: ScopeKey = None;
        let first = cache.get(&key, || async { Ok(token("y", far)) }).await.unwrap();
        cache.invalidate(&key, &first).await;
        let second = cache.get(&key, || async { Ok(token("z", far)) }).await.unwrap();
        assert_eq!(second.value.expose(), "tok-z");
        cache.invalidate(&key, &first).await;
        let still = cache.get(&key, || async { Ok(token("w", far)) }).await.unwrap();
        assert!(Arc::ptr_eq(&still, &second));

        // An expired token is replaced.
        let key: ScopeKey = Some(ProjectId::from("old"));
        cache.get(&key, || async { Ok(token("old", Instant::now())) }).await.unwrap();
        let fresh = cache.get(&key, || async { Ok(token("new", far)) }).await.unwrap();
        assert_eq!(fresh.value.expose(), "tok-new");
    }

    #[tokio::test]
    async fn tokens_no_longer_used_are_forgotten() {
        let cache = TokenCache::default();
        let far = Instant::now() + Duration::from_secs(3600);
        for p in 0..100 {
            let key: ScopeKey = Some(ProjectId::from(format!("p{p}").as_str()));
            let lifetime = if p < 50 { Instant::now() } else { far };
            cache.get(&key, || async move { Ok(token("x", lifetime)) }).await.unwrap();
        }
        let key: ScopeKey = Some(ProjectId::from("p99"));
        let used = cache.get(&key, || async { Ok(token("unused", far)) }).await.unwrap();
        cache.invalidate(&key, &used).await;
        // The next issue sweeps: the expired and the rejected ones go.
        cache.get(&None, || async { Ok(token("conf", far)) }).await.unwrap();
        let slots = cache.slots.lock().unwrap().len();
        assert_eq!(slots, 50, "49 fresh projects and the configured scope");
        let fresh = cache.fresh_projects();
        assert_eq!(fresh.len(), 49);
        assert!(!fresh.contains(&ProjectId::from("p99")) && !fresh.contains(&ProjectId::from("p0")));
    }

    fn settings() -> Settings {
        Settings {
            auth_url: Some("http://ks:5000".into()),
            username: Some("staffeln".into()),
            password: Some("pw".into()),
            project_name: Some("service".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn explicit_options_password_and_app_credential() {
        let none = SearchPaths { clouds: vec![], secure: vec![] };
        let c = resolve(&settings(), &none).unwrap();
        assert_eq!(c.identity_url.as_str(), "http://ks:5000/v3");
        assert_eq!(
            c.credentials,
            Credentials::Password {
                user: UserRef::Name { name: "staffeln".into(), domain: DomainRef::Name("Default".into()) },
                password: "pw".into(),
                project: Some(ProjectRef::Name { name: "service".into(), domain: DomainRef::Name("Default".into()) }),
            }
        );
        let app = Settings {
            application_credential_id: Some("ac".into()),
            application_credential_secret: Some("s".into()),
            ..settings()
        };
        assert!(matches!(resolve(&app, &none).unwrap().credentials, Credentials::AppCredential { id: Some(_), .. }));
        let no_secret = Settings { application_credential_id: Some("ac".into()), ..Settings::default() };
        let no_secret = Settings { auth_url: Some("http://ks".into()), ..no_secret };
        let err = resolve(&no_secret, &none).unwrap_err().to_string();
        assert!(err.contains("application_credential_secret"), "{err}");
        let err = resolve(&Settings { project_name: None, ..settings() }, &none).unwrap_err().to_string();
        assert!(err.contains("project_name"), "{err}");
        let err = resolve(&Settings { auth_url: None, ..settings() }, &none).unwrap_err().to_string();
        assert!(err.contains("auth_url"), "{err}");
    }

    #[test]
    fn clouds_yaml_entries_resolve_and_explicit_region_wins() {
        let yaml = r#"
clouds:
  pw:
    auth: {auth_url: "http://ks/v3", user_id: u1, password: pw, project_id: p1}
    region_name: RegionOne
    interface: internal
    verify: false
  ac:
    auth_type: v3applicationcredential
    auth: {auth_url: "http://ks", application_credential_name: mon, username: bob, user_domain_id: d1,
           application_credential_secret: s}
  token:
    auth_type: token
    auth: {auth_url: "http://ks", token: abc}
"#;
        let entry = |name: &str| clouds::parse_cloud(name, Path::new("clouds.yaml"), yaml, None).unwrap();
        let with = |name: &str, s: Settings| from_cloud(&Settings { cloud: Some(name.into()), ..s }, &entry(name));
        let c = with("pw", Settings::default()).unwrap();
        assert_eq!(
            c.credentials,
            Credentials::Password {
                user: UserRef::Id("u1".into()),
                password: "pw".into(),
                project: Some(ProjectRef::Id("p1".into()))
            }
        );
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, Interface::Internal);
        assert!(c.insecure);
        let c = with("pw", Settings { region_name: Some("RegionTwo".into()), ..Settings::default() }).unwrap();
        assert_eq!(c.region.as_deref(), Some("RegionTwo"));
        let c = with("ac", Settings::default()).unwrap();
        assert_eq!(
            c.credentials,
            Credentials::AppCredential {
                id: None,
                name_and_user: Some((
                    "mon".into(),
                    UserRef::Name { name: "bob".into(), domain: DomainRef::Id("d1".into()) }
                )),
                secret: "s".into(),
            }
        );
        assert_eq!(c.identity_url.as_str(), "http://ks/v3");
        let err = with("token", Settings::default()).unwrap_err().to_string();
        assert!(err.contains("auth_type \"token\""), "{err}");
    }
}

//! staffeln-api: the oslo.policy `http:` guard Cinder calls before
//! `backup:delete`, with its siblings: the tenants' listing of their automated
//! backups, health checks, a version document and Prometheus metrics.
//!
//! What lives here:
//! * [`server`]: the listener (plain or rustls), one hyper HTTP/1 connection
//!   task per client with a header-read timeout, and the graceful stop:
//!   accept no more, let open requests finish within `request_timeout`.
//! * `router.rs`: one `tracing` span per request with its id (`req-<uuid>`,
//!   returned as `x-openstack-request-id`), the body limit and the request
//!   timeout, dispatch by path and method, request counters.
//! * [`guard`]: `POST`/`GET /v1/backup`, the deletion guard. Its decision is a
//!   pure function ([`guard::decide`]) of who asks (oslo.policy's
//!   credentials: Staffeln's own service user passes), what Cinder's target
//!   says about the backup, and what the database knows; it answers `True`
//!   to anyone else only on positive evidence that the backup is not an
//!   automated one, fails closed otherwise, and calls Cinder only for a
//!   request without a target. Backups known to be automated are cached
//!   briefly.
//! * [`backups`]: `GET /v1/backups`, a Keystone token's project's automated
//!   backups, filtered and paged.
//! * `health.rs` (`/v1/health`, `/healthcheck`, `/`), [`metrics`] (`/metrics`),
//!   [`error`] (every refusal → one status and body).
//!
//! It reads the database (`backup_data`, `queue_data`, `cycles`) and asks
//! Keystone (its own service user's id, tokens of listing requests) and Cinder
//! (guard requests without a target) through [`crate::openstack`]; it never
//! writes, and knows
//! nothing of AMQP or of the conductor's internals. The contract is the API
//! reference in `api-ref/source/`.
//!
//! The guard is unauthenticated (oslo.policy sends no token): listen on an
//! internal network, or serve HTTPS and restrict who can connect.

pub mod backups;
pub mod error;
pub mod guard;
mod health;
pub mod metrics;
mod router;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::conf::Config;
use crate::db::{self, Database, DbError, DbSettings};
use crate::openstack::{self, OpenStack, OpenStackError};
use crate::service::{ServiceContext, ShutdownTrigger, shutdown_channel};

/// Why staffeln-api could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An option cannot be used as given.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// `[api] ssl_cert_file` / `ssl_key_file` cannot be used.
    #[error("cannot use {} for HTTPS: {reason}", .path.display())]
    Tls { path: PathBuf, reason: String },
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// The `[api]` options as the room uses them.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub host: String,
    pub port: u16,
    /// Certificate chain and key (PEM) when serving HTTPS.
    pub tls: Option<TlsFiles>,
    pub request_timeout: Duration,
    pub client_timeout: Duration,
    pub max_body_size: usize,
    pub cache_ttl: Duration,
    pub cache_size: usize,
    /// `[api] trusted_user_ids`: callers allowed besides the service user.
    pub trusted_user_ids: Vec<String>,
    /// How long the guard waits for Keystone or Cinder.
    pub lookup_timeout: Duration,
    pub token_cache_time: Duration,
    pub max_limit: u32,
    /// How long a stop waits for open requests (see [`ApiSettings::from_config`]).
    pub drain_timeout: Duration,
}

/// `[api] ssl_cert_file` and `ssl_key_file`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ApiSettings {
    /// Reads `[api]`. HTTPS needs both files. A stop waits for open requests
    /// at most `request_timeout` plus one second (no request may take
    /// longer), and never longer than `[DEFAULT] graceful_shutdown_timeout`.
    pub fn from_config(conf: &Config) -> Result<ApiSettings, ServeError> {
        let api = &conf.api;
        let tls = if api.enabled_ssl {
            match (&api.ssl_cert_file, &api.ssl_key_file) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
                _ => {
                    return Err(ServeError::Config(
                        "[api] enabled_ssl = true needs ssl_cert_file and ssl_key_file".to_owned(),
                    ));
                }
            }
        } else {
            None
        };
        let request_timeout = Duration::from_secs(api.request_timeout);
        let mut drain_timeout = request_timeout + Duration::from_secs(1);
        if conf.default.graceful_shutdown_timeout > 0 {
            drain_timeout = drain_timeout.min(Duration::from_secs(conf.default.graceful_shutdown_timeout));
        }
        Ok(ApiSettings {
            host: api.host.clone(),
            port: api.port,
            tls,
            request_timeout,
            client_timeout: Duration::from_secs(api.client_timeout),
            max_body_size: usize::try_from(api.max_request_body_size).unwrap_or(usize::MAX),
            cache_ttl: Duration::from_secs(api.cache_ttl),
            cache_size: usize::try_from(api.cache_size).unwrap_or(usize::MAX),
            trusted_user_ids: api
                .trusted_user_ids
                .iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            lookup_timeout: Duration::from_secs(api.lookup_timeout),
            token_cache_time: Duration::from_secs(api.token_cache_time),
            max_limit: u32::try_from(api.max_limit).unwrap_or(u32::MAX),
            drain_timeout,
        })
    }
}

impl Default for ApiSettings {
    /// The defaults of `[api]`.
    fn default() -> ApiSettings {
        // The option defaults are valid, so this cannot fail; fall back to
        // the same values written out should it ever.
        ApiSettings::from_config(&Config::default()).unwrap_or(ApiSettings {
            host: "0.0.0.0".to_owned(),
            port: 8808,
            tls: None,
            request_timeout: Duration::from_secs(5),
            client_timeout: Duration::from_secs(10),
            max_body_size: 114_688,
            cache_ttl: Duration::from_secs(60),
            cache_size: 100_000,
            trusted_user_ids: Vec::new(),
            lookup_timeout: Duration::from_secs(2),
            token_cache_time: Duration::from_secs(300),
            max_limit: 1000,
            drain_timeout: Duration::from_secs(6),
        })
    }
}

/// The OpenStack client, connected on first use: the guard answers from the
/// database while Keystone is down, and the next request tries again.
pub(crate) struct Cloud {
    settings: Option<openstack::Settings>,
    client: OnceCell<OpenStack>,
}

/// Why the OpenStack client is not available.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("[openstack] is not configured")]
    NotConfigured,
    #[error("cannot connect to OpenStack")]
    Connect(#[source] Box<OpenStackError>),
}

impl Cloud {
    /// Whether `[openstack]` names a cloud to ask.
    pub(crate) fn configured(&self) -> bool {
        self.settings.is_some()
    }

    pub(crate) async fn client(&self) -> Result<&OpenStack, CloudError> {
        let Some(settings) = &self.settings else {
            return Err(CloudError::NotConfigured);
        };
        self.client.get_or_try_init(|| OpenStack::connect(settings)).await.map_err(|e| CloudError::Connect(Box::new(e)))
    }
}

/// Everything a request handler reads; shared by all connections.
pub(crate) struct App {
    pub settings: ApiSettings,
    pub db: Database,
    pub cloud: Cloud,
    pub automated: guard::AutomatedCache,
    /// Staffeln's service user, learnt from this process's own token.
    pub service_user: guard::ServiceUser,
    pub tokens: backups::TokenCache,
    pub counters: metrics::Counters,
    /// Set when a stop was requested: `/healthcheck` answers 503.
    pub draining: AtomicBool,
}

impl App {
    /// How long database work waits for a pooled connection: three quarters
    /// of the request timeout, so that the handler reports the database, not
    /// a timeout of its own.
    pub(crate) fn db_wait(&self) -> Duration {
        self.settings.request_timeout * 3 / 4
    }
}

/// A running API: its address, and the way to stop it.
pub struct ApiHandle {
    pub addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    learner: Option<tokio::task::JoinHandle<()>>,
}

impl ApiHandle {
    /// Stops accepting, lets open requests finish (bounded), and returns
    /// when the listener task is gone.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.trigger.trigger();
        if let Some(learner) = &self.learner {
            learner.abort();
        }
        self.task.await?;
        Ok(())
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self, tls: bool) -> String {
        format!("{}://{}", if tls { "https" } else { "http" }, self.addr)
    }
}

/// Binds `[api] host:port` (port 0 picks a free one) and serves in a task of
/// the current runtime until [`ApiHandle::stop`]. `cloud` is `None` when
/// there is no OpenStack to ask: then backups the database does not know are
/// refused, and listing answers 503.
pub async fn start(
    settings: ApiSettings,
    db: Database,
    cloud: Option<openstack::Settings>,
) -> Result<ApiHandle, ServeError> {
    let (trigger, shutdown) = shutdown_channel();
    let listener = server::Listener::bind(&settings).await?;
    let addr = listener.local_addr();
    let app = Arc::new(App {
        automated: guard::AutomatedCache::new(settings.cache_ttl, settings.cache_size),
        service_user: guard::ServiceUser::default(),
        tokens: backups::TokenCache::new(settings.token_cache_time, settings.cache_size),
        counters: metrics::Counters::default(),
        draining: AtomicBool::new(false),
        cloud: Cloud { settings: cloud, client: OnceCell::new() },
        settings,
        db,
    });
    let learner = app.cloud.configured().then(|| tokio::spawn(learn_service_user(app.clone())));
    let task = tokio::spawn(server::run(listener, app, shutdown));
    Ok(ApiHandle { addr, trigger, task, learner })
}

/// How often the service user's id is read again from staffeln-api's own
/// token (which is renewed when due); a failed read is retried sooner.
const SERVICE_USER_REFRESH: Duration = Duration::from_secs(60);
const SERVICE_USER_RETRY: Duration = Duration::from_secs(5);

/// Learns Staffeln's service user from this process's Keystone token at
/// start, and keeps following it, so that retention's deletions pass the
/// guard from the first one on.
async fn learn_service_user(app: Arc<App>) {
    let mut failing = false;
    loop {
        let pause = match guard::learn_service_user(&app).await {
            Ok(_) => {
                failing = false;
                SERVICE_USER_REFRESH
            }
            Err(err) => {
                if !failing {
                    warn!(
                        "cannot learn Staffeln's service user from Keystone ({err}); until then the guard refuses \
                         its deletions of automated backups like anyone else's; retrying every {} s",
                        SERVICE_USER_RETRY.as_secs()
                    );
                }
                failing = true;
                SERVICE_USER_RETRY
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Opens the database of `[database]` and checks its schema is current.
pub async fn open_database(settings: DbSettings) -> Result<Database, ServeError> {
    let db = tokio::task::spawn_blocking(move || -> Result<Database, DbError> {
        let db = Database::connect(&settings)?;
        db::migrate::ensure_current(&db)?;
        Ok(db)
    })
    .await??;
    Ok(db)
}

/// staffeln-api's service: runs the API until a stop is requested.
pub async fn serve(mut ctx: ServiceContext) -> Result<(), ServeError> {
    let conf = ctx.config();
    let settings = ApiSettings::from_config(&conf)?;
    let os = openstack::Settings::from_opts(&conf.openstack).map_err(ServeError::Config)?;
    let cloud = if os.cloud.is_some() || os.auth_url.is_some() {
        Some(os)
    } else {
        warn!(
            "[openstack] has neither cloud nor auth_url: backups the database does not know are refused, \
             and GET /v1/backups answers 503"
        );
        None
    };
    let db = open_database(DbSettings::from(&conf.database)).await?;
    let tls = settings.tls.is_some();
    let handle = start(settings, db, cloud).await?;
    ctx.ready();
    info!("staffeln-api listening on {}", handle.url(tls));
    ctx.shutdown.requested().await;
    info!("staffeln-api stopping: no new connections, open requests finish");
    handle.stop().await
}

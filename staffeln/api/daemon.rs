//! staffeln-api as a daemon: [`start`] binds and serves in a task (tests
//! and the demo call it directly), [`serve`] runs it with the settings the
//! binary checked before anything started, until a stop is requested; and
//! the loop that keeps learning Staffeln's service user from Keystone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing::{info, warn};

use super::app::{App, Cloud};
use super::caches::{AutomatedCache, ServiceUser, TokenCache};
use super::counters::Counters;
use super::guard;
use super::server::{self, ServeError};
use super::settings::ApiSettings;
use crate::db::{self, Database};
use crate::service::{ServiceContext, ShutdownTrigger, shutdown_channel};

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

/// Binds `[api] host:port` (port 0 picks a free one) and serves `db` in a
/// task of the current runtime until [`ApiHandle::stop`]. Without
/// `settings.openstack` there is no OpenStack to ask: then backups the
/// database does not know are refused, and listing answers 503.
pub async fn start(settings: ApiSettings, db: Database) -> Result<ApiHandle, ServeError> {
    let cloud = settings.openstack.clone();
    let (trigger, shutdown) = shutdown_channel();
    let listener = server::Listener::bind(&settings).await?;
    let addr = listener.local_addr();
    let app = Arc::new(App {
        automated: AutomatedCache::new(settings.cache_ttl, settings.cache_size),
        service_user: ServiceUser::default(),
        tokens: TokenCache::new(settings.token_cache_time, settings.cache_size),
        counters: Counters::default(),
        draining: AtomicBool::new(false),
        cloud: Cloud::new(cloud),
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
    let wait = app.settings.openstack.as_ref().map_or(app.settings.lookup_timeout, |os| os.request_timeout);
    let mut failing = false;
    loop {
        let pause = match guard::learn_service_user(&app, wait).await {
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

/// staffeln-api's service: runs the API with `settings` (built and checked
/// before it starts) until a stop is requested.
pub async fn serve(settings: ApiSettings, mut ctx: ServiceContext) -> Result<(), ServeError> {
    if settings.openstack.is_none() {
        warn!(
            "[openstack] has neither cloud nor auth_url: backups the database does not know are refused, \
             and GET /v1/backups answers 503"
        );
    }
    let database = settings.database.clone();
    let db = tokio::task::spawn_blocking(move || db::open_database(&database)).await??;
    let tls = settings.tls.is_some();
    let handle = start(settings, db).await?;
    ctx.ready();
    info!("staffeln-api listening on {}", handle.url(tls));
    ctx.shutdown.requested().await;
    info!("staffeln-api stopping: no new connections, open requests finish");
    handle.stop().await
}

//! [`App`]: what every request handler reads, shared by all connections:
//! the settings, the database, the cloud (connected on first use), the
//! caches and the counters.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::OnceCell;

use super::caches::{AutomatedCache, ServiceUser, TokenCache};
use super::counters::Counters;
use super::settings::ApiSettings;
use crate::db::Database;
use crate::openstack::{self, OpenStack, OpenStackError};

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
    /// A client of `settings`, connected on first use (none: no cloud).
    pub(crate) fn new(settings: Option<openstack::Settings>) -> Cloud {
        Cloud { settings, client: OnceCell::new() }
    }

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
    pub automated: AutomatedCache,
    /// Staffeln's service user, learnt from this process's own token.
    pub service_user: ServiceUser,
    pub tokens: TokenCache,
    pub counters: Counters,
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

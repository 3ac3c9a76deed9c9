//! What every handler shares: the world behind one mutex, the URLs the
//! emulator hands out, Cinder's API workers and the client of the policy's
//! `http:` checks.

use std::sync::{Mutex, MutexGuard, OnceLock};

use tokio::sync::Semaphore;

use super::state::World;
use super::urls::Urls;

/// The state of a running emulator, shared by every connection.
pub(crate) struct Shared {
    world: Mutex<World>,
    pub urls: Urls,
    /// Cinder's API workers: each Cinder request holds one from arrival
    /// (counted first) to its answer, the guard's answer included.
    pub(crate) cinder_workers: Option<Semaphore>,
    /// The client of the policy's `http:` checks.
    http: OnceLock<reqwest::Client>,
}

impl Shared {
    pub fn new(world: World, urls: Urls, cinder_workers: Option<usize>) -> Shared {
        Shared {
            world: Mutex::new(world),
            urls,
            cinder_workers: cinder_workers.map(|n| Semaphore::new(n.max(1))),
            http: OnceLock::new(),
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder().build().unwrap_or_default()
        })
    }

    /// The world; a handler that panicked does not poison it for the others.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

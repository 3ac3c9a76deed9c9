//! The fake cloud: an in-process emulator of the Keystone v3, Nova v2.1 and
//! Cinder v3 subset Staffeln uses, faithful enough that the stock `openstack`
//! CLI cannot tell it from a cloud for those calls. Tests and the demo start
//! one on a loopback port from a [`Scenario`], point a client at
//! [`FakeCloud::auth_url`], and steer it through [`Control`] (or the HTTP
//! control routes under `/_fake/`): fault injection, backup outcomes, the
//! emulated clock, call counters.
//!
//! The JSON shapes here are written from the API reference
//! (docs.openstack.org/api-ref), not shared with `openstack/`: the two rooms
//! meet only through that spec. One listener serves all three services under
//! path prefixes (`/identity`, `/compute`, `/volume`) on its own thread and
//! tokio runtime, so a test may block freely while the cloud answers. The
//! whole world sits behind one mutex; handlers are synchronous and short.
//!
//! This crate stands beside Staffeln's, never inside it: it depends on no
//! Staffeln crate, and Staffeln's library does not contain it (the demo in
//! `staffeln-manage` and the tests use it).
//!
//! Files, from the floor up: `http.rs` (requests, responses, microversions,
//! error shapes), `clock.rs` (emulated time), `scenario.rs` (what the world
//! starts with), `steering.rs` (faults, backup outcomes and Cinder's
//! `backup:delete` policy tests set), `state.rs` (the world and the backup
//! state machine), `urls.rs`, `shared.rs` (the world behind its mutex);
//! `policy.rs` (Cinder's `backup:delete` rule with its oslo.policy `http:`
//! check to the guard), `keystone.rs`, `nova.rs`, `cinder.rs`, `control.rs`
//! (test controls); `server.rs` (listener, routing, counters, faults,
//! request ids); `main.rs` is the `staffeln-fakecloud` binary.
//!
//! ## Cinder's policy and workers
//! With [`FakeOptions::backup_delete_policy`] (or
//! [`Control::set_backup_delete_policy`]) Cinder enforces `backup:delete` as a
//! deployment of Staffeln configures it, asking the guard exactly as
//! oslo.policy does (see `policy.rs`). With [`FakeOptions::cinder_workers`]
//! Cinder serves that many requests at a time, as a cinder-api with so many
//! workers: a guard that called back into Cinder while a one-worker Cinder
//! waits for its answer would wait for itself until one of them times out.

mod cinder;
mod clock;
mod control;
mod http;
mod keystone;
mod notifier;
mod nova;
mod policy;
mod scenario;
mod server;
mod shared;
mod state;
mod steering;
mod urls;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

pub use control::{BackupRecord, Control};
pub use http::{Microversion, Service};
pub use notifier::NotificationTarget;
pub use scenario::{
    AppCredentialSpec, BackupHostSpec, BackupSpec, ProjectSpec, QuotaSpec, Scenario, ScenarioError, ServerSpec,
    UserSpec, VolumeSpec,
};
pub use steering::{BackupDeletePolicy, BackupOutcome, Fault, FaultEffect, NotificationCounts, PolicyChecks};

/// How the emulator runs (the scenario says what it holds).
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Emulated time a backup stays `creating` before it can complete.
    pub backup_duration: Duration,
    /// Backups take `backup_duration` give or take half of this, drawn
    /// uniformly from the seed (zero: all take exactly `backup_duration`).
    pub backup_spread: Duration,
    /// Emulated time a backup stays `deleting` before it is gone.
    pub delete_duration: Duration,
    /// Token lifetime on the emulated clock (Keystone's default is an hour).
    pub token_ttl: Duration,
    /// Real-time interval of a background tick; `None`: only
    /// [`Control::tick`], [`Control::advance`] and [`Control::settle`] move
    /// backups along, which keeps tests deterministic.
    pub auto_tick: Option<Duration>,
    /// Catalog Cinder URL `…/volume/v3/<project_id>` (true) or `…/volume/v3`.
    pub cinder_url_with_project: bool,
    /// Catalog Nova URL `…/compute/v2.1/<project_id>` (true) or `…/compute/v2.1`.
    pub nova_url_with_project: bool,
    /// Seed of the generator behind ids and fault probabilities.
    pub seed: u64,
    /// Cinder enforces `backup:delete` through the guard (see the module doc).
    pub backup_delete_policy: Option<BackupDeletePolicy>,
    /// Cinder API workers: requests served at a time; `None`: no limit.
    pub cinder_workers: Option<usize>,
    /// Publish Cinder's backup notifications there (`messagingv2`);
    /// `None`: nothing is published, as with Cinder's default driver.
    pub notifications: Option<NotificationTarget>,
    /// Cinder's `backup_max_operations`: backups one cinder-backup host
    /// runs at once (more wait for a slot); `None`: no limit.
    pub backup_max_operations: Option<usize>,
    /// The emulated clock stands still between advances ([`Control::advance`],
    /// `POST /_fake/advance`) instead of running with the wall clock: for a
    /// driver that steps time itself (the cycle benchmark).
    pub frozen_clock: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backup_duration: Duration::from_secs(5),
            backup_spread: Duration::ZERO,
            delete_duration: Duration::from_secs(2),
            token_ttl: Duration::from_secs(3600),
            auto_tick: None,
            cinder_url_with_project: true,
            nova_url_with_project: false,
            seed: 0,
            backup_delete_policy: None,
            cinder_workers: None,
            notifications: None,
            backup_max_operations: None,
            frozen_clock: false,
        }
    }
}

/// Why the fake cloud did not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeCloudError {
    #[error("invalid scenario")]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the fake cloud's thread")]
    Thread(#[source] std::io::Error),
}

/// Password credentials of one scenario user, scoped to one of its projects.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub auth_url: String,
    pub username: String,
    pub user_id: String,
    pub password: String,
    pub project_name: String,
    pub project_id: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"***")
            .field("project_name", &self.project_name)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Arguments for the `openstack` CLI (`--os-auth-url …` up to
    /// `--os-identity-api-version 3`).
    pub fn cli_args(&self) -> Vec<String> {
        [
            ("--os-auth-url", &self.auth_url),
            ("--os-username", &self.username),
            ("--os-password", &self.password),
            ("--os-project-name", &self.project_name),
            ("--os-user-domain-name", &self.user_domain_name),
            ("--os-project-domain-name", &self.project_domain_name),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v.clone()])
        .chain(["--os-identity-api-version".to_owned(), "3".to_owned()])
        .collect()
    }
}

/// A running emulator; stops (gracefully) on [`FakeCloud::shutdown`] or drop.
pub struct FakeCloud {
    shared: Arc<shared::Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCloud {
    /// Binds `opts.listen` and serves `scenario` from a thread of its own.
    pub fn start(scenario: Scenario, opts: FakeOptions) -> Result<FakeCloud, FakeCloudError> {
        let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let timing = state::Timing {
            backup_duration: chrono(opts.backup_duration),
            delete_duration: chrono(opts.delete_duration),
            token_ttl: chrono(opts.token_ttl),
            backup_max_operations: opts.backup_max_operations,
            frozen_clock: opts.frozen_clock,
            backup_spread: chrono(opts.backup_spread),
        };
        let mut world = state::World::build(&scenario, timing, opts.seed)?;
        world.backup_delete_policy = opts.backup_delete_policy.clone();
        world.notifications_on = opts.notifications.is_some();
        let (listener, addr) =
            server::bind(opts.listen).map_err(|source| FakeCloudError::Bind { addr: opts.listen, source })?;
        let urls = urls::Urls {
            base: format!("http://{addr}"),
            cinder_with_project: opts.cinder_url_with_project,
            nova_with_project: opts.nova_url_with_project,
        };
        let shared = Arc::new(shared::Shared::new(world, urls, opts.cinder_workers));
        let (stop, stop_rx) = watch::channel(false);
        let serving = shared.clone();
        let auto_tick = opts.auto_tick;
        let notifications = opts.notifications.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fakecloud-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                match runtime {
                    Ok(rt) => {
                        if let Err(err) =
                            rt.block_on(server::serve(listener, serving, auto_tick, notifications, stop_rx))
                        {
                            tracing::error!("fake cloud on {addr} stopped: {err}");
                        }
                    }
                    Err(err) => tracing::error!("fake cloud on {addr} has no runtime: {err}"),
                }
            })
            .map_err(FakeCloudError::Thread)?;
        Ok(FakeCloud { shared, addr, stop, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.shared.urls.base.clone()
    }

    /// Keystone v3: `http://127.0.0.1:<port>/identity/v3`.
    pub fn auth_url(&self) -> String {
        self.shared.urls.identity()
    }

    /// The control routes: `http://127.0.0.1:<port>/_fake`.
    pub fn control_url(&self) -> String {
        format!("{}/_fake", self.shared.urls.base)
    }

    /// The scenario's service user (an admin), scoped to its default project
    /// or the first project where it is admin.
    pub fn admin(&self) -> Credentials {
        let name = {
            let w = self.shared.world();
            w.users.get(&w.service_user_id).map(|u| u.name.clone()).unwrap_or_default()
        };
        self.credentials(&name).unwrap_or_else(|| Credentials {
            auth_url: self.auth_url(),
            username: name,
            user_id: String::new(),
            password: String::new(),
            project_name: String::new(),
            project_id: String::new(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
        })
    }

    /// Credentials of user `username`, scoped to its default project or else
    /// the first project (by name) where it has a role.
    pub fn credentials(&self, username: &str) -> Option<Credentials> {
        let w = self.shared.world();
        let user = w.user_by_name(username)?;
        let mut with_role: Vec<&state::Project> = user
            .roles
            .iter()
            .filter_map(|(p, r)| (r == "admin" || r == "member" || r == "reader").then_some(p))
            .filter_map(|p| w.projects.get(p))
            .collect();
        with_role.sort_by(|a, b| a.name.cmp(&b.name));
        let project =
            user.default_project_id.as_ref().and_then(|p| w.projects.get(p)).or_else(|| with_role.first().copied())?;
        Some(Credentials {
            auth_url: self.auth_url(),
            username: user.name.clone(),
            user_id: user.id.clone(),
            password: user.password.clone(),
            project_name: project.name.clone(),
            project_id: project.id.clone(),
            user_domain_name: state::DOMAIN_NAME.into(),
            project_domain_name: state::DOMAIN_NAME.into(),
        })
    }

    /// In-process controls (faults, clock, counters, backup outcomes).
    pub fn control(&self) -> Control {
        Control { shared: self.shared.clone() }
    }

    /// Stops accepting, lets open requests finish (at most two seconds).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

//! [`Conductor`]: one conductor of the many that may share a database, as
//! both halves (backup and retention) and the RPC manager see it: its
//! identity, database, cloud, settings, clock and events.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::clock;
use super::error::ConductorError;
use super::events;
use super::settings::ConductorSettings;
use crate::db::{AnyConnection, Database, DbError};
use crate::objects::BackupHost;
use crate::openstack::OpenStack;

/// One conductor: its identity, database, cloud and settings.
#[derive(Clone)]
pub struct Conductor {
    /// Unique among the conductors sharing the database (`host:pid`).
    pub holder: String,
    pub db: Database,
    pub os: OpenStack,
    pub settings: Arc<ConductorSettings>,
    /// When this conductor started: the schedule's reference before any
    /// cycle ran.
    pub started_at: DateTime<Utc>,
    /// Event notifications (none by default).
    pub events: events::Events,
    /// The conductor's time (the system clock; tests emulate it).
    pub clock: clock::Clock,
    /// What it last read of Cinder's backup hosts (the zones' caps).
    pub(crate) backup_hosts: Arc<Mutex<BackupHostsSeen>>,
    /// When it last handled one of Cinder's backup events (milliseconds
    /// since the epoch on its clock; `i64::MIN`: never).
    pub(crate) cinder_events_seen: Arc<AtomicI64>,
    /// How many of Cinder's backup events it handled.
    pub(crate) cinder_events_handled: Arc<AtomicU64>,
}

/// What a conductor last read of Cinder's cinder-backup services.
#[derive(Debug, Clone, Default)]
pub(crate) struct BackupHostsSeen {
    /// When it last tried (its clock); `None`: never.
    pub read_at: Option<DateTime<Utc>>,
    /// The hosts; `None` while the list cannot be read.
    pub hosts: Option<Vec<BackupHost>>,
    /// Whether it said once why the list cannot be read.
    pub warned: bool,
}

impl Conductor {
    pub fn new(holder: String, db: Database, os: OpenStack, settings: ConductorSettings) -> Conductor {
        Conductor {
            holder,
            db,
            os,
            settings: Arc::new(settings),
            started_at: Utc::now(),
            events: events::Events::noop(),
            clock: clock::Clock::system(),
            backup_hosts: Arc::default(),
            cinder_events_seen: Arc::new(AtomicI64::new(i64::MIN)),
            cinder_events_handled: Arc::default(),
        }
    }

    /// The same conductor on `clock` (tests: an emulated clock), started now
    /// on that clock.
    pub fn with_clock(mut self, clock: clock::Clock) -> Conductor {
        self.started_at = clock.now();
        self.clock = clock;
        self
    }

    /// The same conductor, emitting its events to `events`.
    pub fn with_events(mut self, events: events::Events) -> Conductor {
        self.events = events;
        self
    }

    /// Runs `f` on a pooled connection in the blocking pool.
    pub async fn db_call<T, F>(&self, f: F) -> Result<T, ConductorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.db.clone();
        let turn = self.db.turn().await;
        let out = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await??;
        Ok(out)
    }
}

/// A moment in the database's terms.
pub(crate) fn naive(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

//! The conductor room: discovery, planning, the shared task queue, Cinder
//! backups, and the loops that tie them together.
//!
//! * [`planner`]: pure — flagged servers, volumes, history, quotas, settings,
//!   `now` → one decision per volume with its reason.
//! * [`schedule`]: pure — when the next cycle runs (cron in a zone, period).
//! * [`limits`]: pure — which planned tasks may start under the concurrency
//!   limits.
//! * [`waiting`]: pure — wait for a backup still being created, stop
//!   waiting (leaving it running), cancel it (only when asked), or report it
//!   as possibly stuck.
//! * [`stamps`]: pure — which servers a cycle owes `last-backup-time`, and
//!   how a failed write is retried or reported.
//! * [`discovery`]: reads the fleet (all-tenant list calls, quotas).
//! * [`cycle`]: one backup cycle by the leader: lease, discover, plan, write
//!   the plan (fenced by the lease's token).
//! * [`worker`]: every conductor claims planned tasks, creates the backups
//!   (fenced by the claim's token, and idempotently: a task's backup carries
//!   its task id and is looked for before any retried create), polls those
//!   in flight with list calls, completes, fails, stops waiting, and sets
//!   the servers' `last-backup-time`.
//! * [`report`]: the per-project digests of finished cycles, one round at a
//!   time across conductors.
//! * [`runner`]: the loops, side by side: backups (cycle, work, digests) and
//!   retention; a lease held elsewhere is waited out, not polled.
//! * [`lease`]: leases on the conductor's clock, renewed while work runs,
//!   released on a graceful stop; [`clock`]: the system clock, or an
//!   emulated one in tests.
//! * [`manager`] and [`rpcapi`]: the RPC topic (`staffeln backup trigger`,
//!   `staffeln status`, …), server and typed client.
//! * [`events`]: `staffeln.backup.*` and `staffeln.cycle.end` notifications.
//!
//! Many conductors share one database: one leads (a lease with a fencing
//! token), all execute (see `doc/conductors.md`). The conductor knows
//! objects, not JSON, SQL text or AMQP frames.

pub mod clock;
pub mod cycle;
pub mod discovery;
pub mod events;
pub mod lease;
pub mod limits;
pub mod manager;
pub mod planner;
pub mod report;
pub mod retention;
pub mod rotation;
pub mod rpcapi;
pub mod runner;
pub mod schedule;
pub mod stamps;
pub mod waiting;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tracing::info;

use crate::conf::Config;
use crate::db::{self, AnyConnection, Database, DbError, DbSettings};
use crate::objects::ProjectId;
use crate::openstack::{OpenStack, OpenStackError, Settings as OpenStackSettings};
use crate::service::ServiceContext;
use limits::Limits;
use planner::PlanSettings;
use schedule::{Schedule, ScheduleError};

/// Backup metadata that marks a backup as Staffeln's.
pub const AUTOMATED_KEY: &str = "__automated_backup";
/// Backup metadata naming the task that made it (makes creates idempotent).
pub const TASK_KEY: &str = "__staffeln_task_id";
/// Backup metadata naming the server the volume was backed up for.
pub const INSTANCE_KEY: &str = "__staffeln_instance_id";
/// The lease of the conductor that discovers and plans backup cycles.
pub const BACKUP_LEASE: &str = "backup-cycle";
/// The lease of the conductor that sends a round of digests.
pub const REPORT_LEASE: &str = "report-round";

/// Why the conductor (or one of its steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    OpenStack(Box<OpenStackError>),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Config(String),
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
}

impl From<OpenStackError> for ConductorError {
    fn from(err: OpenStackError) -> ConductorError {
        ConductorError::OpenStack(Box::new(err))
    }
}

/// The conductor's view of its options.
#[derive(Debug, Clone)]
pub struct ConductorSettings {
    pub plan: PlanSettings,
    pub limits: Limits,
    pub backup_schedule: Schedule,
    pub poll_interval: StdDuration,
    pub claim_timeout: Duration,
    pub lease_time: Duration,
    /// How long a cycle waits for a backup, and what then (`waiting`).
    pub wait: waiting::WaitSettings,
    pub last_backup_key: String,
    /// Retention's rules, schedule and limits.
    pub retention: rotation::RetentionSettings,
}

impl ConductorSettings {
    /// From `[conductor]`; a bad schedule, zone or limit names the option.
    pub fn from_config(conf: &Config) -> Result<ConductorSettings, ConductorError> {
        let c = &conf.conductor;
        let mut overrides = BTreeMap::new();
        for (project, limit) in &c.project_volume_limits {
            let n = limit.trim().parse::<u32>().map_err(|_| {
                ConductorError::Config(format!(
                    "[conductor] project_volume_limits: {project}:{limit}: expected project_id:number"
                ))
            })?;
            overrides.insert(ProjectId(project.clone()), n);
        }
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Ok(ConductorSettings {
            plan: PlanSettings {
                backup_metadata_key: c.backup_metadata_key.clone(),
                skip_volume_metadata_key: c.skip_volume_metadata_key.clone(),
                full_backup_depth: c.full_backup_depth,
                backup_min_interval: secs(c.backup_min_interval),
                name_template: c.backup_name_template.clone(),
                date_format: c.backup_date_format.clone(),
                project_volume_limit: (c.project_volume_limit > 0).then_some(c.project_volume_limit),
                project_volume_limit_overrides: overrides,
            },
            limits: Limits {
                overall: c.max_concurrent_backups as usize,
                per_project: c.max_concurrent_backups_per_project as usize,
                per_az: c.max_concurrent_backups_per_az as usize,
            },
            backup_schedule: Schedule::new(
                "backup_schedule",
                &c.backup_schedule,
                "backup_timezone",
                &c.backup_timezone,
                secs(c.backup_service_period),
            )?,
            poll_interval: StdDuration::from_secs(c.poll_interval),
            claim_timeout: secs(c.claim_timeout),
            lease_time: secs(c.leader_lease_time),
            wait: waiting::WaitSettings {
                timeout: secs(c.backup_cycle_timeout.as_secs()),
                cancel_on_timeout: c.backup_cancel_on_timeout,
                stuck_throughput_mib: c.backup_stuck_throughput,
            },
            last_backup_key: c.last_backup_metadata_key.clone(),
            retention: rotation::RetentionSettings::from_config(conf)?,
        })
    }
}

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
        let out = tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await??;
        Ok(out)
    }

    /// Plans a cycle when one is due, then starts and checks backups until
    /// nothing is in flight or `deadline` passes (tests, the demo).
    pub async fn run_until_idle(&self, deadline: StdDuration) -> Result<(), ConductorError> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            self.work_once().await?;
            self.poll_once().await?;
            let active = self.db_call(db::tasks::active_volume_ids).await?;
            if active.is_empty() || tokio::time::Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(StdDuration::from_millis(50).min(self.settings.poll_interval)).await;
        }
    }
}

/// Opens the database of `[database]` and checks its schema is current.
pub async fn open_database(settings: DbSettings) -> Result<Database, ConductorError> {
    let db = tokio::task::spawn_blocking(move || -> Result<Database, DbError> {
        let db = Database::connect(&settings)?;
        db::migrate::ensure_current(&db)?;
        Ok(db)
    })
    .await??;
    Ok(db)
}

/// Connects a conductor from the configuration.
pub async fn connect(conf: &Config) -> Result<Conductor, ConductorError> {
    let settings = ConductorSettings::from_config(conf)?;
    let os_settings = OpenStackSettings::from_opts(&conf.openstack).map_err(ConductorError::Config)?;
    let db = open_database(DbSettings::from(&conf.database)).await?;
    let os = OpenStack::connect(&os_settings).await?;
    let holder = format!("{}:{}", conf.default.host, std::process::id());
    let events = events::Events::from_config(conf)?;
    Ok(Conductor::new(holder, db, os, settings).with_events(events))
}

/// Runs the conductor until a stop is requested: backup cycles on the
/// schedule (planned by whichever conductor leads), on every conductor the
/// work loop that starts and checks backups, and retention beside it
/// ([`runner`]). On a graceful stop it answers the RPC requests in flight,
/// then gives up its leases.
pub async fn serve(ctx: ServiceContext) -> Result<(), ConductorError> {
    let conf = ctx.config();
    let conductor = connect(&conf).await?;
    let mailer = crate::notify::Mailer::new(crate::notify::NotifySettings::from_opts(&conf.notification))
        .map_err(|e| ConductorError::Config(e.to_string()))?;
    let report_period = Duration::seconds(i64::try_from(conf.conductor.report_period).unwrap_or(i64::MAX / 1000));
    // On-demand triggers (manager.rs): started here, stopped below.
    let rpc = manager::start_rpc(&conf, conductor.clone()).await?;
    ctx.ready();
    info!("conductor {} ready", conductor.holder);
    let loops = runner::Loops { mailer: Arc::new(mailer), report_period, wake: rpc.waker() };
    runner::run(&conductor, &loops, ctx.shutdown.clone()).await;
    info!("conductor {} stopping", conductor.holder);
    rpc.stop().await;
    conductor.release_leases().await;
    Ok(())
}

/// A moment in the database's terms.
pub(crate) fn naive(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

//! staffeln-conductor as a daemon: connect to the database and the cloud,
//! start the RPC server, run the loops until a stop is requested, then stop
//! the RPC server and give up the leases.

use std::sync::Arc;

use chrono::Duration;
use tracing::info;

use super::error::ConductorError;
use super::node::Conductor;
use super::settings::ConductorSettings;
use super::{events, manager, runner};
use crate::conf::Config;
use crate::db::{self, Database, DbError, DbSettings};
use crate::openstack::{OpenStack, Settings as OpenStackSettings};
use crate::service::ServiceContext;

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

//! staffeln-conductor as a daemon: connect to the database and the cloud,
//! start the RPC server (and the listener of Cinder's backup events when
//! `[cinder_notifications] enabled`), run the loops until a stop is requested, then stop
//! the RPC server and give up the leases. The settings arrive built and
//! checked ([`ConductorSettings::from_config`], called by the binary before
//! anything starts); what fails here is the world (a database or cloud
//! that cannot be reached, a certificate file that cannot be read).

use std::sync::Arc;

use tracing::info;

use super::error::ConductorError;
use super::node::Conductor;
use super::settings::ConductorSettings;
use super::{events, manager, runner};
use crate::db;
use crate::notify::Mailer;
use crate::openstack::OpenStack;
use crate::service::ServiceContext;

/// Connects a conductor: its database (schema checked), its cloud (the
/// service user authenticates once, so bad credentials fail here), its
/// events.
pub async fn connect(settings: &ConductorSettings) -> Result<Conductor, ConductorError> {
    let database = settings.database.clone();
    let db = tokio::task::spawn_blocking(move || db::open_database(&database)).await??;
    let os = OpenStack::connect(&settings.openstack).await?;
    let holder = format!("{}:{}", settings.host, std::process::id());
    let events = events::Events::start(&settings.events).await?;
    Ok(Conductor::new(holder, db, os, settings.clone()).with_events(events))
}

/// Runs the conductor until a stop is requested: backup cycles on the
/// schedule (planned by whichever conductor leads), on every conductor the
/// work loop that starts and checks backups, and retention beside it
/// ([`runner`]). On a graceful stop it answers the RPC requests in flight,
/// then gives up its leases.
pub async fn serve(settings: ConductorSettings, ctx: ServiceContext) -> Result<(), ConductorError> {
    let conductor = connect(&settings).await?;
    let mailer = Arc::new(Mailer::new(settings.notify.clone())?);
    // On-demand triggers (manager.rs): started here, stopped below.
    let rpc = manager::start_rpc(&conductor, mailer.clone()).await?;
    // Completion by Cinder's events, when configured (backup/notified.rs).
    let listener = match &settings.cinder_events {
        Some(events) => Some(super::backup::notified::listen(&conductor, events, rpc.waker()).await?),
        None => None,
    };
    ctx.ready();
    info!("conductor {} ready", conductor.holder);
    let loops = runner::Loops {
        mailer,
        report_period: settings.report_period,
        report_retry: settings.report_retry,
        wake: rpc.waker(),
    };
    runner::run(&conductor, &loops, ctx.shutdown.clone()).await;
    info!("conductor {} stopping", conductor.holder);
    if let Some((listener, transport)) = listener {
        listener.stop().await;
        transport.close().await;
    }
    rpc.stop().await;
    conductor.release_leases().await;
    Ok(())
}

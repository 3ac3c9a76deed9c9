//! The conductor room: discovery, planning, the shared task queue, Cinder
//! backups, and the cycle that ties them together.
//!
//! * [`planner`]: pure — flagged servers, volumes, history, quotas, settings,
//!   `now` → one decision per volume with its reason.
//! * [`schedule`]: pure — when the next cycle runs (cron in a zone, period).
//!
//! The conductor knows objects, not JSON, SQL text or AMQP frames: it talks to
//! Cinder through [`crate::openstack`] and to its state through [`crate::db`].

pub mod planner;
pub mod schedule;

use std::sync::Arc;

use tracing::info;

use crate::db::{self, Database, DbError, DbSettings};
use crate::service::ServiceContext;

/// Why the conductor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
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

/// Runs the conductor until a stop is requested.
pub async fn serve(mut ctx: ServiceContext) -> Result<(), ConductorError> {
    let conf = ctx.config();
    let _db = open_database(DbSettings::from(&conf.database)).await?;
    let _conf: Arc<_> = conf;
    ctx.ready();
    info!("conductor ready on host {}", _conf.default.host);
    ctx.shutdown.requested().await;
    Ok(())
}

//! staffeln-api: the oslo.policy `http:` guard Cinder calls before
//! `backup:delete`, health and listing endpoints.

use tracing::info;

use crate::conductor::{ConductorError, open_database};
use crate::db::DbSettings;
use crate::service::ServiceContext;

/// Runs the API until a stop is requested.
pub async fn serve(mut ctx: ServiceContext) -> Result<(), ConductorError> {
    let conf = ctx.config();
    let _db = open_database(DbSettings::from(&conf.database)).await?;
    ctx.ready();
    info!("api ready");
    ctx.shutdown.requested().await;
    Ok(())
}

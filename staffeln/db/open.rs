//! The database a service runs on: its settings from the configuration,
//! checked before anything starts, and opening it (connect with the
//! start-up retries of `[database]`, then check the schema is current).

use super::error::DbError;
use super::migrate;
use super::pool::{Database, DbSettings};
use super::url::{DbUrl, mask_password};
use crate::conf::{Config, SettingsError};

impl DbSettings {
    /// The `[database]` options; a connection URL this room cannot use names
    /// the option (its password shown as `***`).
    pub fn from_config(conf: &Config) -> Result<DbSettings, SettingsError> {
        let settings = DbSettings::from(&conf.database);
        DbUrl::parse(&settings.connection).map_err(|err| {
            let reason = match err {
                DbError::InvalidUrl { reason, .. } => reason,
                other => other.to_string(),
            };
            SettingsError::new("database", "connection", mask_password(&settings.connection), reason)
        })?;
        Ok(settings)
    }
}

/// Connects to the database of `settings` (retrying as `[database]` says)
/// and checks that its schema is the one this release needs. Blocks: async
/// callers run it in `spawn_blocking`.
pub fn open_database(settings: &DbSettings) -> Result<Database, DbError> {
    let db = Database::connect(settings)?;
    migrate::ensure_current(&db)?;
    Ok(db)
}

//! `staffeln-manage db upgrade|version|create_schema`.

use clap::Subcommand;
use staffeln::conf::Config;
use staffeln::db::{Database, DbSettings, migrate};

use crate::Failure;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Creates or upgrades the schema to the newest version.
    Upgrade,
    /// Prints the schema version in the database and the newest one known.
    Version,
    /// Same as `upgrade` (kept for the Python Staffeln's deployment tools).
    #[command(name = "create_schema", alias = "create-schema")]
    CreateSchema,
}

pub fn run(cmd: DbCommand, config: &Config) -> Result<(), Failure> {
    let db = Database::connect(&DbSettings::from(&config.database))?;
    match cmd {
        DbCommand::Upgrade | DbCommand::CreateSchema => {
            let applied = migrate::upgrade(&db)?;
            let head = migrate::version(&db)?.unwrap_or_default();
            if applied.is_empty() {
                tracing::info!("database schema already at {head}");
                println!("database schema already at {head}");
            } else {
                tracing::info!("applied migrations {}; schema at {head}", applied.join(", "));
                println!("applied {}; schema at {head}", applied.join(", "));
            }
        }
        DbCommand::Version => {
            let current = migrate::version(&db)?.unwrap_or_else(|| "empty".to_owned());
            let newest = migrate::known_versions().pop().unwrap_or_default();
            println!("{current}");
            if current != newest {
                eprintln!("staffeln-manage: this release's schema is {newest}: run `staffeln-manage db upgrade`");
            }
        }
    }
    Ok(())
}

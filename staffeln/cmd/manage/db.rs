//! `staffeln-manage db upgrade|version|create_schema`.

use clap::Subcommand;
use staffeln::db::{Database, DbSettings, migrate};

use crate::Failure;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Creates or upgrades the schema to the newest version. A database of
    /// the original (Python) Staffeln is upgraded in place: its tables are
    /// kept as staffeln_py_*, and the backups they record are adopted.
    Upgrade,
    /// Prints the schema version in the database and the newest one known.
    Version,
    /// Same as `upgrade` (kept for the Python Staffeln's deployment tools).
    #[command(name = "create_schema", alias = "create-schema")]
    CreateSchema,
}

pub fn run(cmd: DbCommand, settings: &DbSettings) -> Result<(), Failure> {
    let db = Database::connect(settings)?;
    match cmd {
        DbCommand::Upgrade | DbCommand::CreateSchema => {
            let upgrade = migrate::upgrade_report(&db)?;
            if let Some(found) = &upgrade.legacy {
                let line = format!(
                    "found the original Staffeln's schema (alembic revision {}): its tables {} are kept as \
                     staffeln_py_*",
                    found.alembic_version.as_deref().unwrap_or("unknown"),
                    found.tables.join(", ")
                );
                tracing::info!("{line}");
                println!("{line}");
            }
            if let Some(a) = &upgrade.adoption
                && (upgrade.legacy.is_some() || a.backups + a.in_flight > 0)
            {
                let line = format!(
                    "adopted {} backups of the original Staffeln ({} recorded, {} still being created when it \
                     stopped); {} adopted in all: retention rotates them, the guard protects them; drop {} once \
                     you no longer need them",
                    a.backups + a.in_flight,
                    a.backups,
                    a.in_flight,
                    a.adopted_total,
                    a.kept.join(", ")
                );
                tracing::info!("{line}");
                println!("{line}");
            }
            let applied = upgrade.applied;
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

//! Schema migrations, embedded at build time from `migrations/mysql/` and
//! `migrations/sqlite/` (the same version names in both trees). Every function
//! dispatches on the backend explicitly: diesel's harness would happily run
//! the MySQL set on a SQLite connection.
//!
//! Versions are diesel's: the directory name up to the first `_` without its
//! dashes (`2026-11-25-000000_initial` → `20261125000000`), recorded in
//! `__diesel_schema_migrations`. MySQL cannot roll DDL back: a migration that
//! fails half-way leaves what it created; its error names it.

use diesel::migration::MigrationSource;
use diesel::mysql::Mysql;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::backend::Backend;
use super::error::{DbError, MigrationDirection};
use super::legacy;
use super::pool::{AnyConnection, Database};

const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies every pending migration, oldest first; returns the versions applied.
/// A database of the original Staffeln is upgraded too ([`upgrade_report`]).
pub fn upgrade(db: &Database) -> Result<Vec<String>, DbError> {
    upgrade_report(db).map(|u| u.applied)
}

/// What [`upgrade_report`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upgrade {
    /// Versions applied, oldest first.
    pub applied: Vec<String>,
    /// The original Staffeln's schema that was found (`alembic_version`), if any.
    pub legacy: Option<legacy::LegacySchema>,
    /// What came of its records, when they were (or had been) set aside.
    pub adoption: Option<legacy::Adoption>,
}

/// Applies every pending migration. On a database of the original (Python)
/// Staffeln, first sets its tables aside and afterwards adopts the backups
/// they record ([`legacy`]); on a database where that was done before,
/// finishes an adoption that was interrupted.
pub fn upgrade_report(db: &Database) -> Result<Upgrade, DbError> {
    let mut conn = db.conn()?;
    let found = legacy::detect(&mut conn)?;
    let set_aside = match &found {
        Some(schema) => legacy::set_aside(&mut conn, schema)?,
        None => Vec::new(),
    };
    let applied = match &mut *conn {
        AnyConnection::Mysql(c) => upgrade_with::<Mysql, _>(c, MYSQL, Backend::Mysql),
        AnyConnection::Sqlite(c) => upgrade_with::<Sqlite, _>(c, SQLITE, Backend::Sqlite),
    }?;
    let adoption = legacy::adopt(&mut conn)?.map(|a| legacy::Adoption { set_aside, ..a });
    Ok(Upgrade { applied, legacy: found, adoption })
}

/// The same as [`upgrade`] (to head). Kept under staffeln-py's name, whose
/// `staffeln-db-manage create_schema` built the schema directly; deployments
/// (devstack, kolla bootstrap) call either.
pub fn create_schema(db: &Database) -> Result<Vec<String>, DbError> {
    upgrade(db)
}

/// Reverts the latest applied migration; returns its version, or `None` when
/// nothing is applied. For tests and operators undoing one step.
pub fn downgrade_one(db: &Database) -> Result<Option<String>, DbError> {
    let mut conn = db.conn()?;
    match &mut *conn {
        AnyConnection::Mysql(c) => downgrade_one_with::<Mysql, _>(c, MYSQL, Backend::Mysql),
        AnyConnection::Sqlite(c) => downgrade_one_with::<Sqlite, _>(c, SQLITE, Backend::Sqlite),
    }
}

/// Reverts every applied migration, newest first; returns the versions reverted.
pub fn downgrade_to_base(db: &Database) -> Result<Vec<String>, DbError> {
    let mut reverted = Vec::new();
    while let Some(version) = downgrade_one(db)? {
        reverted.push(version);
    }
    Ok(reverted)
}

/// The latest applied version, `None` on an empty database. Creates diesel's
/// bookkeeping table if it is missing.
pub fn version(db: &Database) -> Result<Option<String>, DbError> {
    let mut conn = db.conn()?;
    let backend = conn.backend();
    let applied = match &mut *conn {
        AnyConnection::Mysql(c) => MigrationHarness::<Mysql>::applied_migrations(c),
        AnyConnection::Sqlite(c) => MigrationHarness::<Sqlite>::applied_migrations(c),
    };
    applied
        .map(|versions| versions.first().map(ToString::to_string))
        .map_err(|source| listing_failed(backend, MigrationDirection::Upgrade, source))
}

/// Fails unless the database is at the newest version this build knows,
/// naming both and the command that upgrades it.
pub fn ensure_current(db: &Database) -> Result<(), DbError> {
    let head = known_versions().pop().unwrap_or_default();
    let current = version(db)?;
    if current.as_deref() == Some(head.as_str()) {
        Ok(())
    } else {
        Err(DbError::SchemaOutdated { current: current.unwrap_or_else(|| "empty".to_owned()), head })
    }
}

/// The versions this build knows, oldest first (the same for both backends).
pub fn known_versions() -> Vec<String> {
    let mut versions: Vec<String> = MigrationSource::<Sqlite>::migrations(&SQLITE)
        .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
}

fn listing_failed(backend: Backend, direction: MigrationDirection, source: BoxError) -> DbError {
    DbError::Migration { backend, direction, version: "-".to_owned(), source }
}

/// Applies the pending migrations of `source` one by one, so a failure names its migration.
fn upgrade_with<DB, C>(conn: &mut C, source: EmbeddedMigrations, backend: Backend) -> Result<Vec<String>, DbError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let up = MigrationDirection::Upgrade;
    let pending = conn.pending_migrations(source).map_err(|e| listing_failed(backend, up, e))?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in &pending {
        let version = conn.run_migration(migration.as_ref()).map_err(|source| DbError::Migration {
            backend,
            direction: up,
            version: migration.name().to_string(),
            source,
        })?;
        applied.push(version.to_string());
    }
    Ok(applied)
}

/// Reverts the latest applied migration of `source`, if any.
fn downgrade_one_with<DB, C>(
    conn: &mut C,
    source: EmbeddedMigrations,
    backend: Backend,
) -> Result<Option<String>, DbError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let down = MigrationDirection::Downgrade;
    let applied = conn.applied_migrations().map_err(|e| listing_failed(backend, down, e))?;
    let Some(last) = applied.first() else {
        return Ok(None);
    };
    let known = source.migrations().map_err(|e| listing_failed(backend, down, e))?;
    let Some(migration) = known.iter().find(|m| m.name().version() == *last) else {
        return Err(DbError::Migration {
            backend,
            direction: down,
            version: last.to_string(),
            source: format!("version {last} is applied but unknown to this build of staffeln").into(),
        });
    };
    conn.revert_migration(migration.as_ref()).map_err(|source| DbError::Migration {
        backend,
        direction: down,
        version: migration.name().to_string(),
        source,
    })?;
    Ok(Some(last.to_string()))
}

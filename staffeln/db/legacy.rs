//! The original (Python) Staffeln's tables, on the way to this Staffeln's.
//!
//! The original keeps its records in `backup_data`, `queue_data` and
//! `report_timestamp` (and alembic's `alembic_version`): the names of this
//! Staffeln's tables, another shape (nullable columns, `INTEGER` ids, a
//! `VARCHAR(36)` id in `report_timestamp`). Its backups carry no
//! `__automated_backup` metadata in Cinder; only its `backup_data` rows say
//! they are its. Left as they are, they would never be rotated again and
//! would fill the projects' backup quotas.
//!
//! `staffeln-manage db upgrade` ([`super::migrate::upgrade_report`]) on such
//! a database:
//! 1. [`detect`]s it: `backup_data` exists and the migration history of
//!    this Staffeln (`__diesel_schema_migrations`) is absent or empty;
//! 2. [`set_aside`]: renames the original's tables to `staffeln_py_<name>`
//!    (one atomic `RENAME TABLE` on MySQL; one transaction on SQLite), so
//!    that the migrations can create this Staffeln's tables under their
//!    names. Nothing is dropped or rewritten;
//! 3. runs the migrations;
//! 4. [`adopt`]s every backup the original recorded: its `backup_data` rows,
//!    and the backups of its `queue_data` tasks that were still being
//!    created when it stopped (a real `backup_id`, not in its
//!    `backup_data`), into this Staffeln's `backup_data` with origin
//!    `staffeln-py`. Idempotent: a second run adds nothing, an interrupted
//!    one is finished by the next.
//!
//! Retention treats adopted backups as Staffeln's (a row of origin
//! `staffeln-py` stands in for the metadata), and the deletion guard refuses
//! tenants on them as on every `backup_data` row. The `staffeln_py_*`
//! tables stay until the operator drops them.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::error::DbError;
use super::models::{ORIGIN_STAFFELN_PY, now};
use super::pool::AnyConnection;

/// Prefix of the original's tables once set aside.
pub const PREFIX: &str = "staffeln_py_";
/// The original's tables, as its migrations leave them.
pub const TABLES: [&str; 4] = ["backup_data", "queue_data", "report_timestamp", "alembic_version"];
/// Columns of the original's `backup_data` that adoption reads.
const BACKUP_COLUMNS: [&str; 4] = ["backup_id", "project_id", "volume_id", "instance_id"];

/// The original's schema as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySchema {
    /// Which of [`TABLES`] exist.
    pub tables: Vec<String>,
    /// `alembic_version.version_num` (`5b2e78435231` at the original's head).
    pub alembic_version: Option<String>,
}

/// What an upgrade did with the original's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Tables renamed in this run: `(old, new)`.
    pub set_aside: Vec<(String, String)>,
    /// Backups recorded from the original's `backup_data` in this run.
    pub backups: usize,
    /// Backups of the original's unfinished tasks recorded in this run.
    pub in_flight: usize,
    /// Adopted rows in `backup_data` altogether.
    pub adopted_total: usize,
    /// The original's tables kept under their new names.
    pub kept: Vec<String>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn tables(conn: &mut AnyConnection) -> Result<BTreeSet<String>, DbError> {
    let sql = match conn {
        AnyConnection::Mysql(_) => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        AnyConnection::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let rows: Vec<Name> = diesel::sql_query(sql).load(conn).map_err(DbError::query("list tables"))?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

fn columns(conn: &mut AnyConnection, table: &str) -> Result<BTreeSet<String>, DbError> {
    let sql = match conn {
        AnyConnection::Mysql(_) => {
            "SELECT column_name AS name FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ?"
        }
        AnyConnection::Sqlite(_) => "SELECT name FROM pragma_table_info(?)",
    };
    let rows: Vec<Name> =
        diesel::sql_query(sql).bind::<Text, _>(table).load(conn).map_err(DbError::query("list columns"))?;
    Ok(rows.into_iter().map(|r| r.name.to_ascii_lowercase()).collect())
}

fn count(conn: &mut AnyConnection, sql: &str) -> Result<i64, DbError> {
    let row: Count = diesel::sql_query(sql).get_result(conn).map_err(DbError::query("count rows"))?;
    Ok(row.n)
}

/// The original's schema, if this database holds it (see the module doc);
/// an error when it holds tables of that name that are neither.
pub fn detect(conn: &mut AnyConnection) -> Result<Option<LegacySchema>, DbError> {
    let found = tables(conn)?;
    if !found.contains("backup_data") {
        return Ok(None);
    }
    if found.contains("__diesel_schema_migrations")
        && count(conn, "SELECT COUNT(*) AS n FROM __diesel_schema_migrations")? > 0
    {
        return Ok(None);
    }
    if found.contains("cycles") || found.contains("leases") {
        return Err(DbError::UnknownSchema {
            problem: "it has this Staffeln's tables (cycles, leases) but no migration history \
                      (__diesel_schema_migrations is missing or empty); restore the database from a backup"
                .to_owned(),
        });
    }
    let have = columns(conn, "backup_data")?;
    let missing: Vec<&str> = BACKUP_COLUMNS.iter().copied().filter(|c| !have.contains(*c)).collect();
    if !missing.is_empty() {
        return Err(DbError::UnknownSchema {
            problem: format!(
                "table backup_data is neither this Staffeln's nor the original Staffeln's (no column {}); \
                 it was left alone",
                missing.join(", ")
            ),
        });
    }
    let alembic_version = if found.contains("alembic_version") {
        #[derive(QueryableByName)]
        struct Version {
            #[diesel(sql_type = Text)]
            version_num: String,
        }
        let rows: Vec<Version> = diesel::sql_query("SELECT version_num FROM alembic_version")
            .load(conn)
            .map_err(DbError::query("alembic_version"))?;
        rows.into_iter().next().map(|v| v.version_num)
    } else {
        None
    };
    let tables = TABLES.iter().filter(|t| found.contains(**t)).map(|t| (*t).to_owned()).collect();
    Ok(Some(LegacySchema { tables, alembic_version }))
}

/// Renames the original's tables to `staffeln_py_<name>`, all or none.
pub fn set_aside(conn: &mut AnyConnection, legacy: &LegacySchema) -> Result<Vec<(String, String)>, DbError> {
    let found = tables(conn)?;
    let renames: Vec<(String, String)> = legacy.tables.iter().map(|t| (t.clone(), format!("{PREFIX}{t}"))).collect();
    if let Some((_, taken)) = renames.iter().find(|(_, new)| found.contains(new)) {
        return Err(DbError::UnknownSchema {
            problem: format!(
                "the original Staffeln's tables cannot be set aside: table {taken} exists already (an earlier \
                 upgrade set tables aside under that name); rename or drop it, then run the upgrade again"
            ),
        });
    }
    match conn {
        AnyConnection::Mysql(_) => {
            let list: Vec<String> = renames.iter().map(|(old, new)| format!("`{old}` TO `{new}`")).collect();
            conn.batch_execute(&format!("RENAME TABLE {}", list.join(", ")))
                .map_err(DbError::query("rename the original Staffeln's tables"))?;
        }
        AnyConnection::Sqlite(_) => {
            conn.transaction::<_, DbError, _>(|conn| {
                for (old, new) in &renames {
                    conn.batch_execute(&format!("ALTER TABLE \"{old}\" RENAME TO \"{new}\""))
                        .map_err(DbError::query("rename the original Staffeln's tables"))?;
                }
                Ok(())
            })?;
        }
    }
    Ok(renames)
}

/// Records the backups of the set-aside `staffeln_py_backup_data` and
/// `staffeln_py_queue_data` in `backup_data` (origin `staffeln-py`); `None`
/// when there is nothing set aside. Run after the migrations.
pub fn adopt(conn: &mut AnyConnection) -> Result<Option<Adoption>, DbError> {
    let found = tables(conn)?;
    let old_backups = format!("{PREFIX}backup_data");
    if !found.contains(&old_backups) {
        return Ok(None);
    }
    let at = now();
    let backup_cols = columns(conn, &old_backups)?;
    let opt = |cols: &BTreeSet<String>, name: &str, fallback: &str| {
        if cols.contains(name) { format!("COALESCE(o.{name}, {fallback})") } else { fallback.to_owned() }
    };
    let real_id = "o.backup_id IS NOT NULL AND o.backup_id <> '' AND o.backup_id <> 'NULL'";
    let not_recorded = "NOT EXISTS (SELECT 1 FROM backup_data b WHERE b.backup_id = o.backup_id)";
    let insert = "INSERT INTO backup_data (backup_id, project_id, volume_id, instance_id, backup_completed, \
                  incremental, created_at, updated_at, origin)";
    let sql = format!(
        "{insert} SELECT o.backup_id, COALESCE(o.project_id, ''), COALESCE(o.volume_id, ''), \
         COALESCE(o.instance_id, ''), {}, {}, {}, {}, ? FROM {old_backups} o WHERE {real_id} AND {not_recorded}",
        opt(&backup_cols, "backup_completed", "0"),
        opt(&backup_cols, "incremental", "0"),
        opt(&backup_cols, "created_at", "?"),
        if backup_cols.contains("updated_at") { "o.updated_at" } else { "NULL" },
    );
    // One placeholder for a missing created_at (the upgrade's time), one for the origin.
    let in_backup_data = diesel::sql_query(sql)
        .bind::<Timestamp, _>(at)
        .bind::<Text, _>(ORIGIN_STAFFELN_PY)
        .execute(conn)
        .map_err(DbError::query("adopt the original Staffeln's backup_data"))?;
    let old_queue = format!("{PREFIX}queue_data");
    let in_flight = if found.contains(&old_queue) {
        let queue_cols = columns(conn, &old_queue)?;
        let sql = format!(
            "{insert} SELECT o.backup_id, COALESCE(o.project_id, ''), COALESCE(o.volume_id, ''), \
             COALESCE(o.instance_id, ''), 0, {}, {}, {}, ? FROM {old_queue} o WHERE {real_id} AND {not_recorded} \
             AND o.id = (SELECT MIN(q.id) FROM {old_queue} q WHERE q.backup_id = o.backup_id)",
            opt(&queue_cols, "incremental", "0"),
            opt(&queue_cols, "created_at", "?"),
            if queue_cols.contains("updated_at") { "o.updated_at" } else { "NULL" },
        );
        diesel::sql_query(sql)
            .bind::<Timestamp, _>(at)
            .bind::<Text, _>(ORIGIN_STAFFELN_PY)
            .execute(conn)
            .map_err(DbError::query("adopt the backups of the original Staffeln's unfinished tasks"))?
    } else {
        0
    };
    let adopted_total = count_adopted(conn)?;
    let kept = TABLES.iter().map(|t| format!("{PREFIX}{t}")).filter(|t| found.contains(t)).collect();
    Ok(Some(Adoption { set_aside: Vec::new(), backups: in_backup_data, in_flight, adopted_total, kept }))
}

fn count_adopted(conn: &mut AnyConnection) -> Result<usize, DbError> {
    use super::schema::backup_data::dsl;
    let n: i64 = dsl::backup_data
        .filter(dsl::origin.eq(ORIGIN_STAFFELN_PY))
        .count()
        .get_result(conn)
        .map_err(DbError::query("backup_data count adopted"))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

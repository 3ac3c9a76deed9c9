//! `retention_audit`: every decision retention made about a backup (keep,
//! delete, skip) and what came of each delete (deleted, gone, deferred,
//! failed), plus the `backup_data` rows it forgot. Append-only: nothing here
//! updates or removes a row, and reports never purge the table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::DbError;
use super::models::now;
use super::pool::AnyConnection;
use super::schema::retention_audit::dsl;

/// A row of `retention_audit`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = super::schema::retention_audit)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct AuditRow {
    pub id: i64,
    pub run_id: String,
    pub backup_id: String,
    pub volume_id: String,
    pub project_id: String,
    pub backup_status: String,
    pub backup_created_at: Option<NaiveDateTime>,
    pub action: String,
    pub reason_code: String,
    pub reason: String,
    pub created_at: NaiveDateTime,
}

/// One entry to record; `created_at` is set on insert. Longer texts are cut
/// to the column sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub run_id: String,
    pub backup_id: String,
    pub volume_id: String,
    pub project_id: String,
    pub backup_status: String,
    pub backup_created_at: Option<NaiveDateTime>,
    pub action: String,
    pub reason_code: String,
    pub reason: String,
}

#[derive(Insertable)]
#[diesel(table_name = super::schema::retention_audit)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
struct InsertAudit {
    run_id: String,
    backup_id: String,
    volume_id: String,
    project_id: String,
    backup_status: String,
    backup_created_at: Option<NaiveDateTime>,
    action: String,
    reason_code: String,
    reason: String,
    created_at: NaiveDateTime,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Records `entries` in one transaction; returns how many were written.
pub fn insert(conn: &mut AnyConnection, entries: &[NewAuditEntry]) -> Result<usize, DbError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let at = now();
    // One statement per row: the multi-backend connection has no batch insert.
    conn.transaction::<_, DbError, _>(|conn| {
        let mut written = 0;
        for e in entries {
            let row = InsertAudit {
                run_id: clip(&e.run_id, 64),
                backup_id: clip(&e.backup_id, 100),
                volume_id: clip(&e.volume_id, 100),
                project_id: clip(&e.project_id, 100),
                backup_status: clip(&e.backup_status, 32),
                backup_created_at: e.backup_created_at,
                action: clip(&e.action, 16),
                reason_code: clip(&e.reason_code, 32),
                reason: clip(&e.reason, 1024),
                created_at: at,
            };
            written += diesel::insert_into(dsl::retention_audit)
                .values(row)
                .execute(conn)
                .map_err(DbError::query("retention_audit insert"))?;
        }
        Ok(written)
    })
}

/// The entries of one run, in the order they were written.
pub fn of_run(conn: &mut AnyConnection, run_id: &str) -> Result<Vec<AuditRow>, DbError> {
    dsl::retention_audit
        .filter(dsl::run_id.eq(run_id))
        .order(dsl::id.asc())
        .select(AuditRow::as_select())
        .load(conn)
        .map_err(DbError::query("retention_audit of run"))
}

/// Everything recorded about one backup, oldest first.
pub fn of_backup(conn: &mut AnyConnection, backup_id: &str) -> Result<Vec<AuditRow>, DbError> {
    dsl::retention_audit
        .filter(dsl::backup_id.eq(backup_id))
        .order(dsl::id.asc())
        .select(AuditRow::as_select())
        .load(conn)
        .map_err(DbError::query("retention_audit of backup"))
}

/// The entries of one project recorded at or after `since`, oldest first.
pub fn of_project_since(
    conn: &mut AnyConnection,
    project_id: &str,
    since: NaiveDateTime,
) -> Result<Vec<AuditRow>, DbError> {
    dsl::retention_audit
        .filter(dsl::project_id.eq(project_id))
        .filter(dsl::created_at.ge(since))
        .order(dsl::id.asc())
        .select(AuditRow::as_select())
        .load(conn)
        .map_err(DbError::query("retention_audit of project"))
}

//! `backup_data`: the backups staffeln made and keeps under retention.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::error::DbError;
use super::models::{BackupRow, InsertBackup, NewBackup, now};
use super::pool::AnyConnection;
use super::schema::backup_data::dsl;

/// Records a backup; `created_at` is now. A second row with the same
/// `backup_id` fails with [`DbError::Duplicate`] (constraint `unique_backup0uuid`).
pub fn insert(conn: &mut AnyConnection, new: &NewBackup) -> Result<BackupRow, DbError> {
    let row = InsertBackup {
        backup_id: &new.backup_id,
        project_id: &new.project_id,
        volume_id: &new.volume_id,
        instance_id: &new.instance_id,
        backup_completed: new.backup_completed,
        incremental: new.incremental,
        created_at: now(),
    };
    diesel::insert_into(dsl::backup_data).values(&row).execute(conn).map_err(|source| match source {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            DbError::Duplicate { table: "backup_data", key: format!("backup_id {}", new.backup_id), source }
        }
        source => DbError::Query { query: "backup_data insert", source },
    })?;
    dsl::backup_data
        .filter(dsl::backup_id.eq(&new.backup_id))
        .select(BackupRow::as_select())
        .first(conn)
        .map_err(DbError::query("backup_data get after insert"))
}

/// The backup with this Cinder backup id, if recorded.
pub fn get(conn: &mut AnyConnection, backup_id: &str) -> Result<Option<BackupRow>, DbError> {
    dsl::backup_data
        .filter(dsl::backup_id.eq(backup_id))
        .select(BackupRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::query("backup_data get"))
}

/// The backups of one project, oldest first.
pub fn list_by_project(conn: &mut AnyConnection, project_id: &str) -> Result<Vec<BackupRow>, DbError> {
    dsl::backup_data
        .filter(dsl::project_id.eq(project_id))
        .order((dsl::created_at.asc(), dsl::id.asc()))
        .select(BackupRow::as_select())
        .load(conn)
        .map_err(DbError::query("backup_data list by project"))
}

/// Forgets a backup; true when a row was removed.
pub fn delete(conn: &mut AnyConnection, backup_id: &str) -> Result<bool, DbError> {
    diesel::delete(dsl::backup_data.filter(dsl::backup_id.eq(backup_id)))
        .execute(conn)
        .map(|n| n > 0)
        .map_err(DbError::query("backup_data delete"))
}

/// Every recorded backup id (the backups Staffeln made).
pub fn all_ids(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    dsl::backup_data.select(dsl::backup_id).load(conn).map_err(DbError::query("backup_data all ids"))
}

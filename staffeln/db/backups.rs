//! `backup_data`: the backups staffeln made and keeps under retention.

use chrono::NaiveDateTime;
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

/// The backups adopted from the original Staffeln's database (origin
/// `staffeln-py`).
pub fn adopted_ids(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    dsl::backup_data
        .filter(dsl::origin.eq(super::models::ORIGIN_STAFFELN_PY))
        .select(dsl::backup_id)
        .load(conn)
        .map_err(DbError::query("backup_data adopted ids"))
}

/// Which `backup_data` rows [`list`] returns; every filter that is set must
/// match. Rows come newest first (`created_at`, then `id`, descending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub project_id: Option<String>,
    /// Only these backups (`backup_id IN (...)`).
    pub backup_ids: Option<Vec<String>>,
    pub volume_id: Option<String>,
    pub instance_id: Option<String>,
    /// `Some(true)`: `backup_completed != 0`; `Some(false)`: `= 0`.
    pub completed: Option<bool>,
    /// `created_at >= since`.
    pub created_since: Option<NaiveDateTime>,
    /// `created_at < until`.
    pub created_until: Option<NaiveDateTime>,
    /// Keyset pagination: only rows strictly older than `(created_at, id)`.
    pub before: Option<(NaiveDateTime, i64)>,
    pub limit: i64,
}

/// One page of backups, newest first (see [`ListFilter`]).
pub fn list(conn: &mut AnyConnection, filter: &ListFilter) -> Result<Vec<BackupRow>, DbError> {
    let mut query = dsl::backup_data.into_boxed();
    if let Some(project) = &filter.project_id {
        query = query.filter(dsl::project_id.eq(project.clone()));
    }
    if let Some(ids) = &filter.backup_ids {
        query = query.filter(dsl::backup_id.eq_any(ids.clone()));
    }
    if let Some(volume) = &filter.volume_id {
        query = query.filter(dsl::volume_id.eq(volume.clone()));
    }
    if let Some(instance) = &filter.instance_id {
        query = query.filter(dsl::instance_id.eq(instance.clone()));
    }
    match filter.completed {
        Some(true) => query = query.filter(dsl::backup_completed.ne(0)),
        Some(false) => query = query.filter(dsl::backup_completed.eq(0)),
        None => {}
    }
    if let Some(since) = filter.created_since {
        query = query.filter(dsl::created_at.ge(since));
    }
    if let Some(until) = filter.created_until {
        query = query.filter(dsl::created_at.lt(until));
    }
    if let Some((at, id)) = filter.before {
        query = query.filter(dsl::created_at.lt(at).or(dsl::created_at.eq(at).and(dsl::id.lt(id))));
    }
    query
        .order((dsl::created_at.desc(), dsl::id.desc()))
        .limit(filter.limit)
        .select(BackupRow::as_select())
        .load(conn)
        .map_err(DbError::query("backup_data list"))
}

/// The newest recorded backup of every volume: `(project_id, volume_id, created_at)`.
pub fn last_per_volume(conn: &mut AnyConnection) -> Result<Vec<(String, String, NaiveDateTime)>, DbError> {
    let rows: Vec<(String, String, Option<NaiveDateTime>)> = dsl::backup_data
        .group_by((dsl::project_id, dsl::volume_id))
        .select((dsl::project_id, dsl::volume_id, diesel::dsl::max(dsl::created_at)))
        .order((dsl::project_id.asc(), dsl::volume_id.asc()))
        .load(conn)
        .map_err(DbError::query("backup_data last per volume"))?;
    Ok(rows.into_iter().filter_map(|(p, v, at)| at.map(|at| (p, v, at))).collect())
}

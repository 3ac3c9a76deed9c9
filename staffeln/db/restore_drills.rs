//! `restore_drills`: each drill's backup, scratch volume, result and
//! duration (append-only).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::DbError;
use super::pool::AnyConnection;
use super::schema::restore_drills::{self, dsl};

/// One recorded drill.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = restore_drills)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct DrillRow {
    pub id: i64,
    pub backup_id: String,
    pub volume_id: String,
    pub project_id: String,
    pub scratch_volume_id: Option<String>,
    /// `passed` or `failed`.
    pub result: String,
    pub message: Option<String>,
    pub duration_secs: i64,
    pub conductor: String,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
}

/// A drill to record.
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = restore_drills)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct NewDrill {
    pub backup_id: String,
    pub volume_id: String,
    pub project_id: String,
    pub scratch_volume_id: Option<String>,
    pub result: String,
    pub message: Option<String>,
    pub duration_secs: i64,
    pub conductor: String,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
}

/// Records a drill.
pub fn insert(conn: &mut AnyConnection, drill: &NewDrill) -> Result<(), DbError> {
    let mut drill = drill.clone();
    if let Some(m) = drill.message.as_mut()
        && m.chars().count() > 1024
    {
        *m = m.chars().take(1021).collect::<String>() + "...";
    }
    diesel::insert_into(dsl::restore_drills)
        .values(&drill)
        .execute(conn)
        .map(drop)
        .map_err(DbError::query("restore_drills insert"))
}

/// The newest drills first, of one project or all, at most `limit`.
pub fn list(conn: &mut AnyConnection, project_id: Option<&str>, limit: i64) -> Result<Vec<DrillRow>, DbError> {
    let mut q = dsl::restore_drills.into_boxed();
    if let Some(p) = project_id {
        q = q.filter(dsl::project_id.eq(p.to_owned()));
    }
    q.order((dsl::finished_at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(DrillRow::as_select())
        .load(conn)
        .map_err(DbError::query("restore_drills list"))
}

/// Drills that finished at or after `since`, oldest first (the digest's).
pub fn since(conn: &mut AnyConnection, since: NaiveDateTime) -> Result<Vec<DrillRow>, DbError> {
    dsl::restore_drills
        .filter(dsl::finished_at.ge(since))
        .order((dsl::finished_at.asc(), dsl::id.asc()))
        .select(DrillRow::as_select())
        .load(conn)
        .map_err(DbError::query("restore_drills since"))
}

/// When each volume was last drilled.
pub fn last_per_volume(conn: &mut AnyConnection) -> Result<Vec<(String, NaiveDateTime)>, DbError> {
    dsl::restore_drills
        .group_by(dsl::volume_id)
        .select((dsl::volume_id, diesel::dsl::max(dsl::finished_at)))
        .load::<(String, Option<NaiveDateTime>)>(conn)
        .map(|rows| rows.into_iter().filter_map(|(v, t)| t.map(|t| (v, t))).collect())
        .map_err(DbError::query("restore_drills last_per_volume"))
}

/// `(passed, failed, the newest drill's duration)`.
pub fn summary(conn: &mut AnyConnection) -> Result<(i64, i64, Option<i64>), DbError> {
    let counts: Vec<(String, i64)> = dsl::restore_drills
        .group_by(dsl::result)
        .select((dsl::result, diesel::dsl::count_star()))
        .load(conn)
        .map_err(DbError::query("restore_drills summary"))?;
    let n = |r: &str| counts.iter().filter(|(k, _)| k == r).map(|(_, n)| *n).sum::<i64>();
    let last = dsl::restore_drills
        .order((dsl::finished_at.desc(), dsl::id.desc()))
        .select(dsl::duration_secs)
        .first::<i64>(conn)
        .optional()
        .map_err(DbError::query("restore_drills summary"))?;
    Ok((n("passed"), n("failed"), last))
}

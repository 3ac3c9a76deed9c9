//! `rpo_status` and `quota_projections`: the newest assessment, replaced
//! whole by each one (the conductor writes, staffeln-api's /metrics reads).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::DbError;
use super::pool::AnyConnection;
use super::schema::{quota_projections, rpo_status};

/// One volume's RPO.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = rpo_status)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct RpoRow {
    pub project_id: String,
    pub volume_id: String,
    pub last_success: Option<NaiveDateTime>,
    pub within_rpo: bool,
    pub reason: Option<String>,
    pub assessed_at: NaiveDateTime,
}

/// One project's quota projection.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = quota_projections)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct QuotaRow {
    pub project_id: String,
    /// `backups` or `backup_gigabytes`; `None`: not projected to run out.
    pub quota: Option<String>,
    pub exhausted_at: Option<NaiveDateTime>,
    pub warn: bool,
    pub assessed_at: NaiveDateTime,
}

/// Replaces the stored assessment with `rpo` and `quotas`.
pub fn replace(conn: &mut AnyConnection, rpo: &[RpoRow], quotas: &[QuotaRow]) -> Result<(), DbError> {
    conn.transaction(|c| {
        diesel::delete(rpo_status::table).execute(c)?;
        diesel::delete(quota_projections::table).execute(c)?;
        // One row at a time: the multi-backend connection has no batch insert.
        for row in rpo {
            diesel::insert_into(rpo_status::table).values(row).execute(c)?;
        }
        for row in quotas {
            diesel::insert_into(quota_projections::table).values(row).execute(c)?;
        }
        Ok(())
    })
    .map_err(DbError::query("assurance replace"))
}

/// The stored RPO rows.
pub fn rpo(conn: &mut AnyConnection) -> Result<Vec<RpoRow>, DbError> {
    rpo_status::table
        .order((rpo_status::project_id, rpo_status::volume_id))
        .select(RpoRow::as_select())
        .load(conn)
        .map_err(DbError::query("rpo_status list"))
}

/// The stored quota projections.
pub fn quotas(conn: &mut AnyConnection) -> Result<Vec<QuotaRow>, DbError> {
    quota_projections::table
        .order(quota_projections::project_id)
        .select(QuotaRow::as_select())
        .load(conn)
        .map_err(DbError::query("quota_projections list"))
}

//! Rows as read (`Queryable`) and as written (`Insertable`), checked against
//! both backends at compile time. Times are UTC without a zone (`NaiveDateTime`),
//! truncated to microseconds so that what is written reads back equal on MySQL
//! `DATETIME(6)` and SQLite alike.

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;

use super::schema::{backup_data, report_timestamp};

/// Now, in UTC, to microsecond precision (what the columns store).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A row of `backup_data`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = backup_data)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct BackupRow {
    pub id: i64,
    pub backup_id: String,
    pub project_id: String,
    pub volume_id: String,
    pub instance_id: String,
    pub backup_completed: i32,
    pub incremental: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    /// [`ORIGIN_STAFFELN`], or [`ORIGIN_STAFFELN_PY`] for a row adopted from
    /// the original Staffeln's database.
    pub origin: String,
}

/// `backup_data.origin` of the backups this Staffeln made.
pub const ORIGIN_STAFFELN: &str = "staffeln";
/// `backup_data.origin` of the backups the original (Python) Staffeln made,
/// adopted by `staffeln-manage db upgrade`.
pub const ORIGIN_STAFFELN_PY: &str = "staffeln-py";

/// A new `backup_data` row; `created_at` is set on insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBackup {
    pub backup_id: String,
    pub project_id: String,
    pub volume_id: String,
    pub instance_id: String,
    pub backup_completed: i32,
    pub incremental: bool,
}

#[derive(Insertable)]
#[diesel(table_name = backup_data)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct InsertBackup<'a> {
    pub backup_id: &'a str,
    pub project_id: &'a str,
    pub volume_id: &'a str,
    pub instance_id: &'a str,
    pub backup_completed: i32,
    pub incremental: bool,
    pub created_at: NaiveDateTime,
}

/// A row of `report_timestamp`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = report_timestamp)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct ReportRow {
    pub id: i64,
    pub sender: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = report_timestamp)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub(crate) struct InsertReport<'a> {
    pub sender: Option<&'a str>,
    pub created_at: NaiveDateTime,
}

//! `report_timestamp`: when a report was last sent.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::DbError;
use super::models::{InsertReport, ReportRow, now};
use super::pool::AnyConnection;
use super::schema::report_timestamp::dsl;

/// The most recent report, if any was ever sent.
pub fn latest(conn: &mut AnyConnection) -> Result<Option<ReportRow>, DbError> {
    dsl::report_timestamp
        .order((dsl::created_at.desc(), dsl::id.desc()))
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::query("report_timestamp latest"))
}

/// Records that `sender` sent a report now.
pub fn insert(conn: &mut AnyConnection, sender: Option<&str>) -> Result<(), DbError> {
    insert_at(conn, sender, now())
}

/// Records that `sender` sent a report at `at` (the conductor's clock).
pub fn insert_at(conn: &mut AnyConnection, sender: Option<&str>, at: NaiveDateTime) -> Result<(), DbError> {
    diesel::insert_into(dsl::report_timestamp)
        .values(&InsertReport { sender, created_at: at })
        .execute(conn)
        .map(drop)
        .map_err(DbError::query("report_timestamp insert"))
}

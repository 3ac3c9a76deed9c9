//! What the records say about backups already made: which cycle made a
//! backup, and when that cycle started (`queue_data` joined with `cycles`).
//! The planner measures `backup_min_interval` from there.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::DbError;
use super::pool::AnyConnection;
use super::schema::cycles::dsl as cycles;
use super::schema::queue_data::dsl as tasks;

/// `(backup_id, started_at)` of the cycle whose task made each of
/// `backup_ids` (those Staffeln made in a cycle; others are left out).
pub fn cycle_starts(conn: &mut AnyConnection, backup_ids: &[String]) -> Result<Vec<(String, NaiveDateTime)>, DbError> {
    let mut out = Vec::with_capacity(backup_ids.len());
    for chunk in backup_ids.chunks(500) {
        let rows: Vec<(String, NaiveDateTime)> = tasks::queue_data
            .inner_join(cycles::cycles.on(cycles::id.eq(tasks::cycle_id)))
            .filter(tasks::backup_id.eq_any(chunk))
            .select((tasks::backup_id, cycles::started_at))
            .load(conn)
            .map_err(DbError::query("queue_data cycle starts of backups"))?;
        out.extend(rows);
    }
    Ok(out)
}

//! `queue_data` rows by their legacy `backup_status` (staffeln-py's view of the
//! table). The conductor's queue on the same table is in [`super::tasks`].

use diesel::prelude::*;

use super::error::DbError;
use super::models::{InsertQueueItem, NewQueueItem, QueueRow, now};
use super::pool::{AnyConnection, last_insert_id};
use super::schema::queue_data::dsl;

/// Queues a volume backup; `created_at` is now. Returns the row with its id.
pub fn insert(conn: &mut AnyConnection, new: &NewQueueItem) -> Result<QueueRow, DbError> {
    let row = InsertQueueItem {
        backup_id: &new.backup_id,
        project_id: &new.project_id,
        volume_id: &new.volume_id,
        backup_status: new.backup_status,
        instance_id: &new.instance_id,
        volume_name: &new.volume_name,
        instance_name: &new.instance_name,
        incremental: new.incremental,
        reason: new.reason.as_deref(),
        created_at: now(),
        // A row outside the conductor's queue: its own id, no cycle.
        task_id: uuid::Uuid::new_v4().to_string(),
        cycle_id: format!("row-{}", uuid::Uuid::new_v4()),
        state: "legacy",
    };
    diesel::insert_into(dsl::queue_data).values(&row).execute(conn).map_err(DbError::query("queue_data insert"))?;
    let id = last_insert_id(conn).map_err(DbError::query("queue_data last insert id"))?;
    dsl::queue_data
        .find(id)
        .select(QueueRow::as_select())
        .first(conn)
        .map_err(DbError::query("queue_data get after insert"))
}

/// The queued backups with this status, oldest first.
pub fn list_by_status(conn: &mut AnyConnection, backup_status: i32) -> Result<Vec<QueueRow>, DbError> {
    dsl::queue_data
        .filter(dsl::backup_status.eq(backup_status))
        .order((dsl::created_at.asc(), dsl::id.asc()))
        .select(QueueRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data list by status"))
}

/// Sets the status (and reason, `None` clears it) of one queued backup and
/// stamps `updated_at`; true when the row exists.
pub fn update_status(
    conn: &mut AnyConnection,
    id: i64,
    backup_status: i32,
    reason: Option<&str>,
) -> Result<bool, DbError> {
    diesel::update(dsl::queue_data.find(id))
        .set((dsl::backup_status.eq(backup_status), dsl::reason.eq(reason), dsl::updated_at.eq(now())))
        .execute(conn)
        .map(|n| n > 0)
        .map_err(DbError::query("queue_data update status"))
}

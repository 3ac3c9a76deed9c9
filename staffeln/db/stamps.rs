//! `server_stamps`: the `last-backup-time` each flagged server is owed by a
//! backup cycle, and how writing it went.
//!
//! Rows are written with the cycle's plan ([`insert`], inside its
//! transaction) in state `pending`. A conductor that writes the metadata
//! first takes the attempt ([`take_attempt`]: a conditional update on the
//! attempt count, so two conductors never write nor count the same attempt),
//! then records `done`, a retry time, or `failed`. Rows end `done`, `failed`
//! (reported in the next digest, [`unreported_failures`]), `not_owed` (not
//! every volume was backed up; [`reopen`] when a late backup is recorded
//! after all) or `superseded` (a newer value was already written). Times come
//! from the caller (the conductor's clock).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::error::DbError;
use super::pool::AnyConnection;
use super::schema::server_stamps::dsl;

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const NOT_OWED: &str = "not_owed";
pub const SUPERSEDED: &str = "superseded";

/// A stamp as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = super::schema::server_stamps)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct StampRow {
    pub id: i64,
    pub cycle_id: String,
    pub server_id: String,
    pub server_name: String,
    pub project_id: String,
    pub volume_ids: String,
    pub state: String,
    pub attempts: i32,
    pub stamp_value: Option<String>,
    pub reason: Option<String>,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    pub reported_at: Option<NaiveDateTime>,
}

impl StampRow {
    /// The volumes attached to the server when the cycle was planned.
    pub fn volumes(&self) -> Vec<&str> {
        self.volume_ids.split(',').filter(|v| !v.is_empty()).collect()
    }
}

/// A flagged server of a new plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStamp {
    pub server_id: String,
    pub server_name: String,
    pub project_id: String,
    pub volume_ids: Vec<String>,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Writes the stamps of cycle `cycle_id` (call inside the plan's transaction).
pub fn insert(
    conn: &mut AnyConnection,
    cycle_id: &str,
    stamps: &[NewStamp],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    for chunk in stamps.chunks(200) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|s| {
                (
                    dsl::cycle_id.eq(cycle_id.to_owned()),
                    dsl::server_id.eq(clip(&s.server_id, 100)),
                    dsl::server_name.eq(clip(&s.server_name, 255)),
                    dsl::project_id.eq(clip(&s.project_id, 100)),
                    dsl::volume_ids.eq(s.volume_ids.join(",")),
                    dsl::state.eq(PENDING),
                    dsl::attempts.eq(0),
                    dsl::created_at.eq(now),
                )
            })
            .collect();
        // One statement per chunk (diesel's multi-backend connection has no
        // batch insert, each backend has).
        let insert = diesel::insert_into(dsl::server_stamps).values(rows);
        match conn {
            AnyConnection::Mysql(c) => insert.execute(c),
            AnyConnection::Sqlite(c) => insert.execute(c),
        }
        .map_err(DbError::query("server_stamps insert"))?;
    }
    Ok(())
}

/// Pending stamps that may be tried at `now` (no retry time, or one that has
/// come), oldest first.
pub fn due(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<Vec<StampRow>, DbError> {
    dsl::server_stamps
        .filter(dsl::state.eq(PENDING))
        .filter(dsl::next_attempt_at.is_null().or(dsl::next_attempt_at.le(now)))
        .order(dsl::id.asc())
        .select(StampRow::as_select())
        .load(conn)
        .map_err(DbError::query("server_stamps due"))
}

/// Up to `limit` pending stamps after id `after` that may be tried at `now`
/// and whose server has no task of their cycle still to be worked on
/// (planned, claimed, creating), oldest first. Mid-cycle most servers still
/// wait for a backup: they are left in the database, not read on every poll.
/// A volume attached to several servers is planned once, for one of them;
/// the caller still checks every volume of a stamp.
pub fn ready(conn: &mut AnyConnection, now: NaiveDateTime, after: i64, limit: i64) -> Result<Vec<StampRow>, DbError> {
    // A correlated subquery, which diesel's DSL does not express; fixed text,
    // nothing interpolated (ix_queue_data_instance_state answers it).
    let ended = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "NOT EXISTS (SELECT 1 FROM queue_data t WHERE t.instance_id = server_stamps.server_id \
         AND t.cycle_id = server_stamps.cycle_id AND t.state IN ('planned', 'claimed', 'creating'))",
    );
    dsl::server_stamps
        .filter(dsl::state.eq(PENDING))
        .filter(dsl::next_attempt_at.is_null().or(dsl::next_attempt_at.le(now)))
        .filter(dsl::id.gt(after))
        .filter(ended)
        .order(dsl::id.asc())
        .limit(limit)
        .select(StampRow::as_select())
        .load(conn)
        .map_err(DbError::query("server_stamps ready"))
}

/// The stamps of one cycle.
pub fn of_cycle(conn: &mut AnyConnection, cycle_id: &str) -> Result<Vec<StampRow>, DbError> {
    dsl::server_stamps
        .filter(dsl::cycle_id.eq(cycle_id))
        .order(dsl::id.asc())
        .select(StampRow::as_select())
        .load(conn)
        .map_err(DbError::query("server_stamps of cycle"))
}

/// Takes the next write of stamp `id` for this conductor: true when the row
/// was still pending with `seen_attempts` attempts (it now has one more and
/// is held until `now + hold`, so that no other conductor writes meanwhile).
pub fn take_attempt(
    conn: &mut AnyConnection,
    id: i64,
    seen_attempts: i32,
    now: NaiveDateTime,
    hold: Duration,
) -> Result<bool, DbError> {
    diesel::update(
        dsl::server_stamps
            .filter(dsl::id.eq(id))
            .filter(dsl::state.eq(PENDING))
            .filter(dsl::attempts.eq(seen_attempts)),
    )
    .set((dsl::attempts.eq(seen_attempts + 1), dsl::next_attempt_at.eq(Some(now + hold)), dsl::updated_at.eq(now)))
    .execute(conn)
    .map(|n| n == 1)
    .map_err(DbError::query("server_stamps take attempt"))
}

/// Ends pending stamp `id` in `state` with `value` and `reason`.
pub fn end(
    conn: &mut AnyConnection,
    id: i64,
    state: &str,
    value: Option<&str>,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    diesel::update(dsl::server_stamps.filter(dsl::id.eq(id)).filter(dsl::state.eq(PENDING)))
        .set((
            dsl::state.eq(state),
            dsl::stamp_value.eq(value),
            dsl::reason.eq(reason.map(|r| clip(r, 1024))),
            dsl::next_attempt_at.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("server_stamps end"))
}

/// Pending stamp `id` is tried again at `at`; `reason` says why the last
/// write failed.
pub fn retry_at(
    conn: &mut AnyConnection,
    id: i64,
    at: NaiveDateTime,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    diesel::update(dsl::server_stamps.filter(dsl::id.eq(id)).filter(dsl::state.eq(PENDING)))
        .set((dsl::next_attempt_at.eq(Some(at)), dsl::reason.eq(Some(clip(reason, 1024))), dsl::updated_at.eq(now)))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("server_stamps retry"))
}

/// The newest value written to `server_id` by any cycle.
pub fn newest_written(conn: &mut AnyConnection, server_id: &str) -> Result<Option<String>, DbError> {
    dsl::server_stamps
        .filter(dsl::server_id.eq(server_id))
        .filter(dsl::state.eq(DONE))
        .select(diesel::dsl::max(dsl::stamp_value))
        .first::<Option<String>>(conn)
        .map_err(DbError::query("server_stamps newest written"))
}

/// Stamps of cycle `cycle_id` that were not owed become pending again (a
/// backup of the cycle was recorded after the cycle stopped waiting).
pub fn reopen(conn: &mut AnyConnection, cycle_id: &str, now: NaiveDateTime) -> Result<usize, DbError> {
    diesel::update(dsl::server_stamps.filter(dsl::cycle_id.eq(cycle_id)).filter(dsl::state.eq(NOT_OWED)))
        .set((dsl::state.eq(PENDING), dsl::reason.eq(None::<String>), dsl::updated_at.eq(now)))
        .execute(conn)
        .map_err(DbError::query("server_stamps reopen"))
}

/// Stamps given up on and not reported in a digest yet, oldest first.
pub fn unreported_failures(conn: &mut AnyConnection) -> Result<Vec<StampRow>, DbError> {
    dsl::server_stamps
        .filter(dsl::state.eq(FAILED))
        .filter(dsl::reported_at.is_null())
        .order(dsl::id.asc())
        .select(StampRow::as_select())
        .load(conn)
        .map_err(DbError::query("server_stamps unreported failures"))
}

/// Marks stamps as reported (their digest was delivered).
pub fn mark_reported(conn: &mut AnyConnection, ids: &[i64], now: NaiveDateTime) -> Result<usize, DbError> {
    let mut total = 0;
    for chunk in ids.chunks(500) {
        total += diesel::update(dsl::server_stamps.filter(dsl::id.eq_any(chunk)))
            .set(dsl::reported_at.eq(Some(now)))
            .execute(conn)
            .map_err(DbError::query("server_stamps mark reported"))?;
    }
    Ok(total)
}

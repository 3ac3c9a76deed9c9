//! `queue_data` as the conductors' shared work queue.
//!
//! The cycle's leader writes the plan ([`insert_plan`], refused when its lease
//! and fencing token are no longer current); every conductor claims planned
//! tasks ([`claim`]: MySQL `SELECT … FOR UPDATE SKIP LOCKED`, SQLite's single
//! writer), calls Cinder, and records the outcome. State changes are
//! conditional updates (`WHERE state = …`), so a task completed by one
//! conductor is never completed again by another. The legacy `backup_status`
//! integer is kept in step for readers of the old column: 0 planned,
//! 1 claimed/creating/unfinished, 2 done, 3 failed, 4 skipped, 5 waiting.
//!
//! Claims are fenced: every claim increments `attempts`, which is the claim's
//! token ([`TaskRow::claim_token`]). A conductor checks its token with a
//! conditional update ([`confirm_claim`], which also extends the claim)
//! before it creates a backup, and again when it records the create
//! ([`mark_creating`]) or ends the task ([`finish_claimed`]). A conductor that
//! stalled past its claim and resumed finds its token stale and does
//! nothing. Times come from the caller (the conductor's clock).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::error::DbError;
use super::leases;
use super::models::{NewBackup, now};
use super::pool::AnyConnection;
use super::schema::cycles::dsl as cycles;
use super::schema::queue_data::dsl;
use crate::objects::TaskState;

/// Name of the lock row that serialises claims (see [`leases::lock`]).
pub const CLAIM_LOCK: &str = "claim-lock";

/// The legacy `backup_status` value of a state.
pub fn legacy_status(state: TaskState) -> i32 {
    match state {
        TaskState::Planned => 0,
        TaskState::Claimed | TaskState::Creating | TaskState::Unfinished => 1,
        TaskState::Done => 2,
        TaskState::Failed | TaskState::Legacy => 3,
        TaskState::Skipped => 4,
        TaskState::Waiting => 5,
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = super::schema::queue_data)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct TaskRow {
    pub id: i64,
    pub task_id: String,
    pub cycle_id: String,
    pub state: String,
    /// Empty until Cinder accepted the create.
    pub backup_id: String,
    pub project_id: String,
    pub volume_id: String,
    pub instance_id: String,
    pub volume_name: String,
    pub instance_name: String,
    pub incremental: bool,
    pub backup_name: String,
    pub force_backup: bool,
    pub availability_zone: Option<String>,
    pub size_gb: i64,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub attempts: i32,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub reported_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    pub fencing_token: i64,
    /// When the backup was first reported as possibly stuck.
    pub stuck_at: Option<NaiveDateTime>,
}

impl TaskRow {
    /// The state, `Failed` for a value this version does not know.
    pub fn task_state(&self) -> TaskState {
        TaskState::parse(&self.state).unwrap_or(TaskState::Failed)
    }

    /// The fencing token of the current claim: the claim count, which every
    /// claim increments.
    pub fn claim_token(&self) -> i32 {
        self.attempts
    }
}

/// A task of a new plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub task_id: String,
    pub state: TaskState,
    pub project_id: String,
    pub volume_id: String,
    pub volume_name: String,
    pub instance_id: String,
    pub instance_name: String,
    pub incremental: bool,
    pub backup_name: String,
    pub force_backup: bool,
    pub availability_zone: Option<String>,
    pub size_gb: i64,
    pub note: Option<String>,
    pub reason: Option<String>,
}

/// A cycle as stored.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = super::schema::cycles)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct CycleRow {
    pub id: String,
    pub kind: String,
    pub leader: String,
    pub fencing_token: i64,
    pub started_at: NaiveDateTime,
    pub planned_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub planned: i32,
    pub summary: Option<String>,
    /// Backup cycles: busy slot-seconds over (slots × duration), 0 to 1.
    pub slot_utilisation: Option<f64>,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Who planned a cycle, under which lease, and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanHeader<'a> {
    pub lease: &'a str,
    pub holder: &'a str,
    pub token: i64,
    pub cycle_id: &'a str,
    pub kind: &'a str,
    pub started_at: NaiveDateTime,
}

/// Writes a cycle and its plan in one transaction, if the planner still
/// holds its lease with its token. Returns `None` (and writes nothing) when
/// the lease was lost, the number of tasks written otherwise.
pub fn insert_plan(
    conn: &mut AnyConnection,
    header: &PlanHeader<'_>,
    tasks: &[NewTask],
) -> Result<Option<usize>, DbError> {
    insert_plan_with_stamps(conn, header, tasks, &[])
}

/// [`insert_plan`] with the `last-backup-time` stamps the cycle owes its
/// flagged servers ([`super::stamps`]), in the same transaction.
pub fn insert_plan_with_stamps(
    conn: &mut AnyConnection,
    header: &PlanHeader<'_>,
    tasks: &[NewTask],
    stamps: &[super::stamps::NewStamp],
) -> Result<Option<usize>, DbError> {
    let PlanHeader { lease, holder, token, cycle_id, kind, started_at } = *header;
    conn.transaction::<_, DbError, _>(|conn| {
        // Write first: on SQLite a transaction that reads before it writes
        // fails with SQLITE_BUSY when another writer (the other loop, another
        // conductor) commits in between; a first write waits its turn.
        leases::lock(conn, lease)?;
        if !leases::holds(conn, lease, holder, token)? {
            return Ok(None);
        }
        let now = now();
        diesel::insert_into(cycles::cycles)
            .values((
                cycles::id.eq(cycle_id),
                cycles::kind.eq(kind),
                cycles::leader.eq(holder),
                cycles::fencing_token.eq(token),
                cycles::started_at.eq(started_at),
                cycles::planned_at.eq(Some(now)),
                cycles::planned.eq(i32::try_from(tasks.len()).unwrap_or(i32::MAX)),
            ))
            .execute(conn)
            .map_err(DbError::query("cycles insert"))?;
        for chunk in tasks.chunks(200) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|t| {
                    let terminal = !t.state.is_active();
                    (
                        dsl::task_id.eq(t.task_id.clone()),
                        dsl::cycle_id.eq(cycle_id.to_owned()),
                        dsl::state.eq(t.state.as_str()),
                        dsl::backup_status.eq(legacy_status(t.state)),
                        dsl::backup_id.eq(String::new()),
                        dsl::project_id.eq(clip(&t.project_id, 100)),
                        dsl::volume_id.eq(clip(&t.volume_id, 100)),
                        dsl::volume_name.eq(clip(&t.volume_name, 100)),
                        dsl::instance_id.eq(clip(&t.instance_id, 100)),
                        dsl::instance_name.eq(clip(&t.instance_name, 100)),
                        dsl::incremental.eq(t.incremental),
                        dsl::backup_name.eq(clip(&t.backup_name, 255)),
                        (
                            dsl::force_backup.eq(t.force_backup),
                            dsl::availability_zone.eq(t.availability_zone.as_deref().map(|z| clip(z, 255))),
                            dsl::size_gb.eq(t.size_gb),
                            dsl::note.eq(t.note.as_deref().map(|n| clip(n, 1024))),
                            dsl::reason.eq(t.reason.as_deref().map(|r| clip(r, 1024))),
                            dsl::fencing_token.eq(token),
                            dsl::created_at.eq(now),
                            dsl::finished_at.eq(terminal.then_some(now)),
                        ),
                    )
                })
                .collect();
            for row in rows {
                diesel::insert_into(dsl::queue_data)
                    .values(row)
                    .execute(conn)
                    .map_err(DbError::query("queue_data insert plan"))?;
            }
        }
        super::stamps::insert(conn, cycle_id, stamps, now)?;
        Ok(Some(tasks.len()))
    })
}

/// Volumes with a task still to be worked on (planned, claimed, creating).
pub fn active_volume_ids(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    dsl::queue_data
        .filter(dsl::state.eq_any(["planned", "claimed", "creating"]))
        .select(dsl::volume_id)
        .load(conn)
        .map_err(DbError::query("queue_data active volumes"))
}

/// Claims tasks for `holder` until `now + ttl`: planned tasks, and claimed
/// tasks whose claim expired (their conductor died or stalled). `pick`
/// chooses among the candidates (oldest first) given the tasks in flight
/// everywhere (claimed or creating), so that concurrency limits hold across
/// all conductors; it returns the ids to claim. Claims are serialised by the
/// claim lock row; each increments the task's claim token (`attempts`).
pub fn claim(
    conn: &mut AnyConnection,
    holder: &str,
    now: NaiveDateTime,
    ttl: Duration,
    candidates_max: i64,
    pick: impl FnOnce(&[TaskRow], &[TaskRow]) -> Vec<i64>,
) -> Result<Vec<TaskRow>, DbError> {
    leases::ensure_lock_row(conn, CLAIM_LOCK)?;
    conn.transaction::<_, DbError, _>(|conn| {
        leases::lock(conn, CLAIM_LOCK)?;
        let in_flight: Vec<TaskRow> = dsl::queue_data
            .filter(dsl::state.eq("creating").or(dsl::state.eq("claimed").and(dsl::claimed_until.ge(now))))
            .select(TaskRow::as_select())
            .load(conn)
            .map_err(DbError::query("queue_data in flight"))?;
        let query = || {
            dsl::queue_data
                .filter(dsl::state.eq("planned").or(dsl::state.eq("claimed").and(dsl::claimed_until.lt(now))))
                .order(dsl::id.asc())
                .limit(candidates_max)
        };
        let candidates: Vec<TaskRow> = match conn {
            AnyConnection::Mysql(c) => query().for_update().skip_locked().select(TaskRow::as_select()).load(c),
            AnyConnection::Sqlite(c) => query().select(TaskRow::as_select()).load(c),
        }
        .map_err(DbError::query("queue_data claim candidates"))?;
        let ids = pick(&candidates, &in_flight);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(dsl::queue_data.filter(dsl::id.eq_any(&ids)))
            .set((
                dsl::state.eq("claimed"),
                dsl::backup_status.eq(legacy_status(TaskState::Claimed)),
                dsl::claimed_by.eq(holder),
                dsl::claimed_until.eq(now + ttl),
                dsl::attempts.eq(dsl::attempts + 1),
                dsl::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(DbError::query("queue_data claim"))?;
        dsl::queue_data
            .filter(dsl::id.eq_any(&ids))
            .order(dsl::id.asc())
            .select(TaskRow::as_select())
            .load(conn)
            .map_err(DbError::query("queue_data claimed"))
    })
}

/// Whether `holder` still holds the claim of task `id` with `token`; if so
/// the claim is extended to `now + ttl`, in the same statement. False when
/// the task was taken over (its token moved on) or is no longer claimed.
pub fn confirm_claim(
    conn: &mut AnyConnection,
    id: i64,
    holder: &str,
    token: i32,
    now: NaiveDateTime,
    ttl: Duration,
) -> Result<bool, DbError> {
    diesel::update(claimed_by_token(id, holder, token))
        .set((dsl::claimed_until.eq(now + ttl), dsl::updated_at.eq(now)))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("queue_data confirm claim"))
}

/// The query of [`claimed_by_token`].
type ClaimedByToken = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            diesel::dsl::Filter<dsl::queue_data, diesel::dsl::Eq<dsl::id, i64>>,
            diesel::dsl::Eq<dsl::state, &'static str>,
        >,
        diesel::dsl::Eq<dsl::claimed_by, String>,
    >,
    diesel::dsl::Eq<dsl::attempts, i32>,
>;

/// Task `id` while it is claimed by `holder` with `token`.
fn claimed_by_token(id: i64, holder: &str, token: i32) -> ClaimedByToken {
    dsl::queue_data
        .filter(dsl::id.eq(id))
        .filter(dsl::state.eq("claimed"))
        .filter(dsl::claimed_by.eq(holder.to_owned()))
        .filter(dsl::attempts.eq(token))
}

/// Cinder accepted the create of claimed task `id`: it is `creating` now.
/// False (nothing written) when `holder` no longer holds the claim with
/// `token`.
#[allow(clippy::too_many_arguments)]
pub fn mark_creating(
    conn: &mut AnyConnection,
    id: i64,
    holder: &str,
    token: i32,
    backup_id: &str,
    incremental: bool,
    note: Option<&str>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    diesel::update(claimed_by_token(id, holder, token))
        .set((
            dsl::state.eq("creating"),
            dsl::backup_status.eq(legacy_status(TaskState::Creating)),
            dsl::backup_id.eq(backup_id),
            dsl::incremental.eq(incremental),
            dsl::note.eq(note.map(|n| clip(n, 1024))),
            dsl::started_at.eq(Some(now)),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("queue_data mark creating"))
}

/// Ends claimed task `id` in `state` (failed or waiting) with `reason`, if
/// `holder` still holds its claim with `token`. False when it does not.
pub fn finish_claimed(
    conn: &mut AnyConnection,
    id: i64,
    holder: &str,
    token: i32,
    state: TaskState,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    diesel::update(claimed_by_token(id, holder, token))
        .set((
            dsl::state.eq(state.as_str()),
            dsl::backup_status.eq(legacy_status(state)),
            dsl::reason.eq(Some(clip(reason, 1024))),
            dsl::finished_at.eq(Some(now)),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("queue_data finish claimed"))
}

/// The backup of task `id` (`creating`, or `unfinished`: its cycle stopped
/// waiting) is available: the task is done and the backup is recorded in
/// `backup_data`, in one transaction. A task that was `unfinished` is
/// reported again (the digest said it was still running) with `note`. False
/// (and nothing written) when the task was in neither state (another
/// conductor completed it first).
pub fn complete(
    conn: &mut AnyConnection,
    id: i64,
    backup: &NewBackup,
    note: Option<&str>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(|conn| {
        let set = (
            dsl::state.eq("done"),
            dsl::backup_status.eq(legacy_status(TaskState::Done)),
            dsl::finished_at.eq(Some(now)),
            dsl::updated_at.eq(now),
        );
        let mut changed = diesel::update(dsl::queue_data.filter(dsl::id.eq(id)).filter(dsl::state.eq("creating")))
            .set(set)
            .execute(conn)
            .map_err(DbError::query("queue_data complete"))?;
        if changed == 0 {
            changed = diesel::update(dsl::queue_data.filter(dsl::id.eq(id)).filter(dsl::state.eq("unfinished")))
                .set((set, dsl::reported_at.eq(None::<NaiveDateTime>), dsl::note.eq(note.map(|n| clip(n, 1024)))))
                .execute(conn)
                .map_err(DbError::query("queue_data complete unfinished"))?;
        }
        if changed == 0 {
            return Ok(false);
        }
        match super::backups::insert(conn, backup) {
            Ok(_) => Ok(true),
            Err(err) if err.is_duplicate() => Ok(true),
            Err(err) => Err(err),
        }
    })
}

/// Ends task `id` in `state` (failed or waiting) with `reason`, if it is still
/// in one of `from`. False when it was not.
pub fn finish(
    conn: &mut AnyConnection,
    id: i64,
    from: &[TaskState],
    state: TaskState,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    diesel::update(dsl::queue_data.filter(dsl::id.eq(id)).filter(dsl::state.eq_any(from)))
        .set((
            dsl::state.eq(state.as_str()),
            dsl::backup_status.eq(legacy_status(state)),
            dsl::reason.eq(Some(clip(reason, 1024))),
            dsl::finished_at.eq(Some(now)),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
        .map_err(DbError::query("queue_data finish"))
}

/// The cycle of `creating` task `id` stops waiting for its backup, which is
/// left running: the task becomes `unfinished` with `reason`. False when it
/// was not `creating`.
pub fn give_up_waiting(conn: &mut AnyConnection, id: i64, reason: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    finish(conn, id, &[TaskState::Creating], TaskState::Unfinished, reason, now)
}

/// Records that the backup of task `id` (`creating` or `unfinished`) looks
/// stuck. True only for the first report, so it is reported once.
pub fn mark_stuck(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> Result<bool, DbError> {
    diesel::update(
        dsl::queue_data
            .filter(dsl::id.eq(id))
            .filter(dsl::state.eq_any(["creating", "unfinished"]))
            .filter(dsl::stuck_at.is_null()),
    )
    .set((dsl::stuck_at.eq(Some(now)), dsl::updated_at.eq(now)))
    .execute(conn)
    .map(|n| n == 1)
    .map_err(DbError::query("queue_data mark stuck"))
}

/// Per project, the backups being created (or left running by their cycle)
/// that were reported as possibly stuck: `(project_id, count)`.
pub fn stuck_by_project(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, DbError> {
    dsl::queue_data
        .filter(dsl::state.eq_any(["creating", "unfinished"]))
        .filter(dsl::stuck_at.is_not_null())
        .group_by(dsl::project_id)
        .select((dsl::project_id, diesel::dsl::count_star()))
        .order(dsl::project_id.asc())
        .load(conn)
        .map_err(DbError::query("queue_data stuck by project"))
}

/// Tasks in any of `states`, oldest first.
pub fn in_states(conn: &mut AnyConnection, states: &[TaskState]) -> Result<Vec<TaskRow>, DbError> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    dsl::queue_data
        .filter(dsl::state.eq_any(states))
        .order(dsl::id.asc())
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data in states"))
}

/// Tasks in one state, oldest first.
pub fn in_state(conn: &mut AnyConnection, state: TaskState) -> Result<Vec<TaskRow>, DbError> {
    dsl::queue_data
        .filter(dsl::state.eq(state.as_str()))
        .order(dsl::id.asc())
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data in state"))
}

/// The tasks of one cycle.
pub fn of_cycle(conn: &mut AnyConnection, cycle_id: &str) -> Result<Vec<TaskRow>, DbError> {
    dsl::queue_data
        .filter(dsl::cycle_id.eq(cycle_id))
        .order(dsl::id.asc())
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data of cycle"))
}

/// The state and end of the tasks of cycle `cycle_id` for `volume_ids`
/// (one per volume and cycle), for deciding the stamps of their servers.
pub fn outcomes(
    conn: &mut AnyConnection,
    cycle_id: &str,
    volume_ids: &[&str],
) -> Result<Vec<(String, String, Option<NaiveDateTime>)>, DbError> {
    dsl::queue_data
        .filter(dsl::cycle_id.eq(cycle_id))
        .filter(dsl::volume_id.eq_any(volume_ids))
        .select((dsl::volume_id, dsl::state, dsl::finished_at))
        .load(conn)
        .map_err(DbError::query("queue_data outcomes"))
}

/// Whether a task of cycle `cycle_id` is still to be worked on (planned,
/// claimed or creating): one indexed probe, not the cycle's rows.
pub fn cycle_has_active(conn: &mut AnyConnection, cycle_id: &str) -> Result<bool, DbError> {
    let active: Vec<&str> = TaskState::ALL.iter().filter(|s| s.is_active()).map(|s| s.as_str()).collect();
    diesel::select(diesel::dsl::exists(
        dsl::queue_data.filter(dsl::state.eq_any(active)).filter(dsl::cycle_id.eq(cycle_id)),
    ))
    .get_result(conn)
    .map_err(DbError::query("queue_data cycle active"))
}

/// Newest tasks first, optionally of one state and/or project.
pub fn list(
    conn: &mut AnyConnection,
    state: Option<TaskState>,
    project_id: Option<&str>,
    limit: i64,
) -> Result<Vec<TaskRow>, DbError> {
    let mut query = dsl::queue_data.filter(dsl::state.ne("legacy")).into_boxed();
    if let Some(state) = state {
        query = query.filter(dsl::state.eq(state.as_str()));
    }
    if let Some(project) = project_id {
        query = query.filter(dsl::project_id.eq(project.to_owned()));
    }
    query
        .order(dsl::id.desc())
        .limit(limit)
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data list"))
}

/// How many tasks are in each state.
pub fn counts_by_state(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, DbError> {
    dsl::queue_data
        .group_by(dsl::state)
        .select((dsl::state, diesel::dsl::count_star()))
        .load(conn)
        .map_err(DbError::query("queue_data counts"))
}

/// The states a digest reports (the task has ended).
const REPORTABLE: [&str; 5] = ["done", "failed", "skipped", "waiting", "unfinished"];

/// Finished tasks not reported yet (no digest has carried them), oldest first.
pub fn unreported(conn: &mut AnyConnection) -> Result<Vec<TaskRow>, DbError> {
    dsl::queue_data
        .filter(dsl::reported_at.is_null())
        .filter(dsl::state.eq_any(REPORTABLE))
        .order(dsl::id.asc())
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data unreported"))
}

/// [`unreported`] of the cycles that have closed (and of `project` when
/// given): what a digest round may carry. Tasks of an open backup cycle stay
/// in the database; mid-cycle at 10,000 volumes they are thousands of rows
/// that a round would read on every poll only to leave them.
pub fn unreported_of_closed_cycles(conn: &mut AnyConnection, project: Option<&str>) -> Result<Vec<TaskRow>, DbError> {
    let open =
        cycles::cycles.filter(cycles::kind.eq("backup")).filter(cycles::finished_at.is_null()).select(cycles::id);
    let mut query = dsl::queue_data
        .filter(dsl::reported_at.is_null())
        .filter(dsl::state.eq_any(REPORTABLE))
        .filter(dsl::cycle_id.ne_all(open))
        .into_boxed();
    if let Some(project) = project {
        query = query.filter(dsl::project_id.eq(project.to_owned()));
    }
    query.order(dsl::id.asc()).select(TaskRow::as_select()).load(conn).map_err(DbError::query("queue_data unreported"))
}

/// Marks tasks as reported (their digest was delivered).
pub fn mark_reported(conn: &mut AnyConnection, ids: &[i64]) -> Result<usize, DbError> {
    let now = now();
    let mut total = 0;
    for chunk in ids.chunks(500) {
        total += diesel::update(dsl::queue_data.filter(dsl::id.eq_any(chunk)))
            .set(dsl::reported_at.eq(Some(now)))
            .execute(conn)
            .map_err(DbError::query("queue_data mark reported"))?;
    }
    Ok(total)
}

/// Marks cycle `id` finished at `at` (the conductor's clock, as its
/// `started_at`) with a one-line summary.
pub fn finish_cycle(conn: &mut AnyConnection, id: &str, summary: &str, at: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(cycles::cycles.find(id))
        .set((cycles::finished_at.eq(Some(at)), cycles::summary.eq(Some(clip(summary, 1024)))))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::query("cycles finish"))
}

/// Records how full a backup cycle kept its slots (see
/// `conductor::backup::limits::Utilisation`).
pub fn set_slot_utilisation(conn: &mut AnyConnection, id: &str, value: f64) -> Result<(), DbError> {
    diesel::update(cycles::cycles.find(id))
        .set(cycles::slot_utilisation.eq(Some(value)))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::query("cycles slot utilisation"))
}

/// The newest cycle of a kind.
pub fn latest_cycle(conn: &mut AnyConnection, kind: &str) -> Result<Option<CycleRow>, DbError> {
    cycles::cycles
        .filter(cycles::kind.eq(kind))
        .order(cycles::started_at.desc())
        .select(CycleRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::query("cycles latest"))
}

/// Cycles of a kind that are planned but not finished.
pub fn open_cycles(conn: &mut AnyConnection, kind: &str) -> Result<Vec<CycleRow>, DbError> {
    cycles::cycles
        .filter(cycles::kind.eq(kind))
        .filter(cycles::finished_at.is_null())
        .order(cycles::started_at.asc())
        .select(CycleRow::as_select())
        .load(conn)
        .map_err(DbError::query("cycles open"))
}

/// Whether a task of the queue recorded Cinder backup `backup_id` (it made
/// it, or is making it: the id is recorded as soon as Cinder accepts the
/// create, before the backup is available).
pub fn records_backup(conn: &mut AnyConnection, backup_id: &str) -> Result<bool, DbError> {
    let found: Option<i64> = dsl::queue_data
        .filter(dsl::backup_id.eq(backup_id))
        .select(dsl::id)
        .first(conn)
        .optional()
        .map_err(DbError::query("queue_data by backup id"))?;
    Ok(found.is_some())
}

/// Whether task `task_id` exists and has recorded no backup other than
/// `backup_id`: a backup whose `__staffeln_task_id` metadata names it is then
/// that task's, even before the task recorded the backup's id.
pub fn task_may_own(conn: &mut AnyConnection, task_id: &str, backup_id: &str) -> Result<bool, DbError> {
    let recorded: Option<String> = dsl::queue_data
        .filter(dsl::task_id.eq(task_id))
        .select(dsl::backup_id)
        .first(conn)
        .optional()
        .map_err(DbError::query("queue_data by task id"))?;
    Ok(recorded.is_some_and(|r| r.is_empty() || r == backup_id))
}

/// The tasks that made these backups (by Cinder backup id), for their names
/// and sizes.
pub fn by_backup_ids(conn: &mut AnyConnection, backup_ids: &[String]) -> Result<Vec<TaskRow>, DbError> {
    if backup_ids.is_empty() {
        return Ok(Vec::new());
    }
    dsl::queue_data
        .filter(dsl::backup_id.eq_any(backup_ids))
        .select(TaskRow::as_select())
        .load(conn)
        .map_err(DbError::query("queue_data by backup ids"))
}

/// How many tasks each project has in each state: `(project_id, state, count)`.
pub fn counts_by_project_and_state(conn: &mut AnyConnection) -> Result<Vec<(String, String, i64)>, DbError> {
    dsl::queue_data
        .group_by((dsl::project_id, dsl::state))
        .select((dsl::project_id, dsl::state, diesel::dsl::count_star()))
        .order((dsl::project_id.asc(), dsl::state.asc()))
        .load(conn)
        .map_err(DbError::query("queue_data counts by project"))
}

/// Per project, the done tasks whose backup is no longer recorded in
/// `backup_data` (retention deleted and forgot it): `(project_id, count)`.
pub fn forgotten_by_project(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, DbError> {
    use super::schema::backup_data::dsl as backups;
    dsl::queue_data
        .filter(dsl::state.eq("done"))
        .filter(diesel::dsl::not(dsl::backup_id.eq_any(backups::backup_data.select(backups::backup_id))))
        .group_by(dsl::project_id)
        .select((dsl::project_id, diesel::dsl::count_star()))
        .order(dsl::project_id.asc())
        .load(conn)
        .map_err(DbError::query("queue_data forgotten backups"))
}

/// The newest finished cycle of a kind.
pub fn latest_finished_cycle(conn: &mut AnyConnection, kind: &str) -> Result<Option<CycleRow>, DbError> {
    cycles::cycles
        .filter(cycles::kind.eq(kind))
        .filter(cycles::finished_at.is_not_null())
        .order(cycles::started_at.desc())
        .select(CycleRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::query("cycles latest finished"))
}

/// Projects whose tasks in cycle `cycle_id` failed because the service user
/// has no role there (the worker's reason starts with `no role in project`).
pub fn projects_without_role(conn: &mut AnyConnection, cycle_id: &str) -> Result<Vec<String>, DbError> {
    dsl::queue_data
        .filter(dsl::cycle_id.eq(cycle_id))
        .filter(dsl::state.eq("failed"))
        .filter(dsl::reason.like("no role in project%"))
        .select(dsl::project_id)
        .distinct()
        .order(dsl::project_id.asc())
        .load(conn)
        .map_err(DbError::query("queue_data projects without role"))
}

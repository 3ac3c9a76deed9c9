//! `leases`: named, expiring leases with a fencing token.
//!
//! The conductor that holds the `backup-cycle` lease discovers and plans; the
//! others only execute. A lease is taken when it is free or expired and
//! renewed by its holder; every change of holder increments `token`, so work
//! planned under an old token can be refused ([`holds`]). Each step is one
//! atomic statement, so two conductors racing for a lease never both win.
//! Expiry uses the conductors' clocks (`models::now`, or the `now` the
//! conductor passes to the `_at` variants): keep them in NTP sync, and keep
//! the lease time well above the clock skew.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::error::DbError;
use super::models::now;
use super::pool::AnyConnection;
use super::schema::leases::dsl;

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = super::schema::leases)]
#[diesel(check_for_backend(diesel::mysql::Mysql, diesel::sqlite::Sqlite))]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub expires_at: NaiveDateTime,
}

/// Reads lease `name`.
pub fn get(conn: &mut AnyConnection, name: &str) -> Result<Option<Lease>, DbError> {
    dsl::leases.find(name).select(Lease::as_select()).first(conn).optional().map_err(DbError::query("leases get"))
}

/// What [`acquire_at`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// `holder` holds the lease now, with this fencing token.
    Held(i64),
    /// Another holder's lease has not expired: who, and until when.
    Taken(Lease),
}

/// Takes or renews lease `name` for `holder` for `ttl`. Returns the fencing
/// token when `holder` holds the lease afterwards, `None` when another
/// holder's lease has not expired.
pub fn acquire(conn: &mut AnyConnection, name: &str, holder: &str, ttl: Duration) -> Result<Option<i64>, DbError> {
    Ok(match acquire_at(conn, name, holder, ttl, now())? {
        Acquired::Held(token) => Some(token),
        Acquired::Taken(_) => None,
    })
}

/// [`acquire`] at the caller's `now` (the conductor's clock), saying who
/// holds the lease when it is not free.
pub fn acquire_at(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: NaiveDateTime,
) -> Result<Acquired, DbError> {
    let until = now + ttl;
    let renewed = diesel::update(dsl::leases.filter(dsl::name.eq(name)).filter(dsl::holder.eq(holder)))
        .set((dsl::expires_at.eq(until), dsl::updated_at.eq(now)))
        .execute(conn)
        .map_err(DbError::query("leases renew"))?;
    if renewed == 0 {
        let taken = diesel::update(dsl::leases.filter(dsl::name.eq(name)).filter(dsl::expires_at.lt(now)))
            .set((
                dsl::holder.eq(holder),
                dsl::token.eq(dsl::token + 1),
                dsl::expires_at.eq(until),
                dsl::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(DbError::query("leases take over"))?;
        if taken == 0 {
            let inserted = diesel::insert_into(dsl::leases)
                .values((
                    dsl::name.eq(name),
                    dsl::holder.eq(holder),
                    dsl::token.eq(1_i64),
                    dsl::expires_at.eq(until),
                    dsl::updated_at.eq(now),
                ))
                .execute(conn);
            match inserted {
                Ok(_) => {}
                // Someone else holds it, or created it just now: say who.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                Err(source) => return Err(DbError::Query { query: "leases insert", source }),
            }
        }
    }
    match get(conn, name)? {
        Some(lease) if lease.holder == holder => Ok(Acquired::Held(lease.token)),
        Some(lease) => Ok(Acquired::Taken(lease)),
        // Deleted between the statements (nothing deletes leases): not ours.
        None => Ok(Acquired::Taken(Lease { name: name.to_owned(), holder: String::new(), token: 0, expires_at: now })),
    }
}

/// Takes the turn `name` for `every` when the last turn (anyone's, also
/// `holder`'s own) has run out: true when `holder` has it now. Unlike a lease
/// it is never renewed, so conductors that try it each interval share one
/// turn per interval among them. One atomic statement decides a race.
pub fn take_turn(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    every: Duration,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let until = now + every;
    let taken = diesel::update(dsl::leases.filter(dsl::name.eq(name)).filter(dsl::expires_at.le(now)))
        .set((
            dsl::holder.eq(holder),
            dsl::token.eq(dsl::token + 1),
            dsl::expires_at.eq(until),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(DbError::query("leases take turn"))?;
    if taken > 0 {
        return Ok(true);
    }
    if get(conn, name)?.is_some() {
        return Ok(false);
    }
    let inserted = diesel::insert_into(dsl::leases)
        .values((
            dsl::name.eq(name),
            dsl::holder.eq(holder),
            dsl::token.eq(1_i64),
            dsl::expires_at.eq(until),
            dsl::updated_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(source) => Err(DbError::Query { query: "leases insert turn", source }),
    }
}

/// Whether `holder` still holds lease `name` with `token` and it has not expired.
pub fn holds(conn: &mut AnyConnection, name: &str, holder: &str, token: i64) -> Result<bool, DbError> {
    Ok(get(conn, name)?.is_some_and(|l| l.holder == holder && l.token == token && l.expires_at >= now()))
}

/// Gives lease `name` up (it expires at once) if `holder` holds it.
pub fn release(conn: &mut AnyConnection, name: &str, holder: &str) -> Result<(), DbError> {
    release_at(conn, name, holder, now()).map(drop)
}

/// [`release`] at the caller's `now`; true when `holder` held the lease.
pub fn release_at(conn: &mut AnyConnection, name: &str, holder: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let past = now - Duration::seconds(1);
    diesel::update(
        dsl::leases.filter(dsl::name.eq(name)).filter(dsl::holder.eq(holder)).filter(dsl::expires_at.ge(now)),
    )
    .set((dsl::expires_at.eq(past), dsl::updated_at.eq(now)))
    .execute(conn)
    .map(|n| n > 0)
    .map_err(DbError::query("leases release"))
}

/// Makes sure a lock row `name` exists (for [`lock`]); idempotent.
pub fn ensure_lock_row(conn: &mut AnyConnection, name: &str) -> Result<(), DbError> {
    let inserted = diesel::insert_into(dsl::leases)
        .values((
            dsl::name.eq(name),
            dsl::holder.eq(""),
            dsl::token.eq(0_i64),
            dsl::expires_at.eq(now()),
            dsl::updated_at.eq(now()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
        Err(source) => Err(DbError::Query { query: "leases insert lock row", source }),
    }
}

/// Inside a transaction: writes lock row `name`, which serialises every
/// transaction that does the same until it ends (a row lock on MySQL, the
/// write lock on SQLite). Used by the claim query so that concurrency limits
/// are counted exactly.
pub fn lock(conn: &mut AnyConnection, name: &str) -> Result<(), DbError> {
    diesel::update(dsl::leases.find(name))
        .set(dsl::updated_at.eq(now()))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::query("leases lock"))
}

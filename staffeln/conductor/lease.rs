//! The conductor's leases, on its clock: take or renew one, keep it renewed
//! while a long piece of work runs (discovery and planning, a retention run,
//! a round of digests), and give them all up on a graceful stop so that the
//! other conductors need not wait for them to expire.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::error::ConductorError;
use super::node::{Conductor, naive};
use crate::db::leases::{self, Acquired};

/// The lease of the conductor that discovers and plans backup cycles.
pub const BACKUP_LEASE: &str = "backup-cycle";
/// The lease of the conductor that runs retention.
pub const RETENTION_LEASE: &str = "retention-cycle";
/// The lease of the conductor that sends a round of digests.
pub const REPORT_LEASE: &str = "report-round";
/// The turn to list the backups being created: one conductor per interval.
pub const POLL_TURN: &str = "backup-poll";

/// Another conductor holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHeld {
    /// Its holder, `host:pid`.
    pub holder: String,
    /// When it runs out unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl LeaseHeld {
    /// `host` of `host:pid`.
    pub fn host(&self) -> &str {
        self.holder.rsplit_once(':').map_or(self.holder.as_str(), |(host, _pid)| host)
    }
}

/// How often a lease of `ttl` is renewed while work runs: three times per
/// lease time, so that one missed renewal (a slow database) loses nothing.
pub fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::seconds(1))
}

impl Conductor {
    /// Takes or renews lease `name` for `ttl` on the conductor's clock: the
    /// fencing token, or who holds it.
    pub async fn take_lease(
        &self,
        name: &'static str,
        ttl: Duration,
    ) -> Result<Result<i64, LeaseHeld>, ConductorError> {
        self.take_lease_at(name, ttl, self.clock.now()).await
    }

    /// [`Conductor::take_lease`] as of `now` (the lease runs until `now + ttl`).
    async fn take_lease_at(
        &self,
        name: &'static str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<i64, LeaseHeld>, ConductorError> {
        let holder = self.holder.clone();
        let now = naive(now);
        let acquired = self.db_call(move |conn| leases::acquire_at(conn, name, &holder, ttl, now)).await?;
        Ok(match acquired {
            Acquired::Held(token) => Ok(token),
            Acquired::Taken(lease) => Err(LeaseHeld { holder: lease.holder, expires_at: lease.expires_at.and_utc() }),
        })
    }

    /// Takes the turn `name` for `every` when the last one ran out (see
    /// [`leases::take_turn`]): true when this conductor has it.
    pub async fn take_turn(&self, name: &'static str, every: Duration) -> Result<bool, ConductorError> {
        let holder = self.holder.clone();
        let now = naive(self.clock.now());
        self.db_call(move |conn| leases::take_turn(conn, name, &holder, every, now)).await
    }

    /// Runs `work` while renewing lease `name` (held with `token`) every
    /// [`renew_every`]. `None` when another conductor took the lease before
    /// `work` finished: the work is dropped, its result would not count. A
    /// renewal the database refuses is retried at the next tick (the lease
    /// outlives two of them). Each renewal is due `every` after the moment
    /// the previous one took effect, not after its database call returned:
    /// a slow database does not stretch the gaps (found on an emulated clock
    /// that moved on while a renewal was being written).
    pub async fn with_lease<T>(
        &self,
        name: &'static str,
        token: i64,
        ttl: Duration,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let every = renew_every(ttl);
        let renew = async {
            let mut renewed = self.clock.now();
            loop {
                self.clock.sleep_until(renewed + every).await;
                renewed = self.clock.now();
                match self.take_lease_at(name, ttl, renewed).await {
                    Ok(Ok(held)) if held == token => {}
                    Ok(Ok(_)) => {
                        warn!("lease {name} changed hands while this conductor worked under it; its work is dropped");
                        return;
                    }
                    Ok(Err(other)) => {
                        warn!(
                            "conductor {} took lease {name} while this conductor worked under it; its work is dropped",
                            other.holder
                        );
                        return;
                    }
                    Err(err) => {
                        warn!("cannot renew lease {name}, retried in {} s: {err}", every.num_seconds())
                    }
                }
            }
        };
        tokio::select! {
            biased;
            out = work => Some(out),
            () = renew => None,
        }
    }

    /// Gives up every lease this conductor holds (graceful stop): the other
    /// conductors and on-demand triggers need not wait for them to expire.
    pub async fn release_leases(&self) {
        for name in [BACKUP_LEASE, RETENTION_LEASE, REPORT_LEASE] {
            let holder = self.holder.clone();
            let now = naive(self.clock.now());
            match self.db_call(move |conn| leases::release_at(conn, name, &holder, now)).await {
                Ok(true) => info!("released lease {name}"),
                Ok(false) => {}
                Err(err) => warn!("cannot release lease {name}; it expires on its own: {err}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_renewed_three_times_per_lease_time() {
        assert_eq!(renew_every(Duration::seconds(120)), Duration::seconds(40));
        assert_eq!(renew_every(Duration::seconds(2)), Duration::seconds(1), "at most once a second");
        let held = LeaseHeld { holder: "node-a.example:4242".into(), expires_at: DateTime::<Utc>::MIN_UTC };
        assert_eq!(held.host(), "node-a.example");
    }
}

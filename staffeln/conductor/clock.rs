//! The conductor's time. In production it is the wall clock; tests and
//! simulations use an emulated clock (the wall clock plus an offset they push
//! forward, like the fake cloud's), so that hours of waiting for a backup,
//! claims that expire and retries that come due never need real sleeps.
//!
//! The worker reads "now" only from here and hands it to the database
//! functions it calls, so claim expiry, start and end times and retry times
//! all follow the same clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};

/// Where "now" comes from. Cheap to clone; clones of an emulated clock share
/// its offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the wall clock. `Some`: the wall clock plus this many
    /// microseconds.
    offset_us: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The wall clock plus an offset that [`Clock::advance`] pushes forward.
    pub fn emulated() -> Clock {
        Clock { offset_us: Some(Arc::new(AtomicI64::new(0))) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.offset_us.as_ref().map_or(0, |o| o.load(Ordering::SeqCst));
        Utc::now() + Duration::microseconds(offset)
    }

    /// Now as the database stores it (UTC, microseconds).
    pub fn db_now(&self) -> NaiveDateTime {
        self.now().naive_utc().trunc_subsecs(6)
    }

    /// Moves an emulated clock forward (and every clone of it). Returns false
    /// (and changes nothing) for the wall clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.offset_us {
            Some(offset) => {
                offset.fetch_add(by.num_microseconds().unwrap_or(i64::MAX / 2), Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emulated_clock_moves_with_its_clones_and_the_wall_clock_does_not() {
        let clock = Clock::emulated();
        let clone = clock.clone();
        let before = clock.now();
        assert!(clone.advance(Duration::hours(2)));
        assert!(clock.now() - before >= Duration::hours(2));
        let wall = Clock::system();
        assert!(!wall.advance(Duration::hours(2)));
        assert!((wall.now() - Utc::now()).num_seconds().abs() < 5);
    }
}

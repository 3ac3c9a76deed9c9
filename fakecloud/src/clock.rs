//! Emulated time: the wall clock plus an offset tests can push forward, so
//! that token expiry and backup completion never need real sleeps. A
//! frozen clock (`FakeOptions::frozen_clock`) stands still between
//! advances: a benchmark that steps time itself then sees a backup made at
//! `t` complete at exactly `t + backup_duration`, however long the machine
//! took between two steps.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset: Duration,
    /// The instant a frozen clock stands at, before its offset.
    frozen: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock that moves only when advanced, from the wall clock's now.
    pub fn frozen() -> Clock {
        Clock { offset: Duration::zero(), frozen: Some(Utc::now()) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.frozen.unwrap_or_else(Utc::now) + self.offset
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }
}

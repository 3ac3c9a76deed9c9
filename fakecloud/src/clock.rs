//! Emulated time: the wall clock plus an offset tests can push forward, so
//! that token expiry and backup completion never need real sleeps.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset: Duration,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }
}

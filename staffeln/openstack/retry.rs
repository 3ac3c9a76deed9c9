//! When to try a request again, and how long to wait first: a pure schedule.
//!
//! * Retried: 5xx answers, 429, connection errors and timeouts.
//! * Never retried: any status in `skip_retry_codes` (default 404) and every
//!   other 4xx (the request itself is wrong; it will not get better).
//! * A request that is not idempotent (backup create) is retried only when the
//!   cloud surely did not act on it: the connection was never made, or the
//!   answer was 429 or 503. A 500/502/504 or a timeout after sending may mean
//!   the backup exists, and a second POST would make a second one.
//! * Waits use exponential backoff with full jitter: attempt `n` (from 0)
//!   waits a uniform random time in `[0, min(max_interval, initial·2ⁿ)]`.
//!   A `Retry-After` from a 429/503 replaces the random wait (still capped by
//!   `max_interval`).
//! * Nothing is retried once the total time, including the next wait, would
//!   pass `retry_timeout`.

use std::time::Duration;

/// First backoff ceiling; doubled per attempt up to `max_interval`.
pub const INITIAL_INTERVAL: Duration = Duration::from_millis(500);

/// The retry rules of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total time budget for one call, all attempts and waits included.
    pub retry_timeout: Duration,
    /// Longest single wait.
    pub max_interval: Duration,
    /// Statuses never retried, whatever their class.
    pub skip_codes: Vec<u16>,
    pub initial_interval: Duration,
}

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered with an error status.
    Status { code: u16, retry_after: Option<Duration> },
    /// No connection could be made: the request never left.
    ConnectFailed,
    /// The request may have been sent, but no (complete) answer came back.
    NoAnswer,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// Decides after the failed attempt number `attempt` (0 = the first),
    /// `elapsed` after the call started. `jitter` is a random number in
    /// `[0, 1)`; callers pass `rand::random()`, tests pass fixed values.
    pub fn decide(&self, outcome: Outcome, idempotent: bool, attempt: u32, elapsed: Duration, jitter: f64) -> Decision {
        if !self.is_retryable(outcome, idempotent) {
            return Decision::GiveUp;
        }
        let wait = match outcome {
            Outcome::Status { retry_after: Some(after), code: 429 | 503 } => after.min(self.max_interval),
            _ => self.backoff(attempt, jitter),
        };
        if elapsed.saturating_add(wait) > self.retry_timeout {
            return Decision::GiveUp;
        }
        Decision::RetryAfter(wait)
    }

    /// Whether this kind of failure is worth another attempt at all.
    pub fn is_retryable(&self, outcome: Outcome, idempotent: bool) -> bool {
        match outcome {
            Outcome::Status { code, .. } if self.skip_codes.contains(&code) => false,
            Outcome::Status { code: 429 | 503, .. } => true,
            Outcome::Status { code, .. } => idempotent && (500..600).contains(&code),
            Outcome::ConnectFailed => true,
            Outcome::NoAnswer => idempotent,
        }
    }

    /// The full-jitter wait before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        ceiling.mul_f64(jitter)
    }

    /// The upper bound of the wait before attempt `attempt + 1`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        self.initial_interval.saturating_mul(factor).min(self.max_interval)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 7231).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retry_timeout: Duration::from_secs(300),
            max_interval: Duration::from_secs(30),
            skip_codes: vec![404],
            initial_interval: INITIAL_INTERVAL,
        }
    }

    fn status(code: u16) -> Outcome {
        Outcome::Status { code, retry_after: None }
    }

    #[test]
    fn ceilings_double_up_to_the_max_interval() {
        let p = policy();
        let ceilings: Vec<u64> = (0..10).map(|a| p.ceiling(a).as_millis() as u64).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling() {
        let p = policy();
        for attempt in 0..12 {
            for jitter in [0.0, 0.25, 0.5, 0.999_999, 1.0, -3.0, 7.0, f64::NAN] {
                let wait = p.backoff(attempt, jitter);
                assert!(wait <= p.ceiling(attempt), "attempt {attempt} jitter {jitter}: {wait:?}");
                assert!(wait <= p.max_interval);
            }
        }
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn which_failures_are_retried() {
        let p = policy();
        let cases: &[(Outcome, bool, bool)] = &[
            (status(500), true, true),
            (status(502), true, true),
            (status(504), true, true),
            (status(503), true, true),
            (status(429), true, true),
            (status(404), true, false), // skip code
            (status(400), true, false), // other 4xx
            (status(401), true, false),
            (status(409), true, false),
            (status(413), true, false), // Cinder quota
            (Outcome::ConnectFailed, true, true),
            (Outcome::NoAnswer, true, true),
            // not idempotent: only when the cloud surely did nothing
            (status(500), false, false),
            (status(502), false, false),
            (status(503), false, true),
            (status(429), false, true),
            (Outcome::ConnectFailed, false, true),
            (Outcome::NoAnswer, false, false),
        ];
        for &(outcome, idempotent, expected) in cases {
            assert_eq!(p.is_retryable(outcome, idempotent), expected, "{outcome:?} idempotent={idempotent}");
        }
        let mut p = policy();
        p.skip_codes = vec![404, 503];
        assert!(!p.is_retryable(status(503), true));
    }

    #[test]
    fn retry_after_replaces_the_jitter_but_not_the_cap() {
        let p = policy();
        let after = |secs| Outcome::Status { code: 503, retry_after: Some(Duration::from_secs(secs)) };
        assert_eq!(p.decide(after(7), true, 0, Duration::ZERO, 0.0), Decision::RetryAfter(Duration::from_secs(7)));
        assert_eq!(p.decide(after(0), true, 5, Duration::ZERO, 0.9), Decision::RetryAfter(Duration::ZERO));
        assert_eq!(p.decide(after(600), true, 0, Duration::ZERO, 0.0), Decision::RetryAfter(Duration::from_secs(30)));
        let too_many = Outcome::Status { code: 429, retry_after: Some(Duration::from_secs(3)) };
        assert_eq!(p.decide(too_many, false, 0, Duration::ZERO, 0.0), Decision::RetryAfter(Duration::from_secs(3)));
    }

    #[test]
    fn the_total_budget_bounds_every_wait() {
        let p = policy();
        // the next wait would end past retry_timeout
        assert_eq!(p.decide(status(500), true, 6, Duration::from_secs(290), 1.0), Decision::GiveUp);
        assert_eq!(
            p.decide(status(500), true, 6, Duration::from_secs(260), 1.0),
            Decision::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(p.decide(status(500), true, 0, Duration::from_secs(301), 0.0), Decision::GiveUp);
        // summing a worst-case schedule never passes the budget
        let mut elapsed = Duration::ZERO;
        let mut attempt = 0;
        while let Decision::RetryAfter(wait) = p.decide(status(502), true, attempt, elapsed, 1.0) {
            elapsed += wait;
            attempt += 1;
        }
        assert!(elapsed <= p.retry_timeout);
        assert!(attempt > 5, "{attempt}");
    }

    #[test]
    fn retry_after_header_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().to_utc();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}

//! When the next cycle runs: a cron expression in a time zone, a period in
//! seconds, or both (whichever comes first). Pure: `now` is an argument.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::conf::SettingsError;

/// A cron expression and/or a period.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Option<(Cron, Tz)>,
    period: Option<Duration>,
}

impl Schedule {
    /// `cron` (the value of `[conductor] <cron_option>`) in zone `tz`;
    /// empty means no cron; `period` zero means no period. With neither, the
    /// schedule never fires (only on-demand triggers run).
    pub fn new(cron_option: &str, cron: &str, tz: Tz, period: Duration) -> Result<Schedule, SettingsError> {
        let cron = match cron.trim() {
            "" => None,
            expr => Some((
                Cron::from_str(expr).map_err(|e| {
                    SettingsError::new(
                        "conductor",
                        cron_option,
                        cron,
                        "expected a cron expression such as \"0 2 * * *\"",
                    )
                    .caused_by(e)
                })?,
                tz,
            )),
        };
        let period = (period > Duration::zero()).then_some(period);
        Ok(Schedule { cron, period })
    }

    /// When the next cycle is due, given when the last one started
    /// (`last_run`, from the database) and when this conductor started
    /// (`since`, the reference when no cycle ever ran): a period fires
    /// `period` after the last run (at once when none ran), a cron
    /// expression at its first occurrence after the last run (or after
    /// `since`). The earlier of the two wins; `None` when neither is set.
    pub fn next_due(&self, last_run: Option<DateTime<Utc>>, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let by_period = self.period.map(|p| last_run.map_or(since, |last| last + p));
        let by_cron = self.cron.as_ref().and_then(|(cron, tz)| {
            let from = last_run.unwrap_or(since).with_timezone(tz);
            cron.find_next_occurrence(&from, false).ok().map(|t| t.with_timezone(&Utc))
        });
        match (by_period, by_cron) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap_or_default()
    }

    #[test]
    fn a_period_fires_at_once_then_every_period() {
        let s = Schedule::new("backup_schedule", "", Tz::UTC, Duration::seconds(1800)).unwrap();
        let now = at(2026, 11, 25, 12, 0);
        assert_eq!(s.next_due(None, now), Some(now), "never ran: due at start");
        assert_eq!(s.next_due(Some(now - Duration::minutes(10)), now), Some(now + Duration::minutes(20)));
        let overdue = s.next_due(Some(now - Duration::hours(2)), now).unwrap();
        assert!(overdue <= now, "overdue is due");
    }

    #[test]
    fn cron_follows_the_zone_and_moves_past_a_dst_gap() {
        let s = Schedule::new("backup_schedule", "30 2 * * *", Tz::Europe__Berlin, Duration::zero()).unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: croner moves to 03:00 local = 01:00 UTC.
        let next = s.next_due(None, at(2026, 3, 28, 12, 0)).unwrap();
        assert_eq!(next, at(2026, 3, 29, 1, 0));
        let after = s.next_due(Some(next), at(2026, 3, 28, 12, 0)).unwrap();
        assert_eq!(after, at(2026, 3, 30, 0, 30), "02:30 CEST");
        // A cron schedule stays due once its time has passed, until a cycle runs.
        assert_eq!(s.next_due(None, at(2026, 3, 28, 12, 0)), Some(next));
    }

    #[test]
    fn the_earlier_of_cron_and_period_wins() {
        let s = Schedule::new("c", "0 * * * *", Tz::UTC, Duration::seconds(7200)).unwrap();
        let now = at(2026, 11, 25, 12, 10);
        assert_eq!(s.next_due(Some(now), now), Some(at(2026, 11, 25, 13, 0)));
    }

    #[test]
    fn bad_options_are_named() {
        let err = Schedule::new("backup_schedule", "every day", Tz::UTC, Duration::zero()).unwrap_err();
        assert!(err.to_string().starts_with("[conductor] backup_schedule = \"every day\": expected a cron"), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "croner's reason is kept as the cause");
        assert!(
            Schedule::new("c", "", Tz::UTC, Duration::zero()).unwrap().next_due(None, at(2026, 1, 1, 0, 0)).is_none()
        );
    }
}

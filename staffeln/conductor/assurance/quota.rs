//! Quota foresight (pure): on which day a project's `backups` or
//! `backup_gigabytes` quota runs out, cycle by cycle from what each cycle
//! adds and what retention frees, and whether that day is within the
//! warning horizon.
//!
//! The model: every cycle (one `cycle` apart, the first at `next_cycle`)
//! adds `per_cycle` backups; the backups that exist now go when retention
//! expires them (`expiries`), and each backup a cycle adds goes `retention`
//! after it is made. A cycle fails when what it adds does not fit under the
//! limit with what is still held: the projected exhaustion is that cycle.

use chrono::{DateTime, Duration, Utc};

use crate::objects::{BackupQuota, ProjectId};

/// Cycles projected at most (past that, "not within a year" is the answer).
const MAX_CYCLES: i64 = 100_000;

/// What one cycle adds to a project.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Growth {
    pub backups: f64,
    pub gigabytes: f64,
}

impl Growth {
    /// The average per cycle over recent cycles' `(backups, gigabytes)`
    /// made (the newest last); none: nothing.
    pub fn average(cycles: &[(u64, u64)]) -> Growth {
        if cycles.is_empty() {
            return Growth::default();
        }
        let n = cycles.len() as f64;
        let (b, g) = cycles.iter().fold((0u64, 0u64), |(b, g), (cb, cg)| (b + cb, g + cg));
        Growth { backups: b as f64 / n, gigabytes: g as f64 / n }
    }
}

/// Which quota runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Backups,
    Gigabytes,
}

impl Resource {
    /// Cinder's name of the quota.
    pub fn as_str(&self) -> &'static str {
        match self {
            Resource::Backups => "backups",
            Resource::Gigabytes => "backup_gigabytes",
        }
    }
}

/// What is known of one project.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaInput {
    pub quota: BackupQuota,
    pub per_cycle: Growth,
    /// When each existing backup will be freed by retention, with its size (GiB).
    pub expiries: Vec<(DateTime<Utc>, u64)>,
    pub next_cycle: DateTime<Utc>,
    pub cycle: Duration,
    pub retention: Duration,
}

/// The projection for one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub project_id: ProjectId,
    /// The first cycle whose backups will not fit, and which quota stops
    /// them; `None`: none within [`MAX_CYCLES`] cycles (or no limit).
    pub exhausted: Option<(DateTime<Utc>, Resource)>,
    /// Whether `exhausted` is within the horizon: warn now.
    pub warn: bool,
}

impl Projection {
    /// Days from `now` until the quota runs out, rounded down.
    pub fn days_left(&self, now: DateTime<Utc>) -> Option<i64> {
        self.exhausted.map(|(at, _)| (at - now).num_days().max(0))
    }

    /// The warning as a sentence.
    pub fn message(&self, now: DateTime<Utc>) -> Option<String> {
        let (at, resource) = self.exhausted?;
        Some(format!(
            "project {}: the {} quota is projected to run out on {} (in {} days): raise it or shorten retention",
            self.project_id,
            resource.as_str(),
            at.format("%Y-%m-%d"),
            self.days_left(now).unwrap_or_default()
        ))
    }
}

/// Projects `input` from `now`; warns when exhaustion is at most `horizon` away.
pub fn project(input: &QuotaInput, now: DateTime<Utc>, horizon: Duration) -> Projection {
    let q = &input.quota;
    let limited = |l: i64| l >= 0;
    let exhausted = if (!limited(q.backups.limit) && !limited(q.gigabytes.limit))
        || input.cycle <= Duration::zero()
        || (input.per_cycle.backups <= 0.0 && input.per_cycle.gigabytes <= 0.0)
    {
        None
    } else {
        walk(input)
    };
    let warn = exhausted.is_some_and(|(at, _)| at - now <= horizon);
    Projection { project_id: q.project_id.clone(), exhausted, warn }
}

fn walk(input: &QuotaInput) -> Option<(DateTime<Utc>, Resource)> {
    let q = &input.quota;
    let mut expiries = input.expiries.clone();
    expiries.sort();
    let mut held_n = (q.backups.in_use + q.backups.reserved) as f64;
    let mut held_g = (q.gigabytes.in_use + q.gigabytes.reserved) as f64;
    let (add_n, add_g) = (input.per_cycle.backups, input.per_cycle.gigabytes);
    let retention_cycles = if input.retention > Duration::zero() {
        Some((input.retention.num_seconds() as f64 / input.cycle.num_seconds() as f64).ceil() as i64)
    } else {
        None
    };
    let mut next_expiry = 0;
    for k in 0..MAX_CYCLES {
        let at = input.next_cycle + input.cycle * k as i32;
        // Retention frees what expired by then (existing backups, then the
        // ones earlier cycles added).
        while next_expiry < expiries.len() && expiries[next_expiry].0 <= at {
            held_n -= 1.0;
            held_g -= expiries[next_expiry].1 as f64;
            next_expiry += 1;
        }
        if retention_cycles.is_some_and(|r| k >= r) {
            held_n -= add_n;
            held_g -= add_g;
        }
        if q.backups.limit >= 0 && held_n + add_n > q.backups.limit as f64 + 1e-9 {
            return Some((at, Resource::Backups));
        }
        if q.gigabytes.limit >= 0 && held_g + add_g > q.gigabytes.limit as f64 + 1e-9 {
            return Some((at, Resource::Gigabytes));
        }
        held_n += add_n;
        held_g += add_g;
        // Steady state: nothing changes any more once every existing backup
        // expired and retention frees what a cycle adds.
        if next_expiry == expiries.len() && retention_cycles.is_some_and(|r| k > r) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Quota;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000)
    }

    fn input(limit_n: i64, used_n: i64, limit_g: i64, used_g: i64, per: Growth, retention_days: i64) -> QuotaInput {
        QuotaInput {
            quota: BackupQuota {
                project_id: ProjectId("p".into()),
                backups: Quota { limit: limit_n, in_use: used_n, reserved: 0 },
                gigabytes: Quota { limit: limit_g, in_use: used_g, reserved: 0 },
            },
            per_cycle: per,
            expiries: Vec::new(),
            next_cycle: t0() + Duration::hours(1),
            cycle: Duration::days(1),
            retention: Duration::days(retention_days),
        }
    }

    #[test]
    fn four_volumes_fill_cinders_default_ten_backups_on_the_third_cycle() {
        // The story: quota 10, four flagged volumes, retention longer
        // than the time to fill it.
        let i = input(10, 0, 1000, 0, Growth { backups: 4.0, gigabytes: 40.0 }, 14);
        let p = project(&i, t0(), Duration::days(7));
        let (at, resource) = p.exhausted.expect("exhausted");
        assert_eq!(resource, Resource::Backups);
        assert_eq!(at, t0() + Duration::hours(1) + Duration::days(2), "the third cycle (k = 2)");
        assert!(p.warn);
        assert_eq!(p.days_left(t0()), Some(2));
        assert!(p.message(t0()).expect("message").contains("backups quota is projected to run out"));
        // Beyond the horizon: projected, not warned.
        let far = project(&i, t0(), Duration::days(1));
        assert!(far.exhausted.is_some() && !far.warn);
    }

    #[test]
    fn retention_that_frees_what_a_cycle_adds_never_runs_out() {
        // 4 per day kept 3 days: at most 12 held with the cycle's own, under 20.
        let i = input(20, 0, 1000, 0, Growth { backups: 4.0, gigabytes: 4.0 }, 3);
        assert_eq!(project(&i, t0(), Duration::days(7)).exhausted, None);
        // The same under a limit of 10 runs out when the third day's backups come.
        let i = input(10, 0, 1000, 0, Growth { backups: 4.0, gigabytes: 4.0 }, 3);
        let p = project(&i, t0(), Duration::days(7));
        assert_eq!(p.exhausted.map(|e| e.1), Some(Resource::Backups));
    }

    #[test]
    fn gigabytes_can_run_out_first_and_expiries_of_existing_backups_count() {
        let mut i = input(100, 5, 100, 90, Growth { backups: 1.0, gigabytes: 10.0 }, 30);
        let p = project(&i, t0(), Duration::days(7));
        assert_eq!(p.exhausted, Some((t0() + Duration::hours(1) + Duration::days(1), Resource::Gigabytes)));
        // Existing backups expiring before the next cycle make room.
        i.expiries = vec![(t0(), 50), (t0() + Duration::minutes(30), 30)];
        let p = project(&i, t0(), Duration::days(7));
        assert_eq!(p.exhausted.map(|e| e.0), Some(t0() + Duration::hours(1) + Duration::days(9)));
        assert!(!p.warn);
    }

    #[test]
    fn no_limit_or_no_growth_projects_nothing() {
        let i = input(-1, 5, -1, 50, Growth { backups: 4.0, gigabytes: 40.0 }, 0);
        assert_eq!(project(&i, t0(), Duration::days(7)).exhausted, None);
        let i = input(10, 9, 100, 90, Growth::default(), 0);
        assert!(!project(&i, t0(), Duration::days(7)).warn);
        assert_eq!(Growth::average(&[(4, 40), (2, 20)]), Growth { backups: 3.0, gigabytes: 30.0 });
    }
}

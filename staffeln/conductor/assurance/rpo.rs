//! Recovery point objective (pure): a volume is within its RPO when its
//! newest good (`available`) backup is younger than the expected period,
//! which is the schedule's period plus one cycle (the time a cycle may take
//! to reach it).

use chrono::{DateTime, Duration, Utc};

use crate::objects::{ProjectId, VolumeId};

/// What is known of one flagged volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBackups {
    pub project_id: ProjectId,
    pub volume_id: VolumeId,
    pub volume_name: Option<String>,
    /// When its newest `available` backup was made, if any.
    pub last_success: Option<DateTime<Utc>>,
    /// Why the newest attempt failed, when it did (Cinder's fail reason, a
    /// quota refusal, …).
    pub last_failure: Option<String>,
}

/// Why a volume is out of its RPO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No good backup at all.
    NeverBackedUp { last_failure: Option<String> },
    /// The newest good backup is older than the expected period.
    TooOld { age: Duration, last_failure: Option<String> },
}

impl Miss {
    /// The reason as a sentence, for the digest and the log.
    pub fn reason(&self) -> String {
        let failure =
            |f: &Option<String>| f.as_ref().map(|f| format!("; last attempt failed: {f}")).unwrap_or_default();
        match self {
            Miss::NeverBackedUp { last_failure } => format!("no good backup yet{}", failure(last_failure)),
            Miss::TooOld { age, last_failure } => {
                format!("newest good backup is {} old{}", human(*age), failure(last_failure))
            }
        }
    }
}

/// One volume's compliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpoStatus {
    pub project_id: ProjectId,
    pub volume_id: VolumeId,
    pub volume_name: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    /// `None`: within the RPO.
    pub miss: Option<Miss>,
}

impl RpoStatus {
    pub fn within(&self) -> bool {
        self.miss.is_none()
    }
}

/// The expected period: the schedule's period plus the duration of the
/// newest finished backup cycle (how long a cycle takes to reach every
/// volume). Before any cycle finished, one more period stands in for it.
pub fn expected_period(schedule_period: Duration, last_cycle: Option<Duration>) -> Duration {
    schedule_period + last_cycle.map_or(schedule_period, |c| c.max(Duration::zero()))
}

/// Each volume's status at `now` against `expected` (see [`expected_period`]).
pub fn assess(volumes: &[VolumeBackups], now: DateTime<Utc>, expected: Duration) -> Vec<RpoStatus> {
    volumes
        .iter()
        .map(|v| {
            let miss = match v.last_success {
                None => Some(Miss::NeverBackedUp { last_failure: v.last_failure.clone() }),
                Some(at) if now - at > expected => {
                    Some(Miss::TooOld { age: now - at, last_failure: v.last_failure.clone() })
                }
                Some(_) => None,
            };
            RpoStatus {
                project_id: v.project_id.clone(),
                volume_id: v.volume_id.clone(),
                volume_name: v.volume_name.clone(),
                last_success: v.last_success,
                miss,
            }
        })
        .collect()
}

/// "N of M within RPO" for a set of statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compliance {
    pub within: usize,
    pub total: usize,
}

impl Compliance {
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a RpoStatus>) -> Compliance {
        statuses.into_iter().fold(Compliance::default(), |c, s| Compliance {
            within: c.within + usize::from(s.within()),
            total: c.total + 1,
        })
    }

    /// The share within (1.0 when there is nothing to protect).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 { 1.0 } else { self.within as f64 / self.total as f64 }
    }
}

/// A change of a volume's compliance since the last assessment: what the
/// `staffeln.rpo.missed` and `staffeln.rpo.restored` notifications say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Left(RpoStatus),
    Returned(RpoStatus),
}

/// The transitions from `before` (volume ids out of RPO at the previous
/// assessment) to `now`.
pub fn transitions(before: &[VolumeId], now: &[RpoStatus]) -> Vec<Transition> {
    now.iter()
        .filter_map(|s| match (before.contains(&s.volume_id), s.within()) {
            (false, false) => Some(Transition::Left(s.clone())),
            (true, true) => Some(Transition::Returned(s.clone())),
            _ => None,
        })
        .collect()
}

fn human(d: Duration) -> String {
    let hours = d.num_hours();
    if hours >= 48 { format!("{} days", hours / 24) } else { format!("{hours} h") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: &str, last: Option<i64>, failure: Option<&str>) -> VolumeBackups {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + Duration::days(100);
        VolumeBackups {
            project_id: ProjectId("p".into()),
            volume_id: VolumeId(id.into()),
            volume_name: Some(format!("{id}-name")),
            last_success: last.map(|h| t0 - Duration::hours(h)),
            last_failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn the_expected_period_is_the_period_plus_the_newest_cycle_or_two_periods_before_any() {
        let period = Duration::minutes(30);
        assert_eq!(expected_period(period, Some(Duration::minutes(7))), Duration::minutes(37));
        assert_eq!(expected_period(period, Some(Duration::zero())), period);
        assert_eq!(expected_period(period, None), Duration::hours(1));
        // A clock step backwards never shortens the period below the schedule.
        assert_eq!(expected_period(period, Some(Duration::minutes(-5))), period);
        // A cycle longer than the period is counted whole.
        assert_eq!(expected_period(period, Some(Duration::hours(2))), Duration::minutes(150));
    }

    #[test]
    fn a_volume_is_within_until_its_newest_good_backup_is_older_than_period_plus_a_cycle() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(100);
        let expected = expected_period(Duration::hours(24), Some(Duration::hours(1)));
        assert_eq!(expected, Duration::hours(25));
        let volumes = [
            vol("fresh", Some(2), None),
            vol("edge", Some(25), None),
            vol("late", Some(26), Some("quota")),
            vol("never", None, None),
        ];
        let s = assess(&volumes, now, expected);
        assert_eq!(s.iter().map(RpoStatus::within).collect::<Vec<_>>(), [true, true, false, false]);
        assert_eq!(
            s[2].miss.as_ref().map(Miss::reason).as_deref(),
            Some("newest good backup is 26 h old; last attempt failed: quota")
        );
        assert_eq!(s[3].miss.as_ref().map(Miss::reason).as_deref(), Some("no good backup yet"));
        let c = Compliance::of(&s);
        assert_eq!((c.within, c.total), (2, 4));
        assert!((c.ratio() - 0.5).abs() < 1e-9);
        assert!((Compliance::default().ratio() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn transitions_name_volumes_that_left_and_returned_only() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(100);
        let s = assess(
            &[vol("a", Some(1), None), vol("b", Some(50), None), vol("c", Some(50), None)],
            now,
            Duration::hours(25),
        );
        let t = transitions(&[VolumeId("a".into()), VolumeId("c".into())], &s);
        assert_eq!(t.len(), 2);
        assert!(matches!(&t[0], Transition::Returned(s) if s.volume_id.0 == "a"));
        assert!(matches!(&t[1], Transition::Left(s) if s.volume_id.0 == "b"));
    }
}

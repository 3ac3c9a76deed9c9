//! [`AssuranceSettings`]: the quota warning horizon and the restore drills,
//! from `[conductor]`.

use chrono::Duration;

use super::drill::DrillCaps;
use crate::conf::Config;

/// What the assurance checks run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssuranceSettings {
    /// `quota_warning_horizon`.
    pub quota_horizon: Duration,
    /// `restore_drill_period`; `None`: no drills (the default).
    pub drill_period: Option<Duration>,
    /// `restore_drill_sample` and `max_concurrent_backups_per_project`.
    pub drill_caps: DrillCaps,
    /// `restore_drill_timeout`.
    pub drill_timeout: Duration,
}

impl AssuranceSettings {
    pub fn read(conf: &Config) -> AssuranceSettings {
        let c = &conf.conductor;
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        AssuranceSettings {
            quota_horizon: secs(c.quota_warning_horizon.as_secs()),
            drill_period: (c.restore_drill_period > 0).then(|| secs(c.restore_drill_period)),
            drill_caps: DrillCaps {
                sample: c.restore_drill_sample as usize,
                per_project: c.max_concurrent_backups_per_project as usize,
            },
            drill_timeout: secs(c.restore_drill_timeout.as_secs()),
        }
    }
}

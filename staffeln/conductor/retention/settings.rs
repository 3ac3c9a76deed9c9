//! [`RetentionSettings`]: what a retention run needs from the configuration.

use std::time::Duration as StdDuration;

use chrono::Duration;
use chrono_tz::Tz;

use super::plan::{ArchivalRules, RetentionTime, RuleSettings};
use crate::conductor::schedule::Schedule;
use crate::conf::{Config, SettingsError};

/// What retention needs from the configuration.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub rules: RuleSettings,
    pub schedule: Schedule,
    pub max_concurrent_deletes: usize,
    /// How long a run waits for newer backups of a chain to be gone.
    pub delete_timeout: StdDuration,
    /// How long the retention lease lasts without renewal.
    pub lease_time: Duration,
    /// Longest pause between two checks while waiting for deletes.
    pub poll_interval: StdDuration,
}

impl RetentionSettings {
    /// From `[conductor]`, in `timezone` (`backup_timezone`, read once by
    /// the conductor's settings). The configured duration is used as the
    /// loader typed it; only zero is refused here.
    pub(crate) fn read(conf: &Config, timezone: Tz) -> Result<RetentionSettings, SettingsError> {
        let c = &conf.conductor;
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        let bad = |option: &str, value: &dyn std::fmt::Display, err: super::plan::RulesError| {
            SettingsError::new("conductor", option, value, err.reason())
        };
        let retention =
            RetentionTime::new(c.retention_time.clone()).map_err(|e| bad("retention_time", &c.retention_time, e))?;
        let archival =
            ArchivalRules::parse(&c.archival_rules).map_err(|e| bad("archival_rules", &c.archival_rules, e))?;
        Ok(RetentionSettings {
            rules: RuleSettings {
                retention,
                archival,
                retention_key: c.retention_metadata_key.clone(),
                archival_key: c.archival_metadata_key.clone(),
                timezone,
            },
            schedule: Schedule::new(
                "retention_schedule",
                &c.retention_schedule,
                timezone,
                seconds(c.retention_service_period),
            )?,
            max_concurrent_deletes: usize::try_from(c.max_concurrent_deletes).unwrap_or(1).max(1),
            delete_timeout: c.retention_delete_timeout.as_std(),
            lease_time: seconds(c.leader_lease_time),
            poll_interval: StdDuration::from_secs(c.poll_interval),
        })
    }
}

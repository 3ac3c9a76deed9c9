//! [`RetentionSettings`]: what a retention run needs from the configuration.

use std::time::Duration as StdDuration;

use chrono::Duration;

use super::plan::{ArchivalRules, RuleSettings, parse_retention};
use crate::conductor::error::ConductorError;
use crate::conductor::schedule::Schedule;
use crate::conf::Config;

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
    /// From `[conductor]`; a bad value names its option.
    pub fn from_config(conf: &Config) -> Result<RetentionSettings, ConductorError> {
        let c = &conf.conductor;
        let bad =
            |option: &str, err: &dyn std::fmt::Display| ConductorError::Config(format!("[conductor] {option}: {err}"));
        let retention = parse_retention(c.retention_time.as_str()).map_err(|e| bad("retention_time", &e))?;
        let archival = ArchivalRules::parse(&c.archival_rules).map_err(|e| bad("archival_rules", &e))?;
        let timezone: chrono_tz::Tz = c.backup_timezone.trim().parse().map_err(|_| {
            ConductorError::Config(format!(
                "[conductor] backup_timezone = {:?}: expected an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
                c.backup_timezone
            ))
        })?;
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Ok(RetentionSettings {
            rules: RuleSettings {
                retention,
                retention_text: c.retention_time.as_str().to_owned(),
                archival,
                retention_key: c.retention_metadata_key.clone(),
                archival_key: c.archival_metadata_key.clone(),
                timezone,
            },
            schedule: Schedule::new(
                "retention_schedule",
                &c.retention_schedule,
                "backup_timezone",
                &c.backup_timezone,
                secs(c.retention_service_period),
            )?,
            max_concurrent_deletes: usize::try_from(c.max_concurrent_deletes).unwrap_or(1).max(1),
            delete_timeout: c.retention_delete_timeout.as_std(),
            lease_time: secs(c.leader_lease_time),
            poll_interval: StdDuration::from_secs(c.poll_interval),
        })
    }
}

//! [`ConductorSettings`]: everything the conductor reads from the
//! configuration, built and checked once before it starts.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::Duration;

use super::backup::limits::Limits;
use super::backup::plan::PlanSettings;
use super::backup::waiting;
use super::error::ConductorError;
use super::retention::RetentionSettings;
use super::schedule::Schedule;
use crate::conf::Config;
use crate::objects::ProjectId;

/// The conductor's view of its options.
#[derive(Debug, Clone)]
pub struct ConductorSettings {
    pub plan: PlanSettings,
    pub limits: Limits,
    pub backup_schedule: Schedule,
    pub poll_interval: StdDuration,
    pub claim_timeout: Duration,
    pub lease_time: Duration,
    /// How long a cycle waits for a backup, and what then (`waiting`).
    pub wait: waiting::WaitSettings,
    pub last_backup_key: String,
    /// Retention's rules, schedule and limits.
    pub retention: RetentionSettings,
}

impl ConductorSettings {
    /// From `[conductor]`; a bad schedule, zone or limit names the option.
    pub fn from_config(conf: &Config) -> Result<ConductorSettings, ConductorError> {
        let c = &conf.conductor;
        let mut overrides = BTreeMap::new();
        for (project, limit) in &c.project_volume_limits {
            let n = limit.trim().parse::<u32>().map_err(|_| {
                ConductorError::Config(format!(
                    "[conductor] project_volume_limits: {project}:{limit}: expected project_id:number"
                ))
            })?;
            overrides.insert(ProjectId(project.clone()), n);
        }
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Ok(ConductorSettings {
            plan: PlanSettings {
                backup_metadata_key: c.backup_metadata_key.clone(),
                skip_volume_metadata_key: c.skip_volume_metadata_key.clone(),
                full_backup_depth: c.full_backup_depth,
                backup_min_interval: secs(c.backup_min_interval),
                name_template: c.backup_name_template.clone(),
                date_format: c.backup_date_format.clone(),
                project_volume_limit: (c.project_volume_limit > 0).then_some(c.project_volume_limit),
                project_volume_limit_overrides: overrides,
            },
            limits: Limits {
                overall: c.max_concurrent_backups as usize,
                per_project: c.max_concurrent_backups_per_project as usize,
                per_az: c.max_concurrent_backups_per_az as usize,
            },
            backup_schedule: Schedule::new(
                "backup_schedule",
                &c.backup_schedule,
                "backup_timezone",
                &c.backup_timezone,
                secs(c.backup_service_period),
            )?,
            poll_interval: StdDuration::from_secs(c.poll_interval),
            claim_timeout: secs(c.claim_timeout),
            lease_time: secs(c.leader_lease_time),
            wait: waiting::WaitSettings {
                timeout: secs(c.backup_cycle_timeout.as_secs()),
                cancel_on_timeout: c.backup_cancel_on_timeout,
                stuck_throughput_mib: c.backup_stuck_throughput,
            },
            last_backup_key: c.last_backup_metadata_key.clone(),
            retention: RetentionSettings::from_config(conf)?,
        })
    }
}

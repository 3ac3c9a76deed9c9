//! [`ConductorSettings`]: everything staffeln-conductor reads from the
//! configuration, built and checked once, before anything starts. A value
//! the conductor cannot use (a time zone that does not exist, a cron
//! expression, retention rule or limit that does not parse, a transport URL
//! that is not one) is a [`SettingsError`] naming group, option and value;
//! the binary prints it as its one line and exits with status 2. Values stay
//! typed from here on: nothing downstream parses configuration text again.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::Duration;
use chrono_tz::Tz;

use super::assurance::AssuranceSettings;
use super::backup::limits::Limits;
use super::backup::plan::PlanSettings;
use super::backup::waiting::WaitSettings;
use super::events::EventSettings;
use super::retention::RetentionSettings;
use super::schedule::Schedule;
use crate::conf::{Config, SettingsError};
use crate::db::DbSettings;
use crate::notify::NotifySettings;
use crate::objects::ProjectId;
use crate::openstack;
use crate::rpc::{ListenTarget, Priority, RpcSettings};

/// What the conductor runs with.
#[derive(Debug, Clone)]
pub struct ConductorSettings {
    pub plan: PlanSettings,
    pub limits: Limits,
    pub backup_schedule: Schedule,
    pub poll_interval: StdDuration,
    pub claim_timeout: Duration,
    pub lease_time: Duration,
    /// How long a cycle waits for a backup, and what then (`waiting`).
    pub wait: WaitSettings,
    pub last_backup_key: String,
    /// Retention's rules, schedule and limits.
    pub retention: RetentionSettings,
    /// How often digests go out (`report_period`).
    pub report_period: Duration,
    /// The pause before undelivered digests are tried again
    /// (`report_retry_interval`).
    pub report_retry: Duration,
    /// `[DEFAULT] host`: this conductor's name on the RPC topic and in its
    /// leases (`host:pid`).
    pub host: String,
    /// `[conductor] topic`.
    pub topic: String,
    /// The RPC server's messaging settings; `None` without `[DEFAULT]
    /// transport_url`: no RPC server (see `manager`).
    pub rpc: Option<RpcSettings>,
    /// `[oslo_messaging_notifications]`.
    pub events: EventSettings,
    /// `[cinder_notifications]`: completion by Cinder's backup events
    /// (`None`: off, the list poll alone).
    pub cinder_events: Option<CinderEventSettings>,
    /// `[notification]`: the digests.
    pub notify: NotifySettings,
    /// `[database]`.
    pub database: DbSettings,
    /// `[openstack]`.
    pub openstack: openstack::Settings,
    /// Quota foresight and restore drills.
    pub assurance: AssuranceSettings,
}

/// Seconds of an option as a chrono duration (options are bounded far below
/// the overflow).
pub(crate) fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// `[conductor] backup_timezone`, the zone of both schedules and of the
/// archival calendar.
pub(crate) fn timezone(conf: &Config) -> Result<Tz, SettingsError> {
    let text = &conf.conductor.backup_timezone;
    text.trim().parse::<Tz>().map_err(|_| {
        SettingsError::new(
            "conductor",
            "backup_timezone",
            text,
            "expected an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
        )
    })
}

impl ConductorSettings {
    /// Reads and checks every option the conductor uses.
    pub fn from_config(conf: &Config) -> Result<ConductorSettings, SettingsError> {
        let c = &conf.conductor;
        let mut overrides = BTreeMap::new();
        for (project, limit) in &c.project_volume_limits {
            let n = limit.trim().parse::<u32>().map_err(|_| {
                SettingsError::new(
                    "conductor",
                    "project_volume_limits",
                    format!("{project}:{limit}"),
                    "expected project_id:number, the number a count of volumes",
                )
            })?;
            overrides.insert(ProjectId(project.clone()), n);
        }
        let zone = timezone(conf)?;
        Ok(ConductorSettings {
            plan: PlanSettings {
                backup_metadata_key: c.backup_metadata_key.clone(),
                skip_volume_metadata_key: c.skip_volume_metadata_key.clone(),
                full_backup_depth: c.full_backup_depth,
                backup_min_interval: seconds(c.backup_min_interval),
                name_template: c.backup_name_template.clone(),
                date_format: c.backup_date_format.clone(),
                project_volume_limit: (c.project_volume_limit > 0).then_some(c.project_volume_limit),
                project_volume_limit_overrides: overrides,
            },
            limits: Limits {
                overall: match c.max_concurrent_backups {
                    0 => usize::MAX,
                    n => n as usize,
                },
                per_project: c.max_concurrent_backups_per_project as usize,
                per_backup_host: c.max_concurrent_backups_per_backup_host as usize,
                per_az: c.max_concurrent_backups_per_az.map(|n| n as usize),
            },
            backup_schedule: Schedule::new(
                "backup_schedule",
                &c.backup_schedule,
                zone,
                seconds(c.backup_service_period),
            )?,
            poll_interval: StdDuration::from_secs(c.poll_interval),
            claim_timeout: seconds(c.claim_timeout),
            lease_time: seconds(c.leader_lease_time),
            wait: WaitSettings {
                timeout: seconds(c.backup_cycle_timeout.as_secs()),
                cancel_on_timeout: c.backup_cancel_on_timeout,
                stuck_throughput_mib: c.backup_stuck_throughput,
            },
            last_backup_key: c.last_backup_metadata_key.clone(),
            retention: RetentionSettings::read(conf, zone)?,
            report_period: seconds(c.report_period),
            report_retry: seconds(c.report_retry_interval),
            host: conf.default.host.clone(),
            topic: c.topic.clone(),
            rpc: match conf.default.transport_url {
                Some(_) => Some(RpcSettings::from_config(conf)?),
                None => None,
            },
            events: EventSettings::from_config(conf)?,
            cinder_events: CinderEventSettings::from_config(conf)?,
            notify: NotifySettings::from_config(conf)?,
            database: DbSettings::from_config(conf)?,
            openstack: openstack::Settings::from_config(conf)?,
            assurance: AssuranceSettings::read(conf),
        })
    }
}

/// `[cinder_notifications]` as the conductor uses it.
#[derive(Debug, Clone)]
pub struct CinderEventSettings {
    /// The broker Cinder publishes to.
    pub rpc: RpcSettings,
    /// Staffeln's own queue on Cinder's exchange and topic.
    pub target: ListenTarget,
    /// The list poll's interval while events arrive.
    pub fallback_poll: Duration,
}

impl CinderEventSettings {
    /// `None` unless `[cinder_notifications] enabled`. A queue named like
    /// the shared one (`<topic>.info`), or no transport URL, names the option.
    pub fn from_config(conf: &Config) -> Result<Option<CinderEventSettings>, SettingsError> {
        let c = &conf.cinder_notifications;
        if !c.enabled {
            return Ok(None);
        }
        let bad = |option: &str, value: &str, why: &str| {
            SettingsError::new("cinder_notifications", option, value, why.to_owned())
        };
        for (option, value) in [("exchange", &c.exchange), ("topic", &c.topic), ("queue", &c.queue)] {
            if value.trim().is_empty() {
                return Err(bad(option, value, "must not be empty"));
            }
        }
        let target = ListenTarget {
            exchange: c.exchange.trim().to_owned(),
            topic: c.topic.trim().to_owned(),
            priority: Priority::Info,
            queue: c.queue.trim().to_owned(),
            private: false,
        };
        if target.queue == target.routing_key() {
            return Err(bad(
                "queue",
                &c.queue,
                "is the queue other listeners (Ceilometer) read; a consumer there takes their messages: name a \
                 queue of Staffeln's own",
            ));
        }
        let mut rpc = RpcSettings::notifications_from_config(conf)?;
        if let Some(url) = &c.transport_url {
            let mut conf = conf.clone();
            conf.oslo_messaging_notifications.transport_url = Some(url.clone());
            rpc = RpcSettings::notifications_from_config(&conf).map_err(|e| {
                // The URL was checked as the notifications' one: say which option it came from.
                SettingsError::new("cinder_notifications", "transport_url", "***", e.to_string())
            })?;
        }
        if rpc.transport_url.is_none() {
            return Err(bad(
                "enabled",
                "true",
                "needs [cinder_notifications] transport_url, [oslo_messaging_notifications] transport_url or \
                 [DEFAULT] transport_url: the broker Cinder publishes its notifications to",
            ));
        }
        Ok(Some(CinderEventSettings { rpc, target, fallback_poll: seconds(c.fallback_poll_interval) }))
    }
}

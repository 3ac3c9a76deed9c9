//! `[conductor]`: backup cycles, retention and reports.

use std::collections::BTreeMap;

use super::{boolean, dict, duration, integer, string};
use crate::conf::types::OsloDuration;

options! {
    /// Options under this group are used to define Conductor's configuration.
    group "conductor" => ConductorOpts;

    /// Accepted for compatibility, ignored: how many backups run at once is
    /// set by max_concurrent_backups and its per-project, per-backup-host and
    /// per-AZ limits.
    ///
    /// Related options:
    ///
    /// * max_concurrent_backups
    backup_workers: u32 = integer(1).min(1);

    /// The time between two backup cycles, in seconds. 0 runs cycles only on
    /// backup_schedule (and on demand).
    ///
    /// Related options:
    ///
    /// * backup_schedule
    /// * backup_min_interval
    backup_service_period: u64 = integer(1800).min(0);

    /// A cron expression (minute hour day-of-month month day-of-week, with
    /// an optional leading seconds field) on which backup cycles also run, in
    /// backup_timezone. Empty: only backup_service_period.
    ///
    /// Related options:
    ///
    /// * backup_timezone
    /// * backup_service_period
    backup_schedule: String = string("");

    /// The IANA time zone of backup_schedule and retention_schedule, and of
    /// the calendar days, weeks, months and years of archival_rules, e.g.
    /// Europe/Berlin.
    backup_timezone: String = string("UTC");

    /// The minimum interval between two backups of a volume made by
    /// Staffeln, in seconds, measured between the starts of the cycles that
    /// made them (not from Cinder's creation time, which comes later). A
    /// cycle that starts up to a tenth of the interval early still backs the
    /// volume up, so that with backup_service_period equal to this interval
    /// every cycle backs up every volume; an on-demand trigger shortly after
    /// a cycle skips the volumes it just backed up. 0 disables the check.
    ///
    /// Related options:
    ///
    /// * backup_service_period
    /// * backup_schedule
    backup_min_interval: u64 = integer(1800).min(0);

    /// The time between two rounds of digests, in seconds: each project gets
    /// at most one digest per period, however many conductors share the
    /// database (a round runs under a lease).
    report_period: u64 = integer(86400).min(600);

    /// Seconds before digests that could not be delivered (the SMTP server
    /// down or refusing) are tried again; their results stay unreported
    /// until then.
    ///
    /// Related options:
    ///
    /// * report_period
    report_retry_interval: u64 = integer(300).min(1);

    /// How long a backup cycle waits for each of its backups to finish, as
    /// <YEARS>y<MONTHS>mon<WEEKS>w<DAYS>d<HOURS>h<MINUTES>min<SECONDS>s (a
    /// year is 365 days, a month 30 days). A backup still being created then
    /// is left running: its task ends as unfinished (the digest says so),
    /// its cycle can finish, and the backup is recorded when Cinder finishes
    /// it. The default covers a full backup of a 1 TiB volume at 25 MiB/s
    /// (11.7 hours) while holding a cycle's digests back for at most half a
    /// day. (Earlier versions cancelled backups still running after 5min.)
    ///
    /// Possible values:
    ///
    /// * A duration such as 12h, 1d or 1d12h.
    ///
    /// Related options:
    ///
    /// * backup_cancel_on_timeout
    /// * backup_stuck_throughput
    backup_cycle_timeout: OsloDuration = duration("12h").deprecated(&[("", "backup_cycle_timout")]);

    /// Whether a backup still being created when backup_cycle_timeout passes
    /// is cancelled: force-deleted in Cinder (its task fails, and the next
    /// cycle tries again from scratch). Off by default: a running backup is
    /// never cancelled unless the operator asks for it here.
    ///
    /// Related options:
    ///
    /// * backup_cycle_timeout
    backup_cancel_on_timeout: bool = boolean(false);

    /// The slowest rate, in MiB/s, at which a healthy backup is expected to
    /// read its volume. A backup still being created after its volume's size
    /// at this rate, plus 30 minutes, is reported once as possibly stuck (a
    /// warning in the log, the staffeln.backup.create.stuck notification, the
    /// staffeln_backups_stuck metric, the digest); it is never cancelled for
    /// that. At the default, a 100 GiB volume is reported after 3h20min.
    ///
    /// Related options:
    ///
    /// * backup_cycle_timeout
    backup_stuck_throughput: u32 = integer(10).min(1);

    /// The server (VM) metadata key that marks all volumes attached to the
    /// server for backup, when its value reads true as OpenStack reads
    /// boolean strings: true, yes, on, 1, t or y (any case).
    backup_metadata_key: String = string("__staffeln_backup");

    /// The volume metadata key that excludes a volume from backups when its
    /// value reads true: true, yes, on, 1, t or y (any case).
    skip_volume_metadata_key: String = string("skip-volume-backup");

    /// The server metadata key Staffeln sets to the time (ISO 8601, UTC) at
    /// which every volume of the server was last backed up in a cycle.
    last_backup_metadata_key: String = string("last-backup-time");

    /// The name of each backup. Placeholders: {volume_name} (the volume id
    /// when the volume has no name), {volume_id}, {server_name}, {server_id},
    /// {project_id}, {backup_date}. At most 255 characters are kept.
    backup_name_template: String = string("{volume_name}-{backup_date}");

    /// The strftime format of {backup_date}, in UTC.
    backup_date_format: String = string("%Y-%m-%d-%H-%M-%S");

    /// Backups being created at once, over all projects and conductors; 0
    /// for no limit beyond the per-zone caps, which follow the cinder-backup
    /// hosts (each takes backup_max_operations, 15 by default, at once).
    ///
    /// Related options:
    ///
    /// * max_concurrent_backups_per_backup_host
    /// * max_concurrent_backups_per_az
    max_concurrent_backups: u32 = integer(0).min(0);

    /// Backups being created at once in one project.
    max_concurrent_backups_per_project: u32 = integer(10).min(1);

    /// Backups being created at once per cinder-backup host that is up and
    /// enabled; an availability zone runs this times its usable backup hosts
    /// (read from Cinder's service list). Match it to Cinder's
    /// backup_max_operations (15 by default).
    ///
    /// Related options:
    ///
    /// * max_concurrent_backups_per_az
    max_concurrent_backups_per_backup_host: u32 = integer(15).min(1);

    /// When set, at most this many backups are created at once in one
    /// availability zone, however many backup hosts it has; also the cap of
    /// every zone while Cinder's service list cannot be read (the service
    /// user may not list services), which is one backup host's share,
    /// max_concurrent_backups_per_backup_host, when unset.
    ///
    /// Related options:
    ///
    /// * max_concurrent_backups_per_backup_host
    max_concurrent_backups_per_az: Option<u32> = super::unset_integer().min(1);

    /// Volumes one project may have backed up in one cycle; 0 for no limit.
    ///
    /// Related options:
    ///
    /// * project_volume_limits
    project_volume_limit: u32 = integer(0).min(0);

    /// Per-project overrides of project_volume_limit, as
    /// project_id:limit pairs.
    project_volume_limits: BTreeMap<String, String> = dict("");

    /// Seconds between two checks of the backups being created; also the
    /// pause before a cycle that failed (the database or the cloud was
    /// unreachable) is tried again.
    poll_interval: u64 = integer(10).min(1);

    /// Seconds a conductor may hold a task before another conductor may take
    /// it over (the first is presumed dead).
    claim_timeout: u64 = integer(300).min(10);

    /// Seconds a lease (backup cycles, retention, a round of digests) lasts
    /// without renewal. Its holder renews it every third of this time while
    /// it works (a long discovery keeps its lease) and gives it up when it
    /// stops gracefully. A conductor that dies holding it blocks cycles and
    /// on-demand triggers until it expires; the other conductors try again
    /// then, not before. Keep it well above the clock skew between
    /// conductors.
    ///
    /// Related options:
    ///
    /// * claim_timeout
    leader_lease_time: u64 = integer(120).min(10);

    /// The RPC topic the conductors listen on (`staffeln backup trigger`,
    /// `staffeln status`, …); each conductor also listens on
    /// `<topic>.<host>`. The CLI and every conductor must agree.
    ///
    /// Related options:
    ///
    /// * [DEFAULT] host
    /// * [DEFAULT] control_exchange
    topic: String = string("staffeln-conductor");

    /// The server (VM) metadata key that sets a volume's own retention time, in the
    /// same format as retention_time.
    ///
    /// Related options:
    ///
    /// * retention_time
    retention_metadata_key: String = string("__staffeln_retention");

    /// The number of incremental backups between two full backups.
    full_backup_depth: u32 = integer(2).min(0);

    /// The time between two retention runs, in seconds. 0 runs retention
    /// only on retention_schedule (and on demand).
    retention_service_period: u64 = integer(1200).min(0);

    /// A cron expression on which retention also runs, in backup_timezone.
    retention_schedule: String = string("");

    /// How long backups are kept, as
    /// <YEARS>y<MONTHS>mon<WEEKS>w<DAYS>d<HOURS>h<MINUTES>min<SECONDS>s (a
    /// year is 365 days, a month 30 days).
    ///
    /// Related options:
    ///
    /// * retention_metadata_key
    retention_time: OsloDuration = duration("2w3d");

    /// Accepted for compatibility, ignored: how many deletes run at once is
    /// set by max_concurrent_deletes.
    ///
    /// Related options:
    ///
    /// * max_concurrent_deletes
    rotation_workers: u32 = integer(1).min(1);

    /// Archival tiers (grandfather-father-son) that keep backups past
    /// retention_time: a backup is kept while it is among the latest N
    /// successful backups of its volume, or the newest successful backup of
    /// one of the last N days, weeks (ISO), months or years (in
    /// backup_timezone) that have a backup. Empty: only retention_time.
    ///
    /// Possible values:
    ///
    /// * Comma-separated tier:count pairs with the tiers latest, daily,
    ///   weekly, monthly and yearly, e.g.
    ///   latest:3,daily:7,weekly:4,monthly:12,yearly:2.
    ///
    /// Related options:
    ///
    /// * retention_time
    /// * archival_metadata_key
    /// * backup_timezone
    archival_rules: String = string("");

    /// The server (VM) metadata key that sets the archival tiers of the
    /// server's volumes, in the same format as archival_rules. Invalid values
    /// are reported and ignored.
    ///
    /// Related options:
    ///
    /// * archival_rules
    archival_metadata_key: String = string("__staffeln_archival");

    /// Backup deletions a retention run has in flight at once.
    max_concurrent_deletes: u32 = integer(10).min(1);

    /// How long a retention run waits for Cinder to finish deleting the newer
    /// backups of a chain before it deletes the older ones; what is left then
    /// waits for the next run. Retention runs beside the backup loop: the
    /// wait never holds up creating and checking backups.
    ///
    /// Possible values:
    ///
    /// * A duration such as 30min or 1h.
    retention_delete_timeout: OsloDuration = duration("30min");

    /// How far ahead a projected exhaustion of a project's backups or
    /// backup_gigabytes quota is warned about (the digest, the log, the
    /// staffeln_quota_exhaustion_days metric and the
    /// staffeln.quota.exhaustion.projected notification), so that the quota
    /// or retention is raised before a backup fails.
    ///
    /// Possible values:
    ///
    /// * A duration such as 7d or 2w.
    quota_warning_horizon: OsloDuration = duration("7d");

    /// The time between two restore drills, in seconds: each drill restores
    /// a sample of Staffeln's backups into scratch volumes in their
    /// projects, checks that they become available with the right size,
    /// deletes them and records the result. 0 (the default) runs no drills:
    /// drills use the projects' volume quota and the backup service.
    ///
    /// Related options:
    ///
    /// * restore_drill_sample
    /// * restore_drill_timeout
    restore_drill_period: u64 = integer(0).min(0);

    /// Backups a restore drill restores at most (at most
    /// max_concurrent_backups_per_project of them in one project), the
    /// volumes drilled longest ago first.
    ///
    /// Related options:
    ///
    /// * restore_drill_period
    restore_drill_sample: u32 = integer(3).min(1);

    /// How long a restore drill waits for its scratch volume to become
    /// available before it counts the drill as failed.
    ///
    /// Possible values:
    ///
    /// * A duration such as 30min or 2h.
    ///
    /// Related options:
    ///
    /// * restore_drill_period
    restore_drill_timeout: OsloDuration = duration("1h");
}

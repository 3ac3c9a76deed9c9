//! `[conductor]`: backup cycles, retention and reports.

use super::{duration, integer, string};
use crate::conf::types::OsloDuration;

options! {
    /// Options under this group are used to define Conductor's configuration.
    group "conductor" => ConductorOpts;

    /// The number of backup workers running in parallel.
    backup_workers: u32 = integer(1).min(1);

    /// The time between two backup cycles, in seconds.
    ///
    /// Related options:
    ///
    /// * backup_min_interval
    backup_service_period: u64 = integer(1800).min(60);

    /// The minimum guaranteed interval between two backups of a volume made by
    /// Staffeln, in seconds. Set to 0 to disable this check.
    backup_min_interval: u64 = integer(1800).min(0);

    /// The time between two backup reports, in seconds.
    report_period: u64 = integer(86400).min(600);

    /// How long a backup cycle waits for its backups to finish, as
    /// <YEARS>y<MONTHS>mon<WEEKS>w<DAYS>d<HOURS>h<MINUTES>min<SECONDS>s (a
    /// year is 365 days, a month 30 days).
    ///
    /// Possible values:
    ///
    /// * A duration such as 5min, 6h or 1d12h.
    backup_cycle_timeout: OsloDuration = duration("5min").deprecated(&[("", "backup_cycle_timout")]);

    /// The volume metadata key that marks a volume for backup.
    backup_metadata_key: String = string("__staffeln_backup");

    /// The volume metadata key that sets a volume's own retention time, in the
    /// same format as retention_time.
    ///
    /// Related options:
    ///
    /// * retention_time
    retention_metadata_key: String = string("__staffeln_retention");

    /// The number of incremental backups between two full backups.
    full_backup_depth: u32 = integer(2).min(0);

    /// The time between two retention runs, in seconds.
    retention_service_period: u64 = integer(1200).min(60);

    /// How long backups are kept, as
    /// <YEARS>y<MONTHS>mon<WEEKS>w<DAYS>d<HOURS>h<MINUTES>min<SECONDS>s (a
    /// year is 365 days, a month 30 days).
    ///
    /// Related options:
    ///
    /// * retention_metadata_key
    retention_time: OsloDuration = duration("2w3d");

    /// The number of retention workers running in parallel.
    rotation_workers: u32 = integer(1).min(1);
}

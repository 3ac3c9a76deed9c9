//! Ceph-level compression of the pool Cinder's Ceph backup driver writes to.
//!
//! Cinder's `cinder.backup.drivers.ceph.CephBackupDriver` stores RBD images and
//! does not compress them itself (`backup_compression_algorithm` only applies
//! to the chunked drivers: Swift, NFS, POSIX, GCS, S3). BlueStore can compress
//! per pool instead; this room reads and writes those pool properties through
//! the `ceph` CLI, which is the edge with the outside world:
//!
//! * [`Settings`]: plain data, read from `[ceph_compression]` by
//!   [`Settings::from_config`], with [`Settings::validate`] refusing
//!   combinations Ceph would accept but that make no sense (see
//!   `doc/ceph-compression.md`); a refusal is a `conf::SettingsError` naming
//!   the option and value.
//! * [`show`]: `ceph osd pool get <pool> <property> -f json` for each property.
//! * [`apply`]: `ceph osd pool set <pool> <property> <value>` for each property
//!   that is set, the mode last.
//!
//! The room reads its own options and nothing else of Staffeln; the
//! `staffeln-manage ceph-compression show|apply` command builds the
//! settings before it calls the CLI.

mod cli;
mod settings;
#[cfg(test)]
mod tests;

pub use cli::{CephError, apply, show};
pub use settings::{Algorithm, Mode, Settings};

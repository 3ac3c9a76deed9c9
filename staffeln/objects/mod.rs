//! Plain domain data every room shares: what Staffeln knows about projects,
//! servers, volumes, backups and quotas, with no trace of where it came from.
//!
//! These types are filled by [`crate::openstack`] (the only room that speaks
//! Keystone, Nova and Cinder JSON) and read by the conductor, the API and the
//! database room. They hold no I/O, no wire shapes and no SQL: field names are
//! Staffeln's (`size_gb`, `volume_ids`), not the services' (`size`,
//! `os-extended-volumes:volumes_attached`). Statuses are enums that keep
//! values they do not know (`Unknown(String)`), so that a newer cloud never
//! turns a volume or backup into an error, and nothing is silently dropped.
//!
//! [`metadata`] holds the facts every room reads the same way: Staffeln's
//! metadata keys (`__automated_backup`, `__staffeln_task_id`,
//! `__staffeln_instance_id`), how a metadata value reads as true, and the
//! flag rule ([`Server::is_flagged`]).
//!
//! Only std, serde and chrono are used here.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as the services spell it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_newtype!(
    /// A Keystone project id.
    ProjectId
);
id_newtype!(
    /// A Keystone user id.
    UserId
);
id_newtype!(
    /// A Nova server (instance) id.
    ServerId
);
id_newtype!(
    /// A Cinder volume id.
    VolumeId
);
id_newtype!(
    /// A Cinder backup id.
    BackupId
);

/// A Keystone project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
}

/// A Keystone user; `email` is an optional extra attribute in Keystone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: Option<String>,
}

/// One (effective) role of one user on one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub user_id: UserId,
    pub role_id: String,
    /// The role's name, when the service included names.
    pub role_name: Option<String>,
    pub project_id: ProjectId,
}

/// What Keystone says about a token it validated (`GET /v3/auth/tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub user_id: UserId,
    /// The project the token is scoped to; `None` for unscoped, domain- or
    /// system-scoped tokens.
    pub project_id: Option<ProjectId>,
    /// Effective role names (implied roles included).
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

impl TokenInfo {
    /// True when the token carries `role` (case-insensitive, as oslo.policy's `role:` check).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// A Nova server, with the volumes attached to it (boot and data volumes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: ServerId,
    pub name: String,
    pub project_id: ProjectId,
    /// Nova's status as sent (`ACTIVE`, `SHUTOFF`, `ERROR`, …).
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub volume_ids: Vec<VolumeId>,
}

/// A Cinder volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: VolumeId,
    /// `None` when the volume has no name (or an empty one).
    pub name: Option<String>,
    pub project_id: ProjectId,
    pub status: VolumeStatus,
    pub size_gb: u64,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    /// Servers the volume is attached to (attached attachments only).
    pub attachments: Vec<ServerId>,
    pub bootable: bool,
}

/// A Cinder backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub id: BackupId,
    pub name: Option<String>,
    pub volume_id: VolumeId,
    /// The owning project. Cinder shows it to admins only; when it is hidden,
    /// this is the project of the session that read the backup.
    pub project_id: ProjectId,
    pub status: BackupStatus,
    pub size_gb: u64,
    pub is_incremental: bool,
    pub has_dependent_backups: bool,
    pub created_at: DateTime<Utc>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub fail_reason: Option<String>,
}

impl Backup {
    /// Full or incremental.
    pub fn kind(&self) -> BackupKind {
        if self.is_incremental { BackupKind::Incremental } else { BackupKind::Full }
    }
}

/// Whether a backup copies the whole volume or only what changed since its
/// parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Incremental,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Incremental => "incremental",
        }
    }
}

impl fmt::Display for BackupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A status this version of Staffeln does not know, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// Parses the status string the service sends; unknown values are kept.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// The status as the service spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Unknown(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

status_enum!(
    /// Cinder volume status.
    VolumeStatus {
        Creating = "creating",
        Available = "available",
        Reserved = "reserved",
        Attaching = "attaching",
        Detaching = "detaching",
        InUse = "in-use",
        Maintenance = "maintenance",
        Deleting = "deleting",
        AwaitingTransfer = "awaiting-transfer",
        Error = "error",
        ErrorDeleting = "error_deleting",
        BackingUp = "backing-up",
        RestoringBackup = "restoring-backup",
        ErrorBackingUp = "error_backing-up",
        ErrorRestoring = "error_restoring",
        ErrorExtending = "error_extending",
        Downloading = "downloading",
        Uploading = "uploading",
        Retyping = "retyping",
        Extending = "extending",
    }
);

impl VolumeStatus {
    /// Cinder accepts a backup of a volume only in these states
    /// (`in-use` needs `force`).
    pub fn can_back_up(&self) -> bool {
        matches!(self, VolumeStatus::Available | VolumeStatus::InUse)
    }
}

status_enum!(
    /// Cinder backup status.
    BackupStatus {
        Creating = "creating",
        Available = "available",
        Deleting = "deleting",
        Error = "error",
        ErrorDeleting = "error_deleting",
        Restoring = "restoring",
    }
);

impl BackupStatus {
    /// Still moving: the backup service will change the status by itself.
    pub fn is_in_progress(&self) -> bool {
        matches!(self, BackupStatus::Creating | BackupStatus::Deleting | BackupStatus::Restoring)
    }
}

/// One quota: `limit` is -1 when unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub limit: i64,
    pub in_use: i64,
    pub reserved: i64,
}

impl Quota {
    pub fn is_unlimited(&self) -> bool {
        self.limit < 0
    }

    /// What is left (`None` when unlimited; never below 0).
    pub fn remaining(&self) -> Option<i64> {
        if self.is_unlimited() { None } else { Some((self.limit - self.in_use - self.reserved).max(0)) }
    }

    /// Whether `delta` more would exceed the limit (Cinder's own test:
    /// `limit >= 0 && limit < delta + in_use + reserved`).
    pub fn would_exceed(&self, delta: i64) -> bool {
        !self.is_unlimited() && self.limit < delta + self.in_use + self.reserved
    }
}

/// The backup quotas of one project: count and gigabytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupQuota {
    pub project_id: ProjectId,
    pub backups: Quota,
    pub gigabytes: Quota,
}

/// What Cinder's export-record returns: enough to import the backup elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub backup_service: String,
    pub backup_url: String,
}

/// A cinder-backup service as Cinder's service list shows it: its host, the
/// availability zone it serves, whether it reports (`up`) and whether the
/// operator left it enabled. Cinder sends a volume's backups only to the
/// backup services of the volume's zone that are up and enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHost {
    pub host: String,
    pub zone: String,
    pub up: bool,
    pub enabled: bool,
}

impl BackupHost {
    /// Whether Cinder may send it backups (up and enabled).
    pub fn usable(&self) -> bool {
        self.up && self.enabled
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_unknown_values_and_round_trip() {
        assert_eq!(VolumeStatus::parse("in-use"), VolumeStatus::InUse);
        assert_eq!(VolumeStatus::parse("error_backing-up"), VolumeStatus::ErrorBackingUp);
        let odd = VolumeStatus::parse("reverting");
        assert_eq!(odd, VolumeStatus::Unknown("reverting".into()));
        assert_eq!(odd.as_str(), "reverting");
        assert_eq!(BackupStatus::parse("error_deleting"), BackupStatus::ErrorDeleting);
        assert_eq!(BackupStatus::parse("weird").to_string(), "weird");
        let json = serde_json::to_string(&BackupStatus::Available).unwrap();
        assert_eq!(json, "\"available\"");
        let back: BackupStatus = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(back, BackupStatus::Unknown("paused".into()));
    }

    #[test]
    fn quota_arithmetic_follows_cinder() {
        let q = Quota { limit: 10, in_use: 8, reserved: 1 };
        assert_eq!(q.remaining(), Some(1));
        assert!(!q.would_exceed(1));
        assert!(q.would_exceed(2));
        let unlimited = Quota { limit: -1, in_use: 100, reserved: 0 };
        assert_eq!(unlimited.remaining(), None);
        assert!(!unlimited.would_exceed(1_000));
        let over = Quota { limit: 1, in_use: 3, reserved: 0 };
        assert_eq!(over.remaining(), Some(0));
    }
}
pub mod metadata;
pub mod task;
pub use task::TaskState;

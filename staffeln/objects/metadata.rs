//! The metadata Staffeln writes and reads on Cinder backups and Nova
//! servers, and how a metadata value reads as true: each defined once, here,
//! for every room (the conductor writes the keys, the guard, retention and
//! discovery read them).
//!
//! Metadata values are free text typed by tenants and tools. A value is true
//! the way OpenStack's services read a boolean string
//! (`oslo_utils.strutils.bool_from_string`): `1`, `t`, `true`, `on`, `y`,
//! `yes`, in any case, with surrounding blanks ignored; `0`, `f`, `false`,
//! `off`, `n`, `no` are false; anything else is neither. The same reading
//! serves the other boolean strings OpenStack hands Staffeln (Cinder's
//! `bootable`, query parameters, clouds.yaml, transport URL options).
//!
//! The configuration files are another grammar: oslo.config's `Boolean`
//! type accepts fewer words (no `t`, `y`, `f`, `n`) and no blanks, and a
//! value it does not know is an error there; that rule lives in
//! `conf::types::parse_bool`.

use std::collections::BTreeMap;

use super::{Backup, Server, Volume};

/// Backup metadata that marks a backup as Staffeln's: the conductor sets it
/// to [`AUTOMATED_VALUE`] on every backup it creates, and the deletion guard
/// refuses tenants the deletion of a backup that carries it.
pub const AUTOMATED_KEY: &str = "__automated_backup";
/// The value the conductor writes for [`AUTOMATED_KEY`].
pub const AUTOMATED_VALUE: &str = "True";
/// Backup metadata naming the conductor task that made the backup: a create
/// that may have happened already is looked up by it (creates are
/// idempotent), and the guard finds the task of a backup being made.
pub const TASK_KEY: &str = "__staffeln_task_id";
/// Backup metadata naming the server the volume was backed up for
/// (retention reads that server's rules from it once the volume is gone).
pub const INSTANCE_KEY: &str = "__staffeln_instance_id";

/// A boolean string as OpenStack reads it (see the module doc); `None` when
/// it is neither true nor false.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// Whether a value reads as true; anything else (false, unknown) does not.
pub fn is_true(text: &str) -> bool {
    parse_bool(text) == Some(true)
}

/// Whether `metadata` sets `key` to a true value.
pub fn is_set(metadata: &BTreeMap<String, String>, key: &str) -> bool {
    metadata.get(key).is_some_and(|v| is_true(v))
}

/// Whether backup metadata carries Staffeln's mark ([`AUTOMATED_KEY`] true).
pub fn is_marked_automated(metadata: &BTreeMap<String, String>) -> bool {
    is_set(metadata, AUTOMATED_KEY)
}

/// The task a backup's metadata names ([`TASK_KEY`]), if any.
pub fn task_of(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata.get(TASK_KEY).map(|t| t.trim()).filter(|t| !t.is_empty())
}

impl Server {
    /// The flag rule: a server is flagged for backup when its metadata
    /// `key` (`[conductor] backup_metadata_key`) reads true. The planner
    /// decides with it; discovery only uses it to read less.
    pub fn is_flagged(&self, key: &str) -> bool {
        is_set(&self.metadata, key)
    }
}

impl Volume {
    /// Whether the volume's metadata `key` (`[conductor]
    /// skip_volume_metadata_key`) asks not to back it up.
    pub fn skips_backup(&self, key: &str) -> bool {
        is_set(&self.metadata, key)
    }
}

impl Backup {
    /// Whether the backup carries Staffeln's mark ([`AUTOMATED_KEY`]).
    pub fn is_marked_automated(&self) -> bool {
        is_marked_automated(&self.metadata)
    }

    /// The task the backup names ([`TASK_KEY`]), if any.
    pub fn task_id(&self) -> Option<&str> {
        task_of(&self.metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_openstack_reads_boolean_strings() {
        for yes in ["True", "true", " TRUE ", "1", "yes", "Y", "t", "on", "ON\n"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes:?}");
            assert!(is_true(yes), "{yes:?}");
        }
        for no in ["False", "0", "no", "N", "f", "off", " false "] {
            assert_eq!(parse_bool(no), Some(false), "{no:?}");
            assert!(!is_true(no), "{no:?}");
        }
        for neither in ["", "2", "yes please", "enabled", "tru", "truee", "none"] {
            assert_eq!(parse_bool(neither), None, "{neither:?}");
            assert!(!is_true(neither), "{neither:?}");
        }
    }

    #[test]
    fn the_mark_the_task_and_the_flag_read_the_metadata() {
        let meta = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert!(is_marked_automated(&meta(&[(AUTOMATED_KEY, AUTOMATED_VALUE)])));
        assert!(is_marked_automated(&meta(&[(AUTOMATED_KEY, "yes")])));
        assert!(!is_marked_automated(&meta(&[(AUTOMATED_KEY, "False")])));
        assert!(!is_marked_automated(&meta(&[("__automated", "True")])));
        assert_eq!(task_of(&meta(&[(TASK_KEY, " t-1 ")])), Some("t-1"));
        assert_eq!(task_of(&meta(&[(TASK_KEY, "  ")])), None);
        assert!(is_set(&meta(&[("__staffeln_backup", "true")]), "__staffeln_backup"));
        assert!(!is_set(&meta(&[("__staffeln_backup", "maybe")]), "__staffeln_backup"));
        assert!(!is_set(&meta(&[]), "__staffeln_backup"));
    }
}

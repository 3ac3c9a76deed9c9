//! The two ways a configuration can be wrong, each one line that names the
//! group, the option and the value, and each making a binary exit with
//! status 2:
//! * [`ConfigError`]: the files do not load (grammar, types, bounds,
//!   choices, unknown files), found by the loader;
//! * [`SettingsError`]: the files load, but a room cannot use a value (a
//!   time zone that does not exist, a cron expression or retention rule that
//!   does not parse, a limit that is not a number), found when a room builds
//!   its settings with `from_config`, before anything starts.

use std::path::PathBuf;

/// What went wrong while loading the configuration; one line each, naming
/// the file (or variable), group, option, value and what was expected.
/// Secret values are shown as `****`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: [{group}] {option} = {value:?}: expected {expected}")]
    InvalidValue { origin: String, group: String, option: String, value: String, expected: String },
    #[error("{origin}: [{group}] {option} = {value:?}: {reason}")]
    Interpolation { origin: String, group: String, option: String, value: String, reason: String },
    #[error("{}:{line}: {message}", .file.display())]
    Parse { file: PathBuf, line: usize, message: &'static str },
    #[error("config file not found: {}", .path.display())]
    FileNotFound { path: PathBuf },
    #[error("cannot read config file {}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config directory not found: {}", .path.display())]
    DirNotFound { path: PathBuf },
    #[error("no such option [{group}] {option} on the command line")]
    UnknownOption { group: String, option: String },
    #[error("option [{group}] {option} is defined wrongly: {reason}")]
    Definition { group: String, option: String, reason: String },
}

impl ConfigError {
    /// The exit code of a binary that cannot start with this configuration.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// A value that loads but that its room cannot use: `[group] option =
/// "value": reason`. Rooms build their settings with `from_config(&Config)`
/// and return this; binaries print it as their one line and exit with
/// status 2 before starting anything. Secret values are shown as `****`.
#[derive(Debug, thiserror::Error)]
#[error("[{group}] {option} = {value:?}: {reason}")]
pub struct SettingsError {
    pub group: String,
    pub option: String,
    /// The value as the configuration holds it (`****` for secrets).
    pub value: String,
    /// What was expected, or why the value cannot be used.
    pub reason: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SettingsError {
    /// `[group] option = "value": reason`.
    pub fn new(group: &str, option: &str, value: impl ToString, reason: impl Into<String>) -> SettingsError {
        SettingsError {
            group: group.to_owned(),
            option: option.to_owned(),
            value: value.to_string(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same for a secret option: its value is shown as `****`.
    pub fn secret(group: &str, option: &str, reason: impl Into<String>) -> SettingsError {
        SettingsError::new(group, option, "****", reason)
    }

    /// Keeps `source` as the cause (printed after the reason).
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> SettingsError {
        self.source = Some(Box::new(source));
        self
    }

    /// The exit code of a binary that cannot start with this value.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

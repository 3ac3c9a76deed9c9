//! The compression settings as plain data, and their validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::conf::{Config, SettingsError};

/// BlueStore `compression_mode` of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Never compress.
    None,
    /// Compress only writes hinted as compressible.
    Passive,
    /// Compress unless a write is hinted as incompressible (the sensible
    /// choice for backups: RBD writes carry no hint).
    Aggressive,
    /// Always compress.
    Force,
}

/// BlueStore `compression_algorithm` of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Snappy,
    Zlib,
    Zstd,
    Lz4,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::None, Mode::Passive, Mode::Aggressive, Mode::Force];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Passive => "passive",
            Mode::Aggressive => "aggressive",
            Mode::Force => "force",
        }
    }
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [Algorithm::Snappy, Algorithm::Zlib, Algorithm::Zstd, Algorithm::Lz4];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Snappy => "snappy",
            Algorithm::Zlib => "zlib",
            Algorithm::Zstd => "zstd",
            Algorithm::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| refused("mode", s.to_owned(), "expected one of none, passive, aggressive, force".to_owned()))
    }
}

impl FromStr for Algorithm {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| refused("algorithm", s.to_owned(), "expected one of snappy, zlib, zstd, lz4".to_owned()))
    }
}

/// A `[ceph_compression]` value Staffeln refuses, naming the option and why.
fn refused(option: &str, value: impl ToString, reason: impl Into<String>) -> SettingsError {
    SettingsError::new(GROUP, option, value, reason)
}

/// The configuration group of these settings.
const GROUP: &str = "ceph_compression";

/// What `[ceph_compression]` holds. `None` means "leave the pool's property
/// alone" (the cluster-wide `bluestore_compression_*` default applies).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The pool Cinder's Ceph backup driver writes to (`backup_ceph_pool`).
    pub pool: String,
    pub mode: Mode,
    pub algorithm: Option<Algorithm>,
    /// Keep the compressed blob only if compressed/original is at most this.
    pub required_ratio: Option<f64>,
    /// Bytes; chunks smaller than this are not compressed.
    pub min_blob_size: Option<u64>,
    /// Bytes; chunks larger than this are split before compression.
    pub max_blob_size: Option<u64>,
    /// The `ceph` executable (a name looked up in `PATH`, or a path).
    pub ceph_cli: PathBuf,
    /// `--conf`: the cluster's ceph.conf (the CLI's own default if unset).
    pub ceph_conf: Option<PathBuf>,
    /// `--id`: the cephx user without `client.` (the CLI's default if unset).
    pub ceph_id: Option<String>,
    /// `--connect-timeout` in seconds, so an unreachable cluster fails
    /// instead of hanging.
    pub connect_timeout: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pool: "backups".to_owned(),
            mode: Mode::Aggressive,
            algorithm: None,
            required_ratio: None,
            min_blob_size: None,
            max_blob_size: None,
            ceph_cli: PathBuf::from("ceph"),
            ceph_conf: None,
            ceph_id: None,
            connect_timeout: 30,
        }
    }
}

impl Settings {
    /// Checks what `show` needs: a pool name the CLI will take as one argument.
    pub fn validate_target(&self) -> Result<(), SettingsError> {
        let bad = |reason: &str| refused("pool", self.pool.clone(), reason.to_owned());
        if self.pool.is_empty() {
            return Err(bad("must not be empty"));
        }
        if self.pool.starts_with('-') || self.pool.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not start with '-' or contain whitespace"));
        }
        if let Some(id) = &self.ceph_id
            && (id.is_empty() || id.starts_with("client.") || id.chars().any(char::is_whitespace))
        {
            return Err(refused(
                "ceph_id",
                id.clone(),
                "give the cephx user name without the 'client.' prefix (e.g. cinder-backup)".to_owned(),
            ));
        }
        if self.ceph_cli.as_os_str().is_empty() {
            return Err(refused("ceph_cli", String::new(), "must not be empty".to_owned()));
        }
        Ok(())
    }

    /// Checks everything `apply` would write. Refused, with the reason:
    /// * `required_ratio` outside `(0, 1]` (0 would discard every compressed
    ///   blob, above 1 would keep blobs that grew);
    /// * `min_blob_size` greater than `max_blob_size`;
    /// * `mode = none` together with `algorithm`, `required_ratio` or a blob
    ///   size: those settings would silently do nothing, which is almost
    ///   always a mistake in the file (choose a mode, or remove them).
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_target()?;
        if let Some(ratio) = self.required_ratio
            && !(ratio > 0.0 && ratio <= 1.0)
        {
            return Err(refused(
                "required_ratio",
                ratio.to_string(),
                "must be greater than 0 and at most 1 (compressed size / original size)".to_owned(),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_blob_size, self.max_blob_size)
            && min > max
        {
            return Err(refused("min_blob_size", min, format!("is greater than max_blob_size = {max}")));
        }
        if self.mode == Mode::None {
            let ignored = [
                ("algorithm", self.algorithm.map(|a| a.to_string())),
                ("required_ratio", self.required_ratio.map(|r| r.to_string())),
                ("min_blob_size", self.min_blob_size.map(|v| v.to_string())),
                ("max_blob_size", self.max_blob_size.map(|v| v.to_string())),
            ];
            if let Some((option, Some(value))) = ignored.into_iter().find(|(_, v)| v.is_some()) {
                return Err(refused(
                    option,
                    value,
                    "has no effect with mode = none; set mode to passive, aggressive or force, or remove it".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// The pool properties `apply` sets, in order: everything else first and
    /// `compression_mode` last, so compression starts with the final settings.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(a) = self.algorithm {
            out.push(("compression_algorithm", a.to_string()));
        }
        if let Some(r) = self.required_ratio {
            out.push(("compression_required_ratio", r.to_string()));
        }
        if let Some(v) = self.min_blob_size {
            out.push(("compression_min_blob_size", v.to_string()));
        }
        if let Some(v) = self.max_blob_size {
            out.push(("compression_max_blob_size", v.to_string()));
        }
        out.push(("compression_mode", self.mode.to_string()));
        out
    }
}

/// Every pool property `show` reads, in display order.
pub const PROPERTIES: [&str; 5] = [
    "compression_mode",
    "compression_algorithm",
    "compression_required_ratio",
    "compression_min_blob_size",
    "compression_max_blob_size",
];

impl Settings {
    /// The settings of `[ceph_compression]`, validated.
    pub fn from_config(conf: &Config) -> Result<Settings, SettingsError> {
        let opts = &conf.ceph_compression;
        let required_ratio = match &opts.required_ratio {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| refused("required_ratio", text.clone(), "expected a number in (0, 1]".to_owned()))?,
            ),
        };
        let settings = Settings {
            pool: opts.pool.clone(),
            mode: opts.mode.parse()?,
            algorithm: opts.algorithm.as_deref().map(str::parse).transpose()?,
            required_ratio,
            min_blob_size: opts.min_blob_size.map(|n| u64::try_from(n).unwrap_or(0)),
            max_blob_size: opts.max_blob_size.map(|n| u64::try_from(n).unwrap_or(0)),
            ceph_cli: PathBuf::from(&opts.ceph_cli),
            ceph_conf: opts.ceph_conf.as_ref().map(PathBuf::from),
            ceph_id: opts.ceph_id.clone(),
            connect_timeout: opts.connect_timeout,
        };
        settings.validate()?;
        Ok(settings)
    }
}

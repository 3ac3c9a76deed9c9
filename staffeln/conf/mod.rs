//! Staffeln's configuration, compatible with oslo.config.
//!
//! What lives here: every option, defined once in `opts/<group>.rs` with the
//! `options!` macro (name, type, default, bounds, help, deprecated names,
//! secret, mutable, command-line flag); the oslo INI dialect ([`ini`]); the
//! types and their conversion rules ([`types`]); the loader ([`load()`]: files,
//! `--config-dir`, `OS_<GROUP>__<OPT>`, interpolation, deprecated names); the
//! `oslo-config-generator`-format sample ([`sample()`]); [`Secret`]; the
//! oslo-style command-line arguments ([`OsloArgs`]).
//!
//! What it leaves to others: logging the warnings and the option dump
//! (`service`), choosing the program name, exit codes and signal handling.
//! The edge with the outside world is [`load()`]: it reads files and takes the
//! environment as a map, so everything else here is pure.
//!
//! The rules are those of oslo.config 10.7 (`oslo_config/cfg.py` and
//! `iniparser.py` upstream); the integration tests check
//! them against the real Python library. Known differences are listed on
//! [`load()`].

pub mod cli;
pub mod ini;
pub mod load;
pub mod opts;
pub mod sample;
pub mod secret;
pub mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cli::OsloArgs;
pub use load::{Resolved, Source, resolve};
pub use opts::{
    ApiOpts, CephCompressionOpts, ConductorOpts, Config, CoordinationOpts, DatabaseOpts, DefaultOpts, GroupDef,
    NotificationOpts, OpenStackOpts, OptDef,
};
pub use sample::sample;
pub use secret::Secret;
pub use types::{OsloDuration, Value};

/// The project name: `staffeln.conf`, `/etc/staffeln/`, `~/.staffeln/`.
pub const PROJECT: &str = "staffeln";

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

/// A loaded configuration and what the loader has to say about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// Deprecation messages in oslo's wording, to log once logging is up.
    pub warnings: Vec<String>,
}

/// Loads the configuration from `sources` (in command-line order) and the
/// environment (`OS_<GROUP>__<OPT>`).
///
/// Differences from oslo.config, on purpose:
/// * every option is resolved (and checked) here, not on first use;
/// * an option set both in a file and on the command line: oslo lets an
///   `OS_…` variable beat the command-line value when any file also sets
///   the option; here the command line always beats the environment;
/// * an empty integer (`workers =`) is oslo's `None`; a field that is not an
///   `Option` then gets the option's default;
/// * a reference cycle (`a = $b`, `b = $a`) is an error, not a Python
///   `RecursionError`.
pub fn load(sources: &[Source], env: &BTreeMap<String, String>) -> Result<Loaded, ConfigError> {
    let resolved = resolve(registry(), sources, env)?;
    let config = Config::from_source(&resolved)?;
    Ok(Loaded { config, files: resolved.files, warnings: resolved.warnings })
}

impl Default for Config {
    /// Every option at its default, interpolated (`$state_path`).
    fn default() -> Self {
        match load(&[], &BTreeMap::new()) {
            Ok(loaded) => loaded.config,
            // The defaults are constants checked by the tests.
            Err(e) => unreachable!("the built-in defaults do not load: {e}"),
        }
    }
}

/// Every group with its options, `[DEFAULT]` first.
pub fn registry() -> &'static [GroupDef] {
    opts::REGISTRY
}

/// The directories oslo searches for default files and directories.
fn search_dirs(project: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(format!(".{project}")));
        dirs.push(home);
    }
    dirs.push(PathBuf::from("/etc").join(project));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

fn find_first(project: &str, prog: &str, extension: &str) -> Vec<PathBuf> {
    find_first_in(&search_dirs(project), project, prog, extension)
}

/// For each of `project` and `prog`, the first `<dir>/<name><extension>`
/// that exists (oslo's `_search_dirs`).
fn find_first_in(dirs: &[PathBuf], project: &str, prog: &str, extension: &str) -> Vec<PathBuf> {
    [project, prog]
        .iter()
        .filter(|name| !name.is_empty())
        .filter_map(|name| dirs.iter().map(|d| d.join(format!("{name}{extension}"))).find(|p| p.exists()))
        .collect()
}

/// oslo's default config files: the first `<project>.conf` and the first
/// `<prog>.conf` found in `~/.<project>/`, `~/`, `/etc/<project>/`, `/etc/`.
pub fn default_config_files(project: &str, prog: &str) -> Vec<Source> {
    find_first(project, prog, ".conf").into_iter().map(Source::File).collect()
}

/// oslo's default config dirs: `<project>.conf.d/` and `<prog>.conf.d/`,
/// searched the same way; missing ones are skipped.
pub fn default_config_dirs(project: &str, prog: &str) -> Vec<Source> {
    find_first(project, prog, ".conf.d").into_iter().map(Source::Dir).collect()
}

/// The default files, then the default directories (oslo's order when
/// neither `--config-file` nor `--config-dir` is given).
pub fn default_sources(project: &str, prog: &str) -> Vec<Source> {
    let mut sources = default_config_files(project, prog);
    sources.extend(default_config_dirs(project, prog));
    sources
}

/// One option that differs between two configurations (for SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptChange {
    pub group: String,
    pub name: String,
    /// Python-style text of the old value; `****` for secrets.
    pub old: String,
    pub new: String,
    /// Whether the option may change without a restart.
    pub mutable: bool,
}

fn shown(def: Option<&OptDef>, value: &Value) -> String {
    if def.is_some_and(|d| d.secret) { "****".to_owned() } else { value.display() }
}

fn opt_def(group: &str, name: &str) -> Option<&'static OptDef> {
    registry().iter().find(|g| g.name == group).and_then(|g| g.opt(name))
}

/// The options whose value differs, in registry order.
pub fn changes(old: &Config, new: &Config) -> Vec<OptChange> {
    let mut out = Vec::new();
    for ((group, old_values), (_, new_values)) in old.values().into_iter().zip(new.values()) {
        for ((name, a), (_, b)) in old_values.into_iter().zip(new_values) {
            if a != b {
                let def = opt_def(group, name);
                out.push(OptChange {
                    group: group.to_owned(),
                    name: name.to_owned(),
                    old: shown(def, &a),
                    new: shown(def, &b),
                    mutable: def.is_some_and(|d| d.mutable),
                });
            }
        }
    }
    out
}

/// Copies into `running` the options of `new` that may change without a
/// restart (those marked mutable); the others keep their running values.
pub fn apply_mutable(running: &mut Config, new: &Config) {
    running.apply_mutable(new);
}

/// oslo's `log_opt_values` lines: `(name, value)` with DEFAULT options bare
/// and the others as `group.opt`, sorted like oslo (DEFAULT first, then
/// groups and options by name); secrets as `****`.
pub fn dump(cfg: &Config) -> Vec<(String, String)> {
    let mut groups = cfg.values();
    groups.sort_by_key(|(g, _)| (*g != "DEFAULT", *g));
    let mut out = Vec::new();
    for (group, mut values) in groups {
        values.sort_by_key(|(name, _)| *name);
        for (name, value) in values {
            let key = if group == "DEFAULT" { name.to_owned() } else { format!("{group}.{name}") };
            out.push((key, shown(opt_def(group, name), &value)));
        }
    }
    out
}

/// The host name (Python's `socket.gethostname()`), the default of
/// `[DEFAULT] host`.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;

//! Staffeln's configuration, compatible with oslo.config.
//!
//! What lives here: every option, defined once in `opts/<group>.rs` with the
//! `options!` macro (name, type, default, bounds, help, deprecated names,
//! secret, mutable, command-line flag); the oslo INI dialect ([`ini`]); the
//! types and their conversion rules ([`types`]); the loader ([`load()`]: files,
//! `--config-dir`, `OS_<GROUP>__<OPT>`, interpolation, deprecated names); the
//! `oslo-config-generator`-format sample ([`sample()`]); [`Secret`]; the
//! oslo-style command-line arguments ([`OsloArgs`]); where oslo looks for
//! files (`files.rs`); and the two errors (`error.rs`): [`ConfigError`], a
//! file that does not load, and [`SettingsError`], a value that loads but
//! that a room's `from_config` refuses. Both make a binary exit with
//! status 2 and one line.
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
mod error;
mod files;
pub mod ini;
pub mod load;
pub mod opts;
pub mod sample;
pub mod secret;
pub mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cli::OsloArgs;
pub use error::{ConfigError, SettingsError};
pub(crate) use files::hostname;
pub use files::{PROJECT, default_config_dirs, default_config_files, default_sources};
pub use load::{Resolved, Source, resolve};
pub use opts::{
    ApiOpts, CephCompressionOpts, ConductorOpts, Config, CoordinationOpts, DatabaseOpts, DefaultOpts, GroupDef,
    NotificationOpts, OpenStackOpts, OptDef,
};
pub use sample::sample;
pub use secret::Secret;
pub use types::{OsloDuration, Value};

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

#[cfg(test)]
mod tests;

//! Resolving every option from its sources, the way oslo.config does.
//!
//! Sources are read in command-line order ([`Source`]); a `Dir` contributes
//! its `*.conf` files, sorted by code point, at its position. For one option:
//!
//! 1. the newest source that sets it wins (files newest first; inside a file
//!    the current name before deprecated aliases, the last occurrence of a
//!    key); a multi-valued option collects every occurrence, oldest first;
//! 2. if that newest source is the command line, it wins; otherwise
//!    `OS_<GROUP>__<OPT>` from the environment beats the files;
//! 3. otherwise the default.
//!
//! The chosen text (the default too) is interpolated (`$name`, `${name}`,
//! `${group.name}`, `$$`, `\$`), then converted by the option's type. Every
//! option is resolved at load time, so a bad value fails start-up rather than
//! its first use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::ini::{self, Sections};
use super::opts::{GroupDef, OptDef, ValueSource};
use super::types::{self, Constraints, Kind, Value};

/// One place options come from, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config-file PATH`: must exist and parse.
    File(PathBuf),
    /// `--config-dir DIR`: every `DIR/*.conf`, sorted; the directory must exist.
    Dir(PathBuf),
    /// An option given on the command line (`--debug`, `--log-file x`).
    Cli { group: String, name: String, value: String },
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env(String),
    CommandLine,
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::Default => f.write_str("default"),
        }
    }
}

enum Layer {
    File { path: PathBuf, sections: Sections },
    Cli { group: String, name: String, value: String },
}

/// Every option's resolved value, plus what the loader read and warned about.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    values: BTreeMap<(String, String), Value>,
    defaults: BTreeMap<(String, String), Value>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Deprecation messages in oslo's wording.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// The value of `[group] name`, if the option is registered.
    pub fn get(&self, group: &str, name: &str) -> Option<&Value> {
        self.values.get(&(group.to_owned(), name.to_owned()))
    }
}

impl ValueSource for Resolved {
    fn value(&self, group: &str, name: &str) -> Option<&Value> {
        self.get(group, name)
    }
    fn default_value(&self, group: &str, name: &str) -> Option<&Value> {
        self.defaults.get(&(group.to_owned(), name.to_owned()))
    }
}

/// The environment variable oslo reads for an option: `OS_<GROUP>__<OPT>`.
pub fn env_name(group: &str, name: &str) -> String {
    format!("OS_{}__{}", group.to_uppercase(), name.to_uppercase())
}

/// Reads the sources and resolves every option of `registry`.
pub fn resolve(
    registry: &[GroupDef],
    sources: &[Source],
    env: &BTreeMap<String, String>,
) -> Result<Resolved, ConfigError> {
    let mut layers = Vec::new();
    let mut files = Vec::new();
    for source in sources {
        match source {
            Source::File(path) => {
                layers.push(read_file(path)?);
                files.push(path.clone());
            }
            Source::Dir(dir) => {
                for path in dir_files(dir)? {
                    layers.push(read_file(&path)?);
                    files.push(path);
                }
            }
            Source::Cli { group, name, value } => {
                let known = registry.iter().any(|g| g.name == group && g.opt(name).is_some());
                if !known {
                    return Err(ConfigError::UnknownOption { group: group.clone(), option: name.clone() });
                }
                layers.push(Layer::Cli { group: group.clone(), name: name.clone(), value: value.clone() });
            }
        }
    }
    let mut r = Resolver {
        registry,
        layers,
        env,
        values: BTreeMap::new(),
        defaults: BTreeMap::new(),
        in_progress: Vec::new(),
        warnings: Vec::new(),
        warned: BTreeSet::new(),
    };
    for group in registry {
        for opt in group.opts {
            r.value(group, opt)?;
            r.default(group, opt)?;
        }
    }
    Ok(Resolved { values: r.values, defaults: r.defaults, files, warnings: r.warnings })
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::FileNotFound { path: path.to_owned() }
        } else {
            ConfigError::Unreadable { path: path.to_owned(), source }
        }
    })?;
    let sections = ini::parse(&text).map_err(|e| ConfigError::Parse {
        file: path.to_owned(),
        line: e.line,
        message: e.message,
    })?;
    Ok(Layer::File { path: path.to_owned(), sections })
}

/// `DIR/*.conf` as Python's `sorted(glob(...))`: hidden files skipped,
/// sorted by code point.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if !dir.exists() {
        return Err(ConfigError::DirNotFound { path: dir.to_owned() });
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A path that exists but is no directory matches nothing, like glob.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Unreadable { path: dir.to_owned(), source });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Unreadable { path: dir.to_owned(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".conf") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// The text chosen for an option before interpolation.
enum Raw {
    One(String, Origin),
    Many(Vec<String>, Origin),
}

struct Resolver<'a> {
    registry: &'a [GroupDef],
    layers: Vec<Layer>,
    env: &'a BTreeMap<String, String>,
    values: BTreeMap<(String, String), Value>,
    defaults: BTreeMap<(String, String), Value>,
    in_progress: Vec<(String, String)>,
    warnings: Vec<String>,
    warned: BTreeSet<(String, String)>,
}

impl Resolver<'_> {
    fn value(&mut self, group: &GroupDef, opt: &OptDef) -> Result<Value, ConfigError> {
        let key = (group.name.to_owned(), opt.name.to_owned());
        if let Some(v) = self.values.get(&key) {
            return Ok(v.clone());
        }
        if self.in_progress.contains(&key) {
            return Err(self.interpolation_error(group, opt, "", Origin::Default, "recursive reference"));
        }
        self.in_progress.push(key.clone());
        let result = match self.raw(group, opt) {
            Some(raw) => self.convert(group, opt, raw),
            None => self.default(group, opt),
        };
        self.in_progress.retain(|k| *k != key);
        let value = result?;
        self.values.insert(key, value.clone());
        Ok(value)
    }

    fn default(&mut self, group: &GroupDef, opt: &OptDef) -> Result<Value, ConfigError> {
        let key = (group.name.to_owned(), opt.name.to_owned());
        if let Some(v) = self.defaults.get(&key) {
            return Ok(v.clone());
        }
        let value = match (opt.default_text(), opt.kind) {
            (None, _) => Value::None,
            (Some(text), _) => self.convert(group, opt, Raw::One(text, Origin::Default))?,
        };
        self.defaults.insert(key, value.clone());
        Ok(value)
    }

    /// The newest layer setting the option; env between CLI and files.
    fn raw(&mut self, group: &GroupDef, opt: &OptDef) -> Option<Raw> {
        let mut names: Vec<(String, &str)> = vec![(group.name.to_owned(), opt.name)];
        for (g, n) in opt.deprecated {
            let g = if g.is_empty() { group.name } else { g };
            names.push((ini::normalize_group(g), n));
        }
        let env_var = env_name(group.name, opt.name);
        let env = self.env.get(&env_var).cloned();

        if opt.kind == Kind::MultiStr {
            return self.raw_multi(group, opt, &names, env, env_var);
        }
        let mut hit: Option<(String, Origin, usize)> = None;
        for layer in self.layers.iter().rev() {
            match layer {
                Layer::Cli { group: g, name, value } => {
                    if names.iter().any(|(ng, nn)| ng == g && nn == name) {
                        return Some(Raw::One(value.clone(), Origin::CommandLine));
                    }
                }
                Layer::File { path, sections } => {
                    let found = names.iter().enumerate().find_map(|(i, (g, n))| {
                        let entries = sections.get(g)?.get(*n)?;
                        entries.last().map(|e| (e.value.clone(), e.line, i))
                    });
                    if let Some((value, line, i)) = found {
                        hit = Some((value, Origin::File { path: path.clone(), line }, i));
                        break;
                    }
                }
            }
        }
        if let Some(value) = env {
            return Some(Raw::One(value, Origin::Env(env_var)));
        }
        let (value, origin, i) = hit?;
        if i > 0 {
            self.warn_deprecated(group, opt, &names[i].0, names[i].1);
        }
        Some(Raw::One(value, origin))
    }

    fn raw_multi(
        &mut self,
        group: &GroupDef,
        opt: &OptDef,
        names: &[(String, &str)],
        env: Option<String>,
        env_var: String,
    ) -> Option<Raw> {
        let mut values: Vec<String> = Vec::new();
        let mut origin = None;
        let mut used = Vec::new();
        let mut from_cli = false;
        for layer in &self.layers {
            match layer {
                Layer::Cli { group: g, name, value } => {
                    if names.iter().any(|(ng, nn)| ng == g && nn == name) {
                        values.push(value.clone());
                        from_cli = true;
                    }
                }
                Layer::File { path, sections } => {
                    // oslo prepends name by name while walking files newest
                    // first: inside one file the aliases' values come first.
                    for (i, (g, n)) in names.iter().enumerate().rev() {
                        if let Some(entries) = sections.get(g).and_then(|s| s.get(*n)) {
                            values.extend(entries.iter().map(|e| e.value.clone()));
                            if origin.is_none() {
                                let line = entries.first().map_or(0, |e| e.line);
                                origin = Some(Origin::File { path: path.clone(), line });
                            }
                            if i > 0 {
                                used.push(i);
                            }
                        }
                    }
                }
            }
        }
        if !from_cli && let Some(value) = env {
            return Some(Raw::Many(vec![value], Origin::Env(env_var)));
        }
        for i in used {
            self.warn_deprecated(group, opt, &names[i].0, names[i].1);
        }
        if from_cli {
            return Some(Raw::Many(values, Origin::CommandLine));
        }
        origin.map(|o| Raw::Many(values, o))
    }

    fn warn_deprecated(&mut self, group: &GroupDef, opt: &OptDef, old_group: &str, old_name: &str) {
        if self.warned.insert((old_group.to_owned(), old_name.to_owned())) {
            // oslo.log's CLI options are named with dashes (`log-file`), and
            // oslo names the option by its name, not its dest.
            let new_name = opt.cli.map_or(opt.name, |c| c.long);
            self.warnings.push(format!(
                "Deprecated: Option \"{old_name}\" from group \"{old_group}\" is deprecated. \
                 Use option \"{new_name}\" from group \"{}\".",
                group.name
            ));
        }
    }

    fn convert(&mut self, group: &GroupDef, opt: &OptDef, raw: Raw) -> Result<Value, ConfigError> {
        let constraints = Constraints { min: opt.min, max: opt.max, choices: opt.choices, regex: opt.regex };
        let (texts, origin, many) = match raw {
            Raw::One(t, o) => (vec![t], o, false),
            Raw::Many(t, o) => (t, o, true),
        };
        let mut converted = Vec::new();
        for text in texts {
            let interpolated = self.substitute(group, opt, &text, &origin)?;
            let value = types::convert(opt.kind, &interpolated, &constraints).map_err(|expected| {
                // The value as written: what `$name` inserted may be a secret.
                ConfigError::InvalidValue {
                    origin: origin.to_string(),
                    group: group.name.to_owned(),
                    option: opt.name.to_owned(),
                    value: shown(opt, &text),
                    expected,
                }
            })?;
            converted.push(value);
        }
        if many || opt.kind == Kind::MultiStr {
            let items = converted
                .into_iter()
                .flat_map(|v| match v {
                    Value::Multi(items) => items,
                    other => vec![other.interpolation_text()],
                })
                .collect();
            return Ok(Value::Multi(items));
        }
        Ok(converted.pop().unwrap_or(Value::None))
    }

    /// oslo's `_substitute`: `\$` is `$$`, then Python's `string.Template`
    /// with identifiers `[_a-z][._a-z0-9]*` (any case).
    fn substitute(
        &mut self,
        group: &GroupDef,
        opt: &OptDef,
        text: &str,
        origin: &Origin,
    ) -> Result<String, ConfigError> {
        if !text.contains('$') {
            return Ok(text.to_owned());
        }
        let text = text.replace("\\$", "$$");
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '$' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let ident_at = |at: usize| -> usize {
                let mut end = at;
                if end < chars.len() && (chars[end] == '_' || chars[end].is_ascii_alphabetic()) {
                    end += 1;
                    while end < chars.len()
                        && (chars[end] == '_' || chars[end] == '.' || chars[end].is_ascii_alphanumeric())
                    {
                        end += 1;
                    }
                }
                end
            };
            let next = chars.get(i + 1).copied();
            let (name, after) = if next == Some('$') {
                out.push('$');
                i += 2;
                continue;
            } else if ident_at(i + 1) > i + 1 {
                let end = ident_at(i + 1);
                (chars[i + 1..end].iter().collect::<String>(), end)
            } else if next == Some('{') && ident_at(i + 2) > i + 2 && chars.get(ident_at(i + 2)) == Some(&'}') {
                let end = ident_at(i + 2);
                (chars[i + 2..end].iter().collect::<String>(), end + 1)
            } else {
                out.push('$');
                i += 1;
                continue;
            };
            let value = self.lookup(group, opt, &name, &text, origin)?;
            out.push_str(&value.interpolation_text());
            i = after;
        }
        Ok(out)
    }

    /// `$name`: this group, then DEFAULT; `$group.name`: that group.
    fn lookup(
        &mut self,
        group: &GroupDef,
        opt: &OptDef,
        name: &str,
        text: &str,
        origin: &Origin,
    ) -> Result<Value, ConfigError> {
        let registry = self.registry;
        let target = match name.split_once('.') {
            Some((g, n)) => {
                let Some(target_group) = registry.iter().find(|gd| gd.name == g && g != "DEFAULT") else {
                    let reason = format!("no such group [{g}] in ${name}");
                    return Err(self.interpolation_error(group, opt, text, origin.clone(), &reason));
                };
                target_group.opt(n).map(|o| (target_group, o))
            }
            None => group
                .opt(name)
                .map(|o| (group, o))
                .or_else(|| registry.iter().find(|g| g.name == "DEFAULT").and_then(|g| g.opt(name).map(|o| (g, o)))),
        };
        match target {
            Some((g, o)) => {
                let key = (g.name.to_owned(), o.name.to_owned());
                if self.in_progress.contains(&key) {
                    let reason = format!("recursive reference ${name}");
                    return Err(self.interpolation_error(group, opt, text, origin.clone(), &reason));
                }
                self.value(g, o)
            }
            None => {
                // The name is part of the value: keep it out of a secret's error.
                let shown_name = if opt.secret { "…" } else { name };
                let reason = format!("no such option ${shown_name} (write $$ for a literal $)");
                Err(self.interpolation_error(group, opt, text, origin.clone(), &reason))
            }
        }
    }

    fn interpolation_error(
        &self,
        group: &GroupDef,
        opt: &OptDef,
        text: &str,
        origin: Origin,
        reason: &str,
    ) -> ConfigError {
        ConfigError::Interpolation {
            origin: origin.to_string(),
            group: group.name.to_owned(),
            option: opt.name.to_owned(),
            value: shown(opt, text),
            reason: reason.to_owned(),
        }
    }
}

/// The value as errors may show it: `****` for secrets.
fn shown(opt: &OptDef, text: &str) -> String {
    if opt.secret { "****".to_owned() } else { text.to_owned() }
}

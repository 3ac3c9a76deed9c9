//! What an option definition is: [`OptDef`] with its `const` builders
//! (`integer(1800).min(60)`), [`GroupDef`], and how a field is built from
//! the loader's values. The group files and the `options!` macro of
//! `opts/mod.rs` use these; nothing here knows any group.

use crate::conf::error::ConfigError;
use crate::conf::types::{Kind, OptField, Value};

/// The default of an option.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// No default: the option is `None` unless set.
    None,
    /// A default written as it would be in a file (`"2w3d"`, `"a,b"`); it is
    /// interpolated (`$state_path`) and converted like a file value.
    Text(&'static str),
    Int(i64),
    Bool(bool),
    /// Computed when the configuration is loaded (the host name).
    Computed(fn() -> String),
}

/// A command-line flag that sets the option (oslo's `register_cli_opt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliFlag {
    /// `--log-file`: the option name with `_` turned into `-`.
    pub long: &'static str,
    pub short: Option<char>,
}

/// The definition of one option. Built with the `const` constructors below
/// (`integer(1800).min(60)`) inside [`options!`], which adds name and help.
#[derive(Debug, Clone, Copy)]
pub struct OptDef {
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// What the sample shows instead of a computed default (`<hostname>`).
    pub sample_default: Option<&'static str>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// `(value, description)`; an empty description prints as
    /// `<No description provided>` in the sample.
    pub choices: &'static [(&'static str, &'static str)],
    pub regex: Option<&'static str>,
    /// The `///` lines of the option, as written; see [`OptDef::help`].
    pub help_lines: &'static [&'static str],
    /// `(group, name)`; an empty group means the option's own group.
    pub deprecated: &'static [(&'static str, &'static str)],
    pub secret: bool,
    pub mutable: bool,
    pub cli: Option<CliFlag>,
}

const fn base(kind: Kind, default: DefaultValue) -> OptDef {
    OptDef {
        name: "",
        kind,
        default,
        sample_default: None,
        min: None,
        max: None,
        choices: &[],
        regex: None,
        help_lines: &[],
        deprecated: &[],
        secret: false,
        mutable: false,
        cli: None,
    }
}

/// A string option with a default.
pub const fn string(default: &'static str) -> OptDef {
    base(Kind::Str, DefaultValue::Text(default))
}
/// A string option without a default (`None` unless set).
pub const fn unset_string() -> OptDef {
    base(Kind::Str, DefaultValue::None)
}
/// A string option whose default is computed at load time.
pub const fn computed_string(f: fn() -> String) -> OptDef {
    base(Kind::Str, DefaultValue::Computed(f))
}
/// An integer option without a default (`None` unless set).
pub const fn unset_integer() -> OptDef {
    base(Kind::Int, DefaultValue::None)
}
pub const fn boolean(default: bool) -> OptDef {
    base(Kind::Bool, DefaultValue::Bool(default))
}
pub const fn integer(default: i64) -> OptDef {
    base(Kind::Int, DefaultValue::Int(default))
}
pub const fn port(default: i64) -> OptDef {
    let mut d = base(Kind::Port, DefaultValue::Int(default));
    d.min = Some(0);
    d.max = Some(65_535);
    d
}
/// A list of strings; the default is written as in a file (`"a,b"`).
pub const fn list(default: &'static str) -> OptDef {
    base(Kind::List, DefaultValue::Text(default))
}
/// A dict of strings; the default is written as in a file (`"a:1,b:2"`).
pub const fn dict(default: &'static str) -> OptDef {
    base(Kind::Dict, DefaultValue::Text(default))
}
/// A multi-valued string: every occurrence in every file, oldest first.
pub const fn multi_string() -> OptDef {
    base(Kind::MultiStr, DefaultValue::None)
}
/// A staffeln duration (`2w3d`), see [`crate::conf::types::OsloDuration`].
pub const fn duration(default: &'static str) -> OptDef {
    base(Kind::Duration, DefaultValue::Text(default))
}

impl OptDef {
    pub const fn min(mut self, min: i64) -> Self {
        self.min = Some(min);
        self
    }
    pub const fn max(mut self, max: i64) -> Self {
        self.max = Some(max);
        self
    }
    pub const fn choices(mut self, choices: &'static [(&'static str, &'static str)]) -> Self {
        self.choices = choices;
        self
    }
    pub const fn regex(mut self, regex: &'static str) -> Self {
        self.regex = Some(regex);
        self
    }
    /// Deprecated aliases `(group, name)`; `""` as group means this group.
    pub const fn deprecated(mut self, names: &'static [(&'static str, &'static str)]) -> Self {
        self.deprecated = names;
        self
    }
    /// Printed as `****` in dumps, change logs and errors.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    /// Applied on SIGHUP without a restart.
    pub const fn mutable(mut self) -> Self {
        self.mutable = true;
        self
    }
    pub const fn sample_default(mut self, text: &'static str) -> Self {
        self.sample_default = Some(text);
        self
    }
    /// Also a command-line flag `--<long>` (and `-<short>`).
    pub const fn cli(mut self, long: &'static str, short: Option<char>) -> Self {
        self.cli = Some(CliFlag { long, short });
        self
    }
    /// Used by [`options!`]: the field name and its `///` lines.
    pub const fn named(mut self, name: &'static str, help_lines: &'static [&'static str]) -> Self {
        self.name = name;
        self.help_lines = help_lines;
        self
    }

    /// The default as file text, before interpolation; `None` when unset.
    pub fn default_text(&self) -> Option<String> {
        match self.default {
            DefaultValue::None => None,
            DefaultValue::Text(t) => Some(t.to_owned()),
            DefaultValue::Int(i) => Some(i.to_string()),
            DefaultValue::Bool(b) => Some(if b { "true" } else { "false" }.to_owned()),
            DefaultValue::Computed(f) => Some(f()),
        }
    }

    /// The help text: the `///` lines with prose lines of one paragraph
    /// joined by spaces; blank lines, lines after one ending in `:` and list
    /// items (`* `, `- `) start a new line, as in Nova's help strings.
    pub fn help(&self) -> String {
        join_help(self.help_lines)
    }
}

pub(crate) fn join_help(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut prev: Option<&str> = None;
    for raw in lines {
        let line = raw.strip_prefix(' ').unwrap_or(raw).trim_end();
        match prev {
            None => out.push_str(line),
            Some(p) => {
                let item = line.starts_with("* ") || line.starts_with("- ");
                if !p.is_empty() && !line.is_empty() && !item && !p.ends_with(':') {
                    out.push(' ');
                    out.push_str(line.trim_start());
                } else {
                    out.push('\n');
                    out.push_str(line);
                }
            }
        }
        prev = Some(line);
    }
    out
}

/// A group and its options, in definition order.
#[derive(Debug, Clone, Copy)]
pub struct GroupDef {
    /// `DEFAULT` or a lower-case name.
    pub name: &'static str,
    pub help_lines: &'static [&'static str],
    pub opts: &'static [OptDef],
}

impl GroupDef {
    pub fn help(&self) -> String {
        join_help(self.help_lines)
    }

    pub fn opt(&self, name: &str) -> Option<&'static OptDef> {
        self.opts.iter().find(|o| o.name == name)
    }
}

/// Where generated group structs get their values: the loader's result.
pub trait ValueSource {
    /// The resolved value of an option (`Value::None` when unset).
    fn value(&self, group: &str, name: &str) -> Option<&Value>;
    /// The resolved default of an option.
    fn default_value(&self, group: &str, name: &str) -> Option<&Value>;
}

/// Builds one field: the resolved value, or the default when the value is
/// unset (an empty integer) and the field is not an `Option`.
pub fn field<T: OptField>(src: &dyn ValueSource, group: &str, name: &str) -> Result<T, ConfigError> {
    let value = src.value(group, name).unwrap_or(&Value::None);
    if let Some(v) = T::from_value(value) {
        return Ok(v);
    }
    if *value != Value::None {
        return Err(ConfigError::Definition {
            group: group.to_owned(),
            option: name.to_owned(),
            reason: format!("its Rust field type cannot hold {}", value.display()),
        });
    }
    let default = src.default_value(group, name).unwrap_or(&Value::None);
    T::from_value(default).ok_or_else(|| ConfigError::Definition {
        group: group.to_owned(),
        option: name.to_owned(),
        reason: format!("its Rust field type cannot hold {} (default {})", value.display(), default.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::join_help;

    #[test]
    fn help_lines_join_like_nova_help() {
        let lines = [
            " Time between two backup cycles,",
            " in seconds.",
            "",
            " Possible values:",
            "",
            " * An integer >= 60,",
            "   wrapped.",
            " * Another.",
            "",
            " Related options:",
            " * x",
        ];
        assert_eq!(
            join_help(&lines),
            "Time between two backup cycles, in seconds.\n\nPossible values:\n\n\
             * An integer >= 60, wrapped.\n* Another.\n\nRelated options:\n* x"
        );
    }
}

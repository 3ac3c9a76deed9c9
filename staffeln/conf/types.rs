//! Option types and their oslo.config conversion rules (oslo_config/types.py).
//!
//! Every file, environment or command-line value is a string; [`convert`]
//! turns it into a [`Value`] the way oslo.config's type would, and names what
//! was expected when it cannot. [`OptField`] then turns a `Value` into the Rust
//! field type of the generated group structs.
//!
//! The duration grammar is the original staffeln's:
//! `<Y>y<MON>mon<W>w<D>d<H>h<MIN>min<S>s`, each part optional but at least one
//! present, in that order, e.g. `2w3d`, `5min`, `1d12h`. A year counts as 365
//! days and a month as 30 days (the original used calendar arithmetic through
//! `relativedelta`; a fixed length keeps a duration a plain number of seconds).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::secret::Secret;

/// The oslo.config type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `StrOpt`: verbatim, with optional `choices` or `regex`.
    Str,
    /// `BoolOpt`.
    Bool,
    /// `IntOpt` with optional `min`/`max`; empty means unset.
    Int,
    /// `PortOpt`: an integer in 0..=65535.
    Port,
    /// `ListOpt` of strings.
    List,
    /// `DictOpt` of strings.
    Dict,
    /// `MultiStrOpt`: every occurrence in every file.
    MultiStr,
    /// A staffeln duration (`2w3d`); a `StrOpt` with a regex in the original.
    Duration,
}

impl Kind {
    /// The type name oslo-config-generator prints after the help, `(… value)`.
    pub fn sample_type_name(self) -> &'static str {
        match self {
            Kind::Str | Kind::Duration => "string value",
            Kind::Bool => "boolean value",
            Kind::Int => "integer value",
            Kind::Port => "port value",
            Kind::List => "list value",
            Kind::Dict => "dict value",
            Kind::MultiStr => "multi valued",
        }
    }

    /// A short name for tools and the JSON export (`str`, `int`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Port => "port",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::MultiStr => "multistr",
            Kind::Duration => "duration",
        }
    }
}

/// A resolved option value, typed as oslo.config would return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// No value: no default, or an empty integer (oslo's `None`).
    None,
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    Dict(BTreeMap<String, String>),
    Multi(Vec<String>),
    Duration(OsloDuration),
}

impl Value {
    /// The text Python's `str()` gives for the value: what `$name`
    /// interpolation inserts (None inserts nothing) and what `log_opt_values`
    /// prints (there None prints as `None`, see [`Value::display`]).
    pub fn interpolation_text(&self) -> String {
        match self {
            Value::None => String::new(),
            other => other.display(),
        }
    }

    /// Python's `str()` of the value: `True`, `['a', 'b']`, `None`, ….
    pub fn display(&self) -> String {
        match self {
            Value::None => "None".to_owned(),
            Value::Str(s) => s.clone(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::List(items) | Value::Multi(items) => {
                let items: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Dict(map) => {
                let items: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v))).collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Duration(d) => d.text.clone(),
        }
    }
}

/// Python's `repr()` of a string (quotes chosen and escaped the same way).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isspace()`, which is what `strip()` removes.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// A staffeln duration such as `2w3d`; keeps the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsloDuration {
    text: String,
    secs: u64,
}

/// The units of the duration grammar, in the order they must appear.
const DURATION_UNITS: [(&str, u64); 7] =
    [("y", 365 * 86_400), ("mon", 30 * 86_400), ("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)];

/// What a duration must look like, for error messages and help.
pub const DURATION_EXPECTED: &str = "a duration such as 2w3d, 5min or 1d12h (<Y>y<MON>mon<W>w<D>d<H>h<MIN>min<S>s)";

impl OsloDuration {
    /// Parses the staffeln grammar; `None` when `text` does not match it.
    pub fn parse(text: &str) -> Option<OsloDuration> {
        let mut rest = text;
        let mut secs: u64 = 0;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let number: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            // "min" before "mon"/"m…" ambiguity does not arise: units are distinct prefixes except
            // none; try each remaining unit in order.
            let (idx, len, factor) = DURATION_UNITS[next_unit..]
                .iter()
                .enumerate()
                .find(|(_, (unit, _))| rest.starts_with(unit))
                .map(|(i, (unit, factor))| (next_unit + i, unit.len(), *factor))?;
            secs = secs.checked_add(number.checked_mul(factor)?)?;
            rest = &rest[len..];
            next_unit = idx + 1;
        }
        if next_unit == 0 {
            return None;
        }
        Some(OsloDuration { text: text.to_owned(), secs })
    }

    /// The duration as written in the configuration (`2w3d`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The length as a standard duration.
    pub fn as_std(&self) -> Duration {
        Duration::from_secs(self.secs)
    }

    /// The length in seconds.
    pub fn as_secs(&self) -> u64 {
        self.secs
    }
}

impl fmt::Display for OsloDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The constraints `convert` checks, taken from the option definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct Constraints<'a> {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub choices: &'a [(&'a str, &'a str)],
    pub regex: Option<&'a str>,
}

/// Converts one string the way the oslo.config type does. The error is the
/// expectation, phrased to follow "expected " (`an integer >= 60`).
pub fn convert(kind: Kind, text: &str, c: &Constraints<'_>) -> Result<Value, String> {
    match kind {
        Kind::Str => convert_str(text, c).map(Value::Str),
        Kind::MultiStr => convert_str(text, c).map(|s| Value::Multi(vec![s])),
        Kind::Bool => {
            parse_bool(text).map(Value::Bool).ok_or_else(|| "a boolean (true/false, yes/no, on/off, 1/0)".to_owned())
        }
        Kind::Int | Kind::Port => {
            let (min, max) = match kind {
                Kind::Port => (Some(c.min.unwrap_or(0)), Some(c.max.unwrap_or(65_535))),
                _ => (c.min, c.max),
            };
            let expected = || int_expectation(min, max);
            if py_strip(text).is_empty() {
                return Ok(Value::None);
            }
            let n = parse_py_int(text).ok_or_else(expected)?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(expected());
            }
            Ok(Value::Int(n))
        }
        Kind::List => Ok(Value::List(parse_list(text))),
        Kind::Dict => parse_dict(text).map(Value::Dict),
        Kind::Duration => OsloDuration::parse(text).map(Value::Duration).ok_or_else(|| DURATION_EXPECTED.to_owned()),
    }
}

fn convert_str(text: &str, c: &Constraints<'_>) -> Result<String, String> {
    if let Some(pattern) = c.regex {
        let re = regex::Regex::new(pattern).map_err(|e| format!("a valid regex in the option definition ({e})"))?;
        if !re.is_match(text) {
            return Err(format!("a value matching the regex {pattern:?}"));
        }
    }
    if !c.choices.is_empty() && !c.choices.iter().any(|(choice, _)| *choice == text) {
        let names: Vec<&str> = c.choices.iter().map(|(choice, _)| *choice).collect();
        return Err(format!("one of {}", names.join(", ")));
    }
    Ok(text.to_owned())
}

fn int_expectation(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("an integer between {lo} and {hi}"),
        (Some(lo), None) => format!("an integer >= {lo}"),
        (None, Some(hi)) => format!("an integer <= {hi}"),
        (None, None) => "an integer".to_owned(),
    }
}

/// oslo.config's `Boolean` type: `true`, `1`, `on`, `yes` and their
/// opposites, case-insensitive, no stripping; anything else is an error.
///
/// This is the configuration grammar, a different fact from how Staffeln
/// reads Cinder and Nova metadata (`objects::metadata::parse_bool`, oslo's
/// `strutils.bool_from_string`, which also takes `t`, `y`, `f`, `n`): a
/// configuration file oslo.config refuses must be refused here too.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// Python's `int(text)` for ASCII input: surrounding whitespace, a sign, and
/// single underscores between digits are accepted.
pub fn parse_py_int(text: &str) -> Option<i64> {
    let s = py_strip(text);
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = clean.parse().ok()?;
    Some(if negative { -n } else { n })
}

/// oslo's List of strings: strip, drop trailing commas, split on `,`, strip
/// each item; an empty value is the empty list.
pub fn parse_list(text: &str) -> Vec<String> {
    let s = py_strip(text).trim_end_matches(',');
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|item| py_strip(item).to_owned()).collect()
}

/// oslo's Dict of strings: `k:v` pairs separated by `,`, split at the first
/// `:`; a piece without `:` is joined to the next one with `,` and retried.
pub fn parse_dict(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut result = BTreeMap::new();
    let s = py_strip(text);
    if s.is_empty() {
        return Ok(result);
    }
    let mut pairs = s.split(',').collect::<Vec<_>>().into_iter();
    while let Some(first) = pairs.next() {
        let mut pair = first.to_owned();
        let (key, value) = loop {
            if let Some((k, v)) = pair.split_once(':') {
                break (py_strip(k).to_owned(), py_strip(v).to_owned());
            }
            match pairs.next() {
                Some(next) => {
                    pair.push(',');
                    pair.push_str(next);
                }
                None => return Err("key:value pairs separated by ','".to_owned()),
            }
        };
        if key.is_empty() {
            return Err("key:value pairs with a non-empty key".to_owned());
        }
        if result.contains_key(&key) {
            return Err(format!("key:value pairs without the duplicate key {key:?}"));
        }
        result.insert(key, value);
    }
    Ok(result)
}

/// A Rust field type of a group struct, made from a resolved [`Value`].
/// `from_value` returns `None` when the value does not fit; for a
/// non-`Option` field given [`Value::None`] the loader then uses the default.
pub trait OptField: Sized {
    fn from_value(value: &Value) -> Option<Self>;
    fn to_value(&self) -> Value;
}

impl<T: OptField> OptField for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::None => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::None, OptField::to_value)
    }
}

impl OptField for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
}

impl OptField for Secret {
    fn from_value(value: &Value) -> Option<Self> {
        String::from_value(value).map(Secret::new)
    }
    fn to_value(&self) -> Value {
        Value::Str(self.expose().to_owned())
    }
}

impl OptField for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl OptField for $t {
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
            fn to_value(&self) -> Value {
                i64::try_from(*self).map_or(Value::None, Value::Int)
            }
        }
    )*};
}
int_field!(i64, i32, u64, u32, u16);

/// An unset list (oslo's `None`) is the empty list.
impl OptField for Vec<String> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::List(v) | Value::Multi(v) => Some(v.clone()),
            Value::None => Some(Vec::new()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::List(self.clone())
    }
}

impl OptField for BTreeMap<String, String> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Dict(d) => Some(d.clone()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Dict(self.clone())
    }
}

impl OptField for OsloDuration {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Duration(d) => Some(d.clone()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Duration(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Constraints<'static> {
        Constraints::default()
    }

    #[test]
    fn booleans_follow_oslo() {
        for t in ["true", "TRUE", "1", "on", "Yes"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "0", "off", "NO"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["Enabled", "", " true", "y", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_follow_python_int() {
        let cases: &[(&str, Option<i64>)] = &[
            ("42", Some(42)),
            (" 42 ", Some(42)),
            ("-1", Some(-1)),
            ("+7", Some(7)),
            ("1_000", Some(1000)),
            ("1__0", None),
            ("_1", None),
            ("4.0", None),
            ("4 # four", None),
            ("0x10", None),
            ("", None),
            ("-", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_py_int(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn int_bounds_empty_and_port() {
        let c = Constraints { min: Some(60), ..none() };
        assert_eq!(convert(Kind::Int, "60", &c), Ok(Value::Int(60)));
        assert_eq!(convert(Kind::Int, "59", &c), Err("an integer >= 60".to_owned()));
        assert_eq!(convert(Kind::Int, "ten", &c), Err("an integer >= 60".to_owned()));
        assert_eq!(convert(Kind::Int, "  ", &c), Ok(Value::None));
        assert_eq!(convert(Kind::Port, "8808", &none()), Ok(Value::Int(8808)));
        assert_eq!(convert(Kind::Port, "99999", &none()), Err("an integer between 0 and 65535".to_owned()));
        assert_eq!(convert(Kind::Port, "", &none()), Ok(Value::None));
    }

    #[test]
    fn lists_follow_oslo() {
        let cases: &[(&str, &[&str])] = &[
            ("a,b", &["a", "b"]),
            (" a , b ,", &["a", "b"]),
            ("a,,", &["a"]),
            ("a, ,", &["a", ""]),
            ("", &[]),
            ("  ", &[]),
            (",", &[]),
            ("\"a\", \"b\"", &["\"a\"", "\"b\""]),
            ("x", &["x"]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_list(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn dicts_follow_oslo() {
        let d = parse_dict("a:1, b : x:y").unwrap();
        assert_eq!(d.get("a").map(String::as_str), Some("1"));
        assert_eq!(d.get("b").map(String::as_str), Some("x:y"));
        let joined = parse_dict("a,b:1").unwrap();
        assert_eq!(joined.get("a,b").map(String::as_str), Some("1"));
        assert!(parse_dict("").unwrap().is_empty());
        assert!(parse_dict("a:1,b").is_err());
        assert!(parse_dict(":1").is_err());
        assert!(parse_dict("a:1,a:2").is_err());
    }

    #[test]
    fn strings_check_choices_and_regex() {
        let choices = [("public", ""), ("internal", ""), ("admin", "")];
        let c = Constraints { choices: &choices, ..none() };
        assert_eq!(convert(Kind::Str, "admin", &c), Ok(Value::Str("admin".into())));
        assert_eq!(convert(Kind::Str, "Admin", &c), Err("one of public, internal, admin".to_owned()));
        let c = Constraints { regex: Some("^[a-z]+$"), ..none() };
        assert!(convert(Kind::Str, "abc", &c).is_ok());
        assert!(convert(Kind::Str, "ab1", &c).is_err());
    }

    #[test]
    fn durations_follow_the_staffeln_grammar() {
        let cases: &[(&str, Option<u64>)] = &[
            ("5min", Some(300)),
            ("2w3d", Some(17 * 86_400)),
            ("1d12h", Some(36 * 3_600)),
            ("1y", Some(365 * 86_400)),
            ("1mon", Some(30 * 86_400)),
            ("1y2mon3w4d5h6min7s", Some(((365 + 60 + 21 + 4) * 24 + 5) * 3_600 + 6 * 60 + 7)),
            ("30s", Some(30)),
            ("0s", Some(0)),
            ("", None),
            ("5", None),
            ("5m", None),
            ("3d2w", None),
            ("1d1d", None),
            ("ten", None),
            (" 5min", None),
            ("5min ", None),
        ];
        for (text, secs) in cases {
            assert_eq!(OsloDuration::parse(text).map(|d| d.as_secs()), *secs, "{text:?}");
        }
    }

    #[test]
    fn values_display_like_python() {
        assert_eq!(Value::Bool(true).display(), "True");
        assert_eq!(Value::None.display(), "None");
        assert_eq!(Value::None.interpolation_text(), "");
        assert_eq!(Value::List(vec!["a".into(), "it's".into()]).display(), "['a', \"it's\"]");
        assert_eq!(Value::Int(-1).display(), "-1");
    }
}

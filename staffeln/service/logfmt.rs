//! oslo.log's `%(key)s` format strings, parsed once and rendered per record.
//!
//! Operators (and devstack) write Python logging format strings such as
//! `%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(message)s`.
//! This module understands the subset Python's `%` operator offers for those
//! strings — `%(key)` followed by optional flags (`-`, `0`, ` `, `+`, `#`), a
//! width, a precision and a conversion (`s`, `r`, `d`, `i`, `f`, …) — plus `%%`.
//! Everything else is kept literally, so devstack's ANSI colour bytes and
//! `{{…}}` pass through untouched. A key the record does not know renders as an
//! empty string, as oslo.log's formatter does for its optional keys.

use std::fmt::Write as _;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field { key: String, left: bool, zero: bool, width: usize, precision: Option<usize>, conv: char },
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    pieces: Vec<Piece>,
}

/// A value a record offers for a key.
#[derive(Debug, Clone)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(i64),
}

impl LogFormat {
    /// Parses a Python logging format string. Never fails: what is not a
    /// well-formed `%(key)…` conversion stays literal text.
    pub fn parse(format: &str) -> LogFormat {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(pos) = rest.find('%') {
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(stripped) = after.strip_prefix('%') {
                literal.push('%');
                rest = stripped;
                continue;
            }
            match parse_field(after) {
                Some((piece, used)) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                    rest = &after[used..];
                }
                None => {
                    literal.push('%');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        LogFormat { pieces }
    }

    /// The keys this format refers to.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field { key, .. } => Some(key.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Renders the format, asking `lookup` for each key's value.
    pub fn render<'a>(&self, out: &mut String, lookup: impl Fn(&str) -> Option<FieldValue<'a>>) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Field { key, left, zero, width, precision, conv } => {
                    let text = match lookup(key) {
                        None => String::new(),
                        Some(FieldValue::Str(s)) => match precision {
                            Some(p) if matches!(conv, 's' | 'r') => s.chars().take(*p).collect(),
                            _ => s.to_owned(),
                        },
                        Some(FieldValue::Int(n)) => match conv {
                            'f' | 'F' | 'e' | 'g' => format!("{:.*}", precision.unwrap_or(6), n as f64),
                            _ => n.to_string(),
                        },
                    };
                    pad(out, &text, *width, *left, *zero);
                }
            }
        }
    }
}

fn pad(out: &mut String, text: &str, width: usize, left: bool, zero: bool) {
    let len = text.chars().count();
    if len >= width {
        out.push_str(text);
    } else if left {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', width - len));
    } else if zero && text.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.') {
        let (sign, digits) = text.strip_prefix('-').map_or(("", text), |d| ("-", d));
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', width - len));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', width - len));
        out.push_str(text);
    }
}

/// Parses `(key)flags width .precision conv` after a `%`; returns the piece and
/// the number of bytes used.
fn parse_field(s: &str) -> Option<(Piece, usize)> {
    let body = s.strip_prefix('(')?;
    let close = body.find(')')?;
    let key = &body[..close];
    let mut i = 1 + close + 1;
    let bytes = s.as_bytes();
    let (mut left, mut zero) = (false, false);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'-' => left = true,
            b'0' => zero = true,
            b' ' | b'+' | b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let width = s[start..i].parse().unwrap_or(0);
    let mut precision = None;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let pstart = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        precision = Some(s[pstart..i].parse().unwrap_or(0));
    }
    let conv = *bytes.get(i)?;
    if !b"sradifFeEgGxXoc".contains(&conv) {
        return None;
    }
    Some((Piece::Field { key: key.to_owned(), left, zero, width, precision, conv: conv as char }, i + 1))
}

/// Formats a Python-style `strftime` date format with chrono. Python's and
/// chrono's directives agree on everything oslo deployments use (`%Y %m %d %H
/// %M %S %z %Z %b %a %j %p %y`); an invalid directive yields the format itself
/// rather than a panic.
pub fn strftime<Tz: chrono::TimeZone>(when: &chrono::DateTime<Tz>, format: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = String::new();
    if write!(out, "{}", when.format(format)).is_err() {
        return format.to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(fmt: &str, pairs: &[(&str, FieldValue<'static>)]) -> String {
        let f = LogFormat::parse(fmt);
        let mut out = String::new();
        f.render(&mut out, |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
        out
    }

    #[test]
    fn oslo_default_format_renders_like_python() {
        let out = render(
            "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s",
            &[
                ("asctime", FieldValue::Str("2026-11-25 14:08:45")),
                ("msecs", FieldValue::Int(66)),
                ("process", FieldValue::Int(15087)),
                ("levelname", FieldValue::Str("INFO")),
                ("name", FieldValue::Str("staffeln.conductor")),
                ("message", FieldValue::Str("Conductor started")),
            ],
        );
        assert_eq!(out, "2026-11-25 14:08:45.066 15087 INFO staffeln.conductor [-] Conductor started");
    }

    #[test]
    fn widths_flags_percent_and_junk_are_handled() {
        let cases: &[(&str, &str)] = &[
            ("%(levelname)-8s|", "INFO    |"),
            ("%(levelname)8s|", "    INFO|"),
            ("%(msecs)05d", "00007"),
            ("100%% done", "100% done"),
            ("50% off", "50% off"),
            ("%(unknown)s-", "-"),
            ("%(levelname).2s", "IN"),
            ("\x1b[01;35m%(color)s{{x}}", "\x1b[01;35m{{x}}"),
            ("%(broken", "%(broken"),
            ("%(x)q", "%(x)q"),
        ];
        for (fmt, expected) in cases {
            let out = render(fmt, &[("levelname", FieldValue::Str("INFO")), ("msecs", FieldValue::Int(7))]);
            assert_eq!(&out, expected, "format {fmt:?}");
        }
    }

    #[test]
    fn keys_lists_the_referenced_fields() {
        let f = LogFormat::parse("%(a)s %(b)03d %%(c)s");
        assert_eq!(f.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}

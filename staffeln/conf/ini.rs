//! The oslo.config INI dialect (oslo_config/iniparser.py and cfg.ConfigParser).
//!
//! No INI crate follows these rules (compared when Staffeln began: `rust-ini`
//! mangles continuation lines and backslashes, the others drop repeated keys
//! or cut inline comments), so this is a direct port of oslo's ~100 lines:
//!
//! * each line is right-stripped; an empty line is blank and ends a
//!   multi-line value;
//! * a line starting with a space or TAB continues the last key's value
//!   (pieces joined with `"\n"`, an indented `#` line included);
//! * a comment starts with `#` or `;` in column 0; there are no inline comments;
//! * `[name]` starts a section, taken verbatim (`[ api]` is `" api"`);
//! * an assignment splits at the first `=` or `:`, key and value stripped,
//!   one pair of matching outer quotes removed from the value;
//! * repeated keys keep every value in order; repeated sections merge.
//!
//! Group names are normalised as oslo does: lower case, except the exact
//! `DEFAULT`.

use std::collections::BTreeMap;

use super::types::{is_py_space, py_strip};

/// One assignment: its value and the 1-based line where its key was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

/// One parsed file: normalised group → key → every value in file order.
pub type Sections = BTreeMap<String, BTreeMap<String, Vec<Entry>>>;

/// A syntax error, in oslo's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: &'static str,
}

/// oslo's group name normalisation: lower case, except the exact `DEFAULT`.
pub fn normalize_group(name: &str) -> String {
    if name == "DEFAULT" { name.to_owned() } else { name.to_lowercase() }
}

/// Parses the text of one file.
pub fn parse(text: &str) -> Result<Sections, ParseError> {
    let mut sections = Sections::new();
    let mut section: Option<String> = None;
    // The open assignment: key, value pieces, line of the key.
    let mut open: Option<(String, Vec<String>, usize)> = None;

    // Python text mode: universal newlines.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.trim_end_matches(is_py_space);
        if line.is_empty() {
            flush(&mut sections, section.as_deref(), open.take())?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match open.as_mut() {
                Some((_, pieces, _)) => pieces.push(line.trim_start_matches(is_py_space).to_owned()),
                None => {
                    return Err(ParseError { line: lineno, message: "Unexpected continuation line" });
                }
            }
            continue;
        }
        flush(&mut sections, section.as_deref(), open.take())?;
        if line.starts_with('[') {
            if !line.ends_with(']') {
                return Err(ParseError { line: lineno, message: "Invalid section (must end with ])" });
            }
            if line.len() <= 2 {
                return Err(ParseError { line: lineno, message: "Empty section name" });
            }
            let name = normalize_group(&line[1..line.len() - 1]);
            sections.entry(name.clone()).or_default();
            section = Some(name);
        } else if line.starts_with(['#', ';']) {
            // A comment.
        } else {
            let (key, value) = split_key_value(line)
                .ok_or(ParseError { line: lineno, message: "No ':' or '=' found in assignment" })?;
            if key.is_empty() {
                return Err(ParseError { line: lineno, message: "Key cannot be empty" });
            }
            open = Some((key, vec![value], lineno));
        }
    }
    flush(&mut sections, section.as_deref(), open.take())?;
    Ok(sections)
}

fn flush(
    sections: &mut Sections,
    section: Option<&str>,
    open: Option<(String, Vec<String>, usize)>,
) -> Result<(), ParseError> {
    let Some((key, pieces, line)) = open else {
        return Ok(());
    };
    let Some(section) = section else {
        return Err(ParseError { line, message: "Section must be started before assignment" });
    };
    sections
        .entry(section.to_owned())
        .or_default()
        .entry(key)
        .or_default()
        .push(Entry { value: pieces.join("\n"), line });
    Ok(())
}

/// Splits at whichever of `=` or `:` comes first; strips both sides and one
/// pair of matching outer quotes from the value.
fn split_key_value(line: &str) -> Option<(String, String)> {
    let at = line.find(['=', ':'])?;
    let key = py_strip(&line[..at]);
    let mut value = py_strip(&line[at + 1..]);
    if let (Some(first), Some(last)) = (value.chars().next(), value.chars().last())
        && (first == '"' || first == '\'')
        && first == last
    {
        // A lone quote is both first and last: the value becomes empty.
        value = if value.len() == 1 { "" } else { &value[1..value.len() - 1] };
    }
    Some((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, group: &str, key: &str) -> Vec<String> {
        let s = parse(text).unwrap();
        s.get(group).and_then(|g| g.get(key)).map(|v| v.iter().map(|e| e.value.clone()).collect()).unwrap_or_default()
    }

    fn error(text: &str) -> (usize, &'static str) {
        let e = parse(text).unwrap_err();
        (e.line, e.message)
    }

    #[test]
    fn values_follow_oslo_lexical_rules() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("[DEFAULT]\nk = v   \n", "k", &["v"]),
            ("[DEFAULT]\nk=v\n", "k", &["v"]),
            ("[DEFAULT]\nk: b = c\n", "k", &["b = c"]),
            ("[DEFAULT]\nk = http://h:5672/\n", "k", &["http://h:5672/"]),
            ("[DEFAULT]\nk = 4 # four\n", "k", &["4 # four"]),
            ("[DEFAULT]\nk = \"quoted value\"\n", "k", &["quoted value"]),
            ("[DEFAULT]\nk = \"a\" and \"b\"\n", "k", &["a\" and \"b"]),
            ("[DEFAULT]\nk = '\n", "k", &[""]),
            ("[DEFAULT]\nk = ''\n", "k", &[""]),
            ("[DEFAULT]\nk = 'x'  # c\n", "k", &["'x'  # c"]),
            ("[DEFAULT]\nk = \"  padded  \"\n", "k", &["  padded  "]),
            ("[DEFAULT]\nk = \"mixed'\n", "k", &["\"mixed'"]),
            ("[DEFAULT]\nk =\n", "k", &[""]),
            ("[DEFAULT]\nk = l1\n  # x\n\tl3\n", "k", &["l1\n# x\nl3"]),
            ("[DEFAULT]\nk = l1\n\n  \n", "k", &["l1"]),
            ("[DEFAULT]\nk = 1\nk = 2\n", "k", &["1", "2"]),
            ("[DEFAULT]\nk = 1\n[x]\n[DEFAULT]\nk = 2\n", "k", &["1", "2"]),
            ("[DEFAULT]\n#k = 1\n;k = 2\n", "k", &[]),
            ("[DEFAULT]\r\nk = crlf\r\n", "k", &["crlf"]),
            ("[DEFAULT]\nK = upper\n", "k", &[]),
        ];
        for (text, key, expected) in cases {
            assert_eq!(values(text, "DEFAULT", key), *expected, "{text:?}");
        }
    }

    #[test]
    fn groups_are_normalised_like_oslo() {
        let s = parse("[Database]\na = 1\n[database]\na = 2\n[default]\nb = 3\n[ api]\nc = 4\n").unwrap();
        assert_eq!(s["database"]["a"].len(), 2);
        assert!(s.contains_key("default"), "[default] is not DEFAULT");
        assert!(!s.contains_key("DEFAULT"));
        assert!(s.contains_key(" api"), "section names are not stripped");
    }

    #[test]
    fn fatal_lines_name_line_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("k = v\n", 1, "Section must be started before assignment"),
            ("\n\nk = v\n  more\n", 3, "Section must be started before assignment"),
            ("  indented\n", 1, "Unexpected continuation line"),
            ("[DEFAULT]\n\n  orphan\n", 3, "Unexpected continuation line"),
            ("[DEFAULT]\n# c\n  orphan\n", 3, "Unexpected continuation line"),
            ("[DEFAULT\n", 1, "Invalid section (must end with ])"),
            ("[]\n", 1, "Empty section name"),
            ("[DEFAULT]\nnovalue\n", 2, "No ':' or '=' found in assignment"),
            ("[DEFAULT]\n= v\n", 2, "Key cannot be empty"),
            ("[DEFAULT]\n : v\n", 2, "Unexpected continuation line"),
        ];
        for (text, line, message) in cases {
            assert_eq!(error(text), (*line, *message), "{text:?}");
        }
    }

    #[test]
    fn entries_remember_their_line() {
        let s = parse("[DEFAULT]\n\nk = v\n").unwrap();
        assert_eq!(s["DEFAULT"]["k"][0].line, 3);
    }
}

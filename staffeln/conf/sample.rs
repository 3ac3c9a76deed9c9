//! The sample configuration file, in `oslo-config-generator`'s exact format
//! (oslo_config/generator.py `_OptFormatter`, wrap width 79, namespace
//! `staffeln`). Help is wrapped like Python's `textwrap.wrap` with
//! `break_long_words=False`: words are broken only at hyphens between letters.

use super::opts::{DefaultValue, GroupDef, OptDef};
use super::types::{Kind, parse_dict, parse_list};

/// The namespace line of every group (`# From staffeln`).
pub const NAMESPACE: &str = "staffeln";
/// The wrap width of the help text.
pub const WRAP_WIDTH: usize = 79;

/// The full `staffeln.conf.sample` text.
pub fn sample() -> String {
    render(super::opts::REGISTRY, NAMESPACE, WRAP_WIDTH)
}

/// Renders `registry` like `oslo-config-generator --namespace <namespace>
/// --wrap-width <width>`: `[DEFAULT]` first, then the groups by name.
pub fn render(registry: &[GroupDef], namespace: &str, width: usize) -> String {
    let mut out = String::from("[DEFAULT]\n");
    if let Some(default) = registry.iter().find(|g| g.name == "DEFAULT") {
        push_opts(&mut out, default, namespace, width);
    }
    let mut groups: Vec<&GroupDef> = registry.iter().filter(|g| g.name != "DEFAULT" && !g.opts.is_empty()).collect();
    groups.sort_by_key(|g| g.name);
    for group in groups {
        out.push_str(&format!("\n\n[{}]\n", group.name));
        if !group.help_lines.is_empty() {
            out.push_str(&format_help(&group.help(), width));
        }
        push_opts(&mut out, group, namespace, width);
    }
    out
}

fn push_opts(out: &mut String, group: &GroupDef, namespace: &str, width: usize) {
    if group.opts.is_empty() {
        return;
    }
    out.push_str(&format!("\n#\n# From {namespace}\n#\n"));
    for opt in group.opts {
        out.push('\n');
        out.push_str(&format_opt(group.name, opt, width));
    }
}

fn format_opt(group: &str, opt: &OptDef, width: usize) -> String {
    let help = opt.help();
    let text = if help.is_empty() {
        format!("({})", opt.kind.sample_type_name())
    } else {
        format!("{help} ({})", opt.kind.sample_type_name())
    };
    let mut out = format_help(&text, width);
    if let Some(min) = opt.min {
        out.push_str(&format!("# Minimum value: {min}\n"));
    }
    if let Some(max) = opt.max {
        out.push_str(&format!("# Maximum value: {max}\n"));
    }
    if !opt.choices.is_empty() {
        out.push_str("# Possible values:\n");
        for (choice, desc) in opt.choices {
            let choice = if choice.is_empty() { "''" } else { choice };
            let desc = if desc.is_empty() { "<No description provided>" } else { desc };
            out.push_str(&format_help(&format!("{choice} - {desc}"), width));
        }
    }
    if opt.mutable {
        out.push_str("# Note: This option can be changed without restarting.\n");
    }
    for (g, name) in opt.deprecated {
        if !name.contains('-') {
            let g = if g.is_empty() { group } else { g };
            out.push_str(&format!("# Deprecated group/name - [{g}]/{name}\n"));
        }
    }
    if opt.sample_default.is_some_and(|s| !s.is_empty()) {
        out.push_str(
            "#\n# This option has a sample default set, which means that\n\
             # its actual default value may vary from the one documented\n# below.\n",
        );
    }
    for default in sample_defaults(opt) {
        if default.is_empty() {
            out.push_str(&format!("#{} =\n", opt.name));
        } else {
            out.push_str(&format!("#{} = {}\n", opt.name, default.replace('\n', "\n#    ")));
        }
    }
    out
}

/// oslo's `quote_trailing_and_leading_space`.
fn quoted(s: &str) -> String {
    if s.trim_matches(super::types::is_py_space) != s { format!("\"{s}\"") } else { s.to_owned() }
}

/// The default as the sample shows it, one string per line.
fn sample_defaults(opt: &OptDef) -> Vec<String> {
    if let Some(s) = opt.sample_default {
        return vec![s.to_owned()];
    }
    let text = match opt.default {
        DefaultValue::None if opt.kind == Kind::MultiStr => return vec![String::new()],
        DefaultValue::None => return vec!["<None>".to_owned()],
        _ => opt.default_text().unwrap_or_default(),
    };
    let one = match opt.kind {
        Kind::Str | Kind::Duration => quoted(&text),
        Kind::Bool | Kind::Int | Kind::Port => text.to_lowercase(),
        Kind::List => parse_list(&text).iter().map(|s| quoted(s)).collect::<Vec<_>>().join(","),
        Kind::Dict => parse_dict(&text)
            .map(|d| d.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(","))
            .unwrap_or(text),
        Kind::MultiStr => quoted(&text),
    };
    vec![one]
}

/// oslo's `_format_help`: every line wrapped with `# `, empty lines as `#`.
fn format_help(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let wrapped = wrap(line, width);
        if wrapped.is_empty() {
            out.push('#');
        } else {
            out.push_str(&wrapped.join("\n"));
        }
        out.push('\n');
    }
    out
}

fn is_wrap_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// `textwrap.TextWrapper`'s chunks: whitespace runs, and words split after
/// a hyphen between letters (`wordsep_re`, without the em-dash cases).
fn chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let space = is_wrap_space(chars[i]);
        let mut end = i;
        while end < chars.len() && is_wrap_space(chars[end]) == space {
            end += 1;
        }
        if space {
            out.push(chars[i..end].iter().collect());
        } else {
            let w = &chars[i..end];
            let mut start = 0;
            for k in 1..w.len() {
                if w[k] != '-' || k == start {
                    continue;
                }
                let before = (k >= 2 && is_letter(w[k - 1]) && is_letter(w[k - 2]))
                    || (k >= 3 && is_letter(w[k - 1]) && w[k - 2] == '-' && is_letter(w[k - 3]));
                let after = k + 2 < w.len()
                    && is_letter(w[k + 1])
                    && (is_letter(w[k + 2]) || (w[k + 2] == '-' && k + 3 < w.len() && is_letter(w[k + 3])));
                if before && after {
                    out.push(w[start..=k].iter().collect());
                    start = k + 1;
                }
            }
            out.push(w[start..].iter().collect());
        }
        i = end;
    }
    out
}

/// `textwrap.wrap(line, width, initial_indent='# ', subsequent_indent='# ',
/// break_long_words=False, replace_whitespace=False)`.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let line = expand_tabs(line);
    let mut rest: Vec<String> = chunks(&line);
    rest.reverse();
    let indent = "# ";
    let room = width.saturating_sub(indent.len());
    let mut lines = Vec::new();
    let blank = |s: &str| s.chars().all(is_wrap_space);
    while !rest.is_empty() {
        if !lines.is_empty() && rest.last().is_some_and(|c| blank(c)) {
            rest.pop();
        }
        let mut current: Vec<String> = Vec::new();
        let mut len = 0;
        while let Some(chunk) = rest.last() {
            let l = chunk.chars().count();
            if len + l <= room {
                len += l;
                current.extend(rest.pop());
            } else {
                break;
            }
        }
        if current.is_empty() && rest.last().is_some_and(|c| c.chars().count() > room) {
            current.extend(rest.pop());
        }
        if current.last().is_some_and(|c| blank(c)) {
            current.pop();
        }
        if !current.is_empty() {
            lines.push(format!("{indent}{}", current.concat()));
        }
    }
    lines
}

/// Python's `str.expandtabs()` (tab size 8).
fn expand_tabs(s: &str) -> String {
    let mut out = String::new();
    let mut col = 0;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.push_str(&" ".repeat(n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_follows_textwrap() {
        assert_eq!(wrap("", 79), Vec::<String>::new());
        assert_eq!(wrap("short (string value)", 79), vec!["# short (string value)"]);
        let long = "word ".repeat(20);
        let lines = wrap(long.trim_end(), 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines[0], "# word word word word word");
        assert_eq!(wrap("  * indented item", 79), vec!["#   * indented item"]);
        let url = "x".repeat(100);
        assert_eq!(
            wrap(&format!("see {url} now"), 30),
            vec!["# see".to_owned(), format!("# {url}"), "# now".to_owned()]
        );
        assert_eq!(chunks("non-empty a-b well-known-x"), ["non-", "empty", " ", "a-b", " ", "well-", "known-x"]);
    }

    #[test]
    fn the_sample_has_oslo_shape() {
        let s = sample();
        assert!(s.starts_with("[DEFAULT]\n\n#\n# From staffeln\n#\n\n"), "{}", &s[..80]);
        assert!(s.contains("\n\n\n[api]\n# Options under this group"));
        assert!(s.contains("# Minimum value: 0\n# Maximum value: 65535\n#port = 8808\n"));
        assert!(s.contains("# Note: This option can be changed without restarting.\n#debug = false\n"));
        assert!(s.contains("# Deprecated group/name - [conductor]/backup_cycle_timout\n#backup_cycle_timeout = 12h\n"));
        assert!(s.contains("#transport_url = <None>\n"));
        assert!(s.contains("#host = <current_hostname>\n"));
        assert!(s.contains("#backend_url =\n"));
        assert!(s.contains("#connection = sqlite:///$state_path/staffeln.sqlite\n"));
        assert!(s.lines().all(|l| l.starts_with('#') || l.starts_with('[') || l.is_empty()));
        let api = s.find("[api]").unwrap();
        let conductor = s.find("[conductor]").unwrap();
        let coordination = s.find("[coordination]").unwrap();
        assert!(api < conductor && conductor < coordination);
        assert!(s.ends_with("\n") && !s.ends_with("\n\n"));
    }
}

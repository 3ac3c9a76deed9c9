//! The openstack client's output formats: `table` (the default), `json`,
//! `value` and `yaml`, for one object (`show`: field and value) or a list
//! (one row per item). Nulls print as empty cells and values; nested
//! values print as `key=value, …` in a table or a value line, and as they
//! are in JSON and YAML.

use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Value,
    Yaml,
}

/// What a command prints.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// One object, its fields in display order.
    Show(Vec<(String, Value)>),
    /// Rows of `columns`.
    List { columns: Vec<String>, rows: Vec<Vec<Value>> },
}

impl Output {
    /// Renders, ending with a newline unless empty.
    pub fn render(&self, format: Format) -> Result<String, serde_json::Error> {
        Ok(match format {
            Format::Table => self.table(),
            Format::Value => self.values(),
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&self.json())?),
            Format::Yaml => self.yaml(),
        })
    }

    /// Show: an object; list: an array of objects keyed by column.
    fn json(&self) -> Value {
        match self {
            Output::Show(fields) => Value::Object(fields.iter().cloned().collect::<Map<_, _>>()),
            Output::List { columns, rows } => Value::Array(
                rows.iter()
                    .map(|row| Value::Object(columns.iter().cloned().zip(row.iter().cloned()).collect()))
                    .collect(),
            ),
        }
    }

    fn table(&self) -> String {
        match self {
            Output::Show(fields) => {
                let rows = fields.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect::<Vec<_>>();
                grid(&["Field".to_owned(), "Value".to_owned()], &rows)
            }
            Output::List { columns, rows } => {
                let rows = rows.iter().map(|r| r.iter().map(cell).collect()).collect::<Vec<_>>();
                grid(columns, &rows)
            }
        }
    }

    fn values(&self) -> String {
        let mut out = String::new();
        match self {
            Output::Show(fields) => {
                for (_, v) in fields {
                    out.push_str(&cell(v));
                    out.push('\n');
                }
            }
            Output::List { rows, .. } => {
                for row in rows {
                    out.push_str(&row.iter().map(cell).collect::<Vec<_>>().join(" "));
                    out.push('\n');
                }
            }
        }
        out
    }

    fn yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Output::Show(fields) => {
                for (k, v) in fields {
                    yaml_entry(&mut out, 0, k, v);
                }
            }
            Output::List { columns, rows } => {
                if rows.is_empty() {
                    out.push_str("[]\n");
                }
                for row in rows {
                    for (i, (k, v)) in columns.iter().zip(row).enumerate() {
                        out.push_str(if i == 0 { "- " } else { "  " });
                        yaml_entry(&mut out, 2, k, v);
                    }
                }
            }
        }
        out
    }
}

/// A value as one line of text.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.replace('\n', " "),
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(", "),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// An ASCII table as cliff draws it.
fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = format!("+{}+\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: &[String]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count()))).collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = String::new();
    out.push_str(&rule);
    out.push_str(&line(header));
    out.push_str(&rule);
    for row in rows {
        out.push_str(&line(row));
    }
    if !rows.is_empty() {
        out.push_str(&rule);
    }
    out
}

/// `key: value` at `indent` (the first line's indent is the caller's).
fn yaml_entry(out: &mut String, indent: usize, key: &str, v: &Value) {
    out.push_str(&yaml_scalar_key(key));
    out.push(':');
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            for (k, v) in m {
                out.push_str(&" ".repeat(indent + 2));
                yaml_entry(out, indent + 2, k, v);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            for item in a {
                out.push_str(&" ".repeat(indent + 2));
                out.push_str("- ");
                out.push_str(&yaml_inline(item));
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_inline(other));
            out.push('\n');
        }
    }
}

fn yaml_scalar_key(k: &str) -> String {
    yaml_string(k)
}

/// A value on one line: scalars plain when YAML reads them back as the same
/// string, else double-quoted (JSON escapes are valid YAML escapes);
/// collections in flow style.
fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Array(a) => format!("[{}]", a.iter().map(yaml_inline).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, v)| format!("{}: {}", yaml_string(k), yaml_inline(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@+".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "nan" | "inf"
        );
    if plain { s.to_owned() } else { Value::String(s.to_owned()).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn show() -> Output {
        Output::Show(vec![
            ("host".into(), json!("node-1")),
            ("leader".into(), json!(true)),
            ("last".into(), json!(null)),
            ("tasks".into(), json!({"done": 4, "failed": 1})),
        ])
    }

    fn list() -> Output {
        Output::List {
            columns: vec!["id".into(), "state".into(), "reason".into()],
            rows: vec![
                vec![json!("t1"), json!("done"), json!(null)],
                vec![json!("t2"), json!("failed"), json!("no: role")],
            ],
        }
    }

    #[test]
    fn tables_are_drawn_like_cliff() {
        let expected = "\
+--------+------------------+
| Field  | Value            |
+--------+------------------+
| host   | node-1           |
| leader | true             |
| last   |                  |
| tasks  | done=4, failed=1 |
+--------+------------------+
";
        assert_eq!(show().render(Format::Table).unwrap(), expected);
        let empty = Output::List { columns: vec!["id".into()], rows: vec![] };
        assert_eq!(empty.render(Format::Table).unwrap(), "+----+\n| id |\n+----+\n");
    }

    #[test]
    fn values_are_one_per_line_or_one_row_per_line() {
        assert_eq!(show().render(Format::Value).unwrap(), "node-1\ntrue\n\ndone=4, failed=1\n");
        assert_eq!(list().render(Format::Value).unwrap(), "t1 done \nt2 failed no: role\n");
    }

    #[test]
    fn json_and_yaml_keep_the_structure() {
        let j: Value = serde_json::from_str(&list().render(Format::Json).unwrap()).unwrap();
        assert_eq!(
            j,
            json!([{"id": "t1", "state": "done", "reason": null}, {"id": "t2", "state": "failed", "reason": "no: role"}])
        );
        let y = list().render(Format::Yaml).unwrap();
        assert_eq!(y, "- id: t1\n  state: done\n  reason: null\n- id: t2\n  state: failed\n  reason: \"no: role\"\n");
        let back: Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, j, "YAML reads back as the JSON");
        let y = show().render(Format::Yaml).unwrap();
        let back: Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(&show().render(Format::Json).unwrap()).unwrap(), "{y}");
        assert_eq!(Output::List { columns: vec!["a".into()], rows: vec![] }.render(Format::Yaml).unwrap(), "[]\n");
    }
}

//! Cinder's `backup:delete` policy with an oslo.policy `http:` check, as a
//! deployment of Staffeln configures it:
//!
//! ```text
//! "backup:delete": "rule:admin_api or (project_id:%(project_id)s and role:member and <guard URL>)"
//! ```
//!
//! `rule:admin_api` is Cinder's `is_admin:True`, which its context sets from
//! `context_is_admin` = `role:admin`. The operands are evaluated left to
//! right and stop as soon as the answer is known, so an admin or a caller of
//! another project never reaches the guard. The `http:` check POSTs to the
//! URL, `%(key)s` filled in from the target with Python's `str()` and nothing
//! escaped, a form body of three fields `rule`, `target` and `credentials`,
//! each a JSON document written as Python's `json.dumps` writes it
//! (`", "` and `": "` separators, non-ASCII escaped); no token is sent.
//! It passes only when the response body, stripped of `"` at both ends, is
//! exactly `True`, whatever the status. A refused connection, a timeout
//! (`[oslo_policy] remote_timeout`) or a key the URL names that the target
//! lacks raise out of the policy check, which Cinder answers with a 500.
//!
//! The target is Cinder's for a backup: `{project_id, user_id}` of the
//! caller updated with every field of the Backup object, then `project_id`
//! and `user_id` set to the backup's (timestamps without microseconds, `Z`).
//! The credentials are oslo.context's `to_policy_values()` plus `is_admin`.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::http::py_repr;
use super::state::{Backup, DOMAIN_ID, Token};
use super::steering::BackupDeletePolicy;

/// Cinder's backup driver the emulator pretends to run.
pub(crate) const BACKUP_SERVICE: &str = "cinder.backup.drivers.swift.SwiftBackupDriver";
/// The backup service host of the emulated backups.
const BACKUP_HOST: &str = "fakecloud@backup";

/// What the rule says before (or without) the `http:` check.
#[derive(Debug)]
pub(crate) enum Evaluation {
    /// `rule:admin_api` matched.
    Admin,
    /// Neither admin, nor a member of the backup's project.
    Refused,
    /// The guard decides: POST this to it.
    Ask(HttpCheck),
}

/// One `http:` check to make.
#[derive(Clone, Debug)]
pub(crate) struct HttpCheck {
    pub url: String,
    pub body: String,
    pub timeout: Duration,
}

/// Evaluates `backup:delete` for `token` on `backup` up to the `http:` check.
/// Fails with the reason when the URL cannot be built (Cinder's 500).
pub(crate) fn evaluate(policy: &BackupDeletePolicy, token: &Token, backup: &Backup) -> Result<Evaluation, String> {
    if token.is_admin() {
        return Ok(Evaluation::Admin);
    }
    let project = token.project_id.as_deref().unwrap_or_default();
    if project != backup.project_id || !token.roles.iter().any(|r| r == "member") {
        return Ok(Evaluation::Refused);
    }
    let target = target(backup);
    let url = python_format(&policy.guard_url, &target)?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("rule", &py_json(&json!("backup:delete")))
        .append_pair("target", &py_json_object(&target))
        .append_pair("credentials", &py_json_object(&credentials(token)))
        .finish();
    Ok(Evaluation::Ask(HttpCheck { url, body, timeout: policy.remote_timeout }))
}

/// oslo.policy's judgement of the guard's answer.
pub(crate) fn passes(body: &str) -> bool {
    body.trim_start_matches('"').trim_end_matches('"') == "True"
}

/// Makes the check; `Ok(answer body)`, or `Err` for what oslo.policy raises.
pub(crate) async fn ask(client: &reqwest::Client, check: &HttpCheck) -> Result<String, String> {
    let sent = client
        .post(&check.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(check.body.clone())
        .timeout(check.timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => return Err("Timeout in REST API call".to_owned()),
        Err(e) => return Err(format!("ConnectionError: {e}")),
    };
    match resp.text().await {
        Ok(text) => Ok(text),
        Err(e) if e.is_timeout() => Err("Timeout in REST API call".to_owned()),
        Err(e) => Err(format!("ConnectionError: {e}")),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (versionedobjects' DateTimeField).
fn ovo_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Cinder's target for a backup, in Cinder's key order.
pub(crate) fn target(b: &Backup) -> Vec<(&'static str, Value)> {
    let metadata: serde_json::Map<String, Value> =
        b.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let done = b.status != "creating";
    vec![
        ("project_id", json!(b.project_id)),
        ("user_id", json!(b.user_id)),
        ("id", json!(b.id)),
        ("volume_id", json!(b.volume_id)),
        ("host", if done { json!(BACKUP_HOST) } else { Value::Null }),
        ("availability_zone", json!(b.availability_zone)),
        ("container", json!(b.container)),
        ("parent_id", json!(b.parent_id)),
        ("status", json!(b.status)),
        ("fail_reason", json!(b.fail_reason)),
        ("size", json!(b.size)),
        ("display_name", json!(b.name)),
        ("display_description", json!(b.description)),
        ("service_metadata", if done { json!(b.id) } else { Value::Null }),
        ("service", json!(BACKUP_SERVICE)),
        ("object_count", json!(b.object_count)),
        ("temp_volume_id", Value::Null),
        ("temp_snapshot_id", Value::Null),
        ("num_dependent_backups", json!(b.num_dependent_backups)),
        ("snapshot_id", json!(b.snapshot_id)),
        ("data_timestamp", json!(ovo_time(b.data_timestamp))),
        ("restore_volume_id", Value::Null),
        ("metadata", Value::Object(metadata)),
        ("encryption_key_id", Value::Null),
        ("created_at", json!(ovo_time(b.created_at))),
        ("updated_at", json!(ovo_time(b.updated_at))),
        ("deleted_at", Value::Null),
        ("deleted", json!(false)),
    ]
}

/// The caller's credentials as Cinder passes them to oslo.policy.
pub(crate) fn credentials(t: &Token) -> Vec<(&'static str, Value)> {
    vec![
        ("is_admin", json!(t.is_admin())),
        ("user_id", json!(t.user_id)),
        ("user_domain_id", json!(DOMAIN_ID)),
        ("system_scope", Value::Null),
        ("domain_id", Value::Null),
        ("project_id", json!(t.project_id)),
        ("project_domain_id", json!(DOMAIN_ID)),
        ("roles", json!(t.roles)),
        ("is_admin_project", json!(true)),
        ("service_user_id", Value::Null),
        ("service_user_domain_id", Value::Null),
        ("service_project_id", Value::Null),
        ("service_project_domain_id", Value::Null),
        ("service_roles", json!([])),
    ]
}

/// Python's `template % target` for `%(key)s` (and `%%`); a missing key is
/// Python's `KeyError`.
pub(crate) fn python_format(template: &str, target: &[(&str, Value)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let Some(inner) = rest.strip_prefix('(') else {
            return Err(format!("unsupported format character in {template:?}"));
        };
        let Some(close) = inner.find(")s") else {
            return Err(format!("unsupported format in {template:?}: only %(key)s is known"));
        };
        let key = &inner[..close];
        let Some((_, value)) = target.iter().find(|(k, _)| *k == key) else {
            return Err(format!("KeyError: '{key}'"));
        };
        out.push_str(&py_str(value));
        rest = &inner[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Python's `str()` of a JSON value.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// `json.dumps(value)` with Python's defaults.
pub(crate) fn py_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

/// `json.dumps` of an object given as ordered pairs.
pub(crate) fn py_json_object(pairs: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_string(&mut out, k);
        out.push_str(": ");
        write_json(&mut out, v);
    }
    out.push('}');
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Python writes it (`ensure_ascii`: `\uXXXX` beyond ASCII).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_written_like_python() {
        assert_eq!(py_json(&json!("backup:delete")), "\"backup:delete\"");
        assert_eq!(
            py_json(&json!({"a": [1, null, true], "b": "café\n"})),
            r#"{"a": [1, null, true], "b": "caf\u00e9\n"}"#
        );
        assert_eq!(py_json_object(&[("z", json!(1)), ("a", json!({}))]), r#"{"z": 1, "a": {}}"#);
        assert_eq!(py_json(&json!("😀")), r#""\ud83d\ude00""#);
    }

    #[test]
    fn the_url_is_filled_in_like_python() {
        let target = [("id", json!("x&y")), ("n", Value::Null), ("size", json!(3))];
        assert_eq!(
            python_format("http://g/v1/backup?backup_id=%(id)s", &target).unwrap(),
            "http://g/v1/backup?backup_id=x&y"
        );
        assert_eq!(python_format("/%(n)s/%(size)s/100%%", &target).unwrap(), "/None/3/100%");
        assert_eq!(python_format("/%(nope)s", &target).unwrap_err(), "KeyError: 'nope'");
    }

    #[test]
    fn only_true_passes() {
        for yes in ["True", "\"True\"", "\"\"True"] {
            assert!(passes(yes), "{yes}");
        }
        for no in ["False", "true", " True", "True\n", "", "Error: True"] {
            assert!(!passes(no), "{no:?}");
        }
    }
}

//! Running the `ceph` CLI: the room's only I/O.
//!
//! Output formats (Ceph's `OSDMonitor` "osd pool get" handler): with `-f json`
//! a property that is set prints one object holding the pool, its id and the
//! property, e.g. `{"pool":"backups","pool_id":3,"compression_mode":"aggressive"}`;
//! strings for mode and algorithm, a float for the ratio, integers for the blob
//! sizes. A property never set on the pool exits with status 2 (ENOENT) and
//! `Error ENOENT: option 'compression_mode' is not set on pool 'backups'` on
//! stderr; an unknown pool also exits 2, with `unrecognized pool`. `osd pool
//! set` prints `set pool 3 compression_mode to aggressive` and exits 0.

use std::process::Command;

use super::settings::{PROPERTIES, Settings};
use crate::conf::SettingsError;

/// What `show` reports for a property the pool does not set (the cluster's
/// `bluestore_compression_*` default applies).
pub const NOT_SET: &str = "(not set)";

/// Why reading or changing the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum CephError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("`{command}` printed output Staffeln cannot read ({reason}): {output}")]
    Output { command: String, reason: String, output: String },
}

/// Reads every compression property of the pool:
/// `(property, value)` pairs in a fixed order, [`NOT_SET`] for those the pool
/// leaves to the cluster default.
pub fn show(settings: &Settings) -> Result<Vec<(String, String)>, CephError> {
    settings.validate_target()?;
    let mut out = Vec::with_capacity(PROPERTIES.len());
    for property in PROPERTIES {
        let args = ["osd", "pool", "get", settings.pool.as_str(), property, "-f", "json"];
        let value = match run(settings, &args) {
            Ok(stdout) => parse_get(&command_line(settings, &args), &stdout, property)?,
            Err(CephError::Failed { stderr, .. }) if stderr.contains("is not set on pool") => NOT_SET.to_owned(),
            Err(err) => return Err(err),
        };
        out.push((property.to_owned(), value));
    }
    Ok(out)
}

/// Validates the settings, then sets each configured property on the pool
/// (the mode last). Returns the `(property, value)` pairs it set. Properties
/// left unset in the settings are not touched.
pub fn apply(settings: &Settings) -> Result<Vec<(String, String)>, CephError> {
    settings.validate()?;
    let mut done = Vec::new();
    for (property, value) in settings.properties() {
        run(settings, &["osd", "pool", "set", settings.pool.as_str(), property, value.as_str()])?;
        done.push((property.to_owned(), value));
    }
    Ok(done)
}

fn global_args(settings: &Settings) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(conf) = &settings.ceph_conf {
        args.push("--conf".to_owned());
        args.push(conf.display().to_string());
    }
    if let Some(id) = &settings.ceph_id {
        args.push("--id".to_owned());
        args.push(id.clone());
    }
    args.push("--connect-timeout".to_owned());
    args.push(settings.connect_timeout.to_string());
    args
}

fn command_line(settings: &Settings, args: &[&str]) -> String {
    let mut words = vec![settings.ceph_cli.display().to_string()];
    words.extend(global_args(settings));
    words.extend(args.iter().map(|a| (*a).to_owned()));
    words.join(" ")
}

fn run(settings: &Settings, args: &[&str]) -> Result<String, CephError> {
    let command = command_line(settings, args);
    let output = Command::new(&settings.ceph_cli)
        .args(global_args(settings))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| CephError::Spawn { command: command.clone(), source })?;
    if !output.status.success() {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(CephError::Failed { command, status, stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn parse_get(command: &str, stdout: &str, property: &str) -> Result<String, CephError> {
    let bad = |reason: &str| CephError::Output {
        command: command.to_owned(),
        reason: reason.to_owned(),
        output: stdout.trim().to_owned(),
    };
    let doc: serde_json::Value = serde_json::from_str(stdout).map_err(|e| bad(&format!("not JSON: {e}")))?;
    match doc.get(property) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(bad(&format!("{property} is neither a string nor a number"))),
        None => Err(bad(&format!("no {property} key"))),
    }
}

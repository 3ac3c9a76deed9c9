//! oslo.log-compatible logging on top of `tracing`.
//!
//! Lines are byte-compatible with oslo.log's default formats, so kolla's
//! fluentd parser and operators' greps work unchanged:
//!
//! ```text
//! 2026-11-25 14:08:45.066 15087 INFO staffeln.conductor [-] Conductor started
//! 2026-11-25 14:08:45.066 15087 INFO staffeln.api [None req-6f1c… u1 p1 - - - -] request served
//! ```
//!
//! * The logger name is the `tracing` target with `::` written as `.`.
//! * A record inside a span carrying `request_id` uses
//!   `logging_context_format_string`, every other record
//!   `logging_default_format_string`; DEBUG records get
//!   `logging_debug_format_suffix`. Span fields `request_id`,
//!   `global_request_id`, `user`, `project`, `domain`, `system_scope`,
//!   `user_domain`, `project_domain`, `instance` and `resource` fill oslo's keys.
//! * Structured fields other than `message` are appended as `key=value`, so a
//!   line still reads as a sentence and can be filtered on `volume.id=…`.
//! * Destinations follow oslo.log: `log_file` (joined to `log_dir`), or
//!   `<log_dir>/<prog>.log`, else stdout; `use_stderr` adds stderr. A log file
//!   is reopened when logrotate moves it (oslo's watched file handler).
//! * `debug` and `default_log_levels` (`logger=LEVEL`, names or numbers) set
//!   the levels and can be changed at run time through [`LogHandle::apply`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

use super::logfmt::{FieldValue, LogFormat, strftime};
use crate::conf::{Config, SettingsError};

/// The oslo.log options this module reads, from `[DEFAULT]`
/// ([`LogSettings::from_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub debug: bool,
    pub log_file: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub use_stderr: bool,
    pub log_date_format: String,
    /// `default_log_levels`, parsed: the logger (`oslo.messaging`) and its level.
    pub default_log_levels: Vec<(String, LevelFilter)>,
    pub context_format: String,
    pub default_format: String,
    pub debug_suffix: String,
}

impl Default for LogSettings {
    /// oslo.log's own defaults.
    fn default() -> Self {
        LogSettings {
            debug: false,
            log_file: None,
            log_dir: None,
            use_stderr: false,
            log_date_format: "%Y-%m-%d %H:%M:%S".into(),
            default_log_levels: Vec::new(),
            context_format: "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s".into(),
            default_format: "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s".into(),
            debug_suffix: "%(funcName)s %(pathname)s:%(lineno)d".into(),
        }
    }
}

impl LogSettings {
    /// The logging options of `[DEFAULT]`; a `default_log_levels` entry that
    /// is not `logger=LEVEL` names the option.
    pub fn from_config(config: &Config) -> Result<LogSettings, SettingsError> {
        let d = &config.default;
        let mut levels = Vec::new();
        for entry in &d.default_log_levels {
            levels.push(parse_log_level(entry).ok_or_else(|| {
                SettingsError::new(
                    "DEFAULT",
                    "default_log_levels",
                    entry,
                    "expected logger=LEVEL with LEVEL one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or a number",
                )
            })?);
        }
        Ok(LogSettings {
            debug: d.debug,
            log_file: d.log_file.as_ref().map(Into::into),
            log_dir: d.log_dir.as_ref().map(Into::into),
            use_stderr: d.use_stderr,
            log_date_format: d.log_date_format.clone(),
            default_log_levels: levels,
            context_format: d.logging_context_format_string.clone(),
            default_format: d.logging_default_format_string.clone(),
            debug_suffix: d.logging_debug_format_suffix.clone(),
        })
    }
}

/// One `default_log_levels` entry, `logger=LEVEL` (a Python level name or
/// number).
pub fn parse_log_level(entry: &str) -> Option<(String, LevelFilter)> {
    let (logger, level) = entry.split_once('=')?;
    let level = parse_level(level.trim())?;
    let logger = logger.trim();
    (!logger.is_empty()).then(|| (logger.to_owned(), level))
}

/// A logging option that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("logging is already set up in this process")]
    AlreadySet,
}

/// Where the log lines of program `prog` go: the file path, if any.
pub fn log_path(prog: &str, settings: &LogSettings) -> Option<PathBuf> {
    match (&settings.log_file, &settings.log_dir) {
        (Some(file), Some(dir)) => Some(dir.join(file)),
        (Some(file), None) => Some(file.clone()),
        (None, Some(dir)) => Some(dir.join(format!("{prog}.log"))),
        (None, None) => None,
    }
}

/// Builds the level filter from `debug` and `default_log_levels`.
pub fn level_filter(settings: &LogSettings) -> Targets {
    let root = if settings.debug { LevelFilter::DEBUG } else { LevelFilter::INFO };
    let mut targets = Targets::new().with_default(root);
    for (logger, level) in &settings.default_log_levels {
        targets = targets.with_target(logger.replace('.', "::"), *level);
    }
    targets
}

/// Python logging level names and numbers, mapped onto tracing's levels.
fn parse_level(level: &str) -> Option<LevelFilter> {
    if let Ok(n) = level.parse::<i64>() {
        return Some(match n {
            i64::MIN..=0 => LevelFilter::TRACE,
            1..=9 => LevelFilter::TRACE,
            10..=19 => LevelFilter::DEBUG,
            20..=29 => LevelFilter::INFO,
            30..=39 => LevelFilter::WARN,
            40..=49 => LevelFilter::ERROR,
            _ => LevelFilter::ERROR,
        });
    }
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" | "NOTSET" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" | "WARNING" => LevelFilter::WARN,
        "ERROR" | "CRITICAL" | "FATAL" => LevelFilter::ERROR,
        _ => return None,
    })
}

/// Handle to change levels and formats at run time (SIGHUP).
pub struct LogHandle {
    filter: reload::Handle<Targets, Registry>,
    formats: Arc<RwLock<Formats>>,
    settings: Mutex<LogSettings>,
}

impl LogHandle {
    /// Re-applies `debug`, `default_log_levels` and the format strings.
    /// Destinations are not reopened: a changed `log_file`/`log_dir` needs a
    /// restart, and the caller says so.
    pub fn apply(&self, settings: &LogSettings) {
        let targets = level_filter(settings);
        // reload only fails when the subscriber is gone; then nothing logs anyway.
        let _ = self.filter.reload(targets);
        if let Ok(mut formats) = self.formats.write() {
            *formats = Formats::new(settings);
        }
        if let Ok(mut current) = self.settings.lock() {
            *current = settings.clone();
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> LogSettings {
        self.settings.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Sets up logging for the process. Fails on an unopenable log file, or
/// when called twice.
pub fn init(prog: &str, settings: &LogSettings) -> Result<LogHandle, LogError> {
    let (layer, handle) = build(prog, settings)?;
    let (filter, filter_handle) = reload::Layer::new(level_filter(settings));
    Registry::default().with(filter).with(layer).try_init().map_err(|_| LogError::AlreadySet)?;
    Ok(LogHandle { filter: filter_handle, formats: handle, settings: Mutex::new(settings.clone()) })
}

fn build(prog: &str, settings: &LogSettings) -> Result<(OsloLayer, Arc<RwLock<Formats>>), LogError> {
    let mut sinks = Vec::new();
    let path = log_path(prog, settings);
    if let Some(path) = &path {
        sinks.push(Sink::File(Mutex::new(WatchedFile::open(path)?)));
    }
    if settings.use_stderr {
        sinks.push(Sink::Stderr);
    }
    if sinks.is_empty() {
        sinks.push(Sink::Stdout);
    }
    let formats = Arc::new(RwLock::new(Formats::new(settings)));
    Ok((OsloLayer { formats: formats.clone(), sinks: Arc::new(sinks), pid: std::process::id() }, formats))
}

struct Formats {
    context: LogFormat,
    default: LogFormat,
    debug_suffix: LogFormat,
    date: String,
}

impl Formats {
    fn new(s: &LogSettings) -> Formats {
        Formats {
            context: LogFormat::parse(&s.context_format),
            default: LogFormat::parse(&s.default_format),
            debug_suffix: LogFormat::parse(&s.debug_suffix),
            date: s.log_date_format.clone(),
        }
    }
}

enum Sink {
    Stdout,
    Stderr,
    File(Mutex<WatchedFile>),
}

/// A log file that is reopened when it is moved or deleted (logrotate).
struct WatchedFile {
    path: PathBuf,
    file: File,
    id: (u64, u64),
}

impl WatchedFile {
    fn open(path: &Path) -> Result<WatchedFile, LogError> {
        let err = |source| LogError::File { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        Ok(WatchedFile { path: path.to_owned(), file, id: (meta.dev(), meta.ino()) })
    }

    fn write_line(&mut self, line: &[u8]) {
        let moved = match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()) != self.id,
            Err(_) => true,
        };
        if moved && let Ok(fresh) = WatchedFile::open(&self.path) {
            *self = fresh;
        }
        let _ = self.file.write_all(line);
    }
}

/// oslo context keys collected from spans.
#[derive(Default, Clone)]
struct SpanContext(BTreeMap<&'static str, String>);

const CONTEXT_KEYS: &[&str] = &[
    "request_id",
    "global_request_id",
    "user",
    "project",
    "domain",
    "system_scope",
    "user_domain",
    "project_domain",
    "instance",
    "resource",
    "user_name",
    "project_name",
];

impl Visit for SpanContext {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(key) = CONTEXT_KEYS.iter().find(|k| **k == field.name()) {
            self.0.insert(key, value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if let Some(key) = CONTEXT_KEYS.iter().find(|k| **k == field.name()) {
            self.0.insert(key, format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// The message and the other fields of one event.
#[derive(Default)]
struct EventFields {
    message: String,
    extra: String,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.extra, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !field.name().starts_with("log.") {
            let _ = write!(self.extra, " {}={:?}", field.name(), value);
        }
    }
}

struct OsloLayer {
    formats: Arc<RwLock<Formats>>,
    sinks: Arc<Vec<Sink>>,
    pid: u32,
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARNING",
        Level::ERROR => "ERROR",
    }
}

impl<S> Layer<S> for OsloLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut fields = SpanContext::default();
        attrs.record(&mut fields);
        if !fields.0.is_empty()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanContext>() {
                values.record(fields);
            } else {
                let mut fields = SpanContext::default();
                values.record(&mut fields);
                if !fields.0.is_empty() {
                    ext.insert(fields);
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut context = SpanContext::default();
        if let Some(scope) = ctx.event_scope(event) {
            // From the root to the leaf, so the innermost span wins.
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanContext>() {
                    context.0.extend(fields.0.iter().map(|(k, v)| (*k, v.clone())));
                }
            }
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let line = self.render(event.metadata(), &context, &fields);
        for sink in self.sinks.iter() {
            match sink {
                Sink::Stdout => {
                    let _ = std::io::stdout().lock().write_all(line.as_bytes());
                }
                Sink::Stderr => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
                Sink::File(file) => {
                    if let Ok(mut file) = file.lock() {
                        file.write_line(line.as_bytes());
                    }
                }
            }
        }
    }
}

impl OsloLayer {
    fn render(&self, meta: &tracing::Metadata<'_>, context: &SpanContext, fields: &EventFields) -> String {
        let now = chrono::Local::now();
        let Ok(formats) = self.formats.read() else { return String::new() };
        let asctime = strftime(&now, &formats.date);
        let name = meta.target().replace("::", ".");
        let message = format!("{}{}", fields.message, fields.extra);
        let get = |key: &str| context.0.get(key).map(String::as_str);
        let or_dash = |key: &str| get(key).filter(|v| !v.is_empty()).unwrap_or("-");
        let user_identity = ["user", "project", "domain", "system_scope", "user_domain", "project_domain"]
            .iter()
            .map(|k| or_dash(k))
            .collect::<Vec<_>>()
            .join(" ");
        let instance = get("instance").map(|uuid| format!("[instance: {uuid}] ")).unwrap_or_default();
        let path = meta.file().unwrap_or("");
        let lineno = i64::from(meta.line().unwrap_or(0));
        let module = meta.module_path().unwrap_or("");
        let lookup = |key: &str| -> Option<FieldValue<'_>> {
            Some(match key {
                "asctime" => FieldValue::Str(&asctime),
                "msecs" => FieldValue::Int(i64::from(now.timestamp_subsec_millis())),
                "process" => FieldValue::Int(i64::from(self.pid)),
                "levelname" => FieldValue::Str(level_name(meta.level())),
                "name" => FieldValue::Str(&name),
                "message" => FieldValue::Str(&message),
                "instance" => FieldValue::Str(&instance),
                "user_identity" => FieldValue::Str(&user_identity),
                "global_request_id" => FieldValue::Str(get("global_request_id").unwrap_or("None")),
                "request_id" => FieldValue::Str(or_dash("request_id")),
                "funcName" | "module" => FieldValue::Str(module),
                "pathname" | "filename" => FieldValue::Str(path),
                "lineno" => FieldValue::Int(lineno),
                "created" => FieldValue::Int(now.timestamp()),
                "color" => FieldValue::Str(""),
                "user_name" | "project_name" | "resource" => FieldValue::Str(get(key).unwrap_or("")),
                "user" | "project" | "domain" | "system_scope" | "user_domain" | "project_domain" => {
                    FieldValue::Str(or_dash(key))
                }
                _ => return None,
            })
        };
        let mut line = String::with_capacity(160);
        let format = if context.0.contains_key("request_id") { &formats.context } else { &formats.default };
        format.render(&mut line, lookup);
        if matches!(*meta.level(), Level::DEBUG | Level::TRACE) {
            line.push(' ');
            formats.debug_suffix.render(&mut line, lookup);
        }
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_follows_oslo() {
        let mut s = LogSettings::default();
        assert_eq!(log_path("staffeln-api", &s), None);
        s.log_dir = Some("/var/log/kolla/staffeln".into());
        assert_eq!(log_path("staffeln-api", &s), Some("/var/log/kolla/staffeln/staffeln-api.log".into()));
        s.log_file = Some("api.log".into());
        assert_eq!(log_path("staffeln-api", &s), Some("/var/log/kolla/staffeln/api.log".into()));
        s.log_file = Some("/abs/api.log".into());
        assert_eq!(log_path("staffeln-api", &s), Some("/abs/api.log".into()), "an absolute log_file wins");
        s.log_dir = None;
        assert_eq!(log_path("staffeln-api", &s), Some("/abs/api.log".into()));
    }

    #[test]
    fn default_log_levels_accept_names_and_numbers_and_reject_junk() {
        let mut conf = Config::default();
        conf.default.default_log_levels = vec!["amqp=WARN".into(), "oslo.messaging=20".into(), "lapin=CRITICAL".into()];
        let s = LogSettings::from_config(&conf).unwrap();
        assert_eq!(
            s.default_log_levels,
            vec![
                ("amqp".to_owned(), LevelFilter::WARN),
                ("oslo.messaging".to_owned(), LevelFilter::INFO),
                ("lapin".to_owned(), LevelFilter::ERROR)
            ]
        );
        for bad in ["amqp", "amqp=LOUD", "=INFO"] {
            conf.default.default_log_levels = vec![bad.into()];
            let err = LogSettings::from_config(&conf).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("[DEFAULT] default_log_levels = {bad:?}: expected logger=LEVEL")),
                "{err}"
            );
        }
    }
}

//! The oslo.messaging message formats, as pure functions: the 2.0 envelope,
//! RPC requests, replies, failures and `messagingv2` notifications.
//!
//! Nothing here does I/O. Every decoder returns a typed [`EnvelopeError`]
//! naming the field and the value it did not like; none of them panics,
//! whatever the bytes.

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Map, Value};
use std::fmt;

/// The only envelope version this peer writes (`oslo.version`).
pub const ENVELOPE_VERSION: &str = "2.0";
/// The only `content_type` oslo.messaging accepts (no charset parameter).
pub const CONTENT_TYPE: &str = "application/json";

/// The flattened request context, as `context.to_dict()` gives it in Python.
/// On the wire each key travels as `_context_<key>`.
pub type Context = Map<String, Value>;

/// A message that could not be decoded. `Display` names the field and value.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message body {snippet:?} is not JSON")]
    NotJson {
        snippet: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("message body {snippet:?} is not a JSON object")]
    NotAnObject { snippet: String },
    #[error("envelope field oslo.message is not a string: {found}")]
    InnerNotString { found: String },
    #[error("envelope field oslo.message {snippet:?} is not a JSON object")]
    InnerNotObject {
        snippet: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("unsupported envelope version oslo.version = {version:?} (this peer speaks {ENVELOPE_VERSION})")]
    UnsupportedEnvelope { version: String },
    #[error("message field {field} = {found}: expected {expected}")]
    BadField { field: &'static str, found: String, expected: &'static str },
    #[error("message lacks the field {field}")]
    MissingField { field: &'static str },
    #[error("RPC version {version:?} is not of the form X.Y or X.Y.Z")]
    BadVersion { version: String },
    #[error("reply field failure {snippet:?} is not a JSON-encoded exception")]
    BadFailure {
        snippet: String,
        #[source]
        source: Option<serde_json::Error>,
    },
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    snippet(text.as_bytes())
}

/// Wraps an inner message in the 2.0 envelope and serialises it.
pub fn encode(inner: Map<String, Value>) -> Vec<u8> {
    let mut outer = Map::new();
    outer.insert("oslo.version".into(), Value::from(ENVELOPE_VERSION));
    outer.insert("oslo.message".into(), Value::from(Value::Object(inner).to_string()));
    Value::Object(outer).to_string().into_bytes()
}

/// Parses an AMQP body and unwraps the envelope. A JSON object lacking either
/// envelope key is taken to be the inner message itself (the 1.0 format), as
/// oslo.messaging does. An envelope of another major version, or a newer minor
/// one, is refused.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>, EnvelopeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|source| EnvelopeError::NotJson { snippet: snippet(body), source })?;
    let Value::Object(outer) = value else {
        return Err(EnvelopeError::NotAnObject { snippet: snippet(body) });
    };
    if !(outer.contains_key("oslo.version") && outer.contains_key("oslo.message")) {
        return Ok(outer);
    }
    let version = match &outer["oslo.version"] {
        Value::String(v) => v.clone(),
        other => other.to_string(),
    };
    if !envelope_version_ok(&version) {
        return Err(EnvelopeError::UnsupportedEnvelope { version });
    }
    let Value::String(inner) = &outer["oslo.message"] else {
        return Err(EnvelopeError::InnerNotString { found: describe(&outer["oslo.message"]) });
    };
    match serde_json::from_str::<Value>(inner) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(EnvelopeError::InnerNotObject { snippet: snippet(inner.as_bytes()), source: None }),
        Err(source) => Err(EnvelopeError::InnerNotObject { snippet: snippet(inner.as_bytes()), source: Some(source) }),
    }
}

/// oslo's `version_is_compatible("2.0", version)`: same major, minor ≤ 0.
fn envelope_version_ok(version: &str) -> bool {
    match RpcVersion::parse(version) {
        Ok(v) => RpcVersion { major: 2, minor: 0, rev: 0 }.can_serve(v),
        Err(_) => false,
    }
}

/// An RPC API version `X.Y[.Z]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcVersion {
    pub major: u32,
    pub minor: u32,
    pub rev: u32,
}

impl RpcVersion {
    pub fn parse(text: &str) -> Result<RpcVersion, EnvelopeError> {
        let bad = || EnvelopeError::BadVersion { version: text.to_owned() };
        let mut parts = text.split('.');
        let mut next = |required: bool| -> Result<u32, EnvelopeError> {
            match parts.next() {
                Some(p) => p.trim().parse().map_err(|_| bad()),
                None if required => Err(bad()),
                None => Ok(0),
            }
        };
        let version = RpcVersion { major: next(true)?, minor: next(true)?, rev: next(false)? };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }

    /// Whether an endpoint implementing `self` serves a request for
    /// `requested` (oslo's `version_is_compatible`): same major, and the
    /// requested minor (then revision) not newer than ours.
    pub fn can_serve(self, requested: RpcVersion) -> bool {
        requested.major == self.major
            && (requested.minor < self.minor || (requested.minor == self.minor && requested.rev <= self.rev))
    }
}

impl fmt::Display for RpcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rev == 0 {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.rev)
        }
    }
}

/// A fresh uuid4 without dashes, as `_msg_id`, `_unique_id` and queue names use.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Where the reply to a call goes.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyTo {
    /// `_msg_id`: the correlation id.
    pub msg_id: String,
    /// `_reply_q`: the caller's reply queue, routed through the default exchange.
    pub reply_q: String,
    /// `_timeout`: the caller's `call_monitor_timeout`, which asks for
    /// heartbeats. Not the call timeout.
    pub call_monitor_timeout: Option<f64>,
}

/// An RPC request: a call when `reply` is set, a cast otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub args: Map<String, Value>,
    pub namespace: Option<String>,
    /// `None` means `1.0` to a server.
    pub version: Option<String>,
    pub context: Context,
    pub unique_id: Option<String>,
    pub reply: Option<ReplyTo>,
}

/// A request that could not be decoded, with where to send the failure if
/// the caller can still be identified.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BadRequest {
    pub reply: Option<ReplyTo>,
    #[source]
    pub error: EnvelopeError,
}

impl Request {
    /// The inner message, key for key as `RPCClient` writes it.
    pub fn to_inner(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("method".into(), Value::from(self.method.clone()));
        m.insert("args".into(), Value::Object(self.args.clone()));
        if let Some(version) = &self.version {
            m.insert("version".into(), Value::from(version.clone()));
        }
        if let Some(namespace) = &self.namespace {
            m.insert("namespace".into(), Value::from(namespace.clone()));
        }
        if let Some(reply) = &self.reply {
            m.insert("_msg_id".into(), Value::from(reply.msg_id.clone()));
            m.insert("_reply_q".into(), Value::from(reply.reply_q.clone()));
            m.insert(
                "_timeout".into(),
                reply.call_monitor_timeout.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
            );
        }
        m.insert("_unique_id".into(), self.unique_id.clone().map_or(Value::Null, Value::from));
        for (key, value) in &self.context {
            m.insert(format!("_context_{key}"), value.clone());
        }
        m
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self.to_inner())
    }

    /// Reads an inner message as a stock server does: a missing `args` is
    /// `{}`, a missing `version` is left to the dispatcher (1.0), the
    /// `_context_` keys become the context.
    pub fn from_inner(mut m: Map<String, Value>) -> Result<Request, BadRequest> {
        let reply = reply_to(&m).map_err(|error| BadRequest { reply: None, error })?;
        let fail = |error| BadRequest { reply: reply.clone(), error };
        let method = match m.remove("method") {
            Some(Value::String(s)) => s,
            Some(other) => return Err(fail(bad_field("method", &other, "a string"))),
            None => return Err(fail(EnvelopeError::MissingField { field: "method" })),
        };
        let args = match m.remove("args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(args)) => args,
            Some(other) => {
                return Err(fail(bad_field("args", &other, "an object of keyword arguments")));
            }
        };
        let version = opt_string(&mut m, "version").map_err(fail)?;
        let namespace = opt_string(&mut m, "namespace").map_err(fail)?;
        let unique_id = match m.remove("_unique_id") {
            Some(Value::String(s)) => Some(s),
            Some(other) if !other.is_null() => Some(other.to_string()),
            _ => None,
        };
        let context =
            m.into_iter().filter_map(|(k, v)| k.strip_prefix("_context_").map(|k| (k.to_owned(), v))).collect();
        Ok(Request { method, args, namespace, version, context, unique_id, reply })
    }

    pub fn decode(body: &[u8]) -> Result<Request, BadRequest> {
        let inner = decode(body).map_err(|error| BadRequest { reply: None, error })?;
        Request::from_inner(inner)
    }
}

fn bad_field(field: &'static str, found: &Value, expected: &'static str) -> EnvelopeError {
    EnvelopeError::BadField { field, found: describe(found), expected }
}

fn opt_string(m: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, EnvelopeError> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad_field(field, &other, "a string")),
    }
}

fn reply_to(m: &Map<String, Value>) -> Result<Option<ReplyTo>, EnvelopeError> {
    let msg_id = match m.get("_msg_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(bad_field("_msg_id", other, "a string")),
    };
    let reply_q = match m.get("_reply_q") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(EnvelopeError::MissingField { field: "_reply_q" }),
        Some(other) => return Err(bad_field("_reply_q", other, "a queue name")),
    };
    let call_monitor_timeout = match m.get("_timeout") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => return Err(bad_field("_timeout", other, "a number of seconds or null")),
    };
    Ok(Some(ReplyTo { msg_id, reply_q, call_monitor_timeout }))
}

/// The module of dispatcher errors on a stock server.
pub const DISPATCHER_MODULE: &str = "oslo_messaging.rpc.dispatcher";
/// The module named in failures raised by Staffeln's own code. No Python
/// caller can import it, so callers raise `oslo_messaging.RemoteError`.
pub const STAFFELN_MODULE: &str = "staffeln.exception";

/// An exception as it travels in a reply's `failure` field.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcFailure {
    /// Exception class name, e.g. `NoSuchMethod`, `TypeError`, `BackupNotFound`.
    pub class: String,
    /// `builtins` makes a Python caller rebuild that built-in exception.
    pub module: String,
    pub message: String,
    pub tb: Vec<String>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

impl RpcFailure {
    fn new(class: &str, module: &str, message: String) -> RpcFailure {
        RpcFailure {
            class: class.to_owned(),
            module: module.to_owned(),
            tb: vec![format!("{module}.{class}: {message}\n")],
            args: vec![Value::from(message.clone())],
            message,
            kwargs: Map::new(),
        }
    }

    /// An application error; a Python caller raises `RemoteError(exc_type=class)`.
    pub fn remote(class: &str, message: impl Into<String>) -> RpcFailure {
        RpcFailure::new(class, STAFFELN_MODULE, message.into())
    }

    /// A Python built-in exception (`ValueError`, `KeyError`, …), rebuilt as
    /// such by a Python caller.
    pub fn builtin(class: &str, message: impl Into<String>) -> RpcFailure {
        RpcFailure::new(class, "builtins", message.into())
    }

    /// Bad keyword arguments, as Python reports them.
    pub fn type_error(message: impl Into<String>) -> RpcFailure {
        RpcFailure::builtin("TypeError", message)
    }

    pub fn no_such_method(method: &str) -> RpcFailure {
        RpcFailure::new("NoSuchMethod", DISPATCHER_MODULE, format!("Endpoint does not support RPC method {method}"))
    }

    pub fn unsupported_version(version: &str, method: &str) -> RpcFailure {
        RpcFailure::new(
            "UnsupportedVersion",
            DISPATCHER_MODULE,
            format!("Endpoint does not support RPC version {version}. Attempted method: {method}"),
        )
    }

    /// The JSON string that goes into a reply's `failure`.
    pub fn to_wire(&self) -> String {
        let mut m = Map::new();
        m.insert("class".into(), Value::from(self.class.clone()));
        m.insert("module".into(), Value::from(self.module.clone()));
        m.insert("message".into(), Value::from(self.message.clone()));
        m.insert("tb".into(), Value::from(self.tb.clone()));
        m.insert("args".into(), Value::Array(self.args.clone()));
        m.insert("kwargs".into(), Value::Object(self.kwargs.clone()));
        Value::Object(m).to_string()
    }

    /// Reads a `failure` string. Only `class` is required; the rest defaults
    /// as in `deserialize_remote_exception`.
    pub fn from_wire(text: &str) -> Result<RpcFailure, EnvelopeError> {
        let bad = |source| EnvelopeError::BadFailure { snippet: snippet(text.as_bytes()), source };
        let Value::Object(m) = serde_json::from_str::<Value>(text).map_err(|e| bad(Some(e)))? else {
            return Err(bad(None));
        };
        let text_of = |key: &str| match m.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let class = text_of("class").ok_or_else(|| bad(None))?;
        Ok(RpcFailure {
            class,
            module: text_of("module").unwrap_or_default(),
            message: text_of("message").unwrap_or_default(),
            tb: match m.get("tb") {
                Some(Value::Array(lines)) => {
                    lines.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).collect()
                }
                _ => Vec::new(),
            },
            args: match m.get("args") {
                Some(Value::Array(args)) => args.clone(),
                _ => Vec::new(),
            },
            kwargs: match m.get("kwargs") {
                Some(Value::Object(kwargs)) => kwargs.clone(),
                _ => Map::new(),
            },
        })
    }
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for RpcFailure {}

/// What a reply carries.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyBody {
    /// `ending: true` with a result.
    Result(Value),
    /// `ending: true` with a failure.
    Failure(RpcFailure),
    /// `ending: false`, `result: null`: a call-monitor heartbeat.
    Heartbeat,
    /// `ending: false` with a result: the first half of an old two-message reply.
    Partial(Value),
}

/// A reply to one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub msg_id: String,
    pub body: ReplyBody,
}

impl Reply {
    /// The inner message: `result`, `failure` and `ending` always present.
    pub fn to_inner(&self) -> Map<String, Value> {
        let (result, failure, ending) = match &self.body {
            ReplyBody::Result(v) => (v.clone(), Value::Null, true),
            ReplyBody::Failure(f) => (Value::Null, Value::from(f.to_wire()), true),
            ReplyBody::Heartbeat => (Value::Null, Value::Null, false),
            ReplyBody::Partial(v) => (v.clone(), Value::Null, false),
        };
        let mut m = Map::new();
        m.insert("result".into(), result);
        m.insert("failure".into(), failure);
        m.insert("ending".into(), Value::Bool(ending));
        m.insert("_msg_id".into(), Value::from(self.msg_id.clone()));
        m.insert("_unique_id".into(), Value::from(new_id()));
        m
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self.to_inner())
    }

    pub fn from_inner(mut m: Map<String, Value>) -> Result<Reply, EnvelopeError> {
        let msg_id = match m.remove("_msg_id") {
            Some(Value::String(s)) => s,
            Some(other) => return Err(bad_field("_msg_id", &other, "a string")),
            None => return Err(EnvelopeError::MissingField { field: "_msg_id" }),
        };
        let ending = match m.get("ending") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(bad_field("ending", other, "a boolean")),
        };
        let result = m.remove("result").unwrap_or(Value::Null);
        let body = match m.remove("failure") {
            Some(Value::String(text)) => ReplyBody::Failure(RpcFailure::from_wire(&text)?),
            None | Some(Value::Null) if ending => ReplyBody::Result(result),
            None | Some(Value::Null) if result.is_null() => ReplyBody::Heartbeat,
            None | Some(Value::Null) => ReplyBody::Partial(result),
            Some(other) => {
                return Err(bad_field("failure", &other, "a JSON-encoded exception string or null"));
            }
        };
        Ok(Reply { msg_id, body })
    }

    pub fn decode(body: &[u8]) -> Result<Reply, EnvelopeError> {
        Reply::from_inner(decode(body)?)
    }
}

/// Notification priorities; lower-case in routing keys, upper-case in bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Priority {
    Audit,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
    Sample,
}

impl Priority {
    pub const ALL: [Priority; 7] = [
        Priority::Audit,
        Priority::Debug,
        Priority::Info,
        Priority::Warn,
        Priority::Error,
        Priority::Critical,
        Priority::Sample,
    ];

    /// `info`, as in the routing key `notifications.info`.
    pub fn routing_name(self) -> &'static str {
        match self {
            Priority::Audit => "audit",
            Priority::Debug => "debug",
            Priority::Info => "info",
            Priority::Warn => "warn",
            Priority::Error => "error",
            Priority::Critical => "critical",
            Priority::Sample => "sample",
        }
    }

    /// `INFO`, as in the body.
    pub fn wire_name(self) -> &'static str {
        match self {
            Priority::Audit => "AUDIT",
            Priority::Debug => "DEBUG",
            Priority::Info => "INFO",
            Priority::Warn => "WARN",
            Priority::Error => "ERROR",
            Priority::Critical => "CRITICAL",
            Priority::Sample => "SAMPLE",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        let lower = text.to_ascii_lowercase();
        let lower = if lower == "warning" { "warn".to_owned() } else { lower };
        Priority::ALL.into_iter().find(|p| p.routing_name() == lower)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// `str(datetime)` of a UTC time: `YYYY-MM-DD HH:MM:SS.ffffff`, without the
/// fraction when the microseconds are 0.
pub fn python_timestamp(at: DateTime<Utc>) -> String {
    if at.nanosecond() / 1000 == 0 {
        at.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        format!("{}.{:06}", at.format("%Y-%m-%d %H:%M:%S"), (at.nanosecond() / 1000) % 1_000_000)
    }
}

/// A `messagingv2` notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// uuid4 with dashes.
    pub message_id: String,
    pub publisher_id: String,
    pub event_type: String,
    pub priority: Priority,
    pub payload: Value,
    /// As [`python_timestamp`] writes it.
    pub timestamp: String,
    /// `None` drops the context entirely, as for a plain-dict context in Python.
    pub context: Option<Context>,
}

impl Notification {
    pub fn new(
        publisher_id: &str,
        event_type: &str,
        priority: Priority,
        payload: Value,
        at: DateTime<Utc>,
    ) -> Notification {
        Notification {
            message_id: uuid::Uuid::new_v4().to_string(),
            publisher_id: publisher_id.to_owned(),
            event_type: event_type.to_owned(),
            priority,
            payload,
            timestamp: python_timestamp(at),
            context: None,
        }
    }

    pub fn to_inner(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("message_id".into(), Value::from(self.message_id.clone()));
        m.insert("publisher_id".into(), Value::from(self.publisher_id.clone()));
        m.insert("event_type".into(), Value::from(self.event_type.clone()));
        m.insert("priority".into(), Value::from(self.priority.wire_name()));
        m.insert("payload".into(), self.payload.clone());
        m.insert("timestamp".into(), Value::from(self.timestamp.clone()));
        m.insert("_unique_id".into(), Value::from(new_id()));
        for (key, value) in self.context.iter().flatten() {
            m.insert(format!("_context_{key}"), value.clone());
        }
        m
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self.to_inner())
    }

    /// Reads a notification in either the 2.0 envelope or the bare 1.0 form.
    pub fn decode(body: &[u8]) -> Result<Notification, EnvelopeError> {
        let mut m = decode(body)?;
        let mut text = |field: &'static str| match m.remove(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(bad_field(field, &other, "a string")),
            None => Err(EnvelopeError::MissingField { field }),
        };
        let message_id = text("message_id")?;
        let publisher_id = text("publisher_id")?;
        let event_type = text("event_type")?;
        let priority_text = text("priority")?;
        let timestamp = text("timestamp")?;
        let priority = Priority::parse(&priority_text).ok_or_else(|| EnvelopeError::BadField {
            field: "priority",
            found: priority_text.clone(),
            expected: "one of AUDIT, DEBUG, INFO, WARN, ERROR, CRITICAL, SAMPLE",
        })?;
        let payload = m.remove("payload").unwrap_or(Value::Null);
        let context: Context =
            m.into_iter().filter_map(|(k, v)| k.strip_prefix("_context_").map(|k| (k.to_owned(), v))).collect();
        Ok(Notification {
            message_id,
            publisher_id,
            event_type,
            priority,
            payload,
            timestamp,
            context: (!context.is_empty()).then_some(context),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn the_envelope_holds_the_inner_message_as_a_json_string() {
        let body = encode(obj(json!({"method": "ping", "args": {"u": "café ☃"}})));
        let outer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(outer["oslo.version"], "2.0");
        assert!(outer["oslo.message"].is_string());
        assert_eq!(outer.as_object().unwrap().len(), 2);
        let inner = decode(&body).unwrap();
        assert_eq!(inner["args"]["u"], "café ☃");
    }

    #[test]
    fn decode_accepts_compatible_envelopes_and_bare_objects_and_refuses_the_rest() {
        let ok: &[&[u8]] = &[
            br#"{"oslo.version": "2.0", "oslo.message": "{\"a\": 1}"}"#,
            br#"{"oslo.version": "2.0.0", "oslo.message": "{\"a\": 1}"}"#,
            br#"{"a": 1}"#,
            br#"{"oslo.version": "2.0", "a": 1}"#,
        ];
        for body in ok {
            assert_eq!(decode(body).unwrap()["a"], 1, "{}", String::from_utf8_lossy(body));
        }
        let cases: &[(&[u8], &str)] = &[
            (b"", "not JSON"),
            (b"\xff\xfe", "not JSON"),
            (b"[1,2]", "not a JSON object"),
            (b"null", "not a JSON object"),
            (br#"{"oslo.version": "2.9", "oslo.message": "{}"}"#, "unsupported envelope version"),
            (br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#, "unsupported envelope version"),
            (br#"{"oslo.version": 2, "oslo.message": "{}"}"#, "unsupported envelope version"),
            (br#"{"oslo.version": "2.0", "oslo.message": 5}"#, "not a string"),
            (br#"{"oslo.version": "2.0", "oslo.message": "[]"}"#, "not a JSON object"),
            (br#"{"oslo.version": "2.0", "oslo.message": "{"}"#, "not a JSON object"),
        ];
        for (body, expected) in cases {
            let err = decode(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{:?}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn versions_follow_oslo_version_is_compatible() {
        let cases = [
            ("1.3", "1.3", true),
            ("1.3", "1.4", false),
            ("1.3", "1.0", true),
            ("1.3", "2.0", false),
            ("2.0", "1.9", false),
            ("1.3", "1.3.1", false),
            ("1.3.2", "1.3.1", true),
            ("1.3", "1.2.7", true),
        ];
        for (ours, requested, expected) in cases {
            let ours = RpcVersion::parse(ours).unwrap();
            let req = RpcVersion::parse(requested).unwrap();
            assert_eq!(ours.can_serve(req), expected, "ours={ours} requested={requested}");
        }
        for bad in ["", "1", "a.b", "1.2.3.4", "1.-1"] {
            assert!(RpcVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_call_round_trips_with_the_keys_the_python_client_writes() {
        let mut context = Context::new();
        context.insert("project_id".into(), json!("p1"));
        context.insert("roles".into(), json!(["member"]));
        let request = Request {
            method: "ping".into(),
            args: obj(json!({"value": 1})),
            namespace: None,
            version: Some("1.2".into()),
            context,
            unique_id: Some(new_id()),
            reply: Some(ReplyTo { msg_id: new_id(), reply_q: "reply_x".into(), call_monitor_timeout: None }),
        };
        let inner = request.to_inner();
        for key in [
            "method",
            "args",
            "version",
            "_msg_id",
            "_reply_q",
            "_timeout",
            "_unique_id",
            "_context_project_id",
            "_context_roles",
        ] {
            assert!(inner.contains_key(key), "{key} missing from {inner:?}");
        }
        assert!(!inner.contains_key("namespace"), "a null namespace is left out");
        assert_eq!(inner["_timeout"], Value::Null);
        assert_eq!(Request::decode(&request.encode()).unwrap(), request);

        let cast = Request { reply: None, ..request };
        let inner = cast.to_inner();
        for key in ["_msg_id", "_reply_q", "_timeout"] {
            assert!(!inner.contains_key(key), "a cast carries no {key}");
        }
    }

    #[test]
    fn a_minimal_python_request_is_accepted() {
        let r = Request::decode(br#"{"method": "m", "_msg_id": "1", "_reply_q": "reply_1"}"#).unwrap();
        assert_eq!(r.method, "m");
        assert!(r.args.is_empty());
        assert_eq!(r.version, None);
        assert_eq!(r.reply.unwrap().reply_q, "reply_1");
        let r =
            Request::decode(br#"{"method": "m", "args": {}, "_timeout": 4, "_msg_id": "1", "_reply_q": "q"}"#).unwrap();
        assert_eq!(r.reply.unwrap().call_monitor_timeout, Some(4.0));
    }

    #[test]
    fn bad_requests_name_the_field_and_keep_the_reply_address_when_known() {
        let cases: &[(&[u8], &str, bool)] = &[
            (br#"{"args": {}}"#, "lacks the field method", false),
            (br#"{"method": 5}"#, "method = 5", false),
            (br#"{"method": "m", "args": [1], "_msg_id": "1", "_reply_q": "q"}"#, "field args = [1]", true),
            (br#"{"method": "m", "version": 1.2, "_msg_id": "1", "_reply_q": "q"}"#, "field version = 1.2", true),
            (br#"{"method": "m", "_msg_id": "1"}"#, "lacks the field _reply_q", false),
            (br#"{"method": "m", "_msg_id": 1, "_reply_q": "q"}"#, "_msg_id = 1", false),
            (br#"{"method": "m", "_timeout": "x", "_msg_id": "1", "_reply_q": "q"}"#, "_timeout", false),
            (b"junk", "not JSON", false),
        ];
        for (body, expected, has_reply) in cases {
            let err = Request::decode(body).unwrap_err();
            assert!(err.to_string().contains(expected), "{:?}: {err}", String::from_utf8_lossy(body));
            assert_eq!(err.reply.is_some(), *has_reply, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn replies_always_carry_failure_and_ending() {
        let cases = [
            (ReplyBody::Result(json!({"k": [1, null]})), json!({"k": [1, null]}), true),
            (ReplyBody::Result(Value::Null), Value::Null, true),
            (ReplyBody::Heartbeat, Value::Null, false),
        ];
        for (body, result, ending) in cases {
            let reply = Reply { msg_id: "m1".into(), body };
            let inner = reply.to_inner();
            assert_eq!(inner["result"], result);
            assert_eq!(inner["failure"], Value::Null);
            assert_eq!(inner["ending"], Value::Bool(ending));
            assert_eq!(inner["_msg_id"], "m1");
            assert_eq!(Reply::decode(&reply.encode()).unwrap(), reply);
        }
    }

    #[test]
    fn failures_are_json_strings_with_the_six_keys() {
        let cases = [
            (
                RpcFailure::no_such_method("nope"),
                "NoSuchMethod",
                DISPATCHER_MODULE,
                "Endpoint does not support RPC method nope",
            ),
            (
                RpcFailure::unsupported_version("1.4", "ping"),
                "UnsupportedVersion",
                DISPATCHER_MODULE,
                "Endpoint does not support RPC version 1.4. Attempted method: ping",
            ),
            (
                RpcFailure::type_error("ping() got an unexpected keyword argument 'c'"),
                "TypeError",
                "builtins",
                "ping() got an unexpected keyword argument 'c'",
            ),
            (RpcFailure::remote("BackupNotFound", "no backup b1"), "BackupNotFound", STAFFELN_MODULE, "no backup b1"),
        ];
        for (failure, class, module, message) in cases {
            let reply = Reply { msg_id: "m".into(), body: ReplyBody::Failure(failure.clone()) };
            let inner = reply.to_inner();
            let text = inner["failure"].as_str().expect("failure is a string");
            let decoded: Value = serde_json::from_str(text).unwrap();
            for key in ["class", "module", "message", "tb", "args", "kwargs"] {
                assert!(decoded.get(key).is_some(), "{key} missing in {text}");
            }
            assert_eq!(decoded["class"], class);
            assert_eq!(decoded["module"], module);
            assert_eq!(decoded["message"], message);
            assert_eq!(inner["ending"], true);
            assert_eq!(Reply::decode(&reply.encode()).unwrap().body, ReplyBody::Failure(failure));
        }
        let minimal = RpcFailure::from_wire(r#"{"class": "Conflict", "message": "nope"}"#).unwrap();
        assert_eq!((minimal.class.as_str(), minimal.message.as_str()), ("Conflict", "nope"));
    }

    #[test]
    fn odd_replies_are_classified_or_refused() {
        let cases: &[(&str, Option<ReplyBody>)] = &[
            (r#"{"result": 5, "failure": null, "ending": true, "_msg_id": "m"}"#, Some(ReplyBody::Result(json!(5)))),
            (r#"{"result": 5, "ending": false, "_msg_id": "m"}"#, Some(ReplyBody::Partial(json!(5)))),
            (r#"{"result": null, "failure": null, "ending": false, "_msg_id": "m"}"#, Some(ReplyBody::Heartbeat)),
            (r#"{"result": null, "_msg_id": "m"}"#, Some(ReplyBody::Heartbeat)),
            (r#"{"result": 5, "failure": {"class": "X"}, "ending": true, "_msg_id": "m"}"#, None),
            (r#"{"result": 5, "failure": "{nope", "ending": true, "_msg_id": "m"}"#, None),
            (r#"{"result": 5, "failure": "{\"message\": \"x\"}", "ending": true, "_msg_id": "m"}"#, None),
            (r#"{"result": 5, "ending": true}"#, None),
            (r#"{"result": 5, "ending": "yes", "_msg_id": "m"}"#, None),
        ];
        for (body, expected) in cases {
            let got = Reply::decode(body.as_bytes());
            match expected {
                Some(b) => assert_eq!(&got.unwrap().body, b, "{body}"),
                None => assert!(got.is_err(), "{body}: {got:?}"),
            }
        }
    }

    #[test]
    fn notifications_use_python_timestamps_dashed_ids_and_upper_case_priorities() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T14:09:18.133226Z").unwrap().with_timezone(&Utc);
        assert_eq!(python_timestamp(at), "2026-11-25 14:09:18.133226");
        let whole = DateTime::parse_from_rfc3339("2026-11-25T14:09:18Z").unwrap().with_timezone(&Utc);
        assert_eq!(python_timestamp(whole), "2026-11-25 14:09:18");
        let n = Notification::new("staffeln.host1", "staffeln.backup.create.end", Priority::Warn, json!({"id": 1}), at);
        let inner = n.to_inner();
        assert_eq!(inner["priority"], "WARN");
        assert_eq!(n.message_id.len(), 36);
        assert!(!inner.keys().any(|k| k.starts_with("_context_")));
        assert_eq!(Notification::decode(&n.encode()).unwrap(), n);
        assert_eq!(Priority::parse("warning"), Some(Priority::Warn));
        assert!(Notification::decode(br#"{"message_id": "x"}"#).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"{}[]\",:0123456789.aeflnrstu \\oslo.version.message"[(seed % 48) as usize]
                })
                .collect();
            let _ = Request::decode(&bytes);
            let _ = Reply::decode(&bytes);
            let _ = Notification::decode(&bytes);
        }
    }
}

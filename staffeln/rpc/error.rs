//! What can go wrong in this room: [`TransportError`] (a URL or option that
//! cannot be used) and [`RpcError`] (sending, serving or awaiting a
//! message). URLs in the text have their passwords masked.

use std::time::Duration;

/// A configuration or URL problem. Passwords never appear in the text.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport_url {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("transport_url {url}: unsupported scheme {scheme:?} (expected rabbit://, kombu:// or fake://)")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("[oslo_messaging_rabbit] has no option {option:?}")]
    UnknownOption { option: String },
    #[error("[oslo_messaging_rabbit] {option} = {value:?}: expected {expected}")]
    BadOption { option: String, value: String, expected: &'static str },
    #[error("[oslo_messaging_rabbit] {option}: {reason}")]
    Unsupported { option: &'static str, reason: &'static str },
    #[error("[oslo_messaging_rabbit] {option} = {path}: cannot read the file")]
    TlsFile {
        option: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What can go wrong sending, serving or awaiting a message. URLs in the
/// text have their passwords masked.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no reply to {method} on {target} within {} s", timeout.as_secs_f64())]
    Timeout { target: String, method: String, timeout: Duration },
    #[error("{method} on {target} raised {exc_type}: {message}")]
    Remote { target: String, method: String, exc_type: String, module: String, message: String },
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: Box<lapin::Error>,
    },
    #[error("{operation} on {url} failed")]
    Broker {
        operation: String,
        url: String,
        #[source]
        source: Box<lapin::Error>,
    },
    #[error("the broker refused (nack) a message to exchange {exchange:?} with key {routing_key}")]
    Nacked { exchange: String, routing_key: String },
    #[error("arguments of {method} must be a JSON object of keyword arguments, not {found}")]
    InvalidArgs { method: String, found: String },
    #[error("endpoint version {version:?} is not of the form X.Y")]
    InvalidEndpoint { version: String },
    #[error("a server needs a target with a server name (topic {topic})")]
    NoServerName { topic: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the transport is closed")]
    Closed,
}

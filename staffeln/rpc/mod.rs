//! oslo.messaging compatibility over RabbitMQ: a stock Python `RPCClient`
//! can call a Staffeln [`RpcServer`], a Staffeln [`RpcClient`] can call a
//! stock Python `RPCServer`, and the [`Notifier`] emits `messagingv2`
//! notifications a stock listener reads.
//!
//! This room owns the wire: the oslo envelope and message formats
//! ([`envelope`], pure), the AMQP topology and its `[oslo_messaging_rabbit]`
//! flags (`topology`), `transport_url` and connections with reconnection
//! ([`transport`], plus the in-process `fake://` broker), the server's
//! consume/dispatch/reply loop ([`server`]), calls and casts ([`client`]) and
//! notifications ([`notifier`]).
//!
//! It never knows which methods exist or what they do: callers register
//! [`Endpoint`]s (or a [`MethodTable`]) and pass plain JSON. No database,
//! no OpenStack API. The wire reference is oslo.messaging's rabbit driver
//! (`impl_rabbit.py`, `amqpdriver.py`); where it offers a choice, the code says which.

pub mod client;
pub mod envelope;
pub mod notifier;
pub mod server;
pub mod transport;

mod bus;
mod fake;
mod settings;
mod topology;

use std::time::Duration;

pub use client::RpcClient;
pub use envelope::{Context, Priority, RpcFailure};
pub use notifier::Notifier;
pub use server::{Call, Endpoint, MethodTable, RpcServer, ServerHandle};
pub use transport::{RabbitSettings, RpcSettings, Transport, TransportError, TransportUrl};

/// Where a call or cast goes, or what a server listens to (oslo's `Target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub topic: String,
    /// A client sends to `<topic>.<server>`; a server listens on it. A
    /// server needs one.
    pub server: Option<String>,
    /// Overrides `control_exchange`.
    pub exchange: Option<String>,
    pub namespace: Option<String>,
}

impl Target {
    pub fn new(topic: &str) -> Target {
        Target { topic: topic.to_owned(), server: None, exchange: None, namespace: None }
    }

    pub fn with_server(mut self, server: &str) -> Target {
        self.server = Some(server.to_owned());
        self
    }

    pub fn with_exchange(mut self, exchange: &str) -> Target {
        self.exchange = Some(exchange.to_owned());
        self
    }

    pub fn with_namespace(mut self, namespace: &str) -> Target {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// `T` or `T.S`.
    pub fn routing_key(&self) -> String {
        match &self.server {
            Some(server) => format!("{}.{server}", self.topic),
            None => self.topic.clone(),
        }
    }

    fn exchange_or<'a>(&'a self, control_exchange: &'a str) -> &'a str {
        self.exchange.as_deref().unwrap_or(control_exchange)
    }
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

pub(crate) use crate::errors::chain;

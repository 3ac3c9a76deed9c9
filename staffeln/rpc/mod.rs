//! oslo.messaging compatibility over RabbitMQ: a stock Python `RPCClient`
//! can call a Staffeln [`RpcServer`], a Staffeln [`RpcClient`] can call a
//! stock Python `RPCServer`, and the [`Notifier`] emits `messagingv2`
//! notifications a stock listener reads.
//!
//! This room owns the wire. From the floor up:
//! * pure: the oslo envelope and message formats ([`envelope`]),
//!   `transport_url` (`url.rs`), the settings of `[DEFAULT]` and
//!   `[oslo_messaging_rabbit]` (`settings.rs`), the AMQP topology those
//!   flags make (`topology.rs`), [`Target`] (`target.rs`), the errors
//!   (`error.rs`);
//! * one connection to the broker (`connection.rs`), or the in-process
//!   `fake://` broker (`fake.rs`); publishing and consuming with
//!   reconnection (`bus.rs`); the reply queue of a process (`replies.rs`);
//! * [`Transport`] (`transport.rs`), the handle a process shares;
//! * on top of it: the server's consume/dispatch/reply loop ([`server`]),
//!   calls and casts ([`client`]), notifications ([`notifier`]).
//!
//! It never knows which methods exist or what they do: callers register
//! [`Endpoint`]s (or a [`MethodTable`]) and pass plain JSON. No database,
//! no OpenStack API. The wire reference is oslo.messaging's rabbit driver
//! (`impl_rabbit.py`, `amqpdriver.py`); where it offers a choice, the code says which.

pub mod client;
pub mod envelope;
pub mod listener;
pub mod notifier;
pub mod server;
pub mod transport;

mod bus;
mod connection;
mod error;
mod fake;
mod replies;
mod settings;
mod target;
mod topology;
mod url;

pub use client::RpcClient;
pub use envelope::{Context, Notification, Priority, RpcFailure};
pub use error::{RpcError, TransportError};
pub use listener::{ListenTarget, ListenerHandle, NotificationListener};
pub use notifier::Notifier;
pub use server::{Call, Endpoint, MethodTable, RpcServer, ServerHandle};
pub use settings::{RabbitSettings, RpcSettings};
pub use target::Target;
pub use transport::Transport;
pub use url::{BrokerHost, Driver, TransportUrl, mask_url};

pub(crate) use crate::errors::chain;

//! The [`Transport`]: the messaging handle of a process, one per process
//! like oslo's, holding the URL, the settings in force, the publishing
//! connection and the reply queue every client shares. The roof that
//! clients, servers and notifiers stand under; the connection itself
//! (`connection.rs`), the URL (`url.rs`) and the settings (`settings.rs`)
//! are the floor.
//!
//! `rabbit://` (and `kombu://`) talk to RabbitMQ through lapin; `fake://`
//! is an in-process broker over tokio channels, shared by every transport of
//! the process with the same virtual host, for single-node runs and the demo.

use std::fmt;
use std::sync::Arc;

use super::bus::Publisher;
use super::connection::{Connector, tls_config};
use super::error::TransportError;
use super::replies::ReplyListener;
use super::settings::RpcSettings;
use super::url::{Driver, TransportUrl};

pub(crate) struct TransportInner {
    pub(crate) connector: Arc<Connector>,
    pub(crate) publisher: Publisher,
    pub(crate) replies: tokio::sync::OnceCell<ReplyListener>,
}

/// The messaging handle of a process: URL, settings, the publishing
/// connection and the reply queue. Cheap to clone; clients, servers and
/// notifiers made from clones share them.
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Arc<TransportInner>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transport({})", self.inner.connector.url)
    }
}

impl Transport {
    /// Parses the URL and applies its query options. Opens no connection;
    /// the first server, call or notification does.
    pub fn new(settings: &RpcSettings) -> Result<Transport, TransportError> {
        let (url, settings) = settings.resolve()?;
        let tls = tls_config(&settings.rabbit)?;
        let fake = (url.driver == Driver::Fake).then(|| super::fake::broker(&url.virtual_host));
        let connector = Arc::new(Connector { url, settings, tls, fake });
        Ok(Transport {
            inner: Arc::new(TransportInner {
                publisher: Publisher::new(connector.clone()),
                connector,
                replies: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The URL, with passwords masked when displayed.
    pub fn url(&self) -> &TransportUrl {
        &self.inner.connector.url
    }

    /// The settings in force (the URL's query options applied).
    pub fn settings(&self) -> &RpcSettings {
        &self.inner.connector.settings
    }

    /// Closes the publishing connection and deletes the reply queue. Clients
    /// made from this transport cannot call any more.
    pub async fn close(&self) {
        if let Some(replies) = self.inner.replies.get() {
            replies.close().await;
        }
        self.inner.publisher.close().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_options_override_settings_and_unknown_ones_are_refused() {
        let settings = RpcSettings {
            transport_url: Some(
                "rabbit://u:p@h/?amqp_durable_queues=true&rabbit_qos_prefetch_count=3&rabbit_transient_queues_ttl=0"
                    .into(),
            ),
            ..RpcSettings::default()
        };
        let t = Transport::new(&settings).unwrap();
        assert!(t.settings().rabbit.amqp_durable_queues);
        assert_eq!(t.settings().rabbit.rabbit_qos_prefetch_count, 3);
        assert_eq!(t.settings().rabbit.rabbit_transient_queues_ttl, 0);

        let cases = [
            ("?bogus_option=1", "has no option \"bogus_option\""),
            ("?ssl=maybe", "ssl = \"maybe\": expected a boolean"),
            ("?rabbit_quorum_queue=1&rabbit_ha_queues=1", "conflicts with rabbit_ha_queues"),
            ("?rabbit_stream_fanout=true", "rabbit_stream_fanout"),
            ("?kombu_compression=gzip", "kombu_compression"),
            ("?rabbit_login_method=CRAM", "AMQPLAIN or PLAIN"),
            ("?heartbeat_timeout_threshold=-1", "0 to 65535"),
        ];
        for (query, expected) in cases {
            let settings =
                RpcSettings { transport_url: Some(format!("rabbit://u:p@h/{query}")), ..RpcSettings::default() };
            let err = Transport::new(&settings).unwrap_err().to_string();
            assert!(err.contains(expected), "{query}: {err}");
        }
    }
}

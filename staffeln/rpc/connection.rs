//! One AMQP connection to the broker of a `transport_url`: the hosts tried
//! in turn from a random one, the login mechanism, TLS, heartbeats. The
//! floor under the bus, the reply queue and the servers; it knows nothing of
//! what goes over the connection.

use std::sync::Arc;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};

use super::error::{RpcError, TransportError};
use super::fake::FakeBroker;
use super::settings::{RabbitSettings, RpcSettings};
use super::url::TransportUrl;

/// The largest AMQP frame this end asks for (the broker may make it
/// smaller). lapin keeps a receive and a send buffer of 32 frames per
/// connection, so RabbitMQ's default of 128 KiB cost each connection 8 MiB
/// of resident memory; with 16 KiB frames it is 1 MiB. A message larger
/// than a frame is carried in several, so this bounds no message; the
/// messages Staffeln reads and sends (RPC calls, Cinder's notifications) are
/// a few KiB.
pub(crate) const FRAME_MAX: u32 = 16 * 1024;

/// Everything needed to open a connection; shared by the long-lived tasks.
pub(crate) struct Connector {
    pub(crate) url: TransportUrl,
    pub(crate) settings: RpcSettings,
    pub(crate) tls: OwnedTLSConfig,
    pub(crate) fake: Option<Arc<FakeBroker>>,
}

impl Connector {
    pub(crate) fn rabbit(&self) -> &RabbitSettings {
        &self.settings.rabbit
    }

    /// Opens one AMQP connection, trying every host once, starting at a random one.
    pub(crate) async fn connect(&self, purpose: &str) -> Result<lapin::Connection, RpcError> {
        let rabbit = self.rabbit();
        let mechanism = rabbit.login_mechanism()?;
        let start = rand::random_range(0..self.url.hosts.len().max(1));
        let mut last = None;
        for i in 0..self.url.hosts.len() {
            let host = &self.url.hosts[(start + i) % self.url.hosts.len()];
            let uri = AMQPUri {
                scheme: if rabbit.ssl { AMQPScheme::AMQPS } else { AMQPScheme::AMQP },
                authority: AMQPAuthority {
                    userinfo: AMQPUserInfo { username: host.username.clone(), password: host.password().to_owned() },
                    host: host.host.clone(),
                    port: host.port,
                },
                vhost: self.url.virtual_host.clone(),
                query: AMQPQueryString {
                    heartbeat: Some(rabbit.heartbeat_timeout_threshold),
                    auth_mechanism: Some(mechanism),
                    connection_timeout: Some(10_000),
                    frame_max: Some(FRAME_MAX),
                    ..AMQPQueryString::default()
                },
            };
            let props = lapin::ConnectionProperties::default().with_connection_name(
                format!("staffeln:{}:{purpose}:{}", std::process::id(), super::envelope::new_id()).into(),
            );
            let runtime = lapin::runtime::default_runtime()
                .map_err(|source| RpcError::Connect { url: self.url.to_string(), source: Box::new(source) })?;
            match lapin::Connection::connect_uri_with_config(uri, props, self.tls.clone(), runtime).await {
                Ok(conn) => {
                    tracing::debug!(amqp.host = %host, "connected to {host} for {purpose}");
                    return Ok(conn);
                }
                Err(err) => {
                    tracing::debug!(amqp.host = %host, "cannot connect to {host} for {purpose}: {err}");
                    last = Some(err);
                }
            }
        }
        match last {
            Some(source) => Err(RpcError::Connect { url: self.url.to_string(), source: Box::new(source) }),
            None => Err(RpcError::Closed),
        }
    }
}

pub(crate) fn tls_config(rabbit: &RabbitSettings) -> Result<OwnedTLSConfig, TransportError> {
    let read = |option: &'static str, path: &str| {
        std::fs::read(path).map_err(|source| TransportError::TlsFile { option, path: path.to_owned(), source })
    };
    let mut tls = OwnedTLSConfig::default();
    if !rabbit.ssl {
        return Ok(tls);
    }
    if !rabbit.ssl_ca_file.is_empty() {
        let pem = read("ssl_ca_file", &rabbit.ssl_ca_file)?;
        tls.cert_chain = Some(String::from_utf8_lossy(&pem).into_owned());
    }
    if !rabbit.ssl_cert_file.is_empty() && !rabbit.ssl_key_file.is_empty() {
        tls.identity = Some(OwnedIdentity::PKCS8 {
            pem: read("ssl_cert_file", &rabbit.ssl_cert_file)?,
            key: read("ssl_key_file", &rabbit.ssl_key_file)?,
        });
    }
    Ok(tls)
}

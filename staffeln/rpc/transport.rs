//! `transport_url`, the `[oslo_messaging_rabbit]` settings that change the
//! wire, and the [`Transport`]: one per process, like oslo's, holding the
//! publishing connection and the reply queue every client shares.
//!
//! `rabbit://` (and `kombu://`) talk to RabbitMQ through lapin; `fake://`
//! is an in-process broker over tokio channels, shared by every transport of
//! the process with the same virtual host, for single-node runs and the demo.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo, SASLMechanism};

use super::RpcError;
use super::bus::Publisher;
use super::client::ReplyListener;
use super::fake::FakeBroker;

/// The `[oslo_messaging_rabbit]` options Staffeln understands. Defaults are
/// oslo.messaging's; every field has the option's name. The `transport_url`
/// query string overrides them, as in oslo (`?amqp_durable_queues=true`).
#[derive(Clone, Debug, PartialEq)]
pub struct RabbitSettings {
    /// Topic exchange, topic/server and notification queues are durable.
    pub amqp_durable_queues: bool,
    /// Topic exchange, topic/server and notification queues auto-delete.
    pub amqp_auto_delete: bool,
    /// `x-ha-policy: all` on every queue.
    pub rabbit_ha_queues: bool,
    /// Topic, server and notification queues are quorum queues (and durable).
    pub rabbit_quorum_queue: bool,
    pub rabbit_quorum_delivery_limit: u32,
    pub rabbit_quorum_max_memory_length: u32,
    pub rabbit_quorum_max_memory_bytes: u32,
    /// Reply and fanout queues are quorum queues (and durable).
    pub rabbit_transient_quorum_queue: bool,
    /// `x-expires` of reply and fanout queues, in seconds; 0: none.
    pub rabbit_transient_queues_ttl: u32,
    /// `basic.qos` prefetch of consuming channels; 0: no `basic.qos`.
    pub rabbit_qos_prefetch_count: u16,
    /// Consumers pass `x-cancel-on-ha-failover: true`.
    pub enable_cancel_on_failover: bool,
    /// AMQP heartbeat in seconds; 0 disables it.
    pub heartbeat_timeout_threshold: u16,
    /// Accepted for compatibility; lapin paces heartbeats itself.
    pub heartbeat_rate: u32,
    /// `AMQPLAIN` or `PLAIN`.
    pub rabbit_login_method: String,
    /// First reconnect delay, seconds.
    pub rabbit_retry_interval: u32,
    /// Added to the delay after each failed attempt, seconds.
    pub rabbit_retry_backoff: u32,
    /// Longest reconnect delay, seconds.
    pub rabbit_interval_max: u32,
    /// How long a reply to a missing reply queue is retried, seconds.
    pub kombu_missing_consumer_retry_timeout: u32,
    pub ssl: bool,
    /// PEM CA bundle; empty: the system store.
    pub ssl_ca_file: String,
    /// PEM client certificate (with `ssl_key_file`).
    pub ssl_cert_file: String,
    /// PEM PKCS#8 client key.
    pub ssl_key_file: String,
    /// Accepted for compatibility; rustls negotiates TLS 1.2 or 1.3.
    pub ssl_version: String,
    /// Not supported: `true` is refused.
    pub rabbit_stream_fanout: bool,
    /// Not supported: a value is refused.
    pub kombu_compression: String,
}

impl Default for RabbitSettings {
    fn default() -> Self {
        RabbitSettings {
            amqp_durable_queues: false,
            amqp_auto_delete: false,
            rabbit_ha_queues: false,
            rabbit_quorum_queue: false,
            rabbit_quorum_delivery_limit: 0,
            rabbit_quorum_max_memory_length: 0,
            rabbit_quorum_max_memory_bytes: 0,
            rabbit_transient_quorum_queue: false,
            rabbit_transient_queues_ttl: 1800,
            rabbit_qos_prefetch_count: 0,
            enable_cancel_on_failover: false,
            heartbeat_timeout_threshold: 60,
            heartbeat_rate: 3,
            rabbit_login_method: "AMQPLAIN".to_owned(),
            rabbit_retry_interval: 1,
            rabbit_retry_backoff: 2,
            rabbit_interval_max: 30,
            kombu_missing_consumer_retry_timeout: 60,
            ssl: false,
            ssl_ca_file: String::new(),
            ssl_cert_file: String::new(),
            ssl_key_file: String::new(),
            ssl_version: String::new(),
            rabbit_stream_fanout: false,
            kombu_compression: String::new(),
        }
    }
}

impl RabbitSettings {
    /// Sets one option by its oslo name, from text (a URL query value).
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), TransportError> {
        let bad = |expected: &'static str| TransportError::BadOption {
            option: option.to_owned(),
            value: value.to_owned(),
            expected,
        };
        // These are oslo.config options: their grammar is oslo.config's.
        let boolean = || {
            crate::conf::types::parse_bool(value.trim())
                .ok_or_else(|| bad("a boolean (true/false, yes/no, on/off, 1/0)"))
        };
        let int = || value.trim().parse::<u32>().map_err(|_| bad("a non-negative integer"));
        match option {
            "amqp_durable_queues" => self.amqp_durable_queues = boolean()?,
            "amqp_auto_delete" => self.amqp_auto_delete = boolean()?,
            "rabbit_ha_queues" => self.rabbit_ha_queues = boolean()?,
            "rabbit_quorum_queue" => self.rabbit_quorum_queue = boolean()?,
            "rabbit_quorum_delivery_limit" => self.rabbit_quorum_delivery_limit = int()?,
            "rabbit_quorum_max_memory_length" => self.rabbit_quorum_max_memory_length = int()?,
            "rabbit_quorum_max_memory_bytes" => self.rabbit_quorum_max_memory_bytes = int()?,
            "rabbit_transient_quorum_queue" => self.rabbit_transient_quorum_queue = boolean()?,
            "rabbit_transient_queues_ttl" => self.rabbit_transient_queues_ttl = int()?,
            "rabbit_qos_prefetch_count" => {
                self.rabbit_qos_prefetch_count = value.trim().parse().map_err(|_| bad("an integer from 0 to 65535"))?
            }
            "enable_cancel_on_failover" => self.enable_cancel_on_failover = boolean()?,
            "heartbeat_timeout_threshold" => {
                self.heartbeat_timeout_threshold =
                    value.trim().parse().map_err(|_| bad("an integer from 0 to 65535"))?
            }
            "heartbeat_rate" => self.heartbeat_rate = int()?,
            "rabbit_login_method" => self.rabbit_login_method = value.to_owned(),
            "rabbit_retry_interval" => self.rabbit_retry_interval = int()?,
            "rabbit_retry_backoff" => self.rabbit_retry_backoff = int()?,
            "rabbit_interval_max" => self.rabbit_interval_max = int()?,
            "kombu_missing_consumer_retry_timeout" => self.kombu_missing_consumer_retry_timeout = int()?,
            "ssl" => self.ssl = boolean()?,
            "ssl_ca_file" => self.ssl_ca_file = value.to_owned(),
            "ssl_cert_file" => self.ssl_cert_file = value.to_owned(),
            "ssl_key_file" => self.ssl_key_file = value.to_owned(),
            "ssl_version" => self.ssl_version = value.to_owned(),
            "rabbit_stream_fanout" => self.rabbit_stream_fanout = boolean()?,
            "kombu_compression" => self.kombu_compression = value.to_owned(),
            _ => {
                return Err(TransportError::UnknownOption { option: option.to_owned() });
            }
        }
        Ok(())
    }

    /// Refuses combinations oslo refuses, and features this peer lacks.
    pub fn validate(&self) -> Result<(), TransportError> {
        let refuse = |option: &'static str, reason: &'static str| Err(TransportError::Unsupported { option, reason });
        if self.rabbit_quorum_queue && self.rabbit_ha_queues {
            return refuse("rabbit_quorum_queue", "it conflicts with rabbit_ha_queues (quorum or mirrored, not both)");
        }
        if self.rabbit_stream_fanout {
            return refuse("rabbit_stream_fanout", "stream fanout queues are not implemented by Staffeln");
        }
        if !self.kombu_compression.is_empty() {
            return refuse("kombu_compression", "compressed bodies are not implemented by Staffeln");
        }
        self.login_mechanism()?;
        Ok(())
    }

    fn login_mechanism(&self) -> Result<SASLMechanism, TransportError> {
        match self.rabbit_login_method.to_ascii_uppercase().as_str() {
            "AMQPLAIN" => Ok(SASLMechanism::AMQPlain),
            "PLAIN" => Ok(SASLMechanism::Plain),
            _ => Err(TransportError::BadOption {
                option: "rabbit_login_method".to_owned(),
                value: self.rabbit_login_method.clone(),
                expected: "AMQPLAIN or PLAIN",
            }),
        }
    }

    /// The delay before reconnect attempt `attempt` (0-based), as kombu's
    /// `ensure_connection` spaces them.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let secs = u64::from(self.rabbit_retry_interval)
            .saturating_add(u64::from(self.rabbit_retry_backoff).saturating_mul(u64::from(attempt)))
            .min(u64::from(self.rabbit_interval_max.max(1)));
        Duration::from_secs(secs.max(1))
    }
}

/// The messaging options of `[DEFAULT]`, plus `[oslo_messaging_rabbit]`.
/// `Debug` masks the password of `transport_url`.
#[derive(Clone, PartialEq)]
pub struct RpcSettings {
    /// `[DEFAULT] transport_url`; `None` means `rabbit://` (guest@localhost).
    pub transport_url: Option<String>,
    /// `[DEFAULT] control_exchange`.
    pub control_exchange: String,
    /// `[DEFAULT] rpc_response_timeout`: the default call timeout.
    pub rpc_response_timeout: Duration,
    /// `[DEFAULT] executor_thread_pool_size`: requests a server handles at once.
    pub executor_thread_pool_size: usize,
    pub rabbit: RabbitSettings,
}

impl fmt::Debug for RpcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcSettings")
            .field("transport_url", &self.transport_url.as_deref().map(mask_url))
            .field("control_exchange", &self.control_exchange)
            .field("rpc_response_timeout", &self.rpc_response_timeout)
            .field("executor_thread_pool_size", &self.executor_thread_pool_size)
            .field("rabbit", &self.rabbit)
            .finish()
    }
}

impl RpcSettings {
    /// The URL (`rabbit://` when unset) and the settings with its query
    /// options applied, checked; reads no file.
    pub(crate) fn resolve(&self) -> Result<(TransportUrl, RpcSettings), TransportError> {
        let url = TransportUrl::parse(self.transport_url.as_deref().unwrap_or("rabbit://"))?;
        let mut settings = self.clone();
        for (option, value) in &url.options {
            settings.rabbit.set(option, value)?;
        }
        settings.rabbit.validate()?;
        Ok((url, settings))
    }
}

impl Default for RpcSettings {
    fn default() -> Self {
        RpcSettings {
            transport_url: None,
            control_exchange: "staffeln".to_owned(),
            rpc_response_timeout: Duration::from_secs(60),
            executor_thread_pool_size: 64,
            rabbit: RabbitSettings::default(),
        }
    }
}

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

/// One broker of a `transport_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerHost {
    pub host: String,
    pub port: u16,
    pub username: String,
    password: String,
}

impl BrokerHost {
    /// The one way to read the password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for BrokerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for BrokerHost {
    /// `user:***@host:port`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.password.is_empty() {
            write!(f, "{}@{host}:{}", self.username, self.port)
        } else {
            write!(f, "{}:***@{host}:{}", self.username, self.port)
        }
    }
}

/// Which driver a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Rabbit,
    Fake,
}

/// A parsed `transport_url`. `Display` masks passwords.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportUrl {
    pub driver: Driver,
    pub scheme: String,
    /// Tried in turn, starting at a random one, as kombu's round-robin does.
    pub hosts: Vec<BrokerHost>,
    /// Percent-decoded; the empty path gives `/`.
    pub virtual_host: String,
    /// `[oslo_messaging_rabbit]` overrides, in order.
    pub options: Vec<(String, String)>,
}

impl TransportUrl {
    /// Parses `rabbit://[user[:pass]@]host[:port][,…]/[vhost][?option=value&…]`.
    pub fn parse(url: &str) -> Result<TransportUrl, TransportError> {
        let masked = mask_url(url);
        let bad = |reason: String| TransportError::BadUrl { url: masked.clone(), reason };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing \"://\"".to_owned()))?;
        let driver = match scheme {
            "rabbit" | "kombu" => Driver::Rabbit,
            "fake" => Driver::Fake,
            _ => {
                return Err(TransportError::UnsupportedScheme { url: masked.clone(), scheme: scheme.to_owned() });
            }
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (netloc, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut hosts = Vec::new();
        for part in netloc.split(',').filter(|p| !p.is_empty()) {
            hosts.push(parse_host(part).map_err(&bad)?);
        }
        if hosts.is_empty() {
            hosts.push(BrokerHost {
                host: "localhost".to_owned(),
                port: 5672,
                username: "guest".to_owned(),
                password: "guest".to_owned(),
            });
        }
        let vhost = percent_decode(path).map_err(&bad)?;
        let virtual_host = if vhost.is_empty() { "/".to_owned() } else { vhost };
        let options =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Ok(TransportUrl { driver, scheme: scheme.to_owned(), hosts, virtual_host, options })
    }
}

impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        for (i, host) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{host}")?;
        }
        let vhost = if self.virtual_host == "/" { String::new() } else { self.virtual_host.replace('/', "%2F") };
        write!(f, "/{vhost}")?;
        for (i, (k, v)) in self.options.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Replaces every password of a URL-like text by `***`, for errors about
/// URLs that could not be parsed.
pub fn mask_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('@') {
        let (before, after) = rest.split_at(at);
        let segment = before.rfind(['/', ',']).map_or(0, |i| i + 1);
        match before[segment..].find(':') {
            Some(colon) => {
                out.push_str(&before[..segment + colon + 1]);
                out.push_str("***");
            }
            None => out.push_str(before),
        }
        out.push('@');
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

fn parse_host(part: &str) -> Result<BrokerHost, String> {
    let (userinfo, hostport) = match part.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, part),
    };
    let (username, password) = match userinfo {
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            (percent_decode(user)?, percent_decode(pass)?)
        }
        None => ("guest".to_owned(), "guest".to_owned()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| format!("unterminated IPv6 host in {hostport:?}"))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => 5672,
        Some(p) => {
            p.parse::<u16>().map_err(|_| format!("port {p:?} of host {host:?} is not a number from 0 to 65535"))?
        }
    };
    let host = if host.is_empty() { "localhost".to_owned() } else { host };
    Ok(BrokerHost { host, port, username, password })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-encoding (expected %XX)".to_owned())?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding does not decode to UTF-8".to_owned())
}

/// Everything needed to open a connection; shared by the long-lived tasks.
pub(crate) struct Connector {
    pub(crate) url: TransportUrl,
    pub(crate) settings: RpcSettings,
    tls: OwnedTLSConfig,
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
                    userinfo: AMQPUserInfo { username: host.username.clone(), password: host.password.clone() },
                    host: host.host.clone(),
                    port: host.port,
                },
                vhost: self.url.virtual_host.clone(),
                query: AMQPQueryString {
                    heartbeat: Some(rabbit.heartbeat_timeout_threshold),
                    auth_mechanism: Some(mechanism),
                    connection_timeout: Some(10_000),
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

fn tls_config(rabbit: &RabbitSettings) -> Result<OwnedTLSConfig, TransportError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_like_oslo_transport_url() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str, &'a str, u16)], &'a str);
        let cases: &[Case] = &[
            ("rabbit://", &[("guest", "guest", "localhost", 5672)], "/"),
            ("rabbit://u:p@h1:5673/", &[("u", "p", "h1", 5673)], "/"),
            ("rabbit://u:p@h1:5672//", &[("u", "p", "h1", 5672)], "/"),
            ("kombu://u:p@h1/probe_oslo", &[("u", "p", "h1", 5672)], "probe_oslo"),
            ("rabbit://u:p@h1:5672/vh%2Fx", &[("u", "p", "h1", 5672)], "vh/x"),
            ("rabbit://u%40x:p%3Aw%2Fd@h1:5672/", &[("u@x", "p:w/d", "h1", 5672)], "/"),
            ("rabbit://a:b@h1:1,c:d@h2:2/v", &[("a", "b", "h1", 1), ("c", "d", "h2", 2)], "v"),
            ("rabbit://a:b@[::1]:5673/", &[("a", "b", "::1", 5673)], "/"),
            ("rabbit://h1", &[("guest", "guest", "h1", 5672)], "/"),
            ("fake:///t1", &[("guest", "guest", "localhost", 5672)], "t1"),
        ];
        for (text, hosts, vhost) in cases {
            let url = TransportUrl::parse(text).unwrap();
            let got: Vec<_> =
                url.hosts.iter().map(|h| (h.username.as_str(), h.password(), h.host.as_str(), h.port)).collect();
            assert_eq!(&got, hosts, "{text}");
            assert_eq!(url.virtual_host, *vhost, "{text}");
        }
        let url = TransportUrl::parse("rabbit://u:p@h/?ssl=1&heartbeat_timeout_threshold=10").unwrap();
        assert_eq!(url.options, vec![("ssl".into(), "1".into()), ("heartbeat_timeout_threshold".into(), "10".into())]);
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        let cases = [
            ("amqp://u:sekrit@h/", "unsupported scheme"),
            ("rabbit//u:sekrit@h/", "missing"),
            ("rabbit://u:sekrit@h:99999/", "port"),
            ("rabbit://u:sekrit@h:x/", "port"),
            ("rabbit://u:sek%zzrit@h/", "percent"),
            ("rabbit://u:sekrit@[::1/", "IPv6"),
        ];
        for (text, expected) in cases {
            let err = TransportUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("sekrit"), "{text}: password leaked in {err}");
        }
    }

    #[test]
    fn display_masks_passwords() {
        let url = TransportUrl::parse("rabbit://a:sekrit@h1:1,c:other@h2:2/v?ssl=1").unwrap();
        assert_eq!(url.to_string(), "rabbit://a:***@h1:1,c:***@h2:2/v?ssl=1");
        assert_eq!(format!("{:?}", url.hosts[0]), "a:***@h1:1");
        assert_eq!(mask_url("rabbit://a:sekrit@h1,b:x@h2/v"), "rabbit://a:***@h1,b:***@h2/v");
        let settings = RpcSettings { transport_url: Some("rabbit://a:sekrit@h1/".into()), ..RpcSettings::default() };
        assert!(!format!("{settings:?}").contains("sekrit"));
    }

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

    #[test]
    fn reconnect_delays_grow_by_the_backoff_up_to_the_maximum() {
        let r = RabbitSettings::default();
        let delays: Vec<u64> = (0..20).map(|a| r.retry_delay(a).as_secs()).collect();
        assert_eq!(&delays[..4], &[1, 3, 5, 7]);
        assert_eq!(delays[19], 30);
    }
}

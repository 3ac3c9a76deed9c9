//! [`RpcSettings`] from the configuration: `[DEFAULT]`'s messaging options
//! and `[oslo_messaging_rabbit]`, field for field, checked before anything
//! connects.

use std::fmt;
use std::time::Duration;

use lapin::uri::SASLMechanism;

use super::error::TransportError;
use super::url::{TransportUrl, mask_url};
use crate::conf::{Config, SettingsError};

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

    pub(crate) fn login_mechanism(&self) -> Result<SASLMechanism, TransportError> {
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

impl RpcSettings {
    /// The settings of RPC calls and servers, checked as `Transport::new`
    /// would check them (the URL, its query options, the option
    /// combinations) without reading any file: a bad value names its option.
    pub fn from_config(conf: &Config) -> Result<RpcSettings, SettingsError> {
        RpcSettings::read(conf).checked(conf, "DEFAULT")
    }

    /// The settings of notifications: `[oslo_messaging_notifications]
    /// transport_url`, else the RPC one, as in oslo.
    pub fn notifications_from_config(conf: &Config) -> Result<RpcSettings, SettingsError> {
        let mut settings = RpcSettings::read(conf);
        let mut group = "DEFAULT";
        if let Some(url) = &conf.oslo_messaging_notifications.transport_url {
            settings.transport_url = Some(url.expose().to_owned());
            group = "oslo_messaging_notifications";
        }
        settings.checked(conf, group)
    }

    fn read(conf: &Config) -> RpcSettings {
        let d = &conf.default;
        RpcSettings {
            transport_url: d.transport_url.as_ref().map(|s| s.expose().to_owned()),
            control_exchange: d.control_exchange.clone(),
            rpc_response_timeout: Duration::from_secs(d.rpc_response_timeout),
            executor_thread_pool_size: usize::try_from(d.executor_thread_pool_size).unwrap_or(usize::MAX),
            rabbit: RabbitSettings::from_config(conf),
        }
    }

    /// `[oslo_messaging_rabbit]` on its own, then the transport URL of
    /// `url_group` with its query options applied.
    fn checked(self, conf: &Config, url_group: &str) -> Result<RpcSettings, SettingsError> {
        self.rabbit.validate().map_err(|err| match err {
            TransportError::BadOption { option, value, expected } => {
                SettingsError::new("oslo_messaging_rabbit", &option, value, format!("expected {expected}"))
            }
            TransportError::Unsupported { option, reason } => {
                SettingsError::new("oslo_messaging_rabbit", option, rabbit_value(conf, option), reason)
            }
            other => SettingsError::new("oslo_messaging_rabbit", "-", "", other.to_string()),
        })?;
        if let Err(err) = self.resolve() {
            let url = self.transport_url.as_deref().map(mask_url).unwrap_or_default();
            let reason = match err {
                TransportError::BadUrl { reason, .. } => reason,
                TransportError::UnsupportedScheme { scheme, .. } => {
                    format!("unsupported scheme {scheme:?} (expected rabbit://, kombu:// or fake://)")
                }
                TransportError::BadOption { option, value, expected } => {
                    format!("its option {option} = {value:?}: expected {expected}")
                }
                TransportError::UnknownOption { option } => {
                    format!("its option {option:?} is not an oslo.messaging option")
                }
                TransportError::Unsupported { option, reason } => format!("its option {option}: {reason}"),
                other => other.to_string(),
            };
            return Err(SettingsError::new(url_group, "transport_url", url, reason));
        }
        Ok(self)
    }
}

/// The configured value of `[oslo_messaging_rabbit] option`, as shown.
fn rabbit_value(conf: &Config, option: &str) -> String {
    conf.oslo_messaging_rabbit
        .values()
        .into_iter()
        .find(|(name, _)| *name == option)
        .map_or_else(String::new, |(_, v)| v.display())
}

impl RabbitSettings {
    /// `[oslo_messaging_rabbit]`.
    pub fn from_config(conf: &Config) -> RabbitSettings {
        let r = &conf.oslo_messaging_rabbit;
        RabbitSettings {
            amqp_durable_queues: r.amqp_durable_queues,
            amqp_auto_delete: r.amqp_auto_delete,
            rabbit_ha_queues: r.rabbit_ha_queues,
            rabbit_quorum_queue: r.rabbit_quorum_queue,
            rabbit_quorum_delivery_limit: r.rabbit_quorum_delivery_limit,
            rabbit_quorum_max_memory_length: r.rabbit_quorum_max_memory_length,
            rabbit_quorum_max_memory_bytes: r.rabbit_quorum_max_memory_bytes,
            rabbit_transient_quorum_queue: r.rabbit_transient_quorum_queue,
            rabbit_transient_queues_ttl: r.rabbit_transient_queues_ttl,
            rabbit_qos_prefetch_count: r.rabbit_qos_prefetch_count,
            enable_cancel_on_failover: r.enable_cancel_on_failover,
            heartbeat_timeout_threshold: r.heartbeat_timeout_threshold,
            heartbeat_rate: r.heartbeat_rate,
            rabbit_login_method: r.rabbit_login_method.clone(),
            rabbit_retry_interval: r.rabbit_retry_interval,
            rabbit_retry_backoff: r.rabbit_retry_backoff,
            rabbit_interval_max: r.rabbit_interval_max,
            kombu_missing_consumer_retry_timeout: r.kombu_missing_consumer_retry_timeout,
            ssl: r.ssl,
            ssl_ca_file: r.ssl_ca_file.clone(),
            ssl_cert_file: r.ssl_cert_file.clone(),
            ssl_key_file: r.ssl_key_file.clone(),
            ssl_version: r.ssl_version.clone(),
            rabbit_stream_fanout: r.rabbit_stream_fanout,
            kombu_compression: r.kombu_compression.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_of_the_options_are_the_defaults_of_the_settings() {
        let conf = Config::default();
        // `[DEFAULT] control_exchange` is Staffeln's; the rest is oslo's.
        let expected =
            RpcSettings { control_exchange: conf.default.control_exchange.clone(), ..RpcSettings::default() };
        assert_eq!(RpcSettings::from_config(&conf).unwrap(), expected);
    }

    #[test]
    fn notifications_fall_back_to_the_rpc_url() {
        let mut conf = Config::default();
        conf.default.transport_url = Some(crate::conf::Secret::new("rabbit://a:b@rpc:5672/"));
        assert_eq!(
            RpcSettings::notifications_from_config(&conf).unwrap().transport_url.as_deref(),
            Some("rabbit://a:b@rpc:5672/")
        );
        conf.oslo_messaging_notifications.transport_url = Some(crate::conf::Secret::new("rabbit://c:d@events:5672/"));
        assert_eq!(
            RpcSettings::notifications_from_config(&conf).unwrap().transport_url.as_deref(),
            Some("rabbit://c:d@events:5672/")
        );
        assert_eq!(RpcSettings::from_config(&conf).unwrap().transport_url.as_deref(), Some("rabbit://a:b@rpc:5672/"));
    }

    #[test]
    fn reconnect_delays_grow_by_the_backoff_up_to_the_maximum() {
        let r = RabbitSettings::default();
        let delays: Vec<u64> = (0..20).map(|a| r.retry_delay(a).as_secs()).collect();
        assert_eq!(&delays[..4], &[1, 3, 5, 7]);
        assert_eq!(delays[19], 30);
    }
}

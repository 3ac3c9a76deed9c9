//! [`RpcSettings`] from the configuration: `[DEFAULT]`'s messaging options
//! and `[oslo_messaging_rabbit]`, field for field, checked before anything
//! connects.

use std::time::Duration;

use super::transport::{RabbitSettings, RpcSettings, TransportError, mask_url};
use crate::conf::{Config, SettingsError};

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
}

//! [`ApiSettings`]: everything staffeln-api reads from the configuration
//! (`[api]`, `[database]`, `[openstack]`), built and checked once before it
//! starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::conf::{Config, SettingsError};
use crate::db::DbSettings;
use crate::openstack;

/// Everything staffeln-api reads from the configuration: `[api]`, and the
/// `[database]` and `[openstack]` it reads from.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub host: String,
    pub port: u16,
    /// Certificate chain and key (PEM) when serving HTTPS.
    pub tls: Option<TlsFiles>,
    pub request_timeout: Duration,
    pub client_timeout: Duration,
    pub max_body_size: usize,
    pub cache_ttl: Duration,
    pub cache_size: usize,
    /// `[api] trusted_user_ids`: callers allowed besides the service user.
    pub trusted_user_ids: Vec<String>,
    /// How long the guard waits for Keystone or Cinder.
    pub lookup_timeout: Duration,
    pub token_cache_time: Duration,
    pub max_limit: u32,
    /// How long a stop waits for open requests (see [`ApiSettings::from_config`]).
    pub drain_timeout: Duration,
    /// `[database]`.
    pub database: DbSettings,
    /// `[openstack]`; `None` when it names no cloud: backups the database
    /// does not know are refused, and listing answers 503.
    pub openstack: Option<openstack::Settings>,
}

/// `[api] ssl_cert_file` and `ssl_key_file`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ApiSettings {
    /// Reads `[api]`, `[database]` and `[openstack]`. HTTPS needs both
    /// files. A stop waits for open requests at most `request_timeout` plus
    /// one second (no request may take longer), and never longer than
    /// `[DEFAULT] graceful_shutdown_timeout`.
    pub fn from_config(conf: &Config) -> Result<ApiSettings, SettingsError> {
        let api = &conf.api;
        let tls = if api.enabled_ssl {
            match (&api.ssl_cert_file, &api.ssl_key_file) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
                _ => {
                    return Err(SettingsError::new(
                        "api",
                        "enabled_ssl",
                        "True",
                        "HTTPS needs both ssl_cert_file and ssl_key_file",
                    ));
                }
            }
        } else {
            None
        };
        let os = openstack::Settings::from_config(conf)?;
        let openstack = (os.cloud.is_some() || os.auth_url.is_some()).then_some(os);
        let request_timeout = Duration::from_secs(api.request_timeout);
        let mut drain_timeout = request_timeout + Duration::from_secs(1);
        if conf.default.graceful_shutdown_timeout > 0 {
            drain_timeout = drain_timeout.min(Duration::from_secs(conf.default.graceful_shutdown_timeout));
        }
        Ok(ApiSettings {
            host: api.host.clone(),
            port: api.port,
            tls,
            request_timeout,
            client_timeout: Duration::from_secs(api.client_timeout),
            max_body_size: usize::try_from(api.max_request_body_size).unwrap_or(usize::MAX),
            cache_ttl: Duration::from_secs(api.cache_ttl),
            cache_size: usize::try_from(api.cache_size).unwrap_or(usize::MAX),
            trusted_user_ids: api
                .trusted_user_ids
                .iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            lookup_timeout: Duration::from_secs(api.lookup_timeout),
            token_cache_time: Duration::from_secs(api.token_cache_time),
            max_limit: u32::try_from(api.max_limit).unwrap_or(u32::MAX),
            drain_timeout,
            database: DbSettings::from_config(conf)?,
            openstack,
        })
    }
}

impl Default for ApiSettings {
    /// The defaults of `[api]`.
    fn default() -> ApiSettings {
        // The option defaults are valid, so this cannot fail; fall back to
        // the same values written out should it ever.
        ApiSettings::from_config(&Config::default()).unwrap_or(ApiSettings {
            host: "0.0.0.0".to_owned(),
            port: 8808,
            tls: None,
            request_timeout: Duration::from_secs(5),
            client_timeout: Duration::from_secs(10),
            max_body_size: 114_688,
            cache_ttl: Duration::from_secs(60),
            cache_size: 100_000,
            trusted_user_ids: Vec::new(),
            lookup_timeout: Duration::from_secs(2),
            token_cache_time: Duration::from_secs(300),
            max_limit: 1000,
            drain_timeout: Duration::from_secs(6),
            database: DbSettings::new("sqlite:////var/lib/staffeln/staffeln.sqlite"),
            openstack: None,
        })
    }
}

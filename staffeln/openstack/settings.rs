//! What the client needs to know, as plain data: the `[openstack]` options
//! by their names. The conf room owns parsing and defaults of the file; the
//! `[openstack]` options become [`Settings`] through
//! [`Settings::from_config`], which refuses values the client cannot use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::conf::Secret;
use crate::conf::SettingsError;

/// Which catalog endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interface {
    type Err = String;

    /// Accepts `public`, `internal`, `admin` and keystoneauth's `publicURL`
    /// style spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_end_matches("URL").to_ascii_lowercase().as_str() {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(format!("unknown interface {s:?}, expected public, internal or admin")),
        }
    }
}

/// The `[openstack]` options.
///
/// With `cloud` set, authentication, region, interface and TLS come from that
/// clouds.yaml entry; `region_name`, `cacert` and `insecure` given here still
/// win when set. Without `cloud`, `auth_url` plus either `username`/`password`
/// (+ `project_name`) or `application_credential_id`/`_secret` are needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub cloud: Option<String>,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub user_domain_name: String,
    pub project_name: Option<String>,
    pub project_domain_name: String,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<Secret>,
    pub region_name: Option<String>,
    pub interface: Interface,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
    /// Time limit of one call, retries included.
    pub retry_timeout: Duration,
    /// Longest wait between two attempts.
    pub max_retry_interval: Duration,
    /// Statuses never retried.
    pub skip_retry_codes: Vec<u16>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cloud: None,
            auth_url: None,
            username: None,
            password: None,
            user_domain_name: "Default".to_owned(),
            project_name: None,
            project_domain_name: "Default".to_owned(),
            application_credential_id: None,
            application_credential_secret: None,
            region_name: None,
            interface: Interface::Public,
            cacert: None,
            insecure: false,
            request_timeout: Duration::from_secs(60),
            retry_timeout: Duration::from_secs(300),
            max_retry_interval: Duration::from_secs(30),
            skip_retry_codes: vec![404],
        }
    }
}

/// Parses `skip_retry_codes` entries such as `"404"`.
pub fn parse_status_codes<S: AsRef<str>>(codes: &[S]) -> Result<Vec<u16>, String> {
    codes
        .iter()
        .map(|c| {
            let c = c.as_ref().trim();
            c.parse::<u16>()
                .ok()
                .filter(|n| (100..600).contains(n))
                .ok_or_else(|| format!("{c:?} is not an HTTP status code"))
        })
        .collect()
}

impl Settings {
    /// The client settings of the `[openstack]` options; fails on an
    /// `interface` or `skip_retry_codes` value the client cannot use.
    pub fn from_config(conf: &crate::conf::Config) -> Result<Settings, SettingsError> {
        let opts = &conf.openstack;
        Ok(Settings {
            cloud: opts.cloud.clone(),
            auth_url: opts.auth_url.clone(),
            username: opts.username.clone(),
            password: opts.password.clone(),
            user_domain_name: opts.user_domain_name.clone(),
            project_name: opts.project_name.clone(),
            project_domain_name: opts.project_domain_name.clone(),
            application_credential_id: opts.application_credential_id.clone(),
            application_credential_secret: opts.application_credential_secret.clone(),
            region_name: opts.region_name.clone(),
            interface: opts
                .interface
                .parse()
                .map_err(|e: String| SettingsError::new("openstack", "interface", &opts.interface, e))?,
            cacert: opts.cacert.as_ref().map(PathBuf::from),
            insecure: opts.insecure,
            request_timeout: Duration::from_secs(opts.request_timeout),
            retry_timeout: Duration::from_secs(opts.retry_timeout),
            max_retry_interval: Duration::from_secs(opts.max_retry_interval),
            skip_retry_codes: parse_status_codes(&opts.skip_retry_codes)
                .map_err(|e| SettingsError::new("openstack", "skip_retry_codes", opts.skip_retry_codes.join(","), e))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            password: Some(Secret::new("hunter2")),
            application_credential_secret: Some("appsecret".into()),
            ..Settings::default()
        };
        let shown = format!("{s:?} {}", Secret::new("x"));
        assert!(!shown.contains("hunter2") && !shown.contains("appsecret"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn interfaces_and_codes_parse() {
        assert_eq!("publicURL".parse(), Ok(Interface::Public));
        assert_eq!("Internal".parse(), Ok(Interface::Internal));
        assert!("private".parse::<Interface>().is_err());
        assert_eq!(parse_status_codes(&["404", " 409"]), Ok(vec![404, 409]));
        assert!(parse_status_codes(&["4o4"]).is_err());
        assert!(parse_status_codes(&["99"]).is_err());
    }
}

//! The `[notification]` options this room reads, as plain data, built and
//! checked once by [`NotifySettings::from_config`]. The conf room owns
//! parsing and defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::conf::{Config, Secret, SettingsError};

/// How the connection to the SMTP server is protected (`smtp_security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain SMTP, nothing encrypted (`none`). Only for a relay on a trusted
    /// network, e.g. a local postfix.
    None,
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (`starttls`, the default, as the Python Staffeln always did).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS", usually port 465 (`tls`).
    Tls,
}

impl SmtpSecurity {
    /// Parses the option value: `none`, `starttls` or `tls` (case-insensitive).
    pub fn parse(value: &str) -> Option<SmtpSecurity> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Some(SmtpSecurity::None),
            "starttls" => Some(SmtpSecurity::Starttls),
            "tls" => Some(SmtpSecurity::Tls),
            _ => None,
        }
    }

    /// The option value naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::None => "none",
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
        }
    }
}

impl fmt::Display for SmtpSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the digest mailer needs from `[notification]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// `receiver`: when not empty, every project digest goes to these addresses.
    pub receiver: Vec<String>,
    /// `project_receiver_domain`: when set (and `receiver` is empty), a project
    /// digest goes to `<project name>@<domain>`.
    pub project_receiver_domain: Option<String>,
    /// `admin_receiver`: receivers of the operator digest of all projects;
    /// empty means no operator digest.
    pub admin_receiver: Vec<String>,
    /// `sender_email`: the From address and SMTP user name. Unset: digests are
    /// written to the log (and to `report_dir`) instead of mailed.
    pub sender_email: Option<String>,
    /// `sender_pwd`: SMTP password; the login is skipped when unset.
    pub sender_pwd: Option<Secret>,
    /// `smtp_server_domain`.
    pub smtp_server_domain: String,
    /// `smtp_server_port`.
    pub smtp_server_port: u16,
    /// `smtp_security`.
    pub smtp_security: SmtpSecurity,
    /// `smtp_timeout`: bound on sending one digest (connecting, TLS, login
    /// and the whole SMTP exchange).
    pub smtp_timeout: Duration,
    /// `smtp_ca_file`: PEM file of extra CA certificates trusted for the SMTP
    /// server, besides the system's.
    pub smtp_ca_file: Option<PathBuf>,
    /// `template_file`: operator's Jinja2 HTML template replacing the built-in one.
    pub template_file: Option<PathBuf>,
    /// `report_dir`: without a sender, each digest is also written there as HTML.
    pub report_dir: Option<PathBuf>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            receiver: Vec::new(),
            project_receiver_domain: None,
            admin_receiver: Vec::new(),
            sender_email: None,
            sender_pwd: None,
            smtp_server_domain: "localhost".to_owned(),
            smtp_server_port: 25,
            smtp_security: SmtpSecurity::default(),
            smtp_timeout: Duration::from_secs(60),
            smtp_ca_file: None,
            template_file: None,
            report_dir: None,
        }
    }
}

impl NotifySettings {
    /// The settings of `[notification]`; a sender that is not an e-mail
    /// address names the option.
    pub fn from_config(conf: &Config) -> Result<NotifySettings, SettingsError> {
        let opts = &conf.notification;
        if let Some(sender) = &opts.sender_email {
            sender.parse::<lettre::Address>().map_err(|e| {
                SettingsError::new("notification", "sender_email", sender, "expected an e-mail address").caused_by(e)
            })?;
        }
        Ok(NotifySettings {
            receiver: opts.receiver.clone(),
            project_receiver_domain: opts.project_receiver_domain.clone(),
            admin_receiver: opts.admin_receiver.clone(),
            sender_email: opts.sender_email.clone(),
            sender_pwd: opts.sender_pwd.clone(),
            smtp_server_domain: opts.smtp_server_domain.clone(),
            smtp_server_port: opts.smtp_server_port,
            // The option's choices were checked when the file was loaded.
            smtp_security: SmtpSecurity::parse(&opts.smtp_security).unwrap_or_default(),
            smtp_timeout: Duration::from_secs(opts.smtp_timeout),
            smtp_ca_file: opts.smtp_ca_file.as_ref().map(PathBuf::from),
            template_file: opts.template_file.as_ref().map(PathBuf::from),
            report_dir: opts.report_dir.as_ref().map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_password_never_prints() {
        let settings = NotifySettings { sender_pwd: Some(Secret::new("hunter2")), ..Default::default() };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn security_values_round_trip() {
        for mode in [SmtpSecurity::None, SmtpSecurity::Starttls, SmtpSecurity::Tls] {
            assert_eq!(SmtpSecurity::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(SmtpSecurity::parse(" STARTTLS "), Some(SmtpSecurity::Starttls));
        assert_eq!(SmtpSecurity::parse("ssl"), None);
    }
}

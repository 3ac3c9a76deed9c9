//! The edge of the room: digests leave as mail over SMTP (lettre), or, with
//! no `sender_email`, as a log record and an HTML file in `report_dir`.
//! Each digest succeeds or fails on its own; a failure is returned, never
//! swallowed, so the caller keeps the results for the next attempt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::{info, warn};

use super::digest::{Digest, ProjectBackups, Scope, operator_digest, project_digest};
use super::receivers::{ReceiverSource, Recipients, operator_receivers, project_receivers};
use super::render::{RenderError, TemplateError, error_chain, render};
use super::settings::{NotifySettings, SmtpSecurity};

/// Why a digest was not delivered (or the mailer not built). Never contains
/// the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("[notification] sender_email = {address:?} is not an e-mail address")]
    InvalidSender {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot read [notification] smtp_ca_file {}", .path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[notification] smtp_ca_file {} holds no PEM certificate", .path.display())]
    CaEmpty { path: PathBuf },
    #[error("[notification] smtp_ca_file {} holds an invalid PEM certificate", .path.display())]
    CaCertificate {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("cannot set up TLS for the SMTP server {host}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("nobody to send the digest for {digest} to ({receivers:?} receivers: none valid{})", invalid_note(.invalid))]
    NoRecipients { digest: String, receivers: ReceiverSource, invalid: Vec<String> },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot build the mail for {digest}")]
    Message {
        digest: String,
        #[source]
        source: lettre::error::Error,
    },
    #[error("cannot send the digest for {digest} to {recipients} via SMTP server {server}")]
    Send {
        digest: String,
        server: String,
        recipients: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("the SMTP server {server} did not complete sending the digest for {digest} within {}s", .after.as_secs_f64())]
    Timeout { digest: String, server: String, after: Duration },
    #[error("cannot write the digest for {digest} to {}", .path.display())]
    ReportFile {
        digest: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn invalid_note(invalid: &[String]) -> String {
    if invalid.is_empty() { String::new() } else { format!("; not addresses: {}", invalid.join(", ")) }
}

/// How a digest was delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum DeliveryMethod {
    /// Accepted by the SMTP server for these addresses.
    Mailed { to: Vec<String> },
    /// No sender configured: written to the log, and to `file` when
    /// `report_dir` is set. Counts as delivered.
    Recorded { file: Option<PathBuf> },
}

/// A delivered digest.
#[derive(Debug)]
pub struct Delivery {
    pub method: DeliveryMethod,
    /// Set when the operator template failed and the built-in one was used.
    pub template_fallback: Option<TemplateError>,
}

/// The outcome of one project's digest in a cycle.
#[derive(Debug)]
pub struct ProjectOutcome {
    pub project_id: String,
    /// `Ok`: mark the project's results reported. `Err`: keep them for the
    /// next attempt.
    pub result: Result<Delivery, MailError>,
}

/// What [`Mailer::send_cycle`] did, digest by digest.
#[derive(Debug)]
pub struct CycleOutcome {
    /// One entry per project that had backups, in input order.
    pub projects: Vec<ProjectOutcome>,
    /// `None` when `admin_receiver` is empty (no operator digest) or no
    /// project had backups.
    pub operator: Option<Result<Delivery, MailError>>,
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

/// Sends digests as configured. Build it once; it keeps a small SMTP
/// connection pool.
pub struct Mailer {
    settings: NotifySettings,
    smtp: Option<Smtp>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("settings", &self.settings)
            .field("smtp", &self.smtp.as_ref().map(|s| &s.server))
            .finish()
    }
}

impl Mailer {
    /// Checks the settings and prepares the SMTP transport (no network
    /// traffic). Without `sender_email` there is no transport: digests are
    /// recorded instead of mailed.
    pub fn new(settings: NotifySettings) -> Result<Mailer, MailError> {
        let smtp = match settings.sender_email.as_deref() {
            None => None,
            Some(sender) => Some(smtp(&settings, sender)?),
        };
        Ok(Mailer { settings, smtp })
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// Delivers one digest to `recipients` (see `receivers`). With a sender
    /// configured, the digest is mailed, and fails when nobody valid is left
    /// to receive it or the server does not accept it; without, it is
    /// recorded.
    pub async fn send(&self, digest: &Digest, recipients: &Recipients) -> Result<Delivery, MailError> {
        let rendered = render(digest, self.settings.template_file.as_deref())?;
        let Some(smtp) = &self.smtp else {
            let file = self.record(digest, &rendered.html, &rendered.text)?;
            return Ok(Delivery { method: DeliveryMethod::Recorded { file }, template_fallback: rendered.fallback });
        };
        if !recipients.invalid.is_empty() {
            warn!(
                "skipping receivers of the digest for {} that are not e-mail addresses: {}",
                digest.describe(),
                recipients.invalid.join(", ")
            );
        }
        if recipients.is_empty() {
            return Err(MailError::NoRecipients {
                digest: digest.describe(),
                receivers: recipients.source,
                invalid: recipients.invalid.clone(),
            });
        }
        let to: Vec<String> = recipients.addresses.iter().map(Address::to_string).collect();
        let message_id = format!("<staffeln-digest-{}@{}>", digest.identity, smtp.from.email.domain());
        let mut builder =
            Message::builder().from(smtp.from.clone()).subject(digest.subject.clone()).message_id(Some(message_id));
        for address in &recipients.addresses {
            builder = builder.to(Mailbox::new(None, address.clone()));
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|source| MailError::Message { digest: digest.describe(), source })?;
        // lettre bounds only the TCP connect with its timeout; a server that
        // stalls later would hang the cycle, so the whole exchange is bounded.
        let after = self.settings.smtp_timeout;
        match tokio::time::timeout(after, smtp.transport.send(message)).await {
            Ok(Ok(_response)) => {}
            Ok(Err(source)) => {
                return Err(MailError::Send {
                    digest: digest.describe(),
                    server: smtp.server.clone(),
                    recipients: to.join(", "),
                    source,
                });
            }
            Err(_elapsed) => {
                return Err(MailError::Timeout { digest: digest.describe(), server: smtp.server.clone(), after });
            }
        }
        info!(
            notify.receivers = ?recipients.source,
            "sent the backup digest for {} to {}",
            digest.describe(),
            to.join(", ")
        );
        Ok(Delivery { method: DeliveryMethod::Mailed { to }, template_fallback: rendered.fallback })
    }

    /// One cycle's digests: one per project with backups, then the
    /// operator digest of those projects when `admin_receiver` is set. Each
    /// failure is logged here and returned in its entry.
    pub async fn send_cycle(&self, projects: &[ProjectBackups], now: DateTime<Utc>) -> CycleOutcome {
        let mut outcomes = Vec::new();
        for project in projects.iter().filter(|p| p.has_backups()) {
            outcomes.push(self.send_project(project, now).await);
        }
        let operator = if outcomes.is_empty() { None } else { self.send_operator(projects, now).await };
        CycleOutcome { projects: outcomes, operator }
    }

    /// One project's digest (the caller checked `has_backups`), so that the
    /// caller can mark it as reported as soon as it is delivered.
    pub async fn send_project(&self, project: &ProjectBackups, now: DateTime<Utc>) -> ProjectOutcome {
        let digest = project_digest(project, now);
        let recipients = project_receivers(&self.settings, &project.project_name, &project.member_emails);
        let result = self.send(&digest, &recipients).await;
        if let Err(err) = &result {
            warn!(
                project.id = %project.project_id,
                "{}; its results stay unreported until the next attempt",
                error_chain(err)
            );
        }
        ProjectOutcome { project_id: project.project_id.clone(), result }
    }

    /// The operator digest of `projects` (those with backups); `None` when
    /// `admin_receiver` is empty.
    pub async fn send_operator(
        &self,
        projects: &[ProjectBackups],
        now: DateTime<Utc>,
    ) -> Option<Result<Delivery, MailError>> {
        let admins = operator_receivers(&self.settings);
        if admins.is_empty() && admins.invalid.is_empty() {
            return None;
        }
        let result = self.send(&operator_digest(projects, now), &admins).await;
        if let Err(err) = &result {
            warn!("{}", error_chain(err));
        }
        Some(result)
    }

    /// No sender: the text digest goes to the log, the HTML to `report_dir`.
    fn record(&self, digest: &Digest, html: &str, text: &str) -> Result<Option<PathBuf>, MailError> {
        let file = match &self.settings.report_dir {
            None => None,
            Some(dir) => Some(write_report(dir, digest, html)?),
        };
        let written = file.as_ref().map(|f| format!(" (HTML in {})", f.display())).unwrap_or_default();
        info!(
            "[notification] sender_email is unset, so the backup digest for {} is recorded here{written}:\n{text}",
            digest.describe()
        );
        Ok(file)
    }
}

fn smtp(settings: &NotifySettings, sender: &str) -> Result<Smtp, MailError> {
    let address: Address =
        sender.trim().parse().map_err(|source| MailError::InvalidSender { address: sender.to_owned(), source })?;
    let host = settings.smtp_server_domain.trim();
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.smtp_server_port)
        .timeout(Some(settings.smtp_timeout));
    if settings.smtp_security != SmtpSecurity::None {
        let params = tls_parameters(host, settings.smtp_ca_file.as_deref())?;
        builder = builder.tls(match settings.smtp_security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            SmtpSecurity::Starttls | SmtpSecurity::None => Tls::Required(params),
        });
    }
    if let Some(password) = &settings.sender_pwd {
        builder = builder.credentials(Credentials::new(address.to_string(), password.expose().to_owned()));
    }
    Ok(Smtp {
        transport: builder.build(),
        from: Mailbox::new(Some("Staffeln".to_owned()), address),
        server: format!("{host}:{} ({})", settings.smtp_server_port, settings.smtp_security),
    })
}

const CERT_MARKER: &[u8] = b"-----BEGIN CERTIFICATE-----";

fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, MailError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| MailError::CaFile { path: path.to_owned(), source })?;
        if !pem.windows(CERT_MARKER.len()).any(|w| w == CERT_MARKER) {
            return Err(MailError::CaEmpty { path: path.to_owned() });
        }
        let cert =
            Certificate::from_pem(&pem).map_err(|source| MailError::CaCertificate { path: path.to_owned(), source })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|source| MailError::Tls { host: host.to_owned(), source })
}

/// `<report_dir>/<project_id>-<YYYYmmddTHHMMSSZ>.html`, or
/// `all-projects-<…>.html` for the operator digest.
pub fn report_file_name(digest: &Digest) -> String {
    let stamp = digest.generated_at.format("%Y%m%dT%H%M%SZ");
    match &digest.scope {
        Scope::Project { project_id, .. } => format!("{}-{stamp}.html", file_safe(project_id)),
        Scope::Operator => format!("all-projects-{stamp}.html"),
    }
}

/// Keeps `[A-Za-z0-9_-]` (Keystone ids are hex), replaces the rest with `_`.
fn file_safe(id: &str) -> String {
    if id.is_empty() {
        return "_".to_owned();
    }
    id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).collect()
}

fn write_report(dir: &Path, digest: &Digest, html: &str) -> Result<PathBuf, MailError> {
    let path = dir.join(report_file_name(digest));
    let fail = |source| MailError::ReportFile { digest: digest.describe(), path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(fail)?;
    // Write aside and rename, so a reader never sees half a report.
    let partial = path.with_extension("html.partial");
    std::fs::write(&partial, html).map_err(fail)?;
    std::fs::rename(&partial, &path).map_err(fail)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::conf::Secret;

    #[test]
    fn file_names_are_predictable_and_safe() {
        let cases = [("4f1c2d", "4f1c2d"), ("../etc/passwd", "___etc_passwd"), ("", "_"), ("a b", "a_b")];
        for (id, safe) in cases {
            assert_eq!(file_safe(id), safe, "id={id:?}");
        }
    }

    #[tokio::test]
    async fn every_security_mode_builds_a_transport_without_network() {
        for security in [SmtpSecurity::None, SmtpSecurity::Starttls, SmtpSecurity::Tls] {
            let settings = NotifySettings {
                sender_email: Some("staffeln@example.com".into()),
                sender_pwd: Some(Secret::new("hunter2")),
                smtp_server_domain: "smtp.example.com".into(),
                smtp_server_port: 2525,
                smtp_security: security,
                smtp_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            let mailer = Mailer::new(settings);
            assert!(mailer.is_ok(), "{security}: {mailer:?}");
            let shown = format!("{mailer:?}");
            assert!(shown.contains("smtp.example.com:2525"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn bad_settings_name_the_option() {
        let bad_sender = NotifySettings { sender_email: Some("not an address".into()), ..Default::default() };
        let err = Mailer::new(bad_sender).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, r#"[notification] sender_email = "not an address" is not an e-mail address"#);

        let missing_ca = NotifySettings {
            sender_email: Some("staffeln@example.com".into()),
            smtp_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = Mailer::new(missing_ca).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, "cannot read [notification] smtp_ca_file /nonexistent/ca.pem");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let settings = NotifySettings {
            sender_email: Some("staffeln@example.com".into()),
            smtp_ca_file: Some(path.clone()),
            ..Default::default()
        };
        match Mailer::new(settings) {
            Err(MailError::CaEmpty { path: p }) => assert_eq!(p, path),
            other => panic!("expected CaEmpty, got {other:?}"),
        }
    }
}

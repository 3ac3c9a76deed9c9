//! `[notification]`: the backup digests sent by e-mail.

use super::{integer, list, port, string, unset_string};
use crate::conf::secret::Secret;

options! {
    /// Options under this group are used to define notification settings.
    group "notification" => NotificationOpts;

    /// The e-mail addresses that receive every project's digest. When empty,
    /// a project's digest goes to <project name>@project_receiver_domain, or
    /// else to the e-mail addresses of the project's members.
    ///
    /// Related options:
    ///
    /// * project_receiver_domain
    /// * admin_receiver
    receiver: Vec<String> = list("");

    /// The domain of the per-project digest address,
    /// <project name>@<project_receiver_domain>, used when receiver is empty.
    project_receiver_domain: Option<String> = unset_string();

    /// The e-mail addresses that receive the operator digest of all projects;
    /// none is sent when empty.
    admin_receiver: Vec<String> = list("");

    /// The sender address of the digests, also the SMTP login when the server
    /// requires authentication. When unset, digests are written to the log
    /// (and to report_dir) instead of being mailed.
    sender_email: Option<String> = unset_string();

    /// The SMTP password of sender_email.
    ///
    /// Related options:
    ///
    /// * sender_email
    sender_pwd: Option<Secret> = unset_string().secret();

    /// The SMTP server to send digests through.
    smtp_server_domain: String = string("localhost");

    /// The port of the SMTP server.
    smtp_server_port: u16 = port(25);

    /// How the connection to the SMTP server is protected.
    smtp_security: String = string("starttls").choices(&[
        ("none", "Plain SMTP, for a relay on a trusted network."),
        ("starttls", "A plain connection upgraded with STARTTLS."),
        ("tls", "TLS from the first byte (SMTPS, usually port 465)."),
    ]);

    /// A PEM file of CA certificates trusted for the SMTP server, besides the
    /// system's.
    smtp_ca_file: Option<String> = unset_string();

    /// Seconds allowed for sending one digest (connection, TLS, login and the
    /// SMTP exchange).
    smtp_timeout: u64 = integer(60).min(1);

    /// A Jinja2 HTML template replacing the built-in digest template; when it
    /// cannot be read or rendered, the built-in one is used and the error is
    /// logged.
    template_file: Option<String> = unset_string();

    /// A directory where digests are written as HTML files when no
    /// sender_email is set.
    report_dir: Option<String> = unset_string();
}

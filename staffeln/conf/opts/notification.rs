//! `[notification]`: the e-mail reports.

use super::{list, port, string, unset_string};
use crate::conf::secret::Secret;

options! {
    /// Options under this group are used to define notification settings.
    group "notification" => NotificationOpts;

    /// The e-mail addresses that receive the backup reports of all projects.
    receiver: Vec<String> = list("");

    /// The domain of the per-project report address,
    /// <project name>@<project_receiver_domain>. Per-project reports are off
    /// when unset.
    project_receiver_domain: Option<String> = unset_string();

    /// The sender address of the reports, also the SMTP login when the server
    /// requires authentication.
    sender_email: Option<String> = unset_string();

    /// The SMTP password of sender_email.
    ///
    /// Related options:
    ///
    /// * sender_email
    sender_pwd: Option<Secret> = unset_string().secret();

    /// The SMTP server to send reports through.
    smtp_server_domain: String = string("localhost");

    /// The port of the SMTP server.
    smtp_server_port: u16 = port(25);
}

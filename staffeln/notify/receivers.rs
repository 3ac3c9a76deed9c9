//! Who receives a digest: a pure decision over the settings and the
//! project's member addresses, as in the Python Staffeln.

use lettre::Address;

use super::settings::NotifySettings;

/// Where the receivers of a digest came from (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverSource {
    /// `[notification] receiver`.
    Configured,
    /// `<project name>@<project_receiver_domain>`.
    ProjectDomain,
    /// The project members' e-mail addresses.
    Members,
    /// `[notification] admin_receiver`, for the operator digest.
    Admin,
}

/// The receivers of one digest. Addresses that do not parse are kept aside
/// in `invalid` (logged by the mailer) rather than failing the whole digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    pub source: ReceiverSource,
    pub addresses: Vec<Address>,
    pub invalid: Vec<String>,
}

impl Recipients {
    fn from_strings<'a>(source: ReceiverSource, candidates: impl IntoIterator<Item = &'a str>) -> Recipients {
        let mut addresses: Vec<Address> = Vec::new();
        let mut invalid = Vec::new();
        for candidate in candidates {
            let candidate = candidate.trim();
            if candidate.is_empty() {
                continue;
            }
            match candidate.parse::<Address>() {
                Ok(address) if !addresses.contains(&address) => addresses.push(address),
                Ok(_) => {}
                Err(_) => invalid.push(candidate.to_owned()),
            }
        }
        Recipients { source, addresses, invalid }
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }
}

/// Receivers of a project's digest: `receiver` when set; otherwise
/// `<project name>@<project_receiver_domain>` when that is set; otherwise the
/// project members' addresses.
pub fn project_receivers(settings: &NotifySettings, project_name: &str, member_emails: &[String]) -> Recipients {
    if settings.receiver.iter().any(|r| !r.trim().is_empty()) {
        return Recipients::from_strings(ReceiverSource::Configured, settings.receiver.iter().map(String::as_str));
    }
    if let Some(domain) = settings.project_receiver_domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let address = format!("{project_name}@{domain}");
        return Recipients::from_strings(ReceiverSource::ProjectDomain, [address.as_str()]);
    }
    Recipients::from_strings(ReceiverSource::Members, member_emails.iter().map(String::as_str))
}

/// Receivers of the operator digest: `admin_receiver` (empty: no operator digest).
pub fn operator_receivers(settings: &NotifySettings) -> Recipients {
    Recipients::from_strings(ReceiverSource::Admin, settings.admin_receiver.iter().map(String::as_str))
}

/// Whether the conductor must look up the members' addresses in Keystone:
/// only when mail is sent and neither `receiver` nor
/// `project_receiver_domain` decides the receivers.
pub fn needs_member_emails(settings: &NotifySettings) -> bool {
    settings.sender_email.is_some()
        && !settings.receiver.iter().any(|r| !r.trim().is_empty())
        && settings.project_receiver_domain.as_deref().is_none_or(|d| d.trim().is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn settings(receiver: &[&str], domain: Option<&str>) -> NotifySettings {
        NotifySettings {
            receiver: receiver.iter().map(|s| s.to_string()).collect(),
            project_receiver_domain: domain.map(str::to_owned),
            sender_email: Some("staffeln@example.com".into()),
            ..Default::default()
        }
    }

    fn addrs(r: &Recipients) -> Vec<String> {
        r.addresses.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn receivers_follow_the_python_precedence() {
        let members = vec!["alice@example.com".to_owned(), "bob@example.com".to_owned()];
        // (receiver, domain, expected source, expected addresses)
        type Case<'a> = (&'a [&'a str], Option<&'a str>, ReceiverSource, &'a [&'a str]);
        let cases: &[Case] = &[
            (&["ops@example.com"], Some("corp.example"), ReceiverSource::Configured, &["ops@example.com"]),
            (&["a@x.org", "b@x.org"], None, ReceiverSource::Configured, &["a@x.org", "b@x.org"]),
            (&[], Some("corp.example"), ReceiverSource::ProjectDomain, &["demo@corp.example"]),
            (&[""], Some(" corp.example "), ReceiverSource::ProjectDomain, &["demo@corp.example"]),
            (&[], None, ReceiverSource::Members, &["alice@example.com", "bob@example.com"]),
            (&[], Some(""), ReceiverSource::Members, &["alice@example.com", "bob@example.com"]),
        ];
        for &(receiver, domain, source, expected) in cases {
            let r = project_receivers(&settings(receiver, domain), "demo", &members);
            assert_eq!(
                (r.source, addrs(&r)),
                (source, expected.iter().map(|s| s.to_string()).collect()),
                "receiver={receiver:?} domain={domain:?}"
            );
            assert!(r.invalid.is_empty());
        }
    }

    #[test]
    fn bad_addresses_are_set_aside_and_duplicates_dropped() {
        let members = vec!["alice@example.com".into(), "not an address".into(), "alice@example.com".into(), " ".into()];
        let r = project_receivers(&settings(&[], None), "demo", &members);
        assert_eq!(addrs(&r), ["alice@example.com"]);
        assert_eq!(r.invalid, ["not an address"]);
        // A project name that makes no address leaves no receiver.
        let r = project_receivers(&settings(&[], Some("corp.example")), "my project", &[]);
        assert!(r.is_empty());
        assert_eq!(r.invalid, ["my project@corp.example"]);
        // Members without e-mail: nobody to send to.
        assert!(project_receivers(&settings(&[], None), "demo", &[]).is_empty());
    }

    #[test]
    fn the_operator_digest_goes_to_admin_receiver() {
        let mut s = settings(&["ops@example.com"], None);
        assert!(operator_receivers(&s).is_empty());
        s.admin_receiver = vec!["root@example.com".into()];
        let r = operator_receivers(&s);
        assert_eq!((r.source, addrs(&r)), (ReceiverSource::Admin, vec!["root@example.com".to_owned()]));
    }

    #[test]
    fn member_emails_are_needed_only_as_last_resort() {
        assert!(needs_member_emails(&settings(&[], None)));
        assert!(!needs_member_emails(&settings(&["ops@example.com"], None)));
        assert!(!needs_member_emails(&settings(&[], Some("corp.example"))));
        let no_sender = NotifySettings { sender_email: None, ..settings(&[], None) };
        assert!(!needs_member_emails(&no_sender));
    }
}

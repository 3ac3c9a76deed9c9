//! `transport_url` as oslo.messaging writes it:
//! `rabbit://[user[:pass]@]host[:port][,…]/[vhost][?option=value&…]`, parsed
//! into a [`TransportUrl`] whose `Display` masks the passwords. Pure.

use std::fmt;

use super::error::TransportError;

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
        let settings = crate::rpc::RpcSettings {
            transport_url: Some("rabbit://a:sekrit@h1/".into()),
            ..crate::rpc::RpcSettings::default()
        };
        assert!(!format!("{settings:?}").contains("sekrit"));
    }
}

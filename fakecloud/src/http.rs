//! Request and response values the handlers work on, microversions, error
//! bodies per service, and the small text helpers (timestamps, Python reprs,
//! base64) the wire formats need.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

/// The three emulated services; also the first path segment of their URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Identity,
    Compute,
    Volume,
}

impl Service {
    pub fn prefix(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Compute => "compute",
            Service::Volume => "volume",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// One HTTP request, body read in full.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// First value of query parameter `key`.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn token(&self) -> Option<&str> {
        self.header("x-auth-token").filter(|t| !t.is_empty())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One HTTP response before it becomes a hyper response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Resp {
    pub fn json(status: u16, body: &Value) -> Resp {
        Resp {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    pub fn ok(body: &Value) -> Resp {
        Resp::json(200, body)
    }

    pub fn empty(status: u16) -> Resp {
        Resp {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Resp {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// An error response in the shape of `service` (§0.2).
pub(crate) fn fault(service: Service, code: u16, message: impl Into<String>) -> Resp {
    let message = message.into();
    match service {
        Service::Identity => {
            Resp::json(code, &json!({"error": {"code": code, "title": reason(code), "message": message}}))
        }
        Service::Compute | Service::Volume => {
            let name = fault_name(service, code);
            Resp::json(code, &json!({ name: {"code": code, "message": message} }))
        }
    }
}

/// Cinder's 413 for quota: `Retry-After: 0` and `retryAfter` in the body (§0.3).
pub(crate) fn over_limit(message: impl Into<String>) -> Resp {
    Resp::json(413, &json!({"overLimit": {"code": 413, "message": message.into(), "retryAfter": "0"}}))
        .with("retry-after", "0")
}

pub(crate) fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

fn fault_name(service: Service, code: u16) -> &'static str {
    match code {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        429 if service == Service::Compute => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// keystonemiddleware's answer to a missing, unknown or expired token (§0.1).
pub(crate) fn unauthenticated(keystone_url: &str) -> Resp {
    Resp::json(
        401,
        &json!({"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}),
    )
    .with("www-authenticate", format!("Keystone uri=\"{keystone_url}\""))
}

/// A microversion `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u16, pub u16);

impl Microversion {
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= Microversion(major, minor)
    }

    fn parse(text: &str) -> Option<Microversion> {
        let (a, b) = text.trim().split_once('.')?;
        Some(Microversion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

pub(crate) const NOVA_MIN: Microversion = Microversion(2, 1);
pub(crate) const NOVA_MAX: Microversion = Microversion(2, 100);
pub(crate) const CINDER_MIN: Microversion = Microversion(3, 0);
pub(crate) const CINDER_MAX: Microversion = Microversion(3, 71);

/// Works out the microversion of a Nova or Cinder request (§2.7).
pub(crate) fn negotiate(req: &Req, service: Service) -> Result<Microversion, Resp> {
    let (word, min, max) = match service {
        Service::Compute => ("compute", NOVA_MIN, NOVA_MAX),
        _ => ("volume", CINDER_MIN, CINDER_MAX),
    };
    let values: Vec<&str> =
        req.headers.get_all("openstack-api-version").iter().filter_map(|v| v.to_str().ok()).collect();
    let mut requested = None;
    for entry in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = entry.split_whitespace();
        if parts.next().is_some_and(|w| w.eq_ignore_ascii_case(word)) {
            requested = Some(parts.next().unwrap_or("").to_owned());
        }
    }
    if requested.is_none() && service == Service::Compute {
        requested = req.header("x-openstack-nova-api-version").map(str::to_owned);
    }
    if requested.is_none() && !values.is_empty() && service == Service::Volume {
        return Err(fault(
            service,
            400,
            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        ));
    }
    let Some(text) = requested else {
        return Ok(min);
    };
    if text.eq_ignore_ascii_case("latest") {
        return Ok(max);
    }
    let Some(mv) = Microversion::parse(&text) else {
        return Err(fault(
            service,
            400,
            format!("API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."),
        ));
    };
    if mv < min || mv > max {
        return Err(fault(
            service,
            406,
            format!("Version {mv} is not supported by the API. Minimum is {min} and maximum is {max}."),
        ));
    }
    Ok(mv)
}

/// Keystone `expires_at` / `issued_at`.
pub(crate) fn keystone_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

/// Nova `created` / `updated`.
pub(crate) fn nova_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Cinder timestamps and Nova's naive ones: naive UTC with microseconds.
pub(crate) fn naive_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Python `repr()` of a JSON value, as jsonschema messages print it.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Strict boolean strings (`oslo_utils.strutils.bool_from_string(strict=True)`).
pub(crate) fn strict_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Parses the dict literal Cinder's `metadata` filter takes (`{'k': 'v'}` or
/// JSON), string keys and values only.
pub(crate) fn parse_dict_literal(text: &str) -> Option<Vec<(String, String)>> {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        return map.into_iter().map(|(k, v)| Some((k, v.as_str()?.to_owned()))).collect();
    }
    let mut chars = text.trim().chars().peekable();
    let mut out = Vec::new();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while c.peek().is_some_and(|c| c.is_whitespace()) {
            c.next();
        }
    };
    let string = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
        let quote = c.next().filter(|q| *q == '\'' || *q == '"')?;
        let mut s = String::new();
        loop {
            match c.next()? {
                '\\' => s.push(c.next()?),
                ch if ch == quote => return Some(s),
                ch => s.push(ch),
            }
        }
    };
    if chars.next()? != '{' {
        return None;
    }
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        return Some(out);
    }
    loop {
        skip_ws(&mut chars);
        let k = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next()? != ':' {
            return None;
        }
        skip_ws(&mut chars);
        let v = string(&mut chars)?;
        out.push((k, v));
        skip_ws(&mut chars);
        match chars.next()? {
            ',' => continue,
            '}' => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "{\"id\": \"x\"}"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()), "{s} -> {e}");
        }
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn dict_literals_parse_like_python() {
        assert_eq!(
            parse_dict_literal("{'a': 'b', \"c\": 'd'}"),
            Some(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
        );
        assert_eq!(parse_dict_literal("{}"), Some(vec![]));
        assert_eq!(parse_dict_literal("{'a': 1}"), None);
        assert_eq!(parse_dict_literal("a=b"), None);
    }

    #[test]
    fn reprs_match_python() {
        assert_eq!(py_repr(&json!({"a/b": "x"})), "{'a/b': 'x'}");
        assert_eq!(py_repr(&json!([1, null, true])), "[1, None, True]");
    }
}

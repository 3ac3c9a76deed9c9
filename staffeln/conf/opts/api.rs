//! `[api]`: the staffeln-api HTTP listener.

use super::{boolean, integer, list, port, string, unset_string};

options! {
    /// Options under this group are used to define staffeln-api's
    /// configuration.
    group "api" => ApiOpts;

    /// The IP address on which staffeln-api listens.
    host: String = string("0.0.0.0");

    /// The TCP port on which staffeln-api listens.
    port: u16 = port(8808);

    /// Serve HTTPS instead of HTTP.
    ///
    /// Related options:
    ///
    /// * ssl_cert_file
    /// * ssl_key_file
    enabled_ssl: bool = boolean(false);

    /// Path of the private key of the HTTPS certificate.
    ///
    /// Related options:
    ///
    /// * enabled_ssl
    ssl_key_file: Option<String> = unset_string();

    /// Path of the HTTPS certificate (PEM), with its chain.
    ///
    /// Related options:
    ///
    /// * enabled_ssl
    ssl_cert_file: Option<String> = unset_string();

    /// How long the answer to one request may take, in seconds; past it the
    /// deletion guard answers 503 with a body other than True (a denial). Keep it well below Cinder's [oslo_policy] remote_timeout (60
    /// seconds by default): a timeout there fails the user's DELETE with a
    /// 500 instead of a clean 403.
    ///
    /// Related options:
    ///
    /// * client_timeout
    request_timeout: u64 = integer(5).min(1);

    /// How long a client may take to send the headers of a request, and
    /// then its body, in seconds; slower clients get 408 or have their
    /// connection closed.
    client_timeout: u64 = integer(10).min(1);

    /// The largest request body accepted, in bytes; larger ones are answered
    /// with 413. oslo.policy's form body for a Cinder backup is about 2 KiB.
    max_request_body_size: u64 = integer(114688).min(1024);

    /// How long the deletion guard remembers that a backup is an automated
    /// one, in seconds, once its database or Cinder said so. 0 disables the
    /// cache. A backup never stops being automated, so the cache trades only
    /// memory for database queries; answers about callers and backups that
    /// are not automated are never cached.
    ///
    /// Related options:
    ///
    /// * cache_size
    cache_ttl: u64 = integer(60).min(0);

    /// The number of automated backups the deletion guard remembers at most.
    ///
    /// Related options:
    ///
    /// * cache_ttl
    cache_size: u64 = integer(100000).min(0);

    /// Keystone user ids whose backup deletions the deletion guard allows
    /// whatever the backup, besides Staffeln's own service user (which the
    /// guard learns from its own Keystone token of [openstack] and needs no
    /// entry here). For the service user of another Staffeln deployment that
    /// shares this Cinder, or the old id while a rotated service user's
    /// retention runs drain. Only oslo.policy's credentials (built by Cinder
    /// from the caller's token) name the caller; keep the list short.
    trusted_user_ids: Vec<String> = list("");

    /// How long the deletion guard waits for Keystone or Cinder when it has to
    /// ask them, in seconds: Cinder only for a request without oslo.policy's
    /// target (a GET by a person, a POST with the query alone), Keystone only
    /// while it has not yet learnt its own service user's id. Keep it short,
    /// since a Cinder API worker may be waiting for the guard's answer. Past
    /// it the guard answers 503 (a denial), never True.
    ///
    /// Related options:
    ///
    /// * request_timeout
    lookup_timeout: u64 = integer(2).min(1);

    /// How long a validated Keystone token is trusted without asking
    /// Keystone again, in seconds (keystonemiddleware's token_cache_time).
    /// 0 validates every request. A revoked token stays usable for at most
    /// this long.
    token_cache_time: u64 = integer(300).min(0);

    /// The largest page of GET /v1/backups, and its size when the request
    /// gives no limit (Cinder's osapi_max_limit).
    max_limit: u64 = integer(1000).min(1);
}

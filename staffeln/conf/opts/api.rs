//! `[api]`: the staffeln-api HTTP listener.

use super::{boolean, port, string, unset_string};

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
}

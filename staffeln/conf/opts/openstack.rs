//! `[openstack]`: how Staffeln reaches Keystone, Nova and Cinder.

use super::{boolean, integer, list, string, unset_string};
use crate::conf::secret::Secret;

options! {
    /// Options under this group are used to define how Staffeln connects to
    /// OpenStack.
    group "openstack" => OpenStackOpts;

    /// Name of an entry of clouds.yaml to take the credentials from. When set,
    /// the credential options of this group are ignored.
    cloud: Option<String> = unset_string();

    /// Keystone endpoint URL, e.g. https://keystone.example.com:5000/v3.
    auth_url: Option<String> = unset_string();

    /// User name to authenticate with.
    username: Option<String> = unset_string();

    /// Password of the user.
    password: Option<Secret> = unset_string().secret();

    /// Domain of the user.
    user_domain_name: String = string("Default");

    /// Project to scope the token to.
    project_name: Option<String> = unset_string();

    /// Domain of the project.
    project_domain_name: String = string("Default");

    /// Application credential ID, instead of a user and password.
    ///
    /// Related options:
    ///
    /// * application_credential_secret
    application_credential_id: Option<String> = unset_string();

    /// Application credential secret.
    ///
    /// Related options:
    ///
    /// * application_credential_id
    application_credential_secret: Option<Secret> = unset_string().secret();

    /// Region of the endpoints to use; the first one of the catalog when
    /// unset.
    region_name: Option<String> = unset_string();

    /// Which endpoint of the catalog to use.
    interface: String = string("public").choices(&[
        ("public", "The public endpoint."),
        ("internal", "The internal endpoint."),
        ("admin", "The admin endpoint."),
    ]);

    /// CA bundle (PEM) to verify the HTTPS endpoints; the system's trust store
    /// when unset.
    cacert: Option<String> = unset_string();

    /// Skip the verification of HTTPS certificates. Do not use in production.
    insecure: bool = boolean(false);

    /// Timeout of one HTTP request to OpenStack, in seconds.
    request_timeout: u64 = integer(60).min(1);

    /// The time to keep retrying a failed OpenStack request, in seconds.
    retry_timeout: u64 = integer(300).min(1);

    /// The maximum time between two retries of a failed OpenStack request, in
    /// seconds.
    max_retry_interval: u64 = integer(30).min(0);

    /// HTTP status codes on which a failed OpenStack request is not retried.
    skip_retry_codes: Vec<String> = list("404");
}

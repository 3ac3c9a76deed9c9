//! `[coordination]`: the original's tooz backend, accepted and ignored
//! (conductors coordinate through the database).

use super::string;

options! {
    /// Options under this group are used to define Coordination's
    /// configuration.
    group "coordination" => CoordinationOpts;

    /// Accepted for compatibility, ignored: conductors coordinate through
    /// their database (leases and fenced claims), with no tooz backend.
    backend_url: String = string("");
}

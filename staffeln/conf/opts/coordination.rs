//! `[coordination]`: distributed locks between conductors.

use super::string;

options! {
    /// Options under this group are used to define Coordination's
    /// configuration.
    group "coordination" => CoordinationOpts;

    /// Lock coordination backend URL; locks are local to the host when empty.
    backend_url: String = string("");
}

//! The infrastructure a trial runs on: the shared MariaDB (a database of the
//! trial's own), or the suite's own mariadbd and RabbitMQ node for the
//! trials that restart them.

use crate::trial::Kind;

/// The servers of the suite.
#[derive(Default)]
pub struct Infra {}

impl Infra {
    /// Root URL (no database) of the MariaDB a trial of `kind` uses.
    pub fn mysql_server_url(&mut self, _kind: Kind) -> String {
        crate::rig::mysql_server_url()
    }

    /// `[DEFAULT] transport_url` of a trial of `kind`, if it has one.
    pub fn transport_url(&mut self, _kind: Kind) -> Option<String> {
        None
    }

    pub fn restart_mariadb(&mut self) {
        panic!("restarting MariaDB needs the suite's own mariadbd");
    }

    pub fn restart_rabbit(&mut self) {
        panic!("restarting RabbitMQ needs the suite's own node");
    }
}

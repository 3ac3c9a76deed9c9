//! `staffeln-manage ceph-compression show|apply`.

use clap::Subcommand;
use staffeln::ceph;

use crate::Failure;

#[derive(Subcommand)]
pub enum CephCommand {
    /// Prints the pool's compression properties as the cluster has them.
    Show,
    /// Sets the pool's compression properties from `[ceph_compression]`.
    Apply,
}

pub fn run(cmd: CephCommand, settings: &ceph::Settings) -> Result<(), Failure> {
    let properties = match cmd {
        CephCommand::Show => ceph::show(settings)?,
        CephCommand::Apply => ceph::apply(settings)?,
    };
    for (name, value) in properties {
        println!("{name} = {value}");
    }
    Ok(())
}

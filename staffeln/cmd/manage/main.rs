//! staffeln-manage: database schema, sample configuration, Ceph compression,
//! the demo. One file per subcommand group; each returns a [`Failure`].

mod ceph;
mod config;
mod db;
#[cfg(feature = "demo")]
mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use staffeln::conf::OsloArgs;
use staffeln::db::DbSettings;
use staffeln::service;

const PROG: &str = "staffeln-manage";

/// Manages Staffeln's database and configuration.
#[derive(Parser)]
#[command(name = PROG, version, about)]
struct Cli {
    #[command(flatten)]
    oslo: OsloArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Database schema.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Compression of the Ceph pool Cinder backs up to.
    #[command(subcommand, name = "ceph-compression")]
    CephCompression(ceph::CephCommand),
    /// Runs the demo on embedded defaults (no services needed).
    Demo {
        /// Directory for the demo's state (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// A subcommand's failure: the error and its exit status.
pub struct Failure {
    error: Box<dyn std::error::Error>,
    code: ExitCode,
}

impl Failure {
    /// A failure of the configuration (exit status 2).
    pub fn config(error: impl std::error::Error + 'static) -> Failure {
        Failure { error: Box::new(error), code: ExitCode::from(service::EXIT_CONFIG) }
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure { error: Box::new(error), code: ExitCode::FAILURE }
    }
}

fn main() -> ExitCode {
    let (cli, matches) = service::parse_cli::<Cli>();
    let outcome = match cli.command {
        // Neither needs the operator's configuration.
        Command::Config(config::ConfigCommand::Generate { output_file }) => config::generate(output_file.as_deref()),
        #[cfg(feature = "demo")]
        Command::Demo { dir } => demo::run(dir.as_deref()),
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => Err(Failure::from(std::io::Error::other(
            "this staffeln-manage was built without the demo (cargo feature `demo`, on by default)",
        ))),
        // The rest build their room's settings before doing anything: a value
        // the room cannot use is one line and exit status 2.
        Command::Db(cmd) => match service::start_with(PROG, &cli.oslo, &matches, DbSettings::from_config) {
            Err(err) => return service::report(PROG, &err, err.exit_code()),
            Ok((_, settings)) => db::run(cmd, &settings),
        },
        Command::CephCompression(cmd) => {
            match service::start_with(PROG, &cli.oslo, &matches, staffeln::ceph::Settings::from_config) {
                Err(err) => return service::report(PROG, &err, err.exit_code()),
                Ok((_, settings)) => ceph::run(cmd, &settings),
            }
        }
        Command::Config(cmd) => match service::start(PROG, &cli.oslo, &matches) {
            Err(err) => return service::report(PROG, &err, err.exit_code()),
            Ok(started) => config::run(cmd, &started.config),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { error, code }) => service::report(PROG, error.as_ref(), code),
    }
}

#[test]
fn cli_is_well_formed() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

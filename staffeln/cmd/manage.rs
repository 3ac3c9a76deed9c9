//! staffeln-manage: database schema, sample configuration, the demo.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use staffeln::conf::OsloArgs;
use staffeln::manage;
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
    Db(DbCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Runs the demo on embedded defaults (no services needed).
    Demo {
        /// Directory for the demo's state (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Creates or upgrades the schema to the newest version.
    Upgrade,
    /// Prints the schema version in the database.
    Version,
    /// Same as `upgrade` (kept for the Python Staffeln's deployment tools).
    #[command(name = "create_schema", alias = "create-schema")]
    CreateSchema,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Writes the sample configuration (oslo-config-generator format).
    Generate {
        /// Where to write it; standard output by default.
        #[arg(long)]
        output_file: Option<PathBuf>,
    },
    /// Prints the effective configuration, secrets masked.
    Show,
}

fn main() -> ExitCode {
    let (cli, matches) = service::parse_cli::<Cli>();
    let outcome = match cli.command {
        // Generating the sample needs no configuration at all.
        Command::Config(ConfigCommand::Generate { output_file }) => manage::generate_sample(output_file.as_deref()),
        Command::Demo { dir } => manage::demo(dir.as_deref()),
        command => {
            let started = match service::start(PROG, &cli.oslo, &matches) {
                Ok(started) => started,
                Err(err) => return service::report(PROG, &err, err.exit_code()),
            };
            match command {
                Command::Db(DbCommand::Upgrade | DbCommand::CreateSchema) => manage::db_upgrade(&started.config),
                Command::Db(DbCommand::Version) => manage::db_version(&started.config),
                Command::Config(ConfigCommand::Show) => manage::show_config(&started.config),
                Command::Config(ConfigCommand::Generate { .. }) | Command::Demo { .. } => Ok(()),
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => service::report(PROG, &err, err.exit_code()),
    }
}

#[test]
fn cli_is_well_formed() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

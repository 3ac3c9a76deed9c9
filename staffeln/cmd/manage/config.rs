//! `staffeln-manage config generate|show`.

use std::path::Path;

use clap::Subcommand;
use staffeln::conf::{self, Config};

use crate::Failure;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Writes the sample configuration (oslo-config-generator format).
    Generate {
        /// Where to write it; standard output by default.
        #[arg(long)]
        output_file: Option<std::path::PathBuf>,
    },
    /// Prints the effective configuration, secrets masked.
    Show,
}

/// Writes `conf::sample()` to `output` or standard output.
pub fn generate(output: Option<&Path>) -> Result<(), Failure> {
    let text = conf::sample();
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))?,
        None => print!("{text}"),
    }
    Ok(())
}

pub fn run(cmd: ConfigCommand, config: &Config) -> Result<(), Failure> {
    match cmd {
        ConfigCommand::Generate { output_file } => generate(output_file.as_deref()),
        ConfigCommand::Show => {
            print!("{}", show(config));
            Ok(())
        }
    }
}

/// `group.option = value` lines, secrets as `****`.
pub fn show(config: &Config) -> String {
    conf::dump(config).into_iter().map(|(name, value)| format!("{name} = {value}\n")).collect()
}

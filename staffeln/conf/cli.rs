//! The oslo command-line arguments every Staffeln binary accepts
//! (`--config-file`, `--config-dir`, and oslo.log's CLI options), and the
//! [`Source`] list they make, in command-line order.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

use super::files::{PROJECT, default_config_dirs, default_config_files};
use super::load::Source;
use super::opts::REGISTRY;
use super::types::Kind;

/// oslo's common options; flatten into a binary's clap parser with
/// `#[command(flatten)]`. The argument ids are the option names, so that
/// [`OsloArgs::sources`] can find each one's position.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct OsloArgs {
    /// Path to a config file to use. Multiple config files can be specified,
    /// with values in later files taking precedence. Defaults to
    /// ~/.staffeln/staffeln.conf, ~/staffeln.conf, /etc/staffeln/staffeln.conf
    /// or /etc/staffeln.conf, and the same for <program>.conf.
    #[arg(long = "config-file", value_name = "PATH")]
    pub config_file: Vec<PathBuf>,
    /// Path to a config directory to pull `*.conf` files from, in sorted
    /// order, at its position among --config-file options. Defaults to
    /// staffeln.conf.d/ and <program>.conf.d/ in the same places.
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
    /// Set the logging level to DEBUG instead of INFO ([DEFAULT] debug).
    #[arg(short = 'd', long = "debug", overrides_with = "debug")]
    pub debug: bool,
    /// The inverse of --debug.
    #[arg(long = "nodebug", overrides_with = "nodebug")]
    pub nodebug: bool,
    /// Log to this file ([DEFAULT] log_file).
    #[arg(long = "log-file", alias = "logfile", value_name = "PATH", overrides_with = "log_file")]
    pub log_file: Option<String>,
    /// Base directory of relative log files ([DEFAULT] log_dir).
    #[arg(long = "log-dir", alias = "logdir", value_name = "LOG_DIR", overrides_with = "log_dir")]
    pub log_dir: Option<String>,
    /// strftime format of %(asctime)s ([DEFAULT] log_date_format).
    #[arg(long = "log-date-format", value_name = "DATE_FORMAT", overrides_with = "log_date_format")]
    pub log_date_format: Option<String>,
    /// Also log to standard error ([DEFAULT] use_stderr).
    #[arg(long = "use-stderr", overrides_with = "use_stderr")]
    pub use_stderr: bool,
    /// The inverse of --use-stderr.
    #[arg(long = "nouse-stderr", overrides_with = "nouse_stderr")]
    pub nouse_stderr: bool,
}

impl OsloArgs {
    /// The sources in command-line order, with oslo's defaults: without any
    /// `--config-file` the default files come first, without any
    /// `--config-dir` the default directories follow them. `matches` are the
    /// `ArgMatches` the args were flattened into. The program name is the
    /// base name of argv[0].
    pub fn sources(&self, matches: &ArgMatches) -> Vec<Source> {
        let prog = std::env::args_os()
            .next()
            .and_then(|a| Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| PROJECT.to_owned());
        self.sources_for(matches, PROJECT, &prog)
    }

    /// [`OsloArgs::sources`] with an explicit project and program name.
    pub fn sources_for(&self, matches: &ArgMatches, project: &str, prog: &str) -> Vec<Source> {
        let mut positioned: Vec<(usize, Source)> = Vec::new();
        let mut add = |id: &str, make: &dyn Fn(String) -> Source| {
            if matches.value_source(id) != Some(ValueSource::CommandLine) {
                return;
            }
            let (Some(indices), Ok(Some(values))) = (matches.indices_of(id), matches.try_get_raw(id)) else {
                return;
            };
            let values: Vec<String> = values.map(|v| v.to_string_lossy().into_owned()).collect();
            let indices: Vec<usize> = indices.collect();
            if values.is_empty() {
                // A flag: its value is implied, one index per occurrence.
                if let Some(&last) = indices.last() {
                    positioned.push((last, make(String::new())));
                }
            } else {
                positioned.extend(indices.into_iter().zip(values).map(|(i, v)| (i, make(v))));
            }
        };
        add("config_file", &|v| Source::File(PathBuf::from(v)));
        add("config_dir", &|v| Source::Dir(PathBuf::from(v)));
        for group in REGISTRY {
            for opt in group.opts.iter().filter(|o| o.cli.is_some()) {
                let cli =
                    |value: String| Source::Cli { group: group.name.to_owned(), name: opt.name.to_owned(), value };
                if opt.kind == Kind::Bool {
                    add(opt.name, &|_| cli("true".to_owned()));
                    add(&format!("no{}", opt.name), &|_| cli("false".to_owned()));
                } else {
                    add(opt.name, &cli);
                }
            }
        }
        positioned.sort_by_key(|(i, _)| *i);

        let mut sources = Vec::new();
        if self.config_file.is_empty() {
            sources.extend(default_config_files(project, prog));
        }
        if self.config_dir.is_empty() {
            sources.extend(default_config_dirs(project, prog));
        }
        sources.extend(positioned.into_iter().map(|(_, s)| s));
        sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    #[command(name = "staffeln-test")]
    struct Cmd {
        #[command(flatten)]
        oslo: OsloArgs,
    }

    fn sources(args: &[&str]) -> Vec<Source> {
        let matches = Cmd::command().try_get_matches_from(args).unwrap();
        let cmd = Cmd::from_arg_matches(&matches).unwrap();
        cmd.oslo.sources_for(&matches, "staffeln-no-such-project", "staffeln-no-such-prog")
    }

    fn cli(name: &str, value: &str) -> Source {
        Source::Cli { group: "DEFAULT".into(), name: name.into(), value: value.into() }
    }

    #[test]
    fn the_command_is_well_formed() {
        Cmd::command().debug_assert();
    }

    #[test]
    fn sources_keep_command_line_order() {
        let got = sources(&[
            "p",
            "--debug",
            "--config-file",
            "a.conf",
            "--config-dir",
            "d",
            "--config-file=b.conf",
            "--log-file",
            "x.log",
            "--nodebug",
        ]);
        assert_eq!(
            got,
            vec![
                cli("debug", "true"),
                Source::File("a.conf".into()),
                Source::Dir("d".into()),
                Source::File("b.conf".into()),
                cli("log_file", "x.log"),
                cli("debug", "false"),
            ]
        );
        let got = sources(&["p", "--config-file", "a.conf", "-d"]);
        assert_eq!(got, vec![Source::File("a.conf".into()), cli("debug", "true")]);
    }

    #[test]
    fn deprecated_spellings_and_repeats_work() {
        let got = sources(&["p", "--logfile", "old.log", "--logdir", "/l", "--log-file", "new.log", "--use-stderr"]);
        assert_eq!(got, vec![cli("log_dir", "/l"), cli("log_file", "new.log"), cli("use_stderr", "true")]);
    }

    #[test]
    fn every_cli_option_has_a_flag() {
        let cmd = Cmd::command();
        for group in REGISTRY {
            for opt in group.opts {
                if let Some(flag) = opt.cli {
                    let arg = cmd.get_arguments().find(|a| a.get_id() == opt.name);
                    let arg = arg.unwrap_or_else(|| panic!("no clap argument for {}", opt.name));
                    assert_eq!(arg.get_long(), Some(flag.long), "{}", opt.name);
                    assert_eq!(arg.get_short(), flag.short, "{}", opt.name);
                }
            }
        }
    }
}

//! What every binary needs: its command line, the configuration, oslo.log
//! logging, the runtime, signals, and the one error line at the edge.
//!
//! A daemon's `main` is one call, [`daemon`]: parse the command line, load
//! the configuration, build the settings of the room it starts with that
//! room's `from_config` (a value the room cannot use stops it here, before
//! logging and anything else start), set up logging, then run the room's
//! service until it returns or a signal stops it (see [`signals`]). One-shot
//! binaries call [`parse_cli`] and [`start_with`] and do their work. Errors
//! end as one line, `prog: error: cause: cause`, with exit status 2 for a bad
//! configuration and 1 otherwise. This room knows no OpenStack concept: it
//! is handed the room's settings builder and service as functions.

pub mod logfmt;
pub mod logging;
pub mod memory;
pub mod signals;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::conf::{self, Config, ConfigError, OsloArgs, SettingsError, Source};
pub use logging::{LogHandle, LogSettings};
pub use signals::{Shutdown, ShutdownTrigger, shutdown_channel};

/// Exit status for a configuration the binary cannot start with.
pub const EXIT_CONFIG: u8 = 2;

/// Why a binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(Box<ConfigError>),
    /// The configuration loads, but a value cannot be used.
    #[error(transparent)]
    Settings(Box<SettingsError>),
    #[error(transparent)]
    Logging(#[from] logging::LogError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl From<ConfigError> for StartError {
    fn from(err: ConfigError) -> StartError {
        StartError::Config(Box::new(err))
    }
}

impl From<SettingsError> for StartError {
    fn from(err: SettingsError) -> StartError {
        StartError::Settings(Box::new(err))
    }
}

impl StartError {
    /// 2 for anything the operator must fix in the configuration.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            StartError::Config(_) | StartError::Settings(_) => ExitCode::from(EXIT_CONFIG),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Parses the command line of binary `C`; clap prints usage errors itself and
/// exits with status 2.
pub fn parse_cli<C: CommandFactory + FromArgMatches>() -> (C, ArgMatches) {
    let matches = C::command().get_matches();
    match C::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(err) => err.exit(),
    }
}

/// The whole `main` of a daemon whose command line is oslo's options only:
/// parse, load the configuration, build the room's settings with `settings`
/// (its `from_config`), set up logging, run `service` with them until it
/// returns or a signal stops it.
pub fn daemon<S, B, F, Fut, E>(prog: &'static str, about: &'static str, settings: B, service: F) -> ExitCode
where
    B: FnOnce(&Config) -> Result<S, SettingsError>,
    F: FnOnce(S, ServiceContext) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    let matches = daemon_command(prog, about).get_matches();
    let oslo = match OsloArgs::from_arg_matches(&matches) {
        Ok(oslo) => oslo,
        Err(err) => err.exit(),
    };
    match start_with(prog, &oslo, &matches, settings) {
        Ok((started, settings)) => serve(started, move |ctx| service(settings, ctx)),
        Err(err) => report(prog, &err, err.exit_code()),
    }
}

/// The command line of a daemon: `--config-file`, `--config-dir` and oslo.log's flags.
pub fn daemon_command(prog: &'static str, about: &'static str) -> clap::Command {
    use clap::Args;
    OsloArgs::augment_args(clap::Command::new(prog).about(about).version(env!("CARGO_PKG_VERSION")))
}

/// A binary that has loaded its configuration and set up logging.
pub struct Started {
    pub prog: &'static str,
    pub config: Arc<Config>,
    pub sources: Vec<Source>,
    pub log: LogHandle,
}

/// The `OS_*` environment variables, where oslo.config looks for
/// `OS_<GROUP>__<OPT>` overrides.
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars().filter(|(k, _)| k.starts_with("OS_")).collect()
}

/// Loads the configuration named by the command line (and the environment),
/// sets up logging, logs deprecation warnings and, with `log_options`, the
/// effective options at DEBUG (secrets as `****`).
pub fn start(prog: &'static str, oslo: &OsloArgs, matches: &ArgMatches) -> Result<Started, StartError> {
    start_with(prog, oslo, matches, |_| Ok(())).map(|(started, ())| started)
}

/// [`start`], building the settings of the room the binary runs with
/// `settings` once the configuration is loaded and before logging or
/// anything else starts: a value the room cannot use is the binary's one
/// line, with exit status 2.
pub fn start_with<S>(
    prog: &'static str,
    oslo: &OsloArgs,
    matches: &ArgMatches,
    settings: impl FnOnce(&Config) -> Result<S, SettingsError>,
) -> Result<(Started, S), StartError> {
    let sources = oslo.sources(matches);
    let loaded = conf::load(&sources, &environment())?;
    let log_settings = LogSettings::from_config(&loaded.config)?;
    let settings = settings(&loaded.config)?;
    let log = logging::init(prog, &log_settings)?;
    for warning in &loaded.warnings {
        warn!(target: "staffeln.conf", "{warning}");
    }
    if loaded.config.default.log_options {
        log_options(&loaded.config, &loaded.files);
    }
    Ok((Started { prog, config: Arc::new(loaded.config), sources, log }, settings))
}

/// oslo.config's `log_opt_values`: a banner, the files, `name = value` lines.
fn log_options(config: &Config, files: &[std::path::PathBuf]) {
    let banner = "*".repeat(80);
    debug!(target: "staffeln.conf", "{banner}");
    debug!(target: "staffeln.conf", "Configuration options gathered from:");
    debug!(target: "staffeln.conf", "command line args: {:?}", std::env::args().skip(1).collect::<Vec<_>>());
    debug!(target: "staffeln.conf", "config files: {:?}", files);
    debug!(target: "staffeln.conf", "{}", "=".repeat(80));
    for (name, value) in conf::dump(config) {
        debug!(target: "staffeln.conf", "{name:<30} = {value}");
    }
    debug!(target: "staffeln.conf", "{banner}");
}

/// What a long-running service gets: the configuration (updated on SIGHUP)
/// and the stop request.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: watch::Receiver<Arc<Config>>,
    pub shutdown: Shutdown,
}

impl ServiceContext {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Tells systemd the service is ready (`Type=notify`).
    pub fn ready(&self) {
        signals::notify_ready();
    }
}

/// Builds the multi-threaded runtime every binary uses.
pub fn runtime() -> Result<tokio::runtime::Runtime, StartError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(StartError::Runtime)
}

/// Runs `service` until it returns or a signal stops it, handling SIGTERM,
/// SIGINT and SIGHUP as oslo.service does, and turns the outcome into the
/// process's exit status.
pub fn serve<F, Fut, E>(started: Started, service: F) -> ExitCode
where
    F: FnOnce(ServiceContext) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    let prog = started.prog;
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(err) => return report(prog, &err, err.exit_code()),
    };
    let code = runtime.block_on(supervise(started, service));
    // Do not wait for stuck blocking tasks: the drain budget is already spent.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn supervise<F, Fut, E>(started: Started, service: F) -> ExitCode
where
    F: FnOnce(ServiceContext) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    use tokio::signal::unix::{SignalKind, signal};
    let Started { prog, config, sources, log } = started;
    let (config_tx, config_rx) = watch::channel(config);
    let (trigger, shutdown) = shutdown_channel();
    let ctx = ServiceContext { config: config_rx, shutdown };
    let mut task = tokio::spawn(service(ctx));
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()));
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = signals else {
        let err = std::io::Error::other("cannot install signal handlers");
        return report(prog, &err, ExitCode::FAILURE);
    };
    info!(target: "staffeln.service", "{prog} started (pid {})", std::process::id());
    loop {
        tokio::select! {
            outcome = &mut task => return finished(prog, outcome),
            _ = term.recv() => {
                info!(target: "staffeln.service", "Caught SIGTERM, stopping children");
                break;
            }
            _ = int.recv() => {
                info!(target: "staffeln.service", "Caught SIGINT signal, instantaneous exiting");
                return ExitCode::FAILURE;
            }
            _ = hup.recv() => {
                if signals::stdin_is_terminal() {
                    info!(target: "staffeln.service", "Caught SIGHUP in a terminal, stopping");
                    break;
                }
                info!(target: "staffeln.service", "Caught SIGHUP, reloading the configuration");
                reload(&sources, &config_tx, &log);
            }
        }
    }
    trigger.trigger();
    let timeout = config_tx.borrow().default.graceful_shutdown_timeout;
    let budget = async {
        if timeout > 0 {
            tokio::time::sleep(Duration::from_secs(timeout)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        outcome = &mut task => finished(prog, outcome),
        () = budget => {
            error!(target: "staffeln.service", "Graceful shutdown timeout exceeded, instantaneous exiting");
            ExitCode::FAILURE
        }
        _ = term.recv() => {
            error!(target: "staffeln.service", "Caught a second SIGTERM, instantaneous exiting");
            ExitCode::FAILURE
        }
    }
}

fn finished<E: std::error::Error>(prog: &str, outcome: Result<Result<(), E>, tokio::task::JoinError>) -> ExitCode {
    match outcome {
        Ok(Ok(())) => {
            info!(target: "staffeln.service", "{prog} stopped");
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            error!(target: "staffeln.service", "{}", chain(&err));
            report(prog, &err, ExitCode::FAILURE)
        }
        Err(join) => {
            error!(target: "staffeln.service", "{prog} crashed: {join}");
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP: re-read the same sources; keep the old configuration when the new
/// one does not load; apply what may change at run time (mutable options:
/// logging levels and formats) and say which changes need a restart.
fn reload(sources: &[Source], config_tx: &watch::Sender<Arc<Config>>, log: &LogHandle) {
    let loaded = match conf::load(sources, &environment()) {
        Ok(loaded) => loaded,
        Err(err) => {
            error!(target: "staffeln.service", "configuration not reloaded, the old one stays in force: {}", chain(&err));
            return;
        }
    };
    let old = config_tx.borrow().clone();
    let changes = conf::changes(&old, &loaded.config);
    let mut ignored = Vec::new();
    for change in &changes {
        if change.mutable {
            info!(target: "staffeln.service", "Option {}.{} changed from [{}] to [{}]", change.group, change.name, change.old, change.new);
        } else {
            ignored.push(format!("{}.{}", change.group, change.name));
        }
    }
    if !ignored.is_empty() {
        warn!(
            target: "staffeln.service",
            "Ignoring changes to options that need a restart: {}", ignored.join(", ")
        );
    }
    if changes.is_empty() {
        info!(target: "staffeln.service", "configuration reloaded, nothing changed");
    }
    // Keep the restart-only options at their old values so the running
    // service sees only what it may change.
    let mut effective = (*old).clone();
    conf::apply_mutable(&mut effective, &loaded.config);
    match LogSettings::from_config(&effective) {
        Ok(settings) => log.apply(&settings),
        Err(err) => {
            error!(target: "staffeln.service", "new logging options not applied: {}", chain(&err));
            return;
        }
    }
    let _ = config_tx.send(Arc::new(effective));
}

pub use crate::errors::chain;

/// Prints `prog: error: cause: cause` on stderr and returns `code`.
pub fn report(prog: &str, err: &dyn std::error::Error, code: ExitCode) -> ExitCode {
    eprintln!("{prog}: {}", chain(err));
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn daemon_command_line_is_well_formed() {
        super::daemon_command("staffeln-test", "test").debug_assert();
    }

    #[test]
    fn chain_joins_causes_without_repeating_them() {
        let inner = std::io::Error::other("connection refused");
        let outer = super::StartError::Runtime(inner);
        assert_eq!(super::chain(&outer), "cannot start the async runtime: connection refused");
    }
}

//! staffeln: the operator's client of the conductors, over the conductor
//! RPC topic (`[DEFAULT] transport_url`, `[conductor] topic`), shaped like
//! the openstack client: `staffeln <noun> <verb>`, `-f table|json|value|yaml`.
//!
//! stdout carries the output only: log lines go to stderr (warnings, or
//! everything with `--debug`), or to `--log-file`; the `log_file` and
//! `log_dir` of a configuration file shared with the services are ignored.

#[path = "staffeln/output.rs"]
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use staffeln::conductor::rpcapi::{
    ApiError, BackupTriggered, ConductorApi, DrillInfo, Pong, ReportSent, Status, TaskInfo,
};
use staffeln::conf::{self, Config, OsloArgs};
use staffeln::objects::TaskState;
use staffeln::rpc::{Context, RpcError, RpcSettings, Transport};
use staffeln::service::logging::{self, LogSettings};
use staffeln::service::{self, StartError};

use output::{Format, Output};

const PROG: &str = "staffeln";

/// Exit status when nothing was done for now but a retry later will work
/// (sysexits' EX_TEMPFAIL): `backup trigger` while a conductor that does not
/// answer holds the backup-cycle lease.
const EXIT_TRY_LATER: u8 = 75;

/// Triggers and inspects Staffeln's conductors.
#[derive(Parser)]
#[command(name = PROG, version)]
struct Cli {
    #[command(flatten)]
    oslo: OsloArgs,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Table, global = true)]
    format: Format,
    /// Seconds to wait for a conductor's answer (default: [DEFAULT] rpc_response_timeout).
    #[arg(long, value_name = "SECONDS", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Retention (deleting backups past their retention time).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Backup digests.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Shows the leader, the last and next cycle, and the tasks per state.
    Status,
    /// Backup tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Checks that a conductor answers.
    Ping,
    /// Restores a Staffeln backup into a new volume in the backup's project
    /// (through Cinder's restore API, as the project's own users restore).
    /// Prints the new volume; it is `restoring-backup` until Cinder is done.
    Restore {
        /// The backup's id.
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// The new volume's name (default: Cinder's restore_backup_<id>).
        #[arg(long, value_name = "NAME")]
        volume_name: Option<String>,
    },
    /// Restore drills (`[conductor] restore_drill_period`).
    #[command(subcommand, name = "restore-drill")]
    RestoreDrill(DrillCommand),
}

#[derive(Subcommand)]
enum DrillCommand {
    /// Lists recorded restore drills, newest first.
    List {
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Plans a backup cycle now (of one project or server) and prints what was planned.
    ///
    /// Exits with status 75 (try again later) when a conductor that does not
    /// answer holds the backup-cycle lease: the output names it and says in
    /// how many seconds its lease expires.
    Trigger {
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
        #[arg(long, value_name = "SERVER_ID")]
        server: Option<String>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Lists each backup retention would consider, with its decision and
    /// why; deletes nothing.
    Preview {
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
    },
    /// Runs retention now.
    Trigger {
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Sends the backup digests now.
    Send {
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Lists tasks, newest first.
    List {
        /// planned, claimed, creating, done, failed, skipped or waiting.
        #[arg(long, value_parser = parse_state)]
        status: Option<TaskState>,
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// What went wrong, as one line, and the exit status.
struct Failure {
    message: String,
    code: ExitCode,
}

impl Failure {
    fn config(message: String) -> Failure {
        Failure { message, code: ExitCode::from(service::EXIT_CONFIG) }
    }
}

fn main() -> ExitCode {
    let (cli, matches) = service::parse_cli::<Cli>();
    let (conf, rpc) = match start(&cli, &matches) {
        Ok(started) => started,
        Err(err) => return service::report(PROG, &err, err.exit_code()),
    };
    let runtime = match service::runtime() {
        Ok(rt) => rt,
        Err(err) => return service::report(PROG, &err, err.exit_code()),
    };
    let outcome = runtime.block_on(run(&cli, &conf, &rpc));
    runtime.shutdown_timeout(Duration::from_millis(100));
    match outcome {
        Ok(code) => code,
        Err(Failure { message, code }) => {
            eprintln!("{PROG}: {message}");
            code
        }
    }
}

/// Configuration and the messaging settings (checked before anything
/// else), and logging that keeps stdout for the output.
fn start(cli: &Cli, matches: &clap::ArgMatches) -> Result<(Config, RpcSettings), StartError> {
    let loaded = conf::load(&cli.oslo.sources(matches), &service::environment())?;
    let mut log = LogSettings::from_config(&loaded.config)?;
    let rpc = RpcSettings::from_config(&loaded.config)?;
    log.log_file = cli.oslo.log_file.as_ref().map(Into::into);
    log.log_dir = cli.oslo.log_dir.as_ref().map(Into::into);
    log.use_stderr = log.log_file.is_none() && log.log_dir.is_none();
    if !log.debug {
        log.default_log_levels.push(("staffeln".to_owned(), tracing::level_filters::LevelFilter::WARN));
    }
    logging::init(PROG, &log)?;
    for warning in &loaded.warnings {
        tracing::warn!(target: "staffeln.conf", "{warning}");
    }
    Ok((loaded.config, rpc))
}

async fn run(cli: &Cli, conf: &Config, rpc: &RpcSettings) -> Result<ExitCode, Failure> {
    if conf.default.transport_url.is_none() {
        return Err(Failure::config(
            "[DEFAULT] transport_url is unset: set it to the RabbitMQ URL of staffeln-conductor (as in its \
             staffeln.conf) to reach the conductors"
                .to_owned(),
        ));
    }
    let transport = Transport::new(rpc).map_err(|err| Failure::config(staffeln::errors::chain(&err)))?;
    let timeout = Duration::from_secs(cli.timeout.unwrap_or(conf.default.rpc_response_timeout));
    let api = ConductorApi::new(&transport, &conf.conductor.topic).with_timeout(timeout);
    let outcome = execute(&cli.command, &api, &context()).await;
    transport.close().await;
    let (output, code, hint) = outcome.map_err(|err| explain(&err, &conf.conductor.topic, timeout))?;
    let text = output
        .render(cli.format)
        .map_err(|err| Failure { message: format!("cannot format the answer: {err}"), code: ExitCode::FAILURE })?;
    print!("{text}");
    if let Some(hint) = hint {
        eprintln!("{PROG}: {hint}");
    }
    Ok(code)
}

/// One call per command: its output, exit status, and what to do next (stderr).
async fn execute(
    command: &Command,
    api: &ConductorApi,
    ctx: &Context,
) -> Result<(Output, ExitCode, Option<String>), ApiError> {
    let ok = |output| Ok((output, ExitCode::SUCCESS, None));
    match command {
        Command::Ping => ok(show_pong(&api.ping(ctx).await?)),
        Command::Status => ok(show_status(&api.get_status(ctx).await?)),
        Command::Task(TaskCommand::List { status, project, limit }) => {
            ok(list_tasks(&api.list_tasks(ctx, *status, project.as_deref(), Some(*limit)).await?))
        }
        Command::Backup(BackupCommand::Trigger { project, server }) => {
            let result = api.backup_now(ctx, project.as_deref(), server.as_deref()).await?;
            let (code, hint) = match (result.planned, trigger_hint(&result)) {
                (true, _) => (ExitCode::SUCCESS, None),
                (false, Some(hint)) => (ExitCode::from(EXIT_TRY_LATER), Some(hint)),
                (false, None) => (ExitCode::FAILURE, None),
            };
            Ok((show_trigger(&result), code, hint))
        }
        Command::Retention(RetentionCommand::Preview { project }) => {
            ok(list_decisions(&api.retention_now(ctx, project.as_deref(), true).await?))
        }
        Command::Retention(RetentionCommand::Trigger { dry_run, project }) => {
            ok(show_any(api.retention_now(ctx, project.as_deref(), *dry_run).await?))
        }
        Command::Restore { backup, volume_name } => {
            let r = api.restore_backup(ctx, backup, volume_name.as_deref()).await?;
            ok(Output::Show(vec![
                field("backup_id", r.backup_id),
                field("volume_id", r.volume_id),
                field("volume_name", r.volume_name),
                field("project_id", r.project_id),
            ]))
        }
        Command::RestoreDrill(DrillCommand::List { project, limit }) => {
            ok(list_drills(&api.list_restore_drills(ctx, project.as_deref(), Some(*limit)).await?))
        }
        Command::Report(ReportCommand::Send { project }) => {
            let sent = api.report_now(ctx, project.as_deref()).await?;
            let code = if sent.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            Ok((show_report(&sent), code, None))
        }
    }
}

/// The error line: what failed and what to check.
fn explain(err: &ApiError, topic: &str, timeout: Duration) -> Failure {
    let message = match err {
        ApiError::Rpc(RpcError::Timeout { .. }) => format!(
            "no conductor answered on topic {topic} within {} s: is staffeln-conductor running and is transport_url right?",
            timeout.as_secs()
        ),
        ApiError::Rpc(RpcError::Remote { method, exc_type, message, .. }) => {
            format!("{method} failed on the conductor: {exc_type}: {message}")
        }
        other => staffeln::errors::chain(other),
    };
    Failure { message, code: ExitCode::FAILURE }
}

/// A context that names this request in the conductors' logs.
fn context() -> Context {
    let mut ctx = Context::new();
    ctx.insert("request_id".to_owned(), json!(format!("req-{}", uuid::Uuid::new_v4())));
    ctx
}

fn parse_state(text: &str) -> Result<TaskState, String> {
    TaskState::parse(text).filter(|s| *s != TaskState::Legacy).ok_or_else(|| {
        let states: Vec<&str> =
            TaskState::ALL.iter().filter(|s| **s != TaskState::Legacy).map(|s| s.as_str()).collect();
        format!("expected one of {}", states.join(", "))
    })
}

fn field(name: &str, value: impl Into<Value>) -> (String, Value) {
    (name.to_owned(), value.into())
}

fn show_pong(p: &Pong) -> Output {
    Output::Show(vec![
        field("host", p.host.as_str()),
        field("holder", p.holder.as_str()),
        field("version", p.version.as_str()),
    ])
}

fn show_status(s: &Status) -> Output {
    let last = s.last_cycle.as_ref();
    Output::Show(vec![
        field("host", s.host.as_str()),
        field("holder", s.holder.as_str()),
        field("leader", s.leader),
        field("lease_holder", s.lease_holder.clone()),
        field("lease_expires_at", s.lease_expires_at.clone()),
        field("last_cycle_id", last.map(|c| c.cycle_id.clone())),
        field("last_cycle_leader", last.map(|c| c.leader.clone())),
        field("last_cycle_started_at", last.map(|c| c.started_at.clone())),
        field("last_cycle_finished_at", last.and_then(|c| c.finished_at.clone())),
        field("last_cycle_summary", last.and_then(|c| c.summary.clone())),
        field("next_cycle_at", s.next_cycle_at.clone()),
        field("tasks", json!(s.tasks)),
        field("version", s.version.as_str()),
    ])
}

fn list_tasks(tasks: &[TaskInfo]) -> Output {
    let columns = ["task_id", "state", "project_id", "server", "volume", "kind", "backup_id", "finished_at", "reason"];
    let rows = tasks
        .iter()
        .map(|t| {
            let or_id = |name: &str, id: &str| if name.is_empty() { id.to_owned() } else { name.to_owned() };
            vec![
                json!(t.task_id),
                json!(t.state),
                json!(t.project_id),
                json!(or_id(&t.instance_name, &t.instance_id)),
                json!(or_id(&t.volume_name, &t.volume_id)),
                json!(if t.incremental { "incremental" } else { "full" }),
                json!(t.backup_id),
                json!(t.finished_at),
                json!(t.reason),
            ]
        })
        .collect();
    Output::List { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
}

fn list_drills(drills: &[DrillInfo]) -> Output {
    let columns = [
        "finished_at",
        "result",
        "project_id",
        "volume_id",
        "backup_id",
        "scratch_volume_id",
        "duration_secs",
        "message",
    ];
    let rows = drills
        .iter()
        .map(|d| {
            vec![
                json!(d.finished_at),
                json!(d.result),
                json!(d.project_id),
                json!(d.volume_id),
                json!(d.backup_id),
                json!(d.scratch_volume_id),
                json!(d.duration_secs),
                json!(d.message),
            ]
        })
        .collect();
    Output::List { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
}

/// The `decisions` of a retention preview, one row each.
fn list_decisions(preview: &Value) -> Output {
    let columns = ["backup_id", "volume_id", "project_id", "created_at", "kind", "action", "reason"];
    let rows = preview["decisions"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    vec![
                        d["backup_id"].clone(),
                        d["volume_id"].clone(),
                        d["project_id"].clone(),
                        d["created_at"].clone(),
                        d["kind"].clone(),
                        d["action"].clone(),
                        d["message"].clone(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    Output::List { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows }
}

fn show_trigger(t: &BackupTriggered) -> Output {
    let mut fields = vec![
        field("planned", t.planned),
        field("leader", t.leader.clone()),
        field("cycle_id", t.cycle_id.clone()),
        field("backups", t.backups),
        field("skipped", t.skipped),
        field("waiting", t.waiting),
        field("failed", t.failed),
        field("message", t.message.as_str()),
    ];
    if t.lease_holder.is_some() {
        fields.push(field("lease_holder", t.lease_holder.clone()));
        fields.push(field("lease_expires_at", t.lease_expires_at.clone()));
        fields.push(field("retry_after", t.retry_after));
    }
    Output::Show(fields)
}

/// What to do when nothing was planned because a conductor holds the
/// backup-cycle lease: wait until it expires, or restart that conductor.
fn trigger_hint(t: &BackupTriggered) -> Option<String> {
    let holder = t.lease_holder.as_deref()?;
    let host = holder.rsplit_once(':').map_or(holder, |(host, _pid)| host);
    let secs = t.retry_after.unwrap_or(0);
    let until = t.lease_expires_at.as_deref().unwrap_or("its expiry");
    Some(format!(
        "no cycle planned: conductor {holder} holds the backup-cycle lease until {until}; wait {secs} s and run \
         `staffeln backup trigger` again, or restart staffeln-conductor on {host}"
    ))
}

fn show_report(r: &ReportSent) -> Output {
    let failed: Vec<String> = r.failed.iter().map(|f| format!("{}: {}", f.project_id, f.error)).collect();
    Output::Show(vec![
        field("delivered", json!(r.delivered)),
        field("failed", json!(failed)),
        field("held_back", r.held_back.clone()),
    ])
}

/// A result whose shape this client does not know in detail.
fn show_any(value: Value) -> Output {
    match value {
        Value::Object(map) => Output::Show(map.into_iter().collect()),
        other => Output::Show(vec![field("result", other)]),
    }
}

#[test]
fn a_trigger_held_up_by_a_lease_says_how_long_to_wait_and_whom_to_restart() {
    let t = BackupTriggered {
        planned: false,
        leader: Some("node-b.example:4242".into()),
        cycle_id: None,
        backups: 0,
        skipped: 0,
        waiting: 0,
        failed: 0,
        message: "conductor node-b.example:4242 holds the backup-cycle lease but does not answer".into(),
        lease_holder: Some("node-b.example:4242".into()),
        lease_expires_at: Some("2026-12-02T10:01:27Z".into()),
        retry_after: Some(88),
    };
    assert_eq!(
        trigger_hint(&t).as_deref(),
        Some(
            "no cycle planned: conductor node-b.example:4242 holds the backup-cycle lease until \
             2026-12-02T10:01:27Z; wait 88 s and run `staffeln backup trigger` again, or restart staffeln-conductor \
             on node-b.example"
        )
    );
    let Output::Show(fields) = show_trigger(&t) else { panic!("a show") };
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&names[8..], ["lease_holder", "lease_expires_at", "retry_after"]);
    let planned = BackupTriggered { planned: true, lease_holder: None, retry_after: None, ..t };
    assert_eq!(trigger_hint(&planned), None);
    let Output::Show(fields) = show_trigger(&planned) else { panic!("a show") };
    assert_eq!(fields.len(), 8, "no lease fields when none held the trigger up");
}

#[test]
fn cli_is_well_formed() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

//! The server side of the conductor RPC API: the methods of topic
//! `[conductor] topic`, served by every conductor on the topic and on
//! `<topic>.<[DEFAULT] host>`. It mirrors [`super::rpcapi`], which holds the
//! argument and result shapes and the version history.
//!
//! * `backup_now` plans a cycle at once (of one project or server when
//!   asked). Any conductor may receive it: it takes the backup-cycle lease
//!   if it is free, otherwise passes the request once to the conductor that
//!   holds it (`<topic>.<its host>`). A holder that does not answer a `ping`
//!   within a sixth of `rpc_response_timeout` (1 to 10 s) has most likely
//!   died without giving up its lease: the answer names it, says when its
//!   lease expires and in how many seconds a trigger will be planned.
//!   Requests with the same `request_id` and arguments plan once (a client's
//!   retry, or a fanout cast that every conductor received). The work loop
//!   is woken to start the backups.
//! * `report_now` sends the digests of finished cycles now, whatever
//!   `report_period` says.
//! * `retention_now` returns the retention preview (`dry_run`, of one project
//!   when asked) or runs retention now on the conductor that leads it. Its
//!   results go out as the wire shapes of [`super::rpcapi`], converted here
//!   from the retention half's own types.
//!
//! Without `[DEFAULT] transport_url` the conductor runs no RPC server: the
//! in-process `fake://` broker cannot reach another process, and oslo's
//! implicit `rabbit://localhost` would only log reconnects on a node without
//! RabbitMQ. Backups run on the schedule; on-demand triggers are off.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, Notify, watch};
use tracing::{info, warn};

use super::backup::cycle::{BackupScope, CycleOutcome, CycleSummary};
use super::error::ConductorError;
use super::lease::{BACKUP_LEASE, LeaseHeld};
use super::node::Conductor;
use super::retention::plan::{RetentionDecision, RetentionReason};
use super::retention::run::RetentionSummary;
use super::rpcapi::{
    self, ApiError, BackupNowArgs, BackupTriggered, CONDUCTOR_ERROR, ConductorApi, CycleInfo, INVALID_PARAMETER,
    ListTasksArgs, NoArgs, Pong, ReportFailure, ReportNowArgs, ReportSent, RetentionDecisionInfo, RetentionNowArgs,
    RetentionPreview, RetentionRan, RetentionReasonInfo, RetentionSummaryInfo, Status, TaskInfo,
};
use crate::db::{leases, tasks};
use crate::notify::Mailer;
use crate::objects::{ProjectId, ServerId, TaskState};
use crate::rpc::{Call, Endpoint, MethodTable, RpcError, RpcFailure, RpcServer, Target, Transport};

/// Context key set on a request passed to the leader, so that it is passed
/// on at most once.
pub const FORWARDED_BY: &str = "staffeln_forwarded_by";

/// `backup_now` results remembered by request id.
const RECENT_TRIGGERS: usize = 64;

/// The conductor as its RPC methods see it.
pub struct Manager {
    conductor: Conductor,
    /// `[DEFAULT] host`: this conductor's server name on the topic.
    host: String,
    /// The topic, to pass `backup_now` to the leader.
    peers: ConductorApi,
    /// Wakes the work loop after a cycle was planned.
    wake: Arc<Notify>,
    /// Sends `report_now`'s digests.
    mailer: Arc<Mailer>,
    /// Serialises `backup_now` and remembers recent results by request id.
    triggers: Mutex<VecDeque<(String, BackupTriggered)>>,
    /// How long the lease holder may take to answer a `ping`.
    probe: StdDuration,
}

/// How long `backup_now` waits for the lease holder's `ping`: a sixth of
/// `rpc_response_timeout`, 1 to 10 s, so that the answer reaches a client
/// that waits `rpc_response_timeout` itself.
pub fn probe_timeout(rpc_response_timeout: StdDuration) -> StdDuration {
    (rpc_response_timeout / 6).clamp(StdDuration::from_secs(1), StdDuration::from_secs(10))
}

impl Manager {
    pub fn new(
        conductor: Conductor,
        host: &str,
        peers: ConductorApi,
        wake: Arc<Notify>,
        mailer: Arc<Mailer>,
        probe: StdDuration,
    ) -> Manager {
        Manager { conductor, host: host.to_owned(), peers, wake, mailer, triggers: Mutex::default(), probe }
    }

    async fn ping(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let NoArgs {} = call.args()?;
        reply(&Pong { host: self.host.clone(), holder: self.conductor.holder.clone(), version: rpcapi::VERSION.into() })
    }

    async fn get_status(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let NoArgs {} = call.args()?;
        let (lease, last, counts) = self
            .conductor
            .db_call(|conn| {
                Ok((
                    leases::get(conn, BACKUP_LEASE)?,
                    tasks::latest_cycle(conn, "backup")?,
                    tasks::counts_by_state(conn)?,
                ))
            })
            .await
            .map_err(|err| failed("get_status", &err))?;
        let now = Utc::now();
        let holder = &self.conductor.holder;
        let leader = lease.as_ref().is_some_and(|l| l.holder == *holder && l.expires_at.and_utc() > now);
        let next = self
            .conductor
            .settings
            .backup_schedule
            .next_due(last.as_ref().map(|c| c.started_at.and_utc()), self.conductor.started_at);
        let mut tasks: BTreeMap<String, i64> =
            TaskState::ALL.iter().filter(|s| **s != TaskState::Legacy).map(|s| (s.as_str().to_owned(), 0)).collect();
        for (state, n) in counts {
            *tasks.entry(state).or_default() += n;
        }
        reply(&Status {
            host: self.host.clone(),
            holder: holder.clone(),
            leader,
            lease_holder: lease.as_ref().map(|l| l.holder.clone()),
            lease_expires_at: lease.as_ref().map(|l| time(l.expires_at)),
            last_cycle: last.map(|c| CycleInfo {
                cycle_id: c.id,
                leader: c.leader,
                started_at: time(c.started_at),
                finished_at: c.finished_at.map(time),
                planned: i64::from(c.planned),
                summary: c.summary,
            }),
            next_cycle_at: next.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            tasks,
            version: rpcapi::VERSION.into(),
        })
    }

    async fn list_tasks(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: ListTasksArgs = call.args()?;
        let state = match args.status.as_deref() {
            None => None,
            Some(text) => Some(TaskState::parse(text).filter(|s| *s != TaskState::Legacy).ok_or_else(|| {
                let states: Vec<&str> =
                    TaskState::ALL.iter().filter(|s| **s != TaskState::Legacy).map(|s| s.as_str()).collect();
                invalid(format!("status {text:?} is not one of {}", states.join(", ")))
            })?),
        };
        let limit = args.limit.unwrap_or(rpcapi::DEFAULT_LIST_LIMIT);
        if !(1..=rpcapi::MAX_LIST_LIMIT).contains(&limit) {
            return Err(invalid(format!("limit {limit} is not between 1 and {}", rpcapi::MAX_LIST_LIMIT)));
        }
        let project = non_empty("project_id", args.project_id)?;
        let rows = self
            .conductor
            .db_call(move |conn| tasks::list(conn, state, project.as_deref(), i64::from(limit)))
            .await
            .map_err(|err| failed("list_tasks", &err))?;
        reply(&rows.iter().map(task_info).collect::<Vec<_>>())
    }

    async fn backup_now(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: BackupNowArgs = call.args()?;
        let scope = BackupScope {
            project_id: non_empty("project_id", args.project_id.clone())?.map(ProjectId),
            server_id: non_empty("server_id", args.server_id.clone())?.map(ServerId),
        };
        // A retry, or a fanout cast every conductor received: same request
        // id, same arguments.
        let request_id = call
            .context
            .get("request_id")
            .and_then(Value::as_str)
            .map(|id| format!("{id} project={:?} server={:?}", args.project_id, args.server_id));
        let mut recent = self.triggers.lock().await;
        if let Some(id) = &request_id
            && let Some((_, done)) = recent.iter().find(|(r, _)| r == id)
        {
            info!("backup_now was handled already ({id}); answering as then");
            return reply(done);
        }
        let result = match self.conductor.try_backup_cycle(true, &scope).await {
            Ok(CycleOutcome::Planned(summary)) => {
                self.conductor.clock.wake(&self.wake);
                planned(&self.conductor.holder, &summary, &scope)
            }
            Ok(CycleOutcome::Led(held)) => self.pass_to_leader(&call, &args, &held).await?,
            Ok(CycleOutcome::NotDue | CycleOutcome::LeaseLost) => not_planned(
                None,
                "another conductor took the backup-cycle lease while this one planned; try again".to_owned(),
            ),
            Err(err) => return Err(failed("backup_now", &err)),
        };
        if let Some(id) = request_id {
            if recent.len() == RECENT_TRIGGERS {
                recent.pop_front();
            }
            recent.push_back((id, result.clone()));
        }
        reply(&result)
    }

    /// Another conductor holds the lease: ask it, once, if it answers.
    async fn pass_to_leader(
        &self,
        call: &Call,
        args: &BackupNowArgs,
        held: &LeaseHeld,
    ) -> Result<BackupTriggered, RpcFailure> {
        let leader = held.holder.clone();
        let host = held.host();
        let now = self.conductor.clock.now();
        if call.context.contains_key(FORWARDED_BY) || host == self.host {
            return Ok(lease_held(
                held,
                now,
                format!("conductor {leader} leads backup cycles but did not take this request"),
            ));
        }
        let to_leader = self.peers.to_server(host);
        let probe = to_leader.clone().with_timeout(self.probe);
        if let Err(err) = probe.ping(&call.context).await {
            let text = crate::errors::chain(&err);
            warn!("backup_now: conductor {leader} holds the backup-cycle lease but does not answer: {text}");
            return Ok(lease_held(
                held,
                now,
                format!(
                    "conductor {leader} holds the backup-cycle lease but does not answer on {}.{host} (it may have \
                     stopped without giving the lease up)",
                    self.peers.target().topic
                ),
            ));
        }
        info!("backup_now: passing the request to conductor {leader}, which leads backup cycles");
        let mut ctx = call.context.clone();
        ctx.remove("client_timeout");
        ctx.insert(FORWARDED_BY.to_owned(), Value::from(self.conductor.holder.clone()));
        match to_leader.backup_now(&ctx, args.project_id.as_deref(), args.server_id.as_deref()).await {
            Ok(result) => Ok(result),
            Err(ApiError::Rpc(RpcError::Remote { exc_type, message, .. })) => {
                Err(RpcFailure::remote(&exc_type, message))
            }
            Err(err) => {
                let text = crate::errors::chain(&err);
                warn!("backup_now: conductor {leader} leads backup cycles and did not answer: {text}");
                Ok(lease_held(held, now, format!("conductor {leader} leads backup cycles and did not answer: {text}")))
            }
        }
    }

    async fn retention_now(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: RetentionNowArgs = call.args()?;
        retention(&self.conductor, &args).await
    }

    async fn report_now(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: ReportNowArgs = call.args()?;
        let project = non_empty("project_id", args.project_id)?.map(ProjectId);
        let summary = self
            .conductor
            .send_reports(&self.mailer, chrono::Duration::zero(), true, project.as_ref())
            .await
            .map_err(|err| failed("report_now", &err))?;
        reply(&ReportSent {
            delivered: summary.delivered,
            failed: summary.failed.into_iter().map(|(project_id, error)| ReportFailure { project_id, error }).collect(),
            held_back: summary.held_back,
        })
    }
}

/// Restores and drills (1.2), kept apart from the cycle methods.
impl Manager {
    async fn restore_backup(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: rpcapi::RestoreBackupArgs = call.args()?;
        let id = non_empty("backup_id", Some(args.backup_id))?.unwrap_or_default();
        let name = non_empty("name", args.name)?;
        let id = crate::objects::BackupId(id);
        match self.conductor.restore_backup(&id, name.as_deref()).await {
            Ok((r, project)) => reply(&rpcapi::RestoreStarted {
                backup_id: r.backup_id.0,
                volume_id: r.volume_id.0,
                volume_name: r.volume_name,
                project_id: project.0,
            }),
            Err(err @ ConductorError::NotStaffelns { .. }) => Err(invalid(err.to_string())),
            Err(err) => Err(failed("restore_backup", &err)),
        }
    }

    async fn list_restore_drills(self: Arc<Self>, call: Call) -> Result<Value, RpcFailure> {
        let args: rpcapi::ListDrillsArgs = call.args()?;
        let limit = args.limit.unwrap_or(rpcapi::DEFAULT_LIST_LIMIT);
        if !(1..=rpcapi::MAX_LIST_LIMIT).contains(&limit) {
            return Err(invalid(format!("limit {limit} is not between 1 and {}", rpcapi::MAX_LIST_LIMIT)));
        }
        let project = non_empty("project_id", args.project_id)?;
        let rows = self
            .conductor
            .db_call(move |c| crate::db::restore_drills::list(c, project.as_deref(), i64::from(limit)))
            .await
            .map_err(|err| failed("list_restore_drills", &err))?;
        let info = |d: crate::db::restore_drills::DrillRow| rpcapi::DrillInfo {
            backup_id: d.backup_id,
            volume_id: d.volume_id,
            project_id: d.project_id,
            scratch_volume_id: d.scratch_volume_id,
            result: d.result,
            message: d.message,
            duration_secs: d.duration_secs,
            conductor: d.conductor,
            started_at: time(d.started_at),
            finished_at: time(d.finished_at),
        };
        reply(&rows.into_iter().map(info).collect::<Vec<_>>())
    }
}

/// `retention_now`: the preview (`dry_run`, optionally of one project) or a
/// run now, on whichever conductor leads retention.
async fn retention(conductor: &Conductor, args: &RetentionNowArgs) -> Result<Value, RpcFailure> {
    let project = non_empty("project_id", args.project_id.clone())?.map(ProjectId);
    let settings = &conductor.settings.retention;
    if args.dry_run {
        let decisions = conductor
            .retention_preview(settings, project.as_ref())
            .await
            .map_err(|err| failed("retention_now", &err))?;
        return reply(&RetentionPreview { dry_run: true, decisions: decisions.iter().map(decision_info).collect() });
    }
    if project.is_some() {
        return Err(invalid("project_id is only supported with dry_run: retention runs over all projects".into()));
    }
    match conductor.run_retention(settings, true).await.map_err(|err| failed("retention_now", &err))? {
        Some(summary) => reply(&RetentionRan { ran: true, summary: Some(summary_info(&summary)), message: None }),
        None => reply(&RetentionRan {
            ran: false,
            summary: None,
            message: Some("another conductor leads retention and runs it on its schedule".into()),
        }),
    }
}

/// A decision as `retention_now` returns it.
fn decision_info(d: &RetentionDecision) -> RetentionDecisionInfo {
    RetentionDecisionInfo {
        backup_id: d.backup_id.0.clone(),
        backup_name: d.backup_name.clone(),
        volume_id: d.volume_id.0.clone(),
        project_id: d.project_id.0.clone(),
        created_at: d.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        status: d.status.to_string(),
        kind: d.kind.to_string(),
        action: d.action.to_string(),
        reason: reason_info(&d.reason),
        message: d.message.clone(),
        wave: d.wave,
        rules: d.rules.clone(),
    }
}

fn reason_info(reason: &RetentionReason) -> RetentionReasonInfo {
    use RetentionReason as R;
    use RetentionReasonInfo as W;
    match reason {
        R::NotStaffelns { missing_row, missing_metadata } => {
            W::NotStaffelns { missing_row: *missing_row, missing_metadata: *missing_metadata }
        }
        R::InProgress { status } => W::InProgress { status: status.clone() },
        R::UnknownStatus { status } => W::UnknownStatus { status: status.clone() },
        R::WithinRetention { age_secs, retention_secs } => {
            W::WithinRetention { age_secs: *age_secs, retention_secs: *retention_secs }
        }
        R::Archival { tiers } => {
            W::Archival { tiers: tiers.iter().map(|(tier, bucket)| (tier.to_string(), bucket.clone())).collect() }
        }
        R::LastSuccessful => W::LastSuccessful,
        R::ChainParent { child } => W::ChainParent { child: child.0.clone() },
        R::UnplacedDependents => W::UnplacedDependents,
        R::Expired { age_secs, retention_secs, volume_gone } => {
            W::Expired { age_secs: *age_secs, retention_secs: *retention_secs, volume_gone: *volume_gone }
        }
        R::ErrorState { status } => W::ErrorState { status: status.clone() },
    }
}

/// A run's summary as `retention_now` returns it.
fn summary_info(s: &RetentionSummary) -> RetentionSummaryInfo {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    RetentionSummaryInfo {
        run_id: s.run_id.clone(),
        volumes: n(s.volumes),
        kept: n(s.kept),
        skipped: n(s.skipped),
        to_delete: n(s.to_delete),
        deleted: n(s.deleted),
        deferred: n(s.deferred),
        failed: n(s.failed),
        rows_removed: n(s.rows_removed),
        warnings: s.warnings.clone(),
    }
}

/// The endpoint of API version [`rpcapi::VERSION`].
pub fn endpoint(manager: Arc<Manager>) -> MethodTable {
    MethodTable::new(rpcapi::VERSION)
        .method("ping", bind(&manager, Manager::ping))
        .method("get_status", bind(&manager, Manager::get_status))
        .method("list_tasks", bind(&manager, Manager::list_tasks))
        .method("backup_now", bind(&manager, Manager::backup_now))
        .method("retention_now", bind(&manager, Manager::retention_now))
        .method("report_now", bind(&manager, Manager::report_now))
        .method("restore_backup", bind(&manager, Manager::restore_backup))
        .method("list_restore_drills", bind(&manager, Manager::list_restore_drills))
}

fn bind<F, Fut>(manager: &Arc<Manager>, method: F) -> impl Fn(Call) -> Fut + Send + Sync + 'static
where
    F: Fn(Arc<Manager>, Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, RpcFailure>> + Send + 'static,
{
    let manager = manager.clone();
    move |call| method(manager.clone(), call)
}

/// The conductor's RPC server, started in the background: a broker that is
/// down when the conductor starts delays on-demand triggers, not backups.
pub struct RpcService {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    wake: Arc<Notify>,
    serving: watch::Receiver<bool>,
}

impl RpcService {
    /// Completes once the server consumes its queues (at once when there is
    /// no server), so that a request sent afterwards is not lost.
    pub async fn serving(&self) {
        if self.task.is_some() {
            let mut serving = self.serving.clone();
            let _ = serving.wait_for(|up| *up).await;
        }
    }

    /// Completes when an RPC request planned a cycle (never without a server).
    pub async fn wakeup(&self) {
        self.wake.notified().await;
    }

    /// What [`RpcService::wakeup`] waits on, for a loop that owns it.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops serving after answering the requests in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task
            && let Err(err) = task.await
        {
            warn!("the conductor RPC server task failed: {err}");
        }
    }
}

/// Starts serving topic `[conductor] topic` as server `[DEFAULT] host`, or
/// nothing without `[DEFAULT] transport_url` (see the module doc). The
/// settings were checked before the conductor started; a broker that cannot
/// be reached is retried in the background.
pub async fn start_rpc(conductor: &Conductor, mailer: Arc<Mailer>) -> Result<RpcService, ConductorError> {
    let wake = Arc::new(Notify::new());
    let (stop, mut stop_rx) = watch::channel(false);
    let settings = &conductor.settings;
    let topic = settings.topic.clone();
    let host = settings.host.clone();
    let Some(rpc) = &settings.rpc else {
        info!(
            "[DEFAULT] transport_url is unset: no RPC server, so on-demand triggers (staffeln backup trigger, \
             staffeln status, …) are off; backups follow the schedule"
        );
        return Ok(RpcService { stop, task: None, wake, serving: watch::channel(false).1 });
    };
    let transport = Transport::new(rpc)?;
    let peers = ConductorApi::new(&transport, &topic);
    let probe = probe_timeout(rpc.rpc_response_timeout);
    let manager = Arc::new(Manager::new(conductor.clone(), &host, peers, wake.clone(), mailer, probe));
    let endpoint: Arc<dyn Endpoint> = Arc::new(endpoint(manager));
    let target = Target::new(&topic).with_server(&host);
    let (up, serving) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut attempt = 0;
        let server = loop {
            match RpcServer::start(&transport, target.clone(), vec![endpoint.clone()]).await {
                Ok(server) => {
                    let _ = up.send(true);
                    break Some(server);
                }
                Err(err) => {
                    let delay = transport.settings().rabbit.retry_delay(attempt);
                    attempt = attempt.saturating_add(1);
                    warn!(
                        "cannot serve RPC topic {topic} yet (retrying in {} s): {}",
                        delay.as_secs(),
                        crate::errors::chain(&err)
                    );
                    tokio::select! {
                        _ = stop_rx.wait_for(|stop| *stop) => break None,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        if let Some(server) = server {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            server.stop().await;
        }
        transport.close().await;
    });
    Ok(RpcService { stop, task: Some(task), wake, serving })
}

#[allow(clippy::result_large_err)] // the failure goes on the wire as is
fn reply<T: Serialize>(value: &T) -> Result<Value, RpcFailure> {
    serde_json::to_value(value)
        .map_err(|err| RpcFailure::remote(CONDUCTOR_ERROR, format!("cannot encode the result: {err}")))
}

fn invalid(message: String) -> RpcFailure {
    RpcFailure::remote(INVALID_PARAMETER, message)
}

/// The conductor failed: logged here, once, and sent to the caller.
fn failed(method: &str, err: &ConductorError) -> RpcFailure {
    let text = crate::errors::chain(err);
    warn!(rpc.method = method, "{method} failed: {text}");
    RpcFailure::remote(CONDUCTOR_ERROR, text)
}

/// `None` stays `None`; an empty or blank id is refused.
#[allow(clippy::result_large_err)] // the failure goes on the wire as is
fn non_empty(name: &str, value: Option<String>) -> Result<Option<String>, RpcFailure> {
    match value {
        Some(v) if v.trim().is_empty() => Err(invalid(format!("{name} is empty"))),
        other => Ok(other),
    }
}

fn time(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn task_info(t: &tasks::TaskRow) -> TaskInfo {
    TaskInfo {
        task_id: t.task_id.clone(),
        cycle_id: t.cycle_id.clone(),
        state: t.state.clone(),
        project_id: t.project_id.clone(),
        instance_id: t.instance_id.clone(),
        instance_name: t.instance_name.clone(),
        volume_id: t.volume_id.clone(),
        volume_name: t.volume_name.clone(),
        backup_id: (!t.backup_id.is_empty()).then(|| t.backup_id.clone()),
        backup_name: t.backup_name.clone(),
        incremental: t.incremental,
        availability_zone: t.availability_zone.clone(),
        size_gb: t.size_gb,
        attempts: i64::from(t.attempts),
        claimed_by: t.claimed_by.clone(),
        reason: t.reason.clone(),
        note: t.note.clone(),
        created_at: time(t.created_at),
        started_at: t.started_at.map(time),
        finished_at: t.finished_at.map(time),
    }
}

fn planned(holder: &str, s: &CycleSummary, scope: &BackupScope) -> BackupTriggered {
    let mut message = format!(
        "backup cycle {} planned by {holder}: {} backups, {} skipped, {} waiting, {} failed",
        s.cycle_id, s.backups, s.skipped, s.waiting, s.failed
    );
    if s.backups + s.skipped + s.waiting + s.failed == 0 && *scope != BackupScope::default() {
        message.push_str("; no flagged server matched");
        if let Some(p) = &scope.project_id {
            message.push_str(&format!(" project {p}"));
        }
        if let Some(srv) = &scope.server_id {
            message.push_str(&format!(" server {srv}"));
        }
    }
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    BackupTriggered {
        planned: true,
        leader: Some(holder.to_owned()),
        cycle_id: Some(s.cycle_id.clone()),
        backups: n(s.backups),
        skipped: n(s.skipped),
        waiting: n(s.waiting),
        failed: n(s.failed),
        message,
        lease_holder: None,
        lease_expires_at: None,
        retry_after: None,
    }
}

fn not_planned(leader: Option<String>, message: String) -> BackupTriggered {
    BackupTriggered {
        planned: false,
        leader,
        cycle_id: None,
        backups: 0,
        skipped: 0,
        waiting: 0,
        failed: 0,
        message,
        lease_holder: None,
        lease_expires_at: None,
        retry_after: None,
    }
}

/// Nothing planned: `held` names the holder of the backup-cycle lease. The
/// message says when it expires and what to do.
fn lease_held(held: &LeaseHeld, now: DateTime<Utc>, why: String) -> BackupTriggered {
    let expires = held.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    // Whole seconds, rounded up: after that many the lease has expired.
    let left = (held.expires_at - now).num_milliseconds().max(0);
    let secs = u64::try_from((left + 999) / 1000).unwrap_or(0);
    let message = format!(
        "{why}; its lease expires at {expires}, in {secs} s: trigger again then, and whichever conductor takes \
         the lease plans the cycle (or restart staffeln-conductor on {})",
        held.host()
    );
    BackupTriggered {
        lease_holder: Some(held.holder.clone()),
        lease_expires_at: Some(expires),
        retry_after: Some(secs),
        ..not_planned(Some(held.holder.clone()), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire shape of a retention decision, field by field: what a
    /// Python client or `staffeln retention trigger --dry-run -f json` reads.
    #[test]
    fn a_retention_decision_goes_on_the_wire_in_its_documented_shape() {
        use crate::conductor::retention::plan::{RetentionAction, Tier};
        use crate::objects::{BackupId, BackupKind, BackupStatus, VolumeId};
        let decision = RetentionDecision {
            backup_id: BackupId("b1".into()),
            backup_name: Some("vol-a-2026".into()),
            volume_id: VolumeId("v1".into()),
            project_id: ProjectId("p1".into()),
            created_at: DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc),
            status: BackupStatus::Available,
            kind: BackupKind::Incremental,
            action: RetentionAction::Keep,
            reason: RetentionReason::Archival { tiers: vec![(Tier::Daily, "2026-11-25".into())] },
            message: "kept by archival tiers: daily 2026-11-25".into(),
            wave: None,
            rules: "retention_time 2w3d, archival_rules daily:7".into(),
        };
        let json = serde_json::to_value(decision_info(&decision)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "backup_id": "b1", "backup_name": "vol-a-2026", "volume_id": "v1", "project_id": "p1",
                "created_at": "2026-11-25T10:00:00Z", "status": "available", "kind": "incremental",
                "action": "keep", "reason": {"code": "archival", "tiers": [["daily", "2026-11-25"]]},
                "message": "kept by archival tiers: daily 2026-11-25", "wave": null,
                "rules": "retention_time 2w3d, archival_rules daily:7"
            })
        );
        let back: RetentionDecisionInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, decision_info(&decision), "a client reads back what the server sent");
        let gone = RetentionReason::Expired { age_secs: 90_000, retention_secs: 86_400, volume_gone: true };
        assert_eq!(
            serde_json::to_value(reason_info(&gone)).unwrap(),
            serde_json::json!({"code": "expired", "age_secs": 90_000, "retention_secs": 86_400, "volume_gone": true})
        );
        for reason in [RetentionReason::LastSuccessful, RetentionReason::UnplacedDependents, gone] {
            let code = serde_json::to_value(reason_info(&reason)).unwrap()["code"].clone();
            assert_eq!(code, reason.code(), "the wire code is the reason's code");
        }
    }

    #[test]
    fn a_scoped_trigger_that_matched_nothing_says_so() {
        let s = CycleSummary { cycle_id: "c1".into(), ..CycleSummary::default() };
        let all = planned("h:1", &s, &BackupScope::default());
        assert!(all.planned && !all.message.contains("matched"), "{}", all.message);
        let scope = BackupScope { project_id: Some(ProjectId("p9".into())), server_id: None };
        let scoped = planned("h:1", &s, &scope);
        assert!(scoped.message.ends_with("no flagged server matched project p9"), "{}", scoped.message);
    }

    #[test]
    fn a_held_lease_is_named_with_its_expiry_and_the_seconds_left() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().with_timezone(&Utc);
        let held = LeaseHeld { holder: "node-b:4242".into(), expires_at: now + chrono::Duration::milliseconds(87_300) };
        let t = lease_held(&held, now, "conductor node-b:4242 does not answer".into());
        assert!(!t.planned);
        assert_eq!(t.lease_holder.as_deref(), Some("node-b:4242"));
        assert_eq!(t.lease_expires_at.as_deref(), Some("2026-12-02T10:01:27Z"));
        assert_eq!(t.retry_after, Some(88), "rounded up");
        assert!(
            t.message.contains("in 88 s") && t.message.ends_with("restart staffeln-conductor on node-b)"),
            "{}",
            t.message
        );
        let gone = LeaseHeld { expires_at: now - chrono::Duration::seconds(5), ..held };
        assert_eq!(lease_held(&gone, now, String::new()).retry_after, Some(0));
    }

    #[test]
    fn the_holder_gets_a_sixth_of_the_rpc_timeout_to_answer() {
        assert_eq!(probe_timeout(StdDuration::from_secs(60)), StdDuration::from_secs(10));
        assert_eq!(probe_timeout(StdDuration::from_secs(20)), StdDuration::from_secs(20) / 6);
        assert_eq!(probe_timeout(StdDuration::from_secs(2)), StdDuration::from_secs(1));
        assert_eq!(probe_timeout(StdDuration::from_secs(600)), StdDuration::from_secs(10));
    }

    #[test]
    fn blank_ids_are_refused_and_absent_ones_kept() {
        assert_eq!(non_empty("project_id", None).ok(), Some(None));
        assert!(non_empty("project_id", Some(" ".into())).is_err());
    }
}

//! One trial: a fresh cloud, database and SMTP sink, three conductors, one
//! backup cycle with retention and digests, the trial's faults at seeded
//! times, then the checks. And the suite: trials by kind, figures per kind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use staffeln::conductor::checkpoint::Point;
use staffeln::db::{leases, reports, tasks};
use staffeln_fakecloud::{BackupOutcome, Fault, FaultEffect, Service};

use crate::check::{Evidence, Violations, check};
use crate::infra::Infra;
use crate::rig::{self, ChaosDb, Conductor, Smtp, journal};

/// How long one trial may take before what is left counts as stuck.
const TRIAL_LIMIT: Duration = Duration::from_secs(240);
/// `claim_timeout` of the trial's conductors (rig::conductor_conf).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

/// The fault a trial is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// kill -9 of one conductor (the lease holder half of the time) at a
    /// random moment, restarted after a random delay.
    Kill9,
    /// kill -9 of all three at once, restarted.
    KillAll,
    /// SIGSTOP of one conductor (often the holder) past claim_timeout, then SIGCONT.
    Stop,
    /// Every conductor aborts at a named point (as kill -9 there), restarted.
    Checkpoint,
    /// One conductor stops itself at a named point, resumed past claim_timeout.
    CheckpointStop,
    /// Cloud faults only (always mixed into the others half of the time).
    Cloud,
    /// KILL of the conductors' database sessions, repeatedly.
    DbKill,
    /// The SMTP server is down while digests go out.
    SmtpDown,
    /// The suite's own mariadbd restarted mid-cycle.
    DbRestart,
    /// The suite's own RabbitMQ node restarted mid-cycle.
    BrokerRestart,
    /// The conductors' AMQP connections closed by the suite's own RabbitMQ
    /// node (`rabbitmqctl close_all_connections`), the node staying up.
    AmqpClose,
    /// A due volume detached and deleted by its owner mid-cycle.
    VolumeDelete,
    /// Each conductor stops itself the first time it has claimed tasks,
    /// before any create; a volume it claimed is deleted meanwhile; it
    /// resumes within its claim and sends the create for the deleted volume.
    VolumeDeleteClaimed,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name.trim() {
            "kill9" => Kind::Kill9,
            "killall" => Kind::KillAll,
            "stop" => Kind::Stop,
            "checkpoint" => Kind::Checkpoint,
            "checkpoint-stop" => Kind::CheckpointStop,
            "cloud" => Kind::Cloud,
            "dbkill" => Kind::DbKill,
            "smtp" => Kind::SmtpDown,
            "dbrestart" => Kind::DbRestart,
            "brokerrestart" => Kind::BrokerRestart,
            "amqpclose" => Kind::AmqpClose,
            "voldelete" => Kind::VolumeDelete,
            "voldelete-claimed" => Kind::VolumeDeleteClaimed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill9 => "kill9",
            Kind::KillAll => "killall",
            Kind::Stop => "stop",
            Kind::Checkpoint => "checkpoint",
            Kind::CheckpointStop => "checkpoint-stop",
            Kind::Cloud => "cloud",
            Kind::DbKill => "dbkill",
            Kind::SmtpDown => "smtp",
            Kind::DbRestart => "dbrestart",
            Kind::BrokerRestart => "brokerrestart",
            Kind::AmqpClose => "amqpclose",
            Kind::VolumeDelete => "voldelete",
            Kind::VolumeDeleteClaimed => "voldelete-claimed",
        }
    }
}

/// Who a fault hits.
#[derive(Clone, Copy, Debug)]
enum Victim {
    Holder,
    One(usize),
}

#[derive(Clone, Debug)]
enum Action {
    Kill9(Victim),
    KillAll,
    Restart(usize),
    RestartAll,
    Stop(Victim),
    Cont(usize),
    ExpireTokens,
    ServerError(String),
    KillDbSessions,
    SmtpStop,
    SmtpStart,
    DbRestart,
    BrokerRestart,
    CloseAmqp,
    DeleteVolume(String),
}

/// What a trial did and found.
pub struct Outcome {
    pub kind: Kind,
    pub seed: u64,
    pub label: String,
    pub violations: Violations,
    pub seconds: f64,
}

/// Runs one trial of `kind` with `seed`; `keep` leaves its directory for
/// inspection (its path is printed).
pub fn run(kind: Kind, seed: u64, n: u32, infra: &mut Infra, keep: bool) -> Outcome {
    let begun = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::Builder::new().prefix("staffeln-chaos-").tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().to_owned();
    let jpath = dir.join("journal.txt");
    let (scenario, world) = rig::scenario();
    let cloud = rig::start_cloud(scenario, seed);
    let control = cloud.control();
    let db = ChaosDb::create(&infra.mysql_server_url(kind), n);
    rig::record_initial_rows(&db.db, &cloud);
    let initial: BTreeMap<_, _> = control.backups().into_iter().map(|b| (b.id.clone(), b)).collect();
    let mut smtp = Smtp::start(&dir.join("mails"), 0);
    let mut extra = BTreeMap::new();
    if let Some(url) = infra.transport_url(kind) {
        extra.insert("transport_url", url);
    }
    let conf = rig::conductor_conf(&cloud, &db.url, smtp.port, &dir, &extra);
    let mut conductors: Vec<Conductor> = (0..3).map(|i| Conductor::new(i, &dir, &conf)).collect();

    // The trial's plan: faults at seeded times (seconds from the start).
    let mut plan: Vec<(f64, Action)> = Vec::new();
    let mut armed: Vec<Option<String>> = vec![None, None, None];
    let mut label = kind.name().to_owned();
    let victim =
        |rng: &mut StdRng| if rng.random_bool(0.5) { Victim::Holder } else { Victim::One(rng.random_range(0..3)) };
    match kind {
        Kind::Kill9 => {
            for _ in 0..rng.random_range(1..=3) {
                let at = rng.random_range(0.5..12.0);
                plan.push((at, Action::Kill9(victim(&mut rng))));
            }
        }
        Kind::KillAll => {
            let at = rng.random_range(0.5..10.0);
            plan.push((at, Action::KillAll));
            plan.push((at + rng.random_range(0.0..4.0), Action::RestartAll));
        }
        Kind::Stop => {
            let at = rng.random_range(0.5..8.0);
            plan.push((at, Action::Stop(victim(&mut rng))));
        }
        Kind::Checkpoint => {
            let point = Point::ALL[usize::try_from(seed).unwrap_or(0) % Point::ALL.len()].name();
            label = format!("checkpoint {point}");
            armed = vec![Some(format!("{point}:abort")); 3];
        }
        Kind::CheckpointStop => {
            let point = Point::ALL[usize::try_from(seed).unwrap_or(0) % Point::ALL.len()].name();
            label = format!("checkpoint-stop {point}");
            armed[rng.random_range(0..3)] = Some(format!("{point}:stop"));
        }
        Kind::DbKill => {
            let mut at = rng.random_range(0.5..3.0);
            while at < 20.0 {
                plan.push((at, Action::KillDbSessions));
                at += rng.random_range(1.0..5.0);
            }
        }
        Kind::SmtpDown => {
            plan.push((0.0, Action::SmtpStop));
        }
        Kind::DbRestart => {
            plan.push((rng.random_range(1.0..8.0), Action::DbRestart));
        }
        Kind::BrokerRestart => {
            plan.push((rng.random_range(1.0..8.0), Action::BrokerRestart));
        }
        Kind::AmqpClose => {
            plan.push((rng.random_range(1.0..8.0), Action::CloseAmqp));
        }
        Kind::VolumeDeleteClaimed => {
            // Each conductor, the first time it has claimed tasks (the
            // leader often claims them all before the others poll).
            armed = vec![Some(format!("{}:stop", Point::Claiming.name())); 3];
        }
        Kind::VolumeDelete => {
            let due = &world.flagged_volumes;
            let name = due[rng.random_range(0..due.len())].clone();
            plan.push((rng.random_range(0.0..4.0), Action::DeleteVolume(name)));
        }
        Kind::Cloud => {}
    }
    let cloud_faults = kind == Kind::Cloud || rng.random_bool(0.5);
    if cloud_faults {
        label.push_str(" +cloud");
        let due: Vec<String> = world.flagged_volumes.clone();
        let pick = |rng: &mut StdRng| due[rng.random_range(0..due.len())].clone();
        let fault = |service, method: Option<&str>, path: Option<&str>, effect, p: f64| {
            let mut f = Fault::new(service, method, path, effect);
            f.probability = p;
            control.add_fault(f);
        };
        // The ambiguous create: Cinder makes the backup, the answer is lost.
        fault(Service::Volume, Some("POST"), Some("/backups"), FaultEffect::StatusAfterEffect { code: 500 }, 0.3);
        fault(Service::Volume, Some("GET"), None, FaultEffect::Status { code: 503 }, 0.1);
        fault(Service::Compute, Some("GET"), None, FaultEffect::RateLimit { retry_after: 1 }, 0.1);
        fault(Service::Volume, None, None, FaultEffect::Latency { millis: 300 }, 0.2);
        let failing = pick(&mut rng);
        if let Some(id) = control.volume_id(&failing) {
            control.set_create_outcome(Some(&id), BackupOutcome::Error { reason: "chaos: backend full".into() });
        }
        let sticky = pick(&mut rng);
        if let Some(id) = control.volume_id(&sticky) {
            control.set_delete_outcome(Some(&id), BackupOutcome::Stick);
        }
        plan.push((rng.random_range(0.0..10.0), Action::ExpireTokens));
        let server = world.flagged_servers[rng.random_range(0..world.flagged_servers.len())].clone();
        plan.push((rng.random_range(0.0..10.0), Action::ServerError(server)));
        journal(&jpath, &format!("cloud faults: create error on {failing}, deletes stuck on {sticky}"));
    }
    plan.sort_by(|a, b| a.0.total_cmp(&b.0));
    journal(&jpath, &format!("trial {label} seed {seed}: plan {plan:?}"));

    for (i, c) in conductors.iter_mut().enumerate() {
        c.start(armed[i].as_deref());
    }
    let start = Instant::now();
    let mut plan = std::collections::VecDeque::from(plan);
    // (when, action) queued by the harness itself: restarts, resumes.
    let mut later: Vec<(Instant, Action)> = Vec::new();
    let mut details = Vec::new();
    let mut stop_seen: BTreeSet<usize> = BTreeSet::new();
    let mut timed_out = false;
    // Volumes deleted during the trial.
    let mut gone: BTreeSet<String> = BTreeSet::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = Instant::now();
        let mut due: Vec<Action> = Vec::new();
        while plan.front().is_some_and(|(at, _)| start + Duration::from_secs_f64(*at) <= now) {
            if let Some((_, a)) = plan.pop_front() {
                due.push(a);
            }
        }
        later.retain(|(at, a)| {
            if *at <= now {
                due.push(a.clone());
                false
            } else {
                true
            }
        });
        for action in due {
            journal(&jpath, &format!("{action:?}"));
            let resolve = |v: Victim| match v {
                Victim::One(i) => i,
                Victim::Holder => holder_index(&db, &conductors).unwrap_or(0),
            };
            match action {
                Action::Kill9(v) => {
                    let i = resolve(v);
                    conductors[i].kill9();
                    later.push((now + Duration::from_secs_f64(rng.random_range(0.0..4.0)), Action::Restart(i)));
                }
                Action::KillAll => conductors.iter_mut().for_each(Conductor::kill9),
                Action::Restart(i) => conductors[i].start(None),
                Action::RestartAll => conductors.iter_mut().for_each(|c| c.start(None)),
                Action::Stop(v) => {
                    let i = resolve(v);
                    conductors[i].sigstop();
                    later.push((now + CLAIM_TIMEOUT + Duration::from_secs(3), Action::Cont(i)));
                }
                Action::Cont(i) => conductors[i].sigcont(),
                Action::ExpireTokens => control.expire_tokens(),
                Action::ServerError(name) => {
                    if let Some(id) = control.server_id(&name) {
                        control.set_server_state(&id, "ERROR", None);
                    }
                }
                Action::KillDbSessions => {
                    for id in db.sessions() {
                        let _ = db.admin_execute(&format!("KILL {id}"));
                    }
                }
                Action::SmtpStop => smtp.stop(),
                Action::SmtpStart => smtp.restart(),
                Action::DbRestart => infra.restart_mariadb(),
                Action::BrokerRestart => infra.restart_rabbit(),
                Action::CloseAmqp => {
                    let said = infra.close_rabbit_connections();
                    journal(&jpath, &format!("rabbitmqctl close_all_connections: {said}"));
                }
                Action::DeleteVolume(name) => {
                    let Some(id) = control.volume_id(&name) else { continue };
                    match control.delete_volume(&id) {
                        Ok(()) => {
                            gone.insert(id);
                        }
                        Err(refused) => {
                            // As its owner would: again a moment later.
                            journal(&jpath, &format!("delete of {name} refused: {refused}"));
                            later.push((now + Duration::from_millis(500), Action::DeleteVolume(name)));
                        }
                    }
                }
            }
        }
        for (i, c) in conductors.iter_mut().enumerate() {
            if let Some(status) = c.exited() {
                let text = std::fs::read_to_string(&c.stderr).unwrap_or_default();
                let by_checkpoint = armed[i].is_some() && text.contains("checkpoint ");
                journal(&jpath, &format!("conductor {i} exited: {status}"));
                if !by_checkpoint {
                    details.push(format!("conductor {i} exited on its own: {status}"));
                }
                armed[i] = None;
                later.push((now + Duration::from_secs_f64(rng.random_range(0.0..2.0)), Action::Restart(i)));
            }
            if matches!(kind, Kind::CheckpointStop | Kind::VolumeDeleteClaimed)
                && armed[i].is_some()
                && !stop_seen.contains(&i)
                && std::fs::read_to_string(&c.stderr).unwrap_or_default().contains("checkpoint ")
            {
                stop_seen.insert(i);
                c.stopped = true;
                journal(&jpath, &format!("conductor {i} stopped itself"));
                if kind == Kind::VolumeDeleteClaimed {
                    // Between its claim and its create: a volume it claimed
                    // goes away; it resumes while its claim still holds.
                    match claimed_volume(&db, &c.host) {
                        Some(id) => match control.delete_volume(&id) {
                            Ok(()) => {
                                journal(&jpath, &format!("deleted volume {id}, claimed by conductor {i}"));
                                gone.insert(id);
                            }
                            Err(refused) => {
                                details.push(format!("claimed volume {id} could not be deleted: {refused}"))
                            }
                        },
                        None => journal(&jpath, &format!("conductor {i} stopped with no claimed task")),
                    }
                    later.push((now + Duration::from_secs(1), Action::Cont(i)));
                } else {
                    later.push((now + CLAIM_TIMEOUT + Duration::from_secs(3), Action::Cont(i)));
                }
            }
        }
        if kind == Kind::SmtpDown
            && smtp_round_failed(&conductors)
            && !later.iter().any(|(_, a)| matches!(a, Action::SmtpStart))
            && !smtp.is_up()
        {
            later.push((now + Duration::from_secs(1), Action::SmtpStart));
        }
        if plan.is_empty() && later.is_empty() && finished(&db, kind, &conductors) {
            break;
        }
        if start.elapsed() > TRIAL_LIMIT {
            timed_out = true;
            details.push(format!("stuck: the trial did not finish within {TRIAL_LIMIT:?}"));
            break;
        }
    }
    for c in &mut conductors {
        if c.terminate(Duration::from_secs(60)).is_none() && c.running() {
            details.push(format!("conductor {} did not stop on SIGTERM", c.index));
        }
    }
    let mut conn = db.db.conn().unwrap_or_else(|e| panic!("the chaos database: {e}"));
    let all_tasks = tasks::list(&mut conn, None, None, 10_000).unwrap_or_default();
    let rows: BTreeSet<String> = staffeln::db::backups::all_ids(&mut conn).unwrap_or_default().into_iter().collect();
    let cycles = all_tasks.iter().map(|t| t.cycle_id.clone()).collect::<BTreeSet<_>>().len();
    let ids = |names: &[String]| -> BTreeMap<String, String> {
        names.iter().filter_map(|n| control.volume_id(n).map(|id| (n.clone(), id))).collect()
    };
    let project_ids: BTreeMap<String, String> =
        world.projects.iter().filter_map(|p| control.project_id(p).map(|id| (id, p.clone()))).collect();
    let reported: BTreeSet<String> = project_ids
        .iter()
        .filter(|(id, _)| {
            let mine: Vec<_> = all_tasks.iter().filter(|t| &&t.project_id == id).collect();
            !mine.is_empty() && mine.iter().all(|t| t.reported_at.is_some())
        })
        .map(|(_, name)| format!("{name}@example.org"))
        .collect();
    let digest_addresses: BTreeSet<String> = world.projects.iter().map(|p| format!("{p}@example.org")).collect();
    let mails = smtp.mails().into_iter().map(|m| (m.rcpt_tos, m.message_id)).collect();
    let logs: Vec<(String, String)> =
        conductors.iter().map(|c| (format!("conductor-{}", c.index), c.output())).collect();
    let evidence = Evidence {
        initial: &initial,
        live: control.backups(),
        deleted: control.deleted_backups(),
        due: ids(&world.flagged_volumes),
        never: ids(&world.unflagged_volumes),
        gone: gone.clone(),
        tasks: all_tasks,
        rows,
        cycles,
        mails,
        digest_addresses,
        reported,
        digests_may_be_pending: timed_out,
        logs,
        secrets: vec![rig::DB_PASSWORD.to_owned(), rig::KEYSTONE_PASSWORD.to_owned()],
    };
    let mut violations = check(&evidence);
    violations.stuck += u32::from(timed_out);
    violations.details.extend(details);
    let seconds = begun.elapsed().as_secs_f64();
    if keep || violations.total() > 0 {
        let kept = tmp.keep();
        violations.details.push(format!("files kept in {}", kept.display()));
    }
    drop(conductors);
    Outcome { kind, seed, label, violations, seconds }
}

/// The conductor holding the backup-cycle lease, else the report or retention one.
fn holder_index(db: &ChaosDb, conductors: &[Conductor]) -> Option<usize> {
    let mut conn = db.db.conn().ok()?;
    for name in [staffeln::conductor::BACKUP_LEASE, staffeln::conductor::RETENTION_LEASE] {
        if let Ok(Some(lease)) = leases::get(&mut conn, name)
            && lease.expires_at > staffeln::db::models::now()
            && let Some(c) = conductors.iter().find(|c| lease.holder.starts_with(&c.host))
        {
            return Some(c.index);
        }
    }
    None
}

fn smtp_round_failed(conductors: &[Conductor]) -> bool {
    conductors.iter().any(|c| {
        let text = std::fs::read_to_string(&c.log).unwrap_or_default();
        text.lines().any(|l| l.contains("digests: ") && !l.contains(", 0 failed"))
    })
}

/// The cycle is closed, no task is open, the digests went out (or failed
/// on purpose), and a retention run that started after the cycle closed
/// has finished.
/// A volume whose task conductor `host` has claimed and not yet sent.
fn claimed_volume(db: &ChaosDb, host: &str) -> Option<String> {
    let mut conn = db.db.conn().ok()?;
    let claimed = tasks::in_state(&mut conn, staffeln::objects::TaskState::Claimed).ok()?;
    let mine = format!("{host}:");
    claimed.into_iter().find(|t| t.claimed_by.as_deref().is_some_and(|by| by.starts_with(&mine))).map(|t| t.volume_id)
}

fn finished(db: &ChaosDb, kind: Kind, conductors: &[Conductor]) -> bool {
    let Ok(mut conn) = db.db.conn() else { return false };
    let Ok(Some(cycle)) = tasks::latest_cycle(&mut conn, "backup") else { return false };
    let Some(closed) = cycle.finished_at else { return false };
    if !tasks::open_cycles(&mut conn, "backup").is_ok_and(|o| o.is_empty()) {
        return false;
    }
    // With SMTP down, a round failed first and the retry
    // (`report_retry_interval`, 3 s here) delivered them once it was back.
    let digests_done = (kind != Kind::SmtpDown || smtp_round_failed(conductors))
        && reports::latest(&mut conn).is_ok_and(|r| r.is_some())
        && tasks::unreported(&mut conn).is_ok_and(|r| r.is_empty());
    if !digests_done {
        return false;
    }
    // After a broker restart or closed connections, every conductor's RPC server is back: its
    // last word on the broker is that it listens (again).
    if matches!(kind, Kind::BrokerRestart | Kind::AmqpClose)
        && !conductors.iter().all(|c| {
            let text = std::fs::read_to_string(&c.log).unwrap_or_default();
            let up = ["RPC server listening", "rpc-server consumer reconnected"];
            let down = ["lost its consumers", "cannot serve RPC topic", "consumer cannot reconnect"];
            let last = |words: &[&str]| words.iter().filter_map(|w| text.rfind(w)).max();
            last(&up) > last(&down)
        })
    {
        return false;
    }
    let Ok(Some(run)) = tasks::latest_finished_cycle(&mut conn, "retention") else { return false };
    run.started_at > closed + chrono::Duration::seconds(1) && run.finished_at.is_some()
}

/// The figures of a suite run, by kind.
#[derive(Default)]
pub struct Figures {
    pub by_kind: BTreeMap<Kind, (u32, Violations)>,
    pub failed: Vec<String>,
}

impl Figures {
    pub fn add(&mut self, o: &Outcome) {
        let entry = self.by_kind.entry(o.kind).or_default();
        entry.0 += 1;
        entry.1.add(&o.violations);
        if o.violations.total() > 0 || o.violations.details.iter().any(|d| d.starts_with("conductor ")) {
            self.failed.push(format!("{} (seed {}): {}", o.label, o.seed, o.violations.details.join("\n    ")));
        }
    }

    pub fn table(&self) -> String {
        let mut out = String::from(
            "| fault | trials | duplicates | lost | misrecorded | stuck | untracked | wrong deletes | dup digests | resent (same Message-ID) | missing digests | panics | secrets |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (kind, (n, v)) in &self.by_kind {
            out.push_str(&format!(
                "| {} | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                kind.name(),
                v.duplicates,
                v.lost,
                v.misrecorded,
                v.stuck,
                v.untracked,
                v.wrong_deletes,
                v.duplicate_digests,
                v.resent_digests,
                v.missing_digests,
                v.panics,
                v.secrets
            ));
        }
        out
    }
}

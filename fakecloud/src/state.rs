//! The emulated world behind one mutex: identities, servers, volumes,
//! backups, tokens, the clock, injected faults and call counters, with the
//! backup state machine that `tick` drives.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clock::Clock;
use super::scenario::{QuotaSpec, Scenario, ScenarioError};
use super::steering::{BackupDeletePolicy, BackupOutcome, Fault, PolicyChecks};

pub(crate) const DOMAIN_ID: &str = "default";
pub(crate) const DOMAIN_NAME: &str = "Default";

#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub quota: QuotaSpec,
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub password: String,
    pub email: Option<String>,
    pub default_project_id: Option<String>,
    /// Direct assignments: (project id, role name).
    pub roles: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub(crate) struct AppCred {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub user_id: String,
    pub project_id: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub status: String,
    pub task_state: Option<String>,
    pub locked: bool,
    pub metadata: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    pub availability_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Attachment {
    pub id: String,
    pub server_id: String,
    pub device: String,
    pub attached_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    /// Cinder's description (a restore's new volume has one).
    pub description: Option<String>,
    pub size: i64,
    pub status: String,
    pub previous_status: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: String,
    pub bootable: bool,
    /// Whether several servers may attach it (a multiattach volume type).
    pub multiattach: bool,
    /// One per server (only multiattach volumes have more than one).
    pub attachments: Vec<Attachment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a `deleting` volume is gone.
    pub delete_due: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    Create,
    Delete,
    Restore,
}

#[derive(Clone, Debug)]
pub(crate) struct Backup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub size: i64,
    pub object_count: i64,
    pub container: Option<String>,
    pub availability_zone: Option<String>,
    pub snapshot_id: Option<String>,
    pub parent_id: Option<String>,
    pub num_dependent_backups: i64,
    pub fail_reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub data_timestamp: DateTime<Utc>,
    pub pending: Option<(Pending, DateTime<Utc>)>,
    /// The volume a running restore writes to.
    pub restore_volume_id: Option<String>,
    /// The cinder-backup host that runs it (publisher `backup.<host>`).
    pub host: Option<String>,
    /// Waiting for one of its host's `backup_max_operations` slots: its
    /// time has not started yet.
    pub queued: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub user_id: String,
    pub project_id: Option<String>,
    /// Effective role names (implied roles included).
    pub roles: Vec<String>,
    pub methods: Vec<String>,
    pub app_cred_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub audit_id: String,
}

impl Token {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// Knobs of the emulator that are not part of the scenario.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub backup_duration: Duration,
    pub delete_duration: Duration,
    pub token_ttl: Duration,
    /// Cinder's `backup_max_operations`: backups one host runs at once;
    /// more wait for a slot. `None`: no limit.
    pub backup_max_operations: Option<usize>,
    /// The clock moves only when advanced.
    pub frozen_clock: bool,
    /// Backups take `backup_duration` give or take half of this.
    pub backup_spread: Duration,
}

pub(crate) struct World {
    pub region: String,
    pub service_user_id: String,
    pub projects: BTreeMap<String, Project>,
    pub users: HashMap<String, User>,
    pub app_creds: HashMap<String, AppCred>,
    pub servers: HashMap<String, Server>,
    pub volumes: HashMap<String, Volume>,
    pub backups: HashMap<String, Backup>,
    /// Backups deleted since the start, in the order they went.
    pub deleted: Vec<Backup>,
    pub tokens: HashMap<String, Token>,
    pub clock: Clock,
    pub timing: Timing,
    pub rng: StdRng,
    /// Backup outcomes per volume id; `None` is the default for all volumes.
    pub create_outcomes: HashMap<Option<String>, BackupOutcome>,
    pub delete_outcomes: HashMap<Option<String>, BackupOutcome>,
    /// Restore outcomes per backed-up volume id.
    pub restore_outcomes: HashMap<Option<String>, BackupOutcome>,
    pub faults: Vec<(u64, Fault)>,
    pub next_fault_id: u64,
    pub calls: BTreeMap<String, u64>,
    /// How Cinder enforces `backup:delete`; `None`: owners and admins delete.
    pub backup_delete_policy: Option<BackupDeletePolicy>,
    /// The `http:` checks of `backup:delete` made, by outcome.
    pub policy_checks: PolicyChecks,
    /// The cinder-backup services.
    pub backup_hosts: Vec<super::scenario::BackupHostSpec>,
    /// Publish Cinder's backup notifications (`notifier.rs`).
    pub notifications_on: bool,
    /// Notifications waiting for the publisher (inner messages).
    pub outbox: std::collections::VecDeque<serde_json::Value>,
    /// Woken when the outbox gets one.
    pub outbox_ready: std::sync::Arc<tokio::sync::Notify>,
    pub notification_counts: super::steering::NotificationCounts,
    /// Volumes whose next `backup.create.end` is dropped (a lost event).
    pub lose_create_end: std::collections::HashSet<String>,
}

/// Role ids are fixed so that tokens, assignments and tests agree.
pub(crate) fn role_id(name: &str) -> String {
    stable_id(&format!("role:{name}"))
}

/// A 32-hex id derived from `seed` (FNV-1a, 128 bits).
pub(crate) fn stable_id(seed: &str) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in seed.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    format!("{h:032x}")
}

/// Role names with the implied ones of Keystone's default bootstrap
/// (admin → member → reader).
pub(crate) fn implied_roles(direct: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in direct {
        let chain: &[&str] = match r.as_str() {
            "admin" => &["admin", "member", "reader"],
            "member" => &["member", "reader"],
            other => &[other],
        };
        for c in chain {
            if !out.iter().any(|o| o == c) {
                out.push((*c).to_owned());
            }
        }
    }
    out
}

fn is_hex_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl World {
    pub fn build(s: &Scenario, timing: Timing, seed: u64) -> Result<World, ScenarioError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let clock = if timing.frozen_clock { Clock::frozen() } else { Clock::default() };
        let now = clock.now();
        let err = |m: String| ScenarioError::Reference(m);
        let mut projects = BTreeMap::new();
        let mut project_names: HashMap<String, String> = HashMap::new();
        for p in &s.projects {
            let id = p.id.clone().unwrap_or_else(|| format!("{:032x}", rng.random::<u128>()));
            if !is_hex_id(&id) {
                return Err(err(format!("project {}: id {id:?} must be hex (Cinder URLs need it)", p.name)));
            }
            if project_names.insert(p.name.clone(), id.clone()).is_some() {
                return Err(err(format!("project {} is defined twice", p.name)));
            }
            let project = Project {
                id: id.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                enabled: p.enabled,
                quota: p.quota.clone(),
            };
            projects.insert(id, project);
        }
        let project = |r: &str, what: &str| -> Result<String, ScenarioError> {
            if projects.contains_key(r) {
                return Ok(r.to_owned());
            }
            project_names.get(r).cloned().ok_or_else(|| err(format!("{what}: unknown project {r:?}")))
        };
        let mut users = HashMap::new();
        let mut user_names = HashMap::new();
        for u in &s.users {
            let id = u.id.clone().unwrap_or_else(|| format!("{:032x}", rng.random::<u128>()));
            let mut roles = Vec::new();
            for (p, names) in &u.roles {
                let pid = project(p, &format!("user {}", u.name))?;
                roles.extend(names.iter().map(|r| (pid.clone(), r.clone())));
            }
            let default_project_id = match &u.default_project {
                Some(p) => Some(project(p, &format!("user {}", u.name))?),
                None => None,
            };
            user_names.insert(u.name.clone(), id.clone());
            users.insert(
                id.clone(),
                User {
                    id,
                    name: u.name.clone(),
                    password: u.password.clone(),
                    email: u.email.clone(),
                    default_project_id,
                    roles,
                },
            );
        }
        let user = |r: &str, what: &str| -> Result<String, ScenarioError> {
            if users.contains_key(r) {
                return Ok(r.to_owned());
            }
            user_names.get(r).cloned().ok_or_else(|| err(format!("{what}: unknown user {r:?}")))
        };
        let service_user_id = match &s.service_user {
            Some(u) => user(u, "service_user")?,
            None => s
                .users
                .iter()
                .find(|u| u.roles.values().flatten().any(|r| r == "admin"))
                .and_then(|u| user_names.get(&u.name).cloned())
                .ok_or_else(|| err("no user has the admin role; name a service_user".into()))?,
        };
        let mut app_creds = HashMap::new();
        for a in &s.application_credentials {
            let id = a.id.clone().unwrap_or_else(|| format!("{:032x}", rng.random::<u128>()));
            let what = format!("application credential {}", a.name);
            app_creds.insert(
                id.clone(),
                AppCred {
                    id,
                    name: a.name.clone(),
                    secret: a.secret.clone(),
                    user_id: user(&a.user, &what)?,
                    project_id: project(&a.project, &what)?,
                },
            );
        }
        // A project's first user with a role there creates its resources.
        let owner = |pid: &str| -> String {
            users
                .values()
                .filter(|u| u.roles.iter().any(|(p, _)| p == pid))
                .map(|u| u.id.clone())
                .min()
                .unwrap_or_else(|| service_user_id.clone())
        };
        let uuid = |rng: &mut StdRng| uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string();
        let mut volumes = HashMap::new();
        let mut volume_names: HashMap<(String, String), String> = HashMap::new();
        for (i, v) in s.volumes.iter().enumerate() {
            let id = v.id.clone().unwrap_or_else(|| uuid(&mut rng));
            let what = format!("volume {}", v.name.as_deref().unwrap_or(&id));
            let pid = project(&v.project, &what)?;
            if let Some(n) = &v.name {
                volume_names.insert((pid.clone(), n.clone()), id.clone());
            }
            let created = v.created_at.unwrap_or(now - Duration::seconds(86_400 - i as i64));
            volumes.insert(
                id.clone(),
                Volume {
                    id,
                    user_id: owner(&pid),
                    project_id: pid,
                    name: v.name.clone(),
                    description: None,
                    size: v.size,
                    status: v.status.clone(),
                    previous_status: None,
                    metadata: v.metadata.clone(),
                    availability_zone: v.availability_zone.clone(),
                    bootable: v.bootable,
                    multiattach: v.multiattach,
                    attachments: Vec::new(),
                    created_at: created,
                    updated_at: created,
                    delete_due: None,
                },
            );
        }
        let mut servers = HashMap::new();
        for (i, sv) in s.servers.iter().enumerate() {
            let id = sv.id.clone().unwrap_or_else(|| uuid(&mut rng));
            let what = format!("server {}", sv.name);
            let pid = project(&sv.project, &what)?;
            let created = sv.created_at.unwrap_or(now - Duration::seconds(86_400 - i as i64));
            let mut attached = Vec::new();
            for (n, r) in sv.volumes.iter().enumerate() {
                let vid = if volumes.contains_key(r) {
                    r.clone()
                } else {
                    volume_names
                        .get(&(pid.clone(), r.clone()))
                        .cloned()
                        .ok_or_else(|| err(format!("{what}: unknown volume {r:?} in its project")))?
                };
                let Some(vol) = volumes.get_mut(&vid) else {
                    continue;
                };
                if !vol.attachments.is_empty() && !vol.multiattach {
                    return Err(err(format!(
                        "{what}: volume {r} is attached twice (only a multiattach volume can be)"
                    )));
                }
                vol.status = "in-use".into();
                vol.attachments.push(Attachment {
                    id: uuid(&mut rng),
                    server_id: id.clone(),
                    device: format!("/dev/vd{}", char::from(b'b' + (n % 24) as u8)),
                    attached_at: created,
                });
                attached.push(vid);
            }
            servers.insert(
                id.clone(),
                Server {
                    id,
                    user_id: owner(&pid),
                    project_id: pid,
                    name: sv.name.clone(),
                    status: sv.status.to_ascii_uppercase(),
                    task_state: sv.task_state.clone(),
                    locked: sv.locked,
                    metadata: sv.metadata.clone(),
                    volumes: attached,
                    availability_zone: sv.availability_zone.clone(),
                    created_at: created,
                    updated_at: created,
                },
            );
        }
        let mut backups: HashMap<String, Backup> = HashMap::new();
        let mut backup_names = HashMap::new();
        for (i, b) in s.backups.iter().enumerate() {
            let id = b.id.clone().unwrap_or_else(|| uuid(&mut rng));
            let what = format!("backup {}", b.name.as_deref().unwrap_or(&id));
            let vid = if volumes.contains_key(&b.volume) {
                b.volume.clone()
            } else {
                volumes
                    .values()
                    .find(|v| v.name.as_deref() == Some(&b.volume))
                    .map(|v| v.id.clone())
                    .ok_or_else(|| err(format!("{what}: unknown volume {:?}", b.volume)))?
            };
            let parent_id = match &b.parent {
                Some(p) if backups.contains_key(p) => Some(p.clone()),
                Some(p) => Some(
                    backup_names
                        .get(p)
                        .cloned()
                        .ok_or_else(|| err(format!("{what}: parent {p:?} must be listed before it")))?,
                ),
                None => None,
            };
            let Some(vol) = volumes.get(&vid) else {
                continue;
            };
            let created = b.created_at.unwrap_or(now - Duration::seconds(3600 - i as i64));
            let done = b.status == "available" || b.status == "error";
            let pending = match b.status.as_str() {
                "creating" => Some((Pending::Create, now)),
                "deleting" => Some((Pending::Delete, now)),
                "restoring" => Some((Pending::Restore, now)),
                _ => None,
            };
            if let Some(n) = &b.name {
                backup_names.insert(n.clone(), id.clone());
            }
            if let Some(p) = parent_id.as_ref().and_then(|p| backups.get_mut(p))
                && b.status == "available"
            {
                p.num_dependent_backups += 1;
            }
            backups.insert(
                id.clone(),
                Backup {
                    id,
                    project_id: vol.project_id.clone(),
                    user_id: vol.user_id.clone(),
                    volume_id: vid.clone(),
                    name: b.name.clone(),
                    description: None,
                    status: b.status.clone(),
                    size: vol.size,
                    object_count: if done { vol.size * 4 } else { 0 },
                    container: done.then(|| "volumebackups".to_owned()),
                    availability_zone: done.then(|| "nova".to_owned()),
                    snapshot_id: None,
                    parent_id,
                    num_dependent_backups: 0,
                    fail_reason: (b.status == "error").then(|| "Injected by the scenario.".to_owned()),
                    metadata: b.metadata.clone(),
                    created_at: created,
                    updated_at: created,
                    data_timestamp: created,
                    pending,
                    restore_volume_id: None,
                    host: None,
                    queued: false,
                },
            );
        }
        Ok(World {
            region: s.region.clone(),
            service_user_id,
            projects,
            users,
            app_creds,
            servers,
            volumes,
            backups,
            deleted: Vec::new(),
            tokens: HashMap::new(),
            clock,
            timing,
            rng,
            create_outcomes: HashMap::new(),
            delete_outcomes: HashMap::new(),
            restore_outcomes: HashMap::new(),
            faults: Vec::new(),
            next_fault_id: 1,
            calls: BTreeMap::new(),
            backup_delete_policy: None,
            policy_checks: PolicyChecks::default(),
            backup_hosts: if s.backup_hosts.is_empty() {
                vec![super::scenario::BackupHostSpec::new("backup-1", "nova")]
            } else {
                s.backup_hosts.clone()
            },
            notifications_on: false,
            outbox: std::collections::VecDeque::new(),
            outbox_ready: std::sync::Arc::default(),
            notification_counts: super::steering::NotificationCounts::default(),
            lose_create_end: std::collections::HashSet::new(),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn new_uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid().to_string()
    }

    /// A project by id, or by name in the one domain.
    pub fn project_ref(&self, r: &str) -> Option<&Project> {
        self.projects.get(r).or_else(|| self.projects.values().find(|p| p.name == r))
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.values().find(|u| u.name == name)
    }

    /// Direct role names of `user_id` on `project_id`.
    pub fn direct_roles(&self, user_id: &str, project_id: &str) -> Vec<String> {
        self.users
            .get(user_id)
            .map(|u| u.roles.iter().filter(|(p, _)| p == project_id).map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    /// The live token `id`, if it has not expired on the emulated clock.
    pub fn token(&self, id: &str) -> Option<&Token> {
        let now = self.now();
        self.tokens.get(id).filter(|t| t.expires_at > now)
    }

    /// Backups (count, GiB) charged to `project_id`: every backup row until it is gone.
    pub fn backup_usage(&self, project_id: &str) -> (i64, i64) {
        self.backups.values().filter(|b| b.project_id == project_id).fold((0, 0), |(n, g), b| (n + 1, g + b.size))
    }

    pub fn volume_usage(&self, project_id: &str) -> (i64, i64) {
        self.volumes.values().filter(|v| v.project_id == project_id).fold((0, 0), |(n, g), v| (n + 1, g + v.size))
    }

    pub fn quota(&self, project_id: &str) -> QuotaSpec {
        self.projects.get(project_id).map(|p| p.quota.clone()).unwrap_or_default()
    }

    fn outcome(&self, create: bool, volume_id: &str) -> BackupOutcome {
        let table = if create { &self.create_outcomes } else { &self.delete_outcomes };
        table.get(&Some(volume_id.to_owned())).or_else(|| table.get(&None)).cloned().unwrap_or(BackupOutcome::Succeed)
    }

    fn restore_outcome(&self, volume_id: &str) -> BackupOutcome {
        let table = &self.restore_outcomes;
        table.get(&Some(volume_id.to_owned())).or_else(|| table.get(&None)).cloned().unwrap_or(BackupOutcome::Succeed)
    }

    /// Runs every pending backup transition that is due (all of them when
    /// `everything`); returns how many backups changed.
    pub fn tick(&mut self, everything: bool) -> usize {
        let now = self.now();
        let mut due: Vec<(DateTime<Utc>, String)> = self
            .backups
            .values()
            .filter(|b| !b.queued)
            .filter_map(|b| b.pending.filter(|(_, at)| everything || *at <= now).map(|(_, at)| (at, b.id.clone())))
            .collect();
        due.sort();
        let mut changed = 0;
        for (_, id) in due {
            if self.step(&id, now) {
                changed += 1;
            }
        }
        changed += self.start_queued(now);
        if everything && self.backups.values().any(|b| b.queued) {
            changed += self.tick(true);
        }
        let gone: Vec<String> = self
            .volumes
            .values()
            .filter(|v| v.delete_due.is_some_and(|at| everything || at <= now))
            .map(|v| v.id.clone())
            .collect();
        for id in gone {
            self.volumes.remove(&id);
            changed += 1;
        }
        changed
    }

    /// When a backup started at `now` is done: after `backup_duration`,
    /// give or take half of `backup_spread` (uniformly, from the seed).
    pub fn backup_due(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let spread = self.timing.backup_spread.num_milliseconds();
        let jitter = if spread > 0 { self.rng.random_range(0..=spread) - spread / 2 } else { 0 };
        now + self.timing.backup_duration + Duration::milliseconds(jitter)
    }

    /// When the next backup or volume transition is due (`None`: none is
    /// pending; queued backups start when a running one ends).
    pub fn next_transition(&self) -> Option<DateTime<Utc>> {
        let backups = self.backups.values().filter(|b| !b.queued).filter_map(|b| b.pending.map(|(_, at)| at));
        backups.chain(self.volumes.values().filter_map(|v| v.delete_due)).min()
    }

    /// Backups host `host` runs now (creating, not waiting for a slot).
    fn running_on(&self, host: &str) -> usize {
        self.backups.values().filter(|b| b.status == "creating" && !b.queued && b.host.as_deref() == Some(host)).count()
    }

    /// Places a new backup on a cinder-backup host of its zone that is up
    /// and enabled, the least busy one (Cinder picks one at random); it
    /// waits for a slot when that host runs `backup_max_operations` already.
    pub(crate) fn place_backup(&mut self, id: &str) {
        let Some(zone) = self.backups.get(id).map(|b| b.availability_zone.clone().unwrap_or_else(|| "nova".into()))
        else {
            return;
        };
        let usable = |h: &&super::scenario::BackupHostSpec| h.state == "up" && h.status == "enabled";
        let mut hosts: Vec<String> =
            self.backup_hosts.iter().filter(usable).filter(|h| h.zone == zone).map(|h| h.host.clone()).collect();
        if hosts.is_empty() {
            hosts = self.backup_hosts.iter().filter(usable).map(|h| h.host.clone()).collect();
        }
        let Some(host) = hosts.into_iter().min_by_key(|h| self.running_on(h)) else {
            return;
        };
        let full = self.timing.backup_max_operations.is_some_and(|max| self.running_on(&host) >= max);
        if let Some(b) = self.backups.get_mut(id) {
            b.host = Some(host);
            b.queued = full;
        }
    }

    /// Starts the waiting backups their hosts have a slot for (oldest
    /// first); how many started.
    fn start_queued(&mut self, now: DateTime<Utc>) -> usize {
        let Some(max) = self.timing.backup_max_operations else {
            return 0;
        };
        let mut waiting: Vec<(DateTime<Utc>, String, String)> = self
            .backups
            .values()
            .filter(|b| b.queued)
            .filter_map(|b| Some((b.created_at, b.id.clone(), b.host.clone()?)))
            .collect();
        waiting.sort();
        let mut started = 0;
        for (_, id, host) in waiting {
            if self.running_on(&host) >= max {
                continue;
            }
            let due = self.backup_due(now);
            if let Some(b) = self.backups.get_mut(&id) {
                b.queued = false;
                b.pending = Some((Pending::Create, due));
                started += 1;
            }
        }
        started
    }

    fn step(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        let Some(b) = self.backups.get(id) else {
            return false;
        };
        let Some((kind, _)) = b.pending else {
            return false;
        };
        let volume_id = b.volume_id.clone();
        let parent_id = b.parent_id.clone();
        match kind {
            Pending::Create => {
                let outcome = self.outcome(true, &volume_id);
                let failure = match outcome {
                    BackupOutcome::Stick => return false,
                    BackupOutcome::Succeed => None,
                    BackupOutcome::Error { reason } | BackupOutcome::ErrorDeleting { reason } => Some(reason),
                };
                let vol_size = self.volumes.get(&volume_id).map(|v| v.size);
                if let Some(v) = self.volumes.get_mut(&volume_id)
                    && v.status == "backing-up"
                {
                    v.status = v.previous_status.take().unwrap_or_else(|| "available".into());
                    v.previous_status = Some(if failure.is_some() { "error_backing-up" } else { "backing-up" }.into());
                    v.updated_at = now;
                }
                let Some(b) = self.backups.get_mut(id) else {
                    return false;
                };
                b.pending = None;
                b.updated_at = now;
                if let Some(reason) = failure {
                    b.status = "error".into();
                    b.fail_reason = Some(reason);
                    return true;
                }
                b.status = "available".into();
                if let Some(size) = vol_size {
                    b.size = size;
                }
                b.object_count = b.size.max(1) * 4;
                b.container.get_or_insert_with(|| "volumebackups".into());
                b.availability_zone.get_or_insert_with(|| "nova".into());
                if let Some(p) = parent_id.and_then(|p| self.backups.get_mut(&p)) {
                    p.num_dependent_backups += 1;
                }
                self.notify_progress(id);
                self.notify_backup("backup.create.end", id);
                true
            }
            Pending::Delete => match self.outcome(false, &volume_id) {
                BackupOutcome::Stick => false,
                BackupOutcome::Succeed => {
                    if let Some(mut gone) = self.backups.remove(id) {
                        gone.status = "deleted".into();
                        self.deleted.push(gone);
                    }
                    if let Some(p) = parent_id.and_then(|p| self.backups.get_mut(&p)) {
                        p.num_dependent_backups = (p.num_dependent_backups - 1).max(0);
                    }
                    self.notify_backup("backup.delete.end", id);
                    true
                }
                BackupOutcome::Error { reason } | BackupOutcome::ErrorDeleting { reason } => {
                    let deleting = matches!(self.outcome(false, &volume_id), BackupOutcome::ErrorDeleting { .. });
                    let Some(b) = self.backups.get_mut(id) else {
                        return false;
                    };
                    b.pending = None;
                    b.status = if deleting { "error_deleting" } else { "error" }.into();
                    b.fail_reason = Some(reason);
                    b.updated_at = now;
                    true
                }
            },
            Pending::Restore => {
                let failure = match self.restore_outcome(&volume_id) {
                    BackupOutcome::Stick => return false,
                    BackupOutcome::Succeed => None,
                    BackupOutcome::Error { reason } | BackupOutcome::ErrorDeleting { reason } => Some(reason),
                };
                let Some(b) = self.backups.get_mut(id) else {
                    return false;
                };
                b.pending = None;
                b.status = "available".into();
                b.updated_at = now;
                let target = b.restore_volume_id.take();
                if let Some(v) = target.and_then(|t| self.volumes.get_mut(&t))
                    && v.status == "restoring-backup"
                {
                    v.status = if failure.is_some() { "error_restoring" } else { "available" }.into();
                    v.updated_at = now;
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_member_and_reader() {
        assert_eq!(implied_roles(&["admin".into()]), ["admin", "member", "reader"]);
        assert_eq!(implied_roles(&["member".into(), "service".into()]), ["member", "reader", "service"]);
        assert_ne!(role_id("admin"), role_id("member"));
    }
}

//! The world a fake cloud starts with: projects, users, servers, volumes,
//! backups and quotas, loadable from JSON or generated for large fleets.
//!
//! References between entries (a server's project, a volume's server) may use
//! names or ids; [`super::state`] resolves them when the cloud starts and
//! reports the first one that does not resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Everything the emulator knows at start-up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Region of every catalog endpoint (default `RegionOne`).
    #[serde(default = "default_region")]
    pub region: String,
    /// User the embedding test or service authenticates as; it needs the
    /// `admin` role somewhere. Default: the first user with an `admin` role.
    #[serde(default)]
    pub service_user: Option<String>,
    #[serde(default)]
    pub projects: Vec<ProjectSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub application_credentials: Vec<AppCredentialSpec>,
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    #[serde(default)]
    pub backups: Vec<BackupSpec>,
    /// The cinder-backup services (`GET /os-services`); none: one,
    /// `backup-1` in zone `nova`, up.
    #[serde(default)]
    pub backup_hosts: Vec<BackupHostSpec>,
}

/// A cinder-backup service as `os-services` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupHostSpec {
    pub host: String,
    #[serde(default = "nova_az")]
    pub zone: String,
    /// `up` or `down` (the service stopped reporting).
    #[serde(default = "up")]
    pub state: String,
    /// `enabled` or `disabled` (by the operator).
    #[serde(default = "enabled")]
    pub status: String,
}

impl BackupHostSpec {
    pub fn new(host: &str, zone: &str) -> BackupHostSpec {
        BackupHostSpec { host: host.into(), zone: zone.into(), state: up(), status: enabled() }
    }
}

fn up() -> String {
    "up".into()
}

fn enabled() -> String {
    "enabled".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// 32 hex digits; generated when absent (Cinder URLs need hex ids).
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Cinder quota limits; absent keys take Cinder's defaults.
    #[serde(default)]
    pub quota: QuotaSpec,
}

/// Cinder quota limits (`-1` = unlimited).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSpec {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    pub backups: i64,
    pub backup_gigabytes: i64,
    pub groups: i64,
    pub per_volume_gigabytes: i64,
}

impl Default for QuotaSpec {
    fn default() -> Self {
        QuotaSpec {
            volumes: 10,
            snapshots: 10,
            gigabytes: 1000,
            backups: 10,
            backup_gigabytes: 1000,
            groups: 10,
            per_volume_gigabytes: -1,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Project (name or id) a token without scope is scoped to.
    #[serde(default)]
    pub default_project: Option<String>,
    /// Role names per project (name or id), e.g. `{"demo": ["member"]}`.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredentialSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub secret: String,
    /// Owner (name or id).
    pub user: String,
    /// Project (name or id) the credential's tokens are scoped to.
    pub project: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub project: String,
    pub name: String,
    /// Nova status: ACTIVE, SHUTOFF, PAUSED, SUSPENDED, BUILD, ERROR, SHELVED, ...
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Volumes (name or id, same project) attached to the server; they become `in-use`.
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default = "nova_az")]
    pub availability_zone: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub project: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "one")]
    pub size: i64,
    /// Cinder status; `in-use` is set for volumes a server lists.
    #[serde(default = "available")]
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default = "nova_az")]
    pub availability_zone: String,
    #[serde(default)]
    pub bootable: bool,
    /// A multiattach volume: several servers may list it.
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A backup that exists when the cloud starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    #[serde(default)]
    pub id: Option<String>,
    /// Volume (name or id); the backup belongs to the volume's project.
    pub volume: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "available")]
    pub status: String,
    /// Parent backup (name or id) for an incremental backup.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn default_region() -> String {
    "RegionOne".into()
}
fn yes() -> bool {
    true
}
fn one() -> i64 {
    1
}
fn active() -> String {
    "ACTIVE".into()
}
fn available() -> String {
    "available".into()
}
fn nova_az() -> String {
    "nova".into()
}

/// A scenario file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {} is not valid", .path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("scenario: {0}")]
    Reference(String),
}

impl Scenario {
    /// Reads a JSON scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Unreadable { path: path.to_owned(), source })?;
        serde_json::from_str(&text).map_err(|source| ScenarioError::Invalid { path: path.to_owned(), source })
    }

    /// A small cloud for tests: an `admin` project with the service user
    /// `staffeln` (admin), projects `demo` and `other` with member users
    /// `alice` and `bob`, two servers and five volumes.
    ///
    /// In `demo`: server `web` (ACTIVE) with `data-1` attached, server `db`
    /// (SHUTOFF, locked) with `data-2`, and `spare` (available, 20 GiB). In
    /// `other`: `other-vol` (available) and `tiny` (available, 1 GiB). Demo's
    /// backup quota is 5 backups / 100 GiB.
    pub fn small() -> Scenario {
        let json = serde_json::json!({
            "service_user": "staffeln",
            "projects": [
                {"name": "admin"},
                {"name": "demo", "quota": {"backups": 5, "backup_gigabytes": 100}},
                {"name": "other"}
            ],
            "users": [
                {"name": "staffeln", "password": "staffeln-secret", "email": "staffeln@example.org",
                 "default_project": "admin", "roles": {"admin": ["admin"]}},
                {"name": "alice", "password": "alice-secret", "email": "alice@example.org",
                 "roles": {"demo": ["member"]}},
                {"name": "bob", "password": "bob-secret", "roles": {"other": ["member"], "demo": ["reader"]}}
            ],
            "application_credentials": [
                {"name": "alice-cred", "secret": "alice-app-secret", "user": "alice", "project": "demo"}
            ],
            "servers": [
                {"project": "demo", "name": "web", "metadata": {"role": "frontend"}, "volumes": ["data-1"]},
                {"project": "demo", "name": "db", "status": "SHUTOFF", "locked": true, "volumes": ["data-2"]}
            ],
            "volumes": [
                {"project": "demo", "name": "data-1", "size": 10, "metadata": {"backup": "daily"}},
                {"project": "demo", "name": "data-2", "size": 30},
                {"project": "demo", "name": "spare", "size": 20, "metadata": {"backup": "weekly"}},
                {"project": "other", "name": "other-vol", "size": 5},
                {"project": "other", "name": "tiny", "size": 1}
            ]
        });
        serde_json::from_value(json).unwrap_or_default()
    }

    /// A large, reproducible fleet: an `admin` project with the service user
    /// `staffeln` (password `staffeln-secret`), then `projects` projects
    /// `project-NNNN`, each with a member user `user-NNNN` (password
    /// `password-NNNN`). Servers and volumes are spread round-robin over the
    /// projects; about two thirds of the volumes are attached to a server of
    /// their project.
    pub fn generate(projects: usize, servers: usize, volumes: usize, seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let hex_id = |rng: &mut StdRng| format!("{:032x}", rng.random::<u128>());
        let uuid = |rng: &mut StdRng| uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string();
        let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default(); // 2026-01-01
        let mut s = Scenario { region: default_region(), service_user: Some("staffeln".into()), ..Scenario::default() };
        s.projects.push(ProjectSpec {
            id: Some(hex_id(&mut rng)),
            name: "admin".into(),
            description: None,
            enabled: true,
            quota: QuotaSpec::default(),
        });
        s.users.push(UserSpec {
            id: Some(hex_id(&mut rng)),
            name: "staffeln".into(),
            password: "staffeln-secret".into(),
            email: Some("staffeln@example.org".into()),
            default_project: Some("admin".into()),
            roles: BTreeMap::from([("admin".into(), vec!["admin".into()])]),
        });
        let mut project_ids = Vec::with_capacity(projects);
        for p in 0..projects {
            let id = hex_id(&mut rng);
            project_ids.push(id.clone());
            s.projects.push(ProjectSpec {
                id: Some(id.clone()),
                name: format!("project-{p:04}"),
                description: None,
                enabled: true,
                quota: QuotaSpec { backups: 50, backup_gigabytes: 5000, ..QuotaSpec::default() },
            });
            s.users.push(UserSpec {
                id: Some(hex_id(&mut rng)),
                name: format!("user-{p:04}"),
                password: format!("password-{p:04}"),
                email: Some(format!("user-{p:04}@example.org")),
                default_project: Some(id.clone()),
                roles: BTreeMap::from([(id, vec!["member".into()])]),
            });
        }
        if projects == 0 {
            return s;
        }
        let mut servers_of: Vec<Vec<usize>> = vec![Vec::new(); projects];
        for i in 0..servers {
            let p = i % projects;
            servers_of[p].push(i);
            let status = match rng.random_range(0..20) {
                0 => "SHUTOFF",
                1 => "ERROR",
                _ => "ACTIVE",
            };
            let mut metadata = BTreeMap::new();
            if rng.random_bool(0.3) {
                metadata.insert("backup_policy".into(), "daily".into());
            }
            s.servers.push(ServerSpec {
                id: Some(uuid(&mut rng)),
                project: project_ids[p].clone(),
                name: format!("server-{i:05}"),
                status: status.into(),
                task_state: None,
                locked: false,
                metadata,
                volumes: Vec::new(),
                availability_zone: nova_az(),
                created_at: Some(start + chrono::Duration::seconds(i as i64)),
            });
        }
        for i in 0..volumes {
            let p = i % projects;
            let id = uuid(&mut rng);
            let mut metadata = BTreeMap::new();
            if rng.random_bool(0.1) {
                metadata.insert("staffeln_skip".into(), "true".into());
            }
            if !servers_of[p].is_empty() && rng.random_range(0..3) < 2 {
                let k = servers_of[p][rng.random_range(0..servers_of[p].len())];
                s.servers[k].volumes.push(id.clone());
            }
            s.volumes.push(VolumeSpec {
                id: Some(id),
                project: project_ids[p].clone(),
                name: Some(format!("volume-{i:05}")),
                size: rng.random_range(1..=100),
                status: available(),
                metadata,
                availability_zone: nova_az(),
                bootable: false,
                multiattach: false,
                created_at: Some(start + chrono::Duration::seconds(i as i64)),
            });
        }
        s
    }
}

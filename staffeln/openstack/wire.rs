//! The JSON shapes of Keystone v3, Nova v2.1 and Cinder v3 that Staffeln
//! reads and writes, and their conversion into `objects`. Private to the
//! room: nothing outside `openstack/` sees these names.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::{Catalog, CatalogService, Endpoint};
use super::settings::Secret;
use crate::objects::{
    Backup, BackupHost, BackupId, BackupQuota, BackupRecord, BackupStatus, Project, ProjectId, Quota, RoleAssignment,
    Server, ServerId, TokenInfo, User, UserId, Volume, VolumeId, VolumeStatus,
};

// ---------------------------------------------------------------- helpers

/// `null` (or a missing key with `#[serde(default)]`) as the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Metadata maps whose values are strings; other scalars are kept as text.
fn metadata_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// Cinder's `bootable` is the string "true"/"false"; accept a bool as well.
fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => crate::objects::metadata::is_true(&s),
        _ => false,
    })
}

/// Timestamps: Cinder sends naive UTC (`2023-06-23T11:56:02.509831`),
/// Nova and Keystone a `Z`; all are UTC.
pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s).ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s:?}")))
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    rel: String,
    #[serde(default)]
    href: String,
}

/// One page of a collection: its items and the `next` link, if any.
pub(super) struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// Keystone cut the list (`"truncated": true`) without saying where to
    /// go on (Keystone before 2025.1 with `list_limit`).
    pub truncated: bool,
}

/// Reads `{"<key>": [...], "<key>_links": [{"rel": "next", ...}]}` (Nova,
/// Cinder) or `{"<key>": [...], "links": {"next": ...}}` (Keystone).
///
/// The items are read straight into `T`, keeping only the fields `T` names:
/// a page of 1,000 Nova servers is megabytes of JSON, and a whole-document
/// tree of it (`serde_json::Value`) was the largest allocation a conductor
/// made, tens of MiB at 10,000 volumes.
pub(super) fn parse_page<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<Page<T>, serde_json::Error> {
    let links_key = format!("{key}_links");
    let raw = read_object(body, PageVisitor::<T> { key, links_key: &links_key, items: std::marker::PhantomData })?;
    let Some(items) = raw.items else {
        return Err(serde::de::Error::custom(format!("no {key:?} in the response")));
    };
    let next = match raw.links {
        Some(links) => links.into_iter().find(|l| l.rel == "next").map(|l| l.href),
        None => match raw.keystone_links {
            Some(Value::Object(links)) => links.get("next").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        },
    };
    let truncated = raw.truncated.as_ref().and_then(Value::as_bool).unwrap_or(false);
    Ok(Page { items, next: next.filter(|n| !n.is_empty()), truncated })
}

/// What [`parse_page`] takes from the top-level object; other keys are
/// skipped unread. The small ones (links, `truncated`) are kept as they
/// came, so that an unexpected shape there is ignored as before.
struct RawPage<T> {
    items: Option<Vec<T>>,
    links: Option<Vec<Link>>,
    keystone_links: Option<Value>,
    truncated: Option<Value>,
}

struct PageVisitor<'k, T> {
    key: &'k str,
    links_key: &'k str,
    items: std::marker::PhantomData<T>,
}

/// The whole of `body`, one JSON object, through `visitor` (nothing may follow it).
fn read_object<'de, V: serde::de::Visitor<'de>>(body: &'de [u8], visitor: V) -> serde_json::Result<V::Value> {
    let mut read = serde_json::Deserializer::from_slice(body);
    let value = serde::Deserializer::deserialize_map(&mut read, visitor)?;
    read.end()?;
    Ok(value)
}

impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for PageVisitor<'_, T> {
    type Value = RawPage<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an object with {:?}", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawPage<T>, A::Error> {
        let mut raw = RawPage { items: None, links: None, keystone_links: None, truncated: None };
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if name == self.key {
                raw.items = Some(map.next_value()?);
            } else if name == self.links_key {
                raw.links = Some(map.next_value()?);
            } else if name == "links" {
                raw.keystone_links = Some(map.next_value()?);
            } else if name == "truncated" {
                raw.truncated = Some(map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(raw)
    }
}

/// Reads `{"<key>": <T>}`, skipping the other keys unread.
pub(super) fn parse_one<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<T, serde_json::Error> {
    let found = read_object(body, OneVisitor::<T> { key, item: std::marker::PhantomData })?;
    found.ok_or_else(|| serde::de::Error::custom(format!("no {key:?} in the response")))
}

struct OneVisitor<'k, T> {
    key: &'k str,
    item: std::marker::PhantomData<T>,
}

impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for OneVisitor<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an object with {:?}", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if name == self.key {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

// ---------------------------------------------------------------- Keystone

/// How the user is named in an auth request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DomainRef {
    Id(String),
    Name(String),
}

/// The project scope of a password token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user_json(u: &UserRef) -> Value {
    match u {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

/// `POST /v3/auth/tokens` with the password method.
pub(super) fn password_auth_body(user: &UserRef, password: &Secret, scope: Option<&ProjectRef>) -> Value {
    let mut user = user_json(user);
    user["password"] = Value::String(password.expose().to_owned());
    let mut auth = json!({ "identity": { "methods": ["password"], "password": { "user": user } } });
    if let Some(scope) = scope {
        let project = match scope {
            ProjectRef::Id(id) => json!({ "id": id }),
            ProjectRef::Name { name, domain } => {
                json!({ "name": name, "domain": domain_json(domain) })
            }
        };
        auth["scope"] = json!({ "project": project });
    }
    json!({ "auth": auth })
}

/// `POST /v3/auth/tokens` with an application credential (never a scope).
pub(super) fn app_credential_auth_body(
    id: Option<&str>,
    name_and_user: Option<(&str, &UserRef)>,
    secret: &Secret,
) -> Value {
    let mut cred = json!({ "secret": secret.expose() });
    if let Some(id) = id {
        cred["id"] = json!(id);
    } else if let Some((name, user)) = name_and_user {
        cred["name"] = json!(name);
        cred["user"] = user_json(user);
    }
    json!({ "auth": { "identity": { "methods": ["application_credential"], "application_credential": cred } } })
}

#[derive(Deserialize)]
pub(super) struct TokenBody {
    #[serde(deserialize_with = "timestamp")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "opt_timestamp")]
    pub issued_at: Option<DateTime<Utc>>,
    pub project: Option<IdName>,
    pub user: IdName,
    #[serde(default, deserialize_with = "null_default")]
    pub catalog: Vec<CatalogEntryBody>,
}

fn opt_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(parse_time))
}

/// The `token` of a validation answer (`GET /v3/auth/tokens`); the catalog
/// is not read.
#[derive(Deserialize)]
pub(super) struct ValidatedTokenBody {
    #[serde(deserialize_with = "timestamp")]
    expires_at: DateTime<Utc>,
    project: Option<IdName>,
    user: IdName,
    #[serde(default, deserialize_with = "null_default")]
    roles: Vec<RoleNameBody>,
}

#[derive(Deserialize)]
struct RoleNameBody {
    name: String,
}

impl ValidatedTokenBody {
    pub(super) fn into_token_info(self) -> TokenInfo {
        TokenInfo {
            user_id: UserId(self.user.id),
            project_id: self.project.map(|p| ProjectId(p.id)),
            roles: self.roles.into_iter().map(|r| r.name).collect(),
            expires_at: self.expires_at,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct IdName {
    pub id: String,
}

#[derive(Deserialize)]
pub(super) struct CatalogEntryBody {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default, deserialize_with = "null_default")]
    endpoints: Vec<EndpointBody>,
}

#[derive(Deserialize)]
struct EndpointBody {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

pub(super) fn into_catalog(entries: Vec<CatalogEntryBody>) -> Catalog {
    Catalog {
        services: entries
            .into_iter()
            .map(|s| CatalogService {
                service_type: s.service_type,
                endpoints: s
                    .endpoints
                    .into_iter()
                    .map(|e| Endpoint { interface: e.interface, region: e.region_id.or(e.region), url: e.url })
                    .collect(),
            })
            .collect(),
    }
}

#[derive(Deserialize)]
pub(super) struct ProjectBody {
    id: String,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    domain_id: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

impl ProjectBody {
    pub(super) fn into_project(self) -> Project {
        Project { id: ProjectId(self.id), name: self.name, domain_id: self.domain_id, enabled: self.enabled }
    }
}

#[derive(Deserialize)]
pub(super) struct UserBody {
    id: String,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default)]
    email: Option<String>,
}

impl UserBody {
    pub(super) fn into_user(self) -> User {
        User { id: UserId(self.id), name: self.name, email: self.email.filter(|e| !e.trim().is_empty()) }
    }
}

#[derive(Deserialize)]
pub(super) struct RoleAssignmentBody {
    role: RoleRefBody,
    #[serde(default)]
    user: Option<IdOnly>,
    #[serde(default)]
    scope: Option<ScopeBody>,
}

#[derive(Deserialize)]
struct RoleRefBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct ScopeBody {
    #[serde(default)]
    project: Option<IdOnly>,
}

impl RoleAssignmentBody {
    /// Only user assignments on a project (effective lists never hold groups).
    pub(super) fn into_assignment(self) -> Option<RoleAssignment> {
        Some(RoleAssignment {
            user_id: UserId(self.user?.id),
            role_id: self.role.id,
            role_name: self.role.name,
            project_id: ProjectId(self.scope?.project?.id),
        })
    }
}

// ---------------------------------------------------------------- Nova

#[derive(Deserialize)]
pub(super) struct ServerBody {
    id: String,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    status: String,
    #[serde(default, deserialize_with = "null_default")]
    tenant_id: String,
    #[serde(default, deserialize_with = "metadata_map")]
    metadata: BTreeMap<String, String>,
    #[serde(default, rename = "os-extended-volumes:volumes_attached", deserialize_with = "null_default")]
    volumes_attached: Vec<IdOnly>,
}

impl ServerBody {
    pub(super) fn into_server(self, fallback_project: &ProjectId) -> Server {
        Server {
            id: ServerId(self.id),
            name: self.name,
            project_id: if self.tenant_id.is_empty() { fallback_project.clone() } else { ProjectId(self.tenant_id) },
            status: self.status,
            metadata: self.metadata,
            volume_ids: self.volumes_attached.into_iter().map(|v| VolumeId(v.id)).collect(),
        }
    }
}

/// `POST /servers/{id}/metadata`: merge these keys.
pub(super) fn server_metadata_body(key: &str, value: &str) -> Value {
    json!({ "metadata": { key: value } })
}

// ---------------------------------------------------------------- Cinder

#[derive(Deserialize)]
pub(super) struct VolumeBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
    status: String,
    #[serde(default, deserialize_with = "null_default")]
    size: u64,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    bootable: bool,
    #[serde(default, deserialize_with = "metadata_map")]
    metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    attachments: Vec<AttachmentBody>,
    #[serde(default, rename = "os-vol-tenant-attr:tenant_id")]
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct AttachmentBody {
    #[serde(default)]
    server_id: Option<String>,
}

impl VolumeBody {
    pub(super) fn into_volume(self, fallback_project: &ProjectId) -> Volume {
        let mut attachments: Vec<ServerId> = Vec::new();
        for server in self.attachments.into_iter().filter_map(|a| a.server_id).map(ServerId) {
            if !attachments.contains(&server) {
                attachments.push(server);
            }
        }
        Volume {
            id: VolumeId(self.id),
            name: self.name.filter(|n| !n.is_empty()),
            project_id: self
                .tenant_id
                .filter(|t| !t.is_empty())
                .map(ProjectId)
                .unwrap_or_else(|| fallback_project.clone()),
            status: VolumeStatus::parse(&self.status),
            size_gb: self.size,
            metadata: self.metadata,
            availability_zone: self.availability_zone.filter(|z| !z.is_empty()),
            attachments,
            bootable: self.bootable,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct BackupBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    volume_id: String,
    status: String,
    #[serde(default, deserialize_with = "null_default")]
    size: u64,
    #[serde(default, deserialize_with = "null_default")]
    is_incremental: bool,
    #[serde(default, deserialize_with = "null_default")]
    has_dependent_backups: bool,
    #[serde(deserialize_with = "timestamp")]
    created_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "metadata_map")]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    fail_reason: Option<String>,
    #[serde(default, rename = "os-backup-project-attr:project_id")]
    project_id: Option<String>,
}

impl BackupBody {
    pub(super) fn into_backup(self, fallback_project: &ProjectId) -> Backup {
        Backup {
            id: BackupId(self.id),
            name: self.name.filter(|n| !n.is_empty()),
            volume_id: VolumeId(self.volume_id),
            project_id: self
                .project_id
                .filter(|p| !p.is_empty())
                .map(ProjectId)
                .unwrap_or_else(|| fallback_project.clone()),
            status: BackupStatus::parse(&self.status),
            size_gb: self.size,
            is_incremental: self.is_incremental,
            has_dependent_backups: self.has_dependent_backups,
            created_at: self.created_at,
            metadata: self.metadata,
            availability_zone: self.availability_zone.filter(|z| !z.is_empty()),
            fail_reason: self.fail_reason.filter(|r| !r.is_empty()),
        }
    }
}

/// The body of `POST /backups` (names as Cinder spells them).
#[derive(Serialize)]
pub(super) struct BackupCreateBody<'a> {
    pub volume_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub force: bool,
    pub incremental: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<&'a str>,
}

/// The answer of `POST /backups/{id}/restore`.
#[derive(Deserialize)]
pub(super) struct RestoreBody {
    pub backup_id: String,
    pub volume_id: String,
    #[serde(default)]
    pub volume_name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CreatedBody {
    pub id: String,
}

#[derive(Deserialize)]
struct QuotaUsageBody {
    #[serde(default, deserialize_with = "null_default")]
    limit: i64,
    #[serde(default, deserialize_with = "null_default")]
    in_use: i64,
    #[serde(default, deserialize_with = "null_default")]
    reserved: i64,
}

#[derive(Deserialize)]
pub(super) struct QuotaSetBody {
    backups: QuotaUsageBody,
    backup_gigabytes: QuotaUsageBody,
}

impl QuotaSetBody {
    pub(super) fn into_quota(self, project: ProjectId) -> BackupQuota {
        let q = |u: QuotaUsageBody| Quota { limit: u.limit, in_use: u.in_use, reserved: u.reserved };
        BackupQuota { project_id: project, backups: q(self.backups), gigabytes: q(self.backup_gigabytes) }
    }
}

#[derive(Deserialize)]
pub(super) struct BackupRecordBody {
    #[serde(default, deserialize_with = "null_default")]
    backup_service: String,
    backup_url: String,
}

impl BackupRecordBody {
    pub(super) fn into_record(self) -> BackupRecord {
        BackupRecord { backup_service: self.backup_service, backup_url: self.backup_url }
    }
}

/// One entry of `GET /os-services`.
#[derive(Deserialize)]
pub(super) struct ServiceBody {
    #[serde(default, deserialize_with = "null_default")]
    binary: String,
    #[serde(default, deserialize_with = "null_default")]
    host: String,
    #[serde(default, deserialize_with = "null_default")]
    zone: String,
    #[serde(default, deserialize_with = "null_default")]
    state: String,
    #[serde(default, deserialize_with = "null_default")]
    status: String,
}

impl ServiceBody {
    /// The backup host, when this is a cinder-backup service.
    pub(super) fn into_backup_host(self) -> Option<BackupHost> {
        (self.binary == "cinder-backup").then(|| BackupHost {
            up: self.state == "up",
            enabled: self.status == "enabled",
            host: self.host,
            zone: self.zone,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cinder_volume_detail_into_volume() {
        let body = br#"{"volumes": [{
          "id": "cb49", "name": "data01", "description": null, "status": "in-use", "size": 10,
          "availability_zone": "nova", "bootable": "false", "metadata": {"backup_policy": "daily"},
          "attachments": [{"server_id": "6c8c", "attachment_id": "3daf", "volume_id": "cb49"}],
          "os-vol-tenant-attr:tenant_id": "89af"}, {
          "id": "v2", "name": "", "status": "reverting", "size": null, "bootable": "true",
          "attachments": [], "availability_zone": ""}],
          "volumes_links": [{"rel": "next", "href": "http://c:8776/v3/89af/volumes/detail?marker=v2"}]}"#;
        let page: Page<VolumeBody> = parse_page(body, "volumes").unwrap();
        assert_eq!(page.next.as_deref(), Some("http://c:8776/v3/89af/volumes/detail?marker=v2"));
        let fallback = ProjectId::from("mine");
        let vols: Vec<Volume> = page.items.into_iter().map(|v| v.into_volume(&fallback)).collect();
        assert_eq!(vols[0].project_id.as_str(), "89af");
        assert_eq!(vols[0].status, VolumeStatus::InUse);
        assert_eq!(vols[0].attachments, vec![ServerId::from("6c8c")]);
        assert!(!vols[0].bootable);
        assert_eq!(vols[0].metadata.get("backup_policy").map(String::as_str), Some("daily"));
        assert_eq!(vols[1].name, None);
        assert_eq!(vols[1].project_id.as_str(), "mine");
        assert_eq!(vols[1].status, VolumeStatus::Unknown("reverting".into()));
        assert_eq!(vols[1].size_gb, 0);
        assert!(vols[1].bootable);
        assert_eq!(vols[1].availability_zone, None);
    }

    #[test]
    fn cinder_backup_detail_into_backup() {
        let body = br#"{"backup": {
          "id": "3052", "name": "backup001", "status": "available", "size": 10, "object_count": 22,
          "availability_zone": "nova", "volume_id": "e763", "is_incremental": true,
          "has_dependent_backups": false, "fail_reason": null,
          "created_at": "2023-06-23T11:56:08.691468", "metadata": {"staffeln": "1"},
          "os-backup-project-attr:project_id": "89af"}}"#;
        let b = parse_one::<BackupBody>(body, "backup").unwrap().into_backup(&ProjectId::from("x"));
        assert_eq!(b.project_id.as_str(), "89af");
        assert_eq!(b.status, BackupStatus::Available);
        assert!(b.is_incremental);
        assert_eq!(b.created_at.to_rfc3339(), "2023-06-23T11:56:08.691468+00:00");
        assert_eq!(b.metadata.get("staffeln").map(String::as_str), Some("1"));
        assert_eq!(b.fail_reason, None);
        let bad = br#"{"backup": {"id": "1", "status": "creating", "created_at": "yesterday"}}"#;
        assert!(parse_one::<BackupBody>(bad, "backup").is_err());
    }

    #[test]
    fn nova_server_detail_into_server() {
        let body = br#"{"servers": [{"id": "f5dc", "name": "web", "status": "ACTIVE", "tenant_id": "6f70",
          "metadata": {"My Server Name": "Apache1"}, "image": "",
          "os-extended-volumes:volumes_attached": [{"id": "2b0e", "delete_on_termination": false}, {"id": "77aa"}]}]}"#;
        let page: Page<ServerBody> = parse_page(body, "servers").unwrap();
        assert_eq!(page.next, None);
        let s = page.items.into_iter().next().unwrap().into_server(&ProjectId::from("x"));
        assert_eq!(s.project_id.as_str(), "6f70");
        assert_eq!(s.volume_ids, vec![VolumeId::from("2b0e"), VolumeId::from("77aa")]);
        assert_eq!(s.metadata.len(), 1);
    }

    #[test]
    fn keystone_pages_and_assignments() {
        let body = br#"{"links": {"next": "http://ks/v3/projects?marker=b", "previous": null},
          "projects": [{"id": "a", "name": "admin", "domain_id": "default", "enabled": true}]}"#;
        let page: Page<ProjectBody> = parse_page(body, "projects").unwrap();
        assert_eq!(page.next.as_deref(), Some("http://ks/v3/projects?marker=b"));
        assert!(!page.truncated);
        let last = br#"{"links": {"next": null}, "projects": [], "truncated": true}"#;
        let last = parse_page::<ProjectBody>(last, "projects").unwrap();
        assert_eq!(last.next, None);
        assert!(last.truncated);

        let body = br#"{"role_assignments": [
          {"role": {"id": "r1", "name": "member"}, "scope": {"project": {"id": "p"}}, "user": {"id": "u1"}},
          {"role": {"id": "r1"}, "scope": {"domain": {"id": "d"}}, "user": {"id": "u2"}},
          {"role": {"id": "r1"}, "scope": {"project": {"id": "p"}}, "group": {"id": "g"}}],
          "links": {"next": null}}"#;
        let page: Page<RoleAssignmentBody> = parse_page(body, "role_assignments").unwrap();
        let got: Vec<RoleAssignment> = page.items.into_iter().filter_map(RoleAssignmentBody::into_assignment).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].role_name.as_deref(), Some("member"));
    }

    #[test]
    fn auth_bodies() {
        let user = UserRef::Name { name: "alice".into(), domain: DomainRef::Name("Default".into()) };
        let scope = ProjectRef::Name { name: "demo".into(), domain: DomainRef::Name("Default".into()) };
        let body = password_auth_body(&user, &Secret::new("pw"), Some(&scope));
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"name": "alice", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
        );
        let body = password_auth_body(&UserRef::Id("u".into()), &Secret::new("pw"), Some(&ProjectRef::Id("p".into())));
        assert_eq!(body["auth"]["scope"], json!({"project": {"id": "p"}}));
        let body = app_credential_auth_body(Some("ac"), None, &Secret::new("s"));
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": "ac", "secret": "s"}}}})
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn token_body_and_quota() {
        let body = br#"{"token": {"methods": ["password"], "user": {"id": "u", "name": "admin"},
          "expires_at": "2026-11-07T02:58:43.000000Z", "issued_at": "2026-11-07T01:58:43.000000Z",
          "project": {"id": "p", "name": "admin"}, "roles": [{"id": "r", "name": "admin"}],
          "catalog": [{"type": "compute", "name": "nova", "id": "x", "endpoints": [
            {"id": "e", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://n/v2.1"}]}]}}"#;
        let t: TokenBody = parse_one(body, "token").unwrap();
        assert_eq!(t.expires_at.to_rfc3339(), "2026-11-07T02:58:43+00:00");
        let catalog = into_catalog(t.catalog);
        assert_eq!(catalog.services[0].endpoints[0].region.as_deref(), Some("RegionOne"));
        let q = br#"{"quota_set": {"id": "p", "backups": {"in_use": 2, "limit": 10, "reserved": 0},
          "backup_gigabytes": {"in_use": 20, "limit": -1, "reserved": 1, "allocated": 0}}}"#;
        let quota = parse_one::<QuotaSetBody>(q, "quota_set").unwrap().into_quota(ProjectId::from("p"));
        assert_eq!(quota.backups, Quota { limit: 10, in_use: 2, reserved: 0 });
        assert!(quota.gigabytes.is_unlimited());
    }

    #[test]
    fn restore_answer_reads_cinders_sample() {
        let body = br#"{"restore": {"backup_id": "2ef47aee-8844-490c-804d-2a8efe561c65",
            "volume_id": "795114e8-7489-40be-a978-83797f2c1dd3", "volume_name": null}}"#;
        let r: RestoreBody = parse_one(body, "restore").unwrap();
        assert_eq!(r.backup_id, "2ef47aee-8844-490c-804d-2a8efe561c65");
        assert_eq!(r.volume_id, "795114e8-7489-40be-a978-83797f2c1dd3");
        assert_eq!(r.volume_name, None);
    }

    #[test]
    fn backup_create_body_leaves_out_what_is_not_given() {
        let body = BackupCreateBody {
            volume_id: "v",
            name: Some("n"),
            description: None,
            force: true,
            incremental: false,
            metadata: None,
            availability_zone: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"volume_id": "v", "name": "n", "force": true, "incremental": false})
        );
    }

    #[test]
    fn pages_skip_what_they_do_not_read_and_name_what_is_wrong() {
        // Other keys, before and after the items, of any shape; the links of
        // the collection win over Keystone-style links.
        let body = br#"{"extra": {"deep": [1, {"x": "y"}]}, "links": {"next": "http://k/ignored"},
            "servers": [{"id": "s1", "addresses": {"net": [{"addr": "10.0.0.1"}]}, "tenant_id": "p",
              "metadata": {"backup": "true"}, "os-extended-volumes:volumes_attached": [{"id": "v1"}]}],
            "servers_links": [{"rel": "self", "href": "a"}, {"rel": "next", "href": "http://n/servers?marker=s1"}],
            "truncated": "not a bool"}"#;
        let page: Page<ServerBody> = parse_page(body, "servers").unwrap();
        assert_eq!(page.next.as_deref(), Some("http://n/servers?marker=s1"));
        assert!(!page.truncated);
        let server = page.items.into_iter().next().unwrap().into_server(&ProjectId::from("x"));
        assert_eq!((server.id.as_str(), server.project_id.as_str()), ("s1", "p"));
        assert_eq!(server.volume_ids, vec![VolumeId::from("v1")]);
        // An empty next link is no next page.
        let empty: Page<IdOnly> =
            parse_page(br#"{"things": [], "things_links": [{"rel": "next", "href": ""}]}"#, "things").unwrap();
        assert!(empty.next.is_none() && empty.items.is_empty());

        let missing = parse_page::<IdOnly>(br#"{"volumes": []}"#, "servers").map(|p| p.items.len());
        assert!(
            missing.as_ref().is_err_and(|e| e.to_string().contains("no \"servers\" in the response")),
            "{missing:?}"
        );
        let not_object = parse_page::<IdOnly>(b"[1, 2]", "servers").map(|p| p.items.len());
        assert!(
            not_object.as_ref().is_err_and(|e| e.to_string().contains("an object with \"servers\"")),
            "{not_object:?}"
        );
        let trailing = parse_page::<IdOnly>(br#"{"servers": []} x"#, "servers").map(|p| p.items.len());
        assert!(trailing.as_ref().is_err_and(|e| e.to_string().contains("trailing")), "{trailing:?}");
        let bad_item = parse_page::<IdOnly>(br#"{"servers": [{"name": "no id"}]}"#, "servers").map(|p| p.items.len());
        assert!(bad_item.as_ref().is_err_and(|e| e.to_string().contains("missing field `id`")), "{bad_item:?}");
        let bad_links = parse_page::<IdOnly>(br#"{"servers": [], "servers_links": {"next": "x"}}"#, "servers");
        assert!(bad_links.is_err());

        let one: IdOnly = parse_one(br#"{"links": [], "volume": {"id": "v9", "huge": [[[]]]}}"#, "volume").unwrap();
        assert_eq!(one.id, "v9");
        assert!(
            parse_one::<IdOnly>(br#"{"backup": {"id": "b"}}"#, "volume")
                .is_err_and(|e| e.to_string().contains("no \"volume\""))
        );
    }
}

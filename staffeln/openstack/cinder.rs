//! Cinder v3 calls: volumes and backups across projects, backup create, show,
//! delete, force-delete, export, the backup quotas and the cinder-backup
//! services.
//!
//! Create a backup through the handle of the volume's project
//! (`os.for_project(&volume.project_id)?.create_backup(..)`): Cinder gives
//! the backup, and charges the quota to, the project of the token.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;

use super::catalog::{Microversion, ServiceType};
use super::client::{ItemStream, OpenStack, pair, seg};
use super::error::OpenStackError;
use super::wire::{
    self, BackupBody, BackupCreateBody, BackupRecordBody, CreatedBody, QuotaSetBody, RestoreBody, ServiceBody,
    VolumeBody,
};
use crate::objects::{
    Backup, BackupHost, BackupId, BackupKind, BackupQuota, BackupRecord, BackupStatus, ProjectId, Volume, VolumeId,
};

/// A backup to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRequest {
    pub volume_id: VolumeId,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Needed for volumes that are `in-use`.
    pub force: bool,
    pub kind: BackupKind,
    pub metadata: BTreeMap<String, String>,
    /// Needs Cinder microversion 3.51.
    pub availability_zone: Option<String>,
}

impl BackupRequest {
    /// A full backup of `volume` with no name, forced (works for `in-use`).
    pub fn new(volume_id: VolumeId) -> Self {
        BackupRequest {
            volume_id,
            name: None,
            description: None,
            force: true,
            kind: BackupKind::Full,
            metadata: BTreeMap::new(),
            availability_zone: None,
        }
    }
}

/// Filters of the all-projects backup listing (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupFilter {
    pub project_id: Option<ProjectId>,
    pub volume_id: Option<VolumeId>,
    pub status: Option<BackupStatus>,
    pub name: Option<String>,
}

/// What Cinder answered to a restore: the backup and the volume it writes
/// (new, or the one named), which stays `restoring-backup` until done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub backup_id: BackupId,
    pub volume_id: VolumeId,
    pub volume_name: Option<String>,
}

const AZ_MICROVERSION: Microversion = Microversion::new(3, 51);

impl OpenStack {
    /// Volumes of every project (admin): `GET /volumes/detail?all_tenants=True`,
    /// following `volumes_links`. With `project`, only that project's.
    pub fn volumes(&self, project: Option<&ProjectId>) -> ItemStream<Volume> {
        let mut query = vec![pair("all_tenants", "True")];
        if let Some(p) = project {
            query.push(pair("project_id", p.as_str()));
        }
        self.paginate(
            ServiceType::BlockStorage,
            "/volumes/detail".to_owned(),
            query,
            "volumes",
            |v: VolumeBody, own| Some(v.into_volume(own)),
        )
    }

    /// Backups of every project (admin), filtered:
    /// `GET /backups/detail?all_tenants=True&…`, following `backups_links`.
    pub fn backups(&self, filter: &BackupFilter) -> ItemStream<Backup> {
        let mut query = vec![pair("all_tenants", "True")];
        if let Some(p) = &filter.project_id {
            query.push(pair("project_id", p.as_str()));
        }
        if let Some(v) = &filter.volume_id {
            query.push(pair("volume_id", v.as_str()));
        }
        if let Some(s) = &filter.status {
            query.push(pair("status", s.as_str()));
        }
        if let Some(n) = &filter.name {
            query.push(pair("name", n.as_str()));
        }
        self.paginate(
            ServiceType::BlockStorage,
            "/backups/detail".to_owned(),
            query,
            "backups",
            |b: BackupBody, own| Some(b.into_backup(own)),
        )
    }

    /// Starts a backup in this handle's project: `POST /backups` (202). The
    /// backup is `creating` until Cinder finishes; poll [`OpenStack::backup`].
    /// Retried only when Cinder surely did not act (no connection, 429, 503).
    pub async fn create_backup(&self, request: &BackupRequest) -> Result<BackupId, OpenStackError> {
        self.create_backup_with(request, false).await
    }

    /// [`OpenStack::create_backup`] sent exactly once. After a failure the
    /// backup may exist all the same (a 5xx or a timeout after Cinder made
    /// it): callers that retry look for it first (by its metadata) and retry
    /// only when they still hold the work. [`OpenStack::retry_policy`] and
    /// [`OpenStackError::retry_outcome`] give the waits.
    pub async fn create_backup_once(&self, request: &BackupRequest) -> Result<BackupId, OpenStackError> {
        self.create_backup_with(request, true).await
    }

    async fn create_backup_with(&self, request: &BackupRequest, once: bool) -> Result<BackupId, OpenStackError> {
        if request.availability_zone.is_some() {
            let mv = self.microversion(ServiceType::BlockStorage).await?;
            if mv.is_some_and(|mv| mv < AZ_MICROVERSION) {
                return Err(OpenStackError::TooOld {
                    service: "block-storage (backup availability_zone)".to_owned(),
                    url: "POST /backups".to_owned(),
                    required: AZ_MICROVERSION.to_string(),
                    max: mv.map(|m| m.to_string()).unwrap_or_default(),
                });
            }
        }
        let body = json!({ "backup": BackupCreateBody {
            volume_id: request.volume_id.as_str(),
            name: request.name.as_deref(),
            description: request.description.as_deref(),
            force: request.force,
            incremental: request.kind == BackupKind::Incremental,
            metadata: (!request.metadata.is_empty()).then_some(&request.metadata),
            availability_zone: request.availability_zone.as_deref(),
        }});
        // Not idempotent: a second POST would make a second backup.
        let resp = if once {
            self.call_once(ServiceType::BlockStorage, Method::POST, "/backups", Some(&body)).await?
        } else {
            self.call(ServiceType::BlockStorage, Method::POST, "/backups", &[], Some(&body), false).await?
        };
        let created: CreatedBody = resp.decode(|b| wire::parse_one(b, "backup"))?;
        Ok(BackupId(created.id))
    }

    /// One backup: `GET /backups/{id}`.
    pub async fn backup(&self, id: &BackupId) -> Result<Backup, OpenStackError> {
        let path = format!("/backups/{}", seg(id.as_str()));
        let resp = self.call::<()>(ServiceType::BlockStorage, Method::GET, &path, &[], None, true).await?;
        Ok(resp.decode(|b| wire::parse_one::<BackupBody>(b, "backup"))?.into_backup(&self.project_id))
    }

    /// Starts deleting a backup (`available` or `error` only, no dependent
    /// incrementals): `DELETE /backups/{id}` (202).
    pub async fn delete_backup(&self, id: &BackupId) -> Result<(), OpenStackError> {
        let path = format!("/backups/{}", seg(id.as_str()));
        self.call::<()>(ServiceType::BlockStorage, Method::DELETE, &path, &[], None, true).await?;
        Ok(())
    }

    /// Deletes a backup whatever its status (admin; dependents still block):
    /// `POST /backups/{id}/action {"os-force_delete": {}}` (202).
    pub async fn force_delete_backup(&self, id: &BackupId) -> Result<(), OpenStackError> {
        let path = format!("/backups/{}/action", seg(id.as_str()));
        let body = json!({ "os-force_delete": {} });
        self.call(ServiceType::BlockStorage, Method::POST, &path, &[], Some(&body), true).await?;
        Ok(())
    }

    /// The record needed to import the backup elsewhere (admin, `available`
    /// backups only): `GET /backups/{id}/export_record`.
    pub async fn export_backup_record(&self, id: &BackupId) -> Result<BackupRecord, OpenStackError> {
        let path = format!("/backups/{}/export_record", seg(id.as_str()));
        let resp = self.call::<()>(ServiceType::BlockStorage, Method::GET, &path, &[], None, true).await?;
        Ok(resp.decode(|b| wire::parse_one::<BackupRecordBody>(b, "backup-record"))?.into_record())
    }

    /// The cinder-backup services (admin):
    /// `GET /os-services?binary=cinder-backup`. Entries of other binaries
    /// (a Cinder that ignores the filter) are left out.
    pub async fn backup_hosts(&self) -> Result<Vec<BackupHost>, OpenStackError> {
        let query = [pair("binary", "cinder-backup")];
        let resp = self.call::<()>(ServiceType::BlockStorage, Method::GET, "/os-services", &query, None, true).await?;
        let services: Vec<ServiceBody> = resp.decode(|b| wire::parse_one(b, "services"))?;
        Ok(services.into_iter().filter_map(ServiceBody::into_backup_host).collect())
    }

    /// One volume: `GET /volumes/{id}`.
    pub async fn volume(&self, id: &VolumeId) -> Result<Volume, OpenStackError> {
        let path = format!("/volumes/{}", seg(id.as_str()));
        let resp = self.call::<()>(ServiceType::BlockStorage, Method::GET, &path, &[], None, true).await?;
        Ok(resp.decode(|b| wire::parse_one::<VolumeBody>(b, "volume"))?.into_volume(&self.project_id))
    }

    /// Starts deleting a volume (`available`, `error`, `error_restoring`, …,
    /// not attached): `DELETE /volumes/{id}` (202). Gone when `GET` is 404.
    pub async fn delete_volume(&self, id: &VolumeId) -> Result<(), OpenStackError> {
        let path = format!("/volumes/{}", seg(id.as_str()));
        self.call::<()>(ServiceType::BlockStorage, Method::DELETE, &path, &[], None, true).await?;
        Ok(())
    }

    /// Restores a backup: `POST /backups/{id}/restore` (202). Without
    /// `volume`, Cinder makes a new volume of the backup's size in this
    /// handle's project (named `name`, or `restore_backup_{id}`), charged to
    /// its volume quota (413 when over). The backup is `restoring` and the
    /// volume `restoring-backup` until Cinder is done: poll
    /// [`OpenStack::volume`]. Sent once (a second POST would restore twice).
    pub async fn restore_backup(
        &self,
        id: &BackupId,
        volume: Option<&VolumeId>,
        name: Option<&str>,
    ) -> Result<Restore, OpenStackError> {
        let path = format!("/backups/{}/restore", seg(id.as_str()));
        let mut restore = serde_json::Map::new();
        if let Some(v) = volume {
            restore.insert("volume_id".to_owned(), json!(v.as_str()));
        }
        if let Some(n) = name {
            restore.insert("name".to_owned(), json!(n));
        }
        let body = json!({ "restore": restore });
        let resp = self.call_once(ServiceType::BlockStorage, Method::POST, &path, Some(&body)).await?;
        let r: RestoreBody = resp.decode(|b| wire::parse_one(b, "restore"))?;
        Ok(Restore { backup_id: BackupId(r.backup_id), volume_id: VolumeId(r.volume_id), volume_name: r.volume_name })
    }

    /// Backup count and gigabyte quotas of `project` with usage:
    /// `GET /os-quota-sets/{project}?usage=True`.
    pub async fn backup_quota(&self, project: &ProjectId) -> Result<BackupQuota, OpenStackError> {
        let path = format!("/os-quota-sets/{}", seg(project.as_str()));
        let query = [pair("usage", "True")];
        let resp = self.call::<()>(ServiceType::BlockStorage, Method::GET, &path, &query, None, true).await?;
        Ok(resp.decode(|b| wire::parse_one::<QuotaSetBody>(b, "quota_set"))?.into_quota(project.clone()))
    }
}

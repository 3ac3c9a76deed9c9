//! Nova v2.1 calls: servers across projects, server metadata.

use reqwest::Method;

use super::catalog::ServiceType;
use super::client::{ItemStream, OpenStack, pair, seg};
use super::error::OpenStackError;
use super::wire::{self, ServerBody};
use crate::objects::{ProjectId, Server, ServerId};

impl OpenStack {
    /// Servers of every project (admin): `GET /servers/detail?all_tenants=True`,
    /// following `servers_links`. With `project`, only that project's.
    pub fn servers(&self, project: Option<&ProjectId>) -> ItemStream<Server> {
        let mut query = vec![pair("all_tenants", "True")];
        if let Some(p) = project {
            query.push(pair("project_id", p.as_str()));
        }
        self.paginate(ServiceType::Compute, "/servers/detail".to_owned(), query, "servers", |s: ServerBody, own| {
            Some(s.into_server(own))
        })
    }

    /// Sets one metadata key of a server, keeping the others:
    /// `POST /servers/{id}/metadata` (a merge, so safe to repeat).
    pub async fn set_server_metadata(&self, server: &ServerId, key: &str, value: &str) -> Result<(), OpenStackError> {
        let path = format!("/servers/{}/metadata", seg(server.as_str()));
        let body = wire::server_metadata_body(key, value);
        self.call(ServiceType::Compute, Method::POST, &path, &[], Some(&body), true).await?;
        Ok(())
    }
}

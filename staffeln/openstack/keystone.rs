//! Keystone v3 calls: projects, role assignments, users. Authentication
//! itself is in `auth.rs`.
//!
//! These need an admin (or system/domain reader) token: use the configured
//! handle. Project listing follows `links.next` (Keystone 2025.1 and later
//! paginate; older ones return everything or truncate to `list_limit`, which
//! is logged).

use reqwest::Method;

use super::catalog::ServiceType;
use super::error::OpenStackError;
use super::wire::{self, ProjectBody, RoleAssignmentBody, UserBody};
use super::{ItemStream, OpenStack, pair, seg};
use crate::objects::{Project, ProjectId, RoleAssignment, User, UserId};

impl OpenStack {
    /// All projects (not domains), enabled or not: `GET /v3/projects`.
    pub fn projects(&self) -> ItemStream<Project> {
        self.paginate(ServiceType::Identity, "/projects".to_owned(), Vec::new(), "projects", |p: ProjectBody, _| {
            Some(p.into_project())
        })
    }

    /// Effective user role assignments on `project` (groups expanded, role
    /// names included): `GET /v3/role_assignments`.
    pub fn role_assignments(&self, project: &ProjectId) -> ItemStream<RoleAssignment> {
        let query =
            vec![pair("scope.project.id", project.as_str()), pair("effective", "True"), pair("include_names", "True")];
        self.paginate(
            ServiceType::Identity,
            "/role_assignments".to_owned(),
            query,
            "role_assignments",
            |a: RoleAssignmentBody, _| a.into_assignment(),
        )
    }

    /// One user, with `email` when Keystone has one: `GET /v3/users/{id}`.
    pub async fn user(&self, id: &UserId) -> Result<User, OpenStackError> {
        let path = format!("/users/{}", seg(id.as_str()));
        let resp = self.call::<()>(ServiceType::Identity, Method::GET, &path, &[], None, true).await?;
        Ok(resp.decode(|b| wire::parse_one::<UserBody>(b, "user"))?.into_user())
    }
}

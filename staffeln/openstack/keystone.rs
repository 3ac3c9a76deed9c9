//! Keystone v3 calls: projects, role assignments, users, token validation.
//! Authentication itself is in `auth.rs`.
//!
//! These need an admin (or system/domain reader) token: use the configured
//! handle. Project listing follows `links.next` (Keystone 2025.1 and later
//! paginate; older ones return everything or truncate to `list_limit`, which
//! is logged).

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use super::catalog::ServiceType;
use super::client::{ItemStream, OpenStack, pair, seg};
use super::error::OpenStackError;
use super::settings::Secret;
use super::wire::{self, ProjectBody, RoleAssignmentBody, UserBody, ValidatedTokenBody};
use crate::objects::{Project, ProjectId, RoleAssignment, TokenInfo, User, UserId};

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

    /// Validates a user's token (`GET /v3/auth/tokens?nocatalog` with
    /// `X-Subject-Token`, as keystonemiddleware does). `Ok(None)` when
    /// Keystone does not know it, or it expired or was revoked (Keystone's
    /// 404); a malformed token (not a valid header value) is `Ok(None)` too.
    /// Needs a service token allowed `identity:validate_token` (admin or
    /// service role).
    pub async fn validate_token(&self, subject: &Secret) -> Result<Option<TokenInfo>, OpenStackError> {
        let Ok(mut value) = HeaderValue::from_str(subject.expose()) else {
            return Ok(None);
        };
        value.set_sensitive(true);
        let headers = vec![(HeaderName::from_static("x-subject-token"), value)];
        let query = [pair("nocatalog", "")];
        let answer = self
            .call_with_headers::<()>(
                ServiceType::Identity,
                Method::GET,
                "/auth/tokens",
                &query,
                headers,
                None,
                super::client::Sending::retried(true),
            )
            .await;
        match answer {
            Ok(resp) => Ok(Some(resp.decode(|b| wire::parse_one::<ValidatedTokenBody>(b, "token"))?.into_token_info())),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }
}

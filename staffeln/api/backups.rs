//! `GET /v1/backups`: the automated backups of the project a Keystone token
//! is scoped to, newest first, filtered and paged.
//!
//! * **Who.** `X-Auth-Token` is validated with Keystone (`GET
//!   /v3/auth/tokens`, as keystonemiddleware does) and the answer cached for
//!   `[api] token_cache_time`. Without a valid token: 401. The listing is the
//!   token's project's; a token with the `admin` role may ask for every
//!   project with `all_projects=true`, anyone else gets 403 for asking.
//! * **What.** Rows of `backup_data`: the backups Staffeln made and still
//!   keeps. `status` is Staffeln's record, not a live Cinder status: the
//!   conductor records a backup once Cinder reported it `available`
//!   (`backup_completed = 1`), so those are `available`; rows the Python
//!   Staffeln wrote at creation time (`backup_completed = 0`) are `creating`.
//!   A backup deleted behind Staffeln's back stays listed until retention
//!   forgets it. `name` and `size` come from the task that made the backup
//!   (null for backups older than the task queue).
//! * **Filters** `id` (comma-separated backup UUIDs, at most `[api]
//!   max_limit` of them: "which of these did Staffeln make?" in one call),
//!   `volume_id`, `server_id`, `status`, `created_since` (at or
//!   after), `created_until` (before), all combined with `and`; unknown or
//!   repeated parameters are refused (400), so that a typo never widens a
//!   listing. **Paging**: `limit` (at most `[api] max_limit`, also the
//!   default) and `marker` (the last id of the previous page); `backups_links`
//!   holds a `next` link while more remain.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};
use tracing::{debug, error};

use super::app::App;
use super::error::{RequestError, json as json_response};
use super::query::{QueryError, parse_query};
use crate::db::backups::{self, ListFilter};
use crate::db::models::BackupRow;
use crate::db::tasks;
use crate::objects::TokenInfo;
use crate::openstack::Secret;
use crate::service::chain;

/// The project whose backups a token may list: `None` for all projects
/// (admins asking for them).
pub fn scope(token: &TokenInfo, all_projects: bool) -> Result<Option<String>, RequestError> {
    if all_projects {
        return if token.has_role("admin") {
            Ok(None)
        } else {
            Err(RequestError::Forbidden("all_projects=true needs the admin role"))
        };
    }
    match &token.project_id {
        Some(p) => Ok(Some(p.0.clone())),
        None => Err(RequestError::Forbidden("the token is not scoped to a project")),
    }
}

/// What `status` means for `backup_data` rows (see the module doc):
/// `Some(Some(completed))` to filter on, `Some(None)` when no row can match.
fn completed_filter(status: Option<&str>) -> Option<Option<bool>> {
    match status {
        None => None,
        Some("available") => Some(Some(true)),
        Some("creating") => Some(Some(false)),
        Some(_) => Some(None),
    }
}

fn status_of(row: &BackupRow) -> &'static str {
    if row.backup_completed != 0 { "available" } else { "creating" }
}

/// The token of the request, validated.
async fn authenticate(app: &App, headers: &HeaderMap) -> Result<TokenInfo, RequestError> {
    let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty()) else {
        return Err(RequestError::Unauthorized("X-Auth-Token is missing"));
    };
    if let Some(info) = app.tokens.get(token) {
        return Ok(info);
    }
    let os = app.cloud.client().await.map_err(|err| {
        error!("cannot validate a token: {}", chain(&err));
        RequestError::Unavailable("cannot validate the token: Keystone is not reachable".to_owned())
    })?;
    match os.validate_token(&Secret::new(token)).await {
        Ok(Some(info)) => {
            app.tokens.put(token, &info);
            Ok(info)
        }
        Ok(None) => Err(RequestError::Unauthorized("the token is invalid or expired")),
        Err(err) => {
            error!("cannot validate a token: {}", chain(&err));
            Err(RequestError::Unavailable("cannot validate the token: Keystone failed".to_owned()))
        }
    }
}

/// The rows of one page (one more than asked, to know whether more remain)
/// and the tasks that made them.
#[derive(Default)]
struct Page {
    rows: Vec<BackupRow>,
    tasks: Vec<tasks::TaskRow>,
}

enum PageError {
    Query(QueryError),
    Db(crate::db::DbError),
}

impl From<crate::db::DbError> for PageError {
    fn from(err: crate::db::DbError) -> PageError {
        PageError::Db(err)
    }
}

fn load_page(
    conn: &mut crate::db::AnyConnection,
    mut filter: ListFilter,
    marker: Option<&str>,
) -> Result<Page, PageError> {
    if let Some(marker) = marker {
        match backups::get(conn, marker)? {
            Some(row) if filter.project_id.as_ref().is_none_or(|p| *p == row.project_id) => {
                filter.before = Some((row.created_at, row.id));
            }
            _ => return Err(PageError::Query(QueryError::MarkerNotFound(marker.to_owned()))),
        }
    }
    let rows = backups::list(conn, &filter)?;
    let ids: Vec<String> = rows.iter().map(|r| r.backup_id.clone()).collect();
    let tasks = tasks::by_backup_ids(conn, &ids)?;
    Ok(Page { rows, tasks })
}

fn view(row: &BackupRow, tasks: &HashMap<&str, &tasks::TaskRow>) -> Value {
    let task = tasks.get(row.backup_id.as_str());
    json!({
        "id": row.backup_id,
        "name": task.map(|t| t.backup_name.as_str()).filter(|n| !n.is_empty()),
        "volume_id": row.volume_id,
        "server_id": Some(row.instance_id.as_str()).filter(|s| !s.is_empty()),
        "project_id": row.project_id,
        "status": status_of(row),
        "incremental": row.incremental,
        "size": task.map(|t| t.size_gb),
        "created_at": row.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

/// `href` of the next page: the same filters, the limit, the last id.
pub fn next_link(base: &str, filters: &[(String, String)], limit: u32, marker: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters {
        q.append_pair(k, v);
    }
    q.append_pair("limit", &limit.to_string());
    q.append_pair("marker", marker);
    format!("{base}/v1/backups?{}", q.finish())
}

/// The listing's handler; `base` is `scheme://host` as the client called it.
pub(crate) async fn list(
    app: &App,
    headers: &HeaderMap,
    query: Option<&str>,
    base: &str,
) -> Result<Response<Full<Bytes>>, RequestError> {
    let token = authenticate(app, headers).await?;
    let q = parse_query(query)?;
    let project = scope(&token, q.all_projects)?;
    let limit = q.limit.unwrap_or(app.settings.max_limit).min(app.settings.max_limit);
    if let Some(ids) = &q.ids
        && ids.len() > app.settings.max_limit as usize
    {
        return Err(QueryError::TooManyIds { given: ids.len(), max: app.settings.max_limit }.into());
    }
    let page = match completed_filter(q.status.as_deref()) {
        Some(None) => Page::default(),
        completed => {
            let filter = ListFilter {
                project_id: project.clone(),
                backup_ids: q.ids.clone(),
                volume_id: q.volume_id.clone(),
                instance_id: q.server_id.clone(),
                completed: completed.flatten(),
                created_since: q.created_since,
                created_until: q.created_until,
                before: None,
                limit: i64::from(limit) + 1,
            };
            let db = app.db.clone();
            let marker = q.marker.clone();
            let wait = app.db_wait();
            let loaded = tokio::task::spawn_blocking(move || {
                let mut conn = db.conn_timeout(wait)?;
                load_page(&mut conn, filter, marker.as_deref())
            })
            .await;
            match loaded {
                Ok(Ok(page)) => page,
                Ok(Err(PageError::Query(err))) => return Err(err.into()),
                Ok(Err(PageError::Db(err))) => {
                    error!("listing backups failed: {}", chain(&err));
                    return Err(RequestError::Unavailable("the database is not available".to_owned()));
                }
                Err(err) => {
                    error!("listing backups did not finish: {err}");
                    return Err(RequestError::Unavailable("the database is not available".to_owned()));
                }
            }
        }
    };
    let Page { mut rows, tasks } = page;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let by_backup: HashMap<&str, &tasks::TaskRow> = tasks.iter().map(|t| (t.backup_id.as_str(), t)).collect();
    let items: Vec<Value> = rows.iter().map(|r| view(r, &by_backup)).collect();
    let links: Vec<Value> = match rows.last() {
        Some(last) if more => {
            vec![json!({"rel": "next", "href": next_link(base, &q.filters, limit, &last.backup_id)})]
        }
        _ => Vec::new(),
    };
    debug!(
        project.id = project.as_deref().unwrap_or("*"),
        user.id = %token.user_id,
        "listed {} backups{}",
        items.len(),
        if more { ", more remain" } else { "" }
    );
    Ok(json_response(StatusCode::OK, &json!({ "backups": items, "backups_links": links })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::api::caches::TokenCache;
    use crate::api::query::ListQuery;
    use crate::objects::{ProjectId, UserId};

    const V: &str = "5c3f1b4a-8e2d-4f6a-9b1c-7d0e2f3a4b5c";

    #[test]
    fn queries_parse_and_keep_their_filters_for_the_next_link() {
        let q = parse_query(Some(&format!(
            "volume_id={V}&status=Available&created_since=2026-11-25T10:00:00%2B02:00&created_until=2026-11-26&limit=5"
        )))
        .unwrap();
        assert_eq!(q.volume_id.as_deref(), Some(V));
        assert_eq!(q.status.as_deref(), Some("available"));
        assert_eq!(q.created_since, Some(Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap().naive_utc()));
        assert_eq!(q.created_until, Some(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap().naive_utc()));
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.filters.len(), 4);
        let link = next_link("http://h:8808", &q.filters, 5, V);
        assert!(link.starts_with("http://h:8808/v1/backups?volume_id="), "{link}");
        assert!(link.ends_with(&format!("&limit=5&marker={V}")), "{link}");
        // A `+` the query turned into a space.
        assert!(parse_query(Some("created_since=2026-11-25T10:00:00+02:00")).is_ok());
        assert_eq!(parse_query(None).unwrap(), ListQuery::default());
        let q = parse_query(Some(&format!("id={V},%20{V}"))).unwrap();
        assert_eq!(q.ids, Some(vec![V.to_owned()]), "ids parse, trimmed and each once");
        assert_eq!(q.filters, vec![("id".to_owned(), format!("{V}, {V}"))], "and stay in the next link");
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let err = |q: &str| parse_query(Some(q)).unwrap_err().to_string();
        assert!(err("volume=x").contains("unknown query parameter \"volume\""));
        assert!(err("limit=1&limit=2").contains("limit is given more than once"));
        assert!(err("limit=0").contains("limit \"0\""));
        assert!(err("limit=-1").contains("positive integer"));
        assert!(err("status=gone").contains("expected one of creating, available"));
        assert!(err("created_since=yesterday").contains("ISO 8601"));
        assert!(err("marker=abc").contains("marker \"abc\""));
        assert!(err("id=abc").contains("id \"abc\""));
        assert!(err("id=").contains("separated by commas"));
        assert!(err("all_projects=maybe").contains("true or false"));
        assert!(err("server_id=%27%20OR%201=1").contains("server_id"));
    }

    fn token(project: Option<&str>, roles: &[&str]) -> TokenInfo {
        TokenInfo {
            user_id: UserId("u".into()),
            project_id: project.map(ProjectId::from),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[test]
    fn tokens_see_their_project_and_admins_may_see_all() {
        assert_eq!(scope(&token(Some("p1"), &["member"]), false).unwrap(), Some("p1".to_owned()));
        assert_eq!(scope(&token(Some("p1"), &["admin", "member"]), true).unwrap(), None);
        assert_eq!(scope(&token(Some("p1"), &["member"]), true).unwrap_err().status(), 403);
        assert_eq!(scope(&token(None, &[]), false).unwrap_err().status(), 403);
    }

    #[test]
    fn status_means_staffeln_s_record() {
        assert_eq!(completed_filter(None), None);
        assert_eq!(completed_filter(Some("available")), Some(Some(true)));
        assert_eq!(completed_filter(Some("creating")), Some(Some(false)));
        assert_eq!(completed_filter(Some("error")), Some(None));
    }

    #[test]
    fn the_token_cache_never_outlives_the_token() {
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let mut expired = token(Some("p"), &[]);
        expired.expires_at = Utc::now() - chrono::Duration::seconds(1);
        cache.put("old", &expired);
        assert!(cache.get("old").is_none());
        cache.put("new", &token(Some("p"), &[]));
        assert!(cache.get("new").is_some());
        assert!(TokenCache::new(Duration::ZERO, 10).get("new").is_none());
    }
}

//! The query of `GET /v1/backups`, read and checked: known parameters
//! once each, UUIDs, Cinder statuses, ISO 8601 times, booleans as OpenStack
//! reads them. Pure.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::request::parse_uuid;
use super::request::shown;
use crate::objects::metadata;

/// The statuses a backup can have in Cinder (the filter accepts these).
const CINDER_STATUSES: &[&str] = &["creating", "available", "deleting", "error", "error_deleting", "restoring"];

/// The query parameters of the listing.
const PARAMETERS: &[&str] =
    &["all_projects", "id", "volume_id", "server_id", "status", "created_since", "created_until", "limit", "marker"];

/// Why the query of a listing cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown query parameter {name}; known: {}", PARAMETERS.join(", "))]
    Unknown { name: String },
    #[error("query parameter {name} is given more than once")]
    Repeated { name: String },
    #[error("{name} {shown} is not valid: {reason}")]
    Invalid { name: &'static str, shown: String, reason: String },
    #[error("id lists {given} backups; at most {max} ([api] max_limit) in one request")]
    TooManyIds { given: usize, max: u32 },
    #[error("marker {0} is not a backup of this listing")]
    MarkerNotFound(String),
}

/// A listing request's query, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub all_projects: bool,
    /// `id`: only these backups (comma-separated UUIDs, duplicates dropped).
    pub ids: Option<Vec<String>>,
    pub volume_id: Option<String>,
    pub server_id: Option<String>,
    pub status: Option<String>,
    pub created_since: Option<NaiveDateTime>,
    pub created_until: Option<NaiveDateTime>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
    /// The filters as given (for the `next` link), without limit and marker.
    pub filters: Vec<(String, String)>,
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> QueryError {
    QueryError::Invalid { name, shown: shown(value), reason: reason.into() }
}

fn uuid_param(name: &'static str, value: &str) -> Result<String, QueryError> {
    parse_uuid(name, value).map_err(|_| invalid(name, value, "expected a UUID"))
}

/// A boolean query parameter, read as OpenStack's APIs read them
/// (`objects::metadata::parse_bool`).
fn parse_bool(name: &'static str, value: &str) -> Result<bool, QueryError> {
    metadata::parse_bool(value).ok_or_else(|| invalid(name, value, "expected true or false"))
}

/// `id`: one or more backup UUIDs separated by commas, in the order given,
/// each once.
fn parse_ids(value: &str) -> Result<Vec<String>, QueryError> {
    let mut ids: Vec<String> = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(invalid("id", value, "expected backup UUIDs separated by commas"));
        }
        let id = parse_uuid("id", part).map_err(|_| invalid("id", part, "expected a UUID"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// ISO 8601: `2026-11-25T10:00:00Z`, with an offset, without a zone (UTC),
/// or a date (midnight UTC). A `+` that the query decoded to a space is read
/// back as `+`.
pub fn parse_time(name: &'static str, value: &str) -> Result<NaiveDateTime, QueryError> {
    let text = value.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(t);
    }
    if let Some(t) = NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
        return Ok(t);
    }
    Err(invalid(name, value, "expected an ISO 8601 time such as 2026-11-25T10:00:00Z"))
}

/// Parses the query string of `GET /v1/backups`.
pub fn parse_query(query: Option<&str>) -> Result<ListQuery, QueryError> {
    let mut q = ListQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let Some(&known) = PARAMETERS.iter().find(|p| **p == name) else {
            return Err(QueryError::Unknown { name: shown(&name) });
        };
        if seen.iter().any(|s| s == known) {
            return Err(QueryError::Repeated { name: known.to_owned() });
        }
        seen.push(known.to_owned());
        let value = value.as_ref();
        match known {
            "all_projects" => q.all_projects = parse_bool(known, value)?,
            "id" => q.ids = Some(parse_ids(value)?),
            "volume_id" => q.volume_id = Some(uuid_param(known, value)?),
            "server_id" => q.server_id = Some(uuid_param(known, value)?),
            "status" => {
                let status = value.trim().to_ascii_lowercase();
                if !CINDER_STATUSES.contains(&status.as_str()) {
                    return Err(invalid(known, value, format!("expected one of {}", CINDER_STATUSES.join(", "))));
                }
                q.status = Some(status);
            }
            "created_since" => q.created_since = Some(parse_time(known, value)?),
            "created_until" => q.created_until = Some(parse_time(known, value)?),
            "limit" => match value.trim().parse::<u32>() {
                Ok(n) if n > 0 => q.limit = Some(n),
                _ => return Err(invalid(known, value, "expected a positive integer")),
            },
            "marker" => q.marker = Some(uuid_param(known, value)?),
            _ => {}
        }
        if known != "limit" && known != "marker" {
            q.filters.push((known.to_owned(), value.to_owned()));
        }
    }
    Ok(q)
}

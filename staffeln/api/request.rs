//! What a request carries, read and checked before anything is decided:
//! backup ids (canonical UUIDs), the guard's body (oslo.policy's `target` and
//! `credentials`, as form fields or one JSON object), and input shown back in
//! errors, quoted and cut. Pure; used by the guard and the listing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::decide::Marking;
use crate::objects::BackupId;
use crate::objects::metadata::task_of;

/// How long a shown input may be in an error message.
const SHOWN_MAX: usize = 40;

/// Why the backup id of a guard request cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "backup_id is missing: call /v1/backup?backup_id=<uuid>, or send oslo.policy's body with the backup \
         as target"
    )]
    Missing,
    #[error("backup_id is given {count} times in the query; give it once")]
    Repeated { count: usize },
    #[error("{source_name} {shown} is not a backup id: {reason}")]
    Malformed { source_name: &'static str, shown: String, reason: String },
    #[error("backup_id {query} of the query is not the target's id {target}")]
    Mismatch { query: String, target: String },
    #[error("the body's {field} is not valid: {reason}")]
    Body { field: &'static str, reason: String },
    #[error("unsupported content type {0:?}: send application/x-www-form-urlencoded or application/json")]
    UnsupportedContentType(String),
}

/// `value` quoted, escaped and cut for an error message.
pub(crate) fn shown(value: &str) -> String {
    let count = value.chars().count();
    if count <= SHOWN_MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_MAX).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

/// A canonical (lower-case, hyphenated) UUID, or why `value` is not one.
pub(crate) fn parse_uuid(source_name: &'static str, value: &str) -> Result<String, IdError> {
    let malformed = |reason: String| IdError::Malformed { source_name, shown: shown(value), reason };
    if value.is_empty() {
        return Err(malformed("it is empty".to_owned()));
    }
    if value.len() != 36 {
        return Err(malformed(format!("a UUID has 36 characters, this has {}", value.chars().count())));
    }
    match uuid::Uuid::try_parse(value) {
        Ok(id) => Ok(id.hyphenated().to_string()),
        Err(_) => Err(malformed("expected hexadecimal digits grouped 8-4-4-4-12".to_owned())),
    }
}

/// One guard request, parsed: the backup, what the body's target says about
/// it, and who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    pub id: BackupId,
    /// The target's `metadata`; `None` when the request has no target with
    /// metadata (then the guard may have to ask Cinder).
    pub metadata: Option<BTreeMap<String, String>>,
    /// `credentials.user_id`, when the body has credentials naming a user.
    pub caller: Option<String>,
}

impl CheckRequest {
    /// What the target's metadata says, if there is a target.
    pub fn marking(&self) -> Option<Marking> {
        self.metadata.as_ref().map(Marking::of)
    }

    /// The target's `__staffeln_task_id`, if any.
    pub fn task_id(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(task_of)
    }
}

/// Parses a guard request: the `backup_id` of `query` and/or the `id` of the
/// body's `target`, the target's metadata and the credentials' user (form
/// fields holding JSON documents, or one JSON object, by `content_type`; an
/// empty body has neither).
pub fn parse_request(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<CheckRequest, IdError> {
    let from_query: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "backup_id")
        .map(|(_, v)| v.into_owned())
        .collect();
    if from_query.len() > 1 {
        return Err(IdError::Repeated { count: from_query.len() });
    }
    let from_query = from_query.into_iter().next();
    let (target, credentials) = body_documents(content_type, body)?;
    let target = match target {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(IdError::Body { field: "target", reason: "not a JSON object".to_owned() }),
    };
    let from_target = match target.as_ref().and_then(|t| t.get("id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(IdError::Malformed {
                source_name: "target id",
                shown: shown(&other.to_string()),
                reason: "not a string".to_owned(),
            });
        }
    };
    let id = match (from_query, &from_target) {
        (Some(q), Some(t)) => {
            let q = parse_uuid("backup_id", &q)?;
            let t = parse_uuid("target id", t)?;
            if q != t {
                return Err(IdError::Mismatch { query: q, target: t });
            }
            q
        }
        (Some(q), None) => parse_uuid("backup_id", &q)?,
        (None, Some(t)) => parse_uuid("target id", t)?,
        (None, None) => return Err(IdError::Missing),
    };
    // Metadata counts only on a target that names the backup: it is then
    // Cinder's row of this backup (a target without id describes nothing).
    let metadata = match (&from_target, target.as_ref().and_then(|t| t.get("metadata"))) {
        (Some(_), Some(Value::Object(map))) => Some(strings(map)),
        (Some(_), None | Some(Value::Null)) | (None, _) => None,
        (Some(_), Some(other)) => {
            return Err(IdError::Body {
                field: "target",
                reason: format!("metadata {} is not a JSON object", shown(&other.to_string())),
            });
        }
    };
    let caller = match credentials {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => match map.get("user_id") {
            Some(Value::String(user)) if !user.is_empty() => Some(user.clone()),
            _ => None,
        },
        Some(_) => return Err(IdError::Body { field: "credentials", reason: "not a JSON object".to_owned() }),
    };
    Ok(CheckRequest { id: BackupId(id), metadata, caller })
}

/// The backup id a guard request is about (see [`parse_request`]).
pub fn backup_id(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<BackupId, IdError> {
    parse_request(query, content_type, body).map(|r| r.id)
}

/// Cinder's metadata values are strings; anything else is kept as its JSON text.
fn strings(map: &Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The body's `target` and `credentials` documents, if the body has them.
fn body_documents(content_type: Option<&str>, body: &[u8]) -> Result<(Option<Value>, Option<Value>), IdError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let mime = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => {
            let field = |name: &'static str| -> Result<Option<Value>, IdError> {
                let mut values = url::form_urlencoded::parse(body).filter(|(k, _)| k == name).map(|(_, v)| v);
                let first = values.next();
                if values.next().is_some() {
                    return Err(IdError::Body { field: name, reason: "it is given more than once".to_owned() });
                }
                first
                    .map(|text| {
                        serde_json::from_str(&text)
                            .map_err(|e| IdError::Body { field: name, reason: format!("not a JSON document: {e}") })
                    })
                    .transpose()
            };
            Ok((field("target")?, field("credentials")?))
        }
        "application/json" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| IdError::Body { field: "JSON body", reason: e.to_string() })?;
            match doc {
                Value::Object(mut map) => Ok((map.remove("target"), map.remove("credentials"))),
                _ => Err(IdError::Body { field: "JSON body", reason: "not an object".to_owned() }),
            }
        }
        _ => Err(IdError::UnsupportedContentType(mime)),
    }
}

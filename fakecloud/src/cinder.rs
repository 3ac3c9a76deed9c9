//! Cinder v3: discovery, volumes, backups (create, list, show, update,
//! delete, force-delete, reset-status, export and import records) and quota
//! sets (spec §4, §2.5), and the service list (`os-services`) with the
//! scenario's cinder-backup hosts.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::http::{
    CINDER_MAX, CINDER_MIN, Microversion, Req, Resp, Service, base64_decode, base64_encode, fault, naive_time,
    negotiate, over_limit, parse_dict_literal, py_repr, strict_bool, unauthenticated,
};
use super::policy::{self, BACKUP_SERVICE, Evaluation, HttpCheck};
use super::state::{Backup, Pending, Token, Volume, World};
use super::urls::{Urls, split_project};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn bad(message: impl Into<String>) -> Resp {
    fault(Service::Volume, 400, message)
}

fn not_found(message: impl Into<String>) -> Resp {
    fault(Service::Volume, 404, message)
}

fn policy(rule: &str) -> Resp {
    fault(Service::Volume, 403, format!("Policy doesn't allow {rule} to be performed."))
}

fn version_doc(urls: &Urls) -> Value {
    json!({"id": "v3.0", "status": "CURRENT", "version": CINDER_MAX.to_string(),
           "min_version": CINDER_MIN.to_string(), "updated": "2023-08-31T00:00:00Z",
           "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                     {"rel": "self", "href": format!("{}/v3/", urls.volume_root())}],
           "media-types": [{"base": "application/json",
                            "type": "application/vnd.openstack.volume+json;version=3"}]})
}

/// Who is asking, at which microversion, through which URL form.
struct Ctx {
    token: Token,
    project: String,
    admin: bool,
    mv: Microversion,
    /// `<root>/v3[/<pid>]`, for `self` links.
    link_base: String,
    /// `<root>[/<pid>]`, for `bookmark` links.
    bookmark_base: String,
}

impl Ctx {
    fn links(&self, collection: &str, id: &str) -> Value {
        json!([{"rel": "self", "href": format!("{}/{collection}/{id}", self.link_base)},
               {"rel": "bookmark", "href": format!("{}/{collection}/{id}", self.bookmark_base)}])
    }
}

pub(crate) fn handle(w: &mut World, urls: &Urls, req: &Req, segs: &[&str]) -> Resp {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match segs {
        [] if get => Resp::json(300, &json!({"versions": [version_doc(urls)]}))
            .with("location", format!("{}/v3/", urls.volume_root())),
        ["v3"] if get => Resp::ok(&json!({"versions": [version_doc(urls)]})),
        ["v3", rest @ ..] => match context(w, urls, req, rest) {
            Ok((ctx, rest)) => echo(api(w, &ctx, req, rest), ctx.mv),
            Err(resp) => resp,
        },
        _ => not_found("The resource could not be found."),
    }
}

/// The caller of a `/v3/...` request and the path after the project id.
fn context<'s, 'a>(w: &World, urls: &Urls, req: &Req, rest: &'s [&'a str]) -> Result<(Ctx, &'s [&'a str]), Resp> {
    let Some(token) = req.token().and_then(|t| w.token(t)).cloned() else {
        return Err(unauthenticated(&urls.identity()));
    };
    let Some(project) = token.project_id.clone() else {
        return Err(unauthenticated(&urls.identity()));
    };
    let mv = negotiate(req, Service::Volume)?;
    let (url_pid, rest) = split_project(rest);
    if url_pid.is_some_and(|p| p != project) {
        return Err(echo(bad("Malformed request url"), mv));
    }
    let pid_part = url_pid.map(|p| format!("/{p}")).unwrap_or_default();
    let ctx = Ctx {
        admin: token.is_admin(),
        token,
        project,
        mv,
        link_base: format!("{}/v3{pid_part}", urls.volume_root()),
        bookmark_base: format!("{}{pid_part}", urls.volume_root()),
    };
    Ok((ctx, rest))
}

/// Where `backup:delete` leaves a request, when the emulator enforces it.
pub(crate) enum Authorization {
    /// Handle the request as usual (the policy allows it, does not apply,
    /// or the handler refuses it anyway: no token, no such backup, …).
    Proceed,
    /// Answer this (the rule refused, or could not be evaluated).
    Answer(Resp),
    /// The rule's `http:` check decides: ask the guard, then
    /// [`policy_outcome`] or [`handle`].
    Ask { check: HttpCheck, mv: Microversion },
}

/// Evaluates `backup:delete` for `DELETE /backups/{id}` and the
/// `os-force_delete` action as Cinder does: after the backup was loaded
/// (`backup:get`: a backup the caller cannot see is a 404, left to the
/// handler) and before its status is looked at.
pub(crate) fn authorize(w: &World, urls: &Urls, req: &Req, segs: &[&str]) -> Authorization {
    let Some(rules) = &w.backup_delete_policy else {
        return Authorization::Proceed;
    };
    let ["v3", rest @ ..] = segs else {
        return Authorization::Proceed;
    };
    let Ok((ctx, rest)) = context(w, urls, req, rest) else {
        return Authorization::Proceed;
    };
    let id = match rest {
        ["backups", id] if req.method == Method::DELETE => *id,
        ["backups", id, "action"] if req.method == Method::POST => {
            let force =
                req.json().and_then(|b| b.as_object().map(|o| o.len() == 1 && o.contains_key("os-force_delete")));
            // os-force_delete's own rule (admin_api) comes first, in the handler.
            if force != Some(true) || !ctx.admin {
                return Authorization::Proceed;
            }
            *id
        }
        _ => return Authorization::Proceed,
    };
    let Some(backup) = visible_backup(w, &ctx, id) else {
        return Authorization::Proceed;
    };
    match policy::evaluate(rules, &ctx.token, backup) {
        Ok(Evaluation::Admin) => Authorization::Proceed,
        Ok(Evaluation::Refused) => Authorization::Answer(echo(policy("backup:delete"), ctx.mv)),
        Ok(Evaluation::Ask(check)) => Authorization::Ask { check, mv: ctx.mv },
        Err(reason) => {
            tracing::warn!("fake Cinder: backup:delete cannot be evaluated: {reason}");
            Authorization::Answer(echo(server_error(), ctx.mv))
        }
    }
}

/// The answer when the guard did not allow: Cinder's 403, or its 500 when
/// the check raised (no connection, a timeout).
pub(crate) fn policy_outcome(answer: &Result<String, String>, mv: Microversion) -> Resp {
    match answer {
        Ok(_) => echo(policy("backup:delete"), mv),
        Err(_) => echo(server_error(), mv),
    }
}

/// Cinder's answer to an unexpected exception.
fn server_error() -> Resp {
    fault(Service::Volume, 500, "The server has either erred or is incapable of performing the requested operation.")
}

fn echo(resp: Resp, mv: Microversion) -> Resp {
    resp.with("openstack-api-version", format!("volume {mv}")).with("vary", "OpenStack-API-Version")
}

fn api(w: &mut World, ctx: &Ctx, req: &Req, rest: &[&str]) -> Resp {
    let m = &req.method;
    match rest {
        ["volumes"] if m == Method::GET => list_volumes(w, ctx, req, false),
        ["volumes", "detail"] if m == Method::GET => list_volumes(w, ctx, req, true),
        ["volumes", id] if m == Method::GET => match visible_volume(w, ctx, id) {
            Some(v) => Resp::ok(&json!({"volume": volume_view(w, ctx, v)})),
            None => not_found(format!("Volume {id} could not be found.")),
        },
        ["backups"] if m == Method::POST => create_backup(w, ctx, req),
        ["backups"] if m == Method::GET => list_backups(w, ctx, req, false),
        ["backups", "detail"] if m == Method::GET => list_backups(w, ctx, req, true),
        ["backups", "import_record"] if m == Method::POST => import_record(w, ctx, req),
        ["backups", id] if m == Method::GET => match visible_backup(w, ctx, id) {
            Some(b) => Resp::ok(&json!({"backup": backup_view(ctx, b)})),
            None => not_found(format!("Backup {id} could not be found.")),
        },
        ["backups", id] if m == Method::PUT && ctx.mv.at_least(3, 9) => update_backup(w, ctx, req, id),
        ["backups", id] if m == Method::DELETE => delete_backup(w, ctx, id, false),
        ["backups", id, "action"] if m == Method::POST => backup_action(w, ctx, req, id),
        ["backups", id, "restore"] if m == Method::POST => restore_backup(w, ctx, req, id),
        ["volumes", id] if m == Method::DELETE => delete_volume(w, ctx, id),
        ["backups", id, "export_record"] if m == Method::GET => export_record(w, ctx, id),
        ["os-services"] if m == Method::GET => list_services(w, ctx, req),
        ["os-quota-sets", target] if m == Method::GET => show_quota(w, ctx, req, target),
        ["os-quota-sets", target] if m == Method::PUT => update_quota(w, ctx, req, target),
        ["volumes" | "backups", ..] | ["os-quota-sets", _] => {
            fault(Service::Volume, 405, "The method is not allowed for the requested URL.")
        }
        _ => not_found("The resource could not be found."),
    }
}

fn visible_volume<'w>(w: &'w World, ctx: &Ctx, id: &str) -> Option<&'w Volume> {
    w.volumes.get(id).filter(|v| ctx.admin || v.project_id == ctx.project)
}

fn visible_backup<'w>(w: &'w World, ctx: &Ctx, id: &str) -> Option<&'w Backup> {
    w.backups.get(id).filter(|b| ctx.admin || b.project_id == ctx.project)
}

// ---------------------------------------------------------------- listing

/// A sortable column value.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Null,
    Int(i64),
    Time(DateTime<Utc>),
    Text(&'a str),
}

trait Row {
    fn key(&self, column: &str) -> Key<'_>;
}

impl Row for Volume {
    fn key(&self, column: &str) -> Key<'_> {
        match column {
            "created_at" => Key::Time(self.created_at),
            "updated_at" => Key::Time(self.updated_at),
            "name" | "display_name" => self.name.as_deref().map_or(Key::Null, Key::Text),
            "size" => Key::Int(self.size),
            "status" => Key::Text(&self.status),
            "availability_zone" => Key::Text(&self.availability_zone),
            "project_id" => Key::Text(&self.project_id),
            _ => Key::Text(&self.id),
        }
    }
}

impl Row for Backup {
    fn key(&self, column: &str) -> Key<'_> {
        match column {
            "created_at" => Key::Time(self.created_at),
            "updated_at" => Key::Time(self.updated_at),
            "data_timestamp" => Key::Time(self.data_timestamp),
            "name" | "display_name" => self.name.as_deref().map_or(Key::Null, Key::Text),
            "size" => Key::Int(self.size),
            "status" => Key::Text(&self.status),
            "volume_id" => Key::Text(&self.volume_id),
            "project_id" => Key::Text(&self.project_id),
            _ => Key::Text(&self.id),
        }
    }
}

struct ListParams {
    limit: usize,
    offset: usize,
    marker: Option<String>,
    /// (column, descending), `id` last as the tie-breaker.
    sort: Vec<(String, bool)>,
    with_count: bool,
    /// Project to list, `None` = every project (admin with all_tenants).
    project: Option<String>,
    filters: Vec<(String, String)>,
}

const RESERVED: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants"];

fn list_params(ctx: &Ctx, req: &Req, volumes: bool) -> Result<ListParams, Resp> {
    let int = |name: &str| -> Result<Option<usize>, Resp> {
        match req.q(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n < 0 => Err(bad(format!("{name} param must be positive"))),
                Ok(n) => Ok(Some(n as usize)),
                Err(_) => Err(bad(format!("{name} param must be an integer"))),
            },
        }
    };
    let limit = int("limit")?.unwrap_or(1000).min(1000);
    let offset = int("offset")?.unwrap_or(0);
    let all_tenants = match req.q("all_tenants") {
        None => false,
        Some(v) => match strict_bool(v) {
            Some(b) => b,
            None if volumes => {
                return Err(bad(format!("Value '{v}' for 'all_tenants' is not a boolean.")));
            }
            None => return Err(bad(format!("all_tenants must be a boolean, got '{v}'."))),
        },
    };
    let dir = |d: &str| -> Result<bool, Resp> {
        match d.to_ascii_lowercase().as_str() {
            "desc" => Ok(true),
            "asc" => Ok(false),
            _ => Err(bad("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.")),
        }
    };
    let mut sort = Vec::new();
    if let Some(s) = req.q("sort") {
        if req.q("sort_key").is_some() || req.q("sort_dir").is_some() {
            return Err(bad(
                "Invalid input received: The sort_key and sort_dir parameters are deprecated and cannot be used \
                 with the sort parameter.",
            ));
        }
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            sort.push((k.trim().to_owned(), dir(d.trim())?));
        }
    } else if let Some(k) = req.q("sort_key") {
        sort.push((k.to_owned(), dir(req.q("sort_dir").unwrap_or("desc"))?));
    } else {
        sort.push(("created_at".to_owned(), dir(req.q("sort_dir").unwrap_or("desc"))?));
    }
    let last_desc = sort.last().is_none_or(|(_, d)| *d);
    if !sort.iter().any(|(k, _)| k == "id") {
        sort.push(("id".to_owned(), last_desc));
    }
    let with_count = ctx.mv.at_least(3, 45) && req.q("with_count").is_some_and(|v| strict_bool(v).unwrap_or(false));
    let mut filters: Vec<(String, String)> =
        req.query.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).cloned().collect();
    let allowed: &[&str] = if volumes {
        &[
            "name",
            "status",
            "metadata",
            "bootable",
            "migration_status",
            "availability_zone",
            "group_id",
            "size",
            "created_at",
            "updated_at",
            "consumes_quota",
        ]
    } else {
        &["name", "status", "volume_id"]
    };
    let base = |k: &str| k.trim_end_matches('~').to_owned();
    if !ctx.admin {
        let invalid: Vec<&str> = filters
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !allowed.contains(&base(k).as_str()) || (k.ends_with('~') && !ctx.mv.at_least(3, 34)))
            .collect();
        if !invalid.is_empty() {
            if ctx.mv.at_least(3, 31) {
                return Err(bad(format!("Invalid filters {} are found in query options.", invalid.join(","))));
            }
            filters.retain(|(k, _)| allowed.contains(&base(k).as_str()) && !k.ends_with('~'));
        }
    }
    let mut project = Some(ctx.project.clone());
    if ctx.admin && all_tenants {
        project = None;
        if let Some(pos) = filters.iter().position(|(k, _)| k == "project_id") {
            project = Some(filters.remove(pos).1);
        }
    }
    filters.retain(|(k, _)| k != "project_id");
    Ok(ListParams { limit, offset, marker: req.q("marker").map(str::to_owned), sort, with_count, project, filters })
}

fn compare<T: Row>(a: &T, b: &T, sort: &[(String, bool)]) -> Ordering {
    for (column, desc) in sort {
        let o = a.key(column).cmp(&b.key(column));
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Sorts `rows`, applies marker, offset and limit; returns the page and the
/// total number of matching rows.
fn paginate<'w, T: Row>(mut rows: Vec<&'w T>, marker: Option<&'w T>, p: &ListParams) -> (Vec<&'w T>, usize) {
    let total = rows.len();
    rows.sort_by(|a, b| compare(*a, *b, &p.sort));
    let start = match marker {
        Some(m) => rows.partition_point(|r| compare(*r, m, &p.sort) != Ordering::Greater),
        None => 0,
    };
    let page = rows.into_iter().skip(start + p.offset).take(p.limit).collect();
    (page, total)
}

fn next_link(ctx: &Ctx, req: &Req, path: &str, last: Option<&str>, count: usize, limit: usize) -> Option<Value> {
    let last = last?;
    if count == 0 || count < limit {
        return None;
    }
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query.iter().filter(|(k, _)| k != "marker") {
        ser.append_pair(k, v);
    }
    ser.append_pair("marker", last);
    Some(json!([{"rel": "next", "href": format!("{}/{path}?{}", ctx.link_base, ser.finish())}]))
}

fn text_matches(value: Option<&str>, key: &str, wanted: &str) -> bool {
    match value {
        Some(v) if key.ends_with('~') => v.contains(wanted),
        Some(v) => v == wanted,
        None => false,
    }
}

fn volume_matches(v: &Volume, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, want)| match k.as_str() {
        "name" | "name~" | "display_name" => text_matches(v.name.as_deref(), k, want),
        "status" | "status~" => text_matches(Some(&v.status), k, want),
        "availability_zone" => v.availability_zone == *want,
        "id" => v.id == *want,
        "user_id" => v.user_id == *want,
        "size" => want.parse::<i64>().is_ok_and(|s| s == v.size),
        "bootable" => strict_bool(want).is_some_and(|b| b == v.bootable),
        "metadata" => {
            parse_dict_literal(want).is_some_and(|pairs| pairs.iter().all(|(mk, mv)| v.metadata.get(mk) == Some(mv)))
        }
        // Real columns the emulator does not model: no filtering.
        "migration_status" | "group_id" | "consumes_quota" | "created_at" | "updated_at" => true,
        // Admins may pass anything; keys that are not columns match nothing.
        _ => false,
    })
}

fn list_volumes(w: &World, ctx: &Ctx, req: &Req, detail: bool) -> Resp {
    let p = match list_params(ctx, req, true) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let marker = match p.marker.as_deref() {
        Some(m) => match visible_volume(w, ctx, m) {
            Some(v) => Some(v),
            None => return not_found(format!("Volume {m} could not be found.")),
        },
        None => None,
    };
    let rows: Vec<&Volume> = w
        .volumes
        .values()
        .filter(|v| p.project.as_ref().is_none_or(|pid| &v.project_id == pid))
        .filter(|v| volume_matches(v, &p.filters))
        .collect();
    let (page, total) = paginate(rows, marker, &p);
    let items: Vec<Value> = page
        .iter()
        .map(|v| {
            if detail {
                volume_view(w, ctx, v)
            } else {
                json!({"id": v.id, "name": v.name, "links": ctx.links("volumes", &v.id)})
            }
        })
        .collect();
    let path = if detail { "volumes/detail" } else { "volumes" };
    let next = next_link(ctx, req, path, page.last().map(|v| v.id.as_str()), page.len(), p.limit);
    let mut body = json!({ "volumes": items });
    if let Some(n) = next {
        body["volumes_links"] = n;
    }
    if p.with_count {
        body["count"] = json!(total);
    }
    Resp::ok(&body)
}

fn volume_view(w: &World, ctx: &Ctx, v: &Volume) -> Value {
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        .filter(|a| w.servers.contains_key(&a.server_id))
        .map(|a| {
            json!({"id": v.id, "attachment_id": a.id, "volume_id": v.id, "server_id": a.server_id,
                   "host_name": if ctx.admin { json!("compute1") } else { Value::Null },
                   "device": a.device, "attached_at": naive_time(a.attached_at)})
        })
        .collect();
    let mut o = json!({
        "id": v.id, "name": v.name, "description": v.description, "status": v.status, "size": v.size,
        "availability_zone": v.availability_zone, "bootable": if v.bootable { "true" } else { "false" },
        "volume_type": "__DEFAULT__", "metadata": v.metadata, "attachments": attachments,
        "os-vol-tenant-attr:tenant_id": v.project_id, "user_id": v.user_id,
        "created_at": naive_time(v.created_at), "updated_at": naive_time(v.updated_at),
        "encrypted": false, "multiattach": v.multiattach, "replication_status": null, "snapshot_id": null,
        "source_volid": null, "consistencygroup_id": null,
        "links": ctx.links("volumes", &v.id),
    });
    let mv = ctx.mv;
    if mv.at_least(3, 13) {
        o["group_id"] = Value::Null;
    }
    if mv.at_least(3, 48) {
        o["service_uuid"] = json!("0b0ad0b6-5b3c-4c4e-9a43-5a3c2f6b1c9e");
        o["shared_targets"] = json!(true);
    }
    if mv.at_least(3, 63) {
        o["volume_type_id"] = json!("5fed9d7c-401d-46e2-8e80-f30c70cb7e1d");
    }
    if mv.at_least(3, 65) {
        o["consumes_quota"] = json!(true);
    }
    if ctx.admin {
        o["migration_status"] = Value::Null;
        o["os-vol-host-attr:host"] = json!("fakecloud@lvm#lvm");
        o["os-vol-mig-status-attr:migstat"] = Value::Null;
        o["os-vol-mig-status-attr:name_id"] = Value::Null;
        if mv.at_least(3, 21) {
            o["provider_id"] = Value::Null;
        }
        if mv.at_least(3, 61) {
            o["cluster_name"] = Value::Null;
        }
    }
    o
}

fn backup_matches(b: &Backup, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, want)| match k.as_str() {
        "name" | "name~" | "display_name" => text_matches(b.name.as_deref(), k, want),
        "status" | "status~" => text_matches(Some(&b.status), k, want),
        "volume_id" | "volume_id~" => text_matches(Some(&b.volume_id), k, want),
        "id" => b.id == *want,
        "user_id" => b.user_id == *want,
        "availability_zone" => b.availability_zone.as_deref() == Some(want),
        "container" => b.container.as_deref() == Some(want),
        "size" => want.parse::<i64>().is_ok_and(|s| s == b.size),
        "parent_id" => b.parent_id.as_deref() == Some(want),
        "snapshot_id" => b.snapshot_id.as_deref() == Some(want),
        _ => false,
    })
}

fn list_backups(w: &World, ctx: &Ctx, req: &Req, detail: bool) -> Resp {
    let p = match list_params(ctx, req, false) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let marker = match p.marker.as_deref() {
        Some(m) => match visible_backup(w, ctx, m) {
            Some(b) => Some(b),
            None => return not_found(format!("Backup {m} could not be found.")),
        },
        None => None,
    };
    let rows: Vec<&Backup> = w
        .backups
        .values()
        .filter(|b| p.project.as_ref().is_none_or(|pid| &b.project_id == pid))
        .filter(|b| backup_matches(b, &p.filters))
        .collect();
    let (page, total) = paginate(rows, marker, &p);
    let items: Vec<Value> = page
        .iter()
        .map(|b| {
            if detail {
                backup_view(ctx, b)
            } else {
                json!({"id": b.id, "name": b.name, "links": ctx.links("backups", &b.id)})
            }
        })
        .collect();
    let path = if detail { "backups/detail" } else { "backups" };
    let next = next_link(ctx, req, path, page.last().map(|b| b.id.as_str()), page.len(), p.limit);
    let mut body = json!({ "backups": items });
    if let Some(n) = next {
        body["backups_links"] = n;
    }
    if p.with_count {
        body["count"] = json!(total);
    }
    Resp::ok(&body)
}

fn backup_view(ctx: &Ctx, b: &Backup) -> Value {
    let mut o = json!({
        "id": b.id, "name": b.name, "description": b.description, "status": b.status, "size": b.size,
        "object_count": b.object_count, "container": b.container, "availability_zone": b.availability_zone,
        "volume_id": b.volume_id, "snapshot_id": b.snapshot_id, "is_incremental": b.parent_id.is_some(),
        "has_dependent_backups": b.num_dependent_backups > 0, "fail_reason": b.fail_reason,
        "created_at": naive_time(b.created_at), "updated_at": naive_time(b.updated_at),
        "data_timestamp": naive_time(b.data_timestamp),
        "links": ctx.links("backups", &b.id),
    });
    if ctx.mv.at_least(3, 43) {
        o["metadata"] = json!(b.metadata);
    }
    if ctx.admin && ctx.mv.at_least(3, 18) {
        o["os-backup-project-attr:project_id"] = json!(b.project_id);
    }
    if ctx.admin && ctx.mv.at_least(3, 56) {
        o["user_id"] = json!(b.user_id);
    }
    o
}

// ---------------------------------------------------------------- create

fn schema_error(field: &str, value: &Value, message: &str) -> Resp {
    bad(format!("Invalid input for field/attribute {field}. Value: {}. {message}", py_display(value)))
}

/// jsonschema prints strings bare in "Value: …" and reprs everything else.
fn py_display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn optional_text(backup: &Map<String, Value>, field: &str) -> Result<Option<String>, Resp> {
    match backup.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(v @ Value::String(_)) => Err(schema_error(field, v, &format!("{} is too long", py_repr(v)))),
        Some(v) => Err(schema_error(field, v, &format!("{} is not of type 'string', 'null'", py_repr(v)))),
    }
}

fn flag(backup: &Map<String, Value>, field: &str) -> Result<bool, Resp> {
    match backup.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v @ Value::String(s)) => strict_bool(s).ok_or_else(|| {
            schema_error(field, v, &format!("{} is not valid under any of the given schemas", py_repr(v)))
        }),
        Some(v) => Err(schema_error(field, v, &format!("{} is not valid under any of the given schemas", py_repr(v)))),
    }
}

fn metadata_field(map: &Map<String, Value>, field: &str) -> Result<BTreeMap<String, String>, Resp> {
    let value = match map.get(field) {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(schema_error(field, v, &format!("{} is not of type 'object', 'null'", py_repr(v))));
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in value {
        let key_ok = !k.is_empty()
            && k.chars().count() <= 255
            && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_:. /".contains(c));
        if !key_ok {
            return Err(schema_error(
                field,
                &Value::Object(value.clone()),
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        match v {
            Value::String(s) if s.chars().count() <= 255 => {
                out.insert(k.clone(), s.clone());
            }
            Value::String(_) => {
                return Err(schema_error(k, v, &format!("{} is too long", py_repr(v))));
            }
            _ => {
                return Err(schema_error(k, v, &format!("{} is not of type 'string'", py_repr(v))));
            }
        }
    }
    Ok(out)
}

/// Reserves backups +1 and backup_gigabytes +`size` for the caller's project
/// (§4.5 step 5); the gigabytes message wins when both are over.
fn check_backup_quota(w: &World, project: &str, size: i64) -> Result<(), Resp> {
    let q = w.quota(project);
    let (count, gigabytes) = w.backup_usage(project);
    if q.backup_gigabytes >= 0 && q.backup_gigabytes < size + gigabytes {
        return Err(over_limit(format!(
            "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. \
             Requested {size}G, quota is {}G and {gigabytes}G has been consumed.",
            q.backup_gigabytes
        )));
    }
    if q.backups >= 0 && q.backups < 1 + count {
        return Err(over_limit(format!(
            "BackupLimitExceeded: Maximum number of backups allowed ({}) exceeded",
            q.backups
        )));
    }
    Ok(())
}

fn create_backup(w: &mut World, ctx: &Ctx, req: &Req) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(obj) = body.as_object() else {
        return bad(format!("{} is not of type 'object'", py_repr(&body)));
    };
    if let Some(k) = obj.keys().find(|k| *k != "backup") {
        return bad(format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let Some(raw) = obj.get("backup") else {
        return bad("'backup' is a required property");
    };
    let Some(backup) = raw.as_object() else {
        return schema_error("backup", raw, &format!("{} is not of type 'object'", py_repr(raw)));
    };
    let mut allowed = vec!["volume_id", "container", "description", "incremental", "force", "name", "snapshot_id"];
    if ctx.mv.at_least(3, 43) {
        allowed.push("metadata");
    }
    if ctx.mv.at_least(3, 51) {
        allowed.push("availability_zone");
    }
    let mut unexpected: Vec<&String> = backup.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    unexpected.sort();
    if !unexpected.is_empty() {
        let list = unexpected.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        return schema_error(
            "backup",
            raw,
            &format!("Additional properties are not allowed ({list} {verb} unexpected)"),
        );
    }
    let volume_id = match backup.get("volume_id") {
        None => return schema_error("backup", raw, "'volume_id' is a required property"),
        Some(Value::String(s)) if is_uuid(s) => s.clone(),
        Some(v @ Value::String(_)) => {
            return schema_error("volume_id", v, &format!("{} is not a 'uuid'", py_repr(v)));
        }
        Some(v) => {
            return schema_error("volume_id", v, &format!("{} is not of type 'string'", py_repr(v)));
        }
    };
    let parsed = (|| {
        Ok::<_, Resp>((
            optional_text(backup, "name")?,
            optional_text(backup, "description")?,
            optional_text(backup, "container")?,
            optional_text(backup, "snapshot_id")?,
            optional_text(backup, "availability_zone")?,
            flag(backup, "incremental")?,
            flag(backup, "force")?,
            metadata_field(backup, "metadata")?,
        ))
    })();
    let (name, description, container, snapshot_id, zone, incremental, force, metadata) = match parsed {
        Ok(p) => p,
        Err(r) => return r,
    };
    // 1. The volume, as the caller sees it.
    let Some(volume) = visible_volume(w, ctx, &volume_id) else {
        return not_found(format!("Volume {volume_id} could not be found."));
    };
    // 2. Snapshots are not modelled: any snapshot id is unknown.
    if let Some(s) = snapshot_id {
        return not_found(format!("Snapshot {s} could not be found."));
    }
    // 3. Status.
    if volume.status != "available" && volume.status != "in-use" {
        return bad(format!(
            "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{}\".",
            volume.status
        ));
    }
    // 4. In-use needs force.
    if volume.status == "in-use" && !force {
        return bad("Invalid volume: Backing up an in-use volume must use the force flag.");
    }
    // 5. Quota.
    let size = volume.size;
    if let Err(r) = check_backup_quota(w, &ctx.project, size) {
        return r;
    }
    // 6. Parent of an incremental backup.
    let parent_id = if incremental {
        let parent = w
            .backups
            .values()
            .filter(|b| b.volume_id == volume_id && b.project_id == ctx.project && b.status == "available")
            .max_by(|a, b| a.data_timestamp.cmp(&b.data_timestamp).then_with(|| a.created_at.cmp(&b.created_at)));
        match parent {
            Some(p) => Some(p.id.clone()),
            None => {
                return bad("Invalid backup: No backups available to do an incremental backup.");
            }
        }
    } else {
        None
    };
    // 7. Effects.
    let now = w.now();
    let id = w.new_uuid();
    let due = w.backup_due(now);
    if let Some(v) = w.volumes.get_mut(&volume_id) {
        v.previous_status = Some(std::mem::replace(&mut v.status, "backing-up".into()));
        v.updated_at = now;
    }
    w.backups.insert(
        id.clone(),
        Backup {
            id: id.clone(),
            project_id: ctx.project.clone(),
            user_id: ctx.token.user_id.clone(),
            volume_id,
            name: name.clone(),
            description,
            status: "creating".into(),
            size,
            object_count: 0,
            container,
            availability_zone: zone,
            snapshot_id: None,
            parent_id,
            num_dependent_backups: 0,
            fail_reason: None,
            metadata,
            created_at: now,
            updated_at: now,
            data_timestamp: now,
            pending: Some((Pending::Create, due)),
            restore_volume_id: None,
            host: None,
            queued: false,
        },
    );
    w.place_backup(&id);
    w.notify_backup("backup.create.start", &id);
    Resp::json(202, &json!({"backup": {"id": id, "name": name, "links": ctx.links("backups", &id)}}))
}

// ---------------------------------------------------------------- update, delete, actions

fn update_backup(w: &mut World, ctx: &Ctx, req: &Req, id: &str) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(raw) = body.get("backup") else {
        return bad("'backup' is a required property");
    };
    let Some(fields) = raw.as_object() else {
        return schema_error("backup", raw, &format!("{} is not of type 'object'", py_repr(raw)));
    };
    let mut allowed = vec!["name", "description"];
    if ctx.mv.at_least(3, 43) {
        allowed.push("metadata");
    }
    if let Some(k) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return schema_error("backup", raw, &format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let name = match optional_text(fields, "name") {
        Ok(n) => n,
        Err(r) => return r,
    };
    let description = match optional_text(fields, "description") {
        Ok(d) => d,
        Err(r) => return r,
    };
    let metadata = match metadata_field(fields, "metadata") {
        Ok(m) => m,
        Err(r) => return r,
    };
    if visible_backup(w, ctx, id).is_none() {
        return not_found(format!("Backup {id} could not be found."));
    }
    // backup:update: an admin, or a member of the backup's project.
    if !ctx.admin && !ctx.token.roles.iter().any(|r| r == "member") {
        return policy("backup:update");
    }
    let now = w.now();
    let Some(b) = w.backups.get_mut(id) else {
        return not_found(format!("Backup {id} could not be found."));
    };
    if fields.contains_key("name") {
        b.name = name;
    }
    if fields.contains_key("description") {
        b.description = description;
    }
    if fields.contains_key("metadata") {
        b.metadata = metadata;
    }
    b.updated_at = now;
    Resp::ok(&json!({"backup": {"id": b.id, "name": b.name, "links": ctx.links("backups", &b.id)}}))
}

fn delete_backup(w: &mut World, ctx: &Ctx, id: &str, force: bool) -> Resp {
    let Some(b) = visible_backup(w, ctx, id) else {
        return not_found(format!("Backup {id} could not be found."));
    };
    if !force && b.status != "available" && b.status != "error" {
        return bad("Invalid backup: Backup status must be available or error");
    }
    if w.backups.values().any(|c| c.parent_id.as_deref() == Some(id) && c.project_id == ctx.project) {
        return bad("Invalid backup: Incremental backups exist for this backup.");
    }
    let now = w.now();
    let due = now + w.timing.delete_duration;
    if let Some(b) = w.backups.get_mut(id) {
        b.status = "deleting".into();
        b.updated_at = now;
        b.pending = Some((Pending::Delete, due));
    }
    w.notify_backup("backup.delete.start", id);
    Resp::empty(202)
}

// ---------------------------------------------------------------- restore

/// `POST /backups/{id}/restore` (cinder/api/contrib/backups.py `restore`,
/// cinder/backup/api.py `restore`): into a new volume of the backup's size
/// (charged to the caller's project) or into an `available` volume at least
/// that large. The backup goes `restoring`, the volume `restoring-backup`,
/// and both come back when the restore is done.
fn restore_backup(w: &mut World, ctx: &Ctx, req: &Req, id: &str) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(obj) = body.as_object() else {
        return bad(format!("{} is not of type 'object'", py_repr(&body)));
    };
    if let Some(k) = obj.keys().find(|k| *k != "restore") {
        return bad(format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let Some(raw) = obj.get("restore") else {
        return bad("'restore' is a required property");
    };
    let empty = Map::new();
    let restore = match raw {
        Value::Null => &empty,
        Value::Object(o) => o,
        other => return schema_error("restore", other, &format!("{} is not of type 'object', 'null'", py_repr(other))),
    };
    if let Some(k) = restore.keys().find(|k| *k != "volume_id" && *k != "name") {
        return schema_error("restore", raw, &format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let volume_id = match restore.get("volume_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid(s) => Some(s.clone()),
        Some(v @ Value::String(_)) => return schema_error("volume_id", v, &format!("{} is not a 'uuid'", py_repr(v))),
        Some(v) => {
            return schema_error("volume_id", v, &format!("{} is not of type 'string', 'null'", py_repr(v)));
        }
    };
    let name = match optional_text(restore, "name") {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(backup) = visible_backup(w, ctx, id) else {
        return not_found(format!("Backup {id} could not be found."));
    };
    if backup.status != "available" {
        return bad("Invalid backup: Backup status must be available");
    }
    let size = backup.size;
    let now = w.now();
    let target = match volume_id {
        None => {
            let (count, gigabytes) = w.volume_usage(&ctx.project);
            let q = w.quota(&ctx.project);
            if q.gigabytes >= 0 && q.gigabytes < gigabytes + size {
                return over_limit(format!(
                    "Requested volume or snapshot exceeds allowed gigabytes quota. \
                     Requested {size}G, quota is {}G and {gigabytes}G has been consumed.",
                    q.gigabytes
                ));
            }
            if q.volumes >= 0 && q.volumes < count + 1 {
                return over_limit(format!(
                    "Maximum number of volumes allowed ({}) exceeded for quota 'volumes'.",
                    q.volumes
                ));
            }
            let vid = w.new_uuid();
            let name = name.unwrap_or_else(|| format!("restore_backup_{id}"));
            w.volumes.insert(
                vid.clone(),
                Volume {
                    id: vid.clone(),
                    project_id: ctx.project.clone(),
                    user_id: ctx.token.user_id.clone(),
                    name: Some(name),
                    // cinder/backup/api.py `restore`; not bootable,
                    // whatever the backed-up volume was.
                    description: Some("auto-created_from_restore_from_backup".into()),
                    size,
                    status: "available".into(),
                    previous_status: None,
                    metadata: BTreeMap::new(),
                    availability_zone: "nova".into(),
                    bootable: false,
                    multiattach: false,
                    attachments: Vec::new(),
                    created_at: now,
                    updated_at: now,
                    delete_due: None,
                },
            );
            vid
        }
        Some(vid) => {
            let Some(volume) = visible_volume(w, ctx, &vid) else {
                return not_found(format!("Volume {vid} could not be found."));
            };
            if volume.status != "available" {
                return bad("Invalid volume: Volume to be restored to must be available");
            }
            if size > volume.size {
                return bad(format!(
                    "Invalid volume: volume size {} is too small to restore backup of size {size}.",
                    volume.size
                ));
            }
            vid
        }
    };
    let due = now + w.timing.backup_duration;
    let mut volume_name = Value::Null;
    if let Some(v) = w.volumes.get_mut(&target) {
        v.status = "restoring-backup".into();
        v.updated_at = now;
        volume_name = json!(v.name);
    }
    if let Some(b) = w.backups.get_mut(id) {
        b.status = "restoring".into();
        b.updated_at = now;
        b.pending = Some((Pending::Restore, due));
        b.restore_volume_id = Some(target.clone());
    }
    Resp::json(202, &json!({"restore": {"backup_id": id, "volume_id": target, "volume_name": volume_name}}))
}

/// `DELETE /volumes/{id}` (202): `deleting`, then gone once the emulated
/// delete time has passed. Refused for attached volumes and busy statuses,
/// with cinder/volume/api.py's text.
fn delete_volume(w: &mut World, ctx: &Ctx, id: &str) -> Resp {
    let Some(v) = visible_volume(w, ctx, id) else {
        return not_found(format!("Volume {id} could not be found."));
    };
    let deletable = ["available", "error", "error_restoring", "error_extending", "error_managing"];
    if !deletable.contains(&v.status.as_str()) || !v.attachments.is_empty() {
        return bad(
            "Invalid volume: Volume status must be available or error or error_restoring or error_extending or \
             error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a \
             transfer, or be disassociated from snapshots after volume transfer.",
        );
    }
    let now = w.now();
    let due = now + w.timing.delete_duration;
    if let Some(v) = w.volumes.get_mut(id) {
        v.status = "deleting".into();
        v.updated_at = now;
        v.delete_due = Some(due);
    }
    Resp::empty(202)
}

const BACKUP_STATUSES: &[&str] = &["creating", "available", "deleting", "error", "error_deleting", "restoring"];

fn backup_action(w: &mut World, ctx: &Ctx, req: &Req, id: &str) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some((action, arg)) = body.as_object().and_then(|o| if o.len() == 1 { o.iter().next() } else { None }) else {
        return bad("Malformed request body");
    };
    match action.as_str() {
        "os-force_delete" => {
            if !ctx.admin {
                return policy("volume_extension:backup_admin_actions:force_delete");
            }
            delete_backup(w, ctx, id, true)
        }
        "os-reset_status" => {
            if !ctx.admin {
                return policy("volume_extension:backup_admin_actions:reset_status");
            }
            let status = arg.get("status").cloned().unwrap_or(Value::Null);
            let Some(s) = status.as_str().filter(|s| BACKUP_STATUSES.contains(s)) else {
                return schema_error(
                    "status",
                    &status,
                    &format!("{} is not one of {:?}", py_repr(&status), BACKUP_STATUSES),
                );
            };
            let now = w.now();
            match w.backups.get_mut(id) {
                Some(b) => {
                    b.status = s.to_owned();
                    b.pending = None;
                    b.updated_at = now;
                    Resp::empty(202)
                }
                None => not_found(format!("Backup {id} could not be found.")),
            }
        }
        other => bad(format!(
            "There is no such action: {other}. Verify the request body and Content-Type header and try again."
        )),
    }
}

fn export_record(w: &World, ctx: &Ctx, id: &str) -> Resp {
    if !ctx.admin {
        return policy("backup:export-import");
    }
    let Some(b) = w.backups.get(id) else {
        return not_found(format!("Backup {id} could not be found."));
    };
    if b.status != "available" {
        return bad(format!("Invalid backup: Backup status must be available and not {}.", b.status));
    }
    let record = json!({
        "id": b.id, "user_id": b.user_id, "project_id": b.project_id, "volume_id": b.volume_id,
        "display_name": b.name, "display_description": b.description, "status": b.status,
        "size": b.size, "object_count": b.object_count, "container": b.container,
        "availability_zone": b.availability_zone, "parent_id": b.parent_id, "snapshot_id": b.snapshot_id,
        "num_dependent_backups": b.num_dependent_backups, "fail_reason": b.fail_reason,
        "service": BACKUP_SERVICE, "service_metadata": b.id, "metadata": b.metadata,
        "created_at": naive_time(b.created_at), "updated_at": naive_time(b.updated_at),
        "data_timestamp": naive_time(b.data_timestamp), "driver_info": {},
    });
    let url = base64_encode(record.to_string().as_bytes());
    Resp::ok(&json!({"backup-record": {"backup_service": BACKUP_SERVICE, "backup_url": url}}))
}

fn import_record(w: &mut World, ctx: &Ctx, req: &Req) -> Resp {
    if !ctx.admin {
        return policy("backup:backup-import");
    }
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(rec) = body.get("backup-record") else {
        return bad("'backup-record' is a required property");
    };
    let url = match rec.get("backup_url") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => {
            return schema_error("backup_url", v, &format!("{} is not a 'base64'", py_repr(v)));
        }
        None => return schema_error("backup-record", rec, "'backup_url' is a required property"),
    };
    let record: Option<Map<String, Value>> = base64_decode(&url)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.as_object().cloned());
    let Some(record) = record else {
        return bad("Invalid input received: Can't parse backup record.");
    };
    let Some(id) = record.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return bad("Invalid input received: Provided backup record is missing an id");
    };
    let Some(size) = record.get("size").and_then(Value::as_i64) else {
        return bad("Invalid input received: Provided backup record is missing size attribute");
    };
    if w.backups.contains_key(&id) {
        return bad("Invalid backup: Backup already exists in database.");
    }
    if let Err(r) = check_backup_quota(w, &ctx.project, size) {
        return r;
    }
    let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_owned);
    let metadata = record
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    let now = w.now();
    let due = now + w.timing.backup_duration;
    let name = text("display_name");
    w.backups.insert(
        id.clone(),
        Backup {
            id: id.clone(),
            project_id: ctx.project.clone(),
            user_id: ctx.token.user_id.clone(),
            volume_id: NIL_UUID.into(),
            name: name.clone(),
            description: text("display_description"),
            status: "creating".into(),
            size,
            object_count: record.get("object_count").and_then(Value::as_i64).unwrap_or(0),
            container: text("container"),
            availability_zone: text("availability_zone"),
            snapshot_id: None,
            parent_id: text("parent_id").filter(|p| w.backups.contains_key(p)),
            num_dependent_backups: 0,
            fail_reason: None,
            metadata,
            created_at: now,
            updated_at: now,
            data_timestamp: now,
            pending: Some((Pending::Create, due)),
            restore_volume_id: None,
            host: None,
            queued: false,
        },
    );
    Resp::json(201, &json!({"backup": {"id": id, "name": name, "links": ctx.links("backups", &id)}}))
}

// ---------------------------------------------------------------- quotas

/// `GET /os-services` (admin): the scheduler, one volume service and the
/// scenario's cinder-backup services, filtered by `binary` and `host`.
fn list_services(w: &World, ctx: &Ctx, req: &Req) -> Resp {
    if !ctx.admin {
        return policy("volume_extension:services:index");
    }
    let updated = w.now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let service = |binary: &str, host: &str, zone: &str, status: &str, state: &str| {
        json!({"binary": binary, "host": host, "zone": zone, "status": status, "state": state,
               "updated_at": updated, "disabled_reason": null})
    };
    let mut all = vec![
        service("cinder-scheduler", "controller", "nova", "enabled", "up"),
        service("cinder-volume", "controller@lvmdriver-1", "nova", "enabled", "up"),
    ];
    for h in &w.backup_hosts {
        all.push(service("cinder-backup", &h.host, &h.zone, &h.status, &h.state));
    }
    let keep = |v: &Value, key: &str| req.q(key).is_none_or(|want| v[key].as_str() == Some(want));
    let services: Vec<Value> = all.into_iter().filter(|v| keep(v, "binary") && keep(v, "host")).collect();
    Resp::ok(&json!({ "services": services }))
}

fn show_quota(w: &World, ctx: &Ctx, req: &Req, target: &str) -> Resp {
    if !ctx.admin && target != ctx.project {
        return policy("volume_extension:quotas:show");
    }
    let usage = req.q("usage").is_some_and(|v| strict_bool(v).unwrap_or(false));
    let q = w.quota(target);
    let (backups, backup_gb) = w.backup_usage(target);
    let (volumes, gigabytes) = w.volume_usage(target);
    let rows = [
        ("volumes", q.volumes, volumes),
        ("snapshots", q.snapshots, 0),
        ("gigabytes", q.gigabytes, gigabytes),
        ("backups", q.backups, backups),
        ("backup_gigabytes", q.backup_gigabytes, backup_gb),
        ("groups", q.groups, 0),
        ("per_volume_gigabytes", q.per_volume_gigabytes, 0),
        ("volumes___DEFAULT__", -1, volumes),
        ("snapshots___DEFAULT__", -1, 0),
        ("gigabytes___DEFAULT__", -1, gigabytes),
    ];
    let mut set = Map::new();
    set.insert("id".into(), json!(target));
    for (key, limit, in_use) in rows {
        let v = if usage { json!({"in_use": in_use, "limit": limit, "reserved": 0}) } else { json!(limit) };
        set.insert(key.into(), v);
    }
    Resp::ok(&json!({ "quota_set": set }))
}

fn update_quota(w: &mut World, ctx: &Ctx, req: &Req, target: &str) -> Resp {
    if !ctx.admin {
        return policy("volume_extension:quotas:update");
    }
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(set) = body.get("quota_set").and_then(Value::as_object) else {
        return bad("Missing required element 'quota_set' in request body.");
    };
    let (backups, backup_gb) = w.backup_usage(target);
    let (volumes, gigabytes) = w.volume_usage(target);
    let Some(project) = w.projects.get_mut(target) else {
        return not_found(format!("Project {target} could not be found."));
    };
    let mut q = project.quota.clone();
    for (key, value) in set {
        let Some(n) = value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok())) else {
            return bad(format!("Quota limit {} for {key} must be an integer.", py_display(value)));
        };
        let (slot, used) = match key.as_str() {
            "volumes" => (&mut q.volumes, volumes),
            "snapshots" => (&mut q.snapshots, 0),
            "gigabytes" => (&mut q.gigabytes, gigabytes),
            "backups" => (&mut q.backups, backups),
            "backup_gigabytes" => (&mut q.backup_gigabytes, backup_gb),
            "groups" => (&mut q.groups, 0),
            "per_volume_gigabytes" => (&mut q.per_volume_gigabytes, 0),
            _ => continue,
        };
        if n >= 0 && n < used {
            return bad(format!(
                "Quota {key} limit must be equal or greater than existing resources. Current usage is {used} and \
                 the requested limit is {n}."
            ));
        }
        *slot = n;
    }
    project.quota = q.clone();
    Resp::ok(&json!({"quota_set": {"volumes": q.volumes, "snapshots": q.snapshots, "gigabytes": q.gigabytes,
        "backups": q.backups, "backup_gigabytes": q.backup_gigabytes, "groups": q.groups,
        "per_volume_gigabytes": q.per_volume_gigabytes}}))
}

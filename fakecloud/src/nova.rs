//! Nova v2.1: discovery, servers (list, detail, show), server metadata,
//! flavors and quota sets, enough for the CLI's listings (spec §3, §2.5).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::http::{
    Microversion, NOVA_MAX, NOVA_MIN, Req, Resp, Service, fault, naive_time, negotiate, nova_time, py_repr,
    strict_bool, unauthenticated,
};
use super::state::{Server, World, stable_id};
use super::urls::{Urls, split_project};

const METADATA_ITEMS: usize = 128;

fn bad(message: impl Into<String>) -> Resp {
    fault(Service::Compute, 400, message)
}

fn v21(urls: &Urls) -> Value {
    json!({"id": "v2.1", "status": "CURRENT", "version": NOVA_MAX.to_string(),
           "min_version": NOVA_MIN.to_string(), "updated": "2013-07-23T11:33:21Z",
           "links": [{"rel": "self", "href": format!("{}/v2.1/", urls.compute_root())}]})
}

struct Ctx {
    project: String,
    admin: bool,
    mv: Microversion,
    link_base: String,
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
        [] if get => {
            let v20 = json!({"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
                "updated": "2025-07-04T12:00:00Z",
                "links": [{"rel": "self", "href": format!("{}/v2/", urls.compute_root())}]});
            Resp::ok(&json!({"versions": [v20, v21(urls)]}))
        }
        ["v2.1"] if get => {
            let mut v = v21(urls);
            v["media-types"] =
                json!([{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]);
            Resp::ok(&json!({ "version": v }))
        }
        ["v2.1", rest @ ..] => {
            let Some(token) = req.token().and_then(|t| w.token(t)).cloned() else {
                return unauthenticated(&urls.identity());
            };
            let Some(project) = token.project_id.clone() else {
                return unauthenticated(&urls.identity());
            };
            let mv = match negotiate(req, Service::Compute) {
                Ok(mv) => mv,
                Err(r) => return r,
            };
            let (url_pid, rest) = split_project(rest);
            if let Some(p) = url_pid.filter(|p| *p != project) {
                return echo(
                    bad(format!(
                        "Malformed request URL: URL's project_id '{p}' doesn't match Context's project_id '{project}'"
                    )),
                    mv,
                );
            }
            let pid_part = url_pid.map(|p| format!("/{p}")).unwrap_or_default();
            let ctx = Ctx {
                admin: token.is_admin(),
                project,
                mv,
                link_base: format!("{}/v2.1{pid_part}", urls.compute_root()),
                bookmark_base: format!("{}{pid_part}", urls.compute_root()),
            };
            echo(api(w, &ctx, req, rest), mv)
        }
        _ => fault(Service::Compute, 404, "The resource could not be found."),
    }
}

fn echo(resp: Resp, mv: Microversion) -> Resp {
    resp.with("openstack-api-version", format!("compute {mv}"))
        .with("x-openstack-nova-api-version", mv.to_string())
        .with("vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}

fn api(w: &mut World, ctx: &Ctx, req: &Req, rest: &[&str]) -> Resp {
    let m = &req.method;
    match rest {
        ["servers"] if m == Method::GET => list_servers(w, ctx, req, false),
        ["servers", "detail"] if m == Method::GET => list_servers(w, ctx, req, true),
        ["servers", id] if m == Method::GET => match visible(w, ctx, id) {
            Ok(s) => Resp::ok(&json!({"server": server_view(ctx, s)})),
            Err(r) => r,
        },
        ["servers", id, "metadata"] if m == Method::GET => match visible(w, ctx, id) {
            Ok(s) => Resp::ok(&json!({"metadata": s.metadata})),
            Err(r) => r,
        },
        ["servers", id, "metadata"] if m == Method::POST || m == Method::PUT => {
            set_metadata(w, ctx, req, id, m == Method::PUT)
        }
        ["servers", id, "metadata", key] if m == Method::GET => match visible(w, ctx, id) {
            Ok(s) => match s.metadata.get(*key) {
                Some(v) => Resp::ok(&json!({"meta": { *key: v }})),
                None => fault(Service::Compute, 404, "Metadata item was not found"),
            },
            Err(r) => r,
        },
        ["servers", id, "metadata", key] if m == Method::PUT => put_item(w, ctx, req, id, key),
        ["servers", id, "metadata", key] if m == Method::DELETE => delete_item(w, ctx, id, key),
        ["flavors" | "flavors", "detail"] if m == Method::GET => Resp::ok(&json!({"flavors": [flavor(ctx)]})),
        ["flavors", id] if m == Method::GET && *id != "detail" => match *id {
            "1" => Resp::ok(&json!({"flavor": flavor(ctx)})),
            _ => fault(Service::Compute, 404, format!("Flavor {id} could not be found.")),
        },
        ["os-quota-sets", target] if m == Method::GET => quota(w, ctx, target, false),
        ["os-quota-sets", target, "detail"] if m == Method::GET => quota(w, ctx, target, true),
        ["servers", ..] => fault(Service::Compute, 405, "The method is not allowed for the requested URL."),
        _ => fault(Service::Compute, 404, "The resource could not be found."),
    }
}

fn visible<'w>(w: &'w World, ctx: &Ctx, id: &str) -> Result<&'w Server, Resp> {
    w.servers
        .get(id)
        .filter(|s| ctx.admin || s.project_id == ctx.project)
        .ok_or_else(|| fault(Service::Compute, 404, format!("Instance {id} could not be found.")))
}

/// (vm_state, power_state) of a Nova status.
fn vm_state(status: &str) -> (&'static str, u8) {
    match status {
        "ACTIVE" => ("active", 1),
        "SHUTOFF" => ("stopped", 4),
        "PAUSED" => ("paused", 3),
        "SUSPENDED" => ("suspended", 7),
        "BUILD" => ("building", 0),
        "ERROR" => ("error", 0),
        "SHELVED" => ("shelved", 4),
        "SHELVED_OFFLOADED" => ("shelved_offloaded", 0),
        "RESCUE" => ("rescued", 1),
        "VERIFY_RESIZE" => ("resized", 1),
        "SOFT_DELETED" => ("soft-delete", 0),
        "DELETED" => ("deleted", 0),
        _ => ("active", 1),
    }
}

fn flavor(ctx: &Ctx) -> Value {
    let mut f = json!({"id": "1", "name": "m1.small", "ram": 2048, "disk": 20, "vcpus": 1,
        "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": false, "rxtx_factor": 1.0,
        "os-flavor-access:is_public": true, "swap": if ctx.mv.at_least(2, 75) { json!(0) } else { json!("") },
        "links": ctx.links("flavors", "1")});
    if ctx.mv.at_least(2, 55) {
        f["description"] = Value::Null;
    }
    if ctx.mv.at_least(2, 61) {
        f["extra_specs"] = json!({});
    }
    f
}

fn server_view(ctx: &Ctx, s: &Server) -> Value {
    let mv = ctx.mv;
    let (vm, power) = vm_state(&s.status);
    let volumes: Vec<Value> = s
        .volumes
        .iter()
        .map(|v| if mv.at_least(2, 3) { json!({"id": v, "delete_on_termination": false}) } else { json!({"id": v}) })
        .collect();
    let n = u8::from_str_radix(&s.id[..2.min(s.id.len())], 16).unwrap_or(7);
    let flavor = if mv.at_least(2, 47) {
        json!({"disk": 20, "ephemeral": 0, "extra_specs": {}, "original_name": "m1.small", "ram": 2048,
               "swap": 0, "vcpus": 1})
    } else {
        json!({"id": "1", "links": [{"rel": "bookmark", "href": format!("{}/flavors/1", ctx.bookmark_base)}]})
    };
    let mut o = json!({
        "id": s.id, "name": s.name, "status": s.status, "tenant_id": s.project_id, "user_id": s.user_id,
        "metadata": s.metadata, "created": nova_time(s.created_at), "updated": nova_time(s.updated_at),
        "OS-EXT-AZ:availability_zone": s.availability_zone,
        "os-extended-volumes:volumes_attached": volumes,
        "addresses": {"private": [{"addr": format!("10.0.0.{}", 2 + u16::from(n) % 250), "version": 4,
            "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": format!("fa:16:3e:00:00:{n:02x}")}]},
        "accessIPv4": "", "accessIPv6": "", "config_drive": "", "key_name": null,
        "hostId": stable_id(&format!("host:{}", s.project_id)), "flavor": flavor, "image": "",
        "links": ctx.links("servers", &s.id), "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-STS:vm_state": vm, "OS-EXT-STS:task_state": s.task_state, "OS-EXT-STS:power_state": power,
        "OS-SRV-USG:launched_at": naive_time(s.created_at), "OS-SRV-USG:terminated_at": null,
        "security_groups": [{"name": "default"}],
    });
    let obj = o.as_object_mut();
    let Some(o2) = obj else { return o };
    let mut put = |k: &str, v: Value| {
        o2.insert(k.to_owned(), v);
    };
    if matches!(s.status.as_str(), "BUILD" | "ACTIVE" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING") {
        put("progress", json!(0));
    }
    if s.status == "ERROR" {
        put("fault", json!({"code": 500, "created": nova_time(s.updated_at), "message": "Injected by the scenario."}));
    }
    if mv.at_least(2, 9) {
        put("locked", json!(s.locked));
    }
    if mv.at_least(2, 19) {
        put("description", Value::Null);
    }
    if mv.at_least(2, 26) {
        put("tags", json!([]));
    }
    if mv.at_least(2, 63) {
        put("trusted_image_certificates", Value::Null);
    }
    if mv.at_least(2, 73) {
        put("locked_reason", Value::Null);
    }
    if mv.at_least(2, 96) {
        put("pinned_availability_zone", Value::Null);
    }
    if mv.at_least(2, 100) {
        put("scheduler_hints", json!({}));
    }
    if (ctx.admin || mv.at_least(2, 90)) && mv.at_least(2, 3) {
        put("OS-EXT-SRV-ATTR:hostname", json!(s.name));
    }
    if ctx.admin {
        put("OS-EXT-SRV-ATTR:host", json!("compute1"));
        put("OS-EXT-SRV-ATTR:hypervisor_hostname", json!("compute1.example"));
        put("OS-EXT-SRV-ATTR:instance_name", json!(format!("instance-{}", &s.id[..8.min(s.id.len())])));
        if mv.at_least(2, 3) {
            put("OS-EXT-SRV-ATTR:kernel_id", json!(""));
            put("OS-EXT-SRV-ATTR:launch_index", json!(0));
            put("OS-EXT-SRV-ATTR:ramdisk_id", json!(""));
            put("OS-EXT-SRV-ATTR:reservation_id", json!(format!("r-{}", &s.id[..8.min(s.id.len())])));
            put("OS-EXT-SRV-ATTR:root_device_name", json!("/dev/vda"));
            put("OS-EXT-SRV-ATTR:user_data", Value::Null);
        }
        if mv.at_least(2, 16) {
            put("host_status", json!("UP"));
        }
    }
    o
}

// ---------------------------------------------------------------- listing

const STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "DELETED",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESIZE",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SOFT_DELETED",
    "SUSPENDED",
    "UNKNOWN",
    "VERIFY_RESIZE",
];

/// Query parameters `GET /servers(/detail)` accepts at ≥2.75.
const KNOWN_PARAMS: &[&str] = &[
    "all_tenants",
    "project_id",
    "tenant_id",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "name",
    "status",
    "deleted",
    "changes-since",
    "changes-before",
    "user_id",
    "uuid",
    "flavor",
    "image",
    "ip",
    "ip6",
    "locked",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "host",
    "node",
    "hostname",
    "availability_zone",
    "reservation_id",
    "launch_index",
    "config_drive",
    "key_name",
    "created_at",
    "launched_at",
    "terminated_at",
    "power_state",
    "task_state",
    "vm_state",
    "progress",
    "description",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "display_name",
    "display_description",
    "kernel_id",
    "ramdisk_id",
    "root_device_name",
    "locked_by",
    "image_ref",
    "instance_type_id",
    "block_device_mapping",
    "launched_on",
    "cell_name",
    "pinned_availability_zone",
    "soft_deleted",
    "info_cache",
    "security_groups",
    "services",
    "metadata",
    "system_metadata",
    "all_projects",
    "fields",
    "vcpus",
    "memory_mb",
    "root_gb",
    "ephemeral_gb",
    "architecture",
];

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Time(DateTime<Utc>),
    Text(&'a str),
}

fn key<'a>(s: &'a Server, column: &str) -> Key<'a> {
    match column {
        "created_at" => Key::Time(s.created_at),
        "updated_at" | "launched_at" => Key::Time(s.updated_at),
        "display_name" | "hostname" => Key::Text(&s.name),
        "availability_zone" => Key::Text(&s.availability_zone),
        "project_id" => Key::Text(&s.project_id),
        "user_id" => Key::Text(&s.user_id),
        "vm_state" => Key::Text(vm_state(&s.status).0),
        _ => Key::Text(&s.id),
    }
}

fn compare(a: &Server, b: &Server, sort: &[(String, bool)]) -> Ordering {
    for (column, desc) in sort {
        let o = key(a, column).cmp(&key(b, column));
        let o = if *desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn list_servers(w: &World, ctx: &Ctx, req: &Req, detail: bool) -> Resp {
    if ctx.mv.at_least(2, 75)
        && let Some((k, v)) = req.query.iter().find(|(k, _)| !KNOWN_PARAMS.contains(&k.as_str()))
    {
        return bad(format!(
            "Invalid input for query parameters {k}. Value: {v}. Additional properties are not allowed ('{k}' was \
             unexpected)"
        ));
    }
    let all_tenants = match req.q("all_tenants") {
        None => false,
        Some("") => true,
        Some(v) => match strict_bool(v) {
            Some(b) => b,
            None => {
                return bad(format!(
                    "Invalid input for query parameters all_tenants. Value: {v}. '{v}' is not a valid boolean"
                ));
            }
        },
    };
    if all_tenants && !ctx.admin {
        let rule = if detail { "detail" } else { "index" };
        return fault(
            Service::Compute,
            403,
            format!("Policy doesn't allow os_compute_api:servers:{rule}:get_all_tenants to be performed."),
        );
    }
    let limit = match req.q("limit") {
        None => 1000,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n.min(1000),
            Err(_) => {
                return bad(format!(
                    "Invalid input for query parameters limit. Value: {v}. '{v}' does not match '^[0-9]*$'"
                ));
            }
        },
    };
    let mut sort = Vec::new();
    let keys: Vec<&str> = req.query.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.as_str()).collect();
    let dirs: Vec<&str> = req.query.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.as_str()).collect();
    for (i, k) in keys.iter().enumerate() {
        if !ctx.admin && matches!(*k, "host" | "node") {
            return fault(Service::Compute, 403, "Only administrators can sort servers by host and node");
        }
        let desc = match dirs.get(i).copied().unwrap_or("desc") {
            "asc" => false,
            "desc" => true,
            d => {
                return bad(format!(
                    "Invalid input for query parameters sort_dir. Value: {d}. '{d}' is not one of ['asc', 'desc']"
                ));
            }
        };
        sort.push(((*k).to_owned(), desc));
    }
    if sort.is_empty() {
        sort.push(("created_at".to_owned(), true));
    }
    sort.push(("uuid".to_owned(), sort.last().is_none_or(|(_, d)| *d)));
    // Filters: non-admins keep only the allowed ones, the rest is dropped silently.
    let mut allowed = vec!["reservation_id", "name", "status", "image", "flavor", "ip", "changes-since"];
    if ctx.mv.at_least(2, 73) {
        allowed.push("locked");
    }
    if ctx.mv.at_least(2, 83) {
        allowed.extend(["availability_zone", "user_id", "task_state", "vm_state", "power_state", "key_name"]);
    }
    let usable = |k: &str| ctx.admin || allowed.contains(&k);
    let name_re = match req.q("name").filter(|_| usable("name")) {
        Some(n) => match regex::Regex::new(n) {
            Ok(r) => Some(r),
            Err(_) => return Resp::ok(&json!({"servers": []})),
        },
        None => None,
    };
    let status = req.q("status").filter(|_| usable("status")).map(str::to_ascii_uppercase);
    if let Some(st) = &status
        && !STATUSES.contains(&st.as_str())
    {
        if ctx.mv.at_least(2, 38) {
            return bad("Invalid status value");
        }
        return Resp::ok(&json!({"servers": []}));
    }
    if ctx.admin && req.q("deleted").and_then(strict_bool) == Some(true) {
        return Resp::ok(&json!({"servers": []}));
    }
    let project = if all_tenants {
        req.q("project_id").or(req.q("tenant_id")).map(str::to_owned)
    } else {
        Some(ctx.project.clone())
    };
    let uuid = req.q("uuid").filter(|_| usable("uuid"));
    let zone = req.q("availability_zone").filter(|_| usable("availability_zone"));
    let user = req.q("user_id").filter(|_| usable("user_id"));
    let locked = req.q("locked").filter(|_| usable("locked")).and_then(strict_bool);
    let vm = req.q("vm_state").filter(|_| usable("vm_state"));
    let mut rows: Vec<&Server> = w
        .servers
        .values()
        .filter(|s| project.as_ref().is_none_or(|p| &s.project_id == p))
        .filter(|s| name_re.as_ref().is_none_or(|r| r.is_match(&s.name)))
        .filter(|s| status.as_ref().is_none_or(|st| &s.status == st))
        .filter(|s| uuid.is_none_or(|u| s.id == u))
        .filter(|s| zone.is_none_or(|z| s.availability_zone == z))
        .filter(|s| user.is_none_or(|u| s.user_id == u))
        .filter(|s| locked.is_none_or(|l| s.locked == l))
        .filter(|s| vm.is_none_or(|v| vm_state(&s.status).0 == v))
        .collect();
    rows.sort_by(|a, b| compare(a, b, &sort));
    let start = match req.q("marker") {
        Some(m) => match w.servers.get(m).filter(|s| ctx.admin || s.project_id == ctx.project) {
            Some(marker) => rows.partition_point(|r| compare(r, marker, &sort) != Ordering::Greater),
            None => return bad(format!("marker [{m}] not found")),
        },
        None => 0,
    };
    let page: Vec<&Server> = rows.into_iter().skip(start).take(limit).collect();
    let items: Vec<Value> = page
        .iter()
        .map(|s| {
            if detail {
                server_view(ctx, s)
            } else {
                json!({"id": s.id, "name": s.name, "links": ctx.links("servers", &s.id)})
            }
        })
        .collect();
    let mut body = json!({ "servers": items });
    if let Some(last) = page.last().filter(|_| page.len() == limit && limit > 0) {
        let mut params: Vec<(String, String)> = req.query.iter().filter(|(k, _)| k != "marker").cloned().collect();
        params.push(("marker".into(), last.id.clone()));
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let path = if detail { "servers/detail" } else { "servers" };
        body["servers_links"] = json!([{"rel": "next", "href": format!("{}/{path}?{q}", ctx.link_base)}]);
    }
    Resp::ok(&body)
}

// ---------------------------------------------------------------- metadata

fn schema_error(field: &str, value: &Value, message: &str) -> Resp {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    };
    bad(format!("Invalid input for field/attribute {field}. Value: {shown}. {message}"))
}

fn key_ok(k: &str) -> bool {
    !k.is_empty() && k.chars().count() <= 255 && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
}

/// Nova's `metadata` schema: keys `^[a-zA-Z0-9-_:. ]{1,255}$`, string values ≤255.
fn validate_metadata(field: &str, value: &Value) -> Result<BTreeMap<String, String>, Resp> {
    let Some(map) = value.as_object() else {
        return Err(schema_error(field, value, &format!("{} is not of type 'object'", py_repr(value))));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if !key_ok(k) {
            return Err(schema_error(
                field,
                value,
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

/// The lock and state checks of a metadata write (409s).
fn writable(ctx: &Ctx, s: &Server, action: &str) -> Result<(), Resp> {
    if s.locked && !ctx.admin {
        return Err(fault(Service::Compute, 409, format!("Instance {} is locked", s.id)));
    }
    let (vm, _) = vm_state(&s.status);
    if !matches!(vm, "active" | "paused" | "suspended" | "stopped") {
        return Err(fault(
            Service::Compute,
            409,
            format!("Cannot '{action}' instance {} while it is in vm_state {vm}", s.id),
        ));
    }
    if let Some(task) = &s.task_state {
        return Err(fault(
            Service::Compute,
            409,
            format!("Cannot '{action}' instance {} while it is in task_state {task}", s.id),
        ));
    }
    Ok(())
}

fn too_many(n: usize) -> Result<(), Resp> {
    if n > METADATA_ITEMS {
        return Err(fault(Service::Compute, 403, format!("Maximum number of metadata items exceeds {METADATA_ITEMS}")));
    }
    Ok(())
}

fn set_metadata(w: &mut World, ctx: &Ctx, req: &Req, id: &str, replace: bool) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(value) = body.get("metadata") else {
        return bad("'metadata' is a required property");
    };
    if let Some(k) = body.as_object().and_then(|o| o.keys().find(|k| *k != "metadata")) {
        return bad(format!("Additional properties are not allowed ('{k}' was unexpected)"));
    }
    let new = match validate_metadata("metadata", value) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let server = match visible(w, ctx, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = writable(ctx, server, "update metadata") {
        return r;
    }
    let mut merged = if replace { BTreeMap::new() } else { server.metadata.clone() };
    merged.extend(new);
    if let Err(r) = too_many(merged.len()) {
        return r;
    }
    let now = w.now();
    let Some(s) = w.servers.get_mut(id) else {
        return fault(Service::Compute, 404, "Instance not found");
    };
    s.metadata = merged;
    s.updated_at = now;
    Resp::ok(&json!({"metadata": s.metadata}))
}

fn put_item(w: &mut World, ctx: &Ctx, req: &Req, id: &str, key: &str) -> Resp {
    let Some(body) = req.json() else {
        return bad("Malformed request body");
    };
    let Some(meta) = body.get("meta") else {
        return bad("'meta' is a required property");
    };
    if let Some(map) = meta.as_object() {
        if map.is_empty() {
            return schema_error("meta", meta, &format!("{} does not have enough properties", py_repr(meta)));
        }
        if map.len() > 1 {
            return schema_error("meta", meta, &format!("{} has too many properties", py_repr(meta)));
        }
    }
    let item = match validate_metadata("meta", meta) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some((k, v)) = item.into_iter().next() else {
        return bad("Malformed request body");
    };
    if k != key {
        return bad("Request body and URI mismatch");
    }
    let server = match visible(w, ctx, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = writable(ctx, server, "update metadata") {
        return r;
    }
    let n = server.metadata.len() + usize::from(!server.metadata.contains_key(&k));
    if let Err(r) = too_many(n) {
        return r;
    }
    let now = w.now();
    let Some(s) = w.servers.get_mut(id) else {
        return fault(Service::Compute, 404, "Instance not found");
    };
    s.metadata.insert(k.clone(), v.clone());
    s.updated_at = now;
    let mut meta = Map::new();
    meta.insert(k, Value::String(v));
    Resp::ok(&json!({ "meta": meta }))
}

fn delete_item(w: &mut World, ctx: &Ctx, id: &str, key: &str) -> Resp {
    let server = match visible(w, ctx, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !server.metadata.contains_key(key) {
        return fault(Service::Compute, 404, "Metadata item was not found");
    }
    if let Err(r) = writable(ctx, server, "delete metadata") {
        return r;
    }
    let now = w.now();
    if let Some(s) = w.servers.get_mut(id) {
        s.metadata.remove(key);
        s.updated_at = now;
    }
    Resp::empty(204)
}

// ---------------------------------------------------------------- quotas

fn quota(w: &World, ctx: &Ctx, target: &str, detail: bool) -> Resp {
    if !ctx.admin && target != ctx.project {
        let rule = if detail { "detail" } else { "show" };
        return fault(
            Service::Compute,
            403,
            format!("Policy doesn't allow os_compute_api:os-quota-sets:{rule} to be performed."),
        );
    }
    let instances = w.servers.values().filter(|s| s.project_id == target).count() as i64;
    let rows = [
        ("cores", 20, instances),
        ("instances", 10, instances),
        ("ram", 51200, instances * 2048),
        ("key_pairs", 100, 0),
        ("metadata_items", METADATA_ITEMS as i64, 0),
        ("server_groups", 10, 0),
        ("server_group_members", 10, 0),
    ];
    let mut set = Map::new();
    set.insert("id".into(), json!(target));
    for (k, limit, in_use) in rows {
        let v = if detail { json!({"in_use": in_use, "limit": limit, "reserved": 0}) } else { json!(limit) };
        set.insert(k.into(), v);
    }
    Resp::ok(&json!({ "quota_set": set }))
}

//! Keystone v3: discovery, tokens (password, application credential, token),
//! the catalog, projects, users, role assignments (spec §1, §2.3–2.5).

use serde_json::{Map, Value, json};

use super::http::{Req, Resp, Service, fault, keystone_time};
use super::state::{DOMAIN_ID, DOMAIN_NAME, Project, Token, World, implied_roles, role_id, stable_id};
use super::urls::Urls;

const GENERIC_401: &str = "The request you have made requires authentication.";

pub(crate) fn handle(w: &mut World, urls: &Urls, req: &Req, segs: &[&str]) -> Resp {
    let get = req.method == hyper::Method::GET || req.method == hyper::Method::HEAD;
    match segs {
        [] if get => {
            Resp::json(300, &json!({"versions": {"values": [version(urls)]}})).with("location", urls.identity() + "/")
        }
        ["v3"] if get => Resp::ok(&json!({"version": version(urls)})),
        ["v3", "auth", "tokens"] if req.method == hyper::Method::POST => issue(w, urls, req),
        ["v3", "auth", "tokens"] if get => match authed(w, urls, req) {
            Ok(_) => match req.header("x-subject-token").and_then(|t| w.token(t)).cloned() {
                Some(subject) => {
                    let id = req.header("x-subject-token").unwrap_or_default().to_owned();
                    Resp::ok(&render(w, urls, &subject, !req.query.iter().any(|(k, _)| k == "nocatalog")))
                        .with("x-subject-token", id)
                        .with("vary", "X-Auth-Token")
                }
                None => fault(Service::Identity, 404, "Could not find token."),
            },
            Err(r) => r,
        },
        ["v3", "auth", "projects"] if get => match authed(w, urls, req) {
            Ok(t) => auth_projects(w, urls, &t),
            Err(r) => r,
        },
        ["v3", "projects"] if get => match admin(w, urls, req, "identity:list_projects") {
            Ok(_) => list_projects(w, urls, req),
            Err(r) => r,
        },
        ["v3", "projects", id] if get => match authed(w, urls, req) {
            Ok(t) if !t.is_admin() && t.project_id.as_deref() != Some(*id) => forbidden("identity:get_project"),
            Ok(_) => match w.projects.get(*id) {
                Some(p) => Resp::ok(&json!({"project": project_view(urls, p)})),
                None => fault(Service::Identity, 404, format!("Could not find project: {id}.")),
            },
            Err(r) => r,
        },
        ["v3", "users", id] if get => match authed(w, urls, req) {
            Ok(t) if !t.is_admin() && t.user_id != *id => forbidden("identity:get_user"),
            Ok(_) => match w.users.get(*id) {
                Some(u) => {
                    let mut user = json!({
                        "domain_id": DOMAIN_ID, "enabled": true, "federated": [], "id": u.id,
                        "links": {"self": format!("{}/users/{}", urls.identity(), u.id)},
                        "name": u.name, "password_expires_at": null, "options": {},
                    });
                    if let Some(p) = &u.default_project_id {
                        user["default_project_id"] = json!(p);
                    }
                    if let Some(e) = &u.email {
                        user["email"] = json!(e);
                    }
                    Resp::ok(&json!({ "user": user }))
                }
                None => fault(Service::Identity, 404, format!("Could not find user: {id}.")),
            },
            Err(r) => r,
        },
        ["v3", "roles"] if get => match authed(w, urls, req) {
            Ok(_) => {
                let roles: Vec<Value> = ["admin", "member", "reader"]
                    .iter()
                    .map(|r| {
                        json!({"id": role_id(r), "name": r, "domain_id": null, "description": null,
                        "options": {}, "links": {"self": format!("{}/roles/{}", urls.identity(), role_id(r))}})
                    })
                    .collect();
                Resp::ok(&json!({"roles": roles, "links": {"self": format!("{}/roles", urls.identity()),
                    "previous": null, "next": null}}))
            }
            Err(r) => r,
        },
        ["v3", "role_assignments"] if get => match admin(w, urls, req, "identity:list_role_assignments") {
            Ok(_) => role_assignments(w, urls, req),
            Err(r) => r,
        },
        [] | ["v3"] | ["v3", "auth", "tokens" | "projects"] | ["v3", "projects" | "users", _] => {
            fault(Service::Identity, 405, "The method is not allowed for the requested URL.")
        }
        _ => fault(Service::Identity, 404, "The resource could not be found."),
    }
}

fn version(urls: &Urls) -> Value {
    json!({"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
           "links": [{"rel": "self", "href": format!("{}/", urls.identity())}],
           "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]})
}

fn unauthorized(urls: &Urls, message: &str) -> Resp {
    fault(Service::Identity, 401, message).with("www-authenticate", format!("Keystone uri=\"{}\"", urls.identity()))
}

fn forbidden(rule: &str) -> Resp {
    fault(Service::Identity, 403, format!("You are not authorized to perform the requested action: {rule}."))
}

fn validation(attr: &str, target: &str) -> Resp {
    fault(
        Service::Identity,
        400,
        format!(
            "Expecting to find {attr} in {target}. The server could not comply with the request since it is either \
             malformed or otherwise incorrect. The client is assumed to be in error."
        ),
    )
}

fn authed(w: &World, urls: &Urls, req: &Req) -> Result<Token, Resp> {
    req.token().and_then(|t| w.token(t)).cloned().ok_or_else(|| unauthorized(urls, GENERIC_401))
}

fn admin(w: &World, urls: &Urls, req: &Req, rule: &str) -> Result<Token, Resp> {
    let t = authed(w, urls, req)?;
    if t.is_admin() { Ok(t) } else { Err(forbidden(rule)) }
}

/// A user reference `{"id"}` or `{"name", "domain": {"id"|"name"}}`.
fn find_user<'w>(w: &'w World, user: &Value) -> Result<Option<&'w super::state::User>, Resp> {
    if let Some(id) = user.get("id").and_then(Value::as_str) {
        return Ok(w.users.get(id));
    }
    let Some(name) = user.get("name").and_then(Value::as_str) else {
        return Err(validation("id or name", "user"));
    };
    let Some(domain) = user.get("domain") else {
        return Err(validation("domain", "user"));
    };
    if !in_default_domain(domain) {
        return Ok(None);
    }
    Ok(w.user_by_name(name))
}

fn in_default_domain(domain: &Value) -> bool {
    domain.get("id").and_then(Value::as_str) == Some(DOMAIN_ID)
        || domain.get("name").and_then(Value::as_str) == Some(DOMAIN_NAME)
}

fn issue(w: &mut World, urls: &Urls, req: &Req) -> Resp {
    let Some(body) = req.json() else {
        return validation("auth", "request body");
    };
    let Some(auth) = body.get("auth") else {
        return validation("auth", "request body");
    };
    let Some(identity) = auth.get("identity") else {
        return validation("identity", "auth");
    };
    let Some(methods) = identity.get("methods").and_then(Value::as_array) else {
        return validation("methods", "identity");
    };
    let methods: Vec<String> = methods.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let scope = auth.get("scope");
    let now = w.now();
    let mut expires_at = now + w.timing.token_ttl;
    let mut app_cred_id = None;
    let mut inherited_project = None;
    let user_id = match methods.first().map(String::as_str) {
        Some("password") => {
            let Some(user) = identity.get("password").and_then(|p| p.get("user")) else {
                return validation("user", "password");
            };
            let found = match find_user(w, user) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let password = user.get("password").and_then(Value::as_str);
            match found {
                Some(u) if Some(u.password.as_str()) == password => u.id.clone(),
                _ => return unauthorized(urls, GENERIC_401),
            }
        }
        Some("token") => {
            let Some(id) = identity.get("token").and_then(|t| t.get("id")).and_then(Value::as_str) else {
                return validation("id", "token");
            };
            let Some(old) = w.token(id) else {
                return unauthorized(urls, GENERIC_401);
            };
            expires_at = old.expires_at;
            inherited_project = old.project_id.clone();
            old.user_id.clone()
        }
        Some("application_credential") => {
            if scope.is_some() {
                return unauthorized_identity(
                    urls,
                    "Error authenticating with application credential: Application credentials cannot request a scope.",
                );
            }
            let Some(ac) = identity.get("application_credential") else {
                return validation("application_credential", "identity");
            };
            let secret = ac.get("secret").and_then(Value::as_str);
            let cred = if let Some(id) = ac.get("id").and_then(Value::as_str) {
                match w.app_creds.get(id) {
                    Some(c) => Some(c),
                    None => {
                        return fault(Service::Identity, 404, format!("Could not find Application Credential: {id}."));
                    }
                }
            } else {
                let name = ac.get("name").and_then(Value::as_str);
                let owner = match ac.get("user").map(|u| find_user(w, u)) {
                    Some(Ok(Some(u))) => Some(u.id.clone()),
                    Some(Err(r)) => return r,
                    _ => None,
                };
                let mut matches = w
                    .app_creds
                    .values()
                    .filter(|c| Some(c.name.as_str()) == name && Some(&c.user_id) == owner.as_ref());
                match (matches.next(), matches.next()) {
                    (Some(c), None) => Some(c),
                    _ => None,
                }
            };
            match cred {
                Some(c) if Some(c.secret.as_str()) == secret => {
                    app_cred_id = Some(c.id.clone());
                    inherited_project = Some(c.project_id.clone());
                    c.user_id.clone()
                }
                _ => return unauthorized_identity(urls, GENERIC_401),
            }
        }
        _ => {
            return unauthorized_identity(urls, "Attempted to authenticate with an unsupported method.");
        }
    };
    let project_id = match scope {
        None if app_cred_id.is_some() || methods.first().is_some_and(|m| m == "token") => inherited_project,
        None => w
            .users
            .get(&user_id)
            .and_then(|u| u.default_project_id.clone())
            .filter(|p| !w.direct_roles(&user_id, p).is_empty()),
        Some(scope) => match parse_scope(w, scope) {
            Ok(p) => p,
            Err(r) => return r,
        },
    };
    let roles = match &project_id {
        Some(pid) => {
            let direct = w.direct_roles(&user_id, pid);
            let enabled = w.projects.get(pid).is_some_and(|p| p.enabled);
            if direct.is_empty() || !enabled {
                return unauthorized(urls, GENERIC_401);
            }
            implied_roles(&direct)
        }
        None => Vec::new(),
    };
    let token = Token {
        user_id,
        project_id,
        roles,
        methods,
        app_cred_id,
        issued_at: now,
        expires_at,
        audit_id: format!("{:022x}", w.rng_u64()),
    };
    let id = format!("gAAAAAB{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let catalog = !req.query.iter().any(|(k, _)| k == "nocatalog");
    let body = render(w, urls, &token, catalog);
    w.tokens.insert(id.clone(), token);
    Resp::json(201, &body).with("x-subject-token", id).with("vary", "X-Auth-Token")
}

fn unauthorized_identity(urls: &Urls, message: &str) -> Resp {
    Resp::json(401, &json!({"error": {"code": 401, "title": "Unauthorized", "message": message, "identity": {}}}))
        .with("www-authenticate", format!("Keystone uri=\"{}\"", urls.identity()))
}

/// The project a `scope` object names; `None` for `unscoped`.
fn parse_scope(w: &World, scope: &Value) -> Result<Option<String>, Resp> {
    let keys = ["project", "domain", "system", "unscoped", "OS-TRUST:trust"];
    let present: Vec<&str> = keys.iter().copied().filter(|k| scope.get(k).is_some()).collect();
    if present.len() != 1 {
        return Err(validation("system, project, domain, OS-TRUST:trust or unscoped", "scope"));
    }
    let unknown = || Err(fault(Service::Identity, 401, GENERIC_401));
    match present[0] {
        "unscoped" => Ok(None),
        "project" => {
            let p = &scope["project"];
            if let Some(id) = p.get("id").and_then(Value::as_str) {
                return if w.projects.contains_key(id) { Ok(Some(id.to_owned())) } else { unknown() };
            }
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                return Err(validation("id or name", "project"));
            };
            let Some(domain) = p.get("domain") else {
                return Err(validation("domain", "project"));
            };
            match w.projects.values().find(|x| x.name == name) {
                Some(x) if in_default_domain(domain) => Ok(Some(x.id.clone())),
                _ => unknown(),
            }
        }
        _ => unknown(),
    }
}

fn render(w: &World, urls: &Urls, t: &Token, with_catalog: bool) -> Value {
    let user_name = w.users.get(&t.user_id).map(|u| u.name.clone()).unwrap_or_default();
    let mut token = json!({
        "methods": t.methods,
        "user": {"domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME}, "id": t.user_id, "name": user_name,
                 "password_expires_at": null},
        "audit_ids": [t.audit_id],
        "expires_at": keystone_time(t.expires_at),
        "issued_at": keystone_time(t.issued_at),
    });
    if let Some(p) = t.project_id.as_ref().and_then(|p| w.projects.get(p)) {
        token["project"] = json!({"domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME}, "id": p.id, "name": p.name});
        token["is_domain"] = json!(false);
        token["roles"] = json!(t.roles.iter().map(|r| json!({"id": role_id(r), "name": r})).collect::<Vec<_>>());
        if with_catalog {
            token["catalog"] = catalog(w, urls, &p.id);
        }
    }
    if let Some(ac) = t.app_cred_id.as_ref().and_then(|id| w.app_creds.get(id)) {
        token["application_credential"] = json!({"id": ac.id, "name": ac.name, "restricted": true});
    }
    json!({ "token": token })
}

fn catalog(w: &World, urls: &Urls, project_id: &str) -> Value {
    let compute = if urls.nova_with_project {
        format!("{}/v2.1/{project_id}", urls.compute_root())
    } else {
        format!("{}/v2.1", urls.compute_root())
    };
    let volume = if urls.cinder_with_project {
        format!("{}/v3/{project_id}", urls.volume_root())
    } else {
        format!("{}/v3", urls.volume_root())
    };
    let services = [
        ("identity", "keystone", urls.identity_root()),
        ("compute", "nova", compute),
        ("block-storage", "cinder", volume.clone()),
        ("volumev3", "cinderv3", volume),
    ];
    let entries: Vec<Value> = services
        .iter()
        .map(|(kind, name, url)| {
            let endpoints: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|iface| {
                    json!({"id": stable_id(&format!("endpoint:{kind}:{iface}")), "interface": iface,
                           "region": w.region, "region_id": w.region, "url": url})
                })
                .collect();
            json!({"type": kind, "name": name, "id": stable_id(&format!("service:{kind}")), "endpoints": endpoints})
        })
        .collect();
    Value::Array(entries)
}

fn project_view(urls: &Urls, p: &Project) -> Value {
    json!({"is_domain": false, "description": p.description.clone().unwrap_or_default(), "domain_id": DOMAIN_ID,
           "enabled": p.enabled, "id": p.id, "links": {"self": format!("{}/projects/{}", urls.identity(), p.id)},
           "name": p.name, "parent_id": DOMAIN_ID, "tags": [], "options": {}})
}

const ENABLED_VALUES: &[&str] = &[
    "True", "TRUE", "true", "False", "FALSE", "false", "", "1", "0", "y", "Y", "n", "N", "on", "ON", "off", "OFF",
    "yes", "no",
];

fn list_projects(w: &World, urls: &Urls, req: &Req) -> Resp {
    let enabled = match req.q("enabled") {
        None => None,
        Some(v) if ENABLED_VALUES.contains(&v) => {
            Some(!matches!(v, "False" | "FALSE" | "false" | "0" | "n" | "N" | "off" | "OFF" | "no"))
        }
        Some(v) => {
            let allowed = ENABLED_VALUES.iter().map(|x| format!("'{x}'")).collect::<Vec<_>>().join(", ");
            return fault(
                Service::Identity,
                400,
                format!("Invalid input for field/attribute enabled. Value: {v}. '{v}' is not one of [{allowed}]"),
            );
        }
    };
    let limit = match req.q("limit").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return fault(Service::Identity, 400, "Invalid input for field/attribute limit.");
        }
    };
    let wants_domains = req
        .q("is_domain")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on" | "y"));
    let name = req.q("name");
    let domain_ok = req.q("domain_id").is_none_or(|d| d == DOMAIN_ID);
    let parent_ok = req.q("parent_id").is_none_or(|d| d == DOMAIN_ID);
    let marker = req.q("marker");
    let mut matching = w.projects.values().filter(|p| {
        !wants_domains
            && domain_ok
            && parent_ok
            && enabled.is_none_or(|e| p.enabled == e)
            && name.is_none_or(|n| p.name == n)
            && marker.is_none_or(|m| p.id.as_str() > m)
    });
    let page: Vec<&Project> = match limit {
        Some(n) => matching.by_ref().take(n).collect(),
        None => matching.by_ref().collect(),
    };
    let truncated = limit.is_some() && matching.next().is_some();
    let query = |marker: Option<&str>| -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in req.query.iter().filter(|(k, _)| k != "marker") {
            ser.append_pair(k, v);
        }
        if let Some(m) = marker {
            ser.append_pair("marker", m);
        }
        let q = ser.finish();
        if q.is_empty() { String::new() } else { format!("?{q}") }
    };
    let base = format!("{}/projects", urls.identity());
    let next = match (truncated, page.last()) {
        (true, Some(last)) => json!(format!("{base}{}", query(Some(&last.id)))),
        _ => Value::Null,
    };
    let mut body = json!({
        "projects": page.iter().map(|p| project_view(urls, p)).collect::<Vec<_>>(),
        "links": {"self": format!("{base}{}", query(marker)), "previous": null, "next": next},
    });
    if truncated {
        body["truncated"] = json!(true);
    }
    Resp::ok(&body)
}

fn auth_projects(w: &World, urls: &Urls, t: &Token) -> Resp {
    let Some(user) = w.users.get(&t.user_id) else {
        return unauthorized(urls, GENERIC_401);
    };
    let mut ids: Vec<&String> = user.roles.iter().map(|(p, _)| p).collect();
    ids.sort();
    ids.dedup();
    let projects: Vec<Value> =
        ids.iter().filter_map(|id| w.projects.get(*id)).filter(|p| p.enabled).map(|p| project_view(urls, p)).collect();
    Resp::ok(&json!({"projects": projects,
        "links": {"self": format!("{}/auth/projects", urls.identity()), "previous": null, "next": null}}))
}

fn key_only_true(req: &Req, key: &str) -> bool {
    req.q(key).is_some_and(|v| v != "0")
}

fn role_assignments(w: &World, urls: &Urls, req: &Req) -> Resp {
    let effective = key_only_true(req, "effective");
    let names = key_only_true(req, "include_names");
    if effective && req.q("group.id").is_some() {
        return fault(
            Service::Identity,
            400,
            "Combining effective and group filter will always result in an empty list.",
        );
    }
    if req.q("group.id").is_some() || req.q("scope.domain.id").is_some() || req.q("scope.system").is_some() {
        return assignments_body(urls, req, Vec::new());
    }
    let user_filter = req.q("user.id");
    let project_filter = req.q("scope.project.id");
    let role_filter = req.q("role.id");
    let mut users: Vec<&super::state::User> =
        w.users.values().filter(|u| user_filter.is_none_or(|f| u.id == f)).collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for u in users {
        for (pid, role) in &u.roles {
            if project_filter.is_some_and(|f| f != pid) {
                continue;
            }
            let expanded: Vec<String> =
                if effective { implied_roles(std::slice::from_ref(role)) } else { vec![role.clone()] };
            for r in expanded {
                if role_filter.is_some_and(|f| f != role_id(&r)) {
                    continue;
                }
                let mut links = Map::new();
                links.insert(
                    "assignment".into(),
                    json!(format!("{}/projects/{pid}/users/{}/roles/{}", urls.identity(), u.id, role_id(role))),
                );
                if &r != role {
                    links.insert("prior_role".into(), json!(format!("{}/roles/{}", urls.identity(), role_id(role))));
                }
                let mut entry = json!({"links": links, "role": {"id": role_id(&r)},
                    "scope": {"project": {"id": pid}}, "user": {"id": u.id}});
                if names {
                    let domain = json!({"id": DOMAIN_ID, "name": DOMAIN_NAME});
                    entry["role"]["name"] = json!(r);
                    entry["user"]["name"] = json!(u.name);
                    entry["user"]["domain"] = domain.clone();
                    if let Some(p) = w.projects.get(pid) {
                        entry["scope"]["project"]["name"] = json!(p.name);
                        entry["scope"]["project"]["domain"] = domain;
                    }
                }
                out.push(entry);
            }
        }
    }
    assignments_body(urls, req, out)
}

fn assignments_body(urls: &Urls, req: &Req, items: Vec<Value>) -> Resp {
    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(req.query.iter()).finish();
    let self_link = if q.is_empty() {
        format!("{}/role_assignments", urls.identity())
    } else {
        format!("{}/role_assignments?{q}", urls.identity())
    };
    Resp::ok(&json!({"role_assignments": items, "links": {"self": self_link, "previous": null, "next": null}}))
}

impl World {
    fn rng_u64(&mut self) -> u64 {
        use rand::Rng;
        self.rng.random()
    }
}

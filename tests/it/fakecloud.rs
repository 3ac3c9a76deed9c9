//! The fake cloud: conformance with the real `openstack` CLI from the test
//! venv, and direct HTTP checks of the spec's rules (validation order,
//! quotas, pagination, the backup state machine, faults, token expiry).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use staffeln_fakecloud::{
    BackupHostSpec, BackupOutcome, BackupSpec, Credentials, FakeCloud, FakeOptions, Fault, FaultEffect, Scenario,
    Service,
};

use crate::support;

// ------------------------------------------------------------------ fixtures

fn start(scenario: Scenario) -> FakeCloud {
    start_with(scenario, FakeOptions::default())
}

fn start_with(scenario: Scenario, opts: FakeOptions) -> FakeCloud {
    FakeCloud::start(scenario, opts).expect("the fake cloud starts")
}

/// Runs `openstack <args>` as `creds`; stdout, or `Err(stderr)` when it fails.
fn cli_raw(creds: &Credentials, args: &[&str]) -> Result<String, String> {
    let out = Command::new(support::venv_bin().join("openstack"))
        .args(creds.cli_args())
        .args(args)
        .env_remove("OS_CLOUD")
        .env("HOME", std::env::temp_dir()) // no clouds.yaml or cache from the user
        .output()
        .expect("the venv's openstack CLI runs (tools/setup-test-env)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `openstack <args> -f json` as `creds` and parses the output.
fn cli(creds: &Credentials, args: &[&str]) -> Result<Value, String> {
    let mut args = args.to_vec();
    args.extend(["-f", "json"]);
    let out = cli_raw(creds, &args)?;
    serde_json::from_str(&out).map_err(|e| format!("not JSON ({e}): {out}"))
}

fn cli_ok(creds: &Credentials, args: &[&str]) -> Value {
    cli(creds, args).unwrap_or_else(|e| panic!("openstack {args:?} failed:\n{e}"))
}

/// One HTTP/1.1 exchange over a fresh connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `message` of an error body, whatever its fault name.
    fn message(&self) -> String {
        self.body
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|f| f.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = TcpStream::connect(host).expect("connect to the fake cloud");
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", payload.len()));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("receive");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP response");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

/// A project-scoped token for `user` (password auth, names + Default domain).
fn token(cloud: &FakeCloud, user: &str) -> String {
    let c = cloud.credentials(user).expect("user in scenario");
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": c.username, "domain": {"name": "Default"}, "password": c.password}}},
        "scope": {"project": {"name": c.project_name, "domain": {"name": "Default"}}}}});
    let r = http("POST", &format!("{}/auth/tokens", cloud.auth_url()), &[], Some(&body));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.header("x-subject-token").expect("X-Subject-Token").to_owned()
}

/// Calls Nova or Cinder with a token and an optional microversion.
struct Api<'a> {
    cloud: &'a FakeCloud,
    token: String,
    project: String,
}

impl Api<'_> {
    fn as_user<'a>(cloud: &'a FakeCloud, user: &str) -> Api<'a> {
        let project = cloud.credentials(user).expect("user").project_id;
        Api { cloud, token: token(cloud, user), project }
    }

    fn volume(&self, method: &str, path: &str, mv: Option<&str>, body: Option<&Value>) -> Reply {
        let url = format!("{}/volume/v3/{}{path}", self.cloud.base_url(), self.project);
        let version = mv.map(|v| format!("volume {v}"));
        let mut headers = vec![("X-Auth-Token", self.token.as_str())];
        if let Some(v) = &version {
            headers.push(("OpenStack-API-Version", v));
        }
        http(method, &url, &headers, body)
    }

    fn compute(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let url = format!("{}/compute/v2.1{path}", self.cloud.base_url());
        http(method, &url, &[("X-Auth-Token", &self.token), ("OpenStack-API-Version", "compute 2.100")], body)
    }

    fn create_backup(&self, volume_id: &str, extra: Value) -> Reply {
        let mut backup = json!({"volume_id": volume_id});
        for (k, v) in extra.as_object().into_iter().flatten() {
            backup[k] = v.clone();
        }
        self.volume("POST", "/backups", Some("3.64"), Some(&json!({ "backup": backup })))
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().into_iter().flatten().filter_map(|x| x["id"].as_str().map(str::to_owned)).collect()
}

/// Follows `<key>_links` from `first` to the end; returns every id seen.
fn follow(api: &Api<'_>, key: &str, first: Reply) -> Vec<String> {
    let mut seen = Vec::new();
    let mut page = first;
    loop {
        assert_eq!(page.status, 200, "{:?}", page.body);
        seen.extend(ids(&page.body, key));
        let Some(next) = page.body[format!("{key}_links")][0]["href"].as_str().map(str::to_owned) else {
            return seen;
        };
        assert!(next.starts_with(&api.cloud.base_url()), "next links point at the emulator: {next}");
        page = http("GET", &next, &[("X-Auth-Token", &api.token), ("OpenStack-API-Version", "volume 3.64")], None);
    }
}

// ------------------------------------------------------------------ the real CLI

#[test]
fn the_cli_lists_servers_volumes_and_projects() {
    let cloud = start(Scenario::small());
    let admin = cloud.admin();
    let control = cloud.control();

    let servers = cli_ok(&admin, &["server", "list", "--all-projects", "--long"]);
    let servers = servers.as_array().expect("a list");
    assert_eq!(servers.len(), 2, "{servers:?}");
    let web = servers.iter().find(|s| s["Name"] == "web").expect("web is listed");
    assert_eq!(web["Status"], "ACTIVE");
    assert_eq!(web["Properties"], json!({"role": "frontend"}));
    assert_eq!(web["Project ID"].as_str(), control.project_id("demo").as_deref());
    assert_eq!(web["Host"], "compute1.example");
    assert_eq!(control.call_count("GET", "/compute/servers/detail"), 1);

    let volumes = cli_ok(&admin, &["volume", "list", "--all-projects"]);
    let volumes = volumes.as_array().expect("a list");
    assert_eq!(volumes.len(), 5, "{volumes:?}");
    let data1 = volumes.iter().find(|v| v["Name"] == "data-1").expect("data-1 is listed");
    assert_eq!(data1["Status"], "in-use");
    assert_eq!(data1["Size"], 10);

    let projects = cli_ok(&admin, &["project", "list"]);
    let mut names: Vec<&str> = projects.as_array().into_iter().flatten().filter_map(|p| p["Name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["admin", "demo", "other"]);
}

#[test]
fn the_cli_creates_lists_and_guards_backups() {
    let cloud = start(Scenario::small());
    let admin = cloud.admin();
    let control = cloud.control();
    let data1 = control.volume_id("data-1").expect("data-1");
    let spare = control.volume_id("spare").expect("spare");

    let refused = cli(&admin, &["volume", "backup", "create", &data1]).expect_err("in-use needs --force");
    assert!(refused.contains("Backing up an in-use volume must use the force flag."), "{refused}");
    let refused = cli(&admin, &["volume", "backup", "create", "--incremental", &spare]).expect_err("no full yet");
    assert!(refused.contains("No backups available to do an incremental backup."), "{refused}");

    let full = cli_ok(&admin, &["volume", "backup", "create", "--force", "--name", "full", &data1]);
    assert_eq!(full["volume_id"], data1.as_str());
    let full_id = full["id"].as_str().expect("id").to_owned();
    assert_eq!(control.volume_status(&data1).as_deref(), Some("backing-up"));
    assert_eq!(control.settle(), 1);
    assert_eq!(control.volume_status(&data1).as_deref(), Some("in-use"), "the previous status comes back");

    let incr = cli_ok(&admin, &["volume", "backup", "create", "--force", "--incremental", &data1]);
    let incr_id = incr["id"].as_str().expect("id").to_owned();

    let listed = cli_ok(&admin, &["volume", "backup", "list", "--all-projects"]);
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let row = |id: &str| listed.iter().find(|b| b["ID"] == id).cloned().expect("listed");
    assert_eq!(row(&full_id)["Incremental"], false);
    assert_eq!(row(&full_id)["Status"], "available");
    assert_eq!(row(&incr_id)["Incremental"], true);
    assert_eq!(row(&incr_id)["Status"], "creating");

    let refused = cli_raw(&admin, &["volume", "backup", "delete", &full_id]).expect_err("it has a child");
    assert!(refused.contains("Incremental backups exist for this backup."), "{refused}");
    assert_eq!(control.backup_status(&full_id).as_deref(), Some("available"));
}

#[test]
fn the_cli_reads_quota_usage_and_sets_server_properties() {
    let mut scenario = Scenario::small();
    scenario.backups.push(BackupSpec {
        id: None,
        volume: "spare".into(),
        name: Some("old".into()),
        status: "available".into(),
        parent: None,
        created_at: None,
        metadata: Default::default(),
    });
    let cloud = start(scenario);
    let admin = cloud.admin();
    let control = cloud.control();

    let quota = cli_ok(&admin, &["quota", "show", "--usage", "--volume", "demo"]);
    let row = |name: &str| {
        quota.as_array().into_iter().flatten().find(|r| r["Resource"] == name).cloned().expect("resource listed")
    };
    assert_eq!(row("backups")["Limit"], 5);
    assert_eq!(row("backups")["In Use"], 1);
    assert_eq!(row("backup-gigabytes")["In Use"], 20);
    assert_eq!(control.call_count("GET", "/volume/os-quota-sets/{id}"), 1, "{:?}", control.calls());

    let web = control.server_id("web").expect("web");
    cli_raw(&admin, &["server", "set", "--property", "owner=ops", &web]).expect("server set works");
    assert_eq!(control.call_count("POST", "/compute/servers/{id}/metadata"), 1);
    let shown = cli_ok(&admin, &["server", "show", &web]);
    assert_eq!(shown["properties"], json!({"owner": "ops", "role": "frontend"}));
}

// ------------------------------------------------------------------ Keystone

#[test]
fn keystone_issues_tokens_by_every_method_and_refuses_bad_ones() {
    let cloud = start(Scenario::small());
    let url = format!("{}/auth/tokens", cloud.auth_url());
    let alice = cloud.credentials("alice").expect("alice");

    let by_id = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": alice.user_id, "password": alice.password}}}, "scope": {"project": {"id": alice.project_id}}}});
    let r = http("POST", &url, &[], Some(&by_id));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.header("x-openstack-request-id").is_some_and(|id| id.starts_with("req-")));
    let types: HashSet<&str> =
        r.body["token"]["catalog"].as_array().into_iter().flatten().filter_map(|s| s["type"].as_str()).collect();
    for t in ["identity", "compute", "block-storage"] {
        assert!(types.contains(t), "catalog has {t}: {types:?}");
    }
    let cinder = r.body["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["type"] == "block-storage")
        .expect("cinder")["endpoints"][0]["url"]
        .clone();
    assert_eq!(cinder, json!(format!("{}/volume/v3/{}", cloud.base_url(), alice.project_id)));
    let roles: Vec<&str> =
        r.body["token"]["roles"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(roles, ["member", "reader"]);

    let old = r.header("x-subject-token").expect("token").to_owned();
    let expires = r.body["token"]["expires_at"].clone();
    let renew = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": old}}}});
    let r = http("POST", &url, &[], Some(&renew));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["token"]["expires_at"], expires, "a token cannot extend its own life");

    let wrong = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alice", "domain": {"name": "Default"}, "password": "nope"}}}}});
    let r = http("POST", &url, &[], Some(&wrong));
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["message"], "The request you have made requires authentication.");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Keystone uri=")));

    let no_domain = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alice", "domain": {"name": "Default"}, "password": alice.password}}},
        "scope": {"project": {"name": "demo"}}}});
    let r = http("POST", &url, &[], Some(&no_domain));
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.starts_with("Expecting to find domain in project.")));

    let app = |extra: Value| {
        let mut body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"name": "alice-cred", "secret": "alice-app-secret",
                                       "user": {"name": "alice", "domain": {"name": "Default"}}}}}});
        if !extra.is_null() {
            body["auth"]["scope"] = extra;
        }
        http("POST", &url, &[], Some(&body))
    };
    let r = app(Value::Null);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["token"]["project"]["name"], "demo");
    assert_eq!(r.body["token"]["application_credential"]["name"], "alice-cred");
    let r = app(json!({"project": {"id": alice.project_id}}));
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["identity"], json!({}));
    let unknown = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": "feedfacefeedfacefeedfacefeedface", "secret": "x"}}}});
    let r = http("POST", &url, &[], Some(&unknown));
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["message"], "Could not find Application Credential: feedfacefeedfacefeedfacefeedface.");
}

#[test]
fn keystone_lists_projects_in_pages_and_only_for_admins() {
    let cloud = start(Scenario::generate(7, 0, 0, 1));
    let admin = token(&cloud, "staffeln");
    let member = token(&cloud, "user-0001");
    let base = format!("{}/projects", cloud.auth_url());

    let r = http("GET", &base, &[("X-Auth-Token", &member)], None);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body["error"]["message"],
        "You are not authorized to perform the requested action: identity:list_projects."
    );

    let mut seen = Vec::new();
    let mut next = format!("{base}?limit=3");
    loop {
        let r = http("GET", &next, &[("X-Auth-Token", &admin)], None);
        assert_eq!(r.status, 200, "{:?}", r.body);
        seen.extend(ids(&r.body, "projects"));
        match r.body["links"]["next"].as_str() {
            Some(n) => {
                assert_eq!(r.body["truncated"], true);
                next = n.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "admin plus seven projects: {seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);

    let r = http("GET", &format!("{base}?enabled=maybe"), &[("X-Auth-Token", &admin)], None);
    assert_eq!(r.status, 400);
    let user = cloud.control().user_id("user-0001").expect("user");
    let r = http("GET", &format!("{}/users/{user}", cloud.auth_url()), &[("X-Auth-Token", &admin)], None);
    assert_eq!(r.body["user"]["email"], "user-0001@example.org");
    let r = http(
        "GET",
        &format!("{}/role_assignments?user.id={user}&effective", cloud.auth_url()),
        &[("X-Auth-Token", &admin)],
        None,
    );
    assert_eq!(r.body["role_assignments"].as_array().map(Vec::len), Some(2), "member implies reader");
}

// ------------------------------------------------------------------ Cinder

/// Issue 17.2: the emulator lists its cinder-backup hosts as Cinder's
/// `os-services` does (admin only, filtered by binary and host); a scenario
/// without any has one, `backup-1` in `nova`.
#[test]
fn os_services_lists_the_scenarios_cinder_backup_hosts_to_admins() {
    let cloud = start(Scenario::small());
    let admin = Api::as_user(&cloud, "staffeln");
    let r = admin.volume("GET", "/os-services?binary=cinder-backup", None, None);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let services = r.body["services"].as_array().expect("services").clone();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!((services[0]["host"].as_str(), services[0]["zone"].as_str()), (Some("backup-1"), Some("nova")));
    assert_eq!((services[0]["state"].as_str(), services[0]["status"].as_str()), (Some("up"), Some("enabled")));
    assert_eq!(Api::as_user(&cloud, "alice").volume("GET", "/os-services", None, None).status, 403);
    drop(cloud);

    let mut sc = Scenario::small();
    sc.backup_hosts = vec![
        BackupHostSpec::new("bk-a", "nova"),
        BackupHostSpec::new("bk-b", "nova"),
        BackupHostSpec { state: "down".into(), ..BackupHostSpec::new("bk-c", "nova") },
        BackupHostSpec::new("bk-d", "az2"),
    ];
    let cloud = start(sc);
    let admin = Api::as_user(&cloud, "staffeln");
    let all = admin.volume("GET", "/os-services", None, None);
    let binaries: HashSet<&str> =
        all.body["services"].as_array().unwrap().iter().filter_map(|s| s["binary"].as_str()).collect();
    assert_eq!(binaries, HashSet::from(["cinder-scheduler", "cinder-volume", "cinder-backup"]));
    let backup = admin.volume("GET", "/os-services?binary=cinder-backup", None, None);
    let hosts: Vec<(String, String, String)> = backup.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["host"].as_str().unwrap().into(),
                s["zone"].as_str().unwrap().into(),
                s["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [("bk-a", "nova", "up"), ("bk-b", "nova", "up"), ("bk-c", "nova", "down"), ("bk-d", "az2", "up")];
    assert_eq!(hosts, expected.map(|(h, z, s)| (h.to_owned(), z.to_owned(), s.to_owned())));
    let one = admin.volume("GET", "/os-services?binary=cinder-backup&host=bk-d", None, None);
    assert_eq!(one.body["services"].as_array().map(Vec::len), Some(1));
}

#[test]
fn backup_create_checks_run_in_the_spec_order() {
    let cloud = start(Scenario::small());
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let admin = Api::as_user(&cloud, "staffeln");
    let demo = control.project_id("demo").expect("demo");
    let spare = control.volume_id("spare").expect("spare");
    let data1 = control.volume_id("data-1").expect("data-1");
    let set_quota = |backups: i64, gigabytes: i64| {
        let body = json!({"quota_set": {"backups": backups, "backup_gigabytes": gigabytes}});
        let r = admin.volume("PUT", &format!("/os-quota-sets/{demo}"), None, Some(&body));
        assert_eq!(r.status, 200, "{:?}", r.body);
    };
    let usage = || {
        let r = alice.volume("GET", &format!("/os-quota-sets/{demo}?usage=True"), None, None);
        (r.body["quota_set"]["backups"]["in_use"].clone(), r.body["quota_set"]["backup_gigabytes"]["in_use"].clone())
    };

    let missing = "0aa67a0c-7339-4be6-b5d5-2afe21ca270c";
    let r = alice.create_backup(missing, json!({}));
    assert_eq!((r.status, r.message()), (404, format!("Volume {missing} could not be found.")));
    let other_vol = control.volume_id("other-vol").expect("other-vol");
    assert_eq!(alice.create_backup(&other_vol, json!({})).status, 404, "another project's volume is invisible");
    let r = alice.create_backup(&data1, json!({}));
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "Invalid volume: Backing up an in-use volume must use the force flag.")
    );
    let r = alice.create_backup(&spare, json!({"incremental": true}));
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "Invalid backup: No backups available to do an incremental backup.")
    );
    assert_eq!(usage(), (json!(0), json!(0)), "a refused incremental leaves the quota alone");
    let r = alice.volume(
        "POST",
        "/backups",
        Some("3.42"),
        Some(&json!({"backup": {"volume_id": spare, "metadata": {"a": "b"}}})),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.message().ends_with("Additional properties are not allowed ('metadata' was unexpected)"),
        "{}",
        r.message()
    );

    let r = alice.create_backup(&spare, json!({"name": "first"}));
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["backup"]["name"], "first");
    assert_eq!(usage(), (json!(1), json!(20)), "the quota is committed at once");
    assert_eq!(control.volume_status(&spare).as_deref(), Some("backing-up"));
    let r = alice.create_backup(&spare, json!({}));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"backing-up\"."
    );
    control.settle();

    set_quota(1, 1000);
    let r = alice.create_backup(&spare, json!({}));
    assert_eq!(r.status, 413);
    assert_eq!(r.message(), "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded");
    assert_eq!(r.header("retry-after"), Some("0"));
    assert_eq!(r.body["overLimit"]["retryAfter"], "0");
    set_quota(1, 30);
    let r = alice.create_backup(&spare, json!({}));
    assert_eq!(r.status, 413);
    assert_eq!(
        r.message(),
        "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. \
         Requested 20G, quota is 30G and 20G has been consumed.",
        "the gigabytes message wins when both are over"
    );
    set_quota(10, 1000);
    let r = alice.create_backup(&spare, json!({"incremental": "yes"}));
    assert_eq!(r.status, 202, "{:?}", r.body);
}

#[test]
fn backups_move_through_their_states_on_the_emulated_clock() {
    let opts = FakeOptions { backup_duration: Duration::from_secs(60), ..FakeOptions::default() };
    let cloud = start_with(Scenario::small(), opts);
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let admin = Api::as_user(&cloud, "staffeln");
    let spare = control.volume_id("spare").expect("spare");
    let data1 = control.volume_id("data-1").expect("data-1");

    let full = alice.create_backup(&spare, json!({}));
    let full = full.body["backup"]["id"].as_str().expect("id").to_owned();
    assert_eq!(control.tick(), 0, "not due yet");
    assert_eq!(control.backup_status(&full).as_deref(), Some("creating"));
    assert_eq!(control.advance(Duration::from_secs(61)), 1);
    let shown = alice.volume("GET", &format!("/backups/{full}"), Some("3.64"), None);
    assert_eq!(shown.body["backup"]["status"], "available");
    assert_eq!(shown.body["backup"]["container"], "volumebackups");
    assert_eq!(shown.body["backup"]["availability_zone"], "nova");
    assert!(shown.body["backup"].get("parent_id").is_none(), "parent_id is never output");
    assert!(shown.body["backup"].get("os-backup-project-attr:project_id").is_none(), "admin-only field");
    assert_eq!(control.volume_status(&spare).as_deref(), Some("available"));

    let child = alice.create_backup(&spare, json!({"incremental": true}));
    let child = child.body["backup"]["id"].as_str().expect("id").to_owned();
    control.advance(Duration::from_secs(61));
    let parent = admin.volume("GET", &format!("/backups/{full}"), Some("3.64"), None);
    assert_eq!(parent.body["backup"]["has_dependent_backups"], true);
    assert_eq!(
        parent.body["backup"]["os-backup-project-attr:project_id"].as_str(),
        control.project_id("demo").as_deref()
    );
    let r = alice.volume("DELETE", &format!("/backups/{full}"), None, None);
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid backup: Incremental backups exist for this backup."));
    let force = json!({"os-force_delete": null});
    let r = alice.volume("POST", &format!("/backups/{child}/action"), Some("3.64"), Some(&force));
    assert_eq!(r.status, 403);

    control.set_create_outcome(Some(&data1), BackupOutcome::Error { reason: "driver exploded".into() });
    let failed = alice.create_backup(&data1, json!({"force": true}));
    let failed = failed.body["backup"]["id"].as_str().expect("id").to_owned();
    control.settle();
    let r = alice.volume("GET", &format!("/backups/{failed}"), None, None);
    assert_eq!(r.body["backup"]["status"], "error");
    assert_eq!(r.body["backup"]["fail_reason"], "driver exploded");
    assert_eq!(control.volume_status(&data1).as_deref(), Some("in-use"));

    control.set_create_outcome(None, BackupOutcome::Stick);
    control.set_create_outcome(Some(&data1), BackupOutcome::Stick);
    let stuck = alice.create_backup(&data1, json!({"force": true}));
    let stuck = stuck.body["backup"]["id"].as_str().expect("id").to_owned();
    control.advance(Duration::from_secs(600));
    assert_eq!(control.backup_status(&stuck).as_deref(), Some("creating"));
    let r = alice.volume("DELETE", &format!("/backups/{stuck}"), None, None);
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid backup: Backup status must be available or error"));
    let r = admin.volume("POST", &format!("/backups/{stuck}/action"), Some("3.64"), Some(&force));
    assert_eq!(r.status, 202, "force-delete skips the status check");

    assert_eq!(alice.volume("DELETE", &format!("/backups/{failed}"), None, None).status, 202);
    assert_eq!(alice.volume("DELETE", &format!("/backups/{child}"), None, None).status, 202);
    control.settle();
    assert_eq!(control.backup_status(&child), None);
    assert_eq!(control.backup_status(&stuck), None);
    assert_eq!(alice.volume("GET", &format!("/backups/{failed}"), None, None).status, 404);
    let parent = alice.volume("GET", &format!("/backups/{full}"), None, None);
    assert_eq!(parent.body["backup"]["has_dependent_backups"], false);

    let export = admin.volume("GET", &format!("/backups/{full}/export_record"), None, None);
    assert_eq!(export.status, 200, "{:?}", export.body);
    let record = export.body["backup-record"].clone();
    let r = admin.volume("POST", "/backups/import_record", None, Some(&json!({ "backup-record": record })));
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid backup: Backup already exists in database."));
}

#[test]
fn restores_make_a_volume_that_becomes_available_and_answer_errors_as_cinder_does() {
    let opts = FakeOptions { backup_duration: Duration::from_secs(60), ..FakeOptions::default() };
    let cloud = start_with(Scenario::small(), opts);
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let admin = Api::as_user(&cloud, "staffeln");
    let spare = control.volume_id("spare").expect("spare");
    let tiny = control.volume_id("tiny").expect("tiny");
    let demo = control.project_id("demo").expect("demo");
    let backup = alice.create_backup(&spare, json!({}));
    let backup = backup.body["backup"]["id"].as_str().expect("id").to_owned();
    let restore =
        |api: &Api<'_>, id: &str, body: Value| api.volume("POST", &format!("/backups/{id}/restore"), None, Some(&body));

    // Not yet available: 400 as Cinder's backup API says it.
    let r = restore(&alice, &backup, json!({"restore": {}}));
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid backup: Backup status must be available"));
    control.settle();

    // Into a new volume: 202, the volume `restoring-backup`, the backup `restoring`.
    let r = restore(&alice, &backup, json!({"restore": {"name": "drill-1"}}));
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["restore"]["backup_id"], backup.as_str());
    assert_eq!(r.body["restore"]["volume_name"], "drill-1");
    let restored = r.body["restore"]["volume_id"].as_str().expect("volume_id").to_owned();
    assert_eq!(control.volume_status(&restored).as_deref(), Some("restoring-backup"));
    assert_eq!(control.backup_status(&backup).as_deref(), Some("restoring"));
    assert_eq!(control.volume_size(&restored), Some(20), "the backup's size");
    assert!(control.volume_ids(&demo).contains(&restored), "charged to the caller's project");
    let r = restore(&alice, &backup, json!({"restore": null}));
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid backup: Backup status must be available"));
    let r = alice.volume("DELETE", &format!("/volumes/{restored}"), None, None);
    assert_eq!(r.status, 400, "a restoring volume cannot be deleted");
    assert_eq!(control.advance(Duration::from_secs(61)), 1);
    assert_eq!(control.volume_status(&restored).as_deref(), Some("available"));
    assert_eq!(control.backup_status(&backup).as_deref(), Some("available"));
    let shown = alice.volume("GET", &format!("/volumes/{restored}"), None, None);
    assert_eq!(
        (shown.body["volume"]["name"].as_str(), shown.body["volume"]["size"].as_i64()),
        (Some("drill-1"), Some(20))
    );
    // As real Cinder makes it (seen in the functional tier's database).
    assert_eq!(shown.body["volume"]["description"], "auto-created_from_restore_from_backup");
    assert_eq!(shown.body["volume"]["bootable"], "false");

    // Without a name Cinder names it after the backup.
    let r = restore(&alice, &backup, json!({"restore": null}));
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["restore"]["volume_name"], format!("restore_backup_{backup}"));
    control.settle();

    // Into an existing volume: it must be available and large enough.
    let r = restore(&admin, &backup, json!({"restore": {"volume_id": tiny}}));
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "Invalid volume: volume size 1 is too small to restore backup of size 20.")
    );
    let r = restore(&alice, &backup, json!({"restore": {"volume_id": restored}}));
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["restore"]["volume_id"], restored.as_str());
    let r = restore(&alice, &backup, json!({"restore": {"volume_id": restored}}));
    assert_eq!(r.status, 400);
    control.settle();

    // A failed restore leaves the volume `error_restoring`; it can be deleted.
    control.set_restore_outcome(Some(&spare), BackupOutcome::Error { reason: "restore failed".into() });
    let r = restore(&alice, &backup, json!({"restore": {}}));
    let failed = r.body["restore"]["volume_id"].as_str().expect("volume_id").to_owned();
    control.settle();
    assert_eq!(control.volume_status(&failed).as_deref(), Some("error_restoring"));
    assert_eq!(control.backup_status(&backup).as_deref(), Some("available"));
    assert_eq!(alice.volume("DELETE", &format!("/volumes/{failed}"), None, None).status, 202);
    assert_eq!(control.volume_status(&failed).as_deref(), Some("deleting"));
    control.settle();
    assert_eq!(alice.volume("GET", &format!("/volumes/{failed}"), None, None).status, 404);
    assert_eq!(alice.volume("DELETE", &format!("/volumes/{failed}"), None, None).status, 404);

    // Unknown backup, bad bodies, an unknown volume.
    let missing = "8d3ed3c1-4b3f-4a3e-9f0e-3c9d2b4f0a11";
    let r = restore(&alice, missing, json!({"restore": {}}));
    assert_eq!((r.status, r.message()), (404, format!("Backup {missing} could not be found.")));
    assert_eq!(restore(&alice, &backup, json!({"volume_id": spare})).status, 400);
    assert_eq!(restore(&alice, &backup, json!({"restore": {"volume_id": "nope"}})).status, 400);
    assert_eq!(restore(&alice, &backup, json!({"restore": {"size": 3}})).status, 400);
    let r = restore(&alice, &backup, json!({"restore": {"volume_id": missing}}));
    assert_eq!((r.status, r.message()), (404, format!("Volume {missing} could not be found.")));

    // Over the volume quota: 413 with Retry-After, nothing made.
    let before = control.volume_ids(&demo);
    let quota = json!({"quota_set": {"volumes": before.len()}});
    let r = admin.volume("PUT", &format!("/os-quota-sets/{demo}"), None, Some(&quota));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = restore(&alice, &backup, json!({"restore": {}}));
    assert_eq!(r.status, 413, "{:?}", r.body);
    // Cinder's words, without the exception's name (as the functional tier saw it).
    let want = format!("Maximum number of volumes allowed ({}) exceeded for quota 'volumes'.", before.len());
    assert_eq!(r.message(), want);
    assert_eq!(r.header("retry-after"), Some("0"));
    assert_eq!(control.volume_ids(&demo), before);
    assert_eq!(control.backup_status(&backup).as_deref(), Some("available"));
}

#[test]
fn volume_and_backup_lists_page_with_links() {
    let cloud = start(Scenario::small());
    let admin = Api::as_user(&cloud, "staffeln");
    let alice = Api::as_user(&cloud, "alice");
    let first = admin.volume("GET", "/volumes/detail?all_tenants=True&limit=2", Some("3.64"), None);
    let links = first.body["volumes_links"][0]["href"].as_str().expect("a next link").to_owned();
    assert!(links.contains("marker="), "{links}");
    let all = follow(&admin, "volumes", first);
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 5);

    let mine = alice.volume("GET", "/volumes/detail?metadata=%7B%27backup%27%3A+%27daily%27%7D", None, None);
    assert_eq!(ids(&mine.body, "volumes"), [cloud.control().volume_id("data-1").expect("data-1")]);
    let r = alice.volume("GET", "/backups/detail?project_id=x", Some("3.64"), None);
    assert_eq!((r.status, r.message().as_str()), (400, "Invalid filters project_id are found in query options."));
    let r = alice.volume("GET", "/backups/detail?all_tenants=False", Some("3.64"), None);
    assert_eq!(r.status, 200, "all_tenants=False is tolerated");
    let r = admin.volume("GET", "/backups/detail?all_tenants=1&bogus=1", Some("3.64"), None);
    assert_eq!(r.body["backups"], json!([]));
    let r = admin.volume("GET", "/backups/detail?marker=0aa67a0c-7339-4be6-b5d5-2afe21ca270c", None, None);
    assert_eq!(r.status, 404);

    let servers = admin.compute("GET", "/servers/detail?all_tenants&limit=1", None);
    let next = servers.body["servers_links"][0]["href"].as_str().expect("servers_links").to_owned();
    assert!(next.contains("all_tenants=&limit=1&marker="), "sorted params: {next}");
    let r = alice.compute("GET", "/servers/detail?all_tenants=1", None);
    assert_eq!(r.status, 403);
    let r = admin.compute("GET", "/servers/detail?marker=nope", None);
    assert_eq!((r.status, r.message().as_str()), (400, "marker [nope] not found"));
}

#[test]
fn a_generated_fleet_lists_through_every_page() {
    let cloud = start(Scenario::generate(500, 5000, 10_000, 42));
    let admin = Api::as_user(&cloud, "staffeln");
    let first = admin.volume("GET", "/volumes/detail?all_tenants=True", Some("3.64"), None);
    assert_eq!(ids(&first.body, "volumes").len(), 1000, "pages are capped at 1000");
    let all = follow(&admin, "volumes", first);
    assert_eq!(all.len(), 10_000);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 10_000);

    let r = admin.volume("GET", "/volumes/detail?all_tenants=True&limit=1&with_count=true", Some("3.64"), None);
    assert_eq!(r.body["count"], 10_000);
    let member = Api::as_user(&cloud, "user-0007");
    let r = member.volume("GET", "/volumes/detail", None, None);
    assert_eq!(ids(&r.body, "volumes").len(), 20, "10,000 volumes over 500 projects");
}

// ------------------------------------------------------------------ Nova

#[test]
fn server_metadata_is_validated_like_nova() {
    let cloud = start(Scenario::small());
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let web = control.server_id("web").expect("web");
    let db = control.server_id("db").expect("db");
    let path = format!("/servers/{web}/metadata");

    let r = alice.compute("POST", &path, Some(&json!({"metadata": {"a/b": "x"}})));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "Invalid input for field/attribute metadata. Value: {'a/b': 'x'}. Additional properties are not allowed ('a/b' was unexpected)"
    );
    let long = "v".repeat(256);
    let r = alice.compute("POST", &path, Some(&json!({"metadata": {"k": long}})));
    assert_eq!(r.status, 400);
    assert!(r.message().ends_with("is too long"), "{}", r.message());

    let r = alice.compute("POST", &path, Some(&json!({"metadata": {"tier": "gold"}})));
    assert_eq!(r.body["metadata"], json!({"role": "frontend", "tier": "gold"}));
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.100"));
    assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.100"));
    assert!(r.header("x-compute-request-id").is_some_and(|id| id.starts_with("req-")));
    let r = alice.compute("PUT", &format!("{path}/tier"), Some(&json!({"meta": {"other": "x"}})));
    assert_eq!((r.status, r.message().as_str()), (400, "Request body and URI mismatch"));
    let r = alice.compute("PUT", &path, Some(&json!({"metadata": {"only": "this"}})));
    assert_eq!(r.body["metadata"], json!({"only": "this"}));
    let r = alice.compute("DELETE", &format!("{path}/missing"), None);
    assert_eq!((r.status, r.message().as_str()), (404, "Metadata item was not found"));
    assert_eq!(alice.compute("DELETE", &format!("{path}/only"), None).status, 204);

    let many: serde_json::Map<String, Value> = (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = alice.compute("POST", &path, Some(&json!({ "metadata": many })));
    assert_eq!((r.status, r.message().as_str()), (403, "Maximum number of metadata items exceeds 128"));
    let r = alice.compute("POST", &format!("/servers/{db}/metadata"), Some(&json!({"metadata": {"a": "b"}})));
    assert_eq!((r.status, r.message()), (409, format!("Instance {db} is locked")));
}

// ------------------------------------------------------------------ headers, tokens, faults

#[test]
fn microversions_url_forms_and_expired_tokens() {
    let cloud = start(Scenario::small());
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");

    let r = alice.volume("GET", "/backups/detail", None, None);
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.0"));
    let r = alice.volume("GET", "/backups/detail", Some("latest"), None);
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.71"));
    let r = alice.volume("GET", "/backups/detail", Some("3.99"), None);
    assert_eq!(r.status, 406);
    assert_eq!(
        r.body["computeFault"]["message"],
        "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71."
    );

    let projectless = format!("{}/volume/v3/volumes/detail", cloud.base_url());
    assert_eq!(http("GET", &projectless, &[("X-Auth-Token", &alice.token)], None).status, 200);
    let other = control.project_id("other").expect("other");
    let r = http(
        "GET",
        &format!("{}/volume/v3/{other}/volumes/detail", cloud.base_url()),
        &[("X-Auth-Token", &alice.token)],
        None,
    );
    assert_eq!((r.status, r.message().as_str()), (400, "Malformed request url"));
    let r = http("GET", &format!("{}/volume/", cloud.base_url()), &[], None);
    assert_eq!(r.status, 300, "discovery needs no token");

    let r = http("GET", &projectless, &[], None);
    assert_eq!(r.status, 401);
    control.expire_tokens();
    let r = alice.volume("GET", "/volumes/detail", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["message"], "The request you have made requires authentication.");
    assert_eq!(r.header("www-authenticate"), Some(format!("Keystone uri=\"{}\"", cloud.auth_url()).as_str()));
    let fresh = Api::as_user(&cloud, "alice");
    control.advance(Duration::from_secs(3601));
    assert_eq!(fresh.compute("GET", "/servers/detail", None).status, 401, "tokens expire on the emulated clock");
}

#[test]
fn injected_faults_answer_and_are_counted() {
    let cloud = start(Scenario::small());
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    control.reset_calls();

    control.add_fault(
        Fault::new(Service::Volume, Some("GET"), Some("/backups"), FaultEffect::Status { code: 503 }).times(2),
    );
    let r = alice.volume("GET", "/backups/detail", None, None);
    assert_eq!((r.status, r.body["serviceUnavailable"]["code"].clone()), (503, json!(503)));
    assert!(r.header("x-openstack-request-id").is_some());
    assert_eq!(alice.volume("GET", "/backups", None, None).status, 503);
    assert_eq!(alice.volume("GET", "/backups/detail", None, None).status, 200, "the fault was used up");
    assert_eq!(alice.volume("GET", "/volumes/detail", None, None).status, 200, "other routes are untouched");
    assert_eq!(control.call_count("GET", "/volume/backups/detail"), 2);
    assert_eq!(control.call_count("GET", "/volume/backups"), 1);

    let rule = json!({"service": "compute", "effect": {"kind": "rate_limit", "retry_after": 7}, "times": 1});
    let r = http("POST", &format!("{}/faults", cloud.control_url()), &[], Some(&rule));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = alice.compute("GET", "/servers/detail", None);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.body["overLimit"]["retryAfter"], "7");
    control.add_fault(Fault::new(Service::Compute, None, None, FaultEffect::Latency { millis: 20 }).times(1));
    assert_eq!(alice.compute("GET", "/servers/detail", None).status, 200, "latency delays, then answers");

    let calls = http("GET", &format!("{}/calls", cloud.control_url()), &[], None);
    assert_eq!(calls.body["calls"]["GET /compute/servers/detail"], 2);
    let tick = http("POST", &format!("{}/advance", cloud.control_url()), &[], Some(&json!({"seconds": 10})));
    assert_eq!(tick.status, 200, "{:?}", tick.body);
}

// ------------------------------------------------------------------ backup:delete through a guard

/// What the stub guard answers.
#[derive(Clone)]
enum Answer {
    /// This status and body.
    Reply(u16, &'static str),
    /// Nothing for this long, then `True`.
    Slow(Duration),
    /// First `GET`s this URL (Cinder's backup) with this token, waiting at
    /// most 3 s, as a guard that looks the backup up in Cinder; then
    /// `True` if Cinder answered, `False` if not.
    CallBack { url: String, token: String },
}

/// One request the stub guard received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    content_type: String,
    body: String,
}

/// A loopback HTTP server standing in for staffeln-api: records what it is
/// sent and answers as told. Stops on drop.
struct StubGuard {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    answer: std::sync::Arc<std::sync::Mutex<Answer>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StubGuard {
    fn start() -> StubGuard {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answer = Arc::new(Mutex::new(Answer::Reply(200, "True")));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, a, halt) = (seen.clone(), answer.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (s, a) = (s.clone(), a.clone());
                std::thread::spawn(move || StubGuard::serve(stream, &s, &a));
            }
        });
        StubGuard { port, seen, answer, stop }
    }

    fn serve(mut stream: TcpStream, seen: &std::sync::Mutex<Vec<Seen>>, answer: &std::sync::Mutex<Answer>) {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let (head, mut body) = loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&raw[..at]).into_owned(), raw[at + 4..].to_vec());
            }
        };
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while body.len() < length {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        let path = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or_default().to_owned();
        seen.lock().unwrap().push(Seen {
            path,
            content_type: header("content-type").unwrap_or_default(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let todo = answer.lock().unwrap().clone();
        let (status, text) = match todo {
            Answer::Reply(status, text) => (status, text),
            Answer::Slow(pause) => {
                std::thread::sleep(pause);
                (200, "True")
            }
            Answer::CallBack { url, token } => {
                let answered = raw::get_ok(&url, &token, Duration::from_secs(3));
                if answered { (200, "True") } else { (401, "False") }
            }
        };
        let _ = stream.write_all(
            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len())
                .as_bytes(),
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/backup?backup_id=%(id)s", self.port)
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for StubGuard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A blocking GET with a token and a read timeout: whether a 2xx came.
mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn get_ok(url: &str, token: &str, timeout: Duration) -> bool {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let Ok(mut stream) = TcpStream::connect(host) else { return false };
        let _ = stream.set_read_timeout(Some(timeout));
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nOpenStack-API-Version: volume 3.64\r\n\
             Connection: close\r\n\r\n"
        );
        if stream.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut raw = Vec::new();
        if stream.read_to_end(&mut raw).is_err() {
            return false;
        }
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 2")
    }
}

/// The policy scenario: alice (member) and bob (reader) of demo, carol
/// (member of other), the admin; one backup of alice's in demo, one in other.
fn policy_scenario() -> Scenario {
    serde_json::from_value(json!({
        "service_user": "staffeln",
        "projects": [{"name": "admin"}, {"name": "demo"}, {"name": "other"}],
        "users": [
            {"name": "staffeln", "password": "s", "default_project": "admin", "roles": {"admin": ["admin"]}},
            {"name": "alice", "password": "a", "roles": {"demo": ["member"]}},
            {"name": "bob", "password": "b", "roles": {"demo": ["reader"]}},
            {"name": "carol", "password": "c", "roles": {"other": ["member"]}}
        ],
        "volumes": [{"project": "demo", "name": "vol"}, {"project": "other", "name": "vol-o"}],
        "backups": [
            {"id": "aaaaaaaa-0000-4000-8000-000000000001", "volume": "vol", "name": "b1",
             "metadata": {"__automated_backup": "True", "note": "caf\u{e9}"}},
            {"id": "aaaaaaaa-0000-4000-8000-000000000002", "volume": "vol", "name": "b2"},
            {"id": "aaaaaaaa-0000-4000-8000-000000000003", "volume": "vol", "name": "b3"},
            {"id": "aaaaaaaa-0000-4000-8000-000000000004", "volume": "vol", "name": "b4"},
            {"id": "aaaaaaaa-0000-4000-8000-000000000009", "volume": "vol-o", "name": "o1"}
        ]
    }))
    .unwrap()
}

const B1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B2: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const B3: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const B4: &str = "aaaaaaaa-0000-4000-8000-000000000004";
const O1: &str = "aaaaaaaa-0000-4000-8000-000000000009";

/// What the stock oslo.policy Enforcer posts for Cinder's rule with this
/// target and these credentials (both JSON objects, key order kept).
const PY_ENFORCE: &str = r#"
import json, sys
from oslo_config import cfg
from oslo_policy import policy
rule, target, creds = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
conf = cfg.ConfigOpts()
conf(args=[], default_config_files=[])
enforcer = policy.Enforcer(conf, use_conf=False)
enforcer.set_rules(policy.Rules.from_dict({"admin_api": "is_admin:True", "backup:delete": rule}), overwrite=True,
                   use_conf=False)
print(json.dumps(enforcer.enforce("backup:delete", target, creds, do_raise=False)))
"#;

fn form_fields(body: &str) -> std::collections::BTreeMap<String, Value> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), serde_json::from_str(&v).unwrap_or(Value::Null)))
        .collect()
}

#[test]
fn cinder_asks_the_guard_before_backup_delete_exactly_as_oslo_policy_does() {
    use staffeln_fakecloud::BackupDeletePolicy;
    let guard = StubGuard::start();
    let mut policy = BackupDeletePolicy::new(guard.url());
    policy.remote_timeout = Duration::from_secs(4); // generous for the checks that must pass
    let cloud = start_with(
        policy_scenario(),
        FakeOptions { backup_delete_policy: Some(policy.clone()), ..FakeOptions::default() },
    );
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let alice_id = control.user_id("alice").unwrap();
    let demo = control.project_id("demo").unwrap();

    // The guard refuses: Cinder's 403, the backup stays.
    guard.answer(Answer::Reply(401, "False"));
    let r = alice.volume("DELETE", &format!("/backups/{B1}"), Some("3.64"), None);
    assert_eq!((r.status, r.message()), (403, "Policy doesn't allow backup:delete to be performed.".into()));
    assert_eq!(control.backup_status(B1).as_deref(), Some("available"));
    let seen = guard.take();
    assert_eq!(seen.len(), 1, "one check per delete");
    assert_eq!(seen[0].path, format!("/v1/backup?backup_id={B1}"));
    assert_eq!(seen[0].content_type, "application/x-www-form-urlencoded");
    let fields = form_fields(&seen[0].body);
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["credentials", "rule", "target"]);
    assert_eq!(fields["rule"], "backup:delete");
    let target = &fields["target"];
    assert_eq!((target["id"].as_str(), target["project_id"].as_str()), (Some(B1), Some(demo.as_str())));
    assert_eq!(target["metadata"], json!({"__automated_backup": "True", "note": "café"}));
    assert_eq!(target.as_object().unwrap().len(), 28, "every field of Cinder's Backup object: {target}");
    let created = target["created_at"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "no microseconds, as versionedobjects: {created}");
    let creds = &fields["credentials"];
    assert_eq!(
        (creds["user_id"].as_str(), creds["project_id"].as_str()),
        (Some(alice_id.as_str()), Some(demo.as_str()))
    );
    assert_eq!((creds["is_admin"].clone(), creds["roles"].clone()), (json!(false), json!(["member", "reader"])));
    assert_eq!(creds.as_object().unwrap().len(), 14, "to_policy_values() and is_admin: {creds}");

    // The stock Enforcer, given the same target and credentials, sends the
    // very same request, byte for byte.
    let raw = |name: &str| {
        url::form_urlencoded::parse(seen[0].body.as_bytes()).find(|(k, _)| k == name).unwrap().1.into_owned()
    };
    let enforced = support::run_python(PY_ENFORCE, &[&policy.rule(), &raw("target"), &raw("credentials")]);
    assert_eq!(enforced.trim(), "false");
    let python = guard.take();
    assert_eq!(python.len(), 1);
    assert_eq!((python[0].path.as_str(), python[0].body.as_str()), (seen[0].path.as_str(), seen[0].body.as_str()));

    // Only an exact True passes, whatever the status; then the delete goes on.
    guard.answer(Answer::Reply(200, "true"));
    assert_eq!(alice.volume("DELETE", &format!("/backups/{B2}"), None, None).status, 403);
    guard.answer(Answer::Reply(403, "\"True\""));
    assert_eq!(alice.volume("DELETE", &format!("/backups/{B2}"), None, None).status, 202);
    assert_eq!(control.backup_status(B2).as_deref(), Some("deleting"));
    // The guard is asked before the status is looked at.
    guard.take();
    let r = alice.volume("DELETE", &format!("/backups/{B2}"), None, None);
    assert_eq!((r.status, guard.take().len()), (400, 1), "{:?}", r.body);

    // A guard that cannot be reached, or is slower than remote_timeout: 500.
    guard.answer(Answer::Slow(Duration::from_secs(6)));
    let r = alice.volume("DELETE", &format!("/backups/{B3}"), None, None);
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert!(r.body["computeFault"]["message"].as_str().unwrap().contains("erred"), "{:?}", r.body);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v1/backup?backup_id=%(id)s", closed.local_addr().unwrap());
    drop(closed);
    control.set_backup_delete_policy(Some(BackupDeletePolicy::new(dead)));
    assert_eq!(alice.volume("DELETE", &format!("/backups/{B3}"), None, None).status, 500);
    assert_eq!(control.policy_checks().failed, 1);
    control.set_backup_delete_policy(Some(policy.clone()));
    guard.take();

    // The rule's other operands never reach the guard: a reader, another
    // project's member (who cannot even see the backup), an admin (also
    // force-deleting).
    guard.answer(Answer::Reply(200, "False"));
    let bob = Api::as_user(&cloud, "bob");
    let r = bob.volume("DELETE", &format!("/backups/{B3}"), None, None);
    assert_eq!((r.status, r.message()), (403, "Policy doesn't allow backup:delete to be performed.".into()));
    let carol = Api::as_user(&cloud, "carol");
    assert_eq!(carol.volume("DELETE", &format!("/backups/{B3}"), None, None).status, 404);
    let admin = Api::as_user(&cloud, "staffeln");
    let force = json!({"os-force_delete": {}});
    assert_eq!(admin.volume("POST", &format!("/backups/{B3}/action"), None, Some(&force)).status, 202);
    assert_eq!(admin.volume("DELETE", &format!("/backups/{O1}"), None, None).status, 202);
    assert_eq!(alice.volume("POST", &format!("/backups/{B4}/action"), None, Some(&force)).status, 403);
    assert!(guard.take().is_empty(), "short-circuits and admin-only rules never reach the guard");
    assert_eq!(control.policy_checks().refused_by_rule, 1);

    // Without the policy, the owner deletes as before.
    control.set_backup_delete_policy(None);
    assert_eq!(alice.volume("DELETE", &format!("/backups/{B4}"), None, None).status, 202);
    assert!(guard.take().is_empty());
}

#[test]
fn owners_edit_backup_metadata_at_3_43_and_readers_may_not() {
    let cloud = start(policy_scenario());
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let strip = json!({"backup": {"metadata": {}}});
    let r = alice.volume("PUT", &format!("/backups/{B1}"), Some("3.42"), Some(&strip));
    assert_eq!(r.status, 400, "metadata needs 3.43: {:?}", r.body);
    assert!(r.message().contains("'metadata' was unexpected"), "{:?}", r.body);
    let bob = Api::as_user(&cloud, "bob");
    let r = bob.volume("PUT", &format!("/backups/{B1}"), Some("3.43"), Some(&strip));
    assert_eq!((r.status, r.message()), (403, "Policy doesn't allow backup:update to be performed.".into()));
    let carol = Api::as_user(&cloud, "carol");
    assert_eq!(carol.volume("PUT", &format!("/backups/{B1}"), Some("3.43"), Some(&strip)).status, 404);
    assert!(control.backup_metadata(B1).unwrap().contains_key("__automated_backup"));
    let r = alice.volume("PUT", &format!("/backups/{B1}"), Some("3.43"), Some(&strip));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(control.backup_metadata(B1), Some(Default::default()), "the metadata is replaced, not merged");
    let shown = alice.volume("GET", &format!("/backups/{B1}"), Some("3.64"), None);
    assert_eq!(shown.body["backup"]["metadata"], json!({}));
}

/// With one Cinder API worker, a guard that looks the backup up in Cinder
/// waits for the worker that waits for it: the delete is refused after the
/// guard gives up, and the call counter shows the guard's call back.
#[test]
fn a_single_worker_cinder_shows_a_guard_that_calls_back_into_it() {
    use staffeln_fakecloud::BackupDeletePolicy;
    let guard = StubGuard::start();
    let cloud = start_with(
        policy_scenario(),
        FakeOptions {
            backup_delete_policy: Some(BackupDeletePolicy::new(guard.url())),
            cinder_workers: Some(1),
            ..FakeOptions::default()
        },
    );
    let control = cloud.control();
    let alice = Api::as_user(&cloud, "alice");
    let admin_token = token(&cloud, "staffeln");
    let admin_project = cloud.admin().project_id;
    let lookup = format!("{}/volume/v3/{admin_project}/backups/{B2}", cloud.base_url());
    guard.answer(Answer::CallBack { url: lookup.clone(), token: admin_token.clone() });
    control.reset_calls();
    let r = alice.volume("DELETE", &format!("/backups/{B2}"), None, None);
    assert_eq!(r.status, 403, "the guard's look-up waited for the only worker: {:?}", r.body);
    assert_eq!(control.call_count("GET", "/volume/backups/{id}"), 1, "the guard called back");
    assert_eq!(control.backup_status(B2).as_deref(), Some("available"));
    // With more workers the same guard gets its answer (and doubles Cinder's load).
    let cloud = start_with(
        policy_scenario(),
        FakeOptions {
            backup_delete_policy: Some(BackupDeletePolicy::new(guard.url())),
            cinder_workers: Some(2),
            ..FakeOptions::default()
        },
    );
    let alice = Api::as_user(&cloud, "alice");
    let admin_project = cloud.admin().project_id;
    let lookup = format!("{}/volume/v3/{admin_project}/backups/{B2}", cloud.base_url());
    guard.answer(Answer::CallBack { url: lookup, token: token(&cloud, "staffeln") });
    assert_eq!(alice.volume("DELETE", &format!("/backups/{B2}"), None, None).status, 202);
}

/// Issue 15's behaviours of a real cloud: an answer lost after the request
/// took effect (a proxy's 503 after Cinder made the backup), multiattach
/// volumes listed with every server, and Nova's 409 for metadata writes to a
/// server in ERROR or busy with a task.
#[test]
fn lost_answers_multiattach_volumes_and_servers_that_refuse_metadata() {
    let json = json!({
        "projects": [{"name": "p"}],
        "users": [{"name": "u", "password": "pw", "roles": {"p": ["member"]}},
                  {"name": "ops", "password": "pw", "roles": {"p": ["admin"]}}],
        "servers": [{"project": "p", "name": "a", "volumes": ["shared"]},
                    {"project": "p", "name": "b", "volumes": ["shared"]}],
        "volumes": [{"project": "p", "name": "shared", "multiattach": true}, {"project": "p", "name": "solo"}]
    });
    let mut twice: Scenario = serde_json::from_value(json.clone()).unwrap();
    twice.volumes[0].multiattach = false;
    let err = match FakeCloud::start(twice, FakeOptions::default()) {
        Ok(_) => panic!("a volume attached twice needs multiattach"),
        Err(e) => support::error_chain(&e),
    };
    assert!(err.contains("attached twice"), "{err}");

    let cloud = start(serde_json::from_value(json).unwrap());
    let control = cloud.control();
    let u = Api::as_user(&cloud, "u");
    let shared = control.volume_id("shared").unwrap();
    let r = u.volume("GET", &format!("/volumes/{shared}"), Some("3.64"), None);
    assert_eq!(r.body["volume"]["multiattach"], json!(true));
    let servers: HashSet<&str> =
        r.body["volume"]["attachments"].as_array().unwrap().iter().filter_map(|a| a["server_id"].as_str()).collect();
    let (a, b) = (control.server_id("a").unwrap(), control.server_id("b").unwrap());
    assert_eq!(servers, HashSet::from([a.as_str(), b.as_str()]));

    let solo = control.volume_id("solo").unwrap();
    let rule = json!({"service": "volume", "method": "POST", "path": "/backups",
                      "effect": {"kind": "status_after_effect", "code": 503}, "times": 1});
    assert_eq!(http("POST", &format!("{}/faults", cloud.control_url()), &[], Some(&rule)).status, 201);
    let r = u.create_backup(&solo, json!({}));
    assert_eq!(r.status, 503, "the answer is lost…");
    assert_eq!(control.backups_of(&solo).len(), 1, "…after the backup was made");

    let path = format!("/servers/{a}/metadata");
    let meta = json!({"metadata": {"last-backup-time": "2026-12-02T00:00:00Z"}});
    assert!(control.set_server_state(&a, "ERROR", None));
    let r = u.compute("POST", &path, Some(&meta));
    assert_eq!(
        (r.status, r.message()),
        (409, format!("Cannot 'update metadata' instance {a} while it is in vm_state error"))
    );
    control.set_server_state(&a, "ACTIVE", Some("resize_migrating"));
    let r = u.compute("POST", &path, Some(&meta));
    let expected = format!("Cannot 'update metadata' instance {a} while it is in task_state resize_migrating");
    assert_eq!((r.status, r.message()), (409, expected));
    control.set_server_state(&a, "ACTIVE", None);
    assert_eq!(u.compute("POST", &path, Some(&meta)).status, 200);
    assert_eq!(control.server_metadata(&a).unwrap()["last-backup-time"], "2026-12-02T00:00:00Z");
}

#[test]
fn a_volume_deleted_mid_cycle_is_gone_and_its_backups_stay() {
    let cloud = start(Scenario::small());
    let admin = cloud.admin();
    let control = cloud.control();
    let data1 = control.volume_id("data-1").expect("data-1");
    let web = control.server_id("web").expect("web");

    let full = cli_ok(&admin, &["volume", "backup", "create", "--force", "--name", "full", &data1]);
    let full_id = full["id"].as_str().expect("id").to_owned();
    let refused = control.delete_volume(&data1).expect_err("Cinder refuses while it backs up");
    assert!(refused.contains("current status is: backing-up"), "{refused}");
    assert_eq!(control.settle(), 1);

    control.delete_volume(&data1).expect("deleted once the backup is done");
    let shown = cli(&admin, &["volume", "show", &data1]).expect_err("the volume is gone");
    assert!(shown.contains(&format!("No Volume found for {data1}")), "{shown}");
    let attached = cli_ok(&admin, &["server", "show", &web]);
    assert!(!attached.to_string().contains(&data1), "still attached: {attached}");
    assert_eq!(control.backup_status(&full_id).as_deref(), Some("available"), "its backup stays");
    let refused = cli(&admin, &["volume", "backup", "create", "--force", &data1]).expect_err("nothing to back up");
    assert!(refused.contains(&format!("No Volume found for {data1}")), "{refused}");
    assert!(control.delete_volume(&data1).unwrap_err().contains("could not be found"));
}

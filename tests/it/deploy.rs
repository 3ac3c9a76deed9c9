//! The operations side as CI can check it without devstack, docker or a Ceph
//! cluster: the devstack plugin under a stubbed devstack (then its files read
//! by oslo.config and its policy rule evaluated by oslo.policy), shellcheck
//! and bashate, the systemd units (`systemd-analyze verify`), the kolla files
//! (schema, image file list, `kolla_set_configs` run, bootstrap), the command
//! lines against the real binaries, and the release notes, API reference and
//! docs built with `sphinx-build -W`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{repo_root, run_python, venv_bin};

/// A tool from PATH, or a failure saying how to get it.
fn tool(name: &str, hint: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {hint} (tools/setup-test-env installs it)"))
}

/// A console script of the test venv (sphinx-build, bashate, reno).
fn venv_tool(name: &str) -> PathBuf {
    let path = venv_bin().join(name);
    assert!(
        path.exists(),
        "{} is missing: rebuild .venv-test (tools/setup-test-env) from tools/test-requirements.txt",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs the command and returns its stdout; fails the test with both streams otherwise.
fn check(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn binary(name: &str) -> PathBuf {
    match name {
        "staffeln-api" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-api")),
        "staffeln-conductor" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-conductor")),
        "staffeln-manage" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln-manage")),
        "staffeln" => PathBuf::from(env!("CARGO_BIN_EXE_staffeln")),
        other => panic!("{other} is not a Staffeln binary"),
    }
}

/// Runs a deployment command line (`staffeln-api --config-file …`) with
/// `--help` appended: clap rejects an unknown option or subcommand before it
/// reaches `--help`, so success means the line parses.
fn assert_command_line_parses(line: &str, origin: &str) {
    let mut words = line.split_whitespace();
    let program = words.next().unwrap_or_else(|| panic!("{origin}: empty command"));
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    let args: Vec<&str> = words.collect();
    let out = run(Command::new(binary(name)).args(&args).arg("--help"));
    assert!(out.status.success(), "{origin}: `{line}` does not parse:\n{}", String::from_utf8_lossy(&out.stderr));
}

// --- devstack -------------------------------------------------------------

/// Runs the harness for a scenario; returns its work directory.
fn devstack_harness(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let stdout = check(
        Command::new("bash")
            .arg(repo_root().join("tests/deploy/devstack-harness.sh"))
            .arg(dir.path())
            .arg(scenario)
            .current_dir(repo_root()),
    );
    assert!(stdout.contains(&format!("devstack plugin harness ({scenario}): ok")), "{stdout}");
    dir
}

/// The file as oslo.config's own INI parser reads it: group → option → last value.
fn oslo_ini(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = run_python(
        "import json, sys\n\
         from oslo_config import cfg\n\
         sections = {}\n\
         cfg.ConfigParser(sys.argv[1], sections).parse()\n\
         print(json.dumps({s: {k: v[-1] for k, v in o.items()} for s, o in sections.items()}))\n",
        &[path.to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap()
}

/// Evaluates the policy file's `backup:delete` with oslo.policy against a
/// loopback server standing in for staffeln-api (it denies `auto-*` ids).
const POLICY_PROBE: &str = r#"
import json, sys, threading, yaml
from http.server import BaseHTTPRequestHandler, HTTPServer
from oslo_config import cfg
from oslo_policy import policy

seen = []
class Guard(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen.append(self.path)
        body = b"False" if "backup_id=auto-" in self.path else b"True"
        self.send_response(401 if body == b"False" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

server = HTTPServer(("127.0.0.1", 0), Guard)
threading.Thread(target=server.serve_forever, daemon=True).start()
rules = yaml.safe_load(open(sys.argv[1]))
rule = rules["backup:delete"]
assert rule.count("http://192.0.2.10:8808/") == 1, rule
local = dict(rules, **{"backup:delete": rule.replace("192.0.2.10:8808", "127.0.0.1:%d" % server.server_port)})
path = sys.argv[2]
with open(path, "w") as f:
    yaml.safe_dump(local, f)
conf = cfg.ConfigOpts()
conf([])
enforcer = policy.Enforcer(conf, policy_file=path)
enforcer.register_default(policy.RuleDefault("admin_api", "role:admin"))
def ask(backup, project, roles):
    before = len(seen)
    ok = enforcer.enforce("backup:delete", {"id": backup, "project_id": "P"}, {"project_id": project, "roles": roles})
    return {"allowed": bool(ok), "calls": seen[before:]}
print(json.dumps({
    "member_automated": ask("auto-1", "P", ["member"]),
    "member_manual": ask("manual-1", "P", ["member"]),
    "reader_manual": ask("manual-1", "P", ["reader"]),
    "admin_automated": ask("auto-1", "X", ["admin"]),
    "other_project": ask("manual-1", "Q", ["member"]),
}))
server.shutdown()
"#;

fn check_devstack_files(work: &Path, ceph: bool) {
    let ini = oslo_ini(&work.join("staffeln.conf"));
    let get = |g: &str, o: &str| ini.get(g).and_then(|s| s.get(o)).cloned().unwrap_or_default();
    assert_eq!(
        get("database", "connection"),
        "mysql+pymysql://root:dbpass@127.0.0.1/staffeln?charset=utf8&plugin=dbcounter"
    );
    assert_eq!(get("DEFAULT", "transport_url"), "rabbit://stackrabbit:rabbitpass@192.0.2.10:5672/");
    assert_eq!(get("api", "port"), "8808");
    assert_eq!(get("openstack", "username"), "staffeln");
    assert_eq!(get("openstack", "project_name"), "service");
    assert_eq!(ini.contains_key("ceph_compression"), ceph, "{ini:?}");
    if ceph {
        assert_eq!(get("ceph_compression", "pool"), "volbackups");
        assert_eq!(get("ceph_compression", "mode"), "aggressive");
    }

    let probe = run_python(
        POLICY_PROBE,
        &[work.join("policy.yaml").to_str().unwrap(), work.join("policy-local.yaml").to_str().unwrap()],
    );
    let got: serde_json::Value = serde_json::from_str(&probe).unwrap();
    let call = serde_json::json!(["/v1/backup?backup_id=auto-1"]);
    assert_eq!(got["member_automated"], serde_json::json!({"allowed": false, "calls": call}), "{got}");
    assert_eq!(
        got["member_manual"],
        serde_json::json!({"allowed": true, "calls": ["/v1/backup?backup_id=manual-1"]}),
        "{got}"
    );
    // Short-circuit: no role, an admin or another project never reach staffeln-api.
    assert_eq!(got["reader_manual"], serde_json::json!({"allowed": false, "calls": []}), "{got}");
    assert_eq!(got["admin_automated"], serde_json::json!({"allowed": true, "calls": []}), "{got}");
    assert_eq!(got["other_project"], serde_json::json!({"allowed": false, "calls": []}), "{got}");
}

#[test]
fn devstack_plugin_with_swift_backups() {
    let work = devstack_harness("swift");
    check_devstack_files(work.path(), false);
}

#[test]
fn devstack_plugin_with_ceph_backups() {
    let work = devstack_harness("ceph");
    check_devstack_files(work.path(), true);
}

const SHELL_SCRIPTS: [&str; 6] = [
    "devstack/plugin.sh",
    "devstack/settings",
    "devstack/lib/staffeln",
    "docker/staffeln/kolla_start",
    "docker/staffeln/extend_start.sh",
    "tests/deploy/devstack-harness.sh",
];

#[test]
fn deployment_scripts_pass_shellcheck_and_bashate() {
    let shellcheck = tool("shellcheck", "apt-get install shellcheck");
    check(Command::new(shellcheck).arg("-x").args(SHELL_SCRIPTS).current_dir(repo_root()));
    let out = check(
        Command::new(venv_tool("bashate"))
            .args(["-v", "--ignore", "E006", "--error", "E005,E042,E043"])
            .args(SHELL_SCRIPTS)
            .current_dir(repo_root()),
    );
    assert!(!out.contains("E0"), "bashate reported:\n{out}");
}

// --- systemd --------------------------------------------------------------

/// `[Section] Key=Value` lines of a unit file (no continuations in ours).
fn unit_keys(text: &str) -> BTreeMap<(String, String), String> {
    let mut section = String::new();
    let mut keys = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            keys.insert((section.clone(), k.trim().to_owned()), v.trim().to_owned());
        } else {
            panic!("unit line is neither a section, a key nor a comment: {line}");
        }
    }
    keys
}

#[test]
fn systemd_units_verify_and_run_the_right_binary() {
    let analyze = tool("systemd-analyze", "apt-get install systemd");
    let dir = tempfile::tempdir().unwrap();
    for service in ["staffeln-api", "staffeln-conductor"] {
        let path = repo_root().join(format!("etc/systemd/{service}.service"));
        let text = read(&path);
        let keys = unit_keys(&text);
        let key = |s: &str, k: &str| keys.get(&(s.to_owned(), k.to_owned())).cloned().unwrap_or_default();
        let exec = key("Service", "ExecStart");
        assert!(exec.starts_with(&format!("/usr/bin/{service} ")), "{service}: ExecStart={exec}");
        assert_eq!(key("Service", "Type"), "notify", "{service}: the binaries send READY=1");
        assert_eq!(key("Service", "ExecReload"), "/bin/kill -HUP $MAINPID", "{service}: SIGHUP reloads");
        assert_eq!(key("Service", "KillMode"), "process");
        let stop: u32 = key("Service", "TimeoutStopSec").parse().unwrap();
        assert!(stop > 60, "{service}: TimeoutStopSec={stop} must exceed graceful_shutdown_timeout (60)");
        assert_eq!(key("Service", "User"), "staffeln");
        assert_eq!(key("Install", "WantedBy"), "multi-user.target");
        assert_command_line_parses(&exec, &path.display().to_string());

        // systemd's own parser, with the ExecStart binary pointing at the build.
        let local = dir.path().join(format!("{service}.service"));
        std::fs::write(&local, text.replace(&format!("/usr/bin/{service}"), binary(service).to_str().unwrap()))
            .unwrap();
        let out = run(Command::new(&analyze).arg("verify").arg(&local));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify {service}: {stderr}");
    }
}

/// The allocator settings the conductor's unit gives it (which
/// staffeln-bench-cycle measures with) are the image's too.
#[test]
fn the_image_and_devstack_set_the_allocator_as_the_conductors_unit_does() {
    let unit = read(&repo_root().join("etc/systemd/staffeln-conductor.service"));
    let from_unit: BTreeSet<&str> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Environment="))
        .filter(|v| v.starts_with("MALLOC_"))
        .collect();
    assert!(from_unit.contains("MALLOC_ARENA_MAX=1"), "{from_unit:?}");
    let image = read(&repo_root().join("docker/staffeln/Dockerfile"));
    let from_image: BTreeSet<&str> =
        image.lines().filter_map(|l| l.trim().strip_prefix("ENV ")).filter(|v| v.starts_with("MALLOC_")).collect();
    assert_eq!(from_unit, from_image);
    let settings = read(&repo_root().join("devstack/settings"));
    let devstack = settings
        .lines()
        .find_map(|l| l.strip_prefix("STAFFELN_CONDUCTOR_ENV=${STAFFELN_CONDUCTOR_ENV:-\""))
        .and_then(|l| l.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("devstack/settings defines no STAFFELN_CONDUCTOR_ENV default"));
    let from_devstack: BTreeSet<&str> = devstack.split_whitespace().collect();
    assert_eq!(from_unit, from_devstack);
}

#[test]
fn systemd_verify_catches_a_broken_unit() {
    // The check above can fail: a misspelt key and a bad time are reported.
    let analyze = tool("systemd-analyze", "apt-get install systemd");
    let dir = tempfile::tempdir().unwrap();
    let text = read(&repo_root().join("etc/systemd/staffeln-api.service"))
        .replace("/usr/bin/staffeln-api", binary("staffeln-api").to_str().unwrap())
        .replace("KillMode=", "KillMod=")
        .replace("TimeoutStopSec=90", "TimeoutStopSec=ninety");
    let local = dir.path().join("staffeln-api.service");
    std::fs::write(&local, text).unwrap();
    let out = run(Command::new(&analyze).arg("verify").arg(&local));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KillMod") && stderr.contains("ninety"), "{stderr}");
}

// --- kolla ----------------------------------------------------------------

const KOLLA_SERVICES: [&str; 2] = ["staffeln-api", "staffeln-conductor"];

fn kolla_dir() -> PathBuf {
    repo_root().join("docker/staffeln")
}

/// Validates JSON documents against the kolla config.json schema; returns
/// one line per document: `ok` or the first error.
fn validate_config_json(docs: &[serde_json::Value]) -> Vec<String> {
    let out = run_python(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         jsonschema.Draft202012Validator.check_schema(schema)\n\
         v = jsonschema.Draft202012Validator(schema)\n\
         for doc in json.loads(sys.argv[2]):\n\
         \x20   errs = sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
         \x20   print('ok' if not errs else errs[0].message)\n",
        &[
            kolla_dir().join("config.schema.json").to_str().unwrap(),
            &serde_json::Value::from(docs.to_vec()).to_string(),
        ],
    );
    out.lines().map(str::to_owned).collect()
}

#[test]
fn kolla_config_json_follows_kolla_schema() {
    let docs: Vec<_> = KOLLA_SERVICES.iter().map(|s| json(&kolla_dir().join(s).join("config.json"))).collect();
    assert_eq!(validate_config_json(&docs), ["ok", "ok"]);
    for (service, doc) in KOLLA_SERVICES.iter().zip(&docs) {
        let command = doc["command"].as_str().unwrap();
        assert!(command.starts_with(&format!("{service} ")), "{command}");
        assert_command_line_parses(command, &format!("docker/staffeln/{service}/config.json"));
    }
    // The schema can fail: each broken copy is rejected.
    let mut no_owner = docs[0].clone();
    no_owner["config_files"][0].as_object_mut().unwrap().remove("owner");
    let mut glob_dir = docs[0].clone();
    glob_dir["directories"][0]["path"] = "/var/log/kolla/*".into();
    let mut typo = docs[0].clone();
    typo["config_file"] = serde_json::json!([]);
    let mut quoted = docs[0].clone();
    quoted["command"] = "staffeln-api --config-file '/etc/a b.conf'".into();
    let mut bad_perm = docs[0].clone();
    bad_perm["config_files"][0]["perm"] = "rw-------".into();
    let verdicts = validate_config_json(&[no_owner, glob_dir, typo, quoted, bad_perm]);
    assert_eq!(verdicts.len(), 5);
    assert!(verdicts.iter().all(|v| v != "ok"), "{verdicts:?}");
}

/// What the runtime stage of the Dockerfile puts in the image.
#[derive(Debug, Default)]
struct Image {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
    built_bins: BTreeSet<String>,
    entrypoint: String,
    cmd: String,
}

impl Image {
    fn has(&self, path: &str) -> bool {
        self.files.contains(path)
            || self.dirs.contains(path)
            || self.dirs.iter().any(|d| d.starts_with(&format!("{path}/")))
    }
}

/// Files of the base image and of the apt packages the runtime stage
/// installs that the start scripts use.
const BASE_FILES: [&str; 4] = ["/bin/bash", "/usr/bin/env", "/usr/bin/setpriv", "/usr/bin/id"];
const PACKAGE_FILES: [(&str, &str); 4] = [
    ("dumb-init", "/usr/bin/dumb-init"),
    ("python3", "/usr/bin/python3"),
    ("python3-yaml", "/usr/lib/python3/dist-packages/yaml"),
    ("ca-certificates", "/etc/ssl/certs"),
];

fn parse_dockerfile(text: &str) -> Image {
    let joined = text.replace("\\\n", " ");
    let stages: Vec<&str> = joined.split("\nFROM ").collect();
    let mut image = Image::default();
    for line in stages[1].lines() {
        if let Some(rest) = line.trim().strip_prefix("RUN cargo build") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.windows(2) {
                if pair[0] == "--bin" {
                    image.built_bins.insert(pair[1].to_owned());
                }
            }
        }
    }
    let runtime = stages.last().unwrap();
    image.files.extend(BASE_FILES.iter().map(|s| (*s).to_owned()));
    for line in runtime.lines().map(str::trim) {
        let (instr, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instr {
            "COPY" => {
                let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                let (dest, sources) = words.split_last().unwrap();
                for src in sources {
                    let name = Path::new(src).file_name().unwrap().to_str().unwrap();
                    if rest.contains("--from=builder") {
                        let bin = src.strip_prefix("/src/target/release/").unwrap_or_else(|| panic!("{src}"));
                        assert!(image.built_bins.contains(bin), "COPY {src}: the builder does not build {bin}");
                    }
                    image.files.insert(if dest.ends_with('/') { format!("{dest}{name}") } else { (*dest).to_owned() });
                }
            }
            "RUN" => {
                for cmd in rest.split("&&").map(str::trim) {
                    let words: Vec<&str> = cmd.split_whitespace().collect();
                    match words.first().copied() {
                        Some("mkdir") => image
                            .dirs
                            .extend(words[1..].iter().filter(|w| !w.starts_with('-')).map(|w| (*w).to_owned())),
                        Some("groupadd") => {
                            image.groups.insert((*words.last().unwrap()).to_owned());
                        }
                        Some("useradd") => {
                            image.users.insert((*words.last().unwrap()).to_owned());
                        }
                        Some("apt-get") if words.get(1) == Some(&"install") => {
                            for (package, file) in PACKAGE_FILES {
                                if words.contains(&package) {
                                    image.files.insert(file.to_owned());
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            "ENTRYPOINT" => image.entrypoint = rest.to_owned(),
            "CMD" => image.cmd = rest.to_owned(),
            _ => {}
        }
    }
    image
}

#[test]
fn kolla_image_holds_every_path_its_config_and_start_use() {
    let image = parse_dockerfile(&read(&kolla_dir().join("Dockerfile")));
    for bin in ["staffeln-api", "staffeln-conductor", "staffeln-manage", "staffeln"] {
        assert!(image.files.contains(&format!("/usr/local/bin/{bin}")), "{bin} not in the image: {image:?}");
    }
    for script in ["kolla_start", "kolla_set_configs", "kolla_extend_start"] {
        assert!(image.files.contains(&format!("/usr/local/bin/{script}")), "{script} not in the image");
    }
    let entry: Vec<String> = serde_json::from_str(&image.entrypoint).unwrap();
    let cmd: Vec<String> = serde_json::from_str(&image.cmd).unwrap();
    assert!(image.has(&format!("/usr/bin/{}", entry[0])), "ENTRYPOINT {entry:?}");
    assert_eq!(cmd, ["kolla_start"]);
    assert!(image.has("/var/lib/kolla/config_files"), "config.json's sources live there");

    // The interpreter of kolla_set_configs and the commands kolla_start runs.
    let set_configs = read(&kolla_script().1);
    assert!(set_configs.starts_with("#!/usr/bin/env python3\n") && image.has("/usr/bin/python3"));
    assert!(set_configs.contains("import yaml") && image.has("/usr/lib/python3/dist-packages/yaml"));
    let start = read(&kolla_dir().join("kolla_start"));
    for used in ["kolla_set_configs", ". kolla_extend_start", "setpriv", "cat /run_command"] {
        assert!(start.contains(used), "kolla_start no longer uses {used}: update this test");
    }
    assert!(image.has("/usr/bin/setpriv") && image.has("/bin/bash"));

    for service in KOLLA_SERVICES {
        let doc = json(&kolla_dir().join(service).join("config.json"));
        let program = doc["command"].as_str().unwrap().split_whitespace().next().unwrap();
        assert!(image.files.contains(&format!("/usr/local/bin/{program}")), "{service}: {program}");
        for f in doc["config_files"].as_array().unwrap() {
            let (src, dest) = (f["source"].as_str().unwrap(), f["dest"].as_str().unwrap());
            assert!(src.starts_with("/var/lib/kolla/config_files/"), "{service}: source {src}");
            let parent = Path::new(dest).parent().unwrap().to_str().unwrap();
            assert!(image.has(parent), "{service}: {dest}: {parent} is not in the image");
        }
        let entries =
            ["directories", "permissions"].iter().flat_map(|k| doc[*k].as_array().cloned().unwrap_or_default());
        for e in entries.chain(doc["config_files"].as_array().unwrap().clone()) {
            let path = e.get("path").or_else(|| e.get("dest")).and_then(|p| p.as_str()).unwrap();
            let base = path.split('*').next().unwrap().trim_end_matches('/');
            let base = if path.contains('*') { Path::new(base).to_str().unwrap() } else { base };
            assert!(
                image.has(base) || image.has(Path::new(base).parent().unwrap().to_str().unwrap()),
                "{service}: {path}"
            );
            let owner = e["owner"].as_str().unwrap();
            let (user, group) = owner.split_once(':').unwrap_or((owner, owner));
            assert!(image.users.contains(user), "{service}: user {user} is not created in the image");
            assert!(image.groups.contains(group), "{service}: group {group} is not created in the image");
        }
    }

    // Logs in kolla's layout: log_dir alone gives <log_dir>/<program>.log,
    // which the permissions glob covers.
    let conf = oslo_ini(&kolla_dir().join("staffeln.conf.kolla"));
    assert_eq!(conf["DEFAULT"]["log_dir"], "/var/log/kolla/staffeln");
    let doc = json(&kolla_dir().join("staffeln-api/config.json"));
    assert_eq!(doc["permissions"][0]["path"], "/var/log/kolla/staffeln/*.log");
}

fn id(flag: &str) -> String {
    check(Command::new("id").arg(flag)).trim().to_owned()
}

/// kolla's own `set_configs.py` from the kolla wheel in `.venv-kolla`
/// (tools/setup-test-env installs tools/kolla-requirements.txt there), and
/// that venv's interpreter.
fn kolla_script() -> (PathBuf, PathBuf) {
    let python = repo_root().join(".venv-kolla/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tools/setup-test-env (it installs tools/kolla-requirements.txt into .venv-kolla)",
        python.display()
    );
    // find_spec does not run kolla/__init__.py (its dependencies are not installed).
    let dir =
        check(Command::new(&python).args([
            "-c",
            "import importlib.util; print(importlib.util.find_spec('kolla').submodule_search_locations[0])",
        ]));
    let script = PathBuf::from(dir.trim()).join("docker/base/set_configs.py");
    assert!(script.exists(), "{} is not in the kolla wheel", script.display());
    (python, script)
}

/// `ARG NAME=value` of the Dockerfile.
fn dockerfile_arg(name: &str) -> String {
    let text = read(&kolla_dir().join("Dockerfile"));
    let prefix = format!("ARG {name}=");
    let line = text.lines().find_map(|l| l.trim().strip_prefix(prefix.as_str()));
    line.unwrap_or_else(|| panic!("Dockerfile has no {prefix}")).trim().to_owned()
}

/// A directory laid out like the image for kolla_set_configs: `/etc/passwd`
/// and `/etc/group` with the image's users, `/var/lib/kolla/config_files`
/// holding a service's `config.json` and a `staffeln.conf`, and
/// `/var/lib/staffeln`. As root the ids are the image's (Dockerfile ARGs);
/// otherwise 0, the only id an unprivileged user namespace maps, so that
/// modes are checked but owners are not.
struct KollaRoot {
    dir: tempfile::TempDir,
    as_root: bool,
    staffeln_uid: u32,
    kolla_gid: u32,
}

impl KollaRoot {
    fn new(service: &str) -> KollaRoot {
        let as_root = id("-u") == "0";
        let (staffeln_uid, kolla_gid) = if as_root {
            (dockerfile_arg("STAFFELN_UID").parse().unwrap(), dockerfile_arg("KOLLA_GID").parse().unwrap())
        } else {
            (0, 0)
        };
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in ["etc", "var/lib/kolla/config_files", "var/lib/staffeln", "tmp"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        // getpwuid/getgrgid return the first match: the image's names first.
        std::fs::write(
            r.join("etc/passwd"),
            format!("staffeln:x:{staffeln_uid}:{staffeln_uid}::/var/lib/staffeln:/usr/sbin/nologin\nroot:x:0:0::/root:/bin/sh\n"),
        )
        .unwrap();
        std::fs::write(
            r.join("etc/group"),
            format!("staffeln:x:{staffeln_uid}:\nkolla:x:{kolla_gid}:staffeln\nroot:x:0:\n"),
        )
        .unwrap();
        if Path::new("/etc/ld.so.cache").exists() {
            std::fs::copy("/etc/ld.so.cache", r.join("etc/ld.so.cache")).unwrap();
        }
        std::fs::copy(kolla_dir().join(service).join("config.json"), r.join("var/lib/kolla/config_files/config.json"))
            .unwrap();
        std::fs::write(r.join("var/lib/kolla/config_files/staffeln.conf"), "[DEFAULT]\ndebug = true\n").unwrap();
        KollaRoot { dir, as_root, staffeln_uid, kolla_gid }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p.trim_start_matches('/'))
    }

    /// Runs kolla's kolla_set_configs with this directory as `/`: a chroot in
    /// a mount namespace of its own (a user namespace too when not root),
    /// with `/usr` and the Python installation bound read-only.
    fn set_configs(&self, strategy: Option<&str>, extra: &[&str]) -> Output {
        let (python, script) = kolla_script();
        let prefixes = check(Command::new(&python).args([
            "-c",
            "import os, sys; print(sys.prefix); print(os.path.realpath(sys.prefix)); print(sys.base_prefix)",
        ]));
        let prefixes: Vec<&str> = prefixes.lines().collect();
        let (venv, venv_real, base) = (prefixes[0], prefixes[1], prefixes[2]);
        let setup = r#"
set -eu
R=$1 VENV=$2 VENV_REAL=$3 BASE=$4; shift 4
for l in bin lib lib64 sbin; do if [ -L "/$l" ] && [ ! -L "$R/$l" ]; then ln -s "usr/$l" "$R/$l"; fi; done
mkdir -p "$R/usr" "$R$VENV"
mount -o bind,ro /usr "$R/usr"
mount -o bind,ro "$VENV_REAL" "$R$VENV"
case $BASE in /usr|/usr/*) ;; *) mkdir -p "$R$BASE"; mount -o bind,ro "$BASE" "$R$BASE" ;; esac
exec chroot "$R" "$@"
"#;
        let mut cmd = Command::new(tool("unshare", "apt-get install util-linux"));
        if !self.as_root {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--mount", "--propagation", "private", "--fork", "sh", "-c", setup, "sh"]);
        cmd.arg(self.dir.path()).args([venv, venv_real, base]);
        cmd.arg(Path::new(venv).join("bin/python")).arg(&script).args(extra);
        cmd.env_remove("KOLLA_CONFIG_STRATEGY");
        if let Some(s) = strategy {
            cmd.env("KOLLA_CONFIG_STRATEGY", s);
        }
        run(&mut cmd)
    }

    /// Mode bits and owner of a path inside.
    fn stat(&self, p: &str) -> (u32, u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (m.mode() & 0o7777, m.uid(), m.gid())
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// kolla's real kolla_set_configs (the script the image installs) applies
/// each service's config.json: the command, the configuration file with its
/// mode and owner, the log directory, the state directory's owner;
/// `--check` sees a change; COPY_ONCE copies once; a bad owner is an error.
#[test]
fn kolla_set_configs_applies_each_services_config_json() {
    for service in KOLLA_SERVICES {
        let root = KollaRoot::new(service);
        let out = root.set_configs(None, &[]);
        assert!(!out.status.success(), "{service}: runs without KOLLA_CONFIG_STRATEGY");
        assert!(stderr_of(&out).contains("KOLLA_CONFIG_STRATEGY"), "{service}: {}", stderr_of(&out));

        let out = root.set_configs(Some("COPY_ALWAYS"), &[]);
        assert!(out.status.success(), "{service}: {}", stderr_of(&out));
        assert_eq!(read(&root.path("/run_command")), format!("{service} --config-file /etc/staffeln/staffeln.conf"));
        assert_eq!(read(&root.path("/etc/staffeln/staffeln.conf")), "[DEFAULT]\ndebug = true\n");
        let (uid, gid) = (root.staffeln_uid, root.kolla_gid);
        assert_eq!(root.stat("/etc/staffeln/staffeln.conf"), (0o600, uid, uid), "{service}");
        assert_eq!(root.stat("/var/log/kolla/staffeln"), (0o2775, uid, gid), "{service}");
        assert_eq!(root.stat("/var/lib/staffeln").1, uid, "{service}: /var/lib/staffeln belongs to staffeln");

        let out = root.set_configs(None, &["--check"]);
        assert!(out.status.success(), "{service}: --check after a copy: {}", stderr_of(&out));
        std::fs::write(root.path("/var/lib/kolla/config_files/staffeln.conf"), "[DEFAULT]\ndebug = false\n").unwrap();
        let out = root.set_configs(None, &["--check"]);
        assert_eq!(out.status.code(), Some(1), "{service}: --check sees the change: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("ConfigFileBadState"), "{service}: {}", stderr_of(&out));
    }

    // COPY_ONCE copies once, then leaves the files alone.
    let once = KollaRoot::new("staffeln-api");
    std::fs::write(once.path("/var/lib/kolla/config_files/staffeln.conf"), "first\n").unwrap();
    assert!(once.set_configs(Some("COPY_ONCE"), &[]).status.success());
    std::fs::write(once.path("/var/lib/kolla/config_files/staffeln.conf"), "second\n").unwrap();
    assert!(once.set_configs(Some("COPY_ONCE"), &[]).status.success());
    assert_eq!(read(&once.path("/etc/staffeln/staffeln.conf")), "first\n");

    // An owner that does not exist is an error naming it.
    let bad = KollaRoot::new("staffeln-api");
    let config = bad.path("/var/lib/kolla/config_files/config.json");
    std::fs::write(&config, read(&config).replace("\"staffeln\"", "\"no-such-user-staffeln\"")).unwrap();
    let out = bad.set_configs(Some("COPY_ALWAYS"), &[]);
    assert!(!out.status.success() && stderr_of(&out).contains("no-such-user-staffeln"), "{}", stderr_of(&out));
}

/// The image installs the kolla_set_configs the tests run: the Dockerfile's
/// KOLLA_VERSION is the version tools/kolla-requirements.txt pins.
#[test]
fn the_image_and_the_tests_use_the_same_kolla() {
    let pins = read(&repo_root().join("tools/kolla-requirements.txt"));
    let pinned = pins.lines().find_map(|l| l.strip_prefix("kolla==")).expect("kolla is pinned").trim();
    assert_eq!(dockerfile_arg("KOLLA_VERSION"), pinned);
    let (_, script) = kolla_script();
    assert!(script.to_str().unwrap().contains("site-packages"), "{}", script.display());
    let installed = check(
        Command::new(repo_root().join(".venv-kolla/bin/python"))
            .args(["-c", "from importlib.metadata import version; print(version('kolla'))"]),
    );
    assert_eq!(installed.trim(), pinned, ".venv-kolla is stale: run tools/setup-test-env");
}

#[test]
fn kolla_bootstrap_upgrades_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("ran");
    // kolla_start defines staffeln_run (run as the service user); record instead.
    let script = |env: &str| {
        format!(
            "staffeln_run() {{ echo \"$*\" > '{}'; }}\n{env}\n. '{}'\necho continued\n",
            record.display(),
            kolla_dir().join("extend_start.sh").display()
        )
    };
    let with = run(Command::new("bash").arg("-c").arg(script("KOLLA_BOOTSTRAP=")));
    assert!(with.status.success());
    assert!(!String::from_utf8_lossy(&with.stdout).contains("continued"), "bootstrap must exit");
    let ran = read(&record);
    assert_eq!(ran.trim(), "staffeln-manage --config-file /etc/staffeln/staffeln.conf db upgrade");
    assert_command_line_parses(ran.trim(), "docker/staffeln/extend_start.sh");

    std::fs::remove_file(&record).unwrap();
    let without = run(Command::new("bash").arg("-c").arg(script("unset KOLLA_BOOTSTRAP")));
    assert!(String::from_utf8_lossy(&without.stdout).contains("continued"));
    assert!(!record.exists(), "no bootstrap without KOLLA_BOOTSTRAP");
}

// --- runtime dependencies ---------------------------------------------------

/// The shared libraries a binary needs (`ldd`), by name.
fn linked_libraries(binary: &Path) -> BTreeSet<String> {
    let out = check(Command::new(tool("ldd", "apt-get install libc-bin")).arg(binary));
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or(name).to_owned())
        .collect()
}

/// The binaries link no database client library (the MySQL client is pure
/// Rust, SQLite is compiled in): a machine or image with only libc runs
/// them, and building needs no -dev package (README's first command).
#[test]
fn the_binaries_link_only_the_c_runtime() {
    let allowed: BTreeSet<&str> =
        ["linux-vdso.so.1", "libgcc_s.so.1", "libm.so.6", "libc.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"]
            .into();
    for name in ["staffeln-api", "staffeln-conductor", "staffeln-manage", "staffeln"] {
        let libs = linked_libraries(&binary(name));
        assert!(libs.contains("libc.so.6"), "{name}: ldd shows {libs:?}");
        let extra: Vec<&String> = libs.iter().filter(|l| !allowed.contains(l.as_str())).collect();
        assert!(extra.is_empty(), "{name} links {extra:?} (all: {libs:?}): the kolla image installs none of them");
    }
}

// --- dependencies -------------------------------------------------------------

/// The `cargo-<sub>` binary (PATH, then cargo's bin directory), run
/// directly; fails saying how to get it (tools/setup-test-env installs it
/// into ~/.cargo/bin).
fn cargo_sub(sub: &str, hint: &str) -> Command {
    let name = format!("cargo-{sub}");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([cargo_home.join("bin")])
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`cargo {sub}` is not installed: {hint} (tools/setup-test-env installs it)"));
    let mut cmd = Command::new(found);
    // Run as a plain program: cargo-machete mistakes the suite's CARGO for
    // its own cargo invocation.
    cmd.env_remove("CARGO");
    cmd
}

const MACHETE_HINT: &str = "cargo install --locked cargo-machete@0.9.2";
const DENY_HINT: &str = "cargo install --locked cargo-deny@0.20.2";

/// A crate in a temporary directory with `deps` and an empty library.
fn scratch_crate(deps: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!("[package]\nname = \"scratch\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n{deps}"),
    )
    .unwrap();
    dir
}

/// Every dependency in Cargo.toml is used (`cargo machete`), and the check
/// can fail: a crate with an unused dependency is named.
#[test]
fn no_unused_dependencies() {
    let out = check(cargo_sub("machete", MACHETE_HINT).current_dir(repo_root()));
    assert!(out.contains("didn't find any unused dependencies"), "{out}");
    let scratch = scratch_crate("itoa = \"1\"\n");
    let out = run(cargo_sub("machete", MACHETE_HINT).current_dir(scratch.path()));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("itoa"), "{out:?}");
}

/// `cargo deny` with deny.toml: licenses, banned crates (no C client
/// library, no OpenSSL, one crypto provider) and sources, offline. The check
/// can fail: without MIT in the allowed licenses it names a MIT crate.
/// Advisories need the RustSec database from GitHub: see deny.toml.
#[test]
fn the_dependency_tree_passes_cargo_deny() {
    let deny = |config: &Path| {
        let mut cmd = cargo_sub("deny", DENY_HINT);
        cmd.arg("--offline").arg("--config").arg(config).arg("check").args(["bans", "licenses", "sources"]);
        run(cmd.current_dir(repo_root()))
    };
    // The summary goes to stdout without a terminal, to stderr with one.
    let text =
        |out: &Output| format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = deny(&repo_root().join("deny.toml"));
    assert!(out.status.success() && text(&out).contains("bans ok, licenses ok, sources ok"), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("deny.toml");
    std::fs::write(&strict, read(&repo_root().join("deny.toml")).replace("    \"MIT\",\n", "")).unwrap();
    let out = deny(&strict);
    assert!(!out.status.success() && text(&out).contains("licenses FAILED"), "{}", text(&out));
}

// --- references -------------------------------------------------------------

/// Every file git tracks, relative to the repository root.
fn tracked_files() -> Vec<PathBuf> {
    let out = check(Command::new(tool("git", "apt-get install git")).args(["ls-files", "-z"]).current_dir(repo_root()));
    out.split('\0').filter(|p| !p.is_empty()).map(PathBuf::from).collect()
}

/// The repository points at nothing outside it: no material that only its
/// developers had (written here in pieces so that this file does not match
/// itself), and every relative link of a Markdown or reST file names a file
/// or directory that is in the repository.
#[test]
fn references_point_into_the_repository() {
    let outside = [
        ["shared", "/reference"].concat(),
        ["../", "shared"].concat(),
        ["/work", "/"].concat(),
        ["oslo-policy-http-check", ".md"].concat(),
        ["openstack-api-subset", ".md"].concat(),
        ["openstack-conventions", ".md"].concat(),
        ["oslo-messaging-rabbit", ".md"].concat(),
        ["rust-stack", "-notes"].concat(),
        ["style-", "examples.md"].concat(),
    ];
    let markdown_link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let rst_link = regex::Regex::new(r"`[^`<]*<([^>`]+)>`_").unwrap();
    let mut found = Vec::new();
    for file in tracked_files() {
        let Ok(text) = std::fs::read_to_string(repo_root().join(&file)) else { continue };
        for word in &outside {
            if text.contains(word.as_str()) {
                found.push(format!("{}: mentions {word}", file.display()));
            }
        }
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let links: Vec<String> = match ext {
            "md" => markdown_link.captures_iter(&text).map(|c| c[1].to_owned()).collect(),
            "rst" => rst_link.captures_iter(&text).map(|c| c[1].to_owned()).collect(),
            _ => continue,
        };
        for link in links {
            let target = link.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let base = file.parent().unwrap_or(Path::new(""));
            if !repo_root().join(base).join(target).exists() {
                found.push(format!("{}: links to {target}, which is not in the repository", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

// --- docs -----------------------------------------------------------------

fn sphinx(source: &str, all: bool) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("html");
    let mut cmd = Command::new(venv_tool("sphinx-build"));
    if all {
        cmd.args(["-a", "-E"]);
    }
    cmd.arg("-W").arg("-d").arg(out.path().join("doctrees")).args(["-b", "html", source]).arg(&html);
    check(cmd.current_dir(repo_root()));
    (out, html)
}

#[test]
fn release_notes_lint_and_build_without_warnings() {
    check(Command::new(venv_tool("reno")).args(["-q", "lint"]).current_dir(repo_root()));
    let (_keep, html) = sphinx("releasenotes/source", true);
    let page = read(&html.join("unreleased.html"));
    for phrase in [
        "First release of Staffeln in Rust",
        "A devstack plugin",
        "builds one image",
        "systemd units",
        "BlueStore compression",
    ] {
        assert!(page.contains(phrase), "release notes lack {phrase:?} (is the note committed?)");
    }
}

#[test]
fn api_ref_and_docs_build_without_warnings() {
    let (_keep, html) = sphinx("api-ref/source", false);
    let page = read(&html.join("index.html"));
    for path in ["/v1/backup", "/v1/backups", "/v1/health", "/healthcheck", "/metrics"] {
        assert!(page.contains(path), "api-ref lacks {path}");
    }
    let _docs = sphinx("doc/source", false);
}

#[test]
fn api_ref_samples_carry_the_documented_fields() {
    let samples = repo_root().join("api-ref/source/samples");
    let list = json(&samples.join("backups-list-response.json"));
    let fields: BTreeSet<&str> = list["backups"][0].as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> =
        ["id", "name", "volume_id", "server_id", "project_id", "status", "incremental", "size", "created_at"].into();
    assert_eq!(fields, want);
    assert_eq!(list["backups_links"][0]["rel"], "next");
    assert!(list["backups_links"][0]["href"].as_str().unwrap().contains("marker="));
    // oslo.policy allows only on the exact body `True`.
    assert_eq!(read(&samples.join("backup-check-response.txt")), "True");
    assert_eq!(read(&samples.join("healthcheck-response.txt")), "OK");
    let check_request = json(&samples.join("backup-check-request.json"));
    assert!(check_request["target"]["id"].is_string() && check_request["rule"] == "backup:delete");
    assert_eq!(json(&samples.join("health-response.json"))["status"], "ok");
    assert_eq!(json(&samples.join("versions-response.json"))["versions"][0]["status"], "CURRENT");

    // Every documented parameter is used, and every used key is documented.
    let params = read(&repo_root().join("api-ref/source/parameters.yaml"));
    let defined: BTreeSet<&str> = params
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && l.ends_with(':'))
        .map(|l| l.trim_end_matches(':'))
        .collect();
    let mut used = BTreeSet::new();
    for inc in std::fs::read_dir(repo_root().join("api-ref/source")).unwrap() {
        let path = inc.unwrap().path();
        if path.extension().is_some_and(|e| e == "inc") {
            for line in read(&path).lines() {
                if let Some((_, key)) = line.trim().strip_prefix("- ").and_then(|l| l.split_once(": "))
                    && !key.contains(' ')
                {
                    used.insert(key.trim().to_owned());
                }
            }
        }
    }
    let used: BTreeSet<&str> = used.iter().map(String::as_str).filter(|k| *k != "guard").collect();
    assert_eq!(defined, used, "parameters.yaml and the .inc files disagree");
}

/// What CI jobs of an OpenStack project call: the tox environments
/// themselves (they install their deps from doc/requirements.txt, constrained
/// by doc/constraints.txt or TOX_CONSTRAINTS_FILE, into .tox/).
#[test]
fn tox_builds_the_release_notes_and_the_api_reference() {
    let out = Command::new(venv_tool("tox"))
        .args(["-q", "-e", "releasenotes,api-ref"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tox -e releasenotes,api-ref failed:\n{text}");
    assert!(repo_root().join("releasenotes/build/html/unreleased.html").exists(), "{text}");
    assert!(repo_root().join("api-ref/build/html/index.html").exists(), "{text}");
}

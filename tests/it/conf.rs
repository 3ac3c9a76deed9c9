//! The conf room against the real oslo.config: the same options registered
//! in Python (from a JSON export of `conf::registry()`), the same files,
//! arguments and environment, every option's value compared; the sample
//! compared with `oslo-config-generator`'s output; the committed sample kept
//! fresh.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches, Parser};
use serde_json::{Value as Json, json};
use staffeln::conf::opts::{self, DefaultValue, GroupDef, OptDef};
use staffeln::conf::types::{Kind, parse_dict, parse_list};
use staffeln::conf::{self, Config, OsloArgs, Source, Value};

use crate::support::{repo_root, run_python};

const SCRIPT: &str = include_str!("conf_oslo.py");

/// Extra options, registered on both sides, for the types Staffeln does not
/// use yet (multi-valued strings, dicts, a regex).
static XTEST_OPTS: &[OptDef] = &[
    opts::multi_string().named("multi", &[" A multi-valued option."]),
    opts::multi_string()
        .deprecated(&[("", "old_multi"), ("DEFAULT", "dflt_multi")])
        .named("multi_alias", &[" A multi-valued option with aliases."]),
    opts::dict("a:1,b:2").named("mapping", &[" A dict option."]),
    opts::dict("").named("empty_mapping", &[" A dict option without default."]),
    opts::string("abc").regex("^[a-z]+$").named("lower", &[" A string with a regex."]),
    opts::string("x").deprecated(&[("openstack", "moved")]).named("renamed", &[" Moved here."]),
];
static XTEST: GroupDef = GroupDef { name: "xtest", help_lines: &[], opts: XTEST_OPTS };

fn full_registry() -> Vec<GroupDef> {
    let mut r = conf::registry().to_vec();
    r.push(XTEST);
    r
}

fn default_json(o: &OptDef) -> Json {
    match o.default {
        DefaultValue::None => Json::Null,
        DefaultValue::Int(i) => json!(i),
        DefaultValue::Bool(b) => json!(b),
        DefaultValue::Computed(f) => json!(f()),
        DefaultValue::Text(t) => match o.kind {
            Kind::List => json!(parse_list(t)),
            Kind::Dict => json!(parse_dict(t).expect("dict defaults parse")),
            _ => json!(t),
        },
    }
}

/// The registry as the Python side reads it.
fn registry_json(registry: &[GroupDef]) -> Json {
    let groups: Vec<Json> = registry
        .iter()
        .map(|g| {
            let opts: Vec<Json> = g
                .opts
                .iter()
                .map(|o| {
                    json!({
                        "name": o.name,
                        "kind": o.kind.name(),
                        "default": default_json(o),
                        "sample_default": o.sample_default,
                        "min": o.min,
                        "max": o.max,
                        "choices": o.choices.iter().map(|(c, d)| [c, d]).collect::<Vec<_>>(),
                        "regex": o.regex,
                        "help": o.help(),
                        "deprecated": o.deprecated.iter().map(|(g, n)| [g, n]).collect::<Vec<_>>(),
                        "secret": o.secret,
                        "mutable": o.mutable,
                        "cli": o.cli.map(|c| json!({"long": c.long, "short": c.short.map(String::from)})),
                    })
                })
                .collect();
            json!({"name": g.name, "help": g.help(), "opts": opts})
        })
        .collect();
    Json::Array(groups)
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::None => Json::Null,
        Value::Str(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::List(items) | Value::Multi(items) => json!(items),
        Value::Dict(d) => json!(d),
        Value::Duration(d) => json!(d.as_str()),
    }
}

#[derive(Parser)]
#[command(name = "staffeln-xcheck")]
struct XCheck {
    #[command(flatten)]
    oslo: OsloArgs,
}

struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// `{d}` is the case's directory.
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const fn case(
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
) -> Case {
    Case { name, files, args, env: &[] }
}

const DIR_FILES: &[(&str, &str)] = &[
    ("a.conf", "[DEFAULT]\nhost = from-a\nstate_path = /a\n"),
    ("d/10-a.conf", "[DEFAULT]\nhost = dir10\nstate_path = /d10\n"),
    ("d/20-z.conf", "[DEFAULT]\nhost = dir20\n"),
    ("d/9.conf", "[DEFAULT]\nhost = dir9\n"),
    ("d/Upper.conf", "[DEFAULT]\nstate_path = /upper\n"),
    ("d/.hidden.conf", "[DEFAULT]\nhost = hidden\n"),
    ("d/other.txt", "[DEFAULT]\nhost = txt\n"),
];

const CASES: &[Case] = &[
    case("defaults", &[], &[]),
    case(
        "quotes and continuation",
        &[(
            "q.conf",
            "[DEFAULT]\nhost = \"quoted value\"\nlog_date_format = '%Y'\nstate_path = /a\n  /b\n  # c\n\tl3\n\n\
             control_exchange = \"  padded \"\nlogging_exception_prefix = 'x'  # c\n\
             [api]\nhost = \"a\" and \"b\"\nssl_key_file = '\nssl_cert_file = \"mixed'\n\
             [openstack]\nusername: b = c\nproject_name = http://h:5672/\nregion_name =\ncacert = \"\"\n",
        )],
        &["--config-file", "{d}/q.conf"],
    ),
    case(
        "later files win",
        &[("a.conf", "[DEFAULT]\nhost = node1\n[api]\nport = 1\n"), ("b.conf", "[DEFAULT]\nhost = node2\n")],
        &["--config-file", "{d}/a.conf", "--config-file", "{d}/b.conf"],
    ),
    case(
        "earlier file last",
        &[("a.conf", "[DEFAULT]\nhost = node1\n"), ("b.conf", "[DEFAULT]\nhost = node2\n[api]\nport = 2\n")],
        &["--config-file={d}/b.conf", "--config-file", "{d}/a.conf"],
    ),
    case("config dir after file", DIR_FILES, &["--config-file", "{d}/a.conf", "--config-dir", "{d}/d"]),
    case("config dir before file", DIR_FILES, &["--config-dir", "{d}/d", "--config-file", "{d}/a.conf"]),
    case(
        "repeats and merged sections",
        &[("r.conf", "[api]\nport = 1\nport = 2\n[conductor]\nbackup_workers = 3\n[Api]\nhost = h\n[API]\nport = 3\n")],
        &["--config-file", "{d}/r.conf"],
    ),
    case(
        "group and key matching",
        &[(
            "m.conf",
            "[default]\nhost = lower\n[Default]\nhost = mixed\n[ api]\nport = 1\n[api ]\nport = 2\n\
             [DEFAULT]\nHost = upper\nlog-file = dash\n[unknown]\nx = y\n[Database]\nmax_retries = -1\n",
        )],
        &["--config-file", "{d}/m.conf"],
    ),
    case(
        "booleans",
        &[("b.conf", "[DEFAULT]\ndebug = YES\nuse_stderr = 0\nlog_options = Off\n[openstack]\ninsecure = on\n")],
        &["--config-file", "{d}/b.conf"],
    ),
    case(
        "empty and odd integers",
        &[(
            "i.conf",
            "[conductor]\nbackup_workers =\nbackup_service_period = 1_800\nreport_period =  +900\n[api]\nport =\n\
             [database]\nmax_retries = -1\nconnection_recycle_time = -5\n",
        )],
        &["--config-file", "{d}/i.conf"],
    ),
    case(
        "lists and dicts",
        &[(
            "l.conf",
            "[notification]\nreceiver = a@x , b@y ,\n[openstack]\nskip_retry_codes =\n\
             [DEFAULT]\ndefault_log_levels = \"a=1\", b=2\n\
             [xtest]\nmapping = k : v, x:y:z , j\n  :1\nempty_mapping =\n",
        )],
        &["--config-file", "{d}/l.conf"],
    ),
    case(
        "list with commas only",
        &[("l.conf", "[notification]\nreceiver = a,,\n[openstack]\nskip_retry_codes = ,\n")],
        &["--config-file", "{d}/l.conf"],
    ),
    case(
        "multi-valued across files",
        &[
            ("a.conf", "[xtest]\nmulti = m1\nmulti = m2\nmulti_alias = new-a\nold_multi = old-a\n"),
            ("b.conf", "[xtest]\nmulti = m3\nmulti =\n[DEFAULT]\ndflt_multi = d-b\n"),
        ],
        &["--config-file", "{d}/a.conf", "--config-file", "{d}/b.conf"],
    ),
    case(
        "multi-valued reversed",
        &[("a.conf", "[xtest]\nmulti = m1\nmulti = m2\n"), ("b.conf", "[xtest]\nmulti = m3\n")],
        &["--config-file", "{d}/b.conf", "--config-file", "{d}/a.conf"],
    ),
    case(
        "deprecated name in a later file",
        &[
            ("new.conf", "[conductor]\nbackup_cycle_timeout = 1h\n[DEFAULT]\nlog_file = new.log\n"),
            ("old.conf", "[conductor]\nbackup_cycle_timout = 2h\n[DEFAULT]\nlogfile = old.log\n"),
        ],
        &["--config-file", "{d}/new.conf", "--config-file", "{d}/old.conf"],
    ),
    case(
        "new name wins inside one file",
        &[(
            "both.conf",
            "[conductor]\nbackup_cycle_timout = 3h\nbackup_cycle_timeout = 4h\n[DEFAULT]\nlogdir = /old\nlog_dir = /new\n",
        )],
        &["--config-file", "{d}/both.conf"],
    ),
    case(
        "cross-group alias",
        &[("x.conf", "[openstack]\nmoved = from-openstack\n[Conductor]\nbackup_cycle_timout = 1d12h\n")],
        &["--config-file", "{d}/x.conf"],
    ),
    case(
        "interpolation",
        &[(
            "i.conf",
            "[DEFAULT]\nstate_path = /srv/s\ncontrol_exchange = ${api.host}-x\n\
             [api]\nssl_key_file = $state_path/key\nssl_cert_file = ${state_path}cert\nhost = h1\n\
             [openstack]\nusername = ${conductor.backup_metadata_key}\nproject_name = $$literal\n\
             region_name = \\$escaped\ncacert = 100$\nauth_url = pa$1x and ${ and $ end\n\
             project_domain_name = [$transport_url]\nuser_domain_name = $log_options/$debug\n\
             [conductor]\nbackup_workers = $graceful_shutdown_timeout\nbackup_metadata_key = k-$host\n\
             [notification]\nreceiver = $host, ${DEFAULT.host}x\n",
        )],
        &["--config-file", "{d}/i.conf"],
    ),
    case("interpolated defaults", &[("s.conf", "[DEFAULT]\nstate_path = /x\n")], &["--config-file", "{d}/s.conf"]),
    case(
        "command line after file",
        &[("x.conf", "[DEFAULT]\ndebug = false\nlog_file = from-file\n")],
        &["--config-file", "{d}/x.conf", "--debug", "--log-file", "cli.log"],
    ),
    case(
        "command line before file",
        &[("x.conf", "[DEFAULT]\ndebug = false\nlog_file = from-file\nlog_dir = /f\n")],
        &["-d", "--log-file", "cli.log", "--config-file", "{d}/x.conf", "--logdir", "/cli"],
    ),
    case("nodebug and aliases", &[], &["--debug", "--nodebug", "--logfile", "a.log", "--log-date-format", "%H"]),
    Case {
        name: "environment beats files",
        files: &[("x.conf", "[DEFAULT]\ndebug = false\n[api]\nport = 1\n[database]\nconnection = sqlite://\n")],
        args: &["--config-file", "{d}/x.conf"],
        env: &[
            ("OS_DEFAULT__DEBUG", "true"),
            ("OS_API__PORT", "9"),
            ("OS_DATABASE__CONNECTION", "mysql://u:p@h/$state_path"),
            ("OS_NOTIFICATION__RECEIVER", "a, b"),
            ("OS_CONDUCTOR__RETENTION_TIME", "1y"),
            ("OS_XTEST__MAPPING", "e:1"),
        ],
    },
    Case {
        name: "command line beats environment",
        files: &[],
        args: &["--log-file", "cli.log", "--debug"],
        env: &[("OS_DEFAULT__LOG_FILE", "env.log"), ("OS_DEFAULT__DEBUG", "false"), ("OS_DEFAULT__LOG_DIR", "/e")],
    },
    // Fatal cases: both sides must refuse them.
    case(
        "inline comment in an integer",
        &[("f.conf", "[DEFAULT]\ngraceful_shutdown_timeout = 4 # four\n")],
        &["--config-file", "{d}/f.conf"],
    ),
    case("bad boolean", &[("f.conf", "[DEFAULT]\ndebug = Enabled\n")], &["--config-file", "{d}/f.conf"]),
    case("port too big", &[("f.conf", "[api]\nport = 99999\n")], &["--config-file", "{d}/f.conf"]),
    case("below minimum", &[("f.conf", "[conductor]\nreport_period = 599\n")], &["--config-file", "{d}/f.conf"]),
    case("bad choice", &[("f.conf", "[openstack]\ninterface = Public\n")], &["--config-file", "{d}/f.conf"]),
    case("bad duration", &[("f.conf", "[conductor]\nretention_time = 5m\n")], &["--config-file", "{d}/f.conf"]),
    case("bad regex", &[("f.conf", "[xtest]\nlower = ABC\n")], &["--config-file", "{d}/f.conf"]),
    case("bad dict", &[("f.conf", "[xtest]\nmapping = a:1,b\n")], &["--config-file", "{d}/f.conf"]),
    case("duplicate dict key", &[("f.conf", "[xtest]\nmapping = a:1,a:2\n")], &["--config-file", "{d}/f.conf"]),
    case("assignment before section", &[("f.conf", "host = x\n[DEFAULT]\n")], &["--config-file", "{d}/f.conf"]),
    case("orphan continuation", &[("f.conf", "[DEFAULT]\n\n  orphan\n")], &["--config-file", "{d}/f.conf"]),
    case("no separator", &[("f.conf", "[DEFAULT]\nnovalue\n")], &["--config-file", "{d}/f.conf"]),
    case("empty key", &[("f.conf", "[DEFAULT]\n= v\n")], &["--config-file", "{d}/f.conf"]),
    case("unterminated section", &[("f.conf", "[DEFAULT\nhost = x\n")], &["--config-file", "{d}/f.conf"]),
    case("empty section", &[("f.conf", "[]\n")], &["--config-file", "{d}/f.conf"]),
    case(
        "unknown reference",
        &[("f.conf", "[database]\nconnection = mysql://u:pa$word@h/db\n")],
        &["--config-file", "{d}/f.conf"],
    ),
    case(
        "DEFAULT as a group reference",
        &[("f.conf", "[api]\nhost = ${DEFAULT.state_path}\n")],
        &["--config-file", "{d}/f.conf"],
    ),
    case("missing file", &[], &["--config-file", "{d}/missing.conf"]),
    case("missing dir", &[], &["--config-dir", "{d}/missing.d"]),
    Case { name: "bad environment value", files: &[], args: &[], env: &[("OS_CONDUCTOR__BACKUP_WORKERS", "x")] },
];

fn rust_case(registry: &[GroupDef], dir: &Path, case: &Case) -> Json {
    let mut argv = vec!["staffeln-xcheck".to_owned()];
    argv.extend(case.args.iter().map(|a| a.replace("{d}", &dir.display().to_string())));
    let matches = XCheck::command().try_get_matches_from(&argv).expect("the arguments parse");
    let parsed = XCheck::from_arg_matches(&matches).expect("the arguments parse");
    let sources = parsed.oslo.sources_for(&matches, "staffeln-xcheck", "staffeln-xcheck");
    let env: BTreeMap<String, String> = case.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match conf::resolve(registry, &sources, &env) {
        Err(e) => json!({"error": e.to_string()}),
        Ok(r) => {
            let mut values = serde_json::Map::new();
            for g in registry {
                for o in g.opts {
                    let v = r.get(g.name, o.name).expect("every option is resolved");
                    values.insert(format!("{}.{}", g.name, o.name), value_json(v));
                }
            }
            json!({"values": values, "warnings": r.warnings})
        }
    }
}

#[test]
fn options_resolve_like_the_real_oslo_config() {
    let registry = full_registry();
    let root = tempfile::tempdir().unwrap();
    let mut py_cases = Vec::new();
    let mut rust = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let dir = root.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in case.files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{d}", &dir.display().to_string())).collect();
        let env: BTreeMap<&str, &str> = case.env.iter().copied().collect();
        py_cases.push(json!({"args": args, "env": env}));
        rust.push(rust_case(&registry, &dir, case));
    }
    let spec = root.path().join("spec.json");
    let body = json!({"registry": registry_json(&registry), "cases": py_cases});
    std::fs::write(&spec, body.to_string()).unwrap();
    let out = run_python(SCRIPT, &["cases", spec.to_str().unwrap()]);
    let python: Vec<Json> = serde_json::from_str(&out).expect("the Python side prints JSON");

    let mut problems = Vec::new();
    for ((case, r), p) in CASES.iter().zip(&rust).zip(&python) {
        match (r.get("error"), p.get("error")) {
            (Some(_), Some(_)) => continue,
            (Some(e), None) => problems.push(format!("{}: Rust refused ({e}), oslo accepted", case.name)),
            (None, Some(e)) => problems.push(format!("{}: oslo refused ({e}), Rust accepted", case.name)),
            (None, None) => {
                for (key, pv) in p["values"].as_object().unwrap() {
                    let rv = &r["values"][key];
                    if rv != pv {
                        problems.push(format!("{}: {key}: Rust {rv}, oslo {pv}", case.name));
                    }
                }
                let mut rw: Vec<String> = serde_json::from_value(r["warnings"].clone()).unwrap();
                let mut pw: Vec<String> = serde_json::from_value(p["warnings"].clone()).unwrap();
                rw.sort();
                pw.sort();
                if rw != pw {
                    problems.push(format!("{}: warnings: Rust {rw:?}, oslo {pw:?}", case.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} differences from oslo.config:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_sample_is_what_oslo_config_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    let body = json!({"registry": registry_json(conf::registry()), "cases": []});
    std::fs::write(&spec, body.to_string()).unwrap();
    let expected = run_python(SCRIPT, &["sample", spec.to_str().unwrap()]);
    let actual = conf::sample();
    if actual != expected {
        let diff: Vec<String> = actual
            .lines()
            .zip(expected.lines())
            .enumerate()
            .filter(|(_, (a, e))| a != e)
            .take(10)
            .map(|(i, (a, e))| format!("line {}:\n  rust: {a:?}\n  oslo: {e:?}", i + 1))
            .collect();
        panic!(
            "the sample differs from oslo-config-generator ({} vs {} lines):\n{}",
            actual.lines().count(),
            expected.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn the_committed_sample_is_fresh() {
    let path = repo_root().join("etc/staffeln/staffeln.conf.sample");
    if std::env::var_os("STAFFELN_WRITE_SAMPLE").is_some() {
        std::fs::write(&path, conf::sample()).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == conf::sample(),
        "{} is stale: regenerate it with `cargo run --bin staffeln-manage -- config generate \
         --output-file etc/staffeln/staffeln.conf.sample` (or `tox -e genconfig`, or run this test \
         with STAFFELN_WRITE_SAMPLE=1)",
        path.display()
    );
}

/// Every `#name = value` line of the sample uncommented (except `<None>` and
/// sample defaults), as a config file.
fn uncommented_sample() -> String {
    let re = regex::Regex::new(r"^#([a-z_]+) =( (.*))?$").unwrap();
    conf::sample()
        .lines()
        .filter_map(|line| {
            if line.starts_with('[') {
                return Some(line.to_owned());
            }
            let c = re.captures(line)?;
            // `#name =`: no default to restate (a multi-valued option would
            // read back as [""], in oslo as well).
            let value = c.get(3)?.as_str();
            if value == "<None>" || value.starts_with('<') {
                return None;
            }
            Some(line[1..].to_owned())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_sample_read_back_gives_the_defaults_in_rust_and_oslo() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sample.conf");
    std::fs::write(&file, uncommented_sample()).unwrap();
    let loaded = conf::load(&[Source::File(file.clone())], &BTreeMap::new()).unwrap();
    assert_eq!(loaded.config, Config::default(), "Rust reads its own sample back as the defaults");

    let registry = conf::registry();
    let spec = dir.path().join("spec.json");
    let cases = json!([{"args": ["--config-file", file], "env": {}}, {"args": [], "env": {}}]);
    std::fs::write(&spec, json!({"registry": registry_json(registry), "cases": cases}).to_string()).unwrap();
    let python: Vec<Json> = serde_json::from_str(&run_python(SCRIPT, &["cases", spec.to_str().unwrap()])).unwrap();
    let defaults = conf::resolve(registry, &[], &BTreeMap::new()).unwrap();
    for p in &python {
        let values = p["values"].as_object().unwrap_or_else(|| panic!("oslo refused the sample: {p}"));
        for g in registry {
            for o in g.opts {
                let key = format!("{}.{}", g.name, o.name);
                let rust = value_json(defaults.get(g.name, o.name).unwrap());
                assert_eq!(values[&key], rust, "{key}");
            }
        }
    }
}

#[test]
fn a_malformed_file_is_one_line_naming_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staffeln.conf");
    std::fs::write(&file, "[conductor]\nreport_period = ten\n").unwrap();
    let err = conf::load(&[Source::File(file.clone())], &BTreeMap::new()).unwrap_err();
    let line = err.to_string();
    assert_eq!(line, format!("{}:2: [conductor] report_period = \"ten\": expected an integer >= 600", file.display()));
    assert!(!line.contains('\n'));
    assert_eq!(err.exit_code(), 2);

    std::fs::write(&file, "[openstack]\npassword = $hunter2\n").unwrap();
    let line = conf::load(&[Source::File(file.clone())], &BTreeMap::new()).unwrap_err().to_string();
    assert!(line.contains("[openstack] password = \"****\"") && !line.contains("hunter2"), "{line}");
}

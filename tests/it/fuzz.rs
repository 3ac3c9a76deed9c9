//! Fuzzing of every parser that reads input from outside (issue 18.5), with
//! proptest and a bounded number of cases so the suite stays quick: the
//! oslo.config parser and loader, the oslo.messaging envelope decoder, the
//! guard's request (query string, form and JSON bodies as oslo.policy posts
//! them), the listing's query, and the emulator's scenario files. Each input
//! must give a value or a clear error naming what was wrong, never a panic.
//!
//! `STAFFELN_FUZZ_CASES=N` runs N cases per target instead of the default
//! (`tools/chaos --fuzz N` sets it). Inputs that once failed are kept as
//! regression cases below and run every time.

use std::collections::BTreeMap;
use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use staffeln::api::{IdError, QueryError, parse_query, parse_request};
use staffeln::conf::{ConfigError, Source, ini, load};
use staffeln::rpc::envelope::{Notification, Reply, Request, decode};
use staffeln_fakecloud::{FakeCloud, FakeOptions, Scenario};

/// Cases per target: `STAFFELN_FUZZ_CASES`, or `default`.
fn cases(default: u32) -> u32 {
    match std::env::var("STAFFELN_FUZZ_CASES") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("STAFFELN_FUZZ_CASES={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs `test` over `strategy` for `cases(default)` cases; a panic inside
/// is a failure proptest shrinks, like a failed assertion.
fn fuzz<S: Strategy>(default: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::panic::RefUnwindSafe,
{
    let config = Config { cases: cases(default), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result =
        runner.run(&strategy, |value| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(value))) {
            Ok(r) => r,
            Err(p) => {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!("panicked: {what}")))
            }
        });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// An error line: not empty, one line (inputs are shown escaped).
fn one_line(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.trim().is_empty(), "an empty error");
    prop_assert!(!text.contains('\n'), "an error over several lines: {text:?}");
    Ok(())
}

/// Text from a few tricky pieces and arbitrary characters.
fn text_of(pieces: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(pieces).prop_map(str::to_owned), 1 => any::<String>()],
        0..6,
    )
    .prop_map(|v| v.concat())
}

// ---------------------------------------------------------------- oslo.config

const INI_PIECES: &[&str] = &[
    "[DEFAULT]",
    "[conductor]",
    "[database]",
    "[api]",
    "[notification]",
    "[rabbit]",
    "[",
    "]",
    "[]",
    "[ api]",
    "debug",
    "log_file",
    "transport_url",
    "connection",
    "backup_cycle_timout",
    "retention_time",
    "=",
    ":",
    " = ",
    "$",
    "${",
    "$debug",
    "${DEFAULT.debug}",
    "$$",
    "\"",
    "'",
    "#",
    ";",
    " ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "true",
    "false",
    "maybe",
    "-1",
    "99999999999999999999",
    "0",
    "1.5",
    "30d",
    "P1D",
    "\u{feff}",
    "\u{0}",
    "é",
    "rabbit://a:b@h:1/",
    "mysql+pymysql://u:p@h/db",
    "sqlite://",
    "UTC",
    "Mars/Olympus",
    "* * * * *",
    "0 99 * * *",
];

fn ini_text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_of(INI_PIECES), 0..12).prop_map(|lines| lines.join("\n"))
}

/// Lines that are mostly well formed, with option names the registry knows.
fn conf_text() -> impl Strategy<Value = String> {
    let groups = staffeln::conf::registry();
    let opts: Vec<(String, String)> =
        groups.iter().flat_map(|g| g.opts.iter().map(|o| (g.name.to_owned(), o.name.to_owned()))).collect();
    let line =
        (prop::sample::select(opts), text_of(INI_PIECES), any::<bool>()).prop_map(|((group, name), value, header)| {
            if header { format!("[{group}]\n{name} = {value}") } else { format!("{name} = {value}") }
        });
    prop::collection::vec(line, 1..6).prop_map(|lines| format!("[DEFAULT]\n{}\n", lines.join("\n")))
}

#[test]
fn the_oslo_config_parser_never_panics() {
    fuzz(2000, ini_text(), |text| {
        if let Err(e) = ini::parse(&text) {
            let lines = text.replace("\r\n", "\n").replace('\r', "\n").split('\n').count();
            prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            one_line(e.message)?;
        }
        Ok(())
    });
}

/// The loader's error for `text` as a file, if any.
fn load_error(dir: &std::path::Path, text: &str) -> Option<ConfigError> {
    let path = dir.join("staffeln.conf");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    load(&[Source::File(path)], &BTreeMap::new()).err()
}

fn check_config_error(dir: &std::path::Path, text: &str) -> Result<(), TestCaseError> {
    let Some(e) = load_error(dir, text) else { return Ok(()) };
    let shown = e.to_string();
    one_line(&shown)?;
    match &e {
        ConfigError::Parse { file, .. } => prop_assert!(shown.contains(&file.display().to_string())),
        ConfigError::InvalidValue { group, option, .. } | ConfigError::Interpolation { group, option, .. } => {
            prop_assert!(shown.contains(&format!("[{group}] {option}")), "{shown}");
            prop_assert!(shown.contains("staffeln.conf"), "the file is not named: {shown}");
        }
        other => prop_assert!(false, "unexpected error for a file that exists: {other}"),
    }
    Ok(())
}

#[test]
fn the_configuration_loader_never_panics_and_names_the_option() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(300, prop_oneof![conf_text(), ini_text()], |text| check_config_error(dir.path(), &text));
}

// ---------------------------------------------------------------- oslo.messaging

const RPC_KEYS: &[&str] = &[
    "oslo.version",
    "oslo.message",
    "method",
    "args",
    "version",
    "namespace",
    "_msg_id",
    "_reply_q",
    "_unique_id",
    "_timeout",
    "failure",
    "result",
    "ending",
    "event_type",
    "payload",
    "priority",
    "publisher_id",
    "message_id",
    "timestamp",
    "_context_user",
    "_context_request_id",
];

fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        text_of(&["2.0", "1.0", "1.x", "info", "ERROR", "{}", "{\"a\":1}", "[]", "null", "2026-12-02 07:00:00.1"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![prop::sample::select(RPC_KEYS).prop_map(str::to_owned), any::<String>()],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A message as a peer could send it: an object of known fields, sometimes
/// wrapped in the 2.0 envelope, or arbitrary bytes.
fn rpc_body() -> impl Strategy<Value = Vec<u8>> {
    let fields = || {
        prop::collection::btree_map(prop::sample::select(RPC_KEYS).prop_map(str::to_owned), json_value(), 0..8)
            .prop_map(serde_json::Map::from_iter)
    };
    prop_oneof![
        2 => (fields(), prop_oneof![Just(json!("2.0")), json_value()]).prop_map(|(inner, version)| {
            serde_json::to_vec(&json!({"oslo.version": version, "oslo.message": Value::Object(inner).to_string()})).unwrap()
        }),
        1 => fields().prop_map(|m| serde_json::to_vec(&Value::Object(m)).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn the_envelope_decoder_never_panics() {
    fuzz(600, rpc_body(), |body| {
        let _ = decode(&body);
        if let Err(e) = Request::decode(&body) {
            one_line(&e.error.to_string())?;
        }
        if let Err(e) = Reply::decode(&body) {
            one_line(&e.to_string())?;
        }
        if let Err(e) = Notification::decode(&body) {
            one_line(&e.to_string())?;
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- staffeln-api

const ID: &str = "6f1c1b2e-3f8d-4c1a-9d7e-2b5a4c3d2e1f";

const QUERY_PIECES: &[&str] = &[
    "backup_id",
    "all_projects",
    "volume_id",
    "server_id",
    "status",
    "created_since",
    "created_until",
    "limit",
    "marker",
    "=",
    "&",
    ";",
    "%",
    "%2",
    "%zz",
    "%FF",
    "%00",
    "+",
    "6f1c1b2e-3f8d-4c1a-9d7e-2b5a4c3d2e1f",
    "6F1C1B2E3F8D4C1A9D7E2B5A4C3D2E1F",
    "{6f1c1b2e-3f8d-4c1a-9d7e-2b5a4c3d2e1f}",
    "true",
    "yes",
    "0",
    "-1",
    "4294967296",
    "available",
    "id=",
    ",",
    "2026-11-25T10:00:00Z",
    "2026-11-25 10:00:00+01:00",
    "2026-13-45",
    "é",
];

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.9, text_of(QUERY_PIECES))
}

#[test]
fn the_listing_query_never_panics_and_names_the_parameter() {
    fuzz(2000, query(), |q| {
        if let Err(e) = parse_query(q.as_deref()) {
            let shown = e.to_string();
            one_line(&shown)?;
            let named = match &e {
                QueryError::Unknown { .. } => true,
                QueryError::Repeated { name } => shown.contains(name.as_str()),
                QueryError::Invalid { name, .. } => shown.starts_with(name),
                QueryError::TooManyIds { .. } => shown.starts_with("id "),
                QueryError::MarkerNotFound(_) => false,
            };
            prop_assert!(named, "the parameter is not named: {shown}");
        }
        Ok(())
    });
}

/// A guard body as oslo.policy's `HttpCheck` posts it: form fields
/// `target` and `credentials` holding JSON documents, or one JSON object
/// (`[oslo_policy] remote_content_type = application/json`).
fn guard_body() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let target = prop_oneof![
        json_value(),
        (prop_oneof![Just(json!(ID)), json_value()], json_value())
            .prop_map(|(id, metadata)| json!({"id": id, "metadata": metadata})),
    ];
    let credentials = prop_oneof![json_value(), json_value().prop_map(|u| json!({"user_id": u}))];
    let content_type = prop::option::of(text_of(&[
        "application/x-www-form-urlencoded",
        "application/json",
        "; charset=UTF-8",
        "text/plain",
        "multipart/form-data",
    ]));
    prop_oneof![
        (content_type.clone(), target.clone(), credentials.clone(), text_of(QUERY_PIECES)).prop_map(
            |(ct, t, c, extra)| {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("target", &t.to_string())
                    .append_pair("credentials", &c.to_string())
                    .finish();
                (ct, format!("{form}&{extra}").into_bytes())
            }
        ),
        (content_type.clone(), target, credentials)
            .prop_map(|(ct, t, c)| (ct, serde_json::to_vec(&json!({"target": t, "credentials": c})).unwrap())),
        (content_type, prop::collection::vec(any::<u8>(), 0..64)),
    ]
}

#[test]
fn the_guards_request_parsing_never_panics_and_names_the_field() {
    fuzz(600, (query(), guard_body()), |(q, (content_type, body))| {
        if let Err(e) = parse_request(q.as_deref(), content_type.as_deref(), &body) {
            let shown = e.to_string();
            one_line(&shown)?;
            let named = match &e {
                IdError::Missing | IdError::Repeated { .. } | IdError::Mismatch { .. } => shown.contains("backup_id"),
                IdError::Malformed { source_name, .. } => shown.starts_with(source_name),
                IdError::Body { field, .. } => shown.contains(field),
                IdError::UnsupportedContentType(_) => shown.contains("content type"),
            };
            prop_assert!(named, "the input is not named: {shown}");
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- fakecloud scenarios

fn scenario_json() -> impl Strategy<Value = Value> {
    let name =
        prop::sample::select(&["p1", "p2", "u1", "s1", "v1", "b1", "", "admin", "nova"][..]).prop_map(Value::from);
    let field = prop_oneof![name, json_value()];
    let entry = |keys: &'static [&'static str]| {
        prop::collection::btree_map(prop::sample::select(keys).prop_map(str::to_owned), field.clone(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    };
    let list = |keys: &'static [&'static str]| prop::collection::vec(entry(keys), 0..3).prop_map(Value::from);
    (
        list(&["name", "id", "domain", "quota", "backups", "gigabytes"]),
        list(&["name", "password", "projects", "roles", "project", "role"]),
        list(&["name", "project", "metadata", "status", "id"]),
        list(&["name", "project", "server", "size", "metadata", "status", "id"]),
        list(&["name", "volume", "status", "metadata", "created_at", "incremental", "parent", "id", "project"]),
        prop::option::of(field.clone()),
    )
        .prop_map(|(projects, users, servers, volumes, backups, service_user)| {
            let mut s = json!({
                "projects": projects, "users": users, "servers": servers, "volumes": volumes, "backups": backups,
            });
            if let Some(u) = service_user {
                s["service_user"] = u;
            }
            s
        })
}

#[test]
fn scenario_files_never_panic_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.json");
    fuzz(200, scenario_json(), |s| {
        std::fs::write(&path, s.to_string()).unwrap();
        match Scenario::from_file(&path) {
            Err(e) => {
                let shown = staffeln::errors::chain(&e);
                prop_assert!(shown.contains("scenario.json"), "the file is not named: {shown}");
            }
            Ok(scenario) => match FakeCloud::start(scenario, FakeOptions::default()) {
                Ok(cloud) => cloud.shutdown(),
                Err(e) => {
                    let shown = staffeln::errors::chain(&e);
                    prop_assert!(shown.contains("scenario"), "{shown}");
                }
            },
        }
        Ok(())
    });
}

//! Loader tests: precedence, interpolation, environment, deprecated names,
//! errors. Files are written to a per-test temporary directory.

#![allow(clippy::cloned_ref_to_slice_refs)] // `[a.clone()]` reads better in these tables

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::files::find_first_in;
use super::opts::{self, GroupDef, OptDef};
use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "staffeln-conf-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn cli(group: &str, name: &str, value: &str) -> Source {
    Source::Cli { group: group.into(), name: name.into(), value: value.into() }
}

fn load_files(files: &[PathBuf]) -> Result<Loaded, ConfigError> {
    let sources: Vec<Source> = files.iter().cloned().map(Source::File).collect();
    load(&sources, &no_env())
}

#[test]
fn defaults_are_interpolated_and_typed() {
    let c = Config::default();
    assert_eq!(c.database.connection.expose(), "sqlite:////var/lib/staffeln/staffeln.sqlite");
    assert_eq!(c.conductor.backup_cycle_timeout.as_secs(), 12 * 3600);
    assert!(!c.conductor.backup_cancel_on_timeout, "a running backup is never cancelled by default");
    assert_eq!(c.conductor.retention_time.as_secs(), 17 * 86_400);
    assert_eq!(c.api.port, 8808);
    assert_eq!(c.openstack.skip_retry_codes, vec!["404"]);
    assert_eq!(c.default.default_log_levels.len(), 9);
    assert!(c.notification.receiver.is_empty());
    assert_eq!(c.default.host, hostname());
    assert!(!c.default.host.is_empty());
    assert_eq!(c.database.max_retries, 10);
    assert_eq!(c.openstack.interface, "public");
}

#[test]
fn every_option_has_help_and_a_valid_definition() {
    for group in registry() {
        assert!(group.name == "DEFAULT" || group.name == group.name.to_lowercase(), "{}", group.name);
        for opt in group.opts {
            assert!(!opt.help().is_empty(), "[{}] {} has no help", group.name, opt.name);
            assert!(!opt.help().contains("--"), "[{}] {}: no em-dashes (textwrap)", group.name, opt.name);
        }
    }
}

#[test]
fn later_files_win_and_dirs_count_at_their_position() {
    let t = TempDir::new("order");
    let a = t.file("a.conf", "[DEFAULT]\nhost = node1\n");
    let b = t.file("b.conf", "[DEFAULT]\nhost = node2\n");
    let d = t.path().join("d");
    t.file("d/10-a.conf", "[DEFAULT]\nhost = dir10\nstate_path = /s10\n");
    t.file("d/9.conf", "[DEFAULT]\nhost = dir9\n");
    t.file("d/20-z.conf", "[DEFAULT]\nhost = dir20\n");
    t.file("d/ignored.txt", "[DEFAULT]\nhost = txt\n");
    t.file("d/.hidden.conf", "[DEFAULT]\nhost = hidden\n");
    let host = |sources: &[Source]| load(sources, &no_env()).unwrap().config.default.host;
    assert_eq!(host(&[Source::File(a.clone()), Source::File(b.clone())]), "node2");
    assert_eq!(host(&[Source::File(b.clone()), Source::File(a.clone())]), "node1");
    assert_eq!(host(&[Source::File(a.clone()), Source::Dir(d.clone())]), "dir9");
    assert_eq!(host(&[Source::Dir(d.clone()), Source::File(a.clone())]), "node1");
    let loaded = load(&[Source::Dir(d.clone())], &no_env()).unwrap();
    let names: Vec<_> = loaded.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["10-a.conf", "20-z.conf", "9.conf"]);
    assert_eq!(loaded.config.default.state_path, "/s10");
}

#[test]
fn last_occurrence_in_a_file_wins_and_sections_merge() {
    let t = TempDir::new("repeat");
    let f = t.file("a.conf", "[api]\nport = 1\n[Api]\nport = 2\n[API]\nhost = h\n");
    let c = load_files(&[f]).unwrap().config;
    assert_eq!((c.api.port, c.api.host.as_str()), (2, "h"));
}

#[test]
fn group_and_key_matching_follows_oslo() {
    let t = TempDir::new("match");
    let f = t.file(
        "a.conf",
        "[default]\nhost = lower\n[ api]\nport = 1\n[DEFAULT]\nHost = upper\nlog-file = dash\n[unknown]\nx = y\n",
    );
    let c = load_files(&[f]).unwrap().config;
    assert_eq!(c.default.host, hostname());
    assert_eq!(c.api.port, 8808);
    assert_eq!(c.default.log_file, None);
}

#[test]
fn cli_positional_order_and_env() {
    let t = TempDir::new("cli");
    let x = t.file("x.conf", "[DEFAULT]\ndebug = false\n");
    let debug = |sources: &[Source], e: &BTreeMap<String, String>| load(sources, e).unwrap().config.default.debug;
    let on = cli("DEFAULT", "debug", "true");
    assert!(!debug(&[on.clone(), Source::File(x.clone())], &no_env()));
    assert!(debug(&[Source::File(x.clone()), on.clone()], &no_env()));
    let e = env(&[("OS_DEFAULT__DEBUG", "true")]);
    assert!(debug(&[Source::File(x.clone())], &e), "env beats files");
    let off = env(&[("OS_DEFAULT__DEBUG", "false")]);
    assert!(debug(&[Source::File(x.clone()), on.clone()], &off), "the command line beats env");
    let c = load(&[], &env(&[("OS_DATABASE__CONNECTION", "mysql://u:p@h/s"), ("OS_API__PORT", "9")])).unwrap();
    assert_eq!(c.config.database.connection.expose(), "mysql://u:p@h/s");
    assert_eq!(c.config.api.port, 9);
}

#[test]
fn deprecated_names_follow_oslo() {
    let t = TempDir::new("deprecated");
    let new = t.file("new.conf", "[conductor]\nbackup_cycle_timeout = 1h\n");
    let old = t.file("old.conf", "[conductor]\nbackup_cycle_timout = 2h\n");
    let both = t.file("both.conf", "[conductor]\nbackup_cycle_timout = 3h\nbackup_cycle_timeout = 4h\n");
    let secs = |files: &[PathBuf]| load_files(files).unwrap().config.conductor.backup_cycle_timeout.as_secs();
    assert_eq!(secs(&[old.clone()]), 7200);
    assert_eq!(secs(&[new.clone(), old.clone()]), 7200, "a deprecated key in a later file wins");
    assert_eq!(secs(&[old.clone(), new.clone()]), 3600);
    assert_eq!(secs(&[both.clone()]), 4 * 3600, "inside one file the new name wins");
    let warnings = load_files(&[old]).unwrap().warnings;
    assert_eq!(
        warnings,
        ["Deprecated: Option \"backup_cycle_timout\" from group \"conductor\" is deprecated. \
          Use option \"backup_cycle_timeout\" from group \"conductor\"."]
    );
    assert!(load_files(&[both]).unwrap().warnings.is_empty());
    let logfile = t.file("logfile.conf", "[DEFAULT]\nlogfile = /var/log/s.log\n");
    assert_eq!(load_files(&[logfile]).unwrap().config.default.log_file.as_deref(), Some("/var/log/s.log"));
}

#[test]
fn interpolation_follows_oslo() {
    let t = TempDir::new("interp");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("[DEFAULT]\nstate_path = /s\n[api]\nssl_key_file = $state_path/k\n", "api", "ssl_key_file", "/s/k"),
        ("[DEFAULT]\nstate_path = /s\n[api]\nssl_key_file = ${state_path}k\n", "api", "ssl_key_file", "/sk"),
        ("[api]\nhost = h1\nssl_key_file = $host\n", "api", "ssl_key_file", "h1"),
        ("[api]\nssl_key_file = ${conductor.backup_metadata_key}\n", "api", "ssl_key_file", "__staffeln_backup"),
        ("[api]\nssl_key_file = $$host\n", "api", "ssl_key_file", "$host"),
        ("[api]\nssl_key_file = \\$host\n", "api", "ssl_key_file", "$host"),
        ("[api]\nssl_key_file = 100$\n", "api", "ssl_key_file", "100$"),
        ("[api]\nssl_key_file = pa$1x\n", "api", "ssl_key_file", "pa$1x"),
        ("[api]\nssl_key_file = a${b\n", "api", "ssl_key_file", "a${b"),
        ("[api]\nssl_key_file = $transport_url\n", "api", "ssl_key_file", ""),
        ("[api]\nssl_key_file = $debug/$api_workers_x\n[DEFAULT]\n", "", "", ""),
        ("[api]\nssl_key_file = $log_options\n", "api", "ssl_key_file", "True"),
        ("[DEFAULT]\nx = 9000\nstate_path = $graceful_shutdown_timeout\n", "DEFAULT", "state_path", "60"),
    ];
    for (i, (text, group, name, expected)) in cases.iter().enumerate() {
        let f = t.file(&format!("{i}.conf"), text);
        let r = resolve(registry(), &[Source::File(f)], &no_env());
        if group.is_empty() {
            assert!(r.is_err(), "{text:?}");
            continue;
        }
        let r = r.unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(r.get(group, name), Some(&Value::Str(expected.to_string())), "{text:?}");
    }
}

#[test]
fn the_type_is_applied_after_interpolation() {
    let t = TempDir::new("typed");
    let f = t.file("a.conf", "[api]\nport = $graceful_shutdown_timeout\n[DEFAULT]\ngraceful_shutdown_timeout = 9000\n");
    assert_eq!(load_files(&[f]).unwrap().config.api.port, 9000);
    let f = t.file("b.conf", "[DEFAULT]\nstate_path = /x\n");
    let c = load_files(&[f]).unwrap().config;
    assert_eq!(c.database.connection.expose(), "sqlite:////x/staffeln.sqlite", "defaults are interpolated");
}

#[test]
fn interpolation_errors_name_the_option() {
    let t = TempDir::new("interr");
    let cases: &[(&str, &str)] = &[
        ("[api]\nhost = pa$word\n", "[api] host = \"pa$word\": no such option $word"),
        ("[api]\nhost = ${DEFAULT.state_path}\n", "[api] host = \"${DEFAULT.state_path}\": no such group [DEFAULT]"),
        ("[api]\nhost = $nogroup.x\n", "no such group [nogroup]"),
        ("[api]\nhost = ${conductor.nope}\n", "no such option $conductor.nope"),
        ("[api]\nhost = $ssl_key_file\nssl_key_file = $host\n", "recursive reference"),
        ("[database]\nconnection = mysql://u:pa$s@h/db\n", "[database] connection = \"****\": no such option $…"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = t.file(&format!("{i}.conf"), text);
        let err = load_files(&[f.clone()]).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(err.starts_with(&format!("{}:", f.display())), "{err}");
        assert!(!err.contains("pa$s"), "a secret leaked: {err}");
    }
}

#[test]
fn a_bad_value_is_one_line_naming_everything() {
    let t = TempDir::new("bad");
    let f = t.file("s.conf", "[conductor]\n\nreport_period = ten\n");
    let err = load_files(&[f.clone()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3: [conductor] report_period = \"ten\": expected an integer >= 600", f.display())
    );
    assert_eq!(err.exit_code(), 2);
    let cases: &[(&str, &str)] = &[
        ("[DEFAULT]\ngraceful_shutdown_timeout = 4 # four\n", "= \"4 # four\": expected an integer >= 0"),
        ("[DEFAULT]\ndebug = Enabled\n", "expected a boolean"),
        ("[api]\nport = 99999\n", "expected an integer between 0 and 65535"),
        ("[openstack]\ninterface = Public\n", "expected one of public, internal, admin"),
        ("[conductor]\nretention_time = 5m\n", "expected a duration"),
        ("[conductor]\nbackup_workers = 0\n", "expected an integer >= 1"),
        ("[openstack]\npassword = $$\n[DEFAULT]\n", ""),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = t.file(&format!("{i}.conf"), text);
        match load_files(&[f]) {
            Err(e) => assert!(!needle.is_empty() && e.to_string().contains(needle), "{text:?}: {e}"),
            Ok(_) => assert!(needle.is_empty(), "{text:?} loaded"),
        }
    }
    let e = load(&[], &env(&[("OS_CONDUCTOR__BACKUP_WORKERS", "x")])).unwrap_err().to_string();
    assert_eq!(
        e,
        "environment variable OS_CONDUCTOR__BACKUP_WORKERS: [conductor] backup_workers = \"x\": expected an integer >= 1"
    );
}

#[test]
fn empty_integers_fall_back_to_the_default() {
    let t = TempDir::new("empty");
    let f = t.file("a.conf", "[conductor]\nbackup_workers =\n[api]\nport =\n");
    let r = resolve(registry(), &[Source::File(f.clone())], &no_env()).unwrap();
    assert_eq!(r.get("conductor", "backup_workers"), Some(&Value::None), "oslo's None");
    let c = load_files(&[f]).unwrap().config;
    assert_eq!((c.conductor.backup_workers, c.api.port), (1, 8808));
}

#[test]
fn file_errors_name_the_file() {
    let t = TempDir::new("files");
    let missing = t.path().join("missing.conf");
    let e = load_files(&[missing.clone()]).unwrap_err().to_string();
    assert_eq!(e, format!("config file not found: {}", missing.display()));
    let e = load(&[Source::Dir(t.path().join("nodir"))], &no_env()).unwrap_err().to_string();
    assert!(e.starts_with("config directory not found: "), "{e}");
    let bad = t.file("bad.conf", "[DEFAULT]\nhost = a\n  more\n\n  orphan\n");
    assert_eq!(
        load_files(&[bad.clone()]).unwrap_err().to_string(),
        format!("{}:5: Unexpected continuation line", bad.display())
    );
    let early = t.file("early.conf", "password = hunter2\n");
    let e = load_files(&[early.clone()]).unwrap_err().to_string();
    assert_eq!(e, format!("{}:1: Section must be started before assignment", early.display()));
    let e = load(&[cli("DEFAULT", "nope", "1")], &no_env()).unwrap_err().to_string();
    assert_eq!(e, "no such option [DEFAULT] nope on the command line");
}

#[test]
fn unreadable_files_are_errors() {
    let t = TempDir::new("unreadable");
    let f = t.file("binary.conf", "");
    std::fs::write(&f, [0xff, 0xfe, 0x00]).unwrap();
    let e = load_files(&[f]).unwrap_err();
    assert!(matches!(e, ConfigError::Unreadable { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

static TEST_OPTS: &[OptDef] = &[
    opts::multi_string().named("m", &[" Multi."]),
    opts::dict("a:1").named("d", &[" Dict."]),
    opts::multi_string().deprecated(&[("", "old_m")]).named("n", &[" Multi with an alias."]),
];
static TEST_REGISTRY: &[GroupDef] = &[GroupDef { name: "test", help_lines: &[], opts: TEST_OPTS }];

#[test]
fn multi_valued_options_collect_every_occurrence() {
    let t = TempDir::new("multi");
    let a = t.file("a.conf", "[test]\nm = m1\nm = m2\nn = new\nold_m = old\n");
    let b = t.file("b.conf", "[test]\nm = m3\nm =\n");
    let get = |files: &[&PathBuf], name: &str| {
        let sources: Vec<Source> = files.iter().map(|f| Source::File((*f).clone())).collect();
        resolve(TEST_REGISTRY, &sources, &no_env()).unwrap().get("test", name).cloned()
    };
    let multi = |v: &[&str]| Some(Value::Multi(v.iter().map(|s| s.to_string()).collect()));
    assert_eq!(get(&[&a, &b], "m"), multi(&["m1", "m2", "m3", ""]));
    assert_eq!(get(&[&b, &a], "m"), multi(&["m3", "", "m1", "m2"]));
    assert_eq!(get(&[], "m"), Some(Value::None), "unset, as in oslo");
    assert_eq!(get(&[&a], "n"), multi(&["old", "new"]));
}

#[test]
fn dicts_parse_with_defaults() {
    let t = TempDir::new("dict");
    let a = t.file("a.conf", "[test]\nd = x:1, y : a:b\n");
    let r = resolve(TEST_REGISTRY, &[Source::File(a)], &no_env()).unwrap();
    let expected: BTreeMap<String, String> =
        [("x".to_owned(), "1".to_owned()), ("y".to_owned(), "a:b".to_owned())].into();
    assert_eq!(r.get("test", "d"), Some(&Value::Dict(expected)));
    let r = resolve(TEST_REGISTRY, &[], &no_env()).unwrap();
    assert_eq!(r.get("test", "d"), Some(&Value::Dict([("a".to_owned(), "1".to_owned())].into())));
}

#[test]
fn changes_and_dump_mask_secrets() {
    let old = Config::default();
    let mut new = old.clone();
    new.default.debug = true;
    new.database.connection = Secret::new("mysql://u:secret@h/db");
    let c = changes(&old, &new);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(
        c[0],
        OptChange {
            group: "DEFAULT".into(),
            name: "debug".into(),
            old: "False".into(),
            new: "True".into(),
            mutable: true
        }
    );
    assert_eq!((c[1].old.as_str(), c[1].new.as_str(), c[1].mutable), ("****", "****", false));
    let d = dump(&new);
    let get = |k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("debug"), Some("True"));
    assert_eq!(get("database.connection"), Some("****"));
    assert_eq!(get("transport_url"), Some("****"));
    assert_eq!(get("api.port"), Some("8808"));
    assert_eq!(get("openstack.skip_retry_codes"), Some("['404']"));
    assert_eq!(get("conductor.retention_time"), Some("2w3d"));
    assert_eq!(d[0].0, "control_exchange", "DEFAULT first, sorted");
    assert!(!format!("{d:?}").contains("secret@"));
}

#[test]
fn default_sources_skip_what_is_missing() {
    let s = default_sources("staffeln-no-such-project-x", "staffeln-no-such-prog-x");
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn apply_mutable_copies_only_mutable_options() {
    let mut running = Config::default();
    let mut new = running.clone();
    new.default.debug = true;
    new.default.default_log_levels = vec!["a=DEBUG".into()];
    new.api.port = 1;
    apply_mutable(&mut running, &new);
    assert!(running.default.debug);
    assert_eq!(running.default.default_log_levels, ["a=DEBUG"]);
    assert_eq!(running.api.port, 8808);
}

#[test]
fn a_secret_inserted_by_interpolation_stays_out_of_errors() {
    let t = TempDir::new("leak");
    let f = t.file("a.conf", "[DEFAULT]\ntransport_url = rabbit://u:hunter2@h/\n[api]\nport = $transport_url\n");
    let e = load_files(&[f]).unwrap_err().to_string();
    assert!(e.contains("[api] port = \"$transport_url\": expected an integer"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn default_files_are_the_first_found_per_name() {
    let t = TempDir::new("search");
    let home_project = t.path().join("home/.staffeln");
    let home = t.path().join("home");
    let etc_project = t.path().join("etc/staffeln");
    t.file("home/.staffeln/staffeln-api.conf", "");
    t.file("home/staffeln.conf", "");
    t.file("etc/staffeln/staffeln.conf", "");
    t.file("etc/staffeln/staffeln-api.conf", "");
    t.file("etc/staffeln/staffeln.conf.d/x.conf", "");
    let dirs = [home_project.clone(), home.clone(), etc_project.clone()];
    assert_eq!(
        find_first_in(&dirs, "staffeln", "staffeln-api", ".conf"),
        [home.join("staffeln.conf"), home_project.join("staffeln-api.conf")]
    );
    assert_eq!(find_first_in(&dirs, "staffeln", "staffeln-api", ".conf.d"), [etc_project.join("staffeln.conf.d")]);
}

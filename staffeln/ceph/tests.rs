//! Validation tables, and `show`/`apply` against a stand-in `ceph` executable
//! that records its arguments and answers in the real CLI's formats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::cli::NOT_SET;
use super::*;

fn base() -> Settings {
    Settings::default()
}

#[test]
fn validation_accepts_and_refuses() {
    type Edit = fn(&mut Settings);
    type Refusal = Option<(&'static str, &'static str)>;
    let cases: Vec<(&str, Edit, Refusal)> = vec![
        ("defaults", |_| {}, None),
        (
            "full",
            |s| {
                s.algorithm = Some(Algorithm::Zstd);
                s.required_ratio = Some(1.0);
                s.min_blob_size = Some(8192);
                s.max_blob_size = Some(8192);
            },
            None,
        ),
        ("mode none alone", |s| s.mode = Mode::None, None),
        ("ratio zero", |s| s.required_ratio = Some(0.0), Some(("required_ratio", "greater than 0"))),
        ("ratio above one", |s| s.required_ratio = Some(1.5), Some(("required_ratio", "at most 1"))),
        ("ratio NaN", |s| s.required_ratio = Some(f64::NAN), Some(("required_ratio", "at most 1"))),
        (
            "min above max",
            |s| {
                s.min_blob_size = Some(131072);
                s.max_blob_size = Some(65536);
            },
            Some(("min_blob_size", "greater than max_blob_size = 65536")),
        ),
        (
            "none with algorithm",
            |s| {
                s.mode = Mode::None;
                s.algorithm = Some(Algorithm::Lz4);
            },
            Some(("algorithm", "no effect with mode = none")),
        ),
        (
            "none with ratio",
            |s| {
                s.mode = Mode::None;
                s.required_ratio = Some(0.5);
            },
            Some(("required_ratio", "no effect with mode = none")),
        ),
        ("empty pool", |s| s.pool.clear(), Some(("pool", "must not be empty"))),
        ("option-like pool", |s| s.pool = "--yes-i-really-mean-it".into(), Some(("pool", "start with '-'"))),
        ("pool with space", |s| s.pool = "a b".into(), Some(("pool", "whitespace"))),
        (
            "client. prefix",
            |s| s.ceph_id = Some("client.cinder".into()),
            Some(("ceph_id", "without the 'client.' prefix")),
        ),
    ];
    for (name, edit, want) in cases {
        let mut s = base();
        edit(&mut s);
        match (s.validate(), want) {
            (Ok(()), None) => {}
            (Err(e), Some((option, text))) => {
                assert_eq!(e.option, option, "{name}: {e}");
                let line = e.to_string();
                assert!(line.starts_with(&format!("[ceph_compression] {option} = ")), "{name}: {line}");
                assert!(line.contains(text), "{name}: {line:?} lacks {text:?}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn choices_parse_and_print() {
    for m in Mode::ALL {
        assert_eq!(m.as_str().parse::<Mode>().ok(), Some(m));
    }
    for a in Algorithm::ALL {
        assert_eq!(a.as_str().parse::<Algorithm>().ok(), Some(a));
    }
    let e = "bz2".parse::<Algorithm>().unwrap_err();
    assert_eq!(e.to_string(), "[ceph_compression] algorithm = \"bz2\": expected one of snappy, zlib, zstd, lz4");
    assert!("Aggressive".parse::<Mode>().is_err(), "choices are case-sensitive like oslo.config's");
}

/// A stand-in `ceph`: appends its arguments to `calls`, keeps pool properties
/// as files under `pools/<pool>/`, and answers like the real CLI.
struct FakeCeph {
    dir: tempfile::TempDir,
}

const FAKE_CEPH: &str = r#"#!/bin/sh
state="$(dirname "$0")"
printf '%s\n' "$*" >> "$state/calls"
while [ $# -gt 0 ]; do
  case "$1" in
    --conf|--id|--connect-timeout) shift 2 ;;
    *) break ;;
  esac
done
if [ "$1 $2" != "osd pool" ]; then echo "Error EINVAL: unexpected $*" >&2; exit 22; fi
verb=$3 pool=$4 key=$5
if [ ! -d "$state/pools/$pool" ]; then echo "Error ENOENT: unrecognized pool '$pool'" >&2; exit 2; fi
case "$verb" in
  get)
    if [ "$6 $7" != "-f json" ]; then echo "plain output not supported here" >&2; exit 22; fi
    if [ ! -f "$state/pools/$pool/$key" ]; then
      echo "Error ENOENT: option '$key' is not set on pool '$pool'" >&2; exit 2
    fi
    printf '\n{"pool":"%s","pool_id":3,"%s":%s}\n' "$pool" "$key" "$(cat "$state/pools/$pool/$key")"
    ;;
  set)
    case "$key" in
      compression_mode|compression_algorithm) printf '"%s"' "$6" > "$state/pools/$pool/$key" ;;
      *) printf '%s' "$6" > "$state/pools/$pool/$key" ;;
    esac
    echo "set pool 3 $key to $6" >&2
    ;;
  *) echo "Error EINVAL: $verb" >&2; exit 22 ;;
esac
"#;

impl FakeCeph {
    fn new(pools: &[&str]) -> FakeCeph {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cli = dir.path().join("ceph");
        std::fs::write(&cli, FAKE_CEPH).unwrap();
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        for p in pools {
            std::fs::create_dir_all(dir.path().join("pools").join(p)).unwrap();
        }
        FakeCeph { dir }
    }
    fn cli(&self) -> PathBuf {
        self.dir.path().join("ceph")
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default().lines().map(str::to_owned).collect()
    }
    fn settings(&self) -> Settings {
        Settings { ceph_cli: self.cli(), ..Settings::default() }
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn show_reports_unset_properties_of_a_fresh_pool() {
    let ceph = FakeCeph::new(&["backups"]);
    let got = show(&ceph.settings()).unwrap();
    let want: Vec<(&str, &str)> = super::settings::PROPERTIES.iter().map(|p| (*p, NOT_SET)).collect();
    assert_eq!(got, pairs(&want));
    assert_eq!(ceph.calls()[0], "--connect-timeout 30 osd pool get backups compression_mode -f json");
    assert_eq!(ceph.calls().len(), 5);
}

#[test]
fn apply_sets_each_property_mode_last_then_show_reads_them_back() {
    let ceph = FakeCeph::new(&["volumebackups"]);
    let settings = Settings {
        pool: "volumebackups".into(),
        mode: Mode::Force,
        algorithm: Some(Algorithm::Zstd),
        required_ratio: Some(0.875),
        min_blob_size: Some(8192),
        max_blob_size: Some(524288),
        ceph_conf: Some(PathBuf::from("/etc/ceph/ceph.conf")),
        ceph_id: Some("cinder-backup".into()),
        connect_timeout: 5,
        ..ceph.settings()
    };
    let applied = apply(&settings).unwrap();
    let want = [
        ("compression_algorithm", "zstd"),
        ("compression_required_ratio", "0.875"),
        ("compression_min_blob_size", "8192"),
        ("compression_max_blob_size", "524288"),
        ("compression_mode", "force"),
    ];
    assert_eq!(applied, pairs(&want));
    let g = "--conf /etc/ceph/ceph.conf --id cinder-backup --connect-timeout 5";
    let calls: Vec<String> = want.iter().map(|(k, v)| format!("{g} osd pool set volumebackups {k} {v}")).collect();
    assert_eq!(ceph.calls(), calls);

    let shown = show(&settings).unwrap();
    assert_eq!(
        shown,
        pairs(&[
            ("compression_mode", "force"),
            ("compression_algorithm", "zstd"),
            ("compression_required_ratio", "0.875"),
            ("compression_min_blob_size", "8192"),
            ("compression_max_blob_size", "524288"),
        ])
    );
}

#[test]
fn apply_leaves_unset_properties_alone() {
    let ceph = FakeCeph::new(&["backups"]);
    let applied = apply(&Settings { mode: Mode::Passive, ..ceph.settings() }).unwrap();
    assert_eq!(applied, pairs(&[("compression_mode", "passive")]));
    assert_eq!(ceph.calls(), ["--connect-timeout 30 osd pool set backups compression_mode passive"]);
    assert!(!ceph.path().join("pools/backups/compression_algorithm").exists());
}

#[test]
fn invalid_settings_never_reach_the_cluster() {
    let ceph = FakeCeph::new(&["backups"]);
    let err = apply(&Settings { mode: Mode::None, algorithm: Some(Algorithm::Zlib), ..ceph.settings() }).unwrap_err();
    assert!(matches!(err, CephError::Settings(_)), "{err}");
    assert!(ceph.calls().is_empty());
}

#[test]
fn unknown_pool_is_an_error_not_unset() {
    let ceph = FakeCeph::new(&["backups"]);
    let err = show(&Settings { pool: "nope".into(), ..ceph.settings() }).unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, CephError::Failed { .. }), "{line}");
    assert!(line.contains("exit status 2") && line.contains("unrecognized pool 'nope'"), "{line}");
    assert!(line.contains("osd pool get nope compression_mode -f json"), "{line}");
}

#[test]
fn missing_cli_and_unreadable_output_are_reported() {
    let ceph = FakeCeph::new(&[]);
    let missing = Settings { ceph_cli: ceph.path().join("no-such-ceph"), ..ceph.settings() };
    let err = show(&missing).unwrap_err();
    assert!(matches!(err, CephError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("no-such-ceph"), "{err}");

    let liar = ceph.path().join("liar");
    std::fs::write(&liar, "#!/bin/sh\necho 'compression_mode: force'\n").unwrap();
    std::fs::set_permissions(&liar, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = show(&Settings { ceph_cli: liar, ..ceph.settings() }).unwrap_err();
    assert!(matches!(err, CephError::Output { .. }), "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
}

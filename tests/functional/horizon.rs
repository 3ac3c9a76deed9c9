//! The Horizon panel end to end (tests/horizon/e2e.py): a tenant in headless
//! Chromium, logged in through this environment's Keystone, pages and filters
//! the panel, sees Delete on its own backup and not on Staffeln's, and Cinder
//! refuses the delete sent by URL. The script starts staffeln-api on the
//! port Cinder's policy asks, so it runs as a scenario, one at a time.

use std::path::PathBuf;
use std::process::Command;

use crate::cloud::{env, serial};
use crate::support::repo_root;

#[test]
fn horizon_panel_end_to_end_in_chromium() {
    let _one_at_a_time = serial();
    let _ = env();
    let root = repo_root();
    let python = std::env::var_os("STAFFELN_HORIZON_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-horizon/bin/python"));
    assert!(
        python.exists(),
        "the Horizon venv is missing ({}): run `tools/setup-test-env` (horizon, Django, selenium; \
         it also installs chromium and chromium-driver)",
        python.display()
    );
    let api = PathBuf::from(env!("CARGO_BIN_EXE_staffeln-api"));
    let bin_dir = api.parent().expect("the binary's directory");
    let out = Command::new(&python)
        .arg(root.join("tests/horizon/e2e.py"))
        .arg("check")
        .env("STAFFELN_E2E_BIN_DIR", bin_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Horizon end-to-end run failed ({}):\n{stderr}", out.status);
    assert!(stderr.contains("end to end: ok"), "{stderr}");
}

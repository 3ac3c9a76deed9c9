//! The Horizon plugin (horizon/staffeln_dashboard): its tests run by
//! Horizon's own test runner and helpers, in the venv `tools/setup-test-env`
//! builds (`.venv-horizon/`, horizon 27 and Django, pinned in
//! `tools/horizon-requirements.txt`). The end-to-end run against real
//! Keystone and Cinder in headless Chromium is `tests/horizon/e2e.py`.

use std::process::Command;

use crate::support::repo_root;

#[test]
fn horizon_plugin_tests_pass_in_horizons_runner() {
    let root = repo_root();
    let python = std::env::var_os("STAFFELN_HORIZON_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-horizon/bin/python"));
    assert!(
        python.exists(),
        "the Horizon venv is missing ({}): run `tools/setup-test-env` (it installs \
         tools/horizon-requirements.txt: horizon 27, Django, selenium), or set \
         STAFFELN_HORIZON_PYTHON to a python with horizon installed",
        python.display()
    );
    let out = Command::new(&python)
        .current_dir(root.join("horizon"))
        .args(["-m", "django", "test", "--settings=staffeln_dashboard.test.settings", "staffeln_dashboard"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Horizon plugin's tests failed ({}):\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    // Django's runner prints "Ran N tests" and "OK"; none run is a failure.
    let ran = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Ran ").and_then(|r| r.split_whitespace().next()))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(ran >= 20, "expected the plugin's tests to run, Django ran {ran}:\n{stderr}");
}

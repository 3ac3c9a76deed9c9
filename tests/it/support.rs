//! Fixtures shared by the integration tests: the Python peers' venv, the real
//! MariaDB server, unique names. A missing peer fails the test loudly with what
//! to start or install; nothing is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the source tree (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the test venv holding the stock OpenStack peers
/// (oslo.config, oslo.messaging, oslo.policy, python-openstackclient, aiosmtpd).
/// `STAFFELN_TEST_PYTHON` overrides; `tools/run-tests` creates `.venv-test/`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("STAFFELN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-test/bin/python"));
    assert!(
        path.exists(),
        "the Python test venv is missing ({}): run `tools/run-tests` once, or `tools/setup-test-env`, \
         or set STAFFELN_TEST_PYTHON to a python with oslo.config, oslo.messaging, oslo.policy, \
         python-openstackclient and aiosmtpd installed",
        path.display()
    );
    path
}

/// Runs `python -c script args…` and returns stdout; panics with stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test venv's python: {e}"));
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Path of the `bin/` directory of the test venv (for the `openstack` CLI).
pub fn venv_bin() -> PathBuf {
    python().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Server part of the MariaDB URL (no database): `STAFFELN_TEST_MYSQL_URL` or
/// `mysql://root@127.0.0.1:3306`.
pub fn mysql_server_url() -> String {
    std::env::var("STAFFELN_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

/// A name unique to this process and call, for databases, queues, exchanges.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

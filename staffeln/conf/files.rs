//! Where oslo.config looks for configuration files and directories when the
//! command line names none, and the host name (`[DEFAULT] host`'s default).

use std::path::PathBuf;

use super::load::Source;

/// The project name: `staffeln.conf`, `/etc/staffeln/`, `~/.staffeln/`.
pub const PROJECT: &str = "staffeln";

/// The directories oslo searches for default files and directories.
fn search_dirs(project: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(format!(".{project}")));
        dirs.push(home);
    }
    dirs.push(PathBuf::from("/etc").join(project));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

fn find_first(project: &str, prog: &str, extension: &str) -> Vec<PathBuf> {
    find_first_in(&search_dirs(project), project, prog, extension)
}

/// For each of `project` and `prog`, the first `<dir>/<name><extension>`
/// that exists (oslo's `_search_dirs`).
pub(super) fn find_first_in(dirs: &[PathBuf], project: &str, prog: &str, extension: &str) -> Vec<PathBuf> {
    [project, prog]
        .iter()
        .filter(|name| !name.is_empty())
        .filter_map(|name| dirs.iter().map(|d| d.join(format!("{name}{extension}"))).find(|p| p.exists()))
        .collect()
}

/// oslo's default config files: the first `<project>.conf` and the first
/// `<prog>.conf` found in `~/.<project>/`, `~/`, `/etc/<project>/`, `/etc/`.
pub fn default_config_files(project: &str, prog: &str) -> Vec<Source> {
    find_first(project, prog, ".conf").into_iter().map(Source::File).collect()
}

/// oslo's default config dirs: `<project>.conf.d/` and `<prog>.conf.d/`,
/// searched the same way; missing ones are skipped.
pub fn default_config_dirs(project: &str, prog: &str) -> Vec<Source> {
    find_first(project, prog, ".conf.d").into_iter().map(Source::Dir).collect()
}

/// The default files, then the default directories (oslo's order when
/// neither `--config-file` nor `--config-dir` is given).
pub fn default_sources(project: &str, prog: &str) -> Vec<Source> {
    let mut sources = default_config_files(project, prog);
    sources.extend(default_config_dirs(project, prog));
    sources
}

/// The host name (Python's `socket.gethostname()`), the default of
/// `[DEFAULT] host`.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

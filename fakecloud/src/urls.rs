//! The URLs the emulator hands out (catalog, links, version discovery) and
//! how a path's optional project id is split off.

/// URLs the emulator hands out (catalog, links, discovery).
pub(crate) struct Urls {
    pub base: String,
    pub cinder_with_project: bool,
    pub nova_with_project: bool,
}

impl Urls {
    pub fn identity_root(&self) -> String {
        format!("{}/identity", self.base)
    }
    pub fn identity(&self) -> String {
        format!("{}/identity/v3", self.base)
    }
    pub fn compute_root(&self) -> String {
        format!("{}/compute", self.base)
    }
    pub fn volume_root(&self) -> String {
        format!("{}/volume", self.base)
    }
}

/// Resource names that follow the version segment directly; anything else in
/// that position is a project id (`/v3/<pid>/volumes`).
const RESOURCES: &[&str] = &[
    "servers",
    "flavors",
    "os-quota-sets",
    "limits",
    "images",
    "extensions",
    "volumes",
    "backups",
    "attachments",
    "snapshots",
    "types",
];

/// Splits an optional project id off the path after the version segment.
pub(crate) fn split_project<'a, 'b>(rest: &'b [&'a str]) -> (Option<&'a str>, &'b [&'a str]) {
    match rest.split_first() {
        Some((first, tail)) if !RESOURCES.contains(first) => (Some(first), tail),
        _ => (None, rest),
    }
}

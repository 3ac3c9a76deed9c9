//! What the conductor benchmarks share: the generated fleet with every
//! server flagged and every volume attached, and the emulator's binary
//! started on it in a process of its own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use staffeln_fakecloud::Scenario;

/// The emulator's process; killed on drop.
pub struct Cloud {
    pub child: Child,
    pub auth_url: String,
    pub control: String,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every server flagged, every volume attached to a server of its project;
/// with `roles`, the service user holds `admin` in every project (so that
/// it can create the backups there) and quotas hold the backups.
pub fn fleet(projects: usize, servers: usize, volumes: usize, roles: bool) -> Scenario {
    let mut s = Scenario::generate(projects, servers, volumes, 42);
    let mut by_project: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, server) in s.servers.iter_mut().enumerate() {
        server.metadata.insert("__staffeln_backup".into(), "true".into());
        server.status = "ACTIVE".into();
        server.volumes.clear();
        by_project.entry(server.project.clone()).or_default().push(i);
    }
    let mut next: BTreeMap<String, usize> = BTreeMap::new();
    for v in &mut s.volumes {
        v.metadata.clear();
        v.status = "available".into();
        if let Some(servers) = by_project.get(&v.project) {
            let k = next.entry(v.project.clone()).or_default();
            let server = servers[*k % servers.len()];
            *k += 1;
            if let Some(id) = &v.id {
                s.servers[server].volumes.push(id.clone());
            }
        }
    }
    if roles {
        let ids: Vec<String> = s.projects.iter().filter_map(|p| p.id.clone()).collect();
        for p in &mut s.projects {
            p.quota.backups = p.quota.backups.max(10_000);
            p.quota.backup_gigabytes = p.quota.backup_gigabytes.max(10_000_000);
        }
        if let Some(user) = s.users.iter_mut().find(|u| u.name == "staffeln") {
            for id in ids {
                user.roles.entry(id).or_insert_with(|| vec!["admin".into()]);
            }
        }
    }
    s
}

/// Starts `staffeln-fakecloud` (built beside this binary) on `scenario`,
/// with `extra` arguments.
pub fn start_cloud(
    scenario: &Scenario,
    dir: &std::path::Path,
    extra: &[String],
) -> Result<Cloud, Box<dyn std::error::Error>> {
    let file = dir.join("fleet.json");
    std::fs::write(&file, serde_json::to_vec(scenario)?)?;
    let exe = std::env::current_exe()?.with_file_name("staffeln-fakecloud");
    let mut child = Command::new(&exe)
        .arg("--scenario")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!("cannot start {}: {e} (build it: cargo build --release --bin staffeln-fakecloud)", exe.display())
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (mut auth_url, mut control) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(v) = line.strip_prefix("OS_AUTH_URL=") {
            auth_url = v.to_owned();
        } else if let Some(v) = line.strip_prefix("# control: ") {
            control = v.to_owned();
            break;
        }
    }
    if auth_url.is_empty() || control.is_empty() {
        return Err("staffeln-fakecloud did not print its URLs".into());
    }
    Ok(Cloud { child, auth_url, control })
}

/// Peak resident set of process `pid` (`self` for this one), in KiB.
pub fn peak_rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

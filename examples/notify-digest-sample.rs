//! Writes a sample project digest as HTML (the built-in template, or the
//! operator template given with `--template FILE`), for looking at it in a
//! browser or rendering it to PNG (`tools/render-digest-png`).
//!
//! Usage: `cargo run --example notify-digest-sample -- OUT.html [--template FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{TimeZone, Utc};
use staffeln::notify::render::render;
use staffeln::notify::{
    BackupKind, BackupResult, ProjectBackups, Quota, SkippedVolume, UnstampedServer, project_digest,
};

fn backup(server: &str, volume: &str, n: u32, kind: BackupKind, size_gb: u64, fail: Option<&str>) -> BackupResult {
    BackupResult {
        server_id: format!("9b1c4e2a-0d6f-4c3b-8e21-7f5a3c90{n:04}"),
        server_name: server.to_owned(),
        volume_id: format!("3f7d2b10-5a8e-4e9c-b6a4-1c2d3e4f{n:04}"),
        volume_name: volume.to_owned(),
        backup_id: fail.is_none().then(|| format!("c0ffee00-1234-4abc-9def-00000000{n:04}")),
        backup_name: format!("staffeln_{volume}_20261125"),
        kind,
        size_gb,
        success: fail.is_none(),
        in_progress: false,
        fail_reason: fail.map(str::to_owned),
    }
}

fn sample() -> ProjectBackups {
    ProjectBackups {
        project_id: "4f1c2d8e9a7b4c6d8e0f1a2b3c4d5e6f".into(),
        project_name: "demo".into(),
        results: vec![
            backup("web-1", "web-1-root", 1, BackupKind::Incremental, 20, None),
            backup("web-1", "web-1-data", 2, BackupKind::Full, 100, None),
            backup("db-<primary>", "pgdata & wal", 3, BackupKind::Incremental, 250, None),
            backup("db-<primary>", "pg-archive", 4, BackupKind::Full, 500, Some("Cinder backup error: quota exceeded")),
            backup("cache", "", 5, BackupKind::Full, 10, None),
            BackupResult {
                in_progress: true,
                ..backup(
                    "db-<primary>",
                    "pg-base",
                    7,
                    BackupKind::Full,
                    2000,
                    Some(
                        "backup c0ffee00-1234-4abc-9def-000000000007 was still being created when \
                         backup_cycle_timeout (12h) passed; it was left running (not cancelled) and is recorded \
                         when Cinder finishes it",
                    ),
                )
            },
        ],
        skipped: vec![SkippedVolume {
            server_id: "9b1c4e2a-0d6f-4c3b-8e21-7f5a3c900006".into(),
            server_name: "scratch".into(),
            volume_id: "3f7d2b10-5a8e-4e9c-b6a4-1c2d3e4f0006".into(),
            volume_name: "tmp".into(),
            reason: "volume metadata __staffeln_skip is true".into(),
        }],
        unstamped: vec![UnstampedServer {
            server_id: "9b1c4e2a-0d6f-4c3b-8e21-7f5a3c900008".into(),
            server_name: "build-agent".into(),
            reason: "last-backup-time could not be set: Nova refuses metadata changes while the server is in ERROR: \
                     Cannot 'update metadata' instance 9b1c4e2a-0d6f-4c3b-8e21-7f5a3c900008 while it is in \
                     vm_state error"
                .into(),
        }],
        backups_quota: Some(Quota { limit: 50, in_use: 41, reserved: 0 }),
        gigabytes_quota: Some(Quota { limit: 2000, in_use: 1100, reserved: 0 }),
        member_emails: vec![],
        assurance: None,
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), template) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: notify-digest-sample OUT.html [--template FILE]");
        return ExitCode::from(2);
    };
    let template = match (template, args.next()) {
        (None, _) => None,
        (Some(flag), Some(file)) if flag == "--template" => Some(PathBuf::from(file)),
        _ => {
            eprintln!("usage: notify-digest-sample OUT.html [--template FILE]");
            return ExitCode::from(2);
        }
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 16, 14, 48).single().unwrap_or_else(Utc::now);
    let digest = project_digest(&sample(), now);
    let rendered = match render(&digest, template.as_deref()) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("notify-digest-sample: {}", staffeln::notify::render::error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    if let Some(err) = &rendered.fallback {
        eprintln!("notify-digest-sample: {}: used the built-in template", staffeln::notify::render::error_chain(err));
    }
    if let Err(err) = std::fs::write(&out, rendered.html) {
        eprintln!("notify-digest-sample: cannot write {}: {err}", out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", out.display());
    ExitCode::SUCCESS
}

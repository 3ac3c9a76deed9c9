//! Completion by Cinder's events (issue 17.3) against real Cinder: Cinder
//! publishes its notifications as the devstack plugin configures it
//! (`configure_cinder_notifications_for_staffeln`, run by
//! `tools/functional-env up`), and a conductor with the plugin's
//! `[cinder_notifications]`, a queue of its own and polls an hour apart
//! records its backup because real cinder-backup's `backup.create.end`
//! arrived, not because a list poll found it; then a retention run deletes
//! the expired chain in two waves, the second started by Cinder's
//! `backup.delete.end` of the first, not by a list of the backups being
//! deleted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cloud::{Staffeln, Tenant, env, serial, task_for, wait_until};
use crate::scenarios::text;
use crate::support::unique_name;

/// Polls an hour apart: whatever ends within the scenario's bounds was not
/// found by a poll after the first one.
const HOUR: u64 = 3600;

/// Staffeln's queue on the functional vhost, deleted at the end.
struct FnQueue(String);

impl Drop for FnQueue {
    fn drop(&mut self) {
        let vhost = env().facts["rabbit_vhost"].as_str().unwrap_or_default().to_owned();
        let _ = Command::new("rabbitmqctl").args(["-q", "delete_queue", "-p", &vhost, &self.0]).output();
    }
}

/// `[cinder_notifications]` as the devstack plugin wrote it, on the broker
/// Cinder publishes to (the functional vhost), with `queue` and polls an
/// hour apart.
fn event_options(queue: &str) -> String {
    let plugin = env().facts["cinder_notifications"].as_object().cloned().unwrap_or_default();
    assert_eq!(
        plugin.get("enabled").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref(),
        Some("true"),
        "tools/functional-env up ran the plugin's configure_cinder_notifications_for_staffeln: {plugin:?}"
    );
    let mut out = format!("poll_interval = {HOUR}\n\n[cinder_notifications]\n");
    for (k, v) in &plugin {
        out.push_str(&format!("{k} = {}\n", v.as_str().unwrap_or_default()));
    }
    out.push_str(&format!(
        "transport_url = {}\nqueue = {queue}\nfallback_poll_interval = {HOUR}\n",
        text(&env().facts["transport_url"])
    ));
    out
}

/// The lines a log file gained since `offset`.
fn lines_since(path: &Path, offset: u64) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let from = usize::try_from(offset).unwrap().min(bytes.len());
    String::from_utf8_lossy(&bytes[from..]).lines().map(str::to_owned).collect()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn cinder_api_log() -> PathBuf {
    env().logs.join("cinder-api.log")
}

/// The requests Cinder's API logged (`GET http://…/backups/detail?…`).
fn requests(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|l| {
            ["GET http", "POST http", "PUT http", "DELETE http"]
                .iter()
                .find_map(|m| l.find(m).map(|at| &l[at..]))
                .filter(|r| !r.contains(" returned with HTTP "))
        })
        .collect()
}

#[test]
fn real_cinders_backup_events_end_a_backup_and_a_retention_wait_with_no_list_poll() {
    let _one = serial();
    let t = Tenant::new("events");
    t.grant_staffeln();
    let boot = t.volumes(&[(Some("boot"), true)]).remove(0);
    let server = t.server("app", &boot);
    t.user.run(&["server", "set", "--property", "__staffeln_backup=true", &server]);

    let queue = FnQueue(unique_name("staffeln-fn-events"));
    // Full, incremental, full over three cycles; the first chain expires at once.
    let options = format!("full_backup_depth = 1\nretention_time = 1s\n{}", event_options(&queue.0));
    let staffeln = Staffeln::start(&options, true);
    let log = staffeln.dir.path().join("staffeln-conductor.log");
    wait_until("the conductor listening on Cinder's exchange", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(&format!("through queue {}", queue.0)).then_some(())
    });

    let (api_log, api_from, conductor_from) = (cinder_api_log(), size(&cinder_api_log()), size(&log));
    let started = Instant::now();
    // Bounded by 300 s: polls are an hour apart, so only the event can end it.
    staffeln.backup_cycle();
    let took = started.elapsed();
    let api = lines_since(&api_log, api_from);
    let conductor = lines_since(&log, conductor_from);

    let tasks = staffeln.tasks();
    let done: Vec<&Value> = task_for(&tasks, &t, "boot").into_iter().filter(|t| t["state"] == "done").collect();
    assert_eq!(done.len(), 1, "{tasks:#?}");
    let backup = text(&done[0]["backup_id"]).to_owned();
    let task = text(&done[0]["task_id"]).to_owned();

    // The conductor says the event ended the task (a poll that had recorded it
    // first would have left the event nothing to end).
    let by_event = format!("task {task} ended by Cinder's backup.create.end of backup {backup}");
    assert!(
        conductor.iter().any(|l| l.contains(&by_event)),
        "no `{by_event}` in the conductor's log:\n{}",
        conductor.join("\n")
    );
    // Cinder's API saw the create and, after it, no read of the backup one
    // by one (what a poll does for a backup it missed in the lists). A poll
    // reads one newest-first list of every status, as a discovery does: the
    // log line above, not the URLs, tells that no poll recorded the backup.
    let reqs = requests(&api);
    let create = reqs
        .iter()
        .position(|r| r.starts_with("POST ") && r.contains("/backups") && !r.contains("/action"))
        .unwrap_or_else(|| panic!("no backup create in Cinder's API log {}:\n{}", api_log.display(), reqs.join("\n")));
    let after: Vec<&&str> = reqs[create..].iter().filter(|r| r.starts_with("GET ") && r.contains("/backups")).collect();
    for r in &after {
        assert!(
            !r.contains(&format!("/backups/{backup}")),
            "Cinder was asked `{r}` after the create: a poll read the backup\n{}",
            reqs.join("\n")
        );
    }
    eprintln!(
        "backup {backup} recorded by its event {:.1} s after the trigger; {} list(s) of backups after the create",
        took.as_secs_f64(),
        after.len()
    );
    // What real Cinder published, as the conductor read it.
    assert!(
        conductor.iter().any(|l| l.contains(&format!("Cinder: CreateStart of backup {backup}"))),
        "the conductor read no backup.create.start of {backup}:\n{}",
        conductor.join("\n")
    );

    // Two more cycles, also ended by their events (bounded as above): an
    // incremental, then a new full.
    staffeln.backup_cycle();
    staffeln.backup_cycle();
    let tasks = staffeln.tasks();
    let mut chain: Vec<&Value> = task_for(&tasks, &t, "boot").into_iter().filter(|t| t["state"] == "done").collect();
    chain.sort_by_key(|t| text(&t["finished_at"]).to_owned());
    let ids: Vec<String> = chain.iter().map(|t| text(&t["backup_id"]).to_owned()).collect();
    assert_eq!(ids.len(), 3, "{tasks:#?}");

    // Retention deletes the expired chain newest first: the incremental,
    // then, once it is gone, the full. With polls an hour apart, only
    // Cinder's backup.delete.end can end that wait within the RPC's 300 s.
    let (api_from, conductor_from) = (size(&api_log), size(&log));
    let started = Instant::now();
    let run = staffeln.cli(&["--timeout", "300", "retention", "trigger"]);
    let took = started.elapsed();
    let api = lines_since(&api_log, api_from);
    let conductor = lines_since(&log, conductor_from);
    let summary = if run["summary"].is_object() { &run["summary"] } else { &run };
    assert_eq!((summary["to_delete"].as_u64(), summary["deleted"].as_u64()), (Some(2), Some(2)), "{run}");
    let ended = format!("retention: Cinder's backup.delete.end ended the wait for 1 of 1 deletes ({})", ids[1]);
    assert!(
        conductor.iter().any(|l| l.contains(&ended)),
        "no `{ended}` in the conductor's log (run {run}):\n{}",
        conductor.join("\n")
    );
    let reqs = requests(&api);
    let deletes: Vec<&&str> = reqs.iter().filter(|r| r.starts_with("DELETE ") && r.contains("/backups/")).collect();
    assert_eq!(deletes.len(), 2, "the incremental, then the full:\n{}", reqs.join("\n"));
    assert!(deletes[0].contains(&ids[1]) && deletes[1].contains(&ids[0]), "{deletes:?}");
    let polled: Vec<&&str> =
        reqs.iter().filter(|r| r.contains("/backups/detail") && r.contains("status=deleting")).collect();
    assert!(polled.is_empty(), "retention listed the backups being deleted: {polled:?}");
    eprintln!("retention run with a wait ended by backup.delete.end: {:.1} s", took.as_secs_f64());
    wait_until("the expired chain gone", Duration::from_secs(120), || {
        let left: Vec<String> = t.backups().iter().map(|b| text(&b["ID"]).to_owned()).collect();
        (!left.contains(&ids[0]) && !left.contains(&ids[1])).then_some(left)
    });
    assert!(t.backups().iter().any(|b| b["ID"] == ids[2].as_str()), "the newest backup is kept");
}

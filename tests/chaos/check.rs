//! The invariants checked after every trial, from the emulator's state
//! (live and deleted backups), Staffeln's database, the mails the SMTP sink
//! received, and every log and stderr line the conductors wrote.

use std::collections::{BTreeMap, BTreeSet};

use staffeln::db::tasks::TaskRow;
use staffeln::objects::TaskState;
use staffeln_fakecloud::BackupRecord;

const TASK_KEY: &str = "__staffeln_task_id";
const AUTOMATED_KEY: &str = "__automated_backup";

/// Violations found in one trial, by invariant. All zero when it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    /// A due volume got more than one automated backup in the cycle.
    pub duplicates: u32,
    /// A due volume has neither a backup nor a recorded reason.
    pub lost: u32,
    /// A task recorded as not backed up whose backup exists and is available.
    pub misrecorded: u32,
    /// A task still planned/claimed/creating/unfinished when the trial ended.
    pub stuck: u32,
    /// A backup of Staffeln's that no task records and no `backup_data` row
    /// owns (left creating, or made after its task was taken over), so
    /// retention would never rotate it.
    pub untracked: u32,
    /// Retention deleted a user's backup, a full with live incrementals, or
    /// the last good backup of a volume.
    pub wrong_deletes: u32,
    /// A project's digest arrived more than once as different messages.
    pub duplicate_digests: u32,
    /// Not a violation: a digest delivered again with the same Message-ID
    /// (the conductor died between the delivery and the "reported" mark).
    pub resent_digests: u32,
    /// A project with results got no digest.
    pub missing_digests: u32,
    /// `panicked` in a log or on stderr.
    pub panics: u32,
    /// A password or token in a log or on stderr.
    pub secrets: u32,
    /// Human-readable details, one line each.
    pub details: Vec<String>,
}

impl Violations {
    pub fn total(&self) -> u32 {
        self.duplicates
            + self.lost
            + self.misrecorded
            + self.stuck
            + self.untracked
            + self.wrong_deletes
            + self.duplicate_digests
            + self.missing_digests
            + self.panics
            + self.secrets
    }

    pub fn add(&mut self, other: &Violations) {
        self.duplicates += other.duplicates;
        self.lost += other.lost;
        self.misrecorded += other.misrecorded;
        self.stuck += other.stuck;
        self.untracked += other.untracked;
        self.wrong_deletes += other.wrong_deletes;
        self.duplicate_digests += other.duplicate_digests;
        self.resent_digests += other.resent_digests;
        self.missing_digests += other.missing_digests;
        self.panics += other.panics;
        self.secrets += other.secrets;
    }
}

/// Everything the checks read, gathered once the conductors are stopped.
pub struct Evidence<'a> {
    /// Backup ids the cloud had before the trial.
    pub initial: &'a BTreeMap<String, BackupRecord>,
    pub live: Vec<BackupRecord>,
    pub deleted: Vec<BackupRecord>,
    /// Volume ids that are due (flagged servers' volumes), by name.
    pub due: BTreeMap<String, String>,
    /// Volume ids that must never be backed up, by name.
    pub never: BTreeMap<String, String>,
    /// Tasks of every backup cycle of the trial.
    pub tasks: Vec<TaskRow>,
    /// Backup ids with a `backup_data` row (Staffeln's own).
    pub rows: BTreeSet<String>,
    /// How many backup cycles were planned.
    pub cycles: usize,
    /// Recipients of each mail received.
    pub mails: Vec<(Vec<String>, Option<String>)>,
    /// The digest address of each project with results.
    pub digest_addresses: BTreeSet<String>,
    /// Addresses of the projects whose tasks are all marked as reported.
    pub reported: BTreeSet<String>,
    /// The digests may still be due (SMTP was down, the trial timed out):
    /// a missing one counts only when its tasks are marked as reported.
    pub digests_may_be_pending: bool,
    /// Every log and stderr text.
    pub logs: Vec<(String, String)>,
    pub secrets: Vec<String>,
}

pub fn check(e: &Evidence) -> Violations {
    let mut v = Violations::default();
    let is_new = |b: &&BackupRecord| !e.initial.contains_key(&b.id);
    let automated = |b: &&BackupRecord| b.metadata.contains_key(AUTOMATED_KEY);
    let new: Vec<&BackupRecord> = e.live.iter().chain(e.deleted.iter()).filter(is_new).filter(automated).collect();
    let recorded: BTreeSet<&str> = e.tasks.iter().map(|t| t.backup_id.as_str()).filter(|b| !b.is_empty()).collect();
    if e.cycles != 1 {
        v.details.push(format!("{} backup cycles were planned (one expected)", e.cycles));
    }
    // One automated backup per due volume and cycle; none lost.
    for (name, id) in &e.due {
        let made: Vec<&&BackupRecord> = new.iter().filter(|b| &b.volume_id == id).collect();
        if made.len() > 1 {
            v.duplicates += u32::try_from(made.len() - 1).unwrap_or(u32::MAX);
            let ids: Vec<String> = made.iter().map(|b| format!("{} ({})", b.id, b.status)).collect();
            // The window doc/conductor-backups.md names: a create that
            // reaches Cinder after its conductor lost the task.
            v.details.push(format!("duplicate: volume {name} got {} backups: {}", made.len(), ids.join(", ")));
        }
        let tasks: Vec<&TaskRow> = e.tasks.iter().filter(|t| &t.volume_id == id).collect();
        let Some(task) = tasks.first() else {
            v.lost += 1;
            v.details.push(format!("lost: volume {name} has no task"));
            continue;
        };
        match task.task_state() {
            TaskState::Done => {
                if !made.iter().any(|b| b.id == task.backup_id) {
                    v.lost += 1;
                    v.details.push(format!(
                        "lost: task of {name} is done with backup {:?} Cinder never had",
                        task.backup_id
                    ));
                }
            }
            TaskState::Failed | TaskState::Skipped | TaskState::Waiting => {
                if task.reason.as_deref().is_none_or(str::is_empty) {
                    v.lost += 1;
                    v.details.push(format!("lost: task of {name} is {} without a reason", task.state));
                }
                let own = made
                    .iter()
                    .find(|b| b.status == "available" && b.metadata.get(TASK_KEY).is_some_and(|t| t == &task.task_id));
                if let Some(b) = own {
                    v.misrecorded += 1;
                    v.details.push(format!(
                        "misrecorded: task of {name} is {} ({}) although its backup {} is available",
                        task.state,
                        task.reason.as_deref().unwrap_or(""),
                        b.id
                    ));
                }
            }
            other => {
                v.stuck += 1;
                v.details.push(format!("stuck: task of {name} is still {other:?} (claimed by {:?})", task.claimed_by));
            }
        }
    }
    for (name, id) in &e.never {
        if new.iter().any(|b| &b.volume_id == id) {
            v.duplicates += 1;
            v.details.push(format!("unflagged volume {name} was backed up"));
        }
    }
    for b in &new {
        if !recorded.contains(b.id.as_str()) && !e.rows.contains(&b.id) {
            v.untracked += 1;
            v.details.push(format!(
                "untracked: backup {} of volume {} ({}, task {:?}) is recorded by no task",
                b.id,
                b.volume_id,
                b.status,
                b.metadata.get(TASK_KEY)
            ));
        }
    }
    // Retention: never a user's backup, a full with live incrementals, the last good one.
    let live_parents: BTreeSet<&str> = e.live.iter().filter_map(|b| b.parent_id.as_deref()).collect();
    for d in &e.deleted {
        if !d.metadata.contains_key(AUTOMATED_KEY) {
            v.wrong_deletes += 1;
            v.details.push(format!("wrong delete: user's backup {} ({:?})", d.id, d.name));
        }
        if live_parents.contains(d.id.as_str()) {
            v.wrong_deletes += 1;
            v.details.push(format!("wrong delete: full {} ({:?}) whose incremental lives", d.id, d.name));
        }
    }
    for (name, id) in &e.due {
        let had = e.initial.values().any(|b| &b.volume_id == id && b.status == "available");
        let has = e.live.iter().any(|b| &b.volume_id == id && b.status == "available" && automated(&b));
        if had && !has {
            v.wrong_deletes += 1;
            v.details.push(format!("wrong delete: volume {name} has no good backup of Staffeln's left"));
        }
    }
    // Digests: one per project with results, each sent once.
    let mut per_address: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
    for (rcpts, id) in &e.mails {
        for r in rcpts {
            per_address.entry(r.as_str()).or_default().push(id.as_deref());
        }
    }
    for address in &e.digest_addresses {
        let got = per_address.get(address.as_str()).map_or(0, Vec::len);
        let ids: BTreeSet<Option<&str>> =
            per_address.get(address.as_str()).map(|m| m.iter().copied().collect()).unwrap_or_default();
        let distinct = ids.iter().filter(|i| i.is_some()).count()
            + per_address.get(address.as_str()).map_or(0, |m| m.iter().filter(|i| i.is_none()).count());
        if distinct > 1 {
            v.duplicate_digests += u32::try_from(distinct - 1).unwrap_or(u32::MAX);
            v.details.push(format!("duplicate digest: {address} got {got} mails (Message-IDs {ids:?})"));
        }
        if got > distinct {
            v.resent_digests += u32::try_from(got - distinct).unwrap_or(u32::MAX);
        }
        if got == 0 && (e.reported.contains(address) || !e.digests_may_be_pending) {
            v.missing_digests += 1;
            v.details.push(format!("missing digest: {address} got none"));
        }
    }
    for (name, text) in &e.logs {
        for line in text.lines() {
            if line.contains("panicked") {
                v.panics += 1;
                v.details.push(format!("panic in {name}: {line}"));
            }
            for s in &e.secrets {
                if line.contains(s.as_str()) {
                    v.secrets += 1;
                    v.details.push(format!("secret in {name}: {}", line.replace(s.as_str(), "<SECRET>")));
                }
            }
        }
    }
    v
}

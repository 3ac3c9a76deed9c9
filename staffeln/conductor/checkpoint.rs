//! Named points in a conductor's work where the chaos suite (`tests/chaos`,
//! `tools/chaos`) makes a conductor process crash or stall, so that a crash
//! lands exactly between two steps that must survive it (the Cinder create
//! and its database record, a digest and its "reported" mark, …) instead of
//! wherever a timer happens to fire.
//!
//! Unset in production: `STAFFELN_TEST_CHECKPOINT` is read once, and a
//! conductor without it passes every point at no cost. With
//! `STAFFELN_TEST_CHECKPOINT=<point>:<action>` the first time the process
//! reaches `<point>` it writes `checkpoint <point> reached` to stderr and then
//!
//! * `abort`: ends at once, as `kill -9` would (no lease released, nothing
//!   flushed);
//! * `stop`: stops itself with SIGSTOP, as a paused VM would; the suite
//!   resumes it with SIGCONT.
//!
//! The points are the [`Point`] variants.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable naming the point and the action.
pub const CHECKPOINT_ENV: &str = "STAFFELN_TEST_CHECKPOINT";

/// Where a conductor may be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The leader starts reading the cloud for a cycle.
    Discovery,
    /// The plan is decided, not yet written.
    Planning,
    /// Tasks are claimed, no create sent yet.
    Claiming,
    /// Cinder accepted a create; the database does not know it yet.
    AfterCreate,
    /// Backups in flight are being checked.
    Polling,
    /// Retention is about to delete a backup.
    RetentionDelete,
    /// The digests are about to be sent.
    DigestSend,
    /// The digests were sent, not yet marked as reported.
    DigestSent,
}

impl Point {
    /// Every point, in the order a cycle reaches them.
    pub const ALL: [Point; 8] = [
        Point::Discovery,
        Point::Planning,
        Point::Claiming,
        Point::AfterCreate,
        Point::Polling,
        Point::RetentionDelete,
        Point::DigestSend,
        Point::DigestSent,
    ];

    /// The name `STAFFELN_TEST_CHECKPOINT` uses.
    pub fn name(self) -> &'static str {
        match self {
            Point::Discovery => "discovery",
            Point::Planning => "planning",
            Point::Claiming => "claiming",
            Point::AfterCreate => "after_create",
            Point::Polling => "polling",
            Point::RetentionDelete => "retention_delete",
            Point::DigestSend => "digest_send",
            Point::DigestSent => "digest_sent",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Abort,
    Stop,
}

fn armed() -> Option<(&'static str, Action)> {
    static ARMED: OnceLock<Option<(String, Action)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let text = std::env::var(CHECKPOINT_ENV).ok()?;
            let (point, action) = text.split_once(':').unwrap_or((text.as_str(), "abort"));
            let action = match action {
                "stop" => Action::Stop,
                _ => Action::Abort,
            };
            Some((point.to_owned(), action))
        })
        .as_ref()
        .map(|(p, a)| (p.as_str(), *a))
}

/// Passes `point`, or crashes/stalls here when the suite armed it.
pub fn reach(point: Point) {
    static FIRED: AtomicBool = AtomicBool::new(false);
    let Some((name, action)) = armed() else { return };
    if name != point.name() || FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    eprintln!("checkpoint {name} reached");
    match action {
        Action::Abort => std::process::abort(),
        Action::Stop => {
            // No unsafe code in the crate: the `kill` command stops us.
            let _ = std::process::Command::new("kill").args(["-STOP", &std::process::id().to_string()]).status();
        }
    }
}

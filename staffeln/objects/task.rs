//! A backup task: one volume of one cycle, from planned to an end state.

use std::fmt;

/// Where a task stands. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Planned by the cycle's leader, waiting for a conductor.
    Planned,
    /// Taken by one conductor, which is about to call Cinder.
    Claimed,
    /// Cinder accepted the create; the backup is being made.
    Creating,
    /// The backup is available.
    Done,
    /// The backup could not be made; the reason says why.
    Failed,
    /// Not backed up on purpose (skip flag, too recent).
    Skipped,
    /// Not backed up this cycle because the volume was busy; retried next cycle.
    Waiting,
    /// The cycle stopped waiting for the backup (`backup_cycle_timeout`)
    /// while Cinder was still making it. The backup was left running; the
    /// task becomes `done` (or `failed`) when Cinder finishes it.
    Unfinished,
    /// A row written by the Python Staffeln before this schema.
    Legacy,
}

impl TaskState {
    pub const ALL: [TaskState; 9] = [
        TaskState::Planned,
        TaskState::Claimed,
        TaskState::Creating,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Skipped,
        TaskState::Waiting,
        TaskState::Unfinished,
        TaskState::Legacy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Planned => "planned",
            TaskState::Claimed => "claimed",
            TaskState::Creating => "creating",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Skipped => "skipped",
            TaskState::Waiting => "waiting",
            TaskState::Unfinished => "unfinished",
            TaskState::Legacy => "legacy",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Still to be worked on (planned, claimed or creating). An `unfinished`
    /// task is not: its cycle has stopped waiting, though its backup is
    /// still watched.
    pub fn is_active(self) -> bool {
        matches!(self, TaskState::Planned | TaskState::Claimed | TaskState::Creating)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::TaskState;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in TaskState::ALL {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TaskState::parse("PLANNED"), None);
    }
}

//! The guard's decision: a pure function ([`decide`]) of who asks, what
//! Cinder's target says about the backup, and what the database (and, for a
//! request without a target, Cinder) knows. No I/O here; the handler in
//! `guard.rs` gathers the facts, calls [`decide`] and answers.

use std::collections::BTreeMap;

use crate::objects::metadata::is_marked_automated;

// The decision.

/// Who is asking, as far as the guard trusts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Staffeln's own service user (the user of staffeln-api's token).
    ServiceUser,
    /// A user of `[api] trusted_user_ids`.
    Listed,
    /// Anyone else, or a request without credentials.
    Untrusted,
}

impl Trust {
    /// The trust in `caller` (`credentials.user_id`), given the service
    /// user's id (when known) and the trusted ids.
    pub fn of(caller: Option<&str>, service_user: Option<&str>, listed: &[String]) -> Trust {
        match caller {
            Some(user) if service_user == Some(user) => Trust::ServiceUser,
            Some(user) if listed.iter().any(|l| l == user) => Trust::Listed,
            _ => Trust::Untrusted,
        }
    }
}

/// What a backup's metadata says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// `__automated_backup` = true.
    Marked,
    /// No such mark.
    Unmarked,
}

impl Marking {
    pub fn of(metadata: &BTreeMap<String, String>) -> Marking {
        if is_marked_automated(metadata) { Marking::Marked } else { Marking::Unmarked }
    }
}

/// What the database said about a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbLookup {
    /// `backup_data` has it, or a task recorded its id: Staffeln made it.
    Recorded,
    /// The task its `__staffeln_task_id` metadata names exists and recorded
    /// no other backup: Staffeln is making it.
    TaskNamed,
    /// Neither.
    Unknown,
    /// The query failed.
    Failed,
}

/// What Cinder said about a backup (asked only without a target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CinderLookup {
    /// Its metadata carries `__automated_backup` = true.
    Marked,
    /// It exists without that mark.
    Unmarked,
    /// 404.
    NotFound,
    /// Any other failure (no answer within `lookup_timeout`, 5xx, no
    /// credentials).
    Failed,
}

/// Everything a decision rests on; `None` where nobody was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub trust: Trust,
    /// The backup is remembered as automated (from an earlier database or
    /// Cinder answer).
    pub cached: bool,
    /// What the request's target metadata says; `None` without a target.
    pub target: Option<Marking>,
    pub db: Option<DbLookup>,
    pub cinder: Option<CinderLookup>,
}

impl Facts {
    /// Facts about a caller before any lookup.
    pub fn new(trust: Trust, cached: bool, target: Option<Marking>) -> Facts {
        Facts { trust, cached, target, db: None, cinder: None }
    }

    /// Whether the database must be asked: nothing so far settles it.
    pub fn needs_db(&self) -> bool {
        self.trust == Trust::Untrusted && !self.cached && self.target != Some(Marking::Marked) && self.db.is_none()
    }

    /// Whether Cinder must be asked: the request has no target and the
    /// database does not know the backup.
    pub fn needs_cinder(&self) -> bool {
        self.trust == Trust::Untrusted
            && !self.cached
            && self.target.is_none()
            && self.db == Some(DbLookup::Unknown)
            && self.cinder.is_none()
    }
}

/// The guard's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `True`: the caller may delete the backup.
    Allow,
    /// `False`: an automated backup, and the caller is not Staffeln.
    Deny,
    /// Could not decide; never `True`.
    Error,
}

impl Verdict {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allow => "allowed",
            Verdict::Deny => "denied",
            Verdict::Error => "error",
        }
    }
}

/// What an answer rests on (the `X-Staffeln-Decided-By` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The caller is Staffeln's service user.
    ServiceUser,
    /// The caller is in `[api] trusted_user_ids`.
    TrustedUser,
    /// The backup was remembered as automated.
    Cache,
    /// The request's target metadata (and, when it says nothing, the database).
    Target,
    /// The database.
    Database,
    /// Cinder, asked because the request had no target.
    Cinder,
}

impl Basis {
    pub fn label(self) -> &'static str {
        match self {
            Basis::ServiceUser => "service-user",
            Basis::TrustedUser => "trusted-user",
            Basis::Cache => "cache",
            Basis::Target => "target",
            Basis::Database => "database",
            Basis::Cinder => "cinder",
        }
    }
}

/// The decision (see the module doc): trusted callers pass; any evidence
/// that the backup is automated refuses; only positive evidence that it is
/// not allows; a failed lookup that could have mattered is an error.
pub fn decide(f: &Facts) -> (Verdict, Basis) {
    use Verdict::{Allow, Deny, Error};
    match f.trust {
        Trust::ServiceUser => return (Allow, Basis::ServiceUser),
        Trust::Listed => return (Allow, Basis::TrustedUser),
        Trust::Untrusted => {}
    }
    if f.cached {
        return (Deny, Basis::Cache);
    }
    if f.target == Some(Marking::Marked) {
        return (Deny, Basis::Target);
    }
    if matches!(f.db, Some(DbLookup::Recorded | DbLookup::TaskNamed)) {
        return (Deny, Basis::Database);
    }
    if f.cinder == Some(CinderLookup::Marked) {
        return (Deny, Basis::Cinder);
    }
    match (f.db, f.target, f.cinder) {
        (Some(DbLookup::Unknown), Some(Marking::Unmarked), _) => (Allow, Basis::Target),
        (Some(DbLookup::Unknown), None, Some(CinderLookup::Unmarked | CinderLookup::NotFound)) => {
            (Allow, Basis::Cinder)
        }
        (Some(DbLookup::Unknown), None, _) => (Error, Basis::Cinder),
        (Some(DbLookup::Failed) | None, _, _) => (Error, Basis::Database),
        // Covered above; refuse should the table ever grow.
        (Some(DbLookup::Recorded | DbLookup::TaskNamed), _, _) => (Deny, Basis::Database),
        (Some(DbLookup::Unknown), Some(Marking::Marked), _) => (Deny, Basis::Target),
    }
}

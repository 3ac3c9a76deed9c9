//! What tests and the demo steer the emulated world with: injected
//! [`Fault`]s, forced [`BackupOutcome`]s, Cinder's [`BackupDeletePolicy`],
//! and what that policy saw ([`PolicyChecks`]). Plain data the world
//! holds; [`super::Control`] sets it, the services read it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::http::Service;

/// What the backup service does with a backup when its transition is due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BackupOutcome {
    /// `creating → available`, `deleting → gone`.
    Succeed,
    /// Stays in `creating` / `deleting` until the outcome changes.
    Stick,
    /// `creating → error` or `deleting → error`, with `fail_reason`.
    Error { reason: String },
    /// `deleting → error_deleting` (treated as `Error` for creates).
    ErrorDeleting { reason: String },
}

/// One injected fault. It matches requests by service, method and a prefix of
/// the normalised route (e.g. `/backups` matches `/backups/detail` and
/// `/backups/{id}`; ids are written `{id}`, metadata keys `{key}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub service: Option<Service>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    pub effect: FaultEffect,
    /// How many matching requests it affects; `None` = all of them.
    #[serde(default)]
    pub times: Option<u32>,
    /// Chance that a matching request is affected (seeded, so reproducible).
    #[serde(default = "always")]
    pub probability: f64,
}

fn always() -> f64 {
    1.0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultEffect {
    /// Answer with this status (e.g. 500, 503) and the service's error body.
    Status { code: u16 },
    /// 429 with `Retry-After: <retry_after>`.
    RateLimit { retry_after: u64 },
    /// Delay the response, then answer normally.
    Latency { millis: u64 },
    /// Let the request take effect (a backup is created, metadata is set),
    /// then answer with this status instead of the real answer: a load
    /// balancer or proxy that lost the service's answer, or a service that
    /// failed after its database write. The client cannot tell it from a
    /// request that did nothing.
    StatusAfterEffect { code: u16 },
    /// Hold the request until the fault is removed (`Control::remove_fault`),
    /// then answer normally: a service that answers only when the test says
    /// so, however fast or slow the machine is. With `times`, the first `n`
    /// matching requests are held (until the removal) and later ones pass.
    Hold,
}

impl Fault {
    /// A fault on every matching request.
    pub fn new(service: Service, method: Option<&str>, path: Option<&str>, effect: FaultEffect) -> Fault {
        Fault {
            service: Some(service),
            method: method.map(str::to_owned),
            path: path.map(str::to_owned),
            effect,
            times: None,
            probability: 1.0,
        }
    }

    /// Limits the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    pub(crate) fn matches(&self, service: Service, method: &str, route: &str) -> bool {
        self.times != Some(0)
            && self.service.is_none_or(|s| s == service)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| route.starts_with(p))
    }
}

/// The `backup:delete` checks Cinder made since the policy was set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChecks {
    /// The guard answered `True`.
    pub allowed: u64,
    /// The guard answered anything else: 403.
    pub refused: u64,
    /// The guard could not be reached in time: 500.
    pub failed: u64,
    /// Refused before the guard: neither admin nor a member of the backup's
    /// project (or the rule could not be evaluated).
    pub refused_by_rule: u64,
}

/// How the emulated Cinder enforces `backup:delete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupDeletePolicy {
    /// The `http:`/`https:` check of the rule, e.g.
    /// `http://127.0.0.1:8808/v1/backup?backup_id=%(id)s`.
    pub guard_url: String,
    /// `[oslo_policy] remote_timeout`: how long Cinder waits for the guard
    /// (oslo.policy's default is 60 s).
    #[serde(default = "default_timeout", with = "seconds")]
    pub remote_timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

impl BackupDeletePolicy {
    /// The policy asking `guard_url`, with oslo.policy's default timeout.
    pub fn new(guard_url: impl Into<String>) -> BackupDeletePolicy {
        BackupDeletePolicy { guard_url: guard_url.into(), remote_timeout: default_timeout() }
    }

    /// The whole rule, as a policy file would hold it.
    pub fn rule(&self) -> String {
        format!("rule:admin_api or (project_id:%(project_id)s and role:member and {})", self.guard_url)
    }
}

/// What happened to the notifications so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotificationCounts {
    /// Waiting for the publisher.
    pub queued: u64,
    /// Confirmed by the broker.
    pub published: u64,
    /// Dropped on purpose ([`crate::Control::lose_create_end`]).
    pub lost: u64,
    /// Of those queued, `backup.createprogress` ones (two per backup made).
    #[serde(default)]
    pub progress: u64,
}

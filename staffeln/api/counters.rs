//! The counters of this process that `/metrics` shows: requests by route
//! and status, the guard's answers by result, cache hits, Cinder lookups.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::decide::Verdict;

/// The counters of this process.
#[derive(Default)]
pub(crate) struct Counters {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    allowed: AtomicU64,
    denied: AtomicU64,
    error: AtomicU64,
    bad_request: AtomicU64,
    cache_hits: AtomicU64,
    cinder_lookups: AtomicU64,
}

impl Counters {
    pub(crate) fn request(&self, route: &'static str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry((route, status)).or_default() += 1;
    }

    pub(crate) fn guard(&self, verdict: Verdict, cached: bool) {
        let counter = match verdict {
            Verdict::Allow => &self.allowed,
            Verdict::Deny => &self.denied,
            Verdict::Error => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if cached {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cinder_lookup(&self) {
        self.cinder_lookups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn guard_bad_request(&self) {
        self.bad_request.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            requests,
            guard: [
                ("allowed", get(&self.allowed)),
                ("denied", get(&self.denied)),
                ("error", get(&self.error)),
                ("bad_request", get(&self.bad_request)),
            ],
            cache_hits: get(&self.cache_hits),
            cinder_lookups: get(&self.cinder_lookups),
        }
    }
}

/// The counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub requests: BTreeMap<(&'static str, u16), u64>,
    pub guard: [(&'static str, u64); 4],
    pub cache_hits: u64,
    pub cinder_lookups: u64,
}

//! What staffeln-api remembers between requests: Staffeln's service user,
//! the backups known to be automated (a fact, never an answer), and
//! validated Keystone tokens. Each bounded, each forgetting on its own.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::info;

use crate::objects::TokenInfo;

// State: the service user's id and the backups known to be automated.

/// Staffeln's service user id, learnt from staffeln-api's own token.
#[derive(Default)]
pub(crate) struct ServiceUser {
    id: RwLock<Option<String>>,
}

impl ServiceUser {
    pub(crate) fn get(&self) -> Option<String> {
        self.id.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn set(&self, id: String) {
        let mut slot = self.id.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.as_deref() != Some(id.as_str()) {
            info!(user.id = %id, "deletion guard: backup deletions by Staffeln's service user {id} are allowed");
            *slot = Some(id);
        }
    }
}

/// Backups known to be automated (from the database or Cinder, never from a
/// request body), by id, for `ttl`; at most `capacity` of them (when full,
/// expired ones go, and if none has expired the cache starts over).
pub(crate) struct AutomatedCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<String, Instant>>,
}

impl AutomatedCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> AutomatedCache {
        AutomatedCache { ttl, capacity, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        self.lock().get(id).is_some_and(|until| *until > Instant::now())
    }

    pub(crate) fn insert(&self, id: &str) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(id) {
            map.retain(|_, until| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(id.to_owned(), now + self.ttl);
    }
}

/// Validated tokens for `ttl` (never past their expiry), at most `capacity`.
pub(crate) struct TokenCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<String, (TokenInfo, Instant)>>,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> TokenCache {
        TokenCache { ttl, capacity, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (TokenInfo, Instant)>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, token: &str) -> Option<TokenInfo> {
        let map = self.lock();
        map.get(token).filter(|(_, until)| *until > Instant::now()).map(|(info, _)| info.clone())
    }

    pub(crate) fn put(&self, token: &str, info: &TokenInfo) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let left = (info.expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let until = now + self.ttl.min(left);
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.retain(|_, (_, u)| *u > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(token.to_owned(), (info.clone(), until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_remembers_automated_backups_and_stays_bounded() {
        let cache = AutomatedCache::new(Duration::from_secs(60), 2);
        cache.insert("a");
        cache.insert("b");
        assert!(cache.contains("a") && cache.contains("b") && !cache.contains("e"));
        cache.insert("c"); // full, nothing expired: starts over
        assert!(cache.contains("c"));
        assert!(cache.lock().len() <= 2);
        let off = AutomatedCache::new(Duration::ZERO, 10);
        off.insert("a");
        assert!(!off.contains("a"));
    }
}

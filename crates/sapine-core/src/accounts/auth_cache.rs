//! Sessions this server has recently seen alive, so that authenticating a request costs no
//! database round trip. Every change that can end a session or alter its user goes through
//! `Accounts`, which evicts the affected entries before answering, so revocation takes effect
//! on the very next request. Entries are also re-read after `REVALIDATE_AFTER`, which bounds
//! how long another server sharing the database can go on trusting a session it revoked.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::{SessionId, User, UserId};

/// Past this many entries the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 100_000;

const REVALIDATE_AFTER_SECS: i64 = 5;

#[derive(Clone)]
pub struct CachedSession {
    pub user: Arc<User>,
    pub expires_at: DateTime<Utc>,
    pub last_touched: DateTime<Utc>,
    /// When the session and user were last read from the store.
    pub loaded_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct AuthCache {
    sessions: RwLock<HashMap<SessionId, CachedSession>>,
}

impl AuthCache {
    /// The entry, unless it is due to be read from the store again.
    pub fn get(&self, id: SessionId, now: DateTime<Utc>) -> Option<CachedSession> {
        let map = self.sessions.read().ok()?;
        map.get(&id)
            .filter(|e| (now - e.loaded_at).num_seconds() < REVALIDATE_AFTER_SECS)
            .cloned()
    }

    pub fn insert(&self, id: SessionId, entry: CachedSession) {
        if let Ok(mut map) = self.sessions.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(id, entry);
        }
    }

    pub fn mark_touched(&self, id: SessionId, at: DateTime<Utc>) {
        if let Some(entry) = self.sessions.write().ok().as_mut().and_then(|m| m.get_mut(&id)) {
            entry.last_touched = at;
        }
    }

    pub fn forget_session(&self, id: SessionId) {
        if let Ok(mut map) = self.sessions.write() {
            map.remove(&id);
        }
    }

    pub fn forget_user(&self, user: UserId) {
        if let Ok(mut map) = self.sessions.write() {
            map.retain(|_, entry| entry.user.id != user);
        }
    }
}

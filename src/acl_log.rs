//! ACL LOG: the record of failed authentications, as Redis 7.0 keeps it.
//!
//! Redis logs every AUTH (or HELLO AUTH) with a wrong password there, and
//! so does this server; it has no ACL rules, so the other reasons Redis
//! logs (a command, key or channel a user may not touch) never occur.
//! Failures alike (same command, same user) within a minute are one entry
//! with a count, as in Redis, so a password-guessing client fills one
//! entry, not the whole log.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::sync::lock;
use crate::time::unix_millis;

/// Entries kept, newest first (Redis's `acllog-max-len` default).
const MAX_ENTRIES: usize = 128;

/// Failures alike within this many milliseconds share an entry
/// (Redis's `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const GROUPING_MILLIS: i64 = 60_000;

/// The log, newest entry first.
#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

/// One entry: a failed authentication, or several alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// How many failures it stands for.
    pub count: u64,
    /// The command, as the client spelt it (`AUTH`, `auth`, `HELLO`).
    pub object: Vec<u8>,
    /// The user the client tried to authenticate as.
    pub username: Vec<u8>,
    /// When the last of them happened, in Unix milliseconds.
    pub at: i64,
    /// The client's CLIENT INFO line at the last one.
    pub client_info: String,
}

impl AclLog {
    /// Records a failed authentication of `username` by the command
    /// `object`, from the client `client_info` describes.
    pub fn auth_failed(&self, object: &[u8], username: &[u8], client_info: String) {
        let now = unix_millis();
        let mut entries = lock(&self.entries);
        let alike = entries.iter_mut().find(|entry| {
            entry.object == object && entry.username == username && now - entry.at < GROUPING_MILLIS
        });
        if let Some(entry) = alike {
            entry.count += 1;
            entry.at = now;
            entry.client_info = client_info;
            return;
        }
        entries.push_front(Entry {
            count: 1,
            object: object.to_vec(),
            username: username.to_vec(),
            at: now,
            client_info,
        });
        entries.truncate(MAX_ENTRIES);
    }

    /// The newest `count` entries, newest first.
    pub fn newest(&self, count: usize) -> Vec<Entry> {
        lock(&self.entries).iter().take(count).cloned().collect()
    }

    /// ACL LOG RESET: forgets every entry.
    pub fn reset(&self) {
        lock(&self.entries).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_alike_share_an_entry_and_others_come_first() {
        let log = AclLog::default();
        log.auth_failed(b"AUTH", b"default", "id=1".into());
        log.auth_failed(b"AUTH", b"default", "id=2".into());
        log.auth_failed(b"HELLO", b"default", "id=3".into());
        let entries = log.newest(10);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].object, b"HELLO");
        assert_eq!(
            (entries[1].count, entries[1].client_info.as_str()),
            (2, "id=2")
        );
        assert_eq!(log.newest(1).len(), 1);
        log.reset();
        assert!(log.newest(10).is_empty());
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let log = AclLog::default();
        for i in 0..MAX_ENTRIES + 5 {
            log.auth_failed(b"AUTH", i.to_string().as_bytes(), String::new());
        }
        let entries = log.newest(usize::MAX);
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(
            entries[0].username,
            (MAX_ENTRIES + 4).to_string().as_bytes()
        );
    }
}

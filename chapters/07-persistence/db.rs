//! The keyspace: every key, its value and its expiry, shared by all connections.
//!
//! One `HashMap` behind one `RwLock`, behind an `Arc` that every connection
//! thread holds a clone of. Any number of readers may hold the lock at once;
//! a writer holds it alone. Callers take the lock, do their work, and drop
//! it before they touch a socket.
//!
//! Expiry is checked on every lookup, against a `now` the caller passes in
//! (Unix milliseconds), so the rules can be tested with a fixed clock.
//!
//! Once a replica has connected, the keyspace also writes down every change
//! it makes as the command that replays it (`SET k v PXAT t`, `DEL k`,
//! `PEXPIREAT k t` ...), for the master to send to its replicas. Recording
//! at this level catches every change, whoever makes it: a command, lazy
//! expiry or the active expiry thread.
//!
//! A save must write the data as it was at one moment, but it takes a
//! while, and the clients must not wait for it. So the table's keys and
//! values are shared, behind `Arc`s: [`Keyspace::snapshot`] copies the
//! handles, not the bytes, in milliseconds, and the save reads them after
//! the lock is released. A write never changes a stored value's bytes; it
//! stores a new value, so a snapshot keeps the old one. It is what fork()
//! gives Redis, copy-on-write, done by hand per key instead of per page.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::resp::Args;

/// A handle on the shared keyspace; cloning it is cheap and shares the data.
#[derive(Clone, Default)]
pub struct Db {
    keyspace: Arc<RwLock<Keyspace>>,
}

impl Db {
    /// Locks the keyspace for reading; other readers may hold it too.
    pub fn read(&self) -> RwLockReadGuard<'_, Keyspace> {
        // A thread that panicked while holding the lock "poisons" it. Our
        // writes leave the map consistent at every step, so carry on.
        self.keyspace.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the keyspace for writing, alone.
    pub fn write(&self) -> RwLockWriteGuard<'_, Keyspace> {
        self.keyspace
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stored value and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value: bytes, as Redis strings are, shared with any snapshot
    /// that holds them. Wrapping the bytes a client sent costs one small
    /// allocation and no copy.
    pub value: Arc<Vec<u8>>,
    /// When the key expires, in Unix milliseconds; `None` means never.
    expires_at: Option<i64>,
    /// Where the key sits in `Keyspace::volatile`; meaningful only while
    /// `expires_at` is set.
    slot: usize,
}

impl Entry {
    /// When the key expires, in Unix milliseconds; `None` means never.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Has the deadline passed? A key is gone at its deadline, not after.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|deadline| deadline <= now)
    }
}

/// A key, its value and its expiry, as a snapshot holds them: handles on
/// the table's own bytes.
pub type SnapshotEntry = (Arc<[u8]>, Arc<Vec<u8>>, Option<i64>);

/// The keys, their values and their expiries.
#[derive(Default)]
pub struct Keyspace {
    /// The keys are shared like the values, so a snapshot copies neither.
    entries: HashMap<Arc<[u8]>, Entry>,
    /// The keys that have an expiry, in random order, so that the active
    /// expiry cycle can walk them without scanning the whole map, and any
    /// run of them is a fair sample (see `shuffle_in`).
    volatile: Vec<Vec<u8>>,
    /// Places each new key with an expiry at a random spot in `volatile`.
    shuffle: Rng,
    /// Expired keys that readers found but could not delete: a read lock
    /// does not allow it. The reader's caller deletes them afterwards.
    stale: Mutex<Vec<Vec<u8>>>,
    /// Are changes being recorded into `changes`?
    recording: bool,
    /// The changes made since the last [`Keyspace::take_changes`], each as
    /// the arguments of a command that makes the same change.
    changes: Vec<Args>,
    /// For each watched key, the flags of the connections that watch it.
    watchers: HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>,
    /// Changes since the last save, for the save points.
    dirty: u64,
}

impl Keyspace {
    /// The live entry at `key`. An expired key is reported absent and noted
    /// in the stale list, for [`Keyspace::purge_stale`] to delete later.
    pub fn get(&self, key: &[u8], now: i64) -> Option<&Entry> {
        let entry = self.entries.get(key)?;
        if entry.is_expired(now) {
            let mut stale = self.stale.lock().unwrap_or_else(PoisonError::into_inner);
            stale.push(key.to_vec());
            return None;
        }
        Some(entry)
    }

    /// The live entry at `key`, for a writer: an expired key is deleted first.
    pub fn get_mut(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.remove_if_expired(key, now);
        self.entries.get_mut(key)
    }

    /// Stores `value` at `key` with the given expiry, replacing any old
    /// value and expiry.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>, expires_at: Option<i64>) {
        touch(&self.watchers, &key);
        self.dirty += 1;
        if self.recording {
            let mut change = vec![b"SET".to_vec(), key.clone(), value.clone()];
            if let Some(deadline) = expires_at {
                change.extend([b"PXAT".to_vec(), deadline.to_string().into_bytes()]);
            }
            self.changes.push(change);
        }
        let old_slot = self
            .entries
            .get(key.as_slice())
            .map(|e| (e.expires_at, e.slot));
        let slot = match (old_slot, expires_at) {
            // Already tracked, and still volatile: keep its place.
            (Some((Some(_), slot)), Some(_)) => slot,
            // Newly volatile: track it.
            (_, Some(_)) => {
                self.volatile.push(key.clone());
                self.volatile.len() - 1
            }
            // Was volatile, is no longer: stop tracking it.
            (Some((Some(_), slot)), None) => {
                self.untrack(slot);
                0
            }
            (_, None) => 0,
        };
        let newly_tracked = expires_at.is_some()
            && slot + 1 == self.volatile.len()
            && old_slot.is_none_or(|(was, _)| was.is_none());
        self.entries.insert(
            key.into(),
            Entry {
                value: Arc::new(value),
                expires_at,
                slot,
            },
        );
        if newly_tracked {
            self.shuffle_in();
        }
    }

    /// Sets or clears the expiry of an existing key; says whether the key exists.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<i64>) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        touch(&self.watchers, key);
        self.dirty += 1;
        if self.recording {
            self.changes.push(match expires_at {
                Some(deadline) => vec![
                    b"PEXPIREAT".to_vec(),
                    key.to_vec(),
                    deadline.to_string().into_bytes(),
                ],
                None => vec![b"PERSIST".to_vec(), key.to_vec()],
            });
        }
        let mut newly_tracked = false;
        match (entry.expires_at, expires_at) {
            (None, Some(_)) => {
                entry.slot = self.volatile.len();
                self.volatile.push(key.to_vec());
                newly_tracked = true;
            }
            (Some(_), None) => {
                let slot = entry.slot;
                self.untrack(slot);
            }
            _ => {}
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.expires_at = expires_at;
        }
        if newly_tracked {
            self.shuffle_in();
        }
        true
    }

    /// Deletes `key`; says whether it existed (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.delete(key, true)
    }

    /// Deletes `key`, telling its watchers or not.
    fn delete(&mut self, key: &[u8], tell_watchers: bool) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                if tell_watchers {
                    touch(&self.watchers, key);
                }
                self.dirty += 1;
                if self.recording {
                    self.changes.push(vec![b"DEL".to_vec(), key.to_vec()]);
                }
                if entry.expires_at.is_some() {
                    self.untrack(entry.slot);
                }
                true
            }
            None => false,
        }
    }

    /// Deletes `key` if its deadline has passed; says whether it did.
    ///
    /// Its watchers are not told: a key watched while alive that expired
    /// since is caught at EXEC anyway (see `Watch::changed`), and a key
    /// already expired when watched did not change by going away.
    pub fn remove_if_expired(&mut self, key: &[u8], now: i64) -> bool {
        let expired = self.entries.get(key).is_some_and(|e| e.is_expired(now));
        expired && self.delete(key, false)
    }

    /// Deletes the expired keys that readers met (see [`Keyspace::get`]);
    /// returns the ones it deleted.
    pub fn purge_stale(&mut self, now: i64) -> Vec<Vec<u8>> {
        let mut stale =
            std::mem::take(self.stale.get_mut().unwrap_or_else(PoisonError::into_inner));
        stale.retain(|key| self.remove_if_expired(key, now));
        stale
    }

    /// Forgets the expired keys readers met, without deleting them: what a
    /// replica does, since only its master deletes keys.
    pub fn forget_stale(&mut self) {
        self.stale
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Is any expired key waiting for [`Keyspace::purge_stale`]?
    pub fn has_stale(&self) -> bool {
        !self
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Number of keys, counting expired ones not yet deleted (as Redis does).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Number of keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// The key at position `index` among those with an expiry.
    pub fn volatile_key(&self, index: usize) -> Option<&[u8]> {
        self.volatile.get(index).map(Vec::as_slice)
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        if self.recording {
            self.changes.push(vec![b"FLUSHALL".to_vec()]);
        }
        self.dirty += self.entries.len() as u64;
        // A flush changes every watched key that existed.
        for (key, flags) in &self.watchers {
            if self.entries.contains_key(key.as_slice()) {
                flags
                    .iter()
                    .for_each(|flag| flag.store(true, Ordering::SeqCst));
            }
        }
        self.entries.clear();
        self.volatile.clear();
    }

    /// Every key with its value and expiry, expired ones included, as
    /// they are now: handles on the table's bytes, two pointer copies and
    /// two count increments per key, cheap enough to take under the lock.
    /// What the table changes afterwards, the snapshot does not see.
    pub fn snapshot(&self) -> Vec<SnapshotEntry> {
        self.entries
            .iter()
            .map(|(key, entry)| (key.clone(), entry.value.clone(), entry.expires_at))
            .collect()
    }

    /// Changes made since the last save.
    pub fn dirty(&self) -> u64 {
        self.dirty
    }

    /// A save has written the data as it was `dirty` changes ago: those
    /// are saved, the ones made since are not.
    pub fn mark_saved(&mut self, dirty: u64) {
        self.dirty = self.dirty.saturating_sub(dirty);
    }

    /// Raises `flag` whenever `key` changes, until [`Keyspace::unwatch`].
    pub fn watch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        self.watchers
            .entry(key.to_vec())
            .or_default()
            .push(Arc::clone(flag));
    }

    /// Stops raising `flag` for `key`.
    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        if let Some(flags) = self.watchers.get_mut(key) {
            flags.retain(|watcher| !Arc::ptr_eq(watcher, flag));
            if flags.is_empty() {
                self.watchers.remove(key);
            }
        }
    }

    /// From now on, write down every change (see [`Keyspace::take_changes`]).
    pub fn start_recording(&mut self) {
        self.recording = true;
    }

    /// The changes made since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Args> {
        std::mem::take(&mut self.changes)
    }

    /// Wraps the changes made since the last [`Keyspace::take_changes`] in
    /// `MULTI` ... `EXEC` when there are several, so that a replica applies
    /// a transaction whole, as Redis sends it. Says whether there are any.
    pub fn wrap_changes_in_multi(&mut self) -> bool {
        if self.changes.len() > 1 {
            self.changes.insert(0, vec![b"MULTI".to_vec()]);
            self.changes.push(vec![b"EXEC".to_vec()]);
        }
        !self.changes.is_empty()
    }

    /// Moves the key just pushed onto `volatile` to a random place, and the
    /// key that was there to the end: an online Fisher-Yates shuffle, so the
    /// list is always in random order. The active cycle walks it in runs of
    /// twenty; in insertion order, a run would be twenty keys set together,
    /// likely to expire together, and a poor sample of the whole.
    fn shuffle_in(&mut self) {
        let last = self.volatile.len() - 1;
        let other = self.shuffle.below(self.volatile.len());
        if other == last {
            return;
        }
        self.volatile.swap(other, last);
        for slot in [other, last] {
            if let Some(entry) = self.entries.get_mut(self.volatile[slot].as_slice()) {
                entry.slot = slot;
            }
        }
    }

    /// Forgets the volatile key at `slot`: swap-remove, then tell the key
    /// that moved into `slot` where it now lives.
    fn untrack(&mut self, slot: usize) {
        self.volatile.swap_remove(slot);
        if let Some(moved) = self.volatile.get(slot) {
            if let Some(entry) = self.entries.get_mut(moved.as_slice()) {
                entry.slot = slot;
            }
        }
    }
}

/// Tells the watchers of `key` that it changed. (A function of the map
/// alone, so it can run while an entry of the keyspace is borrowed.)
fn touch(watchers: &HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>, key: &[u8]) {
    if let Some(flags) = watchers.get(key) {
        flags
            .iter()
            .for_each(|flag| flag.store(true, Ordering::SeqCst));
    }
}

/// A small random number generator (xorshift64*), enough to shuffle.
/// std has no public one, but each `RandomState` is seeded randomly (for
/// hash tables that resist flooding): hashing nothing with one gives a seed.
#[derive(Debug)]
struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        Rng(RandomState::new().build_hasher().finish() | 1)
    }
}

impl Rng {
    /// A number in `0..n`; `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every volatile key is tracked exactly once, at the slot its entry names.
    fn check_index(ks: &Keyspace) {
        let volatile = ks
            .entries
            .values()
            .filter(|e| e.expires_at.is_some())
            .count();
        assert_eq!(ks.volatile.len(), volatile);
        for (slot, key) in ks.volatile.iter().enumerate() {
            assert_eq!(ks.entries[key.as_slice()].slot, slot);
        }
    }

    #[test]
    fn a_snapshot_keeps_the_values_it_was_taken_with() {
        let mut ks = Keyspace::default();
        ks.set(b"a".to_vec(), b"1".to_vec(), None);
        ks.set(b"b".to_vec(), b"2".to_vec(), Some(9000));
        let snapshot = ks.snapshot();
        ks.set(b"a".to_vec(), b"changed".to_vec(), None);
        ks.remove(b"b");
        ks.set(b"c".to_vec(), b"new".to_vec(), None);
        let mut seen: Vec<(&[u8], &[u8], Option<i64>)> = snapshot
            .iter()
            .map(|(key, value, expires_at)| (&key[..], &value[..], *expires_at))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                (&b"a"[..], &b"1"[..], None),
                (&b"b"[..], &b"2"[..], Some(9000))
            ]
        );
    }

    #[test]
    fn expired_keys_are_absent() {
        let mut ks = Keyspace::default();
        ks.set(b"k".to_vec(), b"v".to_vec(), Some(1000));
        assert!(ks.get(b"k", 999).is_some());
        assert!(ks.get(b"k", 1000).is_none());
        assert!(ks.has_stale());
        assert_eq!(ks.purge_stale(1000), vec![b"k".to_vec()]);
        assert_eq!(ks.len(), 0);
        check_index(&ks);
    }

    #[test]
    fn a_stale_key_rewritten_in_between_survives_the_purge() {
        let mut ks = Keyspace::default();
        ks.set(b"k".to_vec(), b"v".to_vec(), Some(10));
        assert!(ks.get(b"k", 20).is_none());
        ks.set(b"k".to_vec(), b"new".to_vec(), None);
        assert!(ks.purge_stale(20).is_empty());
        assert_eq!(
            ks.get(b"k", 20).map(|e| e.value.as_slice()),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn records_changes_as_commands() {
        let mut ks = Keyspace::default();
        ks.set(b"a".to_vec(), b"1".to_vec(), None);
        assert!(ks.take_changes().is_empty());
        ks.start_recording();
        ks.set(b"k".to_vec(), b"v".to_vec(), Some(5000));
        ks.set_expiry(b"k", None);
        ks.set_expiry(b"k", Some(7000));
        assert!(ks.remove_if_expired(b"k", 7000));
        ks.clear();
        let words = |change: &Vec<Vec<u8>>| String::from_utf8(change.join(&b' ')).unwrap();
        let changes: Vec<String> = ks.take_changes().iter().map(words).collect();
        assert_eq!(
            changes,
            [
                "SET k v PXAT 5000",
                "PERSIST k",
                "PEXPIREAT k 7000",
                "DEL k",
                "FLUSHALL"
            ]
        );
        assert!(ks.take_changes().is_empty());
    }

    #[test]
    fn the_volatile_index_follows_every_change() {
        let mut ks = Keyspace::default();
        for i in 0..10u8 {
            ks.set(vec![i], vec![i], (i % 2 == 0).then_some(100));
        }
        check_index(&ks);
        ks.set_expiry(&[1], Some(50));
        ks.set_expiry(&[0], None);
        ks.set(vec![2], b"x".to_vec(), None);
        ks.set(vec![4], b"x".to_vec(), Some(70));
        ks.remove(&[6]);
        check_index(&ks);
        assert_eq!(ks.volatile_len(), 3);
        assert!(ks.remove_if_expired(&[1], 50));
        check_index(&ks);
        ks.clear();
        check_index(&ks);
    }
}

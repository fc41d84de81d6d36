//! One database's keys: every key, its value and its expiry.
//!
//! Expiry is checked on every lookup, against a `now` the caller passes in
//! (Unix milliseconds), so the rules can be tested with a fixed clock.
//!
//! Once a replica has connected, the keyspace also writes down every change
//! it makes as the command that replays it (`SET k v PXAT t`, `DEL k`,
//! `PEXPIREAT k t` ...), for the master to send to its replicas. Recording
//! at this level catches every change, whoever makes it: a command, lazy
//! expiry or the active expiry thread.

use crate::resp::Args;
use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A key and its value: what the hash table stores for each key.
///
/// Every key costs one of these, so it is kept small: 24 bytes in the
/// table plus one block on the heap. The key and the value share that
/// block (`data` is the key's bytes, then the value's), and the table is a
/// `HashSet` looked up by the key part (see the `Borrow` impl below), where
/// a `HashMap<Vec<u8>, Vec<u8>>` plus an expiry needs 72 bytes and two
/// blocks. Deadlines live beside the keys that have one, in
/// `Keyspace::volatile`, as Redis keeps them in a dictionary of their own:
/// most keys have none, and should not pay 8 bytes for it. docs/performance.md
/// has the numbers.
///
/// The slot changes in place, under the write lock, through a shared
/// reference (a `HashSet` hands out no others): an atomic makes that
/// allowed, at no cost, since nothing else touches it at the same time.
#[derive(Debug)]
struct Stored {
    data: Box<[u8]>,
    key_len: u32,
    /// Where the key and its deadline sit in `Keyspace::volatile`, or
    /// `NOT_VOLATILE` if the key never expires.
    slot: AtomicU32,
}

/// The slot of a key without an expiry.
const NOT_VOLATILE: u32 = u32::MAX;

impl Stored {
    fn new(key: &[u8], value: &[u8], slot: Option<usize>) -> Stored {
        Stored {
            data: [key, value].concat().into_boxed_slice(),
            key_len: key.len() as u32,
            slot: AtomicU32::new(slot.map_or(NOT_VOLATILE, |slot| slot as u32)),
        }
    }

    fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    /// Where the key's deadline is, if it has one.
    fn slot(&self) -> Option<usize> {
        let slot = self.slot.load(Relaxed);
        (slot != NOT_VOLATILE).then_some(slot as usize)
    }

    fn set_slot(&self, slot: Option<usize>) {
        let slot = slot.map_or(NOT_VOLATILE, |slot| slot as u32);
        self.slot.store(slot, Relaxed);
    }
}

// An entry is found by its key: it hashes and compares as its key alone,
// so `HashSet<Stored>::get(&[u8])` works.
impl Hash for Stored {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Stored {}

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

/// A key with an expiry, and its deadline.
#[derive(Debug)]
struct Volatile {
    key: Box<[u8]>,
    /// When the key expires, in Unix milliseconds.
    deadline: i64,
}

/// A key found in the keyspace: its key, value and expiry, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    stored: &'a Stored,
    expires_at: Option<i64>,
}

impl<'a> Entry<'a> {
    /// The value: bytes, as Redis strings are.
    pub fn value(&self) -> &'a [u8] {
        &self.stored.data[self.stored.key_len as usize..]
    }

    /// When the key expires, in Unix milliseconds; `None` means never.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Has the deadline passed? A key is gone at its deadline, not after.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|deadline| deadline <= now)
    }
}

/// The keys, their values and their expiries.
#[derive(Default)]
pub struct Keyspace {
    entries: HashSet<Stored>,
    /// The keys that have an expiry, with their deadlines, in random order,
    /// so that the active expiry cycle can walk them without scanning the
    /// whole map, and any run of them is a fair sample (see `shuffle_in`).
    volatile: Vec<Volatile>,
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
    pub fn get(&self, key: &[u8], now: i64) -> Option<Entry<'_>> {
        let entry = self.entry(self.entries.get(key)?);
        if entry.is_expired(now) {
            let mut stale = self.stale.lock().unwrap_or_else(PoisonError::into_inner);
            stale.push(key.to_vec());
            return None;
        }
        Some(entry)
    }

    /// The live entry at `key`, for a writer: an expired key is deleted first.
    pub fn get_live(&mut self, key: &[u8], now: i64) -> Option<Entry<'_>> {
        self.remove_if_expired(key, now);
        self.entries.get(key).map(|stored| self.entry(stored))
    }

    /// The view of a stored key, with its deadline looked up.
    fn entry<'a>(&'a self, stored: &'a Stored) -> Entry<'a> {
        Entry {
            stored,
            expires_at: stored.slot().map(|slot| self.volatile[slot].deadline),
        }
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
        // Store first, then look at what was there: one lookup, not two,
        // for the common case of a key without an expiry before and after.
        let old = self.entries.replace(Stored::new(&key, &value, None));
        let old_slot = old.as_ref().and_then(Stored::slot);
        let slot = match (old_slot, expires_at) {
            // Already tracked, and still volatile: keep its place.
            (Some(slot), Some(deadline)) => {
                self.volatile[slot].deadline = deadline;
                Some(slot)
            }
            // Newly volatile: track it.
            (None, Some(deadline)) => {
                let key = key.clone().into_boxed_slice();
                self.volatile.push(Volatile { key, deadline });
                Some(self.volatile.len() - 1)
            }
            // Was volatile, is no longer: stop tracking it.
            (Some(slot), None) => {
                self.untrack(slot);
                None
            }
            (None, None) => None,
        };
        if slot.is_some() {
            let stored = self.entries.get(key.as_slice());
            stored.expect("stored just above").set_slot(slot);
            if old_slot.is_none() {
                self.shuffle_in();
            }
        }
    }

    /// Sets or clears the expiry of an existing key; says whether the key exists.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<i64>) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        match (entry.slot(), expires_at) {
            (None, Some(deadline)) => {
                entry.set_slot(Some(self.volatile.len()));
                let key = key.into();
                self.volatile.push(Volatile { key, deadline });
                self.shuffle_in();
            }
            (Some(slot), Some(deadline)) => self.volatile[slot].deadline = deadline,
            (Some(slot), None) => {
                entry.set_slot(None);
                self.untrack(slot);
            }
            (None, None) => {}
        }
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
        true
    }

    /// Deletes `key`; says whether it existed (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.delete(key, true).is_some()
    }

    /// Deletes `key` and hands back its value and expiry (expired or not),
    /// so that RENAME and MOVE can store them elsewhere.
    pub fn take(&mut self, key: &[u8]) -> Option<(Vec<u8>, Option<i64>)> {
        let (stored, expires_at) = self.delete(key, true)?;
        let value = stored.data[stored.key_len as usize..].to_vec();
        Some((value, expires_at))
    }

    /// Deletes `key`, telling its watchers or not; hands back what was
    /// stored and the deadline.
    fn delete(&mut self, key: &[u8], tell_watchers: bool) -> Option<(Stored, Option<i64>)> {
        let entry = self.entries.take(key)?;
        if tell_watchers {
            touch(&self.watchers, key);
        }
        self.dirty += 1;
        if self.recording {
            self.changes.push(vec![b"DEL".to_vec(), key.to_vec()]);
        }
        let deadline = entry.slot().map(|slot| {
            let deadline = self.volatile[slot].deadline;
            self.untrack(slot);
            deadline
        });
        Some((entry, deadline))
    }

    /// Deletes `key` if its deadline has passed; says whether it did.
    ///
    /// Its watchers are not told: a key watched while alive that expired
    /// since is caught at EXEC anyway (see `Watch::changed`), and a key
    /// already expired when watched did not change by going away.
    pub fn remove_if_expired(&mut self, key: &[u8], now: i64) -> bool {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|stored| self.entry(stored).is_expired(now));
        expired && self.delete(key, false).is_some()
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
        self.volatile.get(index).map(|volatile| &*volatile.key)
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        if self.recording {
            self.changes.push(vec![b"FLUSHDB".to_vec()]);
        }
        self.dirty += self.entries.len() as u64;
        // A flush changes every watched key that existed.
        for (key, flags) in &self.watchers {
            if self.entries.contains(key.as_slice()) {
                flags
                    .iter()
                    .for_each(|flag| flag.store(true, Ordering::SeqCst));
            }
        }
        self.entries.clear();
        self.volatile.clear();
    }

    /// Exchanges the data of two databases. The watchers stay with their
    /// database, and every watched key that existed on either side changed.
    pub fn swap_data(&mut self, other: &mut Keyspace) {
        std::mem::swap(&mut self.entries, &mut other.entries);
        std::mem::swap(&mut self.volatile, &mut other.volatile);
        std::mem::swap(&mut self.dirty, &mut other.dirty);
        for keyspace in [&*self, &*other] {
            for (key, flags) in &keyspace.watchers {
                let existed =
                    self.entries.contains(key.as_slice()) || other.entries.contains(key.as_slice());
                if existed {
                    flags
                        .iter()
                        .for_each(|flag| flag.store(true, Ordering::SeqCst));
                }
            }
        }
    }

    /// Every key with its entry, expired ones included, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Entry<'_>)> {
        self.entries
            .iter()
            .map(|stored| (stored.key(), self.entry(stored)))
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
            if let Some(entry) = self.entries.get(&*self.volatile[slot].key) {
                entry.set_slot(Some(slot));
            }
        }
    }

    /// Forgets the volatile key at `slot`: swap-remove, then tell the key
    /// that moved into `slot` where it now lives.
    fn untrack(&mut self, slot: usize) {
        self.volatile.swap_remove(slot);
        if let Some(moved) = self.volatile.get(slot) {
            if let Some(entry) = self.entries.get(&*moved.key) {
                entry.set_slot(Some(slot));
            }
        }
    }
}

/// Tells the watchers of `key` that it changed. (A function of the map
/// alone, so it can run while an entry of the keyspace is borrowed.)
fn touch(watchers: &HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>, key: &[u8]) {
    // Most of the time nobody watches anything: skip hashing the key.
    if watchers.is_empty() {
        return;
    }
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
        let volatile = ks.entries.iter().filter(|e| e.slot().is_some()).count();
        assert_eq!(ks.volatile.len(), volatile);
        for (slot, volatile) in ks.volatile.iter().enumerate() {
            let stored = ks.entries.get(&*volatile.key);
            assert_eq!(stored.map(Stored::slot), Some(Some(slot)));
        }
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
        assert_eq!(ks.get(b"k", 20).map(|e| e.value()), Some(&b"new"[..]));
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
                "FLUSHDB"
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

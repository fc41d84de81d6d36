//! One database's keys: every key, its value and its expiry.
//!
//! Expiry is checked on every lookup, against a `now` the caller passes in
//! (Unix milliseconds), so the rules can be tested with a fixed clock.
//!
//! The concerns live in files of their own: what an entry is and the
//! values it holds (`entry.rs`), the table of entries (`table.rs`), the
//! index of deadlines (`volatile.rs`),
//! the change log for replicas (`changes.rs`), the keyspace notifications
//! to publish (`events.rs`), WATCH's flags
//! (`watchers.rs`), the frozen copy a save writes out (`snapshot.rs`).
//! This file keeps them in step on every change, and counts the changes
//! since the last save.

mod changes;
mod entry;
mod events;
mod hash;
mod set;
mod snapshot;
mod table;
mod volatile;
mod watchers;

pub use entry::{Entry, List, Value, ValueRef};
pub use events::Event;
pub use hash::Hash;
pub use set::{canonical_int, Set};
pub use snapshot::{Capture, Snapshot};
pub use table::SHARDS;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::events::Events;
use crate::resp::Args;
use crate::sync::lock;
use changes::ChangeLog;
use entry::Stored;
use events::EventLog;
use table::{shard_of, Table};
use volatile::VolatileIndex;
use watchers::Watchers;

/// A key just stored by [`Keyspace::set`], for the command to announce
/// its change; dropping it announces nothing.
pub struct Written<'a> {
    keyspace: &'a mut Keyspace,
    key: Vec<u8>,
}

impl Written<'_> {
    /// Announces the event `name` of `class` on the key just stored.
    pub fn notify(self, class: Events, name: &'static str) -> Self {
        self.keyspace.notify(class, name, &self.key);
        self
    }

    /// Announces an event on another key of the same change (RENAME's
    /// `rename_from`, which comes before `rename_to`).
    pub fn notify_on(self, key: &[u8], class: Events, name: &'static str) -> Self {
        self.keyspace.notify(class, name, key);
        self
    }
}

/// The keys, their values and their expiries.
#[derive(Default)]
pub struct Keyspace {
    entries: Table,
    /// The keys that have an expiry, with their deadlines.
    volatile: VolatileIndex,
    /// Expired keys that readers found but could not delete: a read lock
    /// does not allow it. The reader's caller deletes them afterwards.
    stale: Mutex<Vec<Vec<u8>>>,
    /// The changes, written down for replicas once one has attached.
    changes: ChangeLog,
    /// For each watched key, the flags of the connections that watch it.
    watchers: Watchers,
    /// Changes since the last save, for the save points.
    dirty: u64,
    /// The snapshots being taken: a shard they have not copied yet is
    /// copied before a write changes it (see `snapshot.rs`).
    captures: Vec<Arc<Capture>>,
    /// Keys deleted because their deadline passed (INFO's `expired_keys`).
    expired: u64,
    /// The keyspace notifications not yet published.
    events: EventLog,
}

impl Keyspace {
    /// The live entry at `key`. An expired key is reported absent and noted
    /// in the stale list, for [`Keyspace::purge_stale`] to delete later.
    pub fn get(&self, key: &[u8], now: i64) -> Option<Entry<'_>> {
        let entry = self.entry(self.entries.get(key)?);
        if entry.is_expired(now) {
            lock(&self.stale).push(key.to_vec());
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
            expires_at: stored.slot().map(|slot| self.volatile.deadline(slot)),
        }
    }

    /// Stores `value` at `key` with the given expiry, replacing any old
    /// value and expiry. The command announces its change on what it
    /// returns: `keyspace.set(key, value, None).notify(Events::STRING, "set")`.
    pub fn set(&mut self, key: Vec<u8>, value: Value, expires_at: Option<i64>) -> Written<'_> {
        self.watchers.touch(&key);
        self.dirty += 1;
        self.changes
            .record_all(|| rebuild(&key, &value, expires_at));
        self.store(key, value, expires_at)
    }

    /// Stores `value` at `key`, without an expiry, and records nothing: the
    /// command calls [`Keyspace::changed`] with its own words for replicas
    /// (SINTERSTORE and the like).
    pub fn set_quietly(&mut self, key: Vec<u8>, value: Value) {
        let _ = self.store(key, value, None);
    }

    /// Stores `value` at `key` with the given expiry, replacing any old
    /// value and expiry; records nothing for replicas, and returns the
    /// change for the command to announce.
    fn store(&mut self, key: Vec<u8>, value: Value, expires_at: Option<i64>) -> Written<'_> {
        self.preserve(&key);
        // Store first, then look at what was there: one lookup, not two,
        // for the common case of a key without an expiry before and after.
        let old = self.entries.replace(Stored::new(&key, value, None));
        if old.is_none() {
            self.notify(Events::NEW, "new", &key);
        }
        let old_slot = old.as_ref().and_then(Stored::slot);
        match (old_slot, expires_at) {
            // Already tracked, and still volatile: keep its place.
            (Some(slot), Some(deadline)) => {
                self.volatile.set_deadline(slot, deadline);
                let stored = self.entries.get(key.as_slice());
                stored.expect("stored just above").set_slot(Some(slot));
            }
            // Newly volatile: track it.
            (None, Some(deadline)) => self.volatile.track(&self.entries, &key, deadline),
            // Was volatile, is no longer: stop tracking it.
            (Some(slot), None) => self.volatile.untrack(&self.entries, slot),
            (None, None) => {}
        }
        Written {
            keyspace: self,
            key,
        }
    }

    /// Changes the list, hash or set at `key` in place, with `change`; or,
    /// if there is no key, a new `create()`d one (for a command that makes
    /// its key, such as LPUSH; `None` for the others). `None` if there is
    /// no key and nothing to create, or the key holds a string: callers
    /// check the type first, to answer WRONGTYPE.
    ///
    /// The change is not recorded: if it changed anything, the command
    /// calls [`Keyspace::changed`] with what to tell replicas. A value
    /// left empty is deleted, as Redis never keeps an empty aggregate.
    /// A created key is announced (`new`); the command announces its
    /// own event, and `del` after it if the value was left empty.
    /// The caller deletes an expired key first (`get_live`).
    ///
    /// The entry is taken out of the table and put back (two hash
    /// lookups): the table hands out only shared references. A snapshot
    /// that shares the aggregate gets its shard copied first and keeps
    /// the old value (see `Stored::value_mut`).
    pub fn change<T>(
        &mut self,
        key: &[u8],
        create: Option<fn() -> Value>,
        change: impl FnOnce(&mut Value) -> T,
    ) -> Option<T> {
        self.preserve(key);
        let mut stored = match self.entries.take(key) {
            Some(stored) => stored,
            None => {
                let value = create?();
                // Before the command's own event, as Redis's `dbAdd` does.
                self.notify(Events::NEW, "new", key);
                Stored::new(key, value, None)
            }
        };
        let Some(value) = stored.value_mut() else {
            self.entries.replace(stored);
            return None;
        };
        let result = change(value);
        if value.is_empty_aggregate() {
            if let Some(slot) = stored.slot() {
                self.volatile.untrack(&self.entries, slot);
            }
        } else {
            self.entries.replace(stored);
        }
        Some(result)
    }

    /// A command changed `key` (through [`Keyspace::change`], or by
    /// deleting it): its watchers are told, the change is counted, and
    /// `replicas` is what the replication stream carries: the command
    /// itself, or a deterministic form of it (SPOP as SREM).
    pub fn changed(&mut self, key: &[u8], replicas: Vec<Args>) {
        self.watchers.touch(key);
        self.dirty += 1;
        self.changes.record_all(|| replicas);
    }

    /// Sets or clears the expiry of an existing key; says whether the key exists.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<i64>) -> bool {
        self.preserve(key);
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        match (entry.slot(), expires_at) {
            (None, Some(deadline)) => self.volatile.track(&self.entries, key, deadline),
            (Some(slot), Some(deadline)) => self.volatile.set_deadline(slot, deadline),
            (Some(slot), None) => {
                entry.set_slot(None);
                self.volatile.untrack(&self.entries, slot);
            }
            (None, None) => {}
        }
        self.watchers.touch(key);
        self.dirty += 1;
        self.changes.record(|| match expires_at {
            Some(deadline) => vec![
                b"PEXPIREAT".to_vec(),
                key.to_vec(),
                deadline.to_string().into_bytes(),
            ],
            None => vec![b"PERSIST".to_vec(), key.to_vec()],
        });
        true
    }

    /// Deletes `key`; says whether it existed (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.delete(key, true).is_some()
    }

    /// Deletes `key` and hands back its value and expiry (expired or not),
    /// so that RENAME and MOVE can store them elsewhere.
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<i64>)> {
        let (stored, expires_at) = self.delete(key, true)?;
        Some((stored.into_value(), expires_at))
    }

    /// Deletes `key`, telling its watchers or not; hands back what was
    /// stored and the deadline.
    fn delete(&mut self, key: &[u8], tell_watchers: bool) -> Option<(Stored, Option<i64>)> {
        self.preserve(key);
        let entry = self.entries.take(key)?;
        if tell_watchers {
            self.watchers.touch(key);
        }
        self.dirty += 1;
        self.changes.record(|| vec![b"DEL".to_vec(), key.to_vec()]);
        let deadline = entry.slot().map(|slot| {
            let deadline = self.volatile.deadline(slot);
            self.volatile.untrack(&self.entries, slot);
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
        let deleted = expired && self.delete(key, false).is_some();
        self.expired += u64::from(deleted);
        if deleted {
            self.notify(Events::EXPIRED, "expired", key);
        }
        deleted
    }

    /// How many keys were deleted because they expired.
    pub fn expired_count(&self) -> u64 {
        self.expired
    }

    /// Deletes the expired keys that readers met (see [`Keyspace::get`]);
    /// returns the ones it deleted.
    pub fn purge_stale(&mut self, now: i64) -> Vec<Vec<u8>> {
        let mut stale = std::mem::take(&mut *lock(&self.stale));
        stale.retain(|key| self.remove_if_expired(key, now));
        stale
    }

    /// Forgets the expired keys readers met, without deleting them: what a
    /// replica does, since only its master deletes keys.
    pub fn forget_stale(&mut self) {
        lock(&self.stale).clear();
    }

    /// Is any expired key waiting for [`Keyspace::purge_stale`]?
    pub fn has_stale(&self) -> bool {
        !lock(&self.stale).is_empty()
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
        self.volatile.key(index)
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        self.changes.record(|| vec![b"FLUSHDB".to_vec()]);
        self.dirty += self.entries.len() as u64;
        self.preserve_all();
        // A flush changes every watched key that existed.
        self.watchers.touch_existing(&self.entries, None);
        self.entries.clear();
        self.volatile.clear();
    }

    /// Exchanges the data of two databases. The watchers stay with their
    /// database, and every watched key that existed on either side changed.
    pub fn swap_data(&mut self, other: &mut Keyspace) {
        self.preserve_all();
        other.preserve_all();
        std::mem::swap(&mut self.entries, &mut other.entries);
        self.volatile.swap(&mut other.volatile);
        std::mem::swap(&mut self.dirty, &mut other.dirty);
        self.watchers
            .touch_existing(&self.entries, Some(&other.entries));
        other
            .watchers
            .touch_existing(&other.entries, Some(&self.entries));
    }

    /// Every key with its entry, expired ones included, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Entry<'_>)> {
        self.entries
            .iter()
            .map(|stored| (stored.key(), self.entry(stored)))
    }

    /// Starts a snapshot of the keys as they are now: from here on, a
    /// shard is copied before a write changes it. Copies nothing itself.
    pub fn start_snapshot(&mut self) -> Arc<Capture> {
        let capture = Arc::new(Capture::new());
        self.captures.push(Arc::clone(&capture));
        capture
    }

    /// Copies shard `shard` into `capture`, unless a writer did already.
    /// A read lock is enough: nothing in the table changes.
    pub fn copy_shard(&self, capture: &Capture, shard: usize) {
        capture.copy_shard(shard, self.entries.shard(shard), &self.volatile);
    }

    /// Forgets `capture`, every shard of which has been copied.
    pub fn end_snapshot(&mut self, capture: &Arc<Capture>) {
        self.captures.retain(|c| !Arc::ptr_eq(c, capture));
    }

    /// Before `key` changes: copies its shard into the snapshots being
    /// taken that lack it. Nothing to do, but a test, when none is.
    fn preserve(&self, key: &[u8]) {
        if !self.captures.is_empty() {
            let shard = shard_of(key);
            for capture in &self.captures {
                self.copy_shard(capture, shard);
            }
        }
    }

    /// Before every key may change (FLUSHDB, SWAPDB, a new dataset):
    /// completes the snapshots being taken.
    pub fn preserve_all(&self) {
        for capture in &self.captures {
            for shard in 0..SHARDS {
                self.copy_shard(capture, shard);
            }
        }
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
        self.watchers.watch(key, flag);
    }

    /// Stops raising `flag` for `key`.
    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        self.watchers.unwatch(key, flag);
    }

    /// Announces a change to `key` (a keyspace notification), if
    /// `notify-keyspace-events` turns its class on.
    pub fn notify(&mut self, class: Events, name: &'static str, key: &[u8]) {
        self.events.record(class, name, key);
    }

    /// From now on, announce the changes of the `classes` turned on.
    pub fn set_notify(&mut self, classes: Events) {
        self.events.set_classes(classes);
    }

    /// The changes announced since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.take()
    }

    /// From now on, write down every change (see [`Keyspace::take_changes`]).
    pub fn start_recording(&mut self) {
        self.changes.start();
    }

    /// The changes made since the last call, oldest first, each as the
    /// arguments of a command that makes the same change.
    pub fn take_changes(&mut self) -> Vec<Args> {
        self.changes.take()
    }
}

/// The commands that rebuild `value` at `key` on a replica: a SET for a
/// string; for an aggregate a DEL, then pushes or adds of up to 64
/// elements at a time (as Redis's AOF rewrite does), then the expiry.
fn rebuild(key: &[u8], value: &Value, expires_at: Option<i64>) -> Vec<Args> {
    let deadline = || expires_at.map(|at| at.to_string().into_bytes());
    let chunks = |command: &[u8], items: Vec<Vec<u8>>, per: usize| -> Vec<Args> {
        items
            .chunks(per * 64)
            .map(|chunk| {
                let mut args = vec![command.to_vec(), key.to_vec()];
                args.extend(chunk.iter().cloned());
                args
            })
            .collect()
    };
    let mut commands = match value {
        Value::String(bytes) => {
            let mut change = vec![b"SET".to_vec(), key.to_vec(), bytes.clone()];
            if let Some(deadline) = deadline() {
                change.extend([b"PXAT".to_vec(), deadline]);
            }
            return vec![change];
        }
        Value::List(list) => chunks(b"RPUSH", list.iter().cloned().collect(), 1),
        Value::Hash(hash) => {
            let items = hash.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]);
            chunks(b"HSET", items.collect(), 2)
        }
        Value::Set(set) => chunks(b"SADD", set.iter().collect(), 1),
    };
    commands.insert(0, vec![b"DEL".to_vec(), key.to_vec()]);
    if let Some(deadline) = deadline() {
        commands.push(vec![b"PEXPIREAT".to_vec(), key.to_vec(), deadline]);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every volatile key is tracked exactly once, at the slot its entry names.
    fn check_index(ks: &Keyspace) {
        let volatile = ks.entries.iter().filter(|e| e.slot().is_some()).count();
        assert_eq!(ks.volatile.len(), volatile);
        for (slot, key) in ks.volatile.keys() {
            let stored = ks.entries.get(key);
            assert_eq!(stored.map(Stored::slot), Some(Some(slot)));
        }
    }

    /// Keys, values and deadlines, sorted by key.
    type Contents = Vec<(Vec<u8>, Vec<u8>, Option<i64>)>;

    /// What a finished snapshot holds.
    fn contents(snapshot: &Snapshot) -> Contents {
        let mut all: Vec<_> = snapshot
            .iter()
            .map(|(key, value, deadline)| {
                let ValueRef::String(value) = value else {
                    panic!("only strings here");
                };
                (key.to_vec(), value.to_vec(), deadline)
            })
            .collect();
        all.sort();
        all
    }

    /// Keys `k0` to `k999`, every third with a deadline; and what a
    /// snapshot of them holds.
    fn thousand_keys() -> (Keyspace, Contents) {
        let mut ks = Keyspace::default();
        let mut want = Vec::new();
        for i in 0..1000 {
            let (key, deadline) = (
                format!("k{i}").into_bytes(),
                (i % 3 == 0).then_some(5000 + i),
            );
            ks.set(key.clone(), Value::String(b"old".to_vec()), deadline);
            want.push((key, b"old".to_vec(), deadline));
        }
        want.sort();
        (ks, want)
    }

    #[test]
    fn a_snapshot_keeps_the_keys_as_they_were_when_it_started() {
        let (mut ks, want) = thousand_keys();
        let capture = ks.start_snapshot();
        ks.copy_shard(&capture, 0);
        for i in 0..500 {
            ks.set(
                format!("k{i}").into_bytes(),
                Value::String(b"new".to_vec()),
                None,
            );
        }
        assert!(ks.remove(b"k600"));
        assert!(ks.set_expiry(b"k700", Some(1)));
        assert!(ks.set_expiry(b"k3", Some(1)));
        ks.set(b"added".to_vec(), Value::String(b"x".to_vec()), Some(9));
        for shard in 0..SHARDS {
            ks.copy_shard(&capture, shard);
        }
        ks.end_snapshot(&capture);
        // Writes after the end are no concern of the snapshot's.
        ks.set(b"k999".to_vec(), Value::String(b"later".to_vec()), None);
        assert_eq!(contents(&capture.finish()), want);
        check_index(&ks);
        assert_eq!(
            ks.get(b"k1", 0).map(|e| e.value()),
            Some(ValueRef::String(b"new"))
        );
    }

    #[test]
    fn an_aggregate_changes_in_place_and_a_snapshot_keeps_its_own() {
        let mut ks = Keyspace::default();
        let new_list = || Value::List(List::new());
        let push = |ks: &mut Keyspace, item: &str| {
            ks.change(b"l", Some(new_list), |value| {
                let Value::List(list) = value else {
                    panic!("a list");
                };
                list.push_back(item.as_bytes().to_vec());
            })
        };
        assert_eq!(push(&mut ks, "a"), Some(()));
        ks.set_expiry(b"l", Some(9000));
        let capture = ks.start_snapshot();
        push(&mut ks, "b");
        for shard in 0..SHARDS {
            ks.copy_shard(&capture, shard);
        }
        ks.end_snapshot(&capture);
        let snapshot = capture.finish();
        let (_, value, deadline) = snapshot.iter().next().expect("one key");
        assert_eq!(value.to_value(), Value::List([b"a".to_vec()].into()));
        assert_eq!(deadline, Some(9000));
        let now = ks.get(b"l", 0).map(|e| e.value().to_value());
        assert_eq!(
            now,
            Some(Value::List([b"a".to_vec(), b"b".to_vec()].into()))
        );
        // Emptied, the key goes, and with it its deadline.
        ks.change(b"l", None, |value| {
            let Value::List(list) = value else {
                panic!("a list");
            };
            list.clear();
        });
        assert_eq!(ks.len(), 0);
        check_index(&ks);
        // A string is never changed in place; a missing key without
        // `create` is left missing.
        ks.set(b"s".to_vec(), Value::String(b"v".to_vec()), None);
        assert_eq!(ks.change(b"s", Some(new_list), |_| ()), None);
        assert_eq!(ks.change(b"none", None, |_| ()), None);
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn a_copied_aggregate_reaches_replicas_as_commands() {
        let mut ks = Keyspace::default();
        ks.start_recording();
        let hash = Hash::from_pairs(vec![(b"f".to_vec(), b"v".to_vec())]);
        ks.set(b"h".to_vec(), Value::Hash(hash), Some(5000));
        let words = |change: &Vec<Vec<u8>>| String::from_utf8(change.join(&b' ')).unwrap();
        let changes: Vec<String> = ks.take_changes().iter().map(words).collect();
        assert_eq!(changes, ["DEL h", "HSET h f v", "PEXPIREAT h 5000"]);
    }

    #[test]
    fn a_flush_or_swap_completes_the_snapshots_first() {
        let (mut ks, want) = thousand_keys();
        let capture = ks.start_snapshot();
        ks.clear();
        ks.end_snapshot(&capture);
        assert_eq!(contents(&capture.finish()), want);

        let (mut ks, want) = thousand_keys();
        let mut other = Keyspace::default();
        let capture = ks.start_snapshot();
        ks.swap_data(&mut other);
        ks.end_snapshot(&capture);
        assert_eq!(contents(&capture.finish()), want);
        assert_eq!((ks.len(), other.len()), (0, 1000));
    }

    #[test]
    fn expired_keys_are_absent() {
        let mut ks = Keyspace::default();
        ks.set(b"k".to_vec(), Value::String(b"v".to_vec()), Some(1000));
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
        ks.set(b"k".to_vec(), Value::String(b"v".to_vec()), Some(10));
        assert!(ks.get(b"k", 20).is_none());
        ks.set(b"k".to_vec(), Value::String(b"new".to_vec()), None);
        assert!(ks.purge_stale(20).is_empty());
        assert_eq!(
            ks.get(b"k", 20).map(|e| e.value()),
            Some(ValueRef::String(b"new"))
        );
    }

    #[test]
    fn records_changes_as_commands() {
        let mut ks = Keyspace::default();
        ks.set(b"a".to_vec(), Value::String(b"1".to_vec()), None);
        assert!(ks.take_changes().is_empty());
        ks.start_recording();
        ks.set(b"k".to_vec(), Value::String(b"v".to_vec()), Some(5000));
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
            ks.set(vec![i], Value::String(vec![i]), (i % 2 == 0).then_some(100));
        }
        check_index(&ks);
        ks.set_expiry(&[1], Some(50));
        ks.set_expiry(&[0], None);
        ks.set(vec![2], Value::String(b"x".to_vec()), None);
        ks.set(vec![4], Value::String(b"x".to_vec()), Some(70));
        ks.remove(&[6]);
        check_index(&ks);
        assert_eq!(ks.volatile_len(), 3);
        assert!(ks.remove_if_expired(&[1], 50));
        check_index(&ks);
        ks.clear();
        check_index(&ks);
    }
}

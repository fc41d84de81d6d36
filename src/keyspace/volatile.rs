//! The expiry index: the keys that have a deadline, with their deadlines.
//!
//! A list in random order, so that the active expiry cycle can walk it
//! without scanning the whole table, and any run of it is a fair sample.
//! Each entry of the table knows its key's place here (its *slot*), so a
//! deadline is one index away, and the list is kept in step with it.

use super::table::Table;
use crate::rng::Rng;

/// A key with an expiry, and its deadline.
#[derive(Debug)]
struct Volatile {
    key: Box<[u8]>,
    /// When the key expires, in Unix milliseconds.
    deadline: i64,
}

/// The keys with a deadline, in random order.
#[derive(Debug, Default)]
pub(super) struct VolatileIndex {
    keys: Vec<Volatile>,
    /// Places each new key at a random spot (see `shuffle_in`).
    shuffle: Rng,
}

impl VolatileIndex {
    /// How many keys have a deadline.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The deadline at `slot`.
    pub(super) fn deadline(&self, slot: usize) -> i64 {
        self.keys[slot].deadline
    }

    /// Changes the deadline at `slot`.
    pub(super) fn set_deadline(&mut self, slot: usize, deadline: i64) {
        self.keys[slot].deadline = deadline;
    }

    /// The key at `slot`, if there is one.
    pub(super) fn key(&self, slot: usize) -> Option<&[u8]> {
        self.keys.get(slot).map(|volatile| &*volatile.key)
    }

    /// Starts tracking `key`, whose entry in `entries` must exist; tells
    /// the entry its slot.
    pub(super) fn track(&mut self, entries: &Table, key: &[u8], deadline: i64) {
        self.keys.push(Volatile {
            key: key.into(),
            deadline,
        });
        if let Some(stored) = entries.get(key) {
            stored.set_slot(Some(self.keys.len() - 1));
        }
        self.shuffle_in(entries);
    }

    /// Forgets the key at `slot`: swap-remove, then tell the key that moved
    /// into `slot` where it now lives.
    pub(super) fn untrack(&mut self, entries: &Table, slot: usize) {
        self.keys.swap_remove(slot);
        if let Some(moved) = self.keys.get(slot) {
            if let Some(stored) = entries.get(&moved.key) {
                stored.set_slot(Some(slot));
            }
        }
    }

    /// Forgets every key.
    pub(super) fn clear(&mut self) {
        self.keys.clear();
    }

    /// Exchanges the keys with `other`'s (SWAPDB).
    pub(super) fn swap(&mut self, other: &mut VolatileIndex) {
        std::mem::swap(&mut self.keys, &mut other.keys);
    }

    /// Moves the key just pushed to a random place, and the key that was
    /// there to the end: an online Fisher-Yates shuffle, so the list is
    /// always in random order. The active cycle walks it in runs of
    /// twenty; in insertion order, a run would be twenty keys set together,
    /// likely to expire together, and a poor sample of the whole.
    fn shuffle_in(&mut self, entries: &Table) {
        let last = self.keys.len() - 1;
        let other = self.shuffle.below(self.keys.len());
        if other == last {
            return;
        }
        self.keys.swap(other, last);
        for slot in [other, last] {
            if let Some(stored) = entries.get(&self.keys[slot].key) {
                stored.set_slot(Some(slot));
            }
        }
    }

    /// Every tracked key with its slot, for the tests' consistency checks.
    #[cfg(test)]
    pub(super) fn keys(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.keys
            .iter()
            .enumerate()
            .map(|(slot, v)| (slot, &*v.key))
    }
}

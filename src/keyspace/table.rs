//! The hash table of entries, cut into [`SHARDS`] smaller tables by a
//! cheap function of the key.
//!
//! To the rest of the keyspace it is one table. The cut is there for the
//! snapshots (snapshot.rs): a save copies the table a shard at a time,
//! holding the lock for a few hundred keys at once instead of for all of
//! them, and a writer that must change a shard not yet copied copies that
//! shard first, the way fork() copies a page before the parent writes to
//! it. A side benefit: each shard grows on its own, so a resize moves
//! 1/256th of the keys, not all of them at once.

// `Stored` holds an atomic (its slot), but the slot is no part of a key's
// hash or equality (see entry.rs): the tables never see a key change.
#![allow(clippy::mutable_key_type)]

use std::collections::HashSet;

use super::entry::Stored;

/// How many shards a table has: a power of two.
pub const SHARDS: usize = 256;

/// The entries, in [`SHARDS`] hash sets.
pub(super) struct Table {
    shards: Box<[HashSet<Stored>]>,
    len: usize,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            shards: (0..SHARDS).map(|_| HashSet::new()).collect(),
            len: 0,
        }
    }
}

/// The shard of `key`: its first and last eight bytes and its length,
/// mixed by a multiplication. Cheap on every lookup, and it spreads keys
/// that differ near either end, as keys usually do. Keys made to fall in
/// one shard only make that shard's copy longer: each shard is a hash set
/// of its own, with std's flood-resistant hashing.
pub(super) fn shard_of(key: &[u8]) -> usize {
    let word = |bytes: &[u8]| {
        let mut word = [0; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let head = word(&key[..key.len().min(8)]);
    let tail = word(&key[key.len().saturating_sub(8)..]);
    let mixed =
        (head ^ tail.rotate_left(29) ^ key.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SHARDS.trailing_zeros())) as usize
}

impl Table {
    /// The entry of `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<&Stored> {
        self.shards[shard_of(key)].get(key)
    }

    /// Is `key` in the table?
    pub(super) fn contains(&self, key: &[u8]) -> bool {
        self.shards[shard_of(key)].contains(key)
    }

    /// Stores `stored`; hands back the entry it replaced, if any.
    pub(super) fn replace(&mut self, stored: Stored) -> Option<Stored> {
        let old = self.shards[shard_of(stored.key())].replace(stored);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes the entry of `key` and hands it back.
    pub(super) fn take(&mut self, key: &[u8]) -> Option<Stored> {
        let old = self.shards[shard_of(key)].take(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// How many entries there are.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Removes every entry.
    pub(super) fn clear(&mut self) {
        self.shards.iter_mut().for_each(HashSet::clear);
        self.len = 0;
    }

    /// The entries of shard `index`.
    pub(super) fn shard(&self, index: usize) -> &HashSet<Stored> {
        &self.shards[index]
    }

    /// Every entry, shard by shard.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.shards.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_the_shards() {
        let mut counts = [0usize; SHARDS];
        for i in 0..SHARDS * 100 {
            counts[shard_of(format!("key:{i}").as_bytes())] += 1;
        }
        // 100 a shard on average: none should be far off.
        assert!(counts.iter().all(|&n| (50..200).contains(&n)), "{counts:?}");
        assert!(shard_of(b"") < SHARDS);
    }
}

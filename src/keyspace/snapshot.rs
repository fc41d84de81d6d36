//! A keyspace frozen at one moment, for a save or a full sync, taken
//! without holding the lock for more than a shard at a time.
//!
//! Redis gets this moment from fork(): the child sees the memory as it
//! was, and the kernel copies a page only when the parent is about to
//! write to it. We do the same by hand, with shards of the table
//! (table.rs) for pages and `Arc` clones for copies:
//!
//! 1. Under the write lock, [`Capture::new`] is registered with the
//!    keyspace: nothing is copied yet, so that takes no time.
//! 2. The saver then copies the shards one by one, each under a short
//!    read lock. A copy is a list of extra handles on the entries' blocks
//!    (entry.rs): one pointer copy and one count increment per key, not
//!    the keys' bytes.
//! 3. Meanwhile, a writer about to change a key whose shard has not been
//!    copied yet copies that shard first ([`Capture::copy_shard`]), so
//!    every shard is copied as it was at step 1. A write never changes a
//!    stored block but stores a new one, so the copies keep seeing the
//!    old values; a block the table has dropped lives on until the
//!    snapshot drops it.
//! 4. Once every shard is copied, the keyspace forgets the capture, and
//!    [`Capture::finish`] hands the copies over as a [`Snapshot`], which
//!    the saver encodes with no lock at all.
//!
//! What it costs: 24 bytes per key for the copy (8 more for a key with an
//! expiry), and, while the snapshot lives, the old value of every key
//! written since; a writer may wait for one shard's copy, about 1/256th
//! of the keys.
//!
//! A capture is shared by the saver's thread and the writers', so its
//! shards sit behind mutexes. They are never contended (the saver copies
//! under a read lock, a writer under the write lock), a thread takes one
//! only while it holds the databases' lock, and takes nothing else while
//! it holds one: the lock order stays as it was.

// `Stored` holds an atomic (its slot), but the slot is no part of a key's
// hash or equality (see entry.rs): the tables never see a key change.
#![allow(clippy::mutable_key_type)]

use std::collections::HashSet;
use std::sync::Mutex;

use super::entry::{Stored, ValueRef};
use super::table::SHARDS;
use super::volatile::VolatileIndex;
use crate::sync::lock;

/// One shard's entries as they were, with their deadlines.
#[derive(Default)]
struct Copied {
    /// Handles on the blocks; each one's slot indexes `deadlines`.
    entries: Vec<Stored>,
    /// The deadlines of the entries that have one.
    deadlines: Vec<i64>,
}

/// A snapshot of one keyspace being taken: the shards copied so far.
pub struct Capture {
    shards: Box<[Mutex<Option<Copied>>]>,
}

impl Capture {
    /// A capture with nothing copied yet.
    pub(super) fn new() -> Capture {
        Capture {
            shards: (0..SHARDS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Copies shard `index` of a keyspace (its entries and the expiry
    /// index they point into), unless it was copied already.
    pub(super) fn copy_shard(
        &self,
        index: usize,
        entries: &HashSet<Stored>,
        volatile: &VolatileIndex,
    ) {
        let mut copied = lock(&self.shards[index]);
        if copied.is_some() {
            return;
        }
        let mut copy = Copied {
            entries: Vec::with_capacity(entries.len()),
            deadlines: Vec::new(),
        };
        for stored in entries {
            let slot = stored.slot().map(|slot| {
                copy.deadlines.push(volatile.deadline(slot));
                copy.deadlines.len() - 1
            });
            copy.entries.push(stored.share(slot));
        }
        *copied = Some(copy);
    }

    /// The snapshot, once every shard has been copied.
    pub fn finish(&self) -> Snapshot {
        let shards = self.shards.iter().map(|shard| {
            let copied = lock(shard).take();
            copied.expect("every shard is copied before the capture finishes")
        });
        Snapshot {
            shards: shards.collect(),
        }
    }
}

/// The keys, values and deadlines of one keyspace at one moment.
pub struct Snapshot {
    shards: Vec<Copied>,
}

impl Snapshot {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.entries.len()).sum()
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.shards.iter().map(|shard| shard.deadlines.len()).sum()
    }

    /// Every key with its value and deadline, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ValueRef<'_>, Option<i64>)> {
        self.shards.iter().flat_map(|shard| {
            shard.entries.iter().map(|stored| {
                let deadline = stored.slot().map(|slot| shard.deadlines[slot]);
                (stored.key(), stored.value(), deadline)
            })
        })
    }
}

//! A keyspace frozen at one moment, for a save or a full sync, taken in a
//! few milliseconds under the lock and read at leisure without it.
//!
//! Redis gets this moment from fork(): the child sees the memory as it
//! was, and the kernel copies a page only when the parent writes to it.
//! We do the same by hand, per key instead of per page: every entry's
//! block is behind an `Arc` (entry.rs), so a snapshot is a list of extra
//! handles on the blocks, one pointer copy and one count increment per
//! key. The table goes on changing; since a write never changes a stored
//! block but stores a new one, the snapshot keeps seeing the old values,
//! and a block the table has dropped lives on until the snapshot drops it.
//!
//! What it costs: 24 bytes per key for the list (8 more for a key with an
//! expiry), and, while it lives, the old value of every key written since.

use std::hint::black_box;

use super::entry::{Stored, ValueRef};

/// How many blocks are fetched into the cache before their counts are
/// incremented (see [`Snapshot::new`]).
const BATCH: usize = 32;

/// The keys, values and deadlines of one keyspace at one moment.
pub struct Snapshot {
    /// Shared handles on the entries' blocks, in the table's order.
    entries: Vec<Stored>,
    /// The deadlines, by slot: the entries' slots index this copy of the
    /// expiry index, as they did the original when the snapshot was taken.
    deadlines: Vec<i64>,
}

impl Snapshot {
    /// Takes the snapshot: `entries` are the table's, `deadlines` its
    /// expiry index's, both as they are now.
    ///
    /// The time goes into memory, not work: each block sits somewhere on
    /// the heap, and its count is incremented with an atomic instruction,
    /// which on x86 waits for every earlier load to finish: one at a time,
    /// each increment waits for its own cache miss. So the blocks are
    /// taken by batches: first a plain read of every count of the batch,
    /// loads the CPU sends to memory all at once, then the increments, on
    /// lines now in the cache. For a million keys that took the lock's
    /// hold from 68 ms to 51 ms (best of eight, docs/performance.md).
    pub(super) fn new<'a>(
        mut entries: impl ExactSizeIterator<Item = &'a Stored>,
        deadlines: Vec<i64>,
    ) -> Snapshot {
        let mut shared = Vec::with_capacity(entries.len());
        loop {
            let batch: [Option<&Stored>; BATCH] = std::array::from_fn(|_| entries.next());
            if batch[0].is_none() {
                break;
            }
            for stored in batch.iter().flatten() {
                black_box(stored.share_count());
            }
            shared.extend(batch.iter().flatten().map(|stored| stored.share()));
        }
        Snapshot {
            entries: shared,
            deadlines,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    /// Every key with its value and deadline, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ValueRef<'_>, Option<i64>)> {
        self.entries.iter().map(|stored| {
            let deadline = stored.slot().map(|slot| self.deadlines[slot]);
            (stored.key(), stored.value(), deadline)
        })
    }
}

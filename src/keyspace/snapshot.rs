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

use super::entry::{Stored, ValueRef};

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
    pub(super) fn new<'a>(
        entries: impl ExactSizeIterator<Item = &'a Stored>,
        deadlines: Vec<i64>,
    ) -> Snapshot {
        Snapshot {
            entries: entries.map(Stored::share).collect(),
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

//! What the keyspace stores for each key, and the values it hands out.

use std::borrow::Borrow;
use std::hash::{Hash as StdHash, Hasher};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::hash::Hash;
use super::set::Set;
use std::collections::VecDeque;

/// A key's value, owned: what a command stores.
///
/// A command that meets a value of another type than its own answers
/// WRONGTYPE: the `match` on [`ValueRef`] is where it finds out. Sorted
/// sets and streams would be more variants here and in [`ValueRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string: bytes.
    String(Vec<u8>),
    /// A list: pushed and popped at both ends in O(1).
    List(List),
    /// A hash: fields and their values.
    Hash(Hash),
    /// A set: distinct members.
    Set(Set),
}

/// A list's elements, first to last. A ring buffer: both ends are O(1),
/// and so is reaching any index (LINDEX, LSET).
pub type List = VecDeque<Vec<u8>>;

/// A key's value, borrowed from the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// A string: bytes.
    String(&'a [u8]),
    /// A list.
    List(&'a List),
    /// A hash.
    Hash(&'a Hash),
    /// A set.
    Set(&'a Set),
}

impl ValueRef<'_> {
    /// A copy of the value (COPY).
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::String(bytes) => Value::String(bytes.to_vec()),
            ValueRef::List(list) => Value::List(list.clone()),
            ValueRef::Hash(hash) => Value::Hash(hash.clone()),
            ValueRef::Set(set) => Value::Set(set.clone()),
        }
    }

    /// The name TYPE answers and SCAN's TYPE option matches.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::String(_) => "string",
            ValueRef::List(_) => "list",
            ValueRef::Hash(_) => "hash",
            ValueRef::Set(_) => "set",
        }
    }
}

impl Value {
    /// The value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::String(bytes) => ValueRef::String(bytes),
            Value::List(list) => ValueRef::List(list),
            Value::Hash(hash) => ValueRef::Hash(hash),
            Value::Set(set) => ValueRef::Set(set),
        }
    }

    /// Is it an empty list, hash or set? Redis never keeps one: the key
    /// goes when its last element does.
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::List(list) => list.is_empty(),
            Value::Hash(hash) => hash.is_empty(),
            Value::Set(set) => set.is_empty(),
        }
    }
}

/// A key and its value: what the hash table stores for each key.
///
/// Every key costs one of these, so it is kept small: 24 bytes in the
/// table plus one block on the heap. The key and a string value share that
/// block (`data` is the key's bytes, then the value's), and the table is a
/// `HashSet` looked up by the key part (see the `Borrow` impl below), where
/// a `HashMap<Vec<u8>, Vec<u8>>` plus an expiry needs 72 bytes and two
/// blocks. Deadlines live beside the keys that have one (`volatile.rs`),
/// as Redis keeps them in a dictionary of their own: most keys have none,
/// and should not pay 8 bytes for it. docs/performance.md has the numbers.
///
/// A list, hash or set lives in a block of its own, with its key: an
/// `Arc<Aggregate>`. `Data`'s two variants share the space of the string
/// block's pointer and length (the pointer's niche tells them apart), so
/// the entry stays 24 bytes (`the_entry_stays_small`).
///
/// The block is shared, not owned: an `Arc`, so that a snapshot can hold
/// on to it while the table moves on (see `snapshot.rs`). Nothing ever
/// changes the bytes of a stored string; a write stores a new one, so a
/// snapshot's blocks keep the value they had. An aggregate is changed in
/// place through `Arc::make_mut` (see [`Stored::value_mut`]): a push on a
/// million-element list is O(1), and the list is copied only when a
/// snapshot still holds it, once per snapshot, as fork() copies a page. Reading through an `Arc` is
/// a plain pointer access; its two counters cost 16 bytes per key.
///
/// The slot changes in place, under the write lock, through a shared
/// reference (a `HashSet` hands out no others): an atomic makes that
/// allowed, at no cost, since nothing else touches it at the same time.
#[derive(Debug)]
pub(super) struct Stored {
    data: Data,
    key_len: u32,
    /// Where the key and its deadline sit in the expiry index, or
    /// `NOT_VOLATILE` if the key never expires.
    slot: AtomicU32,
}

/// The slot of a key without an expiry.
const NOT_VOLATILE: u32 = u32::MAX;

/// `key` then `value` in one shared allocation, copied as two slices. (An
/// iterator would copy byte by byte: a third of a SET's own work.)
fn joined(key: &[u8], value: &[u8]) -> Arc<[u8]> {
    let mut data = Arc::<[u8]>::new_uninit_slice(key.len() + value.len());
    let slots = Arc::get_mut(&mut data).expect("a new Arc has no other owner");
    let (head, tail) = slots.split_at_mut(key.len());
    head.write_copy_of_slice(key);
    tail.write_copy_of_slice(value);
    // SAFETY: the two copies above wrote every byte of the slice.
    unsafe { data.assume_init() }
}

/// Where an entry's key and value live.
#[derive(Debug)]
enum Data {
    /// A string: the key's bytes, then the value's, in one block.
    Inline(Arc<[u8]>),
    /// A list, hash or set, with its key.
    Aggregate(Arc<Aggregate>),
}

/// A key and its list, hash or set.
#[derive(Debug, Clone)]
struct Aggregate {
    key: Box<[u8]>,
    value: Value,
}

impl Stored {
    pub(super) fn new(key: &[u8], value: Value, slot: Option<usize>) -> Stored {
        let data = match value {
            Value::String(bytes) => Data::Inline(joined(key, &bytes)),
            value => Data::Aggregate(Arc::new(Aggregate {
                key: key.into(),
                value,
            })),
        };
        Stored {
            data,
            key_len: key.len() as u32,
            slot: AtomicU32::new(slot.map_or(NOT_VOLATILE, |slot| slot as u32)),
        }
    }

    pub(super) fn key(&self) -> &[u8] {
        match &self.data {
            Data::Inline(data) => &data[..self.key_len as usize],
            Data::Aggregate(aggregate) => &aggregate.key,
        }
    }

    pub(super) fn value(&self) -> ValueRef<'_> {
        match &self.data {
            Data::Inline(data) => ValueRef::String(&data[self.key_len as usize..]),
            Data::Aggregate(aggregate) => aggregate.value.as_ref(),
        }
    }

    /// The list, hash or set, for a change in place; `None` for a string,
    /// which is never changed in place. Copies the aggregate first if a
    /// snapshot shares it (`Arc::make_mut`), so the snapshot keeps its
    /// value; otherwise no copy.
    pub(super) fn value_mut(&mut self) -> Option<&mut Value> {
        match &mut self.data {
            Data::Inline(_) => None,
            Data::Aggregate(aggregate) => Some(&mut Arc::make_mut(aggregate).value),
        }
    }

    /// The value, taken out of a deleted entry (a copy if a snapshot
    /// shares the block).
    pub(super) fn into_value(self) -> Value {
        match self.data {
            Data::Inline(data) => Value::String(data[self.key_len as usize..].to_vec()),
            Data::Aggregate(aggregate) => match Arc::try_unwrap(aggregate) {
                Ok(aggregate) => aggregate.value,
                Err(shared) => shared.value.clone(),
            },
        }
    }

    /// Another handle on the same block, with `slot` for a slot: what a
    /// snapshot keeps of the entry. A pointer copy and a count increment.
    pub(super) fn share(&self, slot: Option<usize>) -> Stored {
        let data = match &self.data {
            Data::Inline(data) => Data::Inline(Arc::clone(data)),
            Data::Aggregate(aggregate) => Data::Aggregate(Arc::clone(aggregate)),
        };
        Stored {
            data,
            key_len: self.key_len,
            slot: AtomicU32::new(slot.map_or(NOT_VOLATILE, |slot| slot as u32)),
        }
    }

    /// Where the key's deadline is, if it has one.
    pub(super) fn slot(&self) -> Option<usize> {
        let slot = self.slot.load(Relaxed);
        (slot != NOT_VOLATILE).then_some(slot as usize)
    }

    pub(super) fn set_slot(&self, slot: Option<usize>) {
        let slot = slot.map_or(NOT_VOLATILE, |slot| slot as u32);
        self.slot.store(slot, Relaxed);
    }
}

// An entry is found by its key: it hashes and compares as its key alone,
// so `HashSet<Stored>::get(&[u8])` works.
impl StdHash for Stored {
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

/// A key found in the keyspace: its value and expiry, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub(super) stored: &'a Stored,
    pub(super) expires_at: Option<i64>,
}

impl<'a> Entry<'a> {
    /// The value.
    pub fn value(&self) -> ValueRef<'a> {
        self.stored.value()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_stays_small() {
        assert_eq!(std::mem::size_of::<Stored>(), 24);
    }

    #[test]
    fn key_and_value_share_one_block() {
        let stored = Stored::new(b"key", Value::String(b"value".to_vec()), None);
        assert_eq!(stored.key(), b"key");
        assert_eq!(stored.value(), ValueRef::String(b"value"));
        assert_eq!(stored.into_value(), Value::String(b"value".to_vec()));
    }
}

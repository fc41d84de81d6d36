//! The keyspace: every key and its value, shared by all connections.
//!
//! One `HashMap` behind one `RwLock`, behind an `Arc` that every connection
//! thread holds a clone of. Any number of readers may hold the lock at once;
//! a writer holds it alone. Callers take the lock, do their work, and drop
//! it before they touch a socket.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// The keys and their values. Both are bytes: Redis is binary-safe.
#[derive(Default)]
pub struct Keyspace {
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl Keyspace {
    /// The value stored at `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Stores `value` at `key`, replacing what was there.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, value);
    }

    /// Deletes `key`; says whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

//! WATCH's side of the keyspace: for each watched key, the flags of the
//! connections that watch it, raised whenever the key changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::table::Table;

/// The watched keys and their watchers' flags.
#[derive(Debug, Default)]
pub(super) struct Watchers {
    flags: HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>,
}

impl Watchers {
    /// Tells the watchers of `key` that it changed.
    pub(super) fn touch(&self, key: &[u8]) {
        // Most of the time nobody watches anything: skip hashing the key.
        if self.flags.is_empty() {
            return;
        }
        if let Some(flags) = self.flags.get(key) {
            raise(flags);
        }
    }

    /// Tells the watchers of every watched key in `entries` (or in
    /// `others`, if given) that it changed: FLUSHDB, SWAPDB.
    pub(super) fn touch_existing(&self, entries: &Table, others: Option<&Table>) {
        for (key, flags) in &self.flags {
            let key = key.as_slice();
            if entries.contains(key) || others.is_some_and(|others| others.contains(key)) {
                raise(flags);
            }
        }
    }

    /// Raises `flag` whenever `key` changes, until [`Watchers::unwatch`].
    pub(super) fn watch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        self.flags
            .entry(key.to_vec())
            .or_default()
            .push(Arc::clone(flag));
    }

    /// Stops raising `flag` for `key`.
    pub(super) fn unwatch(&mut self, key: &[u8], flag: &Arc<AtomicBool>) {
        if let Some(flags) = self.flags.get_mut(key) {
            flags.retain(|watcher| !Arc::ptr_eq(watcher, flag));
            if flags.is_empty() {
                self.flags.remove(key);
            }
        }
    }
}

fn raise(flags: &[Arc<AtomicBool>]) {
    flags
        .iter()
        .for_each(|flag| flag.store(true, Ordering::SeqCst));
}

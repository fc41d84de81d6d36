//! The databases: sixteen keyspaces (`--databases`), behind one read-write
//! lock shared by all connections.
//!
//! Names: [`Db`] is the shared handle (it is what "db" means in this
//! code); [`Databases`] is the content the handle's lock guards; a
//! [`Keyspace`] is one database; a database's number is an index
//! (`Session::selected` is the one SELECT chose).
//!
//! Any number of readers may hold the lock at once; a writer holds it
//! alone. Callers take the lock, do their work, and drop it before they
//! touch a socket. One lock over all databases keeps the commands that
//! span several (MOVE, SWAPDB, FLUSHALL, a transaction that SELECTs)
//! simple and atomic.

use std::ops::{Index, IndexMut};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::events::Events;
use crate::keyspace::{Capture, Event, Keyspace, Snapshot, SHARDS};
use crate::resp::Args;

/// One change to replay on replicas, as the command that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The database it applies to; `None` for a change that concerns all
    /// of them (FLUSHALL, SWAPDB) or none (MULTI, EXEC).
    pub index: Option<usize>,
    /// The command's arguments, name first.
    pub args: Args,
}

/// A handle on the shared databases; cloning it is cheap and shares them.
#[derive(Clone)]
pub struct Db {
    databases: Arc<RwLock<Databases>>,
}

impl Db {
    /// `count` empty databases.
    pub fn new(count: usize) -> Db {
        Db {
            databases: Arc::new(RwLock::new(Databases::new(count))),
        }
    }

    /// Locks the databases for reading; other readers may hold them too.
    pub fn read(&self) -> RwLockReadGuard<'_, Databases> {
        // A thread that panicked while holding the lock "poisons" it. Our
        // writes leave the maps consistent at every step, so carry on.
        self.databases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the databases for writing, alone.
    pub fn write(&self) -> RwLockWriteGuard<'_, Databases> {
        self.databases
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a snapshot of every database, as it is at one moment, without
    /// holding the lock for more than a shard's copy at a time (see
    /// keyspace/snapshot.rs). `at_start` runs under the write lock at that
    /// moment, for what must match the snapshot: the dirty counters, a
    /// replica's subscription to the changes that follow.
    pub fn snapshot<T>(&self, at_start: impl FnOnce(&mut Databases) -> T) -> (Vec<Snapshot>, T) {
        let (captures, started) = {
            let mut dbs = self.write();
            let captures: Vec<Arc<Capture>> =
                dbs.dbs.iter_mut().map(Keyspace::start_snapshot).collect();
            (captures, at_start(&mut dbs))
        };
        // Writers go on between two shards; one that changes a shard not
        // copied yet copies it first.
        for shard in 0..SHARDS {
            let dbs = self.read();
            for (keyspace, capture) in dbs.dbs.iter().zip(&captures) {
                keyspace.copy_shard(capture, shard);
            }
        }
        let mut dbs = self.write();
        for (keyspace, capture) in dbs.dbs.iter_mut().zip(&captures) {
            keyspace.end_snapshot(capture);
        }
        drop(dbs);
        (captures.iter().map(|c| c.finish()).collect(), started)
    }
}

/// The databases, numbered from 0.
pub struct Databases {
    dbs: Vec<Keyspace>,
    /// Are changes recorded (see `Keyspace`)?
    recording: bool,
    /// Changes collected so far, in order: those that concern all
    /// databases (FLUSHALL, SWAPDB), and those the keyspaces recorded, as
    /// of the last [`Databases::collect_changes`].
    changes: Vec<Change>,
    /// The keyspace notifications turned on (`notify-keyspace-events`).
    notify: Events,
}

impl Databases {
    /// `count` empty databases.
    pub fn new(count: usize) -> Databases {
        Databases {
            dbs: (0..count).map(|_| Keyspace::default()).collect(),
            recording: false,
            changes: Vec::new(),
            notify: Events::NONE,
        }
    }

    /// How many databases there are.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    /// The databases in order.
    pub fn iter(&self) -> impl Iterator<Item = &Keyspace> {
        self.dbs.iter()
    }

    /// Two different databases at once (for MOVE); `None` if `a == b`.
    pub fn pair_mut(&mut self, a: usize, b: usize) -> Option<(&mut Keyspace, &mut Keyspace)> {
        if a == b {
            return None;
        }
        let (low, high) = (a.min(b), a.max(b));
        let (left, right) = self.dbs.split_at_mut(high);
        let (first, second) = (&mut left[low], &mut right[0]);
        Some(if a < b {
            (first, second)
        } else {
            (second, first)
        })
    }

    /// SWAPDB: exchanges the contents of two databases.
    pub fn swap(&mut self, a: usize, b: usize) {
        if let Some((first, second)) = self.pair_mut(a, b) {
            first.swap_data(second);
        }
        if self.recording {
            let args = [
                b"SWAPDB".to_vec(),
                a.to_string().into_bytes(),
                b.to_string().into_bytes(),
            ];
            self.changes.push(Change {
                index: None,
                args: args.to_vec(),
            });
        }
    }

    /// FLUSHALL: empties every database; replicas get one FLUSHALL.
    pub fn flush_all(&mut self) {
        for keyspace in &mut self.dbs {
            keyspace.clear();
            keyspace.take_changes();
        }
        if self.recording {
            self.changes.push(Change {
                index: None,
                args: vec![b"FLUSHALL".to_vec()],
            });
        }
    }

    /// Announce the changes of the `classes` turned on from now on (a
    /// writer calls it with the setting before it writes: a comparison,
    /// unless the setting changed).
    pub fn set_notify(&mut self, classes: Events) {
        if self.notify != classes {
            self.notify = classes;
            self.dbs.iter_mut().for_each(|ks| ks.set_notify(classes));
        }
    }

    /// The keyspace notifications to publish: the events announced since
    /// the last call, each with its database, and which channels to use.
    pub fn take_events(&mut self) -> (Events, Vec<(usize, Event)>) {
        if self.notify == Events::NONE {
            return (Events::NONE, Vec::new());
        }
        let mut events = Vec::new();
        for (index, keyspace) in self.dbs.iter_mut().enumerate() {
            events.extend(keyspace.take_events().into_iter().map(|e| (index, e)));
        }
        // In the order they happened, across databases.
        events.sort_by_key(|(_, event)| event.sequence);
        (self.notify, events)
    }

    /// Are changes written down (a replica is, or was, attached)?
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Writes down a command that changes no key but must reach replicas
    /// all the same (PUBLISH), after the changes made before it.
    pub fn record(&mut self, change: Change) {
        if self.recording {
            self.collect_changes();
            self.changes.push(change);
        }
    }

    /// From now on, write down every change.
    pub fn start_recording(&mut self) {
        self.recording = true;
        self.dbs.iter_mut().for_each(Keyspace::start_recording);
    }

    /// Moves the changes the keyspaces recorded into the ordered log, each
    /// tagged with its database. A transaction calls it after each command,
    /// so that the changes of a command that SELECTs another database
    /// still come after those of the command before it.
    pub fn collect_changes(&mut self) {
        // Nothing is recorded before a replica attaches: skip the walk.
        if !self.recording {
            return;
        }
        for (index, keyspace) in self.dbs.iter_mut().enumerate() {
            self.changes
                .extend(keyspace.take_changes().into_iter().map(|args| Change {
                    index: Some(index),
                    args,
                }));
        }
    }

    /// The changes made since the last call, in order, each tagged with
    /// its database. (Replication's `propagate` is the one caller that
    /// sends them anywhere.)
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.collect_changes();
        std::mem::take(&mut self.changes)
    }

    /// Changes since the last save, per database.
    pub fn dirty(&self) -> Vec<u64> {
        self.dbs.iter().map(Keyspace::dirty).collect()
    }

    /// The data as it was when `dirty()` returned `saved` is now on disk.
    pub fn mark_saved(&mut self, saved: &[u64]) {
        for (keyspace, &dirty) in self.dbs.iter_mut().zip(saved) {
            keyspace.mark_saved(dirty);
        }
    }

    /// Replaces every database (after loading a snapshot).
    pub fn replace(&mut self, dbs: Vec<Keyspace>) {
        // A snapshot being taken keeps the data it started on.
        self.dbs.iter().for_each(Keyspace::preserve_all);
        self.dbs = dbs;
        let notify = self.notify;
        self.dbs.iter_mut().for_each(|ks| ks.set_notify(notify));
        if self.recording {
            self.dbs.iter_mut().for_each(Keyspace::start_recording);
        }
    }
}

impl Index<usize> for Databases {
    type Output = Keyspace;

    fn index(&self, index: usize) -> &Keyspace {
        &self.dbs[index]
    }
}

impl IndexMut<usize> for Databases {
    fn index_mut(&mut self, index: usize) -> &mut Keyspace {
        &mut self.dbs[index]
    }
}

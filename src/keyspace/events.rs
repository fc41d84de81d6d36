//! Keyspace notifications, as the keyspace writes them down: each change
//! to a key whose class is announced (see `events.rs`), with the event's
//! name, for the pub/sub registry to publish once the change is made.
//!
//! A command announces its change with one line where it makes it, as in
//! Redis: `keyspace.notify(Events::STRING, "set", &key)`. Announcing costs
//! a test of a bit when notifications are off, which is the default.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::events::Events;

/// Numbers the events of all databases in the order they happen, so that
/// a command that changes two (MOVE) announces in that order.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// One change to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What kind of change: the class its announcement depends on.
    pub class: Events,
    /// The event's name: `set`, `del`, `expired` ...
    pub name: &'static str,
    /// The key it happened to.
    pub key: Vec<u8>,
    /// Its place among the events of every database.
    pub sequence: u64,
}

/// The changes announced since the last [`EventLog::take`].
#[derive(Debug, Default)]
pub(super) struct EventLog {
    /// The classes and channels `notify-keyspace-events` turns on.
    classes: Events,
    events: Vec<Event>,
}

impl EventLog {
    /// From now on, write down the events `classes` announce.
    pub(super) fn set_classes(&mut self, classes: Events) {
        self.classes = classes;
    }

    /// Writes the event down, if its class is announced.
    pub(super) fn record(&mut self, class: Events, name: &'static str, key: &[u8]) {
        if self.classes.announces(class) {
            self.events.push(Event {
                class,
                name,
                key: key.to_vec(),
                sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
            });
        }
    }

    /// The events written down since the last call, oldest first.
    pub(super) fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

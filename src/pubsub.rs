//! Publish/subscribe: who listens to which channel, pattern or shard
//! channel, and the publishing of messages and keyspace notifications.
//!
//! Pub/sub turns a connection around: after SUBSCRIBE the server speaks
//! first, whenever another client publishes. With a thread per connection
//! that makes a second writer for the subscriber's socket, the publisher's
//! thread, beside the connection's own. Two writers must not interleave
//! their bytes, and a publisher must never wait for a subscriber that does
//! not read. So nobody but the connection writes to the socket: a
//! publisher appends the message to the subscriber's [`Outbox`]
//! (`outbox.rs`), a buffer under a mutex of its own, and returns; the connection's writer thread
//! drains the outbox to the socket. The outbox is bounded by
//! `client-output-buffer-limit pubsub`: a subscriber that falls that far
//! behind is dropped, as Redis does: its outbox closes, and its writer
//! thread, which notices within a moment even while stuck on a full
//! socket, hangs up.
//!
//! One lock, the registry's, covers every channel and pattern; a publish
//! holds it while it appends to the outboxes, so every subscriber sees the
//! messages of all publishers in one order, the order they took the lock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::db::Databases;
use crate::events::Events;
use crate::glob;
use crate::outbox::{Delivery, Outbox};
use crate::resp::{Protocol, Reply};
use crate::settings::Settings;
use crate::sync::lock;

/// The three name spaces a client may subscribe in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: one channel by its exact name.
    Channel,
    /// PSUBSCRIBE: every channel a glob pattern matches.
    Pattern,
    /// SSUBSCRIBE: a shard channel (a separate name space, for cluster).
    Shard,
}

impl Kind {
    /// The word of the confirmation frame of a subscription.
    fn subscribed(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    /// The word of the confirmation frame of an unsubscription.
    fn unsubscribed(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// What one client is subscribed to, and its outbox. The connection's
/// session holds it; the registry holds the outbox under each name.
pub struct Subscriptions {
    outbox: Arc<Outbox>,
    channels: HashSet<Vec<u8>>,
    patterns: HashSet<Vec<u8>>,
    shards: HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// No subscriptions yet, for client `id`.
    pub fn new(id: u64, protocol: Protocol) -> Subscriptions {
        Subscriptions {
            outbox: Arc::new(Outbox::new(id, protocol)),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shards: HashSet::new(),
        }
    }

    /// Where this client's output goes, once it has subscribed.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The channels, patterns and shard channels (CLIENT LIST's `sub`,
    /// `psub`, `ssub`).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shards.len())
    }

    /// Subscribed to anything? Then a RESP2 client is in subscribed mode.
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty())
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    /// The count a confirmation frame shows: channels and patterns
    /// together, shard channels on their own.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shards.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }
}

/// Where confirmation frames go.
pub enum Confirm<'a> {
    /// Into the outbox, under the registry's lock: no message can come
    /// before the frame that says the subscription exists.
    Outbox(Protocol),
    /// Into a list, as replies (inside EXEC, whose reply holds them).
    Replies(&'a mut Vec<Reply>),
}

/// Every channel, pattern and shard channel with its subscribers, in the
/// order they subscribed.
#[derive(Default)]
struct Registry {
    channels: HashMap<Vec<u8>, Vec<Arc<Outbox>>>,
    patterns: HashMap<Vec<u8>, Vec<Arc<Outbox>>>,
    shards: HashMap<Vec<u8>, Vec<Arc<Outbox>>>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Vec<u8>, Vec<Arc<Outbox>>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    fn remove(&mut self, kind: Kind, name: &[u8], outbox: &Arc<Outbox>) {
        let map = self.map(kind);
        if let Some(list) = map.get_mut(name) {
            list.retain(|other| !Arc::ptr_eq(other, outbox));
            if list.is_empty() {
                map.remove(name);
            }
        }
    }
}

/// The server's pub/sub: the registry, behind one lock.
pub struct PubSub {
    registry: Mutex<Registry>,
    settings: Arc<Settings>,
}

impl PubSub {
    /// No subscribers; the limits are read from `settings` at each publish.
    pub fn new(settings: Arc<Settings>) -> PubSub {
        PubSub {
            registry: Mutex::new(Registry::default()),
            settings,
        }
    }

    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per name, with
    /// the count after it (a repeat changes nothing but is confirmed).
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        kind: Kind,
        names: Vec<Vec<u8>>,
        mut confirm: Confirm,
    ) {
        let mut registry = lock(&self.registry);
        for name in names {
            if subs.set(kind).insert(name.clone()) {
                registry
                    .map(kind)
                    .entry(name.clone())
                    .or_default()
                    .push(Arc::clone(&subs.outbox));
            }
            let frame = confirmation(kind.subscribed(), Some(name), subs.count(kind));
            send(&subs.outbox, frame, &mut confirm);
        }
    }

    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: the names given, or all of
    /// that kind if none is. With none to remove, one frame with a null name.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        kind: Kind,
        names: Vec<Vec<u8>>,
        mut confirm: Confirm,
    ) {
        let mut registry = lock(&self.registry);
        let names = if names.is_empty() {
            subs.set(kind).iter().cloned().collect()
        } else {
            names
        };
        if names.is_empty() {
            let frame = confirmation(kind.unsubscribed(), None, subs.count(kind));
            send(&subs.outbox, frame, &mut confirm);
        }
        for name in names {
            if subs.set(kind).remove(&name) {
                registry.remove(kind, &name, &subs.outbox);
            }
            let frame = confirmation(kind.unsubscribed(), Some(name), subs.count(kind));
            send(&subs.outbox, frame, &mut confirm);
        }
    }

    /// Forgets every subscription of a client (it left, or sent RESET).
    pub fn forget(&self, subs: &mut Subscriptions) {
        let mut registry = lock(&self.registry);
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(subs.set(kind)) {
                registry.remove(kind, &name, &subs.outbox);
            }
        }
    }

    /// PUBLISH (`Kind::Channel`) or SPUBLISH (`Kind::Shard`): delivers the
    /// message to the channel's subscribers, then, for PUBLISH, to the
    /// patterns' that match; returns how many deliveries were made (a
    /// client subscribed twice, by name and by pattern, counts twice).
    pub fn publish(&self, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
        let limit = self.settings.pubsub_buffer_limit();
        let mut receivers = 0;
        {
            let mut registry = lock(&self.registry);
            let word: &[u8] = if kind == Kind::Shard {
                b"smessage"
            } else {
                b"message"
            };
            if let Some(list) = registry.map(kind).get(channel) {
                let frame = message_frame(&[word, channel, message]);
                for outbox in list {
                    if outbox.push_message(&frame, limit) == Delivery::Queued {
                        receivers += 1;
                    }
                }
            }
            if kind == Kind::Channel {
                for (pattern, list) in &registry.patterns {
                    if !glob::matches(pattern, channel, false) {
                        continue;
                    }
                    let frame = message_frame(&[b"pmessage", pattern, channel, message]);
                    for outbox in list {
                        if outbox.push_message(&frame, limit) == Delivery::Queued {
                            receivers += 1;
                        }
                    }
                }
            }
        }
        receivers
    }

    /// Before a write: the keyspaces announce the changes that
    /// `notify-keyspace-events` turns on now.
    pub fn watch_keyspace(&self, dbs: &mut Databases) {
        dbs.set_notify(self.settings.notify_keyspace_events());
    }

    /// After a write, under the same lock (so that the notifications keep
    /// the order of the changes): publishes what the keyspaces announced,
    /// `__keyspace@<db>__:<key>` first, then `__keyevent@<db>__:<event>`.
    pub fn publish_keyspace_events(&self, dbs: &mut Databases) {
        let (channels, events) = dbs.take_events();
        for (index, event) in events {
            if channels.any(Events::KEYSPACE) {
                let mut channel = format!("__keyspace@{index}__:").into_bytes();
                channel.extend_from_slice(&event.key);
                self.publish(Kind::Channel, &channel, event.name.as_bytes());
            }
            if channels.any(Events::KEYEVENT) {
                let channel = format!("__keyevent@{index}__:{}", event.name);
                self.publish(Kind::Channel, channel.as_bytes(), &event.key);
            }
        }
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: the active names `pattern` matches.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut registry = lock(&self.registry);
        registry
            .map(kind)
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob::matches(p, name, false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB: the subscribers of each name.
    pub fn numsub(&self, kind: Kind, names: &[Vec<u8>]) -> Vec<usize> {
        let mut registry = lock(&self.registry);
        let map = registry.map(kind);
        names
            .iter()
            .map(|name| map.get(name).map_or(0, Vec::len))
            .collect()
    }

    /// How many channels, patterns and shard channels have subscribers
    /// (INFO's `pubsub_channels`, `pubsub_patterns`, `pubsubshard_channels`).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let registry = lock(&self.registry);
        (
            registry.channels.len(),
            registry.patterns.len(),
            registry.shards.len(),
        )
    }

    /// PUBSUB NUMPAT: how many distinct patterns have subscribers.
    pub fn numpat(&self) -> usize {
        lock(&self.registry).patterns.len()
    }
}

/// Hands a confirmation to where it goes.
fn send(outbox: &Outbox, frame: Reply, confirm: &mut Confirm) {
    match confirm {
        Confirm::Outbox(protocol) => {
            let mut bytes = Vec::new();
            // Writing to a Vec cannot fail.
            let _ = frame.write_in(&mut bytes, *protocol);
            outbox.push_confirmation(&bytes);
        }
        Confirm::Replies(replies) => replies.push(frame),
    }
}

/// `subscribe ch 1`: a confirmation frame (a push in RESP3; the name is a
/// null when there was nothing to unsubscribe from).
fn confirmation(word: &'static str, name: Option<Vec<u8>>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(word),
        name.map_or(Reply::Nil, Reply::Bulk),
        Reply::Integer(count as i64),
    ])
}

/// A message frame, in RESP2: `*3 $7 message $2 ch $2 hi`. Encoded once
/// per publish and copied into each outbox.
fn message_frame(parts: &[&[u8]]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    frame.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for part in parts {
        frame.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        frame.extend_from_slice(part);
        frame.extend_from_slice(b"\r\n");
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn pubsub() -> PubSub {
        PubSub::new(Arc::new(Settings::new(&Config::default())))
    }

    fn drain(outbox: &Outbox) -> Vec<u8> {
        let mut batch = Vec::new();
        outbox.finish();
        let mut all = Vec::new();
        while outbox.take(&mut batch) {
            all.extend_from_slice(&batch);
        }
        all
    }

    #[test]
    fn a_message_reaches_channel_then_pattern_subscribers() {
        let pubsub = pubsub();
        let mut subs = Subscriptions::new(1, Protocol::Resp2);
        let mut replies = Vec::new();
        pubsub.subscribe(
            &mut subs,
            Kind::Channel,
            vec![b"news.x".to_vec()],
            Confirm::Replies(&mut replies),
        );
        pubsub.subscribe(
            &mut subs,
            Kind::Pattern,
            vec![b"news.*".to_vec()],
            Confirm::Replies(&mut replies),
        );
        assert_eq!(replies.len(), 2);
        assert_eq!(pubsub.publish(Kind::Channel, b"news.x", b"hi"), 2);
        assert_eq!(pubsub.publish(Kind::Shard, b"news.x", b"hi"), 0);
        assert_eq!(
            drain(&subs.outbox),
            b"*3\r\n$7\r\nmessage\r\n$6\r\nnews.x\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.x\r\n$2\r\nhi\r\n"
        );
        pubsub.forget(&mut subs);
        assert_eq!(pubsub.publish(Kind::Channel, b"news.x", b"hi"), 0);
        assert_eq!(pubsub.numpat(), 0);
    }

    #[test]
    fn subscribing_never_waits_for_a_full_outbox() {
        // The confirmation is appended under the registry's lock: waiting
        // there for a client to read would stall every publisher.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pubsub = pubsub();
            let mut subs = Subscriptions::new(1, Protocol::Resp2);
            subs.outbox
                .push_reply(&vec![b'x'; 2 * crate::outbox::REPLY_BACKLOG]);
            pubsub.subscribe(
                &mut subs,
                Kind::Channel,
                vec![b"c".to_vec()],
                Confirm::Outbox(Protocol::Resp2),
            );
            let _ = done.send(pubsub.publish(Kind::Channel, b"c", b"m"));
        });
        let receivers = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("SUBSCRIBE and PUBLISH did not wait for the socket");
        assert_eq!(receivers, 1);
    }
}

//! A subscriber's outbox: the bytes waiting for its socket, which
//! publishers append to without ever waiting for the socket, and which the
//! connection's writer thread drains (see `pubsub.rs` and
//! `connection.rs`'s `Mailer`).
//!
//! It is bounded by `client-output-buffer-limit pubsub`: a frame that takes
//! it over the limit closes it for good, and the writer, which notices
//! within a moment even while stuck on a full socket, hangs up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use crate::config::BufferLimit;
use crate::log;
use crate::resp::Protocol;
use crate::sync::lock;

/// What became of a frame handed to an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the socket.
    Queued,
    /// The outbox is closed: its client is leaving.
    Closed,
    /// The frame took the outbox over its limit: it is closed now, and its
    /// writer hangs up.
    Overflowed,
}

/// The bytes waiting for one subscriber's socket.
///
/// Publishers and the connection itself append; the connection's writer
/// thread takes everything there is and writes it, with no lock held.
pub struct Outbox {
    /// The client's id, for the log.
    id: u64,
    /// Does the client speak RESP3? Then messages are pushes (`>`).
    resp3: AtomicBool,
    pending: Mutex<Pending>,
    /// Signalled when bytes arrive or the outbox closes.
    ready: Condvar,
    /// Signalled when the writer has sent a batch, or the outbox closes.
    drained: Condvar,
}

/// How many unsent bytes the connection lets pile up before it waits to
/// append a reply of its own: a client that pipelines requests and does
/// not read its replies is held back, as a blocking write would, instead
/// of filling the memory.
pub const REPLY_BACKLOG: usize = 1024 * 1024;

/// The state behind an outbox's mutex.
#[derive(Default)]
struct Pending {
    /// Bytes not handed to the writer yet.
    bytes: Vec<u8>,
    /// Bytes the writer took and is writing now: unsent too.
    in_flight: usize,
    /// Since when the unsent bytes exceed the soft limit.
    over_soft_since: Option<Instant>,
    /// No more bytes come; the writer sends what is there, then stops.
    finishing: bool,
    /// Dropped for falling behind: nothing more is sent.
    killed: bool,
}

impl Outbox {
    /// An empty outbox for client `id`, speaking `protocol`.
    pub fn new(id: u64, protocol: Protocol) -> Outbox {
        Outbox {
            id,
            resp3: AtomicBool::new(protocol == Protocol::Resp3),
            pending: Mutex::new(Pending::default()),
            ready: Condvar::new(),
            drained: Condvar::new(),
        }
    }

    /// The client switched protocols (HELLO).
    pub fn set_protocol(&self, protocol: Protocol) {
        self.resp3
            .store(protocol == Protocol::Resp3, Ordering::Relaxed);
    }

    /// Appends a reply of the client's own. Not subject to the limit (it
    /// answers requests the client sent), but first waits, like a blocking
    /// write, while too much is unsent.
    pub fn push_reply(&self, bytes: &[u8]) {
        let mut pending = lock(&self.pending);
        while !pending.killed && pending.bytes.len() + pending.in_flight > REPLY_BACKLOG {
            pending = self
                .drained
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !pending.killed {
            self.append(&mut pending, bytes);
        }
    }

    /// Appends `bytes`, and wakes the writer if it may be waiting: only
    /// when there was nothing to send (a wake-up is a system call, and a
    /// burst of messages needs one).
    fn append(&self, pending: &mut Pending, bytes: &[u8]) {
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(bytes);
        if was_empty {
            self.ready.notify_one();
        }
    }

    /// Appends a (un)subscription's confirmation, at once: it is appended
    /// under the registry's lock, which must never wait for a socket.
    pub fn push_confirmation(&self, bytes: &[u8]) {
        let mut pending = lock(&self.pending);
        if !pending.killed {
            self.append(&mut pending, bytes);
        }
    }

    /// Appends a message frame, written in RESP2 (`*`); a RESP3 client
    /// gets it as a push (`>`), the only byte that differs. Checks the
    /// limit first, as Redis does after each append.
    pub fn push_message(&self, frame: &[u8], limit: BufferLimit) -> Delivery {
        let mut pending = lock(&self.pending);
        if pending.killed || pending.finishing {
            return Delivery::Closed;
        }
        let start = pending.bytes.len();
        self.append(&mut pending, frame);
        if self.resp3.load(Ordering::Relaxed) {
            pending.bytes[start] = b'>';
        }
        let unsent = (pending.bytes.len() + pending.in_flight) as u64;
        if over_limit(&mut pending, unsent, limit) {
            pending.killed = true;
            pending.bytes = Vec::new();
            self.ready.notify_one();
            self.drained.notify_all();
            log::warning(format!("Client id={} flags=P omem={unsent} scheduled to be closed ASAP for overcoming of output buffer limits.", self.id));
            return Delivery::Overflowed;
        }
        Delivery::Queued
    }

    /// For the writer thread: waits for bytes, and moves them all into
    /// `batch` (whose old content is dropped). False when nothing more
    /// will come: the outbox finished empty, or was killed.
    pub fn take(&self, batch: &mut Vec<u8>) -> bool {
        let mut pending = lock(&self.pending);
        if pending.in_flight > 0 {
            pending.in_flight = 0;
            self.drained.notify_all();
        }
        loop {
            if pending.killed {
                return false;
            }
            if !pending.bytes.is_empty() {
                batch.clear();
                // A burst must not keep its memory once it is sent.
                if batch.capacity() > 1024 * 1024 {
                    *batch = Vec::new();
                }
                std::mem::swap(&mut pending.bytes, batch);
                pending.in_flight = batch.len();
                return true;
            }
            if pending.finishing {
                return false;
            }
            pending = self
                .ready
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// For the writer thread, after [`Outbox::take`]: adds to `batch`
    /// whatever arrived since, without waiting.
    pub fn take_more(&self, batch: &mut Vec<u8>) {
        let mut pending = lock(&self.pending);
        if !pending.killed && !pending.bytes.is_empty() {
            batch.extend_from_slice(&pending.bytes);
            pending.in_flight = batch.len();
            pending.bytes.clear();
        }
    }

    /// The connection is ending: the writer sends what is left, then stops.
    pub fn finish(&self) {
        lock(&self.pending).finishing = true;
        self.ready.notify_one();
    }

    /// The socket failed: drop everything, and refuse what comes.
    pub fn kill(&self) {
        let mut pending = lock(&self.pending);
        pending.killed = true;
        pending.bytes = Vec::new();
        self.ready.notify_one();
        self.drained.notify_all();
    }

    /// Was the outbox closed for good (the client fell behind, or its
    /// socket failed)? Then its writer hangs up.
    pub fn is_killed(&self) -> bool {
        lock(&self.pending).killed
    }
}

/// Is `unsent` over `limit`, now? Keeps the time the soft limit was first
/// exceeded; as in Redis, the soft limit closes the client only when it is
/// still exceeded more than `seconds` later.
fn over_limit(pending: &mut Pending, unsent: u64, limit: BufferLimit) -> bool {
    if limit.hard > 0 && unsent >= limit.hard {
        return true;
    }
    if limit.soft > 0 && unsent >= limit.soft {
        match pending.over_soft_since {
            None => pending.over_soft_since = Some(Instant::now()),
            Some(since) => {
                if since.elapsed() > Duration::from_secs(limit.seconds) {
                    return true;
                }
            }
        }
    } else {
        pending.over_soft_since = None;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_hard_limit_closes_the_outbox() {
        let outbox = Outbox::new(1, Protocol::Resp3);
        let limit = BufferLimit {
            hard: 100,
            soft: 0,
            seconds: 0,
        };
        let frame = [
            &b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$40\r\n"[..],
            &[b'x'; 40],
            b"\r\n",
        ]
        .concat();
        assert_eq!(outbox.push_message(&frame, limit), Delivery::Queued);
        assert_eq!(outbox.push_message(&frame, limit), Delivery::Overflowed);
        assert_eq!(outbox.push_message(&frame, limit), Delivery::Closed);
        assert!(drain(&outbox).is_empty());
    }

    #[test]
    fn a_resp3_client_gets_pushes() {
        let outbox = Outbox::new(1, Protocol::Resp3);
        let frame = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n";
        outbox.push_message(frame, crate::config::PUBSUB_BUFFER_LIMIT);
        assert_eq!(
            drain(&outbox),
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        );
    }
}

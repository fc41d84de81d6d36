//! Replication state, and the master's side of it: the replication stream,
//! the backlog, the replicas that follow us, their acknowledgements, WAIT.
//! How it all looks from outside (INFO, ROLE) is in `replication/report.rs`;
//! the replica's side of the state (its master, its link, its offset) in
//! `replication/upstream.rs`. The state changes only through the methods
//! of [`Replication`]: its fields are private to this module.
//!
//! The stream is one ordered sequence of bytes: every change the master
//! makes, as RESP commands. Its length so far is the *replication offset*.
//! Every replica receives the same bytes in the same order, so every
//! replica that has processed N bytes holds the same data.
//!
//! The one rule this depends on: a change enters the stream while the
//! keyspace's write lock that made it is still held. Two writers can then
//! never append in the opposite order from the one they applied in. The
//! types enforce it: [`Replication::propagate`] and
//! [`Replication::subscribe`] take the databases by `&mut`, which only the
//! holder of the write lock has.
//!
//! The same changes go to the append-only file first (`aof/`): one
//! stream, two consumers, so a replica and a restart from the log see the
//! same changes.

mod report;
mod upstream;

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::aof::Aof;
use crate::db::{Change, Databases};
use crate::resp;

/// How much of the stream the backlog keeps for replicas that reconnect.
pub const BACKLOG_SIZE: usize = 1024 * 1024;
/// How often a master pings its replicas (`repl-ping-replica-period`).
pub const PING_PERIOD: Duration = Duration::from_secs(10);

/// A handle on the replication state; clones share it.
#[derive(Clone)]
pub struct Replication {
    shared: Arc<Shared>,
    /// The stream's other consumer (off unless the AOF is on).
    aof: Aof,
}

struct Shared {
    state: Mutex<State>,
    /// A copy of "is the role Replica?", read on every command without
    /// taking the lock; written only under it.
    replica: AtomicBool,
    /// Signalled whenever a replica acknowledges an offset (WAIT sleeps on it).
    acked: Condvar,
    /// Signalled whenever REPLICAOF names a new master (the replica
    /// supervisor sleeps on it).
    upstream_changed: Condvar,
}

/// Everything behind the lock.
struct State {
    /// Master, or replica of whom.
    role: Role,
    /// The history this server's data belongs to: 40 hex characters.
    replid: String,
    /// Bytes of the stream produced (on a master) or processed (on a replica).
    offset: i64,
    backlog: Option<Backlog>,
    replicas: Vec<Link>,
    /// Stream bytes a replica may have waiting before it is dropped; 0: no limit.
    buffer_limit: usize,
    /// The database the stream last SELECTed; `None` after a full sync, so
    /// the next change starts with a SELECT, as Redis does.
    stream_index: Option<usize>,
    next_link_id: u64,
    /// The generation of the last REPLICAOF (see `Upstream::generation`).
    last_generation: u64,
    /// How the syncs replicas asked for went, for INFO.
    syncs: SyncStats,
}

/// How replicas' sync requests went, as INFO's stats count them.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    /// Full syncs served (`sync_full`).
    pub full: u64,
    /// Partial resyncs accepted (`sync_partial_ok`).
    pub partial_ok: u64,
    /// Partial resyncs refused (`sync_partial_err`); a PSYNC with the id
    /// `?` asks for a full sync on purpose and does not count.
    pub partial_err: u64,
}

/// Which side of replication this server is on.
enum Role {
    /// Accepts writes, feeds replicas.
    Master,
    /// Follows a master and refuses client writes.
    Replica(upstream::Upstream),
}

/// The last `BACKLOG_SIZE` bytes of the stream.
struct Backlog {
    bytes: VecDeque<u8>,
    /// Offset of the first byte held; offsets count from 1, as in Redis.
    first_byte: i64,
}

/// One replica following this master.
struct Link {
    id: u64,
    ip: IpAddr,
    /// The port the replica listens on (from REPLCONF listening-port).
    port: u16,
    sender: Sender<Arc<[u8]>>,
    /// Stream bytes sent to the link's thread and not yet written out.
    queued: Arc<AtomicUsize>,
    ack_offset: i64,
    last_ack: Instant,
}

/// What a replica said it understands, in `REPLCONF capa ...`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `capa eof`: it reads a snapshot framed by `$EOF:<mark>`, whose
    /// length need not be known before it is sent.
    pub eof: bool,
    /// `capa psync2`: +CONTINUE names the replication id.
    pub psync2: bool,
}

/// How a replica asked to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// `PSYNC replid offset`; `None` for the legacy `SYNC`.
    pub psync: Option<(Vec<u8>, i64)>,
}

/// What a new replica's link thread gets: its id, the stream from here on,
/// and the counter of bytes queued for it.
pub struct Subscription {
    /// The link's id, for [`Replication::ack`] and [`Replication::remove`].
    pub id: u64,
    /// The stream bytes to send, in order.
    pub stream: Receiver<Arc<[u8]>>,
    /// Decrement by what was written out.
    pub queued: Arc<AtomicUsize>,
}

impl Replication {
    /// A master with a fresh replication id and an empty stream, which
    /// drops a replica with more than `buffer_limit` stream
    /// bytes waiting for it (0: never).
    pub fn with_buffer_limit(buffer_limit: usize) -> Replication {
        let state = State {
            buffer_limit,
            role: Role::Master,
            replid: new_replid(),
            offset: 0,
            backlog: None,
            replicas: Vec::new(),
            stream_index: None,
            next_link_id: 1,
            last_generation: 0,
            syncs: SyncStats::default(),
        };
        Replication {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                replica: AtomicBool::new(false),
                acked: Condvar::new(),
                upstream_changed: Condvar::new(),
            }),
            aof: Aof::default(),
        }
    }

    /// The same, with `aof` as the stream's second consumer.
    pub fn feeding(self, aof: Aof) -> Replication {
        Replication { aof, ..self }
    }

    /// Locks the state.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Is this server a replica (and so read-only to clients)?
    pub fn is_replica(&self) -> bool {
        self.shared.replica.load(Ordering::Acquire)
    }

    /// Appends the changes recorded in `dbs` to the stream and sends them
    /// to every replica; several become one transaction (MULTI ... EXEC)
    /// if `as_transaction`. Returns the offset after, or `None` if there
    /// was no change to send.
    ///
    /// It takes the databases by `&mut`, which only the holder of their
    /// write lock has: so a change enters the stream before any other
    /// writer can make the next one, and the stream's order is the order
    /// in which changes were applied.
    pub fn propagate(&self, dbs: &mut Databases, as_transaction: bool) -> Option<i64> {
        let mut changes = dbs.take_changes();
        // Nothing recorded (no replica ever attached, or a write that
        // changed nothing): no need to visit the replication state at all.
        if changes.is_empty() {
            return None;
        }
        if as_transaction && changes.len() > 1 {
            let marker = |name: &[u8]| Change {
                index: None,
                args: vec![name.to_vec()],
            };
            changes.insert(0, marker(b"MULTI"));
            changes.push(marker(b"EXEC"));
        }
        // Into the log's buffer, in the stream's order; the caller writes
        // it out once it lets go of the lock, before it replies.
        self.aof.append(&changes);
        let mut state = self.lock();
        if matches!(state.role, Role::Master) {
            let mut bytes = Vec::new();
            for change in &changes {
                // Replicas apply commands to the last database SELECTed.
                if let Some(index) = change.index {
                    if state.stream_index != Some(index) {
                        let select = [b"SELECT".to_vec(), index.to_string().into_bytes()];
                        resp::encode_command(&select, &mut bytes);
                        state.stream_index = Some(index);
                    }
                }
                resp::encode_command(&change.args, &mut bytes);
            }
            state.feed(bytes);
        }
        Some(state.offset)
    }

    /// The offset: bytes of the stream produced (on a master) or
    /// processed (on a replica).
    pub fn offset(&self) -> i64 {
        self.lock().offset
    }

    /// The replication id: the history this server's data belongs to.
    pub fn replid(&self) -> String {
        self.lock().replid.clone()
    }

    /// Sends `PING` to the replicas, if there are any, so that they know
    /// the master is alive (it counts in the offset, like any stream byte).
    pub fn ping_replicas(&self) {
        let mut state = self.lock();
        if !state.replicas.is_empty() {
            let mut bytes = Vec::new();
            resp::encode_command(&[b"ping".to_vec()], &mut bytes);
            state.feed(bytes);
        }
    }

    /// Registers a new replica whose data is the snapshot of `dbs` taken
    /// now, and starts recording changes for it. `dbs` by `&mut` means the
    /// caller holds the write lock, so no change slips between the snapshot
    /// and the subscription. Returns the subscription, the replication id
    /// and the offset the snapshot stands for.
    pub fn subscribe(
        &self,
        dbs: &mut Databases,
        ip: IpAddr,
        port: u16,
    ) -> (Subscription, String, i64) {
        dbs.start_recording();
        let mut state = self.lock();
        state.syncs.full += 1;
        let subscription = state.add_link(ip, port);
        (subscription, state.replid.clone(), state.offset)
    }

    /// A partial resync: if we still hold the stream from `offset` on (the
    /// replica asks for the first byte it lacks) in history `replid`,
    /// subscribe the replica and return what it missed, and our
    /// replication id.
    pub fn subscribe_from(
        &self,
        replid: &[u8],
        offset: i64,
        ip: IpAddr,
        port: u16,
    ) -> Option<(Subscription, Vec<u8>, String)> {
        let mut state = self.lock();
        let accepted = state.resync_from(replid, offset, ip, port);
        if accepted.is_some() {
            state.syncs.partial_ok += 1;
        } else if replid != b"?" {
            state.syncs.partial_err += 1;
        }
        accepted
    }

    /// How replicas' sync requests went.
    pub fn sync_stats(&self) -> SyncStats {
        self.lock().syncs
    }
}

impl State {
    /// [`Replication::subscribe_from`]'s decision, under its lock.
    fn resync_from(
        &mut self,
        replid: &[u8],
        offset: i64,
        ip: IpAddr,
        port: u16,
    ) -> Option<(Subscription, Vec<u8>, String)> {
        let state = self;
        if replid != state.replid.as_bytes() || !matches!(state.role, Role::Master) {
            return None;
        }
        let backlog = state.backlog.as_ref()?;
        let end = backlog.first_byte + backlog.bytes.len() as i64;
        if offset < backlog.first_byte || offset > end {
            return None;
        }
        let skip = (offset - backlog.first_byte) as usize;
        let missed = backlog.bytes.iter().skip(skip).copied().collect();
        let replid = state.replid.clone();
        Some((state.add_link(ip, port), missed, replid))
    }
}

impl Replication {
    /// How many replicas follow this master now.
    pub fn replica_count(&self) -> usize {
        self.lock().replicas.len()
    }

    /// Records a replica's acknowledged offset.
    pub fn ack(&self, id: u64, offset: i64) {
        let mut state = self.lock();
        if let Some(link) = state.replicas.iter_mut().find(|link| link.id == id) {
            link.ack_offset = link.ack_offset.max(offset);
            link.last_ack = Instant::now();
        }
        self.shared.acked.notify_all();
    }

    /// Forgets a replica whose link ended.
    pub fn remove(&self, id: u64) {
        self.lock().replicas.retain(|link| link.id != id);
        self.shared.acked.notify_all();
    }

    /// WAIT: blocks until `needed` replicas have acknowledged `target`, or
    /// `timeout` passes (`None`: no limit). Returns how many have.
    pub fn wait(&self, target: i64, needed: i64, timeout: Option<Duration>) -> i64 {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        let count = |state: &State| {
            state
                .replicas
                .iter()
                .filter(|link| link.ack_offset >= target)
                .count() as i64
        };
        if count(&state) >= needed {
            return count(&state);
        }
        // Ask every replica where it is now, instead of waiting for its
        // next once-a-second ACK.
        let mut getack = Vec::new();
        resp::encode_command(
            &[b"REPLCONF".to_vec(), b"GETACK".to_vec(), b"*".to_vec()],
            &mut getack,
        );
        state.feed(getack);
        loop {
            let have = count(&state);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if have >= needed || left == Some(Duration::ZERO) {
                return have;
            }
            // Wake at least once a second: a replica may also vanish.
            let nap = left
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            state = self
                .shared
                .acked
                .wait_timeout(state, nap)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl State {
    /// Appends bytes to the stream: the offset, the backlog, every replica.
    /// A replica that cannot keep up is dropped; its thread then ends the link.
    fn feed(&mut self, bytes: Vec<u8>) {
        self.offset += bytes.len() as i64;
        if let Some(backlog) = &mut self.backlog {
            backlog.bytes.extend(&bytes);
            let excess = backlog.bytes.len().saturating_sub(BACKLOG_SIZE);
            backlog.bytes.drain(..excess);
            backlog.first_byte += excess as i64;
        }
        let bytes: Arc<[u8]> = bytes.into();
        self.replicas.retain(|link| {
            let queued = link.queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            let within = self.buffer_limit == 0 || queued <= self.buffer_limit;
            within && link.sender.send(Arc::clone(&bytes)).is_ok()
        });
    }

    fn add_link(&mut self, ip: IpAddr, port: u16) -> Subscription {
        self.stream_index = None;
        // The backlog starts with the first replica, at the next byte.
        let offset = self.offset;
        self.backlog.get_or_insert_with(|| Backlog {
            bytes: VecDeque::new(),
            first_byte: offset + 1,
        });
        let (sender, stream) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let id = self.next_link_id;
        self.next_link_id += 1;
        self.replicas.push(Link {
            id,
            ip,
            port,
            sender,
            queued: Arc::clone(&queued),
            ack_offset: 0,
            last_ack: Instant::now(),
        });
        Subscription { id, stream, queued }
    }
}

/// A new replication id: 40 random hex characters. std has no random
/// numbers, but each `RandomState` gets random keys (for hash tables that
/// resist flooding), so hashing a counter with one gives random bits.
pub fn new_replid() -> String {
    let hex: String = (0..3u64)
        .map(|i| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(i);
            format!("{:016x}", hasher.finish())
        })
        .collect();
    hex[..40].to_string()
}

//! Replication state, and the master's side of it: the replication stream,
//! the backlog, the replicas that follow us, their acknowledgements, WAIT,
//! and `INFO replication`.
//!
//! The stream is one ordered sequence of bytes: every change the master
//! makes, as RESP commands. Its length so far is the *replication offset*.
//! Every replica receives the same bytes in the same order, so every
//! replica that has processed N bytes holds the same data.
//!
//! The one rule this depends on: a change enters the stream while the
//! keyspace's write lock that made it is still held. Two writers can then
//! never append in the opposite order from the one they applied in. The
//! rule is not left to a comment: [`Replication::propagate`] takes the
//! changes from the keyspace itself, as `&mut Keyspace`, which only the
//! write lock hands out. (The order in which locks are taken is written
//! once, in `server.rs`.)

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::db::Keyspace;
use crate::log;
use crate::resp::{self, Reply};

/// How much of the stream the backlog keeps for replicas that reconnect.
pub const BACKLOG_SIZE: usize = 1024 * 1024;
/// Stream bytes waiting for one replica before we give up on it (Redis's
/// `client-output-buffer-limit replica 256mb`).
pub const REPLICA_BUFFER_LIMIT: usize = 256 * 1024 * 1024;
/// How often a master pings its replicas (`repl-ping-replica-period`).
pub const PING_PERIOD: Duration = Duration::from_secs(10);

/// A handle on the replication state; clones share it.
#[derive(Clone)]
pub struct Replication {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a replica acknowledges an offset (WAIT sleeps on it).
    acked: Condvar,
}

/// Everything behind the lock.
pub struct State {
    /// Master, or replica of whom.
    pub role: Role,
    /// The history this server's data belongs to: 40 hex characters.
    pub replid: String,
    /// Bytes of the stream produced (on a master) or processed (on a replica).
    pub offset: i64,
    backlog: Option<Backlog>,
    replicas: Vec<Link>,
    next_link_id: u64,
}

/// Which side of replication this server is on.
pub enum Role {
    /// Accepts writes, feeds replicas.
    Master,
    /// Follows a master and refuses client writes.
    Replica(Upstream),
}

/// A replica's view of its master.
pub struct Upstream {
    /// The master's address.
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// Bumped at every REPLICAOF, so an old replica thread knows to stop.
    pub generation: u64,
    /// Is the link up and streaming?
    pub link_up: bool,
    /// When we last heard from the master.
    pub last_io: Instant,
    /// The socket, so REPLICAOF can cut it from another thread.
    pub socket: Option<std::net::TcpStream>,
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
    /// A master with a fresh replication id and an empty stream.
    pub fn new() -> Replication {
        let state = State {
            role: Role::Master,
            replid: new_replid(),
            offset: 0,
            backlog: None,
            replicas: Vec::new(),
            next_link_id: 1,
        };
        Replication {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                acked: Condvar::new(),
            }),
        }
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Is this server a replica (and so read-only to clients)?
    pub fn is_replica(&self) -> bool {
        matches!(self.lock().role, Role::Replica(_))
    }

    /// Moves the changes the keyspace recorded into the stream and sends
    /// them to every replica. Returns the offset after.
    ///
    /// It asks for `&mut Keyspace`, not for the changes: only a write
    /// guard gives that out, so the changes enter the stream while the
    /// lock that made them is still held, and no caller can get this
    /// wrong.
    pub fn propagate(&self, keyspace: &mut Keyspace) -> i64 {
        let changes = keyspace.take_changes();
        let mut state = self.lock();
        if !changes.is_empty() && matches!(state.role, Role::Master) {
            let mut bytes = Vec::new();
            for change in &changes {
                resp::encode_command(change, &mut bytes);
            }
            state.feed(bytes);
        }
        state.offset
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

    /// Registers a new replica whose data is a snapshot of `keyspace`, to be
    /// taken by the caller before it lets go of the lock. The keyspace is
    /// asked for as `&mut Keyspace`, which only the write lock gives out:
    /// so no change can slip between the subscription and the snapshot.
    /// From now on the keyspace records its changes for the stream.
    /// Returns the subscription and the offset the snapshot stands for.
    pub fn subscribe(&self, keyspace: &mut Keyspace, ip: IpAddr, port: u16) -> (Subscription, i64) {
        keyspace.start_recording();
        let mut state = self.lock();
        let subscription = state.add_link(ip, port);
        (subscription, state.offset)
    }

    /// A partial resync: if we still hold the stream from `offset` on (the
    /// replica asks for the first byte it lacks) in history `replid`,
    /// subscribe the replica and return what it missed.
    pub fn subscribe_from(
        &self,
        replid: &[u8],
        offset: i64,
        ip: IpAddr,
        port: u16,
    ) -> Option<(Subscription, Vec<u8>)> {
        let mut state = self.lock();
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
        Some((state.add_link(ip, port), missed))
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

    /// Becomes a master: keeps the data and the offset, starts a new history.
    pub fn promote(&self) {
        let mut state = self.lock();
        if let Role::Replica(upstream) = &state.role {
            if let Some(socket) = &upstream.socket {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
        }
        state.role = Role::Master;
        state.replid = new_replid();
        log::set_replica(false);
    }

    /// Becomes (or stays) a replica of `host:port`; returns the generation
    /// the new replica thread must carry, or `None` if nothing changed.
    pub fn follow(&self, host: &str, port: u16) -> Option<u64> {
        let mut state = self.lock();
        let generation = match &state.role {
            Role::Replica(upstream) if upstream.host == host && upstream.port == port => {
                return None;
            }
            Role::Replica(upstream) => {
                if let Some(socket) = &upstream.socket {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
                upstream.generation + 1
            }
            Role::Master => 1,
        };
        // Our own replicas followed the old history: let them go.
        state.replicas.clear();
        log::set_replica(true);
        state.role = Role::Replica(Upstream {
            host: host.to_string(),
            port,
            generation,
            link_up: false,
            last_io: Instant::now(),
            socket: None,
        });
        Some(generation)
    }

    /// The `# Replication` section of INFO.
    pub fn info(&self) -> String {
        let state = self.lock();
        let mut out = String::from("# Replication\r\n");
        let mut line = |text: String| {
            out.push_str(&text);
            out.push_str("\r\n");
        };
        match &state.role {
            Role::Master => {
                line("role:master".into());
                line(format!("connected_slaves:{}", state.replicas.len()));
                for (i, link) in state.replicas.iter().enumerate() {
                    line(format!(
                        "slave{i}:ip={},port={},state=online,offset={},lag={}",
                        link.ip,
                        link.port,
                        link.ack_offset,
                        link.last_ack.elapsed().as_secs()
                    ));
                }
            }
            Role::Replica(upstream) => {
                line("role:slave".into());
                line(format!("master_host:{}", upstream.host));
                line(format!("master_port:{}", upstream.port));
                let status = if upstream.link_up { "up" } else { "down" };
                line(format!("master_link_status:{status}"));
                let last_io = if upstream.link_up {
                    upstream.last_io.elapsed().as_secs() as i64
                } else {
                    -1
                };
                line(format!("master_last_io_seconds_ago:{last_io}"));
                line(format!(
                    "master_sync_in_progress:{}",
                    u8::from(!upstream.link_up)
                ));
                line(format!("slave_read_repl_offset:{}", state.offset));
                line(format!("slave_repl_offset:{}", state.offset));
                line("slave_priority:100".into());
                line("slave_read_only:1".into());
                line("replica_announced:1".into());
                line("connected_slaves:0".into());
            }
        }
        line("master_failover_state:no-failover".into());
        line(format!("master_replid:{}", state.replid));
        line(format!("master_replid2:{}", "0".repeat(40)));
        line(format!("master_repl_offset:{}", state.offset));
        line("second_repl_offset:-1".into());
        let (active, first, histlen) = match &state.backlog {
            Some(backlog) => (1, backlog.first_byte, backlog.bytes.len()),
            None => (0, 0, 0),
        };
        line(format!("repl_backlog_active:{active}"));
        line(format!("repl_backlog_size:{BACKLOG_SIZE}"));
        line(format!("repl_backlog_first_byte_offset:{first}"));
        line(format!("repl_backlog_histlen:{histlen}"));
        out
    }

    /// The reply to ROLE.
    pub fn role_reply(&self) -> Reply {
        let state = self.lock();
        match &state.role {
            Role::Master => Reply::Array(vec![
                Reply::bulk("master"),
                Reply::Integer(state.offset),
                Reply::Array(
                    state
                        .replicas
                        .iter()
                        .map(|link| {
                            Reply::Array(vec![
                                Reply::bulk(link.ip.to_string()),
                                Reply::bulk(link.port.to_string()),
                                Reply::bulk(link.ack_offset.to_string()),
                            ])
                        })
                        .collect(),
                ),
            ]),
            Role::Replica(upstream) => Reply::Array(vec![
                Reply::bulk("slave"),
                Reply::bulk(upstream.host.as_str()),
                Reply::Integer(i64::from(upstream.port)),
                Reply::bulk(if upstream.link_up {
                    "connected"
                } else {
                    "connecting"
                }),
                Reply::Integer(state.offset),
            ]),
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
            queued <= REPLICA_BUFFER_LIMIT && link.sender.send(Arc::clone(&bytes)).is_ok()
        });
    }

    fn add_link(&mut self, ip: IpAddr, port: u16) -> Subscription {
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
fn new_replid() -> String {
    let hex: String = (0..3u64)
        .map(|i| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(i);
            format!("{:016x}", hasher.finish())
        })
        .collect();
    hex[..40].to_string()
}

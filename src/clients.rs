//! The connected clients: ids, names, what CLIENT LIST shows, MONITOR,
//! and the counters INFO reports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::acl_log::AclLog;
use crate::socket::{Traffic, BUFFER};
use crate::sync::lock;
use std::time::Instant;

/// A MONITOR: its client id, and where its lines go.
type Monitor = (u64, Sender<Arc<[u8]>>);

/// Every connected client, and server-wide counters.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    list: Mutex<HashMap<u64, Arc<Client>>>,
    monitors: Mutex<Vec<Monitor>>,
    /// How many monitors there are, read without a lock on every command.
    monitor_count: AtomicUsize,
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected: AtomicU64,
    /// Commands run since start.
    pub commands_processed: AtomicU64,
    /// Failed authentications (ACL LOG).
    pub acl_log: AclLog,
    /// Bytes read from and sent to clients that have left (the others'
    /// are in their own [`Traffic`]).
    departed: (AtomicU64, AtomicU64),
    /// Connection threads not asleep waiting for their client: a thread
    /// with nothing to do yields the CPU while others are awake, and only
    /// then sleeps (see `socket.rs`).
    pub awake: AtomicUsize,
}

/// One client, as CLIENT LIST describes it.
pub struct Client {
    /// Unique, increasing id (CLIENT ID).
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// Our address on this connection.
    pub laddr: SocketAddr,
    /// When it connected.
    pub created: Instant,
    /// The bytes through its socket.
    pub traffic: Traffic,
    /// What changes as it works.
    pub state: Mutex<ClientState>,
}

/// The parts of a client that change.
pub struct ClientState {
    /// CLIENT SETNAME's name.
    pub name: Vec<u8>,
    /// The selected database.
    pub selected: usize,
    /// The last command's name.
    pub last_command: &'static str,
    /// When the last command arrived.
    pub last_active: Instant,
    /// Is it a replica, a monitor, or in MULTI? (CLIENT LIST's flags)
    pub flags: &'static str,
    /// The protocol it speaks: 2, or 3 after HELLO 3.
    pub resp: u8,
    /// How many channels, patterns and shard channels it is subscribed to.
    pub subscriptions: (usize, usize, usize),
}

impl Clients {
    /// Registers a new connection; it is forgotten when the guard drops.
    pub fn register(self: &Arc<Self>, addr: SocketAddr, laddr: SocketAddr) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let client = Arc::new(Client {
            id,
            addr,
            laddr,
            created: now,
            traffic: Traffic::default(),
            state: Mutex::new(ClientState {
                name: Vec::new(),
                selected: 0,
                last_command: "NULL",
                last_active: now,
                flags: "N",
                resp: 2,
                subscriptions: (0, 0, 0),
            }),
        });
        lock(&self.list).insert(id, Arc::clone(&client));
        self.connections_received.fetch_add(1, Ordering::Relaxed);
        Registration {
            clients: Arc::clone(self),
            client,
        }
    }

    /// How many clients are connected.
    pub fn count(&self) -> usize {
        lock(&self.list).len()
    }

    /// Bytes read from clients since start, and bytes sent to them
    /// (INFO's `total_net_input_bytes` and `total_net_output_bytes`).
    pub fn net_bytes(&self) -> (u64, u64) {
        // Read under the registry's lock, so that a client leaving now is
        // counted once: as departed or as connected, not both.
        let list = lock(&self.list);
        let (mut received, mut sent) = (
            self.departed.0.load(Ordering::Relaxed),
            self.departed.1.load(Ordering::Relaxed),
        );
        for client in list.values() {
            received += client.traffic.received.load(Ordering::Relaxed);
            sent += client.traffic.sent.load(Ordering::Relaxed);
        }
        (received, sent)
    }

    /// Every client, oldest first.
    pub fn all(&self) -> Vec<Arc<Client>> {
        let mut all: Vec<_> = lock(&self.list).values().cloned().collect();
        all.sort_by_key(|client| client.id);
        all
    }

    /// Adds a MONITOR: it receives a line for every command run from now on.
    pub fn add_monitor(&self, id: u64, sender: Sender<Arc<[u8]>>) {
        lock(&self.monitors).push((id, sender));
        self.monitor_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends a command to the monitors, if there are any. `args` are the
    /// command's arguments, `selected` and `addr` its client's.
    pub fn feed_monitors(&self, selected: usize, addr: &SocketAddr, args: &[Vec<u8>]) {
        if self.monitor_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = format!(
            "+{}.{:06} [{selected} {addr}]",
            now.as_secs(),
            now.subsec_micros()
        )
        .into_bytes();
        for arg in args {
            line.push(b' ');
            line.extend_from_slice(&quote(arg));
        }
        line.extend_from_slice(b"\r\n");
        let line: Arc<[u8]> = line.into();
        let mut monitors = lock(&self.monitors);
        monitors.retain(|(_, sender)| sender.send(Arc::clone(&line)).is_ok());
        self.monitor_count.store(monitors.len(), Ordering::Relaxed);
    }
}

impl Client {
    /// This client's line in CLIENT LIST (without the newline).
    ///
    /// `omem` is the reply bytes the kernel has not taken yet (the client
    /// does not read); `tot-mem` adds the read and write buffers.
    pub fn describe(&self) -> String {
        let state = lock(&self.state);
        let omem = self.traffic.waiting.load(Ordering::Relaxed);
        let tot_mem = omem + 2 * BUFFER as u64;
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs={BUFFER} rbp=0 obl=0 oll={} omem={omem} tot-mem={tot_mem} events={} cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&state.name),
            self.created.elapsed().as_secs(),
            state.last_active.elapsed().as_secs(),
            state.flags,
            state.selected,
            state.subscriptions.0,
            state.subscriptions.1,
            state.subscriptions.2,
            u8::from(omem > 0),
            if omem > 0 { "rw" } else { "r" },
            state.last_command,
            state.resp,
        )
    }
}

/// A client's place in the registry; dropping it (even while unwinding
/// from a panic) removes the client.
pub struct Registration {
    clients: Arc<Clients>,
    /// The registered client.
    pub client: Arc<Client>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut list = lock(&self.clients.list);
        let traffic = &self.client.traffic;
        let departed = &self.clients.departed;
        departed
            .0
            .fetch_add(traffic.received.load(Ordering::Relaxed), Ordering::Relaxed);
        departed
            .1
            .fetch_add(traffic.sent.load(Ordering::Relaxed), Ordering::Relaxed);
        list.remove(&self.client.id);
    }
}

/// Quotes an argument as Redis's `sdscatrepr` does for MONITOR.
fn quote(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

//! The replica's side of the replication state: which master it follows,
//! whether the link is up, and how far into the master's stream it got.
//! The replica thread (`replica.rs`) changes it only through these methods.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Instant;

use super::{new_replid, Replication, Role};
use crate::log;

/// A replica's view of its master.
pub(super) struct Upstream {
    /// The master's address.
    pub(super) host: String,
    /// The master's port.
    pub(super) port: u16,
    /// Bumped at every REPLICAOF, so an old replica thread knows to stop.
    pub(super) generation: u64,
    /// Is the link up and streaming?
    pub(super) link_up: bool,
    /// When we last heard from the master.
    pub(super) last_io: Instant,
    /// The socket, so REPLICAOF can cut it from another thread.
    socket: Option<TcpStream>,
}

impl Upstream {
    /// Cuts the link, so that the thread reading it stops.
    fn cut(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// The master a replica thread must follow: REPLICAOF's arguments and the
/// generation that names this particular REPLICAOF.
pub struct Target {
    /// The master's address.
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// The generation; a thread whose generation is no longer current stops.
    pub generation: u64,
}

impl Replication {
    /// Becomes a master: keeps the data and the offset, starts a new history.
    pub fn promote(&self) {
        let mut state = self.lock();
        if let Role::Replica(upstream) = &state.role {
            upstream.cut();
        }
        state.role = Role::Master;
        self.shared.replica.store(false, Ordering::Release);
        state.replid = new_replid();
        log::set_replica(false);
    }

    /// Becomes (or stays) a replica of `host:port`. Says whether anything
    /// changed; if it did, the replica supervisor (see
    /// [`Replication::next_target`]) starts a thread for the new master.
    pub fn follow(&self, host: &str, port: u16) -> bool {
        let mut state = self.lock();
        let generation = match &state.role {
            Role::Replica(upstream) if upstream.host == host && upstream.port == port => {
                return false;
            }
            Role::Replica(upstream) => {
                upstream.cut();
                upstream.generation + 1
            }
            Role::Master => state.last_generation + 1,
        };
        state.last_generation = generation;
        // Our own replicas followed the old history: let them go.
        state.replicas.clear();
        log::set_replica(true);
        self.shared.replica.store(true, Ordering::Release);
        state.role = Role::Replica(Upstream {
            host: host.to_string(),
            port,
            generation,
            link_up: false,
            last_io: Instant::now(),
            socket: None,
        });
        self.shared.upstream_changed.notify_all();
        true
    }

    /// Waits until this server follows a master under a generation newer
    /// than `seen`, and returns it.
    pub fn next_target(&self, seen: u64) -> Target {
        let mut state = self.lock();
        loop {
            if let Role::Replica(upstream) = &state.role {
                if upstream.generation > seen {
                    return Target {
                        host: upstream.host.clone(),
                        port: upstream.port,
                        generation: upstream.generation,
                    };
                }
            }
            state = self
                .shared
                .upstream_changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Is `generation` still the master this server follows?
    pub fn is_current(&self, generation: u64) -> bool {
        matches!(&self.lock().role, Role::Replica(up) if up.generation == generation)
    }

    /// Records the link's state, for INFO and for REPLICAOF to cut it;
    /// ignored if `generation` is no longer current.
    pub fn set_link(&self, generation: u64, up: bool, socket: Option<TcpStream>) {
        let mut state = self.lock();
        if let Role::Replica(upstream) = &mut state.role {
            if upstream.generation == generation {
                upstream.link_up = up;
                upstream.last_io = Instant::now();
                if socket.is_some() {
                    upstream.socket = socket;
                }
            }
        }
    }

    /// A full sync loaded the master's snapshot of history `replid`, which
    /// stands for `offset` bytes of its stream.
    pub fn synced(&self, replid: &str, offset: i64) {
        let mut state = self.lock();
        state.replid = replid.to_string();
        state.offset = offset;
    }

    /// A partial resync goes on with the stream; a PSYNC2 master names its
    /// history, which may have changed.
    pub fn continued(&self, replid: Option<&str>) {
        if let Some(replid) = replid {
            self.lock().replid = replid.to_string();
        }
    }

    /// The replica processed `bytes` more bytes of the master's stream.
    pub fn processed(&self, bytes: i64) {
        let mut state = self.lock();
        state.offset += bytes;
        if let Role::Replica(upstream) = &mut state.role {
            upstream.last_io = Instant::now();
        }
    }
}

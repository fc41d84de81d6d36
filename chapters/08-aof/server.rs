//! The handle every thread shares, and the accept loop: one thread per
//! connection.
//!
//! # Lock order
//!
//! The shared state sits behind several locks. A thread that needs more
//! than one takes them in this order, and never the other way round, so
//! that two threads can never each hold the lock the other waits for:
//!
//! 1. a save's turn (`persistence.writing`: saves take turns);
//! 2. the keyspace (`db`, a read-write lock);
//! 3. the replication state (`replication`);
//! 4. the append-only file (`aof`);
//! 5. the persistence state (`persistence`).
//!
//! And never the keyspace twice: its lock is not reentrant, so a thread
//! that locks it again while it holds it waits for itself forever. Where a
//! rule would otherwise live only in a comment, a type carries it:
//! `Replication::propagate` and `Replication::subscribe` take the locked
//! keyspace (`&mut Keyspace`) instead of locking anything themselves. No
//! lock is held while writing to a socket.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::aof::Aof;
use crate::config::Config;
use crate::connection;
use crate::db::Db;
use crate::error::Error;
use crate::log;
use crate::persist::Persistence;
use crate::replication::Replication;

/// What every connection shares: the data, the replication state and the
/// configuration. Cloning it is cheap and shares them.
#[derive(Clone)]
pub struct Server {
    /// The keyspace.
    pub db: Db,
    /// Master or replica, the stream, the replicas.
    pub replication: Replication,
    /// The options the server started with.
    pub config: Arc<Config>,
    /// When we last saved, and whether a save is running.
    pub persistence: Arc<Persistence>,
    /// The append-only file (also fed by `replication`, see `aof.rs`).
    pub aof: Aof,
}

impl Server {
    /// A fresh master with no data.
    pub fn new(config: Config) -> Server {
        let aof = Aof::new(&config);
        Server {
            db: Db::default(),
            replication: Replication::new().feeding(aof.clone()),
            config: Arc::new(config),
            persistence: Arc::new(Persistence::new()),
            aof,
        }
    }
}

/// Stack size for connection threads. A connection needs little stack, and
/// the default 2 MiB (virtual, but still reserved) adds up with thousands
/// of clients.
const CONNECTION_STACK: usize = 256 * 1024;

/// Listens and serves until the process is stopped. Every connection
/// shares `server`.
pub fn run(server: Server) -> Result<(), Error> {
    let config = &server.config;
    let listener = TcpListener::bind((config.bind.as_str(), config.port))?;
    log::notice(format!("Listening on {}", listener.local_addr()?));
    log::notice("Ready to accept connections");

    let mut backoff = Backoff::default();
    for (id, stream) in (1u64..).zip(listener.incoming()) {
        // A failed accept (for example, out of file descriptors) concerns
        // one would-be client: keep serving the others. But it fails again
        // at once while the cause lasts, so wait before the next try.
        let stream = match stream {
            Ok(stream) => {
                if let Some(failures) = backoff.succeeded() {
                    log::notice(format!("Accepting again after {failures} failed accepts"));
                }
                stream
            }
            Err(e) => {
                let (delay, first) = backoff.failed();
                if first {
                    log::warning(format!(
                        "Accepting client connection: {e} (retrying, less and less often)"
                    ));
                }
                thread::sleep(delay);
                continue;
            }
        };
        let server = server.clone();
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                if let Err(e) = connection::serve(stream, server) {
                    log::warning(format!("Client {id}: {e}"));
                }
            });
        if let Err(e) = spawned {
            log::warning(format!("Cannot start a thread for client {id}: {e}"));
        }
    }
    Ok(())
}

/// How long the accept loop waits after a failed accept. The causes (out of
/// file descriptors, out of memory) last a while, and `accept` fails at once
/// for as long as they do: retrying at once would spin a core and log a line
/// per failure, millions of them. So the wait starts at 1 ms and doubles
/// with each failure in a row, up to 1 s; a success resets it. Only the
/// first failure of a burst is logged.
#[derive(Debug, Default)]
struct Backoff {
    /// The wait after the last failure; `None` while accepts succeed.
    delay: Option<Duration>,
    /// Failures since the last success.
    failures: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_secs(1);

    /// Records a failed accept: how long to wait before the next one, and
    /// whether this failure starts a burst (the one worth logging).
    fn failed(&mut self) -> (Duration, bool) {
        let first = self.delay.is_none();
        let delay = self.delay.map_or(Self::FIRST, |d| (d * 2).min(Self::MAX));
        self.delay = Some(delay);
        self.failures += 1;
        (delay, first)
    }

    /// Records a successful accept; if it ends a burst, how many failed.
    fn succeeded(&mut self) -> Option<u64> {
        self.delay.take()?;
        Some(std::mem::take(&mut self.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_a_second_and_a_success_resets_it() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.succeeded(), None, "no burst, nothing to report");
        assert_eq!(backoff.failed(), (Duration::from_millis(1), true));
        assert_eq!(backoff.failed(), (Duration::from_millis(2), false));
        assert_eq!(backoff.failed(), (Duration::from_millis(4), false));
        for _ in 0..20 {
            backoff.failed();
        }
        assert_eq!(backoff.failed(), (Duration::from_secs(1), false));
        assert_eq!(backoff.succeeded(), Some(24));
        assert_eq!(backoff.failed(), (Duration::from_millis(1), true));
    }
}

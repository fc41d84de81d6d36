//! The accept loop: one thread per connection.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

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
}

impl Server {
    /// A fresh master with no data.
    pub fn new(config: Config) -> Server {
        Server {
            db: Db::default(),
            replication: Replication::new(),
            config: Arc::new(config),
            persistence: Arc::new(Persistence::new()),
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

    for (id, stream) in (1u64..).zip(listener.incoming()) {
        // A failed accept (for example, out of file descriptors) concerns
        // one would-be client: log it and keep serving the others.
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::warning(format!("Accepting client connection: {e}"));
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

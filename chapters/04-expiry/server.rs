//! The accept loop: one thread per connection.

use std::net::TcpListener;
use std::thread;

use crate::config::Config;
use crate::connection;
use crate::db::Db;
use crate::error::Error;
use crate::log;

/// Stack size for connection threads. A connection needs little stack, and
/// the default 2 MiB (virtual, but still reserved) adds up with thousands
/// of clients.
const CONNECTION_STACK: usize = 256 * 1024;

/// Listens and serves until the process is stopped. Every connection
/// shares the one keyspace, `db`.
pub fn run(config: &Config, db: Db) -> Result<(), Error> {
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
        let db = db.clone();
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                if let Err(e) = connection::serve(stream, db) {
                    log::warning(format!("Client {id}: {e}"));
                }
            });
        if let Err(e) = spawned {
            log::warning(format!("Cannot start a thread for client {id}: {e}"));
        }
    }
    Ok(())
}

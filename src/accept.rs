//! The accept loops: one per `bind` address, one thread per connection.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::alloc;
use crate::connection;
use crate::error::Error;
use crate::listen::Retirement;
use crate::log;
use crate::server::Server;

/// Stack size for connection threads. A connection needs little stack, and
/// the default 2 MiB (virtual, but still reserved) adds up with thousands
/// of clients.
const CONNECTION_STACK: usize = 128 * 1024;

/// Listens on every `bind` address and serves until the process ends.
///
/// Each listening socket gets an accept loop of its own thread, which
/// CONFIG SET port or bind may replace (see `listen.rs`); this thread has
/// nothing left to do but wait.
pub fn run(server: Server) -> Result<(), Error> {
    let loops = server.clone();
    server
        .listeners
        .start(Box::new(move |listener, retirement| {
            let server = loops.clone();
            thread::Builder::new()
                .name("accept".into())
                .spawn(move || accept_loop(&listener, &server, &retirement))
                .map(drop)
        }))?;
    check_somaxconn(server.config.tcp_backlog);
    log::notice("Ready to accept connections");
    loop {
        thread::park();
    }
}

/// The first pause after a failed accept; each failure in a row doubles
/// it, up to `ACCEPT_MAX_PAUSE` (as tokio's mini-redis does).
const ACCEPT_FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two accepts that fail.
const ACCEPT_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Accepts connections and gives each a thread.
///
/// A failed accept (out of file descriptors, say) is not fatal, but the
/// condition usually lasts: retrying at once would spin a core and flood
/// the log. So the loop pauses, longer after each failure in a row, logs
/// the first failure of a burst only, and is back to full speed after the
/// next success.
fn accept_loop(listener: &TcpListener, server: &Server, retirement: &Retirement) {
    let mut pause = ACCEPT_FIRST_PAUSE;
    let mut failures: u64 = 0;
    for stream in listener.incoming() {
        // The socket is being closed (CONFIG SET port): a connection that
        // came in meanwhile is closed with it, as in Redis.
        if retirement.due() {
            return;
        }
        match stream {
            Ok(stream) => match start_connection(stream, server) {
                Ok(()) => {
                    if failures > 0 {
                        log::notice(format!(
                            "Accepting client connections again, after {failures} failed attempts"
                        ));
                    }
                    failures = 0;
                    pause = ACCEPT_FIRST_PAUSE;
                }
                // Accepted, but no thread for it: the same shortage as a
                // failed accept, and it lasts as long.
                Err(e) => {
                    if failures == 0 {
                        log::warning(format!("Cannot start a thread for a client: {e}"));
                    }
                    failures += 1;
                    thread::sleep(pause);
                    pause = (pause * 2).min(ACCEPT_MAX_PAUSE);
                }
            },
            Err(e) => {
                if failures == 0 {
                    log::warning(format!("Accepting client connection: {e}"));
                }
                failures += 1;
                thread::sleep(pause);
                pause = (pause * 2).min(ACCEPT_MAX_PAUSE);
            }
        }
    }
}

/// Redis's answer to a client over `maxclients` (or one that cannot get
/// a thread), sent before the connection is closed.
const TOO_MANY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Registers a client and starts its thread, or refuses it over
/// `maxclients`. Err only if the thread could not start: the client got
/// the refusal, and the accept loop backs off.
fn start_connection(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    if server.clients.count() >= server.settings.maxclients() {
        server.clients.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(TOO_MANY);
        return Ok(());
    }
    let (Ok(addr), Ok(laddr)) = (stream.peer_addr(), stream.local_addr()) else {
        return Ok(()); // gone already
    };
    let registration = server.clients.register(addr, laddr);
    let id = registration.client.id;
    let shared = server.clone();
    // The stream goes to the thread once the thread exists, so that if it
    // cannot start, the stream is still here to answer the client.
    let (handover, handed) = mpsc::sync_channel::<TcpStream>(1);
    let spawned = thread::Builder::new()
        .name(format!("client-{id}"))
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let Ok(stream) = handed.recv() else {
                return;
            };
            // A bug that panics must cost one connection, never the server:
            // catch the unwind, log it, and let the registration go.
            let served = panic::catch_unwind(AssertUnwindSafe(|| {
                connection::serve(stream, &shared, &registration)
            }));
            match served {
                // A socket error ends one client; Redis logs that only at
                // verbose level, so do we: not at all.
                Ok(_) => {}
                Err(_) => log::warning(format!(
                    "Client {id}: the connection's thread panicked; connection closed"
                )),
            }
            // What this thread allocated and freed, into INFO's used_memory.
            alloc::settle();
        });
    match spawned {
        Ok(_) => {
            // The channel has room for it: this cannot block or fail
            // while the thread lives.
            let _ = handover.send(stream);
            Ok(())
        }
        Err(e) => {
            server.clients.rejected.fetch_add(1, Ordering::Relaxed);
            let _ = stream.write_all(TOO_MANY);
            Err(e)
        }
    }
}

/// Warns, in Redis's words, when the kernel caps the listen queue below
/// `tcp-backlog` (`net.core.somaxconn`): the kernel silently shortens it.
fn check_somaxconn(backlog: u32) {
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") else {
        return; // not Linux, or no /proc: nothing to check
    };
    if let Ok(somaxconn) = text.trim().parse::<u32>() {
        if somaxconn > 0 && somaxconn < backlog {
            log::warning(format!("WARNING: The TCP backlog setting of {backlog} cannot be enforced because /proc/sys/net/core/somaxconn is set to the lower value of {somaxconn}."));
        }
    }
}

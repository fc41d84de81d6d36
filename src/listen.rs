//! The listening sockets: the addresses and the port the server listens
//! on, and moving them while it runs (CONFIG SET port, CONFIG SET bind).
//!
//! Each listening socket has its own accept loop, in its own thread
//! (`accept.rs` starts it). To move to a new port, the new sockets are
//! opened first, and only once they all listen are the old ones closed, as
//! Redis does: if the port is taken, nothing changes, and clients already
//! connected stay connected either way. A new `bind` on the same port must
//! close the old sockets first (two sockets cannot listen on one address);
//! if the new addresses cannot be bound, the old ones are opened again.
//!
//! Closing a socket another thread waits on in `accept` is the tricky
//! part: std can neither interrupt the wait nor close the socket from
//! outside. So the loop is marked retired, and the socket is shut down
//! for reading through a second handle on it: Linux then ends the waiting
//! `accept` with an error, the loop sees the mark and returns, and the
//! socket is closed when its last handle goes.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::log;
use crate::sync::lock;
use crate::sys;

/// Starts an accept loop on a listening socket; the loop must return once
/// its [`Retirement`] is due.
pub type Spawn = Box<dyn Fn(TcpListener, Retirement) -> io::Result<()> + Send + Sync>;

/// How long a rebind waits for an old accept loop to let go of its socket.
const RETIRE_WAIT: Duration = Duration::from_secs(2);

/// The server's listening sockets.
pub struct Listeners {
    state: Mutex<Listening>,
    /// Given by `accept.rs` when the server starts.
    spawn: OnceLock<Spawn>,
}

/// Where the server listens now.
struct Listening {
    bind: Vec<String>,
    port: u16,
    /// The listen queue's length (`tcp-backlog`), for every socket opened.
    backlog: u32,
    open: Vec<Open>,
}

/// One listening socket and its accept loop.
struct Open {
    /// A second handle on the socket, to shut it down.
    socket: TcpListener,
    retired: Arc<AtomicBool>,
    /// Disconnected when the accept loop has returned.
    ended: Receiver<()>,
}

/// What an accept loop holds: it says when the loop must stop, and its
/// drop tells [`Listeners`] the loop is over.
pub struct Retirement {
    retired: Arc<AtomicBool>,
    _alive: Sender<()>,
}

impl Retirement {
    /// Must the loop stop (its socket is being closed)?
    pub fn due(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

impl Listeners {
    /// Not listening yet; [`Listeners::start`] opens `bind` on `port`.
    pub fn new(bind: Vec<String>, port: u16, backlog: u32) -> Listeners {
        Listeners {
            state: Mutex::new(Listening {
                bind,
                port,
                backlog,
                open: Vec::new(),
            }),
            spawn: OnceLock::new(),
        }
    }

    /// The port the server listens on (CONFIG GET port, INFO's tcp_port).
    pub fn port(&self) -> u16 {
        lock(&self.state).port
    }

    /// The addresses the server listens on (CONFIG GET bind).
    pub fn bind(&self) -> Vec<String> {
        lock(&self.state).bind.clone()
    }

    /// Opens the configured addresses and starts an accept loop on each
    /// with `spawn`, which later rebinds use too.
    pub fn start(&self, spawn: Spawn) -> io::Result<()> {
        let mut state = lock(&self.state);
        let spawn = self.spawn.get_or_init(|| spawn);
        let sockets = open(&state.bind, state.port, state.backlog)?;
        state.open = run(spawn, sockets)?;
        Ok(())
    }

    /// CONFIG SET port / bind: listens on `bind` and `port` instead, or
    /// changes nothing and returns Redis's error. Port 0 closes every
    /// listening socket, as in Redis.
    pub fn rebind(&self, bind: Vec<String>, port: u16) -> Result<(), String> {
        let mut state = lock(&self.state);
        if bind == state.bind && port == state.port {
            return Ok(());
        }
        let Some(spawn) = self.spawn.get() else {
            // Not serving yet (a unit test): just remember.
            (state.bind, state.port) = (bind, port);
            return Ok(());
        };
        // The socket's error is already in the log, from `open`.
        let failed = |what: &str| {
            log::warning(format!("Failed applying new configuration. Possibly related to new {what} setting. Restoring previous settings."));
        };
        if port != state.port {
            // Open first, then close: a port that is taken changes nothing.
            let sockets = match open(&bind, port, state.backlog) {
                Ok(sockets) => sockets,
                Err(_) => {
                    failed("port");
                    return Err("Unable to listen on this port. Check server logs.".into());
                }
            };
            retire(std::mem::take(&mut state.open));
            state.open = run(spawn, sockets).map_err(|e| e.to_string())?;
        } else {
            // The same port: the old sockets hold it until they close.
            retire(std::mem::take(&mut state.open));
            match open(&bind, port, state.backlog).and_then(|sockets| run(spawn, sockets)) {
                Ok(open) => state.open = open,
                Err(_) => {
                    failed("bind");
                    let again = open(&state.bind, state.port, state.backlog);
                    state.open = again
                        .and_then(|sockets| run(spawn, sockets))
                        .unwrap_or_default();
                    return Err("Failed to bind to specified addresses.".into());
                }
            }
        }
        (state.bind, state.port) = (bind, port);
        Ok(())
    }
}

/// Binds each address on `port` (none for port 0). As at start, an address
/// that cannot be bound is skipped with a warning if another can be. Each
/// socket listens with a queue of `backlog` (std's own is 128).
fn open(bind: &[String], port: u16, backlog: u32) -> io::Result<Vec<TcpListener>> {
    if port == 0 {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    let mut last_error = None;
    for addr in bind {
        match TcpListener::bind((addr.as_str(), port)) {
            Ok(socket) => {
                sys::set_backlog(&socket, backlog)?;
                log::notice(format!("Listening on {}", socket.local_addr()?));
                sockets.push(socket);
            }
            Err(e) => {
                log::warning(format!(
                    "Could not create server TCP listening socket {addr}:{port}: bind: {e}"
                ));
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) if sockets.is_empty() || bind.len() == 1 => Err(e),
        _ if sockets.is_empty() => Err(io::Error::other("no address to listen on")),
        _ => Ok(sockets),
    }
}

/// Starts an accept loop on each socket.
fn run(spawn: &Spawn, sockets: Vec<TcpListener>) -> io::Result<Vec<Open>> {
    let mut open = Vec::new();
    for socket in sockets {
        let retired = Arc::new(AtomicBool::new(false));
        let (alive, ended) = mpsc::channel();
        let handle = socket.try_clone()?;
        spawn(
            socket,
            Retirement {
                retired: Arc::clone(&retired),
                _alive: alive,
            },
        )?;
        open.push(Open {
            socket: handle,
            retired,
            ended,
        });
    }
    Ok(open)
}

/// Stops the accept loops and closes their sockets; waits (a little) until
/// each loop has let go of its socket.
fn retire(open: Vec<Open>) {
    for listener in &open {
        listener.retired.store(true, Ordering::Release);
        if let Ok(addr) = listener.socket.local_addr() {
            log::notice(format!("Closing the listening socket {addr}"));
        }
        wake(&listener.socket);
    }
    for listener in open {
        // Disconnected when the loop returns; a timeout means it is busy
        // elsewhere, and will see the mark when it comes back.
        let _ = listener.ended.recv_timeout(RETIRE_WAIT);
    }
}

/// Ends an `accept` another thread waits in on `socket`: shuts the socket
/// down for reading, through a handle of its own.
fn wake(socket: &TcpListener) {
    let Ok(handle) = socket.try_clone() else {
        return;
    };
    // SAFETY: `into_raw_fd` hands over a descriptor we own, of a socket;
    // the stream becomes its only owner and closes it when dropped. Only
    // `shutdown` is called on it, which any socket accepts.
    let handle = unsafe { TcpStream::from_raw_fd(handle.into_raw_fd()) };
    // On Linux, shutting down a listening socket ends the waiting
    // `accept` with EINVAL; the loop then sees it is retired.
    let _ = handle.shutdown(Shutdown::Read);
}

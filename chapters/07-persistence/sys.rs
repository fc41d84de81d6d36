//! The one call into the operating system that std does not offer here:
//! catching the signals that ask a server to stop.
//!
//! std has no signal API, and this project takes no crates, so the C
//! library's `signal` function is declared here by hand with `extern "C"`,
//! as the `libc` crate would declare it. A declaration is a promise the
//! compiler cannot check: the types and the constants must match the C
//! library's for this platform. They are Linux's (glibc or musl) on
//! x86_64 and aarch64, and macOS's too: `SIGINT` 2, `SIGTERM` 15. The one
//! `unsafe` block is here, behind a safe function.

use std::ffi::c_int;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

#[cfg(not(any(
    all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ),
    target_os = "macos"
)))]
compile_error!("sys.rs declares libc's constants for Linux on x86_64/aarch64 and macOS only");

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
/// What `signal` returns when it fails: `(sighandler_t) -1`.
const SIG_ERR: usize = usize::MAX;

extern "C" {
    /// Installs `handler` (a function pointer, as an address) for `signum`.
    /// glibc and musl give it BSD semantics: the handler stays installed,
    /// and interrupted system calls restart.
    fn signal(signum: c_int, handler: usize) -> usize;
}

/// A signal that asks the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl+C in a terminal.
    Int,
    /// SIGTERM: what `kill`, systemd and `docker stop` send.
    Term,
}

impl Signal {
    /// The signal's name, as Redis logs it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }
}

/// The last stop signal received and not yet taken (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);

/// The handler. A signal interrupts a thread anywhere, perhaps in the
/// middle of `malloc` or holding the lock on stderr, so a handler may only
/// do what cannot deadlock or corrupt: no allocation, no lock, no
/// formatting, no logging. Storing to an atomic is safe, so that is all
/// this one does; a thread that polls [`take_signal`] does the rest.
extern "C" fn on_stop_signal(signum: c_int) {
    PENDING.store(signum, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM, which would otherwise end the process at
/// once: from now on they are only recorded, for [`take_signal`].
pub fn catch_stop_signals() -> io::Result<()> {
    let handler = on_stop_signal as extern "C" fn(c_int) as usize;
    for signum in [SIGINT, SIGTERM] {
        // SAFETY: the handler is a plain function that only touches an atomic.
        if unsafe { signal(signum, handler) } == SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The stop signal received since the last call, if any.
pub fn take_signal() -> Option<Signal> {
    match PENDING.swap(0, Ordering::SeqCst) {
        SIGINT => Some(Signal::Int),
        SIGTERM => Some(Signal::Term),
        _ => None,
    }
}

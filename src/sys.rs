//! The few calls into the operating system that std does not offer:
//! signal handlers, the limit on open file descriptors, and the length of
//! a listening socket's queue.
//!
//! std has no API for any of them, and this project takes no crates, so
//! the C library's functions are declared here by hand with `extern "C"`,
//! as the `libc` crate would declare them. A declaration is a promise the
//! compiler cannot check: the types and the constants must match the C
//! library's for this platform. They are Linux's (glibc or musl) on
//! x86_64 and aarch64, the same on both: `SIGINT` 2, `SIGTERM` 15,
//! `RLIMIT_NOFILE` 7, `rlim_t` an unsigned 64-bit number. macOS differs
//! only in `RLIMIT_NOFILE` (8). Every `unsafe` block is here, each behind
//! a safe function.

use std::ffi::c_int;
use std::io;
use std::os::fd::AsRawFd;
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
#[cfg(target_os = "linux")]
const RLIMIT_NOFILE: c_int = 7;
#[cfg(target_os = "macos")]
const RLIMIT_NOFILE: c_int = 8;
/// What `signal` returns when it fails: `(sighandler_t) -1`.
const SIG_ERR: usize = usize::MAX;

/// C's `struct rlimit`.
#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

extern "C" {
    /// Installs `handler` (a function pointer, as an address) for `signum`.
    /// glibc and musl give it BSD semantics: the handler stays installed,
    /// and interrupted system calls restart.
    fn signal(signum: c_int, handler: usize) -> usize;
    fn getrlimit(resource: c_int, limit: *mut RLimit) -> c_int;
    fn setrlimit(resource: c_int, limit: *const RLimit) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
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
        // SAFETY: the handler is a plain function that only touches atomics.
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

/// The limit on open file descriptors: (soft, hard).
pub fn open_files_limit() -> io::Result<(u64, u64)> {
    let mut limit = RLimit { cur: 0, max: 0 };
    // SAFETY: getrlimit writes one `struct rlimit` to a valid pointer.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.cur, limit.max))
}

/// Sets the limit on open file descriptors. Raising the soft limit up to
/// the hard one is always allowed; raising the hard one needs privileges.
pub fn set_open_files_limit(soft: u64, hard: u64) -> io::Result<()> {
    let limit = RLimit {
        cur: soft,
        max: hard,
    };
    // SAFETY: setrlimit reads one `struct rlimit` from a valid pointer.
    if unsafe { setrlimit(RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the length of a listening socket's queue of connections not yet
/// accepted. std listens with a fixed 128; calling `listen` again on a
/// listening socket changes the length (Linux and the BSDs allow it). The
/// kernel caps it at `net.core.somaxconn`.
pub fn set_backlog(listener: &impl AsRawFd, backlog: u32) -> io::Result<()> {
    let backlog = c_int::try_from(backlog).unwrap_or(c_int::MAX);
    // SAFETY: listen takes a descriptor the listener owns and keeps open.
    if unsafe { listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An OS error's text without std's ` (os error N)` suffix: what C's
/// `strerror` says, as Redis logs it.
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

//! Stopping cleanly: SHUTDOWN, and SIGTERM or SIGINT, which run the same
//! sequence, as in Redis 7.0:
//!
//! 1. Writes stop: a write command waits at [`hold_writes`] until the
//!    process exits (or the shutdown fails and writes resume). Redis pauses
//!    writers the same way while it waits for replicas, and then saves
//!    synchronously, serving no one. So no write is acknowledged that the
//!    final dump does not hold.
//! 2. Unless `NOW`, replicas get up to `shutdown-timeout` seconds to
//!    acknowledge the whole stream (`SHUTDOWN ABORT` may cancel the wait).
//! 3. A background save still running is let finish: the final save waits
//!    its turn. (Redis kills its saving child instead; we have no child.)
//! 4. The final save, if save points are set (or `SAVE` says so, and not
//!    `NOSAVE`). If it fails, the server refuses to exit and goes on
//!    serving, unless `FORCE`.
//! 5. "bye bye", and exit 0.
//!
//! The signals are caught by `sys.rs`, whose handler only records them;
//! the watcher thread here looks ten times a second, as Redis's
//! `serverCron` does at its default `hz`, and runs the sequence in a
//! thread of its own, so that it can still see a second SIGINT: the user
//! insists, and the process exits at once with status 1, as Redis does.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::log;
use crate::server::Server;
use crate::sys::{self, Signal};

/// How SHUTDOWN was asked to stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `SAVE` (`Some(true)`) or `NOSAVE` (`Some(false)`); `None`: save if
    /// save points are set.
    pub save: Option<bool>,
    /// `NOW`: do not wait for replicas.
    pub now: bool,
    /// `FORCE`: exit even if the final save fails.
    pub force: bool,
}

/// Write commands hold this for reading while they run; a shutdown holds
/// it for writing from its start to the exit. The standard library's
/// lock on Linux lets a waiting writer in before new readers, so once a
/// shutdown asks for it, no new write starts.
static WRITES: RwLock<()> = RwLock::new(());

/// One shutdown at a time: a second SHUTDOWN waits for the first, which
/// either exits or fails and lets the second try.
static TURN: Mutex<()> = Mutex::new(());

/// Is a shutdown under way (for the second SIGINT)?
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Is a shutdown waiting for replicas (the only step SHUTDOWN ABORT can
/// cancel)?
static WAITING: AtomicBool = AtomicBool::new(false);

/// Set by SHUTDOWN ABORT, seen by the waiting shutdown.
static ABORTED: AtomicBool = AtomicBool::new(false);

/// How often the watcher looks for a signal, and a waiting shutdown for
/// ABORT: ten times a second, Redis's default `hz`.
const TICK: Duration = Duration::from_millis(100);

/// What Redis answers a SHUTDOWN that did not end the process.
const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// Taken by a write command for as long as it runs; waits while a
/// shutdown is under way.
pub fn hold_writes() -> RwLockReadGuard<'static, ()> {
    WRITES.read().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the shutdown sequence; returns only if it failed, with the error
/// the client gets.
pub fn shutdown(server: &Server, flags: Flags) -> String {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    IN_PROGRESS.store(true, Ordering::SeqCst);
    log::warning("User requested shutdown...");
    let writes = WRITES.write().unwrap_or_else(PoisonError::into_inner);
    if !flags.now && !wait_for_replicas(server) {
        log::notice("Shutdown manually aborted.");
        IN_PROGRESS.store(false, Ordering::SeqCst);
        return FAILED.to_string();
    }
    let save = flags
        .save
        .unwrap_or_else(|| !server.settings.save().is_empty());
    if save {
        if server.persistence.in_progress() {
            log::warning("There is a background save in progress: waiting for it to end.");
        }
        log::notice("Saving the final RDB snapshot before exiting.");
        if server.persistence.final_save(&server.db).is_err() {
            if flags.force {
                log::warning("Error trying to save the DB. Exit anyway.");
            } else {
                log::warning("Error trying to save the DB, can't exit.");
                log::warning(
                    "Errors trying to shut down the server. Check the logs for more information.",
                );
                drop(writes);
                IN_PROGRESS.store(false, Ordering::SeqCst);
                return FAILED.to_string();
            }
        }
    }
    log::warning("Redis is now ready to exit, bye bye...");
    // Exits holding the lock on writes: none is acknowledged from here on.
    std::process::exit(0);
}

/// SHUTDOWN ABORT: cancels a shutdown that waits for its replicas. Err if
/// there is none.
pub fn abort() -> Result<(), &'static str> {
    if WAITING.load(Ordering::SeqCst) {
        ABORTED.store(true, Ordering::SeqCst);
        Ok(())
    } else {
        Err("ERR No shutdown in progress.")
    }
}

/// Lets the replicas acknowledge the whole stream, for up to
/// `shutdown-timeout` seconds (0: not at all). False if SHUTDOWN ABORT
/// came meanwhile.
fn wait_for_replicas(server: &Server) -> bool {
    let replication = &server.replication;
    let timeout = Duration::from_secs(server.settings.shutdown_timeout());
    let target = replication.offset();
    let count = replication.replica_count() as i64;
    if count == 0 {
        return true;
    }
    let mut in_sync = replication.wait(target, count, Some(Duration::ZERO));
    if in_sync < count && !timeout.is_zero() {
        log::notice("Waiting for replicas before shutting down.");
        ABORTED.store(false, Ordering::SeqCst);
        WAITING.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        loop {
            // Replicas may leave meanwhile: count the ones still here.
            let count = replication.replica_count() as i64;
            let slice = TICK.min(deadline.saturating_duration_since(Instant::now()));
            in_sync = replication.wait(target, count, Some(slice));
            if ABORTED.swap(false, Ordering::SeqCst) {
                WAITING.store(false, Ordering::SeqCst);
                return false;
            }
            if in_sync >= count || Instant::now() >= deadline {
                break;
            }
        }
        WAITING.store(false, Ordering::SeqCst);
    }
    let count = replication.replica_count();
    if count > 0 {
        log::notice(format!(
            "{} of {count} replicas are in sync when shutting down.",
            (in_sync as usize).min(count)
        ));
    }
    true
}

/// Catches SIGTERM and SIGINT and starts the thread that acts on them.
pub fn spawn_signal_watcher(server: Server) -> io::Result<()> {
    sys::catch_stop_signals()?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            thread::sleep(TICK);
            let Some(signal) = sys::take_signal() else {
                continue;
            };
            if IN_PROGRESS.swap(true, Ordering::SeqCst) {
                // Stopping already. A second Ctrl+C means: now.
                if signal == Signal::Int {
                    log::warning("You insist... exiting now.");
                    server.persistence.remove_temp_file();
                    std::process::exit(1);
                }
                continue;
            }
            log::warning(format!("Received {} scheduling shutdown...", signal.name()));
            let server = server.clone();
            let spawned = thread::Builder::new()
                .name("shutdown".into())
                .spawn(move || {
                    // A failure is logged, and the server goes on, as
                    // Redis does.
                    shutdown(&server, Flags::default());
                });
            if let Err(e) = spawned {
                IN_PROGRESS.store(false, Ordering::SeqCst);
                log::warning(format!("Cannot start the shutdown: {e}"));
            }
        })?;
    Ok(())
}

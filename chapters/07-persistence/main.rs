//! A Redis server that keeps its data across restarts: RDB snapshots with
//! SAVE, BGSAVE and save points, written crash-safely and loaded at start,
//! in Redis's own format.
//!
//! Usage: `ch07-persistence [--port 6379] [--bind 127.0.0.1] [--dir DIR]
//! [--dbfilename dump.rdb] [--save "3600 1 300 100 60 10000"] [--replicaof HOST PORT]`.

mod cmd;
mod config;
mod connection;
mod crc64;
mod db;
mod error;
mod expire;
mod inline;
mod log;
mod lzf;
mod master;
mod persist;
mod rdb;
mod replica;
mod replication;
mod resp;
mod server;
mod sys;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use config::Config;
use server::Server;

fn main() -> ExitCode {
    let result = Config::from_args(std::env::args().skip(1)).and_then(|config| {
        // Like Redis, work in the dump's directory.
        std::env::set_current_dir(&config.dir)
            .map_err(|e| error::Error::Config(format!("can't chdir to '{}': {e}", config.dir)))?;
        let server = Server::new(config);
        persist::load(&server)
            .map_err(|e| error::Error::Config(format!("error loading the DB: {e}")))?;
        persist::spawn_save_points(server.clone())?;
        expire::spawn_cycle(server.clone())?;
        master::spawn_pinger(server.replication.clone())?;
        spawn_signal_watcher(server.clone())?;
        if let Some((host, port)) = server.config.replicaof.clone() {
            if let Some(generation) = server.replication.follow(&host, port) {
                replica::start(server.clone(), host, port, generation)?;
            }
        }
        server::run(server)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning(format!("Fatal: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Is a shutdown started by a signal under way?
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Catches SIGTERM and SIGINT, and starts the thread that acts on them.
///
/// The signal handler only records the signal (see `sys.rs`); this thread
/// looks ten times a second, as Redis's `serverCron` does, and runs the
/// same path as SHUTDOWN, in a thread of its own so that it still sees a
/// second SIGINT: the user insists, and the process exits at once with
/// status 1, as Redis does. If the final save fails, the server goes on
/// serving, as Redis does too.
fn spawn_signal_watcher(server: Server) -> std::io::Result<()> {
    sys::catch_stop_signals()?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            thread::sleep(Duration::from_millis(100));
            let Some(signal) = sys::take_signal() else {
                continue;
            };
            if STOPPING.swap(true, Ordering::SeqCst) {
                if signal == sys::Signal::Int {
                    log::warning("You insist... exiting now.");
                    std::process::exit(1);
                }
                continue;
            }
            log::warning(format!("Received {} scheduling shutdown...", signal.name()));
            let server = server.clone();
            let spawned = thread::Builder::new()
                .name("shutdown".into())
                .spawn(move || {
                    // Returns only if the final save failed (and logged it).
                    persist::shutdown(&server, None);
                    STOPPING.store(false, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                STOPPING.store(false, Ordering::SeqCst);
                log::warning(format!("Cannot start the shutdown: {e}"));
            }
        })?;
    Ok(())
}

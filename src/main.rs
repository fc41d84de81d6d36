//! redis-from-scratch: a Redis 7.0 server for strings and keys, in
//! std-only Rust, one thread per connection.
//!
//! Usage, as redis-server's: `redis-from-scratch [redis.conf] [--port 6379]
//! [--bind 127.0.0.1] [--dir DIR] [--dbfilename dump.rdb] [--save "..."]
//! [--replicaof HOST PORT] [--requirepass PASS] [--databases 16] ...`.

mod accept;
#[cfg(test)]
mod architecture;
mod clients;
mod cmd;
mod config;
mod connection;
mod crc64;
mod db;
mod error;
mod expire;
mod glob;
mod inline;
mod keyspace;
mod log;
mod long_double;
mod lzf;
mod master;
mod persist;
mod rdb;
mod replica;
mod replication;
mod resp;
mod rng;
mod server;
mod settings;
mod shutdown;
mod socket;
mod sync;
mod sys;
mod time;

use std::process::ExitCode;

use config::Config;
use server::Server;

fn main() -> ExitCode {
    let result = Config::from_args(std::env::args().skip(1)).and_then(|config| {
        // Like Redis, work in the dump's directory.
        std::env::set_current_dir(&config.dir)
            .map_err(|e| error::Error::Config(format!("can't chdir to '{}': {e}", config.dir)))?;
        log::notice("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo");
        log::notice(format!(
            "redis-from-scratch {}, Redis 7.0.15 compatible, pid={}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ));
        let mut config = config;
        fit_open_files_limit(&mut config)?;
        let server = Server::new(config);
        server
            .persistence
            .load(&server.db, server.config.databases)
            .map_err(|e| error::Error::Config(format!("error loading the DB: {e}")))?;
        persist::spawn_saver(server.persistence.clone(), server.db.clone())?;
        expire::spawn_cycle(
            server.db.clone(),
            server.replication.clone(),
            server.config.databases,
        )?;
        master::spawn_pinger(server.replication.clone())?;
        replica::spawn_supervisor(server.clone())?;
        shutdown::spawn_signal_watcher(server.clone())?;
        if let Some((host, port)) = &server.config.replicaof {
            server.replication.follow(host, *port);
        }
        accept::run(server)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Config errors are printed as Redis prints them: as they are.
        Err(e @ error::Error::Config(_)) if e.to_string().starts_with('\n') => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            log::warning(format!("Fatal: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Descriptors kept for what is not a client: the listening sockets, the
/// dump being written, replica links' extra handles, the log (Redis's
/// `CONFIG_MIN_RESERVED_FDS`). A client connection takes one descriptor,
/// its socket, which its reader and writer share.
const RESERVED_FDS: u64 = 32;

/// Makes room for `maxclients` connections, as Redis does at start: raises
/// the limit on open descriptors if it is too low and the hard limit
/// allows; if not, lowers `maxclients` to what fits, and says so once. A
/// client over the limit is then refused with an error, instead of
/// leaving `accept` to fail over and over.
fn fit_open_files_limit(config: &mut config::Config) -> Result<(), error::Error> {
    let needed = config.maxclients as u64 + RESERVED_FDS;
    let (soft, hard) = match sys::open_files_limit() {
        Ok(limit) => limit,
        Err(e) => {
            log::warning(format!("Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.", sys::strerror(&e)));
            config.maxclients = (1024 - RESERVED_FDS) as usize;
            return Ok(());
        }
    };
    if soft >= needed {
        return Ok(());
    }
    // Only a privileged process may raise the hard limit; any may raise
    // the soft one up to it.
    let Err(error) = sys::set_open_files_limit(needed, hard.max(needed)) else {
        log::notice(format!(
            "Increased maximum number of open files to {needed} (it was originally set to {soft})."
        ));
        return Ok(());
    };
    let best = if hard > soft && sys::set_open_files_limit(hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    if best <= RESERVED_FDS {
        return Err(error::Error::Config(format!("Your current 'ulimit -n' of {soft} is not enough for the server to start. Please increase your open file limit to at least {needed}. Exiting.")));
    }
    let requested = config.maxclients;
    config.maxclients = (best - RESERVED_FDS) as usize;
    log::warning(format!(
        "You requested maxclients of {requested} requiring at least {needed} max file descriptors."
    ));
    log::warning(format!(
        "Server can't set maximum open files to {needed} because of OS error: {}.",
        sys::strerror(&error)
    ));
    log::warning(format!("Current maximum open files is {best}. maxclients has been reduced to {} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.", config.maxclients));
    Ok(())
}

//! redis-from-scratch: a Redis 7.0 server for strings and keys, in
//! std-only Rust, one thread per connection.
//!
//! Usage, as redis-server's: `redis-from-scratch [redis.conf] [--port 6379]
//! [--bind 127.0.0.1] [--dir DIR] [--dbfilename dump.rdb] [--save "..."]
//! [--replicaof HOST PORT] [--requirepass PASS] [--databases 16]
//! [--appendonly yes] [--appendfsync everysec] ...`.

mod accept;
mod acl_log;
mod alloc;
mod aof;
#[cfg(test)]
mod architecture;
mod clients;
mod cmd;
mod config;
mod connection;
mod crc64;
mod db;
mod error;
mod events;
mod expire;
mod glob;
mod inline;
mod keyspace;
mod listen;
mod log;
mod long_double;
mod lzf;
mod master;
mod outbox;
mod persist;
mod pubsub;
mod rdb;
mod replay;
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

/// Every allocation is counted, for INFO's `used_memory` (see `alloc.rs`).
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

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
        config.maxclients =
            settings::fit_open_files_limit(config.maxclients).map_err(error::Error::Config)?;
        let server = Server::new(config);
        // With the AOF on, the log is the data: the dump is not read.
        if server.config.appendonly {
            replay::load(&server).map_err(error::Error::Config)?;
        } else {
            server
                .persistence
                .load(&server.db, server.config.databases)
                .map_err(|e| error::Error::Config(format!("error loading the DB: {e}")))?;
        }
        persist::spawn_saver(server.persistence.clone(), server.db.clone())?;
        aof::rewrite::spawn_cron(
            server.db.clone(),
            server.aof.clone(),
            server.settings.clone(),
            &server.config,
        )?;
        expire::spawn_cycle(
            server.db.clone(),
            server.replication.clone(),
            server.pubsub.clone(),
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

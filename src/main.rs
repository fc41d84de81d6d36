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

use std::process::ExitCode;

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

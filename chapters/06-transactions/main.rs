//! A Redis server with transactions: MULTI queues commands, EXEC runs them
//! all at once with no other client in between, WATCH cancels EXEC if a
//! watched key changed; and counters (INCR, DECR ...) to be atomic about.
//!
//! Usage: `ch06-transactions [--port 6379] [--bind 127.0.0.1]
//! [--replicaof HOST PORT]`.

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
        let server = Server::new(config);
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

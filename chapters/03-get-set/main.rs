//! A Redis server that stores strings: GET, SET, DEL, EXISTS, shared by
//! every client through one keyspace behind a read-write lock.
//!
//! Usage: `ch03-get-set [--port 6379] [--bind 127.0.0.1]`, then
//! `redis-cli -p 6379 SET greeting hello`.

mod cmd;
mod config;
mod connection;
mod db;
mod error;
mod inline;
mod log;
mod resp;
mod server;

use std::process::ExitCode;

use config::Config;
use db::Db;

fn main() -> ExitCode {
    let result = Config::from_args(std::env::args().skip(1))
        .and_then(|config| server::run(&config, Db::default()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning(format!("Fatal: {e}"));
            ExitCode::FAILURE
        }
    }
}

//! A Redis server that speaks RESP2: PING, ECHO, QUIT and COMMAND.
//!
//! Usage: `ch02-resp [--port 6379] [--bind 127.0.0.1]`, then
//! `redis-cli -p 6379 PING`.

mod cmd;
mod config;
mod connection;
mod error;
mod inline;
mod log;
mod resp;
mod server;

use std::process::ExitCode;

use config::Config;

fn main() -> ExitCode {
    let result =
        Config::from_args(std::env::args().skip(1)).and_then(|config| server::run(&config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning(format!("Fatal: {e}"));
            ExitCode::FAILURE
        }
    }
}

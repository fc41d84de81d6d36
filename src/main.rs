//! A Redis server whose keys can expire: SET with EX/PX/EXAT/PXAT, EXPIRE,
//! TTL, PERSIST, with lazy expiry on every lookup and an active expiry
//! thread for the keys nobody looks up.
//!
//! Usage: `ch04-expiry [--port 6379] [--bind 127.0.0.1]`, then
//! `redis-cli -p 6379 SET greeting hello EX 10`.

mod cmd;
mod config;
mod connection;
mod db;
mod error;
mod expire;
mod inline;
mod log;
mod resp;
mod server;

use std::process::ExitCode;

use config::Config;
use db::Db;

fn main() -> ExitCode {
    let result = Config::from_args(std::env::args().skip(1)).and_then(|config| {
        let db = Db::default();
        expire::spawn_cycle(db.clone())?;
        server::run(&config, db)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::warning(format!("Fatal: {e}"));
            ExitCode::FAILURE
        }
    }
}

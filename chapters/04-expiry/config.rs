//! The command line, read the way redis-server reads it: `--name value` pairs.

use crate::error::Error;

/// Everything the server can be told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`--bind`), 127.0.0.1 by default, as in the redis.conf that Redis ships.
    pub bind: String,
    /// Port to listen on (`--port`), 6379 by default.
    pub port: u16,
}

impl Config {
    /// Reads `--port N` and `--bind ADDR` from the arguments after the program name.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, Error> {
        let mut config = Config {
            bind: "127.0.0.1".to_string(),
            port: 6379,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| Error::Config(format!("missing value after '{flag}'")))?;
            match flag.as_str() {
                "--port" => {
                    config.port = value
                        .parse()
                        .map_err(|_| Error::Config(format!("invalid port '{value}'")))?;
                }
                "--bind" => config.bind = value,
                _ => return Err(Error::Config(format!("unknown option '{flag}'"))),
            }
        }
        Ok(config)
    }
}

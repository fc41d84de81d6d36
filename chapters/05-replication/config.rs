//! The command line, read the way redis-server reads it: `--name value...`,
//! where an option takes every argument up to the next `--`.

use crate::error::Error;

/// Everything the server can be told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`--bind`), 127.0.0.1 by default, as in the redis.conf that Redis ships.
    pub bind: String,
    /// Port to listen on (`--port`), 6379 by default.
    pub port: u16,
    /// The master to replicate (`--replicaof HOST PORT`), if any.
    pub replicaof: Option<(String, u16)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".to_string(),
            port: 6379,
            replicaof: None,
        }
    }
}

impl Config {
    /// Reads the options from the arguments after the program name.
    /// `--replicaof` accepts its host and port as two arguments or as one
    /// (`--replicaof "127.0.0.1 6379"`), as redis-server does.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, Error> {
        let mut config = Config::default();
        let mut args = args.into_iter().peekable();
        while let Some(flag) = args.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(Error::Config(format!("unexpected argument '{flag}'")));
            };
            let mut values = Vec::new();
            while let Some(value) = args.next_if(|arg| !arg.starts_with("--")) {
                values.extend(value.split_whitespace().map(str::to_string));
            }
            let bad = || Error::Config(format!("bad value for '--{name}': '{}'", values.join(" ")));
            match (name, values.as_slice()) {
                ("port", [port]) => config.port = port.parse().map_err(|_| bad())?,
                ("bind", [addr]) => config.bind = addr.clone(),
                ("replicaof" | "slaveof", [host, port]) => {
                    config.replicaof = Some((host.clone(), port.parse().map_err(|_| bad())?));
                }
                ("port" | "bind" | "replicaof" | "slaveof", _) => return Err(bad()),
                _ => return Err(Error::Config(format!("unknown option '--{name}'"))),
            }
        }
        Ok(config)
    }
}

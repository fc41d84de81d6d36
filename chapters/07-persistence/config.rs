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
    /// Where the dump lives (`--dir`); the server makes it its working
    /// directory at start, as Redis does.
    pub dir: String,
    /// The dump's file name (`--dbfilename`), `dump.rdb` by default.
    pub dbfilename: String,
    /// Save points (`--save "3600 1 300 100"`): save after this many
    /// seconds if at least this many changes were made. Empty: never.
    pub save: Vec<(u64, u64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".to_string(),
            port: 6379,
            replicaof: None,
            dir: ".".to_string(),
            dbfilename: "dump.rdb".to_string(),
            // Redis's defaults: an hour for one change, five minutes for
            // a hundred, a minute for ten thousand.
            save: vec![(3600, 1), (300, 100), (60, 10000)],
        }
    }
}

impl Config {
    /// The save points as CONFIG GET shows them: `3600 1 300 100 60 10000`.
    pub fn save_points(&self) -> String {
        let words: Vec<String> = self.save.iter().map(|(s, c)| format!("{s} {c}")).collect();
        words.join(" ")
    }

    /// Reads the options from the arguments after the program name.
    /// `--replicaof` accepts its host and port as two arguments or as one
    /// (`--replicaof "127.0.0.1 6379"`), as redis-server does.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, Error> {
        let mut config = Config::default();
        let mut save_given = false;
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
                ("dir", [dir]) => config.dir = dir.clone(),
                ("dbfilename", [name]) => config.dbfilename = name.clone(),
                // `--save ""` turns saving off; the first --save replaces
                // the defaults, later ones add to it.
                ("save", pairs) if pairs.len() % 2 == 0 => {
                    if !save_given {
                        config.save.clear();
                        save_given = true;
                    }
                    for pair in pairs.chunks(2) {
                        let seconds = pair[0].parse().map_err(|_| bad())?;
                        let changes = pair[1].parse().map_err(|_| bad())?;
                        config.save.push((seconds, changes));
                    }
                }
                ("port" | "bind" | "replicaof" | "slaveof" | "dir" | "dbfilename" | "save", _) => {
                    return Err(bad())
                }
                _ => return Err(Error::Config(format!("unknown option '--{name}'"))),
            }
        }
        Ok(config)
    }
}

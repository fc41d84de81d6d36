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
    /// Keep an append-only file (`--appendonly yes`); off by default.
    pub appendonly: bool,
    /// The AOF's directory, inside `dir` (`--appenddirname`).
    pub appenddirname: String,
    /// The prefix of the AOF's file names (`--appendfilename`).
    pub appendfilename: String,
    /// When the AOF is fsynced (`--appendfsync always|everysec|no`).
    pub appendfsync: Fsync,
    /// Is a rewritten base an RDB (`--aof-use-rdb-preamble yes`, the
    /// default) or commands?
    pub aof_use_rdb_preamble: bool,
    /// Load an AOF whose last command was cut short, and cut it off
    /// (`--aof-load-truncated yes`, the default)?
    pub aof_load_truncated: bool,
    /// Rewrite when the AOF has grown by this percentage since the last
    /// rewrite (`--auto-aof-rewrite-percentage`, 100); 0 turns it off.
    pub auto_aof_rewrite_percentage: u64,
    /// ... but not before it reaches this many bytes
    /// (`--auto-aof-rewrite-min-size`, 64mb).
    pub auto_aof_rewrite_min_size: u64,
}

/// When the AOF is flushed to the disk, and so how much a power cut can
/// take (a crash of the process alone loses nothing the kernel has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before the reply: an acknowledged write is on the disk.
    Always,
    /// Once a second, from a thread of its own: about a second at risk.
    EverySec,
    /// When the kernel likes (typically within 30 seconds).
    No,
}

impl Fsync {
    /// The policy's name, as CONFIG GET shows it.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }

    /// Reads a policy's name, in any case.
    pub fn parse(name: &str) -> Option<Fsync> {
        [Fsync::Always, Fsync::EverySec, Fsync::No]
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }
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
            appendonly: false,
            appenddirname: "appendonlydir".to_string(),
            appendfilename: "appendonly.aof".to_string(),
            appendfsync: Fsync::EverySec,
            aof_use_rdb_preamble: true,
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
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
                ("appendonly", [v]) => config.appendonly = yes_no(v).ok_or_else(bad)?,
                ("aof-use-rdb-preamble", [v]) => {
                    config.aof_use_rdb_preamble = yes_no(v).ok_or_else(bad)?;
                }
                ("aof-load-truncated", [v]) => {
                    config.aof_load_truncated = yes_no(v).ok_or_else(bad)?;
                }
                ("appendfsync", [v]) => config.appendfsync = Fsync::parse(v).ok_or_else(bad)?,
                // Plain names: the files live in `dir`, and nowhere else.
                ("appenddirname", [v]) if plain_name(v) => config.appenddirname = v.clone(),
                ("appendfilename", [v]) if plain_name(v) => config.appendfilename = v.clone(),
                ("auto-aof-rewrite-percentage", [v]) => {
                    config.auto_aof_rewrite_percentage = v.parse().map_err(|_| bad())?;
                }
                ("auto-aof-rewrite-min-size", [v]) => {
                    config.auto_aof_rewrite_min_size = memory(v).ok_or_else(bad)?;
                }
                (
                    "port"
                    | "bind"
                    | "replicaof"
                    | "slaveof"
                    | "dir"
                    | "dbfilename"
                    | "save"
                    | "appendonly"
                    | "aof-use-rdb-preamble"
                    | "aof-load-truncated"
                    | "appendfsync"
                    | "appenddirname"
                    | "appendfilename"
                    | "auto-aof-rewrite-percentage"
                    | "auto-aof-rewrite-min-size",
                    _,
                ) => return Err(bad()),
                _ => return Err(Error::Config(format!("unknown option '--{name}'"))),
            }
        }
        Ok(config)
    }
}

/// Redis's booleans: `yes` or `no`, in any case.
fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// A file name with no directory in it, as `appendfilename` and
/// `appenddirname` must be.
fn plain_name(value: &str) -> bool {
    !value.is_empty() && !value.contains('/') && value != "." && value != ".."
}

/// A size as Redis writes it: bytes, or with a unit (`64mb`, `1gb`, `512k`).
fn memory(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

//! Configuration, read the way redis-server reads it: an optional config
//! file as the first argument, then `--name value ...` options, which win.
//!
//! Like Redis, the options are turned into config lines (`--port 7000`
//! becomes the line `port 7000`) appended to the file's text, and the whole
//! is parsed line by line; a mistake is reported with its line number and
//! the line, in Redis's words.

use crate::error::Error;
use crate::events::Events;
use crate::inline;

/// Stream bytes waiting for one replica before we give up on it, unless
/// configured otherwise (Redis's `client-output-buffer-limit replica 256mb`).
pub const REPLICA_BUFFER_LIMIT: usize = 256 * 1024 * 1024;

/// A class of `client-output-buffer-limit`: the hard limit in bytes, the
/// soft limit in bytes, and how many seconds the soft one may be exceeded;
/// 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimit {
    /// Over this many unsent bytes, the client is dropped at once.
    pub hard: u64,
    /// Over this many for longer than `seconds`, it is dropped too.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub seconds: u64,
}

/// Redis's default for subscribers: `pubsub 32mb 8mb 60`.
pub const PUBSUB_BUFFER_LIMIT: BufferLimit = BufferLimit {
    hard: 32 * 1024 * 1024,
    soft: 8 * 1024 * 1024,
    seconds: 60,
};

/// Everything the server can be told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (`bind`), 127.0.0.1 by default.
    pub bind: Vec<String>,
    /// Port to listen on (`port`), 6379 by default.
    pub port: u16,
    /// The master to replicate (`replicaof HOST PORT`), if any.
    pub replicaof: Option<(String, u16)>,
    /// Where the dump lives (`dir`); the server makes it its working directory.
    pub dir: String,
    /// The dump's file name (`dbfilename`).
    pub dbfilename: String,
    /// Save points: after this many seconds if at least this many changes.
    pub save: Vec<(u64, u64)>,
    /// Compress long strings in dumps (`rdbcompression`).
    pub rdbcompression: bool,
    /// Refuse writes while background saves fail
    /// (`stop-writes-on-bgsave-error`), yes by default.
    pub stop_writes_on_bgsave_error: bool,
    /// The password clients must AUTH with (`requirepass`); empty: none.
    pub requirepass: String,
    /// How many databases (`databases`), 16 by default.
    pub databases: usize,
    /// Most clients at once (`maxclients`), 10000 by default.
    pub maxclients: usize,
    /// Close a client idle this many seconds (`timeout`); 0: never.
    pub timeout: u64,
    /// Largest bulk string a client may send (`proto-max-bulk-len`).
    pub proto_max_bulk_len: i64,
    /// Largest unprocessed input of one client (`client-query-buffer-limit`).
    pub client_query_buffer_limit: usize,
    /// Stream bytes waiting for a replica before it is dropped: the hard
    /// limit of `client-output-buffer-limit replica`; 0 for none.
    pub replica_buffer_limit: usize,
    /// `client-output-buffer-limit pubsub`: how far a subscriber may fall
    /// behind before it is dropped.
    pub pubsub_buffer_limit: BufferLimit,
    /// The keyspace notifications to publish (`notify-keyspace-events`).
    pub notify_keyspace_events: Events,
    /// Longest wait, in seconds, for replicas to catch up before a
    /// shutdown (`shutdown-timeout`), 10 by default; 0: no wait.
    pub shutdown_timeout: u64,
    /// Length of the listen queue (`tcp-backlog`), 511 by default.
    pub tcp_backlog: u32,
    /// Keep an append-only file (`appendonly`); off by default.
    pub appendonly: bool,
    /// The AOF's directory, inside `dir` (`appenddirname`).
    pub appenddirname: String,
    /// The prefix of the AOF's file names (`appendfilename`).
    pub appendfilename: String,
    /// When the AOF is fsynced (`appendfsync always|everysec|no`).
    pub appendfsync: Fsync,
    /// Is a rewritten base an RDB (`aof-use-rdb-preamble yes`, the
    /// default) or commands?
    pub aof_use_rdb_preamble: bool,
    /// Load an AOF whose last command was cut short, and cut it off
    /// (`aof-load-truncated yes`, the default)?
    pub aof_load_truncated: bool,
    /// Rewrite when the AOF has grown by this percentage since the last
    /// rewrite (`auto-aof-rewrite-percentage`, 100); 0 turns it off.
    pub auto_aof_rewrite_percentage: u64,
    /// ... but not before it reaches this many bytes
    /// (`auto-aof-rewrite-min-size`, 64mb).
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
            bind: vec!["127.0.0.1".to_string()],
            port: 6379,
            replicaof: None,
            dir: ".".to_string(),
            dbfilename: "dump.rdb".to_string(),
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            rdbcompression: true,
            stop_writes_on_bgsave_error: true,
            requirepass: String::new(),
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            replica_buffer_limit: REPLICA_BUFFER_LIMIT,
            pubsub_buffer_limit: PUBSUB_BUFFER_LIMIT,
            notify_keyspace_events: Events::NONE,
            shutdown_timeout: 10,
            tcp_backlog: 511,
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

/// Directives of redis.conf that this server accepts and ignores, so that
/// a stock config file starts it.
const IGNORED: &[&str] = &[
    "protected-mode",
    "tcp-keepalive",
    "daemonize",
    "supervised",
    "pidfile",
    "loglevel",
    "logfile",
    "syslog-enabled",
    "always-show-logo",
    "set-proc-title",
    "proc-title-template",
    "rdbchecksum",
    "rdb-del-sync-files",
    "replica-serve-stale-data",
    "replica-read-only",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "repl-diskless-load",
    "repl-disable-tcp-nodelay",
    "replica-priority",
    "acllog-max-len",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "replica-lazy-flush",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "oom-score-adj",
    "oom-score-adj-values",
    "disable-thp",
    "no-appendfsync-on-rewrite",
    "aof-timestamp-enabled",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "list-max-listpack-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "hll-sparse-max-bytes",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "activerehashing",
    "hz",
    "dynamic-hz",
    "aof-rewrite-incremental-fsync",
    "rdb-save-incremental-fsync",
    "jemalloc-bg-thread",
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "enable-debug-command",
    "enable-protected-configs",
    "enable-module-command",
    "locale-collate",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "lua-time-limit",
    "busy-reply-threshold",
    "io-threads",
];

impl Config {
    /// Reads the command line: `[config-file] [--name value ...]`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, Error> {
        let mut args = args.into_iter().peekable();
        let mut text = String::new();
        if let Some(file) = args.next_if(|arg| !arg.starts_with("--")) {
            text = std::fs::read_to_string(&file).map_err(|e| {
                Error::Config(format!("Fatal error, can't open config file '{file}': {e}"))
            })?;
        }
        // The options become lines after the file's, each value quoted as
        // Redis's sdscatrepr would.
        let mut options = String::new();
        for arg in args {
            if let Some(name) = arg.strip_prefix("--") {
                if !options.is_empty() {
                    options.push('\n');
                }
                options.push_str(name);
                options.push(' ');
            } else {
                options.push_str(&format!("{:?} ", arg));
            }
        }
        if !options.is_empty() {
            text.push('\n');
            text.push_str(&options);
        }
        Config::parse(&text)
    }

    /// Parses config text, one directive a line.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let mut config = Config::default();
        let mut save_given = false;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |msg: &str| {
                Error::Config(format!(
                    "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line {}\n>>> '{line}'\n{msg}",
                    number + 1
                ))
            };
            let words = inline::split_args(line.as_bytes())
                .ok_or_else(|| fail("Unbalanced quotes in configuration line"))?;
            let words: Vec<String> = words
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let name = words[0].to_ascii_lowercase();
            config
                .apply(&name, &words[1..], &mut save_given)
                .map_err(|msg| fail(&msg))?;
        }
        Ok(config)
    }

    /// Applies one directive; the error is Redis's message for it.
    fn apply(
        &mut self,
        name: &str,
        values: &[String],
        save_given: &mut bool,
    ) -> Result<(), String> {
        const BAD: &str = "Bad directive or wrong number of arguments";
        let one = || match values {
            [value] => Ok(value.as_str()),
            _ => Err(BAD.to_string()),
        };
        match name {
            "bind" if !values.is_empty() => {
                // `-` marks an address that may be missing; we try them all.
                // CONFIG SET gives the addresses as one value: split it.
                self.bind = values
                    .iter()
                    .flat_map(|v| v.split_whitespace())
                    .map(|a| a.trim_start_matches('-').to_string())
                    .collect();
            }
            "port" => self.port = number(one()?, 0, 65535)? as u16,
            "dir" => self.dir = one()?.to_string(),
            "dbfilename" => {
                let file = one()?;
                if file.contains('/') {
                    return Err("dbfilename can't be a path, just a filename".into());
                }
                self.dbfilename = file.to_string();
            }
            "save" => {
                if !*save_given {
                    self.save.clear();
                    *save_given = true;
                }
                let words: Vec<&str> = values.iter().flat_map(|v| v.split_whitespace()).collect();
                if !words.len().is_multiple_of(2) {
                    return Err("Invalid save parameters".into());
                }
                for pair in words.chunks(2) {
                    let seconds = pair[0].parse().map_err(|_| "Invalid save parameters")?;
                    let changes = pair[1].parse().map_err(|_| "Invalid save parameters")?;
                    self.save.push((seconds, changes));
                }
            }
            "replicaof" | "slaveof" => {
                let words: Vec<&str> = values.iter().flat_map(|v| v.split_whitespace()).collect();
                let [host, port] = words.as_slice() else {
                    return Err(BAD.into());
                };
                let port = number(port, 0, 65535)? as u16;
                self.replicaof = Some((host.to_string(), port));
            }
            "requirepass" => self.requirepass = one()?.to_string(),
            "databases" => self.databases = number(one()?, 1, i32::MAX as i64)? as usize,
            "maxclients" => self.maxclients = number(one()?, 1, u32::MAX as i64)? as usize,
            "timeout" => self.timeout = number(one()?, 0, i32::MAX as i64)? as u64,
            "shutdown-timeout" => {
                self.shutdown_timeout = number(one()?, 0, i32::MAX as i64)? as u64;
            }
            "tcp-backlog" => self.tcp_backlog = number(one()?, 0, i32::MAX as i64)? as u32,
            "proto-max-bulk-len" => {
                self.proto_max_bulk_len = number(one()?, 1024 * 1024, i64::MAX)?
            }
            "client-query-buffer-limit" => {
                self.client_query_buffer_limit = number(one()?, 1024 * 1024, i64::MAX)? as usize;
            }
            "notify-keyspace-events" => {
                self.notify_keyspace_events = Events::parse(one()?)
                    .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            }
            "rdbcompression" => self.rdbcompression = yes_no(one()?)?,
            "stop-writes-on-bgsave-error" => self.stop_writes_on_bgsave_error = yes_no(one()?)?,
            "client-output-buffer-limit" => {
                // Classes and limits come in fours: class hard soft seconds.
                // The normal class's limits mean nothing here (a client's
                // replies wait for its own requests), nor the replica
                // class's soft one.
                let words: Vec<&str> = values.iter().flat_map(|v| v.split_whitespace()).collect();
                if words.is_empty() || !words.len().is_multiple_of(4) {
                    return Err("Wrong number of arguments in buffer limit configuration.".into());
                }
                for class in words.chunks(4) {
                    let hard = memory(class[1])?;
                    let soft = memory(class[2])?;
                    let seconds = number(class[3], 0, i64::MAX)? as u64;
                    match class[0].to_ascii_lowercase().as_str() {
                        "replica" | "slave" => self.replica_buffer_limit = hard,
                        "pubsub" => {
                            self.pubsub_buffer_limit = BufferLimit {
                                hard: hard as u64,
                                soft: soft as u64,
                                seconds,
                            }
                        }
                        "normal" => {}
                        _ => {
                            return Err(
                                "Invalid client class specified in buffer limit configuration."
                                    .into(),
                            )
                        }
                    }
                }
            }
            "appendonly" => self.appendonly = yes_no(one()?)?,
            "appendfsync" => {
                self.appendfsync = Fsync::parse(one()?)
                    .ok_or("argument(s) must be one of the following: everysec, always, no")?;
            }
            // Plain names: the files live in `dir`, and nowhere else.
            "appenddirname" | "appendfilename" => {
                let file = one()?;
                if file.is_empty() || file.contains('/') || file == "." || file == ".." {
                    return Err(format!("{name} can't be a path, just a filename"));
                }
                if name == "appenddirname" {
                    self.appenddirname = file.to_string();
                } else {
                    self.appendfilename = file.to_string();
                }
            }
            "aof-use-rdb-preamble" => self.aof_use_rdb_preamble = yes_no(one()?)?,
            "aof-load-truncated" => self.aof_load_truncated = yes_no(one()?)?,
            "auto-aof-rewrite-percentage" => {
                self.auto_aof_rewrite_percentage = number(one()?, 0, i32::MAX as i64)? as u64;
            }
            "auto-aof-rewrite-min-size" => {
                self.auto_aof_rewrite_min_size = memory(one()?)? as u64;
            }
            _ if IGNORED.contains(&name) => {}
            _ => return Err(BAD.into()),
        }
        Ok(())
    }

    /// Applies one `name value` directive, as CONFIG SET does: a `save`
    /// replaces the save points rather than adding to them.
    pub fn apply_one(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.apply(name, &[value.to_string()], &mut false)
    }
}

/// Parses a memory size as Redis writes them: `1048576`, `64kb`, `256mb`,
/// `1gb` (and `k`, `m`, `g` for powers of ten).
fn memory(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, usize); 7] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ];
    let (digits, unit) = units
        .iter()
        .find_map(|&(suffix, size)| lower.strip_suffix(suffix).map(|d| (d, size)))
        .unwrap_or((lower.as_str(), 1));
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| {
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string()
        })
}

/// Parses a number within bounds, with Redis's messages.
fn number(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = text
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Config, Error> {
        Config::from_args(list.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_override_defaults() {
        let config = args(&[
            "--port",
            "7000",
            "--save",
            "",
            "--replicaof",
            "127.0.0.1 6379",
        ])
        .unwrap();
        assert_eq!(config.port, 7000);
        assert!(config.save.is_empty());
        assert_eq!(config.replicaof, Some(("127.0.0.1".to_string(), 6379)));
        let config = args(&["--replicaof", "10.0.0.1", "6380", "--save", "60", "1"]).unwrap();
        assert_eq!(config.replicaof, Some(("10.0.0.1".to_string(), 6380)));
        assert_eq!(config.save, vec![(60, 1)]);
    }

    #[test]
    fn errors_read_like_redis() {
        let Err(Error::Config(msg)) = args(&["--port", "1", "--foo", "bar"]) else {
            panic!("expected an error");
        };
        assert!(
            msg.contains(
                "at line 3\n>>> 'foo \"bar\"'\nBad directive or wrong number of arguments"
            ),
            "{msg}"
        );
        let Err(Error::Config(msg)) = args(&["--port", "abc"]) else {
            panic!("expected an error");
        };
        assert!(
            msg.ends_with("argument couldn't be parsed into an integer"),
            "{msg}"
        );
    }

    #[test]
    fn config_file_syntax() {
        let config =
            Config::parse("# comment\nport 7001\nsave \"\"\nrequirepass \"p w\"\n").unwrap();
        assert_eq!(config.port, 7001);
        assert!(config.save.is_empty());
        assert_eq!(config.requirepass, "p w");
    }
}

//! The parameters CONFIG SET may change while the server runs.
//!
//! The rest of the configuration (`databases`, `dir`, `dbfilename`,
//! `replicaof` at start) is fixed once the server is up and stays in the
//! shared, immutable `Config`; `port` and `bind` are checked here, and
//! belong to the listeners (`listen.rs`). These few live here instead, each readable
//! without a lock that writers would contend on: numbers are atomics (a
//! connection reads the protocol limits on every request), strings sit
//! behind a mutex that is taken only at a connection's start, by AUTH, or
//! by a save.

use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
use std::sync::Mutex;

use crate::config::{BufferLimit, Config};
use crate::events::Events;
use crate::log;
use crate::sync::lock;
use crate::sys;

/// The changeable parameters, as they are now.
pub struct Settings {
    save: Mutex<Vec<(u64, u64)>>,
    requirepass: Mutex<String>,
    rdbcompression: AtomicBool,
    stop_writes_on_bgsave_error: AtomicBool,
    maxclients: AtomicUsize,
    timeout: AtomicU64,
    proto_max_bulk_len: AtomicI64,
    client_query_buffer_limit: AtomicUsize,
    shutdown_timeout: AtomicU64,
    /// `client-output-buffer-limit pubsub`, read at every publish.
    pubsub_buffer_limit: [AtomicU64; 3],
    /// The replica class's hard limit, for CONFIG GET (the replication
    /// stream keeps the limit it started with).
    replica_buffer_limit: AtomicUsize,
    /// `notify-keyspace-events`, read by every write.
    notify_keyspace_events: AtomicU16,
}

/// The parameters CONFIG SET accepts.
pub const MUTABLE: &[&str] = &[
    "save",
    "requirepass",
    "rdbcompression",
    "stop-writes-on-bgsave-error",
    "maxclients",
    "timeout",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "appendonly",
    "appendfsync",
    "port",
    "bind",
    "shutdown-timeout",
    "client-output-buffer-limit",
    "notify-keyspace-events",
];

impl Settings {
    /// The values the server started with.
    pub fn new(config: &Config) -> Settings {
        Settings {
            save: Mutex::new(config.save.clone()),
            requirepass: Mutex::new(config.requirepass.clone()),
            rdbcompression: AtomicBool::new(config.rdbcompression),
            stop_writes_on_bgsave_error: AtomicBool::new(config.stop_writes_on_bgsave_error),
            maxclients: AtomicUsize::new(config.maxclients),
            timeout: AtomicU64::new(config.timeout),
            proto_max_bulk_len: AtomicI64::new(config.proto_max_bulk_len),
            client_query_buffer_limit: AtomicUsize::new(config.client_query_buffer_limit),
            shutdown_timeout: AtomicU64::new(config.shutdown_timeout),
            pubsub_buffer_limit: [
                AtomicU64::new(config.pubsub_buffer_limit.hard),
                AtomicU64::new(config.pubsub_buffer_limit.soft),
                AtomicU64::new(config.pubsub_buffer_limit.seconds),
            ],
            replica_buffer_limit: AtomicUsize::new(config.replica_buffer_limit),
            notify_keyspace_events: AtomicU16::new(config.notify_keyspace_events.bits()),
        }
    }

    /// Save points: after this many seconds if at least this many changes.
    pub fn save(&self) -> Vec<(u64, u64)> {
        lock(&self.save).clone()
    }

    /// The password clients must AUTH with; empty: none.
    pub fn requirepass(&self) -> String {
        lock(&self.requirepass).clone()
    }

    /// Compress long strings in dumps?
    pub fn rdbcompression(&self) -> bool {
        self.rdbcompression.load(Relaxed)
    }

    /// Refuse writes while background saves fail?
    pub fn stop_writes_on_bgsave_error(&self) -> bool {
        self.stop_writes_on_bgsave_error.load(Relaxed)
    }

    /// Most clients at once.
    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Relaxed)
    }

    /// Close a client idle this many seconds; 0: never.
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Relaxed)
    }

    /// Largest bulk string a client may send.
    pub fn proto_max_bulk_len(&self) -> i64 {
        self.proto_max_bulk_len.load(Relaxed)
    }

    /// Most bytes one request may hold.
    pub fn client_query_buffer_limit(&self) -> usize {
        self.client_query_buffer_limit.load(Relaxed)
    }

    /// Longest wait for replicas before a shutdown, in seconds; 0: none.
    pub fn shutdown_timeout(&self) -> u64 {
        self.shutdown_timeout.load(Relaxed)
    }

    /// How far a subscriber may fall behind (`client-output-buffer-limit
    /// pubsub`). Three relaxed loads: a CONFIG SET between them could mix
    /// old and new values for one publish, which does no harm.
    pub fn pubsub_buffer_limit(&self) -> BufferLimit {
        let [hard, soft, seconds] = &self.pubsub_buffer_limit;
        BufferLimit {
            hard: hard.load(Relaxed),
            soft: soft.load(Relaxed),
            seconds: seconds.load(Relaxed),
        }
    }

    /// The keyspace notifications to publish.
    pub fn notify_keyspace_events(&self) -> Events {
        Events::from_bits(self.notify_keyspace_events.load(Relaxed))
    }

    /// `client-output-buffer-limit` as CONFIG GET shows it.
    pub fn client_output_buffer_limit(&self) -> String {
        let pubsub = self.pubsub_buffer_limit();
        format!(
            "normal 0 0 0 slave {} {} 60 pubsub {} {} {}",
            self.replica_buffer_limit.load(Relaxed),
            64 * 1024 * 1024,
            pubsub.hard,
            pubsub.soft,
            pubsub.seconds
        )
    }

    /// The save points as CONFIG GET shows them: `3600 1 300 100 60 10000`.
    pub fn save_points(&self) -> String {
        let words: Vec<String> = self
            .save()
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect();
        words.join(" ")
    }

    /// CONFIG SET: checks every pair first, then applies them all, so a
    /// bad value changes nothing. The error is Redis's. `before` gets the
    /// checked values first: if it fails (a port that is taken), nothing
    /// is applied.
    pub fn set(
        &self,
        config: &Config,
        pairs: &[(String, String)],
        before: impl FnOnce(&Config) -> Result<(), String>,
    ) -> Result<(), String> {
        // Validate with the same parser as the command line, on a copy.
        let mut scratch = config.clone();
        for (name, value) in pairs {
            // Redis refuses these unless `enable-protected-configs` is set,
            // which this server never sets: a client must not be able to
            // point the dump somewhere else on the disk.
            if ["dir", "dbfilename"].contains(&name.as_str()) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                ));
            }
            if !MUTABLE.contains(&name.as_str()) {
                let known = Config::parse(&format!("{name} {value:?}")).is_ok();
                return Err(if known || config_names().contains(&name.as_str()) {
                    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")
                } else {
                    format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
                });
            }
            scratch.apply_one(name, value).map_err(|e| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
            })?;
        }
        // As Redis: more clients than the descriptor limit allows (after
        // raising it, if it may be raised) is an error.
        if scratch.maxclients != self.maxclients() {
            let fits = fit_open_files_limit(scratch.maxclients).unwrap_or(0);
            if fits != scratch.maxclients {
                log::warning("Failed applying new configuration. Possibly related to new maxclients setting. Restoring previous settings.");
                return Err(format!("ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with {fits}"));
            }
        }
        before(&scratch)?;
        *lock(&self.save) = scratch.save;
        *lock(&self.requirepass) = scratch.requirepass;
        self.rdbcompression.store(scratch.rdbcompression, Relaxed);
        self.stop_writes_on_bgsave_error
            .store(scratch.stop_writes_on_bgsave_error, Relaxed);
        self.maxclients.store(scratch.maxclients, Relaxed);
        self.timeout.store(scratch.timeout, Relaxed);
        self.proto_max_bulk_len
            .store(scratch.proto_max_bulk_len, Relaxed);
        self.client_query_buffer_limit
            .store(scratch.client_query_buffer_limit, Relaxed);
        self.shutdown_timeout
            .store(scratch.shutdown_timeout, Relaxed);
        let [hard, soft, seconds] = &self.pubsub_buffer_limit;
        hard.store(scratch.pubsub_buffer_limit.hard, Relaxed);
        soft.store(scratch.pubsub_buffer_limit.soft, Relaxed);
        seconds.store(scratch.pubsub_buffer_limit.seconds, Relaxed);
        self.replica_buffer_limit
            .store(scratch.replica_buffer_limit, Relaxed);
        self.notify_keyspace_events
            .store(scratch.notify_keyspace_events.bits(), Relaxed);
        Ok(())
    }
}

/// Descriptors kept for what is not a client: the listening sockets, the
/// dump being written, replica links' extra handles, the log (Redis's
/// `CONFIG_MIN_RESERVED_FDS`). A client connection takes one descriptor,
/// its socket, which its reader and writer share.
const RESERVED_FDS: u64 = 32;

/// Makes room for `maxclients` connections, as Redis does at start and
/// on CONFIG SET: raises the limit on open descriptors if it is too low
/// and the hard limit allows; if not, says so in the log and returns the
/// lower `maxclients` that fits. A client over it is then refused with an
/// error, instead of leaving `accept` to fail over and over. Err if not
/// even one client fits.
pub fn fit_open_files_limit(maxclients: usize) -> Result<usize, String> {
    let needed = maxclients as u64 + RESERVED_FDS;
    let (soft, hard) = match sys::open_files_limit() {
        Ok(limit) => limit,
        Err(e) => {
            log::warning(format!("Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.", sys::strerror(&e)));
            return Ok((1024 - RESERVED_FDS) as usize);
        }
    };
    if soft >= needed {
        return Ok(maxclients);
    }
    // Only a privileged process may raise the hard limit; any may raise
    // the soft one up to it.
    let Err(error) = sys::set_open_files_limit(needed, hard.max(needed)) else {
        log::notice(format!(
            "Increased maximum number of open files to {needed} (it was originally set to {soft})."
        ));
        return Ok(maxclients);
    };
    let best = if hard > soft && sys::set_open_files_limit(hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    if best <= RESERVED_FDS {
        return Err(format!("Your current 'ulimit -n' of {soft} is not enough for the server to start. Please increase your open file limit to at least {needed}. Exiting."));
    }
    let fits = (best - RESERVED_FDS) as usize;
    log::warning(format!(
        "You requested maxclients of {maxclients} requiring at least {needed} max file descriptors."
    ));
    log::warning(format!(
        "Server can't set maximum open files to {needed} because of OS error: {}.",
        sys::strerror(&error)
    ));
    log::warning(format!("Current maximum open files is {best}. maxclients has been reduced to {fits} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."));
    Ok(fits)
}

/// The parameters this server knows but cannot change at run time.
fn config_names() -> &'static [&'static str] {
    &["databases", "dir", "replicaof", "slaveof", "tcp-backlog"]
}

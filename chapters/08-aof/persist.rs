//! RDB snapshots on disk: SAVE, BGSAVE, save points, and loading the dump
//! at start.
//!
//! A save must write one consistent moment of the data, without making
//! the clients wait while it writes. Redis calls fork() and lets the child
//! write while the parent goes on (the kernel copies only the pages that
//! change). std has no fork, so we do the same by hand: under the
//! keyspace's read lock we take a snapshot, handles on the keys' and
//! values' bytes (see `Keyspace::snapshot`), which takes milliseconds
//! even for a million keys; the lock is released, and the RDB is encoded
//! from the snapshot and streamed through a `BufWriter` to the temp file,
//! its checksum computed as the bytes go by. Writers wait only for the
//! snapshot, and the file is never built in memory.
//!
//! The file is replaced atomically: write `temp-<pid>.rdb`, fsync it,
//! rename it over the dump, fsync the directory. A crash at any moment
//! leaves either the old dump or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::db::{Keyspace, SnapshotEntry};
use crate::expire::unix_millis;
use crate::log;
use crate::rdb::{self, AuxValue, RdbError, RdbWriter};
use crate::server::Server;

/// After a failed background save, wait this long before the save points
/// may try again (Redis's `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What the server remembers about saving.
pub struct Persistence {
    state: Mutex<SaveState>,
    /// Held while a dump is written (SAVE, BGSAVE, SHUTDOWN).
    writing: Mutex<()>,
}

struct SaveState {
    /// Unix time in seconds of the last successful save (LASTSAVE).
    last_save: i64,
    /// Is a BGSAVE thread running?
    in_progress: bool,
    /// When the last save failed, if it did.
    failed_at: Option<Instant>,
}

impl Persistence {
    /// No save yet: LASTSAVE reports the start time, as in Redis.
    pub fn new() -> Persistence {
        Persistence {
            state: Mutex::new(SaveState {
                last_save: unix_millis() / 1000,
                in_progress: false,
                failed_at: None,
            }),
            writing: Mutex::new(()),
        }
    }

    /// Unix time in seconds of the last successful save.
    pub fn last_save(&self) -> i64 {
        self.lock().last_save
    }

    /// Is a background save running, and did the last save fail? (For
    /// `INFO persistence`.)
    pub fn status(&self) -> (bool, bool) {
        let state = self.lock();
        (state.in_progress, state.failed_at.is_some())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SaveState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The AUX fields of a snapshot, as Redis 7.0 writes them; `extra` ones
/// (a full sync's replication fields) come before `aof-base`, and may
/// mark the snapshot as an AOF's base (`aof-base` 1).
pub fn aux_fields<'a>(extra: &[(&'a str, AuxValue)]) -> Vec<(&'a str, AuxValue)> {
    let mut aux = vec![
        ("redis-ver", AuxValue::Str(b"7.0.15".to_vec())),
        ("redis-bits", AuxValue::Int(64)),
        ("ctime", AuxValue::Int(unix_millis() / 1000)),
        ("used-mem", AuxValue::Int(0)),
    ];
    aux.extend(extra.iter().cloned());
    // An AOF's base says so itself; any other snapshot is not one.
    if !extra.iter().any(|(name, _)| *name == "aof-base") {
        aux.push(("aof-base", AuxValue::Int(0)));
    }
    aux
}

/// Encodes a snapshot of the keyspace as an RDB with the header fields
/// `aux`, compressed as Redis does by default, and writes it to `out` as
/// it goes: nothing is held but the compressor's table. Hands `out` back,
/// flushed. Run on the same snapshot, it writes the same bytes.
pub fn write_rdb<W: Write>(
    out: W,
    snapshot: &[SnapshotEntry],
    aux: &[(&str, AuxValue)],
) -> io::Result<W> {
    let mut rdb = RdbWriter::new(out, true);
    rdb.header(aux)?;
    if !snapshot.is_empty() {
        let volatile = snapshot.iter().filter(|(_, _, ttl)| ttl.is_some());
        rdb.select_db(0, snapshot.len(), volatile.count())?;
        for (key, value, expires_at) in snapshot {
            rdb.entry(key, value, *expires_at)?;
        }
    }
    rdb.finish()
}

/// SAVE: writes the dump now, in the caller's thread.
pub fn save(server: &Server) -> Result<(), String> {
    if server.persistence.lock().in_progress {
        return Err("Background save already in progress".into());
    }
    write_dump(server)
}

/// BGSAVE: writes the dump from a thread of its own.
pub fn bgsave(server: &Server) -> Result<(), String> {
    {
        let mut state = server.persistence.lock();
        if state.in_progress {
            return Err("Background save already in progress".into());
        }
        state.in_progress = true;
    }
    let background = server.clone();
    let spawned = thread::Builder::new().name("bgsave".into()).spawn(move || {
        // Failures are logged by write_dump; the flag is cleared either way.
        let _ = write_dump(&background);
        background.persistence.lock().in_progress = false;
    });
    if let Err(e) = spawned {
        server.persistence.lock().in_progress = false;
        return Err(format!("cannot start the background save: {e}"));
    }
    log::notice("Background saving started");
    Ok(())
}

/// Snapshots under the read lock, encodes and writes with none, and
/// records the result.
fn write_dump(server: &Server) -> Result<(), String> {
    // Saves take turns: two at once would share the temp file's name.
    let _turn = server
        .persistence
        .writing
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let started = Instant::now();
    let (snapshot, dirty) = {
        let keyspace = server.db.read();
        (keyspace.snapshot(), keyspace.dirty())
    };
    let aux = aux_fields(&[]);
    let path = Path::new(&server.config.dbfilename);
    let result = write_atomically(path, |out| write_rdb(out, &snapshot, &aux).map(drop));
    let result = result.map(|()| dirty);
    // The old values written over since the snapshot go now, unlocked.
    drop(snapshot);
    // One lock at a time: the databases' lock is released before the
    // persistence state is locked, since EXEC holds the first and may ask
    // for the second (LASTSAVE, BGSAVE inside a transaction).
    if let Ok(dirty) = &result {
        server.db.write().mark_saved(*dirty);
    }
    let mut state = server.persistence.lock();
    match result {
        Ok(_) => {
            state.last_save = unix_millis() / 1000;
            state.failed_at = None;
            log::notice(format!(
                "DB saved on disk in {} ms",
                started.elapsed().as_millis()
            ));
            Ok(())
        }
        Err(e) => {
            state.failed_at = Some(Instant::now());
            log::warning(format!("Failed saving the DB: {e}"));
            Err(e.to_string())
        }
    }
}

/// Replaces `path` with what `write` writes, so that a crash leaves the
/// old file or the new one: temp file, fsync, rename, fsync of the
/// directory.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let written = File::create(&temp).and_then(|file| {
        let mut out = BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable only once the directory itself is synced.
    File::open(dir)?.sync_all()
}

/// Loads the dump, if there is one, into the keyspace. Keys whose expiry
/// has passed are dropped, as a master does. Any fault in the file is an
/// error that names it and its place: the server must not start on half
/// the data.
pub fn load(server: &Server) -> Result<(), String> {
    let path = &server.config.dbfilename;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot open {path}: {e}")),
    };
    let started = Instant::now();
    let now = unix_millis();
    let mut keyspace = Keyspace::default();
    let mut expired = 0;
    rdb::load(&mut BufReader::new(file), |db, key, value, expires_at| {
        if db != 0 {
            return Err(RdbError::new(
                0,
                format!("the file holds keys of database {db}; this server has one"),
            ));
        }
        if keyspace.get(&key, i64::MIN).is_some() {
            let key = String::from_utf8_lossy(&key);
            return Err(RdbError::new(0, format!("duplicated key '{key}'")));
        }
        if expires_at.is_some_and(|deadline| deadline <= now) {
            expired += 1;
        } else {
            keyspace.set(key, value, expires_at);
        }
        Ok(())
    })
    .map_err(|e| format!("{path}: {e}"))?;
    keyspace.mark_saved(keyspace.dirty());
    log::notice(format!(
        "DB loaded from disk: {:.3} seconds, keys loaded: {}, keys expired: {expired}",
        started.elapsed().as_secs_f64(),
        keyspace.len()
    ));
    *server.db.write() = keyspace;
    Ok(())
}

/// Starts the thread that checks the save points ten times a second.
pub fn spawn_save_points(server: Server) -> io::Result<()> {
    if server.config.save.is_empty() {
        return Ok(());
    }
    thread::Builder::new()
        .name("save-points".into())
        .spawn(move || loop {
            thread::sleep(Duration::from_millis(100));
            let dirty = server.db.read().dirty();
            let (since_save, may_try) = {
                let state = server.persistence.lock();
                let since_save = unix_millis() / 1000 - state.last_save;
                let may_try = !state.in_progress
                    && state.failed_at.is_none_or(|t| t.elapsed() >= RETRY_DELAY);
                (since_save, may_try)
            };
            let due = server
                .config
                .save
                .iter()
                .any(|&(seconds, changes)| dirty >= changes && since_save >= seconds as i64);
            if due && may_try {
                log::notice(format!("{dirty} changes since the last save: saving"));
                let _ = bgsave(&server);
            }
        })?;
    Ok(())
}

/// SHUTDOWN, and SIGTERM or SIGINT (see main.rs): saves when asked to
/// (or by default when save points are set), then ends the process.
/// Returns only if the save failed.
pub fn shutdown(server: &Server, save: Option<bool>) -> String {
    log::warning("User requested shutdown...");
    let save = save.unwrap_or(!server.config.save.is_empty());
    if save {
        log::notice("Saving the final RDB snapshot before exiting.");
        // write_dump has logged why, if it failed.
        if write_dump(server).is_err() {
            log::warning("Error trying to save the DB, can't exit.");
            log::warning(
                "Errors trying to shut down the server. Check the logs for more information.",
            );
            return "ERR Errors trying to SHUTDOWN. Check logs.".into();
        }
    }
    // Every write acknowledged so far is in the log; put it on the disk.
    if server.aof.is_on() {
        log::notice("Calling fsync() on the AOF file.");
        server.aof.flush();
    }
    log::warning("Redis is now ready to exit, bye bye...");
    std::process::exit(0);
}

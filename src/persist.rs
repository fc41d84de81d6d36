//! RDB snapshots on disk: SAVE, BGSAVE, save points, and loading the dump
//! at start.
//!
//! A save must write one consistent moment of the data, without making
//! the clients wait while it writes. Redis calls fork() and lets the child
//! write while the parent goes on (the kernel copies only the pages that
//! change). std has no fork, so we do the same by hand: `Db::snapshot`
//! takes a [`Snapshot`] of each database, shared handles on the entries
//! copied a shard at a time, copy-on-write (keyspace/snapshot.rs), so that
//! no client waits for more than one shard's copy; then the RDB is encoded
//! from the snapshot with no lock held, and streamed through a `BufWriter`
//! to the temp file, its checksum computed as the bytes go by. The file
//! is never built in memory.
//!
//! BGSAVE and the save points need no lock of the caller's: they ask the
//! saver thread, which owns a handle on the databases, to save. So BGSAVE
//! may run inside EXEC, which holds the databases' write lock: the save
//! starts once the transaction is over. SAVE and SHUTDOWN save in the
//! caller's thread and take the `Db` handle as an argument, which code
//! running under the lock does not have.
//!
//! The file is replaced atomically: write `temp-<pid>.rdb`, fsync it,
//! rename it over the dump, fsync the directory. A crash at any moment
//! leaves either the old dump or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::keyspace::{Hash, Keyspace, Set, Snapshot, Value, ValueRef};
use crate::log;
use crate::rdb::{self, AuxValue, Loaded, RdbError, RdbWriter};
use crate::settings::Settings;
use crate::time::unix_millis;

/// After a failed background save, wait this long before the save points
/// may try again (Redis's `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What the server remembers about saving, and where it saves.
pub struct Persistence {
    state: Mutex<SaveState>,
    /// Signalled when a background save is asked for.
    wake: Condvar,
    /// Held while a dump is written (SAVE, BGSAVE, SHUTDOWN).
    writing: Mutex<()>,
    /// The dump's file name (`dbfilename`), in the working directory.
    path: String,
    /// Save points and compression, as CONFIG SET leaves them.
    settings: Arc<Settings>,
    /// Did the last background save fail (Redis's `lastbgsave_status`)?
    /// An atomic, because every write command reads it (MISCONF).
    bgsave_failed: AtomicBool,
}

/// What a write gets while background saves fail, word for word Redis's.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

struct SaveState {
    /// Unix time in seconds of the last successful save (LASTSAVE).
    last_save: i64,
    /// Is a background save asked for or running?
    in_progress: bool,
    /// Has BGSAVE asked for a save the saver thread has not started yet?
    requested: bool,
    /// When the last save failed, if it did.
    failed_at: Option<Instant>,
}

impl Persistence {
    /// No save yet: LASTSAVE reports the start time, as in Redis. Dumps go
    /// to `path`.
    pub fn new(path: String, settings: Arc<Settings>) -> Persistence {
        Persistence {
            state: Mutex::new(SaveState {
                last_save: unix_millis() / 1000,
                in_progress: false,
                requested: false,
                failed_at: None,
            }),
            wake: Condvar::new(),
            writing: Mutex::new(()),
            path,
            settings,
            bgsave_failed: AtomicBool::new(false),
        }
    }

    /// Unix time in seconds of the last successful save.
    pub fn last_save(&self) -> i64 {
        self.lock().last_save
    }

    /// Is a background save running?
    pub fn in_progress(&self) -> bool {
        self.lock().in_progress
    }

    /// Did the last background save fail? (A failed SAVE does not count,
    /// as in Redis; any save that succeeds clears it.)
    pub fn bgsave_failed(&self) -> bool {
        self.bgsave_failed.load(Ordering::Relaxed)
    }

    /// Must writes be refused (MISCONF)? As in Redis: the last background
    /// save failed, save points are set, and `stop-writes-on-bgsave-error`
    /// is on. Cheap when saves succeed: one relaxed load.
    pub fn refuses_writes(&self) -> bool {
        self.bgsave_failed()
            && self.settings.stop_writes_on_bgsave_error()
            && !self.settings.save().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, SaveState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SAVE: writes the dump now, in the caller's thread.
    pub fn save(&self, db: &Db) -> Result<(), String> {
        if self.lock().in_progress {
            return Err("Background save already in progress".into());
        }
        self.write_dump(db)
    }

    /// BGSAVE: asks the saver thread to write the dump. Takes no lock but
    /// the persistence state's, so it may run anywhere, EXEC included.
    pub fn bgsave(&self) -> Result<(), String> {
        let mut state = self.lock();
        if state.in_progress {
            return Err("Background save already in progress".into());
        }
        state.in_progress = true;
        state.requested = true;
        self.wake.notify_all();
        log::notice("Background saving started");
        Ok(())
    }

    /// The final save of a shutdown: writes the dump now, once a save
    /// already running has ended (it waits its turn).
    pub fn final_save(&self, db: &Db) -> Result<(), String> {
        self.write_dump(db)
    }

    /// Removes the temp file of a save this process may be writing, before
    /// an exit that will not wait for it to end.
    pub fn remove_temp_file(&self) {
        // The name `write_atomically` gives it, next to the dump.
        let dir = Path::new(&self.path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let _ = fs::remove_file(dir.join(format!("temp-{}.rdb", std::process::id())));
    }

    /// Snapshots the databases (brief locks, see `Db::snapshot`), encodes
    /// and writes with no lock, and records the result.
    fn write_dump(&self, db: &Db) -> Result<(), String> {
        // Saves take turns: two at once would share the temp file's name.
        let _turn = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let (snapshot, dirty) = db.snapshot(|dbs| dbs.dirty());
        let compress = self.settings.rdbcompression();
        let aux = aux_fields(&[]);
        let path = Path::new(&self.path);
        let result = write_atomically(path, |out| {
            write_rdb(out, &snapshot, compress, &aux).map(drop)
        })
        .map(|()| dirty);
        // The old values written over since the snapshot go now, unlocked.
        drop(snapshot);
        // One lock at a time (see the lock order in server.rs): the
        // databases' lock is released before the persistence state is locked.
        if let Ok(dirty) = &result {
            db.write().mark_saved(dirty);
        }
        let mut state = self.lock();
        match result {
            Ok(_) => {
                state.last_save = unix_millis() / 1000;
                state.failed_at = None;
                self.bgsave_failed.store(false, Ordering::Relaxed);
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

    /// Loads the dump, if there is one, into `db`'s `count` databases.
    /// Keys whose expiry has passed are dropped, as a master does. Any
    /// fault in the file is an error that names it and its place: the
    /// server must not start on half the data.
    pub fn load(&self, db: &Db, count: usize) -> Result<(), String> {
        let path = &self.path;
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot open {path}: {e}")),
        };
        let started = Instant::now();
        let now = unix_millis();
        let mut dbs: Vec<Keyspace> = (0..count).map(|_| Keyspace::default()).collect();
        let (mut expired, mut loaded) = (0, 0);
        rdb::load(&mut BufReader::new(file), |index, key, value, expires_at| {
            let Some(keyspace) = dbs.get_mut(index) else {
                return Err(RdbError::new(
                    0,
                    format!(
                        "the file holds keys of database {index}; this server has {count} (--databases)"
                    ),
                ));
            };
            if keyspace.get(&key, i64::MIN).is_some() {
                let key = String::from_utf8_lossy(&key);
                return Err(RdbError::new(0, format!("duplicated key '{key}'")));
            }
            if expires_at.is_some_and(|deadline| deadline <= now) {
                expired += 1;
            } else {
                keyspace.set(key, loaded_value(value), expires_at);
                loaded += 1;
            }
            Ok(())
        })
        .map_err(|e| format!("{path}: {e}"))?;
        for keyspace in &mut dbs {
            keyspace.mark_saved(keyspace.dirty());
        }
        log::notice(format!(
            "DB loaded from disk: {:.3} seconds, keys loaded: {loaded}, keys expired: {expired}",
            started.elapsed().as_secs_f64(),
        ));
        db.write().replace(dbs);
        Ok(())
    }
}

/// The AUX fields of a snapshot, as Redis 7.0 writes them; `extra` ones
/// (a full sync's replication fields) come before `aof-base`.
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

/// Encodes the snapshots of every database as an RDB with the header
/// fields `aux`, compressed unless `compress` is off, and writes it to
/// `out` as it goes: nothing is held but the compressor's table. Hands
/// `out` back, flushed. Run on the same snapshots, it writes the same bytes.
pub fn write_rdb<W: Write>(
    out: W,
    dbs: &[Snapshot],
    compress: bool,
    aux: &[(&str, AuxValue)],
) -> io::Result<W> {
    let mut rdb = RdbWriter::new(out, compress);
    rdb.header(aux)?;
    for (index, keyspace) in dbs.iter().enumerate() {
        if !keyspace.is_empty() {
            rdb.select_db(index, keyspace.len(), keyspace.volatile_len())?;
            for (key, value, expires_at) in keyspace.iter() {
                match value {
                    ValueRef::String(bytes) => rdb.entry(key, bytes, expires_at)?,
                    ValueRef::List(list) => {
                        rdb.list(key, list.iter().map(Vec::as_slice), expires_at)?
                    }
                    ValueRef::Hash(hash) => {
                        rdb.hash(key, hash.iter(), hash.is_compact(), expires_at)?
                    }
                    ValueRef::Set(Set::Ints(ints)) => rdb.intset(key, ints, expires_at)?,
                    ValueRef::Set(set @ Set::Table(..)) => {
                        let members: Vec<_> = set.iter().collect();
                        rdb.set(key, members.into_iter(), expires_at)?
                    }
                }
            }
        }
    }
    rdb.finish()
}

/// A value read from an RDB, in the form the keyspace keeps it: a hash or
/// set gets the encoding Redis would choose on loading it.
pub fn loaded_value(value: Loaded) -> Value {
    match value {
        Loaded::String(bytes) => Value::String(bytes),
        Loaded::List(elements) => Value::List(elements.into()),
        Loaded::Hash(pairs) => Value::Hash(Hash::from_pairs(pairs)),
        Loaded::Set(members) => Value::Set(Set::from_members(members)),
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

/// Starts the saver thread: it writes the dump when BGSAVE asks, and when
/// a save point is due, which it checks ten times a second.
pub fn spawn_saver(persistence: Arc<Persistence>, db: Db) -> io::Result<()> {
    // The thread runs even with no save points: CONFIG SET may add some.
    thread::Builder::new()
        .name("saver".into())
        .spawn(move || loop {
            let requested = {
                let state = persistence.lock();
                let (mut state, _) = persistence
                    .wake
                    .wait_timeout_while(state, Duration::from_millis(100), |s| !s.requested)
                    .unwrap_or_else(PoisonError::into_inner);
                std::mem::take(&mut state.requested)
            };
            if requested || save_point_due(&persistence, &db) {
                // Failures are logged by write_dump; the flag is cleared either way.
                let failed = persistence.write_dump(&db).is_err();
                let mut state = persistence.lock();
                if failed {
                    persistence.bgsave_failed.store(true, Ordering::Relaxed);
                }
                state.in_progress = false;
            }
        })?;
    Ok(())
}

/// Is a save point due (enough changes, long enough ago)? If so, and no
/// save runs, marks a save as in progress.
fn save_point_due(persistence: &Persistence, db: &Db) -> bool {
    let dirty: u64 = db.read().dirty().iter().sum();
    let mut state = persistence.lock();
    let since_save = unix_millis() / 1000 - state.last_save;
    let may_try = !state.in_progress && state.failed_at.is_none_or(|t| t.elapsed() >= RETRY_DELAY);
    let due = persistence
        .settings
        .save()
        .iter()
        .any(|&(seconds, changes)| dirty >= changes && since_save >= seconds as i64);
    if due && may_try {
        log::notice(format!("{dirty} changes since the last save: saving"));
        state.in_progress = true;
        return true;
    }
    false
}

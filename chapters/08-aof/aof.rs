//! The append-only file: every change the server makes, appended to a log
//! on disk as the command that replays it, in Redis 7.0's multi-part
//! layout (a base snapshot, incremental files, and a manifest naming them;
//! see `manifest.rs`).
//!
//! The log is the second consumer of the change stream that feeds the
//! replicas: `Replication::propagate` hands the same bytes to
//! [`Aof::append`] while the keyspace's write lock is held, so the file's
//! order is the order the changes were applied in.
//!
//! When the bytes reach the disk is the `appendfsync` policy. `write()`
//! puts them in the kernel before the client's reply in every policy, so
//! a crash of the process (kill -9) loses nothing that was acknowledged.
//! What a power cut can take differs: with `always` the append is
//! fsynced before the reply, so nothing; with `everysec` a thread fsyncs
//! once a second, so about a second (two at worst, if a sync is slow);
//! with `no` whatever the kernel has not written back yet (Linux: up to
//! about 30 seconds).
//!
//! A rewrite (BGREWRITEAOF, or automatic when the log has doubled) writes
//! a new base from a snapshot while clients keep appending to a new incr
//! file, then swaps the manifest; see `rewrite.rs`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::config::{Config, Fsync};
use crate::log;
use crate::manifest::{AofFile, Kind, Manifest};
use crate::resp;

/// A handle on the log; clones share it. The default is a log that is off.
#[derive(Clone, Default)]
pub struct Aof {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The turn to write to the file. Writers take turns, and each writes
    /// everything appended so far, its own changes and those of the
    /// threads queued behind it: one `write` (and, under `always`, one
    /// `fsync`) for a whole group of clients, as Redis writes once per
    /// turn of its event loop.
    writing: Mutex<()>,
}

/// Everything behind the lock.
#[derive(Default)]
pub struct State {
    /// Is the log being written?
    pub on: bool,
    /// The fsync policy.
    pub policy: Option<Fsync>,
    /// The AOF's directory.
    pub dir: PathBuf,
    /// The prefix of its file names (`appendonly.aof`).
    pub prefix: String,
    /// Is a rewritten base an RDB?
    pub preamble: bool,
    /// The files of the log.
    pub manifest: Manifest,
    /// The incr file being appended to. Shared so the fsync thread can
    /// sync it without holding the lock.
    file: Option<Arc<File>>,
    /// Has this incr file had its `SELECT 0` yet?
    selected: bool,
    /// Bytes in the base and the incr files.
    pub current_size: u64,
    /// `current_size` after the last load or rewrite: growth is measured
    /// from it.
    pub base_size: u64,
    /// Bytes written since the last fsync?
    unsynced: bool,
    /// Bytes appended and not written yet (by [`Aof::write_out`]), or
    /// that a failed write could not place.
    buffer: Vec<u8>,
    /// Bytes appended since the start, and bytes of those written: a
    /// writer whose bytes someone else wrote meanwhile has nothing to do.
    /// `appended` only grows, by what each append adds: it must not be
    /// worked out from `written` and the buffer, which miss the bytes a
    /// writer has taken and not written yet (see [`Aof::append`]).
    appended: u64,
    written: u64,
    /// Why the last write or fsync failed, while it still fails.
    pub write_error: Option<String>,
    /// When the running rewrite started, if one runs.
    pub rewriting: Option<Instant>,
    /// The incr file opened when the running rewrite started: the files
    /// before it are what the new base replaces.
    pub rewrite_incr_seq: Option<u64>,
    /// How long the last rewrite took, in seconds (-1: none yet).
    pub last_rewrite_secs: i64,
    /// Did the last rewrite fail?
    pub last_rewrite_failed: bool,
    /// Rewrites done.
    pub rewrites: u64,
}

impl Aof {
    /// A log that is off, set up with the names and policy of `config`.
    pub fn new(config: &Config) -> Aof {
        let aof = Aof::default();
        {
            let mut state = aof.lock();
            state.policy = Some(config.appendfsync);
            state.dir = PathBuf::from(&config.appenddirname);
            state.prefix = config.appendfilename.clone();
            state.preamble = config.aof_use_rdb_preamble;
            state.last_rewrite_secs = -1;
        }
        aof
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Takes the turn to write, then locks the state: what moving the log
    /// to another file needs (see [`State::open_next_incr`]), so that no
    /// write is under way to the old file meanwhile.
    pub fn lock_for_switch(&self) -> (MutexGuard<'_, ()>, MutexGuard<'_, State>) {
        let turn = lock(&self.shared.writing);
        (turn, self.lock())
    }

    /// Appends the bytes of some commands to the log's buffer, under the
    /// keyspace's write lock, so that the log's order is the order they
    /// were made in. No I/O here: the caller writes them out with
    /// [`Aof::write_out`] once it has let go of the lock, before it replies.
    pub fn append(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if !state.on || bytes.is_empty() {
            return;
        }
        let before = state.buffer.len();
        if !state.selected {
            // Each incr file says which database its commands are for.
            resp::encode_command(&[b"SELECT".to_vec(), b"0".to_vec()], &mut state.buffer);
            state.selected = true;
        }
        state.buffer.extend_from_slice(bytes);
        // Counted, not worked out as `written + buffer.len()`: while a
        // writer has taken the buffer and is in `write()`, those bytes are
        // in neither, and that sum would fall below what was appended
        // before. A writer that appended then would find its target
        // already "written" once the other's write landed, and reply with
        // its bytes still in the buffer: acknowledged, and lost to a crash
        // before the next write or the fsync thread's turn.
        state.appended += (state.buffer.len() - before) as u64;
    }

    /// Writes what has been appended so far to the file, and under
    /// `always` fsyncs it: called before a write's reply goes out, so an
    /// acknowledged write is in the kernel (and under `always` on the
    /// disk). A failed write keeps the bytes, to be retried (see
    /// [`Aof::flush`]); until then writes are refused with the error (see
    /// [`Aof::refusal`]). Under `always` a failure ends the process
    /// instead, as in Redis: the write was to be on the disk, and is not.
    pub fn write_out(&self) {
        // Everything appended so far, the caller's changes included.
        let target = {
            let state = self.lock();
            if state.written >= state.appended {
                return;
            }
            state.appended
        };
        let _turn = lock(&self.shared.writing);
        let (bytes, file, always) = {
            let mut state = self.lock();
            let Some(file) = state.file.clone().filter(|_| state.on) else {
                return;
            };
            // The writer before us wrote our bytes too.
            if state.written >= target || state.buffer.is_empty() {
                return;
            }
            let always = state.policy == Some(Fsync::Always);
            (std::mem::take(&mut state.buffer), file, always)
        };
        let written = write_or_undo(&file, &bytes).and_then(|()| match always {
            true => file.sync_data(),
            false => Ok(()),
        });
        let mut state = self.lock();
        match written {
            Ok(()) => {
                state.written += bytes.len() as u64;
                state.current_size += bytes.len() as u64;
                state.unsynced = state.policy == Some(Fsync::EverySec);
                if state.write_error.take().is_some() {
                    log::warning("AOF write error looks solved, Redis can write again.");
                }
            }
            Err(e) if always => {
                log::warning(format!(
                    "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting... ({e})"
                ));
                std::process::exit(1);
            }
            Err(e) => {
                if state.write_error.is_none() {
                    log::warning(format!("Error writing to the AOF file: {}", strerror(&e)));
                }
                state.write_error = Some(strerror(&e));
                // In front of what was appended meanwhile.
                let later = std::mem::replace(&mut state.buffer, bytes);
                state.buffer.extend_from_slice(&later);
            }
        }
    }

    /// The error writes get while the log cannot be written, as Redis
    /// words it; `None` when all is well.
    pub fn refusal(&self) -> Option<String> {
        let state = self.lock();
        let error = state.write_error.as_ref()?;
        Some(format!("MISCONF Errors writing to the AOF file: {error}"))
    }

    /// Retries a failed write, then fsyncs what was written since the last
    /// fsync, without holding the lock while the disk works. The
    /// `everysec` thread calls it once a second.
    pub fn flush(&self) {
        self.write_out();
        let file = {
            let mut state = self.lock();
            if !state.on || !state.unsynced {
                return;
            }
            state.unsynced = false;
            state.file.clone()
        };
        if let Some(file) = file {
            if let Err(e) = file.sync_data() {
                log::warning(format!("Error syncing the AOF file: {e}"));
                let mut state = self.lock();
                state.write_error = Some(strerror(&e));
                state.unsynced = true;
            }
        }
    }

    /// Starts writing the log after a load: appends to the last incr file
    /// of `manifest`, or to a new one (then stored in the manifest).
    pub fn open(&self, manifest: Manifest, size: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.manifest = manifest;
        state.current_size = size;
        state.base_size = size;
        if state.manifest.incrs.is_empty() {
            state.open_next_incr("on server start")?;
            let (dir, name) = (state.dir.clone(), state.manifest_name());
            state.manifest.store(&dir, &name)?;
        } else {
            let last = state.manifest.incrs[state.manifest.incrs.len() - 1]
                .name
                .clone();
            log::notice(format!("Opening AOF incr file {last} on server start"));
            let file = append_to(&state.dir.join(last))?;
            state.file = Some(Arc::new(file));
            state.selected = false;
        }
        state.on = true;
        Ok(())
    }

    /// Stops writing the log (CONFIG SET appendonly no).
    pub fn close(&self) {
        self.write_out();
        let (_turn, mut state) = self.lock_for_switch();
        if let Some(file) = state.file.take() {
            let _ = file.sync_data();
        }
        state.on = false;
        state.write_error = None;
        state.buffer.clear();
        state.written = state.appended;
    }

    /// Is the log being written?
    pub fn is_on(&self) -> bool {
        self.lock().on
    }

    /// Should the log be rewritten, by the `auto-aof-rewrite-*` rule?
    pub fn wants_rewrite(&self, percentage: u64, min_size: u64) -> bool {
        let state = self.lock();
        let base = state.base_size.max(1);
        state.on
            && state.rewriting.is_none()
            && !state.last_rewrite_failed
            && percentage > 0
            && state.current_size >= min_size
            && (state.current_size.saturating_sub(base)) * 100 / base >= percentage
    }

    /// The `aof_*` lines of `INFO persistence`, in Redis's order.
    pub fn info(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        let mut line = |name: &str, value: String| {
            out.push_str(&format!("{name}:{value}\r\n"));
        };
        line("aof_enabled", u8::from(state.on).to_string());
        line(
            "aof_rewrite_in_progress",
            u8::from(state.rewriting.is_some()).to_string(),
        );
        line("aof_rewrite_scheduled", "0".into());
        line(
            "aof_last_rewrite_time_sec",
            state.last_rewrite_secs.to_string(),
        );
        let current = state.rewriting.map_or(-1, |t| t.elapsed().as_secs() as i64);
        line("aof_current_rewrite_time_sec", current.to_string());
        let status = if state.last_rewrite_failed {
            "err"
        } else {
            "ok"
        };
        line("aof_last_bgrewrite_status", status.into());
        line("aof_rewrites", state.rewrites.to_string());
        let status = if state.write_error.is_some() {
            "err"
        } else {
            "ok"
        };
        line("aof_last_write_status", status.into());
        if state.on {
            line("aof_current_size", state.current_size.to_string());
            line("aof_base_size", state.base_size.to_string());
            line("aof_pending_rewrite", "0".into());
            line("aof_buffer_length", state.buffer.len().to_string());
            line("aof_pending_bio_fsync", "0".into());
            line("aof_delayed_fsync", "0".into());
        }
        out
    }
}

impl State {
    /// The manifest's file name: `<prefix>.manifest`.
    pub fn manifest_name(&self) -> String {
        format!("{}.manifest", self.prefix)
    }

    /// Opens a new incr file, numbered after the last, lists it in the
    /// manifest (in memory: the caller stores it) and appends to it from
    /// now on. What was appended before goes to the old one, which is
    /// fsynced, so that everything before the switch is on the disk once
    /// the switch is. The caller holds the turn to write
    /// ([`Aof::lock_for_switch`]): no write to the old file can come after.
    pub fn open_next_incr(&mut self, why: &str) -> io::Result<u64> {
        let seq = self.manifest.last_incr_seq() + 1;
        let name = format!("{}.{seq}.incr.aof", self.prefix);
        log::notice(format!("Creating AOF incr file {name} {why}"));
        let file = append_to(&self.dir.join(&name))?;
        if let Some(old) = self.file.take() {
            // A failure here is not this rewrite's problem: the new base
            // will hold everything the old file should have.
            let _ = write_or_undo(&old, &self.buffer).and_then(|()| old.sync_data());
        }
        // What a failed write could not place is in the snapshot the
        // caller takes now; the new file starts clean.
        self.buffer.clear();
        self.written = self.appended;
        if self.write_error.take().is_some() {
            log::warning("AOF write error looks solved, Redis can write again.");
        }
        self.file = Some(Arc::new(file));
        self.selected = false;
        self.unsynced = false;
        self.manifest.incrs.push(AofFile {
            name,
            seq,
            kind: Kind::Incr,
        });
        Ok(seq)
    }
}

/// Locks a mutex; a thread that panicked while holding it leaves the
/// state consistent at every step, so carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens `path` for appending, creating it if needed.
fn append_to(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes all of `bytes` at the end of `file`, or, if that fails part way,
/// cuts the file back to where it was: half a command in the log would
/// make the next one unreadable.
fn write_or_undo(file: &File, bytes: &[u8]) -> io::Result<()> {
    let before = file.metadata()?.len();
    let mut writer = file;
    writer.write_all(bytes).inspect_err(|_| {
        let _ = file.set_len(before);
    })
}

/// The text C's `strerror` gives, which is what Redis puts in its
/// replies: Rust's message without its ` (os error N)` tail.
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

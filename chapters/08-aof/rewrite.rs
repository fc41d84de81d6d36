//! Compacting the AOF: BGREWRITEAOF, the automatic rewrite, and turning
//! the log on at run time; and the thread that fsyncs the log.
//!
//! A rewrite never stops the writers for longer than the snapshot takes,
//! and never loses a write:
//!
//! 1. under the keyspace's lock, so that no change falls between the two,
//!    the log moves on to a new incr file (stored in the manifest at once)
//!    and the snapshot is taken (handles on the values, as BGSAVE takes
//!    it: see `persist.rs`);
//! 2. with no lock held, the snapshot is written as a new base file
//!    (`temp-rewriteaof-bg-<pid>.aof`, fsynced, renamed into place), while
//!    clients keep appending to the new incr file;
//! 3. the manifest is replaced, durably, by one naming the new base and the
//!    incr files opened since step 1;
//! 4. only then are the old base and incr files deleted.
//!
//! A crash at any point leaves a manifest whose files hold every write: the
//! old one (old base, old incrs, new incr) until step 3, the new one after.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::db::SnapshotEntry;
use crate::log;
use crate::manifest::{AofFile, Kind};
use crate::persist;
use crate::rdb::AuxValue;
use crate::resp;
use crate::server::Server;

/// How often the log's thread wakes: the automatic rewrite is checked
/// this often, and the `everysec` fsync runs every tenth time.
const TICK: Duration = Duration::from_millis(100);

/// BGREWRITEAOF: starts a rewrite in a thread of its own. `turn_on` is for
/// CONFIG SET appendonly yes: the log starts with this rewrite.
pub fn start(server: &Server, turn_on: bool) -> Result<(), String> {
    {
        let mut state = server.aof.lock();
        if state.rewriting.is_some() {
            return Err("Background append only file rewriting already in progress".into());
        }
        state.rewriting = Some(Instant::now());
    }
    let background = server.clone();
    let spawned = thread::Builder::new()
        .name("aof-rewrite".into())
        .spawn(move || rewrite(&background, turn_on));
    if let Err(e) = spawned {
        server.aof.lock().rewriting = None;
        return Err(format!("cannot start the rewrite: {e}"));
    }
    log::notice("Background append only file rewriting started");
    Ok(())
}

/// Runs one rewrite and records how it went.
fn rewrite(server: &Server, turn_on: bool) {
    let result = write_new_base(server, turn_on);
    let mut state = server.aof.lock();
    let started = state.rewriting.take().unwrap_or_else(Instant::now);
    state.rewrite_incr_seq = None;
    match result {
        Ok(()) => {
            state.rewrites += 1;
            state.last_rewrite_failed = false;
            state.last_rewrite_secs = started.elapsed().as_secs() as i64;
            log::notice("Background AOF rewrite finished successfully");
        }
        Err(e) => {
            state.last_rewrite_failed = true;
            log::warning(format!("Background AOF rewrite failed: {e}"));
        }
    }
}

/// Steps 1 to 4 of the module's comment.
fn write_new_base(server: &Server, turn_on: bool) -> io::Result<()> {
    if turn_on {
        // From now on the keyspace writes its changes down for the log.
        server.db.write().start_recording();
    }
    let (snapshot, preamble, dir, name, seq) = {
        let keyspace = server.db.read();
        let (_turn, mut state) = server.aof.lock_for_switch();
        fs::create_dir_all(&state.dir)?;
        if state.on || turn_on {
            let incr = state.open_next_incr("on background rewrite")?;
            state.rewrite_incr_seq = Some(incr);
            // While turning on there is no base yet: the manifest waits
            // for it, so that it never names a log without its start.
            if state.on {
                let (dir, name) = (state.dir.clone(), state.manifest_name());
                state.manifest.store(&dir, &name)?;
            }
            state.on = true;
        }
        let seq = state.manifest.base.as_ref().map_or(0, |base| base.seq) + 1;
        let kind = if state.preamble { "rdb" } else { "aof" };
        let name = format!("{}.{seq}.base.{kind}", state.prefix);
        (
            keyspace.snapshot(),
            state.preamble,
            state.dir.clone(),
            name,
            seq,
        )
    };
    let temp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let written = File::create(&temp).and_then(|file| {
        let out = encode(BufWriter::with_capacity(1 << 16, file), &snapshot, preamble)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    // The old values written over since the snapshot go now, unlocked.
    drop(snapshot);
    if let Err(e) = written.and_then(|()| fs::rename(&temp, dir.join(&name))) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }

    let mut state = server.aof.lock();
    let old = state.manifest.clone();
    let cut = state.rewrite_incr_seq.unwrap_or(u64::MAX);
    state.manifest.base = Some(AofFile {
        name: name.clone(),
        seq,
        kind: Kind::Base,
    });
    state.manifest.incrs.retain(|incr| incr.seq >= cut);
    state.manifest.history.clear();
    let manifest_name = state.manifest_name();
    if let Err(e) = state.manifest.store(&dir, &manifest_name) {
        state.manifest = old;
        return Err(e);
    }
    let kept: u64 = state
        .manifest
        .incrs
        .iter()
        .filter_map(|incr| fs::metadata(dir.join(&incr.name)).ok())
        .map(|meta| meta.len())
        .sum();
    let base = fs::metadata(dir.join(&name)).map_or(0, |meta| meta.len());
    state.current_size = base + kept;
    state.base_size = state.current_size;
    let keep = state.manifest.clone();
    drop(state);
    // The new manifest is durable: the files only the old one named can go.
    let gone = old.base.iter().chain(&old.history).chain(&old.incrs);
    for file in gone {
        let still_used = keep
            .base
            .iter()
            .chain(&keep.incrs)
            .any(|k| k.name == file.name);
        if !still_used {
            log::notice(format!(
                "Removing the history file {} in the background",
                file.name
            ));
            let _ = fs::remove_file(dir.join(&file.name));
        }
    }
    Ok(())
}

/// Writes a base file for `snapshot` to `out`: an RDB (the preamble), or
/// the commands that rebuild it.
fn encode<W: Write>(mut out: W, snapshot: &[SnapshotEntry], preamble: bool) -> io::Result<W> {
    if preamble {
        let aux = persist::aux_fields(&[("aof-base", AuxValue::Int(1))]);
        return persist::write_rdb(out, snapshot, &aux);
    }
    let mut command = Vec::new();
    resp::encode_command(&[b"SELECT".to_vec(), b"0".to_vec()], &mut command);
    for (key, value, expires_at) in snapshot {
        resp::encode_command(
            &[b"SET".to_vec(), key.to_vec(), value.to_vec()],
            &mut command,
        );
        if let Some(deadline) = expires_at {
            let deadline = deadline.to_string().into_bytes();
            resp::encode_command(
                &[b"PEXPIREAT".to_vec(), key.to_vec(), deadline],
                &mut command,
            );
        }
        out.write_all(&command)?;
        command.clear();
    }
    out.write_all(&command)?;
    out.flush()?;
    Ok(out)
}

/// Starts the log's thread: it fsyncs once a second under `everysec`,
/// retries a failed write, and starts the automatic rewrite when the log
/// has grown by `auto-aof-rewrite-percentage` since the last one.
pub fn spawn_cron(server: Server) -> io::Result<()> {
    thread::Builder::new()
        .name("aof-fsync".into())
        .spawn(move || {
            for tick in 1u64.. {
                thread::sleep(TICK);
                if tick % 10 == 0 {
                    server.aof.flush();
                }
                let config = &server.config;
                let (percentage, min_size) = (
                    config.auto_aof_rewrite_percentage,
                    config.auto_aof_rewrite_min_size,
                );
                if server.aof.wants_rewrite(percentage, min_size) {
                    log::notice("Starting automatic rewriting of AOF");
                    let _ = start(&server, false);
                }
            }
        })?;
    Ok(())
}

//! Compacting the AOF: BGREWRITEAOF, the automatic rewrite, and turning
//! the log on at run time; and the log's thread, which runs them and
//! fsyncs the log.
//!
//! A rewrite never stops the writers for longer than the snapshot takes,
//! and never loses a write:
//!
//! 1. at one moment of the databases (`Db::snapshot`'s start, under
//!    their write lock), so that no change falls between the two, the log
//!    moves on to a new incr file (stored in the manifest at once) and the
//!    snapshot starts, as BGSAVE's does (keyspace/snapshot.rs);
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
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Aof, AofFile, Kind};
use crate::config::Config;
use crate::db::Db;
use crate::keyspace::{Snapshot, ValueRef};
use crate::log;
use crate::persist;
use crate::rdb::AuxValue;
use crate::resp;
use crate::settings::Settings;

/// What a rewrite needs: the databases to snapshot, the log, and whether
/// to compress an RDB base.
#[derive(Clone)]
struct Rewriter {
    db: Db,
    aof: Aof,
    settings: Arc<Settings>,
}

/// How often the log's thread wakes: rewrites are started this often,
/// and the `everysec` fsync runs every tenth time.
const TICK: Duration = Duration::from_millis(100);

/// Runs one rewrite and records how it went.
fn rewrite(rewriter: &Rewriter, turn_on: bool) {
    log::notice("Background append only file rewriting started");
    let result = write_new_base(rewriter, turn_on);
    let mut state = rewriter.aof.lock();
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
fn write_new_base(rewriter: &Rewriter, turn_on: bool) -> io::Result<()> {
    let compress = rewriter.settings.rdbcompression();
    let aof = &rewriter.aof;
    let (snapshot, switched) = rewriter.db.snapshot(|dbs| -> io::Result<_> {
        if turn_on {
            // From now on the databases write their changes down for the log.
            dbs.start_recording();
        }
        let (_turn, mut state) = aof.lock_for_switch();
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
        Ok((state.preamble, state.dir.clone(), name, seq))
    });
    let (preamble, dir, name, seq) = switched?;
    let temp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let written = File::create(&temp).and_then(|file| {
        let out = BufWriter::with_capacity(1 << 16, file);
        let out = encode(out, &snapshot, preamble, compress)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    // The old values written over since the snapshot go now, unlocked.
    drop(snapshot);
    if let Err(e) = written.and_then(|()| fs::rename(&temp, dir.join(&name))) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }

    let mut state = rewriter.aof.lock();
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

/// Writes a base file for `snapshot` (every database) to `out`: an RDB
/// (the preamble), or the commands that rebuild them.
fn encode<W: Write>(
    mut out: W,
    snapshot: &[Snapshot],
    preamble: bool,
    compress: bool,
) -> io::Result<W> {
    if preamble {
        let aux = persist::aux_fields(&[("aof-base", AuxValue::Int(1))]);
        return persist::write_rdb(out, snapshot, compress, &aux);
    }
    let mut command = Vec::new();
    for (index, keyspace) in snapshot.iter().enumerate() {
        if keyspace.is_empty() {
            continue;
        }
        let select = [b"SELECT".to_vec(), index.to_string().into_bytes()];
        resp::encode_command(&select, &mut command);
        for (key, value, expires_at) in keyspace.iter() {
            match value {
                ValueRef::String(bytes) => {
                    let set = [b"SET".to_vec(), key.to_vec(), bytes.to_vec()];
                    resp::encode_command(&set, &mut command);
                }
                ValueRef::List(list) => {
                    rebuild(b"RPUSH", key, list.iter().cloned(), &mut command);
                }
                ValueRef::Hash(hash) => {
                    let items = hash.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]);
                    rebuild(b"HSET", key, items, &mut command);
                }
                ValueRef::Set(set) => rebuild(b"SADD", key, set.iter(), &mut command),
            }
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
    }
    out.flush()?;
    Ok(out)
}

/// Starts the log's thread: it runs the rewrites asked for, fsyncs once
/// a second under `everysec`, retries a failed write, and starts the
/// automatic rewrite when the log has grown by
/// `auto-aof-rewrite-percentage` since the last one.
pub fn spawn_cron(db: Db, aof: Aof, settings: Arc<Settings>, config: &Config) -> io::Result<()> {
    let (percentage, min_size) = (
        config.auto_aof_rewrite_percentage,
        config.auto_aof_rewrite_min_size,
    );
    let rewriter = Rewriter { db, aof, settings };
    thread::Builder::new().name("aof".into()).spawn(move || {
        for tick in 1u64.. {
            thread::sleep(TICK);
            if tick % 10 == 0 {
                rewriter.aof.flush();
            }
            if rewriter.aof.wants_rewrite(percentage, min_size) {
                log::notice("Starting automatic rewriting of AOF");
                let _ = rewriter.aof.request_rewrite(false);
            }
            let turn_on = {
                let mut state = rewriter.aof.lock();
                let turn_on = state.requested.take();
                if turn_on.is_some() {
                    state.rewriting = Some(Instant::now());
                }
                turn_on
            };
            // In a thread of its own, so that the fsyncs go on meanwhile.
            if let Some(turn_on) = turn_on {
                let background = rewriter.clone();
                let spawned = thread::Builder::new()
                    .name("aof-rewrite".into())
                    .spawn(move || rewrite(&background, turn_on));
                if let Err(e) = spawned {
                    log::warning(format!("Cannot start the AOF rewrite: {e}"));
                    let mut state = rewriter.aof.lock();
                    state.rewriting = None;
                    state.last_rewrite_failed = true;
                }
            }
        }
    })?;
    Ok(())
}

/// Writes `command key item ...` for an aggregate's items, at most 64
/// items to a command (Redis's `AOF_REWRITE_ITEMS_PER_CMD`), so that no
/// command of the log is larger than a client would send.
fn rebuild(name: &[u8], key: &[u8], items: impl Iterator<Item = Vec<u8>>, out: &mut Vec<u8>) {
    let mut args = vec![name.to_vec(), key.to_vec()];
    for item in items {
        args.push(item);
        if args.len() == 2 + 64 {
            resp::encode_command(&args, out);
            args.truncate(2);
        }
    }
    if args.len() > 2 {
        resp::encode_command(&args, out);
    }
}

//! Loading the AOF at start: the manifest, then the base (an RDB, or
//! commands), then every incr file in order, each command applied as a
//! replica applies its master's, in the database the last SELECT chose.
//!
//! With `appendonly yes` the log is the data, and `dump.rdb` is not read,
//! as in Redis. Faults are treated the way Redis treats them:
//!
//! * the last file ends in the middle of a command (the server died while
//!   appending): with `aof-load-truncated yes` the whole commands are
//!   loaded, the file is cut back to the last of them, and the server
//!   starts; an unfinished MULTI is cut off whole;
//! * anything else (a bad byte in the middle, a cut in a file that is not
//!   the last, a file the manifest names that is missing, a bad manifest)
//!   stops the server with an error naming the file and the offset. Half
//!   the data is never loaded silently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use crate::aof::{AofFile, Kind, Manifest};
use crate::cmd::{self, Command, ConnOp, Op};

use crate::log;
use crate::persist;
use crate::rdb::{self, AuxValue, RdbError};
use crate::resp::Args;
use crate::server::Server;

/// Loads the log named by the manifest (or creates a fresh one), then
/// starts appending to it.
pub fn load(server: &Server) -> Result<(), String> {
    let started = Instant::now();
    let (dir, manifest_name) = {
        let state = server.aof.lock();
        (state.dir.clone(), state.manifest_name())
    };
    let manifest = match fs::read(dir.join(&manifest_name)) {
        Ok(text) => Manifest::parse(&text)
            .map_err(|e| format!("*** FATAL AOF MANIFEST FILE ERROR *** {e}"))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return create(server, &dir).map_err(|e| format!("cannot create the AOF: {e}"));
        }
        Err(e) => return Err(format!("cannot read {manifest_name}: {e}")),
    };
    let files: Vec<_> = manifest.base.iter().chain(&manifest.incrs).collect();
    let mut size = 0;
    for file in &files {
        match fs::metadata(dir.join(&file.name)) {
            Ok(meta) => size += meta.len(),
            Err(e) => {
                // C's strerror, as Redis prints it: no "(os error N)".
                let e = e.to_string();
                let e = e.split(" (os error").next().unwrap_or_default();
                return Err(format!(
                    "Unable to obtain the AOF file {} length. stat: {e}",
                    file.name
                ));
            }
        }
    }
    for (i, file) in files.iter().enumerate() {
        let one = Instant::now();
        let path = dir.join(&file.name);
        let bytes = read_file(&path).map_err(|e| format!("cannot read {}: {e}", file.name))?;
        let what = if file.kind == Kind::Base {
            "base"
        } else {
            "incr"
        };
        if file.kind == Kind::Base && bytes.starts_with(b"REDIS") {
            log::notice("Reading RDB base file on AOF loading...");
            load_rdb(server, &bytes).map_err(|e| format!("{}: {e}", file.name))?;
        } else {
            let last = i + 1 == files.len();
            let cut = replay(server, &bytes, &file.name)?;
            if let Some(cut) = cut {
                size -= (bytes.len() - cut) as u64;
                truncate(server, &path, &file.name, cut, last)?;
            }
        }
        log::notice(format!(
            "DB loaded from {what} file {}: {:.3} seconds",
            file.name,
            one.elapsed().as_secs_f64()
        ));
    }
    log::notice(format!(
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    ));
    server.db.write().start_recording();
    server
        .aof
        .open(manifest, size)
        .map_err(|e| format!("cannot open the AOF for appending: {e}"))
}

/// The bytes of a file, as many as its length says when it is opened
/// (Redis reads that many too): a device such as /dev/full never ends.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// No manifest: a new log, as Redis starts one. The base is a snapshot of
/// the (empty) data; an incr file with the first number is opened, and
/// appended to if it is already there.
fn create(server: &Server, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let (name, preamble) = {
        let state = server.aof.lock();
        let kind = if state.preamble { "rdb" } else { "aof" };
        (format!("{}.1.base.{kind}", state.prefix), state.preamble)
    };
    // Commands for nothing are no bytes at all.
    let bytes = if preamble {
        let (snapshot, ()) = server.db.snapshot(|_| ());
        let aux = persist::aux_fields(&[("aof-base", AuxValue::Int(1))]);
        persist::write_rdb(Vec::new(), &snapshot, true, &aux)?
    } else {
        Vec::new()
    };
    log::notice(format!("Creating AOF base file {name} on server start"));
    fs::write(dir.join(&name), &bytes)?;
    File::open(dir.join(&name))?.sync_all()?;
    let manifest = Manifest {
        base: Some(AofFile {
            name,
            seq: 1,
            kind: Kind::Base,
        }),
        ..Manifest::default()
    };
    server.db.write().start_recording();
    server.aof.open(manifest, bytes.len() as u64)
}

/// Loads an RDB base. Unlike a dump, keys whose deadline has passed are
/// kept, as Redis keeps them: the expiry cycle deletes them, and logs it.
fn load_rdb(server: &Server, bytes: &[u8]) -> Result<(), RdbError> {
    let mut dbs = server.db.write();
    let count = dbs.len();
    rdb::load(
        &mut BufReader::new(bytes),
        |index, key, value, expires_at| {
            if index >= count {
                let message = format!(
                "the file holds keys of database {index}; this server has {count} (--databases)"
            );
                return Err(RdbError::new(0, message));
            }
            let _ = dbs[index].set(key, persist::loaded_value(value), expires_at);
            Ok(())
        },
    )?;
    Ok(())
}

/// Why reading a command stopped.
enum Stop {
    /// The bytes end inside a command.
    Short,
    /// A byte that cannot be there, at this offset.
    Bad(usize),
}

/// Applies every command in `bytes`. Returns `Some(offset)` when the file
/// ends inside a command (or inside MULTI): the offset to cut it back to.
fn replay(server: &Server, bytes: &[u8], name: &str) -> Result<Option<usize>, String> {
    let mut pos = 0;
    // Inside MULTI: where it began, and the commands queued so far.
    let mut multi: Option<(usize, Vec<Op>)> = None;
    // The database the last SELECT chose.
    let mut selected = 0;
    let databases = server.config.databases;
    loop {
        if pos == bytes.len() {
            return Ok(multi.map(|(start, _)| {
                log::warning(format!(
                    "Revert incomplete MULTI/EXEC transaction in AOF file {name}"
                ));
                start
            }));
        }
        let start = pos;
        let args = match read_command(bytes, &mut pos) {
            Ok(Some(args)) => args,
            Ok(None) => continue, // an annotation line
            Err(Stop::Short) => return Ok(Some(multi.map_or(start, |(begin, _)| begin))),
            Err(Stop::Bad(offset)) => {
                return Err(format!(
                    "Bad file format reading the append only file {name} at offset {offset}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
                ))
            }
        };
        let word = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let unknown = || {
            format!(
                "Unknown command '{word}' reading the append only file {name} at offset {start}"
            )
        };
        let command = Command::parse(args).map_err(|_| unknown())?;
        match command.op {
            Op::Conn(ConnOp::Select(index)) => {
                selected = usize::try_from(index)
                    .ok()
                    .filter(|&i| i < databases)
                    .ok_or_else(|| {
                        format!("SELECT {index} out of range in AOF file {name} at offset {start}")
                    })?;
            }
            Op::Multi => multi = Some((start, Vec::new())),
            Op::Exec => {
                let Some((_, ops)) = multi.take() else {
                    return Err(format!(
                        "EXEC without MULTI in AOF file {name} at offset {start}"
                    ));
                };
                cmd::apply_from_master(ops, &server.db, selected);
            }
            op if command.spec.is_write() => match &mut multi {
                Some((_, ops)) => ops.push(op),
                None => cmd::apply_from_master(vec![op], &server.db, selected),
            },
            _ => return Err(unknown()),
        }
    }
}

/// Cuts a file that ends inside a command back to its last whole command,
/// if the configuration allows it and the file is the last one.
fn truncate(
    server: &Server,
    path: &Path,
    name: &str,
    cut: usize,
    last: bool,
) -> Result<(), String> {
    if !server.config.aof_load_truncated {
        return Err(format!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
        ));
    }
    log::warning(format!(
        "!!! Warning: short read while loading the AOF file {name}!!!"
    ));
    log::warning(format!("!!! Truncating the AOF {name} at offset {cut} !!!"));
    if !last {
        return Err(format!(
            "Fatal error: the truncated file {name} is not the last file"
        ));
    }
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| {
            file.set_len(cut as u64)?;
            file.sync_all()
        })
        .map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
    log::warning(format!(
        "AOF {name} loaded anyway because aof-load-truncated is enabled"
    ));
    Ok(())
}

/// Reads one command, a RESP array of bulk strings, at `*pos`, and moves
/// `*pos` past it. A line starting with `#` is an annotation (Redis's
/// `#TS:` timestamps): skipped, `Ok(None)`.
fn read_command(bytes: &[u8], pos: &mut usize) -> Result<Option<Args>, Stop> {
    if bytes[*pos] == b'#' {
        let end = find_crlf(bytes, *pos).ok_or(Stop::Short)?;
        *pos = end + 2;
        return Ok(None);
    }
    let count = header(bytes, pos, b'*')?;
    if count < 1 {
        return Err(Stop::Bad(*pos));
    }
    let mut args = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let len = header(bytes, pos, b'$')? as usize;
        let end = *pos + len;
        if end + 2 > bytes.len() {
            return Err(Stop::Short);
        }
        if &bytes[end..end + 2] != b"\r\n" {
            return Err(Stop::Bad(end));
        }
        args.push(bytes[*pos..end].to_vec());
        *pos = end + 2;
    }
    Ok(Some(args))
}

/// Reads `<mark><number>\r\n` at `*pos`.
fn header(bytes: &[u8], pos: &mut usize, mark: u8) -> Result<i64, Stop> {
    match bytes.get(*pos) {
        None => return Err(Stop::Short),
        Some(&b) if b != mark => return Err(Stop::Bad(*pos)),
        Some(_) => {}
    }
    let end = find_crlf(bytes, *pos).ok_or(Stop::Short)?;
    let text = std::str::from_utf8(&bytes[*pos + 1..end]).map_err(|_| Stop::Bad(*pos))?;
    let number = text.parse::<i64>().map_err(|_| Stop::Bad(*pos))?;
    if number < 0 {
        return Err(Stop::Bad(*pos));
    }
    *pos = end + 2;
    Ok(number)
}

/// The offset of the next `\r\n` at or after `from`.
fn find_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<Vec<Args>, Stop> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < bytes.len() {
            if let Some(args) = read_command(bytes, &mut pos)? {
                out.push(args);
            }
        }
        Ok(out)
    }

    #[test]
    fn commands_and_annotations_are_read() {
        let bytes = b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n";
        let commands = read_all(bytes).ok().unwrap();
        assert_eq!(
            commands,
            vec![
                vec![b"SELECT".to_vec(), b"0".to_vec()],
                vec![b"MULTI".to_vec()]
            ]
        );
    }

    #[test]
    fn a_cut_is_short_and_garbage_is_bad() {
        assert!(matches!(
            read_all(b"*2\r\n$3\r\nDEL\r\n$1\r\nk"),
            Err(Stop::Short)
        ));
        assert!(read_all(b"*1\r\n$4\r\nPING\r\n").is_ok());
        assert!(matches!(
            read_all(b"*1\r\n$4\r\nPING\r\nxyz"),
            Err(Stop::Bad(14))
        ));
    }
}

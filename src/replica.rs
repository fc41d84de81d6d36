//! The replica's side: a thread that connects to the master, does the
//! handshake, loads the snapshot, then applies the stream for as long as
//! the link lasts, and starts over when it breaks.
//!
//! ```text
//! replica                         master
//!   PING                       ->
//!                              <-  +PONG
//!   REPLCONF listening-port P  ->
//!   REPLCONF capa eof psync2   ->
//!                              <-  +OK, +OK
//!   PSYNC ? -1                 ->  (or PSYNC <replid> <offset+1>)
//!                              <-  +FULLRESYNC <replid> <offset>
//!                              <-  $<len> + RDB   (or $EOF:<mark> + RDB + mark)
//!                              <-  the stream: SET ..., DEL ..., PING, REPLCONF GETACK *
//!   REPLCONF ACK <offset>      ->  (every second, and in answer to GETACK)
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::cmd::{self, Command, Op};
use crate::error::Error;
use crate::keyspace::Keyspace;
use crate::log;
use crate::persist::loaded_value;
use crate::rdb;
use crate::resp::{self, Args};
use crate::server::Server;

/// The master must say something at least this often (it pings every 10 s).
const MASTER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the replica reports its offset.
const ACK_PERIOD: Duration = Duration::from_secs(1);

/// Starts the replica supervisor: a thread that waits for this server to
/// be told to follow a master (`--replicaof`, REPLICAOF), and starts a
/// link thread for each new master. REPLICAOF itself only changes the
/// replication state, so the commands need not know this module.
pub fn spawn_supervisor(server: Server) -> io::Result<()> {
    thread::Builder::new()
        .name("replica-supervisor".into())
        .spawn(move || {
            let mut seen = 0;
            loop {
                let target = server.replication.next_target(seen);
                seen = target.generation;
                let server = server.clone();
                let spawned = thread::Builder::new()
                    .name("replica-link".into())
                    .spawn(move || follow(&server, &target.host, target.port, seen));
                if let Err(e) = spawned {
                    log::warning(format!("Cannot start the replica thread: {e}"));
                }
            }
        })?;
    Ok(())
}

/// Syncs with the master again and again, until a REPLICAOF changes the
/// generation: every broken link is retried, after a pause that grows.
fn follow(server: &Server, host: &str, port: u16, generation: u64) {
    let mut pause = Duration::from_millis(100);
    // The database the stream last SELECTed: a partial resync goes on
    // where the stream was, and the master does not SELECT again.
    let mut selected = 0;
    while server.replication.is_current(generation) {
        log::notice(format!("Connecting to MASTER {host}:{port}"));
        match sync(server, host, port, generation, &mut selected) {
            Ok(()) => log::notice("MASTER closed the connection"),
            Err(e) => log::warning(format!("Replication with MASTER {host}:{port}: {e}")),
        }
        server.replication.set_link(generation, false, None);
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// One link's life: handshake, snapshot or partial resync, then the stream.
fn sync(
    server: &Server,
    host: &str,
    port: u16,
    generation: u64,
    selected: &mut usize,
) -> Result<(), Error> {
    let socket = TcpStream::connect((host, port))?;
    socket.set_read_timeout(Some(MASTER_TIMEOUT))?;
    server
        .replication
        .set_link(generation, false, Some(socket.try_clone()?));
    let mut reader = Counted::new(BufReader::new(socket.try_clone()?));
    let writer = Arc::new(Mutex::new(socket.try_clone()?));
    let send = |args: &[&[u8]]| -> io::Result<()> {
        let args: Args = args.iter().map(|a| a.to_vec()).collect();
        let mut bytes = Vec::new();
        resp::encode_command(&args, &mut bytes);
        writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(&bytes)
    };

    send(&[b"PING"])?;
    expect_ok(&read_line(&mut reader)?, "PING")?;
    let my_port = server.listeners.port().to_string();
    send(&[b"REPLCONF", b"listening-port", my_port.as_bytes()])?;
    send(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    // Errors here are "non critical", as Redis says: an old master may not
    // know an option. Read the replies and go on.
    read_line(&mut reader)?;
    read_line(&mut reader)?;

    let (replid, offset) = (server.replication.replid(), server.replication.offset());
    // Ask to continue where we stopped; the master decides if it can.
    let (psync_id, psync_offset) = if offset > 0 {
        (replid.clone(), (offset + 1).to_string())
    } else {
        ("?".to_string(), "-1".to_string())
    };
    send(&[b"PSYNC", psync_id.as_bytes(), psync_offset.as_bytes()])?;
    let reply = read_line(&mut reader)?;
    let words: Vec<&str> = reply.split(' ').collect();
    match words.as_slice() {
        ["+FULLRESYNC", replid, offset] => {
            *selected = 0;
            let offset = offset.parse().map_err(|_| protocol(&reply))?;
            load_snapshot(server, &mut reader)?;
            server.replication.synced(replid, offset);
            log::notice("MASTER <-> REPLICA sync: Finished with success");
        }
        ["+CONTINUE", rest @ ..] => {
            let replid = match rest {
                [replid] => Some(*replid),
                _ => None,
            };
            server.replication.continued(replid);
            log::notice("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        }
        _ => return Err(protocol(&reply)),
    }
    server.replication.set_link(generation, true, None);

    // Report our offset every second, from a thread of its own, for as long
    // as this link lives.
    let alive = Arc::new(AtomicBool::new(true));
    let acker = {
        let (server, writer, alive) = (server.clone(), Arc::clone(&writer), Arc::clone(&alive));
        thread::Builder::new()
            .name("replica-acks".into())
            .spawn(move || {
                while alive.load(Ordering::Relaxed) {
                    let offset = server.replication.offset();
                    let ack = ack_command(offset);
                    let mut socket = writer.lock().unwrap_or_else(PoisonError::into_inner);
                    if socket.write_all(&ack).is_err() {
                        break;
                    }
                    drop(socket);
                    thread::sleep(ACK_PERIOD);
                }
            })?
    };
    let result = apply_stream(server, &mut reader, &writer, generation, selected);
    alive.store(false, Ordering::Relaxed);
    let _ = socket.shutdown(Shutdown::Both);
    let _ = acker.join();
    result
}

/// Applies the master's stream: every command changes our data and
/// advances our offset by its exact size in bytes.
fn apply_stream(
    server: &Server,
    reader: &mut Counted<BufReader<TcpStream>>,
    writer: &Mutex<TcpStream>,
    generation: u64,
    selected: &mut usize,
) -> Result<(), Error> {
    let mut transaction: Option<Vec<Op>> = None;
    // Bytes of a transaction not applied yet: they count once EXEC applies it.
    let mut pending = 0;
    loop {
        let start = reader.count;
        let Some(args) =
            resp::read_request(reader, resp::Limits::default()).map_err(|e| match e {
                resp::ReadError::Io(e) => Error::Io(e),
                resp::ReadError::Protocol(msg) => protocol(&String::from_utf8_lossy(&msg)),
            })?
        else {
            return Ok(());
        };
        if !server.replication.is_current(generation) {
            return Ok(());
        }
        let size = (reader.count - start) as i64;
        let name = args
            .first()
            .map(|n| String::from_utf8_lossy(n).into_owned());
        let parsed = (!args.is_empty()).then(|| Command::parse(args)).transpose();
        if let Err(error) = &parsed {
            // A master's command this server does not know (a type it lacks,
            // say): say so, rather than drift silently.
            log::warning(format!(
                "Skipped a command from MASTER it cannot run: {name:?}: {error:?}"
            ));
        }
        if let Ok(Some(Command { op, spec })) = parsed {
            match op {
                // GETACK asks where we were before it: answer, then count it.
                Op::ReplConf(cmd::ReplConf::GetAck) => {
                    let offset = server.replication.offset();
                    let ack = ack_command(offset);
                    writer
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .write_all(&ack)?;
                }
                // A transaction is applied whole, under one lock, as on the master.
                Op::Multi => transaction = Some(Vec::new()),
                Op::Exec => cmd::apply_from_master(
                    transaction.take().unwrap_or_default(),
                    &server.db,
                    *selected,
                ),
                // The database the next commands apply to.
                Op::Conn(cmd::ConnOp::Select(index)) => {
                    *selected = usize::try_from(index)
                        .unwrap_or(0)
                        .min(server.config.databases - 1);
                }
                // The master's subscribers got it; ours get it too.
                Op::PubSub(cmd::PubSubOp::Publish(kind, channel, message)) => {
                    server.pubsub.publish(kind, &channel, &message);
                }
                _ if spec.is_write() => match &mut transaction {
                    Some(queued) => queued.push(op),
                    None => cmd::apply_from_master(vec![op], &server.db, *selected),
                },
                // PING, SELECT and the like: nothing to do but count them.
                _ => {}
            }
        }
        let processed = if transaction.is_some() {
            pending += size;
            0
        } else {
            std::mem::take(&mut pending) + size
        };
        server.replication.processed(processed);
    }
}

/// Reads the `$<len>` or `$EOF:<mark>` snapshot and replaces our data with it.
fn load_snapshot(server: &Server, reader: &mut impl BufRead) -> Result<(), Error> {
    let header = read_line(reader)?;
    let mut fresh: Vec<Keyspace> = (0..server.config.databases)
        .map(|_| Keyspace::default())
        .collect();
    let mut skipped = 0;
    let mut store = |index: usize, key, value, expires_at| {
        // A master with more databases than us: keys beyond ours are left out.
        match fresh.get_mut(index) {
            Some(keyspace) => {
                keyspace.set(key, loaded_value(value), expires_at);
            }
            None => skipped += 1,
        }
        Ok(())
    };
    if let Some(mark) = header.strip_prefix("$EOF:") {
        // Diskless: the RDB, then the same 40-byte mark.
        rdb::load(reader, &mut store).map_err(|e| protocol(&e.to_string()))?;
        let mut end = vec![0; mark.len()];
        reader.read_exact(&mut end)?;
        if end != mark.as_bytes() {
            return Err(protocol("the snapshot's end mark does not match"));
        }
    } else {
        let len: u64 = header
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| protocol(&header))?;
        let mut body = reader.take(len);
        rdb::load(&mut body, &mut store).map_err(|e| protocol(&e.to_string()))?;
        io::copy(&mut body, &mut io::sink())?;
    }
    if skipped > 0 {
        log::warning(format!("Skipped {skipped} keys of databases beyond ours"));
    }
    let keys: usize = fresh.iter().map(Keyspace::len).sum();
    log::notice(format!(
        "MASTER <-> REPLICA sync: Loading DB in memory ({keys} keys)"
    ));
    server.db.write().replace(fresh);
    Ok(())
}

/// Reads one reply line, skipping the bare newlines a master sends to
/// keep the link alive while it prepares the snapshot.
fn read_line(reader: &mut impl BufRead) -> Result<String, Error> {
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
}

fn expect_ok(reply: &str, what: &str) -> Result<(), Error> {
    // Any status reply will do; so will NOAUTH, as in Redis (AUTH comes later).
    if reply.starts_with('+') || reply.starts_with("-NOAUTH") {
        Ok(())
    } else {
        Err(protocol(&format!("unexpected reply to {what}: {reply}")))
    }
}

fn ack_command(offset: i64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let args = [
        b"REPLCONF".to_vec(),
        b"ACK".to_vec(),
        offset.to_string().into_bytes(),
    ];
    resp::encode_command(&args, &mut bytes);
    bytes
}

fn protocol(msg: &str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, msg.to_string()))
}

/// A reader that counts the bytes consumed through it: the replica's
/// offset is exactly the number of stream bytes it has processed.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Self {
        Counted { inner, count: 0 }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count += amount as u64;
        self.inner.consume(amount);
    }
}

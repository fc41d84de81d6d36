//! The master's end of one replica's link: after PSYNC (or the older SYNC),
//! a client connection stops being a client and becomes a replica.
//!
//! The connection's thread sends the snapshot, then copies the stream from
//! its subscription to the socket; a second thread reads the replica's
//! `REPLCONF ACK <offset>` messages. Neither ever holds a lock while it
//! writes to the socket: a slow replica only fills its own queue.

use std::io::{BufRead, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;

use crate::error::Error;
use crate::keyspace::Snapshot;
use crate::log;
use crate::persist;
use crate::rdb::AuxValue;
use crate::replication::{self, Capabilities, Replication, Subscription, SyncRequest, PING_PERIOD};
use crate::resp;
use crate::server::Server;

/// Serves a replica until its link breaks. `listening_port` is what the
/// replica said in `REPLCONF listening-port` (INFO shows it).
pub fn serve_replica(
    server: &Server,
    stream: TcpStream,
    reader: impl BufRead + Send + 'static,
    request: SyncRequest,
    listening_port: u16,
    capa: Capabilities,
) -> Result<(), Error> {
    let ip = stream.peer_addr()?.ip();
    // A client's idle `timeout` does not apply to a replica: one that is
    // loading a large snapshot says nothing for a while, and must not be
    // dropped for it (Redis exempts replicas too).
    stream.set_read_timeout(None)?;
    let mut out = BufWriter::new(stream.try_clone()?);
    let replication = &server.replication;

    // A replica that was following us and lost the link may only need what
    // it missed, if the backlog still holds it.
    let partial = match &request.psync {
        Some((replid, offset)) => replication.subscribe_from(replid, *offset, ip, listening_port),
        None => None,
    };
    let subscription = match partial {
        Some((subscription, missed, replid)) => {
            // Only a PSYNC2 replica expects the id (it may have changed).
            if capa.psync2 {
                write!(out, "+CONTINUE {replid}\r\n")?;
            } else {
                out.write_all(b"+CONTINUE\r\n")?;
            }
            out.write_all(&missed)?;
            log::notice(format!(
                "Partial resynchronization request from {ip}:{listening_port} accepted"
            ));
            subscription
        }
        None => {
            // The snapshot starts and the subscription is taken under one
            // lock, so the stream carries exactly the changes made after the
            // snapshot. The snapshot shares the entries, copied a shard at
            // a time (keyspace/snapshot.rs): writers wait for one shard's
            // copy at most, not for the transfer.
            let (snapshot, (subscription, replid, offset)) = server
                .db
                .snapshot(|dbs| replication.subscribe(dbs, ip, listening_port));
            if request.psync.is_some() {
                write!(out, "+FULLRESYNC {replid} {offset}\r\n")?;
                out.flush()?;
            }
            let len = send_snapshot(&mut out, &snapshot, server, capa.eof, &replid, offset)?;
            drop(snapshot);
            log::notice(format!(
                "Synchronization with replica {ip}:{listening_port} succeeded ({len} bytes)"
            ));
            subscription
        }
    };
    out.flush()?;

    let id = subscription.id;
    let acks = {
        let replication = replication.clone();
        let stream = stream.try_clone()?;
        thread::Builder::new()
            .name(format!("replica-{id}-acks"))
            .spawn(move || read_acks(&replication, id, reader, &stream))?
    };
    let result = stream_to_replica(subscription, &mut out);
    // Whatever ended the link, end it fully: both threads, both directions.
    replication.remove(id);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = acks.join();
    log::notice(format!(
        "Connection with replica {ip}:{listening_port} lost"
    ));
    result
}

/// Copies stream bytes to the replica, flushing whenever it has caught up.
fn stream_to_replica(subscription: Subscription, out: &mut impl Write) -> Result<(), Error> {
    // The loop ends when the master drops this replica's sender: the link
    // was removed, or the replica could not keep up.
    while let Ok(bytes) = subscription.stream.recv() {
        out.write_all(&bytes)?;
        subscription
            .queued
            .fetch_sub(bytes.len(), Ordering::Relaxed);
        while let Ok(more) = subscription.stream.try_recv() {
            out.write_all(&more)?;
            subscription.queued.fetch_sub(more.len(), Ordering::Relaxed);
        }
        out.flush()?;
    }
    Ok(())
}

/// Reads what the replica sends: `REPLCONF ACK <offset>`, and newlines
/// while it loads. Anything else is ignored.
fn read_acks(replication: &Replication, id: u64, mut reader: impl BufRead, stream: &TcpStream) {
    while let Ok(Some(args)) = resp::read_request(&mut reader, resp::Limits::default()) {
        let is_ack = args.len() == 3
            && args[0].eq_ignore_ascii_case(b"REPLCONF")
            && args[1].eq_ignore_ascii_case(b"ACK");
        if let Some(offset) = is_ack.then(|| resp::parse_int(&args[2])).flatten() {
            replication.ack(id, offset);
        }
    }
    replication.remove(id);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Streams the snapshot to the replica as an RDB, with the replication
/// fields a replica uses to know where the stream starts. Returns its size.
///
/// A replica that said `capa eof` (Redis 7.0's do, and ours) gets the
/// framing of Redis's disk-less sync: `$EOF:<40 random characters>\r\n`,
/// the RDB, the same 40 characters; the RDB is encoded once, straight onto
/// the socket. Any other gets disk-style framing, `$<len>\r\n` and the
/// RDB, with no CRLF after: the length must come first, so the RDB is
/// encoded twice, once into a counter and once onto the socket. Either
/// way it costs CPU outside any lock, not a dump-sized buffer.
fn send_snapshot(
    out: &mut impl Write,
    snapshot: &[Snapshot],
    server: &Server,
    eof: bool,
    replid: &str,
    offset: i64,
) -> Result<u64, Error> {
    let aux = persist::aux_fields(&[
        ("repl-stream-db", AuxValue::Int(0)),
        ("repl-id", AuxValue::Str(replid.as_bytes().to_vec())),
        ("repl-offset", AuxValue::Int(offset)),
    ]);
    let compress = server.settings.rdbcompression();
    if eof {
        // The mark is random, so no RDB can contain it by chance.
        let mark = replication::new_replid();
        write!(out, "$EOF:{mark}\r\n")?;
        let counted = persist::write_rdb(Counter(out, 0), snapshot, compress, &aux)?;
        counted.0.write_all(mark.as_bytes())?;
        return Ok(counted.1);
    }
    let len = persist::write_rdb(Counter(std::io::sink(), 0), snapshot, compress, &aux)?.1;
    write!(out, "${len}\r\n")?;
    persist::write_rdb(out, snapshot, compress, &aux)?;
    Ok(len)
}

/// A writer that passes the bytes on and counts them.
struct Counter<W>(W, u64);

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.0.write(bytes)?;
        self.1 += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Starts the thread that pings replicas every `PING_PERIOD`.
pub fn spawn_pinger(replication: Replication) -> std::io::Result<()> {
    thread::Builder::new()
        .name("replication-ping".into())
        .spawn(move || loop {
            thread::sleep(PING_PERIOD);
            replication.ping_replicas();
        })?;
    Ok(())
}

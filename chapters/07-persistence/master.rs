//! The master's end of one replica's link: after PSYNC (or the older SYNC),
//! a client connection stops being a client and becomes a replica.
//!
//! The connection's thread sends the snapshot, then copies the stream from
//! its subscription to the socket; a second thread reads the replica's
//! `REPLCONF ACK <offset>` messages. Neither ever holds a lock while it
//! writes to the socket: a slow replica only fills its own queue.

use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;

use crate::db::SnapshotEntry;
use crate::error::Error;
use crate::log;
use crate::persist;
use crate::rdb::AuxValue;
use crate::replication::{Replication, Subscription, PING_PERIOD};
use crate::resp;
use crate::server::Server;

/// How a replica asked to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// `PSYNC replid offset`; `None` for the legacy `SYNC`.
    pub psync: Option<(Vec<u8>, i64)>,
}

/// Serves a replica until its link breaks. `listening_port` is what the
/// replica said in `REPLCONF listening-port` (INFO shows it).
pub fn serve_replica(
    server: &Server,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    request: SyncRequest,
    listening_port: u16,
    psync2: bool,
) -> Result<(), Error> {
    let ip = stream.peer_addr()?.ip();
    let mut out = BufWriter::new(stream.try_clone()?);
    let replication = &server.replication;

    // A replica that was following us and lost the link may only need what
    // it missed, if the backlog still holds it.
    let partial = match &request.psync {
        Some((replid, offset)) => replication.subscribe_from(replid, *offset, ip, listening_port),
        None => None,
    };
    let subscription = match partial {
        Some((subscription, missed)) => {
            let replid = replication.lock().replid.clone();
            // Only a PSYNC2 replica expects the id (it may have changed).
            if psync2 {
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
            // The snapshot and the subscription are taken under one lock, so
            // the stream carries exactly the changes made after the snapshot.
            // The snapshot only shares the keys and values (see
            // `Keyspace::snapshot`): writers wait milliseconds, not the
            // length of the transfer.
            let (snapshot, subscription, replid, offset) = {
                let mut keyspace = server.db.write();
                let (subscription, offset) =
                    replication.subscribe(&mut keyspace, ip, listening_port);
                let replid = replication.lock().replid.clone();
                (keyspace.snapshot(), subscription, replid, offset)
            };
            if request.psync.is_some() {
                write!(out, "+FULLRESYNC {replid} {offset}\r\n")?;
                out.flush()?;
            }
            let len = send_snapshot(&mut out, &snapshot, &replid, offset)?;
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
fn read_acks(
    replication: &Replication,
    id: u64,
    mut reader: BufReader<TcpStream>,
    stream: &TcpStream,
) {
    while let Ok(Some(args)) = resp::read_request(&mut reader) {
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
/// fields a replica uses to know where the stream starts, in disk-style
/// framing: `$<len>\r\n`, the RDB, and no CRLF after. The length must come
/// first, so the RDB is encoded twice: once into a counter, once onto the
/// socket. That costs CPU, outside any lock, instead of a dump-sized
/// buffer. Returns the length.
fn send_snapshot(
    out: &mut impl Write,
    snapshot: &[SnapshotEntry],
    replid: &str,
    offset: i64,
) -> Result<u64, Error> {
    let aux = persist::aux_fields(&[
        ("repl-stream-db", AuxValue::Int(0)),
        ("repl-id", AuxValue::Str(replid.as_bytes().to_vec())),
        ("repl-offset", AuxValue::Int(offset)),
    ]);
    let len = persist::write_rdb(Counter(0), snapshot, &aux)?.0;
    write!(out, "${len}\r\n")?;
    persist::write_rdb(out, snapshot, &aux)?;
    Ok(len)
}

/// A writer that only counts the bytes.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

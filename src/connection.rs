//! One client connection: read a request, run it, write the reply, repeat.
//!
//! This is the only code that touches the client's socket. Replies go into
//! a buffer that is flushed only when no more requests are waiting, so a
//! pipeline of a thousand commands costs a handful of writes, not a thousand.
//!
//! A client that subscribes gets a second writer: publishers. They never
//! touch the socket; they append to the client's outbox (`pubsub.rs`), and
//! from then on so does this thread, and a writer thread of the
//! connection's own (a [`Mailer`]) is the one that writes the socket.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::Duration;

use crate::clients::{Client, Registration};
use crate::cmd::{self, Outcome, Session};
use crate::error::Error;
use crate::log;
use crate::master;
use crate::outbox::Outbox;
use crate::resp::{self, Limits, ReadError, Reply};
use crate::server::Server;
use crate::socket::{self, Awake, Metered, Patience, Traffic, BUFFER};

/// How a request loop ended.
enum End {
    /// The client left, sent QUIT, or broke the protocol.
    Closed,
    /// A subscriber sent QUIT: its `+OK` is in its outbox, still to be sent.
    Quit,
    /// The client became a MONITOR: stream it the commands that arrive here.
    Monitor(Receiver<Arc<[u8]>>),
}

/// Serves one client until it leaves.
pub fn serve(stream: TcpStream, server: &Server, registration: &Registration) -> Result<(), Error> {
    let mut session = Session {
        id: registration.client.id,
        authenticated: server.settings.requirepass().is_empty(),
        client: Some(registration.client.clone()),
        ..Session::default()
    };
    // As Redis does: send each reply at once, not when Nagle's algorithm
    // thinks there is enough to fill a packet.
    let _ = stream.set_nodelay(true);
    let timeout = server.settings.timeout();
    if timeout > 0 {
        stream.set_read_timeout(Some(Duration::from_secs(timeout)))?;
    }
    // The scope is for a subscriber's writer thread, which borrows the
    // socket: no second descriptor for it.
    let result = thread::scope(|scope| {
        let awake = Awake::now(&server.clients.awake);
        let mut mailer = None;
        let result = serve_requests(&stream, server, &mut session, scope, &mut mailer);
        drop(awake);
        // The keyspace must forget a departed client's watched keys, the
        // registry its subscriptions; its outbox takes no more.
        cmd::end_session(server, &mut session);
        if let Some(mailer) = mailer {
            let quit = matches!(result, Ok(End::Quit));
            // Unless the client said QUIT, what is left for it is dropped;
            // this also frees a writer stuck on a client that does not read.
            if !quit {
                let _ = stream.shutdown(Shutdown::Both);
            }
            mailer.join();
            if quit {
                close_after_reply(&stream);
            }
        }
        result
    });
    match result? {
        End::Closed | End::Quit => Ok(()),
        End::Monitor(lines) => monitor(&stream, &registration.client.traffic, lines),
    }
}

/// The request loop of [`serve`].
fn serve_requests<'scope, 'env>(
    stream: &'env TcpStream,
    server: &Server,
    session: &mut Session,
    scope: &'scope Scope<'scope, 'env>,
    mailer: &mut Option<Mailer<'scope>>,
) -> Result<End, Error> {
    // Reader and writer both borrow the one socket: a file descriptor per
    // client, not three, which matters with ten thousand clients.
    let client = session.client.clone().expect("serve sets the client");
    let socket = Metered {
        stream,
        traffic: &client.traffic,
    };
    let mut reader = BufReader::with_capacity(BUFFER, stream);
    let mut writer = BufWriter::with_capacity(BUFFER, socket);
    let mut patience = Patience::default();
    loop {
        if reader.buffer().is_empty()
            && !socket::wait_for_request(
                &mut reader,
                &mut writer,
                &server.clients.awake,
                &mut patience,
            )?
        {
            return Ok(End::Closed);
        }
        let limits = Limits {
            max_bulk: server.settings.proto_max_bulk_len(),
            authenticated: session.authenticated,
            max_query: server.settings.client_query_buffer_limit(),
        };
        let mut counted = Counted {
            reader: &mut reader,
            taken: 0,
        };
        let request = resp::read_request(&mut counted, limits);
        client
            .traffic
            .received
            .fetch_add(counted.taken, std::sync::atomic::Ordering::Relaxed);
        let args = match request {
            Ok(Some(args)) => args,
            Ok(None) => return Ok(End::Closed),
            // The client went away mid-request, or stayed idle past `timeout`.
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(End::Closed)
            }
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::OutOfMemory => {
                log::warning(format!("Client id={} addr={}: {e}", client.id, client.addr));
                return Ok(End::Closed);
            }
            Err(ReadError::Io(e)) => return Err(e.into()),
            Err(ReadError::Protocol(msg)) => {
                let mut error = b"ERR Protocol error: ".to_vec();
                error.extend_from_slice(&msg);
                Reply::Error(error).write_to(&mut writer)?;
                writer.flush()?;
                close_after_reply(stream);
                return Ok(End::Closed);
            }
        };
        if args.is_empty() {
            continue; // an empty line, or `*0`: Redis ignores those
        }
        // A web browser tricked into talking to us: Redis's defence against
        // cross-protocol attacks is to hang up at once.
        if args[0].eq_ignore_ascii_case(b"post") || args[0].eq_ignore_ascii_case(b"host:") {
            log::warning("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection aborted.");
            return Ok(End::Closed);
        }
        server
            .clients
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        server
            .clients
            .feed_monitors(session.selected, &client.addr, &args);
        let outcome = cmd::handle(args, server, session);
        if let Some(subs) = &session.pubsub {
            // A subscriber, now or once: its outbox is its only way out.
            let outbox = subs.outbox();
            if mailer.is_none() {
                writer.flush()?;
                // As in Redis, a subscriber is never timed out.
                stream.set_read_timeout(None)?;
                *mailer = Some(Mailer::start(scope, stream, &client, Arc::clone(outbox))?);
            }
            let mut bytes = Vec::new();
            match outcome {
                Outcome::Reply(reply) | Outcome::Monitor(reply, _) => {
                    reply.write_in(&mut bytes, session.protocol)?;
                }
                Outcome::Close(reply) => {
                    reply.write_in(&mut bytes, session.protocol)?;
                    outbox.push_reply(&bytes);
                    return Ok(End::Quit);
                }
                Outcome::Silent | Outcome::ReplicaLink { .. } => {}
            }
            outbox.push_reply(&bytes);
            continue;
        }
        match outcome {
            Outcome::Reply(reply) => reply.write_in(&mut writer, session.protocol)?,
            Outcome::Silent => {}
            Outcome::Close(reply) => {
                reply.write_in(&mut writer, session.protocol)?;
                writer.flush()?;
                close_after_reply(stream);
                return Ok(End::Closed);
            }
            Outcome::Monitor(reply, lines) => {
                reply.write_in(&mut writer, session.protocol)?;
                writer.flush()?;
                return Ok(End::Monitor(lines));
            }
            // A replica asks to sync: from now on this connection is its link.
            Outcome::ReplicaLink {
                request,
                listening_port,
                capa,
            } => {
                writer.flush()?;
                // The link's threads need a reader of their own, which
                // starts with whatever this one had buffered.
                let leftover = io::Cursor::new(reader.buffer().to_vec());
                let link_reader = BufReader::new(leftover.chain(stream.try_clone()?));
                let link = stream.try_clone()?;
                // The link's threads mostly wait for writes to send:
                // not a busy client for the others to yield to.
                let _link = Awake::not_now(&server.clients.awake);
                master::serve_replica(server, link, link_reader, request, listening_port, capa)?;
                return Ok(End::Closed);
            }
        }
    }
}

/// How often a writer stuck on a full socket looks whether its outbox
/// was closed meanwhile (the client fell too far behind: hang up).
const STUCK_CHECK: Duration = Duration::from_millis(100);

/// The thread that writes a subscriber's outbox to its socket. Publishers
/// append to the outbox and never wait for the socket; this thread waits.
struct Mailer<'scope> {
    thread: ScopedJoinHandle<'scope, ()>,
}

impl<'scope> Mailer<'scope> {
    /// Starts the writer of `outbox`. It hangs up when the outbox is
    /// closed for good: the connection's reader then meets end of file.
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        stream: &'env TcpStream,
        client: &Arc<Client>,
        outbox: Arc<Outbox>,
    ) -> io::Result<Mailer<'scope>> {
        // A write that makes no progress for this long returns, so that a
        // writer stuck on a client that does not read still notices when
        // its outbox is closed. (The connection's own thread no longer
        // writes to this socket.)
        stream.set_write_timeout(Some(STUCK_CHECK))?;
        let client = Arc::clone(client);
        let thread = thread::Builder::new()
            .name("pubsub-writer".to_string())
            .spawn_scoped(scope, move || {
                let mut sink = Metered {
                    stream,
                    traffic: &client.traffic,
                };
                let mut batch = Vec::new();
                'batches: while outbox.take(&mut batch) {
                    // Let the publishers that woke us append more first:
                    // one write for a burst, not one per message.
                    thread::yield_now();
                    outbox.take_more(&mut batch);
                    let mut sent = 0;
                    while sent < batch.len() {
                        match sink.write(&batch[sent..]) {
                            Ok(0) => {
                                outbox.kill();
                                break 'batches;
                            }
                            Ok(n) => sent += n,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock
                                        | io::ErrorKind::TimedOut
                                        | io::ErrorKind::Interrupted
                                ) =>
                            {
                                if outbox.is_killed() {
                                    break 'batches;
                                }
                            }
                            // The client is gone: nothing more to send it.
                            Err(_) => {
                                outbox.kill();
                                break 'batches;
                            }
                        }
                    }
                }
                if outbox.is_killed() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            })?;
        Ok(Mailer { thread })
    }

    /// Waits for the writer to send what its outbox holds and stop (the
    /// outbox must be finished, or the socket shut down).
    fn join(self) {
        let _ = self.thread.join();
    }
}

/// MONITOR: from now on the client only receives every command the server
/// runs, until it goes away.
fn monitor(
    stream: &TcpStream,
    traffic: &Traffic,
    receiver: Receiver<Arc<[u8]>>,
) -> Result<(), Error> {
    let mut writer = BufWriter::new(Metered { stream, traffic });
    // A write to a client that left fails, and that ends the loop; the
    // registry drops our sender when its next send fails.
    while let Ok(line) = receiver.recv() {
        writer.write_all(&line)?;
        while let Ok(more) = receiver.try_recv() {
            writer.write_all(&more)?;
        }
        writer.flush()?;
    }
    Ok(())
}

/// Closes the connection so that the client still reads our last reply.
///
/// Closing a socket that has unread input makes the kernel send a reset,
/// and a reset can destroy the reply before the client reads it. So we
/// half-close our side, then drain what the client still sends (briefly,
/// and only so much) before the socket is dropped.
fn close_after_reply(stream: &TcpStream) {
    // Errors here mean the client is already gone, which is fine.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = io::copy(&mut stream.take(1024 * 1024), &mut io::sink());
}

/// The reader as the parser sees it, counting the bytes it takes: what the
/// client sent, for INFO's `total_net_input_bytes`. Counting here, once a
/// request, rather than in the socket keeps the reader a plain `TcpStream`
/// (see `socket::Reader`).
struct Counted<'r, 'a> {
    reader: &'r mut socket::Reader<'a>,
    taken: u64,
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.taken += n as u64;
        Ok(n)
    }
}

impl BufRead for Counted<'_, '_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume(n);
        self.taken += n as u64;
    }
}

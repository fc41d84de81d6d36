//! One client connection: read a request, run it, write the reply, repeat.
//!
//! This is the only code that touches the client's socket. Replies go into
//! a buffer that is flushed only when no more requests are waiting, so a
//! pipeline of a thousand commands costs a handful of writes, not a thousand.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::cmd::{self, Command, Op, ReplConf, Session};
use crate::error::Error;
use crate::master;
use crate::resp::{self, ReadError, Reply};
use crate::server::Server;

/// Size of the read and write buffers; Redis reads 16 KiB at a time too.
const BUFFER: usize = 16 * 1024;

/// Serves one client until it leaves, sends QUIT or breaks the protocol.
pub fn serve(stream: TcpStream, server: Server) -> Result<(), Error> {
    let mut session = Session::default();
    let result = serve_requests(stream, &server, &mut session);
    // The keyspace must forget a departed client's watched keys.
    cmd::unwatch(&server, &mut session);
    result
}

/// The request loop of [`serve`].
fn serve_requests(stream: TcpStream, server: &Server, session: &mut Session) -> Result<(), Error> {
    let mut reader = BufReader::with_capacity(BUFFER, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(BUFFER, stream.try_clone()?);
    loop {
        // About to wait for the client: send what we owe it first.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
        let args = match resp::read_request(&mut reader) {
            Ok(Some(args)) => args,
            Ok(None) => return Ok(()),
            // The client went away mid-request: nothing to answer.
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(ReadError::Io(e)) => return Err(e.into()),
            Err(ReadError::Protocol(msg)) => {
                let mut error = b"ERR Protocol error: ".to_vec();
                error.extend_from_slice(&msg);
                Reply::Error(error).write_to(&mut writer)?;
                writer.flush()?;
                close_after_reply(&stream);
                return Ok(());
            }
        };
        if args.is_empty() {
            continue; // an empty line, or `*0`: Redis ignores those
        }
        // Inside MULTI most requests are queued, not run.
        let args = match cmd::queue(server, session, args) {
            Ok(reply) => {
                reply.write_to(&mut writer)?;
                continue;
            }
            Err(args) => args,
        };
        let reply = match Command::parse(args) {
            Ok(Command { op: Op::Quit, .. }) => {
                Reply::ok().write_to(&mut writer)?;
                writer.flush()?;
                close_after_reply(&stream);
                return Ok(());
            }
            // ACKs and GETACKs get no reply on a client connection.
            Ok(Command {
                op: Op::ReplConf(ReplConf::Ack(_) | ReplConf::GetAck),
                ..
            }) => continue,
            // A replica asks to sync: from now on this connection is its link.
            Ok(Command {
                op: Op::Sync(request),
                ..
            }) => {
                if server.replication.is_replica() {
                    Reply::error("ERR this replica cannot serve replicas of its own")
                } else {
                    writer.flush()?;
                    let port = session.listening_port;
                    return master::serve_replica(
                        server,
                        stream,
                        reader,
                        request,
                        port,
                        session.psync2,
                    );
                }
            }
            Ok(command) => cmd::execute(command, server, session),
            Err(error) => error,
        };
        reply.write_to(&mut writer)?;
    }
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

//! A client's socket as its connection thread uses it: buffered reads and
//! writes, and the wait for the client's next request.
//!
//! The wait is where one thread per connection costs the most. A thread
//! that sleeps in `read` has to be woken when its client's next request
//! arrives, and the wake-up and the switch to the thread cost more than
//! most requests do. Redis has one thread and no such cost: it asks the
//! kernel which of its sockets are ready and serves them in turn. So a
//! thread here sleeps only when there is nothing better to do: while other
//! connection threads are awake, it yields the CPU to them a few times,
//! looking for its next request between turns, and under load the request
//! is usually there when its turn comes back. docs/performance.md has the
//! measurements, and the price.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Size of the read and write buffers; Redis reads 16 KiB at a time too.
pub const BUFFER: usize = 16 * 1024;

/// How many times a thread with nothing to do yields the CPU before it
/// sleeps. Measured (docs/performance.md): 2 already pays, 8 and 32 do
/// about as well as each other under load.
const YIELDS: usize = 8;

/// The client's socket, switched between blocking and non-blocking mode
/// only when it has to be: each switch is a system call.
///
/// Reads and writes through it always behave as blocking ones: one that
/// would block on the non-blocking socket switches it back to blocking
/// mode and waits. Only [`wait_for_request`]'s look for the next request
/// may find nothing and say so.
pub struct Socket<'a> {
    stream: &'a TcpStream,
    /// Is the socket in non-blocking mode now?
    nonblocking: Cell<bool>,
    /// Is [`wait_for_request`] looking without waiting?
    probing: Cell<bool>,
}

impl<'a> Socket<'a> {
    /// Wraps a socket in blocking mode, as `accept` hands them out.
    pub fn new(stream: &'a TcpStream) -> Socket<'a> {
        Socket {
            stream,
            nonblocking: Cell::new(false),
            probing: Cell::new(false),
        }
    }

    /// Puts the socket back in blocking mode, for code that uses the
    /// `TcpStream` itself from here on.
    pub fn blocking(&self) -> io::Result<&'a TcpStream> {
        self.set_nonblocking(false)?;
        Ok(self.stream)
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        if self.nonblocking.get() != on {
            self.stream.set_nonblocking(on)?;
            self.nonblocking.set(on);
        }
        Ok(())
    }

    /// Runs `op` on the socket; if it would block only because the socket
    /// is non-blocking, makes the socket blocking and runs it again. (A
    /// blocking socket says WouldBlock too, when `timeout` runs out: that
    /// one is passed on.)
    fn patiently<T>(&self, mut op: impl FnMut(&TcpStream) -> io::Result<T>) -> io::Result<T> {
        loop {
            match op(self.stream) {
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && self.nonblocking.get()
                        && !self.probing.get() =>
                {
                    self.set_nonblocking(false)?
                }
                result => return result,
            }
        }
    }
}

impl Read for &Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.patiently(|mut stream| stream.read(buf))
    }
}

impl Write for &Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.patiently(|mut stream| stream.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The connection's buffered reader.
pub type Reader<'s, 'a> = BufReader<&'s Socket<'a>>;
/// The connection's buffered writer.
pub type Writer<'s, 'a> = BufWriter<&'s Socket<'a>>;

/// Called when every buffered request has been served: sends the replies,
/// then waits until the client's next request is in `reader`'s buffer.
/// Returns false if the client left, broke the connection or stayed idle
/// past `timeout` instead.
///
/// `awake` counts the connection threads not asleep here; this thread is
/// one of them.
pub fn wait_for_request<'s, 'a>(
    reader: &mut Reader<'s, 'a>,
    writer: &mut Writer<'s, 'a>,
    awake: &AtomicUsize,
) -> io::Result<bool> {
    writer.flush()?;
    let socket = *reader.get_ref();
    // Alone, a yield would come straight back: only sleeping makes sense.
    if awake.load(Ordering::Relaxed) > 1 && socket.set_nonblocking(true).is_ok() {
        socket.probing.set(true);
        let mut found = false;
        for _ in 0..YIELDS {
            // Right after our reply the answer cannot be there yet: let the
            // others run first, then look.
            thread::yield_now();
            match reader.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A request, the end of the stream, or an error: the read
                // that follows will see which.
                _ => {
                    found = true;
                    break;
                }
            }
        }
        socket.probing.set(false);
        // The socket stays non-blocking while the thread is busy: it saves
        // two system calls a request, and reads and writes still wait.
        if found {
            return Ok(true);
        }
    }
    sleep_until_readable(reader, writer, awake)
}

/// Sleeps until the client sends something, holding no buffers meanwhile.
///
/// An idle client should cost little: its thread's stack, not 32 KiB of
/// empty buffers. So the buffers are given back while the thread sleeps in
/// `peek` (which waits for data without needing room for it) and taken
/// again when the client has spoken: a malloc and a free each, cheap next
/// to the wake-up itself. Redis, too, takes back an idle client's query
/// buffer (in its cron, once the client has been idle two seconds).
fn sleep_until_readable<'s, 'a>(
    reader: &mut Reader<'s, 'a>,
    writer: &mut Writer<'s, 'a>,
    awake: &AtomicUsize,
) -> io::Result<bool> {
    let socket = *reader.get_ref();
    let Ok(stream) = socket.blocking() else {
        return Ok(false);
    };
    *reader = BufReader::with_capacity(0, socket);
    *writer = BufWriter::with_capacity(0, socket);
    // Asleep: not a thread the others should yield to.
    awake.fetch_sub(1, Ordering::Relaxed);
    let readable = loop {
        match stream.peek(&mut [0u8]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => break result,
        }
    };
    awake.fetch_add(1, Ordering::Relaxed);
    *reader = BufReader::with_capacity(BUFFER, socket);
    *writer = BufWriter::with_capacity(BUFFER, socket);
    Ok(matches!(readable, Ok(n) if n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of sockets on loopback: (ours, the client's).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (ours, _) = listener.accept().expect("accept");
        (ours, client)
    }

    #[test]
    fn a_read_on_the_non_blocking_socket_waits_as_a_blocking_one() {
        let (ours, _client) = pair();
        let timeout = std::time::Duration::from_millis(100);
        ours.set_read_timeout(Some(timeout)).expect("timeout");
        let socket = Socket::new(&ours);
        socket.set_nonblocking(true).expect("non-blocking");
        // Nothing comes: the read waits the whole timeout, then says so.
        let started = std::time::Instant::now();
        let error = (&socket).read(&mut [0u8; 16]).expect_err("times out");
        assert!(started.elapsed() >= timeout, "returned before the timeout");
        assert!(matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        assert!(!socket.nonblocking.get(), "switched back to blocking");
    }

    #[test]
    fn a_probe_says_when_there_is_nothing_to_read() {
        let (ours, _client) = pair();
        let socket = Socket::new(&ours);
        socket.set_nonblocking(true).expect("non-blocking");
        socket.probing.set(true);
        let error = (&socket).read(&mut [0u8; 16]).expect_err("nothing to read");
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(socket.nonblocking.get());
    }

    #[test]
    fn a_reply_bigger_than_the_socket_buffers_arrives_whole() {
        let (ours, mut client) = pair();
        let socket = Socket::new(&ours);
        socket.set_nonblocking(true).expect("non-blocking");
        let reply: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let expected = reply.clone();
        // The client starts reading only after a while: the kernel's
        // buffers fill up, and the write must wait rather than fail.
        let receiver = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(100));
            let mut got = Vec::new();
            client.read_to_end(&mut got).expect("receive");
            got
        });
        (&socket)
            .write_all(&reply)
            .expect("the write waits, then completes");
        drop(ours);
        assert!(receiver.join().expect("receiver") == expected);
    }
}

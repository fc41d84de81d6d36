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

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;

/// Size of the read and write buffers; Redis reads 16 KiB at a time too.
pub const BUFFER: usize = 16 * 1024;

/// How many times, at most, a thread with nothing to do yields the CPU
/// before it sleeps. Measured (docs/performance.md): 2 already pays, 8 and
/// 32 do about as well as each other under load.
const YIELDS: usize = 8;

/// How many times a connection's thread yields before it sleeps, adapted
/// to what the last wait showed, as adaptive mutexes spin: a wait that
/// found its request doubles it (up to [`YIELDS`]), a wait that ended
/// asleep halves it (down to one). With many clients, many yields find
/// nothing yet, and each costs a turn of the CPU.
#[derive(Debug)]
pub struct Patience(usize);

impl Default for Patience {
    fn default() -> Self {
        Patience(YIELDS)
    }
}

/// A change to the count of awake connection threads, undone when it is
/// dropped, however its scope ends: a panic that costs a connection must
/// not leave the count wrong for every other one.
pub struct Awake<'a> {
    counter: &'a AtomicUsize,
    awake: bool,
}

impl<'a> Awake<'a> {
    /// This thread is awake until the guard goes.
    pub fn now(counter: &'a AtomicUsize) -> Awake<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Awake {
            counter,
            awake: true,
        }
    }

    /// This thread, counted awake, is not (asleep, or waiting on other
    /// things than its client) until the guard goes.
    pub fn not_now(counter: &'a AtomicUsize) -> Awake<'a> {
        counter.fetch_sub(1, Ordering::Relaxed);
        Awake {
            counter,
            awake: false,
        }
    }
}

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        if self.awake {
            self.counter.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The connection's buffered reader: it borrows the socket, as the writer
/// does, so that a client costs one file descriptor, not three. It reads
/// the bare socket, not a [`Metered`] one: std fills a buffer straight from
/// a `TcpStream` without zeroing it first, but must zero it (16 KiB, at
/// every wake-up, since a sleeping connection gives its buffer back) before
/// handing it to any other reader. The connection counts what the parser
/// takes instead (`connection.rs`, `Counted`).
pub type Reader<'a> = BufReader<&'a TcpStream>;
/// The connection's buffered writer.
pub type Writer<'a> = BufWriter<Metered<'a>>;

/// What went through one client's socket, for INFO's `total_net_*_bytes`
/// and CLIENT LIST's `omem`. Each counter is the client's own, so adding
/// to it (a relaxed add per write, and per request read) contends with no other thread.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes read from the client.
    pub received: AtomicU64,
    /// Bytes the kernel accepted for the client.
    pub sent: AtomicU64,
    /// Bytes of replies being handed to the kernel right now: nonzero
    /// while the thread waits for a client that does not read its replies.
    pub waiting: AtomicU64,
}

/// The socket as the writer uses it: every write is counted in
/// the client's [`Traffic`].
#[derive(Debug, Clone, Copy)]
pub struct Metered<'a> {
    /// The client's socket.
    pub stream: &'a TcpStream,
    /// Where its bytes are counted.
    pub traffic: &'a Traffic,
}

impl Write for Metered<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Counted before the call, which blocks while the client's socket
        // is full: that is when an operator wants to see it.
        self.traffic
            .waiting
            .store(buf.len() as u64, Ordering::Relaxed);
        let written = self.stream.write(buf);
        self.traffic.waiting.store(0, Ordering::Relaxed);
        let n = written?;
        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Called when every buffered request has been served: sends the replies,
/// then waits until the client's next request has arrived: in `reader`'s
/// buffer, or in the socket for `reader` to read without waiting.
/// Returns false if the client left, broke the connection or stayed idle
/// past `timeout` instead. (An error met while looking without waiting is
/// left for the read that follows: true.)
///
/// `awake` counts the connection threads not asleep here; this thread is
/// one of them. `patience` is the connection's own.
pub fn wait_for_request<'a>(
    reader: &mut Reader<'a>,
    writer: &mut Writer<'a>,
    awake: &AtomicUsize,
    patience: &mut Patience,
) -> io::Result<bool> {
    writer.flush()?;
    let stream = *reader.get_ref();
    // Alone, a yield would come straight back: only sleeping makes sense.
    if awake.load(Ordering::Relaxed) > 1 && stream.set_nonblocking(true).is_ok() {
        // Some(true): a request came; Some(false): the client left.
        let mut found = None;
        for _ in 0..patience.0 {
            // Right after our reply the answer cannot be there yet: let the
            // others run first, then look.
            thread::yield_now();
            match reader.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(buffered) => {
                    found = Some(!buffered.is_empty());
                    break;
                }
                // The read that follows will meet the error again.
                Err(_) => {
                    found = Some(true);
                    break;
                }
            }
        }
        // Failing this would leave the socket non-blocking: the next read
        // then fails with WouldBlock, which ends the connection.
        stream.set_nonblocking(false)?;
        if let Some(alive) = found {
            patience.0 = (patience.0 * 2).min(YIELDS);
            return Ok(alive);
        }
        patience.0 = (patience.0 / 2).max(1);
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
fn sleep_until_readable<'a>(
    reader: &mut Reader<'a>,
    writer: &mut Writer<'a>,
    awake: &AtomicUsize,
) -> io::Result<bool> {
    let stream = *reader.get_ref();
    let socket = *writer.get_ref();
    *reader = BufReader::with_capacity(0, stream);
    *writer = BufWriter::with_capacity(0, socket);
    // Asleep: not a thread the others should yield to, nor one whose
    // allocations should wait in its own tally (`alloc.rs`).
    crate::alloc::settle();
    let asleep = Awake::not_now(awake);
    let readable = loop {
        match stream.peek(&mut [0u8]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => break result,
        }
    };
    drop(asleep);
    *reader = BufReader::with_capacity(BUFFER, stream);
    *writer = BufWriter::with_capacity(BUFFER, socket);
    Ok(matches!(readable, Ok(n) if n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A connected pair of sockets on loopback: (ours, the client's).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (ours, _) = listener.accept().expect("accept");
        (ours, client)
    }

    /// Waits as a connection does, with `awake` connection threads awake,
    /// for a request the client sends after a while.
    fn wait_for_late_request(awake: usize) {
        let (ours, mut client) = pair();
        let traffic = Traffic::default();
        let socket = Metered {
            stream: &ours,
            traffic: &traffic,
        };
        let mut reader = BufReader::with_capacity(BUFFER, &ours);
        let mut writer = BufWriter::with_capacity(BUFFER, socket);
        writer.write_all(b"+OK\r\n").expect("buffer a reply");
        let sender = thread::spawn(move || {
            let mut reply = [0u8; 5];
            client
                .read_exact(&mut reply)
                .expect("the reply is sent first");
            assert_eq!(&reply, b"+OK\r\n");
            thread::sleep(Duration::from_millis(20));
            client.write_all(b"PING\r\n").expect("send");
            client
        });
        let counter = AtomicUsize::new(awake);
        assert!(
            wait_for_request(&mut reader, &mut writer, &counter, &mut Patience::default())
                .expect("wait")
        );
        assert_eq!(reader.capacity(), BUFFER, "the buffers are back");
        assert_eq!(reader.fill_buf().expect("read"), b"PING\r\n");
        assert_eq!(
            counter.into_inner(),
            awake,
            "the count of awake threads is restored"
        );
        // The socket is blocking again: a read waits (here, for its timeout).
        reader.consume(6);
        let timeout = Duration::from_millis(50);
        ours.set_read_timeout(Some(timeout)).expect("timeout");
        let started = Instant::now();
        assert!(reader.fill_buf().is_err());
        assert!(started.elapsed() >= timeout);
        drop(sender.join().expect("sender"));
    }

    #[test]
    fn alone_a_thread_sleeps_until_the_request_comes() {
        wait_for_late_request(1);
    }

    #[test]
    fn among_busy_threads_a_thread_still_waits_for_a_late_request() {
        wait_for_late_request(2);
    }

    #[test]
    fn among_busy_threads_a_request_already_there_is_read_without_sleeping() {
        let (ours, mut client) = pair();
        let traffic = Traffic::default();
        let socket = Metered {
            stream: &ours,
            traffic: &traffic,
        };
        let mut reader = BufReader::with_capacity(BUFFER, &ours);
        let mut writer = BufWriter::with_capacity(BUFFER, socket);
        // On loopback, the bytes are in our socket once `write_all` returns.
        client.write_all(b"PING\r\n").expect("send");
        let awake = AtomicUsize::new(2);
        assert!(
            wait_for_request(&mut reader, &mut writer, &awake, &mut Patience::default())
                .expect("wait")
        );
        // Read while looking, not after a sleep (which leaves it unread).
        assert_eq!(reader.buffer(), b"PING\r\n");
    }

    #[test]
    fn the_count_of_awake_threads_survives_a_panic() {
        let counter = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(|| {
            let _awake = Awake::now(&counter);
            let _link = Awake::not_now(&counter);
            panic!("a bug in a connection");
        });
        assert!(result.is_err());
        assert_eq!(counter.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_client_that_leaves_ends_the_wait() {
        let (ours, client) = pair();
        let traffic = Traffic::default();
        let socket = Metered {
            stream: &ours,
            traffic: &traffic,
        };
        let mut reader = BufReader::with_capacity(BUFFER, &ours);
        let mut writer = BufWriter::with_capacity(BUFFER, socket);
        drop(client);
        for awake in [1, 2] {
            let awake = AtomicUsize::new(awake);
            assert!(
                !wait_for_request(&mut reader, &mut writer, &awake, &mut Patience::default())
                    .expect("wait")
            );
        }
    }
}

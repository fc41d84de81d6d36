//! Reliability of the final server: hostile input, Redis's limits, access
//! control, the defence against cross-protocol attacks, and faults (a
//! process killed during replication or during a save, a dump that cannot
//! be written).
//!
//! The randomized test prints its seed; replay a failure with
//!
//! ```text
//! RFS_FUZZ_SEED=<seed> cargo test --test server_reliability hostile -- --nocapture
//! ```
//!
//! Tests of generic Redis behaviour also pass against the real server:
//! `REDIS_TEST_SERVER=redis-server cargo test --test server_reliability`.
//! The others (our log lines, our replication and persistence under
//! SIGKILL) skip then.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{poll_until, rss_kib, Client, Reply, Server};

/// The final server's binary.
const BIN: &str = "redis-from-scratch";

/// The NOAUTH reply to HELLO, word for word as Redis 7.0.15 sends it.
const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A started server of our own, or `REDIS_TEST_SERVER`, with no save points.
fn start(args: &[&str]) -> Server {
    let mut all = vec!["--save", ""];
    all.extend_from_slice(args);
    Server::start_with(BIN, &all)
}

/// A new connection to `port`, or `None` if it cannot be made now (for
/// polling a server that is restarting).
fn try_client(port: u16) -> Option<Client> {
    TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(Client::connect(port))
}

/// DBSIZE through a fresh connection, `None` if the server is not there.
fn dbsize(port: u16) -> Option<i64> {
    let mut client = try_client(port)?;
    match client.cmd(&["DBSIZE"]) {
        Reply::Integer(n) => Some(n),
        _ => None,
    }
}

/// Writes `count` keys `<prefix><i>` = `<prefix>value<i>` through MSETs of
/// a thousand keys, pipelined.
fn load_keys(port: u16, prefix: &str, count: usize) {
    let mut client = Client::connect(port);
    let mut pipeline = Vec::new();
    let mut commands = 0;
    for start in (0..count).step_by(1000) {
        let mut args = vec!["MSET".to_string()];
        for i in start..(start + 1000).min(count) {
            args.push(format!("{prefix}{i}"));
            args.push(format!("{prefix}value{i}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pipeline.extend_from_slice(&common::encode_str_command(&args));
        commands += 1;
    }
    let writer = client.send_in_background(pipeline);
    for _ in 0..commands {
        assert_eq!(client.read_reply(), Reply::ok());
    }
    writer.join().unwrap().expect("pipeline sent");
}

/// The values of `keys` (MGET) through a fresh connection.
fn mget(port: u16, keys: &[String]) -> Option<Reply> {
    let mut client = try_client(port)?;
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    Some(client.cmd(&args))
}

/// Polls until `replica` holds what `master` holds: the same DBSIZE and
/// the same values for `sample`.
#[track_caller]
fn assert_converges(master: u16, replica: u16, sample: &[String], deadline: Duration) {
    let start = Instant::now();
    let last = loop {
        let (m, r) = (dbsize(master), dbsize(replica));
        if m.is_some() && m == r && mget(master, sample) == mget(replica, sample) {
            return;
        }
        if start.elapsed() > deadline {
            break format!("master DBSIZE {m:?}, replica DBSIZE {r:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    panic!("replica on port {replica} did not converge within {deadline:?}: {last}");
}

/// Every `step`-th of the keys `<prefix>0..count`, and the last one.
fn sample(prefix: &str, count: usize, step: usize) -> Vec<String> {
    let mut keys: Vec<String> = (0..count)
        .step_by(step)
        .map(|i| format!("{prefix}{i}"))
        .collect();
    keys.push(format!("{prefix}{}", count - 1));
    keys
}

/// Starts a replica of `master` (our binary).
fn start_replica(master: &Server) -> Server {
    let port = master.port().to_string();
    start(&["--replicaof", "127.0.0.1", &port])
}

/// Polls the log of `server` until a line contains one of `needles`.
#[track_caller]
fn assert_log_line(server: &Server, needles: &[&str]) -> String {
    let mut found = None;
    let start = Instant::now();
    while found.is_none() && start.elapsed() < Duration::from_secs(10) {
        found = server
            .log()
            .lines()
            .find(|line| needles.iter().any(|needle| line.contains(needle)))
            .map(str::to_string);
        thread::sleep(Duration::from_millis(10));
    }
    found.unwrap_or_else(|| {
        panic!(
            "no log line contains any of {needles:?}; log:\n{}",
            server.log()
        )
    })
}

/// The server answers PING on a new connection, and SET/GET work.
#[track_caller]
fn assert_serving(server: &Server) {
    let mut client = server.client();
    assert_eq!(client.cmd(&["PING"]), Reply::pong());
    assert_eq!(client.cmd(&["SET", "alive", "yes"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "alive"]), Reply::bulk("yes"));
}

// ---------------------------------------------------------------------------
// 1. Hostile input
// ---------------------------------------------------------------------------

/// SplitMix64: a small, fast, std-only generator, good enough to fuzz.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Fewer than `max` random bytes.
    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        self.bytes(len)
    }

    /// 1 to `max` random bytes.
    fn some_bytes_nonempty(&mut self, max: usize) -> Vec<u8> {
        let len = 1 + self.below(max);
        self.bytes(len)
    }
}

/// The seed: `RFS_FUZZ_SEED` (decimal, or hex with `0x`), else the clock.
fn fuzz_seed() -> u64 {
    match std::env::var("RFS_FUZZ_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("RFS_FUZZ_SEED={text:?} is not a number"))
        }
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// A key of the fuzzers: never one of the control client's (`ctl:`).
fn fuzz_key(rng: &mut Rng) -> Vec<u8> {
    let mut key = format!("fz:{}", rng.below(48)).into_bytes();
    if rng.chance(10) {
        key.extend_from_slice(&rng.some_bytes(4));
    }
    key
}

fn fuzz_value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.some_bytes(48),
        1 => rng.next().to_string().into_bytes(),
        2 => fuzz_number(rng),
        _ => b"x".repeat(rng.below(200)),
    }
}

fn fuzz_number(rng: &mut Rng) -> Vec<u8> {
    const EDGES: &[&str] = &[
        "0",
        "1",
        "-1",
        "100",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "3.14",
        "-0.0",
        "1e10",
        "1e308",
        "1e-320",
        "inf",
        "-inf",
        "nan",
        "0x10",
        " 1",
        "01",
        "+1",
        "",
        "abc",
    ];
    if rng.chance(50) {
        rng.pick(EDGES).as_bytes().to_vec()
    } else {
        (rng.next() as i64 >> rng.below(64))
            .to_string()
            .into_bytes()
    }
}

/// A well-formed command of the fuzzers. Nothing here can touch the
/// control client's keys or stop the server: no FLUSH*, SWAPDB, MOVE,
/// SHUTDOWN, REPLICAOF, SYNC, MONITOR, WAIT, CONFIG SET, SAVE. (One
/// flipped byte turns `CONFIG GET x` into `CONFIG SET x`: an arity error.)
fn fuzz_command(rng: &mut Rng) -> Vec<Vec<u8>> {
    let k = |rng: &mut Rng| fuzz_key(rng);
    let v = |rng: &mut Rng| fuzz_value(rng);
    let n = |rng: &mut Rng| fuzz_number(rng);
    let word = |w: &str| w.as_bytes().to_vec();
    let mut args: Vec<Vec<u8>> = match rng.below(40) {
        0 => vec![word("SET"), k(rng), v(rng)],
        1 => {
            let mut args = vec![word("SET"), k(rng), v(rng)];
            let options: &[&str] = &["EX", "PX", "EXAT", "PXAT", "NX", "XX", "GET", "KEEPTTL"];
            for _ in 0..rng.below(4) {
                let option = rng.pick(options);
                args.push(word(option));
                if option.ends_with('X') || option.ends_with("AT") {
                    args.push(n(rng));
                }
            }
            args
        }
        2 | 3 => vec![word("GET"), k(rng)],
        4 => vec![word("DEL"), k(rng), k(rng)],
        5 => vec![word("INCR"), k(rng)],
        6 => vec![word("DECRBY"), k(rng), n(rng)],
        7 => vec![word("INCRBY"), k(rng), n(rng)],
        8 => vec![word("INCRBYFLOAT"), k(rng), n(rng)],
        9 => vec![word("APPEND"), k(rng), v(rng)],
        10 => vec![word("STRLEN"), k(rng)],
        11 => vec![word("GETRANGE"), k(rng), n(rng), n(rng)],
        12 => {
            let offset = rng.below(100).to_string().into_bytes();
            vec![word("SETRANGE"), k(rng), offset, v(rng)]
        }
        13 => vec![word("MGET"), k(rng), k(rng), k(rng)],
        14 => vec![word("MSET"), k(rng), v(rng), k(rng), v(rng)],
        15 => vec![word("SETNX"), k(rng), v(rng)],
        16 => vec![word("GETSET"), k(rng), v(rng)],
        17 => vec![word("GETDEL"), k(rng)],
        18 => vec![word("GETEX"), k(rng), word("EX"), n(rng)],
        19 => vec![word("EXISTS"), k(rng), k(rng)],
        20 => vec![word("TYPE"), k(rng)],
        21 => vec![word("TTL"), k(rng)],
        22 => vec![word("PTTL"), k(rng)],
        23 => {
            let mut args = vec![word("EXPIRE"), k(rng), n(rng)];
            if rng.chance(30) {
                args.push(word(rng.pick(&["NX", "XX", "GT", "LT", "XY"])));
            }
            args
        }
        24 => vec![word("PEXPIREAT"), k(rng), n(rng)],
        25 => vec![word("PERSIST"), k(rng)],
        26 => vec![word("ECHO"), v(rng)],
        27 => vec![word("PING")],
        28 => vec![word("SELECT"), rng.below(20).to_string().into_bytes()],
        29 => vec![word("DBSIZE")],
        30 => {
            let patterns = ["fz:*", "*", "fz:?", "*[a-", "\\", "f*z*:*1*", "[^f]*", ""];
            vec![word("KEYS"), word(rng.pick(&patterns))]
        }
        31 => vec![
            word("SCAN"),
            n(rng),
            word("MATCH"),
            word("fz:*"),
            word("COUNT"),
            n(rng),
        ],
        32 => vec![word(rng.pick(&["MULTI", "EXEC", "DISCARD", "UNWATCH"]))],
        33 => vec![word("WATCH"), k(rng)],
        34 => match rng.below(4) {
            0 => vec![word("CLIENT"), word("SETNAME"), v(rng)],
            1 => vec![word("CLIENT"), word("GETNAME")],
            2 => vec![word("CLIENT"), word("ID")],
            _ => vec![word("CLIENT"), word("INFO")],
        },
        35 => vec![
            word("INFO"),
            word(rng.pick(&["server", "clients", "keyspace", "x"])),
        ],
        36 => vec![word(rng.pick(&["TIME", "ROLE", "LASTSAVE", "RANDOMKEY"]))],
        37 => vec![word("COMMAND"), word(rng.pick(&["COUNT", "INFO", "NOPE"]))],
        38 => vec![
            word("CONFIG"),
            word("GET"),
            word(rng.pick(&["*", "port", "s*"])),
        ],
        _ => vec![
            word(rng.pick(&["COPY", "RENAME", "RENAMENX"])),
            k(rng),
            k(rng),
        ],
    };
    // Now and then a command in the wrong case, or with arguments too many.
    if rng.chance(5) {
        args[0].make_ascii_lowercase();
    }
    if rng.chance(3) {
        args.push(v(rng));
    }
    args
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    common::encode_command(&args)
}

/// A command as an inline line, words quoted now and then.
fn inline_line(rng: &mut Rng, args: &[Vec<u8>]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            line.extend_from_slice(rng.pick(&[&b" "[..], b"  ", b"\t"]));
        }
        match rng.below(4) {
            0 => {
                line.push(b'"');
                for &b in arg {
                    match b {
                        b'"' | b'\\' => line.extend_from_slice(&[b'\\', b]),
                        b' '..=b'~' => line.push(b),
                        _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                    }
                }
                line.push(b'"');
            }
            1 => {
                line.push(b'\'');
                for &b in arg {
                    match b {
                        b'\'' => line.extend_from_slice(b"\\'"),
                        // A backslash before the closing quote would escape it.
                        b'\r' | b'\n' | 0 | b'\\' => line.push(b'?'),
                        _ => line.push(b),
                    }
                }
                line.push(b'\'');
            }
            // Bare words lose what would split them.
            _ => line.extend(arg.iter().map(|&b| match b {
                b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | 0 => b'_',
                _ => b,
            })),
        }
    }
    line.extend_from_slice(if rng.chance(80) { b"\r\n" } else { b"\n" });
    line
}

/// A valid frame with one mutation: bytes flipped, a cut, a slice
/// duplicated, bytes inserted or removed, or the whole frame twice.
fn mutate(rng: &mut Rng, mut frame: Vec<u8>) -> Vec<u8> {
    let len = frame.len();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(len);
                frame[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = rng.below(len);
            frame[at] = rng.next() as u8;
        }
        2 => frame.truncate(rng.below(len)),
        3 => {
            let from = rng.below(len);
            let to = from + rng.below((len - from).min(16)) + 1;
            let slice = frame[from..to].to_vec();
            frame.splice(to..to, slice);
        }
        4 => {
            let at = rng.below(len);
            let extra = rng.some_bytes_nonempty(8);
            frame.splice(at..at, extra);
        }
        _ => frame.extend_from_slice(&frame.clone()),
    }
    frame
}

/// Requests that declare sizes far beyond what they send, or break the
/// grammar deep inside.
fn hostile_frame(rng: &mut Rng) -> Vec<u8> {
    const HEADERS: &[&[u8]] = &[
        b"*1\r\n$2000000000\r\n",
        b"*1\r\n$536870912\r\n",
        b"*1\r\n$536870913\r\n",
        b"*2147483647\r\n",
        b"*2147483648\r\n",
        b"*9223372036854775807\r\n",
        b"*-9223372036854775808\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$0\r\n\r\n",
        b"*3\r\n$3\r\nSET\r\n$5\r\nfz:hu\r\n$99999999\r\nabc",
        b"*1\r\n+PING\r\n",
        b"*1\r\n:1\r\n",
        b"*1\n$4\r\nPING\r\n",
        b"*1\r\n$4\r\nPINGXX\r\n",
        b"$4\r\nPING\r\n",
        b"\r\n\r\n\n\n",
    ];
    match rng.below(6) {
        0 | 1 => rng.pick(HEADERS).to_vec(),
        // Arrays nested deep: the server expects `$` and gets `*`.
        2 => {
            let mut frame = Vec::new();
            for _ in 0..1 + rng.below(64) {
                frame.extend_from_slice(format!("*{}\r\n", 1 + rng.below(9)).as_bytes());
            }
            frame
        }
        // A multibulk whose elements go wrong somewhere inside.
        3 => {
            let count = 1 + rng.below(8);
            let mut frame = format!("*{count}\r\n").into_bytes();
            for _ in 0..count {
                let payload = rng.some_bytes(20);
                let declared = match rng.below(4) {
                    0 => payload.len() + rng.below(5),
                    _ => payload.len(),
                };
                let marker = rng.pick(b"$$$*+-:%");
                frame.push(marker);
                frame.extend_from_slice(format!("{declared}\r\n").as_bytes());
                frame.extend_from_slice(&payload);
                frame.extend_from_slice(b"\r\n");
            }
            frame
        }
        // Long runs of protocol characters.
        4 => {
            let unit = rng.pick(&[
                &b"$"[..],
                b"*",
                b"\r",
                b"\n",
                b"\"",
                b"\\",
                b"*1\r\n",
                b"$1\r\n",
            ]);
            unit.repeat(1 + rng.below(512))
        }
        // A line with no end in sight (rarely: it costs 64 KiB).
        _ if rng.chance(3) => {
            let mut frame = if rng.chance(50) {
                b"*".to_vec()
            } else {
                b"PING ".to_vec()
            };
            frame.extend(std::iter::repeat_n(b'1', 70_000));
            frame
        }
        _ => {
            let quoted: &[&[u8]] = &[
                b"ECHO \"abc\r\n",
                b"ECHO 'abc\r\n",
                b"ECHO \"a\"b\r\n",
                b"ECHO a\"b\r\n",
                b"ECHO \"\\x4\" '\\n' \"\\q\"\r\n",
                b"SET fz:q \"\\xff\\x00\\r\\n\"\r\n",
                b"ECHO a\x00b\r\n",
                b"   \t  \r\n",
            ];
            rng.pick(quoted).to_vec()
        }
    }
}

/// A frame the server parses as one command (it may still be refused).
fn clean_frame(rng: &mut Rng) -> Vec<u8> {
    let args = fuzz_command(rng);
    if rng.chance(80) {
        multibulk(&args)
    } else {
        inline_line(rng, &args)
    }
}

/// A frame that breaks the protocol, or leaves the server waiting for
/// more, or makes the frames after it mean something else.
fn dirty_frame(rng: &mut Rng) -> Vec<u8> {
    match rng.below(100) {
        0..=49 => {
            let frame = clean_frame(rng);
            mutate(rng, frame)
        }
        50..=59 => rng.some_bytes_nonempty(128),
        60..=64 => {
            let args = fuzz_command(rng);
            let mut line = inline_line(rng, &args);
            let unbalanced = rng.pick(&[&b" \"open"[..], b" 'open", b" \"a\"b", b" a\"b\""]);
            line.splice(line.len() - 2..line.len() - 2, unbalanced.iter().copied());
            line
        }
        _ => hostile_frame(rng),
    }
}

/// What the fuzzing threads did.
#[derive(Default)]
struct FuzzStats {
    frames: AtomicU64,
    /// Frames broken on purpose (mutated, random, hostile).
    dirty: AtomicU64,
    bytes: AtomicU64,
    connections: AtomicU64,
    /// Connections we stopped writing to because the server had closed.
    closed_by_server: AtomicU64,
    /// Connections the server did not close after our end-of-file.
    hung: AtomicU64,
}

/// Reads and discards whatever has arrived, without waiting. Returns true
/// if the server has closed its side.
fn drain_now(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = loop {
        match stream.read(buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// One fuzzing thread: connection after connection, each a pipeline of
/// random frames, until `quota` frames are sent or `stop` is set.
fn fuzz_worker(port: u16, mut rng: Rng, quota: u64, stop: &AtomicBool, stats: &FuzzStats) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < quota && !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            thread::sleep(Duration::from_millis(1));
            continue;
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        // Some connections are mostly well-behaved, some mostly hostile: a
        // broken frame usually ends the connection (or swallows what
        // follows), so the mix decides how many frames the server parses.
        let frames = 1 + rng.below(64);
        let dirty = rng.pick(&[1, 5, 20, 60]);
        let mut batch = Vec::new();
        let (mut in_batch, mut dirty_in_batch) = (0, 0);
        let mut closed = false;
        for i in 0..frames {
            let frame = if rng.chance(dirty) {
                dirty_in_batch += 1;
                dirty_frame(&mut rng)
            } else {
                clean_frame(&mut rng)
            };
            batch.extend_from_slice(&frame);
            in_batch += 1;
            if batch.len() < 2 * 1024 && i + 1 < frames {
                continue;
            }
            if stream.write_all(&batch).is_err() {
                closed = true;
                break;
            }
            sent += in_batch;
            stats.frames.fetch_add(in_batch, Ordering::Relaxed);
            stats.dirty.fetch_add(dirty_in_batch, Ordering::Relaxed);
            stats.bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
            (in_batch, dirty_in_batch) = (0, 0);
            if drain_now(&mut stream, &mut buf) {
                closed = true;
                break;
            }
        }
        if closed {
            stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
        // Our end-of-file: whatever state the connection is in, the server
        // must now close it.
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    stats.hung.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

/// The control client: its own keys, written and read back, all through
/// the fuzzing. Returns how many SET/GET pairs it checked.
fn control_client(port: u16, stop: &AtomicBool) -> u64 {
    let mut client = Client::connect(port);
    let mut checked = 0u64;
    while !stop.load(Ordering::Relaxed) || checked < 50 {
        let key = format!("ctl:{checked}");
        let value = format!("value-{checked}-{}", "v".repeat(checked as usize % 40));
        assert_eq!(client.cmd(&["SET", &key, &value]), Reply::ok(), "SET {key}");
        assert_eq!(client.cmd(&["GET", &key]), Reply::bulk(&value), "GET {key}");
        let counter = client.cmd(&["INCR", "ctl:counter"]);
        assert_eq!(counter, Reply::int(checked as i64 + 1), "INCR ctl:counter");
        if checked >= 10 {
            let old = checked - 10;
            let value = format!("value-{old}-{}", "v".repeat(old as usize % 40));
            let key = format!("ctl:{old}");
            assert_eq!(client.cmd(&["GET", &key]), Reply::bulk(&value), "GET {key}");
        }
        checked += 1;
    }
    checked
}

#[test]
fn hostile_input_never_disturbs_other_clients_or_the_server() {
    skip_if_external!();
    const THREADS: u64 = 16;
    const FRAMES: u64 = 200_000;
    let seed = fuzz_seed();
    println!("hostile input: RFS_FUZZ_SEED={seed} (set it to replay this run)");
    let mut server = start(&[]);
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(FuzzStats::default());
    let started = Instant::now();

    let control = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || control_client(port, &stop))
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|id| {
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            let rng = Rng(seed ^ (id + 1).wrapping_mul(0xA076_1D64_78BD_642F));
            thread::spawn(move || fuzz_worker(port, rng, FRAMES / THREADS, &stop, &stats))
        })
        .collect();
    // A safety net: a server that slows to a crawl fails the frame count,
    // and one that stops answering fails the control client (in 10 s).
    let deadline = Instant::now() + Duration::from_secs(40);
    while !workers.iter().all(|w| w.is_finished())
        && !control.is_finished()
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a fuzzing thread panicked");
    }
    let elapsed = started.elapsed();
    let checked = control.join().unwrap_or_else(|_| {
        panic!(
            "the control client got a wrong answer, or none within 10 s (a frozen server); \
             see its panic above (seed {seed})"
        )
    });

    let frames = stats.frames.load(Ordering::Relaxed);
    println!(
        "hostile input: {frames} frames ({} broken on purpose, {} KiB) in {elapsed:.2?} = {:.0} frames/s over {} connections ({} cut short by the server); control client checked {checked} SET/GET pairs",
        stats.dirty.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed) / 1024,
        frames as f64 / elapsed.as_secs_f64(),
        stats.connections.load(Ordering::Relaxed),
        stats.closed_by_server.load(Ordering::Relaxed),
    );
    assert!(frames >= 100_000, "only {frames} frames sent (seed {seed})");
    assert_eq!(
        stats.hung.load(Ordering::Relaxed),
        0,
        "connections the server kept open after the client's end-of-file (seed {seed})"
    );
    assert!(server.is_running(), "the server died (seed {seed})");
    let mut client = server.client();
    assert_eq!(client.cmd(&["PING"]), Reply::pong());
    let processed = client.info_field("stats", "total_commands_processed");
    println!("hostile input: the server ran {processed:?} commands");
    // The control keys are all there, untouched.
    assert_eq!(
        client.cmd(&["GET", "ctl:counter"]),
        Reply::bulk(&checked.to_string())
    );
    // Every fuzzing connection is gone: no thread or registration leaked.
    poll_until(Duration::from_secs(10), || {
        let connected = client.info_field("clients", "connected_clients")?;
        (connected == "1").then_some(())
    });
    let log = server.log();
    assert!(
        !log.contains("panicked"),
        "a thread panicked (seed {seed}); log:\n{log}"
    );
}

/// Found by the test above: INFO queued in MULTI (its default, keyspace
/// and persistence sections read the keyspace) must not freeze the server.
#[test]
fn info_inside_multi_leaves_the_server_responsive() {
    let server = start(&[]);
    let mut client = server.client();
    // Fail in seconds, not REPLY_TIMEOUT, if the server freezes.
    let quick = Some(Duration::from_secs(3));
    client.stream().set_read_timeout(quick).unwrap();
    assert_eq!(client.cmd(&["SET", "k", "v"]), Reply::ok());
    for section in ["keyspace", "persistence", "default"] {
        assert_eq!(client.cmd(&["MULTI"]), Reply::ok());
        assert_eq!(client.cmd(&["INFO", section]), Reply::simple("QUEUED"));
        assert_eq!(client.cmd(&["GET", "k"]), Reply::simple("QUEUED"));
        let reply = client.cmd(&["EXEC"]);
        let replies = reply.as_array();
        assert!(!replies[0].as_bulk().is_empty(), "INFO {section} in EXEC");
        assert_eq!(replies[1], Reply::bulk("v"), "INFO {section}");
        let mut other = server.client();
        other.stream().set_read_timeout(quick).unwrap();
        assert_eq!(
            other.cmd(&["SET", "k2", section]),
            Reply::ok(),
            "after INFO {section} in EXEC"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Huge declared lengths
// ---------------------------------------------------------------------------

#[test]
fn a_bulk_length_beyond_the_limit_is_refused_and_closed() {
    let server = start(&[]);
    let mut client = server.client();
    client.send(b"*1\r\n$2000000000\r\n");
    assert_eq!(
        client.read_reply_raw(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    client.expect_closed();
    assert_eq!(server.client().cmd(&["PING"]), Reply::pong());
}

#[test]
fn declaring_512_mib_and_sending_nothing_costs_almost_no_memory() {
    let server = start(&[]);
    let pid = server.pid();
    let mut control = server.client();
    assert_eq!(control.cmd(&["PING"]), Reply::pong());
    let before = rss_kib(pid);

    let mut one = server.client();
    one.send(b"*1\r\n$536870912\r\nsome bytes, far fewer than declared");
    // The server waits for the rest, quietly.
    one.expect_no_reply(Duration::from_millis(300));
    let after_one = rss_kib(pid);
    assert!(
        after_one.saturating_sub(before) < 16 * 1024,
        "one client declaring 512 MiB grew RSS from {before} KiB to {after_one} KiB"
    );

    let mut many: Vec<Client> = (0..200).map(|_| server.client()).collect();
    for client in &mut many {
        client.send(b"*2\r\n$3\r\nGET\r\n$536870912\r\nabc");
    }
    poll_until(Duration::from_secs(10), || {
        let connected: usize = control
            .info_field("clients", "connected_clients")?
            .parse()
            .ok()?;
        (connected >= 202).then_some(())
    });
    many[199].expect_no_reply(Duration::from_millis(300));
    let after_many = rss_kib(pid);
    println!(
        "RSS: {before} KiB, one 512 MiB bulk pending {after_one} KiB, 201 pending {after_many} KiB"
    );
    assert!(
        after_many.saturating_sub(before) < 32 * 1024,
        "201 clients declaring 512 MiB grew RSS from {before} KiB to {after_many} KiB"
    );
    assert_eq!(control.cmd(&["PING"]), Reply::pong());
    drop(many);
    drop(one);
    assert_eq!(server.client().cmd(&["PING"]), Reply::pong());
}

// ---------------------------------------------------------------------------
// 3. Limits
// ---------------------------------------------------------------------------

#[test]
fn maxclients_refuses_the_eleventh_and_accepts_again_after_a_leave() {
    let server = start(&["--maxclients", "10"]);
    let mut first = server.client();
    // The harness's own probe connection may still be registered: wait
    // until we are alone.
    poll_until(Duration::from_secs(10), || {
        let connected = first.info_field("clients", "connected_clients")?;
        (connected == "1").then_some(())
    });
    let mut clients = vec![first];
    for _ in 1..10 {
        let mut client = server.client();
        assert_eq!(client.cmd(&["PING"]), Reply::pong());
        clients.push(client);
    }
    let mut eleventh = server.client();
    assert_eq!(
        eleventh.read_reply_raw(),
        b"-ERR max number of clients reached\r\n"
    );
    eleventh.expect_closed();
    // Everyone admitted is still served.
    for client in &mut clients {
        assert_eq!(client.cmd(&["PING"]), Reply::pong());
    }
    // One leaves: a newcomer is admitted (once the server has noticed).
    drop(clients.pop());
    poll_until(Duration::from_secs(10), || {
        let mut client = server.client();
        client.send(&common::encode_str_command(&["PING"]));
        match client.read_reply() {
            Reply::Simple(pong) if pong == "PONG" => Some(()),
            _ => None,
        }
    });
}

#[test]
fn timeout_closes_idle_clients_and_spares_active_ones() {
    let server = start(&["--timeout", "1"]);
    let mut idle = server.client();
    assert_eq!(idle.cmd(&["PING"]), Reply::pong());
    let started = Instant::now();
    let watcher = thread::spawn(move || {
        idle.expect_closed();
        started.elapsed()
    });
    let mut active = server.client();
    while !watcher.is_finished() && started.elapsed() < Duration::from_secs(8) {
        assert_eq!(active.cmd(&["PING"]), Reply::pong());
        thread::sleep(Duration::from_millis(200));
    }
    let closed_after = watcher.join().expect("the idle client was not closed");
    assert!(
        closed_after < Duration::from_secs(5),
        "the idle client was closed only after {closed_after:?}"
    );
    // The active client kept going past the timeout, and still does.
    assert!(started.elapsed() > Duration::from_secs(1));
    assert_eq!(active.cmd(&["PING"]), Reply::pong());
}

/// Reads one line (through its `\n`) byte by byte.
fn read_line(client: &mut Client) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        line.extend_from_slice(&client.read_exact(1));
    }
    line
}

/// `timeout` is for clients: as in Redis, a replica's link is exempt, even
/// one that stays silent (no REPLCONF ACK) for longer than the timeout.
/// Connects to `master` as a replica would, and reads the handshake's
/// replies and the snapshot: what comes next on it is the stream.
fn attach_fake_replica(master: &Server) -> Client {
    let mut replica = master.client();
    assert_eq!(replica.cmd(&["PING"]), Reply::pong());
    assert_eq!(
        replica.cmd(&["REPLCONF", "listening-port", "1"]),
        Reply::ok()
    );
    assert_eq!(replica.cmd(&["REPLCONF", "capa", "psync2"]), Reply::ok());
    replica.send(&common::encode_str_command(&["PSYNC", "?", "-1"]));
    let mut line = read_line(&mut replica);
    while line == b"\n" {
        line = read_line(&mut replica); // keep-alive newlines
    }
    assert!(
        line.starts_with(b"+FULLRESYNC "),
        "{:?}",
        line.escape_ascii().to_string()
    );
    let mut header = read_line(&mut replica);
    while header == b"\n" {
        header = read_line(&mut replica);
    }
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("snapshot header {:?}", header.escape_ascii().to_string()));
    replica.read_exact(len);
    replica
}

#[test]
fn a_replica_that_stops_reading_is_dropped_and_writers_go_on() {
    skip_if_external!();
    // Redis's client-output-buffer-limit for replicas: past the hard limit
    // the replica is disconnected, and no writer ever waits for it.
    let master = start(&["--client-output-buffer-limit", "replica", "1mb", "0", "0"]);
    let _stalled = attach_fake_replica(&master); // never reads again
    let mut writer = master.client();
    assert_eq!(
        writer
            .info_field("replication", "connected_slaves")
            .as_deref(),
        Some("1")
    );
    // 32 MiB of writes: past the limit, and past whatever the kernel's
    // socket buffers take in before the replica's side stops moving.
    let value = vec![b'x'; 64 * 1024];
    for i in 0..512 {
        let key = format!("k{}", i % 16);
        assert_eq!(
            writer.cmd_bytes(&[b"SET", key.as_bytes(), &value]),
            Reply::ok()
        );
    }
    poll_until(Duration::from_secs(10), || {
        let replicas = writer.info_field("replication", "connected_slaves");
        (replicas.as_deref() == Some("0")).then_some(())
    });
    assert_eq!(writer.cmd(&["PING"]), Reply::pong());
}

#[test]
fn timeout_does_not_cut_a_replica_link() {
    let master = start(&["--timeout", "1"]);
    let mut replica = attach_fake_replica(&master);
    // The replica stays silent, as one loading a big snapshot is, while an
    // ordinary client that went quiet after it is closed by the timeout:
    // the replica has then been idle for longer than that client was.
    let mut idle = master.client();
    assert_eq!(idle.cmd(&["PING"]), Reply::pong());
    idle.expect_closed();
    assert_eq!(master.client().cmd(&["SET", "k", "v"]), Reply::ok());
    loop {
        let command = replica.read_reply();
        let parts = command.as_array();
        if parts[0].as_bulk().eq_ignore_ascii_case(b"SET") {
            assert_eq!(parts[1..], [Reply::bulk("k"), Reply::bulk("v")]);
            break;
        }
    }
}

#[test]
fn proto_max_bulk_len_is_enforced() {
    let server = start(&["--proto-max-bulk-len", "1048576"]);
    let mut client = server.client();
    client.send(b"*1\r\n$1048577\r\n");
    assert_eq!(
        client.read_reply_raw(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    client.expect_closed();
    // Exactly the limit is accepted, and works.
    let mut client = server.client();
    let value = vec![b'v'; 1048576];
    assert_eq!(client.cmd_bytes(&[b"SET", b"big", &value]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "big"]), Reply::Bulk(value));
}

#[test]
fn a_request_over_the_query_buffer_limit_is_closed() {
    skip_if_external!();
    // Three arguments of 600 KiB: each under proto-max-bulk-len, together
    // over a 1 MiB query buffer. Redis closes such a client without a
    // reply, and logs it.
    let server = start(&["--client-query-buffer-limit", "1048576"]);
    let mut client = server.client();
    let chunk = vec![b'x'; 600 * 1024];
    let request = common::encode_command(&[b"MSET", b"a", &chunk, b"b", &chunk]);
    // The server may close before it has read everything; that is the point.
    let _ = client.try_send(&request);
    client.expect_closed();
    poll_until(Duration::from_secs(5), || {
        server
            .log()
            .contains("max query buffer length")
            .then_some(())
    });
    // Within the limit, the same command works.
    let mut client = server.client();
    let small = vec![b'x'; 100 * 1024];
    assert_eq!(
        client.cmd_bytes(&[b"MSET", b"a", &small, b"b", &small]),
        Reply::ok()
    );
}

#[test]
fn unauthenticated_clients_get_tighter_limits() {
    let server = start(&["--requirepass", "p"]);
    let mut client = server.client();
    client.send(b"*11\r\n");
    assert_eq!(
        client.read_reply_raw(),
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    client.expect_closed();

    let mut client = server.client();
    client.send(b"*1\r\n$16385\r\n");
    assert_eq!(
        client.read_reply_raw(),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    client.expect_closed();

    // Within the limits, a stranger is simply told to authenticate...
    let mut client = server.client();
    let mut args = vec!["DEL"];
    args.extend(std::iter::repeat_n("x", 9));
    assert_eq!(
        client.cmd(&args),
        Reply::err("NOAUTH Authentication required.")
    );
    let value = "v".repeat(16384);
    assert_eq!(
        client.cmd(&["ECHO", &value]),
        Reply::err("NOAUTH Authentication required.")
    );
    // ...and once authenticated, the usual limits apply.
    assert_eq!(client.cmd(&["AUTH", "p"]), Reply::ok());
    let value = "v".repeat(100_000);
    assert_eq!(client.cmd(&["ECHO", &value]), Reply::bulk(&value));
    let mut args = vec!["MSET"];
    args.extend(std::iter::repeat_n("k", 20));
    assert_eq!(client.cmd(&args), Reply::ok());
}

// ---------------------------------------------------------------------------
// 4. Access
// ---------------------------------------------------------------------------

#[test]
fn requirepass_locks_everything_but_auth_hello_and_quit() {
    let server = start(&["--requirepass", "secret"]);
    let mut client = server.client();
    let noauth = Reply::err("NOAUTH Authentication required.");
    for args in [
        &["PING"][..],
        &["GET", "k"],
        &["SET", "k", "v"],
        &["INFO"],
        &["CONFIG", "GET", "requirepass"],
    ] {
        assert_eq!(client.cmd(args), noauth, "{args:?}");
    }
    assert_eq!(client.cmd(&["HELLO"]), Reply::err(NOAUTH_HELLO));
    let wrongpass = Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(client.cmd(&["AUTH", "wrong"]), wrongpass);
    assert_eq!(client.cmd(&["AUTH", "default", "wrong"]), wrongpass);
    assert_eq!(client.cmd(&["AUTH", "secre"]), wrongpass);
    assert_eq!(client.cmd(&["AUTH", "secrett"]), wrongpass);
    assert_eq!(client.cmd(&["AUTH", "nobody", "secret"]), wrongpass);
    // Still locked after the failures.
    assert_eq!(client.cmd(&["GET", "k"]), noauth);
    assert_eq!(client.cmd(&["AUTH", "secret"]), Reply::ok());
    assert_eq!(client.cmd(&["PING"]), Reply::pong());
    assert_eq!(client.cmd(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert!(!client.cmd(&["INFO"]).is_error());

    // With the user name, as Redis 6+ clients send it.
    let mut client = server.client();
    assert_eq!(client.cmd(&["AUTH", "default", "secret"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));

    // HELLO can authenticate on its own.
    let mut client = server.client();
    assert_eq!(
        client.cmd(&["HELLO", "2", "AUTH", "default", "wrong"]),
        wrongpass
    );
    assert_eq!(client.cmd(&["GET", "k"]), noauth);
    let hello = client.cmd(&["HELLO", "2", "AUTH", "default", "secret"]);
    assert!(!hello.is_error(), "HELLO 2 AUTH default secret: {hello:?}");
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));

    // QUIT needs no password.
    let mut client = server.client();
    assert_eq!(client.cmd(&["QUIT"]), Reply::ok());
    client.expect_closed();
}

#[test]
fn default_bind_is_loopback_only() {
    skip_if_external!();
    let server = Server::start(BIN);
    let mut client = server.client();
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "bind"]),
        Reply::bulks(&["bind", "127.0.0.1"])
    );
    assert_log_line(
        &server,
        &[&format!("Listening on 127.0.0.1:{}", server.port())],
    );
}

// ---------------------------------------------------------------------------
// 5. Cross-protocol scripting
// ---------------------------------------------------------------------------

#[test]
fn http_requests_are_cut_off_and_logged() {
    let server = start(&[]);
    for request in [
        &b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nPING\r\n"[..],
        b"Host: example.com\r\n\r\n",
        b"post /x HTTP/1.0\r\n",
    ] {
        let mut client = server.client();
        // The server may close before reading all of it: a failed send is fine.
        let _ = client.try_send(request);
        client.expect_closed();
    }
    assert_log_line(&server, &["Possible SECURITY ATTACK detected"]);
    assert_serving(&server);
}

// ---------------------------------------------------------------------------
// 6. Replication faults
// ---------------------------------------------------------------------------

#[test]
fn a_replica_killed_during_full_sync_catches_up_after_restart() {
    skip_if_external!();
    const KEYS: usize = 300_000;
    let master = start(&[]);
    load_keys(master.port(), "full:", KEYS);
    let mut replica = start_replica(&master);
    // The master registers the replica before it encodes the snapshot:
    // that moment is the middle of the full sync.
    let mut control = master.client();
    poll_until(Duration::from_secs(10), || {
        let slaves = control.info_field("replication", "connected_slaves")?;
        (slaves == "1").then_some(())
    });
    replica.kill();
    let mid_sync = !replica.log().contains("Finished with success");
    println!("replica killed during the full sync: {mid_sync}");
    // Writes go on while the replica is down.
    load_keys(master.port(), "later:", 1000);
    replica.restart();
    let mut keys = sample("full:", KEYS, 9973);
    keys.extend(sample("later:", 1000, 97));
    assert_converges(
        master.port(),
        replica.port(),
        &keys,
        Duration::from_secs(40),
    );
    assert_eq!(dbsize(replica.port()), Some(KEYS as i64 + 1000));
}

#[test]
fn a_replica_killed_while_streaming_converges_after_restart() {
    skip_if_external!();
    let master = start(&[]);
    load_keys(master.port(), "base:", 5000);
    let mut replica = start_replica(&master);
    let base = sample("base:", 5000, 97);
    assert_converges(
        master.port(),
        replica.port(),
        &base,
        Duration::from_secs(20),
    );

    // A writer streams changes through the kill and the restart.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, progress, port) = (Arc::clone(&stop), Arc::clone(&progress), master.port());
        thread::spawn(move || {
            let mut client = Client::connect(port);
            let mut written = 0usize;
            while !stop.load(Ordering::Relaxed) || written < 200 {
                let key = format!("stream:{written}");
                assert_eq!(client.cmd(&["SET", &key, &key]), Reply::ok());
                if written.is_multiple_of(7) {
                    client.cmd(&["DEL", &format!("base:{written}")]);
                }
                if written.is_multiple_of(5) {
                    client.cmd(&["INCR", "stream:counter"]);
                }
                written += 1;
                progress.store(written, Ordering::Relaxed);
            }
            written
        })
    };
    let mut replica_client = replica.client();
    poll_until(Duration::from_secs(10), || {
        let reply = replica_client.cmd(&["EXISTS", "stream:50"]);
        (reply == Reply::int(1)).then_some(())
    });
    replica.kill();
    // Writes go on while the replica is down...
    let at_kill = progress.load(Ordering::Relaxed);
    poll_until(Duration::from_secs(10), || {
        (progress.load(Ordering::Relaxed) >= at_kill + 100).then_some(())
    });
    replica.restart();
    // ...and after it is back: it receives keys written after its restart.
    let after_restart = progress.load(Ordering::Relaxed) + 100;
    let mut replica_client = replica.client();
    poll_until(Duration::from_secs(20), || {
        let key = format!("stream:{after_restart}");
        (replica_client.cmd(&["EXISTS", &key]) == Reply::int(1)).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("the writer failed");
    let mut keys = sample("stream:", written, 37);
    keys.extend(base);
    keys.push("stream:counter".into());
    assert_converges(
        master.port(),
        replica.port(),
        &keys,
        Duration::from_secs(20),
    );
}

#[test]
fn replicas_converge_on_a_master_restarted_from_its_dump() {
    skip_if_external!();
    let mut master = start(&[]);
    let port = master.port();
    load_keys(port, "saved:", 10_000);
    assert_eq!(master.client().cmd(&["SAVE"]), Reply::ok());
    load_keys(port, "saved2:", 1000);
    assert_eq!(master.client().cmd(&["SAVE"]), Reply::ok());
    let replicas = [start_replica(&master), start_replica(&master)];
    let mut keys = sample("saved:", 10_000, 101);
    keys.extend(sample("saved2:", 1000, 11));
    for replica in &replicas {
        assert_converges(port, replica.port(), &keys, Duration::from_secs(20));
    }
    // Writes after the last save: the replicas have them, the dump does not.
    load_keys(port, "lost:", 100);
    for replica in &replicas {
        let mut client = replica.client();
        poll_until(Duration::from_secs(10), || {
            (client.cmd(&["EXISTS", "lost:99"]) == Reply::int(1)).then_some(())
        });
    }

    master.restart();
    assert_eq!(
        dbsize(port),
        Some(11_000),
        "the master reloads its last save"
    );
    keys.push("lost:0".into());
    keys.push("lost:99".into());
    for replica in &replicas {
        assert_converges(port, replica.port(), &keys, Duration::from_secs(30));
        let mut client = replica.client();
        assert_eq!(client.cmd(&["EXISTS", "lost:0", "lost:99"]), Reply::int(0));
        assert_eq!(
            client.cmd(&["GET", "saved2:999"]),
            Reply::bulk("saved2:value999")
        );
    }
    // And the link works again: new writes reach them.
    assert_eq!(
        master.client().cmd(&["SET", "after", "restart"]),
        Reply::ok()
    );
    for replica in &replicas {
        let mut client = replica.client();
        poll_until(Duration::from_secs(10), || {
            (client.cmd(&["GET", "after"]) == Reply::bulk("restart")).then_some(())
        });
    }
}

#[test]
fn a_write_acknowledged_by_wait_survives_the_master() {
    skip_if_external!();
    let mut master = start(&[]);
    let replicas = [start_replica(&master), start_replica(&master)];
    let mut client = master.client();
    poll_until(Duration::from_secs(10), || {
        let slaves = client.info_field("replication", "connected_slaves")?;
        (slaves == "2").then_some(())
    });
    for i in 0..20 {
        let key = format!("acked:{i}");
        assert_eq!(client.cmd(&["SET", &key, &key]), Reply::ok());
        assert_eq!(client.cmd(&["WAIT", "2", "5000"]), Reply::int(2), "{key}");
    }
    master.kill();
    for replica in &replicas {
        let mut client = replica.client();
        for i in 0..20 {
            let key = format!("acked:{i}");
            assert_eq!(
                client.cmd(&["GET", &key]),
                Reply::bulk(&key),
                "on {}",
                replica.port()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Persistence faults
// ---------------------------------------------------------------------------

#[test]
fn a_kill_during_saves_leaves_the_last_good_dump() {
    skip_if_external!();
    const ROUND: usize = 2000;
    let mut server = start(&[]);
    let port = server.port();
    load_keys(port, "pre:", 50_000);
    // Rounds of: a batch of new keys, then SAVE. `saved` is the DBSIZE of
    // the last SAVE that replied OK.
    let saved = Arc::new(AtomicU64::new(0));
    let saver = {
        let saved = Arc::clone(&saved);
        thread::spawn(move || {
            let mut round = 0;
            loop {
                let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut args = vec!["MSET".to_string()];
                for i in 0..ROUND {
                    args.push(format!("round{round}:{i}"));
                    args.push(format!("{round}"));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let mut request = common::encode_str_command(&args);
                request.extend_from_slice(&common::encode_str_command(&["SAVE"]));
                if stream.write_all(&request).is_err() {
                    return;
                }
                let mut reply = Vec::new();
                let mut buf = [0u8; 64];
                while reply.len() < b"+OK\r\n+OK\r\n".len() {
                    match stream.read(&mut buf) {
                        Ok(n) if n > 0 => reply.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                assert_eq!(reply, b"+OK\r\n+OK\r\n");
                round += 1;
                saved.store((50_000 + round * ROUND) as u64, Ordering::SeqCst);
            }
        })
    };
    poll_until(Duration::from_secs(20), || {
        (saved.load(Ordering::SeqCst) >= 50_000 + 3 * ROUND as u64).then_some(())
    });
    // Kill while a save is writing its temporary file, if we catch one
    // (saves come back to back, so within seconds we do).
    let temp_file = |dir: &std::path::Path| {
        std::fs::read_dir(dir).ok().is_some_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with("temp-"))
        })
    };
    let hunting = Instant::now();
    while !temp_file(server.dir()) && hunting.elapsed() < Duration::from_secs(5) {
        thread::yield_now();
    }
    server.kill();
    saver.join().expect("the saver failed");
    let acked = saved.load(Ordering::SeqCst) as i64;
    let mid_save = temp_file(server.dir());
    println!("killed after a save of {acked} keys; in the middle of the next save: {mid_save}");

    server.restart();
    // The last acknowledged save; or, if the kill came between a save's
    // rename and its reply, that save.
    let loaded = dbsize(port).expect("the restarted server answers");
    if mid_save {
        assert_eq!(
            loaded, acked,
            "killed while writing a save: the previous dump must load whole"
        );
    }
    assert!(
        loaded == acked || loaded == acked + ROUND as i64,
        "after the kill, {loaded} keys loaded; the last acknowledged save had {acked}"
    );
    let mut client = server.client();
    assert_eq!(
        client.cmd(&["GET", "pre:49999"]),
        Reply::bulk("pre:value49999")
    );
    assert_log_line(&server, &["DB loaded from disk"]);
}

#[test]
fn save_to_an_unwritable_destination_fails_and_the_server_goes_on() {
    let server = start(&["--dbfilename", "dump.rdb"]);
    std::fs::create_dir(server.dir().join("dump.rdb")).expect("mkdir dump.rdb");
    let mut client = server.client();
    assert_eq!(client.cmd(&["SET", "k", "v"]), Reply::ok());
    let lastsave = client.cmd(&["LASTSAVE"]);
    match client.cmd(&["SAVE"]) {
        Reply::Error(e) if e.starts_with("ERR") => {}
        other => panic!("SAVE over a directory replied {other:?}"),
    }
    assert_log_line(
        &server,
        &[
            "Failed saving the DB",
            "Error moving temp DB file",
            "Write error saving DB",
        ],
    );
    assert_eq!(client.cmd(&["LASTSAVE"]), lastsave);
    assert_serving(&server);
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));
}

#[test]
fn bgsave_to_an_unwritable_destination_fails_in_the_log_and_lastsave_stays() {
    let server = start(&["--dbfilename", "dump.rdb"]);
    std::fs::create_dir(server.dir().join("dump.rdb")).expect("mkdir dump.rdb");
    let mut client = server.client();
    assert_eq!(client.cmd(&["SET", "k", "v"]), Reply::ok());
    let lastsave = client.cmd(&["LASTSAVE"]);
    assert_eq!(
        client.cmd(&["BGSAVE"]),
        Reply::simple("Background saving started")
    );
    assert_log_line(
        &server,
        &["Failed saving the DB", "Background saving error"],
    );
    poll_until(Duration::from_secs(10), || {
        let status = client.info_field("persistence", "rdb_last_bgsave_status")?;
        let running = client.info_field("persistence", "rdb_bgsave_in_progress")?;
        (status == "err" && running == "0").then_some(())
    });
    assert_eq!(client.cmd(&["LASTSAVE"]), lastsave);
    assert_serving(&server);
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));
}

// ---------------------------------------------------------------------------
// Snapshots that do not stall
// ---------------------------------------------------------------------------

/// Keys for the full-sync stall test: enough that encoding them under the
/// lock, as the server once did, held writers for over a second (debug).
const SYNC_KEYS: usize = 60_000;

/// The longest a writer's SET may take while a replica syncs.
const SYNC_STALL_LIMIT: Duration = Duration::from_millis(200);

/// 300 bytes in which LZF finds little to compress: work for the encoder.
fn incompressible_value(i: usize) -> String {
    let mut state = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..300)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

/// SETs `<prefix><i>` to `incompressible_value(i)` for `i` in `0..count`,
/// pipelined.
fn load_incompressible(port: u16, prefix: &str, count: usize) {
    let mut client = Client::connect(port);
    let mut pipeline = Vec::new();
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let value = incompressible_value(i);
        pipeline.extend(common::encode_str_command(&["SET", &key, &value]));
    }
    let writer = client.send_in_background(pipeline);
    for _ in 0..count {
        assert_eq!(client.read_reply(), Reply::ok());
    }
    writer.join().unwrap().expect("pipeline sent");
}

#[test]
fn a_full_sync_does_not_stall_writers() {
    skip_if_external!();
    let master = start(&[]);
    load_incompressible(master.port(), "big:", SYNC_KEYS);

    // A writer measures its SETs from before the replica attaches until
    // the replica has loaded the snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (port, stop) = (master.port(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut client = Client::connect(port);
            let (mut slowest, mut round_trips) = (Duration::ZERO, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let value = round_trips.to_string();
                let sent = Instant::now();
                assert_eq!(client.cmd(&["SET", "during", &value]), Reply::ok());
                slowest = slowest.max(sent.elapsed());
                round_trips += 1;
            }
            (slowest, round_trips)
        })
    };
    let started = Instant::now();
    let replica = start_replica(&master);
    poll_until(Duration::from_secs(60), || {
        (dbsize(replica.port())? >= SYNC_KEYS as i64).then_some(())
    });
    let synced_in = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (slowest, round_trips) = writer.join().expect("writer thread");
    eprintln!("slowest SET {slowest:?} during a sync of {synced_in:?} ({round_trips} round trips)");
    assert!(
        slowest < SYNC_STALL_LIMIT,
        "a SET took {slowest:?} while the replica synced ({synced_in:?}, {round_trips} SETs)"
    );
    let keys = sample("big:", SYNC_KEYS, 997);
    assert_converges(
        master.port(),
        replica.port(),
        &keys,
        Duration::from_secs(30),
    );
}

#[test]
fn a_replica_that_said_capa_eof_gets_the_snapshot_streamed_with_an_end_mark() {
    skip_if_external!();
    let master = start(&[]);
    load_incompressible(master.port(), "k", 2_000);
    let mut replica = master.client();
    assert_eq!(
        replica.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]),
        Reply::ok()
    );
    replica.send(&common::encode_str_command(&["PSYNC", "?", "-1"]));
    let mut line = read_line(&mut replica);
    while line == b"\n" {
        line = read_line(&mut replica);
    }
    assert!(line.starts_with(b"+FULLRESYNC "), "{}", line.escape_ascii());
    let header = read_line(&mut replica);
    let mark = header
        .strip_prefix(b"$EOF:")
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
        .unwrap_or_else(|| panic!("snapshot header {}", header.escape_ascii()))
        .to_vec();
    assert_eq!(mark.len(), 40, "{}", mark.escape_ascii());
    // The RDB, then the mark: read until the stream ends with it.
    let mut body = Vec::new();
    while !body.ends_with(&mark) {
        body.extend_from_slice(&replica.read_exact(1));
        assert!(body.len() < 10 << 20, "no end mark after 10 MiB");
    }
    let rdb = &body[..body.len() - mark.len()];
    assert!(rdb.starts_with(b"REDIS0010"), "{}", rdb[..9].escape_ascii());
    // The last 8 bytes are the CRC-64 of everything before them.
    let (content, crc) = rdb.split_at(rdb.len() - 8);
    assert_eq!(common::crc64(content).to_le_bytes(), crc);
    assert!(
        rdb.len() > 2_000 * 300,
        "{} bytes for 2,000 keys",
        rdb.len()
    );
}

// ---------------------------------------------------------------------------
// Refusing writes it cannot keep (MISCONF)
// ---------------------------------------------------------------------------

/// What writes get while background saves fail, word for word Redis 7.0's.
const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Runs BGSAVE and waits until it has finished with `status` (`ok`/`err`).
fn bgsave_until(client: &mut Client, status: &str) {
    assert!(
        matches!(client.cmd(&["BGSAVE"]), Reply::Simple(_)),
        "BGSAVE did not start"
    );
    poll_until(Duration::from_secs(10), || {
        let last = client.info_field("persistence", "rdb_last_bgsave_status")?;
        let running = client.info_field("persistence", "rdb_bgsave_in_progress")?;
        (last == status && running == "0").then_some(())
    });
}

/// After a failed background save, with save points set and
/// `stop-writes-on-bgsave-error yes` (the default), Redis refuses writes
/// (and PING, and a transaction with writes queued before the failure)
/// until a save succeeds; reads go on. Also passes against real Redis.
#[test]
fn writes_and_ping_are_refused_with_misconf_while_background_saves_fail() {
    let server = start(&["--save", "3600 1"]);
    let dump = server.dir().join("dump.rdb");
    let mut client = server.client();
    assert_eq!(client.cmd(&["SET", "k", "v"]), Reply::ok());
    // A transaction queued while all is well, run after the failure.
    let mut early = server.client();
    assert_eq!(early.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(early.cmd(&["SET", "k", "early"]), Reply::simple("QUEUED"));
    // A directory where the dump goes: the rename over it fails.
    std::fs::create_dir(&dump).expect("mkdir dump.rdb");
    bgsave_until(&mut client, "err");

    let misconf = Reply::err(MISCONF);
    assert_eq!(client.cmd(&["SET", "k", "v2"]), misconf);
    assert_eq!(client.cmd(&["DEL", "k"]), misconf);
    assert_eq!(client.cmd(&["FLUSHALL"]), misconf);
    assert_eq!(client.cmd(&["PING"]), misconf);
    assert_eq!(client.cmd(&["PING", "hi"]), misconf);
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(client.cmd(&["ECHO", "hi"]), Reply::bulk("hi"));
    assert_eq!(client.cmd(&["DBSIZE"]), Reply::int(1));
    // Queueing a write is refused, and dooms the transaction.
    assert_eq!(client.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(client.cmd(&["SET", "k", "v3"]), misconf);
    assert_eq!(client.cmd(&["GET", "k"]), Reply::simple("QUEUED"));
    assert_eq!(
        client.cmd(&["EXEC"]),
        Reply::err("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(
        early.cmd(&["EXEC"]),
        Reply::err(&format!(
            "EXECABORT Transaction discarded because of: {MISCONF}"
        ))
    );
    // The setting, and the save points, decide.
    let set = |client: &mut Client, name: &str, value: &str| {
        assert_eq!(client.cmd(&["CONFIG", "SET", name, value]), Reply::ok());
    };
    set(&mut client, "stop-writes-on-bgsave-error", "no");
    assert_eq!(client.cmd(&["SET", "k", "v4"]), Reply::ok());
    set(&mut client, "stop-writes-on-bgsave-error", "yes");
    assert_eq!(client.cmd(&["SET", "k", "v5"]), misconf);
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "stop-writes-on-bgsave-error"]),
        Reply::bulks(&["stop-writes-on-bgsave-error", "yes"])
    );
    set(&mut client, "save", "");
    assert_eq!(client.cmd(&["SET", "k", "v6"]), Reply::ok());
    set(&mut client, "save", "3600 1");
    assert_eq!(client.cmd(&["SET", "k", "v7"]), misconf);
    // A save that succeeds lifts the refusal.
    std::fs::remove_dir(&dump).expect("rmdir dump.rdb");
    bgsave_until(&mut client, "ok");
    assert_eq!(client.cmd(&["PING"]), Reply::pong());
    assert_eq!(client.cmd(&["SET", "k", "v8"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v8"));
}

// ---------------------------------------------------------------------------
// What operators read: INFO and CLIENT LIST tell the truth
// ---------------------------------------------------------------------------

/// INFO `section`'s `field` as a number (panics if absent).
#[track_caller]
fn info_number(client: &mut Client, section: &str, field: &str) -> f64 {
    let value = client
        .info_field(section, field)
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{field}:{value} is not a number"))
}

/// CLIENT LIST's `field` for the client whose id is `id`.
fn client_list_field(client: &mut Client, id: i64, field: &str) -> Option<String> {
    let list = client.cmd(&["CLIENT", "LIST"]);
    let list = String::from_utf8_lossy(list.as_bulk()).into_owned();
    let line = list
        .lines()
        .find(|line| line.starts_with(&format!("id={id} ")))?;
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{field}=")))
        .map(str::to_string)
}

/// After HELLO 3 a client speaks RESP3, and CLIENT INFO and CLIENT LIST
/// say so (they said `resp=2`). Also passes against real Redis.
#[test]
fn client_info_and_list_show_resp3_after_hello_3() {
    let server = start(&[]);
    let mut client = server.client();
    let id = client.cmd(&["CLIENT", "ID"]).as_int();
    let info = client.cmd(&["CLIENT", "INFO"]);
    assert!(String::from_utf8_lossy(info.as_bulk()).contains(" resp=2"));
    client.send(&common::encode_str_command(&["HELLO", "3"]));
    let _ = client.read_reply_raw();
    // RESP3 replies a verbatim string to CLIENT INFO: read it raw.
    client.send(&common::encode_str_command(&["CLIENT", "INFO"]));
    let info = String::from_utf8_lossy(&client.read_reply_raw()).into_owned();
    assert!(info.contains(" resp=3"), "{info}");
    let mut other = server.client();
    assert_eq!(
        client_list_field(&mut other, id, "resp").as_deref(),
        Some("3")
    );
}

/// INFO stats counts the keys deleted because they expired, and the bytes
/// read from and sent to clients. Also passes against real Redis.
#[test]
fn info_counts_expired_keys_and_network_bytes() {
    let server = start(&[]);
    let mut client = server.client();
    let input = info_number(&mut client, "stats", "total_net_input_bytes");
    let output = info_number(&mut client, "stats", "total_net_output_bytes");
    let value = "x".repeat(100_000);
    for i in 0..5 {
        let key = format!("short{i}");
        assert_eq!(client.cmd(&["SET", &key, &value, "PX", "1"]), Reply::ok());
    }
    // A read deletes an expired key; the active expiry cycle finds the others.
    poll_until(Duration::from_secs(10), || {
        (client.cmd(&["GET", "short0"]) == Reply::Nil).then_some(())
    });
    poll_until(Duration::from_secs(10), || {
        (info_number(&mut client, "stats", "expired_keys") == 5.0).then_some(())
    });
    assert_eq!(client.cmd(&["SET", "big", &value]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "big"]), Reply::bulk(&value));
    let input_now = info_number(&mut client, "stats", "total_net_input_bytes");
    let output_now = info_number(&mut client, "stats", "total_net_output_bytes");
    assert!(input_now - input >= 600_000.0, "{input} -> {input_now}");
    assert!(output_now - output >= 100_000.0, "{output} -> {output_now}");
    let stale = info_number(&mut client, "stats", "expired_stale_perc");
    assert!((0.0..=100.0).contains(&stale), "expired_stale_perc:{stale}");
    assert_eq!(info_number(&mut client, "stats", "evicted_keys"), 0.0);
}

/// INFO stats counts full syncs, accepted partial resyncs and refused
/// ones (a PSYNC with the id `?` asks for a full sync: not refused). Also
/// passes against real Redis.
#[test]
fn info_counts_full_and_partial_syncs() {
    let server = start(&[]);
    let mut client = server.client();
    let count = |client: &mut Client| {
        [
            info_number(client, "stats", "sync_full"),
            info_number(client, "stats", "sync_partial_ok"),
            info_number(client, "stats", "sync_partial_err"),
        ]
    };
    assert_eq!(count(&mut client), [0.0, 0.0, 0.0]);
    let mut full = server.client();
    full.send(&common::encode_str_command(&["PSYNC", "?", "-1"]));
    poll_until(Duration::from_secs(10), || {
        (count(&mut client) == [1.0, 0.0, 0.0]).then_some(())
    });
    // Once a replica has synced, the backlog holds the stream: a PSYNC
    // from where it is now continues.
    let replid = client
        .info_field("replication", "master_replid")
        .expect("master_replid");
    let offset = info_number(&mut client, "replication", "master_repl_offset") as i64;
    let mut partial = server.client();
    partial.send(&common::encode_str_command(&[
        "PSYNC",
        &replid,
        &(offset + 1).to_string(),
    ]));
    let line = partial.read_reply_raw();
    assert!(line.starts_with(b"+CONTINUE"), "{}", common::show(&line));
    let mut refused = server.client();
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    refused.send(&common::encode_str_command(&["PSYNC", unknown, "1"]));
    poll_until(Duration::from_secs(10), || {
        (count(&mut client) == [2.0, 1.0, 1.0]).then_some(())
    });
}

/// `used_memory` is what the server allocated, not its resident size: far
/// below RSS at start, up by what the data takes, down again when it is
/// deleted. Also passes against real Redis.
#[test]
fn used_memory_counts_allocations_not_resident_pages() {
    let server = start(&[]);
    let mut client = server.client();
    let used = info_number(&mut client, "memory", "used_memory");
    let rss = info_number(&mut client, "memory", "used_memory_rss");
    assert!(
        used < rss / 2.0,
        "used_memory {used}, used_memory_rss {rss}"
    );
    let value = "v".repeat(2000);
    let mut pipeline = Vec::new();
    for i in 0..10_000 {
        pipeline.extend(common::encode_str_command(&["SET", &i.to_string(), &value]));
    }
    let writer = client.send_in_background(pipeline);
    for _ in 0..10_000 {
        assert_eq!(client.read_reply(), Reply::ok());
    }
    writer.join().expect("writer").expect("send");
    let full = info_number(&mut client, "memory", "used_memory");
    assert!(
        full - used >= 20e6,
        "{used} -> {full} after 20 MB of values"
    );
    assert_eq!(client.cmd(&["FLUSHALL"]), Reply::ok());
    let emptied = info_number(&mut client, "memory", "used_memory");
    assert!(full - emptied >= 19e6, "{full} -> {emptied} after FLUSHALL");
}

/// A client that does not read its replies: CLIENT LIST shows the bytes
/// waiting for it in `omem` (it showed 0), within `tot-mem`. Also passes
/// against real Redis.
#[test]
fn client_list_shows_the_output_waiting_for_a_client_that_does_not_read() {
    let server = start(&[]);
    let mut client = server.client();
    let value = "v".repeat(4 << 20);
    assert_eq!(client.cmd(&["SET", "big", &value]), Reply::ok());
    let mut slow = server.client();
    let id = slow.cmd(&["CLIENT", "ID"]).as_int();
    let mut gets = Vec::new();
    for _ in 0..20 {
        gets.extend(common::encode_str_command(&["GET", "big"]));
    }
    // Sent, and never read: 80 MB of replies overflow the sockets.
    let sender = slow.send_in_background(gets);
    let (omem, total) = poll_until(Duration::from_secs(10), || {
        let omem: u64 = client_list_field(&mut client, id, "omem")?.parse().ok()?;
        let total: u64 = client_list_field(&mut client, id, "tot-mem")?
            .parse()
            .ok()?;
        (omem > 1 << 20).then_some((omem, total))
    });
    assert!(total >= omem, "omem={omem} tot-mem={total}");
    drop(sender);
    drop(slow);
}

// ---------------------------------------------------------------------------
// Moving the listener (CONFIG SET port and bind)
// ---------------------------------------------------------------------------

/// CONFIG SET port opens the new port before it closes the old one: a
/// port that is taken changes nothing, with Redis's error; a free one
/// takes the new connections, the old port closes, and clients already
/// connected stay. A bind to an address this host lacks changes nothing
/// either. Also passes against real Redis.
#[test]
fn config_set_port_moves_the_listener_and_a_taken_port_changes_nothing() {
    let server = start(&[]);
    let old = server.port();
    let mut client = server.client();
    let set =
        |client: &mut Client, name: &str, value: &str| client.cmd(&["CONFIG", "SET", name, value]);
    let failed = |name: &str, why: &str| {
        Reply::err(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    let taken = common::reserve_port();
    let holder = std::net::TcpListener::bind(("127.0.0.1", taken.port())).expect("hold a port");
    assert_eq!(
        set(&mut client, "port", &taken.port().to_string()),
        failed("port", "Unable to listen on this port. Check server logs.")
    );
    drop(holder);
    assert_eq!(
        set(&mut client, "port", "abc"),
        failed("port", "argument couldn't be parsed into an integer")
    );
    assert_eq!(
        set(&mut client, "port", "65536"),
        failed("port", "argument must be between 0 and 65535 inclusive")
    );
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "port"]),
        Reply::bulks(&["port", &old.to_string()])
    );
    assert_eq!(Client::connect(old).cmd(&["PING"]), Reply::pong());

    let lease = common::reserve_port();
    let new = lease.port();
    assert_eq!(set(&mut client, "port", &new.to_string()), Reply::ok());
    assert_eq!(Client::connect(new).cmd(&["PING"]), Reply::pong());
    assert!(
        TcpStream::connect(("127.0.0.1", old)).is_err(),
        "the old port is closed once CONFIG SET has replied"
    );
    assert_eq!(
        client.cmd(&["PING"]),
        Reply::pong(),
        "connected clients stay"
    );
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "port"]),
        Reply::bulks(&["port", &new.to_string()])
    );
    assert_eq!(
        client.info_field("server", "tcp_port"),
        Some(new.to_string())
    );

    // TEST-NET-1 (RFC 5737): never an address of this host.
    assert_eq!(
        set(&mut client, "bind", "192.0.2.1"),
        failed("bind", "Failed to bind to specified addresses.")
    );
    assert_eq!(Client::connect(new).cmd(&["PING"]), Reply::pong());
}

/// A failed AUTH is recorded where Redis 7.0 records it, in ACL LOG: one
/// entry per command and user, counted, with the client's CLIENT INFO line;
/// ACL LOG RESET empties it. Also passes against real Redis.
#[test]
fn failed_auth_is_recorded_in_the_acl_log() {
    let server = start(&["--requirepass", "secret"]);
    let mut guesser = server.client();
    // Refused before AUTH, but no authentication failed: not logged.
    assert!(guesser.cmd(&["HELLO"]).is_error());
    let wrongpass = Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(guesser.cmd(&["AUTH", "guess1"]), wrongpass);
    assert_eq!(guesser.cmd(&["AUTH", "guess2"]), wrongpass);
    assert_eq!(guesser.cmd(&["auth", "bob", "guess3"]), wrongpass);
    assert_eq!(
        guesser.cmd(&["HELLO", "2", "AUTH", "default", "x"]),
        wrongpass
    );
    let mut admin = server.client();
    assert_eq!(admin.cmd(&["AUTH", "secret"]), Reply::ok());
    let log = admin.cmd(&["ACL", "LOG"]);
    let entries: Vec<Vec<(String, Reply)>> = log
        .as_array()
        .iter()
        .map(|entry| {
            entry
                .as_array()
                .chunks(2)
                .map(|pair| {
                    let name = String::from_utf8_lossy(pair[0].as_bulk()).into_owned();
                    (name, pair[1].clone())
                })
                .collect()
        })
        .collect();
    // Newest first: HELLO's, bob's, then the two AUTHs as one entry.
    let shown: Vec<(i64, String, String)> = entries
        .iter()
        .map(|fields| {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, value)| value.clone())
                    .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
            };
            let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "count",
                    "reason",
                    "context",
                    "object",
                    "username",
                    "age-seconds",
                    "client-info"
                ]
            );
            assert_eq!(field("reason"), Reply::bulk("auth"));
            assert_eq!(field("context"), Reply::bulk("toplevel"));
            let age: f64 = String::from_utf8_lossy(field("age-seconds").as_bulk())
                .parse()
                .expect("age-seconds is a number");
            assert!((0.0..60.0).contains(&age), "age-seconds {age}");
            let info = String::from_utf8_lossy(field("client-info").as_bulk()).into_owned();
            assert!(info.starts_with("id=") && info.contains(" addr="), "{info}");
            (
                field("count").as_int(),
                String::from_utf8_lossy(field("object").as_bulk()).into_owned(),
                String::from_utf8_lossy(field("username").as_bulk()).into_owned(),
            )
        })
        .collect();
    let expected = [
        (1, "HELLO", "default"),
        (1, "auth", "bob"),
        (2, "AUTH", "default"),
    ];
    let expected: Vec<(i64, String, String)> = expected
        .iter()
        .map(|&(count, object, user)| (count, object.to_string(), user.to_string()))
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(admin.cmd(&["ACL", "LOG", "1"]).as_array().len(), 1);
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), Reply::ok());
    assert_eq!(admin.cmd(&["ACL", "LOG"]), Reply::Array(vec![]));
}

// ---------------------------------------------------------------------------
// 7. Stopping cleanly: SHUTDOWN's options, replicas, signals
// ---------------------------------------------------------------------------

/// Sends `signal` (`"TERM"`, `"INT"`) to the server's process.
#[track_caller]
fn send_signal(server: &Server, signal: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &server.pid().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -s {signal} failed");
}

#[test]
fn shutdown_options_are_checked_as_redis_checks_them() {
    let server = start(&[]);
    let mut c = server.client();
    for args in [
        &["SHUTDOWN", "LATER"][..],
        &["SHUTDOWN", "SAVE", "NOSAVE"],
        &["SHUTDOWN", "ABORT", "NOW"],
        &["SHUTDOWN", "NOSAVE", "ABORT"],
        &["SHUTDOWN", "FORCE", "ABORT"],
    ] {
        assert_eq!(c.cmd_raw(args), b"-ERR syntax error\r\n", "{args:?}");
    }
    assert_eq!(
        c.cmd_raw(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "shutdown-timeout"]),
        b"*2\r\n$16\r\nshutdown-timeout\r\n$2\r\n10\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "shutdown-timeout", "-1"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'shutdown-timeout') - argument must be between 0 and 2147483647 inclusive\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "shutdown-timeout", "3"]),
        Reply::ok()
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "shutdown-timeout"]),
        b"*2\r\n$16\r\nshutdown-timeout\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["PING"]), Reply::pong());
}

#[test]
fn shutdown_force_exits_even_when_the_final_save_fails() {
    let mut server = start(&[]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    // A directory where the dump should go: the rename over it fails.
    std::fs::create_dir(server.dir().join("dump.rdb")).expect("mkdir dump.rdb");
    assert_eq!(
        c.cmd_raw(&["SHUTDOWN", "SAVE"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert!(server.is_running());
    assert_log_line(&server, &["Error trying to save the DB, can't exit."]);
    c.send(&common::encode_str_command(&["SHUTDOWN", "SAVE", "FORCE"]));
    c.expect_closed();
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "SHUTDOWN FORCE must exit with 0, got {status}"
    );
    assert_log_line(&server, &["Error trying to save the DB. Exit anyway."]);
}

/// A shutdown gives lagging replicas up to `shutdown-timeout` seconds to
/// catch up, with writes paused meanwhile (so none is acknowledged that
/// the replicas or the final dump could miss); SHUTDOWN ABORT cancels
/// it, the waiting SHUTDOWN gets an error, and the paused write goes
/// through. SHUTDOWN NOW does not wait.
#[test]
fn shutdown_waits_for_a_lagging_replica_and_abort_cancels_it() {
    let mut master = start(&["--shutdown-timeout", "60"]);
    let _silent = attach_fake_replica(&master); // never acknowledges
    let mut writer = master.client();
    assert_eq!(writer.cmd(&["SET", "k", "v"]), Reply::ok());
    let mut stopper = master.client();
    stopper.send(&common::encode_str_command(&["SHUTDOWN"]));
    assert_log_line(&master, &["Waiting for replicas before shutting down."]);
    stopper.expect_no_reply(Duration::from_millis(300));
    // Writes wait; reads do not.
    writer.send(&common::encode_str_command(&["SET", "k", "v2"]));
    writer.expect_no_reply(Duration::from_millis(300));
    let mut reader = master.client();
    assert_eq!(reader.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(reader.cmd(&["SHUTDOWN", "ABORT"]), Reply::ok());
    assert_eq!(
        stopper.read_reply_raw(),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert_eq!(writer.read_reply(), Reply::ok());
    assert_eq!(reader.cmd(&["GET", "k"]), Reply::bulk("v2"));
    assert!(master.is_running());
    // On a new connection: Redis 7.0.15 fails an assertion (and aborts)
    // on the next multibulk request of a client whose SHUTDOWN was aborted.
    let mut stopper = master.client();
    let started = Instant::now();
    stopper.send(&common::encode_str_command(&["SHUTDOWN", "NOW"]));
    stopper.expect_closed();
    let status = master.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "SHUTDOWN NOW must exit with 0, got {status}; log:\n{}",
        master.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "NOW waited");
}

/// A replica that keeps up does not hold a shutdown back: once it has
/// acknowledged the whole stream the server saves and exits, and the
/// replica has every write.
#[test]
fn shutdown_lets_a_live_replica_catch_up_then_exits() {
    skip_if_external!();
    let mut master = Server::start_with(BIN, &["--save", "3600 1"]);
    let replica = start_replica(&master);
    poll_until(Duration::from_secs(10), || {
        let mut c = master.client();
        let n = c.info_field("replication", "connected_slaves")?;
        (n == "1").then_some(())
    });
    load_keys(master.port(), "live", 2000);
    send_signal(&master, "TERM");
    let status = master.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "SIGTERM must exit with 0, got {status}");
    assert_log_line(
        &master,
        &["1 of 1 replicas are in sync when shutting down."],
    );
    assert_eq!(dbsize(replica.port()), Some(2000));
}

/// A second Ctrl+C during a shutdown that waits means: now. The process
/// exits at once, with status 1 (not a clean shutdown), as Redis does.
#[test]
fn a_second_sigint_exits_at_once() {
    let mut master = start(&["--shutdown-timeout", "60"]);
    let _silent = attach_fake_replica(&master); // never acknowledges
    let mut writer = master.client();
    assert_eq!(writer.cmd(&["SET", "k", "v"]), Reply::ok());
    send_signal(&master, "INT");
    assert_log_line(&master, &["Waiting for replicas before shutting down."]);
    assert!(master.is_running());
    send_signal(&master, "INT");
    let status = master.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "got {status}");
    assert_log_line(&master, &["You insist... exiting now."]);
}

// ---------------------------------------------------------------------------
// 8. Out of file descriptors; the listen queue
// ---------------------------------------------------------------------------

/// A server started under `ulimit -n LIMIT`, which the harness cannot do:
/// killed when dropped, its log shown if the test failed.
struct Limited {
    child: std::process::Child,
    dir: std::path::PathBuf,
    _lease: common::PortLease,
    port: u16,
}

impl Limited {
    fn start(limit: u32, args: &[&str]) -> Limited {
        let program = match common::external_server() {
            Some(p) if p.contains('/') => std::path::absolute(&p)
                .expect("absolute path")
                .into_os_string(),
            Some(p) => p.into(),
            None => assert_cmd::cargo::cargo_bin(BIN).into_os_string(),
        };
        let lease = common::reserve_port();
        let port = lease.port();
        let dir =
            std::env::temp_dir().join(format!("rfs-test-nofile-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = std::fs::File::create(dir.join("server.log")).expect("server.log");
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(r#"ulimit -n {limit} && exec "$0" "$@""#))
            .arg(&program)
            .args(["--port", &port.to_string(), "--save", ""])
            .args(args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("cannot run sh");
        let mut limited = Limited {
            child,
            dir,
            _lease: lease,
            port,
        };
        poll_until(Duration::from_secs(10), || {
            assert!(
                limited.child.try_wait().expect("try_wait").is_none(),
                "exited"
            );
            try_client(port)
        });
        limited
    }

    fn pid(&self) -> u32 {
        self.child.id() // `exec`: the shell's pid is the server's
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("server.log")).unwrap_or_default())
            .into_owned()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name may hold spaces: fields are counted after its ')'.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The soft limit on open files of a process, from /proc/PID/limits.
fn open_files_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    line.split_whitespace()
        .nth(3)
        .expect("soft limit")
        .parse()
        .expect("a number")
}

/// Under a descriptor limit too low for `maxclients`, the server lowers
/// `maxclients` at start to what fits (keeping 32 descriptors for itself)
/// and says so once in the log; clients past it get Redis's error and are
/// closed, and counted. Nothing spins: with the extra clients still
/// connected and more arriving, the server uses almost no CPU and its log
/// stays short; once clients leave, new ones are served.
#[test]
fn a_low_descriptor_limit_lowers_maxclients_and_refuses_the_rest() {
    let server = Limited::start(64, &[]);
    let pid = server.pid();
    let mut c = Client::connect(server.port);
    let maxclients: u64 = match c.cmd(&["CONFIG", "GET", "maxclients"]) {
        Reply::Array(items) => String::from_utf8_lossy(items[1].as_bulk())
            .parse()
            .expect("a number"),
        other => panic!("CONFIG GET maxclients: {other:?}"),
    };
    let limit = open_files_limit(pid);
    if limit >= 10_032 {
        // A privileged process raises its own limit: nothing to lower.
        assert_eq!(maxclients, 10_000);
        return;
    }
    assert_eq!(limit, 64);
    assert_eq!(maxclients, 32, "64 descriptors, 32 kept: 32 clients");
    let log = server.log();
    assert!(
        log.contains("maxclients has been reduced to 32 to compensate for low ulimit."),
        "{log}"
    );
    // CONFIG SET cannot go past what the descriptors allow either.
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "maxclients", "100"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with 32\r\n"
    );
    // Fill the server up (one client is `c`), then go past it.
    let mut clients = vec![c];
    poll_until(Duration::from_secs(10), || {
        let mut probe = Client::connect(server.port);
        probe.send(&common::encode_str_command(&["PING"]));
        let reply = probe.read_reply_raw();
        if reply == b"+PONG\r\n" {
            clients.push(probe);
            None
        } else {
            assert_eq!(reply, b"-ERR max number of clients reached\r\n");
            probe.expect_closed();
            Some(())
        }
    });
    assert_eq!(clients.len(), 32, "admitted a number other than maxclients");
    let mut refused = Vec::new();
    for _ in 0..40 {
        let mut extra = Client::connect(server.port);
        assert_eq!(
            extra.read_reply_raw(),
            b"-ERR max number of clients reached\r\n"
        );
        refused.push(extra);
    }
    for client in &mut clients {
        assert_eq!(client.cmd(&["PING"]), Reply::pong());
    }
    let rejected: u64 = clients[0]
        .info_field("stats", "rejected_connections")
        .expect("rejected_connections")
        .parse()
        .expect("a number");
    assert!(rejected >= 41, "rejected_connections:{rejected}");

    // Idle, full, with the refused ones not yet gone: no CPU, no log flood.
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let lines = || server.log().lines().count();
    let (lines_before, ticks_before, started) = (lines(), cpu_ticks(pid), Instant::now());
    // A measurement window, not a wait for something to happen.
    thread::sleep(Duration::from_secs(2));
    let share =
        (cpu_ticks(pid) - ticks_before) as f64 / ticks_per_second / started.elapsed().as_secs_f64();
    assert!(
        share < 0.2,
        "the server used {:.0}% of a core while full",
        share * 100.0
    );
    assert_eq!(lines(), lines_before, "the server logged while full");
    assert!(lines() <= 25, "the log has {} lines", lines());

    // Clients leave: newcomers are served again.
    drop(refused);
    clients.truncate(10);
    poll_until(Duration::from_secs(10), || {
        let mut probe = Client::connect(server.port);
        probe.send(&common::encode_str_command(&["PING"]));
        (probe.read_reply_raw() == b"+PONG\r\n").then_some(())
    });
}

/// The Send-Q column of `ss -ltn` for the sockets listening on `port`:
/// for a listening socket, the length of its accept queue.
fn listen_queue_lengths(port: u16) -> Option<Vec<u32>> {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok())
            .collect(),
    )
}

/// `tcp-backlog` sets the listen queue's length (Redis's default 511, not
/// std's 128), capped by the kernel at `net.core.somaxconn`, as in Redis.
#[test]
fn tcp_backlog_sets_the_listen_queue() {
    if common::program_path("ss").is_none() {
        skip_for_missing_tool!("ss (iproute2) is not on PATH");
    }
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("/proc/sys/net/core/somaxconn")
        .trim()
        .parse()
        .expect("a number");
    for (args, backlog) in [(&[][..], 511u32), (&["--tcp-backlog", "100"][..], 100)] {
        let server = start(args);
        let mut c = server.client();
        let expected = format!(
            "*2\r\n$11\r\ntcp-backlog\r\n${}\r\n{backlog}\r\n",
            backlog.to_string().len()
        );
        assert_eq!(
            c.cmd_raw(&["CONFIG", "GET", "tcp-backlog"]),
            expected.as_bytes()
        );
        let queues = listen_queue_lengths(server.port()).expect("cannot run ss");
        assert!(
            !queues.is_empty(),
            "ss shows no listening socket on the port"
        );
        for queue in queues {
            assert_eq!(queue, backlog.min(somaxconn), "ss Send-Q");
        }
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "tcp-backlog", "10"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'tcp-backlog') - can't set immutable config\r\n"
        );
    }
}

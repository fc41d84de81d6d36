//! Chapter 7: RDB persistence (SAVE, BGSAVE, LASTSAVE, save points,
//! SHUTDOWN, CONFIG GET, the dump loaded at start).
//!
//! Three groups of black-box tests:
//!
//! * **A**, Redis behaviour: they must pass unchanged against a real Redis
//!   7.0 (`REDIS_TEST_SERVER=redis-server cargo test --test ch07_persistence`).
//!   The harness runs each server in its own temporary directory, which is
//!   where the dump goes by default.
//! * **B**, this project's own promises (exact log lines, refusing a corrupt
//!   dump, crash safety under SIGKILL): skipped when `REDIS_TEST_SERVER` is set.
//! * **C**, interop with the real `redis-server` and `redis-check-rdb`: our
//!   dumps load there, and theirs load here. Skipped, with a line saying so,
//!   when `redis-server` is not on PATH, and failing then if `CI` is set.
//!
//! The RDB facts behind them are in `docs/redis-wire.md`, section 4.

mod common;

use common::{crc64, encode_str_command, poll_until, reserve_port, Client, Reply, Server};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = "ch07-persistence";

/// How long a test waits for a file, a save or an exit that should come.
const DEADLINE: Duration = Duration::from_secs(10);

/// Redis's save points when none are configured.
const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

/// How the log line of a refused dump starts, after the pid and the date:
/// the level (`#`, a warning), then the message.
const FATAL_LOAD: &str = "# Fatal: error loading the DB: ";

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Keys and their values.
type Data = Vec<(Vec<u8>, Vec<u8>)>;

/// Keys and their PEXPIRETIME (-1 for none).
type Deadlines = Vec<(String, i64)>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_millis() as i64
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// The path of `name` in the server's directory.
fn file_in(server: &Server, name: &str) -> PathBuf {
    server.dir().join(name)
}

/// Waits until `path` is a regular file. Dumps are renamed into place, so
/// once the name exists its content is complete.
#[track_caller]
fn wait_for_file(path: &Path) {
    poll_until(DEADLINE, || path.is_file().then_some(()));
}

/// The names of the `temp-*.rdb` files in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("read_dir entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("temp-") && name.ends_with(".rdb"))
        .collect();
    names.sort();
    names
}

/// `body` followed by its CRC-64, little-endian: a complete RDB file.
fn with_crc(body: &[u8]) -> Vec<u8> {
    [body, &crc64(body).to_le_bytes()].concat()
}

/// Asserts the frame every RDB of version 10 has: magic and version, the
/// EOF opcode, and a correct checksum in the last 8 bytes.
#[track_caller]
fn assert_valid_rdb(bytes: &[u8]) {
    assert!(
        bytes.starts_with(b"REDIS0010"),
        "the dump must start with REDIS0010, got b\"{}\"",
        common::show(&bytes[..bytes.len().min(16)])
    );
    assert!(bytes.len() >= 18, "a dump has at least 18 bytes");
    let (body, crc) = bytes.split_at(bytes.len() - 8);
    assert_eq!(body.last(), Some(&0xff), "the EOF opcode precedes the CRC");
    assert_eq!(
        u64::from_le_bytes(crc.try_into().expect("8 bytes")),
        crc64(body),
        "the stored CRC-64 is the checksum of everything before it"
    );
}

/// A deterministic xorshift generator, for incompressible bytes and for
/// random-but-reproducible kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// A directory a test owns (not a server's), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "rfs-ch07-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn as_arg(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The server's directory as a command-line argument.
fn dir_arg(server: &Server) -> &str {
    server.dir().to_str().expect("temporary paths are UTF-8")
}

/// Keys and values that exercise every string encoding of the format:
/// binary and empty strings, integers that are (and are not) stored as
/// integers, strings at the LZF threshold, long compressible and long
/// incompressible ones.
fn varied_data() -> Data {
    let mut data: Data = vec![
        (b"greeting".to_vec(), b"hello".to_vec()),
        (b"empty".to_vec(), Vec::new()),
        (Vec::new(), b"the empty key".to_vec()),
        (
            b"bin\x00\xff\r\nkey".to_vec(),
            b"\x00\x01\xfe\xff\r\n$3\r\n*1\r\n".to_vec(),
        ),
        (b"all-bytes".to_vec(), (0..=255u8).collect()),
    ];
    // Integer-like values: only canonical 32-bit integers are stored as
    // integers; every one must come back as exactly the same text.
    let ints = [
        "0",
        "1",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "255",
        "32767",
        "32768",
        "-32769",
        "12345",
        "-7",
        "007",
        "-0",
        "+5",
        " 1",
        "1 ",
        "2147483647",
        "-2147483648",
        "2147483648",
        "-2147483649",
        "12345678901",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "1e3",
        "0x10",
        "3.14",
    ];
    for value in ints {
        data.push((
            format!("int:{value}").into_bytes(),
            value.as_bytes().to_vec(),
        ));
    }
    // Integer-like keys are integer-encoded too.
    for key in ["5", "-7", "12345", "007", "1000000"] {
        data.push((key.as_bytes().to_vec(), b"integer key".to_vec()));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    data.extend([
        (b"a20".to_vec(), vec![b'a'; 20]),
        (b"a21".to_vec(), vec![b'a'; 21]),
        (b"ab30".to_vec(), b"ab".repeat(30)),
        (b"noise21".to_vec(), rng.bytes(21)),
        (
            b"repeats10k".to_vec(),
            b"0123456789 abcdefghij ".repeat(466),
        ),
        (b"noise10k".to_vec(), rng.bytes(10_000)),
        (b"noise70k".to_vec(), rng.bytes(70_000)),
        (b"zeros200k".to_vec(), vec![0; 200_000]),
        (
            b"mixed".to_vec(),
            [rng.bytes(300), b"x".repeat(3000), rng.bytes(300)].concat(),
        ),
    ]);
    data
}

/// SETs every pair.
#[track_caller]
fn write_data(client: &mut Client, data: &[(Vec<u8>, Vec<u8>)]) {
    for (key, value) in data {
        assert_eq!(
            client.cmd_bytes(&[b"SET", key, value]),
            Reply::ok(),
            "SET {}",
            common::show(key)
        );
    }
}

/// Asserts that every pair is there with its exact value.
#[track_caller]
fn assert_data(client: &mut Client, data: &[(Vec<u8>, Vec<u8>)]) {
    for (key, value) in data {
        assert_eq!(
            client.cmd_bytes(&[b"GET", key]),
            Reply::bulk_bytes(value),
            "value of key b\"{}\"",
            common::show(key)
        );
    }
}

/// Keys with an expiry far enough away to survive the test, set in each of
/// the ways a client can set one, and the PEXPIRETIME the server reports.
#[track_caller]
fn write_volatile_keys(client: &mut Client) -> Deadlines {
    let in_an_hour = now_ms() + 3_600_000 + 123;
    let commands: [&[&str]; 5] = [
        &["SET", "ttl:pxat", "v1", "PXAT", &in_an_hour.to_string()],
        &["SET", "ttl:ex", "v2", "EX", "1000"],
        &["SET", "ttl:px", "12345", "PX", "2000000"],
        &[
            "SET",
            "ttl:exat",
            "v4",
            "EXAT",
            &(now_secs() + 5000).to_string(),
        ],
        &["SET", "ttl:long", &"L".repeat(100), "PX", "3000000"],
    ];
    for command in commands {
        assert_eq!(client.cmd(command), Reply::ok(), "{command:?}");
    }
    assert_eq!(client.cmd(&["SET", "ttl:none", "v5"]), Reply::ok());
    let mut deadlines = Vec::new();
    for key in [
        "ttl:pxat", "ttl:ex", "ttl:px", "ttl:exat", "ttl:long", "ttl:none",
    ] {
        let at = client.cmd(&["PEXPIRETIME", key]).as_int();
        deadlines.push((key.to_string(), at));
    }
    assert_eq!(deadlines[0].1, in_an_hour, "PEXPIRETIME of a PXAT key");
    assert_eq!(deadlines[5].1, -1, "PEXPIRETIME of a key without expiry");
    deadlines
}

#[track_caller]
fn assert_deadlines(client: &mut Client, deadlines: &[(String, i64)]) {
    for (key, at) in deadlines {
        assert_eq!(
            client.cmd(&["PEXPIRETIME", key]),
            Reply::int(*at),
            "PEXPIRETIME {key}"
        );
    }
}

#[track_caller]
fn dbsize(client: &mut Client) -> i64 {
    client.cmd(&["DBSIZE"]).as_int()
}

/// Sends SHUTDOWN with `args` and expects what a successful one does: no
/// reply, the connection closed, the process gone with status 0.
#[track_caller]
fn shutdown(server: &mut Server, args: &[&str]) {
    let mut client = server.client();
    let command: Vec<&str> = std::iter::once("SHUTDOWN")
        .chain(args.iter().copied())
        .collect();
    client.send(&encode_str_command(&command));
    client.expect_closed();
    let status = server.wait_exit(DEADLINE);
    assert!(
        status.success(),
        "{command:?} must exit with 0, got {status}"
    );
}

// ---------------------------------------------------------------------------
// Group A: SAVE, BGSAVE, LASTSAVE, restart
// ---------------------------------------------------------------------------

#[test]
fn save_writes_a_version_10_dump_in_the_working_directory() {
    let server = Server::start(BIN);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "greeting", "hello"]), Reply::ok());
    let dump = file_in(&server, "dump.rdb");
    assert!(!dump.exists(), "no dump before the first save");
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    // SAVE is synchronous: the file is complete when the reply comes.
    assert_valid_rdb(&fs::read(&dump).expect("SAVE wrote dump.rdb"));
    assert_eq!(
        temp_files(server.dir()),
        Vec::<String>::new(),
        "the temporary file was renamed"
    );
    // An empty dataset still makes a valid dump.
    assert_eq!(c.cmd(&["DEL", "greeting"]), Reply::int(1));
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    assert_valid_rdb(&fs::read(&dump).expect("dump.rdb"));
}

#[test]
fn data_survives_a_restart() {
    let mut server = Server::start(BIN);
    let data = varied_data();
    let mut c = server.client();
    write_data(&mut c, &data);
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    // Writes after the last save are lost in a crash: that is the contract.
    assert_eq!(c.cmd(&["SET", "after-save", "x"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", "greeting", "changed"]), Reply::ok());
    server.restart();
    let mut c = server.client();
    assert_data(&mut c, &data);
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(data.len() as i64));
    assert_eq!(c.cmd(&["GET", "after-save"]), Reply::Nil);
    // The loaded data is live: it can change and be saved again.
    assert_eq!(c.cmd(&["INCR", "int:12345"]), Reply::int(12346));
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "int:12345"]), Reply::bulk("12346"));
}

#[test]
fn bgsave_writes_the_dump_in_the_background() {
    let mut server = Server::start(BIN);
    let data = varied_data();
    let mut c = server.client();
    write_data(&mut c, &data);
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    let dump = file_in(&server, "dump.rdb");
    wait_for_file(&dump);
    assert_valid_rdb(&fs::read(&dump).expect("dump.rdb"));
    // The server serves while and after it saves.
    assert_eq!(c.cmd(&["PING"]), Reply::pong());
    server.restart();
    let mut c = server.client();
    assert_data(&mut c, &data);
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(data.len() as i64));
}

#[test]
fn lastsave_moves_forward_with_each_save() {
    let server = Server::start(BIN);
    let mut c = server.client();
    // Before any save, LASTSAVE is the start time.
    let started = c.cmd(&["LASTSAVE"]).as_int();
    assert!(
        (started - now_secs()).abs() <= 2,
        "LASTSAVE {started} should be near now ({})",
        now_secs()
    );
    // The resolution is one second: wait for the clock to tick past it,
    // and a little more, since Redis reads a clock it caches every 100 ms.
    poll_until(DEADLINE, || {
        (now_ms() > (started + 1) * 1000 + 200).then_some(())
    });
    let before = now_secs();
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let saved = c.cmd(&["LASTSAVE"]).as_int();
    assert!(
        saved > started && saved >= before && saved <= now_secs(),
        "LASTSAVE after SAVE: {saved} (started {started}, SAVE sent at {before})"
    );
    poll_until(DEADLINE, || {
        (now_ms() > (saved + 1) * 1000 + 200).then_some(())
    });
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    let bgsaved = poll_until(DEADLINE, || {
        let at = c.cmd(&["LASTSAVE"]).as_int();
        (at != saved).then_some(at)
    });
    assert!(
        bgsaved > saved && bgsaved <= now_secs(),
        "LASTSAVE after BGSAVE: {bgsaved} (previous {saved})"
    );
}

// ---------------------------------------------------------------------------
// Group A: expiry across a restart
// ---------------------------------------------------------------------------

#[test]
fn keys_keep_their_absolute_expiry_across_a_restart() {
    let mut server = Server::start(BIN);
    let mut c = server.client();
    let deadlines = write_volatile_keys(&mut c);
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    server.restart();
    let mut c = server.client();
    assert_deadlines(&mut c, &deadlines);
    assert_eq!(c.cmd(&["GET", "ttl:px"]), Reply::bulk("12345"));
    assert_eq!(c.cmd(&["GET", "ttl:long"]), Reply::bulk(&"L".repeat(100)));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(deadlines.len() as i64));
}

#[test]
fn keys_expired_while_the_server_was_down_are_not_loaded() {
    let mut server = Server::start(BIN);
    let mut c = server.client();
    let deadline = now_ms() + 1000;
    let at = deadline.to_string();
    assert_eq!(c.cmd(&["SET", "short", "v", "PXAT", &at]), Reply::ok());
    assert_eq!(
        c.cmd(&["SET", "long-lived", "v", "EX", "1000"]),
        Reply::ok()
    );
    assert_eq!(c.cmd(&["SET", "forever", "v"]), Reply::ok());
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    // The dump must hold the short-lived key, or the test proves nothing.
    assert_eq!(
        c.cmd(&["EXISTS", "short"]),
        Reply::int(1),
        "the key expired before SAVE ran; this machine is too slow for the test"
    );
    server.kill();
    poll_until(DEADLINE, || (now_ms() > deadline + 10).then_some(()));
    server.restart();
    let mut c = server.client();
    // Dropped at load: not even counted by DBSIZE.
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(2));
    assert_eq!(c.cmd(&["GET", "short"]), Reply::Nil);
    assert_eq!(c.cmd(&["GET", "long-lived"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["GET", "forever"]), Reply::bulk("v"));
}

// ---------------------------------------------------------------------------
// Group A: CONFIG GET, --dbfilename, --save
// ---------------------------------------------------------------------------

/// The name-value pairs of a CONFIG GET reply, sorted by name: Redis lists
/// them in the order of its own table, not of the request.
#[track_caller]
fn config_get(client: &mut Client, patterns: &[&str]) -> Vec<(String, String)> {
    let command: Vec<&str> = ["CONFIG", "GET"].iter().chain(patterns).copied().collect();
    let reply = client.cmd(&command);
    let items = reply.as_array();
    assert_eq!(
        items.len() % 2,
        0,
        "CONFIG GET replies with pairs: {reply:?}"
    );
    let text = |item: &Reply| String::from_utf8(item.as_bulk().to_vec()).expect("UTF-8");
    let mut pairs: Vec<(String, String)> = items
        .chunks(2)
        .map(|pair| (text(&pair[0]), text(&pair[1])))
        .collect();
    pairs.sort();
    pairs
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = items
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn config_get_reports_the_persistence_parameters() {
    let server = Server::start(BIN);
    let mut c = server.client();
    let dir = fs::canonicalize(server.dir()).expect("canonicalize the server's dir");
    let dir = dir.to_str().expect("UTF-8");
    assert_eq!(
        config_get(&mut c, &["dbfilename"]),
        pairs(&[("dbfilename", "dump.rdb")])
    );
    assert_eq!(
        config_get(&mut c, &["save"]),
        pairs(&[("save", DEFAULT_SAVE)])
    );
    assert_eq!(config_get(&mut c, &["dir"]), pairs(&[("dir", dir)]));
    let port = server.port().to_string();
    assert_eq!(config_get(&mut c, &["port"]), pairs(&[("port", &port)]));
    // Patterns are globs, and several may be asked.
    assert_eq!(
        config_get(&mut c, &["db*"]),
        pairs(&[("dbfilename", "dump.rdb")])
    );
    assert_eq!(config_get(&mut c, &["d?r"]), pairs(&[("dir", dir)]));
    assert_eq!(
        config_get(&mut c, &["sav?", "dbfilename", "dir"]),
        pairs(&[
            ("save", DEFAULT_SAVE),
            ("dbfilename", "dump.rdb"),
            ("dir", dir)
        ])
    );
    assert_eq!(config_get(&mut c, &["no-such-parameter"]), pairs(&[]));
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET"]),
        b"-ERR wrong number of arguments for 'config|get' command\r\n"
    );
}

#[test]
fn config_get_names_are_case_insensitive() {
    let server = Server::start(BIN);
    let mut c = server.client();
    // A plain name comes back as the client spelled it; a pattern matches
    // without regard to case and gives the parameter's own name.
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "DBFILENAME"]),
        Reply::bulks(&["DBFILENAME", "dump.rdb"])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "Save"]),
        Reply::bulks(&["Save", DEFAULT_SAVE])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "DB*"]),
        Reply::bulks(&["dbfilename", "dump.rdb"])
    );
}

#[test]
fn save_points_and_dbfilename_come_from_the_command_line() {
    let server = Server::start_with(
        BIN,
        &[
            "--save",
            "",
            "--dbfilename",
            "other.rdb",
            "--bind",
            "127.0.0.1",
        ],
    );
    let mut c = server.client();
    assert_eq!(config_get(&mut c, &["save"]), pairs(&[("save", "")]));
    assert_eq!(
        config_get(&mut c, &["bind"]),
        pairs(&[("bind", "127.0.0.1")])
    );
    assert_eq!(
        config_get(&mut c, &["dbfilename"]),
        pairs(&[("dbfilename", "other.rdb")])
    );
    let server2 = Server::start_with(BIN, &["--save", "100 5 20 1000"]);
    let mut c2 = server2.client();
    assert_eq!(
        config_get(&mut c2, &["save"]),
        pairs(&[("save", "100 5 20 1000")])
    );
}

#[test]
fn dbfilename_names_the_dump_written_and_loaded() {
    let mut server = Server::start_with(BIN, &["--dbfilename", "other.rdb"]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    assert_valid_rdb(&fs::read(file_in(&server, "other.rdb")).expect("other.rdb"));
    assert!(!file_in(&server, "dump.rdb").exists(), "no dump.rdb");
    // The restart (same arguments) loads other.rdb.
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
}

#[test]
fn a_save_point_saves_without_any_command() {
    let mut server = Server::start_with(BIN, &["--save", "1 1"]);
    let dump = file_in(&server, "dump.rdb");
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    // "1 1": one change and (more than) a second since the last save.
    wait_for_file(&dump);
    assert_valid_rdb(&fs::read(&dump).expect("dump.rdb"));
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
}

#[test]
fn bgsave_inside_a_transaction_is_scheduled() {
    let server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::simple("QUEUED"));
    assert_eq!(c.cmd(&["BGSAVE"]), Reply::simple("QUEUED"));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Reply::Array(vec![
            Reply::ok(),
            Reply::simple("Background saving scheduled")
        ])
    );
    wait_for_file(&file_in(&server, "dump.rdb"));
    // SAVE is not allowed in a transaction at all.
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(
        c.cmd_raw(&["SAVE"]),
        b"-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(c.cmd(&["DISCARD"]), Reply::ok());
}

// ---------------------------------------------------------------------------
// Group A: SHUTDOWN
// ---------------------------------------------------------------------------

#[test]
fn shutdown_nosave_exits_without_writing() {
    let mut server = Server::start(BIN);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    assert_eq!(c.cmd_raw(&["SHUTDOWN", "LATER"]), b"-ERR syntax error\r\n");
    assert!(server.is_running());
    shutdown(&mut server, &["NOSAVE"]);
    assert!(
        !file_in(&server, "dump.rdb").exists(),
        "NOSAVE wrote a dump"
    );
    assert_eq!(temp_files(server.dir()), Vec::<String>::new());
}

#[test]
fn shutdown_save_writes_the_dump_then_exits() {
    // No save points: only the explicit SAVE option makes it write.
    let mut server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    shutdown(&mut server, &["SAVE"]);
    assert_valid_rdb(&fs::read(file_in(&server, "dump.rdb")).expect("dump.rdb"));
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
}

#[test]
fn plain_shutdown_saves_only_when_save_points_are_set() {
    let mut saving = Server::start(BIN);
    let mut c = saving.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    shutdown(&mut saving, &[]);
    assert_valid_rdb(&fs::read(file_in(&saving, "dump.rdb")).expect("dump.rdb"));

    let mut not_saving = Server::start_with(BIN, &["--save", ""]);
    let mut c = not_saving.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    shutdown(&mut not_saving, &[]);
    assert!(!file_in(&not_saving, "dump.rdb").exists());
}

// ---------------------------------------------------------------------------
// Group A: a save that cannot be written
// ---------------------------------------------------------------------------

#[test]
fn a_failed_save_is_an_error_and_the_server_keeps_serving() {
    // Without save points, so that Redis does not refuse writes after a
    // failed save (MISCONF, which applies only when save points are set).
    let mut server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    // A directory where the dump should go: the rename over it fails.
    // (It is created after the start: a directory cannot be loaded either.)
    let dump = file_in(&server, "dump.rdb");
    fs::create_dir(&dump).expect("mkdir dump.rdb");
    assert_eq!(c.cmd_raw(&["SAVE"]), b"-ERR\r\n");
    assert_eq!(c.cmd(&["PING"]), Reply::pong());
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["SET", "k2", "v2"]), Reply::ok());
    assert_eq!(
        temp_files(server.dir()),
        Vec::<String>::new(),
        "temp file left"
    );
    // SHUTDOWN SAVE that cannot save does not exit.
    assert_eq!(
        c.cmd_raw(&["SHUTDOWN", "SAVE"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert!(server.is_running());
    // Once the path is free again, saving works.
    fs::remove_dir(&dump).expect("rmdir dump.rdb");
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "k2"]), Reply::bulk("v2"));
}

// ---------------------------------------------------------------------------
// Group B: this binary's own behaviour
// ---------------------------------------------------------------------------

/// A small dump written by our own server: a raw value, integers, an LZF
/// value and a key with an expiry.
fn our_small_dump() -> Vec<u8> {
    let server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    for command in [
        &["SET", "greeting", "hello"][..],
        &["SET", "n", "12345"],
        &["SET", "neg", "-7"],
        &["SET", "long", &"ab".repeat(30)],
        &["SET", "ttlkey", "v", "PXAT", "4102444800000"],
    ] {
        assert_eq!(c.cmd(command), Reply::ok());
    }
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let bytes = fs::read(file_in(&server, "dump.rdb")).expect("dump.rdb");
    assert_valid_rdb(&bytes);
    bytes
}

/// The keys of [`our_small_dump`], checked on a server that loaded it.
#[track_caller]
fn assert_small_dump_loaded(c: &mut Client) {
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(5));
    assert_eq!(c.cmd(&["GET", "greeting"]), Reply::bulk("hello"));
    assert_eq!(c.cmd(&["GET", "n"]), Reply::bulk("12345"));
    assert_eq!(c.cmd(&["GET", "neg"]), Reply::bulk("-7"));
    assert_eq!(c.cmd(&["GET", "long"]), Reply::bulk(&"ab".repeat(30)));
    assert_eq!(
        c.cmd(&["PEXPIRETIME", "ttlkey"]),
        Reply::int(4_102_444_800_000)
    );
}

/// Starts our binary on `dir` (which holds a bad `dump.rdb`) and expects it
/// to refuse to serve: it must exit, non-zero, within the deadline. Returns
/// its output.
#[track_caller]
fn expect_refusal(dir: &TempDir) -> String {
    let lease = reserve_port();
    let log_path = dir.path().join("refusal.log");
    let log = File::create(&log_path).expect("create refusal.log");
    let log_too = log.try_clone().expect("clone the log handle");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin(BIN))
        .args(["--port", &lease.port().to_string(), "--dir", dir.as_arg()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too)
        .spawn()
        .expect("run the server");
    let started = Instant::now();
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server started on a bad dump; log:\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    let log = fs::read_to_string(&log_path).expect("read refusal.log");
    assert!(
        !status.success(),
        "refusing a bad dump must exit non-zero, got {status}; log:\n{log}"
    );
    log
}

/// Writes `bytes` as `dump.rdb` in a fresh directory and expects the server
/// to refuse it with the log line `Fatal: error loading the DB: dump.rdb:
/// <what>`.
#[track_caller]
fn assert_refused(case: &str, bytes: &[u8], what: &str) {
    let dir = TempDir::new();
    fs::write(dir.path().join("dump.rdb"), bytes).expect("write dump.rdb");
    let log = expect_refusal(&dir);
    let line = format!("{FATAL_LOAD}dump.rdb: {what}");
    assert!(
        log.lines().any(|l| l.ends_with(&line)),
        "{case}: expected a log line ending with {line:?}; log:\n{log}"
    );
    assert!(
        !log.contains("Ready to accept connections"),
        "{case}: it must never serve; log:\n{log}"
    );
}

/// Starts our binary with `bytes` as its dump and returns the server.
fn start_on_dump(bytes: &[u8]) -> (TempDir, Server) {
    let dir = TempDir::new();
    fs::write(dir.path().join("dump.rdb"), bytes).expect("write dump.rdb");
    let server = Server::start_with(BIN, &["--dir", dir.as_arg()]);
    (dir, server)
}

#[test]
fn crc64_helper_matches_the_reference_check_value() {
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    // The 18-byte empty dump of docs/redis-wire.md, section 4.9.
    assert_eq!(
        with_crc(b"REDIS0010\xff"),
        b"REDIS0010\xff\xa9\xfd\x37\xfe\x89\xa7\x7e\xeb"
    );
}

#[test]
fn a_truncated_dump_is_refused_with_its_offset() {
    skip_if_external!();
    let dump = our_small_dump();
    let len = dump.len();
    // Somewhere inside the LZF value, inside the CRC, and at every frame edge.
    let long = dump
        .windows(4)
        .position(|w| w == b"long")
        .expect("the key 'long' is in the dump");
    let mut cuts = vec![0, 4, 9, 12, len / 2, long + 8, len - 9, len - 8, len - 1];
    cuts.sort();
    cuts.dedup();
    for cut in cuts {
        assert_refused(
            &format!("truncated to {cut} of {len} bytes"),
            &dump[..cut],
            &format!("unexpected end of file at byte {cut}"),
        );
    }
}

#[test]
fn a_wrong_checksum_is_refused() {
    skip_if_external!();
    let dump = our_small_dump();
    let len = dump.len();
    let stored = u64::from_le_bytes(dump[len - 8..].try_into().expect("8 bytes"));

    // A flipped bit in the stored CRC.
    let mut bad = dump.clone();
    bad[len - 1] ^= 0x01;
    let got = u64::from_le_bytes(bad[len - 8..].try_into().expect("8 bytes"));
    assert_refused(
        "flipped CRC byte",
        &bad,
        &format!(
            "Wrong RDB checksum expected: ({stored:x}) but got ({got:x}) at byte {}",
            len - 8
        ),
    );

    // A flipped bit in a value: only the CRC can tell.
    let mut bad = dump.clone();
    let hello = dump
        .windows(5)
        .position(|w| w == b"hello")
        .expect("the value 'hello' is in the dump");
    bad[hello] = b'j';
    let computed = crc64(&bad[..len - 8]);
    assert_refused(
        "flipped value byte",
        &bad,
        &format!(
            "Wrong RDB checksum expected: ({computed:x}) but got ({stored:x}) at byte {}",
            len - 8
        ),
    );
}

#[test]
fn a_zero_checksum_means_unchecked_and_is_accepted() {
    skip_if_external!();
    let mut dump = our_small_dump();
    let len = dump.len();
    dump[len - 8..].fill(0);
    let (_dir, server) = start_on_dump(&dump);
    assert_small_dump_loaded(&mut server.client());
}

#[test]
fn a_dump_with_a_bad_header_is_refused() {
    skip_if_external!();
    let mut dump = our_small_dump();
    dump[4] = b'X';
    assert_refused(
        "bad magic",
        &dump,
        "Wrong signature trying to load DB from file at byte 0",
    );
    assert_refused(
        "version 11",
        &with_crc(b"REDIS0011\xff"),
        "Can't handle RDB format version 11 at byte 5",
    );
    assert_refused(
        "version 0",
        &with_crc(b"REDIS0000\xff"),
        "Can't handle RDB format version 0 at byte 5",
    );
}

#[test]
fn a_dump_this_server_cannot_hold_is_refused() {
    skip_if_external!();
    // SELECTDB 2 at byte 9, the entry's type byte at byte 11.
    assert_refused(
        "a key in database 2",
        &with_crc(b"REDIS0010\xfe\x02\x00\x01k\x01v\xff"),
        "the file holds keys of database 2; this server has one at byte 11",
    );
    // The second `a` starts at byte 16.
    assert_refused(
        "a duplicated key",
        &with_crc(b"REDIS0010\xfe\x00\x00\x01a\x01v\x00\x01a\x01w\xff"),
        "duplicated key 'a' at byte 16",
    );
    // A type this chapter does not know (4 is a hash) at byte 11.
    assert_refused(
        "a hash",
        &with_crc(b"REDIS0010\xfe\x00\x04\x01h\x00\xff"),
        "unsupported value type 4 at byte 11",
    );
}

#[test]
fn a_minimal_dump_and_an_empty_database_load() {
    skip_if_external!();
    let (_dir, server) = start_on_dump(&with_crc(b"REDIS0010\xff"));
    assert_eq!(server.client().cmd(&["DBSIZE"]), Reply::int(0));
    // No SELECTDB: the keys go to database 0.
    let (_dir, server) = start_on_dump(&with_crc(b"REDIS0010\x00\x01k\x01v\xff"));
    assert_eq!(server.client().cmd(&["GET", "k"]), Reply::bulk("v"));
    let log = server.log();
    assert!(
        log.contains("DB loaded from disk") && log.contains("keys loaded: 1"),
        "the log reports the load; log:\n{log}"
    );
}

#[test]
fn an_unwritable_dump_path_fails_the_save_and_is_logged() {
    skip_if_external!();
    // Running as root, permissions would not stop us: a missing directory does.
    let server = Server::start_with(BIN, &["--save", "", "--dbfilename", "nodir/dump.rdb"]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    let lastsave = c.cmd(&["LASTSAVE"]).as_int();
    assert_eq!(c.cmd_raw(&["SAVE"]), b"-ERR\r\n");
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("# Failed saving the DB: ")),
        "the log explains the failed save; log:\n{log}"
    );
    assert_eq!(c.cmd(&["PING"]), Reply::pong());
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["LASTSAVE"]), Reply::int(lastsave));
    // BGSAVE starts, fails in the background, logs, and leaves the server
    // able to start another one.
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    poll_until(DEADLINE, || {
        let failures = server
            .log()
            .lines()
            .filter(|l| l.contains("# Failed saving the DB: "))
            .count();
        (failures >= 2).then_some(())
    });
    poll_until(DEADLINE, || match c.cmd_raw(&["BGSAVE"]).as_slice() {
        b"+Background saving started\r\n" => Some(()),
        b"-ERR Background save already in progress\r\n" => None,
        other => panic!("BGSAVE: b\"{}\"", common::show(other)),
    });
    assert!(!server.dir().join("nodir").exists());
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
}

#[test]
fn a_failed_background_save_is_retried_after_five_seconds() {
    skip_if_external!();
    let server = Server::start_with(BIN, &["--save", "1 1"]);
    let dump = file_in(&server, "dump.rdb");
    fs::create_dir(&dump).expect("mkdir dump.rdb");
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    poll_until(DEADLINE, || {
        server
            .log()
            .contains("# Failed saving the DB: ")
            .then_some(())
    });
    let failed = Instant::now();
    fs::remove_dir(&dump).expect("rmdir dump.rdb");
    wait_for_file(&dump);
    let waited = failed.elapsed();
    assert!(
        waited >= Duration::from_millis(4500),
        "retried after {waited:?}, before the 5 s delay; log:\n{}",
        server.log()
    );
}

// ---------------------------------------------------------------------------
// Group B: SIGKILL in the middle of saves
// ---------------------------------------------------------------------------

/// Keys of the crash test: with a debug build, a save of this many takes
/// about 200 ms (7 MB of dump for 300,000 keys took a second and a half,
/// too slow for ten rounds), long enough to be killed in the middle.
const CRASH_KEYS: usize = 60_000;

/// Kill rounds of the crash test.
const CRASH_ROUNDS: usize = 10;

fn crash_value(i: usize) -> Vec<u8> {
    if i.is_multiple_of(3) {
        // Stored as an integer.
        i.to_string().into_bytes()
    } else {
        // Raw up to 20 bytes, LZF-compressed above.
        let mut value = format!("v{i}-").into_bytes();
        value.resize(value.len() + i % 40, b'x');
        value
    }
}

/// SETs `key:0` to `key:N-1` through a pipeline.
fn populate(client: &mut Client, n: usize) {
    populate_with(client, n, crash_value);
}

/// SETs `key:i` to `value(i)` for `i` in `0..n`, through a pipeline.
fn populate_with(client: &mut Client, n: usize, value: fn(usize) -> Vec<u8>) {
    const BATCH: usize = 10_000;
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        let mut bytes = Vec::new();
        for i in start..end {
            let key = format!("key:{i}");
            bytes.extend(common::encode_command(&[b"SET", key.as_bytes(), &value(i)]));
        }
        let sender = client.send_in_background(bytes);
        for i in start..end {
            assert_eq!(client.read_reply(), Reply::ok(), "SET key:{i}");
        }
        sender
            .join()
            .expect("sender thread")
            .expect("send the pipeline");
    }
}

/// What the save loop saw before its connection died.
struct SaveLoopEnd {
    /// The counter value of the last SAVE answered `+OK`.
    acked: i64,
    /// A reply that was neither the expected one nor a dead connection.
    unexpected: Option<String>,
}

/// Repeats `INCR counter`, `SAVE` until the connection dies (the server is
/// killed). Publishes each acknowledged counter value in `progress`.
fn save_loop(port: u16, mut acked: i64, progress: Arc<AtomicI64>) -> SaveLoopEnd {
    let end = |acked, unexpected| SaveLoopEnd { acked, unexpected };
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return end(acked, Some("cannot connect".into()));
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(reader) = stream.try_clone() else {
        return end(acked, Some("cannot clone the socket".into()));
    };
    let mut reader = BufReader::new(reader);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        for command in [&["INCR", "counter"][..], &["SAVE"]] {
            if writer.write_all(&encode_str_command(command)).is_err() {
                return end(acked, None);
            }
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return end(acked, None),
            Ok(_) => {}
        }
        let Some(counter) = line
            .strip_prefix(':')
            .and_then(|n| n.trim_end().parse::<i64>().ok())
        else {
            return end(acked, Some(format!("INCR replied {line:?}")));
        };
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 && line == "+OK\r\n" => {
                acked = counter;
                progress.store(acked, Ordering::SeqCst);
            }
            Ok(n) if n > 0 && line.ends_with("\r\n") => {
                return end(acked, Some(format!("SAVE replied {line:?}")));
            }
            // Killed during the SAVE (possibly mid-line).
            _ => return end(acked, None),
        }
    }
}

#[test]
fn sigkill_during_saves_leaves_the_last_complete_dump() {
    skip_if_external!();
    let mut server = Server::start_with(BIN, &["--save", ""]);
    let dump = file_in(&server, "dump.rdb");
    let mut c = server.client();
    populate(&mut c, CRASH_KEYS);
    assert_eq!(c.cmd(&["SET", "counter", "0"]), Reply::ok());
    // A save of this many keys takes long enough to be caught running.
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    let in_progress = b"-ERR Background save already in progress\r\n".to_vec();
    assert_eq!(c.cmd_raw(&["SAVE"]), in_progress, "SAVE during a BGSAVE");
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        in_progress,
        "BGSAVE during a BGSAVE"
    );
    poll_until(DEADLINE, || {
        let reply = c.cmd_raw(&["SAVE"]);
        assert!(reply == b"+OK\r\n" || reply == in_progress);
        (reply == b"+OK\r\n").then_some(())
    });
    let started = Instant::now();
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let save_ms = started.elapsed().as_millis() as u64;
    drop(c);

    let seed = now_ms() as u64 | 1;
    // Shown only if the test fails: reproduce with this seed.
    eprintln!("crash test: seed {seed}, one SAVE of {CRASH_KEYS} keys takes {save_ms} ms");
    let mut rng = Rng(seed);
    let mut killed_pids = Vec::new();
    let mut durable = 0; // the counter in the dump on disk
    let mut total_acked = 0;
    let mut killed_in_write = 0;
    for round in 0..CRASH_ROUNDS {
        let progress = Arc::new(AtomicI64::new(durable));
        let port = server.port();
        let from = durable;
        let loop_progress = Arc::clone(&progress);
        let saver = thread::spawn(move || save_loop(port, from, loop_progress));
        // Three ways to pick the moment: anywhere after a completed save,
        // anywhere from the start, or right inside the write of the
        // temporary file, the moment a crash-unsafe server would lose the
        // dump in; then up to about two saves later for the first two.
        let pid = server.pid();
        let temp = server.dir().join(format!("temp-{pid}.rdb"));
        let moment = match round % 3 {
            0 => {
                poll_until(DEADLINE, || {
                    (progress.load(Ordering::SeqCst) > from).then_some(())
                });
                let delay = rng.next() % (2 * save_ms + 20);
                thread::sleep(Duration::from_millis(delay));
                format!("{delay} ms after a completed save")
            }
            1 => {
                let delay = rng.next() % (2 * save_ms + 20);
                thread::sleep(Duration::from_millis(delay));
                format!("{delay} ms after the start")
            }
            _ => {
                // Spin, without sleeping, to catch the file while it is written.
                let started = Instant::now();
                while !temp.exists() {
                    assert!(
                        started.elapsed() < DEADLINE,
                        "round {round}: no {} appeared",
                        temp.display()
                    );
                    thread::yield_now();
                }
                "as the temporary file appeared".to_string()
            }
        };
        killed_pids.push(server.pid());
        server.kill();
        let end = saver.join().expect("save loop thread");
        assert_eq!(end.unexpected, None, "round {round}: unexpected reply");
        total_acked += end.acked - from;
        eprintln!(
            "round {round}: killed {moment}, last acknowledged counter {}",
            end.acked
        );

        // Only temporary files of killed processes may be left over; the
        // dump itself is always a complete one.
        let leftovers = temp_files(server.dir());
        eprintln!("round {round}: left over: {leftovers:?}");
        killed_in_write += usize::from(temp.exists());
        for name in leftovers {
            assert!(
                killed_pids
                    .iter()
                    .any(|pid| name == format!("temp-{pid}.rdb")),
                "round {round}: unexpected {name}"
            );
        }
        assert_valid_rdb(&fs::read(&dump).expect("dump.rdb"));

        server.restart();
        let mut c = server.client();
        assert_eq!(
            c.cmd(&["DBSIZE"]),
            Reply::int(CRASH_KEYS as i64 + 1),
            "round {round}: every key of the last save"
        );
        let counter: i64 = String::from_utf8(c.cmd(&["GET", "counter"]).as_bulk().to_vec())
            .expect("UTF-8")
            .parse()
            .expect("an integer");
        // The acknowledged save is on disk; the one in flight may be too.
        assert!(
            counter == end.acked || counter == end.acked + 1,
            "round {round}: counter {counter} on disk, last acknowledged save {}",
            end.acked
        );
        eprintln!("round {round}: counter {counter} on disk");
        durable = counter;
        for _ in 0..20 {
            let i = rng.next() as usize % CRASH_KEYS;
            assert_eq!(
                c.cmd_bytes(&[b"GET", format!("key:{i}").as_bytes()]),
                Reply::Bulk(crash_value(i)),
                "round {round}: key:{i}"
            );
        }
    }
    assert!(total_acked > 0, "no SAVE completed in any round");
    assert!(
        killed_in_write > 0,
        "no kill landed while a temporary file was being written"
    );
}

// ---------------------------------------------------------------------------
// Group C: interop with the real redis-server and redis-check-rdb
// ---------------------------------------------------------------------------

/// The varied data and the volatile keys, written to `client`.
fn write_interop_data(client: &mut Client) -> (Data, Deadlines) {
    let data = varied_data();
    write_data(client, &data);
    let deadlines = write_volatile_keys(client);
    (data, deadlines)
}

#[track_caller]
fn assert_interop_data(
    client: &mut Client,
    data: &[(Vec<u8>, Vec<u8>)],
    deadlines: &[(String, i64)],
) {
    assert_data(client, data);
    assert_deadlines(client, deadlines);
    assert_eq!(
        dbsize(client),
        (data.len() + deadlines.len()) as i64,
        "DBSIZE"
    );
}

#[test]
fn our_dump_passes_redis_check_rdb_and_loads_into_real_redis() {
    let redis = require_redis_server!();
    let ours = Server::start_with(BIN, &["--save", "", "--dbfilename", "ours.rdb"]);
    let mut c = ours.client();
    let (data, deadlines) = write_interop_data(&mut c);
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let path = file_in(&ours, "ours.rdb");

    let check = redis.with_file_name("redis-check-rdb");
    let checker = if check.is_file() {
        check.into_os_string()
    } else {
        "redis-check-rdb".into()
    };
    let output = Command::new(&checker)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-check-rdb: {e}"));
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "redis-check-rdb failed ({}):\n{report}",
        output.status
    );
    let keys = data.len() + deadlines.len();
    for expected in [
        "Checksum OK".to_string(),
        "RDB looks OK!".to_string(),
        format!("[info] {keys} keys read"),
        format!("[info] {} expires", deadlines.len() - 1),
        "[info] 0 already expired".to_string(),
    ] {
        assert!(
            report.contains(&expected),
            "redis-check-rdb should say {expected:?}:\n{report}"
        );
    }

    let real = Server::start_program(
        &redis,
        &[
            "--dir",
            dir_arg(&ours),
            "--dbfilename",
            "ours.rdb",
            "--save",
            "",
        ],
    );
    let mut r = real.client();
    assert_interop_data(&mut r, &data, &deadlines);
}

#[test]
fn a_dump_written_by_real_redis_loads_here() {
    let redis = require_redis_server!();
    let real = Server::start_program(&redis, &["--save", ""]);
    let mut r = real.client();
    let (data, deadlines) = write_interop_data(&mut r);
    assert_eq!(r.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let bytes = fs::read(file_in(&real, "dump.rdb")).expect("redis wrote dump.rdb");
    assert_valid_rdb(&bytes);
    // Redis compressed the long values: the raw 10 KB pattern is not there.
    let pattern = b"0123456789 abcdefghij ".repeat(10);
    assert!(
        !bytes
            .windows(pattern.len())
            .any(|w| w == pattern.as_slice()),
        "expected Redis to LZF-compress the repeated value"
    );

    let ours = Server::start_with(BIN, &["--save", "", "--dir", dir_arg(&real)]);
    let mut c = ours.client();
    assert_interop_data(&mut c, &data, &deadlines);
}

#[test]
fn real_redis_and_this_server_agree_after_a_round_trip() {
    // Ours -> Redis -> ours: Redis rewrites our dump and we read its version.
    let redis = require_redis_server!();
    let ours = Server::start_with(BIN, &["--save", ""]);
    let mut c = ours.client();
    let (data, deadlines) = write_interop_data(&mut c);
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let theirs_dir = TempDir::new();
    fs::copy(
        file_in(&ours, "dump.rdb"),
        theirs_dir.path().join("dump.rdb"),
    )
    .expect("copy the dump");
    let real = Server::start_program(&redis, &["--save", "", "--dir", theirs_dir.as_arg()]);
    let mut r = real.client();
    assert_eq!(r.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let again = Server::start_with(BIN, &["--save", "", "--dir", theirs_dir.as_arg()]);
    let mut c = again.client();
    assert_interop_data(&mut c, &data, &deadlines);
}

// ---------------------------------------------------------------------------
// A: a background save does not stall the clients
// ---------------------------------------------------------------------------

/// How many keys the stall test loads: enough that encoding them all takes
/// well over a second in a debug build, as it did when the whole file was
/// encoded under the keyspace's lock.
const STALL_KEYS: usize = 60_000;

/// The longest a client's SET or GET may take while the save runs. Redis
/// stays in single-digit milliseconds (a fork); the limit leaves room for a
/// debug build on a busy machine, and is far below the save's duration.
const STALL_LIMIT: Duration = Duration::from_millis(200);

#[test]
fn bgsave_does_not_stall_clients_and_writes_a_correct_dump() {
    let mut server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    populate_with(&mut c, STALL_KEYS, stall_value);
    let dump = file_in(&server, "dump.rdb");
    assert!(!dump.exists(), "no save before the BGSAVE");

    // SET then GET in a loop from the BGSAVE on, until the dump is renamed
    // into place: the slowest round trip is the longest stall.
    let started = Instant::now();
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Reply::simple("Background saving started")
    );
    let (mut slowest, mut round_trips) = (Duration::ZERO, 0);
    while !dump.is_file() {
        assert!(started.elapsed() < 3 * DEADLINE, "BGSAVE did not finish");
        let value = format!("during-{round_trips}");
        let sent = Instant::now();
        assert_eq!(c.cmd(&["SET", "during", &value]), Reply::ok());
        assert_eq!(c.cmd(&["GET", "key:1"]), Reply::bulk_bytes(&stall_value(1)));
        slowest = slowest.max(sent.elapsed());
        round_trips += 1;
    }
    let save_took = started.elapsed();
    eprintln!(
        "slowest SET+GET {slowest:?} during a save of {save_took:?} ({round_trips} round trips)"
    );
    assert!(
        slowest < STALL_LIMIT,
        "a SET+GET took {slowest:?} while the save ran ({save_took:?}, {round_trips} round trips)"
    );

    // The dump holds the data as it was at the BGSAVE: every key loaded,
    // and a sample of them with its value.
    server.restart();
    let mut c = server.client();
    // Redis answers -LOADING until the dump is in.
    let dbsize = poll_until(DEADLINE, || match c.cmd(&["DBSIZE"]) {
        Reply::Integer(n) if n > 0 => Some(n as usize),
        _ => None,
    });
    // `during` may or may not be in the dump, depending on when the save began.
    assert!(
        dbsize == STALL_KEYS || dbsize == STALL_KEYS + 1,
        "{dbsize} keys after the restart"
    );
    for i in (0..STALL_KEYS).step_by(997) {
        let key = format!("key:{i}");
        assert_eq!(
            c.cmd(&["GET", &key]),
            Reply::bulk_bytes(&stall_value(i)),
            "{key}"
        );
    }
}

/// A value of 300 bytes in which LZF finds little to compress: the most
/// work for the encoder per byte.
fn stall_value(i: usize) -> Vec<u8> {
    let mut state = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..300)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 26) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Exercises (docs/07-persistence.md, "Exercises"). Each test is ignored, so
// the suite above passes on the chapter as shipped; each fails on the
// chapter as shipped and passes on the real Redis, which meets each goal
// (its BGSAVE forks: the child encodes while the parent serves). Run one
// with `cargo test --test ch07_persistence -- --ignored exercise_1`; to
// grade another build, point `REDIS_TEST_SERVER` at its binary.
// ---------------------------------------------------------------------------

/// Exercise 1: time the save. `INFO persistence` reports what Redis's
/// does: changes since the last save, whether a background save runs and
/// for how long (`rdb_current_bgsave_time_sec`, -1 when none), how the last
/// one ended and how long it took (`rdb_last_bgsave_time_sec`, -1 before
/// the first), and when the last save was (the same as `LASTSAVE`).
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_1_info_persistence_times_the_save() {
    let server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    let field = |c: &mut Client, name: &str| {
        c.info_field("persistence", name)
            .unwrap_or_else(|| panic!("INFO persistence has no {name}"))
    };
    assert_eq!(c.cmd(&["SET", "a", "1"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", "b", "2"]), Reply::ok());
    assert_eq!(field(&mut c, "rdb_changes_since_last_save"), "2");
    assert_eq!(field(&mut c, "rdb_bgsave_in_progress"), "0");
    assert_eq!(field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(field(&mut c, "rdb_last_bgsave_time_sec"), "-1");
    assert_eq!(field(&mut c, "rdb_current_bgsave_time_sec"), "-1");
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Reply::simple("Background saving started")
    );
    poll_until(DEADLINE, || {
        (field(&mut c, "rdb_bgsave_in_progress") == "0"
            && field(&mut c, "rdb_last_bgsave_time_sec") != "-1")
            .then_some(())
    });
    let took: i64 = field(&mut c, "rdb_last_bgsave_time_sec")
        .parse()
        .expect("rdb_last_bgsave_time_sec is an integer");
    assert!((0..5).contains(&took), "a save of two keys took {took} s");
    assert_eq!(field(&mut c, "rdb_current_bgsave_time_sec"), "-1");
    assert_eq!(field(&mut c, "rdb_changes_since_last_save"), "0");
    let Reply::Integer(lastsave) = c.cmd(&["LASTSAVE"]) else {
        panic!("LASTSAVE is an integer");
    };
    assert_eq!(field(&mut c, "rdb_last_save_time"), lastsave.to_string());
}

/// Exercise 2: `stop-writes-on-bgsave-error`. After a background save
/// fails (a directory is in the way of `dump.rdb`), writes (and `PING`)
/// get `-MISCONF` while reads still work; once a save succeeds, writes work again; and
/// `SHUTDOWN NOSAVE` still stops a server that cannot save.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_2_writes_stop_after_a_failed_bgsave() {
    const MISCONF: &[u8] = b"-MISCONF Redis is configured to save RDB snapshots, but it's \
        currently unable to persist to disk. Commands that may modify the data set are \
        disabled, because this instance is configured to report errors during writes if \
        RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the \
        Redis logs for details about the RDB error.\r\n";
    // Save points on (Redis checks stop-writes-on-bgsave-error only then),
    // but far apart, so that only BGSAVE saves.
    let mut server = Server::start_with(BIN, &["--save", "3600 1"]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    let dump = file_in(&server, "dump.rdb");
    let block = |dump: &Path| {
        fs::create_dir(dump).expect("mkdir dump.rdb");
        File::create(dump.join("in-the-way")).expect("a file in dump.rdb/");
    };
    block(&dump);
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    poll_until(DEADLINE, || {
        let reply = c.cmd_raw(&["SET", "k", "new"]);
        assert!(
            reply == b"+OK\r\n" || reply == MISCONF,
            "SET after a failed save: b\"{}\"",
            common::show(&reply)
        );
        (reply == MISCONF).then_some(())
    });
    assert_eq!(c.cmd_raw(&["DEL", "k"]), MISCONF.to_vec());
    // `k` is "v", or "new" if a SET ran before the save failed.
    let value = c.cmd(&["GET", "k"]);
    assert!(
        value == Reply::bulk("v") || value == Reply::bulk("new"),
        "GET must still work: {value:?}"
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::int(1));
    // Redis refuses PING too, so that a monitor pinging it notices.
    assert_eq!(c.cmd_raw(&["PING"]), MISCONF.to_vec());

    fs::remove_dir_all(&dump).expect("rm -r dump.rdb");
    assert_eq!(
        c.cmd_raw(&["BGSAVE"]),
        b"+Background saving started\r\n".to_vec()
    );
    poll_until(DEADLINE, || {
        (c.cmd_raw(&["SET", "k", "again"]) == b"+OK\r\n").then_some(())
    });
    wait_for_file(&dump);

    fs::remove_file(&dump).expect("rm dump.rdb");
    block(&dump);
    c.cmd(&["BGSAVE"]);
    poll_until(DEADLINE, || {
        (c.cmd_raw(&["SET", "k", "blocked"]) == MISCONF).then_some(())
    });
    c.send(&encode_str_command(&["SHUTDOWN", "NOSAVE"]));
    let status = server.wait_exit(DEADLINE);
    assert!(status.success(), "SHUTDOWN NOSAVE: {status}");
}

/// Exercise 3: the snapshot's pause, measured inside the server. Redis
/// reports how long its last `fork` took in `INFO stats`,
/// `latest_fork_usec`: the time its clients waited for the snapshot. Report
/// the same for the time the snapshot held the lock, then shorten it: with
/// 1,000,000 keys it must stay under 10 ms. The chapter copies every key's
/// handles under the lock (hundreds of milliseconds for this many in a
/// debug build); copying the table a shard at a time, with writers copying
/// a shard first when they would change it, keeps each hold short.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_3_the_snapshot_holds_the_lock_under_10_ms() {
    const KEYS: usize = 1_000_000;
    const LIMIT_USEC: u64 = 10_000;
    let server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    let mut batch = Vec::new();
    for i in 0..KEYS {
        batch.extend(encode_str_command(&[
            "SET",
            &format!("key:{i}"),
            "some value of a few bytes",
        ]));
    }
    let writer = c.send_in_background(batch);
    let replies = c.read_exact(5 * KEYS);
    writer.join().unwrap().expect("loading failed");
    assert!(replies.chunks(5).all(|reply| reply == b"+OK\r\n"));

    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Reply::simple("Background saving started")
    );
    wait_for_file(&file_in(&server, "dump.rdb"));
    let pause: u64 = c
        .info_field("stats", "latest_fork_usec")
        .expect("INFO stats has no latest_fork_usec")
        .parse()
        .expect("latest_fork_usec is an integer");
    assert!(
        pause < LIMIT_USEC,
        "the snapshot of {KEYS} keys held the lock for {pause} us: the goal is under {LIMIT_USEC} us"
    );
}

// ---------------------------------------------------------------------------
// Stop signals: SIGTERM and SIGINT run the same path as SHUTDOWN
// ---------------------------------------------------------------------------

/// Sends `signal` (`"TERM"`, `"INT"`) to the server's process.
#[track_caller]
fn send_signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &server.pid().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -s {signal} failed");
}

/// What `kill`, systemd and `docker stop` send must not lose a write:
/// with save points set, the server saves a final snapshot, logs it, and
/// exits 0; after a restart every key is there. SIGINT (Ctrl+C) the same.
#[test]
fn sigterm_and_sigint_save_the_data_and_exit_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start_with(BIN, &["--save", "3600 1"]);
        let mut c = server.client();
        let data = varied_data();
        write_data(&mut c, &data);
        // No save has run: the save point is an hour away.
        assert!(!file_in(&server, "dump.rdb").exists(), "saved already");
        send_signal(&server, signal);
        let status = server.wait_exit(DEADLINE);
        assert!(
            status.success(),
            "SIG{signal} must exit with 0, got {status}"
        );
        let log = server.log();
        for line in [
            format!("Received SIG{signal} scheduling shutdown..."),
            "Saving the final RDB snapshot before exiting.".to_string(),
            "Redis is now ready to exit, bye bye...".to_string(),
        ] {
            assert!(log.contains(&line), "no {line:?} in the log:\n{log}");
        }
        assert_eq!(temp_files(server.dir()), Vec::<String>::new());
        server.restart();
        let mut c = server.client();
        assert_eq!(dbsize(&mut c), data.len() as i64);
        assert_data(&mut c, &data);
    }
}

/// Without save points, SIGTERM exits 0 without writing a dump, as
/// `SHUTDOWN` does.
#[test]
fn sigterm_without_save_points_exits_without_saving() {
    let mut server = Server::start_with(BIN, &["--save", ""]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    send_signal(&server, "TERM");
    let status = server.wait_exit(DEADLINE);
    assert!(status.success(), "SIGTERM must exit with 0, got {status}");
    assert!(!file_in(&server, "dump.rdb").exists(), "wrote a dump");
}

/// A final save that fails keeps the server up: exiting would lose the
/// data. It says so in the log and goes on serving; once the save can
/// succeed, the next SIGTERM stops it.
#[test]
fn sigterm_with_a_failing_save_keeps_serving() {
    let mut server = Server::start_with(BIN, &["--save", "3600 1"]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
    // A directory where the dump should go: the rename over it fails.
    let dump = file_in(&server, "dump.rdb");
    fs::create_dir(&dump).expect("mkdir dump.rdb");
    send_signal(&server, "TERM");
    poll_until(DEADLINE, || {
        server
            .log()
            .contains("Error trying to save the DB, can't exit.")
            .then_some(())
    });
    assert!(server.is_running(), "exited without its data on disk");
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["SET", "k2", "v2"]), Reply::ok());
    fs::remove_dir(&dump).expect("rmdir dump.rdb");
    send_signal(&server, "TERM");
    let status = server.wait_exit(DEADLINE);
    assert!(status.success(), "SIGTERM must exit with 0, got {status}");
    server.restart();
    let mut c = server.client();
    assert_eq!(c.cmd(&["GET", "k2"]), Reply::bulk("v2"));
}

/// SIGTERM while a background save runs: the shutdown does not exit
/// under it, nor lose what was written after the save began. Redis kills
/// its saving child and saves again; ours lets the save end, then saves.
#[test]
fn sigterm_during_bgsave_keeps_the_writes_made_after_it_began() {
    let mut server = Server::start_with(BIN, &["--save", "3600 1"]);
    let mut c = server.client();
    let value = "v".repeat(100);
    let mut pipeline = Vec::new();
    for i in 0..100_000 {
        pipeline.extend(encode_str_command(&["SET", &format!("key:{i}"), &value]));
    }
    c.send(&pipeline);
    for _ in 0..100_000 {
        assert_eq!(c.read_reply(), Reply::ok());
    }
    assert_eq!(c.cmd_raw(&["BGSAVE"]), b"+Background saving started\r\n");
    assert_eq!(c.cmd(&["SET", "after", "bgsave"]), Reply::ok());
    send_signal(&server, "TERM");
    let status = server.wait_exit(DEADLINE);
    assert!(status.success(), "SIGTERM must exit with 0, got {status}");
    assert_eq!(temp_files(server.dir()), Vec::<String>::new());
    server.restart();
    let mut c = server.client();
    // Redis answers -LOADING while it loads a large dump.
    let keys = poll_until(DEADLINE, || match c.cmd(&["DBSIZE"]) {
        Reply::Integer(n) => Some(n),
        _ => None,
    });
    assert_eq!(keys, 100_001);
    assert_eq!(c.cmd(&["GET", "after"]), Reply::bulk("bgsave"));
}

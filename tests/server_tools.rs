//! The final server driven by the real tools people point at a Redis:
//! `redis-cli` (one-shot, interactive under a pseudo-terminal, `--pipe`,
//! `--scan`, `--rdb`), `redis-benchmark`, and a client library (redis-py).
//!
//! Each test skips with a `skipped:` line on stderr when its tool is not
//! installed, and fails instead when `CI` is set (the harness's
//! `tool_missing` rule: `.ci/run` installs every tool). None of them depends on this project's own flags or log
//! lines, so they all pass against a real Redis too
//! (`REDIS_TEST_SERVER=redis-server cargo test --test server_tools`), which
//! is how the expectations here were checked (redis-cli and redis-server
//! 7.0.15, redis-py 8.1).

mod common;

use common::{encode_str_command, poll_until, show, Client, Reply, Server};
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const BIN: &str = "redis-from-scratch";

/// How long any one run of a tool may take before the test fails.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the interactive redis-cli may take to show a reply.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);

fn start() -> Server {
    Server::start_with(BIN, &["--save", ""])
}

fn start_with(args: &[&str]) -> Server {
    Server::start_with(BIN, &[&["--save", ""], args].concat())
}

/// `redis-cli -p <port>`, isolated from the user's setup: no history file,
/// no `.redisclirc`, no password from the environment.
fn cli(port: u16) -> Command {
    let mut command = Command::new("redis-cli");
    command
        .args(["-p", &port.to_string()])
        .env("REDISCLI_HISTFILE", "/dev/null")
        .env("REDISCLI_RCFILE", "/dev/null")
        .env_remove("REDISCLI_AUTH");
    command
}

// ---------------------------------------------------------------------------
// Running a tool
// ---------------------------------------------------------------------------

/// A child process that is killed (and waited for) when dropped, so that a
/// failing test leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a tool's run ended.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Panics, showing everything the tool printed, unless it exited 0.
    #[track_caller]
    fn assert_success(&self) -> &Output {
        assert!(
            self.status.success(),
            "the tool failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Reads `from` to its end on another thread.
fn read_in_background(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `command` with `input` on its stdin (then end-of-file) and waits up
/// to [`TOOL_TIMEOUT`] for it to exit.
#[track_caller]
fn run(command: &mut Command, input: Vec<u8>) -> Output {
    // Printed only when the test fails: which run broke.
    eprintln!("running: {command:?}");
    let child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut child = Reaped(child);
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    // Written from another thread, so that a tool that answers while it
    // reads (redis-cli --pipe) can never block us both.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = read_in_background(child.0.stdout.take().expect("piped stdout"));
    let stderr = read_in_background(child.0.stderr.take().expect("piped stderr"));
    let status = poll_until(TOOL_TIMEOUT, || {
        child.0.try_wait().expect("try_wait failed")
    });
    writer.join().expect("the stdin writer panicked");
    let text = |handle: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&handle.join().expect("a reader panicked")).into_owned()
    };
    Output {
        status,
        stdout: text(stdout),
        stderr: text(stderr),
    }
}

/// `redis-cli -p <port> <args...>`, run to its end.
#[track_caller]
fn cli_run(port: u16, args: &[&str]) -> Output {
    run(cli(port).args(args), Vec::new())
}

/// The stdout of `redis-cli -p <port> <args...>`, which must exit 0, without
/// its final newline. With stdout not a terminal, redis-cli prints replies
/// raw: `PONG`, `v`, an empty line for nil.
#[track_caller]
fn cli_out(port: u16, args: &[&str]) -> String {
    let output = cli_run(port, args);
    output.assert_success();
    output
        .stdout
        .strip_suffix('\n')
        .unwrap_or(&output.stdout)
        .to_string()
}

/// Sends all `commands` in one pipeline and checks that none failed.
#[track_caller]
fn load(client: &mut Client, commands: &[Vec<String>]) {
    let mut bytes = Vec::new();
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        bytes.extend(encode_str_command(&args));
    }
    let writer = client.send_in_background(bytes);
    for command in commands {
        let reply = client.read_reply();
        assert!(!reply.is_error(), "{command:?} failed: {reply:?}");
    }
    writer
        .join()
        .expect("the writer panicked")
        .expect("sending the commands failed");
}

/// `SET key value` as a command for [`load`].
fn set(key: &str, value: &str) -> Vec<String> {
    vec!["SET".to_string(), key.to_string(), value.to_string()]
}

/// `SELECT db` as a command for [`load`].
fn select(db: u32) -> Vec<String> {
    vec!["SELECT".to_string(), db.to_string()]
}

// ---------------------------------------------------------------------------
// redis-cli, one command at a time
// ---------------------------------------------------------------------------

#[test]
fn redis_cli_runs_one_shot_commands() {
    require_program!("redis-cli");
    let server = start();
    let port = server.port();

    assert_eq!(cli_out(port, &["PING"]), "PONG");
    assert_eq!(cli_out(port, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli_out(port, &["GET", "greeting"]), "hello world");
    assert_eq!(cli_out(port, &["INCR", "counter"]), "1");
    // Nil prints as an empty line when stdout is not a terminal.
    assert_eq!(cli_out(port, &["GET", "missing"]), "");
    // An error reply goes to stdout; redis-cli 7.0 still exits 0.
    let output = cli_run(port, &["NOSUCHCOMMAND", "x"]);
    assert!(
        output
            .stdout
            .starts_with("ERR unknown command 'NOSUCHCOMMAND'"),
        "stdout: {:?}",
        output.stdout
    );

    // -n 3: the key lands in database 3 and only there.
    assert_eq!(cli_out(port, &["-n", "3", "SET", "only-in-3", "x"]), "OK");
    assert_eq!(cli_out(port, &["-n", "3", "GET", "only-in-3"]), "x");
    assert_eq!(cli_out(port, &["-n", "3", "DBSIZE"]), "1");
    assert_eq!(cli_out(port, &["GET", "only-in-3"]), "");
    assert_eq!(cli_out(port, &["DBSIZE"]), "2");
    let mut client = server.client();
    assert_eq!(client.cmd(&["GET", "only-in-3"]), Reply::Nil);
    assert_eq!(client.cmd(&["SELECT", "3"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "only-in-3"]), Reply::bulk("x"));
}

#[test]
fn redis_cli_authenticates_with_a_password() {
    require_program!("redis-cli");
    let server = start_with(&["--requirepass", "secret"]);
    let port = server.port();
    const WARNING: &str = "Warning: Using a password with '-a' or '-u' option";

    let output = cli_run(port, &["PING"]);
    assert!(
        output.stdout.starts_with("NOAUTH Authentication required."),
        "without a password: {:?}",
        output.stdout
    );

    let output = cli_run(port, &["-a", "secret", "PING"]);
    output.assert_success();
    assert_eq!(output.stdout, "PONG\n");
    assert!(
        output.stderr.contains(WARNING),
        "stderr: {:?}",
        output.stderr
    );

    let output = cli_run(
        port,
        &["-a", "secret", "--no-auth-warning", "SET", "k", "v"],
    );
    output.assert_success();
    assert_eq!(output.stdout, "OK\n");
    assert_eq!(output.stderr, "", "--no-auth-warning still warned");

    let output = cli_run(
        port,
        &[
            "--user",
            "default",
            "--pass",
            "secret",
            "--no-auth-warning",
            "GET",
            "k",
        ],
    );
    output.assert_success();
    assert_eq!(output.stdout, "v\n");

    // The password from the environment, as redis-cli recommends.
    let output = run(
        cli(port).env("REDISCLI_AUTH", "secret").arg("PING"),
        Vec::new(),
    );
    output.assert_success();
    assert_eq!(output.stdout, "PONG\n");

    // A wrong password: AUTH fails, and so does the command after it.
    let output = cli_run(port, &["-a", "wrong", "--no-auth-warning", "PING"]);
    assert!(
        output.stderr.contains("AUTH failed: WRONGPASS"),
        "stderr: {:?}",
        output.stderr
    );
    assert!(
        output.stdout.starts_with("NOAUTH"),
        "stdout: {:?}",
        output.stdout
    );
}

// ---------------------------------------------------------------------------
// redis-cli, interactive
// ---------------------------------------------------------------------------

/// A program running under a pseudo-terminal (util-linux `script`), fed
/// keystrokes and watched as a person would watch it. On drop it is killed;
/// if the test is panicking, the whole transcript is printed first.
struct Terminal {
    child: Reaped,
    input: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Runs `shell_command` with `/bin/sh` in a new pseudo-terminal of
    /// 200x50 characters. (Without a size, redis-cli's line editor asks the
    /// terminal where its cursor is and waits for an answer.)
    fn spawn(shell_command: &str) -> Terminal {
        let inner = format!("stty cols 200 rows 50 && exec {shell_command}");
        let mut child = Command::new("script")
            .args(["-qfc", &inner, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm")
            .env("REDISCLI_HISTFILE", "/dev/null")
            .env("REDISCLI_RCFILE", "/dev/null")
            .env_remove("REDISCLI_AUTH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run script: {e}"));
        let input = child.stdin.take().expect("piped stdin");
        let output = Arc::new(Mutex::new(Vec::new()));
        for mut from in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Terminal {
            child: Reaped(child),
            input,
            output,
        }
    }

    /// Everything shown so far, as text.
    fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// How many bytes were shown so far.
    fn shown(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// Waits until the output from byte `from` on contains `prompt`.
    #[track_caller]
    fn wait_for_prompt(&self, from: usize, prompt: &str) {
        poll_until(PROMPT_TIMEOUT, || {
            let output = self.output.lock().unwrap();
            String::from_utf8_lossy(&output[from..])
                .contains(prompt)
                .then_some(())
        });
    }

    /// Types `line` and Enter at a prompt, then waits until a line that is
    /// exactly `reply` appears, followed by `next_prompt`.
    #[track_caller]
    fn enter(&mut self, line: &str, reply: &str, next_prompt: &str) {
        let from = self.shown();
        // The line editor runs the terminal raw: Enter is a carriage return.
        self.input
            .write_all(format!("{line}\r").as_bytes())
            .and_then(|()| self.input.flush())
            .unwrap_or_else(|e| panic!("cannot type {line:?}: {e}"));
        poll_until(PROMPT_TIMEOUT, || {
            let output = self.output.lock().unwrap();
            let text = String::from_utf8_lossy(&output[from..]);
            let mut offset = 0;
            for shown in text.split_inclusive('\n') {
                offset += shown.len();
                if shown.ends_with('\n') && shown.trim_end_matches(['\r', '\n']) == reply {
                    return text[offset..].contains(next_prompt).then_some(());
                }
            }
            None
        });
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- terminal transcript ---\n{}\n---",
                show(self.transcript().as_bytes())
            );
        }
    }
}

#[test]
fn redis_cli_works_interactively_in_a_terminal() {
    require_program!("redis-cli");
    require_program!("script");
    let server = start();
    let port = server.port();
    let prompt = format!("127.0.0.1:{port}> ");
    let prompt_db2 = format!("127.0.0.1:{port}[2]> ");

    let mut terminal = Terminal::spawn(&format!("redis-cli -p {port}"));
    terminal.wait_for_prompt(0, &prompt);
    terminal.enter("ping", "PONG", &prompt);
    terminal.enter("set k v", "OK", &prompt);
    // A terminal gets replies quoted, as redis-cli shows them to people.
    terminal.enter("get k", "\"v\"", &prompt);
    terminal.enter("select 2", "OK", &prompt_db2);
    terminal.enter("get k", "(nil)", &prompt_db2);
    terminal.enter("incr n", "(integer) 1", &prompt_db2);

    terminal
        .input
        .write_all(b"exit\r")
        .expect("cannot type exit");
    let status = poll_until(PROMPT_TIMEOUT, || {
        terminal.child.0.try_wait().expect("try_wait failed")
    });
    assert!(status.success(), "redis-cli exited with {status}");

    // redis-cli asked for COMMAND DOCS when it started (for its hints and
    // help): nothing it sent may have been refused.
    let transcript = terminal.transcript();
    assert!(
        !transcript.contains("ERR") && !transcript.contains("(error)"),
        "an error showed in the terminal"
    );
    let mut client = server.client();
    assert_eq!(client.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(client.cmd(&["SELECT", "2"]), Reply::ok());
    assert_eq!(client.cmd(&["GET", "n"]), Reply::bulk("1"));
}

// ---------------------------------------------------------------------------
// redis-cli --pipe, --scan, --rdb
// ---------------------------------------------------------------------------

#[test]
fn redis_cli_pipe_mass_inserts_100000_keys() {
    require_program!("redis-cli");
    let server = start();
    const KEYS: usize = 100_000;
    let mut input = Vec::with_capacity(KEYS * 48);
    for i in 0..KEYS {
        input.extend(encode_str_command(&[
            "SET",
            &format!("key:{i}"),
            &format!("value:{i}"),
        ]));
    }

    let output = run(cli(server.port()).arg("--pipe"), input);
    output.assert_success();
    assert!(
        output
            .stdout
            .contains(&format!("errors: 0, replies: {KEYS}")),
        "redis-cli --pipe reported:\n{}\n{}",
        output.stdout,
        output.stderr
    );

    let mut client = server.client();
    assert_eq!(client.cmd(&["DBSIZE"]), Reply::int(KEYS as i64));
    assert_eq!(client.cmd(&["GET", "key:0"]), Reply::bulk("value:0"));
    assert_eq!(
        client.cmd(&["GET", "key:99999"]),
        Reply::bulk("value:99999")
    );
}

/// The keys `redis-cli --scan <args>` lists, one per line; also checks that
/// it lists each only once.
#[track_caller]
fn scan_keys(port: u16, args: &[&str]) -> BTreeSet<String> {
    let output = run(cli(port).arg("--scan").args(args), Vec::new());
    output.assert_success();
    let lines: Vec<&str> = output.stdout.lines().collect();
    let keys: BTreeSet<String> = lines.iter().map(|key| key.to_string()).collect();
    assert_eq!(
        keys.len(),
        lines.len(),
        "--scan {args:?} listed a key twice"
    );
    keys
}

#[test]
fn redis_cli_scan_lists_exactly_the_keys() {
    require_program!("redis-cli");
    let server = start();
    let mut all = BTreeSet::new();
    let mut users = BTreeSet::new();
    let mut commands = Vec::new();
    for i in 0..1500 {
        users.insert(format!("user:{i}"));
        all.insert(format!("user:{i}"));
        all.insert(format!("session:{i}"));
    }
    // Near misses of the pattern `user:*`, and an exact-prefix hit.
    for key in ["user", "users:1", "xuser:1", "User:1", "user:"] {
        all.insert(key.to_string());
    }
    users.insert("user:".to_string());
    for key in &all {
        commands.push(set(key, "v"));
    }
    // Keys in another database are not listed.
    commands.push(select(1));
    commands.push(set("user:in-db-1", "v"));
    load(&mut server.client(), &commands);

    let port = server.port();
    assert_eq!(scan_keys(port, &[]), all);
    assert_eq!(scan_keys(port, &["--pattern", "user:*"]), users);
    let tens: BTreeSet<String> = (10..20).map(|i| format!("user:{i}")).collect();
    assert_eq!(scan_keys(port, &["--pattern", "user:1?"]), tens);
    let last: BTreeSet<String> = ["session:1499", "user:1499"].map(String::from).into();
    assert_eq!(scan_keys(port, &["--pattern", "*:1499"]), last);
    assert_eq!(
        scan_keys(port, &["--pattern", "nothing:*"]),
        BTreeSet::new()
    );
    let in_db_1 = run(cli(port).args(["-n", "1", "--scan"]), Vec::new());
    in_db_1.assert_success();
    assert_eq!(in_db_1.stdout, "user:in-db-1\n");
}

#[test]
fn redis_cli_rdb_downloads_a_valid_snapshot() {
    require_program!("redis-cli");
    let server = start();
    let binary = "bin\0ary\r\nvalue\u{ff}";
    let long = "abcdefgh".repeat(500);
    let mut commands = vec![
        set("string", "hello"),
        set("number", "12345"),
        set("negative", "-42"),
        set("binary", binary),
        set("long", &long),
        set("empty", ""),
    ];
    commands.push(
        ["SET", "volatile", "soon", "EX", "1000"]
            .map(String::from)
            .to_vec(),
    );
    commands.push(select(3));
    commands.push(set("in-db-3", "three"));
    load(&mut server.client(), &commands);

    let dir = server.dir().join("cli-rdb");
    fs::create_dir_all(&dir).expect("cannot create the download directory");
    let file = dir.join("dump.rdb");
    let output = run(cli(server.port()).arg("--rdb").arg(&file), Vec::new());
    output.assert_success();
    assert!(
        output.stderr.contains("Transfer finished with success")
            || output.stdout.contains("Transfer finished with success"),
        "redis-cli --rdb said:\n{}\n{}",
        output.stdout,
        output.stderr
    );
    let bytes = fs::read(&file).expect("redis-cli wrote no file");
    assert!(
        bytes.starts_with(b"REDIS00"),
        "not an RDB file: b\"{}\"",
        show(&bytes[..bytes.len().min(40)])
    );

    // The server is none the worse: the download's link goes away and
    // the server still takes writes.
    poll_until(Duration::from_secs(10), || {
        let info = server.client().cmd(&["INFO", "replication"]);
        String::from_utf8_lossy(info.as_bulk())
            .contains("connected_slaves:0")
            .then_some(())
    });
    assert_eq!(server.client().cmd(&["SET", "after", "x"]), Reply::ok());

    match common::program_path("redis-check-rdb") {
        None => common::tool_missing(module_path!(), "redis-check-rdb is not on PATH"),
        Some(check) => {
            let output = run(Command::new(check).arg(&file), Vec::new());
            output.assert_success();
            assert!(
                output.stdout.contains("RDB looks OK"),
                "redis-check-rdb said:\n{}",
                output.stdout
            );
        }
    }

    match common::redis_server_path() {
        None => common::tool_missing(
            module_path!(),
            "redis-server is not on PATH (to load the snapshot)",
        ),
        Some(redis) => check_loaded_by_redis(&redis, &dir, binary, &long),
    }
}

/// Starts the real redis-server on `dir/dump.rdb` and checks what it loaded.
fn check_loaded_by_redis(redis: &Path, dir: &Path, binary: &str, long: &str) {
    let dir = dir.to_str().expect("a UTF-8 temporary directory");
    let loaded = Server::start_program(
        redis,
        &[
            "--dir",
            dir,
            "--dbfilename",
            "dump.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    );
    let mut client = loaded.client();
    // Until the load is done, Redis answers -LOADING.
    let size = poll_until(Duration::from_secs(10), || match client.cmd(&["DBSIZE"]) {
        Reply::Integer(n) => Some(n),
        _ => None,
    });
    assert_eq!(size, 7, "keys in database 0 of the snapshot");
    assert_eq!(client.cmd(&["GET", "string"]), Reply::bulk("hello"));
    assert_eq!(client.cmd(&["GET", "number"]), Reply::bulk("12345"));
    assert_eq!(client.cmd(&["GET", "negative"]), Reply::bulk("-42"));
    assert_eq!(client.cmd(&["GET", "binary"]), Reply::bulk(binary));
    assert_eq!(client.cmd(&["GET", "long"]), Reply::bulk(long));
    assert_eq!(client.cmd(&["GET", "empty"]), Reply::bulk(""));
    let ttl = client.cmd(&["TTL", "volatile"]).as_int();
    assert!((1..=1000).contains(&ttl), "TTL of volatile: {ttl}");
    assert_eq!(client.cmd(&["SELECT", "3"]), Reply::ok());
    assert_eq!(client.cmd(&["DBSIZE"]), Reply::int(1));
    assert_eq!(client.cmd(&["GET", "in-db-3"]), Reply::bulk("three"));
}

// ---------------------------------------------------------------------------
// redis-benchmark
// ---------------------------------------------------------------------------

/// Runs `redis-benchmark -q` with `extra` arguments and checks that every
/// test reports its requests per second and that nothing failed. A smoke
/// test: it asserts nothing about speed.
#[track_caller]
fn smoke_benchmark(port: u16, extra: &[&str]) {
    let output = run(
        Command::new("redis-benchmark")
            .args(["-p", &port.to_string(), "-n", "2000", "-c", "10", "-q"])
            .args([
                "-t",
                "ping,set,get,incr,mset,lpush,rpush,lpop,rpop,sadd,hset,spop,lrange_100",
            ])
            .args(extra),
        Vec::new(),
    );
    let everything = format!("{}\n{}", output.stdout, output.stderr);
    output.assert_success();
    assert!(
        !everything.contains("ERR") && !everything.contains("Error"),
        "redis-benchmark {extra:?} reported errors:\n{everything}"
    );
    // -q prints progress lines ended by \r and one final line per test:
    // `SET: 51282.05 requests per second, p50=0.111 msec`.
    let results: Vec<&str> = everything
        .split(['\r', '\n'])
        .filter(|line| line.contains("requests per second"))
        .collect();
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "LRANGE_100 (first 100 elements)",
    ] {
        let line = results
            .iter()
            .find(|line| line.trim_start().starts_with(&format!("{test}: ")))
            .unwrap_or_else(|| {
                panic!("redis-benchmark {extra:?} reported no result for {test}:\n{everything}")
            });
        let rate = line
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|number| number.parse::<f64>().ok());
        assert!(rate.is_some_and(|rate| rate > 0.0), "no rate in {line:?}");
    }
}

#[test]
fn redis_benchmark_runs_cleanly() {
    require_program!("redis-benchmark");
    let server = start();
    smoke_benchmark(server.port(), &[]);
    smoke_benchmark(server.port(), &["-P", "16"]);
    assert_eq!(server.client().cmd(&["PING"]), Reply::pong());
}

// ---------------------------------------------------------------------------
// A client library: redis-py
// ---------------------------------------------------------------------------

/// The redis-py script: each step runs on its own, a failed one prints the
/// script's line and the exception, and the script prints `OK` only when
/// all passed.
///
/// Every connection asks for `protocol=2`: redis-py 8 speaks RESP3 by
/// default (it opens with `HELLO 3`), which this server does not do; it
/// answers `-NOPROTO` as a Redis 5 would, and redis-py gives up on that.
const PY_CLIENT: &str = r##"
import sys
import traceback

import redis

port = int(sys.argv[1])
failures = []


def connect(**options):
    return redis.Redis(
        host="127.0.0.1", port=port, protocol=2, socket_timeout=10, **options
    )


def step(name):
    def run(fn):
        try:
            fn()
            print("ok:", name)
        except Exception:
            failures.append(name)
            # The script's own line that failed, and the exception.
            error = sys.exc_info()[1]
            frames = traceback.extract_tb(sys.exc_info()[2])
            here = [f for f in frames if f.filename == __file__]
            where = "line %d: %s" % (here[-1].lineno, here[-1].line) if here else "?"
            print("FAILED: %s: %s: %s: %s" % (name, where, type(error).__name__, error))
        return fn

    return run


r = connect()


@step("set/get bytes")
def _():
    value = b"\x00\xff\r\nbinary"
    assert r.set(b"bin", value) is True
    got = r.get(b"bin")
    assert got == value, got
    assert r.get("missing") is None


@step("mset/mget")
def _():
    assert r.mset({"m1": "a", "m2": "b"}) is True
    got = r.mget(["m1", "m2", "missing"])
    assert got == [b"a", b"b", None], got


@step("incr")
def _():
    got = [r.incr("counter"), r.incr("counter", 5), r.decr("counter")]
    assert got == [1, 6, 5], got


@step("expire/ttl")
def _():
    r.set("temp", "x")
    assert r.ttl("temp") == -1
    assert r.expire("temp", 100) is True
    ttl = r.ttl("temp")
    assert 0 < ttl <= 100, ttl
    assert r.ttl("missing") == -2


@step("pipeline transaction=True")
def _():
    pipe = r.pipeline(transaction=True)
    pipe.set("p1", "1").incr("p1").get("p1")
    got = pipe.execute()
    assert got == [True, 2, b"2"], got


@step("pipeline transaction=False")
def _():
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set("np:%d" % i, i)
    pipe.get("np:42")
    got = pipe.execute()
    assert got == [True] * 100 + [b"42"], got


@step("WATCH transaction")
def _():
    r.set("balance", 10)
    calls = []

    def spend(pipe):
        calls.append(1)
        balance = int(pipe.get("balance"))
        if len(calls) == 1:
            # Another client changes the key between WATCH and EXEC: the
            # first attempt must abort, and redis-py retries.
            connect().incr("balance", 100)
        pipe.multi()
        pipe.set("balance", balance - 1)

    got = r.transaction(spend, "balance")
    assert got == [True], got
    assert len(calls) == 2, calls
    assert r.get("balance") == b"109", r.get("balance")


@step("select via db=2")
def _():
    r2 = connect(db=2)
    r2.set("only-in-2", "yes")
    assert r2.get("only-in-2") == b"yes"
    assert r.get("only-in-2") is None
    assert r2.dbsize() == 1, r2.dbsize()


@step("client setname/getname")
def _():
    c = connect(single_connection_client=True)
    assert c.client_getname() is None
    assert c.client_setname("py-test") is True
    got = c.client_getname()
    assert got in ("py-test", b"py-test"), got


@step("info")
def _():
    info = r.info()
    assert isinstance(info, dict), info
    assert "redis_version" in info, sorted(info)
    server = r.info("server")
    assert "redis_version" in server, sorted(server)


@step("config get dbfilename")
def _():
    got = r.config_get("dbfilename")
    assert got in ({"dbfilename": "dump.rdb"}, {b"dbfilename": b"dump.rdb"}), got


@step("scan_iter")
def _():
    pipe = r.pipeline(transaction=False)
    for i in range(250):
        pipe.set("scan:%d" % i, i)
    pipe.execute()
    keys = set(r.scan_iter(match="scan:*", count=50))
    assert keys == {b"scan:%d" % i for i in range(250)}, len(keys)


if failures:
    print("failed steps:", ", ".join(failures))
    sys.exit(1)
print("OK")
"##;

/// Can `python3` import redis-py?
fn redis_py_available() -> bool {
    Command::new("python3")
        .args(["-c", "import redis"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn redis_py_client_works() {
    if !redis_py_available() {
        skip_for_missing_tool!("python3 with redis-py is not available");
    }
    let server = start();
    let script = server.dir().join("client.py");
    fs::write(&script, PY_CLIENT).expect("cannot write the python script");
    let output = run(
        Command::new("python3")
            .arg(&script)
            .arg(server.port().to_string()),
        Vec::new(),
    );
    assert!(
        output.status.success() && output.stdout.ends_with("OK\n"),
        "the redis-py script failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
}

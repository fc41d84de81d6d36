//! The tutorial shows terminal sessions; this test keeps them true. For each
//! page `docs/NN-slug.md` it replays the page's ```` ```console ```` blocks,
//! in page order, against a fresh `chNN-slug` started by the harness (the
//! final server, `redis-from-scratch`, for the page whose slug ends in
//! `-the-real-server`), and compares what the real `redis-cli` (and the
//! other tools) print with the page's text, the way `tests/docs_quotes.rs`
//! keeps the code quotes true. README.md's blocks are replayed the same
//! way, against the final server standing on Redis's default port 6379.
//!
//! # What a block may hold
//!
//! * `$ COMMAND` then its output: COMMAND runs in `bash` (standard error
//!   merged into standard output), in the working directory of the page's
//!   server (in the repository for a command that names
//!   `chapters/`, such as the `diff -rq` of "What changed"), with
//!   `redis-cli` given `--no-raw` so that it prints as it does in a
//!   terminal, and with the `raw` function defined as the page (or the
//!   latest earlier page) defines it in the ```` ```sh ```` block that
//!   starts with `raw() {`.
//! * `$ redis-cli -p PORT` alone (or with only `-a PASSWORD`,
//!   `--no-auth-warning` and `-n DB`) starts an interactive session on PORT;
//!   the lines `127.0.0.1:PORT> CMD` (`127.0.0.1:PORT[DB]> CMD` once a
//!   database other than 0 is selected, `...(TX)> CMD` inside `MULTI`) feed
//!   CMD to that one `redis-cli` process and compare each reply.
//!   A block may start with a prompt line: it goes on with the session the
//!   page opened earlier, as the reader's first terminal does. The prompt
//!   must show `(TX)` exactly while a `MULTI` is open and `[DB]` exactly as
//!   redis-cli follows `SELECT`, and a session must print nothing more than
//!   the page shows by its end (`quit`, a new session on its port, or the
//!   end of the page). `help` is answered by
//!   `redis-cli` itself, which prints it only with the next reply: its
//!   lines are read then.
//! * `$ target/debug/BIN --port PORT ARGS &` and `$ redis-server --port PORT
//!   ARGS &` start a server in the background (through the harness; starting
//!   again on a port whose server has exited restarts it in the same
//!   directory). The lines after it are lines of that server's log, without
//!   the pid and time in front, and must show up in it in that order. A
//!   server started with `--replicaof` is waited for until its link to the
//!   master is up, as a person waits for the log to say so.
//!
//! Pages use the ports 6380 (the page's server), 6381 and 6382 (replicas)
//! and 6390 (a real Redis), the README 6379; the test maps each to the port
//! the harness gave that server, in commands and in expected output (a
//! `redis-cli` without `-p` goes to the server standing on 6379, if any).
//! `/tmp/redis-data` (the `--dir` of chapter 7) is mapped to the directory
//! of the page's server, and `target/debug/` to the directory cargo builds
//! into.
//!
//! # Output that changes from run to run
//!
//! The page shows one run's values, and these match any value of the same
//! shape (so the page stays readable, and a value of the wrong kind still
//! fails):
//!
//! * 40 hex digits (a run id, a replication id) match any 40 hex digits;
//! * in the output of the clock commands [`CLOCK_COMMANDS`] (`PTTL`,
//!   `EXPIRETIME`, ...), every number matches any number with as many
//!   digits;
//! * a number right after one of [`CLOCK_PREFIXES`] (`ctime = '`, `lag=`,
//!   `loaded from disk: `, ...) matches any number with as many digits.
//!
//! Everything else must match exactly (trailing spaces and colours aside).
//!
//! # Annotations
//!
//! One-line HTML comments right before a block (blank lines may separate
//! them) say how to replay it; a reader sees none of them:
//!
//! * `<!-- not replayed: REASON -->`: the block is not a session that can be
//!   replayed (an `strace`, a hex dump whose bytes vary, a recipe that loads
//!   a million keys...). The reason must be given. Every ```` ```console ````
//!   block is either replayed or marked so.
//! * `<!-- replay: fresh ARGS -->`: stop the page's servers and start a new
//!   server on 6380 (6379 in the README), with ARGS, in an empty directory.
//! * `<!-- replay: $ COMMAND -->`: run COMMAND first, as if typed, its output
//!   not shown (a replica to start, keys to load).
//! * `<!-- replay: paced -->`: before each command of the block, wait until
//!   every replica has acknowledged everything the page's server sent, as
//!   it has when a person types the commands (replicas acknowledge once a
//!   second); without it the replay would be faster than any reader.

mod common;

use common::{poll_until, Client, Server};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Commands whose replies are clock readings: their numbers match by digit
/// count only.
const CLOCK_COMMANDS: &[&str] = &["PTTL", "EXPIRETIME", "PEXPIRETIME", "TIME", "LASTSAVE"];

/// Text after which a number is a time, a duration or a lag: it matches by
/// digit count only.
const CLOCK_PREFIXES: &[&str] = &["ctime = '", "lag=", "loaded from disk: "];

/// The ports pages use, each standing for a server the test starts.
const PAGE_PORTS: &[u16] = &[DEFAULT_PORT, 6380, 6381, 6382, 6390];

/// Redis's default port: the README's server, and where a `redis-cli`
/// without `-p` connects.
const DEFAULT_PORT: u16 = 6379;

/// The binary of the final server in `src/`.
const FINAL_SERVER: &str = "redis-from-scratch";

/// How the slug of the final server's page ends (its number may change).
const FINAL_SERVER_PAGE: &str = "-the-real-server";

/// The data directory of chapter 7's examples.
const PAGE_DATA_DIR: &str = "/tmp/redis-data";

/// How long one command (or one reply, or a log line) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Reading a page
// ---------------------------------------------------------------------------

/// How a block is to be replayed, from the comments before it.
#[derive(Debug, Default)]
struct Notes {
    /// `not replayed: REASON`
    skip: Option<String>,
    /// `replay: fresh ARGS`
    fresh: Option<String>,
    /// `replay: $ COMMAND`, in order
    setup: Vec<String>,
    /// `replay: paced`
    paced: bool,
}

/// One ```console block of a page.
#[derive(Debug)]
struct Block {
    /// The line of the opening fence (1-based), for messages.
    line: usize,
    /// The lines inside the fences.
    lines: Vec<String>,
    notes: Notes,
}

/// The replayable parts of a page: its console blocks and its `raw` function.
struct Page {
    path: PathBuf,
    blocks: Vec<Block>,
    raw_function: Option<String>,
}

fn read_page(path: &Path) -> Page {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut raw_function = None;
    let mut notes = Notes::default();
    let mut fence: Option<(usize, String, Vec<String>)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some((start, kind, lines)) = &mut fence {
            if line.trim_start().starts_with("```") {
                let (start, kind, lines) = (*start, kind.clone(), std::mem::take(lines));
                fence = None;
                if kind == "console" {
                    let notes = std::mem::take(&mut notes);
                    blocks.push(Block {
                        line: start,
                        lines,
                        notes,
                    });
                } else {
                    if kind == "sh" && lines.iter().any(|l| l.starts_with("raw() {")) {
                        raw_function = Some(lines.join("\n"));
                    }
                    notes = Notes::default();
                }
            } else {
                lines.push(line.to_string());
            }
            continue;
        }
        let trimmed = line.trim();
        if let Some(kind) = trimmed.strip_prefix("```") {
            let kind = kind.trim().to_string();
            let noted = notes.skip.is_some()
                || notes.fresh.is_some()
                || notes.paced
                || !notes.setup.is_empty();
            assert!(
                kind == "console" || !noted,
                "{}:{number}: a replay note before a ```{kind} block, which is never replayed",
                path.display()
            );
            fence = Some((number, kind, Vec::new()));
        } else if let Some(comment) = trimmed
            .strip_prefix("<!--")
            .and_then(|rest| rest.strip_suffix("-->"))
        {
            let comment = comment.trim();
            if let Some(reason) = comment.strip_prefix("not replayed:") {
                assert!(
                    !reason.trim().is_empty(),
                    "{}:{number}: `not replayed:` needs a reason",
                    path.display()
                );
                notes.skip = Some(reason.trim().to_string());
            } else if let Some(directive) = comment.strip_prefix("replay:") {
                let directive = directive.trim();
                if let Some(command) = directive.strip_prefix("$ ") {
                    notes.setup.push(command.to_string());
                } else if directive == "paced" {
                    notes.paced = true;
                } else if directive == "fresh" || directive.starts_with("fresh ") {
                    notes.fresh = Some(directive["fresh".len()..].trim().to_string());
                } else {
                    panic!(
                        "{}:{number}: unknown replay directive `{directive}`",
                        path.display()
                    );
                }
            }
        } else if !trimmed.is_empty() {
            notes = Notes::default();
        }
    }
    Page {
        path: path.to_path_buf(),
        blocks,
        raw_function,
    }
}

/// One step of a block: something typed, and the lines the page shows after it.
#[derive(Debug)]
struct Step {
    /// The line in the page (1-based).
    line: usize,
    input: Input,
    expected: Vec<String>,
}

#[derive(Debug)]
enum Input {
    /// `$ COMMAND`
    Shell(String),
    /// `127.0.0.1:PORT[DB](TX)> COMMAND`: `db` is 0 when the prompt shows
    /// no `[DB]`, `tx` says whether it shows `(TX)`.
    Prompt {
        port: u16,
        db: u32,
        tx: bool,
        command: String,
    },
}

fn steps_of(page: &Page, block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (offset, line) in block.lines.iter().enumerate() {
        let number = block.line + 1 + offset;
        let input = if let Some(command) = line.strip_prefix("$ ") {
            Some(Input::Shell(command.trim().to_string()))
        } else if let Some(rest) = line.strip_prefix("127.0.0.1:") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let mut after = &rest[digits.len()..];
            // redis-cli shows a database other than 0 as `[DB]`.
            let mut db = 0;
            if let Some((shown, tail)) = after
                .strip_prefix('[')
                .and_then(|inner| inner.split_once(']'))
            {
                db = shown.parse().unwrap_or_else(|_| {
                    panic!("{}:{number}: bad database in `{line}`", page.path.display())
                });
                after = tail;
            }
            let (tx, command) = if let Some(command) = after.strip_prefix("(TX)> ") {
                (true, command)
            } else if let Some(command) = after.strip_prefix("> ") {
                (false, command)
            } else {
                panic!(
                    "{}:{number}: cannot read the prompt `{line}`",
                    page.path.display()
                );
            };
            let port = digits
                .parse()
                .unwrap_or_else(|_| panic!("{}:{number}: bad port", page.path.display()));
            Some(Input::Prompt {
                port,
                db,
                tx,
                command: command.to_string(),
            })
        } else {
            None
        };
        match input {
            Some(input) => steps.push(Step {
                line: number,
                input,
                expected: Vec::new(),
            }),
            None => match steps.last_mut() {
                Some(step) => step.expected.push(line.clone()),
                None => panic!(
                    "{}:{number}: output before any command: `{line}`",
                    page.path.display()
                ),
            },
        }
    }
    steps
}

// ---------------------------------------------------------------------------
// Comparing output
// ---------------------------------------------------------------------------

/// Removes terminal colour codes (`ESC [ ... m`).
fn strip_colours(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes the `pid:role day month year time ` prefix of a Redis log line
/// (`3309:M 28 Nov 2026 06:25:41.992 * Listening...` -> `* Listening...`).
fn strip_log_prefix(line: &str) -> &str {
    let Some((head, rest)) = line.split_once(':') else {
        return line;
    };
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit()) {
        return line;
    }
    let fields: Vec<&str> = rest.splitn(6, ' ').collect();
    let looks_right = fields.len() == 6
        && fields[0].len() == 1
        && fields[1].bytes().all(|b| b.is_ascii_digit())
        && fields[2].len() == 3
        && fields[3].bytes().all(|b| b.is_ascii_digit())
        && fields[4].contains(':');
    if looks_right {
        fields[5]
    } else {
        line
    }
}

/// The lines of a program's output as they would be compared: colours and
/// log prefixes removed, trailing spaces and trailing empty lines dropped.
fn normalize(output: &str) -> Vec<String> {
    let mut lines: Vec<String> = output
        .lines()
        .map(|line| {
            strip_log_prefix(&strip_colours(line))
                .trim_end()
                .to_string()
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Whether `actual` matches the page's `expected` line, by the rules at the
/// top of this file. `clock` says the line is the output of a clock command.
fn line_matches(expected: &str, actual: &str, clock: bool) -> bool {
    let (e, a) = (expected.as_bytes(), actual.as_bytes());
    let run = |bytes: &[u8], at: usize, what: fn(&u8) -> bool| {
        bytes[at..].iter().take_while(|b| what(b)).count()
    };
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let (mut i, mut j) = (0, 0);
    while i < e.len() {
        let at_word_start = i == 0 || !e[i - 1].is_ascii_alphanumeric();
        // A 40-hex-digit id.
        if at_word_start
            && run(e, i, hex) == 40
            && (i + 40 == e.len() || !e[i + 40].is_ascii_alphanumeric())
        {
            if j > a.len() || run(a, j, hex) != 40 {
                return false;
            }
            i += 40;
            j += 40;
            continue;
        }
        // A number that may vary.
        if e[i].is_ascii_digit() && (i == 0 || !e[i - 1].is_ascii_digit()) {
            let loose = clock || CLOCK_PREFIXES.iter().any(|p| expected[..i].ends_with(p));
            if loose {
                // Digits, and a decimal point with more digits after it:
                // the same shape on both sides.
                let shape = |bytes: &[u8], at: usize| {
                    let whole = run(bytes, at, u8::is_ascii_digit);
                    let point = bytes.get(at + whole) == Some(&b'.');
                    let fraction = if point {
                        run(bytes, at + whole + 1, u8::is_ascii_digit)
                    } else {
                        0
                    };
                    let len = if fraction > 0 {
                        whole + 1 + fraction
                    } else {
                        whole
                    };
                    (len, whole, fraction)
                };
                let (len, whole, fraction) = shape(e, i);
                if j >= a.len() || shape(a, j) != (len, whole, fraction) {
                    return false;
                }
                i += len;
                j += len;
                continue;
            }
        }
        if j >= a.len() || e[i] != a[j] {
            return false;
        }
        i += 1;
        j += 1;
    }
    j == a.len()
}

fn is_clock_command(command: &str) -> bool {
    // The first word that is not an option of redis-cli or its value.
    let words = split_words(command);
    let mut iter = words.iter().skip_while(|w| *w != "redis-cli");
    let mut name = None;
    if words.first().is_some_and(|w| w != "redis-cli") && !words.iter().any(|w| w == "redis-cli") {
        name = words.first().cloned();
    } else {
        iter.next();
        while let Some(word) = iter.next() {
            if word == "-p" || word == "-h" || word == "-a" || word == "-n" {
                iter.next();
            } else if !word.starts_with('-') {
                name = Some(word.clone());
                break;
            }
        }
    }
    name.is_some_and(|name| CLOCK_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(&name)))
}

/// Whether the options after `redis-cli -p PORT` leave it interactive: only
/// `-a PASSWORD`, `--no-auth-warning` and `-n DB`, no command. Returns the
/// database the session starts in, or `None` for a command line.
fn session_options(options: &[String]) -> Option<u32> {
    let mut db = 0;
    let mut words = options.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-a" => {
                words.next()?;
            }
            "-n" => db = words.next()?.parse().ok()?,
            "--no-auth-warning" => {}
            _ => return None,
        }
    }
    Some(db)
}

/// Compares a step's output with the page, panicking with both on a mismatch.
#[track_caller]
fn check_output(where_: &str, typed: &str, expected: &[String], actual: &[String], clock: bool) {
    let mut expected_trimmed: Vec<String> =
        expected.iter().map(|l| l.trim_end().to_string()).collect();
    while expected_trimmed.last().is_some_and(|l| l.is_empty()) {
        expected_trimmed.pop();
    }
    let same = expected_trimmed.len() == actual.len()
        && expected_trimmed
            .iter()
            .zip(actual)
            .all(|(e, a)| line_matches(e, a, clock));
    if !same {
        panic!(
            "{where_}: `{typed}` printed something else than the page shows\n--- page:\n{}\n--- replay:\n{}\n---",
            expected_trimmed.join("\n"),
            actual.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Shell words
// ---------------------------------------------------------------------------

/// Splits a command line into words the way a POSIX shell does for the
/// simple cases pages use: spaces, '...', "..." and backslashes.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Replaces `from` by `to` in `text` where it is a whole number (not part of
/// a longer run of digits).
fn replace_number(text: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Replaying
// ---------------------------------------------------------------------------

/// One server a page started, under the port the page calls it by.
struct PageServer {
    server: Server,
    /// Whether it was started as a replica (`--replicaof`).
    replica: bool,
}

/// An interactive `redis-cli`: its input, and its output lines as they come.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Whether `MULTI` is open (the prompt shows `(TX)`).
    tx: bool,
    /// The database redis-cli believes selected (the prompt shows `[DB]`).
    db: u32,
    /// `db` when `MULTI` was typed, restored if the transaction is dropped.
    db_before_multi: u32,
    /// Steps typed whose output is not read yet: `help` is answered by
    /// redis-cli itself, which flushes it only with the next reply.
    unread: Vec<Unread>,
}

/// What a prompt shows besides the port: `[DB]` and `(TX)`.
#[derive(Clone, Copy)]
struct Shown {
    db: u32,
    tx: bool,
}

/// A typed line whose output is still to be read and compared.
struct Unread {
    at: String,
    command: String,
    expected: Vec<String>,
    clock: bool,
}

impl Session {
    /// Starts `redis-cli -p PORT OPTIONS` (the options of
    /// [`session_options`]), `db` being the one `-n` selects.
    fn start(port: u16, options: &[String], db: u32, dir: &Path) -> Session {
        let mut child = Command::new("redis-cli")
            .args(["--no-raw", "-p", &port.to_string()])
            .args(options)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let send = send.clone();
            thread::Builder::new()
                .name("redis-cli-output".to_string())
                .spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        if send.send(line).is_err() {
                            break;
                        }
                    }
                })
                .expect("cannot spawn a thread");
        }
        let stdin = child.stdin.take();
        Session {
            child,
            stdin,
            lines,
            tx: false,
            db,
            db_before_multi: db,
            unread: Vec::new(),
        }
    }

    /// Types `command` (and Enter).
    fn type_line(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the session is open");
        writeln!(stdin, "{command}").expect("cannot write to redis-cli");
        stdin.flush().expect("cannot write to redis-cli");
    }

    /// Reads `count` lines of output (colours and trailing spaces removed),
    /// or returns those that came before the deadline.
    fn read_lines(&mut self, count: usize) -> Result<Vec<String>, Vec<String>> {
        let mut got = Vec::new();
        let deadline = Instant::now() + STEP_TIMEOUT;
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(strip_colours(&line).trim_end().to_string()),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return Err(got),
            }
        }
        Ok(got)
    }

    /// Ends the session (end of input, as Ctrl-D) and returns what it still printed.
    fn close(mut self) -> Vec<String> {
        drop(self.stdin.take());
        for unread in std::mem::take(&mut self.unread) {
            read_and_compare(&mut self, &unread);
        }
        let mut rest = Vec::new();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("redis-cli did not exit at the end of its input");
                }
            }
        }
        let _ = self.child.wait();
        rest
    }
}

/// The state of one page's replay.
struct Replay<'a> {
    page: &'a Page,
    bin: String,
    /// The port the page's own server stands on: 6380 on a chapter's page,
    /// Redis's default 6379 in the README (which starts `cargo run`).
    home: u16,
    servers: BTreeMap<u16, PageServer>,
    sessions: BTreeMap<u16, Session>,
    /// Servers replaced by `fresh`, kept until the end (their directory too).
    retired: Vec<PageServer>,
}

impl<'a> Replay<'a> {
    fn new(page: &'a Page, bin: &str, home: u16) -> Replay<'a> {
        let mut replay = Replay {
            page,
            bin: bin.to_string(),
            home,
            servers: BTreeMap::new(),
            sessions: BTreeMap::new(),
            retired: Vec::new(),
        };
        replay.fresh("");
        replay
    }

    fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.page.path.display())
    }

    /// Stops everything and starts a new server on the home port with `args`.
    fn fresh(&mut self, args: &str) {
        self.close_sessions();
        let old: Vec<PageServer> = std::mem::take(&mut self.servers).into_values().collect();
        for mut old in old {
            old.server.kill();
            self.retired.push(old);
        }
        let args = split_words(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start_with(&self.bin, &args);
        self.servers.insert(
            self.home,
            PageServer {
                server,
                replica: false,
            },
        );
    }

    fn close_sessions(&mut self) {
        for (port, session) in std::mem::take(&mut self.sessions) {
            let rest = session.close();
            let rest: Vec<String> = rest.into_iter().filter(|l| !l.trim().is_empty()).collect();
            assert!(
                rest.is_empty(),
                "{}: the session on {port} printed more than the page shows:\n{}",
                self.page.path.display(),
                rest.join("\n")
            );
        }
    }

    /// The directory of the server on the home port: the working directory
    /// of commands, and what `/tmp/redis-data` stands for.
    fn data_dir(&self) -> PathBuf {
        self.servers
            .get(&self.home)
            .map(|s| s.server.dir().to_path_buf())
            .or_else(|| self.retired.last().map(|s| s.server.dir().to_path_buf()))
            .expect("a server on the home port")
    }

    /// `text` with the page's ports, data directory and build directory
    /// replaced by the real ones.
    fn map(&self, text: &str, line: usize) -> String {
        let mut text = text.to_string();
        for port in PAGE_PORTS {
            let page_port = port.to_string();
            if let Some(server) = self.servers.get(port) {
                text = replace_number(&text, &page_port, &server.server.port().to_string());
            } else if replace_number(&text, &page_port, "") != text {
                panic!(
                    "{}: uses port {port}, but no server was started there (add a `replay:` note?)",
                    self.at(line)
                );
            }
        }
        let data_dir = self.data_dir();
        text = text.replace(PAGE_DATA_DIR, &data_dir.to_string_lossy());
        text.replace("target/debug/", &format!("{}/", build_dir().display()))
    }

    fn replay(&mut self) {
        let page = self.page;
        let mut replayed = 0;
        for block in &page.blocks {
            if block.notes.skip.is_some() {
                continue;
            }
            replayed += 1;
            if let Some(args) = &block.notes.fresh {
                self.fresh(args);
            }
            for command in &block.notes.setup {
                self.shell(block.line, command, None);
            }
            for step in steps_of(page, block) {
                if block.notes.paced {
                    self.wait_for_replicas(step.line);
                }
                match &step.input {
                    Input::Shell(command) => self.shell(step.line, command, Some(&step.expected)),
                    Input::Prompt {
                        port,
                        db,
                        tx,
                        command,
                    } => {
                        let shown = Shown { db: *db, tx: *tx };
                        self.prompt(step.line, *port, shown, command, &step.expected)
                    }
                }
            }
        }
        self.close_sessions();
        assert!(replayed > 0, "{}: no block replayed", page.path.display());
    }

    /// Runs a `$` line. `expected` is `None` for setup commands.
    fn shell(&mut self, line: usize, command: &str, expected: Option<&[String]>) {
        let words = split_words(command);
        let first = words.first().map(String::as_str).unwrap_or_default();
        let interactive = (words.len() >= 3 && first == "redis-cli" && words[1] == "-p")
            .then(|| session_options(&words[3..]))
            .flatten();
        if let Some(db) = interactive {
            let port: u16 = words[2]
                .parse()
                .unwrap_or_else(|_| panic!("{}: bad port", self.at(line)));
            let real = self.map(&words[2], line);
            if let Some(old) = self.sessions.remove(&port) {
                let rest = old.close();
                assert!(
                    rest.iter().all(|l| l.trim().is_empty()),
                    "{}: the previous session printed more than the page shows:\n{}",
                    self.at(line),
                    rest.join("\n")
                );
            }
            let real: u16 = real.parse().expect("a mapped port");
            let session = Session::start(real, &words[3..], db, &self.data_dir());
            self.sessions.insert(port, session);
            if let Some(expected) = expected {
                check_output(&self.at(line), command, expected, &[], false);
            }
            return;
        }
        if command.ends_with('&') {
            assert!(
                first.starts_with("target/debug/") || first == "redis-server",
                "{}: only servers can be started in the background here; \
                 mark the block `not replayed` or start it in a `replay:` note",
                self.at(line)
            );
            self.start_server(line, command, expected.unwrap_or_default());
            return;
        }
        let mapped = self.map(command, line);
        // A `redis-cli` without `-p` talks to Redis's default port 6379: to
        // the server standing for it, if any (a later `-p` wins).
        let default_port = self
            .servers
            .get(&DEFAULT_PORT)
            .map(|s| format!(" -p {}", s.server.port()))
            .unwrap_or_default();
        let mut script = format!(
            "exec 2>&1\nredis-cli() {{ command redis-cli --no-raw{default_port} \"$@\"; }}\n"
        );
        if let Some(raw) = &self.page.raw_function {
            script.push_str(raw);
            script.push('\n');
        }
        script.push_str(&mapped);
        script.push('\n');
        let dir = if command.contains("chapters/") {
            Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
        } else {
            self.data_dir()
        };
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run bash: {e}"));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let status = poll_until(STEP_TIMEOUT, || child.try_wait().expect("try_wait failed"));
        let output = reader.join().expect("the reader thread");
        let output = String::from_utf8_lossy(&output);
        match expected {
            Some(expected) => {
                let actual = normalize(&output);
                let expected: Vec<String> = expected.iter().map(|l| self.map_output(l)).collect();
                check_output(
                    &self.at(line),
                    command,
                    &expected,
                    &actual,
                    is_clock_command(command),
                );
            }
            None => assert!(
                status.success(),
                "{}: setup `{command}` failed ({status}):\n{output}",
                self.at(line)
            ),
        }
    }

    /// A line of expected output with the page's ports replaced.
    fn map_output(&self, line: &str) -> String {
        let mut line = line.to_string();
        for (port, server) in &self.servers {
            line = replace_number(&line, &port.to_string(), &server.server.port().to_string());
        }
        line
    }

    /// `$ target/debug/BIN --port PORT ARGS &` or `$ redis-server ... &`.
    fn start_server(&mut self, line: usize, command: &str, expected: &[String]) {
        let words = split_words(command.trim_end_matches('&'));
        let program = words[0].clone();
        let mut port = None;
        let mut args = Vec::new();
        let mut rest = words[1..].iter();
        while let Some(word) = rest.next() {
            match word.as_str() {
                "--port" => port = rest.next().and_then(|p| p.parse::<u16>().ok()),
                // The harness runs each server in a directory of its own,
                // which is what the page's data directory stands for.
                "--dir" if program != "redis-server" => {
                    let dir = rest.next().cloned().unwrap_or_default();
                    assert_eq!(dir, PAGE_DATA_DIR, "{}: an unknown --dir", self.at(line));
                }
                _ => args.push(self.map(word, line)),
            }
        }
        let port = port.unwrap_or_else(|| panic!("{}: a server needs --port", self.at(line)));
        let replica = args.iter().any(|a| a == "--replicaof");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log_start;
        if let Some(existing) = self.servers.get_mut(&port) {
            assert!(
                !existing.server.is_running(),
                "{}: starts a server on {port}, but one still runs there",
                self.at(line)
            );
            log_start = existing.server.log().len();
            existing.server.restart_with(&args);
        } else {
            let server = match program.strip_prefix("target/debug/") {
                Some(bin) => Server::start_with(bin, &args),
                None => Server::start_program(&program, &args),
            };
            log_start = 0;
            self.servers.insert(port, PageServer { server, replica });
        }
        let expected: Vec<String> = expected.iter().map(|l| self.map_output(l)).collect();
        let server = &self.servers[&port].server;
        if replica {
            // A person starts the next thing once the replica's log says it
            // synced; so does the replay, which keeps the replicas in the
            // order they were started (INFO and ROLE list them so).
            let mut client = server.client();
            poll_until(STEP_TIMEOUT, || {
                (client
                    .info_field("replication", "master_link_status")
                    .as_deref()
                    == Some("up"))
                .then_some(())
            });
        }
        let found = wait_for_log_lines(server, log_start, &expected);
        if !found {
            panic!(
                "{}: `{command}`: the log does not show the page's lines in order\n--- page:\n{}\n--- log:\n{}\n---",
                self.at(line),
                expected.join("\n"),
                normalize(&server.log()[log_start..]).join("\n")
            );
        }
    }

    /// A `127.0.0.1:PORT> COMMAND` line.
    fn prompt(&mut self, line: usize, port: u16, shown: Shown, command: &str, expected: &[String]) {
        let at = self.at(line);
        if !self.sessions.contains_key(&port) {
            panic!("{at}: a prompt for {port}, but no `$ redis-cli -p {port}` session is open");
        }
        let mapped = self.map(command, line);
        let expected: Vec<String> = expected.iter().map(|l| self.map_output(l)).collect();
        let session = self.sessions.get_mut(&port).expect("checked above");
        assert_eq!(
            shown.tx,
            session.tx,
            "{at}: the prompt should {}show (TX)",
            if session.tx { "" } else { "not " }
        );
        assert_eq!(
            shown.db, session.db,
            "{at}: the prompt should show database {} (`[N]`, none for 0)",
            session.db
        );
        let name = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if name == "QUIT" || name == "EXIT" {
            let session = self.sessions.remove(&port).expect("checked above");
            let rest = session.close();
            check_output(&at, command, &expected, &normalize(&rest.join("\n")), false);
            return;
        }
        session.type_line(&mapped);
        session.unread.push(Unread {
            at,
            command: command.to_string(),
            expected,
            clock: CLOCK_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(&name)),
        });
        if name == "HELP" {
            return; // its output comes with the next command's
        }
        let mut last = Vec::new();
        for unread in std::mem::take(&mut session.unread) {
            last = read_and_compare(session, &unread);
        }
        // redis-cli's own idea of an open transaction and of the selected
        // database, which its prompt shows: it follows a SELECT that did not
        // fail (queued in MULTI too), and goes back to the database MULTI
        // saw when DISCARD or a failed EXEC drops the queue.
        let first = last.first().map(String::as_str).unwrap_or_default();
        let failed = first.starts_with("(error)");
        let words: Vec<&str> = command.split_whitespace().collect();
        match name.as_str() {
            "MULTI" if first == "OK" => {
                session.tx = true;
                session.db_before_multi = session.db;
            }
            "SELECT" if words.len() == 2 && !failed => {
                session.db = words[1].parse().unwrap_or(session.db);
            }
            "EXEC" => {
                session.tx = false;
                if failed || first == "(nil)" {
                    session.db = session.db_before_multi;
                }
            }
            "DISCARD" => {
                session.tx = false;
                session.db = session.db_before_multi;
            }
            _ => {}
        }
    }

    /// Waits until every replica of the server on the home port is online
    /// and has acknowledged all of the master's offset.
    fn wait_for_replicas(&self, line: usize) {
        let replicas = self.servers.values().filter(|s| s.replica).count();
        let master = &self.servers.get(&self.home).expect("a master").server;
        let mut client = Client::connect(master.port());
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let reply = client.cmd(&["INFO", "replication"]);
            let info = String::from_utf8_lossy(reply.as_bulk()).into_owned();
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_string())
            };
            let offset = field("master_repl_offset").unwrap_or_default();
            let caught_up = (0..replicas).all(|n| {
                field(&format!("slave{n}")).is_some_and(|v| {
                    v.contains("state=online") && v.contains(&format!("offset={offset},"))
                })
            });
            if caught_up && field("connected_slaves") == Some(replicas.to_string()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the replicas did not catch up:\n{info}",
                self.at(line)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads the output of one typed line and compares it with the page (line
/// for line: empty lines count here, since the session goes on and `help`
/// ends with one). Returns the output.
fn read_and_compare(session: &mut Session, unread: &Unread) -> Vec<String> {
    let Unread {
        at,
        command,
        expected,
        clock,
    } = unread;
    let count = expected.len();
    let actual = match session.read_lines(count) {
        Ok(lines) => lines,
        Err(partial) => panic!(
            "{at}: `{command}`: expected {count} lines, redis-cli printed only these:\n{}",
            partial.join("\n")
        ),
    };
    let same = actual
        .iter()
        .zip(expected)
        .all(|(a, e)| line_matches(e.trim_end(), a, *clock));
    if !same {
        panic!(
            "{at}: `{command}` printed something else than the page shows\n--- page:\n{}\n--- replay:\n{}\n---",
            expected.join("\n"),
            actual.join("\n")
        );
    }
    actual
}

/// Polls `server`'s log (from byte `from`) until `expected` shows up in it
/// in order, one log line each; false if it has not by the deadline.
fn wait_for_log_lines(server: &Server, from: usize, expected: &[String]) -> bool {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let log = server.log();
        let lines = normalize(log.get(from..).unwrap_or_default());
        let mut wanted = expected.iter().peekable();
        for line in &lines {
            if wanted
                .peek()
                .is_some_and(|e| line_matches(e.trim_end(), line, false))
            {
                wanted.next();
            }
        }
        if wanted.peek().is_none() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The directory cargo builds the binaries into (`target/debug`).
fn build_dir() -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin("ch01-tcp-echo");
    bin.parent().expect("a build directory").to_path_buf()
}

/// The binary a page is replayed against: `ch<slug>` for a chapter's page,
/// the final server for the page whose slug ends in [`FINAL_SERVER_PAGE`].
fn binary_of(slug: &str) -> String {
    if slug.ends_with(FINAL_SERVER_PAGE) {
        FINAL_SERVER.to_string()
    } else {
        format!("ch{slug}")
    }
}

/// Replays the page `docs/<slug>.md` against [`binary_of`] the slug.
fn replay_page(slug: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut page = read_page(&root.join("docs").join(format!("{slug}.md")));
    if page.raw_function.is_none() {
        // A later page uses the `raw` function an earlier page defined.
        let mut earlier: Vec<PathBuf> = fs::read_dir(root.join("docs"))
            .expect("docs/")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().as_ref() < slug)
            })
            .collect();
        earlier.sort();
        page.raw_function = earlier
            .iter()
            .rev()
            .find_map(|path| read_page(path).raw_function);
    }
    replay(&page, &binary_of(slug), 6380);
}

/// Replays `page` against `bin`, whose first server stands on port `home`.
fn replay(page: &Page, bin: &str, home: u16) {
    skip_if_external!();
    for tool in [
        "redis-cli",
        "redis-server",
        "redis-check-rdb",
        "python3",
        "bash",
    ] {
        if common::program_path(tool).is_none() {
            skip_for_missing_tool!(format!("{tool} is not on PATH"));
        }
    }
    Replay::new(page, bin, home).replay();
}

/// The README's sessions talk to the final server on Redis's default port,
/// as `cargo run --release` starts it.
#[test]
fn readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = read_page(&root.join("README.md"));
    replay(&page, FINAL_SERVER, DEFAULT_PORT);
}

macro_rules! pages {
    ($($name:ident => $slug:literal,)*) => {
        $(
            #[test]
            fn $name() {
                replay_page($slug);
            }
        )*

        /// Every chapter's page, and every numbered page (the final
        /// server's among them), is replayed: a new one needs a line above.
        #[test]
        fn every_chapter_page_is_listed() {
            let listed = [$($slug),*];
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            for entry in fs::read_dir(root.join("chapters")).expect("chapters/").flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(listed.contains(&name.as_str()), "docs/{name}.md is not replayed");
            }
            for entry in fs::read_dir(root.join("docs")).expect("docs/").flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(slug) = name.strip_suffix(".md") else { continue };
                if slug.starts_with(|c: char| c.is_ascii_digit()) {
                    assert!(listed.contains(&slug), "docs/{name} is not replayed");
                }
            }
            assert!(
                listed.iter().any(|slug| slug.ends_with(FINAL_SERVER_PAGE)),
                "the final server's page is not replayed"
            );
        }
    };
}

pages! {
    ch01_tcp_echo => "01-tcp-echo",
    ch02_resp => "02-resp",
    ch03_get_set => "03-get-set",
    ch04_expiry => "04-expiry",
    ch05_replication => "05-replication",
    ch06_transactions => "06-transactions",
    ch07_persistence => "07-persistence",
    ch08_aof => "08-aof",
    the_real_server => "14-the-real-server",
}

/// The rules of matching, on their own.
#[test]
fn varying_values_match_by_shape_only() {
    let id = "ab1b338bedb332fb3510ddab65104ebcf61aca27";
    let other = "0000000000000000000000000000000000000000";
    assert!(line_matches(
        &format!("master_replid:{id}"),
        &format!("master_replid:{other}"),
        false
    ));
    assert!(!line_matches(
        &format!("master_replid:{id}"),
        "master_replid:abc",
        false
    ));
    assert!(line_matches("(integer) 99980", "(integer) 99123", true));
    assert!(!line_matches("(integer) 99980", "(integer) 100000", true));
    assert!(!line_matches("(integer) 99980", "(integer) 99123", false));
    assert!(line_matches("offset=34,lag=0", "offset=34,lag=1", false));
    assert!(!line_matches("offset=34,lag=0", "offset=71,lag=0", false));
    assert!(line_matches(
        "* DB loaded from disk: 0.000 seconds",
        "* DB loaded from disk: 0.012 seconds",
        false
    ));
    assert!(!line_matches(
        "* DB loaded from disk: 0.000 seconds",
        "* DB loaded from disk: 10.012 seconds",
        false
    ));
    assert!(line_matches(
        "[offset 53] AUX FIELD ctime = '1795848479'",
        "[offset 53] AUX FIELD ctime = '1796000000'",
        false
    ));
    assert_eq!(
        strip_log_prefix("3309:M 28 Nov 2026 06:25:41.992 * Ready"),
        "* Ready"
    );
    assert_eq!(strip_log_prefix("b'+PONG\\r\\n'"), "b'+PONG\\r\\n'");
    assert_eq!(
        split_words("a 'b c' \"d\\\"e\" ''"),
        ["a", "b c", "d\"e", ""]
    );
    assert_eq!(
        replace_number("-p 6380 x16380", "6380", "21000"),
        "-p 21000 x16380"
    );
}

/// Which `redis-cli -p PORT ...` lines open an interactive session.
#[test]
fn interactive_sessions_are_told_from_commands() {
    let options = |line: &str| session_options(&split_words(line));
    assert_eq!(options(""), Some(0));
    assert_eq!(options("-a secret --no-auth-warning"), Some(0));
    assert_eq!(options("-n 3 -a secret"), Some(3));
    assert_eq!(options("-a"), None);
    assert_eq!(options("GET k"), None);
    assert_eq!(options("-a secret PING"), None);
}

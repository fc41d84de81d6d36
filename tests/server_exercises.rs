//! The graders of the exercises on the final server's page,
//! `docs/14-the-real-server.md`. Each is an ignored test that fails on the
//! final server as shipped and passes once the exercise is done; the real
//! Redis 7.0 passes them all, and `.ci/run exercises` checks both halves.
//!
//! ```text
//! cargo test --test server_exercises -- --ignored exercise_1
//! REDIS_TEST_SERVER=redis-server cargo test --test server_exercises -- --ignored
//! ```

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Client, Reply, Server};

/// The final server's binary.
const BIN: &str = "redis-from-scratch";

/// A started final server (or `REDIS_TEST_SERVER`), with no save points.
fn start() -> Server {
    Server::start_with(BIN, &["--save", ""])
}

fn bulk(payload: &str) -> String {
    format!("${}\r\n{payload}\r\n", payload.len())
}

/// The reply's bytes as text, for replies made of ASCII.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Exercise 1: LCS
// ---------------------------------------------------------------------------

/// Exercise 1: `LCS`, the longest common subsequence of two strings, with
/// `LEN`, `IDX`, `MINMATCHLEN` and `WITHMATCHLEN`, byte for byte as Redis
/// 7.0 answers (the example of Redis's own documentation).
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_1_lcs() {
    let server = start();
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "key1", "ohmytext"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", "key2", "mynewtext"]), Reply::ok());

    assert_eq!(text(c.cmd_raw(&["LCS", "key1", "key2"])), bulk("mytext"));
    assert_eq!(text(c.cmd_raw(&["lcs", "key1", "key2", "LEN"])), ":6\r\n");
    // A missing key is an empty string.
    assert_eq!(text(c.cmd_raw(&["LCS", "key1", "nosuchkey"])), "$0\r\n\r\n");
    assert_eq!(
        text(c.cmd_raw(&["LCS", "key1", "key2", "IDX"])),
        "*4\r\n$7\r\nmatches\r\n*2\r\n\
         *2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
         *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n\
         $3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        text(c.cmd_raw(&[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "2",
            "WITHMATCHLEN"
        ])),
        "*4\r\n$7\r\nmatches\r\n*2\r\n\
         *3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n\
         *3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n\
         $3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        text(c.cmd_raw(&["LCS", "key1"])),
        "-ERR wrong number of arguments for 'lcs' command\r\n"
    );
}

// ---------------------------------------------------------------------------
// Exercise 2: CLIENT KILL
// ---------------------------------------------------------------------------

/// Exercise 2: `CLIENT KILL`, one client closing another's connection: by
/// `ID`, by `ADDR`, and in the old form `CLIENT KILL ip:port`, with Redis's
/// replies and errors. The victim's connection must really close.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_2_client_kill() {
    let server = start();
    let mut killer = server.client();
    let own_id = killer.cmd(&["CLIENT", "ID"]).as_int().to_string();

    let mut victim = server.client();
    let id = victim.cmd(&["CLIENT", "ID"]).as_int().to_string();
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "ID", &id])),
        ":1\r\n"
    );
    victim.expect_closed();
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "ID", &id])),
        ":0\r\n"
    );
    // SKIPME is on by default: the new form never kills the caller.
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "ID", &own_id])),
        ":0\r\n"
    );

    let mut victim = server.client();
    victim.cmd(&["PING"]);
    let addr = victim.local_addr().to_string();
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "ADDR", &addr])),
        ":1\r\n"
    );
    victim.expect_closed();

    let mut victim = server.client();
    victim.cmd(&["PING"]);
    let addr = victim.local_addr().to_string();
    assert_eq!(text(killer.cmd_raw(&["CLIENT", "KILL", &addr])), "+OK\r\n");
    victim.expect_closed();
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", &addr])),
        "-ERR No such client\r\n"
    );

    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "ID", "0"])),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        text(killer.cmd_raw(&["CLIENT", "KILL", "FOO", "bar"])),
        "-ERR syntax error\r\n"
    );
    // The killer itself is still there.
    assert_eq!(killer.cmd(&["PING"]), Reply::pong());
}

// ---------------------------------------------------------------------------
// Exercise 3: SCAN in O(COUNT)
// ---------------------------------------------------------------------------

/// Keys in the large database of exercise 3.
const LARGE: usize = 200_000;
/// Keys in the small one.
const SMALL: usize = 1_000;
/// SCAN calls timed in each database.
const CALLS: usize = 60;

/// Fills database `db` with `count` keys `k:0`, `k:1`, ... by MSETs of
/// a thousand.
fn fill(c: &mut Client, db: usize, count: usize) {
    assert_eq!(c.cmd(&["SELECT", &db.to_string()]), Reply::ok());
    for start in (0..count).step_by(1000) {
        let mut args = vec!["MSET".to_string()];
        for i in start..(start + 1000).min(count) {
            args.push(format!("k:{i}"));
            args.push("v".to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&args), Reply::ok());
    }
}

/// One `SCAN cursor COUNT 10`: the next cursor and the keys.
fn scan(c: &mut Client, cursor: &str) -> (String, Vec<Vec<u8>>) {
    let reply = c.cmd(&["SCAN", cursor, "COUNT", "10"]);
    let parts = reply.as_array();
    let next = String::from_utf8_lossy(parts[0].as_bulk()).into_owned();
    let keys = parts[1]
        .as_array()
        .iter()
        .map(|k| k.as_bulk().to_vec())
        .collect();
    (next, keys)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Exercise 3: `SCAN` whose cost per call does not grow with the database.
/// The calls of a `SCAN ... COUNT 10` over 200,000 keys may take at most
/// five times as long (median against median) as over 1,000 keys; the
/// calls are interleaved, so a busy machine slows both alike. The shipped
/// server hashes every key of the database on each call, a hundred times
/// more work over the large database. The small database must still be
/// scanned completely, every key exactly once at least.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_3_scan_costs_o_count() {
    let server = start();
    let mut large = server.client();
    fill(&mut large, 0, LARGE);
    let mut small = server.client();
    fill(&mut small, 1, SMALL);

    let (mut large_cursor, mut small_cursor) = ("0".to_string(), "0".to_string());
    let (mut large_times, mut small_times) = (Vec::new(), Vec::new());
    let mut large_keys = HashSet::new();
    for _ in 0..CALLS {
        let started = Instant::now();
        let (next, keys) = scan(&mut large, &large_cursor);
        large_times.push(started.elapsed());
        large_keys.extend(keys);
        large_cursor = next;

        let started = Instant::now();
        let (next, _) = scan(&mut small, &small_cursor);
        small_times.push(started.elapsed());
        small_cursor = if next == "0" { "0".to_string() } else { next };
    }
    assert!(
        large_keys.len() >= CALLS * 5,
        "{CALLS} calls of SCAN COUNT 10 returned only {} keys of {LARGE}",
        large_keys.len()
    );
    let (large_median, small_median) = (median(large_times), median(small_times));
    assert!(
        large_median <= small_median * 5,
        "a SCAN call takes {large_median:?} over {LARGE} keys, {small_median:?} over {SMALL}: \
         its cost grows with the database"
    );

    // Still a complete scan.
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    loop {
        let (next, keys) = scan(&mut small, &cursor);
        seen.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), SMALL, "a full SCAN of database 1 missed keys");
}

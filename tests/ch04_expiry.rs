//! Chapter 4: expiry. SET's options (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL,
//! GET), EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT), TTL,
//! PTTL, EXPIRETIME, PEXPIRETIME and PERSIST; lazy expiry on every lookup
//! and active expiry of keys nobody touches.
//!
//! Black-box tests. They must pass unchanged against a real Redis 7.0
//! (`REDIS_TEST_SERVER=redis-server cargo test --test ch04_expiry`), so every
//! reply Redis fixes is checked byte for byte. The facts behind them are in
//! `docs/redis-wire.md`, sections 2 and 5; the rest (repeated options, the
//! order in which errors are detected, the largest accepted times) was
//! checked on redis-server 7.0.15.
//!
//! Time: the server and the tests share the machine's clocks. A test never
//! sleeps and hopes: it either polls with a deadline ([`poll_until`]), or
//! waits until a moment after which the reply is certain (a TTL that has
//! passed by the server's own accounting), or bounds a remaining time by
//! the time the test itself measured around the request.

mod common;

use common::{encode_command, encode_str_command, poll_until, show, Client, Reply, Server};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = "ch04-expiry";

const SYNTAX: &[u8] = b"-ERR syntax error\r\n";
const NOT_INT: &[u8] = b"-ERR value is not an integer or out of range\r\n";
const CONFLICT: &[u8] = b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
const GT_LT: &[u8] = b"-ERR GT and LT options at the same time are not compatible\r\n";

/// An expiry far in the future (2100-01-01), for absolute times.
const YEAR_2100_MS: i64 = 4_102_444_800_000;

fn start() -> Server {
    Server::start(BIN)
}

/// The exact bytes of an integer reply.
fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

/// The exact bytes of an arity error for `name`.
fn arity_error(name: &str) -> Vec<u8> {
    format!("-ERR wrong number of arguments for '{name}' command\r\n").into_bytes()
}

/// The exact bytes of ``-ERR invalid expire time in '<name>' command``.
fn invalid_expire(name: &str) -> Vec<u8> {
    format!("-ERR invalid expire time in '{name}' command\r\n").into_bytes()
}

/// The exact bytes of `-ERR Unsupported option <option>`.
fn unsupported(option: &str) -> Vec<u8> {
    format!("-ERR Unsupported option {option}\r\n").into_bytes()
}

/// Unix time in milliseconds, from the clock the server uses too.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is before 1970")
        .as_millis() as i64
}

/// An integer reply as a number.
#[track_caller]
fn int_of(c: &mut Client, args: &[&str]) -> i64 {
    c.cmd(args).as_int()
}

/// Sends `args`, which must set a relative expiry of `ttl_ms` on `key`, and
/// asserts the reply; then asserts that PTTL and TTL are what is left of
/// `ttl_ms`, give or take the time this exchange took (measured here).
#[track_caller]
fn assert_sets_ttl(c: &mut Client, args: &[&str], reply: &[u8], key: &str, ttl_ms: i64) {
    let started = Instant::now();
    assert_bytes_eq!(c.cmd_raw(args), reply, "reply to {args:?}");
    let pttl = int_of(c, &["PTTL", key]);
    let ttl = int_of(c, &["TTL", key]);
    let elapsed = started.elapsed().as_millis() as i64;
    assert!(
        (ttl_ms - elapsed - 1..=ttl_ms).contains(&pttl),
        "after {args:?}: PTTL {key} is {pttl}, expected {ttl_ms} minus at most {elapsed} ms"
    );
    // TTL rounds to the nearest second: (ms + 500) / 1000.
    let lowest = (ttl_ms - elapsed - 1 + 500) / 1000;
    let highest = (ttl_ms + 500) / 1000;
    assert!(
        (lowest..=highest).contains(&ttl),
        "after {args:?}: TTL {key} is {ttl}, expected {lowest}..={highest}"
    );
}

/// Asserts that `key` exists with no expiry.
#[track_caller]
fn assert_persistent(c: &mut Client, key: &str) {
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", key]), b":1\r\n", "EXISTS {key}");
    assert_bytes_eq!(c.cmd_raw(&["TTL", key]), b":-1\r\n", "TTL {key}");
    assert_bytes_eq!(c.cmd_raw(&["PTTL", key]), b":-1\r\n", "PTTL {key}");
}

/// Asserts that `key` is absent, to every command that can tell.
#[track_caller]
fn assert_gone(c: &mut Client, key: &str) {
    assert_bytes_eq!(c.cmd_raw(&["GET", key]), b"$-1\r\n", "GET {key}");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", key]), b":0\r\n", "EXISTS {key}");
    assert_bytes_eq!(c.cmd_raw(&["TTL", key]), b":-2\r\n", "TTL {key}");
    assert_bytes_eq!(c.cmd_raw(&["PTTL", key]), b":-2\r\n", "PTTL {key}");
}

/// Polls DBSIZE until it equals `target`, and returns how long that took.
#[track_caller]
fn wait_for_dbsize(c: &mut Client, target: i64, deadline: Duration) -> Duration {
    let started = Instant::now();
    let mut last = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_until(deadline, || {
            let size = c.cmd(&["DBSIZE"]).as_int();
            last = Some(size);
            (size == target).then_some(())
        })
    }));
    if outcome.is_err() {
        panic!("DBSIZE did not reach {target} within {deadline:?}; it was {last:?}");
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------
// SET: expiry options
// ---------------------------------------------------------------------------

#[test]
fn set_ex_and_px_set_a_relative_expiry() {
    let server = start();
    let mut c = server.client();
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "EX", "100"],
        b"+OK\r\n",
        "k",
        100_000,
    );
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "w", "PX", "100000"],
        b"+OK\r\n",
        "k",
        100_000,
    );
    assert_sets_ttl(
        &mut c,
        &["set", "k", "x", "px", "2500"],
        b"+OK\r\n",
        "k",
        2_500,
    );
    assert_sets_ttl(
        &mut c,
        &["set", "k", "y", "eX", "7"],
        b"+OK\r\n",
        "k",
        7_000,
    );
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\ny\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn set_exat_and_pxat_set_an_absolute_expiry() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PXAT", &YEAR_2100_MS.to_string()]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS));
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), int(YEAR_2100_MS / 1000));

    let at = now_ms() / 1000 + 100;
    assert_bytes_eq!(
        c.cmd_raw(&["set", "k", "v", "exat", &at.to_string()]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), int(at));
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(at * 1000));
    let ttl = int_of(&mut c, &["TTL", "k"]);
    assert!((98..=100).contains(&ttl), "TTL after EXAT now+100 s: {ttl}");

    let at = now_ms() + 50_000;
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PxAt", &at.to_string()]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(at));
    let pttl = int_of(&mut c, &["PTTL", "k"]);
    assert!(
        (40_000..=50_000).contains(&pttl),
        "PTTL after PXAT now+50 s: {pttl}"
    );
}

#[test]
fn set_in_the_past_replies_ok_and_the_key_is_gone_at_once() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "PXAT", "1"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_gone(&mut c, "k");

    // Over an existing key, it deletes the key.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "old"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EXAT", "1"]), b"+OK\r\n");
    assert_gone(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");

    // With GET, the old value comes back and the key is gone.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "old"]), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PXAT", "1", "GET"]),
        b"$3\r\nold\r\n"
    );
    assert_gone(&mut c, "k");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PXAT", "1", "GET"]),
        b"$-1\r\n"
    );
    assert_gone(&mut c, "k");

    // NX on an existing key: not set, so nothing is deleted either.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "old"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "PXAT", "1", "NX"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$3\r\nold\r\n");
    // XX on an existing key: set, hence deleted.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "PXAT", "1", "XX"]), b"+OK\r\n");
    assert_gone(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn the_largest_absolute_times_are_accepted() {
    // PXAT i64::MAX does not overflow (it is already in milliseconds);
    // EXAT 9223372036854775 is the largest second count that fits.
    let server = start();
    let mut c = server.client();
    let max = i64::MAX.to_string();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "PXAT", &max]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(i64::MAX));
    assert!(int_of(&mut c, &["PTTL", "k"]) > 9_000_000_000_000_000_000);
    assert!(int_of(&mut c, &["TTL", "k"]) > 9_000_000_000_000_000);

    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "EXAT", "9223372036854775"]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(
        c.cmd_raw(&["PEXPIRETIME", "k"]),
        b":9223372036854775000\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), b":9223372036854775\r\n");

    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &max]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(i64::MAX));
    assert_bytes_eq!(c.cmd_raw(&["EXPIREAT", "k", "9223372036854775"]), b":1\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["PEXPIRETIME", "k"]),
        b":9223372036854775000\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\nv\r\n");
}

// ---------------------------------------------------------------------------
// SET: NX, XX, GET, KEEPTTL
// ---------------------------------------------------------------------------

#[test]
fn set_nx_only_creates_and_xx_only_replaces() {
    let server = start();
    let mut c = server.client();
    // XX on a missing key: not set, null reply.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "XX"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":0\r\n");
    // NX on a missing key: set.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "first", "NX"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$5\r\nfirst\r\n");
    // NX on an existing key: not set, null reply.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "second", "nx"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$5\r\nfirst\r\n");
    // XX on an existing key: set.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "third", "xx"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$5\r\nthird\r\n");

    // A failed NX leaves the TTL alone; a failed XX creates nothing.
    assert_bytes_eq!(c.cmd_raw(&["SET", "t", "v", "EX", "1000"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "t", "w", "NX", "EX", "5"]), b"$-1\r\n");
    let ttl = int_of(&mut c, &["TTL", "t"]);
    assert!(
        (998..=1000).contains(&ttl),
        "TTL t after a failed NX: {ttl}"
    );
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "u", "v", "PX", "5000", "XX"]),
        b"$-1\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["TTL", "u"]), b":-2\r\n");
    // NX with an expiry on a missing key sets both.
    assert_sets_ttl(
        &mut c,
        &["SET", "n", "v", "NX", "PX", "9000"],
        b"+OK\r\n",
        "n",
        9_000,
    );
    // XX with an expiry on an existing key sets both.
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "EX", "30", "XX"],
        b"+OK\r\n",
        "k",
        30_000,
    );
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":3\r\n");
}

#[test]
fn set_get_returns_the_old_value() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "one", "GET"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$3\r\none\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "two", "get"]), b"$3\r\none\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$3\r\ntwo\r\n");
    // Binary old value, empty new value.
    c.send(&encode_command(&[b"SET", b"k", b"\x00\r\n\xff"]));
    assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "", "GET"]),
        b"$4\r\n\x00\r\n\xff\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "three", "GET"]), b"$0\r\n\r\n");

    // GET with an expiry: old value back, new expiry set.
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "four", "EX", "60", "GET"],
        b"$5\r\nthree\r\n",
        "k",
        60_000,
    );
    // GET with KEEPTTL: old value back, expiry kept.
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "five", "GET", "KEEPTTL"]),
        b"$4\r\nfour\r\n"
    );
    let ttl = int_of(&mut c, &["TTL", "k"]);
    assert!((58..=60).contains(&ttl), "TTL after SET GET KEEPTTL: {ttl}");
    // GET alone drops the expiry, like any plain SET.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "six", "GET"]), b"$4\r\nfive\r\n");
    assert_persistent(&mut c, "k");
}

#[test]
fn set_nx_get_and_xx_get() {
    // Redis 7.0 allows NX together with GET.
    let server = start();
    let mut c = server.client();
    // NX GET on a missing key: set, null reply (there was no old value).
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v1", "NX", "GET"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$2\r\nv1\r\n");
    // NX GET on an existing key: not set, the current value comes back.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v2", "GET", "NX"]), b"$2\r\nv1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$2\r\nv1\r\n");
    // XX GET on an existing key: set, old value back.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v3", "XX", "GET"]), b"$2\r\nv1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$2\r\nv3\r\n");
    // XX GET on a missing key: not set, null reply.
    assert_bytes_eq!(c.cmd_raw(&["SET", "m", "v", "XX", "GET"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "m"]), b":0\r\n");
    // All of it at once.
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v4", "XX", "GET", "PX", "8000"]),
        b"$2\r\nv3\r\n"
    );
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v5", "NX", "GET", "EX", "10"]),
        b"$2\r\nv4\r\n"
    );
    let pttl = int_of(&mut c, &["PTTL", "k"]);
    assert!(
        (1..=8000).contains(&pttl),
        "the failed NX changed the TTL: {pttl}"
    );
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn plain_set_clears_the_ttl_and_keepttl_keeps_it() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "w"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), b":-1\r\n");

    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PXAT", &YEAR_2100_MS.to_string()]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "kept", "KEEPTTL"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$4\r\nkept\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS));
    assert_bytes_eq!(
        c.cmd_raw(&["set", "k", "kept2", "keepttl", "xx"]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS));
    // XX without KEEPTTL clears it.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "x", "XX"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");

    // KEEPTTL on a key without a TTL, or on a missing key: no TTL.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "y", "KEEPTTL"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["SET", "new", "z", "KEEPTTL"]), b"+OK\r\n");
    assert_persistent(&mut c, "new");
    assert_bytes_eq!(c.cmd_raw(&["GET", "new"]), b"$1\r\nz\r\n");
}

#[test]
fn a_deleted_or_flushed_key_does_not_keep_its_old_ttl() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["TTL", "k"]), b":-2\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");
    // KEEPTTL after a DEL has nothing to keep.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "KEEPTTL"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");

    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["FLUSHDB"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "KEEPTTL"]), b"+OK\r\n");
    assert_persistent(&mut c, "k");
}

// ---------------------------------------------------------------------------
// SET: errors
// ---------------------------------------------------------------------------

#[test]
fn set_option_combinations_redis_rejects_are_syntax_errors() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "original"]), b"+OK\r\n");
    let cases: &[&[&str]] = &[
        &["XX", "NX"],
        &["NX", "XX"],
        &["nx", "GET", "xx"],
        &["EX", "10", "PX", "10"],
        &["PX", "10", "EX", "10"],
        &["EX", "10", "EXAT", "99999999999"],
        &["EX", "10", "PXAT", "99999999999999"],
        &["PX", "10", "EXAT", "99999999999"],
        &["PX", "10", "PXAT", "99999999999999"],
        &["EXAT", "99999999999", "PXAT", "99999999999999"],
        &["PXAT", "99999999999999", "EX", "10"],
        &["KEEPTTL", "EX", "10"],
        &["EX", "10", "KEEPTTL"],
        &["keepttl", "px", "10"],
        &["KEEPTTL", "EXAT", "99999999999"],
        &["PXAT", "99999999999999", "KEEPTTL"],
        // An expiry option without its value.
        &["EX"],
        &["PX"],
        &["EXAT"],
        &["PXAT"],
        &["NX", "EX"],
        &["EX", "10", "EX"],
        // Unknown words, including options of other commands.
        &["FOO"],
        &["NX", "FOO"],
        &["EX10"],
        &["PERSIST"],
        &["GT"],
        &[""],
        // A syntax error wins over a bad value, wherever it is.
        &["EX", "abc", "NX", "XX"],
        &["NX", "XX", "EX", "abc"],
        &["EX", "0", "FOO"],
        &["FOO", "EX", "0"],
        &["EX", "-1", "NX", "XX"],
    ];
    for options in cases {
        let mut args = vec!["SET", "k", "changed"];
        args.extend_from_slice(options);
        assert_bytes_eq!(c.cmd_raw(&args), SYNTAX, "reply to {args:?}");
    }
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$8\r\noriginal\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn set_expiry_values_that_are_not_integers() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "original"]), b"+OK\r\n");
    for (option, value) in [
        ("EX", "abc"),
        ("EX", "1.5"),
        ("PX", "1e3"),
        ("EXAT", "x"),
        ("PXAT", "12 "),
        ("EX", ""),
        ("EX", " 10"),
        ("EX", "+10"),
        ("EX", "010"),
        ("EX", "-0"),
        ("PX", "0x10"),
        ("EX", "9223372036854775808"),
        ("PX", "-9223372036854775809"),
        ("EX", "99999999999999999999"),
    ] {
        assert_bytes_eq!(
            c.cmd_raw(&["SET", "k", "changed", option, value]),
            NOT_INT,
            "reply to SET k changed {option} {value:?}"
        );
    }
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$8\r\noriginal\r\n");
    assert_persistent(&mut c, "k");
}

#[test]
fn set_expiry_values_out_of_range_are_invalid_expire_times() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "original"]), b"+OK\r\n");
    for (option, value) in [
        ("EX", "0"),
        ("EX", "-1"),
        ("PX", "0"),
        ("PX", "-1"),
        ("EXAT", "0"),
        ("EXAT", "-1"),
        ("PXAT", "0"),
        ("PXAT", "-5"),
        ("EX", "-9223372036854775808"),
        ("PX", "-9223372036854775808"),
        // Too large: seconds that overflow once turned into milliseconds,
        // or a relative time that overflows once the current time is added.
        ("EX", "9999999999999999"),
        ("EX", "9223372036854775807"),
        ("EX", "9223372036854775"),
        ("EXAT", "9223372036854776"),
        ("EXAT", "9223372036854775807"),
        ("PX", "9223372036854775807"),
    ] {
        assert_bytes_eq!(
            c.cmd_raw(&["SET", "k", "changed", option, value]),
            invalid_expire("set"),
            "reply to SET k changed {option} {value}"
        );
        // With GET or NX the error is the same and nothing changes.
        assert_bytes_eq!(
            c.cmd_raw(&["SET", "k", "changed", "GET", option, value]),
            invalid_expire("set"),
            "reply to SET k changed GET {option} {value}"
        );
    }
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$8\r\noriginal\r\n");
    assert_persistent(&mut c, "k");
    // Same on a missing key: nothing is created.
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "new", "v", "EX", "0"]),
        invalid_expire("set")
    );
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "new"]), b":0\r\n");
}

#[test]
fn set_repeated_options_are_accepted_and_the_last_value_wins() {
    // Observed on redis-server 7.0.15: repeating the same option is not a
    // syntax error; for EX/PX/EXAT/PXAT only the last value is even parsed.
    let server = start();
    let mut c = server.client();
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "EX", "10", "EX", "20"],
        b"+OK\r\n",
        "k",
        20_000,
    );
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "PX", "10", "PX", "20000"],
        b"+OK\r\n",
        "k",
        20_000,
    );
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "EX", "abc", "EX", "30"],
        b"+OK\r\n",
        "k",
        30_000,
    );
    assert_sets_ttl(
        &mut c,
        &["SET", "k", "v", "EX", "0", "ex", "40"],
        b"+OK\r\n",
        "k",
        40_000,
    );
    let at = (YEAR_2100_MS / 1000).to_string();
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "EXAT", "1", "EXAT", &at]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS));
    assert_bytes_eq!(
        c.cmd_raw(&[
            "SET",
            "k",
            "v",
            "PXAT",
            "1",
            "PXAT",
            &(YEAR_2100_MS + 1).to_string()
        ]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS + 1));
    // The last value must still be valid.
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "EX", "10", "EX", "abc"]),
        NOT_INT
    );
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "EX", "10", "EX", "0"]),
        invalid_expire("set")
    );

    // Flags may repeat too.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v2", "XX", "XX"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v3", "NX", "NX"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "n", "v", "NX", "NX"]), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v4", "GET", "GET"]),
        b"$2\r\nv2\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["SET", "t", "v", "EX", "50"]), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "t", "w", "KEEPTTL", "KEEPTTL"]),
        b"+OK\r\n"
    );
    let ttl = int_of(&mut c, &["TTL", "t"]);
    assert!((48..=50).contains(&ttl), "TTL after KEEPTTL KEEPTTL: {ttl}");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$2\r\nv4\r\n");
    assert_persistent(&mut c, "k");
}

#[test]
fn set_arity_errors() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET"]), arity_error("set"));
    assert_bytes_eq!(c.cmd_raw(&["SET", "k"]), arity_error("set"));
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

// ---------------------------------------------------------------------------
// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
// ---------------------------------------------------------------------------

#[test]
fn expire_family_sets_a_ttl_on_an_existing_key() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_sets_ttl(&mut c, &["EXPIRE", "k", "100"], b":1\r\n", "k", 100_000);
    assert_sets_ttl(&mut c, &["pexpire", "k", "12345"], b":1\r\n", "k", 12_345);

    let at = now_ms() / 1000 + 200;
    assert_bytes_eq!(c.cmd_raw(&["EXPIREAT", "k", &at.to_string()]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), int(at));
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(at * 1000));

    assert_bytes_eq!(
        c.cmd_raw(&["PEXPIREAT", "k", &(YEAR_2100_MS + 600).to_string()]),
        b":1\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS + 600));
    // EXPIRETIME rounds to the nearest second, like TTL.
    assert_bytes_eq!(
        c.cmd_raw(&["EXPIRETIME", "k"]),
        int(YEAR_2100_MS / 1000 + 1)
    );
    assert_bytes_eq!(
        c.cmd_raw(&["PEXPIREAT", "k", &(YEAR_2100_MS + 400).to_string()]),
        b":1\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "k"]), int(YEAR_2100_MS / 1000));
    // The value is untouched by all of this.
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn expire_family_on_a_missing_key_replies_zero() {
    let server = start();
    let mut c = server.client();
    for args in [
        &["EXPIRE", "nokey", "10"][..],
        &["PEXPIRE", "nokey", "10000"],
        &["EXPIREAT", "nokey", "4102444800"],
        &["PEXPIREAT", "nokey", "4102444800000"],
        &["EXPIRE", "nokey", "0"],
        &["EXPIRE", "nokey", "-1"],
        &["PEXPIREAT", "nokey", "1"],
        &["EXPIRE", "nokey", "10", "NX"],
        &["EXPIRE", "nokey", "10", "LT"],
    ] {
        assert_bytes_eq!(c.cmd_raw(args), b":0\r\n", "reply to {args:?}");
    }
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn expire_in_the_past_deletes_the_key_and_replies_one() {
    let server = start();
    let mut c = server.client();
    let past_s = (now_ms() / 1000 - 10).to_string();
    let past_ms = (now_ms() - 10_000).to_string();
    for args in [
        &["EXPIRE", "k", "0"][..],
        &["EXPIRE", "k", "-1"],
        &["EXPIRE", "k", "-100000"],
        &["PEXPIRE", "k", "0"],
        &["PEXPIRE", "k", "-1"],
        &["PEXPIRE", "k", "-9223372036854775808"],
        &["EXPIREAT", "k", "1"],
        &["EXPIREAT", "k", "0"],
        &["EXPIREAT", "k", "-1"],
        &["EXPIREAT", "k", &past_s],
        &["PEXPIREAT", "k", "0"],
        &["PEXPIREAT", "k", &past_ms],
    ] {
        assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
        assert_bytes_eq!(c.cmd_raw(args), b":1\r\n", "reply to {args:?}");
        assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":0\r\n", "after {args:?}");
        assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n", "after {args:?}");
        // The key is gone, not just hidden: a second time replies 0.
        assert_bytes_eq!(c.cmd_raw(args), b":0\r\n", "{args:?} again");
    }
    // A key with a TTL is deleted the same way.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "0"]), b":1\r\n");
    assert_gone(&mut c, "k");
}

#[test]
fn expire_nx_xx_gt_lt() {
    let server = start();
    let mut c = server.client();
    // On a key without a TTL: NX sets, XX does not; a missing TTL counts as
    // infinite, so GT never sets and LT always does.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "100", "XX"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "100", "GT"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "100", "XX", "GT"]), b":0\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "100", "LT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "k"]), b":1\r\n");
    assert_sets_ttl(
        &mut c,
        &["EXPIRE", "k", "100", "NX"],
        b":1\r\n",
        "k",
        100_000,
    );

    // On a key with a TTL of 100 s.
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "200", "NX"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "50", "GT"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "300", "LT"]), b":0\r\n");
    let ttl = int_of(&mut c, &["TTL", "k"]);
    assert!(
        (98..=100).contains(&ttl),
        "the rejected options changed the TTL: {ttl}"
    );
    assert_sets_ttl(
        &mut c,
        &["EXPIRE", "k", "200", "GT"],
        b":1\r\n",
        "k",
        200_000,
    );
    assert_sets_ttl(
        &mut c,
        &["EXPIRE", "k", "150", "lt"],
        b":1\r\n",
        "k",
        150_000,
    );
    assert_sets_ttl(
        &mut c,
        &["EXPIRE", "k", "300", "xx"],
        b":1\r\n",
        "k",
        300_000,
    );
    assert_sets_ttl(
        &mut c,
        &["EXPIRE", "k", "400", "XX", "GT"],
        b":1\r\n",
        "k",
        400_000,
    );
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "500", "xx", "lt"]), b":0\r\n");
    // Repeating an option is allowed.
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "500", "GT", "GT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "500", "NX", "NX"]), b":0\r\n");

    // Equal times: GT and LT both refuse; XX accepts.
    let at = YEAR_2100_MS.to_string();
    let later = (YEAR_2100_MS + 1).to_string();
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &at]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &at, "GT"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &at, "LT"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &at, "XX"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &later, "GT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS + 1));
    assert_bytes_eq!(c.cmd_raw(&["PEXPIREAT", "k", &at, "LT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), int(YEAR_2100_MS));
    assert_bytes_eq!(
        c.cmd_raw(&[
            "EXPIREAT",
            "k",
            &(YEAR_2100_MS / 1000 + 10).to_string(),
            "GT"
        ]),
        b":1\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRE", "k", "5000", "GT"]), b":0\r\n");

    // The options are checked before a time in the past deletes the key.
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "0", "GT"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRE", "k", "-1", "NX"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "0", "LT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "p", "v"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "p", "0", "XX"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "p", "-1", "GT"]), b":0\r\n");
    assert_persistent(&mut c, "p");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "p", "-1", "LT"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "p"]), b":0\r\n");
}

#[test]
fn expire_option_errors() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    for cmd in ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"] {
        let cases: &[(&[&str], &[u8])] = &[
            (&["100", "FOO"], &unsupported("FOO")),
            (&["100", "foo"], &unsupported("foo")),
            (&["100", "NX", "FOO"], &unsupported("FOO")),
            (&["100", "NX", "XX", "FOO"], &unsupported("FOO")),
            (&["100", "FOO", "NX", "XX"], &unsupported("FOO")),
            // The options are parsed before the time.
            (&["abc", "FOO"], &unsupported("FOO")),
            (&["abc", "NX", "XX"], CONFLICT),
            (&["9223372036854775807", "NX", "XX"], CONFLICT),
            (&["100", "NX", "XX"], CONFLICT),
            (&["100", "xx", "nx"], CONFLICT),
            (&["100", "NX", "GT"], CONFLICT),
            (&["100", "LT", "NX"], CONFLICT),
            (&["100", "NX", "GT", "LT"], CONFLICT),
            (&["100", "GT", "LT"], GT_LT),
            (&["100", "lt", "gt"], GT_LT),
            (&["100", "XX", "GT", "LT"], GT_LT),
            (&["abc"], NOT_INT),
            (&["1.5"], NOT_INT),
            (&[""], NOT_INT),
            (&["+10"], NOT_INT),
            (&["9223372036854775808"], NOT_INT),
            (&["abc", "NX"], NOT_INT),
        ];
        for (rest, reply) in cases {
            for key in ["k", "nokey"] {
                let mut args = vec![cmd, key];
                args.extend_from_slice(rest);
                assert_bytes_eq!(c.cmd_raw(&args), reply, "reply to {args:?}");
            }
        }
    }
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn expire_times_out_of_range_are_invalid() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    let cases: &[(&str, &str)] = &[
        ("EXPIRE", "9223372036854775807"),
        ("EXPIRE", "9223372036854775"),
        ("EXPIRE", "-9223372036854775808"),
        ("PEXPIRE", "9223372036854775807"),
        ("EXPIREAT", "9223372036854775807"),
        ("EXPIREAT", "9223372036854776"),
        ("EXPIREAT", "-9223372036854775808"),
    ];
    for (cmd, when) in cases {
        let name = cmd.to_lowercase();
        // Checked before the key is looked up, so a missing key gets it too.
        for key in ["k", "nokey"] {
            assert_bytes_eq!(
                c.cmd_raw(&[cmd, key, when]),
                invalid_expire(&name),
                "reply to {cmd} {key} {when}"
            );
        }
    }
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn arity_errors_of_the_expiry_commands() {
    let server = start();
    let mut c = server.client();
    let cases: &[(&[&str], &str)] = &[
        (&["EXPIRE"], "expire"),
        (&["EXPIRE", "k"], "expire"),
        (&["pexpire", "k"], "pexpire"),
        (&["EXPIREAT", "k"], "expireat"),
        (&["PEXPIREAT"], "pexpireat"),
        (&["TTL"], "ttl"),
        (&["TTL", "a", "b"], "ttl"),
        (&["PTTL"], "pttl"),
        (&["pttl", "a", "b"], "pttl"),
        (&["EXPIRETIME"], "expiretime"),
        (&["EXPIRETIME", "a", "b"], "expiretime"),
        (&["PEXPIRETIME"], "pexpiretime"),
        (&["PEXPIRETIME", "a", "b"], "pexpiretime"),
        (&["PERSIST"], "persist"),
        (&["PERSIST", "a", "b"], "persist"),
    ];
    for (args, name) in cases {
        assert_bytes_eq!(c.cmd_raw(args), arity_error(name), "reply to {args:?}");
    }
    assert_bytes_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn command_info_describes_the_expiry_commands() {
    let server = start();
    let mut c = server.client();
    let expected: &[(&str, i64)] = &[
        ("set", -3),
        ("expire", -3),
        ("pexpire", -3),
        ("expireat", -3),
        ("pexpireat", -3),
        ("ttl", 2),
        ("pttl", 2),
        ("expiretime", 2),
        ("pexpiretime", 2),
        ("persist", 2),
    ];
    let mut args = vec!["COMMAND", "INFO"];
    args.extend(expected.iter().map(|row| row.0));
    let info = c.cmd(&args);
    let info = info.as_array();
    assert_eq!(info.len(), expected.len(), "COMMAND INFO: {info:?}");
    for (entry, &(name, arity)) in info.iter().zip(expected) {
        let entry = entry.as_array();
        assert_eq!(entry[0], Reply::bulk(name));
        assert_eq!(entry[1], Reply::int(arity), "the arity of {name}");
        assert_eq!(entry[3], Reply::int(1), "the first key of {name}");
    }
}

// ---------------------------------------------------------------------------
// TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST
// ---------------------------------------------------------------------------

#[test]
fn ttl_family_on_missing_keys_and_keys_without_expiry() {
    let server = start();
    let mut c = server.client();
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_bytes_eq!(c.cmd_raw(&[cmd, "nokey"]), b":-2\r\n", "{cmd} nokey");
    }
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_bytes_eq!(c.cmd_raw(&[cmd, "k"]), b":-1\r\n", "{cmd} k");
    }
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn ttl_rounds_to_the_nearest_second() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    // (ms + 500) / 1000: 1300 ms is 1 s, 1700 ms is 2 s, 2300 is 2 s, 2700
    // is 3 s. assert_sets_ttl bounds the result by the time that really passed.
    for ms in [1_300, 1_700, 2_300, 2_700] {
        assert_sets_ttl(
            &mut c,
            &["PEXPIRE", "k", &ms.to_string()],
            b":1\r\n",
            "k",
            ms,
        );
    }
    // 400 ms is 0 s: a TTL of 0 for a key that still exists (when this ran
    // in under 350 ms, which it does unless the machine stalls).
    assert_bytes_eq!(c.cmd_raw(&["SET", "z", "v"]), b"+OK\r\n");
    let started = Instant::now();
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRE", "z", "400"]), b":1\r\n");
    let ttl = int_of(&mut c, &["TTL", "z"]);
    let exists = int_of(&mut c, &["EXISTS", "z"]);
    if started.elapsed() < Duration::from_millis(350) {
        assert_eq!((ttl, exists), (0, 1), "TTL and EXISTS 400 ms before expiry");
    }
}

#[test]
fn persist_removes_the_ttl() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "nokey"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "k", "100"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "k"]), b":1\r\n");
    assert_persistent(&mut c, "k");
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["persist", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "PXAT", &YEAR_2100_MS.to_string()]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "k"]), b":-1\r\n");
}

// ---------------------------------------------------------------------------
// Lazy expiry
// ---------------------------------------------------------------------------

#[test]
fn an_expired_key_is_absent_to_every_command() {
    // Each key is set with PX 200 and first looked at after its 200 ms have
    // passed by the server's own clock (the server set the deadline before
    // it replied, and the wait starts after the reply), so each command
    // below is the first to meet an expired key: no polling is needed and
    // none of them may see the key.
    const TTL: Duration = Duration::from_millis(200);
    let server = start();
    let mut c = server.client();
    let keys = [
        "get",
        "exists",
        "ttl",
        "pttl",
        "expiretime",
        "pexpiretime",
        "persist",
        "expire",
        "xx",
        "nx",
        "setget",
        "del",
        "keepttl",
        "pexpire-lt",
    ];
    let mut pipeline = Vec::new();
    for key in keys {
        pipeline.extend(encode_str_command(&["SET", key, "old", "PX", "200"]));
    }
    c.send(&pipeline);
    for key in keys {
        assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n", "SET {key} old PX 200");
    }
    let set_at = Instant::now();
    // Still there just before (unless this machine stalled for 200 ms).
    let before = c.cmd_raw(&["GET", "get"]);
    if set_at.elapsed() < TTL {
        assert_bytes_eq!(before, b"$3\r\nold\r\n", "GET right after SET");
    }
    thread::sleep((TTL + Duration::from_millis(5)).saturating_sub(set_at.elapsed()));

    assert_bytes_eq!(c.cmd_raw(&["GET", "get"]), b"$-1\r\n", "GET");
    assert_bytes_eq!(
        c.cmd_raw(&["EXISTS", "exists", "exists"]),
        b":0\r\n",
        "EXISTS"
    );
    assert_bytes_eq!(c.cmd_raw(&["TTL", "ttl"]), b":-2\r\n", "TTL");
    assert_bytes_eq!(c.cmd_raw(&["PTTL", "pttl"]), b":-2\r\n", "PTTL");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRETIME", "expiretime"]), b":-2\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PEXPIRETIME", "pexpiretime"]), b":-2\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PERSIST", "persist"]), b":0\r\n", "PERSIST");
    assert_bytes_eq!(c.cmd_raw(&["EXPIRE", "expire", "100"]), b":0\r\n", "EXPIRE");
    assert_bytes_eq!(
        c.cmd_raw(&["EXISTS", "expire"]),
        b":0\r\n",
        "EXPIRE revived it"
    );
    assert_bytes_eq!(c.cmd_raw(&["SET", "xx", "new", "XX"]), b"$-1\r\n", "SET XX");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "xx"]), b":0\r\n", "SET XX created it");
    assert_bytes_eq!(c.cmd_raw(&["SET", "nx", "new", "NX"]), b"+OK\r\n", "SET NX");
    assert_persistent(&mut c, "nx");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "setget", "new", "GET"]),
        b"$-1\r\n",
        "SET GET"
    );
    assert_persistent(&mut c, "setget");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "del", "del"]), b":0\r\n", "DEL");
    // KEEPTTL over an expired key has no TTL to keep.
    assert_bytes_eq!(c.cmd_raw(&["SET", "keepttl", "new", "KEEPTTL"]), b"+OK\r\n");
    assert_persistent(&mut c, "keepttl");
    assert_bytes_eq!(
        c.cmd_raw(&["PEXPIRE", "pexpire-lt", "100000", "LT"]),
        b":0\r\n"
    );

    // Only the three keys written again remain.
    assert_bytes_eq!(c.cmd_raw(&["GET", "nx"]), b"$3\r\nnew\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "setget"]), b"$3\r\nnew\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "keepttl"]), b"$3\r\nnew\r\n");
    for key in keys {
        if !["nx", "setget", "keepttl"].contains(&key) {
            assert_gone(&mut c, key);
        }
    }
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":3\r\n");
}

#[test]
fn a_key_with_px_100_disappears_and_dbsize_follows() {
    let server = start();
    let mut c = server.client();
    let mut other = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "short", "v", "PX", "100"]), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "untouched", "v", "PX", "100"]),
        b"+OK\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["SET", "stays", "v"]), b"+OK\r\n");
    // Polled through GET: gone within well under a second...
    poll_until(Duration::from_secs(5), || {
        (c.cmd(&["GET", "short"]) == Reply::Nil).then_some(())
    });
    // ... and then gone for everyone, for good.
    assert_gone(&mut c, "short");
    assert_gone(&mut other, "short");
    // The key nobody looks at is removed by active expiry.
    wait_for_dbsize(&mut other, 1, Duration::from_secs(5));
    assert_persistent(&mut c, "stays");
    assert_bytes_eq!(c.cmd_raw(&["GET", "stays"]), b"$1\r\nv\r\n");
}

#[test]
fn a_key_rewritten_right_after_it_expired_is_never_lost() {
    // Writers give their keys a 1 ms TTL, let it pass, then write them again
    // without a TTL, while readers keep looking at the same keys (and so
    // meet them expired). Whatever a server does with an expired key it
    // found, it must not delete the new value written after that: a server
    // that notes expired keys under a read lock and deletes them later
    // must check them again when it does.
    //
    // This is a race, so the test can only make the bad interleaving
    // likely: six readers with long reads keep the lock busy so that the
    // rewrite queues up between a read and its clean-up. A server that
    // deletes noted keys without checking again failed 3 runs out of 4.
    const WRITERS: usize = 4;
    const READERS: usize = 6;
    const KEYS: usize = 4;
    const ROUNDS: usize = 300;
    let server = start();
    let port = server.port();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut c = Client::connect(port);
                while !done.load(Ordering::Relaxed) {
                    for w in 0..WRITERS {
                        for k in 0..KEYS {
                            let key = format!("w{w}:k{k}");
                            let got = c.cmd(&["GET", &key]);
                            assert!(
                                matches!(&got, Reply::Nil)
                                    || got == Reply::bulk("short")
                                    || got == Reply::bulk("long"),
                                "GET {key}: {got:?}"
                            );
                            // A long read of the same key, so that writes
                            // queue up behind it.
                            let mut args = vec!["EXISTS"];
                            args.extend(std::iter::repeat_n(key.as_str(), 200));
                            let n = c.cmd(&args).as_int();
                            assert!(n == 0 || n == 200, "EXISTS {key} x200: {n}");
                        }
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            thread::spawn(move || {
                let mut c = Client::connect(port);
                for round in 0..ROUNDS {
                    for k in 0..KEYS {
                        let key = format!("w{w}:k{k}");
                        if round > 0 {
                            // The value of the previous round is still there.
                            assert_bytes_eq!(
                                c.cmd_raw(&["GET", &key]),
                                b"$4\r\nlong\r\n",
                                "GET {key} at the start of round {round}"
                            );
                        }
                        assert_bytes_eq!(c.cmd_raw(&["SET", &key, "short", "PX", "1"]), b"+OK\r\n");
                    }
                    // Let the 1 ms pass (the readers may look in between).
                    thread::sleep(Duration::from_millis(2));
                    for k in 0..KEYS {
                        let key = format!("w{w}:k{k}");
                        assert_bytes_eq!(c.cmd_raw(&["SET", &key, "long"]), b"+OK\r\n");
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer failed");
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("a reader failed");
    }
    let mut c = server.client();
    for w in 0..WRITERS {
        for k in 0..KEYS {
            let key = format!("w{w}:k{k}");
            assert_bytes_eq!(c.cmd_raw(&["GET", &key]), b"$4\r\nlong\r\n", "GET {key}");
            assert_persistent(&mut c, &key);
        }
    }
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), int((WRITERS * KEYS) as i64));
}

// ---------------------------------------------------------------------------
// Active expiry
// ---------------------------------------------------------------------------

/// Sends `SET <prefix><i> v <options...>` for every `i` in `range` as one
/// pipeline, and asserts that every reply is `+OK`.
fn pipeline_sets(c: &mut Client, prefix: &str, range: std::ops::Range<usize>, options: &[&str]) {
    let count = range.len();
    let mut pipeline = Vec::with_capacity(count * (40 + prefix.len()));
    for i in range {
        let key = format!("{prefix}{i}");
        let mut args = vec!["SET", key.as_str(), "v"];
        args.extend_from_slice(options);
        pipeline.extend(encode_str_command(&args));
    }
    let writer = c.send_in_background(pipeline);
    let replies = c.read_exact(count * 5);
    writer.join().unwrap().expect("sending the pipeline failed");
    if let Some(at) = replies.chunks(5).position(|reply| reply != b"+OK\r\n") {
        panic!(
            "SET {prefix}{}: expected b\"+OK\\r\\n\", got b\"{}\"",
            at,
            show(&replies[at * 5..(at * 5 + 60).min(replies.len())])
        );
    }
}

#[test]
fn active_expiry_removes_keys_nobody_touches_and_only_those() {
    let server = start();
    let mut c = server.client();
    // 2000 keys that expire, through every way of giving a key a TTL.
    pipeline_sets(&mut c, "px:", 0..500, &["PX", "100"]);
    pipeline_sets(&mut c, "ex:", 0..500, &["EX", "1"]);
    let soon = (now_ms() + 300).to_string();
    pipeline_sets(&mut c, "pxat:", 0..500, &["PXAT", &soon]);
    pipeline_sets(&mut c, "pexpire:", 0..500, &[]);
    let mut pipeline = Vec::new();
    for i in 0..500 {
        pipeline.extend(encode_str_command(&[
            "PEXPIRE",
            &format!("pexpire:{i}"),
            "200",
        ]));
    }
    c.send(&pipeline);
    for i in 0..500 {
        assert_bytes_eq!(c.read_reply_raw(), b":1\r\n", "PEXPIRE pexpire:{i} 200");
    }
    // Keys that must survive: persistent ones, long TTLs, and keys that had
    // a short TTL but lost it (SET without options, PERSIST, DEL then SET)
    // or had it extended. Their old deadline (800 ms) comes before the last
    // of the expiring keys (EX 1), so a server that still acts on it drops
    // DBSIZE below the target before it is ever reached.
    pipeline_sets(&mut c, "plain:", 0..300, &[]);
    pipeline_sets(&mut c, "long:", 0..100, &["EX", "1000"]);
    pipeline_sets(&mut c, "reset:", 0..100, &["PX", "800"]);
    pipeline_sets(&mut c, "reset:", 0..100, &[]);
    pipeline_sets(&mut c, "persisted:", 0..100, &["PX", "800"]);
    pipeline_sets(&mut c, "extended:", 0..100, &["PX", "800"]);
    pipeline_sets(&mut c, "recreated:", 0..100, &["PX", "800"]);
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        pipeline.extend(encode_str_command(&["PERSIST", &format!("persisted:{i}")]));
        pipeline.extend(encode_str_command(&[
            "PEXPIRE",
            &format!("extended:{i}"),
            "1000000",
        ]));
        pipeline.extend(encode_str_command(&["DEL", &format!("recreated:{i}")]));
        pipeline.extend(encode_str_command(&["SET", &format!("recreated:{i}"), "v"]));
        expected.extend_from_slice(b":1\r\n:1\r\n:1\r\n+OK\r\n");
    }
    c.send(&pipeline);
    let got = c.read_exact(expected.len());
    assert_bytes_eq!(got, expected, "PERSIST / PEXPIRE / DEL + SET");
    let survivors = 300 + 100 * 5;

    // Now only DBSIZE, which looks at no key, until the expiring ones are gone.
    let took = wait_for_dbsize(&mut c, survivors, Duration::from_secs(10));
    eprintln!("2000 volatile keys gone {took:?} after the last SET");
    // And it stays there: nothing else is removed (proving a negative needs
    // a fixed wait; a few active expiry cycles pass during it).
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        assert_bytes_eq!(
            c.cmd_raw(&["DBSIZE"]),
            int(survivors),
            "DBSIZE went below the survivors"
        );
        thread::sleep(Duration::from_millis(20));
    }
    for prefix in ["plain:", "reset:", "persisted:", "recreated:"] {
        for i in [0, 42, 99] {
            let key = format!("{prefix}{i}");
            assert_bytes_eq!(c.cmd_raw(&["GET", &key]), b"$1\r\nv\r\n", "GET {key}");
            assert_persistent(&mut c, &key);
        }
    }
    for prefix in ["long:", "extended:"] {
        let ttl = int_of(&mut c, &["TTL", &format!("{prefix}7")]);
        assert!(ttl > 900, "TTL {prefix}7 is {ttl}");
    }
    for prefix in ["px:", "ex:", "pxat:", "pexpire:"] {
        assert_gone(&mut c, &format!("{prefix}0"));
    }
}

#[test]
fn a_million_keys_with_a_short_ttl_expire_without_being_touched() {
    // The scenario from the issue: one million keys that expire at about the
    // same moment and that no client ever looks at again. Active expiry alone
    // must remove them all within a few seconds of their deadline.
    //
    // They are loaded with PX 3000 rather than PX 100 so that loading (one
    // large pipeline per connection) normally finishes before the first key
    // expires, and the expiry work is not mixed with the load. If the load
    // is slower than that, keys expire while it runs, which is fine: the
    // deadline below counts from the end of the load.
    const KEYS: usize = 1_000_000;
    const CONNECTIONS: usize = 4;
    const TTL_MS: u64 = 3_000;
    /// How long after the TTL DBSIZE may take to reach 0.
    const GRACE: Duration = Duration::from_secs(15);

    let server = start();
    let port = server.port();
    let started = Instant::now();
    let loaders: Vec<_> = (0..CONNECTIONS)
        .map(|part| {
            thread::spawn(move || {
                let mut c = Client::connect(port);
                let ttl = TTL_MS.to_string();
                let mut pipeline = Vec::with_capacity(KEYS / CONNECTIONS * 50);
                let mut count = 0;
                for i in (part..KEYS).step_by(CONNECTIONS) {
                    let key = i.to_string();
                    // *5 SET key:<i> v PX <ttl>, written out by hand: this
                    // loop runs a million times in a debug build.
                    write!(
                        pipeline,
                        "*5\r\n$3\r\nSET\r\n${}\r\nkey:{key}\r\n$1\r\nv\r\n$2\r\nPX\r\n${}\r\n{ttl}\r\n",
                        key.len() + 4,
                        ttl.len()
                    )
                    .unwrap();
                    count += 1;
                }
                let writer = c.send_in_background(pipeline);
                let replies = c.read_exact(count * 5);
                writer.join().unwrap().expect("sending the pipeline failed");
                if let Some(at) = replies.chunks(5).position(|reply| reply != b"+OK\r\n") {
                    panic!(
                        "connection {part}, SET number {at}: expected b\"+OK\\r\\n\", got b\"{}\"",
                        show(&replies[at * 5..(at * 5 + 60).min(replies.len())])
                    );
                }
            })
        })
        .collect();
    for loader in loaders {
        loader.join().expect("a loading connection failed");
    }
    let loaded_in = started.elapsed();

    let mut c = server.client();
    let size = c.cmd(&["DBSIZE"]).as_int();
    eprintln!("loaded {KEYS} keys in {loaded_in:?}; DBSIZE right after: {size}");
    assert!(
        size <= KEYS as i64,
        "DBSIZE {size} after loading {KEYS} keys"
    );
    if loaded_in < Duration::from_millis(TTL_MS - 500) {
        // Nothing can have expired yet.
        assert_eq!(size, KEYS as i64, "DBSIZE right after loading");
    }

    let took = wait_for_dbsize(&mut c, 0, Duration::from_millis(TTL_MS) + GRACE);
    let total = started.elapsed();
    eprintln!(
        "DBSIZE reached 0 {:?} after the load ended ({total:?} after it began; TTL {TTL_MS} ms)",
        took
    );
    assert_gone(&mut c, "key:0");
    assert_gone(&mut c, "key:999999");
}

// ---------------------------------------------------------------------------
// Exercises (docs/04-expiry.md, "Exercises"). Each test is ignored, so the
// suite above passes on the chapter as shipped; each fails on the chapter as
// shipped and passes once the exercise is done. Exercises 1 and 2 break the
// chapter on purpose: their tests pass when the server shows the symptom
// the page predicts. Run one with
// `cargo test --test ch04_expiry -- --ignored exercise_1`; to grade another
// build, point `REDIS_TEST_SERVER` at its binary. `.ci/run` checks both
// halves against the solutions in `tests/solutions/`.
// ---------------------------------------------------------------------------

/// Exercise 1, without the shuffle: 20,000 keys that live a day, set first,
/// then 20,000 that live 300 ms. Walked in insertion order, every sample
/// of the active cycle is all alive, each cycle stops after one round, and
/// the expired keys linger: this test passes when, two seconds after their
/// deadline, more than 10,000 of them are still there. With the shuffle
/// they are gone within about a tenth of a second.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_1_without_the_shuffle_expired_keys_linger() {
    let server = start();
    let mut c = server.client();
    pipeline_sets(&mut c, "long:", 0..20_000, &["EX", "100000"]);
    let set_at = Instant::now();
    pipeline_sets(&mut c, "short:", 0..20_000, &["PX", "300"]);
    // Proving that keys stay: wait for the deadline and two more seconds.
    thread::sleep((Duration::from_millis(2300)).saturating_sub(set_at.elapsed()));
    let left = c.cmd(&["DBSIZE"]).as_int() - 20_000;
    assert!(
        left > 10_000,
        "only {left} of the 20,000 expired keys are left 2 s after their deadline: \
         the active cycle still finds them (is the list still shuffled?)"
    );
}

/// Exercise 2, counters to watch the cycle with: `INFO stats` gives Redis
/// 7.0's `expired_keys` (every key deleted because it expired, lazily or
/// by the cycle) and `expired_time_cap_reached_count` (cycles that ran out
/// of their 25 ms budget). 1,000 keys that live 100 ms: one is read after
/// its deadline (lazy expiry), the cycle takes the rest; the count must be
/// exactly 1,000.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_2_info_stats_counts_expired_keys() {
    let server = start();
    let mut c = server.client();
    let counter = |c: &mut Client, field: &str| -> i64 {
        let value = c
            .info_field("stats", field)
            .unwrap_or_else(|| panic!("INFO stats has no {field} field"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("INFO stats: {field}:{value} is not an integer"))
    };
    assert_eq!(counter(&mut c, "expired_keys"), 0);
    assert!(counter(&mut c, "expired_time_cap_reached_count") >= 0);
    pipeline_sets(&mut c, "short:", 0..1000, &["PX", "100"]);
    c.cmd(&["SET", "long", "v"]);
    poll_until(Duration::from_secs(5), || {
        (c.cmd(&["GET", "short:0"]) == Reply::Nil).then_some(())
    });
    poll_until(Duration::from_secs(5), || {
        (c.cmd(&["DBSIZE"]) == Reply::int(1)).then_some(())
    });
    assert_eq!(counter(&mut c, "expired_keys"), 1000);
}

/// Exercise 3, a fake clock: `DEBUG SET-TIME <unix ms>` makes the server
/// use that time instead of the wall clock, in commands and in the active
/// expiry cycle alike. One step an hour forward: a key set with `EX 10`
/// is gone, one with `EX 7200` has an hour left, and an untouched key with
/// `EX 10` is deleted by the active cycle.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_3_debug_set_time_moves_the_clock() {
    let server = start();
    let mut c = server.client();
    for (key, seconds) in [("a", "10"), ("b", "7200"), ("c", "10")] {
        assert_eq!(c.cmd(&["SET", key, "v", "EX", seconds]), Reply::ok());
    }
    let an_hour_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000;
    assert_eq!(
        c.cmd(&["DEBUG", "SET-TIME", &an_hour_on.to_string()]),
        Reply::ok()
    );
    assert_bytes_eq!(c.cmd_raw(&["TTL", "a"]), int(-2));
    let ttl = c.cmd(&["TTL", "b"]).as_int();
    assert!((3599..=3600).contains(&ttl), "TTL b: {ttl}, expected 3600");
    assert_bytes_eq!(c.cmd_raw(&["GET", "a"]), b"$-1\r\n");
    // `c` is never looked up: only the active cycle can delete it.
    poll_until(Duration::from_secs(5), || {
        (c.cmd(&["DBSIZE"]) == Reply::int(1)).then_some(())
    });
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "b"]), int(1));
}

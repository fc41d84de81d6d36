//! Chapter 3: a shared keyspace with SET, GET, DEL, EXISTS, DBSIZE, FLUSHDB
//! and FLUSHALL (plus everything from chapter 2).
//!
//! Black-box tests. They must pass unchanged against a real Redis 7.0
//! (`REDIS_TEST_SERVER=redis-server cargo test --test ch03_get_set`), so every
//! reply Redis fixes is checked byte for byte. SET options belong to chapter 4
//! and are not used here. The error texts are in `docs/redis-wire.md`,
//! section 2.

mod common;

use common::{clients_at_once, encode_command, encode_str_command, show, Client, Reply, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const BIN: &str = "ch03-get-set";

fn start() -> Server {
    Server::start(BIN)
}

/// The exact bytes of a bulk string reply.
fn bulk(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// The exact bytes of an integer reply.
fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

/// The exact bytes of an arity error for `name` (lower case, as Redis shows it).
fn arity_error(name: &str) -> Vec<u8> {
    format!("-ERR wrong number of arguments for '{name}' command\r\n").into_bytes()
}

/// Sends `args` (binary) and returns the exact bytes of the reply.
#[track_caller]
fn raw(c: &mut Client, args: &[&[u8]]) -> Vec<u8> {
    c.send(&encode_command(args));
    c.read_reply_raw()
}

// ---------------------------------------------------------------------------
// SET and GET
// ---------------------------------------------------------------------------

#[test]
fn set_replies_ok_and_get_returns_the_value() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "greeting", "hello"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "greeting"]), b"$5\r\nhello\r\n");
    // Command names are case-insensitive; keys are not.
    assert_bytes_eq!(c.cmd_raw(&["set", "Key", "upper"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["sEt", "key", "lower"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["get", "Key"]), b"$5\r\nupper\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GeT", "key"]), b"$5\r\nlower\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "KEY"]), b"$-1\r\n");
}

#[test]
fn get_of_a_missing_key_is_a_null_bulk() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["GET", "nosuchkey"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", ""]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn values_that_look_like_replies_come_back_as_bulk_strings() {
    let server = start();
    let mut c = server.client();
    for value in [
        "123", "-1", "0", "+OK", "-ERR x", ":5", "$-1", "*0", "nil", " ",
    ] {
        assert_bytes_eq!(c.cmd_raw(&["SET", "k", value]), b"+OK\r\n");
        assert_bytes_eq!(
            c.cmd_raw(&["GET", "k"]),
            bulk(value.as_bytes()),
            "GET after SET k {value:?}"
        );
    }
}

#[test]
fn set_overwrites_the_old_value() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "first"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "second, longer value"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$20\r\nsecond, longer value\r\n");
    // A shorter value replaces a longer one completely.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "3rd"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$3\r\n3rd\r\n");
    // The same value again is fine too.
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "3rd"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn set_and_get_through_inline_commands() {
    let server = start();
    let mut c = server.client();
    c.send(b"SET inline \"hello world\\x00!\"\r\n");
    assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n");
    c.send(b"GET inline\r\n");
    assert_bytes_eq!(c.read_reply_raw(), b"$13\r\nhello world\x00!\r\n");
    // And the other way round: a multibulk GET of an inline SET.
    c.send(b"set 'quoted key' v\n");
    assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "quoted key"]), b"$1\r\nv\r\n");
}

// ---------------------------------------------------------------------------
// Binary safety and size
// ---------------------------------------------------------------------------

#[test]
fn keys_and_values_are_binary_safe() {
    let server = start();
    let mut c = server.client();
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let mut reversed = every_byte.clone();
    reversed.reverse();

    // All 256 byte values, in a key and in a value.
    assert_bytes_eq!(raw(&mut c, &[b"SET", &every_byte, &reversed]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", &every_byte]), bulk(&reversed));
    assert_bytes_eq!(raw(&mut c, &[b"GET", &reversed]), b"$-1\r\n");

    // CR LF and NUL inside keys and values, and things that look like RESP.
    let tricky_key: &[u8] = b"k\r\ney\x00\r\n";
    let tricky_value: &[u8] = b"\r\n$3\r\nabc\r\n*1\r\n\x00\xff";
    assert_bytes_eq!(raw(&mut c, &[b"SET", tricky_key, tricky_value]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", tricky_key]), bulk(tricky_value));

    // Keys that differ only in a trailing NUL, or in one high byte, are different keys.
    assert_bytes_eq!(raw(&mut c, &[b"SET", b"key", b"plain"]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"SET", b"key\x00", b"nul"]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"SET", b"key\xff", b"ff"]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", b"key"]), b"$5\r\nplain\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", b"key\x00"]), b"$3\r\nnul\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", b"key\xff"]), b"$2\r\nff\r\n");
    // Invalid UTF-8 is not normalised: \xc3\xa9 and \xe9 are different keys.
    assert_bytes_eq!(raw(&mut c, &[b"SET", b"caf\xc3\xa9", b"utf8"]), b"+OK\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", b"caf\xe9"]), b"$-1\r\n");
    assert_bytes_eq!(raw(&mut c, &[b"GET", b"caf\xc3\xa9"]), b"$4\r\nutf8\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":6\r\n");
}

#[test]
fn empty_key_and_empty_value() {
    let server = start();
    let mut c = server.client();
    // An empty value is stored and comes back as an empty bulk, not nil.
    assert_bytes_eq!(c.cmd_raw(&["SET", "empty-value", ""]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "empty-value"]), b"$0\r\n\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "empty-value"]), b":1\r\n");
    // The empty key is a key like any other.
    assert_bytes_eq!(c.cmd_raw(&["GET", ""]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "", "for the empty key"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", ""]), b"$17\r\nfor the empty key\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", ""]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "", ""]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", ""]), b"$0\r\n\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":2\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", ""]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", ""]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

#[test]
fn a_value_of_eight_mebibytes() {
    let server = start();
    let mut c = server.client();
    let value: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let writer = c.send_in_background(encode_command(&[b"SET", b"big", &value]));
    let reply = c.read_reply_raw();
    writer.join().unwrap().expect("sending 8 MiB failed");
    assert_bytes_eq!(reply, b"+OK\r\n");

    // Read it back twice, from this client and from another one.
    for reader in [&mut c, &mut server.client()] {
        let got = reader.cmd(&["GET", "big"]);
        let got = got.as_bulk();
        assert_eq!(got.len(), value.len(), "length of the 8 MiB value");
        if let Some(at) = got.iter().zip(&value).position(|(a, b)| a != b) {
            panic!(
                "the 8 MiB value differs at byte {at}: got b\"{}\"",
                show(&got[at..(at + 16).min(got.len())])
            );
        }
    }
    // Overwriting it with a small value frees nothing we can see, but works.
    assert_bytes_eq!(c.cmd_raw(&["SET", "big", "small"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "big"]), b"$5\r\nsmall\r\n");
}

// ---------------------------------------------------------------------------
// Arity
// ---------------------------------------------------------------------------

#[test]
fn arity_errors_name_the_lower_case_command() {
    let server = start();
    let mut c = server.client();
    let cases: &[(&[&str], &str)] = &[
        (&["GET"], "get"),
        (&["GET", "a", "b"], "get"),
        (&["get", "a", "b", "c"], "get"),
        (&["SET"], "set"),
        (&["SET", "k"], "set"),
        (&["sEt", "k"], "set"),
        (&["DEL"], "del"),
        (&["del"], "del"),
        (&["EXISTS"], "exists"),
        (&["Exists"], "exists"),
        (&["DBSIZE", "x"], "dbsize"),
        (&["dbsize", "x", "y"], "dbsize"),
    ];
    for (args, name) in cases {
        assert_bytes_eq!(c.cmd_raw(args), arity_error(name), "reply to {args:?}");
    }
    // Nothing was stored by the rejected commands, and the connection is fine.
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn set_with_an_extra_argument_is_a_syntax_error_and_stores_nothing() {
    // SET k v <anything> parses <anything> as an option (chapter 4); an
    // unknown word is a syntax error, not an arity error.
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(
        c.cmd_raw(&["SET", "k", "v", "nosuchoption"]),
        b"-ERR syntax error\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
}

// ---------------------------------------------------------------------------
// DEL, EXISTS, DBSIZE, FLUSHDB, FLUSHALL
// ---------------------------------------------------------------------------

#[test]
fn del_counts_the_keys_it_removed() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["DEL", "nokey"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    // A key named twice is removed once.
    assert_bytes_eq!(c.cmd_raw(&["DEL", "k", "nokey", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "k"]), b":0\r\n");

    for key in ["a", "b", "c", "d"] {
        assert_bytes_eq!(c.cmd_raw(&["SET", key, key]), b"+OK\r\n");
    }
    assert_bytes_eq!(c.cmd_raw(&["DEL", "a", "b", "x", "c"]), b":3\r\n");
    assert_bytes_eq!(c.cmd_raw(&["GET", "d"]), b"$1\r\nd\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");

    // Many keys in one DEL.
    let keys: Vec<String> = (0..100).map(|i| format!("many:{i}")).collect();
    for key in &keys {
        assert_bytes_eq!(c.cmd_raw(&["SET", key, "x"]), b"+OK\r\n");
    }
    let mut args = vec!["del"];
    args.extend(keys.iter().map(String::as_str));
    args.push("d");
    assert_bytes_eq!(c.cmd_raw(&args), b":101\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn exists_counts_every_argument_duplicates_included() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k"]), b":1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "k", "k", "nokey"]), b":2\r\n");
    assert_bytes_eq!(c.cmd_raw(&["EXISTS", "nokey", "nokey"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "other", "v"]), b"+OK\r\n");
    assert_bytes_eq!(
        c.cmd_raw(&["exists", "k", "other", "k", "other", "k", "K"]),
        b":5\r\n"
    );
    // EXISTS does not create anything.
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":2\r\n");
}

#[test]
fn dbsize_follows_sets_overwrites_and_dels() {
    let server = start();
    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
    for i in 0..10 {
        assert_bytes_eq!(c.cmd_raw(&["SET", &format!("key:{i}"), "v"]), b"+OK\r\n");
        assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), int(i + 1));
    }
    // Overwrites do not add keys.
    for i in 0..10 {
        assert_bytes_eq!(c.cmd_raw(&["SET", &format!("key:{i}"), "w"]), b"+OK\r\n");
    }
    assert_bytes_eq!(c.cmd_raw(&["dbsize"]), b":10\r\n");
    // Failed commands and lookups do not either.
    assert_bytes_eq!(c.cmd_raw(&["GET", "missing"]), b"$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "missing"]), b":0\r\n");
    assert_bytes_eq!(c.cmd_raw(&["SET", "x"]), arity_error("set"));
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":10\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DEL", "key:0", "key:5", "key:9"]), b":3\r\n");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":7\r\n");
}

#[test]
fn flushall_and_flushdb_empty_the_keyspace_for_everyone() {
    let server = start();
    let mut a = server.client();
    let mut b = server.client();
    for i in 0..50 {
        assert_bytes_eq!(a.cmd_raw(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    assert_bytes_eq!(b.cmd_raw(&["DBSIZE"]), b":50\r\n");
    assert_bytes_eq!(b.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
    assert_bytes_eq!(a.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_bytes_eq!(a.cmd_raw(&["GET", "k0"]), b"$-1\r\n");
    assert_bytes_eq!(a.cmd_raw(&["EXISTS", "k0", "k49"]), b":0\r\n");
    // Flushing an empty keyspace is fine.
    assert_bytes_eq!(a.cmd_raw(&["flushall"]), b"+OK\r\n");

    // The keyspace is usable afterwards, and FLUSHDB does the same.
    assert_bytes_eq!(a.cmd_raw(&["SET", "again", "1"]), b"+OK\r\n");
    assert_bytes_eq!(b.cmd_raw(&["GET", "again"]), b"$1\r\n1\r\n");
    assert_bytes_eq!(b.cmd_raw(&["FLUSHDB"]), b"+OK\r\n");
    assert_bytes_eq!(a.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_bytes_eq!(a.cmd_raw(&["GET", "again"]), b"$-1\r\n");
    assert_bytes_eq!(a.cmd_raw(&["flushdb"]), b"+OK\r\n");
    assert_bytes_eq!(a.cmd_raw(&["SET", "again", "2"]), b"+OK\r\n");
    assert_bytes_eq!(b.cmd_raw(&["GET", "again"]), b"$1\r\n2\r\n");
}

#[test]
fn flush_accepts_sync_and_async_and_rejects_other_words() {
    // Redis 7.0: FLUSHALL/FLUSHDB [ASYNC|SYNC]; anything else is a syntax
    // error (their arity is -1, so never an arity error).
    let server = start();
    let mut c = server.client();
    for args in [
        &["FLUSHALL", "SYNC"][..],
        &["FLUSHALL", "async"],
        &["FLUSHDB", "ASYNC"],
        &["flushdb", "sync"],
    ] {
        assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
        assert_bytes_eq!(c.cmd_raw(args), b"+OK\r\n", "reply to {args:?}");
        assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n", "after {args:?}");
    }
    assert_bytes_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    for args in [
        &["FLUSHALL", "x"][..],
        &["FLUSHDB", "x"],
        &["FLUSHDB", "ASYNC", "x"],
        &["FLUSHALL", "SYNC", "SYNC"],
    ] {
        assert_bytes_eq!(
            c.cmd_raw(args),
            b"-ERR syntax error\r\n",
            "reply to {args:?}"
        );
    }
    // The rejected flushes flushed nothing.
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

// ---------------------------------------------------------------------------
// COMMAND knows the new commands
// ---------------------------------------------------------------------------

#[test]
fn command_info_describes_the_new_commands() {
    let server = start();
    let mut c = server.client();
    // name, arity, first key, last key, key step (as in Redis 7.0).
    let expected: &[(&str, i64, i64, i64, i64)] = &[
        ("get", 2, 1, 1, 1),
        ("set", -3, 1, 1, 1),
        ("del", -2, 1, -1, 1),
        ("exists", -2, 1, -1, 1),
        ("dbsize", 1, 0, 0, 0),
        ("flushdb", -1, 0, 0, 0),
        ("flushall", -1, 0, 0, 0),
    ];
    let mut args = vec!["COMMAND", "INFO"];
    args.extend(expected.iter().map(|row| row.0));
    let info = c.cmd(&args);
    let info = info.as_array();
    assert_eq!(info.len(), expected.len(), "COMMAND INFO: {info:?}");
    for (entry, &(name, arity, first, last, step)) in info.iter().zip(expected) {
        let entry = entry.as_array();
        assert_eq!(entry[0], Reply::bulk(name));
        assert_eq!(entry[1], Reply::int(arity), "the arity of {name}");
        assert_eq!(
            (entry[3].as_int(), entry[4].as_int(), entry[5].as_int()),
            (first, last, step),
            "the key positions of {name}"
        );
    }
    // The chapter 2 commands are still there.
    assert_bytes_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    assert_bytes_eq!(c.cmd_raw(&["ECHO", "still"]), b"$5\r\nstill\r\n");
    let count = c.cmd(&["COMMAND", "COUNT"]).as_int();
    assert!(count >= 11, "COMMAND COUNT is {count}");
}

// ---------------------------------------------------------------------------
// Sharing between connections
// ---------------------------------------------------------------------------

#[test]
fn what_one_client_writes_another_reads() {
    let server = start();
    let mut writer = server.client();
    let mut reader = server.client();
    assert_bytes_eq!(reader.cmd_raw(&["GET", "shared"]), b"$-1\r\n");
    assert_bytes_eq!(writer.cmd_raw(&["SET", "shared", "from A"]), b"+OK\r\n");
    assert_bytes_eq!(reader.cmd_raw(&["GET", "shared"]), b"$6\r\nfrom A\r\n");
    assert_bytes_eq!(reader.cmd_raw(&["SET", "shared", "from B"]), b"+OK\r\n");
    assert_bytes_eq!(writer.cmd_raw(&["GET", "shared"]), b"$6\r\nfrom B\r\n");
    assert_bytes_eq!(reader.cmd_raw(&["DEL", "shared"]), b":1\r\n");
    assert_bytes_eq!(writer.cmd_raw(&["EXISTS", "shared"]), b":0\r\n");

    // The data outlives the connection that wrote it.
    assert_bytes_eq!(writer.cmd_raw(&["SET", "durable", "yes"]), b"+OK\r\n");
    assert_bytes_eq!(writer.cmd_raw(&["QUIT"]), b"+OK\r\n");
    writer.expect_closed();
    drop(writer);
    let mut late = server.client();
    assert_bytes_eq!(late.cmd_raw(&["GET", "durable"]), b"$3\r\nyes\r\n");
}

#[test]
fn many_concurrent_clients_writing_disjoint_keys() {
    const CLIENTS: usize = 50;
    const KEYS: usize = 200;
    let server = start();
    let port = server.port();
    clients_at_once(port, CLIENTS, |id, mut c| {
        for i in 0..KEYS {
            let key = format!("client:{id}:key:{i}");
            let value = format!("value {id}/{i} {}", "#".repeat((id + i) % 23));
            assert_bytes_eq!(c.cmd_raw(&["SET", &key, &value]), b"+OK\r\n", "SET {key}");
            // Read our own write back at once, now and then.
            if i % 10 == 0 {
                assert_bytes_eq!(c.cmd_raw(&["GET", &key]), bulk(value.as_bytes()));
            }
        }
    });

    let mut c = server.client();
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), int((CLIENTS * KEYS) as i64));
    // A sample of keys from every client, read by a client that wrote none.
    for id in 0..CLIENTS {
        for i in [0, 1, 57, 133, KEYS - 1] {
            let key = format!("client:{id}:key:{i}");
            let value = format!("value {id}/{i} {}", "#".repeat((id + i) % 23));
            assert_bytes_eq!(
                c.cmd_raw(&["GET", &key]),
                bulk(value.as_bytes()),
                "GET {key}"
            );
        }
    }
    let mut args = vec!["EXISTS".to_string()];
    args.extend((0..CLIENTS).map(|id| format!("client:{id}:key:{}", id % KEYS)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_bytes_eq!(c.cmd_raw(&args), int(CLIENTS as i64));
}

#[test]
fn concurrent_writers_to_one_key_never_leave_a_torn_value() {
    const WRITERS: usize = 6;
    const ROUNDS: usize = 40;
    const READERS: usize = 2;
    const LEN: usize = 64 * 1024;
    // Each writer's value is its own byte repeated: any mix of two values,
    // or a value cut short, is visible at once.
    fn value_of(id: usize) -> Vec<u8> {
        vec![b'A' + id as u8; LEN]
    }
    #[track_caller]
    fn check_whole(got: &[u8], context: &str) {
        assert_eq!(got.len(), LEN, "{context}: a value of the wrong length");
        let first = got[0];
        assert!(
            (b'A'..b'A' + WRITERS as u8).contains(&first),
            "{context}: a value nobody wrote, starting b\"{}\"",
            show(&got[..16])
        );
        if let Some(at) = got.iter().position(|&b| b != first) {
            panic!(
                "{context}: a torn value: {:?} up to byte {at}, then {:?}",
                char::from(first),
                char::from(got[at])
            );
        }
    }

    let server = start();
    let port = server.port();
    let mut c = server.client();
    c.send(&encode_command(&[b"SET", b"contended", &value_of(0)]));
    assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n");

    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WRITERS + READERS));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (done, barrier) = (Arc::clone(&done), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut c = Client::connect(port);
                barrier.wait();
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    let got = c.cmd(&["GET", "contended"]);
                    check_whole(got.as_bulk(), &format!("reader {r}, read {reads}"));
                    reads += 1;
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut c = Client::connect(port);
                let request = encode_command(&[b"SET", b"contended", &value_of(id)]);
                barrier.wait();
                for round in 0..ROUNDS {
                    c.send(&request);
                    assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n", "writer {id} round {round}");
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

    let last = c.cmd(&["GET", "contended"]);
    check_whole(last.as_bulk(), "the final value");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":1\r\n");
}

// ---------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------

#[test]
fn pipelined_sets_and_gets_run_in_order() {
    let server = start();
    let mut c = server.client();
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let key = format!("p:{}", i % 100);
        let value = format!("v{i}");
        // A GET before the first SET of a key sees nothing; after, it sees
        // exactly the value the previous command in this pipeline wrote.
        pipeline.extend(encode_str_command(&["GET", &key]));
        if i < 100 {
            expected.extend_from_slice(b"$-1\r\n");
        } else {
            expected.extend(bulk(format!("v{}", i - 100).as_bytes()));
        }
        pipeline.extend(encode_str_command(&["SET", &key, &value]));
        expected.extend_from_slice(b"+OK\r\n");
        pipeline.extend(encode_str_command(&["GET", &key]));
        expected.extend(bulk(value.as_bytes()));
        if i % 100 == 99 {
            pipeline.extend(encode_str_command(&["EXISTS", &key, "nokey", &key]));
            expected.extend_from_slice(b":2\r\n");
            pipeline.extend(encode_str_command(&["DBSIZE"]));
            expected.extend_from_slice(b":100\r\n");
        }
    }
    pipeline.extend(encode_str_command(&["DEL", "p:0", "p:1", "nokey"]));
    expected.extend_from_slice(b":2\r\n");
    pipeline.extend(encode_str_command(&["DBSIZE"]));
    expected.extend_from_slice(b":98\r\n");
    let writer = c.send_in_background(pipeline);
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.extend(c.read_reply_raw());
    }
    writer.join().unwrap().expect("sending the pipeline failed");
    assert_bytes_eq!(got, expected);
    c.expect_no_reply(Duration::from_millis(20));
}

#[test]
fn a_pipeline_of_mixed_commands_in_one_write() {
    let server = start();
    let mut c = server.client();
    let mut pipeline = Vec::new();
    pipeline.extend(encode_command(&[b"SET", b"bin\x00key", b"\r\n"]));
    pipeline.extend(encode_str_command(&["GET"]));
    pipeline.extend_from_slice(b"GET nokey\r\n");
    pipeline.extend(encode_command(&[b"GET", b"bin\x00key"]));
    pipeline.extend(encode_str_command(&["PING"]));
    pipeline.extend(encode_str_command(&["DEL", "bin\0key"]));
    pipeline.extend(encode_str_command(&["EXISTS", "bin\0key"]));
    c.send(&pipeline);
    let mut expected = b"+OK\r\n".to_vec();
    expected.extend(arity_error("get"));
    expected.extend_from_slice(b"$-1\r\n$2\r\n\r\n\r\n+PONG\r\n:1\r\n:0\r\n");
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.extend(c.read_reply_raw());
    }
    assert_bytes_eq!(got, expected);
}

// ---------------------------------------------------------------------------
// Many keys
// ---------------------------------------------------------------------------

#[test]
fn ten_thousand_distinct_keys_are_all_kept() {
    let server = start();
    let mut c = server.client();
    let mut pipeline = Vec::new();
    for i in 0..10_000 {
        pipeline.extend(encode_str_command(&[
            "SET",
            &format!("n:{i}"),
            &i.to_string(),
        ]));
    }
    let writer = c.send_in_background(pipeline);
    for i in 0..10_000 {
        assert_bytes_eq!(c.read_reply_raw(), b"+OK\r\n", "SET n:{i}");
    }
    writer.join().unwrap().expect("sending the pipeline failed");
    assert_bytes_eq!(c.cmd_raw(&["DBSIZE"]), b":10000\r\n");
    for i in (0..10_000).step_by(97).chain([9_999]) {
        let got = c.cmd(&["GET", &format!("n:{i}")]);
        assert_eq!(got, Reply::bulk(&i.to_string()), "GET n:{i}");
    }
}

// ---------------------------------------------------------------------------
// Exercises (docs/03-get-set.md, "Exercises"). Each test is ignored, so the
// suite above passes on the chapter as shipped; each fails on the chapter as
// shipped and passes once the exercise is solved. Run one with
// `cargo test --test ch03_get_set -- --ignored exercise_1`; to grade another
// build, point `REDIS_TEST_SERVER` at its binary. `.ci/run` checks both
// halves, against the real Redis or the solutions in `tests/solutions/`.
// ---------------------------------------------------------------------------

/// Exercise 1: `MGET` and `STRLEN` as Redis 7.0 answers them, with the
/// arity, flags and key positions of `COMMAND INFO`.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_1_mget_and_strlen() {
    let server = start();
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "a", "hello"]), Reply::ok());
    c.cmd_bytes(&[b"SET", b"bin", b"\x00\r\n\xff"]);
    let mut expected = b"*4\r\n".to_vec();
    for part in [
        bulk(b"hello"),
        b"$-1\r\n".to_vec(),
        bulk(b"\x00\r\n\xff"),
        bulk(b"hello"),
    ] {
        expected.extend(part);
    }
    assert_bytes_eq!(c.cmd_raw(&["MGET", "a", "nope", "bin", "a"]), expected);
    assert_bytes_eq!(c.cmd_raw(&["mget", "nope"]), b"*1\r\n$-1\r\n");
    assert_bytes_eq!(c.cmd_raw(&["STRLEN", "a"]), int(5));
    assert_bytes_eq!(c.cmd_raw(&["STRLEN", "bin"]), int(4));
    assert_bytes_eq!(c.cmd_raw(&["strlen", "nope"]), int(0));
    assert_bytes_eq!(c.cmd_raw(&["MGET"]), arity_error("mget"));
    assert_bytes_eq!(c.cmd_raw(&["STRLEN"]), arity_error("strlen"));
    assert_bytes_eq!(c.cmd_raw(&["STRLEN", "a", "b"]), arity_error("strlen"));

    let info = c.cmd(&["COMMAND", "INFO", "mget", "strlen"]);
    let info = info.as_array();
    let readonly_fast = Reply::Array(vec![Reply::simple("readonly"), Reply::simple("fast")]);
    for (entry, name, arity, last) in [(&info[0], "mget", -2, -1), (&info[1], "strlen", 2, 1)] {
        let entry = entry.as_array();
        assert_eq!(entry[0], Reply::bulk(name));
        assert_eq!(entry[1], Reply::int(arity), "the arity of {name}");
        assert_eq!(entry[2], readonly_fast, "the flags of {name}");
        assert_eq!(
            &entry[3..6],
            &[Reply::int(1), Reply::int(last), Reply::int(1)],
            "the key positions of {name} (first, last, step)"
        );
    }
}

/// Exercise 2: `GET` must not copy the value. Four clients ask for a
/// 32 MiB value and read nothing of the reply, so the server's threads
/// stay blocked writing it: the server's memory (`VmRSS`) may not grow by
/// as much as one copy of the value while they wait.
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_2_get_does_not_copy_the_value() {
    const SIZE: usize = 32 * 1024 * 1024;
    const READERS: usize = 4;
    let server = start();
    let mut c = server.client();
    let value: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.cmd_bytes(&[b"SET", b"big", &value]), Reply::ok());
    let before = common::rss_kib(server.pid());
    let header = format!("${SIZE}\r\n");
    let mut readers: Vec<Client> = (0..READERS).map(|_| server.client()).collect();
    for reader in &mut readers {
        reader.send(b"GET big\r\n");
        // The start of the reply: the server is writing it now, and stays
        // blocked on the rest, since nobody reads it.
        assert_bytes_eq!(reader.read_exact(header.len()), header);
    }
    let grown = common::rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < (SIZE / 1024) as u64,
        "with {READERS} readers of a {} MiB value in flight, the server grew by {} MiB: GET copied the value",
        SIZE >> 20,
        grown >> 10
    );
    for mut reader in readers {
        let rest = reader.read_exact(SIZE + 2);
        assert!(rest[..SIZE] == value[..], "GET returned other bytes");
    }
}

/// Exercise 3: `FLUSHDB ASYNC` must not make anyone wait for the memory to
/// be freed. With 500,000 keys, both the `FLUSHDB ASYNC` itself and a `GET`
/// another client sends right behind it must answer within 60 ms (the
/// chapter as shipped, which frees the keys under the lock, takes about
/// 125 ms in a debug build).
#[test]
#[ignore = "exercise: run with --ignored"]
fn exercise_3_flushdb_async_does_not_block() {
    use std::time::Instant;
    const KEYS: usize = 500_000;
    const LIMIT: Duration = Duration::from_millis(60);
    let server = start();
    let mut loader = server.client();
    let mut batch = Vec::new();
    for i in 0..KEYS {
        batch.extend(encode_str_command(&["SET", &format!("key:{i}"), "value"]));
    }
    let writer = loader.send_in_background(batch);
    for _ in 0..KEYS {
        loader.read_reply_raw();
    }
    writer.join().unwrap().expect("loading failed");
    assert_eq!(loader.cmd(&["DBSIZE"]), Reply::int(KEYS as i64));

    let mut flusher = server.client();
    let mut other = server.client();
    assert_eq!(other.cmd(&["GET", "key:1"]), Reply::bulk("value"));
    let started = Instant::now();
    flusher.send(&encode_str_command(&["FLUSHDB", "ASYNC"]));
    other.send(&encode_str_command(&["GET", "key:1"]));
    let other_reply = other.read_reply();
    let other_took = started.elapsed();
    let flush_reply = flusher.read_reply();
    let flush_took = started.elapsed();
    assert_eq!(flush_reply, Reply::ok());
    assert!(
        other_reply == Reply::Nil || other_reply == Reply::bulk("value"),
        "GET: {other_reply:?}"
    );
    assert!(
        flush_took < LIMIT && other_took < LIMIT,
        "FLUSHDB ASYNC of {KEYS} keys took {flush_took:?}, and a GET behind it {other_took:?}: \
         the goal is under {LIMIT:?} for both"
    );
    assert_eq!(loader.cmd(&["DBSIZE"]), Reply::int(0));
}

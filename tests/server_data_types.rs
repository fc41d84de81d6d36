//! Lists, hashes and sets in the final server, black-box over TCP: each
//! command and its edge cases, the keyspace-wide rules (TYPE, WRONGTYPE,
//! an empty aggregate is deleted), RESP3's sets and maps, and, against a
//! real redis-server 7.0 side by side: random command sequences compared
//! reply for reply, RDB files both ways (with redis-check-rdb on ours),
//! full syncs both ways, and the uniformity of the random commands.
//!
//! The first group passes against the final server and against
//! `REDIS_TEST_SERVER=redis-server`; the interop group needs the real
//! redis-server on PATH (skipped without it, failed under CI).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::{poll_until, Client, Reply, Server};

const BIN: &str = "redis-from-scratch";
const DEADLINE: Duration = Duration::from_secs(30);
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn server() -> Server {
    Server::start_with(BIN, &["--save", ""])
}

/// Runs each `(command, expected reply)` pair, naming the command on failure.
fn expect(c: &mut Client, cases: &[(&str, Reply)]) {
    for (line, want) in cases {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(&c.cmd(&words), want, "{line}");
    }
}

fn int(n: i64) -> Reply {
    Reply::int(n)
}

fn bulks(items: &[&str]) -> Reply {
    Reply::bulks(items)
}

fn err(text: &str) -> Reply {
    Reply::err(text)
}

fn empty() -> Reply {
    Reply::Array(Vec::new())
}

#[test]
fn list_commands_and_their_edge_cases() {
    let s = server();
    let mut c = s.client();
    expect(
        &mut c,
        &[
            ("RPUSH l a b c d e", int(5)),
            ("LPUSH l y x", int(7)),
            ("LRANGE l 0 -1", bulks(&["x", "y", "a", "b", "c", "d", "e"])),
            ("LRANGE l -3 -1", bulks(&["c", "d", "e"])),
            ("LRANGE l 5 2", empty()),
            ("LRANGE l -100 100", bulks(&["x", "y", "a", "b", "c", "d", "e"])),
            ("LRANGE l a b", err("ERR value is not an integer or out of range")),
            ("LRANGE nolist 0 -1", empty()),
            ("LINDEX l 0", Reply::bulk("x")),
            ("LINDEX l -1", Reply::bulk("e")),
            ("LINDEX l 100", Reply::Nil),
            ("LINDEX l x", err("ERR value is not an integer or out of range")),
            ("LLEN l", int(7)),
            ("LLEN nolist", int(0)),
            ("LPOP l", Reply::bulk("x")),
            ("RPOP l", Reply::bulk("e")),
            ("LPOP l 2", bulks(&["y", "a"])),
            ("RPOP l 2", bulks(&["d", "c"])),
            ("RPOP l 0", empty()),
            ("LPOP nolist 3", Reply::NilArray),
            ("LPOP nolist", Reply::Nil),
            ("LPOP l -1", err("ERR value is out of range, must be positive")),
            ("LPOP l 1 2", err("ERR wrong number of arguments for 'lpop' command")),
            ("LPOP l 5", bulks(&["b"])),
            ("EXISTS l", int(0)),
            ("RPUSH l a b c", int(3)),
            ("LSET l 0 A", Reply::ok()),
            ("LSET l -1 C", Reply::ok()),
            ("LSET l 3 x", err("ERR index out of range")),
            ("LSET nolist 0 x", err("ERR no such key")),
            ("LINSERT l BEFORE b B", int(4)),
            ("LINSERT l after b b2", int(5)),
            ("LINSERT l after nope x", int(-1)),
            ("LINSERT nolist after b x", int(0)),
            ("LINSERT l middle b x", err("ERR syntax error")),
            ("LRANGE l 0 -1", bulks(&["A", "B", "b", "b2", "C"])),
            ("RPUSH r a b a c a", int(5)),
            ("LREM r -2 a", int(2)),
            ("LRANGE r 0 -1", bulks(&["a", "b", "c"])),
            ("LREM r 0 zz", int(0)),
            ("LREM r x a", err("ERR value is not an integer or out of range")),
            ("LTRIM l 1 -2", Reply::ok()),
            ("LRANGE l 0 -1", bulks(&["B", "b", "b2"])),
            ("LTRIM l 5 1", Reply::ok()),
            ("EXISTS l", int(0)),
            ("RPUSHX l a", int(0)),
            ("LPUSHX r z", int(4)),
            ("RPUSH p a b a c a", int(5)),
            ("LPOS p a", int(0)),
            ("LPOS p a RANK -1", int(4)),
            ("LPOS p a RANK 2", int(2)),
            ("LPOS p a COUNT 0", Reply::Array(vec![int(0), int(2), int(4)])),
            ("LPOS p a COUNT 2 RANK -1", Reply::Array(vec![int(4), int(2)])),
            ("LPOS p a MAXLEN 2 COUNT 0", Reply::Array(vec![int(0)])),
            ("LPOS p z", Reply::Nil),
            ("LPOS p z COUNT 0", empty()),
            ("LPOS p a RANK 0", err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")),
            ("LPOS p a COUNT -1", err("ERR COUNT can't be negative")),
            ("LPOS p a MAXLEN -1", err("ERR MAXLEN can't be negative")),
            ("LPOS p a FOO", err("ERR syntax error")),
            ("LMOVE p m LEFT RIGHT", Reply::bulk("a")),
            ("LMOVE p m RIGHT LEFT", Reply::bulk("a")),
            ("LRANGE m 0 -1", bulks(&["a", "a"])),
            ("LMOVE p m LEFT UP", err("ERR syntax error")),
            ("RPOPLPUSH p p", Reply::bulk("c")),
            ("LRANGE p 0 -1", bulks(&["c", "b", "a"])),
            ("RPOPLPUSH nolist m", Reply::Nil),
            ("LMPOP 2 nolist p LEFT COUNT 2", Reply::Array(vec![Reply::bulk("p"), bulks(&["c", "b"])])),
            ("LMPOP 1 nolist RIGHT", Reply::NilArray),
            ("LMPOP 0 p LEFT", err("ERR numkeys should be greater than 0")),
            ("LMPOP 3 p LEFT", err("ERR syntax error")),
            ("LMPOP 1 p LEFT COUNT 0", err("ERR count should be greater than 0")),
            ("LMPOP 1 p UP", err("ERR syntax error")),
        ],
    );
}

#[test]
fn hash_commands_and_their_edge_cases() {
    let s = server();
    let mut c = s.client();
    expect(
        &mut c,
        &[
            ("HSET h a 1 b 2 c 3", int(3)),
            ("HSET h a 9", int(0)),
            ("HSET h a", err("ERR wrong number of arguments for 'hset' command")),
            ("HMSET h a", err("ERR wrong number of arguments for 'hmset' command")),
            ("HMSET h d 4", Reply::ok()),
            ("HGET h a", Reply::bulk("9")),
            ("HGET h zz", Reply::Nil),
            ("HGET nohash a", Reply::Nil),
            ("HMGET h a zz b", Reply::Array(vec![Reply::bulk("9"), Reply::Nil, Reply::bulk("2")])),
            ("HGETALL h", bulks(&["a", "9", "b", "2", "c", "3", "d", "4"])),
            ("HKEYS h", bulks(&["a", "b", "c", "d"])),
            ("HVALS h", bulks(&["9", "2", "3", "4"])),
            ("HGETALL nohash", empty()),
            ("HLEN h", int(4)),
            ("HEXISTS h a", int(1)),
            ("HEXISTS h zz", int(0)),
            ("HSTRLEN h a", int(1)),
            ("HDEL h a zz", int(1)),
            ("HGETALL h", bulks(&["b", "2", "c", "3", "d", "4"])),
            ("HSETNX h b 5", int(0)),
            ("HSETNX h e 5", int(1)),
            ("HINCRBY h e 10", int(15)),
            ("HINCRBY h new -3", int(-3)),
            ("HINCRBY h e x", err("ERR value is not an integer or out of range")),
            ("HSET h big 9223372036854775807 s xx", int(2)),
            ("HINCRBY h big 1", err("ERR increment or decrement would overflow")),
            ("HINCRBY h s 1", err("ERR hash value is not an integer")),
            ("HINCRBYFLOAT h s 1", err("ERR hash value is not a float")),
            ("HINCRBYFLOAT h f 10.50", Reply::bulk("10.5")),
            ("HINCRBYFLOAT h f 0.1", Reply::bulk("10.6")),
            ("HINCRBYFLOAT h g 3.0e3", Reply::bulk("3000")),
            ("HINCRBYFLOAT h f x", err("ERR value is not a valid float")),
            ("HINCRBYFLOAT h f inf", err("ERR value is NaN or Infinity")),
            ("HINCRBYFLOAT l f x", err("ERR value is not a valid float")),
            ("HRANDFIELD nohash", Reply::Nil),
            ("HRANDFIELD nohash 3", empty()),
            ("HRANDFIELD h 0", empty()),
            ("HRANDFIELD h x", err("ERR value is not an integer or out of range")),
            ("HRANDFIELD h -9223372036854775808", err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            ("HRANDFIELD h 1 FOO", err("ERR syntax error")),
            ("HSCAN h x", err("ERR invalid cursor")),
            ("HSCAN h 0 COUNT 0", err("ERR syntax error")),
            ("HSCAN h 0 MATCH", err("ERR syntax error")),
            ("HSCAN h 0 MATCH b*", Reply::Array(vec![Reply::bulk("0"), bulks(&["b", "2", "big", "9223372036854775807"])])),
            ("HDEL h b c d e new big s f g", int(9)),
            ("EXISTS h", int(0)),
        ],
    );
    // HRANDFIELD: a positive count gives distinct fields, a negative one
    // may repeat; every field picked is in the hash.
    c.cmd(&["HSET", "r", "a", "1", "b", "2", "c", "3"]);
    let all = c.cmd(&["HRANDFIELD", "r", "10", "WITHVALUES"]);
    assert_eq!(all, bulks(&["a", "1", "b", "2", "c", "3"]));
    let two = c.cmd(&["HRANDFIELD", "r", "2"]);
    let two = two.as_array();
    assert!(two.len() == 2 && two[0] != two[1], "{two:?}");
    let many = c.cmd(&["HRANDFIELD", "r", "-20"]);
    assert_eq!(many.as_array().len(), 20);
}

#[test]
fn set_commands_and_their_edge_cases() {
    let s = server();
    let mut c = s.client();
    expect(
        &mut c,
        &[
            ("SADD s 3 1 2 2", int(3)),
            // A set of small integers answers in order, as Redis's intset.
            ("SMEMBERS s", bulks(&["1", "2", "3"])),
            ("SCARD s", int(3)),
            ("SISMEMBER s 1", int(1)),
            ("SISMEMBER s 01", int(0)),
            ("SMISMEMBER s 1 9", Reply::Array(vec![int(1), int(0)])),
            ("SADD t 2 3 4", int(3)),
            ("SINTER s t", bulks(&["2", "3"])),
            ("SUNION s t", bulks(&["1", "2", "3", "4"])),
            ("SDIFF s t", bulks(&["1"])),
            ("SDIFF t s nosuch", bulks(&["4"])),
            ("SINTER s nosuch", empty()),
            ("SINTERSTORE d s t", int(2)),
            ("SMEMBERS d", bulks(&["2", "3"])),
            ("SUNIONSTORE d s t", int(4)),
            ("SDIFFSTORE d s s", int(0)),
            ("EXISTS d", int(0)),
            ("SINTERCARD 2 s t", int(2)),
            ("SINTERCARD 2 s t LIMIT 1", int(1)),
            (
                "SINTERCARD 0 s",
                err("ERR numkeys should be greater than 0"),
            ),
            (
                "SINTERCARD 3 s t",
                err("ERR Number of keys can't be greater than number of args"),
            ),
            (
                "SINTERCARD 2 s t LIMIT -1",
                err("ERR LIMIT can't be negative"),
            ),
            ("SINTERCARD 2 s t FOO", err("ERR syntax error")),
            (
                "SPOP s -1",
                err("ERR value is out of range, must be positive"),
            ),
            ("SPOP s 1 2", err("ERR syntax error")),
            ("SPOP nosuch", Reply::Nil),
            ("SPOP nosuch 2", empty()),
            ("SPOP s 0", empty()),
            ("SRANDMEMBER nosuch", Reply::Nil),
            ("SRANDMEMBER nosuch 2", empty()),
            (
                "SRANDMEMBER s x",
                err("ERR value is not an integer or out of range"),
            ),
            ("SRANDMEMBER s 5", bulks(&["1", "2", "3"])),
            ("SMOVE s t 1", int(1)),
            ("SMOVE s t 9", int(0)),
            ("SMOVE nosuch t 9", int(0)),
            ("SREM s 2 3 zz", int(2)),
            ("EXISTS s", int(0)),
            (
                "SSCAN t 0 MATCH 1*",
                Reply::Array(vec![Reply::bulk("0"), bulks(&["1"])]),
            ),
            ("SSCAN t x", err("ERR invalid cursor")),
        ],
    );
}

#[test]
fn types_across_the_keyspace() {
    let s = server();
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SADD", "s", "m"]);
    c.cmd(&["SADD", "i", "1"]);
    c.cmd(&["SET", "str", "v"]);
    expect(
        &mut c,
        &[
            ("TYPE l", Reply::simple("list")),
            ("TYPE h", Reply::simple("hash")),
            ("TYPE s", Reply::simple("set")),
            ("TYPE str", Reply::simple("string")),
            ("TYPE none", Reply::simple("none")),
            ("GET l", err(WRONGTYPE)),
            ("INCR h", err(WRONGTYPE)),
            ("APPEND s x", err(WRONGTYPE)),
            ("STRLEN l", err(WRONGTYPE)),
            ("GETRANGE l 0 1", err(WRONGTYPE)),
            ("SETRANGE h 0 x", err(WRONGTYPE)),
            ("INCRBYFLOAT s 1", err(WRONGTYPE)),
            ("GETDEL l", err(WRONGTYPE)),
            ("GETEX l", err(WRONGTYPE)),
            ("SET l x GET", err(WRONGTYPE)),
            (
                "MGET l str",
                Reply::Array(vec![Reply::Nil, Reply::bulk("v")]),
            ),
            ("LPUSH str a", err(WRONGTYPE)),
            ("LRANGE h 0 -1", err(WRONGTYPE)),
            ("HGET l f", err(WRONGTYPE)),
            ("HSET s f v", err(WRONGTYPE)),
            ("SADD h m", err(WRONGTYPE)),
            ("SINTER s h", err(WRONGTYPE)),
            ("SMOVE s h m", err(WRONGTYPE)),
            ("LMOVE l h LEFT LEFT", err(WRONGTYPE)),
            ("OBJECT ENCODING l", Reply::bulk("quicklist")),
            ("OBJECT ENCODING h", Reply::bulk("listpack")),
            ("OBJECT ENCODING s", Reply::bulk("hashtable")),
            ("OBJECT ENCODING i", Reply::bulk("intset")),
            ("OBJECT ENCODING none", Reply::Nil),
            ("MEMORY USAGE none", Reply::Nil),
            ("RENAME l l2", Reply::ok()),
            ("LRANGE l2 0 -1", bulks(&["a"])),
            ("COPY h h2", int(1)),
            ("HGETALL h2", bulks(&["f", "v"])),
            ("MOVE s 1", int(1)),
            ("EXISTS s", int(0)),
            ("EXPIRE l2 100", int(1)),
            ("RPUSH l2 b", int(2)),
            ("SET l2 x", Reply::ok()),
            ("TTL l2", int(-1)),
            ("DEL h h2 i", int(3)),
            (
                "SCAN 0 TYPE list",
                Reply::Array(vec![Reply::bulk("0"), empty()]),
            ),
        ],
    );
    // Growing past 512 entries or 64 bytes changes the encoding for good.
    let fields: Vec<String> = (0..513)
        .flat_map(|i| [format!("f{i}"), "v".into()])
        .collect();
    let mut args = vec!["HSET", "big"];
    args.extend(fields.iter().map(String::as_str));
    assert_eq!(c.cmd(&args), int(513));
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]),
        Reply::bulk("hashtable")
    );
    c.cmd(&["HSET", "long", "f", &"x".repeat(65)]);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "long"]),
        Reply::bulk("hashtable")
    );
    let members: Vec<String> = (0..513).map(|i| i.to_string()).collect();
    let mut args = vec!["SADD", "ints"];
    args.extend(members.iter().take(512).map(String::as_str));
    c.cmd(&args);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ints"]),
        Reply::bulk("intset")
    );
    c.cmd(&["SADD", "ints", "512"]);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ints"]),
        Reply::bulk("hashtable")
    );
    assert!(c.cmd(&["MEMORY", "USAGE", "ints"]).as_int() > 513);
}

#[test]
fn info_counts_the_memory_of_every_type() {
    let s = server();
    let mut c = s.client();
    let used = |c: &mut Client| -> u64 {
        let field = c.info_field("memory", "used_memory");
        field
            .and_then(|n| n.parse().ok())
            .expect("INFO memory has used_memory")
    };
    let before = used(&mut c);
    let items: Vec<String> = (0..20_000).map(|i| format!("element-{i:010}")).collect();
    for (command, key) in [("RPUSH", "l"), ("SADD", "s")] {
        for chunk in items.chunks(1000) {
            let mut args = vec![command, key];
            args.extend(chunk.iter().map(String::as_str));
            c.cmd(&args);
        }
    }
    for chunk in items.chunks(500) {
        let mut args = vec!["HSET", "h"];
        for item in chunk {
            args.extend([item.as_str(), item.as_str()]);
        }
        c.cmd(&args);
    }
    // 60,000 elements of 18 bytes at least: over a megabyte.
    let grown = used(&mut c).saturating_sub(before);
    assert!(grown > 1_000_000, "used_memory grew by {grown} bytes only");
    assert_eq!(
        c.info_field("keyspace", "db0").as_deref(),
        Some("keys=3,expires=0,avg_ttl=0")
    );
}

#[test]
fn watch_sees_changes_of_every_type() {
    let s = server();
    let mut c = s.client();
    let mut other = s.client();
    for (setup, change) in [
        (&["RPUSH", "k", "a"][..], &["LPOP", "k"][..]),
        (&["HSET", "k", "f", "v"], &["HDEL", "k", "f"]),
        (&["SADD", "k", "m"], &["SPOP", "k"]),
        (&["SADD", "k", "m"], &["SADD", "k", "n"]),
    ] {
        c.cmd(&["DEL", "k"]);
        c.cmd(setup);
        assert_eq!(c.cmd(&["WATCH", "k"]), Reply::ok());
        other.cmd(change);
        c.cmd(&["MULTI"]);
        c.cmd(&["PING"]);
        assert_eq!(c.cmd(&["EXEC"]), Reply::NilArray, "{change:?}");
    }
    // A change that changes nothing does not abort the transaction.
    c.cmd(&["WATCH", "k"]);
    other.cmd(&["SADD", "k", "m"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["EXEC"]), Reply::Array(vec![Reply::pong()]));
}

#[test]
fn resp3_replies_sets_maps_and_pairs() {
    let s = server();
    let mut c = s.client();
    c.cmd(&["SADD", "s", "1", "2"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["RPUSH", "l", "a"]);
    c.cmd(&["HELLO", "3"]);
    for (words, want) in [
        (&["SMEMBERS", "s"][..], &b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n"[..]),
        (&["SINTER", "s"], b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (&["SPOP", "nosuch", "2"], b"~0\r\n"),
        (&["HGETALL", "h"], b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        (&["HGETALL", "nosuch"], b"%0\r\n"),
        (
            &["HRANDFIELD", "h", "1", "WITHVALUES"],
            b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        (&["SRANDMEMBER", "s", "2"], b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
        (&["LPOP", "nosuch", "1"], b"_\r\n"),
        (&["LPOP", "l", "0"], b"*0\r\n"),
        (&["LMPOP", "1", "nosuch", "LEFT"], b"_\r\n"),
    ] {
        assert_eq!(
            common::show(&c.cmd_raw(words)),
            common::show(want),
            "{words:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Side by side with the real redis-server
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift), so a failing sequence can
/// be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One random list, hash or set command on a few keys and values, chosen
/// so that every reply is deterministic: no SPOP or random picks but
/// where they take everything, and small hashes, whose order is defined.
fn random_command(rng: &mut Rng) -> Vec<String> {
    let keys = ["a", "b", "c"];
    let values = ["1", "2", "3", "-7", "x", "y", "zz", "007", "300", "70000"];
    let n = |rng: &mut Rng| (rng.below(11) as i64 - 5).to_string();
    let k = rng.pick(&keys).to_string();
    let v = |rng: &mut Rng| rng.pick(&values).to_string();
    let words: Vec<String> = match rng.below(34) {
        0 => vec!["LPUSH".into(), k, v(rng), v(rng)],
        1 => vec!["RPUSH".into(), k, v(rng)],
        2 => vec!["LPUSHX".into(), k, v(rng)],
        3 => vec!["RPUSHX".into(), k, v(rng)],
        4 => vec!["LPOP".into(), k],
        5 => vec!["RPOP".into(), k, rng.below(4).to_string()],
        6 => vec!["LRANGE".into(), k, n(rng), n(rng)],
        7 => vec!["LINDEX".into(), k, n(rng)],
        8 => vec!["LSET".into(), k, n(rng), v(rng)],
        9 => vec![
            "LINSERT".into(),
            k,
            rng.pick(&["BEFORE", "AFTER"]).into(),
            v(rng),
            v(rng),
        ],
        10 => vec!["LREM".into(), k, n(rng), v(rng)],
        11 => vec!["LTRIM".into(), k, n(rng), n(rng)],
        12 => vec![
            "LPOS".into(),
            k,
            v(rng),
            "RANK".into(),
            rng.pick(&["1", "-1", "2"]).into(),
            "COUNT".into(),
            rng.below(3).to_string(),
        ],
        13 => vec![
            "LMOVE".into(),
            k,
            rng.pick(&keys).into(),
            rng.pick(&["LEFT", "RIGHT"]).into(),
            rng.pick(&["LEFT", "RIGHT"]).into(),
        ],
        14 => vec![
            "LMPOP".into(),
            "2".into(),
            k,
            rng.pick(&keys).into(),
            "RIGHT".into(),
            "COUNT".into(),
            (1 + rng.below(3)).to_string(),
        ],
        15 => vec!["LLEN".into(), k],
        16 => vec!["HSET".into(), k, v(rng), v(rng)],
        17 => vec!["HSETNX".into(), k, v(rng), v(rng)],
        18 => vec!["HDEL".into(), k, v(rng), v(rng)],
        19 => vec!["HGETALL".into(), k],
        20 => vec!["HINCRBY".into(), k, v(rng), n(rng)],
        21 => vec![
            "HINCRBYFLOAT".into(),
            k,
            v(rng),
            rng.pick(&["0.1", "-2.5", "1e3", "x"]).into(),
        ],
        22 => vec!["HMGET".into(), k, v(rng), v(rng)],
        23 => vec!["HLEN".into(), k],
        24 => vec!["SADD".into(), k, v(rng), v(rng)],
        25 => vec!["SREM".into(), k, v(rng)],
        26 => vec!["SMEMBERS".into(), k],
        27 => vec!["SISMEMBER".into(), k, v(rng)],
        28 => vec!["SINTER".into(), k, rng.pick(&keys).into()],
        29 => vec![
            "SUNIONSTORE".into(),
            rng.pick(&keys).into(),
            k,
            rng.pick(&keys).into(),
        ],
        30 => vec!["SDIFF".into(), k, rng.pick(&keys).into()],
        31 => vec!["SMOVE".into(), k, rng.pick(&keys).into(), v(rng)],
        32 => vec!["SPOP".into(), k, "100".into()],
        _ => vec!["TYPE".into(), k],
    };
    words
}

/// A reply with the order of unordered replies (sets, hash-table
/// members) taken out: their elements sorted.
fn normalized(words: &[String], reply: Reply) -> Reply {
    let unordered = ["SMEMBERS", "SINTER", "SUNION", "SDIFF", "SPOP"];
    match reply {
        Reply::Array(mut items) if unordered.contains(&words[0].as_str()) => {
            items.sort_by_key(|item| format!("{item:?}"));
            Reply::Array(items)
        }
        reply => reply,
    }
}

#[test]
fn random_sequences_reply_as_real_redis_does() {
    skip_if_external!();
    let redis = require_redis_server!();
    let ours = server();
    let real = Server::start_program(&redis, &["--save", "", "--appendonly", "no"]);
    let (mut a, mut b) = (ours.client(), real.client());
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        a.cmd(&["FLUSHALL"]);
        b.cmd(&["FLUSHALL"]);
        let mut history = Vec::new();
        for _ in 0..300 {
            let words = random_command(&mut rng);
            history.push(words.join(" "));
            let args: Vec<&str> = words.iter().map(String::as_str).collect();
            let (mine, theirs) = (a.cmd(&args), b.cmd(&args));
            assert_eq!(
                normalized(&words, mine),
                normalized(&words, theirs),
                "seed {seed}, after:\n{}",
                history.join("\n")
            );
        }
    }
}

/// Fills a server with every type in small and large forms.
fn fill(c: &mut Client) {
    let many = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
    let push = |c: &mut Client, cmd: &str, key: &str, items: Vec<String>| {
        for chunk in items.chunks(200) {
            let mut args = vec![cmd, key];
            args.extend(chunk.iter().map(String::as_str));
            assert!(!c.cmd(&args).is_error());
        }
    };
    push(
        c,
        "RPUSH",
        "list",
        vec!["a".into(), "1".into(), "300".into(), "-5000".into()],
    );
    push(
        c,
        "RPUSH",
        "biglist",
        many(500, &|i| format!("{}{i}", "x".repeat(100))),
    );
    push(
        c,
        "RPUSH",
        "numbers",
        many(3000, &|i| (i as i64 * 7919 - 9_000_000).to_string()),
    );
    push(c, "RPUSH", "huge-element", vec!["y".repeat(10_000)]);
    push(
        c,
        "HSET",
        "hash",
        vec!["f".into(), "v".into(), "n".into(), "7".into()],
    );
    push(
        c,
        "HSET",
        "bighash",
        many(2000, &|i| format!("f{}", i / 2 * 2 + i % 2)),
    );
    push(c, "HSET", "longvalue", vec!["f".into(), "z".repeat(100)]);
    push(
        c,
        "SADD",
        "intset",
        vec![
            "1".into(),
            "2".into(),
            "70000".into(),
            "-9223372036854775808".into(),
        ],
    );
    push(c, "SADD", "strings", vec!["a".into(), "7".into()]);
    push(c, "SADD", "bigset", many(2000, &|i| format!("m{i}")));
    push(c, "SADD", "bigints", many(600, &|i| i.to_string()));
    c.cmd(&["SET", "string", "hello"]);
    c.cmd(&["PEXPIRE", "hash", "100000000"]);
}

/// Every key of a server with its type, contents (sorted where the order
/// is undefined), encoding and whether it has an expiry.
fn contents(c: &mut Client) -> Vec<(Vec<u8>, String)> {
    let keys = c.cmd(&["KEYS", "*"]);
    let mut all = Vec::new();
    for key in keys.as_array() {
        let key = key.as_bulk().to_vec();
        let k = String::from_utf8_lossy(&key).into_owned();
        let kind = c.cmd(&["TYPE", &k]);
        let value = match &kind {
            Reply::Simple(t) if t == "list" => c.cmd(&["LRANGE", &k, "0", "-1"]),
            Reply::Simple(t) if t == "hash" => c.cmd(&["HGETALL", &k]),
            Reply::Simple(t) if t == "set" => {
                normalized(&["SMEMBERS".into()], c.cmd(&["SMEMBERS", &k]))
            }
            _ => c.cmd(&["GET", &k]),
        };
        let value = match (&kind, value) {
            // A big hash's order is its table's: compare the pairs sorted.
            (Reply::Simple(t), Reply::Array(items)) if t == "hash" => {
                let mut pairs: Vec<_> = items.chunks(2).map(|p| format!("{p:?}")).collect();
                pairs.sort();
                Reply::bulk(&pairs.join(","))
            }
            (_, value) => value,
        };
        let encoding = c.cmd(&["OBJECT", "ENCODING", &k]);
        let volatile = c.cmd(&["PTTL", &k]).as_int() > 0;
        all.push((key, format!("{kind:?} {encoding:?} {volatile} {value:?}")));
    }
    all.sort();
    all
}

fn redis_check_rdb(redis: &std::path::Path, path: &std::path::Path) -> String {
    let check = redis.with_file_name("redis-check-rdb");
    let checker = if check.is_file() {
        check.into_os_string()
    } else {
        "redis-check-rdb".into()
    };
    let output = Command::new(&checker)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-check-rdb: {e}"));
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "redis-check-rdb failed:\n{report}");
    report
}

#[test]
fn real_redis_dumps_load_here_and_ours_load_there() {
    let redis = require_redis_server!();
    let real = Server::start_program(&redis, &["--save", "", "--appendonly", "no"]);
    let mut r = real.client();
    fill(&mut r);
    let want = contents(&mut r);
    assert_eq!(r.cmd(&["SAVE"]), Reply::ok());

    // Theirs, loaded here: the same keys, values and encodings.
    let dir = real.dir().to_string_lossy().into_owned();
    let ours = Server::start_with(BIN, &["--save", "", "--dir", &dir]);
    let mut o = ours.client();
    assert_eq!(contents(&mut o), want);

    // Ours, saved, checked by redis-check-rdb and loaded there.
    // (over theirs, in the same directory).
    assert_eq!(o.cmd(&["SAVE"]), Reply::ok());
    let ours_dump = real.dir().join("dump.rdb");
    let report = redis_check_rdb(&redis, &ours_dump);
    assert!(report.contains("RDB looks OK!"), "{report}");
    assert!(
        report.contains(&format!("[info] {} keys read", want.len())),
        "{report}"
    );
    let again = Server::start_program(&redis, &["--save", "", "--dir", &dir]);
    assert_eq!(contents(&mut again.client()), want);
}

/// Waits until `c`, a replica, has as many keys as `want`.
fn wait_synced(c: &mut Client, want: &[(Vec<u8>, String)]) {
    poll_until(DEADLINE, || (contents(c) == want).then_some(()));
}

#[test]
fn full_sync_and_the_stream_carry_every_type_both_ways() {
    let redis = require_redis_server!();
    let ours = server();
    let real = Server::start_program(
        &redis,
        &[
            "--save",
            "",
            "--appendonly",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ],
    );
    for (master, replica) in [(&ours, &real), (&real, &ours)] {
        let mut m = master.client();
        let mut r = replica.client();
        m.cmd(&["FLUSHALL"]);
        fill(&mut m);
        let port = master.port().to_string();
        assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), Reply::ok());
        wait_synced(&mut r, &contents(&mut m));
        // The stream: SPOP travels as SREM, HINCRBYFLOAT as HSET, so the
        // replica ends up with the master's members and bytes.
        for words in [
            &["SPOP", "bigset", "7"][..],
            &["SPOP", "intset"],
            &["HINCRBYFLOAT", "hash", "n", "0.1"],
            &["LMOVE", "biglist", "list", "LEFT", "RIGHT"],
            &["LMPOP", "1", "numbers", "RIGHT", "COUNT", "3"],
            &["SINTERSTORE", "dest", "bigints", "intset"],
            &["RENAME", "bighash", "renamed"],
            &["HDEL", "hash", "f", "n"],
        ] {
            assert!(!m.cmd(words).is_error(), "{words:?}");
        }
        wait_synced(&mut r, &contents(&mut m));
        assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), Reply::ok());
    }
}

/// Pearson's chi-square statistic of `counts` against a uniform spread.
fn chi_square(counts: &HashMap<Vec<u8>, usize>, cells: usize, draws: usize) -> f64 {
    let expected = draws as f64 / cells as f64;
    assert_eq!(counts.len(), cells, "every member was drawn at least once");
    counts
        .values()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn random_picks_are_uniform() {
    let s = server();
    let mut c = s.client();
    // 10 members, so 9 degrees of freedom: the 99.9% point is 27.88.
    const LIMIT: f64 = 27.88;
    let members: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    c.cmd(&sadd);
    let mut hset = vec!["HSET", "h"];
    for m in &members {
        hset.extend([m.as_str(), "v"]);
    }
    c.cmd(&hset);
    let draws = 10_000;
    for words in [
        &["SRANDMEMBER", "s", "-10000"][..],
        &["HRANDFIELD", "h", "-10000"],
    ] {
        let mut counts = HashMap::new();
        for item in c.cmd(words).as_array() {
            *counts.entry(item.as_bulk().to_vec()).or_insert(0) += 1;
        }
        let chi = chi_square(&counts, 10, draws);
        assert!(chi < LIMIT, "{words:?}: chi-square {chi}");
    }
    // Single picks and SPOP, one draw per command.
    for words in [&["SRANDMEMBER", "s"][..], &["HRANDFIELD", "h"]] {
        let mut counts = HashMap::new();
        for _ in 0..draws {
            *counts.entry(c.cmd(words).as_bulk().to_vec()).or_insert(0) += 1;
        }
        let chi = chi_square(&counts, 10, draws);
        assert!(chi < LIMIT, "{words:?}: chi-square {chi}");
    }
    let mut counts = HashMap::new();
    for _ in 0..draws {
        let popped = c.cmd(&["SPOP", "s"]).as_bulk().to_vec();
        c.cmd_bytes(&[b"SADD", b"s", &popped]);
        *counts.entry(popped).or_insert(0) += 1;
    }
    let chi = chi_square(&counts, 10, draws);
    assert!(chi < LIMIT, "SPOP: chi-square {chi}");
    // A positive count picks distinct members, each subset equally likely:
    // each member is in a pick of 3 with probability 3/10.
    let mut counts = HashMap::new();
    for _ in 0..draws / 3 {
        for item in c.cmd(&["SRANDMEMBER", "s", "3"]).as_array() {
            *counts.entry(item.as_bulk().to_vec()).or_insert(0) += 1;
        }
    }
    let chi = chi_square(&counts, 10, draws / 3 * 3);
    assert!(chi < LIMIT, "SRANDMEMBER 3: chi-square {chi}");
}

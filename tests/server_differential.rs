//! The final server against real Redis, reply for reply: the same script
//! of commands goes to a real redis-server 7.0 and to `redis-from-scratch`,
//! and every reply must be the same bytes.
//!
//! The script is below, one command per line, words split as redis-cli
//! splits them. A line may start with a marker:
//! - `sorted:` the reply is an array whose order is not defined (KEYS):
//!   compare its elements sorted;
//! - `shape:` the reply varies by nature (TIME, RANDOMKEY): compare its type.
//!
//! It runs whenever redis-server is on PATH; without it, it skips, and
//! fails if `CI` is set (`.ci/run` installs it).

mod common;

use common::{Client, Reply, Server};

const SCRIPT: &str = r#"
# --- connection
PING
PING hello
PING a b
ECHO "binary \x00\xff bytes"
ECHO
SELECT 1
SELECT 16
SELECT -1
SELECT abc
SELECT 0
AUTH x
AUTH default x
AUTH a b c
AUTH nobody x
ACL LOG 0
ACL LOG -1
ACL LOG x
ACL LOG 1 2
ACL FOO
ACL
ACL LOG RESET
ACL LOG
CLIENT SETNAME "bad name"
CLIENT SETNAME good-name
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
CLIENT FOO
CLIENT
HELLO 2 SETNAME
HELLO 4
HELLO abc
NOSUCHCOMMAND a b c
shape: TIME
TIME x
# --- strings: SET and GET
FLUSHALL
SET k v
GET k
GET nokey
GET
SET k
SET k v XX NX
SET k v EX 10 PX 10
SET k v KEEPTTL EX 10
SET k v EX
SET k v FOO
SET k v EX abc
SET k v EX 1.5
SET k v EX 0
SET k v EX -1
SET k v PX 0
SET k v PXAT 0
SET k v EXAT -1
SET k v EX 9999999999999999
SET k v PX 9223372036854775807
SET k v EX 10 EX 20
TTL k
SET k v2 GET
SET k v3 NX GET
SET nk v3 XX GET
SET nk v NX GET
SET k v EX 100
SET k v2 KEEPTTL
TTL k
SET k v3
TTL k
SET gone v PXAT 1
EXISTS gone
# --- strings: the rest
GETDEL k
GETDEL k
SET k v
GETEX k EX 100
TTL k
GETEX k PERSIST
TTL k
GETEX k EX 0
GETEX k EX 10 PX 10
GETEX k FOO
GETEX nokey EX 10
GETSET k new
GETSET nokey2 v
SETNX k x
SETNX fresh x
SETEX s 100 v
TTL s
SETEX s 0 v
SETEX s abc v
PSETEX p 100000 v
PSETEX p -5 v
MSET a 1 b 2 c 3
MSET a 1 b
MGET a b nokey c
MSETNX a 1 z 2
MSETNX y 1 z 2
MGET y z
APPEND a xyz
APPEND newappend abc
STRLEN a
STRLEN nokey
SET r "Hello World"
GETRANGE r 0 4
GETRANGE r -5 -1
GETRANGE r 5 2
GETRANGE r 0 100
GETRANGE r abc 1
GETRANGE nokey 0 1
SUBSTR r 0 4
SETRANGE r 6 Redis
GET r
SETRANGE r -1 x
SETRANGE r 20 padded
GET r
SETRANGE nokey3 0 ""
EXISTS nokey3
SETRANGE r 536870912 x
INCR n
INCR n
DECR n
INCRBY n 10
INCRBY n abc
DECRBY n 5
DECRBY n -9223372036854775808
SET big 9223372036854775807
INCR big
SET small -9223372036854775808
DECR small
SET str abc
INCR str
SET f 1.5
INCR f
SET sp " 1"
INCR sp
INCRBYFLOAT f 1.1
INCRBYFLOAT f -0.5
INCRBYFLOAT f abc
INCRBYFLOAT str 1
INCRBYFLOAT nofloat 3.0e3
INCRBYFLOAT nofloat 10.5
INCRBYFLOAT nofloat 0.1
SET fe 5.0e3
INCRBYFLOAT fe 1
INCRBYFLOAT fe inf
# --- keys
FLUSHALL
MSET k1 1 k2 2 k3 3 other x
DEL k1 nokey k1
UNLINK k2 nokey
EXISTS k1 k2 k3 k3
TYPE k3
TYPE nokey
RENAME k3 k4
RENAME nokey k5
RENAME k4 k4
RENAMENX k4 other
RENAMENX k4 k6
GET k6
sorted: KEYS *
sorted: KEYS k*
sorted: KEYS ?6
sorted: KEYS [ko]*
KEYS nomatch*
SCAN abc
SCAN 0 COUNT 0
SCAN 0 FOO bar
SCAN 0 MATCH
shape: RANDOMKEY
MOVE k6 1
MOVE k6 1
MOVE other 0
MOVE other 16
MOVE other abc
SELECT 1
GET k6
SELECT 0
SWAPDB 0 1
GET k6
SWAPDB 0 99
SWAPDB a 0
SWAPDB 0 b
SWAPDB 0 1
DBSIZE
FLUSHDB foo
FLUSHDB ASYNC
DBSIZE
# --- expiry
SET e v
EXPIRE e 100
TTL e
PTTL nokey
TTL nokey
EXPIRE e 200 NX
EXPIRE e 200 XX
EXPIRE e 50 GT
EXPIRE e 500 GT
EXPIRE e 50 LT
TTL e
EXPIRE e 10 FOO
EXPIRE e 10 NX XX
EXPIRE e 10 GT LT
EXPIRE e abc
EXPIRE e 9223372036854775807
PEXPIRE e 9223372036854775807
EXPIREAT e 9223372036854775807
EXPIRE nokey 10
PERSIST e
PERSIST e
PERSIST nokey
PEXPIREAT e 5000000000000
PEXPIRETIME e
EXPIRETIME e
EXPIRETIME nokey
PEXPIREAT e 4102444800600
EXPIRETIME e
EXPIRE e 0
EXISTS e
SET e v
EXPIREAT e 1
EXISTS e
EXPIRE
TTL a b
# --- transactions
MULTI
SET t 1
INCR t
GET t
EXEC
MULTI
SET t 1
NOSUCH
EXEC
MULTI
MULTI
DISCARD
EXEC
DISCARD
MULTI
WATCH t
EXEC
WATCH t
UNWATCH
MULTI
SET t x
INCR t
SET t v BADOPT
EXEC
GET t
MULTI
SYNC
EXEC
# --- server
DBSIZE
CONFIG GET dbfilename
CONFIG GET maxclients
CONFIG GET
CONFIG FOO
CONFIG SET nosuchoption 1
COMMAND COUNT x
COMMAND FOO
INFO nosuchsection
SAVE x
LASTSAVE x
REPLCONF foo bar
REPLCONF listening-port
WAIT 0 abc
WAIT x 0
WAIT 0 -1
WAIT 0 0
REPLICAOF a b
ROLE x
# --- CONFIG SET
CONFIG SET maxclients 100
CONFIG GET maxclients
CONFIG SET maxclients 0
CONFIG SET maxclients abc
CONFIG SET maxclients 10000
CONFIG SET timeout 5 maxclients
CONFIG SET save "60 1"
CONFIG GET save
CONFIG SET save ""
CONFIG GET save
CONFIG SET appendonly no
CONFIG SET rdbcompression no
CONFIG GET rdbcompression
CONFIG SET rdbcompression yes
CONFIG SET dbfilename a.rdb
CONFIG SET dir /tmp
CONFIG SET proto-max-bulk-len 100
CONFIG SET timeout 0 maxclients 10000
CONFIG GET timeout
# --- generic key commands in depth
flushall
# --- arity
del
unlink
exists
touch
type
type a b
rename a
rename a b c
renamenx a
move a
move a 1 2
copy a
sorted: keys
sorted: keys a b
shape: scan
shape: randomkey x
# --- empty db
shape: randomkey
sorted: keys *
shape: scan 0
shape: scan 0
type nokey
rename nokey x
rename nokey nokey
renamenx nokey x
renamenx nokey nokey
move nokey 1
copy nokey x
copy nokey nokey db 1
touch nokey
unlink nokey
# --- basic
set a 1
set b 2
type a
type A
rename a a
renamenx a a
renamenx a b
rename a c
exists a c
get c
rename c b
get b
exists c
renamenx b a
get a
# TTL kept by RENAME / RENAMENX / MOVE / COPY
expire a 100
rename a x
ttl x
renamenx x y
ttl y
set z 0
rename y z
ttl z
persist z
set p 5 ex 200
copy p q
ttl q
copy p q
copy p q replace
ttl q
# --- MOVE
move z 99999999999
move z -99999999999
move z 2147483648
move z -2147483649
move z 2147483647
move z -2147483648
move z abc
move z 1.5
move z ''
move z 01
move z +1
move z 16
move z -1
move z 0
move nokey 0
move nokey 16
move nokey abc
move z 1
move z 1
exists z
select 1
exists z
get z
set p other
select 0
move p 1
get p
select 1
get p
move p 0
move z 0
select 0
get z
# --- COPY
copy a b db 99 foo
copy a b foo db 99
copy a b db 1 db 99
copy a b db 99 db x
copy a b db x db 99
copy a b db
copy a b db 0 db 0
copy a b DB 1 REPLACE REPLACE
copy a a
copy z z
copy z z db 0
copy z z db 1
copy z z db 1 replace
copy z z db 16 replace
copy z z db -1
copy z z db 2147483648
copy z z replace db abc
copy z z replace foo
copy z w replace
copy z w
copy nokey w replace
get w
select 1
get z
select 0
# --- SCAN parse errors
shape: scan abc
shape: scan ''
shape: scan +0
shape: scan -0
shape: scan -1
shape: scan 18446744073709551615
shape: scan 18446744073709551616
shape: scan 99999999999999999999999
shape: scan -18446744073709551615
shape: scan -18446744073709551616
shape: scan 0x10
shape: scan 1a
shape: scan 00
shape: scan +
shape: scan -
shape: scan 0 count 0
shape: scan 0 count -1
shape: scan 0 count x
shape: scan 0 count 1.5
shape: scan 0 count 9223372036854775807
shape: scan 0 count 9223372036854775808
shape: scan 0 count
shape: scan 0 match
shape: scan 0 type
shape: scan 0 foo
shape: scan 0 foo bar
shape: scan 0 COUNT 0 MATCH
shape: scan 0 match * count
shape: scan abc count 0
shape: scan 0 count 0 foo bar
shape: scan 0 foo bar count 0
shape: scan 0 type STRING
shape: scan 0 type hash
shape: scan 0 type none
shape: scan 0 match * type string count 1
shape: scan 0 MATCH w* COUNT 2 match z*
shape: scan 0 type hash type string
# --- KEYS patterns
mset h1 1 hello 1 hallo 1 hxllo 1 hllo 1 heeeello 1 h*llo 1 h[llo 1 a\b 1 -x 1 ab 1 aB 1
sorted: keys *
sorted: keys h?llo
sorted: keys h*llo
sorted: keys h[ae]llo
sorted: keys h[^e]llo
sorted: keys h[a-b]llo
sorted: keys h[b-a]llo
sorted: keys h\*llo
sorted: keys h\[llo
sorted: keys h[llo
sorted: keys a\\b
sorted: keys a\
sorted: keys [
sorted: keys [a-
sorted: keys a[B]
sorted: keys a[b]
sorted: keys ''
sorted: keys nomatch*
sorted: keys *ll*
sorted: keys ???
sorted: keys [-]x
shape: scan 0 match h?llo
shape: scan 0 match h*llo count 1
# --- expired keys are hidden
flushdb
set e1 v px 30
set e2 v px 30
set live v
sleep 0.1
sorted: keys *
sorted: keys e*
shape: scan 0
shape: scan 0 match e*
shape: randomkey
shape: randomkey
shape: randomkey
type e1
rename e1 x
renamenx e2 x
move e1 1
copy e1 x
touch e1 e2 live
exists e1
unlink e1 e2
del e1
dbsize
set e3 v px 30
set e4 v px 30
set live2 v
sleep 0.1
set live v
rename live e3
get e3
ttl e3
renamenx live2 e4
get e4
set m v
select 1
set m old px 30
sleep 0.1
select 0
move m 1
select 1
get m
ttl m
select 0
set s v
set t old px 30
sleep 0.1
copy s t
get t
# only expired keys left
flushdb
set e5 v px 30
sleep 0.1
shape: randomkey
shape: randomkey
sorted: keys *
shape: scan 0
dbsize
# --- a single key: RANDOMKEY deterministic
set only 1
shape: randomkey
shape: scan 0
shape: scan 0 count 1
sorted: keys *
# --- in MULTI
multi
rename nokey x
move only 99
copy only only
shape: scan abc
sorted: keys *
type only
shape: exec
# --- DEL/UNLINK
mset d1 1 d2 2 d3 3
unlink d1 d1 d2 nokey
del d3 d3
exists d1 d2 d3
touch d1 only only
# --- SELECT across dbs
select 15
set fifteen 1
move fifteen 14
move fifteen 15
select 14
get fifteen
copy fifteen fifteen db 15
select 15
get fifteen
rename fifteen fifteen
select 16
select 0
# --- lists
select 0
flushdb
rpush l a b c d e
lpush l y x
lrange l 0 -1
lrange l -3 -1
lrange l 5 2
lrange l -100 100
lrange l a b
lindex l -1
lindex l 100
lindex l x
llen nol
lpop l
rpop l 2
lpop l 0
lpop nol 3
lpop l -1
lpop l 1 2
lset l 0 Z
lset l 10 Z
lset nol 0 Z
linsert l before b B
linsert l after nope A
linsert nol after nope A
linsert l middle b A
lrange l 0 -1
rpush r a b a c a
lrem r -2 a
lrem r x a
ltrim r 1 -1
lrange r 0 -1
ltrim r 5 1
exists r
rpush p a b a c a
lpos p a rank -1 count 0
lpos p a count 2 rank 2
lpos p a maxlen 2 count 0
lpos p z
lpos p z count 0
lpos p a rank 0
lpos p a count -1
lpos p a maxlen -1
lpos p a foo
lmove p m left right
lmove p m up left
rpoplpush p p
rpoplpush nol m
lmpop 2 nol p left count 2
lmpop 1 nol right
lmpop 0 p left
lmpop 3 p left
lmpop 1 p left count 0
lpushx nol a
rpushx p q r
lpush
# --- hashes
hset h a 1 b 2 c 3
hset h a 9
hset h a
hmset h d 4
hmset h a
hget h zz
hmget h a zz b
hgetall h
hkeys h
hvals h
hgetall noh
hlen h
hexists h a
hstrlen h a
hdel h a zz
hsetnx h b 5
hsetnx h e 5
hincrby h e 10
hincrby h e x
hset h big 9223372036854775807 s xx
hincrby h big 1
hincrby h s 1
hincrbyfloat h s 1
hincrbyfloat h f 10.50
hincrbyfloat h f 0.1
hincrbyfloat h g 3.0e3
hincrbyfloat h f x
hincrbyfloat h f inf
hrandfield noh
hrandfield noh 3
hrandfield h 0
hrandfield h x
hrandfield h -9223372036854775808
hrandfield h 1 foo
hscan h 0
hscan h 0 match b*
hscan h x
hscan h 0 count 0
# --- sets
sadd st 3 1 2 2
smembers st
sismember st 01
smismember st 1 9
sadd s2 2 3 4
sinter st s2
sunion st s2
sdiff st s2
sinterstore d st s2
smembers d
sdiffstore d st st
exists d
sintercard 2 st s2 limit 1
sintercard 0 st
sintercard 3 st s2
sintercard 2 st s2 limit -1
spop st -1
spop st 1 2
spop nos
spop nos 2
spop st 0
srandmember nos 2
srandmember st x
srandmember st 5
sadd one x
spop one
exists one
shape: srandmember st
smove st s2 1
smove nos s2 1
sadd st a
sorted: smembers st
sscan s2 0 match 4*
# --- types across the keyspace
type l
type h
type st
type nokey
get l
incr h
append st x
mget l h nokey
set l x get
lpush h a
hget st a
sadd l a
sinter st h
object encoding h
object encoding st
object encoding s2
object encoding p
object encoding nokey
shape: scan 0 type set
scan 0 type zset
rename h h2
hgetall h2
copy h2 h3
hgetall h3
del h2 h3 st s2
# --- huge and odd counts and indexes
rpush big a b a c a
lpos big a rank -9223372036854775808
lpos big a rank 9223372036854775807
lpos big a rank -2 maxlen 3 count 0
lpos big a count 9223372036854775807
lrange big -9223372036854775808 9223372036854775807
lrange big 9223372036854775807 -9223372036854775808
lindex big -9223372036854775808
lrem big -9223372036854775808 a
lpop big 9223372036854775807
lpop big 99999999999999999999
lmpop x big left
lmpop 9223372036854775807 big left
sintercard x big
hset hh a 1
hincrby hh a 9223372036854775806
hincrby hh a 1
hincrby hh b -9223372036854775808
hincrby hh b -1
hincrbyfloat hh c 1.5e10
hincrbyfloat hh c 0.0000001
hincrbyfloat hh c -1.5e10
hincrbyfloat hh e 0x10
hincrbyfloat hh e " 1"
hincrbyfloat hh e 1.
hincrbyfloat hh e .5
hgetall hh
hrandfield hh 9223372036854775807 withvalues
hrandfield hh 4611686018427387904 withvalues
hrandfield hh 5 withvalues
sadd ss 1 2 3
srandmember ss 9223372036854775807
spop ss 9223372036854775807
exists ss
"#;

/// Splits a script line into words: blanks separate them; `"..."` may hold
/// blanks and `\xHH` escapes; `'...'` is literal; outside quotes a
/// backslash takes the next character as it is.
fn words(line: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let mut arg = Vec::new();
        if bytes[i] == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                arg.push(bytes[i]);
                i += 1;
            }
            i += 1;
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).expect("ascii");
                    arg.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 4;
                } else {
                    arg.push(bytes[i]);
                    i += 1;
                }
            }
            i += 1;
        } else {
            while i < bytes.len() && bytes[i] != b' ' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                arg.push(bytes[i]);
                i += 1;
            }
        }
        args.push(arg);
    }
    args
}

/// Sends one command and returns its reply, raw and parsed.
fn run(client: &mut Client, args: &[Vec<u8>]) -> (Vec<u8>, Reply) {
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    client.send(&common::encode_command(&args));
    let raw = client.read_reply_raw();
    let parsed = common::parse_reply(&raw);
    (raw, parsed)
}

#[test]
fn replies_are_byte_for_byte_those_of_redis() {
    skip_if_external!();
    let redis_path = require_redis_server!();
    let ours = Server::start_with("redis-from-scratch", &["--save", ""]);
    let redis = Server::start_program(&redis_path, &["--save", "", "--appendonly", "no"]);
    let (mut a, mut b) = (ours.client(), redis.client());
    let mut differences = Vec::new();
    let mut compared = 0;
    for line in SCRIPT.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, command) = match line.split_once(": ") {
            Some((mode @ ("sorted" | "shape"), command)) => (mode, command),
            _ => ("bytes", line),
        };
        let args = words(command);
        let ((ours_raw, ours_reply), (redis_raw, redis_reply)) =
            (run(&mut a, &args), run(&mut b, &args));
        compared += 1;
        let same = match mode {
            "sorted" => match (sorted(&ours_reply), sorted(&redis_reply)) {
                (Some(ours), Some(redis)) => ours == redis,
                _ => ours_raw == redis_raw,
            },
            "shape" => ours_raw.first() == redis_raw.first(),
            _ => ours_raw == redis_raw,
        };
        if !same {
            differences.push(format!(
                "{command}\n    ours:  {}\n    redis: {}",
                common::show(&ours_raw),
                common::show(&redis_raw)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {compared} replies differ from real Redis:\n{}",
        differences.len(),
        differences.join("\n")
    );
    eprintln!("{compared} replies compared with real Redis: all identical");
}

/// An array reply's elements in sorted order; `None` if it is no array.
fn sorted(reply: &Reply) -> Option<Vec<Vec<u8>>> {
    let Reply::Array(items) = reply else {
        return None;
    };
    let mut items: Vec<Vec<u8>> = items.iter().map(|item| item.as_bulk().to_vec()).collect();
    items.sort();
    Some(items)
}

/// MONITOR's lines, from our server and from real Redis: the same format,
/// with the time, the database and the client's address varying.
#[test]
fn monitor_streams_commands_as_redis_does() {
    skip_if_external!();
    let redis_path = require_redis_server!();
    let ours = Server::start_with("redis-from-scratch", &["--save", ""]);
    let redis = Server::start_program(&redis_path, &["--save", "", "--appendonly", "no"]);
    for server in [&ours, &redis] {
        let mut monitor = server.client();
        assert_eq!(monitor.cmd_raw(&["MONITOR"]), b"+OK\r\n");
        let mut client = server.client();
        client.cmd(&["SELECT", "2"]);
        client.cmd_bytes(&[b"SET", b"k", b"a \"quoted\"\n\x01 value"]);
        // Redis shows SELECT too; skip to the SET.
        let line = loop {
            let line = monitor.read_reply_raw();
            if line.windows(5).any(|w| w == b"\"SET\"") {
                break String::from_utf8(line).expect("a MONITOR line is ASCII");
            }
        };
        let port = client.local_addr().port();
        let (stamp, rest) = line.split_once(' ').expect("a time stamp first");
        let (secs, micros) = stamp
            .trim_start_matches('+')
            .split_once('.')
            .expect("seconds.micros");
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line:?}");
        assert_eq!(
            rest,
            format!("[2 127.0.0.1:{port}] \"SET\" \"k\" \"a \\\"quoted\\\"\\n\\x01 value\"\r\n"),
            "{line:?}"
        );
    }
}

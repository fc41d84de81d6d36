//! String commands, part one: [`StrOp`] and the dispatch for the whole
//! group, GET and MGET, GETDEL and GETEX, and the helpers the group shares.
//!
//! The rest of the group: `string_set` (SET and its relatives: SETNX,
//! SETEX, PSETEX, GETSET, MSET, MSETNX), `string_range` (APPEND, STRLEN,
//! GETRANGE, SETRANGE: parts of a value) and `counter` (INCR ...
//! INCRBYFLOAT).
//!
//! A command that changes nothing must not call `Keyspace::set`,
//! `set_expiry` or `remove`: those record the change for replicas and WATCH.

use super::string_set::{self, Pairs, SetArgs};
use super::{arg, counter, parse_int, rest, string_range, Flags, Op, Spec};
use crate::events::Events;
use crate::keyspace::{Entry, Keyspace, ValueRef};
use crate::resp::{Args, Reply};

/// A string command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrOp {
    /// `GET key`
    Get(Vec<u8>),
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT time|KEEPTTL]`
    Set(SetArgs),
    /// `SETNX key value`
    SetNx(Vec<u8>, Vec<u8>),
    /// `SETEX key seconds value`, `PSETEX key milliseconds value`
    SetEx {
        /// The command's name, for error messages.
        command: &'static str,
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
        /// Time to live in milliseconds, already checked to be positive.
        millis: i64,
    },
    /// `GETSET key value`
    GetSet(Vec<u8>, Vec<u8>),
    /// `GETDEL key`
    GetDel(Vec<u8>),
    /// `GETEX key [EX|PX|EXAT|PXAT time|PERSIST]`
    GetEx(Vec<u8>, GetExOption),
    /// `MGET key [key ...]`
    MGet(Vec<Vec<u8>>),
    /// `MSET key value [key value ...]`
    MSet(Pairs),
    /// `MSETNX key value [key value ...]`
    MSetNx(Pairs),
    /// `APPEND key value`
    Append(Vec<u8>, Vec<u8>),
    /// `STRLEN key`
    StrLen(Vec<u8>),
    /// `GETRANGE key start end` (and `SUBSTR`)
    GetRange(Vec<u8>, i64, i64),
    /// `SETRANGE key offset value`, the offset checked to be non-negative.
    SetRange(Vec<u8>, u64, Vec<u8>),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add to the integer at a key.
    IncrBy(Vec<u8>, i64),
    /// `INCRBYFLOAT key increment`, the increment as given: Redis reads
    /// the key's value before it, so it is checked at run time.
    IncrByFloat(Vec<u8>, Vec<u8>),
}

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[GET, MGET, GETDEL, GETEX];

/// Runs a string command that only reads.
pub fn read(op: StrOp, keyspace: &Keyspace, now: i64) -> Reply {
    match op {
        StrOp::Get(key) => get(keyspace, &key, now),
        // MGET answers nil for a key of another type, not an error.
        StrOp::MGet(keys) => Reply::Array(
            keys.iter()
                .map(|key| match get(keyspace, key, now) {
                    Reply::Error(_) => Reply::Nil,
                    reply => reply,
                })
                .collect(),
        ),
        StrOp::StrLen(key) => string_range::strlen(keyspace, &key, now),
        StrOp::GetRange(key, start, end) => string_range::getrange(keyspace, &key, start, end, now),
        // Flagged `write` in the table, so never here.
        _ => Reply::error("ERR write command run without the write lock"),
    }
}

/// Runs a string command that may write.
pub fn write(op: StrOp, keyspace: &mut Keyspace, now: i64) -> Reply {
    match op {
        StrOp::Set(args) => string_set::set(keyspace, args, now),
        StrOp::SetNx(key, value) => string_set::setnx(keyspace, key, value, now),
        StrOp::SetEx {
            command,
            key,
            value,
            millis,
        } => string_set::setex(keyspace, command, key, value, millis, now),
        StrOp::GetSet(key, value) => string_set::getset(keyspace, key, value, now),
        StrOp::GetDel(key) => getdel(keyspace, &key, now),
        StrOp::GetEx(key, option) => getex(keyspace, &key, option, now),
        StrOp::MSet(pairs) => string_set::mset(keyspace, pairs, now),
        StrOp::MSetNx(pairs) => string_set::msetnx(keyspace, pairs, now),
        StrOp::Append(key, value) => string_range::append(keyspace, key, &value, now),
        StrOp::SetRange(key, offset, value) => {
            string_range::setrange(keyspace, key, offset, &value, now)
        }
        StrOp::IncrBy(key, delta) => counter::incr_by(keyspace, key, delta, now),
        StrOp::IncrByFloat(key, increment) => {
            counter::incr_by_float(keyspace, key, &increment, now)
        }
        op => {
            let reply = read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    }
}

/// A string command's view of a key's value: its bytes, or WRONGTYPE if
/// the key holds a list, hash or set.
pub(super) fn bytes<'a>(entry: &Entry<'a>) -> Result<&'a [u8], Reply> {
    match entry.value() {
        ValueRef::String(bytes) => Ok(bytes),
        _ => Err(wrong_type()),
    }
}

/// The error of a command that meets a key of another type than its own.
pub fn wrong_type() -> Reply {
    Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// The row of a command on one key, in group "string".
pub(super) const fn string_spec(
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    super::typed::typed_spec("string", name, arity, flags, summary, since, parse)
}

/// `GET key`
pub const GET: Spec = string_spec(
    "get",
    2,
    Flags::READONLY.and(Flags::FAST),
    "Get the value of a key",
    "1.0.0",
    |args| Ok(Op::Str(StrOp::Get(arg(args, 1)))),
);

/// `MGET key [key ...]`
pub const MGET: Spec = Spec {
    keys: (1, -1, 1),
    ..string_spec(
        "mget",
        -2,
        Flags::READONLY.and(Flags::FAST),
        "Get the values of all the given keys",
        "1.0.0",
        |args| Ok(Op::Str(StrOp::MGet(rest(args, 1)))),
    )
};

/// `GETDEL key`
pub const GETDEL: Spec = string_spec(
    "getdel",
    2,
    Flags::WRITE.and(Flags::FAST),
    "Get the value of a key and delete the key",
    "6.2.0",
    |args| Ok(Op::Str(StrOp::GetDel(arg(args, 1)))),
);

/// `GETEX key [EX seconds|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST]`
pub const GETEX: Spec = string_spec(
    "getex",
    -2,
    Flags::WRITE.and(Flags::FAST),
    "Get the value of a key and optionally set its expiration",
    "6.2.0",
    parse_getex,
);

/// What GETEX does to the key's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetExOption {
    /// No option: GETEX is a GET.
    Keep,
    /// PERSIST: the key no longer expires.
    Persist,
    /// EX, PX, EXAT or PXAT, with the time as given: Redis checks it only
    /// once it has found the key, so a missing key answers nil whatever
    /// the time says.
    Expire {
        /// The time argument, unchecked.
        time: Vec<u8>,
        /// EX or EXAT: the time is in seconds.
        seconds: bool,
        /// EXAT or PXAT: the time is a Unix time, not a time to live.
        absolute: bool,
    },
}

/// Parses GETEX's options: at most one kind of expiry (repeating the same
/// one is allowed, the last wins), or PERSIST, which excludes the others.
fn parse_getex(args: Args) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let key = args.next().unwrap_or_default();
    let mut option = GetExOption::Keep;
    // The expiry option given so far, by name.
    let mut kind: Option<Vec<u8>> = None;
    while let Some(arg) = args.next() {
        let name = option_name(&arg);
        match name.as_slice() {
            b"PERSIST" if kind.is_none() => option = GetExOption::Persist,
            b"EX" | b"PX" | b"EXAT" | b"PXAT"
                if option != GetExOption::Persist
                    && kind.as_ref().is_none_or(|kind| *kind == name) =>
            {
                let time = args.next().ok_or_else(syntax_error)?;
                option = GetExOption::Expire {
                    time,
                    seconds: name.starts_with(b"EX"),
                    absolute: name.ends_with(b"AT"),
                };
                kind = Some(name);
            }
            _ => return Err(syntax_error()),
        }
    }
    Ok(Op::Str(StrOp::GetEx(key, option)))
}

/// An option's name in upper case, for matching. Redis compares options
/// as C strings, so a NUL byte ends the name: `EX\0junk` is `EX`.
pub(super) fn option_name(arg: &[u8]) -> Vec<u8> {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    arg[..end].to_ascii_uppercase()
}

/// Checks an expiry argument and converts it to milliseconds, as Redis's
/// `getExpireMillisecondsOrReply` does before adding the time: it must be
/// an integer, positive, and not overflow once in milliseconds.
pub(super) fn expire_millis(time: &[u8], seconds: bool, command: &str) -> Result<i64, Reply> {
    let time = parse_int(time)?;
    if time <= 0 || (seconds && time > i64::MAX / 1000) {
        return Err(invalid_expire_time(command));
    }
    Ok(if seconds { time * 1000 } else { time })
}

/// Redis's reply to options it cannot make sense of.
pub(super) fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

/// Redis's error for an expiry it cannot represent.
pub fn invalid_expire_time(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

/// Runs GET: the value, or a null bulk when the key does not exist.
pub fn get(keyspace: &Keyspace, key: &[u8], now: i64) -> Reply {
    keyspace
        .get(key, now)
        .map_or(Reply::Nil, |entry| match bytes(&entry) {
            Ok(value) => Reply::bulk(value),
            Err(error) => error,
        })
}

/// Runs GETDEL: the value, and the key is gone.
fn getdel(keyspace: &mut Keyspace, key: &[u8], now: i64) -> Reply {
    keyspace.remove_if_expired(key, now);
    let reply = get(keyspace, key, now);
    if matches!(reply, Reply::Bulk(_)) {
        keyspace.remove(key);
        keyspace.notify(Events::GENERIC, "del", key);
    }
    reply
}

/// Runs GETEX: the value, then the expiry changes. The time is checked
/// after the lookup, as Redis does. A Unix time already past deletes the
/// key (the reply still carries the value); PERSIST on a key without an
/// expiry changes nothing.
fn getex(keyspace: &mut Keyspace, key: &[u8], option: GetExOption, now: i64) -> Reply {
    keyspace.remove_if_expired(key, now);
    let Some(entry) = keyspace.get(key, now) else {
        return Reply::Nil;
    };
    let reply = match bytes(&entry) {
        Ok(value) => Reply::bulk(value),
        Err(error) => return error,
    };
    let volatile = entry.expires_at().is_some();
    match option {
        GetExOption::Keep => {}
        GetExOption::Persist => {
            if volatile {
                keyspace.set_expiry(key, None);
                keyspace.notify(Events::GENERIC, "persist", key);
            }
        }
        GetExOption::Expire {
            time,
            seconds,
            absolute,
        } => {
            let millis = match expire_millis(&time, seconds, "getex") {
                Ok(millis) => millis,
                Err(error) => return error,
            };
            let deadline = if absolute {
                millis
            } else {
                match now.checked_add(millis) {
                    Some(deadline) => deadline,
                    None => return invalid_expire_time("getex"),
                }
            };
            if absolute && deadline <= now {
                keyspace.remove(key);
                keyspace.notify(Events::GENERIC, "del", key);
            } else {
                keyspace.set_expiry(key, Some(deadline));
                keyspace.notify(Events::GENERIC, "expire", key);
            }
        }
    }
    reply
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::keyspace::Value;

    /// Parses a request given as words, as the server would.
    pub(in crate::cmd) fn parse(words: &[&str]) -> Result<Op, Reply> {
        crate::cmd::Command::parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
            .map(|command| command.op)
    }

    pub(in crate::cmd) fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    /// Runs a string command given as words on `keyspace` at time `now`.
    pub(in crate::cmd) fn run(keyspace: &mut Keyspace, now: i64, words: &[&str]) -> Reply {
        match parse(words) {
            Ok(Op::Str(op)) => write(op, keyspace, now),
            Ok(op) => panic!("not a string command: {op:?}"),
            Err(error) => error,
        }
    }

    fn expire(time: &str, seconds: bool, absolute: bool) -> GetExOption {
        GetExOption::Expire {
            time: bytes(time),
            seconds,
            absolute,
        }
    }

    #[test]
    fn getex_options() {
        let getex = |words: &[&str]| parse(&[&["getex", "k"], words].concat());
        let ok = |option| Ok(Op::Str(StrOp::GetEx(bytes("k"), option)));
        assert_eq!(getex(&[]), ok(GetExOption::Keep));
        assert_eq!(getex(&["persist"]), ok(GetExOption::Persist));
        assert_eq!(getex(&["ex", "5"]), ok(expire("5", true, false)));
        assert_eq!(getex(&["PXAT", "abc"]), ok(expire("abc", false, true)));
        assert_eq!(getex(&["EX", "5", "ex", "6"]), ok(expire("6", true, false)));
        assert_eq!(getex(&["EX\0junk", "5"]), ok(expire("5", true, false)));
        for bad in [
            &["EX"][..],
            &["EX", "5", "PX", "5"],
            &["EX", "5", "PERSIST"],
            &["PERSIST", "EX", "5"],
            &["KEEPTTL"],
            &["NX"],
            &["GET"],
        ] {
            assert_eq!(getex(bad), Err(syntax_error()), "{bad:?}");
        }
    }

    #[test]
    fn getex_sets_clears_and_deletes() {
        let mut ks = Keyspace::default();
        ks.set(bytes("k"), Value::String(bytes("v")), None);
        // A missing key answers nil, however wrong the time.
        assert_eq!(
            run(&mut ks, 1000, &["getex", "nokey", "EX", "0"]),
            Reply::Nil
        );
        assert_eq!(
            run(&mut ks, 1000, &["getex", "k", "EX", "0"]),
            invalid_expire_time("getex")
        );
        assert_eq!(
            run(&mut ks, 1000, &["getex", "k", "PX", "20"]),
            Reply::bulk("v")
        );
        assert_eq!(ks.get(b"k", 1000).and_then(|e| e.expires_at()), Some(1020));
        assert_eq!(
            run(&mut ks, 1000, &["getex", "k", "PERSIST"]),
            Reply::bulk("v")
        );
        assert_eq!(ks.get(b"k", 1000).and_then(|e| e.expires_at()), None);
        // A Unix time already past: the value, and the key is gone.
        assert_eq!(
            run(&mut ks, 1000, &["getex", "k", "PXAT", "999"]),
            Reply::bulk("v")
        );
        assert_eq!(ks.len(), 0);
    }

    #[test]
    fn getdel_mget_and_reads_that_record_nothing() {
        let mut ks = Keyspace::default();
        ks.set(bytes("a"), Value::String(bytes("1")), None);
        ks.start_recording();
        assert_eq!(
            run(&mut ks, 0, &["getex", "a", "persist"]),
            Reply::bulk("1")
        );
        assert_eq!(run(&mut ks, 0, &["getex", "a"]), Reply::bulk("1"));
        assert_eq!(run(&mut ks, 0, &["getdel", "nokey"]), Reply::Nil);
        assert!(ks.take_changes().is_empty());
        assert_eq!(
            run(&mut ks, 0, &["mget", "a", "nokey", "a"]),
            Reply::Array(vec![Reply::bulk("1"), Reply::Nil, Reply::bulk("1")])
        );
        assert_eq!(run(&mut ks, 0, &["getdel", "a"]), Reply::bulk("1"));
        assert_eq!(ks.len(), 0);
    }
}

//! Hash commands: fields and their values under one key.
//!
//! HSET and HGET are O(1) (a field index), HGETALL, HKEYS and HVALS O(n).
//! A small hash answers in insertion order, a big one in no particular
//! order, as Redis's listpack and hash table do (see keyspace/hash.rs).
//! HINCRBYFLOAT computes on C `long double`s and replies in Redis's form,
//! with the library INCRBYFLOAT uses; it reaches replicas as an HSET of
//! the result, so that they store the same bytes.
//!
//! This file parses them (the table's rows and [`HashOp`]);
//! `hash_run.rs` runs them.

use super::typed::{parse_scan_options, random_count, typed_spec, READ_FAST, WRITE_MORE};
use super::{parse_int, Flags, Op, Spec};
use crate::long_double::LongDouble;
use crate::resp::{Args, Reply};

/// A hash command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOp {
    /// `HSET key field value [field value ...]`, and `HMSET` (`ok`: it
    /// replies +OK, not the count).
    Set {
        /// The hash.
        key: Vec<u8>,
        /// The fields and values, in order.
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        /// HMSET.
        ok: bool,
    },
    /// `HSETNX key field value`
    SetNx(Vec<u8>, Vec<u8>, Vec<u8>),
    /// `HGET key field`
    Get(Vec<u8>, Vec<u8>),
    /// `HMGET key field [field ...]`
    MGet(Vec<u8>, Vec<Vec<u8>>),
    /// `HGETALL`, `HKEYS`, `HVALS key`: which parts of each pair.
    All(Vec<u8>, Parts),
    /// `HDEL key field [field ...]`
    Del(Vec<u8>, Vec<Vec<u8>>),
    /// `HLEN key`
    Len(Vec<u8>),
    /// `HEXISTS key field`
    Exists(Vec<u8>, Vec<u8>),
    /// `HSTRLEN key field`
    StrLen(Vec<u8>, Vec<u8>),
    /// `HINCRBY key field increment`
    IncrBy(Vec<u8>, Vec<u8>, i64),
    /// `HINCRBYFLOAT key field increment`, with the increment as given
    /// (for replicas) and as read: Redis checks it before the key.
    IncrByFloat(Vec<u8>, Vec<u8>, LongDouble),
    /// `HRANDFIELD key [count [WITHVALUES]]`
    RandField(Vec<u8>, Option<i64>, bool),
    /// `HSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan(Vec<u8>, Option<Vec<u8>>),
}

/// What HGETALL, HKEYS and HVALS reply of each pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Fields and values: a map (HGETALL).
    Both,
    /// Fields (HKEYS).
    Fields,
    /// Values (HVALS).
    Values,
}

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[
    hash_spec(
        "hset",
        -4,
        WRITE_MORE,
        "Set the string value of a hash field",
        "2.0.0",
        |a| parse_hset(a, false),
    ),
    hash_spec(
        "hmset",
        -4,
        WRITE_MORE,
        "Set multiple hash fields to multiple values",
        "2.0.0",
        |a| parse_hset(a, true),
    ),
    hash_spec(
        "hsetnx",
        4,
        WRITE_MORE,
        "Set the value of a hash field, only if the field does not exist",
        "2.0.0",
        |a| {
            let [_, key, field, value] = fixed(a);
            Ok(hash(HashOp::SetNx(key, field, value)))
        },
    ),
    hash_spec(
        "hget",
        3,
        READ_FAST,
        "Get the value of a hash field",
        "2.0.0",
        |a| {
            let [_, key, field] = fixed(a);
            Ok(hash(HashOp::Get(key, field)))
        },
    ),
    hash_spec(
        "hmget",
        -3,
        READ_FAST,
        "Get the values of all the given hash fields",
        "2.0.0",
        |a| {
            let mut a = a.into_iter().skip(1);
            let key = a.next().unwrap_or_default();
            Ok(hash(HashOp::MGet(key, a.collect())))
        },
    ),
    hash_spec(
        "hgetall",
        2,
        Flags::READONLY,
        "Get all the fields and values in a hash",
        "2.0.0",
        |a| {
            let [_, key] = fixed(a);
            Ok(hash(HashOp::All(key, Parts::Both)))
        },
    ),
    hash_spec(
        "hkeys",
        2,
        Flags::READONLY,
        "Get all the fields in a hash",
        "2.0.0",
        |a| {
            let [_, key] = fixed(a);
            Ok(hash(HashOp::All(key, Parts::Fields)))
        },
    ),
    hash_spec(
        "hvals",
        2,
        Flags::READONLY,
        "Get all the values in a hash",
        "2.0.0",
        |a| {
            let [_, key] = fixed(a);
            Ok(hash(HashOp::All(key, Parts::Values)))
        },
    ),
    hash_spec(
        "hdel",
        -3,
        Flags::WRITE.and(Flags::FAST),
        "Delete one or more hash fields",
        "2.0.0",
        |a| {
            let mut a = a.into_iter().skip(1);
            let key = a.next().unwrap_or_default();
            Ok(hash(HashOp::Del(key, a.collect())))
        },
    ),
    hash_spec(
        "hlen",
        2,
        READ_FAST,
        "Get the number of fields in a hash",
        "2.0.0",
        |a| {
            let [_, key] = fixed(a);
            Ok(hash(HashOp::Len(key)))
        },
    ),
    hash_spec(
        "hexists",
        3,
        READ_FAST,
        "Determine if a hash field exists",
        "2.0.0",
        |a| {
            let [_, key, field] = fixed(a);
            Ok(hash(HashOp::Exists(key, field)))
        },
    ),
    hash_spec(
        "hstrlen",
        3,
        READ_FAST,
        "Get the length of the value of a hash field",
        "3.2.0",
        |a| {
            let [_, key, field] = fixed(a);
            Ok(hash(HashOp::StrLen(key, field)))
        },
    ),
    hash_spec(
        "hincrby",
        4,
        WRITE_MORE,
        "Increment the integer value of a hash field by the given number",
        "2.0.0",
        |a| {
            let by = parse_int(&a[3])?;
            let [_, key, field, _] = fixed(a);
            Ok(hash(HashOp::IncrBy(key, field, by)))
        },
    ),
    hash_spec(
        "hincrbyfloat",
        4,
        WRITE_MORE,
        "Increment the float value of a hash field by the given amount",
        "2.6.0",
        |a| {
            let [_, key, field, by] = fixed(a);
            let by = match LongDouble::parse(&by) {
                None => return Err(Reply::error("ERR value is not a valid float")),
                Some(LongDouble::Infinite { .. }) => {
                    return Err(Reply::error("ERR value is NaN or Infinity"))
                }
                Some(by) => by,
            };
            Ok(hash(HashOp::IncrByFloat(key, field, by)))
        },
    ),
    hash_spec(
        "hrandfield",
        -2,
        Flags::READONLY,
        "Get one or multiple random fields from a hash",
        "6.2.0",
        parse_hrandfield,
    ),
    hash_spec(
        "hscan",
        -3,
        Flags::READONLY,
        "Incrementally iterate hash fields and associated values",
        "2.8.0",
        |a| {
            let pattern = parse_scan_options(&a[2..])?;
            let [_, key] = fixed(a.into_iter().take(2).collect());
            Ok(hash(HashOp::Scan(key, pattern)))
        },
    ),
];

/// The row of a hash command.
const fn hash_spec(
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    typed_spec("hash", name, arity, flags, summary, since, parse)
}

fn hash(op: HashOp) -> Op {
    Op::Hash(op)
}

/// The arguments of a command of fixed arity (checked by the table).
fn fixed<const N: usize>(args: Args) -> [Vec<u8>; N] {
    let mut args = args.into_iter();
    std::array::from_fn(|_| args.next().unwrap_or_default())
}

fn parse_hset(args: Args, ok: bool) -> Result<Op, Reply> {
    if !args.len().is_multiple_of(2) {
        let name = if ok { "hmset" } else { "hset" };
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let mut args = args.into_iter().skip(1);
    let key = args.next().unwrap_or_default();
    let mut pairs = Vec::new();
    while let (Some(field), Some(value)) = (args.next(), args.next()) {
        pairs.push((field, value));
    }
    Ok(hash(HashOp::Set { key, pairs, ok }))
}

fn parse_hrandfield(args: Args) -> Result<Op, Reply> {
    let count = args.get(2).map(|c| random_count(c)).transpose()?;
    let with_values = match args.get(3) {
        None => false,
        Some(word) if word.eq_ignore_ascii_case(b"withvalues") && args.len() == 4 => true,
        Some(_) => return Err(Reply::error("ERR syntax error")),
    };
    // With values, Redis refuses a count whose pairs would overflow.
    if with_values && count.is_some_and(|n| n.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let [_, key] = fixed(args.into_iter().take(2).collect());
    Ok(hash(HashOp::RandField(key, count, with_values)))
}

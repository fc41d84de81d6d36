//! Hash commands: fields and their values under one key.
//!
//! HSET and HGET are O(1) (a field index), HGETALL, HKEYS and HVALS O(n).
//! A small hash answers in insertion order, a big one in no particular
//! order, as Redis's listpack and hash table do (see keyspace/hash.rs).
//! HINCRBYFLOAT computes on C `long double`s and replies in Redis's form,
//! with the library INCRBYFLOAT uses; it reaches replicas as an HSET of
//! the result, so that they store the same bytes.

use super::typed::{
    bulks, check_type, lookup, matches, new_hash, parse_scan_options, random_count,
    random_positions, reply, scan_reply, typed_spec, words,
};
use super::{parse_int, Flags, Op, Spec};
use crate::keyspace::{Hash, Keyspace, Value, ValueRef};
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

const WRITE_MORE: Flags = Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST);
const READ_FAST: Flags = Flags::READONLY.and(Flags::FAST);

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
    let [_, key] = fixed(args.into_iter().take(2).collect());
    Ok(hash(HashOp::RandField(key, count, with_values)))
}

/// The hash in a value, if it is one.
fn as_hash(value: ValueRef<'_>) -> Option<&Hash> {
    match value {
        ValueRef::Hash(hash) => Some(hash),
        _ => None,
    }
}

/// The hash in a value being changed (the caller checked the type).
fn hash_mut(value: &mut Value) -> &mut Hash {
    match value {
        Value::Hash(hash) => hash,
        _ => unreachable!("a hash command changed a value of another type"),
    }
}

/// Runs a hash command that only reads.
pub fn read(op: HashOp, keyspace: &Keyspace, now: i64) -> Reply {
    reply(try_read(op, keyspace, now))
}

fn try_read(op: HashOp, keyspace: &Keyspace, now: i64) -> Result<Reply, Reply> {
    let get = |key: &[u8]| lookup(keyspace, key, now, as_hash);
    let field_reply = |value: Option<&[u8]>| value.map_or(Reply::Nil, Reply::bulk);
    Ok(match op {
        HashOp::Get(key, field) => field_reply(get(&key)?.and_then(|h| h.get(&field))),
        HashOp::MGet(key, fields) => {
            let hash = get(&key)?;
            Reply::Array(
                fields
                    .iter()
                    .map(|f| field_reply(hash.and_then(|h| h.get(f))))
                    .collect(),
            )
        }
        HashOp::All(key, parts) => {
            let Some(hash) = get(&key)? else {
                return Ok(if parts == Parts::Both {
                    Reply::Map(Vec::new())
                } else {
                    Reply::Array(Vec::new())
                });
            };
            match parts {
                Parts::Both => Reply::Map(
                    hash.iter()
                        .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                        .collect(),
                ),
                Parts::Fields => Reply::Array(bulks(hash.iter().map(|(f, _)| f))),
                Parts::Values => Reply::Array(bulks(hash.iter().map(|(_, v)| v))),
            }
        }
        HashOp::Len(key) => Reply::Integer(get(&key)?.map_or(0, |h| h.len() as i64)),
        HashOp::Exists(key, field) => Reply::Integer(i64::from(
            get(&key)?.is_some_and(|h| h.get(&field).is_some()),
        )),
        HashOp::StrLen(key, field) => Reply::Integer(
            get(&key)?
                .and_then(|h| h.get(&field))
                .map_or(0, |v| v.len() as i64),
        ),
        HashOp::RandField(key, count, with_values) => {
            let hash = get(&key)?;
            rand_field(hash, count, with_values)
        }
        HashOp::Scan(key, pattern) => {
            let mut items = Vec::new();
            for (field, value) in get(&key)?.iter().flat_map(|h| h.iter()) {
                if matches(&pattern, field) {
                    items.extend([Reply::bulk(field), Reply::bulk(value)]);
                }
            }
            scan_reply(items)
        }
        _ => Reply::error("ERR write command run without the write lock"),
    })
}

/// Runs HRANDFIELD.
fn rand_field(hash: Option<&Hash>, count: Option<i64>, with_values: bool) -> Reply {
    let Some(count) = count else {
        let pick = hash.and_then(|h| h.pair(random_positions(h.len(), -1)[0]));
        return pick.map_or(Reply::Nil, |(field, _)| Reply::bulk(field));
    };
    let Some(hash) = hash else {
        return Reply::Array(Vec::new());
    };
    let picks = random_positions(hash.len(), count).into_iter();
    let pairs = picks.filter_map(|at| hash.pair(at));
    if with_values {
        Reply::Pairs(
            pairs
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        )
    } else {
        Reply::Array(pairs.map(|(f, _)| Reply::bulk(f)).collect())
    }
}

/// Runs a hash command that may write.
pub fn write(op: HashOp, keyspace: &mut Keyspace, now: i64) -> Reply {
    reply(try_write(op, keyspace, now))
}

fn try_write(op: HashOp, keyspace: &mut Keyspace, now: i64) -> Result<Reply, Reply> {
    let is_hash = |value: ValueRef| matches!(value, ValueRef::Hash(_));
    Ok(match op {
        HashOp::Set { key, pairs, ok } => {
            check_type(keyspace, &key, now, is_hash)?;
            let added = keyspace.change(&key, Some(new_hash), |value| {
                let hash = hash_mut(value);
                pairs
                    .iter()
                    .filter(|(f, v)| hash.insert(f.clone(), v.clone()))
                    .count()
            });
            let name = if ok { "HMSET" } else { "HSET" };
            let args = pairs.into_iter().flat_map(|(f, v)| [f, v]);
            keyspace.changed(
                &key,
                vec![words(name, [key.clone()].into_iter().chain(args))],
            );
            if ok {
                Reply::ok()
            } else {
                Reply::Integer(added.unwrap_or(0) as i64)
            }
        }
        HashOp::SetNx(key, field, value) => {
            if check_type(keyspace, &key, now, is_hash)?
                && lookup(keyspace, &key, now, as_hash)?.is_some_and(|h| h.get(&field).is_some())
            {
                return Ok(Reply::Integer(0));
            }
            keyspace.change(&key, Some(new_hash), |v| {
                hash_mut(v).insert(field.clone(), value.clone())
            });
            keyspace.changed(&key, vec![words("HSETNX", [key.clone(), field, value])]);
            Reply::Integer(1)
        }
        HashOp::Del(key, fields) => {
            if !check_type(keyspace, &key, now, is_hash)? {
                return Ok(Reply::Integer(0));
            }
            let removed = keyspace.change(&key, None, |value| {
                let hash = hash_mut(value);
                fields.iter().filter(|f| hash.remove(f)).count()
            });
            let removed = removed.unwrap_or(0);
            if removed > 0 {
                keyspace.changed(
                    &key,
                    vec![words("HDEL", [key.clone()].into_iter().chain(fields))],
                );
            }
            Reply::Integer(removed as i64)
        }
        HashOp::IncrBy(key, field, by) => {
            check_type(keyspace, &key, now, is_hash)?;
            let current = lookup(keyspace, &key, now, as_hash)?.and_then(|h| h.get(&field));
            let current = match current {
                None => 0,
                Some(value) => parse_int(value)
                    .map_err(|_| Reply::error("ERR hash value is not an integer"))?,
            };
            let new = current
                .checked_add(by)
                .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
            let text = new.to_string().into_bytes();
            store(
                keyspace,
                key,
                field,
                text,
                "HINCRBY",
                by.to_string().into_bytes(),
            );
            Reply::Integer(new)
        }
        HashOp::IncrByFloat(key, field, by) => {
            check_type(keyspace, &key, now, is_hash)?;
            let current = lookup(keyspace, &key, now, as_hash)?.and_then(|h| h.get(&field));
            let current = match current {
                None => LongDouble::ZERO,
                Some(value) => LongDouble::parse(value)
                    .ok_or_else(|| Reply::error("ERR hash value is not a float"))?,
            };
            let sum = current
                .add(by)
                .ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?;
            let text = sum.to_human().into_bytes();
            store(keyspace, key, field, text.clone(), "HSET", text.clone());
            Reply::Bulk(text)
        }
        op => {
            let reply = read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    })
}

/// Stores `value` at `field` of the hash at `key` (made if missing), and
/// tells replicas `name key field argument`.
fn store(
    keyspace: &mut Keyspace,
    key: Vec<u8>,
    field: Vec<u8>,
    value: Vec<u8>,
    name: &str,
    argument: Vec<u8>,
) {
    keyspace.change(&key, Some(new_hash), |v| {
        hash_mut(v).insert(field.clone(), value)
    });
    keyspace.changed(&key, vec![words(name, [key.clone(), field, argument])]);
}

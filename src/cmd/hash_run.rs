//! Running the hash commands (parsed in `hash.rs`).
//!
//! HINCRBYFLOAT computes on C `long double`s and replies in Redis's form,
//! with the library INCRBYFLOAT uses; it reaches replicas as an HSET of
//! the result, so that they store the same bytes.

use super::hash::{HashOp, Parts};
use super::parse_int;
use super::typed::{
    announce, bulks, check_type, lookup, matches, new_hash, random_positions, reply, scan_reply,
    words,
};
use crate::events::Events;
use crate::keyspace::{Hash, Keyspace, Value, ValueRef};
use crate::long_double::LongDouble;
use crate::resp::Reply;

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
    // A compact hash is found by a scan: unpack it once, not per pick.
    let unpacked: Vec<(&[u8], &[u8])> = if hash.is_compact() {
        hash.iter().collect()
    } else {
        Vec::new()
    };
    let pick = |at: usize| match unpacked.get(at) {
        Some(&pair) => Some(pair),
        None => hash.pair(at),
    };
    let picks = random_positions(hash.len(), count).into_iter();
    let pairs = picks.filter_map(pick);
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
            // HMSET's event is `hset` too, as in Redis.
            announce(keyspace, &key, now, Events::HASH, "hset");
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
            announce(keyspace, &key, now, Events::HASH, "hset");
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
                announce(keyspace, &key, now, Events::HASH, "hdel");
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
                &key,
                field,
                text,
                "HINCRBY",
                by.to_string().into_bytes(),
            );
            keyspace.notify(Events::HASH, "hincrby", &key);
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
            store(keyspace, &key, field, text.clone(), "HSET", text.clone());
            keyspace.notify(Events::HASH, "hincrbyfloat", &key);
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
    key: &[u8],
    field: Vec<u8>,
    value: Vec<u8>,
    name: &str,
    argument: Vec<u8>,
) {
    keyspace.change(key, Some(new_hash), |v| {
        hash_mut(v).insert(field.clone(), value)
    });
    keyspace.changed(key, vec![words(name, [key.to_vec(), field, argument])]);
}

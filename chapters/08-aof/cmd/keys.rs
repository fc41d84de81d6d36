//! Generic key commands: DEL and EXISTS.

use super::{Flags, Op, Spec};
use crate::db::Keyspace;
use crate::resp::Reply;

/// `DEL key [key ...]`
pub const DEL: Spec = Spec {
    name: "del",
    arity: -2,
    flags: Flags::of(&[Flags::WRITE]),
    keys: (1, -1, 1),
    summary: "Delete a key",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Del(args.into_iter().skip(1).collect())),
    subcommands: &[],
};

/// `EXISTS key [key ...]`
pub const EXISTS: Spec = Spec {
    name: "exists",
    arity: -2,
    flags: Flags::of(&[Flags::READONLY, Flags::FAST]),
    keys: (1, -1, 1),
    summary: "Determine if a key exists",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Exists(args.into_iter().skip(1).collect())),
    subcommands: &[],
};

/// Runs DEL: how many of the keys existed (each is counted once, since a
/// repeated key is already gone the second time). An expired key is
/// deleted too, but does not count: it was already logically gone.
pub fn del(keyspace: &mut Keyspace, keys: &[Vec<u8>], now: i64) -> Reply {
    let deleted = keys
        .iter()
        .filter(|key| !keyspace.remove_if_expired(key, now) && keyspace.remove(key))
        .count();
    Reply::Integer(deleted as i64)
}

/// Runs EXISTS: how many of the keys exist, a key named twice counted twice.
pub fn exists(keyspace: &Keyspace, keys: &[Vec<u8>], now: i64) -> Reply {
    let found = keys
        .iter()
        .filter(|key| keyspace.get(key, now).is_some())
        .count();
    Reply::Integer(found as i64)
}

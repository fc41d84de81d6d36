//! Generic key commands: DEL and EXISTS.

use super::{rest, Op, Spec};
use crate::db::Databases;
use crate::keyspace::Keyspace;
use crate::resp::Reply;

/// A generic key command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// `DEL key [key ...]`
    Del(Vec<Vec<u8>>),
    /// `EXISTS key [key ...]`
    Exists(Vec<Vec<u8>>),
}

/// The generic key commands' rows of the table.
pub const COMMANDS: &[Spec] = &[DEL, EXISTS];

/// Runs a key command that only reads, in database `db`.
pub fn read(op: KeyOp, dbs: &Databases, db: usize, now: i64) -> Reply {
    let keyspace = &dbs[db];
    match op {
        KeyOp::Exists(keys) => exists(keyspace, &keys, now),
        // Flagged `write` in the table, so never here.
        KeyOp::Del(..) => Reply::error("ERR write command run without the write lock"),
    }
}

/// Runs a key command that may write, in database `db`.
pub fn write(op: KeyOp, dbs: &mut Databases, db: usize, now: i64) -> Reply {
    match op {
        KeyOp::Del(keys) => del(&mut dbs[db], &keys, now),
        op => {
            let reply = read(op, dbs, db, now);
            dbs[db].purge_stale(now);
            reply
        }
    }
}

/// `DEL key [key ...]`
pub const DEL: Spec = Spec {
    name: "del",
    arity: -2,
    flags: &["write"],
    keys: (1, -1, 1),
    summary: "Delete a key",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Del(rest(args, 1)))),
    subcommands: &[],
};

/// `EXISTS key [key ...]`
pub const EXISTS: Spec = Spec {
    name: "exists",
    arity: -2,
    flags: &["readonly", "fast"],
    keys: (1, -1, 1),
    summary: "Determine if a key exists",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Exists(rest(args, 1)))),
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

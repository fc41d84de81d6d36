//! String commands: GET and SET.

use super::{Flags, Op, Spec};
use crate::db::Keyspace;
use crate::resp::Reply;

/// `GET key`
pub const GET: Spec = Spec {
    name: "get",
    arity: 2,
    flags: Flags::of(&[Flags::READONLY, Flags::FAST]),
    keys: (1, 1, 1),
    summary: "Get the value of a key",
    since: "1.0.0",
    group: "string",
    parse: |args| Ok(Op::Get(args.into_iter().nth(1).unwrap_or_default())),
    subcommands: &[],
};

/// `SET key value`
pub const SET: Spec = Spec {
    name: "set",
    arity: -3,
    flags: Flags::of(&[Flags::WRITE, Flags::DENYOOM]),
    keys: (1, 1, 1),
    summary: "Set the string value of a key",
    since: "1.0.0",
    group: "string",
    parse: |args| {
        // This server knows no SET options yet: anything after the value
        // is a syntax error, as an unknown option is in Redis.
        let [_, key, value] = <[Vec<u8>; 3]>::try_from(args).map_err(|_| syntax_error())?;
        Ok(Op::Set(key, value))
    },
    subcommands: &[],
};

fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

/// Runs GET: the value, or a null bulk when the key does not exist.
pub fn get(keyspace: &Keyspace, key: &[u8]) -> Reply {
    keyspace.get(key).map_or(Reply::Nil, Reply::bulk)
}

/// Runs SET.
pub fn set(keyspace: &mut Keyspace, key: Vec<u8>, value: Vec<u8>) -> Reply {
    keyspace.set(key, value);
    Reply::ok()
}

//! OBJECT ENCODING and MEMORY USAGE: what a key's value looks like inside.
//!
//! OBJECT ENCODING names Redis 7.0's encoding of the value, which ours
//! follows where it shows in replies and dumps: `listpack` or `hashtable`
//! for a hash, `intset` or `hashtable` for a set; a list is a `quicklist`;
//! a string is `int`, `embstr` (44 bytes or less) or `raw`. MEMORY USAGE
//! estimates the bytes the key costs here: its entry, key and value, with
//! what each element adds.

use super::typed::reply;
use super::{Flags, Op, Spec};
use crate::keyspace::{canonical_int, Keyspace, Set, ValueRef};
use crate::resp::Reply;

/// OBJECT and MEMORY subcommands, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOp {
    /// `OBJECT ENCODING key`
    Encoding(Vec<u8>),
    /// `MEMORY USAGE key [SAMPLES count]`
    Usage(Vec<u8>),
}

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "object",
        arity: -2,
        flags: Flags::NONE,
        keys: (0, 0, 0),
        summary: "A container for object introspection commands",
        since: "2.2.3",
        group: "generic",
        parse: |_| {
            Err(Reply::error(
                "ERR wrong number of arguments for 'object' command",
            ))
        },
        subcommands: &[Spec {
            name: "object|encoding",
            arity: 3,
            flags: Flags::READONLY,
            keys: (2, 2, 1),
            summary: "Inspect the internal encoding of a Redis object",
            since: "2.2.3",
            group: "generic",
            parse: |args| Ok(Op::Object(ObjectOp::Encoding(args[2].clone()))),
            subcommands: &[],
        }],
    },
    Spec {
        name: "memory",
        arity: -2,
        flags: Flags::NONE,
        keys: (0, 0, 0),
        summary: "A container for memory diagnostics commands",
        since: "4.0.0",
        group: "server",
        parse: |_| {
            Err(Reply::error(
                "ERR wrong number of arguments for 'memory' command",
            ))
        },
        subcommands: &[Spec {
            name: "memory|usage",
            arity: -3,
            flags: Flags::READONLY,
            keys: (2, 2, 1),
            summary: "Estimate the memory usage of a key",
            since: "4.0.0",
            group: "server",
            parse: |args| {
                match &args[3..] {
                    [] => {}
                    [word, n] if word.eq_ignore_ascii_case(b"samples") => {
                        super::parse_int(n)?;
                    }
                    _ => return Err(Reply::error("ERR syntax error")),
                }
                Ok(Op::Object(ObjectOp::Usage(args[2].clone())))
            },
            subcommands: &[],
        }],
    },
];

/// What an entry costs besides its key and value (the table's slot, the
/// block's counters and allocator rounding), and what each element of
/// an aggregate adds besides its bytes (its vector, index slot, hashing).
const ENTRY_OVERHEAD: usize = 56;
const ELEMENT_OVERHEAD: usize = 24;

/// Runs OBJECT ENCODING or MEMORY USAGE.
pub fn read(op: ObjectOp, keyspace: &Keyspace, now: i64) -> Reply {
    reply(Ok(match op {
        ObjectOp::Encoding(key) => match keyspace.get(&key, now) {
            None => Reply::Nil,
            Some(entry) => Reply::bulk(encoding(entry.value())),
        },
        ObjectOp::Usage(key) => match keyspace.get(&key, now) {
            None => Reply::Nil,
            Some(entry) => Reply::Integer((key.len() + usage(entry.value())) as i64),
        },
    }))
}

/// The name of Redis's encoding for `value`.
fn encoding(value: ValueRef) -> &'static str {
    match value {
        ValueRef::String(bytes) if canonical_int(bytes).is_some() => "int",
        ValueRef::String(bytes) if bytes.len() <= 44 => "embstr",
        ValueRef::String(_) => "raw",
        ValueRef::List(_) => "quicklist",
        ValueRef::Hash(hash) if hash.is_compact() => "listpack",
        ValueRef::Hash(_) => "hashtable",
        ValueRef::Set(set) if set.is_intset() => "intset",
        ValueRef::Set(_) => "hashtable",
    }
}

/// Estimated bytes of `value` and its entry.
fn usage(value: ValueRef) -> usize {
    ENTRY_OVERHEAD
        + match value {
            ValueRef::String(bytes) => bytes.len(),
            ValueRef::List(list) => list.iter().map(|e| e.len() + ELEMENT_OVERHEAD).sum(),
            ValueRef::Hash(hash) => hash
                .iter()
                .map(|(f, v)| 2 * f.len() + v.len() + 3 * ELEMENT_OVERHEAD)
                .sum(),
            ValueRef::Set(Set::Ints(ints)) => ints.len() * 8,
            ValueRef::Set(set) => set.iter().map(|m| 2 * m.len() + 3 * ELEMENT_OVERHEAD).sum(),
        }
}

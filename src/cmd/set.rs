//! Set commands: distinct members under one key, and the algebra of sets
//! (SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD).
//!
//! SADD, SREM and SISMEMBER are O(1) (O(log n) on a small set of
//! integers, as on Redis's intset); SMEMBERS is O(n). The random commands
//! pick positions uniformly (see `typed::random_positions`). SPOP is not
//! deterministic, so replicas are told which members went: an SREM.
//!
//! This file parses them (the table's rows and [`SetOp`]);
//! `set_run.rs` runs them.

use super::typed::{parse_scan_options, random_count, typed_spec, READ_FAST, WRITE_MORE};
use super::{parse_int, Flags, Op, Spec};
use crate::resp::{Args, Reply};

/// A set command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// `SADD key member [member ...]`
    Add(Vec<u8>, Vec<Vec<u8>>),
    /// `SREM key member [member ...]`
    Rem(Vec<u8>, Vec<Vec<u8>>),
    /// `SCARD key`
    Card(Vec<u8>),
    /// `SISMEMBER key member`
    IsMember(Vec<u8>, Vec<u8>),
    /// `SMISMEMBER key member [member ...]`
    MIsMember(Vec<u8>, Vec<Vec<u8>>),
    /// `SMEMBERS key`
    Members(Vec<u8>),
    /// `SPOP key [count]`
    Pop(Vec<u8>, Option<usize>),
    /// `SRANDMEMBER key [count]`
    RandMember(Vec<u8>, Option<i64>),
    /// `SMOVE source destination member`
    Move(Vec<u8>, Vec<u8>, Vec<u8>),
    /// `SINTER`, `SUNION`, `SDIFF key [key ...]`, and with a destination
    /// the STORE forms.
    Algebra {
        /// Which operation.
        kind: Algebra,
        /// The STORE forms' destination.
        destination: Option<Vec<u8>>,
        /// The sets.
        keys: Vec<Vec<u8>>,
    },
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
    InterCard(Vec<Vec<u8>>, usize),
    /// `SSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan(Vec<u8>, Option<Vec<u8>>),
}

/// The operations of set algebra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algebra {
    /// Members of every set.
    Inter,
    /// Members of any set.
    Union,
    /// Members of the first set and of no other.
    Diff,
}

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[
    set_spec(
        "sadd",
        -3,
        WRITE_MORE,
        "Add one or more members to a set",
        "1.0.0",
        |a| {
            let (key, members) = key_and_rest(a);
            Ok(set(SetOp::Add(key, members)))
        },
    ),
    set_spec(
        "srem",
        -3,
        Flags::WRITE.and(Flags::FAST),
        "Remove one or more members from a set",
        "1.0.0",
        |a| {
            let (key, members) = key_and_rest(a);
            Ok(set(SetOp::Rem(key, members)))
        },
    ),
    set_spec(
        "scard",
        2,
        READ_FAST,
        "Get the number of members in a set",
        "1.0.0",
        |a| Ok(set(SetOp::Card(key_and_rest(a).0))),
    ),
    set_spec(
        "sismember",
        3,
        READ_FAST,
        "Determine if a given value is a member of a set",
        "1.0.0",
        |a| {
            let (key, mut member) = key_and_rest(a);
            Ok(set(SetOp::IsMember(key, member.pop().unwrap_or_default())))
        },
    ),
    set_spec(
        "smismember",
        -3,
        READ_FAST,
        "Returns the membership associated with the given elements for a set",
        "6.2.0",
        |a| {
            let (key, members) = key_and_rest(a);
            Ok(set(SetOp::MIsMember(key, members)))
        },
    ),
    set_spec(
        "smembers",
        2,
        Flags::READONLY,
        "Get all the members in a set",
        "1.0.0",
        |a| Ok(set(SetOp::Members(key_and_rest(a).0))),
    ),
    set_spec(
        "spop",
        -2,
        Flags::WRITE.and(Flags::FAST),
        "Remove and return one or multiple random members from a set",
        "1.0.0",
        |a| {
            if a.len() > 3 {
                return Err(Reply::error("ERR syntax error"));
            }
            let count = match a.get(2) {
                None => None,
                Some(count) => match parse_int(count) {
                    Ok(n) if n >= 0 => Some(n as usize),
                    _ => return Err(Reply::error("ERR value is out of range, must be positive")),
                },
            };
            Ok(set(SetOp::Pop(key_and_rest(a).0, count)))
        },
    ),
    set_spec(
        "srandmember",
        -2,
        Flags::READONLY,
        "Get one or multiple random members from a set",
        "1.0.0",
        |a| {
            if a.len() > 3 {
                return Err(Reply::error("ERR syntax error"));
            }
            let count = a.get(2).map(|c| random_count(c)).transpose()?;
            Ok(set(SetOp::RandMember(key_and_rest(a).0, count)))
        },
    ),
    Spec {
        keys: (1, 2, 1),
        ..set_spec(
            "smove",
            4,
            Flags::WRITE.and(Flags::FAST),
            "Move a member from one set to another",
            "1.0.0",
            |a| {
                let mut a = a.into_iter().skip(1);
                let mut next = || a.next().unwrap_or_default();
                Ok(set(SetOp::Move(next(), next(), next())))
            },
        )
    },
    algebra_spec(
        "sinter",
        -2,
        Flags::READONLY,
        "Intersect multiple sets",
        |a| parse_algebra(a, Algebra::Inter, false),
    ),
    algebra_spec("sunion", -2, Flags::READONLY, "Add multiple sets", |a| {
        parse_algebra(a, Algebra::Union, false)
    }),
    algebra_spec(
        "sdiff",
        -2,
        Flags::READONLY,
        "Subtract multiple sets",
        |a| parse_algebra(a, Algebra::Diff, false),
    ),
    algebra_spec(
        "sinterstore",
        -3,
        Flags::WRITE.and(Flags::DENYOOM),
        "Intersect multiple sets and store the resulting set in a key",
        |a| parse_algebra(a, Algebra::Inter, true),
    ),
    algebra_spec(
        "sunionstore",
        -3,
        Flags::WRITE.and(Flags::DENYOOM),
        "Add multiple sets and store the resulting set in a key",
        |a| parse_algebra(a, Algebra::Union, true),
    ),
    algebra_spec(
        "sdiffstore",
        -3,
        Flags::WRITE.and(Flags::DENYOOM),
        "Subtract multiple sets and store the resulting set in a key",
        |a| parse_algebra(a, Algebra::Diff, true),
    ),
    Spec {
        keys: (0, 0, 0),
        since: "7.0.0",
        ..set_spec(
            "sintercard",
            -3,
            Flags::READONLY,
            "Intersect multiple sets and return the cardinality of the result",
            "7.0.0",
            parse_sintercard,
        )
    },
    set_spec(
        "sscan",
        -3,
        Flags::READONLY,
        "Incrementally iterate Set elements",
        "2.8.0",
        |a| {
            let pattern = parse_scan_options(&a[2..])?;
            Ok(set(SetOp::Scan(key_and_rest(a).0, pattern)))
        },
    ),
];

/// The row of a set command.
const fn set_spec(
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    typed_spec("set", name, arity, flags, summary, since, parse)
}

/// The row of SINTER and its relatives: every argument is a key.
const fn algebra_spec(
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    Spec {
        keys: (1, -1, 1),
        ..set_spec(name, arity, flags, summary, "1.0.0", parse)
    }
}

fn set(op: SetOp) -> Op {
    Op::Set(op)
}

/// The key, then the other arguments.
fn key_and_rest(args: Args) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut args = args.into_iter().skip(1);
    (args.next().unwrap_or_default(), args.collect())
}

fn parse_algebra(args: Args, kind: Algebra, store: bool) -> Result<Op, Reply> {
    let (first, mut keys) = key_and_rest(args);
    let destination = if store {
        Some(first)
    } else {
        keys.insert(0, first);
        None
    };
    Ok(set(SetOp::Algebra {
        kind,
        destination,
        keys,
    }))
}

fn parse_sintercard(args: Args) -> Result<Op, Reply> {
    // Not a number at all gets the same error as zero, as in Redis.
    let numkeys = match parse_int(&args[1]) {
        Ok(n) if n > 0 => n,
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 2 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0;
    let mut options = args[2 + numkeys..].iter();
    while let Some(option) = options.next() {
        match options.next() {
            Some(value) if option.eq_ignore_ascii_case(b"limit") => match parse_int(value) {
                Ok(n) if n >= 0 => limit = n as usize,
                _ => return Err(Reply::error("ERR LIMIT can't be negative")),
            },
            _ => return Err(Reply::error("ERR syntax error")),
        }
    }
    Ok(set(SetOp::InterCard(args[2..2 + numkeys].to_vec(), limit)))
}

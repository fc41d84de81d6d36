//! List commands: pushes and pops at both ends, reads by index and range,
//! and the edits in the middle (LSET, LINSERT, LREM, LTRIM), LPOS, and the
//! moves between lists (LMOVE, RPOPLPUSH, LMPOP).
//!
//! A list is a `VecDeque` (a ring buffer): pushes and pops at either end
//! are O(1), as Redis documents them, and so is any index, where Redis's
//! quicklist walks its nodes. Edits in the middle shift the elements
//! after them: O(n), as Redis's are. Indexes follow Redis's rules: a
//! negative one counts from the end (-1 is the last element), a range is
//! clipped to the list, and an empty result is an empty array.
//!
//! This file parses them (the table's rows and [`ListOp`]);
//! `list_run.rs` runs them.

use super::typed::{typed_spec, WRITE_MORE};
use super::{parse_int, Flags, Op, Spec};
use crate::resp::{Args, Reply};

/// A list command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOp {
    /// `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX key element [element ...]`
    Push {
        /// The command's name, for replicas.
        name: &'static str,
        /// The list.
        key: Vec<u8>,
        /// What to push, in order.
        elements: Vec<Vec<u8>>,
        /// At the head (L) or the tail (R).
        left: bool,
        /// The X forms: only onto an existing list.
        existing: bool,
    },
    /// `LPOP`, `RPOP key [count]`
    Pop {
        /// The list.
        key: Vec<u8>,
        /// From the head or the tail.
        left: bool,
        /// How many, if COUNT was given (then the reply is an array).
        count: Option<usize>,
    },
    /// `LLEN key`
    Len(Vec<u8>),
    /// `LRANGE key start stop`
    Range(Vec<u8>, i64, i64),
    /// `LINDEX key index`
    Index(Vec<u8>, i64),
    /// `LSET key index element`
    Set(Vec<u8>, i64, Vec<u8>),
    /// `LINSERT key BEFORE|AFTER pivot element`
    Insert {
        /// The list.
        key: Vec<u8>,
        /// BEFORE (else AFTER).
        before: bool,
        /// The element to insert next to.
        pivot: Vec<u8>,
        /// What to insert.
        element: Vec<u8>,
    },
    /// `LREM key count element`
    Rem(Vec<u8>, i64, Vec<u8>),
    /// `LTRIM key start stop`
    Trim(Vec<u8>, i64, i64),
    /// `LPOS key element [RANK rank] [COUNT num] [MAXLEN len]`
    Pos(Vec<u8>, Vec<u8>, PosOptions),
    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`, `RPOPLPUSH`
    Move {
        /// The command's words, for replicas.
        words: Args,
        /// Where from.
        source: Vec<u8>,
        /// Where to.
        destination: Vec<u8>,
        /// Pop from the source's head.
        from_left: bool,
        /// Push onto the destination's head.
        to_left: bool,
    },
    /// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
    MPop(Vec<Vec<u8>>, bool, usize),
}

/// LPOS's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosOptions {
    /// Which match to start from: 1 the first, -1 the first from the end.
    pub rank: i64,
    /// How many matches (0: all); `None` replies one index, not an array.
    pub count: Option<i64>,
    /// How many elements to look at (0: all).
    pub maxlen: i64,
}

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[
    list_spec(
        "lpush",
        -3,
        WRITE_MORE,
        "Prepend one or multiple elements to a list",
        "1.0.0",
        |a| parse_push(a, "lpush", true, false),
    ),
    list_spec(
        "rpush",
        -3,
        WRITE_MORE,
        "Append one or multiple elements to a list",
        "1.0.0",
        |a| parse_push(a, "rpush", false, false),
    ),
    list_spec(
        "lpushx",
        -3,
        WRITE_MORE,
        "Prepend an element to a list, only if the list exists",
        "2.2.0",
        |a| parse_push(a, "lpushx", true, true),
    ),
    list_spec(
        "rpushx",
        -3,
        WRITE_MORE,
        "Append an element to a list, only if the list exists",
        "2.2.0",
        |a| parse_push(a, "rpushx", false, true),
    ),
    list_spec(
        "lpop",
        -2,
        Flags::WRITE.and(Flags::FAST),
        "Remove and get the first elements in a list",
        "1.0.0",
        |a| parse_pop(a, true),
    ),
    list_spec(
        "rpop",
        -2,
        Flags::WRITE.and(Flags::FAST),
        "Remove and get the last elements in a list",
        "1.0.0",
        |a| parse_pop(a, false),
    ),
    list_spec(
        "llen",
        2,
        Flags::READONLY.and(Flags::FAST),
        "Get the length of a list",
        "1.0.0",
        |a| Ok(list(ListOp::Len(key(a)))),
    ),
    list_spec(
        "lrange",
        4,
        Flags::READONLY,
        "Get a range of elements from a list",
        "1.0.0",
        |a| {
            let (start, stop) = (parse_int(&a[2])?, parse_int(&a[3])?);
            Ok(list(ListOp::Range(key(a), start, stop)))
        },
    ),
    list_spec(
        "lindex",
        3,
        Flags::READONLY,
        "Get an element from a list by its index",
        "1.0.0",
        |a| {
            let index = parse_int(&a[2])?;
            Ok(list(ListOp::Index(key(a), index)))
        },
    ),
    list_spec(
        "lset",
        4,
        Flags::WRITE.and(Flags::DENYOOM),
        "Set the value of an element in a list by its index",
        "1.0.0",
        |a| {
            let index = parse_int(&a[2])?;
            let element = a[3].clone();
            Ok(list(ListOp::Set(key(a), index, element)))
        },
    ),
    list_spec(
        "linsert",
        5,
        Flags::WRITE.and(Flags::DENYOOM),
        "Insert an element before or after another element in a list",
        "2.2.0",
        |a| {
            let before = match a[2].to_ascii_lowercase().as_slice() {
                b"before" => true,
                b"after" => false,
                _ => return Err(Reply::error("ERR syntax error")),
            };
            let (pivot, element) = (a[3].clone(), a[4].clone());
            Ok(list(ListOp::Insert {
                key: key(a),
                before,
                pivot,
                element,
            }))
        },
    ),
    list_spec(
        "lrem",
        4,
        Flags::WRITE,
        "Remove elements from a list",
        "1.0.0",
        |a| {
            let count = parse_int(&a[2])?;
            let element = a[3].clone();
            Ok(list(ListOp::Rem(key(a), count, element)))
        },
    ),
    list_spec(
        "ltrim",
        4,
        Flags::WRITE,
        "Trim a list to the specified range",
        "1.0.0",
        |a| {
            let (start, stop) = (parse_int(&a[2])?, parse_int(&a[3])?);
            Ok(list(ListOp::Trim(key(a), start, stop)))
        },
    ),
    list_spec(
        "lpos",
        -3,
        Flags::READONLY,
        "Return the index of matching elements on a list",
        "6.0.6",
        parse_lpos,
    ),
    Spec {
        keys: (1, 2, 1),
        ..list_spec(
            "lmove",
            5,
            Flags::WRITE.and(Flags::DENYOOM),
            "Pop an element from a list, push it to another list and return it",
            "6.2.0",
            |a| {
                let side = |word: &[u8]| match word.to_ascii_lowercase().as_slice() {
                    b"left" => Ok(true),
                    b"right" => Ok(false),
                    _ => Err(Reply::error("ERR syntax error")),
                };
                let (from_left, to_left) = (side(&a[3])?, side(&a[4])?);
                Ok(list(ListOp::Move {
                    source: a[1].clone(),
                    destination: a[2].clone(),
                    words: a,
                    from_left,
                    to_left,
                }))
            },
        )
    },
    Spec {
        keys: (1, 2, 1),
        ..list_spec(
            "rpoplpush",
            3,
            Flags::WRITE.and(Flags::DENYOOM),
            "Remove the last element in a list, prepend it to another list and return it",
            "1.2.0",
            |a| {
                Ok(list(ListOp::Move {
                    source: a[1].clone(),
                    destination: a[2].clone(),
                    words: a,
                    from_left: false,
                    to_left: true,
                }))
            },
        )
    },
    Spec {
        keys: (0, 0, 0),
        ..list_spec(
            "lmpop",
            -4,
            Flags::WRITE,
            "Pop elements from a list",
            "7.0.0",
            parse_lmpop,
        )
    },
];

/// The row of a list command.
const fn list_spec(
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    typed_spec("list", name, arity, flags, summary, since, parse)
}

/// `op`, as an [`Op`].
fn list(op: ListOp) -> Op {
    Op::List(op)
}

/// The first argument: the key.
fn key(args: Args) -> Vec<u8> {
    args.into_iter().nth(1).unwrap_or_default()
}

fn parse_push(args: Args, name: &'static str, left: bool, existing: bool) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let key = args.next().unwrap_or_default();
    Ok(list(ListOp::Push {
        name,
        key,
        elements: args.collect(),
        left,
        existing,
    }))
}

fn parse_pop(args: Args, left: bool) -> Result<Op, Reply> {
    if args.len() > 3 {
        let name = if left { "lpop" } else { "rpop" };
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let count = match args.get(2) {
        None => None,
        Some(count) => Some(positive(
            count,
            "ERR value is out of range, must be positive",
        )?),
    };
    Ok(list(ListOp::Pop {
        key: key(args),
        left,
        count,
    }))
}

/// A count that must be an integer of 0 or more, else `error`.
fn positive(arg: &[u8], error: &str) -> Result<usize, Reply> {
    match parse_int(arg) {
        Ok(n) if n >= 0 => Ok(n as usize),
        _ => Err(Reply::error(error)),
    }
}

fn parse_lpos(args: Args) -> Result<Op, Reply> {
    let mut options = PosOptions {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut at = 3;
    while at < args.len() {
        let Some(value) = args.get(at + 1) else {
            return Err(Reply::error("ERR syntax error"));
        };
        match args[at].to_ascii_lowercase().as_slice() {
            b"rank" => {
                options.rank = parse_int(value)?;
                if options.rank == 0 {
                    return Err(Reply::error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
                }
            }
            b"count" => {
                let count = parse_int(value)?;
                if count < 0 {
                    return Err(Reply::error("ERR COUNT can't be negative"));
                }
                options.count = Some(count);
            }
            b"maxlen" => {
                options.maxlen = parse_int(value)?;
                if options.maxlen < 0 {
                    return Err(Reply::error("ERR MAXLEN can't be negative"));
                }
            }
            _ => return Err(Reply::error("ERR syntax error")),
        }
        at += 2;
    }
    let element = args[2].clone();
    Ok(list(ListOp::Pos(key(args), element, options)))
}

fn parse_lmpop(args: Args) -> Result<Op, Reply> {
    let syntax = || Reply::error("ERR syntax error");
    // Not a number at all gets the same error as zero, as in Redis.
    let numkeys = match parse_int(&args[1]) {
        Ok(n) if n > 0 => n,
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    let numkeys = numkeys as usize;
    // The keys, then the side: numkeys must leave room for it.
    if numkeys > args.len().saturating_sub(3) {
        return Err(syntax());
    }
    let keys = args[2..2 + numkeys].to_vec();
    let left = match args[2 + numkeys].to_ascii_lowercase().as_slice() {
        b"left" => true,
        b"right" => false,
        _ => return Err(syntax()),
    };
    let count = match &args[3 + numkeys..] {
        [] => 1,
        [word, count] if word.eq_ignore_ascii_case(b"count") => match parse_int(count) {
            Ok(n) if n > 0 => n as usize,
            Ok(_) => return Err(Reply::error("ERR count should be greater than 0")),
            Err(error) => return Err(error),
        },
        _ => return Err(syntax()),
    };
    Ok(list(ListOp::MPop(keys, left, count)))
}

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

use super::typed::{bulks, check_type, lookup, new_list, reply, typed_spec, words};
use super::{parse_int, Flags, Op, Spec};
use crate::keyspace::{Keyspace, List, Value, ValueRef};
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

/// The flags of a write that may grow the data: write, denyoom, fast.
const WRITE_MORE: Flags = Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST);

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
    let numkeys = parse_int(&args[1])?;
    if numkeys <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
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

/// The list in a value, if it is one.
fn as_list(value: ValueRef<'_>) -> Option<&List> {
    match value {
        ValueRef::List(list) => Some(list),
        _ => None,
    }
}

/// The list in a value being changed (the caller checked the type).
fn list_mut(value: &mut Value) -> &mut List {
    match value {
        Value::List(list) => list,
        // `check_type` let only lists through.
        _ => unreachable!("a list command changed a value of another type"),
    }
}

/// Runs a list command that only reads.
pub fn read(op: ListOp, keyspace: &Keyspace, now: i64) -> Reply {
    reply(try_read(op, keyspace, now))
}

fn try_read(op: ListOp, keyspace: &Keyspace, now: i64) -> Result<Reply, Reply> {
    Ok(match op {
        ListOp::Len(key) => {
            Reply::Integer(lookup(keyspace, &key, now, as_list)?.map_or(0, |l| l.len() as i64))
        }
        ListOp::Range(key, start, stop) => {
            let list = lookup(keyspace, &key, now, as_list)?;
            let range = list.and_then(|list| range(list.len(), start, stop).map(|r| (list, r)));
            match range {
                None => Reply::Array(Vec::new()),
                Some((list, (from, to))) => Reply::Array(bulks(list.range(from..=to).cloned())),
            }
        }
        ListOp::Index(key, index) => {
            let list = lookup(keyspace, &key, now, as_list)?;
            let found = list.and_then(|list| Some(&list[position(list.len(), index)?]));
            found.map_or(Reply::Nil, |element| Reply::bulk(element.as_slice()))
        }
        ListOp::Pos(key, element, options) => {
            let list = lookup(keyspace, &key, now, as_list)?;
            pos(list, &element, &options)
        }
        _ => Reply::error("ERR write command run without the write lock"),
    })
}

/// The index `index` (negative: from the end) in a list of `len`, if inside.
fn position(len: usize, index: i64) -> Option<usize> {
    let index = if index < 0 { index + len as i64 } else { index };
    (0..len as i64).contains(&index).then_some(index as usize)
}

/// LRANGE's and LTRIM's range: first and last index, both included, or
/// `None` if the range is empty once clipped to the list.
fn range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

/// Runs LPOS. A negative rank walks from the tail; as in Redis, the
/// smallest rank (whose negation overflows) means the first match.
fn pos(list: Option<&List>, element: &[u8], options: &PosOptions) -> Reply {
    let (backwards, rank) = if options.rank < 0 {
        (true, options.rank.wrapping_neg())
    } else {
        (false, options.rank)
    };
    let mut found = Vec::new();
    if let Some(list) = list {
        let len = list.len();
        let limit = if options.maxlen == 0 {
            len
        } else {
            (options.maxlen as usize).min(len)
        };
        let wanted = options
            .count
            .map_or(1, |c| if c == 0 { usize::MAX } else { c as usize });
        let mut matches = 0i64;
        for step in 0..limit {
            let at = if backwards { len - 1 - step } else { step };
            if list[at] == element {
                matches += 1;
                if matches >= rank {
                    found.push(Reply::Integer(at as i64));
                    if found.len() >= wanted {
                        break;
                    }
                }
            }
        }
    }
    match options.count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Nil),
    }
}

/// Runs a list command that may write.
pub fn write(op: ListOp, keyspace: &mut Keyspace, now: i64) -> Reply {
    reply(try_write(op, keyspace, now))
}

fn try_write(op: ListOp, keyspace: &mut Keyspace, now: i64) -> Result<Reply, Reply> {
    let is_list = |value: ValueRef| matches!(value, ValueRef::List(_));
    Ok(match op {
        ListOp::Push {
            name,
            key,
            elements,
            left,
            existing,
        } => {
            let exists = check_type(keyspace, &key, now, is_list)?;
            if existing && !exists {
                return Ok(Reply::Integer(0));
            }
            let len = keyspace.change(&key, Some(new_list), |value| {
                let list = list_mut(value);
                for element in &elements {
                    if left {
                        list.push_front(element.clone());
                    } else {
                        list.push_back(element.clone());
                    }
                }
                list.len()
            });
            keyspace.changed(
                &key,
                vec![words(name, [key.clone()].into_iter().chain(elements))],
            );
            Reply::Integer(len.unwrap_or(0) as i64)
        }
        ListOp::Pop { key, left, count } => {
            if !check_type(keyspace, &key, now, is_list)? {
                return Ok(if count.is_some() {
                    Reply::NilArray
                } else {
                    Reply::Nil
                });
            }
            let popped = pop(keyspace, &key, left, count.unwrap_or(1));
            if !popped.is_empty() {
                let count = popped.len().to_string().into_bytes();
                let name = if left { "LPOP" } else { "RPOP" };
                keyspace.changed(&key, vec![words(name, [key.clone(), count])]);
            }
            match count {
                Some(_) => Reply::Array(bulks(popped)),
                None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            }
        }
        ListOp::Set(key, index, element) => {
            if !check_type(keyspace, &key, now, is_list)? {
                return Err(Reply::error("ERR no such key"));
            }
            let done = keyspace.change(&key, None, |value| {
                let list = list_mut(value);
                let at = position(list.len(), index)?;
                list[at] = element.clone();
                Some(())
            });
            if done.flatten().is_none() {
                return Err(Reply::error("ERR index out of range"));
            }
            let index = index.to_string().into_bytes();
            keyspace.changed(&key, vec![words("LSET", [key.clone(), index, element])]);
            Reply::ok()
        }
        ListOp::Insert {
            key,
            before,
            pivot,
            element,
        } => {
            if !check_type(keyspace, &key, now, is_list)? {
                return Ok(Reply::Integer(0));
            }
            let len = keyspace.change(&key, None, |value| {
                let list = list_mut(value);
                let at = list.iter().position(|e| *e == pivot)?;
                list.insert(if before { at } else { at + 1 }, element.clone());
                Some(list.len() as i64)
            });
            let Some(len) = len.flatten() else {
                return Ok(Reply::Integer(-1));
            };
            let side = if before { "BEFORE" } else { "AFTER" }.as_bytes().to_vec();
            keyspace.changed(
                &key,
                vec![words("LINSERT", [key.clone(), side, pivot, element])],
            );
            Reply::Integer(len)
        }
        ListOp::Rem(key, count, element) => {
            if !check_type(keyspace, &key, now, is_list)? {
                return Ok(Reply::Integer(0));
            }
            let removed =
                keyspace.change(&key, None, |value| remove(list_mut(value), count, &element));
            let removed = removed.unwrap_or(0);
            if removed > 0 {
                let count = count.to_string().into_bytes();
                keyspace.changed(&key, vec![words("LREM", [key.clone(), count, element])]);
            }
            Reply::Integer(removed as i64)
        }
        ListOp::Trim(key, start, stop) => {
            if !check_type(keyspace, &key, now, is_list)? {
                return Ok(Reply::ok());
            }
            let removed = keyspace.change(&key, None, |value| {
                let list = list_mut(value);
                let before = list.len();
                match range(list.len(), start, stop) {
                    None => list.clear(),
                    Some((from, to)) => {
                        list.truncate(to + 1);
                        list.drain(..from);
                    }
                }
                before - list.len()
            });
            if removed.unwrap_or(0) > 0 {
                let (start, stop) = (
                    start.to_string().into_bytes(),
                    stop.to_string().into_bytes(),
                );
                keyspace.changed(&key, vec![words("LTRIM", [key.clone(), start, stop])]);
            }
            Reply::ok()
        }
        ListOp::Move {
            words,
            source,
            destination,
            from_left,
            to_left,
        } => {
            if !check_type(keyspace, &source, now, is_list)? {
                return Ok(Reply::Nil);
            }
            check_type(keyspace, &destination, now, is_list)?;
            let Some(element) = pop(keyspace, &source, from_left, 1).pop() else {
                return Ok(Reply::Nil);
            };
            keyspace.change(&destination, Some(new_list), |value| {
                let list = list_mut(value);
                if to_left {
                    list.push_front(element.clone());
                } else {
                    list.push_back(element.clone());
                }
            });
            keyspace.changed(&source, vec![words]);
            keyspace.changed(&destination, Vec::new());
            Reply::Bulk(element)
        }
        ListOp::MPop(keys, left, count) => {
            for key in &keys {
                if check_type(keyspace, key, now, is_list)? {
                    let popped = pop(keyspace, key, left, count);
                    let name = if left { "LPOP" } else { "RPOP" };
                    let n = popped.len().to_string().into_bytes();
                    keyspace.changed(key, vec![words(name, [key.clone(), n])]);
                    return Ok(Reply::Array(vec![
                        Reply::bulk(key.as_slice()),
                        Reply::Array(bulks(popped)),
                    ]));
                }
            }
            Reply::NilArray
        }
        op => {
            let reply = read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    })
}

/// Pops up to `count` elements from one end of the list at `key`.
fn pop(keyspace: &mut Keyspace, key: &[u8], left: bool, count: usize) -> Vec<Vec<u8>> {
    let popped = keyspace.change(key, None, |value| {
        let list = list_mut(value);
        let n = count.min(list.len());
        if left {
            list.drain(..n).collect()
        } else {
            list.drain(list.len() - n..).rev().collect()
        }
    });
    popped.unwrap_or_default()
}

/// LREM: removes `count` occurrences of `element` from the head (from the
/// tail if negative; all if 0). Returns how many it removed.
fn remove(list: &mut List, count: i64, element: &[u8]) -> usize {
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut removed = 0;
    if count >= 0 {
        let mut at = 0;
        while at < list.len() && removed < limit {
            if list[at] == element {
                list.remove(at);
                removed += 1;
            } else {
                at += 1;
            }
        }
    } else {
        let mut at = list.len();
        while at > 0 && removed < limit {
            at -= 1;
            if list[at] == element {
                list.remove(at);
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(range(5, 0, -1), Some((0, 4)));
        assert_eq!(range(5, -100, 100), Some((0, 4)));
        assert_eq!(range(5, 3, 1), None);
        assert_eq!(range(5, 5, 10), None);
        assert_eq!(range(5, -2, -1), Some((3, 4)));
        assert_eq!(range(0, 0, -1), None);
        assert_eq!(position(3, -1), Some(2));
        assert_eq!(position(3, 3), None);
        assert_eq!(position(3, -4), None);
    }

    #[test]
    fn lrem_from_either_end() {
        let list =
            |items: &[&str]| -> List { items.iter().map(|s| s.as_bytes().to_vec()).collect() };
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(remove(&mut l, -2, b"a"), 2);
        assert_eq!(l, list(&["a", "b", "c"]));
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(remove(&mut l, 1, b"a"), 1);
        assert_eq!(remove(&mut l, 0, b"a"), 2);
        assert_eq!(l, list(&["b", "c"]));
    }
}

//! Running the list commands (parsed in `list.rs`): pushes and pops at
//! both ends, reads by index and range, the edits in the middle, LPOS,
//! and the moves between lists.
//!
//! Indexes follow Redis's rules: a negative one counts from the end (-1
//! is the last element), a range is clipped to the list, and an empty
//! result is an empty array. Each write tells replicas what it did only
//! if it changed something, in words that do the same there.

use super::list::{ListOp, PosOptions};
use super::typed::{announce, bulks, check_type, lookup, new_list, reply, words};
use crate::events::Events;
use crate::keyspace::{Keyspace, List, Value, ValueRef};
use crate::resp::Reply;

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
            announce(keyspace, &key, now, Events::LIST, push_event(left));
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
                announce(keyspace, &key, now, Events::LIST, pop_event(left));
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
            announce(keyspace, &key, now, Events::LIST, "lset");
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
            announce(keyspace, &key, now, Events::LIST, "linsert");
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
                announce(keyspace, &key, now, Events::LIST, "lrem");
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
            // Announced even when nothing was trimmed, as Redis does.
            announce(keyspace, &key, now, Events::LIST, "ltrim");
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
            let push = |list: &mut List, element: Vec<u8>| {
                if to_left {
                    list.push_front(element);
                } else {
                    list.push_back(element);
                }
            };
            let element = if source == destination {
                // A rotation, in one change: popping the last element
                // first would delete the key, and pushing make it anew.
                let moved = keyspace.change(&source, None, |value| {
                    let list = list_mut(value);
                    let element = if from_left {
                        list.pop_front()
                    } else {
                        list.pop_back()
                    }?;
                    push(list, element.clone());
                    Some(element)
                });
                let Some(element) = moved.flatten() else {
                    return Ok(Reply::Nil);
                };
                element
            } else {
                let Some(element) = pop(keyspace, &source, from_left, 1).pop() else {
                    return Ok(Reply::Nil);
                };
                keyspace.change(&destination, Some(new_list), |value| {
                    push(list_mut(value), element.clone());
                });
                element
            };
            keyspace.changed(&source, vec![words]);
            keyspace.changed(&destination, Vec::new());
            // As Redis: the push first (after `new`), then the pop.
            announce(
                keyspace,
                &destination,
                now,
                Events::LIST,
                push_event(to_left),
            );
            announce(keyspace, &source, now, Events::LIST, pop_event(from_left));
            Reply::Bulk(element)
        }
        ListOp::MPop(keys, left, count) => {
            for key in &keys {
                if check_type(keyspace, key, now, is_list)? {
                    let popped = pop(keyspace, key, left, count);
                    let name = if left { "LPOP" } else { "RPOP" };
                    let n = popped.len().to_string().into_bytes();
                    keyspace.changed(key, vec![words(name, [key.clone(), n])]);
                    announce(keyspace, key, now, Events::LIST, pop_event(left));
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

/// The event a push announces: `lpush` at the head, `rpush` at the tail
/// (LPUSHX and the push of LMOVE included).
fn push_event(left: bool) -> &'static str {
    if left {
        "lpush"
    } else {
        "rpush"
    }
}

/// The event a pop announces: `lpop` from the head, `rpop` from the tail
/// (LMPOP and the pop of LMOVE included).
fn pop_event(left: bool) -> &'static str {
    if left {
        "lpop"
    } else {
        "rpop"
    }
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

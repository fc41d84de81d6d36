//! Set commands: distinct members under one key, and the algebra of sets
//! (SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD).
//!
//! SADD, SREM and SISMEMBER are O(1) (O(log n) on a small set of
//! integers, as on Redis's intset); SMEMBERS is O(n). The random commands
//! pick positions uniformly (see `typed::random_positions`). SPOP is not
//! deterministic, so replicas are told which members went: an SREM.

use super::typed::{
    bulks, check_type, lookup, matches, new_set, parse_scan_options, random_count,
    random_positions, reply, scan_reply, typed_spec, words,
};
use super::{parse_int, Flags, Op, Spec};
use crate::keyspace::{Keyspace, Set, Value, ValueRef};
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

const WRITE_MORE: Flags = Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST);
const READ_FAST: Flags = Flags::READONLY.and(Flags::FAST);

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
    let numkeys = parse_int(&args[1])?;
    if numkeys <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
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

/// The set in a value, if it is one.
fn as_set(value: ValueRef<'_>) -> Option<&Set> {
    match value {
        ValueRef::Set(set) => Some(set),
        _ => None,
    }
}

/// The set in a value being changed (the caller checked the type).
fn set_mut(value: &mut Value) -> &mut Set {
    match value {
        Value::Set(set) => set,
        _ => unreachable!("a set command changed a value of another type"),
    }
}

/// Runs a set command that only reads.
pub fn read(op: SetOp, keyspace: &Keyspace, now: i64) -> Reply {
    reply(try_read(op, keyspace, now))
}

fn try_read(op: SetOp, keyspace: &Keyspace, now: i64) -> Result<Reply, Reply> {
    let get = |key: &[u8]| lookup(keyspace, key, now, as_set);
    Ok(match op {
        SetOp::Card(key) => Reply::Integer(get(&key)?.map_or(0, |s| s.len() as i64)),
        SetOp::IsMember(key, member) => {
            Reply::Integer(i64::from(get(&key)?.is_some_and(|s| s.contains(&member))))
        }
        SetOp::MIsMember(key, members) => {
            let set = get(&key)?;
            let found = members.iter().map(|m| set.is_some_and(|s| s.contains(m)));
            Reply::Array(
                found
                    .map(|found| Reply::Integer(i64::from(found)))
                    .collect(),
            )
        }
        SetOp::Members(key) => Reply::Set(bulks(get(&key)?.into_iter().flat_map(Set::iter))),
        SetOp::RandMember(key, count) => {
            let set = get(&key)?;
            let Some(count) = count else {
                let pick = set.and_then(|s| s.member(random_positions(s.len(), -1)[0]));
                return Ok(pick.map_or(Reply::Nil, Reply::Bulk));
            };
            let picks = set.map(|s| {
                let members = random_positions(s.len(), count).into_iter();
                bulks(members.filter_map(|at| s.member(at)))
            });
            Reply::Array(picks.unwrap_or_default())
        }
        SetOp::Algebra {
            kind,
            destination: None,
            keys,
        } => Reply::Set(bulks(algebra(keyspace, kind, &keys, now)?)),
        SetOp::InterCard(keys, limit) => {
            let mut members = algebra(keyspace, Algebra::Inter, &keys, now)?.len();
            if limit > 0 {
                members = members.min(limit);
            }
            Reply::Integer(members as i64)
        }
        SetOp::Scan(key, pattern) => {
            let members = get(&key)?.into_iter().flat_map(Set::iter);
            scan_reply(bulks(members.filter(|m| matches(&pattern, m))))
        }
        _ => Reply::error("ERR write command run without the write lock"),
    })
}

/// The members of the sets at `keys` combined by `kind`, in the order
/// Redis replies them: an intersection in the order of its smallest set,
/// a union or difference in that of the set Redis builds for it (sorted
/// if all are integers, as in its intset).
fn algebra(
    keyspace: &Keyspace,
    kind: Algebra,
    keys: &[Vec<u8>],
    now: i64,
) -> Result<Vec<Vec<u8>>, Reply> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(lookup(keyspace, key, now, as_set)?);
    }
    Ok(match kind {
        Algebra::Inter => {
            let mut present = Vec::new();
            for set in &sets {
                match set {
                    Some(set) => present.push(*set),
                    // A missing key is an empty set: so is the result.
                    None => return Ok(Vec::new()),
                }
            }
            present.sort_by_key(|set| set.len());
            let Some((smallest, others)) = present.split_first() else {
                return Ok(Vec::new());
            };
            smallest
                .iter()
                .filter(|member| others.iter().all(|set| set.contains(member)))
                .collect()
        }
        Algebra::Union => {
            let all = sets.iter().flatten().flat_map(|set| set.iter());
            Set::from_members(all).iter().collect()
        }
        Algebra::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Ok(Vec::new());
            };
            let rest = &sets[1..];
            let left = first
                .iter()
                .filter(|m| !rest.iter().flatten().any(|set| set.contains(m)));
            Set::from_members(left).iter().collect()
        }
    })
}

/// Runs a set command that may write.
pub fn write(op: SetOp, keyspace: &mut Keyspace, now: i64) -> Reply {
    reply(try_write(op, keyspace, now))
}

fn try_write(op: SetOp, keyspace: &mut Keyspace, now: i64) -> Result<Reply, Reply> {
    let is_set = |value: ValueRef| matches!(value, ValueRef::Set(_));
    Ok(match op {
        SetOp::Add(key, members) => {
            check_type(keyspace, &key, now, is_set)?;
            let added = keyspace.change(&key, Some(new_set), |value| {
                let set = set_mut(value);
                members.iter().filter(|m| set.insert(m.to_vec())).count()
            });
            let added = added.unwrap_or(0);
            if added > 0 {
                keyspace.changed(
                    &key,
                    vec![words("SADD", [key.clone()].into_iter().chain(members))],
                );
            }
            Reply::Integer(added as i64)
        }
        SetOp::Rem(key, members) => {
            let removed = remove(keyspace, &key, &members, now)?;
            Reply::Integer(removed as i64)
        }
        SetOp::Pop(key, count) => {
            if !check_type(keyspace, &key, now, is_set)? {
                return Ok(if count.is_some() {
                    Reply::Set(Vec::new())
                } else {
                    Reply::Nil
                });
            }
            let popped = keyspace.change(&key, None, |value| {
                let set = set_mut(value);
                let picks = random_positions(set.len(), count.unwrap_or(1) as i64);
                let members: Vec<Vec<u8>> =
                    picks.into_iter().filter_map(|at| set.member(at)).collect();
                for member in &members {
                    set.remove(member);
                }
                members
            });
            let popped = popped.unwrap_or_default();
            if !popped.is_empty() {
                keyspace.changed(
                    &key,
                    vec![words(
                        "SREM",
                        [key.clone()].into_iter().chain(popped.clone()),
                    )],
                );
            }
            match count {
                Some(_) => Reply::Set(bulks(popped)),
                None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            }
        }
        SetOp::Move(source, destination, member) => {
            // A missing source is 0 before any type check, as in Redis.
            if !check_type(keyspace, &source, now, is_set)? {
                return Ok(Reply::Integer(0));
            }
            check_type(keyspace, &destination, now, is_set)?;
            if !lookup(keyspace, &source, now, as_set)?.is_some_and(|s| s.contains(&member)) {
                return Ok(Reply::Integer(0));
            }
            if source == destination {
                return Ok(Reply::Integer(1));
            }
            keyspace.change(&source, None, |value| set_mut(value).remove(&member));
            keyspace.change(&destination, Some(new_set), |value| {
                set_mut(value).insert(member.clone())
            });
            keyspace.changed(
                &source,
                vec![words(
                    "SMOVE",
                    [source.clone(), destination.clone(), member],
                )],
            );
            keyspace.changed(&destination, Vec::new());
            Reply::Integer(1)
        }
        SetOp::Algebra {
            kind,
            destination: Some(destination),
            keys,
        } => {
            let members = algebra(keyspace, kind, &keys, now)?;
            let len = members.len();
            keyspace.remove_if_expired(&destination, now);
            let existed = keyspace.get(&destination, now).is_some();
            let name = match kind {
                Algebra::Inter => "SINTERSTORE",
                Algebra::Union => "SUNIONSTORE",
                Algebra::Diff => "SDIFFSTORE",
            };
            if members.is_empty() {
                if existed {
                    keyspace.remove(&destination);
                }
            } else {
                keyspace.set_quietly(destination.clone(), Value::Set(Set::from_members(members)));
            }
            if existed || len > 0 {
                let args = [destination.clone()].into_iter().chain(keys);
                keyspace.changed(&destination, vec![words(name, args)]);
            }
            Reply::Integer(len as i64)
        }
        op => {
            let reply = read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    })
}

/// SREM: removes `members` from the set at `key`; how many were there.
fn remove(
    keyspace: &mut Keyspace,
    key: &[u8],
    members: &[Vec<u8>],
    now: i64,
) -> Result<usize, Reply> {
    if !check_type(keyspace, key, now, |value| {
        matches!(value, ValueRef::Set(_))
    })? {
        return Ok(0);
    }
    let removed = keyspace.change(key, None, |value| {
        let set = set_mut(value);
        members.iter().filter(|m| set.remove(m)).count()
    });
    let removed = removed.unwrap_or(0);
    if removed > 0 {
        keyspace.changed(
            key,
            vec![words(
                "SREM",
                [key.to_vec()].into_iter().chain(members.iter().cloned()),
            )],
        );
    }
    Ok(removed)
}

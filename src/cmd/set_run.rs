//! Running the set commands (parsed in `set.rs`), set algebra included.
//!
//! SPOP is not deterministic, so replicas are told which members went: an
//! SREM. SINTER answers in the order of its smallest set, SUNION and SDIFF
//! in that of the set Redis builds for them (sorted when all members are
//! integers, as in its intset).

use super::set::{Algebra, SetOp};
use super::typed::{
    announce, bulks, check_type, lookup, matches, new_set, random_positions, reply, scan_reply,
    words,
};
use crate::events::Events;
use crate::keyspace::{Keyspace, Set, Value, ValueRef};
use crate::resp::Reply;

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
                announce(keyspace, &key, now, Events::SET, "sadd");
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
                announce(keyspace, &key, now, Events::SET, "spop");
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
            // As Redis: the source's events before the destination's `new`.
            announce(keyspace, &source, now, Events::SET, "srem");
            let added = keyspace.change(&destination, Some(new_set), |value| {
                set_mut(value).insert(member.clone())
            });
            if added == Some(true) {
                keyspace.notify(Events::SET, "sadd", &destination);
            }
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
                    keyspace.notify(Events::GENERIC, "del", &destination);
                }
            } else {
                keyspace.set_quietly(destination.clone(), Value::Set(Set::from_members(members)));
                let event = match kind {
                    Algebra::Inter => "sinterstore",
                    Algebra::Union => "sunionstore",
                    Algebra::Diff => "sdiffstore",
                };
                keyspace.notify(Events::SET, event, &destination);
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
        announce(keyspace, key, now, Events::SET, "srem");
    }
    Ok(removed)
}

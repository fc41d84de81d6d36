//! What the list, hash and set commands share: their table rows, finding
//! a key of the right type, and changing it in place.
//!
//! A command on one of these types looks its key up first: a key of
//! another type is WRONGTYPE, a missing key is usually an empty value.
//! Then it changes the value in place (`Keyspace::change`), and, if it
//! changed anything, tells replicas what to do (`Keyspace::changed`) and
//! announces the change to keyspace notifications (`announce`).

use std::collections::HashMap;

use super::string::wrong_type;
use super::{Flags, Op, Spec};
use crate::events::Events;
use crate::glob;
use crate::keyspace::{Keyspace, Value, ValueRef};
use crate::resp::{Args, Reply};
use crate::rng::Rng;

/// The flags of a fast write that may grow memory (LPUSH, HSET, SADD...).
pub(super) const WRITE_MORE: Flags = Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST);
/// The flags of a fast read (LLEN, HGET, SISMEMBER...).
pub(super) const READ_FAST: Flags = Flags::READONLY.and(Flags::FAST);

/// The row of a command of group `group`: on one key unless `keys` says
/// otherwise (with `Spec { keys, ..typed_spec(...) }`).
pub(super) const fn typed_spec(
    group: &'static str,
    name: &'static str,
    arity: i64,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys: (1, 1, 1),
        summary,
        since,
        group,
        parse,
        subcommands: &[],
    }
}

/// The value at `key`, if it exists, checked by `pick` to be of the
/// command's type (else WRONGTYPE).
pub(super) fn lookup<'a, T>(
    keyspace: &'a Keyspace,
    key: &[u8],
    now: i64,
    pick: fn(ValueRef<'a>) -> Option<T>,
) -> Result<Option<T>, Reply> {
    match keyspace.get(key, now) {
        None => Ok(None),
        Some(entry) => pick(entry.value()).map(Some).ok_or_else(wrong_type),
    }
}

/// Does `key` hold a value `pick` accepts, or nothing? WRONGTYPE if it
/// holds another type. For writers: an expired key is deleted first.
pub(super) fn check_type(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: i64,
    is_mine: fn(ValueRef) -> bool,
) -> Result<bool, Reply> {
    keyspace.remove_if_expired(key, now);
    match keyspace.get(key, now) {
        None => Ok(false),
        Some(entry) if is_mine(entry.value()) => Ok(true),
        Some(_) => Err(wrong_type()),
    }
}

/// Announces the event `name` of `class` on `key`, which the command
/// just changed; then `del` if the change left the value empty, and so
/// deleted it: as Redis does, LPOP of a list's last element announces
/// `lpop`, then `del`.
pub(super) fn announce(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: i64,
    class: Events,
    name: &'static str,
) {
    keyspace.notify(class, name, key);
    if keyspace.get(key, now).is_none() {
        keyspace.notify(Events::GENERIC, "del", key);
    }
}

/// Turns a reply-or-error into a reply.
pub(super) fn reply(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|error| error)
}

/// The command's words, for replicas: the name, then the arguments.
pub(super) fn words(name: &str, args: impl IntoIterator<Item = Vec<u8>>) -> Args {
    let mut words = vec![name.as_bytes().to_vec()];
    words.extend(args);
    words
}

/// Bulk replies of `items`.
pub(super) fn bulks<T: Into<Vec<u8>>>(items: impl IntoIterator<Item = T>) -> Vec<Reply> {
    items
        .into_iter()
        .map(|item| Reply::Bulk(item.into()))
        .collect()
}

/// The value of a new key, for `Keyspace::change`.
pub(super) fn new_list() -> Value {
    Value::List(Default::default())
}

/// The value of a new key, for `Keyspace::change`.
pub(super) fn new_hash() -> Value {
    Value::Hash(Default::default())
}

/// The value of a new key, for `Keyspace::change`.
pub(super) fn new_set() -> Value {
    Value::Set(Default::default())
}

/// Positions for a random pick of `count` out of `len` (`len` > 0), as
/// HRANDFIELD and SRANDMEMBER do: a negative count may pick a position
/// again, each pick uniform; a positive one picks distinct positions
/// (all of them, in order, if it asks for as many or more), each subset
/// equally likely: a Fisher-Yates shuffle stopped after `count` steps,
/// with the swaps kept in a map so that it costs O(count), not O(len).
pub(super) fn random_positions(len: usize, count: i64) -> Vec<usize> {
    let mut rng = Rng::default();
    if count < 0 {
        let count = count.unsigned_abs() as usize;
        return (0..count).map(|_| rng.below(len)).collect();
    }
    let count = count as usize;
    if count >= len {
        return (0..len).collect();
    }
    let mut swapped: HashMap<usize, usize> = HashMap::new();
    (0..count)
        .map(|i| {
            let j = i + rng.below(len - i);
            let at_j = swapped.get(&j).copied().unwrap_or(j);
            let at_i = swapped.get(&i).copied().unwrap_or(i);
            swapped.insert(j, at_i);
            at_j
        })
        .collect()
}

/// The most picks a negative count may ask for. Redis would try to send
/// them all, however many (and a count of -2^62 hangs it); the reply is
/// built in memory here, so a count beyond this is refused instead.
const MAX_REPEATED_PICKS: i64 = 10_000_000;

/// Parses the count of HRANDFIELD and SRANDMEMBER: an integer whose
/// negation fits, and not beyond [`MAX_REPEATED_PICKS`] below zero.
pub(super) fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    let count = super::parse_int(arg)?;
    if count == i64::MIN {
        return Err(Reply::error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    if count < -MAX_REPEATED_PICKS {
        return Err(Reply::error("ERR value is out of range"));
    }
    Ok(count)
}

/// HSCAN's and SSCAN's options: `cursor [MATCH pattern] [COUNT count]`,
/// checked as SCAN checks them. Hands back the pattern, if any.
pub(super) fn parse_scan_options(args: &[Vec<u8>]) -> Result<Option<Vec<u8>>, Reply> {
    let syntax_error = || Reply::error("ERR syntax error");
    super::scan::parse_cursor(&args[0]).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut options = args[1..].iter();
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(syntax_error)?;
        if option.eq_ignore_ascii_case(b"count") {
            if super::parse_int(value)? < 1 {
                return Err(syntax_error());
            }
        } else if option.eq_ignore_ascii_case(b"match") {
            pattern = (value != b"*").then(|| value.clone());
        } else {
            return Err(syntax_error());
        }
    }
    Ok(pattern)
}

/// A scan's reply: every item in one go, so the cursor is 0. Redis does
/// the same for its small encodings; for big ones it may cut the reply,
/// which the SCAN contract allows but does not require.
pub(super) fn scan_reply(items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)])
}

/// Does `item` match the pattern (no pattern matches everything)?
pub(super) fn matches(pattern: &Option<Vec<u8>>, item: &[u8]) -> bool {
    pattern
        .as_ref()
        .is_none_or(|p| glob::matches(p, item, false))
}

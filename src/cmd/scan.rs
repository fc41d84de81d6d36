//! The commands that look at the keyspace as a whole: KEYS lists it all
//! at once, SCAN a little at a time, and RANDOMKEY picks one key.
//!
//! SCAN must keep Redis's promise: a key present from the first call to
//! the last is returned at least once, and a key is never returned twice
//! unless it was deleted and added again in between. Redis keeps it by
//! walking the buckets of its hash table in a clever order, the cursor
//! being a bucket number. std's `HashMap` shows no buckets, and its
//! iteration order changes whenever it grows, so a position in that order
//! is no cursor.
//!
//! Instead every key gets a fixed position in the 64-bit space: a hash of
//! its name, by a hasher that never changes while the process runs. A call
//! returns the keys whose positions lie in a range `[cursor, next)`, and
//! the reply's cursor is `next`; the ranges of successive calls follow one
//! another and cover the whole space, so each key falls in exactly one of
//! them, whatever else was added or deleted meanwhile.
//!
//! The price: the map cannot be asked for the keys in a range, so every
//! call hashes every key, O(n), to find the COUNT smallest positions at or
//! after the cursor. A full iteration therefore costs O(n²/COUNT), where
//! Redis's costs O(n). Keeping only the best COUNT candidates in a heap
//! bounds the extra memory per call to COUNT entries.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use super::keys::KeyOp;
use super::{arg, parse_int, Flags, Op, Spec};
use crate::glob;
use crate::keyspace::Keyspace;
use crate::resp::{Args, Reply};

/// SCAN's arguments, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanArgs {
    /// Where to go on from: 0 to start.
    pub cursor: u64,
    /// About how many keys to look at (before filtering).
    pub count: usize,
    /// MATCH: only keys matching this glob pattern (`None`: all).
    pub pattern: Option<Vec<u8>>,
    /// TYPE: only keys holding this type (compared ignoring case).
    pub kind: Option<Vec<u8>>,
}

/// The rows of KEYS, SCAN and RANDOMKEY.
pub const COMMANDS: &[Spec] = &[KEYS, SCAN, RANDOMKEY];

/// `KEYS pattern`
pub const KEYS: Spec = Spec {
    name: "keys",
    arity: 2,
    flags: Flags::READONLY,
    keys: (0, 0, 0),
    summary: "Find all keys matching the given pattern",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Keys(arg(args, 1)))),
    subcommands: &[],
};

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
pub const SCAN: Spec = Spec {
    name: "scan",
    arity: -2,
    flags: Flags::READONLY,
    keys: (0, 0, 0),
    summary: "Incrementally iterate the keys space",
    since: "2.8.0",
    group: "generic",
    parse: parse_scan,
    subcommands: &[],
};

/// `RANDOMKEY`
pub const RANDOMKEY: Spec = Spec {
    name: "randomkey",
    arity: 1,
    flags: Flags::READONLY,
    keys: (0, 0, 0),
    summary: "Return a random key from the keyspace",
    since: "1.0.0",
    group: "generic",
    parse: |_| Ok(Op::Key(KeyOp::RandomKey)),
    subcommands: &[],
};

/// Parses SCAN's arguments. As in Redis, the cursor is checked first and
/// the options in order; each option may repeat, and the last one wins.
fn parse_scan(args: Args) -> Result<Op, Reply> {
    let syntax_error = || Reply::error("ERR syntax error");
    let cursor = parse_cursor(&args[1]).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut scan = ScanArgs {
        cursor,
        count: 10,
        pattern: None,
        kind: None,
    };
    let mut options = args.into_iter().skip(2);
    while let Some(option) = options.next() {
        // Every option takes a value.
        let value = options.next().ok_or_else(syntax_error)?;
        if option.eq_ignore_ascii_case(b"count") {
            let count = parse_int(&value)?;
            scan.count = usize::try_from(count)
                .ok()
                .filter(|&count| count >= 1)
                .ok_or_else(syntax_error)?;
        } else if option.eq_ignore_ascii_case(b"match") {
            // `*` matches everything: no need to match at all.
            scan.pattern = (value != b"*").then_some(value);
        } else if option.eq_ignore_ascii_case(b"type") {
            scan.kind = Some(value);
        } else {
            return Err(syntax_error());
        }
    }
    Ok(Op::Key(KeyOp::Scan(scan)))
}

/// Parses a cursor as Redis does, with C's `strtoul`: an unsigned 64-bit
/// decimal, optionally signed (`-1` wraps around to 2^64 - 1), that must
/// not start with a blank and must have nothing after its digits. Quirks
/// kept for the sake of exactness: the text ends at a NUL byte, and the
/// empty string is cursor 0.
pub(super) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let text = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    if text.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        [b'+', digits @ ..] => (false, digits),
        digits => (false, digits),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// A key's position in the cursor space. `DefaultHasher::new()` always
/// starts from the same keys, so positions hold for the life of the
/// process (and beyond, with the same build).
fn position(key: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(key);
    hasher.finish()
}

/// Runs KEYS: every live key that matches `pattern`, in no order.
pub fn keys(keyspace: &Keyspace, pattern: &[u8], now: i64) -> Reply {
    let all = pattern == b"*";
    let found = keyspace
        .iter()
        .filter(|(key, _)| all || glob::matches(pattern, key, false))
        // `get` hides expired keys, and notes them for deletion.
        .filter(|(key, _)| keyspace.get(key, now).is_some())
        .map(|(key, _)| Reply::bulk(key))
        .collect();
    Reply::Array(found)
}

/// Runs SCAN: the next cursor (0 when the iteration is over) and the keys
/// of this step that pass the filters. As in Redis, COUNT is how many keys
/// are looked at, so filters can leave a step with fewer, even none.
pub fn scan(keyspace: &Keyspace, args: &ScanArgs, now: i64) -> Reply {
    let keys = keyspace.iter().map(|(key, _)| key);
    let (batch, next) = step(keys, args.cursor, args.count, position);
    let found = batch
        .into_iter()
        .filter(|key| match &args.pattern {
            Some(pattern) => glob::matches(pattern, key, false),
            None => true,
        })
        .filter(|key| match keyspace.get(key, now) {
            None => false,
            Some(entry) => args
                .kind
                .as_ref()
                .is_none_or(|kind| kind.eq_ignore_ascii_case(entry.value().type_name().as_bytes())),
        })
        .map(Reply::bulk)
        .collect();
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(found)])
}

/// One step of the iteration: the keys whose `position` lies in
/// `[cursor, next)`, in order of position, and `next` (0 when no key lies
/// beyond). `next` is chosen so that about `count` keys come back: one
/// past the `count`-th smallest position at or after `cursor`.
///
/// One pass with a heap of the `count` best candidates so far, O(n log
/// count). Two keys can share a position (a hash collision); a range may
/// not split them, or the next step would skip the rest. So the keys tied
/// with the heap's largest position are kept aside, not dropped, and
/// returned too: a step can exceed `count` in that rare case.
fn step<'a>(
    keys: impl Iterator<Item = &'a [u8]>,
    cursor: u64,
    count: usize,
    position: impl Fn(&[u8]) -> u64,
) -> (Vec<&'a [u8]>, u64) {
    let mut best: BinaryHeap<(u64, &[u8])> = BinaryHeap::new();
    // Left out of `best`, but at the same position as its largest.
    let mut ties: Vec<&[u8]> = Vec::new();
    // Was a key beyond the range dropped, so that another step is needed?
    let mut more = false;
    for key in keys {
        let here = position(key);
        if here < cursor {
            continue;
        }
        if best.len() < count {
            best.push((here, key));
            continue;
        }
        let Some(&(largest, _)) = best.peek() else {
            continue; // `count` is at least 1, so `best` is not empty
        };
        if here > largest {
            more = true;
        } else if here == largest {
            ties.push(key);
        } else {
            // `key` displaces the largest, and the largest position in
            // `best` goes down or, on a tie, stays put.
            best.push((here, key));
            let evicted = best.pop();
            match (evicted, best.peek()) {
                (Some((gone, gone_key)), Some(&(largest, _))) if gone == largest => {
                    ties.push(gone_key);
                }
                _ => {
                    ties.clear();
                    more = true;
                }
            }
        }
    }
    // With a key beyond `largest`, `largest` is not u64::MAX: no wrapping.
    let next = match best.peek() {
        Some(&(largest, _)) if more => largest.wrapping_add(1),
        _ => 0,
    };
    let mut batch: Vec<&[u8]> = best.into_sorted_vec().into_iter().map(|(_, k)| k).collect();
    batch.extend(ties);
    (batch, next)
}

/// Runs RANDOMKEY: a random live key, or nil if there is none.
///
/// Redis picks a random bucket of its hash table in O(1). std's `HashMap`
/// does not expose its buckets, so this walks to a random position, O(n),
/// and from there (wrapping around) to the first key that has not
/// expired. So no expired key is ever returned: when all have expired,
/// the answer is nil, as from Redis (which deletes them on the way).
pub fn random_key(keyspace: &Keyspace, now: i64) -> Reply {
    let len = keyspace.len();
    if len == 0 {
        return Reply::Nil;
    }
    let start = (random_u64() % len as u64) as usize;
    let mut keys = keyspace
        .iter()
        .skip(start)
        .chain(keyspace.iter().take(start));
    // `get` notes each expired key passed on the way, for deletion.
    match keys.find(|(key, _)| keyspace.get(key, now).is_some()) {
        Some((key, _)) => Reply::bulk(key),
        None => Reply::Nil,
    }
}

/// A random number. std has no random numbers, but every `RandomState`
/// is seeded with random keys (so that hash tables resist flooding):
/// hashing a counter with one of them gives random bits.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;
    use std::collections::HashSet;

    fn parse(words: &[&str]) -> Result<Op, Reply> {
        super::super::Command::parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
            .map(|c| c.op)
    }

    /// Iterates to the end with `step`, collecting what every step returned.
    fn full_scan(keys: &[Vec<u8>], count: usize, position: fn(&[u8]) -> u64) -> Vec<Vec<u8>> {
        let (mut cursor, mut seen) = (0, Vec::new());
        loop {
            let (batch, next) = step(keys.iter().map(Vec::as_slice), cursor, count, position);
            assert!(next == 0 || next > cursor, "the cursor must move on");
            seen.extend(batch.into_iter().map(<[u8]>::to_vec));
            if next == 0 {
                return seen;
            }
            cursor = next;
        }
    }

    fn names(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("key:{i}").into_bytes()).collect()
    }

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"00"), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"5\0junk"), Some(5));
        for bad in [
            "18446744073709551616",
            "abc",
            "1a",
            " 1",
            "1 ",
            "+",
            "-",
            "0x10",
        ] {
            assert_eq!(parse_cursor(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn scan_options() {
        let syntax = Err(Reply::error("ERR syntax error"));
        assert_eq!(
            parse(&["scan", "x"]),
            Err(Reply::error("ERR invalid cursor"))
        );
        assert_eq!(parse(&["scan", "0", "count", "0"]), syntax);
        assert_eq!(parse(&["scan", "0", "count", "-1"]), syntax);
        assert_eq!(parse(&["scan", "0", "count"]), syntax);
        assert_eq!(parse(&["scan", "0", "foo", "bar"]), syntax);
        assert_eq!(
            parse(&["scan", "0", "count", "x"]),
            Err(Reply::error("ERR value is not an integer or out of range"))
        );
        assert_eq!(
            parse(&[
                "scan",
                "18446744073709551615",
                "MATCH",
                "*",
                "count",
                "3",
                "Type",
                "s"
            ]),
            Ok(Op::Key(KeyOp::Scan(ScanArgs {
                cursor: u64::MAX,
                count: 3,
                pattern: None,
                kind: Some(b"s".to_vec()),
            })))
        );
    }

    #[test]
    fn a_full_scan_returns_every_key_once() {
        let keys = names(1000);
        for count in [1, 7, 10, 999, 1000, 5000] {
            let mut seen = full_scan(&keys, count, position);
            seen.sort();
            let mut expected = keys.clone();
            expected.sort();
            assert_eq!(seen, expected, "count {count}");
        }
    }

    #[test]
    fn colliding_keys_are_never_split() {
        // A poor hash: ten keys per position.
        let keys = names(100);
        let bad_hash = |key: &[u8]| u64::from(key.last().copied().unwrap_or(0));
        for count in [1, 3, 10, 15] {
            let mut seen = full_scan(&keys, count, bad_hash);
            seen.sort();
            let mut expected = keys.clone();
            expected.sort();
            assert_eq!(seen, expected, "count {count}");
        }
    }

    #[test]
    fn keys_present_throughout_are_seen_despite_changes() {
        let mut live: Vec<Vec<u8>> = names(500);
        let mut cursor = 0;
        let mut seen = HashSet::new();
        let mut round = 0;
        loop {
            let (batch, next) = step(live.iter().map(Vec::as_slice), cursor, 10, position);
            for key in batch {
                assert!(seen.insert(key.to_vec()), "returned twice");
            }
            // Meanwhile, keys come and go (the map's own order changes too).
            live.retain(|key| !key.ends_with(format!(":{round}").as_bytes()));
            live.push(format!("new:{round}").into_bytes());
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for key in live.iter().filter(|key| key.starts_with(b"key:")) {
            assert!(seen.contains(key), "missed {key:?}");
        }
    }

    #[test]
    fn keys_and_scan_hide_expired_keys_and_filter() {
        let mut ks = Keyspace::default();
        ks.set(b"user:1".to_vec(), Value::String(b"v".to_vec()), None);
        ks.set(b"user:2".to_vec(), Value::String(b"v".to_vec()), Some(10));
        ks.set(b"other".to_vec(), Value::String(b"v".to_vec()), None);
        let sorted = |reply: Reply| {
            let Reply::Array(mut items) = reply else {
                panic!("not an array")
            };
            items.sort_by_key(|item| format!("{item:?}"));
            items
        };
        assert_eq!(
            sorted(keys(&ks, b"user:*", 10)),
            vec![Reply::bulk("user:1")]
        );
        assert_eq!(sorted(keys(&ks, b"*", 0)).len(), 3);
        let args = |pattern: Option<&str>, kind: Option<&str>| ScanArgs {
            cursor: 0,
            count: 10,
            pattern: pattern.map(|p| p.as_bytes().to_vec()),
            kind: kind.map(|k| k.as_bytes().to_vec()),
        };
        let expected = Reply::Array(vec![
            Reply::bulk("0"),
            Reply::Array(vec![Reply::bulk("user:1")]),
        ]);
        assert_eq!(
            scan(&ks, &args(Some("user:*"), Some("STRING")), 10),
            expected
        );
        let Reply::Array(reply) = scan(&ks, &args(None, Some("hash")), 0) else {
            panic!("not an array")
        };
        assert_eq!(reply[1], Reply::Array(vec![]));
    }

    #[test]
    fn random_key_skips_expired_keys() {
        let mut ks = Keyspace::default();
        assert_eq!(random_key(&ks, 0), Reply::Nil);
        for i in 0..50 {
            ks.set(
                format!("old{i}").into_bytes(),
                Value::String(b"v".to_vec()),
                Some(10),
            );
        }
        ks.set(b"live".to_vec(), Value::String(b"v".to_vec()), None);
        let mut picked = HashSet::new();
        for _ in 0..200 {
            picked.insert(format!("{:?}", random_key(&ks, 0)));
            assert_eq!(random_key(&ks, 10), Reply::bulk("live"));
        }
        assert!(picked.len() > 10, "not random: {picked:?}");
        ks.remove(b"live");
        assert_eq!(random_key(&ks, 10), Reply::Nil);
    }
}

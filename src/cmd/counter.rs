//! String commands that do arithmetic on a value: INCR, DECR, INCRBY,
//! DECRBY on 64-bit integers, INCRBYFLOAT on C `long double`s.
//!
//! A missing key counts as 0, and the key keeps its expiry.

use super::string::bytes;
use super::string::{string_spec, StrOp};
use super::{arg, parse_int, Flags, Op, Spec};
use crate::events::Events;
use crate::keyspace::{Keyspace, Value};
use crate::long_double::LongDouble;
use crate::resp::{Args, Reply};

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT];

/// `INCR key`
pub const INCR: Spec = counter_spec(
    "incr",
    2,
    "Increment the integer value of a key by one",
    "1.0.0",
    |args| Ok(Op::Str(StrOp::IncrBy(arg(args, 1), 1))),
);

/// `DECR key`
pub const DECR: Spec = counter_spec(
    "decr",
    2,
    "Decrement the integer value of a key by one",
    "1.0.0",
    |args| Ok(Op::Str(StrOp::IncrBy(arg(args, 1), -1))),
);

/// `INCRBY key increment`
pub const INCRBY: Spec = counter_spec(
    "incrby",
    3,
    "Increment the integer value of a key by the given amount",
    "1.0.0",
    |args| {
        let delta = parse_int(&args[2])?;
        Ok(Op::Str(StrOp::IncrBy(arg(args, 1), delta)))
    },
);

/// `DECRBY key decrement`
pub const DECRBY: Spec = counter_spec(
    "decrby",
    3,
    "Decrement the integer value of a key by the given number",
    "1.0.0",
    |args| {
        let delta = parse_int(&args[2])?;
        // Negating the smallest i64 overflows.
        let delta = delta
            .checked_neg()
            .ok_or_else(|| Reply::error("ERR decrement would overflow"))?;
        Ok(Op::Str(StrOp::IncrBy(arg(args, 1), delta)))
    },
);

/// `INCRBYFLOAT key increment`
pub const INCRBYFLOAT: Spec = counter_spec(
    "incrbyfloat",
    3,
    "Increment the float value of a key by the given amount",
    "2.6.0",
    |args| {
        let mut args = args.into_iter().skip(1);
        let (key, increment) = (args.next(), args.next());
        Ok(Op::Str(StrOp::IncrByFloat(
            key.unwrap_or_default(),
            increment.unwrap_or_default(),
        )))
    },
);

/// The row shared by the counter commands: string commands, all with the
/// same flags.
const fn counter_spec(
    name: &'static str,
    arity: i64,
    summary: &'static str,
    since: &'static str,
    parse: fn(Args) -> Result<Op, Reply>,
) -> Spec {
    string_spec(
        name,
        arity,
        Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST),
        summary,
        since,
        parse,
    )
}

/// Runs INCR and friends: the key's value must be an integer (a missing key
/// counts as 0); the result must fit in 64 bits. The expiry stays.
pub fn incr_by(keyspace: &mut Keyspace, key: Vec<u8>, delta: i64, now: i64) -> Reply {
    keyspace.remove_if_expired(&key, now);
    let (current, expires_at) = match keyspace.get(&key, now) {
        None => (0, None),
        Some(entry) => match bytes(&entry).and_then(parse_int) {
            Ok(n) => (n, entry.expires_at()),
            Err(error) => return error,
        },
    };
    let Some(new) = current.checked_add(delta) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    keyspace
        .set(key, Value::String(new.to_string().into_bytes()), expires_at)
        .notify(Events::STRING, "incrby");
    Reply::Integer(new)
}

/// Runs INCRBYFLOAT as Redis does: the value, then the increment, must
/// read as `long double`s; their sum must be finite; it is stored and
/// replied in Redis's human-friendly form (`10.5` + `0.1` is `10.6`,
/// `3.0e3` becomes `3000`: never an exponent). The expiry stays.
pub fn incr_by_float(keyspace: &mut Keyspace, key: Vec<u8>, increment: &[u8], now: i64) -> Reply {
    let not_a_float = || Reply::error("ERR value is not a valid float");
    keyspace.remove_if_expired(&key, now);
    let (current, expires_at) = match keyspace.get(&key, now) {
        None => (LongDouble::ZERO, None),
        Some(entry) => match bytes(&entry).map(LongDouble::parse) {
            Ok(Some(value)) => (value, entry.expires_at()),
            Ok(None) => return not_a_float(),
            Err(error) => return error,
        },
    };
    let Some(increment) = LongDouble::parse(increment) else {
        return not_a_float();
    };
    let Some(sum) = current.add(increment) else {
        return Reply::error("ERR increment would produce NaN or Infinity");
    };
    let text = sum.to_human().into_bytes();
    keyspace
        .set(key, Value::String(text.clone()), expires_at)
        .notify(Events::STRING, "incrbyfloat");
    Reply::Bulk(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(ks: &mut Keyspace, key: &str, by: &str) -> Reply {
        incr_by_float(ks, key.as_bytes().to_vec(), by.as_bytes(), 0)
    }

    #[test]
    fn incrbyfloat_replies_like_redis() {
        let mut ks = Keyspace::default();
        ks.set(b"k".to_vec(), Value::String(b"10.50".to_vec()), Some(100));
        assert_eq!(incr(&mut ks, "k", "0.1"), Reply::bulk("10.6"));
        assert_eq!(incr(&mut ks, "k", "-5"), Reply::bulk("5.6"));
        assert_eq!(ks.get(b"k", 0).and_then(|e| e.expires_at()), Some(100));
        assert_eq!(incr(&mut ks, "n", "3.0e3"), Reply::bulk("3000"));
        assert_eq!(incr(&mut ks, "n", "2.0e2"), Reply::bulk("3200"));
    }

    #[test]
    fn incrbyfloat_errors_change_nothing() {
        let mut ks = Keyspace::default();
        ks.set(b"s".to_vec(), Value::String(b"abc".to_vec()), None);
        ks.set(b"e".to_vec(), Value::String(Vec::new()), None);
        ks.start_recording();
        let not_a_float = Reply::error("ERR value is not a valid float");
        assert_eq!(incr(&mut ks, "s", "1"), not_a_float);
        assert_eq!(incr(&mut ks, "e", "1"), not_a_float);
        assert_eq!(incr(&mut ks, "n", "abc"), not_a_float);
        assert_eq!(incr(&mut ks, "n", "nan"), not_a_float);
        assert_eq!(incr(&mut ks, "n", " 1"), not_a_float);
        let nan_or_inf = Reply::error("ERR increment would produce NaN or Infinity");
        assert_eq!(incr(&mut ks, "n", "inf"), nan_or_inf);
        assert_eq!(incr(&mut ks, "n", "-infinity"), nan_or_inf);
        assert!(ks.take_changes().is_empty());
        assert_eq!(ks.len(), 2);
    }
}

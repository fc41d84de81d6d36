//! String commands on part of a value: APPEND, STRLEN, GETRANGE (and its
//! old name SUBSTR), SETRANGE. Indexes count bytes: values are binary.
//!
//! APPEND and SETRANGE keep the key's expiry: they edit the value, they
//! do not replace it.

use super::string::bytes;
use super::string::{string_spec, StrOp};
use super::{arg, parse_int, Flags, Op, Spec};
use crate::events::Events;
use crate::keyspace::{Keyspace, Value};
use crate::resp::{Args, Reply};

/// The largest string APPEND and SETRANGE may build: Redis's default
/// `proto-max-bulk-len`, 512 MiB.
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[APPEND, STRLEN, GETRANGE, SUBSTR, SETRANGE];

/// `APPEND key value`
pub const APPEND: Spec = string_spec(
    "append",
    3,
    Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST),
    "Append a value to a key",
    "2.0.0",
    |args| {
        let mut args = args.into_iter().skip(1);
        let (key, value) = (args.next(), args.next());
        Ok(Op::Str(StrOp::Append(
            key.unwrap_or_default(),
            value.unwrap_or_default(),
        )))
    },
);

/// `STRLEN key`
pub const STRLEN: Spec = string_spec(
    "strlen",
    2,
    Flags::READONLY.and(Flags::FAST),
    "Get the length of the value stored in a key",
    "2.2.0",
    |args| Ok(Op::Str(StrOp::StrLen(arg(args, 1)))),
);

/// `GETRANGE key start end`
pub const GETRANGE: Spec = string_spec(
    "getrange",
    4,
    Flags::READONLY,
    "Get a substring of the string stored at a key",
    "2.4.0",
    parse_getrange,
);

/// `SUBSTR key start end`: GETRANGE's name before Redis 2.4.
pub const SUBSTR: Spec = string_spec(
    "substr",
    4,
    Flags::READONLY,
    "Get a substring of the string stored at a key",
    "1.0.0",
    parse_getrange,
);

/// `SETRANGE key offset value`
pub const SETRANGE: Spec = string_spec(
    "setrange",
    4,
    Flags::WRITE.and(Flags::DENYOOM),
    "Overwrite part of a string at key starting at the specified offset",
    "2.2.0",
    parse_setrange,
);

/// Parses GETRANGE and SUBSTR: both indexes must be integers.
fn parse_getrange(args: Args) -> Result<Op, Reply> {
    let start = parse_int(&args[2])?;
    let end = parse_int(&args[3])?;
    Ok(Op::Str(StrOp::GetRange(arg(args, 1), start, end)))
}

/// Parses SETRANGE: the offset must be a non-negative integer. (Its upper
/// bound depends on the value's length, and is checked when it runs.)
fn parse_setrange(args: Args) -> Result<Op, Reply> {
    let offset = parse_int(&args[2])?;
    let offset = u64::try_from(offset).map_err(|_| Reply::error("ERR offset is out of range"))?;
    let mut args = args.into_iter();
    let (key, value) = (args.nth(1), args.nth(1));
    Ok(Op::Str(StrOp::SetRange(
        key.unwrap_or_default(),
        offset,
        value.unwrap_or_default(),
    )))
}

/// Refuses a string that would grow past [`MAX_STRING_LEN`]: `size`
/// bytes kept (or skipped) plus `extra` written after them.
fn check_length(size: u64, extra: u64) -> Result<(), Reply> {
    match size.checked_add(extra) {
        Some(total) if total <= MAX_STRING_LEN => Ok(()),
        _ => Err(Reply::error(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// Runs APPEND: the new length. A missing key is created, even with an
/// empty value, and the expiry stays.
pub fn append(keyspace: &mut Keyspace, key: Vec<u8>, value: &[u8], now: i64) -> Reply {
    keyspace.remove_if_expired(&key, now);
    let (mut current, expires_at) = match keyspace.get(&key, now) {
        None => (Vec::new(), None),
        Some(entry) => {
            let current = match bytes(&entry) {
                Ok(current) => current,
                Err(error) => return error,
            };
            if let Err(error) = check_length(current.len() as u64, value.len() as u64) {
                return error;
            }
            (current.to_vec(), entry.expires_at())
        }
    };
    current.extend_from_slice(value);
    let len = current.len() as i64;
    keyspace
        .set(key, Value::String(current), expires_at)
        .notify(Events::STRING, "append");
    Reply::Integer(len)
}

/// Runs STRLEN: the value's length in bytes, 0 for a missing key.
pub fn strlen(keyspace: &Keyspace, key: &[u8], now: i64) -> Reply {
    match keyspace.get(key, now).map(|entry| bytes(&entry)) {
        None => Reply::Integer(0),
        Some(Ok(value)) => Reply::Integer(value.len() as i64),
        Some(Err(error)) => error,
    }
}

/// Runs GETRANGE: the bytes from `start` to `end`, both included; negative
/// indexes count from the end, and the range is clipped to the value.
pub fn getrange(keyspace: &Keyspace, key: &[u8], start: i64, end: i64, now: i64) -> Reply {
    let Some(entry) = keyspace.get(key, now) else {
        return Reply::bulk("");
    };
    let value = match bytes(&entry) {
        Ok(value) => value,
        Err(error) => return error,
    };
    match byte_range(value.len(), start, end) {
        Some((from, to)) => Reply::bulk(&value[from..=to]),
        None => Reply::bulk(""),
    }
}

/// Where GETRANGE's indexes land in a value of `len` bytes, as Redis
/// computes it; `None` when the range is empty.
fn byte_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    // Both from the end, and in the wrong order: empty, even though
    // clipping both to 0 below would give one byte.
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = len as i64;
    let clip = |index: i64| {
        let index = if index < 0 {
            len.saturating_add(index)
        } else {
            index
        };
        index.max(0)
    };
    let (start, end) = (clip(start), clip(end).min(len - 1));
    if len == 0 || start > end {
        return None;
    }
    Some((start as usize, end as usize))
}

/// Runs SETRANGE: writes `value` at `offset`, padding with zero bytes if
/// the value was shorter; replies the new length. An empty `value`
/// changes nothing (not even on a missing key) and skips the size check.
pub fn setrange(
    keyspace: &mut Keyspace,
    key: Vec<u8>,
    offset: u64,
    value: &[u8],
    now: i64,
) -> Reply {
    keyspace.remove_if_expired(&key, now);
    let (mut current, expires_at) = match keyspace.get(&key, now) {
        None => (Vec::new(), None),
        Some(entry) => match bytes(&entry) {
            Ok(current) => (current.to_vec(), entry.expires_at()),
            Err(error) => return error,
        },
    };
    if value.is_empty() {
        return Reply::Integer(current.len() as i64);
    }
    if let Err(error) = check_length(offset, value.len() as u64) {
        return error;
    }
    // Within the limit, so these fit in usize.
    let (start, end) = (offset as usize, offset as usize + value.len());
    if current.len() < end {
        current.resize(end, 0);
    }
    current[start..end].copy_from_slice(value);
    let len = current.len() as i64;
    keyspace
        .set(key, Value::String(current), expires_at)
        .notify(Events::STRING, "setrange");
    Reply::Integer(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::string::get;

    fn range(value: &str, start: i64, end: i64) -> &str {
        byte_range(value.len(), start, end).map_or("", |(from, to)| &value[from..=to])
    }

    #[test]
    fn getrange_indexes() {
        let v = "This is a string";
        assert_eq!(range(v, 0, 3), "This");
        assert_eq!(range(v, -3, -1), "ing");
        assert_eq!(range(v, 0, -1), v);
        assert_eq!(range(v, 10, 100), "string");
        assert_eq!(range(v, 5, 3), "");
        assert_eq!(range(v, -1, -5), "");
        assert_eq!(range(v, -100, 0), "T");
        assert_eq!(range(v, -100, -100), "T");
        assert_eq!(range(v, 100, 200), "");
        assert_eq!(range(v, i64::MIN, i64::MAX), v);
        assert_eq!(range(v, i64::MAX, i64::MIN), "");
        assert_eq!(range("", 0, -1), "");
        assert_eq!(range("", 0, 0), "");
    }

    #[test]
    fn setrange_offsets() {
        let parse = |offset: &str| {
            parse_setrange(vec![
                b"setrange".to_vec(),
                b"k".to_vec(),
                offset.into(),
                b"v".to_vec(),
            ])
        };
        assert_eq!(parse("-1"), Err(Reply::error("ERR offset is out of range")));
        assert_eq!(
            parse("x"),
            Err(Reply::error("ERR value is not an integer or out of range"))
        );
        assert_eq!(
            parse("7"),
            Ok(Op::Str(StrOp::SetRange(b"k".to_vec(), 7, b"v".to_vec())))
        );
        assert!(check_length(MAX_STRING_LEN - 1, 1).is_ok());
        assert!(check_length(MAX_STRING_LEN, 1).is_err());
        assert!(check_length(u64::MAX, 1).is_err());
    }

    #[test]
    fn setrange_pads_and_keeps_the_expiry() {
        let mut ks = Keyspace::default();
        assert_eq!(
            setrange(&mut ks, b"k".to_vec(), 3, b"", 0),
            Reply::Integer(0)
        );
        assert_eq!(ks.len(), 0);
        assert_eq!(
            setrange(&mut ks, b"k".to_vec(), 3, b"ab", 0),
            Reply::Integer(5)
        );
        assert_eq!(get(&ks, b"k", 0), Reply::bulk(&b"\0\0\0ab"[..]));
        ks.set_expiry(b"k", Some(100));
        assert_eq!(
            setrange(&mut ks, b"k".to_vec(), 1, b"X", 0),
            Reply::Integer(5)
        );
        assert_eq!(get(&ks, b"k", 0), Reply::bulk(&b"\0X\0ab"[..]));
        assert_eq!(append(&mut ks, b"k".to_vec(), b"!", 0), Reply::Integer(6));
        assert_eq!(ks.get(b"k", 0).and_then(|e| e.expires_at()), Some(100));
        // Too large: refused, and nothing changes.
        ks.start_recording();
        assert_eq!(
            setrange(&mut ks, b"k".to_vec(), MAX_STRING_LEN, b"x", 0),
            Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
        assert_eq!(
            setrange(&mut ks, b"k".to_vec(), 1 << 40, b"", 0),
            Reply::Integer(6)
        );
        assert!(ks.take_changes().is_empty());
    }

    #[test]
    fn append_creates_even_when_empty() {
        let mut ks = Keyspace::default();
        assert_eq!(append(&mut ks, b"k".to_vec(), b"", 0), Reply::Integer(0));
        assert_eq!(ks.len(), 1);
        assert_eq!(strlen(&ks, b"k", 0), Reply::Integer(0));
        assert_eq!(strlen(&ks, b"nokey", 0), Reply::Integer(0));
    }
}

//! String commands that set whole values: SET with its options, the
//! shorthands SETNX, SETEX, PSETEX and GETSET, and the multi-key MSET
//! and MSETNX. Apart from `SET ... KEEPTTL`, each drops the key's old
//! expiry: a new value starts a new life.

use super::string::bytes;
use super::string::{
    expire_millis, get, invalid_expire_time, option_name, string_spec, syntax_error, StrOp,
};
use super::{Flags, Op, Spec};
use crate::events::Events;
use crate::keyspace::{Keyspace, Value};
use crate::resp::{Args, Reply};

/// Keys and values, in order, as MSET and MSETNX take them.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The rows of this file's commands.
pub const COMMANDS: &[Spec] = &[SET, SETNX, SETEX, PSETEX, GETSET, MSET, MSETNX];

/// `SET key value [NX|XX] [GET] [EX seconds|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]`
pub const SET: Spec = string_spec(
    "set",
    -3,
    Flags::WRITE.and(Flags::DENYOOM),
    "Set the string value of a key",
    "1.0.0",
    parse_set,
);

/// `SETNX key value`
pub const SETNX: Spec = string_spec(
    "setnx",
    3,
    Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST),
    "Set the value of a key, only if the key does not exist",
    "1.0.0",
    |args| {
        let mut args = args.into_iter().skip(1);
        let (key, value) = (args.next(), args.next());
        Ok(Op::Str(StrOp::SetNx(
            key.unwrap_or_default(),
            value.unwrap_or_default(),
        )))
    },
);

/// `SETEX key seconds value`
pub const SETEX: Spec = string_spec(
    "setex",
    4,
    Flags::WRITE.and(Flags::DENYOOM),
    "Set the value and expiration of a key",
    "2.0.0",
    |args| parse_setex("setex", args, true),
);

/// `PSETEX key milliseconds value`
pub const PSETEX: Spec = string_spec(
    "psetex",
    4,
    Flags::WRITE.and(Flags::DENYOOM),
    "Set the value and expiration in milliseconds of a key",
    "2.6.0",
    |args| parse_setex("psetex", args, false),
);

/// `GETSET key value`
pub const GETSET: Spec = string_spec(
    "getset",
    3,
    Flags::WRITE.and(Flags::DENYOOM).and(Flags::FAST),
    "Set the string value of a key and return its old value",
    "1.0.0",
    |args| {
        let mut args = args.into_iter().skip(1);
        let (key, value) = (args.next(), args.next());
        Ok(Op::Str(StrOp::GetSet(
            key.unwrap_or_default(),
            value.unwrap_or_default(),
        )))
    },
);

/// `MSET key value [key value ...]`
pub const MSET: Spec = Spec {
    keys: (1, -1, 2),
    ..string_spec(
        "mset",
        -3,
        Flags::WRITE.and(Flags::DENYOOM),
        "Set multiple keys to multiple values",
        "1.0.1",
        |args| Ok(Op::Str(StrOp::MSet(parse_pairs("mset", args)?))),
    )
};

/// `MSETNX key value [key value ...]`
pub const MSETNX: Spec = Spec {
    keys: (1, -1, 2),
    ..string_spec(
        "msetnx",
        -3,
        Flags::WRITE.and(Flags::DENYOOM),
        "Set multiple keys to multiple values, only if none of the keys exist",
        "1.0.1",
        |args| Ok(Op::Str(StrOp::MSetNx(parse_pairs("msetnx", args)?))),
    )
};

/// SET's arguments, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArgs {
    /// The key.
    pub key: Vec<u8>,
    /// The new value.
    pub value: Vec<u8>,
    /// NX: only if the key does not exist.
    pub nx: bool,
    /// XX: only if the key exists.
    pub xx: bool,
    /// GET: reply with the old value instead of OK.
    pub get: bool,
    /// What happens to the key's expiry.
    pub expiry: SetExpiry,
}

/// The expiry a SET gives its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the key no longer expires.
    Clear,
    /// KEEPTTL: the old expiry stays.
    Keep,
    /// EX or PX: this many milliseconds from now.
    In(i64),
    /// EXAT or PXAT: at this Unix time in milliseconds.
    At(i64),
}

/// Parses SET's options with Redis 7.0's rules. Each option may appear more
/// than once (the last value wins), but options that contradict each other
/// (NX with XX, two kinds of expiry, an expiry with KEEPTTL) are a syntax error.
fn parse_set(args: Args) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let (Some(key), Some(value)) = (args.next(), args.next()) else {
        return Err(Reply::error(
            "ERR wrong number of arguments for 'set' command",
        ));
    };
    let mut set = SetArgs {
        key,
        value,
        nx: false,
        xx: false,
        get: false,
        expiry: SetExpiry::Clear,
    };
    // Which expiry option was given, if any, and its raw argument.
    let mut expire_option: Option<(&str, Vec<u8>)> = None;
    while let Some(arg) = args.next() {
        let option = option_name(&arg);
        let kind = expire_option.as_ref().map(|(kind, _)| *kind);
        let keep = set.expiry == SetExpiry::Keep;
        match option.as_slice() {
            b"NX" if !set.xx => set.nx = true,
            b"XX" if !set.nx => set.xx = true,
            b"GET" => set.get = true,
            b"KEEPTTL" if kind.is_none() => set.expiry = SetExpiry::Keep,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !keep => {
                let name = match option.as_slice() {
                    b"EX" => "EX",
                    b"PX" => "PX",
                    b"EXAT" => "EXAT",
                    _ => "PXAT",
                };
                if kind.is_some_and(|kind| kind != name) {
                    return Err(syntax_error());
                }
                let time = args.next().ok_or_else(syntax_error)?;
                expire_option = Some((name, time));
            }
            _ => return Err(syntax_error()),
        }
    }
    if let Some((kind, time)) = expire_option {
        let millis = expire_millis(&time, kind.starts_with("EX"), "set")?;
        set.expiry = if kind.ends_with("AT") {
            SetExpiry::At(millis)
        } else {
            SetExpiry::In(millis)
        };
    }
    Ok(Op::Str(StrOp::Set(set)))
}

/// Parses SETEX and PSETEX: the time is checked before anything else.
fn parse_setex(command: &'static str, args: Args, seconds: bool) -> Result<Op, Reply> {
    let millis = expire_millis(&args[2], seconds, command)?;
    let mut args = args.into_iter();
    let (key, value) = (args.nth(1), args.nth(1));
    Ok(Op::Str(StrOp::SetEx {
        command,
        key: key.unwrap_or_default(),
        value: value.unwrap_or_default(),
        millis,
    }))
}

/// Splits MSET's and MSETNX's arguments into pairs. An odd count passes
/// the table's arity check but is still wrong: Redis says so in the same words.
fn parse_pairs(command: &str, args: Args) -> Result<Pairs, Reply> {
    if args.len().is_multiple_of(2) {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{command}' command"
        )));
    }
    let mut args = args.into_iter().skip(1);
    let mut pairs = Vec::with_capacity(args.len() / 2);
    while let (Some(key), Some(value)) = (args.next(), args.next()) {
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Runs SET.
pub fn set(keyspace: &mut Keyspace, args: SetArgs, now: i64) -> Reply {
    let expires_at = match args.expiry {
        SetExpiry::In(millis) => match now.checked_add(millis) {
            Some(deadline) => Some(deadline),
            None => return invalid_expire_time("set"),
        },
        SetExpiry::At(deadline) => Some(deadline),
        SetExpiry::Clear => None,
        SetExpiry::Keep => None, // decided below, from the old entry
    };
    // A plain SET needs nothing of the old value: it replaces it, expired
    // or not. (The common case, worth two hash lookups fewer.)
    let expire_event = matches!(args.expiry, SetExpiry::In(_) | SetExpiry::At(_));
    if !args.get && !args.nx && !args.xx && args.expiry != SetExpiry::Keep {
        let written = keyspace.set(args.key, Value::String(args.value), expires_at);
        let written = written.notify(Events::STRING, "set");
        if expire_event {
            written.notify(Events::GENERIC, "expire");
        }
        return Reply::ok();
    }
    // A writer deletes an expired key before looking: it is gone.
    keyspace.remove_if_expired(&args.key, now);
    let old = keyspace.get(&args.key, now);
    let found = old.is_some();
    let old_expiry = old.and_then(|entry| entry.expires_at());
    // With GET the reply is the old value, whether or not the SET happens.
    let reply = match (args.get, old) {
        (true, Some(entry)) => match bytes(&entry) {
            Ok(value) => Reply::bulk(value),
            Err(error) => return error,
        },
        (true, None) => Reply::Nil,
        (false, _) => Reply::ok(),
    };
    if (args.nx && found) || (args.xx && !found) {
        return if args.get { reply } else { Reply::Nil };
    }
    let expires_at = if args.expiry == SetExpiry::Keep {
        old_expiry
    } else {
        expires_at
    };
    let written = keyspace.set(args.key, Value::String(args.value), expires_at);
    let written = written.notify(Events::STRING, "set");
    if expire_event {
        written.notify(Events::GENERIC, "expire");
    }
    reply
}

/// Runs SETNX: 1 if it set the key, 0 if the key already existed.
pub fn setnx(keyspace: &mut Keyspace, key: Vec<u8>, value: Vec<u8>, now: i64) -> Reply {
    keyspace.remove_if_expired(&key, now);
    if keyspace.get(&key, now).is_some() {
        return Reply::Integer(0);
    }
    keyspace
        .set(key, Value::String(value), None)
        .notify(Events::STRING, "set");
    Reply::Integer(1)
}

/// Runs SETEX and PSETEX: a SET with a time to live.
pub fn setex(
    keyspace: &mut Keyspace,
    command: &str,
    key: Vec<u8>,
    value: Vec<u8>,
    millis: i64,
    now: i64,
) -> Reply {
    let Some(deadline) = now.checked_add(millis) else {
        return invalid_expire_time(command);
    };
    keyspace.remove_if_expired(&key, now);
    keyspace
        .set(key, Value::String(value), Some(deadline))
        .notify(Events::STRING, "set")
        .notify(Events::GENERIC, "expire");
    Reply::ok()
}

/// Runs GETSET: sets the value (dropping any expiry), replies the old one.
pub fn getset(keyspace: &mut Keyspace, key: Vec<u8>, value: Vec<u8>, now: i64) -> Reply {
    keyspace.remove_if_expired(&key, now);
    let reply = get(keyspace, &key, now);
    keyspace
        .set(key, Value::String(value), None)
        .notify(Events::STRING, "set");
    reply
}

/// Runs MSET: every pair is set, each key losing its expiry.
pub fn mset(keyspace: &mut Keyspace, pairs: Pairs, now: i64) -> Reply {
    for (key, value) in pairs {
        keyspace.remove_if_expired(&key, now);
        keyspace
            .set(key, Value::String(value), None)
            .notify(Events::STRING, "set");
    }
    Reply::ok()
}

/// Runs MSETNX: all pairs are set (1), or none if any key exists (0).
pub fn msetnx(keyspace: &mut Keyspace, pairs: Pairs, now: i64) -> Reply {
    for (key, _) in &pairs {
        keyspace.remove_if_expired(key, now);
        if keyspace.get(key, now).is_some() {
            return Reply::Integer(0);
        }
    }
    for (key, value) in pairs {
        keyspace
            .set(key, Value::String(value), None)
            .notify(Events::STRING, "set");
    }
    Reply::Integer(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::string::tests::{bytes, parse, run};

    #[test]
    fn setex_checks_its_time_first() {
        assert_eq!(
            parse(&["setex", "k", "0", "v"]),
            Err(invalid_expire_time("setex"))
        );
        assert_eq!(
            parse(&["psetex", "k", "-5", "v"]),
            Err(invalid_expire_time("psetex"))
        );
        assert_eq!(
            parse(&["setex", "k", "1.5", "v"]),
            Err(Reply::error("ERR value is not an integer or out of range"))
        );
        // Fits once multiplied, overflows once added to the clock.
        let mut ks = Keyspace::default();
        assert_eq!(
            run(&mut ks, 1000, &["setex", "k", "9223372036854775", "v"]),
            invalid_expire_time("setex")
        );
        assert_eq!(
            run(&mut ks, 1000, &["psetex", "k", "500", "v"]),
            Reply::ok()
        );
        assert_eq!(ks.get(b"k", 1000).and_then(|e| e.expires_at()), Some(1500));
    }

    #[test]
    fn set_options_end_at_a_nul_byte() {
        assert_eq!(
            parse(&["set", "k", "v", "ex\0junk", "5", "NX\0"]),
            Ok(Op::Str(StrOp::Set(SetArgs {
                key: bytes("k"),
                value: bytes("v"),
                nx: true,
                xx: false,
                get: false,
                expiry: SetExpiry::In(5000),
            })))
        );
    }

    #[test]
    fn mset_needs_pairs() {
        assert_eq!(
            parse(&["mset", "a", "1", "b"]),
            Err(Reply::error(
                "ERR wrong number of arguments for 'mset' command"
            ))
        );
        assert_eq!(
            parse(&["msetnx", "a", "1", "b"]),
            Err(Reply::error(
                "ERR wrong number of arguments for 'msetnx' command"
            ))
        );
        assert_eq!(
            parse(&["mset", "a", "1", "b", "2"]),
            Ok(Op::Str(StrOp::MSet(vec![
                (bytes("a"), bytes("1")),
                (bytes("b"), bytes("2"))
            ])))
        );
    }

    #[test]
    fn failed_setnx_and_msetnx_record_nothing() {
        let mut ks = Keyspace::default();
        ks.set(bytes("a"), Value::String(bytes("1")), None);
        ks.start_recording();
        assert_eq!(run(&mut ks, 0, &["setnx", "a", "2"]), Reply::Integer(0));
        assert_eq!(
            run(&mut ks, 0, &["msetnx", "b", "1", "a", "2"]),
            Reply::Integer(0)
        );
        assert!(ks.take_changes().is_empty());
        assert!(ks.get(b"b", 0).is_none());
    }

    #[test]
    fn getset_msetnx_setnx() {
        let mut ks = Keyspace::default();
        ks.set(bytes("k"), Value::String(bytes("old")), Some(5000));
        assert_eq!(run(&mut ks, 0, &["getset", "k", "new"]), Reply::bulk("old"));
        assert_eq!(ks.get(b"k", 0).and_then(|e| e.expires_at()), None);
        // The same key twice: the last value wins.
        assert_eq!(
            run(&mut ks, 0, &["msetnx", "a", "1", "a", "2"]),
            Reply::Integer(1)
        );
        assert_eq!(get(&ks, b"a", 0), Reply::bulk("2"));
        // An expired key counts as missing.
        ks.set(bytes("e"), Value::String(bytes("x")), Some(10));
        assert_eq!(run(&mut ks, 10, &["setnx", "e", "y"]), Reply::Integer(1));
    }
}

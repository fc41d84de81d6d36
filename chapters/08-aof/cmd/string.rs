//! String commands: GET, SET with its options, and the counters INCR,
//! DECR, INCRBY, DECRBY.

use super::{parse_int, Flags, Op, Spec};
use crate::db::Keyspace;
use crate::resp::Reply;

/// `GET key`
pub const GET: Spec = Spec {
    name: "get",
    arity: 2,
    flags: Flags::of(&[Flags::READONLY, Flags::FAST]),
    keys: (1, 1, 1),
    summary: "Get the value of a key",
    since: "1.0.0",
    group: "string",
    parse: |args| Ok(Op::Get(args.into_iter().nth(1).unwrap_or_default())),
    subcommands: &[],
};

/// `SET key value [NX|XX] [GET] [EX seconds|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]`
pub const SET: Spec = Spec {
    name: "set",
    arity: -3,
    flags: Flags::of(&[Flags::WRITE, Flags::DENYOOM]),
    keys: (1, 1, 1),
    summary: "Set the string value of a key",
    since: "1.0.0",
    group: "string",
    parse: parse_set,
    subcommands: &[],
};

/// `INCR key`
pub const INCR: Spec = counter_spec(
    "incr",
    2,
    "Increment the integer value of a key by one",
    "1.0.0",
    |args| Ok(Op::IncrBy(args.into_iter().nth(1).unwrap_or_default(), 1)),
);

/// `DECR key`
pub const DECR: Spec = counter_spec(
    "decr",
    2,
    "Decrement the integer value of a key by one",
    "1.0.0",
    |args| Ok(Op::IncrBy(args.into_iter().nth(1).unwrap_or_default(), -1)),
);

/// `INCRBY key increment`
pub const INCRBY: Spec = counter_spec(
    "incrby",
    3,
    "Increment the integer value of a key by the given amount",
    "1.0.0",
    |args| {
        let delta = parse_int(&args[2])?;
        Ok(Op::IncrBy(
            args.into_iter().nth(1).unwrap_or_default(),
            delta,
        ))
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
        Ok(Op::IncrBy(
            args.into_iter().nth(1).unwrap_or_default(),
            delta,
        ))
    },
);

/// The row shared by the four counter commands.
const fn counter_spec(
    name: &'static str,
    arity: i64,
    summary: &'static str,
    since: &'static str,
    parse: fn(Vec<Vec<u8>>) -> Result<Op, Reply>,
) -> Spec {
    Spec {
        name,
        arity,
        flags: Flags::of(&[Flags::WRITE, Flags::DENYOOM, Flags::FAST]),
        keys: (1, 1, 1),
        summary,
        since,
        group: "string",
        parse,
        subcommands: &[],
    }
}

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
fn parse_set(args: Vec<Vec<u8>>) -> Result<Op, Reply> {
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
        let option = arg.to_ascii_uppercase();
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
        let time = parse_int(&time)?;
        let seconds = kind == "EX" || kind == "EXAT";
        // Zero and negative times are refused, and so are seconds that
        // would overflow once turned into milliseconds.
        if time <= 0 || (seconds && time > i64::MAX / 1000) {
            return Err(invalid_expire_time("set"));
        }
        let millis = if seconds { time * 1000 } else { time };
        set.expiry = if kind.ends_with("AT") {
            SetExpiry::At(millis)
        } else {
            SetExpiry::In(millis)
        };
    }
    Ok(Op::Set(set))
}

fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

/// Redis's error for an expiry it cannot represent.
pub fn invalid_expire_time(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

/// Runs GET: the value, or a null bulk when the key does not exist.
pub fn get(keyspace: &Keyspace, key: &[u8], now: i64) -> Reply {
    keyspace
        .get(key, now)
        .map_or(Reply::Nil, |entry| Reply::bulk(entry.value.as_slice()))
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
    // A writer deletes an expired key before looking: it is gone.
    keyspace.remove_if_expired(&args.key, now);
    let old = keyspace.get(&args.key, now);
    let found = old.is_some();
    let old_expiry = old.and_then(|entry| entry.expires_at());
    // With GET the reply is the old value, whether or not the SET happens.
    let reply = match (args.get, old) {
        (true, Some(entry)) => Reply::bulk(entry.value.as_slice()),
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
    keyspace.set(args.key, args.value, expires_at);
    reply
}

/// Runs INCR and friends: the key's value must be an integer (a missing key
/// counts as 0); the result must fit in 64 bits. The expiry stays.
pub fn incr_by(keyspace: &mut Keyspace, key: Vec<u8>, delta: i64, now: i64) -> Reply {
    keyspace.remove_if_expired(&key, now);
    let (current, expires_at) = match keyspace.get(&key, now) {
        None => (0, None),
        Some(entry) => match parse_int(&entry.value) {
            Ok(n) => (n, entry.expires_at()),
            Err(error) => return error,
        },
    };
    let Some(new) = current.checked_add(delta) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    keyspace.set(key, new.to_string().into_bytes(), expires_at);
    Reply::Integer(new)
}

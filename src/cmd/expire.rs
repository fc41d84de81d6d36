//! Expiry commands: EXPIRE and friends set a deadline, TTL and friends
//! read it, PERSIST removes it.
//!
//! Four commands set a deadline, differing only in unit and base:
//! EXPIRE (seconds from now), PEXPIRE (ms from now), EXPIREAT (Unix
//! seconds) and PEXPIREAT (Unix ms). They share one parser and one runner.

use super::string::invalid_expire_time;
use super::{arg, parse_int, Flags, Op, Spec};
use crate::events::Events;
use crate::keyspace::Keyspace;
use crate::resp::{Args, Reply};

/// An expiry command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireOp {
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`
    Set(ExpireArgs),
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`
    Ttl(Vec<u8>, TtlForm),
    /// `PERSIST key`
    Persist(Vec<u8>),
}

/// The expiry commands' rows of the table.
pub const COMMANDS: &[Spec] = &[
    EXPIRE,
    PEXPIRE,
    EXPIREAT,
    PEXPIREAT,
    TTL,
    PTTL,
    EXPIRETIME,
    PEXPIRETIME,
    PERSIST,
];

/// Runs an expiry command that only reads.
pub fn read(op: ExpireOp, keyspace: &Keyspace, now: i64) -> Reply {
    match op {
        ExpireOp::Ttl(key, form) => ttl(keyspace, &key, form, now),
        // Flagged `write` in the table, so never here.
        ExpireOp::Set(..) | ExpireOp::Persist(..) => {
            Reply::error("ERR write command run without the write lock")
        }
    }
}

/// Runs an expiry command that may write.
pub fn write(op: ExpireOp, keyspace: &mut Keyspace, now: i64) -> Reply {
    match op {
        ExpireOp::Set(args) => expire(keyspace, args, now),
        ExpireOp::Persist(key) => persist(keyspace, &key, now),
        op => {
            let reply = read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    }
}

/// EXPIRE and friends, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireArgs {
    /// The command's name, for error messages.
    pub command: &'static str,
    /// The key.
    pub key: Vec<u8>,
    /// The time argument as given.
    pub time: i64,
    /// Is `time` in seconds (EXPIRE, EXPIREAT) rather than milliseconds?
    pub seconds: bool,
    /// Is `time` absolute (EXPIREAT, PEXPIREAT) rather than from now?
    pub absolute: bool,
    /// NX: only if the key has no expiry.
    pub nx: bool,
    /// XX: only if the key has an expiry.
    pub xx: bool,
    /// GT: only if the new expiry is later than the current one.
    pub gt: bool,
    /// LT: only if the new expiry is earlier than the current one.
    pub lt: bool,
}

/// What TTL and friends report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlForm {
    /// TTL: seconds left, rounded.
    Seconds,
    /// PTTL: milliseconds left.
    Millis,
    /// EXPIRETIME: the deadline in Unix seconds.
    UnixSeconds,
    /// PEXPIRETIME: the deadline in Unix milliseconds.
    UnixMillis,
}

/// Builds the table row of one of the four commands that set a deadline.
macro_rules! expire_spec {
    ($name:literal, $summary:literal, $since:literal, $seconds:expr, $absolute:expr) => {
        Spec {
            name: $name,
            arity: -3,
            flags: Flags::WRITE.and(Flags::FAST),
            keys: (1, 1, 1),
            summary: $summary,
            since: $since,
            group: "generic",
            parse: |args| parse_expire($name, args, $seconds, $absolute),
            subcommands: &[],
        }
    };
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`
pub const EXPIRE: Spec = expire_spec!(
    "expire",
    "Set a key's time to live in seconds",
    "1.0.0",
    true,
    false
);
/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`
pub const PEXPIRE: Spec = expire_spec!(
    "pexpire",
    "Set a key's time to live in milliseconds",
    "2.6.0",
    false,
    false
);
/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`
pub const EXPIREAT: Spec = expire_spec!(
    "expireat",
    "Set the expiration for a key as a UNIX timestamp",
    "1.2.0",
    true,
    true
);
/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
pub const PEXPIREAT: Spec = expire_spec!(
    "pexpireat",
    "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
    "2.6.0",
    false,
    true
);

/// Builds the table row of one of the four commands that read a deadline.
macro_rules! ttl_spec {
    ($name:literal, $summary:literal, $since:literal, $form:expr) => {
        Spec {
            name: $name,
            arity: 2,
            flags: Flags::READONLY.and(Flags::FAST),
            keys: (1, 1, 1),
            summary: $summary,
            since: $since,
            group: "generic",
            parse: |args| Ok(Op::Expire(ExpireOp::Ttl(arg(args, 1), $form))),
            subcommands: &[],
        }
    };
}

/// `TTL key`
pub const TTL: Spec = ttl_spec!(
    "ttl",
    "Get the time to live for a key in seconds",
    "1.0.0",
    TtlForm::Seconds
);
/// `PTTL key`
pub const PTTL: Spec = ttl_spec!(
    "pttl",
    "Get the time to live for a key in milliseconds",
    "2.6.0",
    TtlForm::Millis
);
/// `EXPIRETIME key`
pub const EXPIRETIME: Spec = ttl_spec!(
    "expiretime",
    "Get the expiration Unix timestamp for a key",
    "7.0.0",
    TtlForm::UnixSeconds
);
/// `PEXPIRETIME key`
pub const PEXPIRETIME: Spec = ttl_spec!(
    "pexpiretime",
    "Get the expiration Unix timestamp for a key in milliseconds",
    "7.0.0",
    TtlForm::UnixMillis
);

/// `PERSIST key`
pub const PERSIST: Spec = Spec {
    name: "persist",
    arity: 2,
    flags: Flags::WRITE.and(Flags::FAST),
    keys: (1, 1, 1),
    summary: "Remove the expiration from a key",
    since: "2.2.0",
    group: "generic",
    parse: |args| Ok(Op::Expire(ExpireOp::Persist(arg(args, 1)))),
    subcommands: &[],
};

/// Parses `<cmd> key time [NX|XX|GT|LT ...]`. As in Redis, the options are
/// checked before the time, and each option may be repeated.
fn parse_expire(
    command: &'static str,
    args: Args,
    seconds: bool,
    absolute: bool,
) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let (Some(key), Some(time)) = (args.next(), args.next()) else {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{command}' command"
        )));
    };
    let mut parsed = ExpireArgs {
        command,
        key,
        time: 0,
        seconds,
        absolute,
        nx: false,
        xx: false,
        gt: false,
        lt: false,
    };
    for option in args {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => parsed.nx = true,
            b"XX" => parsed.xx = true,
            b"GT" => parsed.gt = true,
            b"LT" => parsed.lt = true,
            _ => {
                let mut msg = b"ERR Unsupported option ".to_vec();
                msg.extend_from_slice(&option);
                return Err(Reply::Error(msg));
            }
        }
    }
    if parsed.nx && (parsed.xx || parsed.gt || parsed.lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if parsed.gt && parsed.lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    parsed.time = parse_int(&time)?;
    Ok(Op::Expire(ExpireOp::Set(parsed)))
}

/// Runs EXPIRE and friends: 1 if the deadline was set (or the key deleted
/// because the deadline has passed), 0 if the key is missing or a
/// condition (NX, XX, GT, LT) said no.
pub fn expire(keyspace: &mut Keyspace, args: ExpireArgs, now: i64) -> Reply {
    // Negative times are allowed (they delete the key); only overflow is not.
    let millis = if args.seconds {
        args.time.checked_mul(1000)
    } else {
        Some(args.time)
    };
    let base = if args.absolute { 0 } else { now };
    let Some(deadline) = millis.and_then(|ms| ms.checked_add(base)) else {
        return invalid_expire_time(args.command);
    };
    let Some(entry) = keyspace.get_live(&args.key, now) else {
        return Reply::Integer(0);
    };
    let current = entry.expires_at();
    // A key without an expiry lives forever: later than any deadline.
    let refused = (args.nx && current.is_some())
        || (args.xx && current.is_none())
        || (args.gt && current.is_none_or(|current| deadline <= current))
        || (args.lt && current.is_some_and(|current| deadline >= current));
    if refused {
        return Reply::Integer(0);
    }
    if deadline <= now {
        keyspace.remove(&args.key);
        keyspace.notify(Events::GENERIC, "del", &args.key);
    } else {
        keyspace.set_expiry(&args.key, Some(deadline));
        keyspace.notify(Events::GENERIC, "expire", &args.key);
    }
    Reply::Integer(1)
}

/// Runs TTL and friends: -2 for a missing key, -1 for a key without expiry.
pub fn ttl(keyspace: &Keyspace, key: &[u8], form: TtlForm, now: i64) -> Reply {
    let Some(entry) = keyspace.get(key, now) else {
        return Reply::Integer(-2);
    };
    let Some(deadline) = entry.expires_at() else {
        return Reply::Integer(-1);
    };
    let left = (deadline - now).max(0);
    Reply::Integer(match form {
        // TTL rounds to the nearest second, as Redis does.
        TtlForm::Seconds => (left + 500) / 1000,
        TtlForm::Millis => left,
        // EXPIRETIME rounds like TTL; i128 because the deadline may be i64::MAX.
        TtlForm::UnixSeconds => ((i128::from(deadline) + 500) / 1000) as i64,
        TtlForm::UnixMillis => deadline,
    })
}

/// Runs PERSIST: 1 if it removed an expiry, 0 otherwise.
pub fn persist(keyspace: &mut Keyspace, key: &[u8], now: i64) -> Reply {
    let had_expiry = keyspace
        .get_live(key, now)
        .is_some_and(|entry| entry.expires_at().is_some());
    if had_expiry {
        keyspace.set_expiry(key, None);
        keyspace.notify(Events::GENERIC, "persist", key);
    }
    Reply::Integer(i64::from(had_expiry))
}

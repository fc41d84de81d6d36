//! Connection commands: PING, ECHO, QUIT.

use super::{Flags, Op, Spec};
use crate::resp::Reply;

/// `PING [message]`: `+PONG`, or the message back as a bulk string.
pub const PING: Spec = Spec {
    name: "ping",
    arity: -1,
    flags: Flags::of(&[Flags::FAST]),
    keys: (0, 0, 0),
    summary: "Ping the server",
    since: "1.0.0",
    group: "connection",
    parse: |args| match args.len() {
        1 => Ok(Op::Ping(None)),
        2 => Ok(Op::Ping(args.into_iter().nth(1))),
        _ => Err(Reply::error(
            "ERR wrong number of arguments for 'ping' command",
        )),
    },
    subcommands: &[],
};

/// `ECHO message`: the message back as a bulk string.
pub const ECHO: Spec = Spec {
    name: "echo",
    arity: 2,
    flags: Flags::of(&[Flags::LOADING, Flags::STALE, Flags::FAST]),
    keys: (0, 0, 0),
    summary: "Echo the given string",
    since: "1.0.0",
    group: "connection",
    parse: |args| Ok(Op::Echo(args.into_iter().nth(1).unwrap_or_default())),
    subcommands: &[],
};

/// `QUIT`: `+OK`, then the server closes the connection. Redis 7.0 accepts
/// it with any number of arguments.
pub const QUIT: Spec = Spec {
    name: "quit",
    arity: -1,
    flags: Flags::of(&[
        Flags::NOSCRIPT,
        Flags::LOADING,
        Flags::STALE,
        Flags::FAST,
        Flags::NO_AUTH,
        Flags::ALLOW_BUSY,
    ]),
    keys: (0, 0, 0),
    summary: "Close the connection",
    since: "1.0.0",
    group: "connection",
    parse: |_| Ok(Op::Quit),
    subcommands: &[],
};

/// Runs PING.
pub fn ping(message: Option<Vec<u8>>) -> Reply {
    match message {
        None => Reply::Simple("PONG"),
        Some(message) => Reply::Bulk(message),
    }
}

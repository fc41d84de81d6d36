//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! SSUBSCRIBE, SUNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB's introspection;
//! and the rules of RESP2's subscribed mode.
//!
//! The registry and the outboxes are `pubsub.rs`'s; this file parses the
//! commands and says what a client in subscribed mode may still send.

use super::{arg, rest, Context, Flags, Op, Session, Spec};
use crate::pubsub::{Confirm, Kind, Subscriptions};
use crate::resp::{Args, Protocol, Reply};
use crate::sync::lock;

/// A pub/sub command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubOp {
    /// `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` with their names.
    Subscribe(Kind, Vec<Vec<u8>>),
    /// `UNSUBSCRIBE`, `PUNSUBSCRIBE`, `SUNSUBSCRIBE`; no names: all of them.
    Unsubscribe(Kind, Vec<Vec<u8>>),
    /// `PUBLISH channel message` (`Kind::Channel`), `SPUBLISH` (`Kind::Shard`).
    Publish(Kind, Vec<u8>, Vec<u8>),
    /// `PUBSUB CHANNELS [pattern]`, `PUBSUB SHARDCHANNELS [pattern]`.
    Channels(Kind, Option<Vec<u8>>),
    /// `PUBSUB NUMSUB [channel ...]`, `PUBSUB SHARDNUMSUB [channel ...]`.
    NumSub(Kind, Vec<Vec<u8>>),
    /// `PUBSUB NUMPAT`
    NumPat,
    /// `PUBSUB HELP`
    Help,
}

/// Flags of the (un)subscribe commands.
const SUBSCRIBING: Flags = Flags::PUBSUB
    .and(Flags::NOSCRIPT)
    .and(Flags::LOADING)
    .and(Flags::STALE);
/// Flags of PUBLISH and SPUBLISH.
const PUBLISHING: Flags = Flags::PUBSUB
    .and(Flags::LOADING)
    .and(Flags::STALE)
    .and(Flags::FAST);
/// Flags of PUBSUB's subcommands.
const INTROSPECTING: Flags = Flags::PUBSUB.and(Flags::LOADING).and(Flags::STALE);

/// Builds a row of this group.
macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $summary:literal, $since:literal, $parse:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            summary: $summary,
            since: $since,
            group: "pubsub",
            parse: $parse,
            subcommands: &[],
        }
    };
}

/// The pub/sub commands' rows of the table.
pub const COMMANDS: &[Spec] = &[
    spec!(
        "subscribe",
        -2,
        SUBSCRIBING,
        (0, 0, 0),
        "Listen for messages published to the given channels",
        "2.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Subscribe(
            Kind::Channel,
            rest(args, 1)
        )))
    ),
    spec!(
        "unsubscribe",
        -1,
        SUBSCRIBING,
        (0, 0, 0),
        "Stop listening for messages posted to the given channels",
        "2.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Unsubscribe(
            Kind::Channel,
            rest(args, 1)
        )))
    ),
    spec!(
        "psubscribe",
        -2,
        SUBSCRIBING,
        (0, 0, 0),
        "Listen for messages published to channels matching the given patterns",
        "2.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Subscribe(
            Kind::Pattern,
            rest(args, 1)
        )))
    ),
    spec!(
        "punsubscribe",
        -1,
        SUBSCRIBING,
        (0, 0, 0),
        "Stop listening for messages posted to channels matching the given patterns",
        "2.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Unsubscribe(
            Kind::Pattern,
            rest(args, 1)
        )))
    ),
    spec!(
        "ssubscribe",
        -2,
        SUBSCRIBING,
        (1, -1, 1),
        "Listen for messages published to the given shard channels",
        "7.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Subscribe(Kind::Shard, rest(args, 1))))
    ),
    spec!(
        "sunsubscribe",
        -1,
        SUBSCRIBING,
        (1, -1, 1),
        "Stop listening for messages posted to the given shard channels",
        "7.0.0",
        |args| Ok(Op::PubSub(PubSubOp::Unsubscribe(
            Kind::Shard,
            rest(args, 1)
        )))
    ),
    spec!(
        "publish",
        3,
        PUBLISHING,
        (0, 0, 0),
        "Post a message to a channel",
        "2.0.0",
        |args| parse_publish(Kind::Channel, args)
    ),
    spec!(
        "spublish",
        3,
        PUBLISHING,
        (1, 1, 1),
        "Post a message to a shard channel",
        "7.0.0",
        |args| parse_publish(Kind::Shard, args)
    ),
    Spec {
        name: "pubsub",
        arity: -2,
        flags: Flags::NONE,
        keys: (0, 0, 0),
        summary: "A container for Pub/Sub commands",
        since: "2.8.0",
        group: "pubsub",
        parse: |_| {
            Err(Reply::error(
                "ERR wrong number of arguments for 'pubsub' command",
            ))
        },
        subcommands: &[
            spec!(
                "pubsub|channels",
                -2,
                INTROSPECTING,
                (0, 0, 0),
                "List active channels",
                "2.8.0",
                |args| parse_channels(Kind::Channel, args)
            ),
            spec!(
                "pubsub|numsub",
                -2,
                INTROSPECTING,
                (0, 0, 0),
                "Get the count of subscribers for channels",
                "2.8.0",
                |args| Ok(Op::PubSub(PubSubOp::NumSub(Kind::Channel, rest(args, 2))))
            ),
            spec!(
                "pubsub|numpat",
                2,
                INTROSPECTING,
                (0, 0, 0),
                "Get the count of unique patterns pattern subscriptions",
                "2.8.0",
                |_| Ok(Op::PubSub(PubSubOp::NumPat))
            ),
            spec!(
                "pubsub|shardchannels",
                -2,
                INTROSPECTING,
                (0, 0, 0),
                "List active shard channels",
                "7.0.0",
                |args| parse_channels(Kind::Shard, args)
            ),
            spec!(
                "pubsub|shardnumsub",
                -2,
                INTROSPECTING,
                (0, 0, 0),
                "Get the count of subscribers for shard channels",
                "7.0.0",
                |args| Ok(Op::PubSub(PubSubOp::NumSub(Kind::Shard, rest(args, 2))))
            ),
            spec!(
                "pubsub|help",
                2,
                Flags::LOADING.and(Flags::STALE),
                (0, 0, 0),
                "Show helpful text about the different subcommands",
                "6.2.0",
                |_| Ok(Op::PubSub(PubSubOp::Help))
            ),
        ],
    },
];

fn parse_publish(kind: Kind, args: Args) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let channel = args.next().unwrap_or_default();
    let message = args.next().unwrap_or_default();
    Ok(Op::PubSub(PubSubOp::Publish(kind, channel, message)))
}

/// `PUBSUB CHANNELS [pattern]`: more than one pattern is Redis's odd
/// "unknown subcommand or wrong number of arguments", naming the
/// subcommand as the client spelt it.
fn parse_channels(kind: Kind, args: Args) -> Result<Op, Reply> {
    match args.len() {
        2 => Ok(Op::PubSub(PubSubOp::Channels(kind, None))),
        3 => Ok(Op::PubSub(PubSubOp::Channels(kind, Some(arg(args, 2))))),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// Is this command refused to a RESP2 client in subscribed mode? Then
/// the error Redis gives. Only the (un)subscribe commands, PING, QUIT and
/// RESET are allowed: the client is reading pushes, not replies.
pub fn refused_in_subscribed_mode(spec: &Spec, op: &Op) -> Option<Reply> {
    let allowed = matches!(
        op,
        Op::PubSub(PubSubOp::Subscribe(..) | PubSubOp::Unsubscribe(..))
            | Op::Quit
            | Op::Conn(super::ConnOp::Ping(_) | super::ConnOp::Reset)
    );
    (!allowed).then(|| {
        Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ))
    })
}

/// Runs a pub/sub command. Outside EXEC the confirmations go straight into
/// the client's outbox, under the registry's lock, and the reply is empty;
/// inside EXEC they are EXEC's reply for this command.
pub fn run(op: PubSubOp, ctx: &Context, session: &mut Session, in_exec: bool) -> Reply {
    match op {
        PubSubOp::Subscribe(kind, names) => {
            let (id, protocol) = (session.id, session.protocol);
            let subs = session
                .pubsub
                .get_or_insert_with(|| Subscriptions::new(id, protocol));
            let mut frames = Vec::new();
            let confirm = confirm_to(&mut frames, protocol, in_exec);
            ctx.pubsub.subscribe(subs, kind, names, confirm);
            show(session);
            Reply::Frames(frames)
        }
        PubSubOp::Unsubscribe(kind, names) => {
            let protocol = session.protocol;
            let mut frames = Vec::new();
            match session.pubsub.as_mut() {
                Some(subs) => {
                    let confirm = confirm_to(&mut frames, protocol, in_exec);
                    ctx.pubsub.unsubscribe(subs, kind, names, confirm);
                }
                // Never subscribed: nothing to remove, and no outbox yet.
                None => {
                    let mut subs = Subscriptions::new(session.id, protocol);
                    let confirm = Confirm::Replies(&mut frames);
                    ctx.pubsub.unsubscribe(&mut subs, kind, names, confirm);
                }
            }
            show(session);
            Reply::Frames(frames)
        }
        PubSubOp::Publish(kind, channel, message) => {
            Reply::Integer(ctx.pubsub.publish(kind, &channel, &message) as i64)
        }
        PubSubOp::Channels(kind, pattern) => Reply::Array(
            ctx.pubsub
                .channels(kind, pattern.as_deref())
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        ),
        PubSubOp::NumSub(kind, names) => {
            let counts = ctx.pubsub.numsub(kind, &names);
            // A flat array, in RESP3 too.
            Reply::Array(
                names
                    .into_iter()
                    .zip(counts)
                    .flat_map(|(name, count)| [Reply::Bulk(name), Reply::Integer(count as i64)])
                    .collect(),
            )
        }
        PubSubOp::NumPat => Reply::Integer(ctx.pubsub.numpat() as i64),
        PubSubOp::Help => Reply::Array(HELP.iter().map(|line| Reply::Simple(line)).collect()),
    }
}

/// Where the confirmations of a (un)subscription go.
fn confirm_to(frames: &mut Vec<Reply>, protocol: Protocol, in_exec: bool) -> Confirm<'_> {
    if in_exec {
        Confirm::Replies(frames)
    } else {
        Confirm::Outbox(protocol)
    }
}

/// Shows the client's subscriptions in CLIENT LIST: the counts, and the
/// flag `P` while it has any.
pub fn show(session: &Session) {
    let Some(client) = &session.client else {
        return;
    };
    let mut state = lock(&client.state);
    let counts = session.pubsub.as_ref().map_or((0, 0, 0), |s| s.counts());
    state.subscriptions = counts;
    if counts != (0, 0, 0) {
        state.flags = "P";
    } else if state.flags == "P" {
        state.flags = "N";
    }
}

/// PUBSUB HELP's text, as Redis 7.0 gives it.
const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

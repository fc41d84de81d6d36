//! Replication commands: REPLICAOF, ROLE, WAIT, and what replicas send
//! their master: REPLCONF, PSYNC, SYNC.

use std::time::Duration;

use super::{parse_int, Context, Flags, Op, Session, Spec};
use crate::replication::{Capabilities, SyncRequest};
use crate::resp::{Args, Reply};

/// What REPLCONF says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplConf {
    /// `listening-port`, `capa`, `ip-address`: facts about the replica:
    /// its port, and what it understands (`capa eof`, `capa psync2`).
    Options(Option<u16>, Capabilities),
    /// `ACK <offset>`: how far the replica got (no reply).
    Ack(i64),
    /// `GETACK *`: the master asks for an ACK now (no reply but the ACK).
    GetAck,
}

/// The replication commands' rows of the table.
pub const COMMANDS: &[Spec] = &[REPLICAOF, SLAVEOF, ROLE, WAIT, REPLCONF, PSYNC, SYNC];

/// `REPLICAOF host port` / `REPLICAOF NO ONE`
pub const REPLICAOF: Spec = Spec {
    name: "replicaof",
    arity: 3,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::STALE)
        .and(Flags::NO_ASYNC_LOADING),
    keys: (0, 0, 0),
    summary: "Configure a server as replica of another, or promote it to a master.",
    since: "5.0.0",
    group: "server",
    parse: parse_replicaof,
    subcommands: &[],
};

/// `SLAVEOF`: the old name of REPLICAOF.
pub const SLAVEOF: Spec = Spec {
    name: "slaveof",
    summary: "Sets a Redis server as a replica of another, or promotes it to being a master.",
    since: "1.0.0",
    ..REPLICAOF
};

/// `ROLE`
pub const ROLE: Spec = Spec {
    name: "role",
    arity: 1,
    flags: Flags::NOSCRIPT
        .and(Flags::LOADING)
        .and(Flags::STALE)
        .and(Flags::FAST),
    keys: (0, 0, 0),
    summary: "Return the role of the instance in the context of replication",
    since: "2.8.12",
    group: "server",
    parse: |_| Ok(Op::Role),
    subcommands: &[],
};

/// `WAIT numreplicas timeout`
pub const WAIT: Spec = Spec {
    name: "wait",
    arity: 3,
    flags: Flags::NOSCRIPT,
    keys: (0, 0, 0),
    summary: "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
    since: "3.0.0",
    group: "generic",
    parse: |args| {
        // Redis reads numreplicas first, then the timeout.
        let needed = parse_int(&args[1])?;
        let timeout = match crate::resp::parse_int(&args[2]) {
            None => return Err(Reply::error("ERR timeout is not an integer or out of range")),
            Some(t) if t < 0 => return Err(Reply::error("ERR timeout is negative")),
            Some(t) => t,
        };
        Ok(Op::Wait { needed, timeout })
    },
    subcommands: &[],
};

/// `REPLCONF option value [option value ...]`
pub const REPLCONF: Spec = Spec {
    name: "replconf",
    arity: -1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::LOADING)
        .and(Flags::STALE)
        .and(Flags::ALLOW_BUSY),
    keys: (0, 0, 0),
    summary: "An internal command for configuring the replication stream",
    since: "3.0.0",
    group: "server",
    parse: parse_replconf,
    subcommands: &[],
};

/// `PSYNC replid offset`
pub const PSYNC: Spec = Spec {
    name: "psync",
    arity: -3,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::NO_ASYNC_LOADING)
        .and(Flags::NO_MULTI),
    keys: (0, 0, 0),
    summary: "Internal command used for replication",
    since: "2.8.0",
    group: "server",
    parse: |args| {
        let offset = parse_int(&args[2])?;
        let replid = args.into_iter().nth(1).unwrap_or_default();
        Ok(Op::Sync(SyncRequest {
            psync: Some((replid, offset)),
        }))
    },
    subcommands: &[],
};

/// `SYNC`: the full sync of replicas older than PSYNC.
pub const SYNC: Spec = Spec {
    name: "sync",
    arity: 1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::NO_ASYNC_LOADING)
        .and(Flags::NO_MULTI),
    keys: (0, 0, 0),
    summary: "Internal command used for replication",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Sync(SyncRequest { psync: None })),
    subcommands: &[],
};

fn parse_replicaof(args: Args) -> Result<Op, Reply> {
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        return Ok(Op::ReplicaOf(None));
    }
    let port = crate::resp::parse_int(&args[2])
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| Reply::error("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    Ok(Op::ReplicaOf(Some((host, port))))
}

fn parse_replconf(args: Args) -> Result<Op, Reply> {
    if args.len().is_multiple_of(2) {
        return Err(Reply::error("ERR syntax error"));
    }
    let mut listening_port = None;
    let mut capa = Capabilities::default();
    for pair in args[1..].chunks(2) {
        let (option, value) = (&pair[0], &pair[1]);
        match option.to_ascii_lowercase().as_slice() {
            b"listening-port" => {
                let port = parse_int(value)?;
                listening_port = Some(u16::try_from(port).unwrap_or(0));
            }
            b"ack" => return Ok(Op::ReplConf(ReplConf::Ack(parse_int(value)?))),
            b"getack" => return Ok(Op::ReplConf(ReplConf::GetAck)),
            b"capa" => {
                capa.eof |= value.eq_ignore_ascii_case(b"eof");
                capa.psync2 |= value.eq_ignore_ascii_case(b"psync2");
            }
            b"ip-address" | b"rdb-only" => {}
            _ => {
                let mut msg = b"ERR Unrecognized REPLCONF option: ".to_vec();
                msg.extend_from_slice(option);
                return Err(Reply::Error(msg));
            }
        }
    }
    Ok(Op::ReplConf(ReplConf::Options(listening_port, capa)))
}

/// Runs REPLICAOF.
pub fn replicaof(ctx: &Context, target: Option<(String, u16)>) -> Reply {
    match target {
        None => {
            ctx.replication.promote();
            Reply::ok()
        }
        // The replica supervisor (replica.rs) sees the change and starts
        // the link's thread.
        Some((host, port)) => match ctx.replication.follow(&host, port) {
            false => Reply::Simple("OK Already connected to specified master"),
            true => Reply::ok(),
        },
    }
}

/// Runs WAIT.
pub fn wait(ctx: &Context, session: &Session, needed: i64, timeout: i64) -> Reply {
    if ctx.replication.is_replica() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let timeout = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
    Reply::Integer(
        ctx.replication
            .wait(session.last_write_offset, needed, timeout),
    )
}

/// Runs WAIT inside a transaction: no waiting, just the count.
pub fn wait_now(ctx: &Context, session: &Session, needed: i64) -> Reply {
    if ctx.replication.is_replica() {
        return wait(ctx, session, needed, 0);
    }
    let count = ctx
        .replication
        .wait(session.last_write_offset, needed, Some(Duration::ZERO));
    Reply::Integer(count)
}

/// Runs REPLCONF's options: remember the replica's port, answer OK.
pub fn replconf(session: &mut Session, conf: ReplConf) -> Reply {
    if let ReplConf::Options(port, capa) = conf {
        session.listening_port = port.unwrap_or(session.listening_port);
        session.capa.eof |= capa.eof;
        session.capa.psync2 |= capa.psync2;
    }
    Reply::ok()
}

//! Running commands: which lock each takes, and what the connection must
//! do once it has run.
//!
//! Three kinds of command, by what they touch:
//!
//! - **Writes** (flagged `WRITE`) run under the databases' write lock, and
//!   their changes enter the replication stream before it is released.
//! - **Reads** of data (and INFO) run under the read lock; the caller
//!   takes it and hands them `&Databases`.
//! - **The rest** (connection, server, replication commands) touch no
//!   data: they get a [`Context`], which has no handle on the databases.
//!
//! EXEC runs the first two kinds under its one write lock and the third as
//! they are, so no command inside it can ask for the lock EXEC holds. Only
//! [`execute`], at the top, holds the `Db` handle: the few commands that
//! lock the databases themselves (WATCH, UNWATCH, DISCARD, SAVE, SHUTDOWN)
//! and WAIT, which blocks, run only from there.

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Instant;

use super::server::ServerOp;
use super::{
    acl, connection, databases, expire, hash_run, info, keys, list_run, object, pubsub,
    replication, server, set_run, string, transaction, Command, ConnOp, Context, Flags, Op,
    PubSubOp, ReplConf, Session,
};
use crate::db::{Change, Databases, Db};
use crate::persist::{Persistence, MISCONF};
use crate::pubsub::Kind;
use crate::replication::{Capabilities, SyncRequest};
use crate::resp::{Args, Protocol, Reply};
use crate::server::Server;
use crate::shutdown;
use crate::sync::lock;
use crate::time::unix_millis;

/// What the connection does after a request.
pub enum Outcome {
    /// Writes the reply and reads the next request.
    Reply(Reply),
    /// Writes the reply, then closes (QUIT).
    Close(Reply),
    /// Writes nothing (REPLCONF ACK on a client connection).
    Silent,
    /// Becomes a replica's link: the master's side of replication
    /// (`master.rs`) takes the socket over.
    ReplicaLink {
        /// How the replica asked to sync.
        request: SyncRequest,
        /// The port the replica said it listens on.
        listening_port: u16,
        /// What the replica understands (`REPLCONF capa`).
        capa: Capabilities,
    },
    /// Writes the reply, then streams the commands the server runs
    /// (MONITOR); they arrive on the receiver, already registered.
    Monitor(Reply, Receiver<Arc<[u8]>>),
}

/// Handles one request of a client: queues it inside MULTI, or parses it,
/// checks AUTH and runs it.
pub fn handle(args: Args, server: &Server, session: &mut Session) -> Outcome {
    // Inside MULTI most requests are queued, not run.
    let args = if session.multi.is_some() {
        match transaction::queue(server, session, args) {
            Ok(reply) => return Outcome::Reply(reply),
            Err(args) => args,
        }
    } else {
        args
    };
    let command = match Command::parse(args) {
        Ok(command) => command,
        Err(error) => return Outcome::Reply(error),
    };
    if let Some(client) = &session.client {
        // What CLIENT LIST shows. The lock is this client's own: no
        // other thread takes it but to list the clients.
        let mut state = lock(&client.state);
        state.last_command = command.spec.name;
        state.last_active = Instant::now();
        state.selected = session.selected;
    }
    if !session.authenticated && !command.spec.flags.has(Flags::NO_AUTH) {
        return Outcome::Reply(Reply::error("NOAUTH Authentication required."));
    }
    if session.in_subscribed_mode() {
        if let Some(error) = pubsub::refused_in_subscribed_mode(command.spec, &command.op) {
            return Outcome::Reply(error);
        }
    }
    execute(command, server, session)
}

/// Runs a command and says what the connection must do next.
///
/// The clock is read once, here: the whole command sees one `now`.
pub fn execute(command: Command, server: &Server, session: &mut Session) -> Outcome {
    let reply = match command.op {
        Op::Quit => return Outcome::Close(Reply::ok()),
        // ACKs and GETACKs get no reply on a client connection.
        Op::ReplConf(ReplConf::Ack(_) | ReplConf::GetAck) => return Outcome::Silent,
        Op::Sync(_) if server.replication.is_replica() => {
            Reply::error("ERR this replica cannot serve replicas of its own")
        }
        Op::Sync(request) => {
            if let Some(client) = &session.client {
                lock(&client.state).flags = "S";
            }
            return Outcome::ReplicaLink {
                request,
                listening_port: session.listening_port,
                capa: session.capa,
            };
        }
        op => run(op, command.spec.flags, server, session),
    };
    if session.monitor {
        // Registered before the +OK goes out, so that every command after
        // the client saw +OK reaches it.
        let (sender, lines) = mpsc::channel();
        server.clients.add_monitor(session.id, sender);
        if let Some(client) = &session.client {
            lock(&client.state).flags = "O";
        }
        return Outcome::Monitor(reply, lines);
    }
    Outcome::Reply(reply)
}

/// Runs a command at the top, where the `Db` handle is: picks the lock.
fn run(op: Op, flags: Flags, server: &Server, session: &mut Session) -> Reply {
    let now = unix_millis();
    let ctx = Context::of(server);
    let db = &server.db;
    if refused_by_disk(flags, &op, &server.persistence) {
        return Reply::error(MISCONF);
    }
    // A write the log cannot take would be acknowledged and then lost.
    if flags.has(Flags::WRITE) {
        if let Some(refusal) = server.aof.refusal() {
            return Reply::error(refusal);
        }
    }
    match op {
        Op::Exec => {
            let _writes = shutdown::hold_writes();
            let reply = transaction::exec(server, &ctx, session, now);
            // Into the kernel before the reply (see aof/).
            server.aof.write_out();
            return reply;
        }
        Op::Discard => return transaction::discard(db, session),
        Op::Watch(keys) => return transaction::watch(db, session, keys, now),
        Op::Unwatch => return transaction::unwatch(db, session),
        Op::Conn(ConnOp::Reset) => return reset(server, session),
        Op::PubSub(PubSubOp::Publish(kind, channel, message)) => {
            return publish(server, session, kind, channel, message)
        }
        Op::Server(ServerOp::Save) => return server::save(&server.persistence, db),
        Op::Server(ServerOp::Shutdown(flags)) => {
            return Reply::error(shutdown::shutdown(server, flags))
        }
        Op::Wait { needed, timeout } => return replication::wait(&ctx, session, needed, timeout),
        _ => {}
    }
    let replica = server.replication.is_replica();
    if flags.has(Flags::WRITE) {
        if replica {
            return Reply::error("READONLY You can't write against a read only replica.");
        }
        // No write starts once a shutdown has (see shutdown.rs).
        let _writes = shutdown::hold_writes();
        let mut dbs = db.write();
        server.pubsub.watch_keyspace(&mut dbs);
        let reply = apply_write(op, &mut dbs, session.selected, now);
        server.pubsub.publish_keyspace_events(&mut dbs);
        // A command that made several changes (MSET, a write that first
        // deleted an expired key) reaches replicas as one transaction.
        if let Some(offset) = server.replication.propagate(&mut dbs, true) {
            session.last_write_offset = offset;
        }
        drop(dbs);
        // Into the kernel before the reply (see aof/).
        server.aof.write_out();
        return reply;
    }
    let op = match apply_plain(op, &ctx, session, false) {
        Ok(reply) => return reply,
        Err(op) => op,
    };
    let (reply, found_stale) = {
        let dbs = db.read();
        let reply = apply_read(op, &dbs, &ctx, session.selected, now);
        (reply, dbs[session.selected].has_stale())
    };
    // The read met expired keys it could not delete under the read lock.
    // Only a master deletes them; a replica waits for its master's DEL,
    // and only forgets them.
    if found_stale {
        let mut dbs = db.write();
        if replica {
            dbs[session.selected].forget_stale();
        } else {
            server.pubsub.watch_keyspace(&mut dbs);
            dbs[session.selected].purge_stale(now);
            server.pubsub.publish_keyspace_events(&mut dbs);
            server.replication.propagate(&mut dbs, false);
        }
    }
    reply
}

/// Must this command be refused with MISCONF, because background saves
/// fail? Redis refuses every write, and PING too: a health check must
/// notice that the server cannot keep what it is told.
pub(super) fn refused_by_disk(flags: Flags, op: &Op, persistence: &Persistence) -> bool {
    (flags.has(Flags::WRITE) || matches!(op, Op::Conn(ConnOp::Ping(_))))
        && persistence.refuses_writes()
}

/// Runs the commands that touch no data; hands any other `op` back.
/// `in_exec` is true inside EXEC, where WAIT must answer at once.
pub(super) fn apply_plain(
    op: Op,
    ctx: &Context,
    session: &mut Session,
    in_exec: bool,
) -> Result<Reply, Op> {
    Ok(match op {
        Op::Conn(op) => connection::run(op, ctx, session),
        Op::Server(op) => server::run(op, ctx, session, in_exec).map_err(Op::Server)?,
        // Handled by `execute`; only reached inside EXEC, where it does nothing.
        Op::Quit => Reply::ok(),
        Op::Role => ctx.replication.role_reply(),
        Op::Acl(op) => acl::run(op, ctx),
        Op::PubSub(op) => pubsub::run(op, ctx, session, in_exec),
        Op::ReplicaOf(target) => replication::replicaof(ctx, target),
        Op::Wait { needed, .. } => replication::wait_now(ctx, session, needed),
        Op::ReplConf(conf) => replication::replconf(session, conf),
        Op::Multi => transaction::multi(session),
        // With no key watched, there is nothing to lock. (EXEC has already
        // forgotten the watched keys when an UNWATCH inside it runs.)
        Op::Unwatch if session.watch.is_none() => Reply::ok(),
        Op::Sync(_) => Reply::error("ERR Command not allowed here"),
        op => return Err(op),
    })
}

/// Applies writes that came down the replication stream, in database
/// `selected` (the last SELECT the master sent). It skips the READONLY
/// check, and no key counts as expired: only the master decides that, and
/// it sends a DEL when it does. Several ops (a transaction) are applied
/// under one lock.
pub fn apply_from_master(ops: Vec<Op>, db: &Db, selected: usize) {
    let mut dbs = db.write();
    for op in ops {
        apply_write(op, &mut dbs, selected, i64::MIN);
    }
    // A replica records nothing for replicas of its own (see `Keyspace`).
    dbs.take_changes();
}

/// A connection ends: its watched keys and its subscriptions are
/// forgotten, and its outbox (if it has one) takes no more messages.
pub fn end_session(server: &Server, session: &mut Session) {
    transaction::unwatch(&server.db, session);
    if let Some(subs) = &mut session.pubsub {
        server.pubsub.forget(subs);
        subs.outbox().finish();
    }
}

/// PUBLISH and SPUBLISH: delivers the message here, and sends the command
/// to the replicas, which deliver it to their own subscribers (Redis does
/// both; it keeps PUBLISH out of the AOF).
fn publish(
    server: &Server,
    session: &mut Session,
    kind: Kind,
    channel: Vec<u8>,
    message: Vec<u8>,
) -> Reply {
    let receivers = server.pubsub.publish(kind, &channel, &message);
    // The databases' lock is taken only when there are replicas to tell.
    let recording = server.db.read().is_recording();
    if recording && !server.replication.is_replica() {
        let mut dbs = server.db.write();
        dbs.record(publish_change(kind, session.selected, channel, message));
        if let Some(offset) = server.replication.propagate(&mut dbs, false) {
            session.last_write_offset = offset;
        }
    }
    Reply::Integer(receivers as i64)
}

/// PUBLISH or SPUBLISH as the replicas replay it, in database `selected`.
pub(super) fn publish_change(
    kind: Kind,
    selected: usize,
    channel: Vec<u8>,
    message: Vec<u8>,
) -> Change {
    let name: &[u8] = if kind == Kind::Shard {
        b"SPUBLISH"
    } else {
        b"PUBLISH"
    };
    Change {
        index: Some(selected),
        args: vec![name.to_vec(), channel, message],
    }
}

/// RESET: the connection as it was when it connected: no transaction,
/// no watched keys, no subscriptions, database 0, RESP2, no name, and
/// logged out if there is a password.
fn reset(server: &Server, session: &mut Session) -> Reply {
    session.multi = None;
    session.multi_failed = false;
    transaction::unwatch(&server.db, session);
    if let Some(subs) = &mut session.pubsub {
        server.pubsub.forget(subs);
    }
    pubsub::show(session);
    session.selected = 0;
    session.protocol = Protocol::Resp2;
    if let Some(subs) = &session.pubsub {
        subs.outbox().set_protocol(Protocol::Resp2);
    }
    session.authenticated = server.settings.requirepass().is_empty();
    if let Some(client) = &session.client {
        let mut state = lock(&client.state);
        state.name.clear();
        state.resp = 2;
        state.selected = 0;
    }
    Reply::Simple("RESET")
}

/// Runs a command that only reads, in database `selected`, under the
/// caller's read (or write) lock.
pub(super) fn apply_read(
    op: Op,
    dbs: &Databases,
    ctx: &Context,
    selected: usize,
    now: i64,
) -> Reply {
    match op {
        Op::Str(op) => string::read(op, &dbs[selected], now),
        Op::List(op) => list_run::read(op, &dbs[selected], now),
        Op::Hash(op) => hash_run::read(op, &dbs[selected], now),
        Op::Set(op) => set_run::read(op, &dbs[selected], now),
        Op::Object(op) => object::read(op, &dbs[selected], now),
        Op::Key(op) => keys::read(op, dbs, selected, now),
        Op::Expire(op) => expire::read(op, &dbs[selected], now),
        Op::Databases(op) => databases::read(op, dbs, selected),
        Op::Server(ServerOp::Info(sections)) => {
            Reply::Bulk(info::info(ctx, dbs, &sections).into_bytes())
        }
        _ => Reply::error("ERR command run in the wrong place"),
    }
}

/// Runs a command that may write, in database `selected`, under the
/// caller's write lock.
pub(super) fn apply_write(op: Op, dbs: &mut Databases, selected: usize, now: i64) -> Reply {
    match op {
        Op::Str(op) => string::write(op, &mut dbs[selected], now),
        Op::List(op) => list_run::write(op, &mut dbs[selected], now),
        Op::Hash(op) => hash_run::write(op, &mut dbs[selected], now),
        Op::Set(op) => set_run::write(op, &mut dbs[selected], now),
        Op::Key(op) => keys::write(op, dbs, selected, now),
        Op::Expire(op) => expire::write(op, &mut dbs[selected], now),
        Op::Databases(op) => databases::write(op, dbs, selected),
        _ => Reply::error("ERR command run in the wrong place"),
    }
}

//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! After MULTI a connection queues its commands instead of running them.
//! EXEC runs the whole queue under one write lock, so no other client's
//! command can run in between, and sends the changes to the replicas
//! wrapped in MULTI ... EXEC, so they apply them as one step too.
//!
//! There is no rollback: a command that fails inside EXEC (say, INCR on a
//! non-number) returns its error in its slot of the reply, and the others
//! still run. Only mistakes caught while queueing (an unknown command, a
//! wrong number of arguments) cancel the whole transaction.
//!
//! WATCH is optimistic locking: EXEC does nothing, and replies with a null
//! array, if any watched key changed after WATCH. The keyspace raises the
//! connection's flag whenever it changes a watched key (see `Keyspace::watch`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::execute::{apply_plain, apply_read, apply_write, publish_change};
use super::{check, rest, Command, Context, Flags, Op, PubSubOp, Session, Spec};
use crate::db::{Databases, Db};
use crate::persist::MISCONF;
use crate::resp::{Args, Reply};
use crate::server::Server;

/// The keys a connection watches, and the flag the keyspace raises when
/// one of them changes.
#[derive(Debug, Default)]
pub struct Watch {
    dirty: Arc<AtomicBool>,
    /// Each key with its database's index, and whether it existed when watched.
    keys: Vec<(usize, Vec<u8>, bool)>,
}

/// Builds the row of a transaction command: none takes a key or writes.
macro_rules! transaction_spec {
    ($name:literal, $arity:expr, $summary:literal, $since:literal, $op:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: Flags::NOSCRIPT
                .and(Flags::LOADING)
                .and(Flags::STALE)
                .and(Flags::FAST)
                .and(Flags::ALLOW_BUSY),
            keys: (0, 0, 0),
            summary: $summary,
            since: $since,
            group: "transactions",
            parse: $op,
            subcommands: &[],
        }
    };
}

/// The transaction commands' rows of the table.
pub const COMMANDS: &[Spec] = &[MULTI, EXEC, DISCARD, WATCH, UNWATCH];

/// `MULTI`
pub const MULTI: Spec = transaction_spec!(
    "multi",
    1,
    "Mark the start of a transaction block",
    "1.2.0",
    |_| Ok(Op::Multi)
);
/// `EXEC`
pub const EXEC: Spec = transaction_spec!(
    "exec",
    1,
    "Execute all commands issued after MULTI",
    "1.2.0",
    |_| Ok(Op::Exec)
);
/// `DISCARD`
pub const DISCARD: Spec = transaction_spec!(
    "discard",
    1,
    "Discard all commands issued after MULTI",
    "2.0.0",
    |_| Ok(Op::Discard)
);
/// `WATCH key [key ...]`
pub const WATCH: Spec = Spec {
    keys: (1, -1, 1),
    ..transaction_spec!(
        "watch",
        -2,
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        "2.2.0",
        |args| Ok(Op::Watch(rest(args, 1)))
    )
};
/// `UNWATCH`
pub const UNWATCH: Spec = transaction_spec!(
    "unwatch",
    1,
    "Forget about all watched keys",
    "2.2.0",
    |_| Ok(Op::Unwatch)
);

/// Inside MULTI, queues a request instead of running it: `Ok` holds the
/// reply (`+QUEUED`, or an error that also dooms the transaction). The
/// commands that control the transaction itself come back as `Err`, to run
/// at once. Outside MULTI everything comes back.
pub fn queue(server: &Server, session: &mut Session, args: Args) -> Result<Reply, Args> {
    let Some(queued) = &mut session.multi else {
        return Err(args);
    };
    let spec = match check(&args) {
        Ok(spec) => spec,
        // A malformed EXEC ends the transaction there and then.
        Err(Reply::Error(error)) if args[0].eq_ignore_ascii_case(b"exec") => {
            session.multi = None;
            session.multi_failed = false;
            unwatch(&server.db, session);
            let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
            msg.extend_from_slice(error.strip_prefix(b"ERR ").unwrap_or(&error));
            return Ok(Reply::Error(msg));
        }
        Err(error) => {
            session.multi_failed = true;
            return Ok(error);
        }
    };
    if ["exec", "discard", "multi", "watch", "quit"].contains(&spec.name) {
        return Err(args);
    }
    let refusal = if spec.flags.has(Flags::NO_MULTI) {
        Some("ERR Command not allowed inside a transaction")
    } else if (spec.is_write() || spec.name == "ping") && server.persistence.refuses_writes() {
        Some(MISCONF)
    } else if spec.is_write() && server.replication.is_replica() {
        Some("READONLY You can't write against a read only replica.")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        session.multi_failed = true;
        return Ok(Reply::error(refusal));
    }
    // Only the name and arity are checked now; the rest of the parsing
    // happens in EXEC, as in Redis, so a syntax error fails one command
    // rather than the whole transaction.
    queued.push(args);
    Ok(Reply::Simple("QUEUED"))
}

/// Runs MULTI.
pub fn multi(session: &mut Session) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    session.multi = Some(Vec::new());
    Reply::ok()
}

/// Runs DISCARD.
pub fn discard(db: &Db, session: &mut Session) -> Reply {
    if session.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    session.multi_failed = false;
    unwatch(db, session);
    Reply::ok()
}

/// Runs EXEC: the whole queue under one write lock. The commands get the
/// locked databases and `ctx`, never the `Db` handle: none of them can
/// ask for the lock again.
pub fn exec(server: &Server, ctx: &Context, session: &mut Session, now: i64) -> Reply {
    let Some(queued) = session.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let watch = session.watch.take();
    let mut dbs = server.db.write();
    if let Some(watch) = &watch {
        watch.forget(&mut dbs);
    }
    if std::mem::take(&mut session.multi_failed) {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    // The writes were queued before a background save failed: Redis
    // refuses the whole transaction.
    let writes = |args: &Args| check(args).is_ok_and(|spec| spec.is_write() || spec.name == "ping");
    if queued.iter().any(writes) && ctx.persistence.refuses_writes() {
        return Reply::error(format!(
            "EXECABORT Transaction discarded because of: {MISCONF}"
        ));
    }
    if watch.is_some_and(|watch| watch.changed(&dbs, now)) {
        return Reply::NilArray;
    }
    let replica = ctx.replication.is_replica();
    ctx.pubsub.watch_keyspace(&mut dbs);
    let mut replies = Vec::with_capacity(queued.len());
    for args in queued {
        replies.push(match Command::parse(args) {
            Err(error) => error,
            Ok(command) if command.spec.flags.has(Flags::WRITE) => {
                if replica {
                    Reply::error("READONLY You can't write against a read only replica.")
                } else {
                    apply_write(command.op, &mut dbs, session.selected, now)
                }
            }
            // Delivered now, and replayed on the replicas with the rest.
            Ok(Command {
                op: Op::PubSub(PubSubOp::Publish(kind, channel, message)),
                ..
            }) => {
                let receivers = ctx.pubsub.publish(kind, &channel, &message);
                if !replica {
                    dbs.record(publish_change(kind, session.selected, channel, message));
                }
                Reply::Integer(receivers as i64)
            }
            Ok(command) => match apply_plain(command.op, ctx, session, true) {
                Ok(reply) => reply,
                Err(op) => apply_read(op, &dbs, ctx, session.selected, now),
            },
        });
        // Collected after each command, so that a SELECT in the middle of
        // the transaction keeps the changes in order.
        dbs.collect_changes();
        ctx.pubsub.publish_keyspace_events(&mut dbs);
    }
    if let Some(offset) = ctx.replication.propagate(&mut dbs, true) {
        session.last_write_offset = offset;
    }
    Reply::Array(replies)
}

/// Runs WATCH.
pub fn watch(db: &Db, session: &mut Session, keys: Vec<Vec<u8>>, now: i64) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let mut dbs = db.write();
    let keyspace = &mut dbs[session.selected];
    let watch = session.watch.get_or_insert_with(Watch::default);
    for key in keys {
        let exists = keyspace.get(&key, now).is_some();
        keyspace.watch(&key, &watch.dirty);
        watch.keys.push((session.selected, key, exists));
    }
    Reply::ok()
}

/// Runs UNWATCH, and forgets the watched keys of a connection that ends.
pub fn unwatch(db: &Db, session: &mut Session) -> Reply {
    if let Some(watch) = session.watch.take() {
        watch.forget(&mut db.write());
    }
    Reply::ok()
}

impl Watch {
    /// Did a watched key change since WATCH? A change raised the flag; a
    /// key that existed then and has expired since (but is not deleted
    /// yet) counts as changed too.
    fn changed(&self, dbs: &Databases, now: i64) -> bool {
        self.dirty.load(Ordering::SeqCst)
            || self
                .keys
                .iter()
                .any(|(index, key, existed)| *existed && dbs[*index].get(key, now).is_none())
    }

    /// Stops watching every key.
    fn forget(&self, dbs: &mut Databases) {
        for (index, key, _) in &self.keys {
            dbs[*index].unwatch(key, &self.dirty);
        }
    }
}

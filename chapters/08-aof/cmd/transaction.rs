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

use super::{apply_server, apply_write, check, Command, Flags, Held, Op, Session, Spec};
use crate::resp::Reply;
use crate::server::Server;

/// The keys a connection watches, and the flag the keyspace raises when
/// one of them changes.
#[derive(Debug, Default)]
pub struct Watch {
    dirty: Arc<AtomicBool>,
    /// Each key, and whether it existed when it was watched.
    keys: Vec<(Vec<u8>, bool)>,
}

/// Builds the row of a transaction command: none takes a key or writes.
macro_rules! transaction_spec {
    ($name:literal, $arity:expr, $summary:literal, $since:literal, $op:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: Flags::of(&[
                Flags::NOSCRIPT,
                Flags::LOADING,
                Flags::STALE,
                Flags::FAST,
                Flags::ALLOW_BUSY,
            ]),
            keys: (0, 0, 0),
            summary: $summary,
            since: $since,
            group: "transactions",
            parse: $op,
            subcommands: &[],
        }
    };
}

/// `MULTI`
pub const MULTI: Spec = transaction_spec!(
    "multi",
    1,
    "Mark the start of a transaction block",
    "1.2.0",
    |_| Ok(Op::Multi)
);
/// `EXEC`: its flags are not quite the others'.
pub const EXEC: Spec = Spec {
    flags: Flags::of(&[
        Flags::NOSCRIPT,
        Flags::LOADING,
        Flags::STALE,
        Flags::SKIP_SLOWLOG,
    ]),
    ..transaction_spec!(
        "exec",
        1,
        "Execute all commands issued after MULTI",
        "1.2.0",
        |_| Ok(Op::Exec)
    )
};
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
        |args| Ok(Op::Watch(args.into_iter().skip(1).collect()))
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
pub fn queue(
    server: &Server,
    session: &mut Session,
    args: Vec<Vec<u8>>,
) -> Result<Reply, Vec<Vec<u8>>> {
    let Some(queued) = &mut session.multi else {
        return Err(args);
    };
    let spec = match check(&args) {
        Ok(spec) => spec,
        // A malformed EXEC ends the transaction there and then.
        Err(Reply::Error(error)) if args[0].eq_ignore_ascii_case(b"exec") => {
            session.multi = None;
            session.multi_failed = false;
            unwatch(server, session);
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
    let refusal = if spec.flags.contains(Flags::NO_MULTI) {
        Some("ERR Command not allowed inside a transaction".to_string())
    } else if spec.is_write() && server.replication.is_replica() {
        Some("READONLY You can't write against a read only replica.".to_string())
    } else if spec.is_write() {
        server.aof.refusal()
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
pub fn discard(server: &Server, session: &mut Session) -> Reply {
    if session.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    session.multi_failed = false;
    unwatch(server, session);
    Reply::ok()
}

/// Runs EXEC: the whole queue under one write lock.
pub fn exec(server: &Server, session: &mut Session, now: i64) -> Reply {
    let Some(queued) = session.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let watch = session.watch.take();
    let mut keyspace = server.db.write();
    if let Some(watch) = &watch {
        for (key, _) in &watch.keys {
            keyspace.unwatch(key, &watch.dirty);
        }
    }
    if std::mem::take(&mut session.multi_failed) {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    if watch.is_some_and(|watch| watch.changed(&keyspace, now)) {
        return Reply::NilArray;
    }
    let replica = server.replication.is_replica();
    let mut replies = Vec::with_capacity(queued.len());
    for args in queued {
        replies.push(match Command::parse(args) {
            Err(error) => error,
            Ok(command) if command.spec.is_write() && replica => {
                Reply::error("READONLY You can't write against a read only replica.")
            }
            // Server commands get the keyspace we hold, and must not block.
            Ok(command) => {
                match apply_server(command.op, server, session, Held::Keyspace(&mut keyspace)) {
                    Ok(reply) => reply,
                    Err(op) => apply_write(op, &mut keyspace, now),
                }
            }
        });
    }
    if keyspace.wrap_changes_in_multi() {
        session.last_write_offset = server.replication.propagate(&mut keyspace);
    }
    drop(keyspace);
    // Into the kernel before the reply (see aof.rs).
    server.aof.write_out();
    Reply::Array(replies)
}

/// Runs WATCH.
pub fn watch(server: &Server, session: &mut Session, keys: Vec<Vec<u8>>, now: i64) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let mut keyspace = server.db.write();
    let watch = session.watch.get_or_insert_with(Watch::default);
    for key in keys {
        let exists = keyspace.get(&key, now).is_some();
        keyspace.watch(&key, &watch.dirty);
        watch.keys.push((key, exists));
    }
    Reply::ok()
}

/// Runs UNWATCH, and forgets the watched keys of a connection that ends.
pub fn unwatch(server: &Server, session: &mut Session) -> Reply {
    if let Some(watch) = session.watch.take() {
        let mut keyspace = server.db.write();
        for (key, _) in &watch.keys {
            keyspace.unwatch(key, &watch.dirty);
        }
    }
    Reply::ok()
}

impl Watch {
    /// Did a watched key change since WATCH? A change raised the flag; a
    /// key that existed then and has expired since (but is not deleted
    /// yet) counts as changed too.
    fn changed(&self, keyspace: &crate::db::Keyspace, now: i64) -> bool {
        self.dirty.load(Ordering::SeqCst)
            || self
                .keys
                .iter()
                .any(|(key, existed)| *existed && keyspace.get(key, now).is_none())
    }
}

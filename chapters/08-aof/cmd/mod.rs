//! Commands: the table that describes them, parsing a request into a typed
//! [`Command`], and running it against the keyspace.
//!
//! As in Redis, what the server knows about each command is data: one row
//! of [`TABLE`] gives its name, arity, flags and parser. The arity check,
//! the unknown-command error and `COMMAND COUNT` all read the table, so
//! adding a command is one row plus one function.

mod connection;
mod expire;
mod flags;
mod keys;
mod replication;
mod server;
mod string;
mod transaction;

pub use flags::Flags;
pub use replication::ReplConf;
pub use transaction::{queue, unwatch};

use crate::db::{Db, Keyspace};
use crate::expire::unix_millis;
use crate::master::SyncRequest;
use crate::resp::{self, Args, Reply};
use crate::server::Server;

/// One request, parsed and checked, ready to run.
#[derive(Debug, Clone)]
pub struct Command {
    /// The command's row in the table: its name and flags.
    pub spec: &'static Spec,
    /// What to do, with the arguments in typed form.
    pub op: Op,
}

/// The operation a command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `PING [message]`
    Ping(Option<Vec<u8>>),
    /// `ECHO message`
    Echo(Vec<u8>),
    /// `QUIT`: the connection replies `+OK` and closes.
    Quit,
    /// `COMMAND` and its subcommands.
    Describe(server::CommandInfo),
    /// `GET key`
    Get(Vec<u8>),
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT time|KEEPTTL]`
    Set(string::SetArgs),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add to the integer at a key.
    IncrBy(Vec<u8>, i64),
    /// `DEL key [key ...]`
    Del(Vec<Vec<u8>>),
    /// `EXISTS key [key ...]`
    Exists(Vec<Vec<u8>>),
    /// `DBSIZE`
    DbSize,
    /// `FLUSHDB` and `FLUSHALL`: with one database, the same thing.
    Flush,
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`
    Expire(expire::ExpireArgs),
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`
    Ttl(Vec<u8>, expire::TtlForm),
    /// `PERSIST key`
    Persist(Vec<u8>),
    /// `INFO [section ...]`
    Info(Vec<Vec<u8>>),
    /// `ROLE`
    Role,
    /// `REPLICAOF host port`, or `REPLICAOF NO ONE` (`None`).
    ReplicaOf(Option<(String, u16)>),
    /// `REPLCONF ...`, from a replica to its master or back.
    ReplConf(ReplConf),
    /// `PSYNC` or `SYNC`: the connection becomes a replica's link.
    Sync(SyncRequest),
    /// `WAIT numreplicas timeout`
    Wait {
        /// How many replicas must acknowledge.
        needed: i64,
        /// Milliseconds; 0 waits forever.
        timeout: i64,
    },
    /// `MULTI`
    Multi,
    /// `EXEC`
    Exec,
    /// `DISCARD`
    Discard,
    /// `WATCH key [key ...]`
    Watch(Vec<Vec<u8>>),
    /// `UNWATCH`
    Unwatch,
    /// `SAVE`
    Save,
    /// `BGSAVE`
    BgSave,
    /// `LASTSAVE`
    LastSave,
    /// `SHUTDOWN [NOSAVE|SAVE]`: `Some(false)` for NOSAVE, `Some(true)` for SAVE.
    Shutdown(Option<bool>),
    /// `CONFIG GET parameter [parameter ...]`
    ConfigGet(Vec<Vec<u8>>),
    /// `CONFIG SET parameter value [parameter value ...]`
    ConfigSet(Vec<(Vec<u8>, Vec<u8>)>),
    /// `BGREWRITEAOF`
    BgRewriteAof,
}

/// What a command may know and change about the connection it came from.
#[derive(Debug, Default)]
pub struct Session {
    /// The replication offset after this client's last write: WAIT waits
    /// for replicas to reach it.
    pub last_write_offset: i64,
    /// The port a replica said it listens on (REPLCONF listening-port).
    pub listening_port: u16,
    /// Did the replica say `REPLCONF capa psync2`? Then +CONTINUE names
    /// the replication id.
    pub psync2: bool,
    /// Inside MULTI: the requests queued for EXEC.
    pub multi: Option<Vec<Args>>,
    /// Did a request fail while queueing? Then EXEC refuses to run.
    pub multi_failed: bool,
    /// The keys WATCH watches.
    pub watch: Option<transaction::Watch>,
}

/// A command's row in the table.
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name, as errors and `COMMAND` show it; a subcommand's
    /// name includes its container's, as in `command|count`.
    pub name: &'static str,
    /// Argument count including the name; negative means "at least -arity".
    pub arity: i64,
    /// Redis's flags, as `COMMAND INFO` lists them. `write` decides
    /// which lock the command takes.
    pub flags: Flags,
    /// Key positions (first, last, step), as `COMMAND INFO` reports them:
    /// `(1, 1, 1)` is "the first argument is a key", `(1, -1, 1)` "all are".
    pub keys: (i64, i64, i64),
    /// One-line description for `COMMAND DOCS`.
    pub summary: &'static str,
    /// The Redis version that introduced the command.
    pub since: &'static str,
    /// Redis's command group for `COMMAND DOCS`.
    pub group: &'static str,
    /// Turns the arguments (name included, arity already checked) into a command.
    pub parse: fn(Vec<Vec<u8>>) -> Result<Op, Reply>,
    /// Subcommands, for container commands such as `COMMAND`.
    pub subcommands: &'static [Spec],
}

/// Every command this server knows.
pub static TABLE: &[Spec] = &[
    connection::PING,
    connection::ECHO,
    connection::QUIT,
    server::COMMAND,
    server::DBSIZE,
    server::FLUSHDB,
    server::FLUSHALL,
    string::GET,
    string::SET,
    string::INCR,
    string::DECR,
    string::INCRBY,
    string::DECRBY,
    keys::DEL,
    keys::EXISTS,
    expire::EXPIRE,
    expire::PEXPIRE,
    expire::EXPIREAT,
    expire::PEXPIREAT,
    expire::TTL,
    expire::PTTL,
    expire::EXPIRETIME,
    expire::PEXPIRETIME,
    expire::PERSIST,
    server::INFO,
    server::SAVE,
    server::BGSAVE,
    server::BGREWRITEAOF,
    server::LASTSAVE,
    server::SHUTDOWN,
    server::CONFIG,
    replication::REPLICAOF,
    replication::SLAVEOF,
    replication::ROLE,
    replication::WAIT,
    replication::REPLCONF,
    replication::PSYNC,
    replication::SYNC,
    transaction::MULTI,
    transaction::EXEC,
    transaction::DISCARD,
    transaction::WATCH,
    transaction::UNWATCH,
];

impl Spec {
    /// Does the command change data? Writers take the write lock.
    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
    }
}

impl Command {
    /// Parses a request (a non-empty argument list): finds the command in
    /// the table, checks its arity, then lets its own parser finish the job.
    /// Every client mistake comes back as the error reply Redis would send.
    pub fn parse(args: Vec<Vec<u8>>) -> Result<Command, Reply> {
        let spec = check(&args)?;
        let op = (spec.parse)(args)?;
        Ok(Command { spec, op })
    }
}

/// The first half of parsing: finds the command and checks its arity.
/// MULTI queues a request after this check alone.
pub fn check(args: &[Vec<u8>]) -> Result<&'static Spec, Reply> {
    let spec = lookup(args)?;
    let argc = args.len() as i64;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    Ok(spec)
}

/// Runs a command and returns its reply. Commands flagged `write` run
/// under the write lock; all others share the read lock. The lock is
/// released before the caller writes the reply to the socket.
///
/// The clock is read once, here: the whole command sees one `now`.
pub fn execute(command: Command, server: &Server, session: &mut Session) -> Reply {
    let now = unix_millis();
    let replica = server.replication.is_replica();
    if command.spec.is_write() {
        if replica {
            return Reply::error("READONLY You can't write against a read only replica.");
        }
        // A write the log cannot take would be acknowledged and then lost.
        if let Some(refusal) = server.aof.refusal() {
            return Reply::error(refusal);
        }
        let mut keyspace = server.db.write();
        let reply = apply_write(command.op, &mut keyspace, now);
        // Into the stream while the write lock is still held (`propagate`
        // asks for it): the order of the stream is the order in which
        // changes were applied.
        session.last_write_offset = server.replication.propagate(&mut keyspace);
        drop(keyspace);
        // Into the kernel before the reply (see aof.rs).
        server.aof.write_out();
        return reply;
    }
    let op = match apply_server(command.op, server, session, Held::Nothing(&server.db)) {
        Ok(reply) => return reply,
        Err(op) => op,
    };
    let (reply, found_stale) = {
        let keyspace = server.db.read();
        let reply = apply_read(op, &keyspace, now);
        (reply, keyspace.has_stale())
    };
    // The read met expired keys it could not delete under the read lock.
    // Only a master deletes them; a replica waits for its master's DEL,
    // and only forgets them.
    if found_stale {
        let mut keyspace = server.db.write();
        if replica {
            keyspace.forget_stale();
        } else {
            keyspace.purge_stale(now);
            server.replication.propagate(&mut keyspace);
        }
    }
    reply
}

/// What the caller of a server command already holds.
///
/// A command on its own holds nothing: a server command that needs the
/// keyspace locks it, and WAIT may block. EXEC holds the keyspace's write
/// lock for the whole transaction. A server command it runs must use that
/// keyspace, since locking it again would wait forever (the lock is not
/// reentrant), and must not block, since every other client waits for the
/// lock. Saying which case it is with a type, rather than a flag and a
/// comment, leaves nothing to get wrong: inside EXEC the only keyspace at
/// hand is the locked one.
enum Held<'a> {
    /// Nothing is locked; this is the keyspace to lock if needed.
    Nothing(&'a Db),
    /// EXEC's write lock, through the keyspace it guards.
    Keyspace(&'a mut Keyspace),
}

/// Runs the commands that concern the server or the connection rather
/// than the data; hands any other `op` back. `held` is what the caller
/// holds (see [`Held`]).
fn apply_server(
    op: Op,
    server: &Server,
    session: &mut Session,
    held: Held<'_>,
) -> Result<Reply, Op> {
    let now = unix_millis();
    let in_exec = matches!(held, Held::Keyspace(_));
    Ok(match op {
        Op::Info(sections) => match held {
            Held::Keyspace(keyspace) => server::info(server, keyspace, &sections),
            Held::Nothing(db) => server::info(server, &db.read(), &sections),
        },
        Op::Role => server.replication.role_reply(),
        Op::ReplicaOf(target) => replication::replicaof(server, target),
        Op::Wait { needed, timeout } if !in_exec => {
            replication::wait(server, session, needed, timeout)
        }
        Op::Wait { needed, .. } => replication::wait_now(server, session, needed),
        Op::ReplConf(conf) => replication::replconf(session, conf),
        Op::Multi => transaction::multi(session),
        Op::Exec => transaction::exec(server, session, now),
        Op::Discard => transaction::discard(server, session),
        Op::Watch(keys) => transaction::watch(server, session, keys, now),
        Op::Unwatch => transaction::unwatch(server, session),
        Op::Save => server::save(server),
        Op::BgSave => server::bgsave(server, in_exec),
        Op::LastSave => Reply::Integer(server.persistence.last_save()),
        Op::Shutdown(save) => Reply::error(crate::persist::shutdown(server, save)),
        Op::ConfigGet(patterns) => server::config_get(server, &patterns),
        Op::ConfigSet(pairs) => server::config_set(server, &pairs),
        Op::BgRewriteAof => server::bgrewriteaof(server),
        op => return Err(op),
    })
}

/// Applies a write that came down the replication stream. It skips the
/// READONLY check, and no key counts as expired: only the master decides
/// that, and it sends a DEL when it does.
/// Several ops (a transaction) are applied under one lock.
pub fn apply_from_master(ops: Vec<Op>, server: &Server) {
    let mut keyspace = server.db.write();
    for op in ops {
        apply_write(op, &mut keyspace, i64::MIN);
    }
    // Into the AOF, if it is on (a replica feeds no replicas of its own).
    keyspace.wrap_changes_in_multi();
    server.replication.propagate(&mut keyspace);
    drop(keyspace);
    server.aof.write_out();
}

/// Runs a command that only reads.
fn apply_read(op: Op, keyspace: &Keyspace, now: i64) -> Reply {
    match op {
        Op::Ping(message) => connection::ping(message),
        Op::Echo(message) => Reply::Bulk(message),
        // The connection handles QUIT itself: closing is its business.
        Op::Quit => Reply::ok(),
        Op::Describe(info) => server::command(info),
        Op::Get(key) => string::get(keyspace, &key, now),
        Op::Exists(keys) => keys::exists(keyspace, &keys, now),
        Op::DbSize => Reply::Integer(keyspace.len() as i64),
        Op::Ttl(key, form) => expire::ttl(keyspace, &key, form, now),
        // The table flags these `write`, so they never arrive here.
        Op::Set(..)
        | Op::IncrBy(..)
        | Op::Del(..)
        | Op::Flush
        | Op::Expire(..)
        | Op::Persist(..) => Reply::error("ERR write command run without the write lock"),
        // `execute` runs these, and the connection PSYNC; never here.
        Op::Info(..)
        | Op::Role
        | Op::ReplicaOf(..)
        | Op::ReplConf(..)
        | Op::Sync(..)
        | Op::Wait { .. }
        | Op::Multi
        | Op::Exec
        | Op::Discard
        | Op::Watch(..)
        | Op::Unwatch
        | Op::Save
        | Op::BgSave
        | Op::LastSave
        | Op::Shutdown(..)
        | Op::ConfigGet(..)
        | Op::ConfigSet(..)
        | Op::BgRewriteAof => Reply::error("ERR command run in the wrong place"),
    }
}

/// Runs a command that may write; reads are passed on to `apply_read`.
fn apply_write(op: Op, keyspace: &mut Keyspace, now: i64) -> Reply {
    match op {
        Op::Set(args) => string::set(keyspace, args, now),
        Op::IncrBy(key, delta) => string::incr_by(keyspace, key, delta, now),
        Op::Del(keys) => keys::del(keyspace, &keys, now),
        Op::Flush => {
            keyspace.clear();
            Reply::ok()
        }
        Op::Expire(args) => expire::expire(keyspace, args, now),
        Op::Persist(key) => expire::persist(keyspace, &key, now),
        op => {
            let reply = apply_read(op, keyspace, now);
            keyspace.purge_stale(now);
            reply
        }
    }
}

/// Parses an integer argument, with Redis's error for anything else.
pub fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    resp::parse_int(arg).ok_or_else(|| Reply::error("ERR value is not an integer or out of range"))
}

/// Finds the spec for a request, descending into subcommands.
fn lookup(args: &[Vec<u8>]) -> Result<&'static Spec, Reply> {
    let name = &args[0];
    let Some(spec) = find(TABLE, name) else {
        return Err(unknown_command(args));
    };
    if spec.subcommands.is_empty() || args.len() == 1 {
        return Ok(spec);
    }
    find(spec.subcommands, &args[1]).ok_or_else(|| {
        let mut msg = b"ERR unknown subcommand '".to_vec();
        msg.extend_from_slice(c_string(&args[1], 128));
        msg.extend_from_slice(b"'. Try ");
        msg.extend_from_slice(spec.name.to_ascii_uppercase().as_bytes());
        msg.extend_from_slice(b" HELP.");
        Reply::Error(one_line(msg))
    })
}

/// Finds a command by name, ignoring case; a subcommand by the part after `|`.
fn find<'a>(specs: &'a [Spec], name: &[u8]) -> Option<&'a Spec> {
    specs.iter().find(|spec| {
        let own_name = spec.name.rsplit('|').next().unwrap_or(spec.name);
        own_name.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// Redis's reply to an unknown command: the name as typed, then up to 128
/// characters of quoted arguments, each followed by a blank.
fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut shown = Vec::new();
    for arg in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(c_string(arg, room));
        shown.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(c_string(&args[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&shown);
    Reply::Error(one_line(msg))
}

/// What C's `%.*s` prints of `bytes`: up to the first NUL, at most `max` bytes.
fn c_string(bytes: &[u8], max: usize) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end.min(max)]
}

/// An error reply must stay on one line: Redis turns CR and LF into blanks.
fn one_line(mut msg: Vec<u8>) -> Vec<u8> {
    for b in &mut msg {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(words: &[&str]) -> Result<Op, Reply> {
        command(words).map(|c| c.op)
    }

    fn command(words: &[&str]) -> Result<Command, Reply> {
        Command::parse(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(parse(&["pInG"]), Ok(Op::Ping(None)));
        assert_eq!(parse(&["echo", "hi"]), Ok(Op::Echo(b"hi".to_vec())));
    }

    #[test]
    fn arity_errors_use_the_table_name() {
        assert_eq!(
            parse(&["EcHo"]),
            Err(Reply::error(
                "ERR wrong number of arguments for 'echo' command"
            ))
        );
        assert_eq!(
            parse(&["command", "count", "x"]),
            Err(Reply::error(
                "ERR wrong number of arguments for 'command|count' command"
            ))
        );
    }

    #[test]
    fn unknown_command_quotes_its_arguments() {
        assert_eq!(
            parse(&["FOO", "a", "b\r\nc"]),
            Err(Reply::error(
                "ERR unknown command 'FOO', with args beginning with: 'a' 'b  c' "
            ))
        );
        let many = vec!["x"; 40];
        let Err(Reply::Error(msg)) = parse(&[&["FOO"][..], &many].concat()) else {
            panic!("expected an error");
        };
        assert!(msg.ends_with(&b"'x' ".repeat(32)));
        assert!(!msg.ends_with(&b"'x' ".repeat(33)));
    }

    #[test]
    fn unknown_subcommand() {
        assert_eq!(
            parse(&["command", "foo"]),
            Err(Reply::error(
                "ERR unknown subcommand 'foo'. Try COMMAND HELP."
            ))
        );
    }

    #[test]
    fn writes_are_flagged_and_change_data() {
        let server = Server::new(Config::default());
        let mut session = Session::default();
        let mut run = |words: &[&str]| execute(command(words).unwrap(), &server, &mut session);
        assert!(command(&["set", "k", "v"]).unwrap().spec.is_write());
        assert!(!command(&["get", "k"]).unwrap().spec.is_write());
        assert_eq!(run(&["set", "k", "v"]), Reply::ok());
        assert_eq!(run(&["get", "k"]), Reply::bulk("v"));
        assert_eq!(run(&["exists", "k", "k", "nokey"]), Reply::Integer(2));
        assert_eq!(run(&["dbsize"]), Reply::Integer(1));
        assert_eq!(run(&["del", "k", "k"]), Reply::Integer(1));
        assert_eq!(run(&["get", "k"]), Reply::Nil);
    }

    #[test]
    fn every_row_has_a_lower_case_name_and_a_nonzero_arity() {
        for spec in TABLE {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_ne!(spec.arity, 0);
            for sub in spec.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", spec.name)));
                assert_ne!(sub.arity, 0);
            }
        }
    }

    #[test]
    fn info_inside_exec_reads_the_keyspace_exec_holds() {
        // EXEC holds the write lock while it runs its queue: INFO must use
        // that keyspace; locking it again would never return.
        let server = Server::new(Config::default());
        let mut session = Session::default();
        let mut run = |words: &[&str]| {
            let args: Args = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            match queue(&server, &mut session, args) {
                Ok(reply) => reply,
                Err(args) => execute(Command::parse(args).unwrap(), &server, &mut session),
            }
        };
        assert_eq!(run(&["SET", "k", "v"]), Reply::ok());
        assert_eq!(run(&["MULTI"]), Reply::ok());
        assert_eq!(run(&["SET", "k2", "v"]), Reply::Simple("QUEUED"));
        assert_eq!(run(&["INFO", "keyspace"]), Reply::Simple("QUEUED"));
        let keyspace = b"# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n".to_vec();
        assert_eq!(
            run(&["EXEC"]),
            Reply::Array(vec![Reply::ok(), Reply::Bulk(keyspace)])
        );
    }
}

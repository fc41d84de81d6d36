//! Commands: the table that describes them, parsing a request into a typed
//! [`Command`], and running it against the databases.
//!
//! As in Redis, what the server knows about each command is data: one row
//! of the table gives its name, arity, flags and parser. The arity check,
//! the unknown-command error and `COMMAND COUNT` all read the table, so
//! adding a command is one row plus one function.
//!
//! Commands on data live in groups (`string`, `keys`, `expire`,
//! `databases`), each with its own operation type and its own `read` and
//! `write` functions; `execute.rs` picks the lock and the database, and
//! tells the connection what to do next (an [`Outcome`]). Commands about
//! the server or the connection (`connection`, `server`, `replication`,
//! `transaction`) run without the data lock, and get a [`Context`]: what
//! the server shares, minus the databases' handle.

mod acl;
mod command;
mod connection;
mod counter;
mod databases;
mod execute;
mod expire;
mod flags;
mod hash;
mod hash_run;
mod info;
mod keys;
mod list;
mod list_run;
mod lookup;
mod object;
mod pubsub;
mod replication;
mod scan;
mod server;
mod set;
mod set_run;
mod string;
mod string_range;
mod string_set;
mod transaction;
mod typed;

pub use connection::ConnOp;
pub use execute::{apply_from_master, end_session, handle, Outcome};
pub use flags::Flags;
pub use pubsub::PubSubOp;
pub use replication::ReplConf;

use std::time::Instant;

use crate::aof::Aof;
use crate::clients::{Client, Clients};
use crate::config::Config;
use crate::listen::Listeners;
use crate::persist::Persistence;
use crate::pubsub::{PubSub, Subscriptions};
use crate::replication::{Capabilities, Replication, SyncRequest};
use crate::resp::{self, Args, Protocol, Reply};
use crate::server::Server;
use crate::settings::Settings;
use lookup::check;

/// One request, parsed and checked, ready to run.
#[derive(Debug, Clone)]
pub struct Command {
    /// The command's row in the table: its name and flags.
    pub spec: &'static Spec,
    /// What to do, with the arguments in typed form.
    pub op: Op,
}

/// The operation a command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// String commands.
    Str(string::StrOp),
    /// List commands.
    List(list::ListOp),
    /// Hash commands.
    Hash(hash::HashOp),
    /// Set commands.
    Set(set::SetOp),
    /// OBJECT ENCODING, MEMORY USAGE.
    Object(object::ObjectOp),
    /// Generic key commands.
    Key(keys::KeyOp),
    /// Expiry commands.
    Expire(expire::ExpireOp),
    /// Whole-database commands: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB.
    Databases(databases::DatabasesOp),
    /// Connection commands: PING, ECHO, SELECT, AUTH, HELLO, CLIENT.
    Conn(connection::ConnOp),
    /// Server commands: COMMAND, INFO, CONFIG, TIME, SAVE ... SHUTDOWN, MONITOR.
    Server(server::ServerOp),
    /// `QUIT`: the connection replies `+OK` and closes.
    Quit,
    /// `ACL LOG`
    Acl(acl::AclOp),
    /// Pub/sub: (UN)SUBSCRIBE and kin, PUBLISH, PUBSUB.
    PubSub(pubsub::PubSubOp),
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
}

/// What commands may use of what the server shares: everything but the
/// databases' handle. A command gets the databases only as its caller
/// locked them (`&Databases`, `&mut Databases`), so none can lock them a
/// second time (see the lock order in `server.rs`).
pub struct Context<'a> {
    /// Master or replica, the stream, the replicas.
    pub replication: &'a Replication,
    /// The options the server started with.
    pub config: &'a Config,
    /// The options CONFIG SET may change.
    pub settings: &'a Settings,
    /// When we last saved; BGSAVE.
    pub persistence: &'a Persistence,
    /// The connected clients and the server's counters.
    pub clients: &'a Clients,
    /// Where the server listens.
    pub listeners: &'a Listeners,
    /// Who is subscribed to what.
    pub pubsub: &'a PubSub,
    /// When the server started.
    pub started: Instant,
    /// The append-only file.
    pub aof: &'a Aof,
}

impl<'a> Context<'a> {
    /// The parts of `server` a command may use.
    pub fn of(server: &'a Server) -> Context<'a> {
        Context {
            replication: &server.replication,
            config: &server.config,
            settings: &server.settings,
            persistence: &server.persistence,
            clients: &server.clients,
            listeners: &server.listeners,
            pubsub: &server.pubsub,
            started: server.started,
            aof: &server.aof,
        }
    }
}

/// What a command may know and change about the connection it came from.
#[derive(Default)]
pub struct Session {
    /// The client's entry in the registry (CLIENT SETNAME, CLIENT LIST).
    pub client: Option<std::sync::Arc<Client>>,
    /// The client's id (CLIENT ID).
    pub id: u64,
    /// The selected database's index (SELECT).
    pub selected: usize,
    /// Has the client authenticated (or is no password set)?
    pub authenticated: bool,
    /// The replication offset after this client's last write: WAIT waits
    /// for replicas to reach it.
    pub last_write_offset: i64,
    /// The port a replica said it listens on (REPLCONF listening-port).
    pub listening_port: u16,
    /// What the replica said it understands (`REPLCONF capa`): `psync2`
    /// makes +CONTINUE name the replication id, `eof` lets the snapshot
    /// stream with no length ahead.
    pub capa: Capabilities,
    /// Inside MULTI: the requests queued for EXEC.
    pub multi: Option<Vec<Args>>,
    /// Did a request fail while queueing? Then EXEC refuses to run.
    pub multi_failed: bool,
    /// The keys WATCH watches.
    pub watch: Option<transaction::Watch>,
    /// Has the client asked to become a MONITOR?
    pub monitor: bool,
    /// RESP2, or RESP3 after HELLO 3.
    pub protocol: Protocol,
    /// Its subscriptions and outbox, once it has subscribed: from then on
    /// its output goes through the outbox (see `pubsub.rs`).
    pub pubsub: Option<Subscriptions>,
}

impl Session {
    /// Is the client in RESP2's subscribed mode, where it may only
    /// (un)subscribe, PING, QUIT and RESET?
    pub fn in_subscribed_mode(&self) -> bool {
        self.protocol == Protocol::Resp2 && self.pubsub.as_ref().is_some_and(Subscriptions::active)
    }
}

/// A command's row in the table.
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name, as errors and `COMMAND` show it; a subcommand's
    /// name includes its container's, as in `command|count`.
    pub name: &'static str,
    /// Argument count including the name; negative means "at least -arity".
    pub arity: i64,
    /// Redis's flags, as `COMMAND INFO` lists them. `WRITE` decides
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
    pub parse: fn(Args) -> Result<Op, Reply>,
    /// Subcommands, for container commands such as `COMMAND`.
    pub subcommands: &'static [Spec],
}

/// Every command this server knows, group by group.
pub static TABLE: &[&[Spec]] = &[
    connection::COMMANDS,
    server::COMMANDS,
    acl::COMMANDS,
    databases::COMMANDS,
    string::COMMANDS,
    string_set::COMMANDS,
    string_range::COMMANDS,
    counter::COMMANDS,
    list::COMMANDS,
    hash::COMMANDS,
    set::COMMANDS,
    object::COMMANDS,
    keys::COMMANDS,
    scan::COMMANDS,
    expire::COMMANDS,
    replication::COMMANDS,
    transaction::COMMANDS,
    pubsub::COMMANDS,
];

/// Every row of the table, in order.
pub fn all_specs() -> impl Iterator<Item = &'static Spec> {
    TABLE.iter().flat_map(|group| group.iter())
}

impl Spec {
    /// Does the command change data? Writers take the write lock.
    pub fn is_write(&self) -> bool {
        self.flags.has(Flags::WRITE)
    }
}

impl Command {
    /// Parses a request (a non-empty argument list): finds the command in
    /// the table, checks its arity, then lets its own parser finish the job.
    /// Every client mistake comes back as the error reply Redis would send.
    pub fn parse(args: Args) -> Result<Command, Reply> {
        let spec = check(&args)?;
        let op = (spec.parse)(args)?;
        Ok(Command { spec, op })
    }
}

/// Parses an integer argument, with Redis's error for anything else.
pub fn parse_int(arg: &[u8]) -> Result<i64, Reply> {
    resp::parse_int(arg).ok_or_else(|| Reply::error("ERR value is not an integer or out of range"))
}

/// The arguments after the first `skip`, taken by value.
fn rest(args: Args, skip: usize) -> Args {
    args.into_iter().skip(skip).collect()
}

/// The argument at `index`, taken by value (the arity check guarantees it).
fn arg(args: Args, index: usize) -> Vec<u8> {
    args.into_iter().nth(index).unwrap_or_default()
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
        assert_eq!(parse(&["pInG"]), Ok(Op::Conn(ConnOp::Ping(None))));
        assert_eq!(
            parse(&["echo", "hi"]),
            Ok(Op::Conn(ConnOp::Echo(b"hi".to_vec())))
        );
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
        let mut session = Session {
            authenticated: true,
            ..Session::default()
        };
        let mut run = |words: &[&str]| {
            let args = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            match handle(args, &server, &mut session) {
                Outcome::Reply(reply) => reply,
                _ => panic!("expected a reply"),
            }
        };
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
    fn a_transaction_runs_reads_and_server_commands_under_its_lock() {
        // Inside EXEC, which holds the write lock, INFO and the others must
        // get the databases EXEC holds: a second lock would never come.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server = Server::new(Config::default());
            let mut session = Session {
                authenticated: true,
                ..Session::default()
            };
            let mut run = |words: &[&str]| {
                let args = words.iter().map(|w| w.as_bytes().to_vec()).collect();
                match handle(args, &server, &mut session) {
                    Outcome::Reply(reply) => reply,
                    _ => panic!("expected a reply"),
                }
            };
            run(&["watch", "k"]);
            run(&["multi"]);
            for words in [
                &["set", "k", "v"][..],
                &["info", "keyspace"],
                &["dbsize"],
                &["get", "k"],
                &["unwatch"],
                &["lastsave"],
                &["role"],
                &["wait", "0", "0"],
            ] {
                assert_eq!(run(words), Reply::Simple("QUEUED"));
            }
            let _ = done.send(run(&["exec"]));
        });
        let reply = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("EXEC finished: no lock was asked for twice");
        let Reply::Array(replies) = reply else {
            panic!("EXEC replies with an array: {reply:?}");
        };
        assert_eq!(replies.len(), 8);
        assert_eq!(replies[0], Reply::ok());
        let Reply::Bulk(info) = &replies[1] else {
            panic!("INFO replies with a bulk string");
        };
        assert!(String::from_utf8_lossy(info).contains("db0:keys=1,"));
        assert_eq!(replies[2], Reply::Integer(1));
        assert_eq!(replies[3], Reply::bulk("v"));
        assert_eq!(replies[4], Reply::ok());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = all_specs().map(|spec| spec.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn every_row_has_a_lower_case_name_and_a_nonzero_arity() {
        for spec in all_specs() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_ne!(spec.arity, 0);
            for sub in spec.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", spec.name)));
                assert_ne!(sub.arity, 0);
            }
        }
    }
}

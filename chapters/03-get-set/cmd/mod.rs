//! Commands: the table that describes them, parsing a request into a typed
//! [`Command`], and running it against the keyspace.
//!
//! As in Redis, what the server knows about each command is data: one row
//! of [`TABLE`] gives its name, arity, flags and parser. The arity check,
//! the unknown-command error and `COMMAND COUNT` all read the table, so
//! adding a command is one row plus one function.

mod connection;
mod flags;
mod keys;
mod server;
mod string;

pub use flags::Flags;

use crate::db::{Db, Keyspace};
use crate::resp::Reply;

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
    /// `SET key value`
    Set(Vec<u8>, Vec<u8>),
    /// `DEL key [key ...]`
    Del(Vec<Vec<u8>>),
    /// `EXISTS key [key ...]`
    Exists(Vec<Vec<u8>>),
    /// `DBSIZE`
    DbSize,
    /// `FLUSHDB` and `FLUSHALL`: with one database, the same thing.
    Flush,
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
    keys::DEL,
    keys::EXISTS,
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
        let spec = lookup(&args)?;
        let argc = args.len() as i64;
        if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
            return Err(Reply::error(format!(
                "ERR wrong number of arguments for '{}' command",
                spec.name
            )));
        }
        let op = (spec.parse)(args)?;
        Ok(Command { spec, op })
    }
}

/// Runs a command and returns its reply. Commands flagged `write` run
/// under the write lock; all others share the read lock. The lock is
/// released before the caller writes the reply to the socket.
pub fn execute(command: Command, db: &Db) -> Reply {
    if command.spec.is_write() {
        apply_write(command.op, &mut db.write())
    } else {
        apply_read(command.op, &db.read())
    }
}

/// Runs a command that only reads.
fn apply_read(op: Op, keyspace: &Keyspace) -> Reply {
    match op {
        Op::Ping(message) => connection::ping(message),
        Op::Echo(message) => Reply::Bulk(message),
        // The connection handles QUIT itself: closing is its business.
        Op::Quit => Reply::ok(),
        Op::Describe(info) => server::command(info),
        Op::Get(key) => string::get(keyspace, &key),
        Op::Exists(keys) => keys::exists(keyspace, &keys),
        Op::DbSize => Reply::Integer(keyspace.len() as i64),
        // The table flags these `write`, so they never arrive here.
        Op::Set(..) | Op::Del(..) | Op::Flush => {
            Reply::error("ERR write command run without the write lock")
        }
    }
}

/// Runs a command that may write; reads are passed on to `apply_read`.
fn apply_write(op: Op, keyspace: &mut Keyspace) -> Reply {
    match op {
        Op::Set(key, value) => string::set(keyspace, key, value),
        Op::Del(keys) => keys::del(keyspace, &keys),
        Op::Flush => {
            keyspace.clear();
            Reply::ok()
        }
        op => apply_read(op, keyspace),
    }
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
        let db = Db::default();
        let run = |words: &[&str]| execute(command(words).unwrap(), &db);
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
}

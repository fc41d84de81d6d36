//! Generic key commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME,
//! RENAMENX, MOVE and COPY. KEYS, SCAN and RANDOMKEY, which look at the
//! keyspace as a whole, live in `scan`.

use super::scan::{self, ScanArgs};
use super::{arg, parse_int, rest, Flags, Op, Spec};
use crate::db::Databases;
use crate::events::Events;
use crate::keyspace::Keyspace;
use crate::resp::{Args, Reply};

/// A generic key command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// `DEL key [key ...]`, and `UNLINK`, which Redis differs from DEL
    /// only by freeing the memory in the background.
    Del(Vec<Vec<u8>>),
    /// `EXISTS key [key ...]`, and `TOUCH`, which replies the same count
    /// (its other job, updating the access time, has no meaning here).
    Exists(Vec<Vec<u8>>),
    /// `TYPE key`
    Type(Vec<u8>),
    /// `RENAME key newkey`, or `RENAMENX` when `nx` is set.
    Rename {
        /// The key to rename.
        from: Vec<u8>,
        /// Its new name.
        to: Vec<u8>,
        /// RENAMENX: only if `to` does not exist.
        nx: bool,
    },
    /// `MOVE key db`
    Move(Vec<u8>, i32),
    /// `COPY source destination [DB db] [REPLACE]`
    Copy(CopyArgs),
    /// `RANDOMKEY`
    RandomKey,
    /// `KEYS pattern`
    Keys(Vec<u8>),
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
    Scan(ScanArgs),
}

/// COPY's arguments, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// The key to copy.
    pub source: Vec<u8>,
    /// Where to copy it.
    pub destination: Vec<u8>,
    /// Every `DB` option given, in order; the last one wins.
    pub dbs: Vec<i32>,
    /// REPLACE: overwrite an existing destination.
    pub replace: bool,
    /// An error met after the `DB` options in `dbs`. Redis checks each DB
    /// index against the number of databases as soon as it reads it, so
    /// `DB 99 FOO` is "out of range" but `FOO DB 99` a syntax error. The
    /// parser does not know the number of databases, so it stops at the
    /// first error and leaves it here, to be returned once the indexes
    /// before it have passed.
    pub error: Option<Reply>,
}

/// The generic key commands' rows of the table (more in `scan`).
pub const COMMANDS: &[Spec] = &[
    DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX, MOVE, COPY,
];

/// Runs a key command that only reads, in database `db`.
pub fn read(op: KeyOp, dbs: &Databases, selected: usize, now: i64) -> Reply {
    let keyspace = &dbs[selected];
    match op {
        KeyOp::Exists(keys) => exists(keyspace, &keys, now),
        KeyOp::Type(key) => key_type(keyspace, &key, now),
        KeyOp::RandomKey => scan::random_key(keyspace, now),
        KeyOp::Keys(pattern) => scan::keys(keyspace, &pattern, now),
        KeyOp::Scan(args) => scan::scan(keyspace, &args, now),
        // Flagged `write` in the table, so never here.
        KeyOp::Del(..) | KeyOp::Rename { .. } | KeyOp::Move(..) | KeyOp::Copy(..) => {
            Reply::error("ERR write command run without the write lock")
        }
    }
}

/// Runs a key command that may write, in database `selected`.
pub fn write(op: KeyOp, dbs: &mut Databases, selected: usize, now: i64) -> Reply {
    match op {
        KeyOp::Del(keys) => del(&mut dbs[selected], &keys, now),
        KeyOp::Rename { from, to, nx } => rename(&mut dbs[selected], from, to, nx, now),
        KeyOp::Move(key, target) => move_key(dbs, selected, &key, target, now),
        KeyOp::Copy(args) => copy(dbs, selected, args, now),
        op => {
            let reply = read(op, dbs, selected, now);
            dbs[selected].purge_stale(now);
            reply
        }
    }
}

/// `DEL key [key ...]`
pub const DEL: Spec = Spec {
    name: "del",
    arity: -2,
    flags: Flags::WRITE,
    keys: (1, -1, 1),
    summary: "Delete a key",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Del(rest(args, 1)))),
    subcommands: &[],
};

/// `UNLINK key [key ...]`
pub const UNLINK: Spec = Spec {
    name: "unlink",
    arity: -2,
    flags: Flags::WRITE.and(Flags::FAST),
    keys: (1, -1, 1),
    summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
    since: "4.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Del(rest(args, 1)))),
    subcommands: &[],
};

/// `EXISTS key [key ...]`
pub const EXISTS: Spec = Spec {
    name: "exists",
    arity: -2,
    flags: Flags::READONLY.and(Flags::FAST),
    keys: (1, -1, 1),
    summary: "Determine if a key exists",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Exists(rest(args, 1)))),
    subcommands: &[],
};

/// `TOUCH key [key ...]`
pub const TOUCH: Spec = Spec {
    name: "touch",
    arity: -2,
    flags: Flags::READONLY.and(Flags::FAST),
    keys: (1, -1, 1),
    summary:
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
    since: "3.2.1",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Exists(rest(args, 1)))),
    subcommands: &[],
};

/// `TYPE key`
pub const TYPE: Spec = Spec {
    name: "type",
    arity: 2,
    flags: Flags::READONLY.and(Flags::FAST),
    keys: (1, 1, 1),
    summary: "Determine the type stored at key",
    since: "1.0.0",
    group: "generic",
    parse: |args| Ok(Op::Key(KeyOp::Type(arg(args, 1)))),
    subcommands: &[],
};

/// `RENAME key newkey`
pub const RENAME: Spec = Spec {
    name: "rename",
    arity: 3,
    flags: Flags::WRITE,
    keys: (1, 2, 1),
    summary: "Rename a key",
    since: "1.0.0",
    group: "generic",
    parse: |args| parse_rename(args, false),
    subcommands: &[],
};

/// `RENAMENX key newkey`
pub const RENAMENX: Spec = Spec {
    name: "renamenx",
    arity: 3,
    flags: Flags::WRITE.and(Flags::FAST),
    keys: (1, 2, 1),
    summary: "Rename a key, only if the new key does not exist",
    since: "1.0.0",
    group: "generic",
    parse: |args| parse_rename(args, true),
    subcommands: &[],
};

/// `MOVE key db`
pub const MOVE: Spec = Spec {
    name: "move",
    arity: 3,
    flags: Flags::WRITE.and(Flags::FAST),
    keys: (1, 1, 1),
    summary: "Move a key to another database",
    since: "1.0.0",
    group: "generic",
    parse: |args| {
        let db = parse_db_index(&args[2])?;
        Ok(Op::Key(KeyOp::Move(arg(args, 1), db)))
    },
    subcommands: &[],
};

/// `COPY source destination [DB destination-db] [REPLACE]`
pub const COPY: Spec = Spec {
    name: "copy",
    arity: -3,
    flags: Flags::WRITE.and(Flags::DENYOOM),
    keys: (1, 2, 1),
    summary: "Copy a key",
    since: "6.2.0",
    group: "generic",
    parse: parse_copy,
    subcommands: &[],
};

/// Parses `RENAME key newkey` or `RENAMENX key newkey`.
fn parse_rename(args: Args, nx: bool) -> Result<Op, Reply> {
    let mut args = args.into_iter().skip(1);
    let from = args.next().unwrap_or_default();
    let to = args.next().unwrap_or_default();
    Ok(Op::Key(KeyOp::Rename { from, to, nx }))
}

/// Parses the options of COPY, stopping at the first error (see
/// [`CopyArgs::error`] for why that error is not returned at once).
fn parse_copy(args: Args) -> Result<Op, Reply> {
    let mut copy = CopyArgs {
        source: args[1].clone(),
        destination: args[2].clone(),
        dbs: Vec::new(),
        replace: false,
        error: None,
    };
    let mut i = 3;
    while i < args.len() {
        let option = &args[i];
        if option.eq_ignore_ascii_case(b"replace") {
            copy.replace = true;
        } else if option.eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            match parse_db_index(&args[i + 1]) {
                Ok(db) => copy.dbs.push(db),
                Err(error) => {
                    copy.error = Some(error);
                    break;
                }
            }
            i += 1;
        } else {
            copy.error = Some(Reply::error("ERR syntax error"));
            break;
        }
        i += 1;
    }
    Ok(Op::Key(KeyOp::Copy(copy)))
}

/// Parses a database index as Redis's MOVE and COPY do: any C `int`;
/// whether that database exists is checked when the command runs.
fn parse_db_index(arg: &[u8]) -> Result<i32, Reply> {
    i32::try_from(parse_int(arg)?).map_err(|_| {
        Reply::error("ERR value is out of range, value must between -2147483648 and 2147483647")
    })
}

/// The database numbered `index`, if there is one.
fn db_number(dbs: &Databases, index: i32) -> Option<usize> {
    usize::try_from(index).ok().filter(|&i| i < dbs.len())
}

/// Runs DEL and UNLINK: how many of the keys existed (each is counted
/// once, since a repeated key is already gone the second time). An expired
/// key is deleted too, but does not count: it was already logically gone.
pub fn del(keyspace: &mut Keyspace, keys: &[Vec<u8>], now: i64) -> Reply {
    let mut deleted = 0;
    for key in keys {
        if !keyspace.remove_if_expired(key, now) && keyspace.remove(key) {
            keyspace.notify(Events::GENERIC, "del", key);
            deleted += 1;
        }
    }
    Reply::Integer(deleted as i64)
}

/// Runs EXISTS and TOUCH: how many of the keys exist, a key named twice
/// counted twice.
pub fn exists(keyspace: &Keyspace, keys: &[Vec<u8>], now: i64) -> Reply {
    let found = keys
        .iter()
        .filter(|key| keyspace.get(key, now).is_some())
        .count();
    Reply::Integer(found as i64)
}

/// Runs TYPE: the type of the key's value, or `none`.
pub fn key_type(keyspace: &Keyspace, key: &[u8], now: i64) -> Reply {
    match keyspace.get(key, now) {
        Some(entry) => Reply::Simple(entry.value().type_name()),
        None => Reply::Simple("none"),
    }
}

/// Runs RENAME and RENAMENX. The value moves with its expiry. Renaming a
/// key to itself changes nothing, but the key must still exist.
pub fn rename(keyspace: &mut Keyspace, from: Vec<u8>, to: Vec<u8>, nx: bool, now: i64) -> Reply {
    let done = |renamed: bool| match (nx, renamed) {
        (false, _) => Reply::ok(),
        (true, renamed) => Reply::Integer(i64::from(renamed)),
    };
    if keyspace.get_live(&from, now).is_none() {
        return Reply::error("ERR no such key");
    }
    if from == to {
        return done(false);
    }
    keyspace.remove_if_expired(&to, now);
    if nx && keyspace.get(&to, now).is_some() {
        return done(false);
    }
    let Some((value, expires_at)) = keyspace.take(&from) else {
        return Reply::error("ERR no such key");
    };
    // `set` replaces whatever `to` held, value and expiry.
    keyspace
        .set(to, value, expires_at)
        .notify_on(&from, Events::GENERIC, "rename_from")
        .notify(Events::GENERIC, "rename_to");
    done(true)
}

/// Runs MOVE: 1 if the key moved to database `target`, 0 if it does not
/// exist here or already exists there. The checks come in Redis's order:
/// the index, then "same database", then the keys.
pub fn move_key(dbs: &mut Databases, selected: usize, key: &[u8], target: i32, now: i64) -> Reply {
    let Some(target) = db_number(dbs, target) else {
        return Reply::error("ERR DB index is out of range");
    };
    let Some((source, destination)) = dbs.pair_mut(selected, target) else {
        return Reply::error("ERR source and destination objects are the same");
    };
    if source.get_live(key, now).is_none() {
        return Reply::Integer(0);
    }
    destination.remove_if_expired(key, now);
    if destination.get(key, now).is_some() {
        return Reply::Integer(0);
    }
    let Some((value, expires_at)) = source.take(key) else {
        return Reply::Integer(0);
    };
    destination.set(key.to_vec(), value, expires_at);
    source.notify(Events::GENERIC, "move_from", key);
    destination.notify(Events::GENERIC, "move_to", key);
    Reply::Integer(1)
}

/// Runs COPY: 1 if the value (and its expiry) was copied, 0 if the source
/// does not exist or the destination does and REPLACE was not given.
pub fn copy(dbs: &mut Databases, selected: usize, args: CopyArgs, now: i64) -> Reply {
    let mut target = selected;
    for &index in &args.dbs {
        match db_number(dbs, index) {
            Some(index) => target = index,
            None => return Reply::error("ERR DB index is out of range"),
        }
    }
    if let Some(error) = args.error {
        return error;
    }
    if target == selected && args.source == args.destination {
        return Reply::error("ERR source and destination objects are the same");
    }
    let Some(entry) = dbs[selected].get_live(&args.source, now) else {
        return Reply::Integer(0);
    };
    // A copy is a copy: here, unlike RENAME and MOVE, the bytes are cloned.
    let (value, expires_at) = (entry.value().to_value(), entry.expires_at());
    let destination = &mut dbs[target];
    destination.remove_if_expired(&args.destination, now);
    if !args.replace && destination.get(&args.destination, now).is_some() {
        return Reply::Integer(0);
    }
    destination
        .set(args.destination, value, expires_at)
        .notify(Events::GENERIC, "copy_to");
    Reply::Integer(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Command;
    use crate::keyspace::Value;

    fn parse(words: &[&str]) -> Result<Op, Reply> {
        Command::parse(words.iter().map(|w| w.as_bytes().to_vec()).collect()).map(|c| c.op)
    }

    /// Runs `words` in database `db`, as `execute` would.
    fn run(dbs: &mut Databases, selected: usize, words: &[&str], now: i64) -> Reply {
        let command = match Command::parse(words.iter().map(|w| w.as_bytes().to_vec()).collect()) {
            Ok(command) => command,
            Err(error) => return error,
        };
        let Op::Key(op) = command.op else {
            panic!("not a key command: {words:?}");
        };
        if command.spec.is_write() {
            write(op, dbs, selected, now)
        } else {
            read(op, dbs, selected, now)
        }
    }

    fn set(dbs: &mut Databases, selected: usize, key: &str, expires_at: Option<i64>) {
        dbs[selected].set(key.into(), Value::String(b"v".to_vec()), expires_at);
    }

    #[test]
    fn unlink_and_touch_share_del_and_exists() {
        let mut dbs = Databases::new(2);
        set(&mut dbs, 0, "a", None);
        assert_eq!(
            run(&mut dbs, 0, &["touch", "a", "a", "b"], 0),
            Reply::Integer(2)
        );
        assert_eq!(
            run(&mut dbs, 0, &["unlink", "a", "a", "b"], 0),
            Reply::Integer(1)
        );
        assert_eq!(dbs[0].len(), 0);
    }

    #[test]
    fn type_hides_expired_keys() {
        let mut dbs = Databases::new(1);
        set(&mut dbs, 0, "a", Some(100));
        assert_eq!(
            run(&mut dbs, 0, &["type", "a"], 99),
            Reply::Simple("string")
        );
        assert_eq!(run(&mut dbs, 0, &["type", "a"], 100), Reply::Simple("none"));
    }

    #[test]
    fn rename_keeps_the_expiry_and_replaces() {
        let mut dbs = Databases::new(1);
        set(&mut dbs, 0, "a", Some(500));
        set(&mut dbs, 0, "b", None);
        assert_eq!(run(&mut dbs, 0, &["rename", "a", "b"], 0), Reply::ok());
        assert_eq!(dbs[0].get(b"b", 0).and_then(|e| e.expires_at()), Some(500));
        assert!(dbs[0].get(b"a", 0).is_none());
        assert_eq!(run(&mut dbs, 0, &["rename", "b", "b"], 0), Reply::ok());
        assert_eq!(
            run(&mut dbs, 0, &["renamenx", "b", "b"], 0),
            Reply::Integer(0)
        );
        let no_such_key = Reply::error("ERR no such key");
        assert_eq!(run(&mut dbs, 0, &["rename", "a", "a"], 0), no_such_key);
        assert_eq!(run(&mut dbs, 0, &["renamenx", "a", "c"], 0), no_such_key);
        // Expired: gone, for the source and for the destination alike.
        assert_eq!(run(&mut dbs, 0, &["rename", "b", "c"], 500), no_such_key);
        set(&mut dbs, 0, "x", None);
        set(&mut dbs, 0, "y", Some(10));
        assert_eq!(
            run(&mut dbs, 0, &["renamenx", "x", "y"], 10),
            Reply::Integer(1)
        );
    }

    #[test]
    fn move_checks_in_redis_order() {
        let mut dbs = Databases::new(2);
        set(&mut dbs, 0, "a", Some(900));
        let out_of_range = Reply::error("ERR DB index is out of range");
        let same = Reply::error("ERR source and destination objects are the same");
        assert_eq!(run(&mut dbs, 0, &["move", "nokey", "2"], 0), out_of_range);
        assert_eq!(run(&mut dbs, 0, &["move", "nokey", "-1"], 0), out_of_range);
        assert_eq!(run(&mut dbs, 0, &["move", "nokey", "0"], 0), same);
        assert_eq!(
            parse(&["move", "a", "4294967296"]),
            Err(Reply::error(
                "ERR value is out of range, value must between -2147483648 and 2147483647"
            ))
        );
        assert_eq!(
            run(&mut dbs, 0, &["move", "nokey", "1"], 0),
            Reply::Integer(0)
        );
        assert_eq!(run(&mut dbs, 0, &["move", "a", "1"], 0), Reply::Integer(1));
        assert_eq!(dbs[1].get(b"a", 0).and_then(|e| e.expires_at()), Some(900));
        set(&mut dbs, 0, "a", None);
        assert_eq!(run(&mut dbs, 0, &["move", "a", "1"], 0), Reply::Integer(0));
        // Once the copy in db 1 has expired, the move goes through.
        assert_eq!(
            run(&mut dbs, 0, &["move", "a", "1"], 900),
            Reply::Integer(1)
        );
    }

    #[test]
    fn copy_options_fail_in_the_order_given() {
        let mut dbs = Databases::new(2);
        set(&mut dbs, 0, "a", Some(700));
        let out_of_range = Reply::error("ERR DB index is out of range");
        let syntax = Reply::error("ERR syntax error");
        let cases: &[(&[&str], Reply)] = &[
            (&["copy", "a", "b", "db", "9", "foo"], out_of_range.clone()),
            (&["copy", "a", "b", "foo", "db", "9"], syntax.clone()),
            (
                &["copy", "a", "b", "db", "1", "db", "9"],
                out_of_range.clone(),
            ),
            (&["copy", "a", "b", "db", "9", "db", "x"], out_of_range),
            (
                &["copy", "a", "b", "db", "x", "db", "9"],
                Reply::error("ERR value is not an integer or out of range"),
            ),
            (&["copy", "a", "b", "db"], syntax),
            (
                &["copy", "a", "a", "db", "0"],
                Reply::error("ERR source and destination objects are the same"),
            ),
            (&["copy", "nokey", "b"], Reply::Integer(0)),
            (&["copy", "a", "a", "db", "1"], Reply::Integer(1)),
            (&["copy", "a", "a", "db", "1"], Reply::Integer(0)),
            (&["copy", "a", "a", "replace", "db", "1"], Reply::Integer(1)),
        ];
        for (words, expected) in cases {
            assert_eq!(&run(&mut dbs, 0, words, 0), expected, "{words:?}");
        }
        assert_eq!(dbs[1].get(b"a", 0).and_then(|e| e.expires_at()), Some(700));
        assert!(dbs[0].get(b"a", 0).is_some());
    }
}

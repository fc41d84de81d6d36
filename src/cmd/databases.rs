//! Whole-database commands: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB.

use super::{Flags, Op, Spec};
use crate::db::Databases;
use crate::resp::Reply;

/// A whole-database command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabasesOp {
    /// `DBSIZE`
    DbSize,
    /// `FLUSHDB [ASYNC|SYNC]`
    FlushDb,
    /// `FLUSHALL [ASYNC|SYNC]`
    FlushAll,
    /// `SWAPDB index1 index2`
    SwapDb(i32, i32),
}

/// The whole-database commands' rows of the table.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "dbsize",
        arity: 1,
        flags: Flags::READONLY.and(Flags::FAST),
        keys: (0, 0, 0),
        summary: "Return the number of keys in the selected database",
        since: "1.0.0",
        group: "server",
        parse: |_| Ok(Op::Databases(DatabasesOp::DbSize)),
        subcommands: &[],
    },
    Spec {
        name: "flushdb",
        arity: -1,
        flags: Flags::WRITE,
        keys: (0, 0, 0),
        summary: "Remove all keys from the current database",
        since: "1.0.0",
        group: "server",
        parse: |args| parse_flush(&args).map(|()| Op::Databases(DatabasesOp::FlushDb)),
        subcommands: &[],
    },
    Spec {
        name: "flushall",
        arity: -1,
        flags: Flags::WRITE,
        keys: (0, 0, 0),
        summary: "Remove all keys from all databases",
        since: "1.0.0",
        group: "server",
        parse: |args| parse_flush(&args).map(|()| Op::Databases(DatabasesOp::FlushAll)),
        subcommands: &[],
    },
    Spec {
        name: "swapdb",
        arity: 3,
        flags: Flags::WRITE.and(Flags::FAST),
        keys: (0, 0, 0),
        summary: "Swaps two Redis databases",
        since: "4.0.0",
        group: "server",
        parse: |args| {
            // Any 32-bit integer parses; a negative one is out of range later.
            let index = |arg: &[u8], which: &str| {
                crate::resp::parse_int(arg)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| Reply::error(format!("ERR invalid {which} DB index")))
            };
            let first = index(&args[1], "first")?;
            let second = index(&args[2], "second")?;
            Ok(Op::Databases(DatabasesOp::SwapDb(first, second)))
        },
        subcommands: &[],
    },
];

/// Both flushes take one optional word, ASYNC or SYNC. Freeing memory in the
/// background is Redis's business; here both mean "now".
fn parse_flush(args: &[Vec<u8>]) -> Result<(), Reply> {
    match args {
        [_] => Ok(()),
        [_, mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            Ok(())
        }
        _ => Err(Reply::error("ERR syntax error")),
    }
}

/// Runs DBSIZE.
pub fn read(op: DatabasesOp, dbs: &Databases, selected: usize) -> Reply {
    match op {
        DatabasesOp::DbSize => Reply::Integer(dbs[selected].len() as i64),
        DatabasesOp::FlushDb | DatabasesOp::FlushAll | DatabasesOp::SwapDb(..) => {
            Reply::error("ERR write command run without the write lock")
        }
    }
}

/// Runs the flushes and SWAPDB.
pub fn write(op: DatabasesOp, dbs: &mut Databases, selected: usize) -> Reply {
    match op {
        DatabasesOp::FlushDb => dbs[selected].clear(),
        DatabasesOp::FlushAll => dbs.flush_all(),
        DatabasesOp::SwapDb(a, b) => {
            let in_range = |i: i32| usize::try_from(i).ok().filter(|&i| i < dbs.len());
            let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
                return Reply::error("ERR DB index is out of range");
            };
            dbs.swap(a, b);
        }
        DatabasesOp::DbSize => return read(op, dbs, selected),
    }
    Reply::ok()
}

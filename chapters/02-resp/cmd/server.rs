//! Server commands: `COMMAND` and its subcommands, which describe the
//! command table to clients. `redis-cli` asks for `COMMAND DOCS` as it
//! starts and waits for the answer, so even a tiny server must reply.

use super::{Command, Flags, Spec, TABLE};
use crate::resp::Reply;

/// What `COMMAND` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandInfo {
    /// `COMMAND`: every command's description.
    All,
    /// `COMMAND COUNT`
    Count,
    /// `COMMAND LIST`
    List,
    /// `COMMAND INFO [name ...]`
    Info(Vec<Vec<u8>>),
    /// `COMMAND DOCS [name ...]`
    Docs(Vec<Vec<u8>>),
}

/// `COMMAND [subcommand ...]`
pub const COMMAND: Spec = Spec {
    name: "command",
    arity: -1,
    flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
    keys: (0, 0, 0),
    summary: "Get array of Redis command details",
    since: "2.8.13",
    group: "server",
    parse: |_| Ok(Command::Describe(CommandInfo::All)),
    subcommands: &[
        Spec {
            name: "command|count",
            arity: 2,
            flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Get total number of Redis commands",
            since: "2.8.13",
            group: "server",
            parse: |_| Ok(Command::Describe(CommandInfo::Count)),
            subcommands: &[],
        },
        Spec {
            name: "command|list",
            arity: 2,
            flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Get an array of Redis command names",
            since: "7.0.0",
            group: "server",
            parse: |_| Ok(Command::Describe(CommandInfo::List)),
            subcommands: &[],
        },
        Spec {
            name: "command|info",
            arity: -2,
            flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary:
                "Get array of specific Redis command details, or all when no argument is given",
            since: "2.8.13",
            group: "server",
            parse: |args| Ok(Command::Describe(CommandInfo::Info(names(args)))),
            subcommands: &[],
        },
        Spec {
            name: "command|docs",
            arity: -2,
            flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Get array of specific Redis command documentation",
            since: "7.0.0",
            group: "server",
            parse: |args| Ok(Command::Describe(CommandInfo::Docs(names(args)))),
            subcommands: &[],
        },
    ],
};

/// The command names after `COMMAND INFO` or `COMMAND DOCS`.
fn names(args: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    args.into_iter().skip(2).collect()
}

/// Runs `COMMAND` and its subcommands.
pub fn command(info: CommandInfo) -> Reply {
    match info {
        CommandInfo::All => Reply::Array(TABLE.iter().map(describe).collect()),
        CommandInfo::Count => Reply::Integer(TABLE.len() as i64),
        CommandInfo::List => {
            Reply::Array(TABLE.iter().map(|spec| Reply::bulk(spec.name)).collect())
        }
        CommandInfo::Info(names) if names.is_empty() => command(CommandInfo::All),
        CommandInfo::Info(names) => Reply::Array(
            names
                .iter()
                // Redis answers a name it does not know with a null.
                .map(|name| find_any(name).map_or(Reply::Nil, describe))
                .collect(),
        ),
        CommandInfo::Docs(names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                TABLE.iter().collect()
            } else {
                names.iter().filter_map(|name| find_any(name)).collect()
            };
            // A map from name to documentation, flattened into an array as
            // RESP2 does with maps.
            Reply::Array(
                specs
                    .into_iter()
                    .flat_map(|spec| [Reply::bulk(spec.name), document(spec)])
                    .collect(),
            )
        }
    }
}

/// Finds a command, or a subcommand written as `command|count`.
fn find_any(name: &[u8]) -> Option<&'static Spec> {
    TABLE
        .iter()
        .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands))
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// A command's entry in `COMMAND INFO`: name, arity, flags, key positions,
/// ACL categories, tips, key specs and subcommands, as Redis 7.0 lists them.
fn describe(spec: &Spec) -> Reply {
    let status_list = |items: &[&'static str]| {
        Reply::Array(items.iter().map(|&item| Reply::Simple(item)).collect())
    };
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(spec.arity),
        status_list(&spec.flags.names()),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(spec.subcommands.iter().map(describe).collect()),
    ])
}

/// A command's entry in `COMMAND DOCS`.
fn document(spec: &Spec) -> Reply {
    let mut doc = vec![
        Reply::bulk("summary"),
        Reply::bulk(spec.summary),
        Reply::bulk("since"),
        Reply::bulk(spec.since),
        Reply::bulk("group"),
        Reply::bulk(spec.group),
    ];
    if !spec.subcommands.is_empty() {
        doc.push(Reply::bulk("subcommands"));
        doc.push(Reply::Array(
            spec.subcommands
                .iter()
                .flat_map(|sub| [Reply::bulk(sub.name), document(sub)])
                .collect(),
        ));
    }
    Reply::Array(doc)
}

//! Server commands: `COMMAND` and its subcommands, which describe the
//! command table to clients (`redis-cli` asks for `COMMAND DOCS` as it
//! starts and waits for the answer, so even a tiny server must reply);
//! DBSIZE, FLUSHDB and FLUSHALL, which concern the keyspace as a whole;
//! INFO; SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, SHUTDOWN; CONFIG GET and SET.

use super::{Flags, Op, Spec, TABLE};
use crate::config::Fsync;
use crate::db::Keyspace;
use crate::persist;
use crate::resp::Reply;
use crate::rewrite;
use crate::server::Server;

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
    parse: |_| Ok(Op::Describe(CommandInfo::All)),
    subcommands: &[
        Spec {
            name: "command|count",
            arity: 2,
            flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Get total number of Redis commands",
            since: "2.8.13",
            group: "server",
            parse: |_| Ok(Op::Describe(CommandInfo::Count)),
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
            parse: |_| Ok(Op::Describe(CommandInfo::List)),
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
            parse: |args| Ok(Op::Describe(CommandInfo::Info(names(args)))),
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
            parse: |args| Ok(Op::Describe(CommandInfo::Docs(names(args)))),
            subcommands: &[],
        },
    ],
};

/// `DBSIZE`: the number of keys.
pub const DBSIZE: Spec = Spec {
    name: "dbsize",
    arity: 1,
    flags: Flags::of(&[Flags::READONLY, Flags::FAST]),
    keys: (0, 0, 0),
    summary: "Return the number of keys in the selected database",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::DbSize),
    subcommands: &[],
};

/// `FLUSHDB [ASYNC|SYNC]`: delete every key.
pub const FLUSHDB: Spec = Spec {
    name: "flushdb",
    arity: -1,
    flags: Flags::of(&[Flags::WRITE]),
    keys: (0, 0, 0),
    summary: "Remove all keys from the current database",
    since: "1.0.0",
    group: "server",
    parse: parse_flush,
    subcommands: &[],
};

/// `FLUSHALL [ASYNC|SYNC]`: delete every key of every database; this
/// server has one.
pub const FLUSHALL: Spec = Spec {
    name: "flushall",
    arity: -1,
    flags: Flags::of(&[Flags::WRITE]),
    keys: (0, 0, 0),
    summary: "Remove all keys from all databases",
    since: "1.0.0",
    group: "server",
    parse: parse_flush,
    subcommands: &[],
};

/// Both flushes take one optional word, ASYNC or SYNC. Freeing memory in the
/// background is Redis's business; here both mean "now".
fn parse_flush(args: Vec<Vec<u8>>) -> Result<Op, Reply> {
    match args.as_slice() {
        [_] => Ok(Op::Flush),
        [_, mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            Ok(Op::Flush)
        }
        _ => Err(Reply::error("ERR syntax error")),
    }
}

/// `INFO [section ...]`
pub const INFO: Spec = Spec {
    name: "info",
    arity: -1,
    flags: Flags::of(&[Flags::LOADING, Flags::STALE]),
    keys: (0, 0, 0),
    summary: "Get information and statistics about the server",
    since: "1.0.0",
    group: "server",
    parse: |args| Ok(Op::Info(args.into_iter().skip(1).collect())),
    subcommands: &[],
};

/// Runs INFO. This server has three of Redis's sections, `persistence`,
/// `replication` and `keyspace`, in Redis's order and separated by an empty line as in
/// Redis; a section it does not know adds nothing, as in Redis.
///
/// The caller locks the keyspace and passes it in: inside EXEC, which
/// already holds the write lock, locking it again here would wait forever.
pub fn info(server: &Server, keyspace: &Keyspace, sections: &[Vec<u8>]) -> Reply {
    let everything = sections.is_empty()
        || sections.iter().any(|s| {
            [&b"default"[..], b"all", b"everything"]
                .iter()
                .any(|all| s.eq_ignore_ascii_case(all))
        });
    let wanted = |name: &[u8]| everything || sections.iter().any(|s| s.eq_ignore_ascii_case(name));
    let mut parts = Vec::new();
    if wanted(b"persistence") {
        let (saving, failed) = server.persistence.status();
        let mut text = String::from("# Persistence\r\nloading:0\r\nasync_loading:0\r\n");
        text.push_str(&format!(
            "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n",
            keyspace.dirty(),
            u8::from(saving),
            server.persistence.last_save(),
            if failed { "err" } else { "ok" },
        ));
        text.push_str(&server.aof.info());
        parts.push(text);
    }
    if wanted(b"replication") {
        parts.push(server.replication.info());
    }
    if wanted(b"keyspace") {
        let mut text = String::from("# Keyspace\r\n");
        // Redis's `avg_ttl` is an estimate its expiry cycle keeps; we keep none.
        if keyspace.len() > 0 {
            text.push_str(&format!(
                "db0:keys={},expires={},avg_ttl=0\r\n",
                keyspace.len(),
                keyspace.volatile_len()
            ));
        }
        parts.push(text);
    }
    Reply::Bulk(parts.join("\r\n").into_bytes())
}

/// `SAVE`: write the dump now.
pub const SAVE: Spec = Spec {
    name: "save",
    arity: 1,
    flags: Flags::of(&[
        Flags::ADMIN,
        Flags::NOSCRIPT,
        Flags::NO_ASYNC_LOADING,
        Flags::NO_MULTI,
    ]),
    keys: (0, 0, 0),
    summary: "Synchronously save the dataset to disk",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Save),
    subcommands: &[],
};

/// `BGSAVE [SCHEDULE]`: write the dump in the background.
pub const BGSAVE: Spec = Spec {
    name: "bgsave",
    arity: -1,
    flags: Flags::of(&[Flags::ADMIN, Flags::NOSCRIPT, Flags::NO_ASYNC_LOADING]),
    keys: (0, 0, 0),
    summary: "Asynchronously save the dataset to disk",
    since: "1.0.0",
    group: "server",
    parse: |args| match args.as_slice() {
        [_] => Ok(Op::BgSave),
        [_, option] if option.eq_ignore_ascii_case(b"schedule") => Ok(Op::BgSave),
        _ => Err(Reply::error("ERR syntax error")),
    },
    subcommands: &[],
};

/// `BGREWRITEAOF`: compact the append-only file in the background.
pub const BGREWRITEAOF: Spec = Spec {
    name: "bgrewriteaof",
    arity: 1,
    flags: Flags::of(&[Flags::ADMIN, Flags::NOSCRIPT, Flags::NO_ASYNC_LOADING]),
    keys: (0, 0, 0),
    summary: "Asynchronously rewrite the append-only file",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::BgRewriteAof),
    subcommands: &[],
};

/// `LASTSAVE`: when the last save succeeded, in Unix seconds.
pub const LASTSAVE: Spec = Spec {
    name: "lastsave",
    arity: 1,
    flags: Flags::of(&[Flags::LOADING, Flags::STALE, Flags::FAST]),
    keys: (0, 0, 0),
    summary: "Get the UNIX time stamp of the last successful save to disk",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::LastSave),
    subcommands: &[],
};

/// `SHUTDOWN [NOSAVE|SAVE]`
pub const SHUTDOWN: Spec = Spec {
    name: "shutdown",
    arity: -1,
    flags: Flags::of(&[
        Flags::ADMIN,
        Flags::NOSCRIPT,
        Flags::LOADING,
        Flags::STALE,
        Flags::NO_MULTI,
        Flags::ALLOW_BUSY,
    ]),
    keys: (0, 0, 0),
    summary: "Synchronously save the dataset to disk and then shut down the server",
    since: "1.0.0",
    group: "server",
    parse: |args| {
        let mut save = None;
        for option in &args[1..] {
            match option.to_ascii_lowercase().as_slice() {
                b"nosave" => save = Some(false),
                b"save" => save = Some(true),
                // The server has no other process to wait for: nothing to do.
                b"now" | b"force" => {}
                _ => return Err(Reply::error("ERR syntax error")),
            }
        }
        Ok(Op::Shutdown(save))
    },
    subcommands: &[],
};

/// `CONFIG GET parameter [parameter ...]`
pub const CONFIG: Spec = Spec {
    name: "config",
    arity: -2,
    flags: Flags::of(&[]),
    keys: (0, 0, 0),
    summary: "A container for server configuration commands",
    since: "2.0.0",
    group: "server",
    parse: |_| {
        Err(Reply::error(
            "ERR wrong number of arguments for 'config' command",
        ))
    },
    subcommands: &[
        Spec {
            name: "config|get",
            arity: -3,
            flags: Flags::of(&[Flags::ADMIN, Flags::NOSCRIPT, Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Get the values of configuration parameters",
            since: "2.0.0",
            group: "server",
            parse: |args| Ok(Op::ConfigGet(args.into_iter().skip(2).collect())),
            subcommands: &[],
        },
        Spec {
            name: "config|set",
            arity: -4,
            flags: Flags::of(&[Flags::ADMIN, Flags::NOSCRIPT, Flags::LOADING, Flags::STALE]),
            keys: (0, 0, 0),
            summary: "Set configuration parameters to the given values",
            since: "2.0.0",
            group: "server",
            parse: |args| {
                if args.len() % 2 != 0 {
                    return Err(Reply::error(
                        "ERR wrong number of arguments for 'config|set' command",
                    ));
                }
                let mut pairs = Vec::new();
                let mut rest = args.into_iter().skip(2);
                while let (Some(name), Some(value)) = (rest.next(), rest.next()) {
                    pairs.push((name, value));
                }
                Ok(Op::ConfigSet(pairs))
            },
            subcommands: &[],
        },
    ],
};

/// Runs SAVE.
pub fn save(server: &Server) -> Reply {
    match persist::save(server) {
        Ok(()) => Reply::ok(),
        Err(e) if e.contains("in progress") => Reply::error(format!("ERR {e}")),
        // Redis says no more than this; the log has the details.
        Err(_) => Reply::error("ERR"),
    }
}

/// Runs BGSAVE. Inside EXEC, the save can only see the data once the
/// transaction is over (it waits for the lock EXEC holds), so Redis's
/// word for that is used: scheduled.
pub fn bgsave(server: &Server, in_exec: bool) -> Reply {
    match persist::bgsave(server) {
        Ok(()) if in_exec => Reply::Simple("Background saving scheduled"),
        Ok(()) => Reply::Simple("Background saving started"),
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// Runs BGREWRITEAOF.
pub fn bgrewriteaof(server: &Server) -> Reply {
    match rewrite::start(server, false) {
        Ok(()) => Reply::Simple("Background append only file rewriting started"),
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// Runs CONFIG SET. Two parameters can change at run time: `appendonly`
/// (turning it on starts the log with a rewrite, as in Redis) and
/// `appendfsync`. Every pair is checked before any is applied.
pub fn config_set(server: &Server, pairs: &[(Vec<u8>, Vec<u8>)]) -> Reply {
    let mut appendonly = None;
    let mut policy = None;
    for (name, value) in pairs {
        let value = String::from_utf8_lossy(value).to_ascii_lowercase();
        match name.to_ascii_lowercase().as_slice() {
            b"appendonly" if value == "yes" || value == "no" => appendonly = Some(value == "yes"),
            b"appendonly" => {
                return Reply::error("ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'");
            }
            b"appendfsync" => match Fsync::parse(&value) {
                Some(fsync) => policy = Some(fsync),
                None => return Reply::error("ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no"),
            },
            _ => {
                let mut msg = b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
                msg.extend_from_slice(name);
                msg.push(b'\'');
                return Reply::Error(msg);
            }
        }
    }
    if let Some(fsync) = policy {
        server.aof.lock().policy = Some(fsync);
    }
    match appendonly {
        Some(true) if !server.aof.is_on() => {
            if let Err(e) = rewrite::start(server, true) {
                return Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument 'appendonly') - {e}"
                ));
            }
        }
        Some(false) => server.aof.close(),
        _ => {}
    }
    Reply::ok()
}

/// Runs CONFIG GET: name-value pairs of the parameters matching any pattern.
pub fn config_get(server: &Server, patterns: &[Vec<u8>]) -> Reply {
    let config = &server.config;
    // Like Redis, `dir` is the absolute path of the working directory.
    let dir = std::env::current_dir().map_or(config.dir.clone(), |d| d.display().to_string());
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
    let (on, policy) = {
        let aof = server.aof.lock();
        (aof.on, aof.policy.unwrap_or(config.appendfsync))
    };
    let parameters = [
        ("bind", config.bind.clone()),
        ("dbfilename", config.dbfilename.clone()),
        ("dir", dir),
        ("port", config.port.to_string()),
        ("save", config.save_points()),
        ("appendonly", yes_no(on)),
        ("appendfsync", policy.name().to_string()),
        ("appenddirname", config.appenddirname.clone()),
        ("appendfilename", config.appendfilename.clone()),
        ("aof-use-rdb-preamble", yes_no(config.aof_use_rdb_preamble)),
        ("aof-load-truncated", yes_no(config.aof_load_truncated)),
        (
            "auto-aof-rewrite-percentage",
            config.auto_aof_rewrite_percentage.to_string(),
        ),
        (
            "auto-aof-rewrite-min-size",
            config.auto_aof_rewrite_min_size.to_string(),
        ),
    ];
    // A plain name comes back as the client spelled it; a pattern brings
    // the parameters' own names. Each parameter appears once.
    let mut found: Vec<(Vec<u8>, &str)> = Vec::new();
    for pattern in patterns {
        let plain = !pattern.iter().any(|b| b"[*?".contains(b));
        for (name, _) in &parameters {
            let matched = if plain {
                pattern.eq_ignore_ascii_case(name.as_bytes())
            } else {
                glob_match(&pattern.to_ascii_lowercase(), name.as_bytes())
            };
            if matched && !found.iter().any(|(_, seen)| seen == name) {
                let shown = if plain {
                    pattern.clone()
                } else {
                    name.as_bytes().to_vec()
                };
                found.push((shown, name));
            }
        }
    }
    let value = |name: &str| {
        parameters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let mut reply = Vec::new();
    for (shown, name) in found {
        reply.push(Reply::Bulk(shown));
        reply.push(Reply::bulk(value(name).unwrap_or_default()));
    }
    Reply::Array(reply)
}

/// Matches `text` against a pattern where `*` stands for any run of
/// bytes and `?` for any one byte.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob_match(rest, text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some((b'?', rest)), Some((_, text_rest))) => glob_match(rest, text_rest),
        (Some((p, rest)), Some((t, text_rest))) if p == t => glob_match(rest, text_rest),
        _ => false,
    }
}

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

//! Server commands: INFO, CONFIG, TIME, SAVE, BGSAVE, LASTSAVE, SHUTDOWN,
//! MONITOR, and COMMAND (in `command.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::command::{self, CommandInfo};
use super::{rest, Context, Flags, Op, Session, Spec};
use crate::config::{Config, Fsync};
use crate::db::Db;
use crate::glob;
use crate::persist::Persistence;
use crate::resp::Reply;
use crate::shutdown;

/// A server command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// `COMMAND` and its subcommands.
    Describe(CommandInfo),
    /// `INFO [section ...]`
    Info(Vec<Vec<u8>>),
    /// `CONFIG GET parameter [parameter ...]`
    ConfigGet(Vec<Vec<u8>>),
    /// `CONFIG SET parameter value ...`
    ConfigSet(Vec<Vec<u8>>),
    /// `TIME`
    Time,
    /// `SAVE`
    Save,
    /// `BGSAVE`
    BgSave,
    /// `BGREWRITEAOF`
    BgRewriteAof,
    /// `LASTSAVE`
    LastSave,
    /// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]`
    Shutdown(shutdown::Flags),
    /// `SHUTDOWN ABORT`
    ShutdownAbort,
    /// `MONITOR`
    Monitor,
}

/// The server commands' rows of the table.
pub const COMMANDS: &[Spec] = &[
    command::COMMAND,
    INFO,
    CONFIG,
    TIME,
    SAVE,
    BGSAVE,
    BGREWRITEAOF,
    LASTSAVE,
    SHUTDOWN,
    MONITOR,
];

/// `INFO [section ...]`
pub const INFO: Spec = Spec {
    name: "info",
    arity: -1,
    flags: Flags::LOADING.and(Flags::STALE),
    keys: (0, 0, 0),
    summary: "Get information and statistics about the server",
    since: "1.0.0",
    group: "server",
    parse: |args| Ok(Op::Server(ServerOp::Info(rest(args, 1)))),
    subcommands: &[],
};

/// `TIME`
pub const TIME: Spec = Spec {
    name: "time",
    arity: 1,
    flags: Flags::LOADING.and(Flags::STALE).and(Flags::FAST),
    keys: (0, 0, 0),
    summary: "Return the current server time",
    since: "2.6.0",
    group: "server",
    parse: |_| Ok(Op::Server(ServerOp::Time)),
    subcommands: &[],
};

/// `MONITOR`
pub const MONITOR: Spec = Spec {
    name: "monitor",
    arity: 1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::LOADING)
        .and(Flags::STALE),
    keys: (0, 0, 0),
    summary: "Listen for all requests received by the server in real time",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Server(ServerOp::Monitor)),
    subcommands: &[],
};

/// `SAVE`: write the dump now.
pub const SAVE: Spec = Spec {
    name: "save",
    arity: 1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::NO_ASYNC_LOADING)
        .and(Flags::NO_MULTI),
    keys: (0, 0, 0),
    summary: "Synchronously save the dataset to disk",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Server(ServerOp::Save)),
    subcommands: &[],
};

/// `BGSAVE [SCHEDULE]`: write the dump in the background.
pub const BGSAVE: Spec = Spec {
    name: "bgsave",
    arity: -1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::NO_ASYNC_LOADING),
    keys: (0, 0, 0),
    summary: "Asynchronously save the dataset to disk",
    since: "1.0.0",
    group: "server",
    parse: |args| match args.as_slice() {
        [_] => Ok(Op::Server(ServerOp::BgSave)),
        [_, option] if option.eq_ignore_ascii_case(b"schedule") => Ok(Op::Server(ServerOp::BgSave)),
        _ => Err(Reply::error("ERR syntax error")),
    },
    subcommands: &[],
};

/// `BGREWRITEAOF`: compact the append-only file in the background.
pub const BGREWRITEAOF: Spec = Spec {
    name: "bgrewriteaof",
    arity: 1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::NO_ASYNC_LOADING),
    keys: (0, 0, 0),
    summary: "Asynchronously rewrite the append-only file",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Server(ServerOp::BgRewriteAof)),
    subcommands: &[],
};

/// `LASTSAVE`: when the last save succeeded, in Unix seconds.
pub const LASTSAVE: Spec = Spec {
    name: "lastsave",
    arity: 1,
    flags: Flags::LOADING.and(Flags::STALE).and(Flags::FAST),
    keys: (0, 0, 0),
    summary: "Get the UNIX time stamp of the last successful save to disk",
    since: "1.0.0",
    group: "server",
    parse: |_| Ok(Op::Server(ServerOp::LastSave)),
    subcommands: &[],
};

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`
pub const SHUTDOWN: Spec = Spec {
    name: "shutdown",
    arity: -1,
    flags: Flags::ADMIN
        .and(Flags::NOSCRIPT)
        .and(Flags::LOADING)
        .and(Flags::STALE)
        .and(Flags::NO_MULTI)
        .and(Flags::ALLOW_BUSY),
    keys: (0, 0, 0),
    summary: "Synchronously save the dataset to disk and then shut down the server",
    since: "1.0.0",
    group: "server",
    parse: |args| {
        let mut flags = shutdown::Flags::default();
        let (mut abort, mut nosave, mut save) = (false, false, false);
        for option in &args[1..] {
            match option.to_ascii_lowercase().as_slice() {
                b"nosave" => nosave = true,
                b"save" => save = true,
                b"now" => flags.now = true,
                b"force" => flags.force = true,
                b"abort" => abort = true,
                _ => return Err(Reply::error("ERR syntax error")),
            }
        }
        // As Redis: ABORT alone, and not both SAVE and NOSAVE.
        let any_flag = nosave || save || flags.now || flags.force;
        if (abort && any_flag) || (save && nosave) {
            return Err(Reply::error("ERR syntax error"));
        }
        if abort {
            return Ok(Op::Server(ServerOp::ShutdownAbort));
        }
        flags.save = (save || nosave).then_some(save);
        Ok(Op::Server(ServerOp::Shutdown(flags)))
    },
    subcommands: &[],
};

/// `CONFIG GET parameter [parameter ...]`
pub const CONFIG: Spec = Spec {
    name: "config",
    arity: -2,
    flags: Flags::NONE,
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
            name: "config|set",
            arity: -4,
            flags: Flags::ADMIN
                .and(Flags::NOSCRIPT)
                .and(Flags::LOADING)
                .and(Flags::STALE),
            keys: (0, 0, 0),
            summary: "Set configuration parameters to the given values",
            since: "2.0.0",
            group: "server",
            parse: |args| Ok(Op::Server(ServerOp::ConfigSet(rest(args, 2)))),
            subcommands: &[],
        },
        Spec {
            name: "config|get",
            arity: -3,
            flags: Flags::ADMIN
                .and(Flags::NOSCRIPT)
                .and(Flags::LOADING)
                .and(Flags::STALE),
            keys: (0, 0, 0),
            summary: "Get the values of configuration parameters",
            since: "2.0.0",
            group: "server",
            parse: |args| Ok(Op::Server(ServerOp::ConfigGet(rest(args, 2)))),
            subcommands: &[],
        },
    ],
};

/// Runs a server command that needs no data; hands the others (INFO,
/// which reads the databases under its caller's lock; SAVE and SHUTDOWN,
/// which lock them) back. `in_exec` says the command runs inside EXEC.
pub fn run(
    op: ServerOp,
    ctx: &Context,
    session: &mut Session,
    in_exec: bool,
) -> Result<Reply, ServerOp> {
    Ok(match op {
        ServerOp::Describe(info) => command::command(info),
        ServerOp::ConfigGet(patterns) => config_get(ctx, &patterns),
        ServerOp::ConfigSet(args) => config_set(ctx, &args),
        ServerOp::Time => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk(now.as_secs().to_string()),
                Reply::bulk(now.subsec_micros().to_string()),
            ])
        }
        ServerOp::BgSave => bgsave(ctx.persistence, in_exec),
        ServerOp::BgRewriteAof => match ctx.aof.request_rewrite(false) {
            Ok(()) => Reply::Simple("Background append only file rewriting started"),
            Err(e) => Reply::error(format!("ERR {e}")),
        },
        ServerOp::LastSave => Reply::Integer(ctx.persistence.last_save()),
        ServerOp::Monitor => {
            session.monitor = true;
            Reply::ok()
        }
        ServerOp::ShutdownAbort => match shutdown::abort() {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::error(e),
        },
        op @ (ServerOp::Info(_) | ServerOp::Save | ServerOp::Shutdown(_)) => return Err(op),
    })
}

/// Runs SAVE: in this thread, which must not hold the databases' lock.
pub fn save(persistence: &Persistence, db: &Db) -> Reply {
    match persistence.save(db) {
        Ok(()) => Reply::ok(),
        Err(e) if e.contains("in progress") => Reply::error(format!("ERR {e}")),
        // Redis says no more than this; the log has the details.
        Err(_) => Reply::error("ERR"),
    }
}

/// Runs BGSAVE. Inside EXEC, the save can only see the data once the
/// transaction is over (it waits for the lock EXEC holds), so Redis's
/// word for that is used: scheduled.
pub fn bgsave(persistence: &Persistence, in_exec: bool) -> Reply {
    match persistence.bgsave() {
        Ok(()) if in_exec => Reply::Simple("Background saving scheduled"),
        Ok(()) => Reply::Simple("Background saving started"),
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// Runs CONFIG SET parameter value [parameter value ...].
fn config_set(ctx: &Context, args: &[Vec<u8>]) -> Reply {
    if !args.len().is_multiple_of(2) {
        return Reply::error("ERR syntax error");
    }
    let text = |bytes: &Vec<u8>| String::from_utf8_lossy(bytes).into_owned();
    let pairs: Vec<(String, String)> = args
        .chunks(2)
        .map(|pair| (text(&pair[0]).to_ascii_lowercase(), text(&pair[1])))
        .collect();
    // `port` and `bind` start from where the server listens now, and
    // belong to the listeners: they move once every value has been
    // checked, before the others change, so a port that is taken leaves
    // everything as it was.
    let mut base = ctx.config.clone();
    base.port = ctx.listeners.port();
    base.bind = ctx.listeners.bind();
    let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    let listening = names.contains(&"port") || names.contains(&"bind");
    let moved = |checked: &Config| {
        if !listening {
            return Ok(());
        }
        let moved = ctx.listeners.rebind(checked.bind.clone(), checked.port);
        moved.map_err(|e| {
            let name = if names.contains(&"bind") {
                "bind"
            } else {
                "port"
            };
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
        })
    };
    if let Err(msg) = ctx.settings.set(&base, &pairs, moved) {
        return Reply::error(msg);
    }
    // The log's two parameters belong to it; the values are checked.
    for (name, value) in &pairs {
        match name.as_str() {
            "appendfsync" => {
                if let Some(policy) = Fsync::parse(value) {
                    ctx.aof.set_policy(policy);
                }
            }
            // Turning the log on starts it with a rewrite, as in Redis.
            "appendonly" if value.eq_ignore_ascii_case("yes") && !ctx.aof.is_on() => {
                if let Err(e) = ctx.aof.request_rewrite(true) {
                    return Reply::error(format!(
                        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - {e}"
                    ));
                }
            }
            "appendonly" if value.eq_ignore_ascii_case("no") => ctx.aof.close(),
            _ => {}
        }
    }
    Reply::ok()
}

/// Runs CONFIG GET: name-value pairs of the parameters matching any pattern.
pub fn config_get(ctx: &Context, patterns: &[Vec<u8>]) -> Reply {
    let (config, settings) = (&ctx.config, &ctx.settings);
    // Like Redis, `dir` is the absolute path of the working directory.
    let dir = std::env::current_dir().map_or(config.dir.clone(), |d| d.display().to_string());
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
    let appendonly = ctx.aof.is_on() || ctx.aof.lock().requested == Some(true);
    let parameters = [
        ("appendonly", yes_no(appendonly)),
        ("appendfsync", ctx.aof.policy().name().to_string()),
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
        ("bind", ctx.listeners.bind().join(" ")),
        (
            "client-output-buffer-limit",
            settings.client_output_buffer_limit(),
        ),
        (
            "client-query-buffer-limit",
            settings.client_query_buffer_limit().to_string(),
        ),
        ("databases", config.databases.to_string()),
        ("dbfilename", config.dbfilename.clone()),
        ("dir", dir),
        ("maxclients", settings.maxclients().to_string()),
        (
            "notify-keyspace-events",
            settings.notify_keyspace_events().to_text(),
        ),
        ("port", ctx.listeners.port().to_string()),
        (
            "proto-max-bulk-len",
            settings.proto_max_bulk_len().to_string(),
        ),
        ("rdbcompression", yes_no(settings.rdbcompression())),
        (
            "replicaof",
            config
                .replicaof
                .as_ref()
                .map_or(String::new(), |(h, p)| format!("{h} {p}")),
        ),
        ("requirepass", settings.requirepass()),
        ("save", settings.save_points()),
        ("shutdown-timeout", settings.shutdown_timeout().to_string()),
        (
            "stop-writes-on-bgsave-error",
            yes_no(settings.stop_writes_on_bgsave_error()),
        ),
        ("tcp-backlog", config.tcp_backlog.to_string()),
        ("timeout", settings.timeout().to_string()),
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
                glob::matches(pattern, name.as_bytes(), true)
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
    Reply::Map(
        found
            .into_iter()
            .map(|(shown, name)| {
                (
                    Reply::Bulk(shown),
                    Reply::bulk(value(name).unwrap_or_default()),
                )
            })
            .collect(),
    )
}

//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT, RESET.

use super::{arg, parse_int, Context, Flags, Op, Session, Spec};
use crate::resp::{Args, Protocol, Reply};
use crate::sync::lock;

/// A connection command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnOp {
    /// `PING [message]`
    Ping(Option<Vec<u8>>),
    /// `ECHO message`
    Echo(Vec<u8>),
    /// `SELECT index`
    Select(i64),
    /// `AUTH [username] password`
    Auth {
        /// The command's name as the client spelt it, for ACL LOG.
        command: Vec<u8>,
        /// The user, if given.
        user: Option<Vec<u8>>,
        /// The password.
        password: Vec<u8>,
    },
    /// `HELLO [protover [AUTH username password] [SETNAME name]]`
    Hello {
        /// The command's name as the client spelt it, for ACL LOG.
        command: Vec<u8>,
        /// The protocol version asked for.
        protocol: Option<i64>,
        /// AUTH's username and password.
        auth: Option<(Vec<u8>, Vec<u8>)>,
        /// SETNAME's name.
        name: Option<Vec<u8>>,
    },
    /// `CLIENT ID`
    ClientId,
    /// `CLIENT SETNAME name`
    ClientSetName(Vec<u8>),
    /// `CLIENT GETNAME`
    ClientGetName,
    /// `CLIENT LIST`
    ClientList,
    /// `CLIENT INFO`
    ClientInfo,
    /// `RESET`: run by `execute`, which holds what it needs.
    Reset,
}

/// Builds a row of this group.
macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $summary:literal, $since:literal, $parse:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: (0, 0, 0),
            summary: $summary,
            since: $since,
            group: "connection",
            parse: $parse,
            subcommands: &[],
        }
    };
}

/// The connection commands' rows of the table.
/// The flags of the commands a client may send at any time, before AUTH
/// and while the server loads or a script runs (QUIT, RESET, AUTH, HELLO),
/// as Redis 7.0 gives them.
const ANY_TIME: Flags = Flags::NOSCRIPT
    .and(Flags::LOADING)
    .and(Flags::STALE)
    .and(Flags::FAST)
    .and(Flags::NO_AUTH)
    .and(Flags::ALLOW_BUSY);

pub const COMMANDS: &[Spec] = &[
    spec!(
        "ping",
        -1,
        Flags::FAST,
        "Ping the server",
        "1.0.0",
        |args| match args.len() {
            1 => Ok(Op::Conn(ConnOp::Ping(None))),
            2 => Ok(Op::Conn(ConnOp::Ping(Some(arg(args, 1))))),
            _ => Err(Reply::error(
                "ERR wrong number of arguments for 'ping' command"
            )),
        }
    ),
    spec!(
        "echo",
        2,
        Flags::FAST,
        "Echo the given string",
        "1.0.0",
        |args| { Ok(Op::Conn(ConnOp::Echo(arg(args, 1)))) }
    ),
    // Redis 7.0 accepts QUIT with any arguments.
    spec!(
        "quit",
        -1,
        ANY_TIME,
        "Close the connection",
        "1.0.0",
        |_| { Ok(Op::Quit) }
    ),
    spec!(
        "reset",
        1,
        ANY_TIME,
        "Reset the connection",
        "6.2.0",
        |_| { Ok(Op::Conn(ConnOp::Reset)) }
    ),
    spec!(
        "select",
        2,
        Flags::LOADING.and(Flags::STALE).and(Flags::FAST),
        "Change the selected database for the current connection",
        "1.0.0",
        |args| {
            // Redis reads the index as a C int first.
            let index = parse_int(&args[1])?;
            if i32::try_from(index).is_err() {
                return Err(Reply::error(
                    "ERR value is out of range, value must between -2147483648 and 2147483647",
                ));
            }
            Ok(Op::Conn(ConnOp::Select(index)))
        }
    ),
    spec!(
        "auth",
        -2,
        ANY_TIME,
        "Authenticate to the server",
        "1.0.0",
        |args| {
            let mut args = args.into_iter();
            let command = args.next().unwrap_or_default();
            let (user, password) = match (args.next(), args.next(), args.next()) {
                (Some(password), None, None) => (None, password),
                (Some(user), Some(password), None) => (Some(user), password),
                _ => return Err(Reply::error("ERR syntax error")),
            };
            Ok(Op::Conn(ConnOp::Auth {
                command,
                user,
                password,
            }))
        }
    ),
    spec!(
        "hello",
        -1,
        ANY_TIME,
        "Handshake with Redis",
        "6.0.0",
        parse_hello
    ),
    Spec {
        name: "client",
        arity: -2,
        flags: Flags::NONE,
        keys: (0, 0, 0),
        summary: "A container for client connection commands",
        since: "2.4.0",
        group: "connection",
        parse: |_| {
            Err(Reply::error(
                "ERR wrong number of arguments for 'client' command",
            ))
        },
        subcommands: &[
            spec!(
                "client|id",
                2,
                Flags::NOSCRIPT.and(Flags::LOADING).and(Flags::STALE),
                "Returns the client ID for the current connection",
                "5.0.0",
                |_| { Ok(Op::Conn(ConnOp::ClientId)) }
            ),
            spec!(
                "client|setname",
                3,
                Flags::NOSCRIPT.and(Flags::LOADING).and(Flags::STALE),
                "Set the current connection name",
                "2.6.9",
                |args| { Ok(Op::Conn(ConnOp::ClientSetName(arg(args, 2)))) }
            ),
            spec!(
                "client|getname",
                2,
                Flags::NOSCRIPT.and(Flags::LOADING).and(Flags::STALE),
                "Get the current connection name",
                "2.6.9",
                |_| { Ok(Op::Conn(ConnOp::ClientGetName)) }
            ),
            spec!(
                "client|list",
                -2,
                Flags::ADMIN
                    .and(Flags::NOSCRIPT)
                    .and(Flags::LOADING)
                    .and(Flags::STALE),
                "Get the list of client connections",
                "2.4.0",
                |_| { Ok(Op::Conn(ConnOp::ClientList)) }
            ),
            spec!(
                "client|info",
                2,
                Flags::NOSCRIPT.and(Flags::LOADING).and(Flags::STALE),
                "Returns information about the current client connection.",
                "6.2.0",
                |_| { Ok(Op::Conn(ConnOp::ClientInfo)) }
            ),
        ],
    },
];

fn parse_hello(args: Args) -> Result<Op, Reply> {
    let mut args = args.into_iter();
    let command = args.next().unwrap_or_default();
    let protocol = match args.next() {
        None => None,
        Some(version) => Some(crate::resp::parse_int(&version).ok_or_else(|| {
            Reply::error("ERR Protocol version is not an integer or out of range")
        })?),
    };
    let (mut auth, mut name) = (None, None);
    while let Some(option) = args.next() {
        let syntax = || {
            let mut msg = b"ERR Syntax error in HELLO option '".to_vec();
            msg.extend_from_slice(&option);
            msg.push(b'\'');
            Reply::Error(msg)
        };
        match option.to_ascii_lowercase().as_slice() {
            b"auth" => match (args.next(), args.next()) {
                (Some(user), Some(password)) => auth = Some((user, password)),
                _ => return Err(syntax()),
            },
            b"setname" => name = Some(args.next().ok_or_else(syntax)?),
            _ => return Err(syntax()),
        }
    }
    Ok(Op::Conn(ConnOp::Hello {
        command,
        protocol,
        auth,
        name,
    }))
}

/// Runs a connection command.
pub fn run(op: ConnOp, ctx: &Context, session: &mut Session) -> Reply {
    match op {
        // A subscriber reads frames, not replies: PING answers with one.
        ConnOp::Ping(message) if session.in_subscribed_mode() => Reply::Array(vec![
            Reply::bulk("pong"),
            Reply::Bulk(message.unwrap_or_default()),
        ]),
        ConnOp::Ping(None) => Reply::Simple("PONG"),
        ConnOp::Ping(Some(message)) | ConnOp::Echo(message) => Reply::Bulk(message),
        ConnOp::Select(index) => match usize::try_from(index) {
            Ok(index) if index < ctx.config.databases => {
                session.selected = index;
                Reply::ok()
            }
            _ => Reply::error("ERR DB index is out of range"),
        },
        ConnOp::Auth {
            command,
            user,
            password,
        } => auth(ctx, session, &command, user.as_deref(), &password),
        ConnOp::Hello {
            command,
            protocol,
            auth: credentials,
            name,
        } => {
            let protocol = match protocol {
                None => session.protocol,
                Some(2) => Protocol::Resp2,
                Some(3) => Protocol::Resp3,
                Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            };
            if let Some((user, password)) = credentials {
                let reply = auth(ctx, session, &command, Some(&user), &password);
                if matches!(reply, Reply::Error(_)) {
                    return reply;
                }
            }
            if !session.authenticated {
                return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            }
            if let Some(name) = name {
                if let Err(error) = set_name(session, name) {
                    return error;
                }
            }
            session.protocol = protocol;
            if let Some(subs) = &session.pubsub {
                subs.outbox().set_protocol(protocol);
            }
            let version = if protocol == Protocol::Resp3 { 3 } else { 2 };
            if let Some(client) = &session.client {
                lock(&client.state).resp = version;
            }
            let role = if ctx.replication.is_replica() {
                "slave"
            } else {
                "master"
            };
            Reply::Map(vec![
                (Reply::bulk("server"), Reply::bulk("redis")),
                (Reply::bulk("version"), Reply::bulk("7.0.15")),
                (Reply::bulk("proto"), Reply::Integer(version.into())),
                (Reply::bulk("id"), Reply::Integer(session.id as i64)),
                (Reply::bulk("mode"), Reply::bulk("standalone")),
                (Reply::bulk("role"), Reply::bulk(role)),
                (Reply::bulk("modules"), Reply::Array(vec![])),
            ])
        }
        ConnOp::ClientId => Reply::Integer(session.id as i64),
        ConnOp::ClientSetName(name) => match set_name(session, name) {
            Ok(()) => Reply::ok(),
            Err(error) => error,
        },
        ConnOp::ClientGetName => match &session.client {
            Some(client) => {
                let name = lock(&client.state).name.clone();
                if name.is_empty() {
                    Reply::Nil
                } else {
                    Reply::Bulk(name)
                }
            }
            None => Reply::Nil,
        },
        ConnOp::ClientList => {
            let mut list = String::new();
            for client in ctx.clients.all() {
                list.push_str(&client.describe());
                list.push('\n');
            }
            Reply::Bulk(list.into_bytes())
        }
        // Only reached inside EXEC; `execute` runs it everywhere else.
        ConnOp::Reset => Reply::Simple("RESET"),
        ConnOp::ClientInfo => match &session.client {
            Some(client) => Reply::Bulk(format!("{}\n", client.describe()).into_bytes()),
            None => Reply::Nil,
        },
    }
}

/// AUTH: only the `default` user exists; its password is `requirepass`.
/// A failure is recorded in ACL LOG under `command`, as Redis does.
fn auth(
    ctx: &Context,
    session: &mut Session,
    command: &[u8],
    user: Option<&[u8]>,
    password: &[u8],
) -> Reply {
    let required = ctx.settings.requirepass();
    let required = required.as_bytes();
    let accepted = match user {
        None if required.is_empty() => return Reply::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
        // The default user has no password: anything goes, as in Redis.
        Some(b"default") if required.is_empty() => true,
        _ => user.is_none_or(|user| user == b"default") & same_bytes(password, required),
    };
    if accepted {
        if !required.is_empty() {
            session.authenticated = true;
        }
        return Reply::ok();
    }
    let client_info = session
        .client
        .as_ref()
        .map(|client| client.describe())
        .unwrap_or_default();
    ctx.clients
        .acl_log
        .auth_failed(command, user.unwrap_or(b"default"), client_info);
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guess was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= usize::from(x ^ y);
    }
    difference == 0
}

/// CLIENT SETNAME's rule: printable characters but blanks; empty clears.
fn set_name(session: &Session, name: Vec<u8>) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    if let Some(client) = &session.client {
        lock(&client.state).name = name;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn comparison() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secret", b"secreT"));
        assert!(!same_bytes(b"secret", b"secret1"));
        assert!(!same_bytes(b"", b"x"));
    }
}

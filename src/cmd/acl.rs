//! ACL: only `ACL LOG`, where failed authentications are recorded (see
//! `acl_log.rs`). This server has one user, `default`, and no ACL rules.

use super::{parse_int, Context, Flags, Op, Spec};
use crate::resp::Reply;
use crate::time::unix_millis;

/// `ACL LOG [count | RESET]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclOp {
    /// Show the newest entries, at most this many.
    Log(usize),
    /// Forget every entry.
    Reset,
}

/// The ACL command's row of the table.
pub const COMMANDS: &[Spec] = &[ACL];

/// `ACL <subcommand>`: a container, as in Redis.
pub const ACL: Spec = Spec {
    name: "acl",
    arity: -2,
    flags: Flags::NONE,
    keys: (0, 0, 0),
    summary: "A container for Access List Control commands",
    since: "6.0.0",
    group: "server",
    parse: |_| {
        Err(Reply::error(
            "ERR wrong number of arguments for 'acl' command",
        ))
    },
    subcommands: &[Spec {
        name: "acl|log",
        arity: -2,
        flags: Flags::ADMIN
            .and(Flags::NOSCRIPT)
            .and(Flags::LOADING)
            .and(Flags::STALE),
        keys: (0, 0, 0),
        summary: "List latest events denied because of ACLs in place",
        since: "6.0.0",
        group: "server",
        parse: |args| match args.as_slice() {
            [_, _] => Ok(Op::Acl(AclOp::Log(10))),
            [_, _, option] if option.eq_ignore_ascii_case(b"reset") => Ok(Op::Acl(AclOp::Reset)),
            // A negative count shows nothing, as in Redis.
            [_, _, count] => Ok(Op::Acl(AclOp::Log(
                usize::try_from(parse_int(count)?).unwrap_or(0),
            ))),
            [_, sub, ..] => {
                let mut msg = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
                msg.extend_from_slice(sub);
                msg.extend_from_slice(b"'. Try ACL HELP.");
                Err(Reply::Error(msg))
            }
            _ => Err(Reply::error("ERR syntax error")),
        },
        subcommands: &[],
    }],
};

/// Runs ACL LOG: each entry as Redis shows it, newest first.
pub fn run(op: AclOp, ctx: &Context) -> Reply {
    let log = &ctx.clients.acl_log;
    let count = match op {
        AclOp::Reset => {
            log.reset();
            return Reply::ok();
        }
        AclOp::Log(count) => count,
    };
    let now = unix_millis();
    let entries = log
        .newest(count)
        .into_iter()
        .map(|entry| {
            let age = (now - entry.at) as f64 / 1000.0;
            Reply::Map(vec![
                (Reply::bulk("count"), Reply::Integer(entry.count as i64)),
                (Reply::bulk("reason"), Reply::bulk("auth")),
                (Reply::bulk("context"), Reply::bulk("toplevel")),
                (Reply::bulk("object"), Reply::Bulk(entry.object)),
                (Reply::bulk("username"), Reply::Bulk(entry.username)),
                (Reply::bulk("age-seconds"), Reply::bulk(g17(age))),
                (Reply::bulk("client-info"), Reply::bulk(entry.client_info)),
            ])
        })
        .collect();
    Reply::Array(entries)
}

/// A double as C's `%.17g` prints it, which is how Redis sends one in
/// RESP2: 17 significant digits, trailing zeros dropped (`0.0080000000000000002`).
fn g17(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value == 0.0 {
            "0".into()
        } else {
            value.to_string()
        };
    }
    let exponent = value.abs().log10().floor() as i32;
    if !(-4..17).contains(&exponent) {
        // Ages never get here; the short form is close enough.
        return format!("{value:e}");
    }
    let decimals = (16 - exponent).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::g17;

    #[test]
    fn doubles_print_as_c_does_with_17_digits() {
        assert_eq!(g17(0.008), "0.0080000000000000002");
        assert_eq!(g17(0.402), "0.40200000000000002");
        assert_eq!(g17(4.817), "4.8170000000000002");
        assert_eq!(g17(0.012), "0.012");
        assert_eq!(g17(12.0), "12");
        assert_eq!(g17(0.0), "0");
    }
}

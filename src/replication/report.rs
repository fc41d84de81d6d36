//! How replication looks from outside: the `# Replication` section of
//! INFO and the reply to ROLE, in Redis's format.

use super::{Replication, Role, BACKLOG_SIZE};
use crate::resp::Reply;

impl Replication {
    /// The `# Replication` section of INFO.
    pub fn info(&self) -> String {
        let state = self.lock();
        let mut out = String::from("# Replication\r\n");
        let mut line = |text: String| {
            out.push_str(&text);
            out.push_str("\r\n");
        };
        match &state.role {
            Role::Master => {
                line("role:master".into());
                line(format!("connected_slaves:{}", state.replicas.len()));
                for (i, link) in state.replicas.iter().enumerate() {
                    line(format!(
                        "slave{i}:ip={},port={},state=online,offset={},lag={}",
                        link.ip,
                        link.port,
                        link.ack_offset,
                        link.last_ack.elapsed().as_secs()
                    ));
                }
            }
            Role::Replica(upstream) => {
                line("role:slave".into());
                line(format!("master_host:{}", upstream.host));
                line(format!("master_port:{}", upstream.port));
                let status = if upstream.link_up { "up" } else { "down" };
                line(format!("master_link_status:{status}"));
                let last_io = if upstream.link_up {
                    upstream.last_io.elapsed().as_secs() as i64
                } else {
                    -1
                };
                line(format!("master_last_io_seconds_ago:{last_io}"));
                line(format!(
                    "master_sync_in_progress:{}",
                    u8::from(!upstream.link_up)
                ));
                line(format!("slave_read_repl_offset:{}", state.offset));
                line(format!("slave_repl_offset:{}", state.offset));
                line("slave_priority:100".into());
                line("slave_read_only:1".into());
                line("replica_announced:1".into());
                line("connected_slaves:0".into());
            }
        }
        line("master_failover_state:no-failover".into());
        line(format!("master_replid:{}", state.replid));
        line(format!("master_replid2:{}", "0".repeat(40)));
        line(format!("master_repl_offset:{}", state.offset));
        line("second_repl_offset:-1".into());
        let (active, first, histlen) = match &state.backlog {
            Some(backlog) => (1, backlog.first_byte, backlog.bytes.len()),
            None => (0, 0, 0),
        };
        line(format!("repl_backlog_active:{active}"));
        line(format!("repl_backlog_size:{BACKLOG_SIZE}"));
        line(format!("repl_backlog_first_byte_offset:{first}"));
        line(format!("repl_backlog_histlen:{histlen}"));
        out
    }

    /// The reply to ROLE.
    pub fn role_reply(&self) -> Reply {
        let state = self.lock();
        match &state.role {
            Role::Master => Reply::Array(vec![
                Reply::bulk("master"),
                Reply::Integer(state.offset),
                Reply::Array(
                    state
                        .replicas
                        .iter()
                        .map(|link| {
                            Reply::Array(vec![
                                Reply::bulk(link.ip.to_string()),
                                Reply::bulk(link.port.to_string()),
                                Reply::bulk(link.ack_offset.to_string()),
                            ])
                        })
                        .collect(),
                ),
            ]),
            Role::Replica(upstream) => Reply::Array(vec![
                Reply::bulk("slave"),
                Reply::bulk(upstream.host.as_str()),
                Reply::Integer(i64::from(upstream.port)),
                Reply::bulk(if upstream.link_up {
                    "connected"
                } else {
                    "connecting"
                }),
                Reply::Integer(state.offset),
            ]),
        }
    }
}

//! INFO: the server's sections, in Redis's `name:value` format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Context;
use crate::db::Databases;
use crate::expire;
use crate::time::unix_millis;

/// The sections INFO shows by default, in order.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "keyspace",
];

/// INFO's text for the asked sections (none: the default ones). A section
/// Redis knows but this server does not, or any unknown name, adds nothing.
/// `dbs` are the databases, already locked by the caller (EXEC holds the
/// write lock); `ctx` has no handle to lock them again.
pub fn info(ctx: &Context, dbs: &Databases, asked: &[Vec<u8>]) -> String {
    let wanted: Vec<String> = asked
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let everything = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| ["all", "everything", "default"].contains(&w.as_str()));
    let mut sections = Vec::new();
    for name in DEFAULT {
        if everything || wanted.iter().any(|w| w == name) {
            sections.push(section(ctx, dbs, name));
        }
    }
    sections.join("\r\n")
}

fn section(ctx: &Context, dbs: &Databases, name: &str) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push_str("\r\n");
    };
    let uptime = ctx.started.elapsed().as_secs();
    match name {
        "server" => {
            line("# Server".into());
            line("redis_version:7.0.15".into());
            line("redis_git_sha1:00000000".into());
            line("redis_git_dirty:0".into());
            line("redis_mode:standalone".into());
            line(format!(
                "os:{} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ));
            line("arch_bits:64".into());
            line("multiplexing_api:threads".into());
            line(format!("process_id:{}", std::process::id()));
            line(format!("tcp_port:{}", ctx.listeners.port()));
            line(format!("server_time_usec:{}", unix_millis() * 1000));
            line(format!("uptime_in_seconds:{uptime}"));
            line(format!("uptime_in_days:{}", uptime / 86_400));
            line("hz:10".into());
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            line(format!("executable:{exe}"));
        }
        "clients" => {
            line("# Clients".into());
            line(format!("connected_clients:{}", ctx.clients.count()));
            line(format!("maxclients:{}", ctx.settings.maxclients()));
            line("blocked_clients:0".into());
        }
        "memory" => {
            let rss = resident_bytes();
            let used = crate::alloc::allocated() as u64;
            line("# Memory".into());
            line(format!("used_memory:{used}"));
            line(format!("used_memory_human:{}", human(used)));
            line(format!("used_memory_rss:{rss}"));
            line(format!("used_memory_rss_human:{}", human(rss)));
            line("maxmemory:0".into());
            line("maxmemory_policy:noeviction".into());
        }
        "persistence" => {
            let dirty: u64 = dbs.dirty().iter().sum();
            line("# Persistence".into());
            line("loading:0".into());
            line(format!("rdb_changes_since_last_save:{dirty}"));
            line(format!(
                "rdb_bgsave_in_progress:{}",
                u8::from(ctx.persistence.in_progress())
            ));
            line(format!(
                "rdb_last_save_time:{}",
                ctx.persistence.last_save()
            ));
            let status = if ctx.persistence.bgsave_failed() {
                "err"
            } else {
                "ok"
            };
            line(format!("rdb_last_bgsave_status:{status}"));
            for aof_line in ctx.aof.info().lines() {
                line(aof_line.to_string());
            }
        }
        "stats" => {
            let clients = &ctx.clients;
            let (received, sent) = clients.net_bytes();
            let syncs = ctx.replication.sync_stats();
            let expired: u64 = dbs.iter().map(|keyspace| keyspace.expired_count()).sum();
            line("# Stats".into());
            line(format!(
                "total_connections_received:{}",
                clients.connections_received.load(Ordering::Relaxed)
            ));
            line(format!(
                "total_commands_processed:{}",
                clients.commands_processed.load(Ordering::Relaxed)
            ));
            line(format!("total_net_input_bytes:{received}"));
            line(format!("total_net_output_bytes:{sent}"));
            line(format!(
                "rejected_connections:{}",
                clients.rejected.load(Ordering::Relaxed)
            ));
            line(format!("sync_full:{}", syncs.full));
            line(format!("sync_partial_ok:{}", syncs.partial_ok));
            line(format!("sync_partial_err:{}", syncs.partial_err));
            line(format!("expired_keys:{expired}"));
            line(format!("expired_stale_perc:{:.2}", expire::stale_percent()));
            // No `maxmemory` eviction in this server: nothing is evicted.
            line("evicted_keys:0".into());
            let (channels, patterns, shards) = ctx.pubsub.sizes();
            line(format!("pubsub_channels:{channels}"));
            line(format!("pubsub_patterns:{patterns}"));
            line(format!("pubsubshard_channels:{shards}"));
        }
        "replication" => {
            // Already ends with CRLF.
            let text = ctx.replication.info();
            return text;
        }
        "keyspace" => {
            line("# Keyspace".into());
            for (index, keyspace) in dbs.iter().enumerate() {
                if keyspace.len() > 0 {
                    let mut text = String::new();
                    let _ = write!(
                        text,
                        "db{index}:keys={},expires={},avg_ttl=0",
                        keyspace.len(),
                        keyspace.volatile_len()
                    );
                    line(text);
                }
            }
        }
        _ => {}
    }
    out
}

/// The process's resident memory in bytes, from /proc (0 where absent).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes in Redis's human form: `1.50M`.
fn human(bytes: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

//! Time, and active expiry: the thread that deletes expired keys nobody reads.
//!
//! Lazy expiry hides an expired key from every lookup (`Keyspace::get`, in
//! `db.rs`) and deletes it once the command is done (`execute`, in
//! `cmd/mod.rs`), but a key that is never looked up again would stay in
//! memory forever. So, like Redis, a background cycle runs `HZ` times a
//! second, samples keys that have an expiry and deletes the expired ones. It never scans the
//! whole keyspace: it samples, and keeps sampling only while the samples
//! say that many keys are expired.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::db::Db;
use crate::replication::Replication;
use crate::server::Server;

/// Cycles per second (Redis's `hz`, default 10).
pub const HZ: u64 = 10;
/// Keys sampled per round (`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_ROUND: usize = 20;
/// Sample again while more than this percentage of a round was expired
/// (`ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`).
pub const ACCEPTABLE_STALE: usize = 10;
/// Share of each cycle's period it may use (`ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
pub const TIME_PERCENT: u64 = 25;

/// The wall clock in Unix milliseconds: expiry deadlines are absolute
/// times, as EXPIREAT and the RDB format define them.
pub fn unix_millis() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as i64
}

/// Starts the active expiry thread. It works only while the server is a
/// master: a replica waits for its master's DELs.
pub fn spawn_cycle(server: Server) -> std::io::Result<()> {
    let period = Duration::from_millis(1000 / HZ);
    let budget = period * TIME_PERCENT as u32 / 100;
    thread::Builder::new()
        .name("active-expire".into())
        .spawn(move || {
            let mut cursor = 0;
            loop {
                let started = Instant::now();
                if !server.replication.is_replica() {
                    run_cycle(
                        &server.db,
                        &server.replication,
                        unix_millis,
                        &mut cursor,
                        budget,
                    );
                }
                thread::sleep(period.saturating_sub(started.elapsed()));
            }
        })?;
    Ok(())
}

/// What one cycle did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CycleStats {
    /// Keys looked at.
    pub sampled: usize,
    /// Keys deleted.
    pub expired: usize,
}

/// One cycle of Redis 7.0's active expiry: rounds of `KEYS_PER_ROUND`
/// keys with an expiry; delete the expired ones; go on while more than
/// `ACCEPTABLE_STALE` percent of a round was expired and the time `budget`
/// lasts. `now` is asked once per round.
///
/// Like Redis, which walks its table of expiring keys bucket by bucket,
/// the rounds walk the list of keys with an expiry from `cursor` on, and
/// the cursor stays where it stopped for the next cycle. So every key is
/// looked at within a bounded number of rounds, which random picks (that
/// may miss the same key again and again) would not promise.
///
/// Each round takes the write lock on its own, but that does not promise
/// clients a turn between rounds: a client woken by the release still has
/// to be scheduled, and this thread, already running, usually takes the
/// lock back first (a `yield_now` between rounds did not change that,
/// measured). So during a burst of expirations a client can wait for most
/// of a cycle, up to its `budget` (25 ms), as Redis's clients wait for its
/// cycle, which runs on the thread that serves them. Sleeping between
/// rounds would let them in, at the cost of most of what a cycle deletes.
/// The deletions go to the replicas as DELs, before the lock is released.
pub fn run_cycle(
    db: &Db,
    replication: &Replication,
    now: impl Fn() -> i64,
    cursor: &mut usize,
    budget: Duration,
) -> CycleStats {
    let started = Instant::now();
    let mut stats = CycleStats::default();
    loop {
        let (sampled, expired) = {
            let mut keyspace = db.write();
            let now = now();
            let sampled = KEYS_PER_ROUND.min(keyspace.volatile_len());
            let mut expired = 0;
            for _ in 0..sampled {
                if keyspace.volatile_len() == 0 {
                    break; // every volatile key was deleted this round
                }
                let index = *cursor % keyspace.volatile_len();
                let key = keyspace
                    .volatile_key(index)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                if keyspace.remove_if_expired(&key, now) {
                    // The last key moved into `index`: look there next.
                    expired += 1;
                } else {
                    *cursor = index + 1;
                }
            }
            replication.propagate(&mut keyspace);
            (sampled, expired)
        };
        stats.sampled += sampled;
        stats.expired += expired;
        let mostly_alive = expired * 100 <= sampled * ACCEPTABLE_STALE;
        if sampled == 0 || mostly_alive || started.elapsed() >= budget {
            return stats;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(db: &Db, count: u32, expires_at: Option<i64>) {
        let mut keyspace = db.write();
        for i in 0..count {
            let key = format!("key:{i}").into_bytes();
            keyspace.set(key, b"v".to_vec(), expires_at);
        }
    }

    #[test]
    fn deletes_expired_keys_nobody_reads() {
        let db = Db::default();
        fill(&db, 1000, Some(100));
        let mut cursor = 0;
        // Before the deadline nothing goes, and one round is enough to know.
        let stats = run_cycle(
            &db,
            &Replication::new(),
            || 99,
            &mut cursor,
            Duration::from_secs(10),
        );
        assert_eq!(
            stats,
            CycleStats {
                sampled: 20,
                expired: 0
            }
        );
        // After it, rounds go on until (nearly) everything is gone.
        let stats = run_cycle(
            &db,
            &Replication::new(),
            || 100,
            &mut cursor,
            Duration::from_secs(10),
        );
        assert!(stats.expired > 900, "{stats:?}");
        assert!(db.read().len() < 100);
    }

    #[test]
    fn stops_when_few_sampled_keys_are_expired() {
        let db = Db::default();
        fill(&db, 1000, Some(1_000_000));
        db.write().set(b"old".to_vec(), b"v".to_vec(), Some(10));
        let mut cursor = 0;
        let stats = run_cycle(
            &db,
            &Replication::new(),
            || 500,
            &mut cursor,
            Duration::from_secs(10),
        );
        assert_eq!(stats.sampled, 20);
        assert!(stats.expired <= 1);
    }

    #[test]
    fn keys_set_together_do_not_hide_expired_ones() {
        // Long-lived keys first, then as many that are already expired: in
        // insertion order every window of the walk would be all alive, and
        // each cycle would stop after one round, 20 keys further on; forty
        // cycles would not reach the expired block. The shuffled list is a
        // fair mix, so the cycles go on while they find expired keys. The
        // sampling is random: what is sure is the share it leaves, not the
        // exact count.
        let db = Db::default();
        fill(&db, 1000, Some(1_000_000));
        for i in 0..1000 {
            let key = format!("short:{i}").into_bytes();
            db.write().set(key, b"v".to_vec(), Some(1_000));
        }
        let mut cursor = 0;
        let mut deleted = 0;
        for _ in 0..40 {
            let stats = run_cycle(
                &db,
                &Replication::new(),
                || 2_000,
                &mut cursor,
                Duration::from_secs(10),
            );
            deleted += stats.expired;
        }
        assert!(deleted >= 800, "{deleted} of 1000 expired keys deleted");
    }

    #[test]
    fn keys_without_expiry_are_never_sampled() {
        let db = Db::default();
        fill(&db, 100, None);
        let stats = run_cycle(
            &db,
            &Replication::new(),
            || i64::MAX,
            &mut 0,
            Duration::from_secs(1),
        );
        assert_eq!(stats, CycleStats::default());
        assert_eq!(db.read().len(), 100);
    }
}

//! Active expiry: the thread that deletes expired keys nobody reads.
//!
//! Lazy expiry (in `keyspace.rs`) hides an expired key from every lookup, but a
//! key that is never looked up again would stay in memory forever. So,
//! like Redis, a background cycle runs `HZ` times a second, samples keys
//! that have an expiry and deletes the expired ones. It never scans the
//! whole keyspace: it samples, and keeps sampling only while the samples
//! say that many keys are expired.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::time::unix_millis;

/// Cycles per second (Redis's `hz`, default 10).
pub const HZ: u64 = 10;
/// Keys sampled per round (`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_ROUND: usize = 20;
/// Sample again while more than this percentage of a round was expired
/// (`ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`).
pub const ACCEPTABLE_STALE: usize = 10;
/// Share of each cycle's period it may use (`ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
pub const TIME_PERCENT: u64 = 25;

/// Redis's `stat_expired_stale_perc`: the share of sampled keys found
/// expired, as a moving average over the cycles (each weighs 5%), stored
/// as the bits of an `f64`. One per process, as the expiry thread is.
static STALE_SHARE: AtomicU64 = AtomicU64::new(0);

/// The estimated percentage of keys with an expiry that are expired but
/// not deleted yet (INFO's `expired_stale_perc`).
pub fn stale_percent() -> f64 {
    f64::from_bits(STALE_SHARE.load(Ordering::Relaxed)) * 100.0
}

/// Folds one cycle's sample into [`stale_percent`], as Redis does.
fn record_cycle(sampled: usize, expired: usize) {
    let current = if sampled == 0 {
        0.0
    } else {
        expired as f64 / sampled as f64
    };
    let previous = f64::from_bits(STALE_SHARE.load(Ordering::Relaxed));
    let average = current * 0.05 + previous * 0.95;
    STALE_SHARE.store(average.to_bits(), Ordering::Relaxed);
}

/// Starts the active expiry thread over `db`'s `count` databases. It works
/// only while the server is a master: a replica waits for its master's DELs.
/// The keys it deletes are announced as `expired` to `pubsub`'s
/// subscribers, if `notify-keyspace-events` says so.
pub fn spawn_cycle(
    db: Db,
    replication: Replication,
    pubsub: Arc<PubSub>,
    count: usize,
) -> std::io::Result<()> {
    let period = Duration::from_millis(1000 / HZ);
    let budget = period * TIME_PERCENT as u32 / 100;
    thread::Builder::new()
        .name("active-expire".into())
        .spawn(move || {
            // One cursor per database; the databases share the time budget.
            let mut cursors = vec![0; count];
            loop {
                let started = Instant::now();
                if !replication.is_replica() {
                    let (mut sampled, mut expired) = (0, 0);
                    for (index, cursor) in cursors.iter_mut().enumerate() {
                        let left = budget.saturating_sub(started.elapsed());
                        let stats = run_cycle(
                            &db,
                            index,
                            &replication,
                            Some(&pubsub),
                            unix_millis,
                            cursor,
                            left,
                        );
                        sampled += stats.sampled;
                        expired += stats.expired;
                    }
                    record_cycle(sampled, expired);
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
    index: usize,
    replication: &Replication,
    pubsub: Option<&PubSub>,
    now: impl Fn() -> i64,
    cursor: &mut usize,
    budget: Duration,
) -> CycleStats {
    let started = Instant::now();
    let mut stats = CycleStats::default();
    loop {
        let (sampled, expired) = {
            let mut dbs = db.write();
            if let Some(pubsub) = pubsub {
                pubsub.watch_keyspace(&mut dbs);
            }
            let keyspace = &mut dbs[index];
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
            if let Some(pubsub) = pubsub {
                pubsub.publish_keyspace_events(&mut dbs);
            }
            replication.propagate(&mut dbs, false);
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
    use crate::keyspace::Value;

    fn fill(db: &Db, count: u32, expires_at: Option<i64>) {
        let mut dbs = db.write();
        let keyspace = &mut dbs[0];
        for i in 0..count {
            let key = format!("key:{i}").into_bytes();
            keyspace.set(key, Value::String(b"v".to_vec()), expires_at);
        }
    }

    #[test]
    fn deletes_expired_keys_nobody_reads() {
        let db = Db::new(1);
        fill(&db, 1000, Some(100));
        let mut cursor = 0;
        // Before the deadline nothing goes, and one round is enough to know.
        let stats = run_cycle(
            &db,
            0,
            &Replication::with_buffer_limit(0),
            None,
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
            0,
            &Replication::with_buffer_limit(0),
            None,
            || 100,
            &mut cursor,
            Duration::from_secs(10),
        );
        assert!(stats.expired > 900, "{stats:?}");
        assert!(db.read()[0].len() < 100);
    }

    #[test]
    fn stops_when_few_sampled_keys_are_expired() {
        let db = Db::new(1);
        fill(&db, 1000, Some(1_000_000));
        db.write()[0].set(b"old".to_vec(), Value::String(b"v".to_vec()), Some(10));
        let mut cursor = 0;
        let stats = run_cycle(
            &db,
            0,
            &Replication::with_buffer_limit(0),
            None,
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
        let db = Db::new(1);
        fill(&db, 1000, Some(1_000_000));
        for i in 0..1000 {
            let key = format!("short:{i}").into_bytes();
            db.write()[0].set(key, Value::String(b"v".to_vec()), Some(1_000));
        }
        let mut cursor = 0;
        let mut deleted = 0;
        for _ in 0..40 {
            let stats = run_cycle(
                &db,
                0,
                &Replication::with_buffer_limit(0),
                None,
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
        let db = Db::new(1);
        fill(&db, 100, None);
        let stats = run_cycle(
            &db,
            0,
            &Replication::with_buffer_limit(0),
            None,
            || i64::MAX,
            &mut 0,
            Duration::from_secs(1),
        );
        assert_eq!(stats, CycleStats::default());
        assert_eq!(db.read()[0].len(), 100);
    }
}

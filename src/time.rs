//! The wall clock, as Redis counts it: Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in Unix milliseconds: expiry deadlines are absolute
/// times, as EXPIREAT and the RDB format define them.
pub fn unix_millis() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as i64
}

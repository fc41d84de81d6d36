//! Command flags: a typed set, so that a misspelt flag is a compile error
//! rather than a command that silently takes the wrong lock or skips AUTH.
//!
//! The set is a bit mask with one named constant per flag Redis 7.0
//! reports. `COMMAND INFO` lists the names in Redis's own order (the order
//! of `NAMES` below), whatever order a table row writes them in.

/// A set of command flags.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Changes data: runs under the write lock; refused on a replica.
    pub const WRITE: Flags = Flags(1 << 0);
    /// Only reads data.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May use more memory (refused under `maxmemory`, in Redis).
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// An administrative command.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    /// Allowed while the dataset loads.
    pub const LOADING: Flags = Flags(1 << 5);
    /// Allowed on a replica whose data is stale.
    pub const STALE: Flags = Flags(1 << 6);
    /// Constant or O(log n) time.
    pub const FAST: Flags = Flags(1 << 7);
    /// Allowed before AUTH.
    pub const NO_AUTH: Flags = Flags(1 << 8);
    /// Refused while a replica loads asynchronously.
    pub const NO_ASYNC_LOADING: Flags = Flags(1 << 9);
    /// Refused inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 10);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 11);
    /// A pub/sub command: SUBSCRIBE and its kin are the ones a RESP2
    /// client in subscribed mode may still send.
    pub const PUBSUB: Flags = Flags(1 << 12);

    /// Each flag with its name, in the order Redis 7.0 lists them.
    const NAMES: [(Flags, &'static str); 13] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_ASYNC_LOADING, "no_async_loading"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// This set and `other`'s flags (usable in the `const` table).
    pub const fn and(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Is every flag of `other` in this set?
    pub const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags' names, in Redis's order, as `COMMAND INFO` shows them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |&(flag, _)| self.has(flag))
            .map(|(_, name)| name)
    }
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_in_redis_order() {
        let flags = Flags::ALLOW_BUSY.and(Flags::FAST).and(Flags::NO_AUTH);
        let names: Vec<&str> = flags.names().collect();
        assert_eq!(names, ["fast", "no_auth", "allow_busy"]);
        assert_eq!(Flags::NONE.names().count(), 0);
    }

    #[test]
    fn every_flag_is_one_bit_with_one_name() {
        let mut all = Flags::NONE;
        for (flag, _) in Flags::NAMES {
            assert_eq!(flag.0.count_ones(), 1);
            assert!(!all.has(flag));
            all = all.and(flag);
        }
    }
}

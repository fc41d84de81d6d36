//! Command flags: what Redis says about each command (`write`, `fast`,
//! `no_multi`...), as a set of bits with one named constant per flag.
//!
//! The flags are not just for show: `write` decides which lock a command
//! takes, `no_multi` keeps a command out of transactions. Written as
//! strings, a typo (`"wirte"`) would compile and silently give a writer the
//! read lock; written as constants, it does not compile. `COMMAND INFO`
//! still shows them as Redis does: by name, in Redis's order.

/// A set of command flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// The command may change data.
    pub const WRITE: Flags = Flags(1 << 0);
    /// The command only reads data.
    pub const READONLY: Flags = Flags(1 << 1);
    /// Refused when memory is over Redis's `maxmemory`.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// An administrative command.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    /// Allowed while the server loads its data.
    pub const LOADING: Flags = Flags(1 << 5);
    /// Allowed on a replica whose data is stale.
    pub const STALE: Flags = Flags(1 << 6);
    /// Not shown in the slow log (its commands are, one by one).
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 7);
    /// Runs in constant or logarithmic time.
    pub const FAST: Flags = Flags(1 << 8);
    /// Allowed before the client authenticates.
    pub const NO_AUTH: Flags = Flags(1 << 9);
    /// Refused while the server loads data in the background.
    pub const NO_ASYNC_LOADING: Flags = Flags(1 << 10);
    /// Not allowed inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 11);
    /// Allowed while a script runs too long.
    pub const ALLOW_BUSY: Flags = Flags(1 << 12);

    /// Every flag with its name, in the order `COMMAND INFO` lists them
    /// (the order of Redis's `addReplyCommandFlags`).
    const NAMES: [(Flags, &'static str); 13] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_ASYNC_LOADING, "no_async_loading"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// The set of the given flags. It is a `const fn` so that the command
    /// table, which is built at compile time, can call it.
    pub const fn of(flags: &[Flags]) -> Flags {
        let mut bits = 0;
        let mut i = 0;
        while i < flags.len() {
            bits |= flags[i].0;
            i += 1;
        }
        Flags(bits)
    }

    /// Is `flag` in the set?
    pub const fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }

    /// The names of the flags in the set, in `COMMAND INFO`'s order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_in_redis_order_whatever_the_order_given() {
        let flags = Flags::of(&[Flags::ALLOW_BUSY, Flags::FAST, Flags::NO_AUTH]);
        assert_eq!(flags.names(), ["fast", "no_auth", "allow_busy"]);
        assert!(flags.contains(Flags::FAST));
        assert!(!flags.contains(Flags::WRITE));
        assert!(Flags::of(&[]).names().is_empty());
    }

    #[test]
    fn every_flag_has_its_own_bit_and_name() {
        let all = Flags::of(&Flags::NAMES.map(|(flag, _)| flag));
        assert_eq!(all.names().len(), Flags::NAMES.len());
        for (flag, name) in Flags::NAMES {
            assert_eq!(flag.0.count_ones(), 1, "{name}");
            assert_eq!(flag.names(), [name]);
        }
    }
}

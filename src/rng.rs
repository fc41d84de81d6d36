//! A small random number generator, enough to shuffle.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// xorshift64*. std has no public generator, but each `RandomState` is
/// seeded randomly (for hash tables that resist flooding): hashing nothing
/// with one gives a seed.
#[derive(Debug)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        Rng(RandomState::new().build_hasher().finish() | 1)
    }
}

impl Rng {
    /// A number in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn numbers_stay_below_the_bound_and_vary() {
        let mut rng = Rng::default();
        let picks: Vec<usize> = (0..100).map(|_| rng.below(10)).collect();
        assert!(picks.iter().all(|&n| n < 10));
        assert!(picks.iter().any(|&n| n != picks[0]));
    }
}

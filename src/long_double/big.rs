//! Big integers, just enough of them for exact `long double` arithmetic.

use std::cmp::Ordering;

/// A non-negative integer of any size: base 2^32 limbs, least significant
/// first, with no zero limb at the top. Just the operations used above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Big(Vec<u32>);

impl Big {
    pub(super) fn from_u128(mut n: u128) -> Big {
        let mut limbs = Vec::new();
        while n != 0 {
            limbs.push(n as u32);
            n >>= 32;
        }
        Big(limbs)
    }

    pub(super) fn pow10(n: u64) -> Big {
        let mut result = Big::from_u128(1);
        let mut left = n;
        while left > 0 {
            let step = left.min(9);
            result.mul_add_small(10u32.pow(step as u32), 0);
            left -= step;
        }
        result
    }

    pub(super) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn trim(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    /// `self = self * mul + add`
    pub(super) fn mul_add_small(&mut self, mul: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let n = u64::from(*limb) * u64::from(mul) + carry;
            *limb = n as u32;
            carry = n >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        let trimmed = std::mem::take(self).trim();
        *self = trimmed;
    }

    pub(super) fn mul(&self, other: &Big) -> Big {
        let mut out = vec![0u32; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in other.0.iter().enumerate() {
                let n = u64::from(a) * u64::from(b) + u64::from(out[i + j]) + carry;
                out[i + j] = n as u32;
                carry = n >> 32;
            }
            out[i + other.0.len()] = carry as u32;
        }
        Big(out).trim()
    }

    pub(super) fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let n = u64::from(self.limb(i)) + u64::from(other.limb(i)) + carry;
            out.push(n as u32);
            carry = n >> 32;
        }
        out.push(carry as u32);
        Big(out).trim()
    }

    /// `self - other`; `other` must not be larger.
    pub(super) fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut n = i64::from(self.limb(i)) - i64::from(other.limb(i)) - borrow;
            borrow = i64::from(n < 0);
            if n < 0 {
                n += 1 << 32;
            }
            out.push(n as u32);
        }
        Big(out).trim()
    }

    pub(super) fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    pub(super) fn shl(&self, bits: u64) -> Big {
        if self.is_zero() {
            return Big::default();
        }
        let (limbs, bits) = ((bits / 32) as usize, bits % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            let n = (u64::from(limb) << bits) | u64::from(carry);
            out.push(n as u32);
            carry = (n >> 32) as u32;
        }
        out.push(carry);
        Big(out).trim()
    }

    pub(super) fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() as u64 * 32 - u64::from(top.leading_zeros()),
        }
    }

    pub(super) fn limb(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }

    pub(super) fn bit(&self, index: u64) -> bool {
        let limb = usize::try_from(index / 32).unwrap_or(usize::MAX);
        self.limb(limb) >> (index % 32) & 1 == 1
    }

    /// Is any bit below position `index` set?
    pub(super) fn any_below(&self, index: u64) -> bool {
        let whole = usize::try_from(index / 32).unwrap_or(usize::MAX);
        if self.0.iter().take(whole).any(|&limb| limb != 0) {
            return true;
        }
        let part = index % 32;
        part != 0 && self.limb(whole) & ((1 << part) - 1) != 0
    }

    /// The 128 bits from position `from` up.
    pub(super) fn bits(&self, from: u64) -> u128 {
        (0..128)
            .filter(|i| self.bit(from.saturating_add(*i)))
            .fold(0u128, |n, i| n | 1 << i)
    }

    pub(super) fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            // Divide by 10^9 in place, keeping the remainder.
            let mut rest = 0u64;
            for limb in n.0.iter_mut().rev() {
                let cur = (rest << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rest = cur % 1_000_000_000;
            }
            n = n.trim();
            chunks.push(rest);
        }
        let mut text = chunks.pop().map_or("0".to_string(), |top| top.to_string());
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:09}"));
        }
        text
    }
}

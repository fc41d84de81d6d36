//! Reading a number's text and rounding its exact value to a `long double`.

use std::cmp::Ordering;

use super::big::Big;
use super::{LongDouble, MAX_EXP, MIN_EXP};

/// A parsed number before rounding.
pub(super) enum Exact {
    /// Zero, written any way (`0`, `0.0e999`, `0x0p-3`).
    Zero,
    /// `mag * 2^exp` (hexadecimal input).
    Binary(Big, i64),
    /// `digits * 10^exp` (decimal input); `digits` is not zero.
    Decimal(Vec<u8>, i64),
}

/// Reads `digits [. digits] [marker [sign] digits]`, with at least one
/// digit in the mantissa, and nothing else: the shape `strtold` accepts
/// for decimal (`e`, base 10) and hexadecimal (`p`, base 16) numbers.
/// Returns the mantissa's digit values, how many of them follow the
/// point, and the exponent (saturated: a larger one could only overflow
/// or underflow anyway).
pub(super) fn split_number(text: &[u8], radix: u32, marker: u8) -> Option<(Vec<u8>, i64, i64)> {
    let digit = |b: &u8| (*b as char).to_digit(radix).map(|d| d as u8);
    let mut digits = Vec::new();
    let mut after_point = 0i64;
    let mut seen_point = false;
    let mut rest = text;
    while let Some((b, tail)) = rest.split_first() {
        if let Some(d) = digit(b) {
            digits.push(d);
            after_point += i64::from(seen_point);
        } else if *b == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        rest = tail;
    }
    if digits.is_empty() {
        return None;
    }
    let mut exponent = 0i64;
    if let Some(tail) = rest.strip_prefix(&[marker]) {
        let (negative, tail) = match tail.first() {
            Some(b'-') => (true, &tail[1..]),
            Some(b'+') => (false, &tail[1..]),
            _ => (false, tail),
        };
        if tail.is_empty() || !tail.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for d in tail {
            exponent = (exponent * 10 + i64::from(d - b'0')).min(1_000_000_000);
        }
        if negative {
            exponent = -exponent;
        }
    } else if !rest.is_empty() {
        return None;
    }
    Some((digits, after_point, exponent))
}

/// A hexadecimal number after its `0x`: exact, as mantissa and power of two.
pub(super) fn parse_hex(text: &[u8]) -> Option<Exact> {
    let (digits, after_point, exponent) = split_number(text, 16, b'p')?;
    let mut mag = Big::default();
    for d in digits {
        mag.mul_add_small(16, d.into());
    }
    if mag.is_zero() {
        return Some(Exact::Zero);
    }
    Some(Exact::Binary(mag, exponent - 4 * after_point))
}

/// A decimal number: its significant digits and their power of ten.
pub(super) fn parse_decimal(text: &[u8]) -> Option<Exact> {
    let (digits, after_point, exponent) = split_number(text, 10, b'e')?;
    let first = digits.iter().position(|&d| d != 0);
    Some(match first {
        None => Exact::Zero,
        Some(first) => Exact::Decimal(digits[first..].to_vec(), exponent - after_point),
    })
}

/// `digits * 10^exp10` as `mag * 2^exp2`, exact or with enough bits (and
/// a sticky bit for the rest) to round correctly. `None` when the number
/// is certainly out of range: at least 10^4933 (above the largest,
/// about 1.19e4932), or below 10^-4952 (under half the smallest
/// subnormal, about 1.8e-4951, so it would round to zero).
pub(super) fn decimal_to_binary(digits: &[u8], exp10: i64) -> Option<(Big, i64, bool)> {
    let count = digits.len() as i64;
    if count - 1 + exp10 >= 4933 || count + exp10 < -4952 {
        return None;
    }
    let mut mag = Big::default();
    for chunk in digits.chunks(9) {
        let value = chunk.iter().fold(0u32, |n, &d| n * 10 + u32::from(d));
        mag.mul_add_small(10u32.pow(chunk.len() as u32), value);
    }
    if exp10 >= 0 {
        return Some((mag.mul(&Big::pow10(exp10 as u64)), 0, false));
    }
    Some(divide(&mag, &Big::pow10(exp10.unsigned_abs())))
}

/// `num / den` as `quotient * 2^exp`, with a quotient of 66 to 68 bits
/// (enough for 64 bits, a rounding bit and more) and a sticky bit that
/// says whether anything was left over.
pub(super) fn divide(num: &Big, den: &Big) -> (Big, i64, bool) {
    let scale = den.bit_len() as i64 - num.bit_len() as i64 + 66;
    let (mut num, den) = if scale >= 0 {
        (num.shl(scale as u64), den.clone())
    } else {
        (num.clone(), den.shl(scale.unsigned_abs()))
    };
    // Long division, one quotient bit at a time from the top.
    let mut quotient = 0u128;
    for bit in (0..68).rev() {
        let part = den.shl(bit);
        if num.cmp(&part) != Ordering::Less {
            num = num.sub(&part);
            quotient |= 1 << bit;
        }
    }
    (Big::from_u128(quotient), -scale, !num.is_zero())
}

/// Rounds `±(mag + sticky) * 2^exp2` to a `long double`, to nearest-even
/// as IEEE asks: 64 significant bits, fewer for subnormals, infinity when
/// too large. `sticky` stands for a non-zero tail below `mag`'s last bit.
pub(super) fn round(negative: bool, mag: &Big, exp2: i64, sticky: bool) -> LongDouble {
    let len = mag.bit_len() as i64;
    if len == 0 {
        return LongDouble::zero(negative);
    }
    // The weight of the last bit kept: 64 bits below the top one, but no
    // finer than the subnormals'.
    let mut exponent = (exp2 + len - 64).max(MIN_EXP);
    let drop = exponent - exp2;
    let mut mantissa = if drop <= 0 {
        mag.bits(0) << drop.unsigned_abs()
    } else {
        let drop = drop as u64;
        let kept = mag.bits(drop);
        let half = mag.bit(drop - 1);
        let below_half = sticky || mag.any_below(drop - 1);
        if half && (below_half || kept & 1 == 1) {
            kept + 1
        } else {
            kept
        }
    };
    // Rounding up 2^64 - 1 gives 2^64: one bit more, so one position up.
    if mantissa == 1 << 64 {
        mantissa = 1 << 63;
        exponent += 1;
    }
    if exponent > MAX_EXP {
        return LongDouble::Infinite { negative };
    }
    LongDouble::Finite {
        negative,
        mantissa: mantissa as u64,
        exponent: exponent as i32,
    }
}

//! C's `long double` as Redis's INCRBYFLOAT uses it on x86-64 Linux: the
//! x87 80-bit extended format (a 64-bit significand), done in software.
//!
//! Why not `f64`? Redis parses both numbers with `strtold`, adds them in
//! `long double`, and prints the sum with `%.17Lf` before stripping the
//! trailing zeros. Eleven more bits of significand hide noise that `f64`
//! shows (Redis says `0.1 + 0.2` is `0.3`, `f64` says `0.30000000000000004`),
//! and 17 decimals are more than the format holds once numbers grow, so
//! Redis shows noise of its own (`100000.1 + 0` is
//! `100000.10000000000000142`). Only the same arithmetic gives the same
//! bytes, and std has no 80-bit float, so this module has one: parsing
//! rounded correctly (as glibc's `strtold` is), addition rounded to
//! nearest-even (as the x87 does it), and `%.17Lf` printed exactly (as
//! glibc does). Every step computes the exact value with big integers
//! and rounds once: slow next to hardware, simple to check, and fast
//! enough for numbers of at most 5119 characters.

use std::cmp::Ordering;

/// Longest input `string2ld` accepts, plus one (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// Weight of the last significand bit of the subnormal numbers (and of
/// the smallest normal one): 2^-16445.
const MIN_EXP: i64 = -16445;

/// Weight of the last significand bit of the largest numbers: the largest
/// finite value is (2^64 - 1) * 2^16320.
const MAX_EXP: i64 = 16320;

/// A `long double` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `±mantissa * 2^exponent`, as the hardware holds it: the top bit of
    /// `mantissa` is set unless the number is zero or subnormal (then
    /// `exponent` is at its minimum).
    Finite {
        /// The sign; zero has one too.
        negative: bool,
        /// The 64-bit significand.
        mantissa: u64,
        /// The weight of its last bit, as a power of two.
        exponent: i32,
    },
    /// Positive or negative infinity.
    Infinite {
        /// The sign.
        negative: bool,
    },
}

impl LongDouble {
    /// Zero: what a missing key counts as.
    pub const ZERO: LongDouble = LongDouble::Finite {
        negative: false,
        mantissa: 0,
        exponent: MIN_EXP as i32,
    };

    /// Parses a number as Redis's `string2ld` does: the whole text must be
    /// one number as `strtold` reads it in the C locale (decimal or `0x`
    /// hexadecimal, with exponent, or `inf`/`infinity`), with no blank
    /// before it and nothing after. NaN, and numbers too large or too
    /// small to hold (other than zero itself), are refused.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= MAX_CHARS {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Some(LongDouble::Infinite { negative });
        }
        let number = match lower.strip_prefix(b"0x") {
            Some(hex) => parse_hex(hex)?,
            None => parse_decimal(&lower)?,
        };
        let (mag, exp2, sticky) = match number {
            Exact::Zero => return Some(LongDouble::zero(negative)),
            Exact::Binary(mag, exp2) => (mag, exp2, false),
            Exact::Decimal(digits, exp10) => decimal_to_binary(&digits, exp10)?,
        };
        // strtold reports ERANGE on overflow and when a non-zero number
        // rounds to zero, and string2ld refuses both.
        match round(negative, &mag, exp2, sticky) {
            LongDouble::Finite { mantissa: 0, .. } | LongDouble::Infinite { .. } => None,
            value => Some(value),
        }
    }

    /// The sum, rounded to nearest-even; `None` when it is not a finite
    /// number (an infinity was involved, or the sum overflowed).
    pub fn add(self, other: LongDouble) -> Option<LongDouble> {
        let (
            LongDouble::Finite {
                negative: a_neg,
                mantissa: a,
                exponent: a_exp,
            },
            LongDouble::Finite {
                negative: b_neg,
                mantissa: b,
                exponent: b_exp,
            },
        ) = (self, other)
        else {
            return None;
        };
        match (a, b) {
            // IEEE: -0 + -0 is -0, any other sum of zeros is +0.
            (0, 0) => return Some(LongDouble::zero(a_neg && b_neg)),
            (0, _) => return Some(other),
            (_, 0) => return Some(self),
            _ => {}
        }
        // The exact sum, on the finer of the two grids; then one rounding.
        let exp = a_exp.min(b_exp);
        let a = Big::from_u128(a.into()).shl((a_exp - exp) as u64);
        let b = Big::from_u128(b.into()).shl((b_exp - exp) as u64);
        let (negative, mag) = if a_neg == b_neg {
            (a_neg, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Greater => (a_neg, a.sub(&b)),
                Ordering::Less => (b_neg, b.sub(&a)),
                // x - x is +0 when rounding to nearest.
                Ordering::Equal => return Some(LongDouble::zero(false)),
            }
        };
        match round(negative, &mag, exp.into(), false) {
            LongDouble::Infinite { .. } => None,
            sum => Some(sum),
        }
    }

    /// The text Redis stores and replies: `%.17Lf` (17 decimals, rounded
    /// half to even on the exact binary value) without its trailing zeros,
    /// nor the point if nothing follows it, and `-0` written as `0`
    /// (`ld2string` in `LD_STR_HUMAN` mode). Never an exponent.
    pub fn to_human(self) -> String {
        let (negative, mantissa, exponent) = match self {
            LongDouble::Infinite { negative } => {
                return if negative { "-inf" } else { "inf" }.to_string();
            }
            LongDouble::Finite {
                negative,
                mantissa,
                exponent,
            } => (negative, mantissa, i64::from(exponent)),
        };
        let mut text = String::from(if negative { "-" } else { "" });
        if exponent >= 0 {
            // An integer: its 17 decimals are all zeros, and go.
            text.push_str(
                &Big::from_u128(mantissa.into())
                    .shl(exponent as u64)
                    .to_decimal(),
            );
            return text;
        }
        // Split into integer part and fraction; scale the fraction to 17
        // digits. `fraction < 2^64` and `10^17 < 2^57`, so u128 holds it.
        let shift = exponent.unsigned_abs();
        let (integer, fraction) = if shift < 64 {
            (mantissa >> shift, mantissa & ((1u64 << shift) - 1))
        } else {
            (0, mantissa)
        };
        const SCALE: u128 = 100_000_000_000_000_000; // 10^17
        let scaled = u128::from(fraction) * SCALE;
        let mut digits = if shift >= 122 {
            // Below half of the 17th decimal: rounds to zero.
            0
        } else {
            let quotient = scaled >> shift;
            let remainder = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            let odd = quotient & 1 == 1;
            if remainder > half || (remainder == half && odd) {
                quotient + 1
            } else {
                quotient
            }
        };
        // Rounding up may carry into the integer part (0.999... -> 1).
        let mut integer = u128::from(integer);
        if digits == SCALE {
            digits = 0;
            integer += 1;
        }
        let decimals = format!("{digits:017}");
        let decimals = decimals.trim_end_matches('0');
        text.push_str(&integer.to_string());
        if !decimals.is_empty() {
            text.push('.');
            text.push_str(decimals);
        }
        if text == "-0" {
            text = "0".to_string();
        }
        text
    }

    fn zero(negative: bool) -> LongDouble {
        LongDouble::Finite {
            negative,
            mantissa: 0,
            exponent: MIN_EXP as i32,
        }
    }
}

/// A parsed number before rounding.
enum Exact {
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
fn split_number(text: &[u8], radix: u32, marker: u8) -> Option<(Vec<u8>, i64, i64)> {
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
fn parse_hex(text: &[u8]) -> Option<Exact> {
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
fn parse_decimal(text: &[u8]) -> Option<Exact> {
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
fn decimal_to_binary(digits: &[u8], exp10: i64) -> Option<(Big, i64, bool)> {
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
fn divide(num: &Big, den: &Big) -> (Big, i64, bool) {
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
fn round(negative: bool, mag: &Big, exp2: i64, sticky: bool) -> LongDouble {
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

/// A non-negative integer of any size: base 2^32 limbs, least significant
/// first, with no zero limb at the top. Just the operations used above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut n: u128) -> Big {
        let mut limbs = Vec::new();
        while n != 0 {
            limbs.push(n as u32);
            n >>= 32;
        }
        Big(limbs)
    }

    fn pow10(n: u64) -> Big {
        let mut result = Big::from_u128(1);
        let mut left = n;
        while left > 0 {
            let step = left.min(9);
            result.mul_add_small(10u32.pow(step as u32), 0);
            left -= step;
        }
        result
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    /// `self = self * mul + add`
    fn mul_add_small(&mut self, mul: u32, add: u32) {
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

    fn mul(&self, other: &Big) -> Big {
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

    fn add(&self, other: &Big) -> Big {
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
    fn sub(&self, other: &Big) -> Big {
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

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn shl(&self, bits: u64) -> Big {
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

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() as u64 * 32 - u64::from(top.leading_zeros()),
        }
    }

    fn limb(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }

    fn bit(&self, index: u64) -> bool {
        let limb = usize::try_from(index / 32).unwrap_or(usize::MAX);
        self.limb(limb) >> (index % 32) & 1 == 1
    }

    /// Is any bit below position `index` set?
    fn any_below(&self, index: u64) -> bool {
        let whole = usize::try_from(index / 32).unwrap_or(usize::MAX);
        if self.0.iter().take(whole).any(|&limb| limb != 0) {
            return true;
        }
        let part = index % 32;
        part != 0 && self.limb(whole) & ((1 << part) - 1) != 0
    }

    /// The 128 bits from position `from` up.
    fn bits(&self, from: u64) -> u128 {
        (0..128)
            .filter(|i| self.bit(from.saturating_add(*i)))
            .fold(0u128, |n, i| n | 1 << i)
    }

    fn to_decimal(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// INCRBYFLOAT as Redis computes it: `a + b`, printed.
    fn sum(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        a.add(b).map(LongDouble::to_human)
    }

    fn show(text: &str) -> Option<String> {
        LongDouble::parse(text.as_bytes()).map(LongDouble::to_human)
    }

    #[test]
    fn sums_match_redis() {
        // Each expected value was read from redis-server 7.0.15.
        assert_eq!(sum("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(sum("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(sum("2.2", "1.1").as_deref(), Some("3.3"));
        assert_eq!(sum("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(sum("0", "3.0e3").as_deref(), Some("3000"));
        assert_eq!(
            sum("100000.1", "0").as_deref(),
            Some("100000.10000000000000142")
        );
        assert_eq!(
            sum("12345.678", "0x10p1").as_deref(),
            Some("12377.67799999999999994")
        );
        assert_eq!(sum("1", "-1").as_deref(), Some("0"));
        assert_eq!(sum("-0.5", "0.25").as_deref(), Some("-0.25"));
    }

    #[test]
    fn printing_rounds_half_to_even_and_strips_zeros() {
        // 2^-18 = 0.000003814697265625: the 18th decimal is a tie.
        assert_eq!(
            show("0.000003814697265625").as_deref(),
            Some("0.00000381469726562")
        );
        assert_eq!(show("0.999999999999999999999").as_deref(), Some("1"));
        assert_eq!(show("-1e-30").as_deref(), Some("0"));
        assert_eq!(show("-0").as_deref(), Some("0"));
        assert_eq!(show("1e-4940").as_deref(), Some("0"));
        assert_eq!(
            show("18446744073709551615").as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            show("1e400").as_deref(),
            Some(concat!(
                "1000000000000000000028188068394758651458645343362905203862591069353968553",
                "4008629862039363994848324160522094053927317616200295822777259255734023828",
                "9765933406610177974474345461739178624481166749717237789438243915933380474",
                "7067502624668440135923751360383034373548550524495596497902182503828009106",
                "8414947402456898653040951017512658092615827588920183472511643316591362664",
                "138176309734806343732497430221946880"
            ))
        );
    }

    #[test]
    fn parsing_follows_strtold_and_string2ld() {
        for good in [
            "1",
            "+1",
            "-1",
            "1.",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "0x1p3",
            "0X1.8",
            "0x.8p1",
            "inf",
            "-Infinity",
            "0e99999999999999999999",
            "1e-4950",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "", " 1", "1 ", "abc", ".", "-", "1e", "1e+", "0x", "0xp1", "0x1p", "nan", "NaN",
            "infin", "1..2", "1e5000", "1e-5000", "1\0", "--1", "1,5",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(LongDouble::parse("1".repeat(5119).as_bytes()).is_none());
        assert!(LongDouble::parse(format!("0.{}", "1".repeat(5117)).as_bytes()).is_some());
    }

    #[test]
    fn extremes_round_as_the_x87_does() {
        // The largest finite value, and one ulp-ish above it.
        let max = LongDouble::parse(b"1.18973149535723176502e4932");
        assert!(matches!(
            max,
            Some(LongDouble::Finite {
                mantissa: u64::MAX,
                exponent: 16320,
                ..
            })
        ));
        assert_eq!(LongDouble::parse(b"1.2e4932"), None);
        let max = max.unwrap_or(LongDouble::ZERO);
        assert_eq!(max.add(max), None);
        assert_eq!(sum("inf", "1"), None);
        assert_eq!(sum("inf", "-inf"), None);
        // The smallest subnormal is 2^-16445; half of it rounds to zero.
        assert!(matches!(
            LongDouble::parse(b"0x1p-16445"),
            Some(LongDouble::Finite { mantissa: 1, .. })
        ));
        assert_eq!(LongDouble::parse(b"0x1p-16446"), None);
        assert!(matches!(
            LongDouble::parse(b"0x1.8p-16446"),
            Some(LongDouble::Finite { mantissa: 1, .. })
        ));
    }

    #[test]
    fn big_integer_basics() {
        let a = Big::from_u128(u128::MAX);
        assert_eq!(a.add(&Big::from_u128(1)).sub(&a), Big::from_u128(1));
        assert_eq!(Big::pow10(20).to_decimal(), format!("1{}", "0".repeat(20)));
        assert_eq!(a.shl(3).bits(3), u128::MAX);
        assert!(!a.shl(3).any_below(3));
        assert!(a.shl(3).any_below(4));
        let (q, exp, sticky) = divide(&Big::from_u128(1), &Big::from_u128(3));
        assert!(sticky);
        assert_eq!(exp, -67);
        assert_eq!(q.bit_len(), 66);
    }
}

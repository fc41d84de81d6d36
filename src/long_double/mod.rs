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
//!
//! `parse.rs` reads and rounds numbers; `big.rs` is the big integers.

mod big;
mod parse;

use std::cmp::Ordering;

use big::Big;
use parse::{decimal_to_binary, parse_decimal, parse_hex, round, Exact};

/// Longest input `string2ld` accepts, plus one (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// Weight of the last significand bit of the subnormal numbers (and of
/// the smallest normal one): 2^-16445.
pub(crate) const MIN_EXP: i64 = -16445;

/// Weight of the last significand bit of the largest numbers: the largest
/// finite value is (2^64 - 1) * 2^16320.
pub(crate) const MAX_EXP: i64 = 16320;

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

#[cfg(test)]
mod tests {
    use super::parse::divide;
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

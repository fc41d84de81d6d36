//! LZF, the small and fast compression format Redis uses for long strings in
//! RDB files (encoding `C3`).
//!
//! LZF output is a sequence of tokens, each starting with a control byte:
//!
//! * `000LLLLL` + L+1 bytes: a literal run, copied to the output as is (1 to 32 bytes).
//! * `LLLddddd dddddddd`: a back-reference. Copy L+2 bytes (3 to 8) starting
//!   d+1 bytes back in the output produced so far (up to 8 KiB back).
//! * `111ddddd LLLLLLLL dddddddd`: the long form, copying L+9 bytes (9 to 264).
//!
//! There is no header and no end marker: the RDB file stores both the
//! compressed and the original length next to the data. A loader only
//! needs to decompress, which is all this file does.

/// The most output one input byte can produce: a 3-byte long back-reference
/// expands to 264 bytes.
const MAX_EXPANSION: usize = 264 / 3;

/// Expands LZF data that should produce exactly `expected_len` bytes.
///
/// Returns `None` if the data is corrupt: a back-reference reaching before
/// the start of the output, a token cut short, or a total length other than
/// `expected_len`. It never panics and never produces more than
/// `expected_len` bytes.
pub fn decompress(src: &[u8], expected_len: usize) -> Option<Vec<u8>> {
    // `expected_len` comes from the file and may be a lie. Whatever it says,
    // `src` cannot expand to more than MAX_EXPANSION bytes per byte, so that
    // bounds the allocation; and since the output never outgrows either
    // limit, the vector never has to reallocate.
    let mut out = Vec::with_capacity(expected_len.min(src.len().saturating_mul(MAX_EXPANSION)));
    let mut i = 0;
    while let Some(&ctrl) = src.get(i) {
        i += 1;
        if ctrl < 0x20 {
            let run = usize::from(ctrl) + 1;
            let literal = src.get(i..i + run)?;
            if out.len() + run > expected_len {
                return None;
            }
            out.extend_from_slice(literal);
            i += run;
        } else {
            let mut len = usize::from(ctrl >> 5);
            if len == 7 {
                len += usize::from(*src.get(i)?);
                i += 1;
            }
            len += 2;
            let distance = (usize::from(ctrl & 0x1f) << 8 | usize::from(*src.get(i)?)) + 1;
            i += 1;
            let start = out.len().checked_sub(distance)?;
            if out.len() + len > expected_len {
                return None;
            }
            // Byte by byte on purpose: when the distance is shorter than the
            // length, the copy reads bytes it has just written. That is how
            // LZF spells a run: "a" then "copy 39 from 1 back" is 40 × "a".
            for from in start..start + len {
                let byte = out[from];
                out.push(byte);
            }
        }
    }
    (out.len() == expected_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    /// xorshift64: deterministic test inputs without a dependency.
    pub(super) struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 as usize
        }

        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn worked_examples() {
        let ab30 = [0x02, b'a', b'b', b'a', 0xe0, 0x2e, 0x01, 0x01, b'a', b'b'];
        assert_eq!(decompress(&ab30, 60), Some(b"ab".repeat(30)));
        // What 7.0.15 wrote for 21 × "a", and a hand-made encoding of 40 × "a".
        let a21 = [0x01, b'a', b'a', 0xe0, 0x0a, 0x00];
        assert_eq!(decompress(&a21, 21), Some(vec![b'a'; 21]));
        let a40 = [0x00, b'a', 0xe0, 0x1e, 0x00];
        assert_eq!(decompress(&a40, 40), Some(vec![b'a'; 40]));
        assert_eq!(decompress(&[], 0), Some(vec![]));
    }

    #[test]
    fn corrupt_input_is_rejected() {
        let cases: [(&[u8], usize); 9] = [
            (&[0xe0, 0x00, 0x00], 9),                 // back-reference before the start
            (&[0x00, b'a', 0x20, 0x01], 4),           // distance 2 with 1 byte of output
            (&[0x05, b'a', b'b'], 6),                 // literal run past the end of the input
            (&[0x01, b'a', b'a', 0xe0], 21),          // long back-reference without its length
            (&[0x01, b'a', b'a', 0xe0, 0x0a], 21),    // back-reference without its distance
            (&[0x01, b'a', b'a', 0xe0, 0x0a, 0], 20), // one byte more than announced
            (&[0x01, b'a', b'a', 0xe0, 0x0a, 0], 22), // one byte fewer than announced
            (&[0x00, b'a'], usize::MAX),              // a lying length costs no memory
            (&[0x00, b'a', 0xe0, 0xff, 0x00], usize::MAX),
        ];
        for (src, len) in cases {
            assert_eq!(decompress(src, len), None, "{src:02x?} as {len} bytes");
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = rng.next() % 48;
            let src = rng.bytes(len);
            let expected = rng.next() % 400;
            if let Some(out) = decompress(&src, expected) {
                assert_eq!(out.len(), expected);
            }
        }
    }
}

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
//! compressed and the original length next to the data. This file first
//! decompresses (all a loader needs), then compresses the way liblzf does.

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

// ---------------------------------------------------------------------------
// Compression. A loader only needs the code above; writing compressed RDB
// files needs what follows.
// ---------------------------------------------------------------------------

/// log2 of the number of hash table slots: 16, as liblzf and Redis use.
const HASH_BITS: u32 = 16;
/// The longest literal run one control byte can announce.
const MAX_LITERAL: usize = 32;
/// How far back a back-reference can reach.
const MAX_DISTANCE: usize = 1 << 13;
/// The longest copy one back-reference can ask for.
const MAX_MATCH: usize = 264;

/// For each hash of 3 bytes, the last position where they were seen. 0
/// doubles as "never seen", so position 0 is never a match source.
///
/// Half a megabyte: zeroing a fresh one for every string would cost more
/// than compressing a short string, so a writer keeps one and hands it to
/// [`compress_with`] each time, as Redis keeps its own between calls.
pub struct Table(Box<[usize]>);

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table(vec![0; 1 << HASH_BITS].into_boxed_slice())
    }
}

/// Compresses `src` into LZF, or returns `None` if the result might not fit
/// in `max_len` bytes (Redis passes `len - 4`: compression that saves fewer
/// than 4 bytes is not worth it) or `src` is empty.
///
/// This follows liblzf 3.6, the compressor inside Redis, step by step: the
/// same hash of 3-byte prefixes, the same match rules and the same, slightly
/// conservative, room checks. So for the same input it makes the same bytes
/// as Redis and gives up on the same strings. (Redis never clears its hash
/// table, so a stale entry can rarely hand it a match we miss; both outputs
/// are valid LZF.)
///
/// `table` is the caller's, as the last call left it: its entries may
/// point anywhere, so every candidate is checked.
pub fn compress_with(table: &mut Table, src: &[u8], max_len: usize) -> Option<Vec<u8>> {
    if src.is_empty() || max_len == 0 {
        return None;
    }
    let table = &mut table.0;
    let mut out = Output::new(max_len.min(src.len() + src.len() / MAX_LITERAL + 1));
    let mut ip = 0;
    while ip + 2 < src.len() {
        let slot = hash_slot([src[ip], src[ip + 1], src[ip + 2]]);
        let candidate = table[slot];
        table[slot] = ip;
        // A position from an earlier string may lie anywhere: only one
        // before `ip`, and close enough, can be a match.
        let found = candidate > 0
            && candidate < ip
            && ip - candidate <= MAX_DISTANCE
            && src[candidate..candidate + 3] == src[ip..ip + 3];
        if !found {
            if out.len() >= max_len {
                return None;
            }
            out.literal(src[ip]);
            ip += 1;
            continue;
        }

        // Room for the longest back-reference (3 bytes) and the control byte
        // of the run after it, not counting a run byte that will be dropped.
        if out.len() - usize::from(out.lit == 0) + 4 >= max_len {
            return None;
        }
        let limit = match_limit(src.len() - ip);
        let mut len = 3;
        while len < limit && src[candidate + len] == src[ip + len] {
            len += 1;
        }
        out.back_reference(len, ip - candidate);
        ip += len;
        if ip + 2 >= src.len() {
            break;
        }
        // Like liblzf's default ("VERY_FAST") mode, index only the last two
        // positions inside the match, not all of them.
        for p in [ip - 2, ip - 1] {
            table[hash_slot([src[p], src[p + 1], src[p + 2]])] = p;
        }
    }

    // The last one or two bytes cannot start a match: copy them as literals.
    if out.len() + 3 > max_len {
        return None;
    }
    for &byte in &src[ip..] {
        out.literal(byte);
    }
    out.end_run();
    Some(out.bytes)
}

/// liblzf's hash of 3 bytes (its "VERY_FAST" variant) into a table slot.
fn hash_slot(bytes: [u8; 3]) -> usize {
    let h = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
    ((h >> (24 - HASH_BITS)).wrapping_sub(h.wrapping_mul(5)) & ((1 << HASH_BITS) - 1)) as usize
}

/// How long a match starting `avail` bytes before the end of the input may
/// grow. liblzf stops 2 bytes short of the end, except that its first 16
/// comparisons are unrolled and can run up to 19 bytes; we copy both rules
/// so our matches have the same lengths.
fn match_limit(avail: usize) -> usize {
    let limit = (avail - 2).min(MAX_MATCH);
    if limit > 16 {
        limit.max(19)
    } else {
        limit.max(3)
    }
}

/// Compressed output being built. A literal run's control byte holds its
/// length, which is known only when the run ends, so a byte is reserved for
/// it at `run_start` and filled in later.
struct Output {
    bytes: Vec<u8>,
    run_start: usize,
    lit: usize,
}

impl Output {
    fn new(capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity);
        bytes.push(0);
        Output {
            bytes,
            run_start: 0,
            lit: 0,
        }
    }

    /// The bytes so far, counting the reserved control byte (liblzf's `op`).
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn literal(&mut self, byte: u8) {
        self.bytes.push(byte);
        self.lit += 1;
        if self.lit == MAX_LITERAL {
            self.end_run();
            self.start_run();
        }
    }

    /// Copy `len` bytes (3 to 264) from `distance` bytes back (1 to 8192).
    fn back_reference(&mut self, len: usize, distance: usize) {
        self.end_run();
        let (code, distance) = (len - 2, distance - 1);
        if code < 7 {
            self.bytes.push((code << 5 | distance >> 8) as u8);
        } else {
            self.bytes.push((7 << 5 | distance >> 8) as u8);
            self.bytes.push((code - 7) as u8);
        }
        self.bytes.push(distance as u8);
        self.start_run();
    }

    fn start_run(&mut self) {
        self.run_start = self.bytes.len();
        self.lit = 0;
        self.bytes.push(0);
    }

    /// Fills in the run's control byte, or drops it if the run is empty.
    fn end_run(&mut self) {
        if self.lit > 0 {
            self.bytes[self.run_start] = (self.lit - 1) as u8;
        } else {
            self.bytes.pop();
        }
    }
}

#[cfg(test)]
mod compress_tests {
    use super::tests::XorShift;
    use super::{compress_with, decompress, Table};

    /// Compresses with a fresh table.
    fn compress(src: &[u8], max_len: usize) -> Option<Vec<u8>> {
        compress_with(&mut Table::new(), src, max_len)
    }

    fn round_trip(src: &[u8]) -> Option<usize> {
        let packed = compress(src, src.len() * 2 + 16)?;
        assert_eq!(decompress(&packed, src.len()).as_deref(), Some(src));
        Some(packed.len())
    }

    #[test]
    fn same_bytes_as_redis() {
        let a21 = compress(&[b'a'; 21], 17);
        assert_eq!(a21, Some(vec![0x01, b'a', b'a', 0xe0, 0x0a, 0x00]));
        let ab30 = compress(&b"ab".repeat(30), 56);
        let redis = [0x02, b'a', b'b', b'a', 0xe0, 0x2e, 0x01, 0x01, b'a', b'b'];
        assert_eq!(ab30, Some(redis.to_vec()));
    }

    #[test]
    fn gives_up_when_the_result_does_not_fit() {
        assert_eq!(compress(b"", 100), None);
        assert_eq!(compress(&[b'a'; 21], 5), None);
        let noise = XorShift(7).bytes(30);
        assert_eq!(compress(&noise, 26), None);
        for max_len in 0..40 {
            if let Some(packed) = compress(&b"ab".repeat(30), max_len) {
                assert!(packed.len() <= max_len);
            }
        }
    }

    #[test]
    fn round_trips() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for len in 1..600 {
            round_trip(&rng.bytes(len)).expect("room for the worst case");
            let alphabet = 1 + rng.next() % 4;
            let few: Vec<u8> = (0..len)
                .map(|_| b'a' + (rng.next() % alphabet) as u8)
                .collect();
            round_trip(&few).expect("room for the worst case");
        }
        let text = b"the quick brown fox jumps over the lazy dog; ".repeat(2000);
        assert!(round_trip(&text).expect("compressible") < text.len() / 10);
        // Repeats farther apart than the 8 KiB window cannot be referenced.
        let block = rng.bytes(10_000);
        round_trip(&[block.clone(), block].concat()).expect("room for the worst case");
        round_trip(&vec![0; 100_000]).expect("room for the worst case");
    }
}

//! Listpacks, the packed form Redis 7.0 saves small hashes and list nodes
//! in (docs/redis-wire.md, section 8): a header (total bytes, u32 LE;
//! element count, u16 LE, 65535 meaning "count them"), the elements, and
//! `FF`. Each element is its encoding and data, then its own size
//! ("backlen") so the list can be walked backwards. An element that is
//! the canonical decimal form of an int64 is stored as the smallest
//! integer form that holds it; anything else as a string.

/// Appends elements to a listpack under construction.
#[derive(Debug, Clone)]
pub struct Builder {
    bytes: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            bytes: vec![0; 6],
            count: 0,
        }
    }
}

/// `element` as an int64, if it is the canonical decimal form of one.
fn as_int(element: &[u8]) -> Option<i64> {
    if element.is_empty() || element.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(element).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == element).then_some(n)
}

/// Encoding byte(s) and data of `element`.
fn encode(element: &[u8], out: &mut Vec<u8>) {
    if let Some(n) = as_int(element) {
        if (0..=127).contains(&n) {
            out.push(n as u8);
        } else if (-4096..4096).contains(&n) {
            let n = (n as u16) & 0x1fff;
            out.extend([0xc0 | (n >> 8) as u8, n as u8]);
        } else if let Ok(n) = i16::try_from(n) {
            out.push(0xf1);
            out.extend(n.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&n) {
            out.push(0xf2);
            out.extend(&(n as i32).to_le_bytes()[..3]);
        } else if let Ok(n) = i32::try_from(n) {
            out.push(0xf3);
            out.extend(n.to_le_bytes());
        } else {
            out.push(0xf4);
            out.extend(n.to_le_bytes());
        }
        return;
    }
    let len = element.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.extend([0xe0 | (len >> 8) as u8, len as u8]);
    } else {
        out.push(0xf0);
        out.extend((len as u32).to_le_bytes());
    }
    out.extend_from_slice(element);
}

/// The backlen of an entry of `size` bytes: 7-bit groups, most significant
/// first, every byte but the first with bit 7 set.
fn backlen(size: usize) -> Vec<u8> {
    let mut groups = vec![(size & 0x7f) as u8];
    let mut rest = size >> 7;
    while rest > 0 {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
    }
    groups.reverse();
    for byte in &mut groups[1..] {
        *byte |= 0x80;
    }
    groups
}

impl Builder {
    /// Appends `element`.
    pub fn push(&mut self, element: &[u8]) {
        let start = self.bytes.len();
        encode(element, &mut self.bytes);
        let size = self.bytes.len() - start;
        self.bytes.extend(backlen(size));
        self.count += 1;
    }

    /// The bytes so far, with the end mark, as a finished listpack.
    pub fn len_when_finished(&self) -> usize {
        self.bytes.len() + 1
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.push(0xff);
        let total = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(65535) as u16;
        self.bytes[4..6].copy_from_slice(&count.to_le_bytes());
        self.bytes
    }
}

/// The elements of listpack `bytes`, as strings (integers in decimal);
/// `None` if it is malformed.
pub fn parse(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if total != bytes.len() || total < 7 || bytes[total - 1] != 0xff {
        return None;
    }
    let count = u16::from_le_bytes(bytes.get(4..6)?.try_into().ok()?) as usize;
    let mut elements = Vec::with_capacity(count.min(1024));
    let mut at = 6;
    let take = |at: usize, n: usize| bytes.get(at..at.checked_add(n)?);
    let int = |raw: &[u8]| {
        let mut word = [if raw.last()? & 0x80 != 0 { 0xff } else { 0 }; 8];
        word[..raw.len()].copy_from_slice(raw);
        Some(i64::from_le_bytes(word).to_string().into_bytes())
    };
    while *bytes.get(at)? != 0xff {
        let first = bytes[at];
        let (element, size) = match first {
            0x00..=0x7f => (first.to_string().into_bytes(), 1),
            0x80..=0xbf => {
                let len = usize::from(first & 0x3f);
                (take(at + 1, len)?.to_vec(), 1 + len)
            }
            0xc0..=0xdf => {
                let raw = (u16::from(first & 0x1f) << 8) | u16::from(*bytes.get(at + 1)?);
                let n = if raw >= 4096 {
                    i64::from(raw) - 8192
                } else {
                    i64::from(raw)
                };
                (n.to_string().into_bytes(), 2)
            }
            0xe0..=0xef => {
                let len = (usize::from(first & 0x0f) << 8) | usize::from(*bytes.get(at + 1)?);
                (take(at + 2, len)?.to_vec(), 2 + len)
            }
            0xf0 => {
                let len = u32::from_le_bytes(take(at + 1, 4)?.try_into().ok()?) as usize;
                (take(at + 5, len)?.to_vec(), 5 + len)
            }
            0xf1..=0xf4 => {
                let width = [2, 3, 4, 8][usize::from(first - 0xf1)];
                (int(take(at + 1, width)?)?, 1 + width)
            }
            _ => return None,
        };
        at += size + backlen(size).len();
        elements.push(element);
    }
    (at == total - 1 && (count == 65535 || count == elements.len())).then_some(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(elements: &[&[u8]]) -> Vec<u8> {
        let mut builder = Builder::default();
        for element in elements {
            builder.push(element);
        }
        builder.finish()
    }

    /// `RPUSH l a 1 300 -5000` as redis-server 7.0.15 saved it.
    const REAL: &[u8] = &[
        0x13, 0, 0, 0, 4, 0, 0x81, 0x61, 2, 1, 1, 0xc1, 0x2c, 2, 0xf1, 0x78, 0xec, 3, 0xff,
    ];

    #[test]
    fn writes_and_reads_the_bytes_redis_wrote() {
        let elements: [&[u8]; 4] = [b"a", b"1", b"300", b"-5000"];
        assert_eq!(packed(&elements), REAL);
        assert_eq!(parse(REAL), Some(elements.map(<[u8]>::to_vec).to_vec()));
    }

    #[test]
    fn every_encoding_round_trips() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 200];
        let elements: Vec<&[u8]> = vec![
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"4096",
            b"-32768",
            b"8388607",
            b"-8388608",
            b"2147483647",
            b"-2147483648",
            b"2147483648",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"9223372036854775808",
            b"007",
            b"-0",
            b"1.0",
            b"",
            &mid,
            &long,
        ];
        let bytes = packed(&elements);
        let want: Vec<Vec<u8>> = elements.iter().map(|e| e.to_vec()).collect();
        assert_eq!(parse(&bytes), Some(want));
        assert_eq!(packed(&[]), [7, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(packed(&[b"128"])[6..9], [0xc0, 0x80, 2]);
        assert_eq!(packed(&[b"-1"])[6..8], [0xdf, 0xff]);
        assert_eq!(packed(&[b"4096"])[6..9], [0xf1, 0x00, 0x10]);
    }

    #[test]
    fn backlens_match_redis() {
        assert_eq!(backlen(127), [0x7f]);
        assert_eq!(backlen(128), [0x01, 0x80]);
        assert_eq!(backlen(4097), [0x20, 0x81]);
        assert_eq!(backlen(4101), [0x20, 0x85]);
    }

    #[test]
    fn malformed_listpacks_are_refused() {
        assert_eq!(parse(&REAL[..18]), None);
        let mut bad = REAL.to_vec();
        bad[4] = 5;
        assert_eq!(parse(&bad), None);
        assert_eq!(parse(&[]), None);
    }
}

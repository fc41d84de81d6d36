//! Intsets, the form Redis 7.0 saves a small set of integers in (RDB type
//! 11; docs/redis-wire.md, section 8): the width of every member (2, 4 or
//! 8 bytes, the smallest that fits them all; u32 LE), the count (u32 LE),
//! then the members, little-endian, sorted ascending, distinct.

/// The intset of `members`, which must be sorted and distinct.
pub fn encode(members: &[i64]) -> Vec<u8> {
    let fits = |min: i64, max: i64| members.iter().all(|n| (min..=max).contains(n));
    let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
        2
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        4
    } else {
        8
    };
    let mut bytes = Vec::with_capacity(8 + width * members.len());
    bytes.extend((width as u32).to_le_bytes());
    bytes.extend((members.len() as u32).to_le_bytes());
    for n in members {
        bytes.extend(&n.to_le_bytes()[..width]);
    }
    bytes
}

/// The members of intset `bytes`; `None` if it is malformed, unsorted or
/// has a repeat.
pub fn decode(bytes: &[u8]) -> Option<Vec<i64>> {
    let word = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let width = word(0)? as usize;
    let count = word(4)? as usize;
    if ![2, 4, 8].contains(&width) || bytes.len() != 8 + width.checked_mul(count)? {
        return None;
    }
    let members: Vec<i64> = bytes[8..]
        .chunks(width)
        .map(|raw| {
            let mut word = [if raw[width - 1] & 0x80 != 0 { 0xff } else { 0 }; 8];
            word[..width].copy_from_slice(raw);
            i64::from_le_bytes(word)
        })
        .collect();
    members.windows(2).all(|w| w[0] < w[1]).then_some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_redis_wrote() {
        // {1,2} and {1,2,70000}, from redis-server 7.0.15's dumps.
        let small = [2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0];
        assert_eq!(encode(&[1, 2]), small);
        assert_eq!(decode(&small), Some(vec![1, 2]));
        let wide = [
            4, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x70, 0x11, 1, 0,
        ];
        assert_eq!(encode(&[1, 2, 70000]), wide);
        assert_eq!(decode(&wide), Some(vec![1, 2, 70000]));
        let big = encode(&[-1, i64::MAX]);
        assert_eq!(big.len(), 24);
        assert_eq!(decode(&big), Some(vec![-1, i64::MAX]));
    }

    #[test]
    fn unsorted_or_short_intsets_are_refused() {
        assert_eq!(decode(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]), None);
        assert_eq!(decode(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0]), None);
        assert_eq!(decode(&[3, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}

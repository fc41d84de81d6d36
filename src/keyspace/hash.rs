//! A hash's fields and values, kept in the order Redis 7.0 replies them.
//!
//! Redis keeps a small hash (at most 512 fields, none and no value longer
//! than 64 bytes) in a listpack: HGETALL answers in insertion order, and
//! HDEL closes the gap. A bigger hash moves to a hash table for good, and
//! its order means nothing. We follow both forms. While the hash is small
//! its pairs are packed in one block of bytes, in order, each field and
//! value a length (LEB128) and its bytes, found by a linear scan: O(n) for
//! n at most 512, as in the listpack, and a few bytes per pair instead of
//! two vectors and an index entry. A removal closes the gap. Once it grows
//! past the limits it becomes a vector of pairs with an index from field
//! to position, for good, and a removal swaps the last pair in (O(1)).
//! `is_compact` is what OBJECT ENCODING and the RDB writer read.

use std::collections::HashMap;
use std::ops::Range;

/// The most fields a compact hash holds (`hash-max-listpack-entries`).
pub const COMPACT_ENTRIES: usize = 512;
/// The longest field or value a compact hash holds (`hash-max-listpack-value`).
pub const COMPACT_VALUE: usize = 64;

/// A hash value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// Small (Redis's `listpack`): `len` pairs packed in `bytes`.
    Packed {
        /// Field, value, field, value ..., each as a length and bytes.
        bytes: Vec<u8>,
        /// How many pairs.
        len: usize,
    },
    /// Grown (`hashtable`): the pairs, and where each field is.
    Table(Vec<(Vec<u8>, Vec<u8>)>, HashMap<Vec<u8>, usize>),
}

impl Default for Hash {
    fn default() -> Hash {
        Hash::Packed {
            bytes: Vec::new(),
            len: 0,
        }
    }
}

/// Appends `item` to a packed block: its length, then its bytes.
fn pack(bytes: &mut Vec<u8>, item: &[u8]) {
    let mut len = item.len();
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(low);
            break;
        }
        bytes.push(low | 0x80);
    }
    bytes.extend_from_slice(item);
}

/// The pairs of a packed block, in order, with where each pair starts
/// and ends.
struct Unpack<'a> {
    bytes: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Unpack<'a> {
    /// The next item's bytes.
    fn item(&mut self) -> &'a [u8] {
        let (mut len, mut shift) = (0, 0);
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let item = &self.bytes[self.at..self.at + len];
        self.at += len;
        item
    }
}

impl<'a> Iterator for Unpack<'a> {
    type Item = (&'a [u8], &'a [u8], Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let start = self.at;
        let field = self.item();
        let value = self.item();
        Some((field, value, start..self.at))
    }
}

/// The pairs of a hash, in order.
pub struct Pairs<'a>(PairsInner<'a>);

enum PairsInner<'a> {
    Packed(Unpack<'a>),
    Table(std::slice::Iter<'a, (Vec<u8>, Vec<u8>)>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            PairsInner::Packed(unpack) => unpack.next().map(|(f, v, _)| (f, v)),
            PairsInner::Table(pairs) => pairs.next().map(|(f, v)| (f.as_slice(), v.as_slice())),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.0 {
            PairsInner::Packed(unpack) => unpack.left,
            PairsInner::Table(pairs) => pairs.len(),
        };
        (left, Some(left))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

impl Hash {
    /// A hash of `pairs` (distinct fields), in that order. Compact if it
    /// fits, as Redis decides again when it loads a hash.
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Hash {
        let mut hash = Hash::default();
        for (field, value) in pairs {
            hash.insert(field, value);
        }
        hash
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Packed { len, .. } => *len,
            Hash::Table(pairs, _) => pairs.len(),
        }
    }

    /// Has it no field?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is it in Redis's small form (`listpack`), rather than `hashtable`?
    pub fn is_compact(&self) -> bool {
        matches!(self, Hash::Packed { .. })
    }

    /// The packed pairs with their byte ranges (empty for a table).
    fn unpack(&self) -> Unpack<'_> {
        match self {
            Hash::Packed { bytes, len } => Unpack {
                bytes,
                at: 0,
                left: *len,
            },
            Hash::Table(..) => Unpack {
                bytes: &[],
                at: 0,
                left: 0,
            },
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed { .. } => self.unpack().find(|(f, _, _)| *f == field).map(|p| p.1),
            Hash::Table(pairs, index) => index.get(field).map(|&at| pairs[at].1.as_slice()),
        }
    }

    /// Sets `field` to `value`; says whether the field is new.
    pub fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> bool {
        let too_long = field.len() > COMPACT_VALUE || value.len() > COMPACT_VALUE;
        if too_long || self.len() >= COMPACT_ENTRIES && self.get(&field).is_none() {
            self.grow();
        }
        let found = self
            .unpack()
            .find(|(f, _, _)| *f == field.as_slice())
            .map(|p| p.2);
        match self {
            Hash::Packed { bytes, len } => {
                let mut pair = Vec::with_capacity(field.len() + value.len() + 4);
                pack(&mut pair, &field);
                pack(&mut pair, &value);
                match found {
                    Some(range) => {
                        bytes.splice(range, pair);
                        false
                    }
                    None => {
                        bytes.reserve_exact(pair.len());
                        bytes.extend_from_slice(&pair);
                        *len += 1;
                        true
                    }
                }
            }
            Hash::Table(pairs, index) => match index.get(&field) {
                Some(&at) => {
                    pairs[at].1 = value;
                    false
                }
                None => {
                    index.insert(field.clone(), pairs.len());
                    pairs.push((field, value));
                    true
                }
            },
        }
    }

    /// Leaves the compact form, for good.
    fn grow(&mut self) {
        if self.is_compact() {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                self.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            let index = pairs.iter().map(|(f, _)| f.clone()).zip(0..).collect();
            *self = Hash::Table(pairs, index);
        }
    }

    /// Removes `field`; says whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let found = self.unpack().find(|(f, _, _)| *f == field).map(|p| p.2);
        match self {
            Hash::Packed { bytes, len } => {
                let Some(range) = found else {
                    return false;
                };
                bytes.drain(range);
                bytes.shrink_to_fit();
                *len -= 1;
                true
            }
            Hash::Table(pairs, index) => {
                let Some(at) = index.remove(field) else {
                    return false;
                };
                pairs.swap_remove(at);
                if let Some((moved, _)) = pairs.get(at) {
                    index.insert(moved.clone(), at);
                }
                true
            }
        }
    }

    /// The pair at position `at` (for random picks): O(n) while compact.
    pub fn pair(&self, at: usize) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Packed { .. } => self.iter().nth(at),
            Hash::Table(pairs, _) => pairs.get(at).map(|(f, v)| (f.as_slice(), v.as_slice())),
        }
    }

    /// Every field with its value, in Redis's order while compact.
    pub fn iter(&self) -> Pairs<'_> {
        match self {
            Hash::Packed { .. } => Pairs(PairsInner::Packed(self.unpack())),
            Hash::Table(pairs, _) => Pairs(PairsInner::Table(pairs.iter())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(hash: &Hash) -> Vec<&[u8]> {
        hash.iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn small_hashes_keep_insertion_order_through_removals() {
        let mut hash = Hash::default();
        for f in ["a", "b", "c", "d"] {
            assert!(hash.insert(f.into(), b"1".to_vec()));
        }
        assert!(!hash.insert(b"b".to_vec(), b"2".to_vec()));
        assert!(hash.remove(b"a"));
        assert!(!hash.remove(b"a"));
        assert_eq!(fields(&hash), [&b"b"[..], b"c", b"d"]);
        assert_eq!(hash.get(b"b"), Some(&b"2"[..]));
        assert_eq!(hash.get(b"d"), Some(&b"1"[..]));
        assert!(hash.is_compact());
    }

    #[test]
    fn growing_past_the_limits_is_for_good() {
        let mut hash = Hash::default();
        hash.insert(b"f".to_vec(), vec![b'x'; 65]);
        assert!(!hash.is_compact());
        hash.remove(b"f");
        assert!(!hash.is_compact());
        let mut hash = Hash::default();
        for i in 0..=COMPACT_ENTRIES {
            hash.insert(i.to_string().into_bytes(), b"v".to_vec());
        }
        assert!(!hash.is_compact());
        for i in 0..COMPACT_ENTRIES {
            assert!(hash.remove(i.to_string().as_bytes()));
        }
        assert_eq!(hash.get(b"512"), Some(&b"v"[..]));
        assert_eq!(hash.len(), 1);
    }
}

//! A hash's fields and values, kept in the order Redis 7.0 replies them.
//!
//! Redis keeps a small hash (at most 512 fields, none and no value longer
//! than 64 bytes) in a listpack: HGETALL answers in insertion order, and
//! HDEL closes the gap. A bigger hash moves to a hash table for good, and
//! its order means nothing. We follow both forms: while the hash is
//! small its pairs sit in a vector, in order, found by a linear scan
//! (O(n) for n at most 512, as in the listpack, and no index to pay for:
//! a small hash costs a fraction of what it would with one); a removal
//! shifts the pairs after it. Once it grows past the limits it gains an
//! index from field to position, for good, and a removal swaps the last
//! pair in (O(1)). `is_compact` is what OBJECT ENCODING and the RDB
//! writer read.

use std::collections::HashMap;

/// The most fields a compact hash holds (`hash-max-listpack-entries`).
pub const COMPACT_ENTRIES: usize = 512;
/// The longest field or value a compact hash holds (`hash-max-listpack-value`).
pub const COMPACT_VALUE: usize = 64;

/// A hash value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hash {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where each field is; `None` while the hash is compact (Redis's
    /// listpack form: small, and ordered).
    index: Option<HashMap<Vec<u8>, usize>>,
}

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
        self.pairs.len()
    }

    /// Has it no field?
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Is it in Redis's small form (`listpack`), rather than `hashtable`?
    pub fn is_compact(&self) -> bool {
        self.index.is_none()
    }

    /// The position of `field`.
    fn position(&self, field: &[u8]) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(field).copied(),
            None => self.pairs.iter().position(|(f, _)| f == field),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        let at = self.position(field)?;
        Some(&self.pairs[at].1)
    }

    /// Sets `field` to `value`; says whether the field is new.
    pub fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> bool {
        let too_long = field.len() > COMPACT_VALUE || value.len() > COMPACT_VALUE;
        if let Some(at) = self.position(&field) {
            self.pairs[at].1 = value;
            if too_long {
                self.grow();
            }
            return false;
        }
        if let Some(index) = &mut self.index {
            index.insert(field.clone(), self.pairs.len());
        }
        self.pairs.push((field, value));
        if too_long || self.pairs.len() > COMPACT_ENTRIES {
            self.grow();
        }
        true
    }

    /// Leaves the compact form: indexes the fields.
    fn grow(&mut self) {
        if self.index.is_none() {
            let fields = self.pairs.iter().map(|(f, _)| f.clone());
            self.index = Some(fields.zip(0..).collect());
        }
    }

    /// Removes `field`; says whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let Some(at) = self.position(field) else {
            return false;
        };
        match &mut self.index {
            None => {
                self.pairs.remove(at);
            }
            Some(index) => {
                index.remove(field);
                self.pairs.swap_remove(at);
                if let Some((moved, _)) = self.pairs.get(at) {
                    index.insert(moved.clone(), at);
                }
            }
        }
        true
    }

    /// The pair at position `at` (for random picks).
    pub fn pair(&self, at: usize) -> Option<(&[u8], &[u8])> {
        self.pairs
            .get(at)
            .map(|(f, v)| (f.as_slice(), v.as_slice()))
    }

    /// Every field with its value, in Redis's order while compact.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice()))
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

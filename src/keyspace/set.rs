//! A set's members, in the two forms Redis 7.0 keeps them in.
//!
//! A set of at most 512 integers is an intset in Redis: sorted, so that
//! SMEMBERS answers in ascending order, and saved as RDB type 11. Any
//! other set is a hash table (type 2), whose order means nothing. We keep
//! the same two forms, with the same one-way switch, so that replies and
//! dumps come out as Redis's: `Ints`, a sorted vector (binary search:
//! O(log n) lookups, O(n) inserts for n at most 512, as the intset's), and
//! `Table`, the members in a vector with an index from member to position,
//! so that SPOP and SRANDMEMBER pick uniformly in O(1).

use std::collections::HashMap;

/// The most members an integer set holds (`set-max-intset-entries`).
pub const MAX_INTSET_ENTRIES: usize = 512;

/// A set value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Set {
    /// Only integers, at most 512, sorted (`intset`).
    Ints(Vec<i64>),
    /// Anything (`hashtable`): the members and where each one is.
    Table(Vec<Vec<u8>>, HashMap<Vec<u8>, usize>),
}

impl Default for Set {
    fn default() -> Set {
        Set::Ints(Vec::new())
    }
}

/// `member` as an integer, if it is the canonical decimal form of one
/// (no `+`, no leading zero, not `-0`): only those go in an intset.
pub fn canonical_int(member: &[u8]) -> Option<i64> {
    if member.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(member).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == member).then_some(n)
}

impl Set {
    /// A set of `members`, in the form Redis would load it in.
    pub fn from_members(members: impl IntoIterator<Item = Vec<u8>>) -> Set {
        let mut set = Set::default();
        for member in members {
            set.insert(member);
        }
        set
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(ints) => ints.len(),
            Set::Table(members, _) => members.len(),
        }
    }

    /// Has it no member?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is it an intset (else a hash table)?
    pub fn is_intset(&self) -> bool {
        matches!(self, Set::Ints(_))
    }

    /// Is `member` in the set?
    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(ints) => {
                canonical_int(member).is_some_and(|n| ints.binary_search(&n).is_ok())
            }
            Set::Table(_, index) => index.contains_key(member),
        }
    }

    /// Adds `member`; says whether it is new.
    pub fn insert(&mut self, member: Vec<u8>) -> bool {
        if let Set::Ints(ints) = self {
            if let Some(n) = canonical_int(&member) {
                match ints.binary_search(&n) {
                    Ok(_) => return false,
                    Err(at) if ints.len() < MAX_INTSET_ENTRIES => {
                        ints.insert(at, n);
                        return true;
                    }
                    Err(_) => {}
                }
            }
            self.convert_to_table();
        }
        let Set::Table(members, index) = self else {
            return false;
        };
        if index.contains_key(&member) {
            return false;
        }
        index.insert(member.clone(), members.len());
        members.push(member);
        true
    }

    /// Removes `member`; says whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(ints) => match canonical_int(member).map(|n| ints.binary_search(&n)) {
                Some(Ok(at)) => {
                    ints.remove(at);
                    true
                }
                _ => false,
            },
            Set::Table(members, index) => {
                let Some(at) = index.remove(member) else {
                    return false;
                };
                members.swap_remove(at);
                if let Some(moved) = members.get(at) {
                    index.insert(moved.clone(), at);
                }
                true
            }
        }
    }

    /// The member at position `at` (for uniform random picks).
    pub fn member(&self, at: usize) -> Option<Vec<u8>> {
        match self {
            Set::Ints(ints) => ints.get(at).map(|n| n.to_string().into_bytes()),
            Set::Table(members, _) => members.get(at).cloned(),
        }
    }

    /// Every member: ascending for an intset, in no order otherwise.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Vec<u8>> + '_> {
        match self {
            Set::Ints(ints) => Box::new(ints.iter().map(|n| n.to_string().into_bytes())),
            Set::Table(members, _) => Box::new(members.iter().cloned()),
        }
    }

    /// Converts an intset to a hash table: for good, as in Redis.
    fn convert_to_table(&mut self) {
        if let Set::Ints(ints) = self {
            let members: Vec<Vec<u8>> = ints.iter().map(|n| n.to_string().into_bytes()).collect();
            let index = members.iter().cloned().zip(0..).collect();
            *self = Set::Table(members, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_sorted_until_a_string_or_the_513th() {
        let mut set = Set::default();
        for m in ["3", "1", "2", "1"] {
            set.insert(m.into());
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [b"1", b"2", b"3"]);
        assert!(set.is_intset());
        assert!(!set.contains(b"01"));
        set.insert(b"01".to_vec());
        assert!(!set.is_intset());
        assert!(set.contains(b"01") && set.contains(b"2"));
        assert!(set.remove(b"1") && !set.remove(b"1"));
        assert_eq!(set.len(), 3);
        let big = Set::from_members((0..=512).map(|i: i32| i.to_string().into_bytes()));
        assert!(!big.is_intset());
        let fits = Set::from_members((0..512).map(|i: i32| i.to_string().into_bytes()));
        assert!(fits.is_intset());
    }

    #[test]
    fn canonical_integers_only() {
        assert_eq!(canonical_int(b"9223372036854775807"), Some(i64::MAX));
        for not in ["+1", "01", "-0", "1.0", "9223372036854775808", ""] {
            assert_eq!(canonical_int(not.as_bytes()), None, "{not}");
        }
    }
}

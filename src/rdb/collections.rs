//! Lists, hashes and sets in an RDB, in the encodings Redis 7.0 writes
//! and reads (docs/redis-wire.md, section 8):
//!
//! - a list is a quicklist (type 18): a count of nodes, then each node as
//!   its container (2, a listpack) and the listpack as a string; a node
//!   takes elements while its listpack plus the element plus 8 stays
//!   within 8 KB, as Redis's default `list-max-listpack-size -2` does;
//! - a hash is one listpack of field, value, field, value ... (type 16)
//!   while it is small, else a count and the pairs as strings (type 4);
//! - a set is an intset (type 11) while it is small and all integers,
//!   else a count and the members as strings (type 2).
//!
//! Blobs (listpacks, intsets) are ordinary RDB strings, LZF-compressed
//! like any other. Loading also takes the plain list (type 1); the older
//! ziplist forms, which 7.0 never writes, are refused by name.

use std::io::{self, Read, Write};

use super::{intset, listpack, RdbError, RdbWriter, Reader};

pub(super) const TYPE_LIST: u8 = 1;
pub(super) const TYPE_SET: u8 = 2;
pub(super) const TYPE_HASH: u8 = 4;
pub(super) const TYPE_SET_INTSET: u8 = 11;
pub(super) const TYPE_HASH_LISTPACK: u8 = 16;
pub(super) const TYPE_LIST_QUICKLIST_2: u8 = 18;

/// A quicklist node's container: a listpack.
const CONTAINER_PACKED: u64 = 2;
/// A quicklist node's container: one element, as it is.
const CONTAINER_PLAIN: u64 = 1;
/// The most bytes a list node's listpack may reach (fill -2).
const NODE_BYTES: usize = 8192;
/// What Redis adds to an element's length when it checks that limit.
const NODE_OVERHEAD: usize = 8;

/// A value read from an RDB, before the keyspace gives it its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A string.
    String(Vec<u8>),
    /// A list's elements, first to last.
    List(Vec<Vec<u8>>),
    /// A hash's fields and values, in file order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A set's members, in file order.
    Set(Vec<Vec<u8>>),
}

impl<W: Write> RdbWriter<W> {
    /// Writes a list as a quicklist of listpack nodes.
    pub fn list<'a>(
        &mut self,
        key: &[u8],
        elements: impl Iterator<Item = &'a [u8]>,
        expires_at: Option<i64>,
    ) -> io::Result<()> {
        let mut nodes = Vec::new();
        let mut node = listpack::Builder::default();
        for element in elements {
            let fits = node.len_when_finished() + element.len() + NODE_OVERHEAD <= NODE_BYTES;
            if !fits && !node.is_empty() {
                nodes.push(std::mem::take(&mut node).finish());
            }
            node.push(element);
        }
        if !node.is_empty() {
            nodes.push(node.finish());
        }
        self.key_header(TYPE_LIST_QUICKLIST_2, key, expires_at)?;
        self.write_len(nodes.len() as u64)?;
        for node in nodes {
            self.write_len(CONTAINER_PACKED)?;
            self.write_string(&node)?;
        }
        Ok(())
    }

    /// Writes a hash: one listpack if `compact`, else the pairs.
    pub fn hash<'a>(
        &mut self,
        key: &[u8],
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
        compact: bool,
        expires_at: Option<i64>,
    ) -> io::Result<()> {
        if compact {
            let mut packed = listpack::Builder::default();
            for (field, value) in pairs {
                packed.push(field);
                packed.push(value);
            }
            self.key_header(TYPE_HASH_LISTPACK, key, expires_at)?;
            return self.write_string(&packed.finish());
        }
        self.key_header(TYPE_HASH, key, expires_at)?;
        self.write_len(pairs.len() as u64)?;
        for (field, value) in pairs {
            self.write_string(field)?;
            self.write_string(value)?;
        }
        Ok(())
    }

    /// Writes a set of integers (sorted, distinct) as an intset.
    pub fn intset(
        &mut self,
        key: &[u8],
        members: &[i64],
        expires_at: Option<i64>,
    ) -> io::Result<()> {
        self.key_header(TYPE_SET_INTSET, key, expires_at)?;
        self.write_string(&intset::encode(members))
    }

    /// Writes a set as its members.
    pub fn set(
        &mut self,
        key: &[u8],
        members: impl ExactSizeIterator<Item = Vec<u8>>,
        expires_at: Option<i64>,
    ) -> io::Result<()> {
        self.key_header(TYPE_SET, key, expires_at)?;
        self.write_len(members.len() as u64)?;
        members.into_iter().try_for_each(|m| self.write_string(&m))
    }
}

/// Reads the value of a list, hash or set of type `kind`, after its key.
pub(super) fn read_value<R: Read>(r: &mut Reader<R>, kind: u8) -> Result<Loaded, RdbError> {
    let at = r.offset;
    let corrupt = |what: &str| RdbError::new(at, format!("corrupt {what}"));
    Ok(match kind {
        TYPE_LIST => Loaded::List(strings(r)?),
        TYPE_SET => Loaded::Set(strings(r)?),
        TYPE_HASH => {
            let n = r.plain_length()?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                pairs.push((r.string()?, r.string()?));
            }
            Loaded::Hash(pairs)
        }
        TYPE_SET_INTSET => {
            let members = intset::decode(&r.string()?).ok_or_else(|| corrupt("intset"))?;
            Loaded::Set(members.iter().map(|n| n.to_string().into_bytes()).collect())
        }
        TYPE_HASH_LISTPACK => {
            let elements = listpack::parse(&r.string()?).ok_or_else(|| corrupt("listpack"))?;
            if elements.len() % 2 != 0 {
                return Err(corrupt("hash listpack"));
            }
            let mut elements = elements.into_iter();
            let mut pairs = Vec::new();
            while let (Some(field), Some(value)) = (elements.next(), elements.next()) {
                pairs.push((field, value));
            }
            Loaded::Hash(pairs)
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.plain_length()?;
            let mut elements = Vec::new();
            for _ in 0..nodes {
                match r.plain_length()? {
                    CONTAINER_PLAIN => elements.push(r.string()?),
                    CONTAINER_PACKED => {
                        let node = listpack::parse(&r.string()?);
                        elements.extend(node.ok_or_else(|| corrupt("listpack"))?);
                    }
                    _ => return Err(RdbError::new(at, "Quicklist integrity check failed.")),
                }
            }
            Loaded::List(elements)
        }
        other => return Err(RdbError::new(at, format!("unsupported value type {other}"))),
    })
}

/// A count, then that many strings.
fn strings<R: Read>(r: &mut Reader<R>) -> Result<Vec<Vec<u8>>, RdbError> {
    let n = r.plain_length()?;
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(r.string()?);
    }
    Ok(all)
}

//! The RDB snapshot format of Redis 7.0: [`RdbWriter`] saves
//! a dataset and [`load`] reads one back. The same bytes are a `dump.rdb` on
//! disk and the payload of a replica's full sync.
//!
//! ```text
//! "REDIS0010"  { FA <aux name> <aux value> }*
//! { FE <db>  FB <keys> <keys with expiry>
//!   { [FC <expiry: u64 LE, unix ms>]  00 <key> <value> }* }*
//! FF  <CRC-64 of everything before it: u64 LE>
//! ```
//!
//! Numbers in angle brackets use the length encoding (1, 2, 5 or 9 bytes,
//! big-endian). Strings are a length and that many bytes, or, flagged by a
//! first byte of `11xxxxxx`, a small integer or an LZF-compressed block.
//!
//! This file has the frame and strings; lists, hashes and sets, and the
//! packed blobs they travel in, are in `rdb/` (`collections.rs`,
//! `listpack.rs`, `intset.rs`).

mod collections;
mod intset;
mod listpack;

pub use collections::Loaded;

use crate::{crc64, lzf};
use std::fmt;
use std::io::{self, Read, Write};

/// The newest format version: 7.0 writes and reads version 10.
const RDB_VERSION: u32 = 10;

// Opcodes share the byte space of value types, from the top down.
const OP_FUNCTION2: u8 = 0xf5;
const OP_FUNCTION: u8 = 0xf6;
const OP_MODULE_AUX: u8 = 0xf7;
const OP_IDLE: u8 = 0xf8;
const OP_FREQ: u8 = 0xf9;
const OP_AUX: u8 = 0xfa;
const OP_RESIZEDB: u8 = 0xfb;
const OP_EXPIRETIME_MS: u8 = 0xfc;
const OP_EXPIRETIME: u8 = 0xfd;
const OP_SELECTDB: u8 = 0xfe;
const OP_EOF: u8 = 0xff;

/// The value type of a string (the others are in `collections.rs`).
const TYPE_STRING: u8 = 0;

// The low 6 bits of a `11xxxxxx` length byte: how the string is encoded.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Redis does not try LZF on strings of 20 bytes or less, on the grounds
/// that they rarely shrink enough to pay; we follow it so that our files
/// come out byte for byte like its own.
const MIN_COMPRESS_LEN: usize = 21;

/// The most a reader allocates for a string before its bytes arrive.
const PREALLOC_LIMIT: u64 = 64 * 1024;

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// The value of an AUX field in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuxValue {
    /// Any bytes, such as `redis-ver` = `7.0.15`.
    Str(Vec<u8>),
    /// A number, such as `ctime`; it is stored as the string of its digits.
    Int(i64),
}

/// Writes an RDB stream: call [`header`](Self::header) once, then for each
/// non-empty database [`select_db`](Self::select_db) and its entries, then
/// [`finish`](Self::finish).
///
/// Every call goes straight to `out`, so give it a `BufWriter` around a file
/// or socket.
pub struct RdbWriter<W: Write> {
    out: W,
    crc: u64,
    /// The compressor's table, kept from string to string; `None` when
    /// compression is off.
    compress: Option<lzf::Table>,
}

impl<W: Write> RdbWriter<W> {
    /// Starts writing to `out`. `compress` plays the part of Redis's
    /// `rdbcompression` setting (on by default there).
    pub fn new(out: W, compress: bool) -> Self {
        RdbWriter {
            out,
            crc: 0,
            compress: compress.then(lzf::Table::new),
        }
    }

    /// Writes the magic, the version and the AUX fields, in the given order.
    pub fn header(&mut self, aux: &[(&str, AuxValue)]) -> io::Result<()> {
        self.write(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        for (name, value) in aux {
            self.write(&[OP_AUX])?;
            self.write_string(name.as_bytes())?;
            match value {
                AuxValue::Str(bytes) => self.write_string(bytes)?,
                AuxValue::Int(n) => self.write_string(n.to_string().as_bytes())?,
            }
        }
        Ok(())
    }

    /// Starts database `db`, which holds `keys` keys, `expires` of them with
    /// an expiry. Loaders may use the counts to size their tables.
    pub fn select_db(&mut self, db: usize, keys: usize, expires: usize) -> io::Result<()> {
        self.write(&[OP_SELECTDB])?;
        self.write_len(db as u64)?;
        self.write(&[OP_RESIZEDB])?;
        self.write_len(keys as u64)?;
        self.write_len(expires as u64)
    }

    /// Writes one string key, with its expiry in unix milliseconds if it has one.
    pub fn entry(&mut self, key: &[u8], value: &[u8], expires_at: Option<i64>) -> io::Result<()> {
        self.key_header(TYPE_STRING, key, expires_at)?;
        self.write_string(value)
    }

    /// What comes before every value: the expiry if any, the type, the key.
    fn key_header(&mut self, kind: u8, key: &[u8], expires_at: Option<i64>) -> io::Result<()> {
        if let Some(ms) = expires_at {
            self.write(&[OP_EXPIRETIME_MS])?;
            self.write(&ms.to_le_bytes())?;
        }
        self.write(&[kind])?;
        self.write_string(key)
    }

    /// Writes the EOF opcode and the checksum, flushes, and hands `out` back.
    pub fn finish(mut self) -> io::Result<W> {
        self.write(&[OP_EOF])?;
        self.out.write_all(&self.crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc64::update(self.crc, bytes);
        self.out.write_all(bytes)
    }

    /// The length encoding, always in its shortest form.
    fn write_len(&mut self, len: u64) -> io::Result<()> {
        if len < 1 << 6 {
            self.write(&[len as u8])
        } else if len < 1 << 14 {
            self.write(&[0x40 | (len >> 8) as u8, len as u8])
        } else if let Ok(len) = u32::try_from(len) {
            self.write(&[0x80])?;
            self.write(&len.to_be_bytes())
        } else {
            self.write(&[0x81])?;
            self.write(&len.to_be_bytes())
        }
    }

    /// Picks the encoding Redis 7.0 would: integer, then LZF, then raw.
    fn write_string(&mut self, s: &[u8]) -> io::Result<()> {
        if let Some(n) = as_int32(s) {
            return if let Ok(n) = i8::try_from(n) {
                self.write(&[0xc0 | ENC_INT8, n as u8])
            } else if let Ok(n) = i16::try_from(n) {
                self.write(&[0xc0 | ENC_INT16])?;
                self.write(&n.to_le_bytes())
            } else {
                self.write(&[0xc0 | ENC_INT32])?;
                self.write(&n.to_le_bytes())
            };
        }
        let packed = match &mut self.compress {
            Some(table) if s.len() >= MIN_COMPRESS_LEN => lzf::compress_with(table, s, s.len() - 4),
            _ => None,
        };
        if let Some(packed) = packed {
            self.write(&[0xc0 | ENC_LZF])?;
            self.write_len(packed.len() as u64)?;
            self.write_len(s.len() as u64)?;
            return self.write(&packed);
        }
        self.write_len(s.len() as u64)?;
        self.write(s)
    }
}

/// `s` as a 32-bit integer, but only if printing that integer gives back
/// exactly `s`: "007", "+5" and "-0" must stay strings, or they would load
/// as "7", "5" and "0".
fn as_int32(s: &[u8]) -> Option<i32> {
    if s.len() > 11 {
        return None;
    }
    let n: i32 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == s).then_some(n)
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Why a load failed, and the byte offset into the RDB data where it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    /// Offset of the byte that could not be accepted; for a truncated file,
    /// the number of bytes it has.
    pub offset: u64,
    /// What is wrong, for example "unexpected end of file".
    pub message: String,
}

impl RdbError {
    /// An error at `offset`. An `on_entry` callback may pass any offset:
    /// [`load`] replaces it with the offset of the entry.
    pub fn new(offset: u64, message: impl Into<String>) -> Self {
        RdbError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for RdbError {}

/// What a successful load saw besides the entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RdbInfo {
    /// The format version from the header (1 to 10).
    pub version: u32,
    /// The AUX fields in file order; integer-encoded values as decimal text.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// How many entries were handed to the callback.
    pub keys: usize,
}

/// Reads one RDB from `input`, calling `on_entry(db, key, value, expires_at)`
/// for every key in file order, with the expiry in unix milliseconds.
///
/// It reads exactly the RDB, up to the last checksum byte, and not one byte
/// more, so a caller can go on reading what follows on the same stream (the
/// command stream of a replication link, or the `$EOF:` mark). For speed pass
/// a `BufReader`: whatever it buffered past the RDB stays in it.
///
/// Keys are passed even if their expiry is in the past: whether to drop them
/// is the caller's call. If `on_entry` returns an error, the load stops and
/// returns it with `offset` set to the entry's type byte.
pub fn load(
    input: &mut impl Read,
    mut on_entry: impl FnMut(usize, Vec<u8>, Loaded, Option<i64>) -> Result<(), RdbError>,
) -> Result<RdbInfo, RdbError> {
    let mut r = Reader {
        inner: input,
        offset: 0,
        crc: 0,
    };
    let magic: [u8; 9] = r.array()?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::new(
            0,
            "Wrong signature trying to load DB from file",
        ));
    }
    let digits = &magic[5..];
    let mut version = 0; // 0 is refused below, so non-digits are too
    if digits.iter().all(u8::is_ascii_digit) {
        version = digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0'));
    }
    if !(1..=RDB_VERSION).contains(&version) {
        let message = format!("Can't handle RDB format version {version}");
        return Err(RdbError::new(5, message));
    }

    let mut info = RdbInfo {
        version,
        ..RdbInfo::default()
    };
    let mut db = 0;
    // An expiry opcode applies to the key that follows it.
    let mut expires_at = None;
    loop {
        let at = r.offset;
        match r.byte()? {
            OP_EOF => break,
            OP_SELECTDB => {
                let n = r.plain_length()?;
                db = usize::try_from(n)
                    .map_err(|_| RdbError::new(at, "database number too large"))?;
            }
            // Only a sizing hint, and easy to fake: never allocate from it.
            OP_RESIZEDB => {
                r.plain_length()?;
                r.plain_length()?;
            }
            OP_EXPIRETIME_MS => expires_at = Some(i64::from_le_bytes(r.array()?)),
            OP_EXPIRETIME => expires_at = Some(i64::from(u32::from_le_bytes(r.array()?)) * 1000),
            // Eviction hints (LFU counter, LRU idle time) that we have no use for.
            OP_FREQ => {
                r.byte()?;
            }
            OP_IDLE => {
                r.plain_length()?;
            }
            OP_AUX => {
                let name = r.string()?;
                let value = r.string()?;
                info.aux.push((name, value));
            }
            TYPE_STRING => {
                let key = r.string()?;
                let value = Loaded::String(r.string()?);
                on_entry(db, key, value, expires_at.take())
                    .map_err(|e| RdbError { offset: at, ..e })?;
                info.keys += 1;
            }
            kind @ (collections::TYPE_LIST
            | collections::TYPE_SET
            | collections::TYPE_HASH
            | collections::TYPE_SET_INTSET
            | collections::TYPE_HASH_LISTPACK
            | collections::TYPE_LIST_QUICKLIST_2) => {
                let key = r.string()?;
                let value = collections::read_value(&mut r, kind)?;
                on_entry(db, key, value, expires_at.take())
                    .map_err(|e| RdbError { offset: at, ..e })?;
                info.keys += 1;
            }
            op @ (OP_MODULE_AUX | OP_FUNCTION | OP_FUNCTION2) => {
                let message = format!("unsupported opcode 0x{op:02x} (modules and functions)");
                return Err(RdbError::new(at, message));
            }
            other => return Err(RdbError::new(at, format!("unsupported value type {other}"))),
        }
    }

    // Versions before 5 end at the EOF opcode.
    if version >= 5 {
        let computed = r.crc;
        let at = r.offset;
        let stored = u64::from_le_bytes(r.array()?);
        // Eight zero bytes mean the writer had `rdbchecksum no`.
        if stored != 0 && stored != computed {
            let message =
                format!("Wrong RDB checksum expected: ({computed:x}) but got ({stored:x})");
            return Err(RdbError::new(at, message));
        }
    }
    Ok(info)
}

/// A length, or the special string encoding that took its place.
enum Length {
    Plain(u64),
    Encoded(u8),
}

/// Wraps the input to count the bytes read, for error offsets, and to keep
/// the running CRC that the file's last 8 bytes are checked against.
struct Reader<R> {
    inner: R,
    offset: u64,
    crc: u64,
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc64::update(self.crc, &buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R: Read> Reader<R> {
    fn io_error(&self, e: io::Error) -> RdbError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            RdbError::new(self.offset, "unexpected end of file")
        } else {
            RdbError::new(self.offset, format!("read error: {e}"))
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut buf = [0; N];
        self.read_exact(&mut buf).map_err(|e| self.io_error(e))?;
        Ok(buf)
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        let [b] = self.array()?;
        Ok(b)
    }

    fn length(&mut self) -> Result<Length, RdbError> {
        let first = self.byte()?;
        Ok(match first {
            0x00..=0x3f => Length::Plain(u64::from(first)),
            0x40..=0x7f => Length::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            0x80 => Length::Plain(u64::from(u32::from_be_bytes(self.array()?))),
            0x81 => Length::Plain(u64::from_be_bytes(self.array()?)),
            0xc0..=0xff => Length::Encoded(first & 0x3f),
            // 0x82 to 0xbf: unused.
            _ => {
                let message = format!("unknown length encoding 0x{first:02x}");
                return Err(RdbError::new(self.offset - 1, message));
            }
        })
    }

    /// A length where a string encoding would make no sense.
    fn plain_length(&mut self) -> Result<u64, RdbError> {
        match self.length()? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(_) => Err(RdbError::new(self.offset - 1, "expected a length")),
        }
    }

    /// `len` bytes, allocated as they arrive: the length comes from the file,
    /// and a truncated or hostile one must fail with an error, not an OOM.
    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, RdbError> {
        let mut buf = Vec::with_capacity(len.min(PREALLOC_LIMIT) as usize);
        let received = self.by_ref().take(len).read_to_end(&mut buf);
        received.map_err(|e| self.io_error(e))?;
        if (buf.len() as u64) < len {
            return Err(RdbError::new(self.offset, "unexpected end of file"));
        }
        Ok(buf)
    }

    /// A string in any of its encodings; integers come back as decimal text.
    fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        let start = self.offset;
        let n: i64 = match self.length()? {
            Length::Plain(len) => return self.bytes(len),
            Length::Encoded(ENC_INT8) => i8::from_le_bytes(self.array()?).into(),
            Length::Encoded(ENC_INT16) => i16::from_le_bytes(self.array()?).into(),
            Length::Encoded(ENC_INT32) => i32::from_le_bytes(self.array()?).into(),
            Length::Encoded(ENC_LZF) => {
                let packed_len = self.plain_length()?;
                let len = self.plain_length()?;
                let packed = self.bytes(packed_len)?;
                // A length beyond usize cannot be right; decompress says so.
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                return lzf::decompress(&packed, len)
                    .ok_or_else(|| RdbError::new(start, "Invalid LZF compressed string"));
            }
            Length::Encoded(other) => {
                return Err(RdbError::new(
                    start,
                    format!("unknown string encoding {other}"),
                ));
            }
        };
        Ok(n.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SAVE` from a fresh 7.0.15 with six keys (docs/redis-wire.md, section 4.8).
    const DUMP: &str = "
        5245 4449 5330 3031 30fa 0972 6564 6973 2d76 6572 0637 2e30 2e31 35fa 0a72 6564
        6973 2d62 6974 73c0 40fa 0563 7469 6d65 c2de 680a 6bfa 0875 7365 642d 6d65 6dc2
        28b8 0e00 fa08 616f 662d 6261 7365 c000 fe00 fb05 0100 0867 7265 6574 696e 6705
        6865 6c6c 6f00 036e 6567 c0f9 fc00 d8c3 2cbb 0300 0000 0674 746c 6b65 7901 7600
        016e c139 3000 046c 6f6e 67c3 0a3c 0261 6261 e02e 0101 6162 fe02 fb01 0000 056f
        7468 6572 c240 420f 00ff 6b57 ef3e ddb8 d004";

    type Entry = (usize, Vec<u8>, Loaded, Option<i64>);

    fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        let nibble = |d: u8| (d as char).to_digit(16).expect("filtered to hex digits") as u8;
        digits
            .chunks(2)
            .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
            .collect()
    }

    fn with_crc(body: &[u8]) -> Vec<u8> {
        [body, &crc64::update(0, body).to_le_bytes()].concat()
    }

    fn load_all(mut bytes: &[u8]) -> Result<(RdbInfo, Vec<Entry>), RdbError> {
        let mut entries = Vec::new();
        let info = load(&mut bytes, |db, key, value, expires_at| {
            entries.push((db, key, value, expires_at));
            Ok(())
        })?;
        Ok((info, entries))
    }

    fn entry(db: usize, key: &str, value: &[u8], expires_at: Option<i64>) -> Entry {
        (
            db,
            key.as_bytes().to_vec(),
            Loaded::String(value.to_vec()),
            expires_at,
        )
    }

    fn expected_dump_entries() -> Vec<Entry> {
        vec![
            entry(0, "greeting", b"hello", None),
            entry(0, "neg", b"-7", None),
            entry(0, "ttlkey", b"v", Some(4_102_444_800_000)),
            entry(0, "n", b"12345", None),
            entry(0, "long", &b"ab".repeat(30), None),
            entry(2, "other", b"1000000", None),
        ]
    }

    fn expected_dump_aux() -> Vec<(&'static str, AuxValue)> {
        vec![
            ("redis-ver", AuxValue::Str(b"7.0.15".to_vec())),
            ("redis-bits", AuxValue::Int(64)),
            ("ctime", AuxValue::Int(1_795_844_318)),
            ("used-mem", AuxValue::Int(964_648)),
            ("aof-base", AuxValue::Int(0)),
        ]
    }

    #[test]
    fn loads_a_real_dump() {
        assert_eq!(unhex(DUMP).len(), 178);
        let (info, entries) = load_all(&unhex(DUMP)).expect("valid dump");
        assert_eq!(entries, expected_dump_entries());
        assert_eq!((info.version, info.keys), (10, 6));
        let aux: Vec<(&[u8], &[u8])> = info.aux.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let want: [(&[u8], &[u8]); 5] = [
            (b"redis-ver", b"7.0.15"),
            (b"redis-bits", b"64"),
            (b"ctime", b"1795844318"),
            (b"used-mem", b"964648"),
            (b"aof-base", b"0"),
        ];
        assert_eq!(aux, want);
    }

    #[test]
    fn writes_the_same_bytes_as_redis() -> io::Result<()> {
        let mut w = RdbWriter::new(Vec::new(), true);
        w.header(&expected_dump_aux())?;
        w.select_db(0, 5, 1)?;
        for (db, key, value, expires_at) in &expected_dump_entries() {
            if *db == 2 {
                w.select_db(2, 1, 0)?;
            }
            let Loaded::String(value) = value else {
                panic!("the dump holds strings only");
            };
            w.entry(key, value, *expires_at)?;
        }
        assert_eq!(w.finish()?, unhex(DUMP));
        Ok(())
    }

    #[test]
    fn stops_right_after_the_checksum() {
        let stream = [unhex(DUMP), b"*1\r\n$4\r\nping\r\n".to_vec()].concat();
        let mut input = &stream[..];
        load(&mut input, |_, _, _, _| Ok(())).expect("valid dump");
        assert_eq!(input, b"*1\r\n$4\r\nping\r\n");
    }

    #[test]
    fn empty_rdb_and_checksums() {
        let empty = unhex("524544495330303130ff a9fd37fe89a77eeb");
        assert_eq!(load_all(&empty).expect("valid").0.keys, 0);
        let mut unchecked = unhex(DUMP);
        unchecked[170..].fill(0);
        assert_eq!(load_all(&unchecked).expect("CRC not checked").1.len(), 6);
        let mut wrong = unhex(DUMP);
        wrong[177] ^= 1;
        let err = load_all(&wrong).expect_err("CRC mismatch");
        let message = "Wrong RDB checksum expected: (4d0b8dd3eef576b) but got (5d0b8dd3eef576b)";
        assert_eq!(err, RdbError::new(170, message));
    }

    #[test]
    fn header_checks() {
        let err = load_all(&with_crc(b"REDIX0010\xff")).expect_err("bad magic");
        assert_eq!(
            err.to_string(),
            "Wrong signature trying to load DB from file at byte 0"
        );
        let err = load_all(&with_crc(b"REDIS0011\xff")).expect_err("too new");
        assert_eq!(
            err.to_string(),
            "Can't handle RDB format version 11 at byte 5"
        );
        assert!(load_all(&with_crc(b"REDIS00x1\xff")).is_err());
        assert_eq!(
            load_all(&with_crc(b"REDIS0009\xff")).expect("v9").0.version,
            9
        );
        // Before version 5 there is no checksum, and nothing after FF is read.
        let mut old: &[u8] = b"REDIS0004\xfe\x00\x00\x01k\x01v\xffrest";
        assert_eq!(load(&mut old, |_, _, _, _| Ok(())).expect("v4").keys, 1);
        assert_eq!(old, b"rest");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let dump = unhex(DUMP);
        for len in 0..dump.len() {
            let err = load_all(&dump[..len]).expect_err("truncated");
            assert_eq!(err, RdbError::new(len as u64, "unexpected end of file"));
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let dump = unhex(DUMP);
        for i in 0..dump.len() {
            for byte in [
                0x00, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0x82, 0xc0, 0xc2, 0xc3, 0xc4, 0xff,
            ] {
                let mut bad = dump.clone();
                bad[i] = byte;
                let _ = load_all(&bad);
            }
        }
    }

    #[test]
    fn other_opcodes_and_types() {
        // EXPIRETIME in seconds, FREQ and IDLE before a key, then a list
        // in the ziplist form (type 10), which 7.0 never writes.
        let body = b"REDIS0010\xfe\x01\xfd\xe8\x03\x00\x00\xf9\x05\xf8\x0a\x00\x01k\x01v\x0a\x01h";
        let err = load_all(&with_crc(body)).expect_err("ziplist");
        assert_eq!(err, RdbError::new(25, "unsupported value type 10"));
        let (_, entries) = load_all(&with_crc(&[&body[..25], b"\xff"].concat())).expect("valid");
        assert_eq!(entries, [entry(1, "k", b"v", Some(1_000_000))]);
        let err = load_all(&with_crc(b"REDIS0010\xf5")).expect_err("function");
        assert_eq!(err.offset, 9);
    }

    #[test]
    fn lying_lengths_fail_without_allocating() {
        let huge_string = b"REDIS0010\x00\x81\x7f\xff\xff\xff\xff\xff\xff\xffabc";
        assert_eq!(load_all(huge_string).expect_err("short").offset, 22);
        let huge_lzf = b"REDIS0010\x00\x01k\xc3\x02\x81\x7f\xff\xff\xff\xff\xff\xff\xff\x00a\xff";
        let err = load_all(&with_crc(huge_lzf)).expect_err("lzf");
        assert_eq!(err, RdbError::new(12, "Invalid LZF compressed string"));
    }

    #[test]
    fn callback_errors_get_the_entry_offset() {
        let err = load(&mut &unhex(DUMP)[..], |db, _, _, _| match db {
            0 => Ok(()),
            _ => Err(RdbError::new(0, "DB index is out of range")),
        });
        assert_eq!(err, Err(RdbError::new(0x9d, "DB index is out of range")));
    }

    /// The bytes `write_string` produces for `value`.
    fn encoded(value: &[u8], compress: bool) -> Vec<u8> {
        let mut w = RdbWriter::new(Vec::new(), compress);
        w.entry(b"k", value, None).expect("vec write");
        let bytes = w.finish().expect("vec write");
        bytes[3..bytes.len() - 9].to_vec()
    }

    #[test]
    fn encodings_match_redis() {
        assert_eq!(encoded(b"-7", true), [0xc0, 0xf9]);
        assert_eq!(encoded(b"12345", true), [0xc1, 0x39, 0x30]);
        assert_eq!(
            encoded(b"-2147483648", true),
            [0xc2, 0x00, 0x00, 0x00, 0x80]
        );
        for raw in ["2147483648", "12345678901", "007", "-0", "+5", " 1", ""] {
            let want = [&[raw.len() as u8], raw.as_bytes()].concat();
            assert_eq!(encoded(raw.as_bytes(), true), want, "{raw:?}");
        }
        assert_eq!(encoded(&[b'a'; 20], true)[0], 20);
        assert_eq!(
            encoded(&[b'a'; 21], true),
            unhex("c3 06 15 01 61 61 e0 0a 00")
        );
        assert_eq!(encoded(&[b'a'; 21], false)[0], 21);
        assert_eq!(encoded(&[b'a'; 300], false)[..2], [0x41, 0x2c]);
        assert_eq!(
            encoded(&vec![b'a'; 70_000], false)[..5],
            [0x80, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn write_then_load() -> io::Result<()> {
        let small = [
            "",
            "0",
            "-1",
            "127",
            "128",
            "-129",
            "32768",
            "2147483648",
            "007",
            "-0",
        ];
        let mut values: Vec<Vec<u8>> = small.iter().map(|s| s.as_bytes().to_vec()).collect();
        values.push(b"\x00\xff\r\n".to_vec());
        values.push(vec![b'x'; 21]);
        values.push(b"0123456789 abcdefghij ".repeat(500));
        values.push(
            (0u32..3000)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        );
        for compress in [false, true] {
            let mut w = RdbWriter::new(Vec::new(), compress);
            w.header(&[("ctime", AuxValue::Int(-5))])?;
            let mut want = Vec::new();
            for db in [0, 3, 15] {
                w.select_db(db, values.len(), 1)?;
                for (i, value) in values.iter().enumerate() {
                    let key = [b"key\x00\xfe".as_slice(), &[db as u8, i as u8]].concat();
                    let expires_at = (i == 3).then_some(1_700_000_000_000 + db as i64);
                    w.entry(&key, value, expires_at)?;
                    want.push((db, key, Loaded::String(value.clone()), expires_at));
                }
            }
            let (info, entries) = load_all(&w.finish()?).expect("own output loads");
            assert_eq!(entries, want);
            assert_eq!(info.aux, [(b"ctime".to_vec(), b"-5".to_vec())]);
        }
        Ok(())
    }
}

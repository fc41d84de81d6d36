//! RESP, the Redis serialization protocol: reading requests, writing
//! replies in RESP2, or in RESP3 for a client that asked for it (`HELLO 3`).
//!
//! A request is either a multibulk array (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`,
//! what every client library sends) or an inline command (`ECHO hi\r\n`,
//! what a person types into `nc`). Both become the same thing: a list of
//! byte-string arguments. The parser reads straight from a `BufRead`, so a
//! request split across many TCP reads simply blocks until the rest arrives,
//! and one read holding many pipelined requests is consumed one at a time.
//!
//! The parser follows Redis 7.0 to the byte, quirks included, because
//! clients and test suites notice the difference.

use std::io::{self, BufRead, Read, Write};

use crate::inline;

/// A request's arguments, the command's name first; also the form of a
/// change recorded for replicas (the command that replays it).
pub type Args = Vec<Vec<u8>>;

/// Longest inline command, or `*`/`$` header line, Redis buffers (64 KiB).
pub const MAX_INLINE: usize = 64 * 1024;
/// Largest multibulk count Redis accepts (`INT_MAX`).
pub const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;

/// What a request may declare before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, 512 MiB by default).
    pub max_bulk: i64,
    /// Has the client authenticated? Before AUTH, Redis accepts at most 10
    /// arguments of at most 16 KiB, so a stranger cannot make it allocate.
    pub authenticated: bool,
    /// Most bytes one request may hold in all (`client-query-buffer-limit`).
    pub max_query: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 * 1024 * 1024,
            authenticated: true,
            max_query: 1024 * 1024 * 1024,
        }
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed or closed mid-request: nothing to reply.
    Io(io::Error),
    /// The client broke the protocol: reply `-ERR Protocol error: <msg>`, then close.
    /// Bytes, not a `String`: the message may quote a byte the client sent.
    Protocol(Vec<u8>),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one request: its arguments, or `Ok(None)` when the client closed
/// the connection cleanly between requests.
///
/// An empty argument list is a valid result (an empty inline line, or `*0`):
/// Redis ignores those without a reply, and so should the caller.
pub fn read_request(input: &mut impl BufRead, limits: Limits) -> Result<Option<Args>, ReadError> {
    let first = match input.fill_buf()? {
        [] => return Ok(None),
        buf => buf[0],
    };
    if first == b'*' {
        read_multibulk(input, limits).map(Some)
    } else {
        let line = read_line(input, b'\n', "too big inline request")?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        inline::split_args(line)
            .map(Some)
            .ok_or_else(|| protocol("unbalanced quotes in request"))
    }
}

/// Reads `*<count>\r\n` followed by `count` bulk strings.
fn read_multibulk(input: &mut impl BufRead, limits: Limits) -> Result<Args, ReadError> {
    let (_, count) = read_header(input, "too big mbulk count string")?;
    let count = match count {
        Some(n) if n <= MAX_MULTIBULK_LEN => n,
        _ => return Err(protocol("invalid multibulk length")),
    };
    if count > 10 && !limits.authenticated {
        return Err(protocol("unauthenticated multibulk length"));
    }
    // The count comes from the client: trust it for the loop, not for memory.
    let mut args = Vec::with_capacity(count.clamp(0, 1024) as usize);
    let mut total = 0usize;
    for _ in 0..count {
        let (marker, len) = read_header(input, "too big bulk count string")?;
        if marker != b'$' {
            let mut msg = b"expected '$', got '".to_vec();
            msg.extend_from_slice(&[printable(marker), b'\'']);
            return Err(ReadError::Protocol(msg));
        }
        let len = match len {
            Some(n) if (0..=limits.max_bulk).contains(&n) => n as u64,
            _ => return Err(protocol("invalid bulk length")),
        };
        if len > 16384 && !limits.authenticated {
            return Err(protocol("unauthenticated bulk length"));
        }
        // Many arguments, each within bounds, can still add up: Redis
        // closes a client whose query buffer passes the limit, unanswered.
        total = total.saturating_add(len as usize + 16);
        if total > limits.max_query {
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "closing client that reached max query buffer length",
            )));
        }
        // The common case: the argument and its two trailing bytes are
        // already buffered. Copy them out in one go.
        let buffered = input.fill_buf()?;
        if (buffered.len() as u64) >= len + 2 {
            let len = len as usize;
            args.push(buffered[..len].to_vec());
            input.consume(len + 2);
            continue;
        }
        // Otherwise `take` + `read_to_end` grows the buffer as bytes
        // arrive, so a client that declares 512 MiB and sends nothing costs
        // nothing.
        let mut arg = Vec::new();
        input.by_ref().take(len).read_to_end(&mut arg)?;
        if (arg.len() as u64) < len {
            return Err(unexpected_eof().into());
        }
        // Redis skips the two bytes after the data without looking at them.
        skip(input, 2)?;
        args.push(arg);
    }
    Ok(args)
}

/// Reads a `*` or `$` header line up to its `\r`, then skips the `\r` and the
/// byte after it (Redis assumes it is `\n` and never checks).
/// Returns the line without its terminator; it is never empty.
fn read_header(input: &mut impl BufRead, too_big: &str) -> Result<(u8, Option<i64>), ReadError> {
    // The common case: the whole line, and the byte after its `\r`, are
    // buffered. Parse it where it lies, without copying it out.
    let buffered = input.fill_buf()?;
    // Commonest of all: a marker, then up to 18 digits (so no overflow),
    // the first not 0, then `\r` and one more byte. Read the number as the
    // digits go by, instead of finding the end first and parsing after.
    // Anything else (`$0`, `*-1`, junk) takes the general path below.
    if let [marker, first @ b'1'..=b'9', rest @ ..] = buffered {
        let mut value = i64::from(first - b'0');
        for (i, &byte) in rest.iter().enumerate().take(18) {
            match byte {
                b'0'..=b'9' if i < 17 => value = value * 10 + i64::from(byte - b'0'),
                b'\r' if i + 1 < rest.len() => {
                    let marker = *marker;
                    input.consume(i + 4);
                    return Ok((marker, Some(value)));
                }
                _ => break,
            }
        }
    }
    if let Some(end) = buffered.iter().position(|&b| b == b'\r' || b == 0) {
        if buffered[end] == b'\r' && end > 0 && end + 1 < buffered.len() {
            let header = (buffered[0], parse_int(&buffered[1..end]));
            input.consume(end + 2);
            return Ok(header);
        }
    }
    let line = read_line(input, b'\r', too_big)?;
    skip(input, 1)?;
    if line.is_empty() {
        // Only possible for a `$` line, since `*` lines start with `*`:
        // Redis then reports the `\r` it found, shown as a blank.
        return Err(protocol("expected '$', got ' '"));
    }
    Ok((line[0], parse_int(&line[1..])))
}

/// Reads bytes up to `end` (consumed, not returned).
///
/// Redis looks for the terminator with a C string search, so a NUL byte hides
/// every terminator after it: such a line can only end by growing too big.
/// Like Redis, the size limit is checked when the buffered input runs out
/// rather than at an exact byte, so a long line that arrives whole still fits.
fn read_line(input: &mut impl BufRead, end: u8, too_big: &str) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let mut nul_seen = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Err(unexpected_eof().into());
        }
        let stop = if nul_seen {
            None
        } else {
            buf.iter().position(|&b| b == end || b == 0)
        };
        match stop {
            Some(i) if buf[i] == end => {
                line.extend_from_slice(&buf[..i]);
                input.consume(i + 1);
                return Ok(line);
            }
            Some(i) => {
                nul_seen = true;
                line.extend_from_slice(&buf[..=i]);
                input.consume(i + 1);
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                input.consume(n);
                // All buffered input is used up and still no terminator.
                if line.len() > MAX_INLINE {
                    return Err(protocol(too_big));
                }
            }
        }
    }
}

/// Discards `n` bytes, waiting for them if they have not arrived yet.
fn skip(input: &mut impl BufRead, n: u64) -> io::Result<()> {
    if input.fill_buf()?.len() as u64 >= n {
        input.consume(n as usize);
        return Ok(());
    }
    let skipped = io::copy(&mut input.by_ref().take(n), &mut io::sink())?;
    if skipped < n {
        return Err(unexpected_eof());
    }
    Ok(())
}

fn protocol(msg: &str) -> ReadError {
    ReadError::Protocol(msg.as_bytes().to_vec())
}

fn unexpected_eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "client closed mid-request")
}

/// How Redis shows a byte inside an error message: CR and LF become blanks
/// so the reply stays one line. (A NUL would end Redis's C string early; it
/// cannot reach here, since a NUL hides the line's terminator.)
fn printable(b: u8) -> u8 {
    match b {
        b'\r' | b'\n' => b' ',
        _ => b,
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does: an optional
/// `-`, then digits with no leading zero (except `0` itself), nothing else.
/// `+1`, `01`, `-0`, ` 1` and the empty string are all rejected.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [b'0'] => text.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    // Accumulate as a negative number: i64's range has one more negative
    // value than positive ones, so -9223372036854775808 fits on the way.
    let mut value: i64 = 0;
    for &digit in digits {
        value = value
            .checked_mul(10)?
            .checked_sub(i64::from(digit - b'0'))?;
    }
    if text.len() == digits.len() {
        value.checked_neg()
    } else {
        Some(value)
    }
}

/// Appends a command to `out` as a RESP array of bulk strings: the form a
/// client sends, and the form of the replication stream.
pub fn encode_command(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The protocol a connection speaks: RESP2 until HELLO 3 says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every client's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// A reply, in the types a command can answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status line.
    Simple(&'static str),
    /// `-ERR ...`: the first word is the error code.
    Error(Vec<u8>),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`: binary-safe.
    Bulk(Vec<u8>),
    /// `$-1`: a missing value.
    Nil,
    /// `*2\r\n...`: any replies, nested as deep as needed.
    Array(Vec<Reply>),
    /// `*-1`: a missing array (EXEC's answer when a watched key changed).
    NilArray,
    /// Pairs: in RESP3 a map (`%2`), in RESP2 a flat array of keys and values.
    Map(Vec<(Reply, Reply)>),
    /// Out-of-band data (pub/sub): in RESP3 a push (`>3`), in RESP2 an array.
    Push(Vec<Reply>),
    /// Several replies to one command, one after the other: SUBSCRIBE
    /// answers with a frame per channel.
    Frames(Vec<Reply>),
    /// Pairs that may repeat: in RESP3 an array of two-element arrays, in
    /// RESP2 a flat array (HRANDFIELD ... WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// Members without order or repeats: in RESP3 a set (`~2`), in RESP2
    /// an array (SMEMBERS, SINTER ...).
    Set(Vec<Reply>),
}

impl Reply {
    /// `+OK`, the most common reply of all.
    pub fn ok() -> Reply {
        Reply::Simple("OK")
    }

    /// An error reply; `msg` starts with its code, as in `"ERR syntax error"`.
    pub fn error(msg: impl Into<Vec<u8>>) -> Reply {
        Reply::Error(msg.into())
    }

    /// A bulk string copied from `bytes`.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// Writes the reply in RESP2.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        self.write_in(out, Protocol::Resp2)
    }

    /// Writes the reply in the protocol the client chose with HELLO. RESP3
    /// differs from RESP2, for this server's replies, in how it writes a
    /// null (`_`) and a map (`%`).
    pub fn write_in(&self, out: &mut impl Write, protocol: Protocol) -> io::Result<()> {
        match self {
            Reply::Nil | Reply::NilArray if protocol == Protocol::Resp3 => out.write_all(b"_\r\n"),
            Reply::Map(pairs) if protocol == Protocol::Resp3 => {
                write_header(out, b'%', pairs.len() as i64)?;
                pairs.iter().try_for_each(|(key, value)| {
                    key.write_in(out, protocol)?;
                    value.write_in(out, protocol)
                })
            }
            Reply::Pairs(pairs) if protocol == Protocol::Resp3 => {
                write_header(out, b'*', pairs.len() as i64)?;
                pairs.iter().try_for_each(|(key, value)| {
                    write_header(out, b'*', 2)?;
                    key.write_in(out, protocol)?;
                    value.write_in(out, protocol)
                })
            }
            Reply::Pairs(pairs) => {
                write_header(out, b'*', pairs.len() as i64 * 2)?;
                pairs.iter().try_for_each(|(key, value)| {
                    key.write_in(out, protocol)?;
                    value.write_in(out, protocol)
                })
            }
            Reply::Set(items) | Reply::Push(items) => {
                // RESP3 marks a set `~` and a push `>`; RESP2 has arrays.
                let marker = match (protocol, self) {
                    (Protocol::Resp3, Reply::Set(_)) => b'~',
                    (Protocol::Resp3, _) => b'>',
                    _ => b'*',
                };
                write_header(out, marker, items.len() as i64)?;
                items
                    .iter()
                    .try_for_each(|item| item.write_in(out, protocol))
            }
            Reply::Map(pairs) => {
                write_header(out, b'*', pairs.len() as i64 * 2)?;
                pairs.iter().try_for_each(|(key, value)| {
                    key.write_in(out, protocol)?;
                    value.write_in(out, protocol)
                })
            }
            Reply::Frames(replies) => replies
                .iter()
                .try_for_each(|reply| reply.write_in(out, protocol)),
            Reply::Simple(s) => {
                out.write_all(b"+")?;
                out.write_all(s.as_bytes())?;
                out.write_all(b"\r\n")
            }
            Reply::Error(msg) => {
                out.write_all(b"-")?;
                out.write_all(msg)?;
                out.write_all(b"\r\n")
            }
            Reply::Integer(n) => write_header(out, b':', *n),
            Reply::Bulk(bytes) => {
                write_header(out, b'$', bytes.len() as i64)?;
                out.write_all(bytes)?;
                out.write_all(b"\r\n")
            }
            Reply::Nil => out.write_all(b"$-1\r\n"),
            Reply::Array(items) => {
                write_header(out, b'*', items.len() as i64)?;
                items
                    .iter()
                    .try_for_each(|item| item.write_in(out, protocol))
            }
            Reply::NilArray => out.write_all(b"*-1\r\n"),
        }
    }
}

/// Writes `<marker><n>\r\n` in one `write_all`, the number formatted by
/// hand: every reply starts with one of these, and `write!`'s formatting
/// machinery showed up in the profile of a pipelined benchmark.
fn write_header(out: &mut impl Write, marker: u8, n: i64) -> io::Result<()> {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    buf[i - 2..].copy_from_slice(b"\r\n");
    i -= 2;
    let mut value = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    i -= 1;
    buf[i] = marker;
    out.write_all(&buf[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_formatted_by_hand() {
        for n in [0, 7, -1, 42, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_header(&mut out, b':', n).unwrap();
            assert_eq!(out, format!(":{n}\r\n").into_bytes());
        }
    }

    fn read_all(input: &[u8]) -> Vec<Result<Vec<Vec<u8>>, String>> {
        // Protocol messages are bytes; these tests only use ASCII ones.
        let mut input = input;
        let mut out = Vec::new();
        loop {
            match read_request(&mut input, Limits::default()) {
                Ok(Some(args)) => out.push(Ok(args)),
                Ok(None) => return out,
                Err(ReadError::Protocol(msg)) => {
                    out.push(Err(String::from_utf8(msg).unwrap()));
                    return out;
                }
                Err(ReadError::Io(_)) => {
                    out.push(Err("eof".into()));
                    return out;
                }
            }
        }
    }

    fn args(list: &[&str]) -> Result<Vec<Vec<u8>>, String> {
        Ok(list.iter().map(|a| a.as_bytes().to_vec()).collect())
    }

    #[test]
    fn reads_multibulk_and_inline_pipelined() {
        let got = read_all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\nPING\n");
        assert_eq!(
            got,
            vec![args(&["ECHO", "hi"]), args(&["PING"]), args(&["PING"])]
        );
    }

    #[test]
    fn skips_the_two_bytes_after_bulk_data_unchecked() {
        let got = read_all(b"*1\r\n$4\r\nPINGXX\r\n");
        assert_eq!(got, vec![args(&["PING"]), args(&[])]);
    }

    #[test]
    fn empty_and_negative_counts_are_empty_requests() {
        assert_eq!(read_all(b"*0\r\n*-5\r\n"), vec![args(&[]), args(&[])]);
    }

    #[test]
    fn rejects_bad_lengths() {
        for bad in ["*abc\r\n", "*\r\n", "*+1\r\n", "*01\r\n", "*2147483648\r\n"] {
            let got = read_all(bad.as_bytes());
            assert_eq!(got, vec![Err("invalid multibulk length".into())], "{bad}");
        }
        for bad in ["$-1", "$-0", "$abc", "$", "$04", "$+4", "$536870913"] {
            let got = read_all(format!("*1\r\n{bad}\r\n").as_bytes());
            assert_eq!(got, vec![Err("invalid bulk length".into())], "{bad}");
        }
    }

    #[test]
    fn rejects_non_bulk_elements() {
        let got = read_all(b"*1\r\n+PING\r\n");
        assert_eq!(got, vec![Err("expected '$', got '+'".into())]);
    }

    #[test]
    fn incomplete_request_is_eof_not_protocol_error() {
        assert_eq!(read_all(b"*1\r\n$4\r\nPING"), vec![Err("eof".into())]);
    }

    #[test]
    fn too_long_header_lines() {
        let long = vec![b'1'; MAX_INLINE + 1];
        let mut input = b"*".to_vec();
        input.extend_from_slice(&long);
        assert_eq!(
            read_all(&input),
            vec![Err("too big mbulk count string".into())]
        );
        let mut input = b"PING ".to_vec();
        input.extend_from_slice(&long);
        assert_eq!(read_all(&input), vec![Err("too big inline request".into())]);
    }

    #[test]
    fn headers_read_as_parse_int_reads_them_however_they_arrive() {
        let texts = [
            "1",
            "9",
            "10",
            "0",
            "01",
            "-1",
            "12x",
            "123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
        ];
        for text in texts {
            // Capacity 1 delivers a byte at a time: the general path.
            for capacity in [1, 2, 4, 64] {
                let bytes = format!("${text}\r\n+");
                let mut input = io::BufReader::with_capacity(capacity, bytes.as_bytes());
                let header = read_header(&mut input, "too big").ok();
                assert_eq!(header, Some((b'$', parse_int(text.as_bytes()))), "{text}");
                let mut rest = Vec::new();
                input.read_to_end(&mut rest).unwrap();
                assert_eq!(rest, b"+", "{text}, capacity {capacity}");
            }
        }
    }

    #[test]
    fn parse_int_is_strict() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in ["", "-", "-0", "01", "+1", " 1", "1 ", "9223372036854775808"] {
            assert_eq!(parse_int(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn writes_every_reply_type() {
        let reply = Reply::Array(vec![
            Reply::ok(),
            Reply::error("ERR no"),
            Reply::Integer(-2),
            Reply::bulk("hi"),
            Reply::Nil,
            Reply::NilArray,
        ]);
        let mut out = Vec::new();
        reply.write_to(&mut out).unwrap();
        assert_eq!(
            out,
            b"*6\r\n+OK\r\n-ERR no\r\n:-2\r\n$2\r\nhi\r\n$-1\r\n*-1\r\n"
        );
    }
}

//! Finding a request's command in the table: by name without regard to
//! case, through an index built once, descending into subcommands; the
//! arity check; and Redis's errors for what is not found.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::{all_specs, Spec};
use crate::resp::Reply;

/// The first half of parsing: finds the command and checks its arity.
/// MULTI queues a request after this check alone.
pub fn check(args: &[Vec<u8>]) -> Result<&'static Spec, Reply> {
    let spec = lookup(args)?;
    let argc = args.len() as i64;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    Ok(spec)
}

/// Finds the spec for a request, descending into subcommands.
fn lookup(args: &[Vec<u8>]) -> Result<&'static Spec, Reply> {
    let Some(spec) = by_name(&args[0]) else {
        return Err(unknown_command(args));
    };
    if spec.subcommands.is_empty() || args.len() == 1 {
        return Ok(spec);
    }
    spec.subcommands
        .iter()
        .find(|sub| matches(sub, &args[1]))
        .ok_or_else(|| {
            let mut msg = b"ERR unknown subcommand '".to_vec();
            msg.extend_from_slice(c_string(&args[1], 128));
            msg.extend_from_slice(b"'. Try ");
            msg.extend_from_slice(spec.name.to_ascii_uppercase().as_bytes());
            msg.extend_from_slice(b" HELP.");
            Reply::Error(one_line(msg))
        })
}

/// Finds a command by name, ignoring case. The table is indexed once, on
/// first use: a linear search of some eighty names on every command would
/// show up in a profile.
fn by_name(name: &[u8]) -> Option<&'static Spec> {
    // The names are fixed, so a client cannot make them collide on purpose:
    // the index can use a hash far cheaper than the keyspace's SipHash.
    static INDEX: OnceLock<HashMap<Vec<u8>, &'static Spec, BuildHasherDefault<Fnv>>> =
        OnceLock::new();
    let index = INDEX.get_or_init(|| {
        all_specs()
            .map(|spec| (spec.name.as_bytes().to_vec(), spec))
            .collect()
    });
    // Command names are short; lower-case into a buffer on the stack.
    let mut lower = [0u8; 32];
    let name = lower.get_mut(..name.len()).map(|buf| {
        buf.copy_from_slice(name);
        buf.make_ascii_lowercase();
        &*buf
    })?;
    index.get(name).copied()
}

/// FNV-1a, a hash of a few lines, for the command index.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325) // FNV's offset basis
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Does `name` name this command (ignoring case)? A subcommand goes by
/// the part after `|`.
fn matches(spec: &Spec, name: &[u8]) -> bool {
    let own_name = spec.name.rsplit('|').next().unwrap_or(spec.name);
    own_name.as_bytes().eq_ignore_ascii_case(name)
}

/// Redis's reply to an unknown command: the name as typed, then up to 128
/// characters of quoted arguments, each followed by a blank.
fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut shown = Vec::new();
    for arg in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(c_string(arg, room));
        shown.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(c_string(&args[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&shown);
    Reply::Error(one_line(msg))
}

/// What C's `%.*s` prints of `bytes`: up to the first NUL, at most `max` bytes.
fn c_string(bytes: &[u8], max: usize) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end.min(max)]
}

/// An error reply must stay on one line: Redis turns CR and LF into blanks.
fn one_line(mut msg: Vec<u8>) -> Vec<u8> {
    for b in &mut msg {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    msg
}

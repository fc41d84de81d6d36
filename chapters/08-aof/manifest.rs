//! The AOF manifest: the small text file that says which files make up the
//! append-only log, in Redis 7.0's syntax, and how to replace it safely.
//!
//! One line per file, `file <name> seq <n> type <b|h|i>`: at most one base
//! (`b`, a snapshot), the history files a rewrite has made obsolete (`h`,
//! waiting to be deleted) and the incremental files (`i`, commands appended
//! after the base), replayed in ascending `seq`. The manifest, not the
//! directory listing, is the truth: a file it does not name is not loaded.
//! The exact rules are in docs/redis-wire.md, section 7.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::inline;

/// The longest line Redis accepts in a manifest.
const MAX_LINE: usize = 1024;

/// What part a file plays in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The snapshot the log starts from (`type b`).
    Base,
    /// A file a rewrite made obsolete, not yet deleted (`type h`).
    History,
    /// Commands appended after the base (`type i`).
    Incr,
}

/// One file named by the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    /// The file's name inside the AOF directory.
    pub name: String,
    /// Its sequence number.
    pub seq: u64,
    /// Its part in the log.
    pub kind: Kind,
}

/// The files of the log, as the manifest lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base, if there is one (a manifest may have none).
    pub base: Option<AofFile>,
    /// Obsolete files, still to be deleted.
    pub history: Vec<AofFile>,
    /// The incremental files, in ascending `seq`: the last one is written.
    pub incrs: Vec<AofFile>,
}

impl Manifest {
    /// Reads a manifest's text. A malformed line, a second base, incr
    /// numbers that do not increase or an empty file are errors that say
    /// which line, as Redis's do.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut manifest = Manifest::default();
        let mut lines = 0;
        for (number, line) in (1..).zip(text.split(|&b| b == b'\n')) {
            let shown = String::from_utf8_lossy(line);
            if line.len() > MAX_LINE {
                return Err(format!(
                    "The AOF manifest file contains too long line {number}"
                ));
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
                continue;
            }
            lines += 1;
            let bad = || format!("Invalid AOF manifest file format at line {number}: '{shown}'");
            // Split as redis-cli splits its input: quoted names work.
            let words = inline::split_args(line).ok_or_else(bad)?;
            if words.len() < 6 || words.len() % 2 != 0 {
                return Err(bad());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                match pair[0].to_ascii_lowercase().as_slice() {
                    b"file" => name = Some(value),
                    b"seq" => seq = value.parse::<u64>().ok(),
                    b"type" => {
                        kind = match value.as_str() {
                            "b" => Some(Kind::Base),
                            "h" => Some(Kind::History),
                            "i" => Some(Kind::Incr),
                            _ => None,
                        }
                    }
                    _ => {} // unknown pairs are ignored, as Redis does
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(bad());
            };
            let file = AofFile { name, seq, kind };
            match kind {
                Kind::Base if manifest.base.is_some() => {
                    return Err(format!(
                        "Found duplicate base file information at line {number}"
                    ));
                }
                Kind::Base => manifest.base = Some(file),
                Kind::History => manifest.history.push(file),
                Kind::Incr => {
                    if manifest.incrs.last().is_some_and(|last| last.seq >= seq) {
                        return Err(format!(
                            "Found a non-monotonic sequence number at line {number}"
                        ));
                    }
                    manifest.incrs.push(file);
                }
            }
        }
        if lines == 0 {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(manifest)
    }

    /// The manifest's text: the base, the history, then the incr files.
    pub fn render(&self) -> Vec<u8> {
        let mut text = String::new();
        let files = self.base.iter().chain(&self.history).chain(&self.incrs);
        for file in files {
            let kind = match file.kind {
                Kind::Base => 'b',
                Kind::History => 'h',
                Kind::Incr => 'i',
            };
            text.push_str(&format!(
                "file {} seq {} type {kind}\n",
                file.name, file.seq
            ));
        }
        text.into_bytes()
    }

    /// The highest incr sequence number so far (0 when there is none).
    pub fn last_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |file| file.seq)
    }

    /// Replaces `dir/name` with this manifest so that a crash leaves the
    /// old one or the new one: a temp file, fsync, rename, fsync of the
    /// directory. Only then may the files the old one named be deleted.
    pub fn store(&self, dir: &Path, name: &str) -> io::Result<()> {
        let temp = dir.join(format!("temp-{name}"));
        let written = File::create(&temp).and_then(|mut file| {
            file.write_all(&self.render())?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&temp, dir.join(name))) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_manifest_reads_and_renders_byte_for_byte() {
        let text = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(
            manifest.base.as_ref().unwrap().name,
            "appendonly.aof.1.base.rdb"
        );
        assert_eq!(manifest.last_incr_seq(), 1);
        assert_eq!(manifest.render(), text.to_vec());
    }

    #[test]
    fn keys_in_any_order_quotes_and_comments_are_accepted() {
        let text = b"# made by hand\nseq 2 TYPE i file \"my file.aof\" extra x\n";
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(manifest.incrs[0].name, "my file.aof");
        assert!(manifest.base.is_none());
    }

    #[test]
    fn bad_manifests_are_refused_with_the_line() {
        let err = Manifest::parse(b"file a seq 1 type b\n\nhello world\n").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("hello world"),
            "{err}"
        );
        assert!(Manifest::parse(b"").unwrap_err().contains("empty"));
        let two_bases = b"file a seq 1 type b\nfile b seq 2 type b\n";
        assert!(Manifest::parse(two_bases).is_err());
        let backwards = b"file a seq 2 type i\nfile b seq 1 type i\n";
        assert!(Manifest::parse(backwards).is_err());
    }
}

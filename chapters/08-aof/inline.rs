//! Splitting an inline command line into arguments, with the quoting rules
//! of Redis's `sdssplitargs` (the same rules `redis-cli` uses for what you type).
//!
//! Words are separated by blanks. `"..."` understands `\n \r \t \b \a \\ \"`
//! and `\xHH`; `'...'` understands only `\'`. A closing quote must be followed
//! by a blank or the end of the line, and a quote left open is an error.

/// Splits `line` into arguments; `None` means unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let (arg, next) = split_one(line, i)?;
        args.push(arg);
        i = next;
    }
}

/// Reads one argument starting at `start`; returns it and where to go on.
fn split_one(line: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let at = |i: usize| line.get(i).copied();
    let mut arg = Vec::new();
    let mut i = start;
    let mut quote = None;
    loop {
        match (quote, at(i)) {
            // End of line inside quotes: unbalanced.
            (Some(_), None) => return None,
            (None, None | Some(b' ' | b'\n' | b'\r' | b'\t')) => return Some((arg, i)),
            (None, Some(q @ (b'"' | b'\''))) => quote = Some(q),
            (None, Some(c)) => arg.push(c),
            (Some(q), Some(c)) if c == q => {
                // The closing quote must end the word.
                if at(i + 1).is_some_and(|next| !is_space(next)) {
                    return None;
                }
                return Some((arg, i + 1));
            }
            (Some(b'"'), Some(b'\\')) => match (at(i + 1), at(i + 2), at(i + 3)) {
                (Some(b'x'), Some(hi), Some(lo))
                    if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() =>
                {
                    arg.push(hex_value(hi) << 4 | hex_value(lo));
                    i += 3;
                }
                (Some(c), _, _) => {
                    arg.push(match c {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        // Any other escaped byte stands for itself: "\q" is "q".
                        other => other,
                    });
                    i += 1;
                }
                // A backslash at the very end: the quote is never closed.
                (None, _, _) => return None,
            },
            (Some(b'\''), Some(b'\\')) if at(i + 1) == Some(b'\'') => {
                arg.push(b'\'');
                i += 1;
            }
            (Some(_), Some(c)) => arg.push(c),
        }
        i += 1;
    }
}

/// C's `isspace`: the blanks skipped between words.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|args| {
            args.into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    fn words(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(split("  SET\tk  v  "), words(&["SET", "k", "v"]));
        assert_eq!(split("   "), words(&[]));
    }

    #[test]
    fn double_quotes_understand_escapes() {
        assert_eq!(
            split(r#"ECHO "a b\n\x41\q\x4""#),
            words(&["ECHO", "a b\nAqx4"])
        );
        assert_eq!(split(r#"ECHO a"b c""#), words(&["ECHO", "ab c"]));
        assert_eq!(split(r#"ECHO """#), words(&["ECHO", ""]));
    }

    #[test]
    fn single_quotes_are_literal_but_for_quote() {
        assert_eq!(split(r"ECHO 'a\nb\'c'"), words(&["ECHO", r"a\nb'c"]));
    }

    #[test]
    fn unbalanced_quotes() {
        for bad in [
            r#"ECHO "abc"#,
            "ECHO 'abc",
            r#"ECHO "a"b"#,
            r#"ECHO a"b"#,
            r#"ECHO "a\"#,
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}

//! Redis's glob patterns, as KEYS, SCAN MATCH and CONFIG GET use them:
//! `*` any run of bytes, `?` any one byte, `[abc]`, `[^abc]` and `[a-z]`
//! one byte of a set, and `\x` the byte `x` itself. A port of Redis's
//! `stringmatchlen`, on bytes.

/// Does `text` match `pattern`? With `nocase`, ASCII letters match either case.
pub fn matches(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: its pattern position, and the
    // text position it has swallowed up to. Backtracking to only the last
    // star keeps this linear, unlike the recursive version.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' if t < text.len() => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' if t < text.len() => {
                    if let Some(next) = match_class(pattern, p, text[t], nocase) {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\'
                    if p + 1 < pattern.len()
                        && t < text.len()
                        && fold(pattern[p + 1]) == fold(text[t]) =>
                {
                    p += 2;
                    t += 1;
                    continue;
                }
                // An escape that does not match: a mismatch.
                b'\\' if p + 1 < pattern.len() => {}
                c if c != b'?' && c != b'[' && t < text.len() && fold(c) == fold(text[t]) => {
                    // A lone trailing backslash is a literal backslash.
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte, if it can.
        match star {
            Some((star_p, star_t)) if star_t < text.len() => {
                star = Some((star_p, star_t + 1));
                p = star_p + 1;
                t = star_t + 1;
            }
            _ => return false,
        }
    }
}

/// Matches byte `b` against the class that starts at `pattern[start]`
/// (`[`); returns the position after the class if it matches.
fn match_class(pattern: &[u8], start: usize, b: u8, nocase: bool) -> Option<usize> {
    let fold = |c: u8| if nocase { c.to_ascii_lowercase() } else { c };
    let mut p = start + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut found = false;
    loop {
        match pattern.get(p) {
            // An unclosed class ends with the pattern, as in Redis.
            None => {
                p -= 1;
                break;
            }
            Some(b']') => break,
            Some(b'\\') if p + 1 < pattern.len() => {
                p += 1;
                found |= fold(pattern[p]) == fold(b);
            }
            Some(&low) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                let high = pattern[p + 2];
                let (low, high) = if low > high { (high, low) } else { (low, high) };
                p += 2;
                let c = fold(b);
                found |= (fold(low)..=fold(high)).contains(&c) || (low..=high).contains(&b);
            }
            Some(&c) => found |= fold(c) == fold(b),
        }
        p += 1;
    }
    (found != negate).then_some(p + 1)
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(pattern: &str, text: &str) -> bool {
        matches(pattern.as_bytes(), text.as_bytes(), false)
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("h?llo", "hllo"));
        assert!(!m("a*b", "acbd"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(matches(b"HELLO", b"hello", true));
    }
}

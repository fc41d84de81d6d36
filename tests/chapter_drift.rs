//! Chapters are complete snapshots, each built on the one before, so that
//! `diff -ru` between two chapters is exactly the lesson. This test keeps
//! that true. Each page `docs/NN-slug.md` (from chapter 03 on) shows, under
//! "## What changed since the last chapter", the output of
//! `diff -rq chapters/<previous> chapters/<this>`; the test computes that
//! comparison itself and requires the page to list exactly the real lines,
//! in GNU diff's order. A fix applied to one chapter and not to the next,
//! or an edit to a file the chapter was not meant to change, fails here and
//! names the file.
//!
//! It also checks that every chapter has its page and every page its
//! chapter, and that the final server in `src/` still shares, byte for
//! byte, the files listed in [`SHARED_WITH_SRC`] with the last chapter.

use std::fs;
use std::path::{Path, PathBuf};

/// Files the final server keeps byte-identical to the last chapter's copy.
/// They are formats and algorithms (a CRC, a compressor, the inline
/// command splitter, the RDB encoding) with one right answer: a bug fixed in one place must
/// be fixed in both, and this list is what holds them to it. A file the
/// final server has a reason to change does not belong here.
// `rdb.rs` left this list when the final server learnt lists, hashes and
// sets (their RDB encodings are in src/rdb/); it returns when chapter 09
// brings the types.
const SHARED_WITH_SRC: &[&str] = &["crc64.rs", "lzf.rs", "inline.rs"];

/// The heading on each page under which its diff block stands.
const HEADING: &str = "## What changed since the last chapter";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chapter directories, `chapters/NN-slug`, sorted by number.
fn chapters() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("chapters"))
        .expect("chapters/ exists")
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The chapter pages, `docs/NN-slug.md`, as slugs: the pages whose name
/// starts with two digits and a dash.
fn chapter_pages() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".md").map(str::to_string))
        .filter(|slug| {
            let b = slug.as_bytes();
            b.len() > 3 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b'-'
        })
        .collect();
    names.sort();
    names
}

/// The names in a directory, sorted byte by byte as GNU diff sorts them
/// in the C locale.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// What `diff -rq a b` prints, line by line, for two trees given by their
/// paths relative to the repository root (so the lines read as on a page).
fn diff_rq(a: &str, b: &str) -> Vec<String> {
    let mut lines = Vec::new();
    compare(&root(), a, b, &mut lines);
    lines
}

/// One directory level of `diff -rq`: the union of both listings in name
/// order; a name in one side only is `Only in DIR: NAME`, two files whose
/// bytes differ are `Files A and B differ`, two directories recurse at the
/// place their name sorts to.
fn compare(root: &Path, a: &str, b: &str, lines: &mut Vec<String>) {
    let left = entries(&root.join(a));
    let right = entries(&root.join(b));
    let mut names: Vec<&String> = left.iter().chain(right.iter()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (pa, pb) = (format!("{a}/{name}"), format!("{b}/{name}"));
        match (left.contains(name), right.contains(name)) {
            (true, false) => lines.push(format!("Only in {a}: {name}")),
            (false, true) => lines.push(format!("Only in {b}: {name}")),
            _ => {
                let (da, db) = (root.join(&pa).is_dir(), root.join(&pb).is_dir());
                match (da, db) {
                    (true, true) => compare(root, &pa, &pb, lines),
                    (false, false) => {
                        let read = |p: &str| {
                            fs::read(root.join(p))
                                .unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
                        };
                        if read(&pa) != read(&pb) {
                            lines.push(format!("Files {pa} and {pb} differ"));
                        }
                    }
                    (true, false) => lines.push(format!(
                        "File {pb} is a regular file while file {pa} is a directory"
                    )),
                    (false, true) => lines.push(format!(
                        "File {pa} is a regular file while file {pb} is a directory"
                    )),
                }
            }
        }
    }
}

/// The lines a page lists under its "What changed" heading: the console
/// block whose first line is `$ diff -rq <a> <b>`. `None` when the page has
/// no such block.
fn listed_lines(page: &str, command: &str) -> Option<Vec<String>> {
    let section = &page[page.find(HEADING)?..];
    let mut lines = section.lines();
    lines.find(|line| line.trim() == command)?;
    Some(
        lines
            .take_while(|line| !line.trim_start().starts_with("```"))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn every_chapter_has_a_page_and_every_page_a_chapter() {
    let chapters = chapters();
    let pages = chapter_pages();
    assert!(chapters.len() >= 2, "expected the chapters under chapters/");
    let mut problems = Vec::new();
    for chapter in &chapters {
        if !pages.contains(chapter) {
            problems.push(format!(
                "chapters/{chapter}/ has no page: write docs/{chapter}.md (same slug as the directory)"
            ));
        }
    }
    for page in &pages {
        // The last page is about the final server in src/, not a snapshot.
        let is_final_server = !chapters.contains(page)
            && chapters
                .last()
                .is_some_and(|last| page.as_str() > last.as_str())
            && page == pages.last().expect("at least one page");
        if !chapters.contains(page) && !is_final_server {
            problems.push(format!(
                "docs/{page}.md has no chapter: there is no chapters/{page}/ (rename the page or the directory)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_page_lists_exactly_what_its_chapter_changed() {
    let chapters = chapters();
    let mut problems = Vec::new();
    let mut checked = 0;
    for pair in chapters.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        // Chapter 02 turns the echo server into a Redis server: its page
        // tells that story in prose, not with a diff.
        if after.as_str() < "03" {
            continue;
        }
        let (a, b) = (format!("chapters/{before}"), format!("chapters/{after}"));
        let command = format!("$ diff -rq {a} {b}");
        let doc = format!("docs/{after}.md");
        let Ok(page) = fs::read_to_string(root().join(&doc)) else {
            problems.push(format!("{doc} is missing (chapters/{after}/ needs a page)"));
            continue;
        };
        let Some(listed) = listed_lines(&page, &command) else {
            problems.push(format!(
                "{doc} has no `{command}` console block under \"{HEADING}\""
            ));
            continue;
        };
        checked += 1;
        let actual = diff_rq(&a, &b);
        if listed == actual {
            continue;
        }
        let before_this_page = problems.len();
        for line in actual.iter().filter(|line| !listed.contains(line)) {
            problems.push(format!(
                "{doc}: the diff has `{line}` but the page does not list it. The chapter \
                 changed a file its page does not mention. Either undo the edit in {b}, \
                 or make the same edit in {a} too (a fix belongs in the first chapter that \
                 has the code and in every later one), or list the line on the page and \
                 explain the change."
            ));
        }
        for line in listed.iter().filter(|line| !actual.contains(line)) {
            problems.push(format!(
                "{doc}: the page lists `{line}` but the diff no longer has it. Remove the \
                 line from the page (and its explanation), or restore the change in {b}."
            ));
        }
        if problems.len() == before_this_page {
            problems.push(format!(
                "{doc}: the lines are right but not in `diff -rq`'s order; paste the output \
                 of `LC_ALL=C {}`:\n{}",
                &command[2..],
                actual.join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "chapter drift ({} problem(s)):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    assert!(checked > 0, "no chapter page was checked");
}

#[test]
fn the_final_server_shares_its_format_files_with_the_last_chapter() {
    let last = chapters().pop().expect("at least one chapter");
    let mut problems = Vec::new();
    for file in SHARED_WITH_SRC {
        let chapter_copy = format!("chapters/{last}/{file}");
        let src_copy = format!("src/{file}");
        let read = |p: &str| fs::read(root().join(p)).map_err(|e| format!("cannot read {p}: {e}"));
        match (read(&chapter_copy), read(&src_copy)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!(
                "{src_copy} and {chapter_copy} differ, but they must stay identical (a fix to \
                 a format belongs in both). Apply the edit to the other copy too, or, if the \
                 final server must diverge on purpose, remove `{file}` from SHARED_WITH_SRC in \
                 tests/chapter_drift.rs and say why."
            )),
            (a, b) => problems.extend(a.err().into_iter().chain(b.err())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The comparison itself must find what it is meant to find: a check that
/// cannot fail protects nothing.
#[test]
fn the_comparison_matches_gnu_diff_on_a_known_pair() {
    let lines = diff_rq("chapters/01-tcp-echo", "chapters/02-resp");
    assert!(
        lines.contains(
            &"Files chapters/01-tcp-echo/main.rs and chapters/02-resp/main.rs differ".to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Only in chapters/02-resp: cmd".to_string()),
        "a directory in one side only is one line, not its contents: {lines:?}"
    );
    let same = diff_rq("chapters/02-resp", "chapters/02-resp");
    assert!(same.is_empty(), "a tree equals itself: {same:?}");
}

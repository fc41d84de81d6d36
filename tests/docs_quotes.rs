//! The tutorial quotes the code; this test keeps the quotes true. Every
//! ```` ```rust ```` block in `docs/NN-slug.md` must appear, character for
//! character, in a file of `chapters/NN-slug/` (or of `src/` for the
//! chapter about the final server). A code change that leaves a doc
//! behind fails here, and says which block.

use std::fs;
use std::path::{Path, PathBuf};

/// The source files below `dir`, with their text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("readable source file");
            found.push((path, text));
        }
    }
    found
}

/// The ```rust blocks of a Markdown text, with the line each starts on.
fn rust_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```rust") => {
                current = Some((number + 1, String::new()))
            }
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn every_quoted_block_is_in_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    let mut checked = 0;
    let docs = fs::read_dir(root.join("docs")).expect("docs/ exists");
    for doc in docs.flatten().map(|entry| entry.path()) {
        let Some(slug) = doc.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let chapter = root.join("chapters").join(slug);
        let code_dir = if chapter.is_dir() {
            chapter
        } else if slug.ends_with("-the-real-server") {
            root.join("src")
        } else {
            continue; // performance.md and the like quote no chapter
        };
        let code = sources(&code_dir);
        let markdown = fs::read_to_string(&doc).expect("readable doc");
        for (line, block) in rust_blocks(&markdown) {
            checked += 1;
            if !code.iter().any(|(_, text)| text.contains(&block)) {
                let first = block.lines().next().unwrap_or_default();
                missing.push(format!("{}:{line}: `{first}`", doc.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {checked} quoted blocks are not in the code they quote:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

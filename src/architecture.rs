//! Tests of the code's shape: the modules' dependencies run one way.
//!
//! For this test a *module* is a top-level file of `src/` (`resp.rs`), or a
//! directory with all its files (`cmd/`, `replication/`): what a file
//! imports from its own directory (`super::`, `self::`) does not count.
//! A dependency is any `crate::name` path in a file's code before its
//! `#[cfg(test)]` section; `main.rs`, the root that ties everything
//! together, is left out.
//!
//! Two rules, each a test:
//!
//! - no import cycle between modules (a cycle inside one file or one
//!   directory is allowed: it is one module);
//! - each module belongs to a layer of `LAYERS`, and imports only from its
//!   own layer or lower ones. A new module must be given its layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, highest first. A module may import from its own layer and
/// the ones below it, never from one above.
const LAYERS: &[&[&str]] = &[
    // Threads that own sockets and act on what commands decide.
    &["accept"],
    &["connection"],
    &["master", "replica", "replay"],
    // The commands.
    &["cmd"],
    // Stopping the server: SHUTDOWN and the stop signals.
    &["shutdown"],
    // The bundle of shared handles.
    &["server"],
    // The shared state: each owns one concern and its lock.
    &["replication", "persist", "expire", "pubsub", "aof"],
    &["db", "clients", "settings", "listen", "acl_log", "outbox"],
    &["keyspace"],
    // Formats and utilities: know nothing of the server.
    &[
        "resp",
        "alloc",
        "rdb",
        "config",
        "socket",
        "inline",
        "lzf",
        "crc64",
        "glob",
        "log",
        "error",
        "time",
        "sync",
        "long_double",
        "rng",
        "sys",
        "events",
    ],
];

/// Each module of `src/` with the modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    collect_files(&src, &mut files);
    for path in files {
        let relative = path.strip_prefix(&src).expect("below src/");
        let first = relative.components().next().expect("a file name");
        let name = first.as_os_str().to_string_lossy();
        let module = name.trim_end_matches(".rs").to_string();
        if module == "main" || module == "architecture" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable source file");
        let deps = graph.entry(module.clone()).or_default();
        for dep in crate_paths(&text) {
            if dep != module {
                deps.insert(dep);
            }
        }
    }
    graph
}

fn collect_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The first segment of every `crate::...` path in the code (comments and
/// the test section excluded), including those inside `crate::{a, b}`.
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                found.extend(inner.split(',').map(first_segment));
            } else {
                found.push(first_segment(rest));
            }
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search; a module seen again on the current path closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for dep in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// The layer of `module`: 0 is the top.
fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("cmd") && graph["connection"].contains("cmd"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn modules_import_only_from_their_layer_or_below() {
    let mut wrong = Vec::new();
    for (module, deps) in module_graph() {
        let Some(own) = layer(&module) else {
            wrong.push(format!("{module} has no layer in LAYERS"));
            continue;
        };
        for dep in deps {
            match layer(&dep) {
                Some(theirs) if theirs >= own => {}
                Some(_) => wrong.push(format!("{module} imports {dep}, a higher layer")),
                None => wrong.push(format!("{module} imports {dep}, which has no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checks_catch_what_they_look_for() {
    let paths = crate_paths("use crate::{a, b::c};\nlet x = crate::d::f(); // crate::e\n");
    assert_eq!(paths, ["a", "b", "d"]);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("x".into()).or_default().insert("y".into());
    graph.entry("y".into()).or_default().insert("z".into());
    assert_eq!(find_cycle(&graph), None);
    graph.entry("z".into()).or_default().insert("x".into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["x".into(), "y".into(), "z".into(), "x".into()])
    );
}

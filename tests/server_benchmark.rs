//! The benchmark runner: our server against real redis-server, side by
//! side, in the same run on the same machine, with redis-benchmark.
//!
//! Not part of `cargo test`'s default run (it is `#[ignore]`d and takes a
//! minute or two). Run it on a release build, with nothing else busy:
//!
//! ```text
//! cargo test --release --test server_benchmark -- --ignored --nocapture
//! ```
//!
//! It prints a table of requests per second and the ratio ours/Redis, the
//! resident memory per key after loading 1,000,000 keys of 16-byte values,
//! and the same benchmark with 10,000 idle connections held open. It
//! asserts nothing about speed: a benchmark is a measurement, not a test.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{rss_kib, Server};

/// One redis-benchmark run: the tests' names and their requests per second.
fn benchmark(port: u16, tests: &str, pipeline: u32) -> Vec<(String, f64)> {
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "50",
            "-n",
            "200000",
            "-r",
            "100000",
        ])
        .args(["-P", &pipeline.to_string(), "-t", tests, "--csv"])
        .output()
        .expect("redis-benchmark runs");
    // CSV: "test","rps","avg_latency_ms",...; the first line is the header.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
            Some((fields.first()?.to_string(), fields.get(1)?.parse().ok()?))
        })
        .collect()
}

/// Loads `count` keys of 16-byte values through a pipeline; returns the
/// growth of resident memory in bytes per key.
fn memory_per_key(server: &Server, count: usize) -> f64 {
    let before = rss_kib(server.pid());
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    let reader = stream.try_clone().expect("clone");
    // Read the replies on another thread, so neither side's buffer fills up.
    let drain = std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut expected = count * b"+OK\r\n".len();
        let mut buf = [0u8; 65536];
        while expected > 0 {
            let n = reader.read(&mut buf).expect("read replies");
            assert!(n > 0, "server closed early");
            expected = expected.saturating_sub(n);
        }
    });
    let mut batch = Vec::new();
    for i in 0..count {
        let key = format!("key:{i:012}");
        let value = format!("{i:016}");
        batch.extend_from_slice(&common::encode_str_command(&["SET", &key, &value]));
        if batch.len() > 1 << 20 {
            stream.write_all(&batch).expect("write");
            batch.clear();
        }
    }
    stream.write_all(&batch).expect("write");
    drain.join().expect("all replies read");
    let after = rss_kib(server.pid());
    (after.saturating_sub(before) * 1024) as f64 / count as f64
}

/// Opens `count` connections and leaves them idle.
fn idle_connections(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect an idle client"))
        .collect()
}

#[test]
#[ignore]
fn ours_against_redis() {
    skip_if_external!();
    let redis_path = require_redis_server!();
    let args = ["--save", "", "--maxclients", "10200"];
    let ours = Server::start_with("redis-from-scratch", &args);
    let redis = Server::start_program(&redis_path, &[&args[..], &["--appendonly", "no"]].concat());

    let mut rows = Vec::new();
    for (tests, pipeline) in [("ping,set,get", 1), ("set,get", 16)] {
        let mine = benchmark(ours.port(), tests, pipeline);
        let theirs = benchmark(redis.port(), tests, pipeline);
        for ((name, a), (_, b)) in mine.into_iter().zip(theirs) {
            rows.push((format!("{name} -P {pipeline}"), a, b));
        }
    }
    // The same, with 10,000 idle clients connected to each server.
    for (server, label) in [(&ours, "ours"), (&redis, "redis")] {
        let idle = idle_connections(server.port(), 10_000);
        let rss = rss_kib(server.pid());
        let results = benchmark(server.port(), "set,get", 1);
        eprintln!(
            "{label}: with 10,000 idle clients, RSS {} MiB, {results:?}",
            rss / 1024
        );
        assert!(server.client().cmd(&["PING"]) == common::Reply::pong());
        drop(idle);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mine = memory_per_key(&ours, 1_000_000);
    let theirs = memory_per_key(&redis, 1_000_000);

    eprintln!("\n| test | redis-from-scratch (req/s) | redis-server 7.0 (req/s) | ratio |");
    eprintln!("|---|---:|---:|---:|");
    for (name, a, b) in rows {
        eprintln!("| {name} | {a:.0} | {b:.0} | {:.2} |", a / b);
    }
    eprintln!(
        "| memory per key, 1M keys of 16 bytes | {mine:.0} B | {theirs:.0} B | {:.2} |",
        mine / theirs
    );
}

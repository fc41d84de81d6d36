//! Chapter 1: a TCP echo server (`ch01-tcp-echo`).
//!
//! Every test here is skipped when `REDIS_TEST_SERVER` is set: an echo
//! server is this project's own binary, not something Redis does.

mod common;

use assert_cmd::Command;
use common::{clients_at_once, poll_until, reserve_port, Client, Server};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const BIN: &str = "ch01-tcp-echo";

/// Sends `data` and reads back as many bytes, writing from another thread
/// so that large payloads cannot deadlock on full socket buffers.
#[track_caller]
fn round_trip(client: &mut Client, data: &[u8]) -> Vec<u8> {
    let writer = client.send_in_background(data.to_vec());
    let echoed = client.read_exact(data.len());
    writer.join().unwrap().expect("sending failed");
    echoed
}

#[test]
fn echoes_text() {
    skip_if_external!();
    let server = Server::start(BIN);
    let mut c = server.client();
    c.send(b"hello\r\n");
    assert_bytes_eq!(c.read_exact(7), b"hello\r\n");
    c.send(b"PING");
    assert_bytes_eq!(c.read_exact(4), b"PING");
    c.send(b"*1\r\n$4\r\nPING\r\n");
    assert_bytes_eq!(c.read_exact(14), b"*1\r\n$4\r\nPING\r\n");
}

#[test]
fn echoes_every_byte_value() {
    skip_if_external!();
    let server = Server::start(BIN);
    let mut c = server.client();
    let all: Vec<u8> = (0..=255u8).collect();
    c.send(&all);
    assert_bytes_eq!(c.read_exact(256), all);
    let reversed: Vec<u8> = (0..=255u8).rev().collect();
    c.send(&reversed);
    assert_bytes_eq!(c.read_exact(256), reversed);
}

#[test]
fn echoes_a_large_payload() {
    skip_if_external!();
    let server = Server::start(BIN);
    let mut c = server.client();
    let payload: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let echoed = round_trip(&mut c, &payload);
    assert!(echoed == payload, "the 4 MiB payload came back different");
    // The connection still works afterwards.
    c.send(b"after");
    assert_bytes_eq!(c.read_exact(5), b"after");
}

#[test]
fn many_concurrent_clients_each_get_their_own_bytes() {
    skip_if_external!();
    const CLIENTS: usize = 120;
    let server = Server::start(BIN);
    let port = server.port();
    clients_at_once(port, CLIENTS, |id, mut c| {
        for round in 0..20 {
            let mut data = format!("client {id} round {round}:").into_bytes();
            data.extend((0..(id * 37 + round) % 3000).map(|i| (i ^ id) as u8));
            let echoed = round_trip(&mut c, &data);
            assert!(
                echoed == data,
                "client {id} round {round} got other bytes back"
            );
        }
    });
}

#[test]
fn a_client_leaving_mid_stream_does_not_disturb_others() {
    skip_if_external!();
    let mut server = Server::start(BIN);
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|id| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = Client::connect(port);
                let mut round = 0;
                while round < 20 || !stop.load(Ordering::Relaxed) {
                    let data = format!("worker {id} round {round}").into_bytes();
                    assert_bytes_eq!(round_trip(&mut c, &data), data);
                    round += 1;
                }
            })
        })
        .collect();

    // A client that sends a lot and leaves without reading the echo: the
    // server's writes to it fail, which must only end that one connection.
    for _ in 0..3 {
        let mut leaver = server.client();
        let _ = leaver.try_send(&vec![b'x'; 1024 * 1024]);
        drop(leaver);
    }
    // One that stops in the middle of a line, after reading part of it.
    let mut leaver = server.client();
    leaver.send(b"half a line");
    assert_bytes_eq!(leaver.read_exact(4), b"half");
    drop(leaver);

    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    assert!(server.is_running(), "the server died");
    let mut c = server.client();
    assert_bytes_eq!(round_trip(&mut c, b"still here"), b"still here");
}

#[test]
fn logs_listening_accepted_and_closed() {
    skip_if_external!();
    let server = Server::start(BIN);
    let listening = format!("Listening on 127.0.0.1:{}", server.port());
    assert!(
        server.log().contains(&listening),
        "no {listening:?} in the log:\n{}",
        server.log()
    );

    let c = server.client();
    let peer = c.local_addr();
    let accepted = format!("Accepted {peer}");
    poll_until(Duration::from_secs(5), || {
        server.log().contains(&accepted).then_some(())
    });
    drop(c);
    let closed = format!("Closed {peer}");
    poll_until(Duration::from_secs(5), || {
        server.log().contains(&closed).then_some(())
    });
}

#[test]
fn bind_flag_selects_the_address() {
    skip_if_external!();
    let server = Server::start_with(BIN, &["--bind", "127.0.0.1"]);
    let mut c = server.client();
    c.send(b"bound");
    assert_bytes_eq!(c.read_exact(5), b"bound");
    let listening = format!("Listening on 127.0.0.1:{}", server.port());
    assert!(
        server.log().contains(&listening),
        "no {listening:?} in the log:\n{}",
        server.log()
    );
}

#[test]
fn invalid_port_exits_with_failure() {
    skip_if_external!();
    for args in [
        &["--port", "abc"][..],
        &["--port", "70000"],
        &["--port"],
        &["--nonsense", "1"],
    ] {
        assert_exits_with_failure(args);
    }
}

#[test]
fn a_port_in_use_exits_with_failure() {
    skip_if_external!();
    let lease = reserve_port();
    let _taken =
        TcpListener::bind(("127.0.0.1", lease.port())).expect("cannot bind the reserved port");
    assert_exits_with_failure(&["--port", &lease.port().to_string()]);
}

/// Runs the binary with `args` and asserts that it exits on its own (within
/// 10 s) with a non-zero code; being killed at the timeout does not count.
#[track_caller]
fn assert_exits_with_failure(args: &[&str]) {
    let output = Command::cargo_bin(BIN)
        .unwrap()
        .args(args)
        .timeout(Duration::from_secs(10))
        .output()
        .expect("cannot run the binary");
    assert!(
        matches!(output.status.code(), Some(code) if code != 0),
        "{BIN} {args:?} should exit with a failure code, got {}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

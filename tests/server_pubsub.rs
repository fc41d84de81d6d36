//! Publish/subscribe in the final server, over TCP: every command and its
//! errors, RESP2 frames and RESP3 pushes byte for byte, subscribed mode,
//! delivery order under concurrent publishers, the output-buffer limit
//! that drops a subscriber that does not read, cleanup, replication of
//! PUBLISH, and the real tools (redis-cli's subscribe mode, redis-py's
//! PubSub). Every expectation was checked against redis-server 7.0.15:
//! `REDIS_TEST_SERVER=redis-server cargo test --test server_pubsub`.
//! The wire format is restated in docs/redis-wire.md, section 9.

mod common;

use common::{encode_str_command, poll_until, show, Client, Reply, Server};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const BIN: &str = "redis-from-scratch";

/// How long a condition polled for may take.
const DEADLINE: Duration = Duration::from_secs(20);

fn start() -> Server {
    Server::start_with(BIN, &["--save", ""])
}

/// Sends a command without reading its reply (a subscriber's replies are
/// frames, read one by one with `read_reply_raw`).
fn send(client: &mut Client, args: &[&str]) {
    client.send(&encode_str_command(args));
}

/// The frame a RESP2 `[un]subscribe` confirmation is.
fn confirmation(word: &str, name: Option<&str>, count: i64) -> Vec<u8> {
    let name = match name {
        Some(name) => format!("${}\r\n{name}\r\n", name.len()),
        None => "$-1\r\n".to_string(),
    };
    format!("*3\r\n${}\r\n{word}\r\n{name}:{count}\r\n", word.len()).into_bytes()
}

/// A bulk string, as the wire writes it.
fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

/// Polls until `channel` has `count` subscribers (a subscription made on
/// another connection is in place once its confirmation arrived; this is
/// for unsubscriptions and disconnections, which have no reply to wait for).
fn wait_for_numsub(client: &mut Client, channel: &str, count: i64) {
    poll_until(DEADLINE, || {
        let reply = client.cmd(&["PUBSUB", "NUMSUB", channel]);
        (reply.as_array()[1].as_int() == count).then_some(())
    });
}

#[test]
fn subscribe_and_unsubscribe_confirm_each_name_with_the_count() {
    let server = start();
    let mut sub = server.client();
    send(&mut sub, &["SUBSCRIBE", "ch1", "ch2", "ch1"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("subscribe", Some("ch1"), 1)
    );
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("subscribe", Some("ch2"), 2)
    );
    // A repeat is confirmed, and counts nothing new.
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("subscribe", Some("ch1"), 2)
    );
    send(&mut sub, &["PSUBSCRIBE", "news.*"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("psubscribe", Some("news.*"), 3)
    );
    send(&mut sub, &["UNSUBSCRIBE", "zz"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("unsubscribe", Some("zz"), 3)
    );
    // Without names: every channel, in no particular order.
    send(&mut sub, &["UNSUBSCRIBE"]);
    let mut frames = BTreeSet::new();
    frames.insert(sub.read_reply_raw());
    frames.insert(sub.read_reply_raw());
    let expected: BTreeSet<Vec<u8>> = [
        confirmation("unsubscribe", Some("ch1"), 2),
        confirmation("unsubscribe", Some("ch2"), 1),
    ]
    .into_iter()
    .chain([
        confirmation("unsubscribe", Some("ch2"), 2),
        confirmation("unsubscribe", Some("ch1"), 1),
    ])
    .collect();
    assert!(frames.is_subset(&expected), "{frames:?}");
    // Nothing of that kind left: one frame with a null name.
    send(&mut sub, &["UNSUBSCRIBE"]);
    assert_bytes_eq!(sub.read_reply_raw(), confirmation("unsubscribe", None, 1));
    send(&mut sub, &["PUNSUBSCRIBE"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("punsubscribe", Some("news.*"), 0)
    );
    // Out of subscribed mode: an ordinary command works again.
    assert_eq!(sub.cmd(&["GET", "x"]), Reply::Nil);
    // Never subscribed: the null frame, with the count 0.
    let mut other = server.client();
    assert_bytes_eq!(
        other.cmd_raw(&["PUNSUBSCRIBE"]),
        confirmation("punsubscribe", None, 0)
    );
    assert_eq!(other.cmd(&["PING"]), Reply::pong());
}

#[test]
fn a_message_reaches_each_matching_subscription() {
    let server = start();
    let mut sub = server.client();
    send(&mut sub, &["SUBSCRIBE", "news.y"]);
    sub.read_reply_raw();
    send(&mut sub, &["PSUBSCRIBE", "*", "news.*"]);
    sub.read_reply_raw();
    sub.read_reply_raw();
    let mut publisher = server.client();
    // One delivery per matching subscription, of one client or several.
    assert_eq!(publisher.cmd(&["PUBLISH", "news.y", "hi"]), Reply::int(3));
    assert_eq!(publisher.cmd(&["PUBLISH", "nobody", "hi"]), Reply::int(1));
    assert_eq!(publisher.cmd(&["PUBLISH", "news.x", "hi"]), Reply::int(2));
    // The channel's subscribers first, then the patterns'.
    assert_bytes_eq!(
        sub.read_reply_raw(),
        format!("*3\r\n{}{}{}", bulk("message"), bulk("news.y"), bulk("hi"))
    );
    let mut patterns = BTreeSet::new();
    for _ in 0..2 {
        patterns.insert(sub.read_reply_raw());
    }
    let pmessage = |pattern: &str, channel: &str| {
        format!(
            "*4\r\n{}{}{}{}",
            bulk("pmessage"),
            bulk(pattern),
            bulk(channel),
            bulk("hi")
        )
        .into_bytes()
    };
    assert_eq!(
        patterns,
        BTreeSet::from([pmessage("*", "news.y"), pmessage("news.*", "news.y")])
    );
    assert_bytes_eq!(sub.read_reply_raw(), pmessage("*", "nobody"));
    let mut patterns = BTreeSet::new();
    for _ in 0..2 {
        patterns.insert(sub.read_reply_raw());
    }
    assert_eq!(
        patterns,
        BTreeSet::from([pmessage("*", "news.x"), pmessage("news.*", "news.x")])
    );
    // Glob patterns are KEYS's: classes and escapes too.
    let mut classes = server.client();
    send(&mut classes, &["PSUBSCRIBE", "h[ae]llo", "a\\*b"]);
    classes.read_reply_raw();
    classes.read_reply_raw();
    for channel in ["hallo", "hello", "hillo", "a*b", "axb"] {
        publisher.cmd(&["PUBLISH", channel, "hi"]);
    }
    for (pattern, channel) in [
        ("h[ae]llo", "hallo"),
        ("h[ae]llo", "hello"),
        ("a\\*b", "a*b"),
    ] {
        assert_bytes_eq!(
            classes.read_reply_raw(),
            format!(
                "*4\r\n{}{}{}{}",
                bulk("pmessage"),
                bulk(pattern),
                bulk(channel),
                bulk("hi")
            )
        );
    }
    assert_eq!(publisher.cmd(&["PUBLISH", "x", ""]), Reply::int(1));
}

#[test]
fn resp2_subscribed_mode_allows_only_a_few_commands() {
    let server = start();
    let mut sub = server.client();
    send(&mut sub, &["SUBSCRIBE", "c"]);
    sub.read_reply_raw();
    let refused = |name: &str| {
        format!("-ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n").into_bytes()
    };
    assert_bytes_eq!(sub.cmd_raw(&["GET", "x"]), refused("get"));
    assert_bytes_eq!(sub.cmd_raw(&["CONFIG", "GET", "x"]), refused("config|get"));
    assert_bytes_eq!(sub.cmd_raw(&["PUBLISH", "c", "m"]), refused("publish"));
    assert_bytes_eq!(sub.cmd_raw(&["HELLO", "3"]), refused("hello"));
    assert_bytes_eq!(sub.cmd_raw(&["MULTI"]), refused("multi"));
    // Unknown commands and wrong arities get their usual errors.
    assert_bytes_eq!(
        sub.cmd_raw(&["FOO"]),
        "-ERR unknown command 'FOO', with args beginning with: \r\n"
    );
    assert_bytes_eq!(
        sub.cmd_raw(&["SUBSCRIBE"]),
        "-ERR wrong number of arguments for 'subscribe' command\r\n"
    );
    // PING answers with a frame.
    assert_bytes_eq!(sub.cmd_raw(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_bytes_eq!(
        sub.cmd_raw(&["PING", "hi"]),
        "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    );
    // A shard subscription alone keeps the mode too.
    send(&mut sub, &["SSUBSCRIBE", "s"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("ssubscribe", Some("s"), 1)
    );
    send(&mut sub, &["UNSUBSCRIBE"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("unsubscribe", Some("c"), 0)
    );
    assert_bytes_eq!(sub.cmd_raw(&["GET", "x"]), refused("get"));
    // RESET leaves the mode, and forgets the subscriptions.
    assert_bytes_eq!(sub.cmd_raw(&["RESET"]), "+RESET\r\n");
    assert_eq!(sub.cmd(&["GET", "x"]), Reply::Nil);
    let mut other = server.client();
    assert_eq!(
        other.cmd(&["PUBSUB", "SHARDNUMSUB", "s"]),
        Reply::Array(vec![Reply::bulk("s"), Reply::int(0)])
    );
    // QUIT replies +OK, then closes.
    send(&mut sub, &["SUBSCRIBE", "c"]);
    sub.read_reply_raw();
    assert_bytes_eq!(sub.cmd_raw(&["QUIT"]), "+OK\r\n");
    sub.expect_closed();
}

#[test]
fn reset_restores_the_connection() {
    let server = start();
    let mut client = server.client();
    client.cmd(&["CLIENT", "SETNAME", "foo"]);
    client.cmd(&["SELECT", "3"]);
    client.cmd(&["HELLO", "3"]);
    assert_bytes_eq!(client.cmd_raw(&["RESET"]), "+RESET\r\n");
    assert_bytes_eq!(client.cmd_raw(&["CLIENT", "GETNAME"]), "$-1\r\n");
    let info = client.cmd(&["CLIENT", "INFO"]);
    let info = String::from_utf8_lossy(info.as_bulk()).into_owned();
    assert!(
        info.contains(" db=0 ") && info.contains(" resp=2"),
        "{info}"
    );
}

#[test]
fn resp3_clients_get_pushes_and_keep_every_command() {
    let server = start();
    let mut sub = server.client();
    sub.cmd(&["HELLO", "3"]);
    send(&mut sub, &["SUBSCRIBE", "c1"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n"
    );
    send(&mut sub, &["PSUBSCRIBE", "p*"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n"
    );
    // Any command, with its ordinary reply.
    assert_bytes_eq!(sub.cmd_raw(&["GET", "x"]), "_\r\n");
    assert_bytes_eq!(sub.cmd_raw(&["SET", "x", "1"]), "+OK\r\n");
    assert_bytes_eq!(sub.cmd_raw(&["PING"]), "+PONG\r\n");
    let mut publisher = server.client();
    assert_eq!(publisher.cmd(&["PUBLISH", "c1", "hi"]), Reply::int(1));
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$2\r\nhi\r\n"
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "px", "yo"]), Reply::int(1));
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$2\r\nyo\r\n"
    );
    // A client may publish to itself: the message comes before the reply.
    send(&mut sub, &["PUBLISH", "c1", "self"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$4\r\nself\r\n"
    );
    assert_bytes_eq!(sub.read_reply_raw(), ":1\r\n");
    send(&mut sub, &["UNSUBSCRIBE"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:1\r\n"
    );
    send(&mut sub, &["UNSUBSCRIBE"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$11\r\nunsubscribe\r\n_\r\n:1\r\n"
    );
    send(&mut sub, &["SSUBSCRIBE", "s"]);
    sub.read_reply_raw();
    assert_eq!(publisher.cmd(&["SPUBLISH", "s", "m"]), Reply::int(1));
    assert_bytes_eq!(
        sub.read_reply_raw(),
        ">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"
    );
}

#[test]
fn shard_channels_are_a_name_space_of_their_own() {
    let server = start();
    let mut sub = server.client();
    send(&mut sub, &["SSUBSCRIBE", "s1", "s2"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("ssubscribe", Some("s1"), 1)
    );
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("ssubscribe", Some("s2"), 2)
    );
    // The counts of channels and of shard channels are apart.
    send(&mut sub, &["SUBSCRIBE", "n1"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("subscribe", Some("n1"), 1)
    );
    let mut publisher = server.client();
    assert_eq!(publisher.cmd(&["PUBLISH", "s1", "m"]), Reply::int(0));
    assert_eq!(publisher.cmd(&["SPUBLISH", "n1", "m"]), Reply::int(0));
    assert_eq!(publisher.cmd(&["SPUBLISH", "s1", "m"]), Reply::int(1));
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$1\r\nm\r\n"
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "SHARDCHANNELS"]).as_array().len(),
        2
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "SHARDCHANNELS", "*1"]),
        Reply::bulks(&["s1"])
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "CHANNELS"]),
        Reply::bulks(&["n1"])
    );
    assert_bytes_eq!(
        publisher.cmd_raw(&["PUBSUB", "SHARDNUMSUB", "s1", "s2", "s3"]),
        "*6\r\n$2\r\ns1\r\n:1\r\n$2\r\ns2\r\n:1\r\n$2\r\ns3\r\n:0\r\n"
    );
    send(&mut sub, &["SUNSUBSCRIBE", "s1"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        confirmation("sunsubscribe", Some("s1"), 1)
    );
}

#[test]
fn pubsub_introspection() {
    let server = start();
    let mut a = server.client();
    send(&mut a, &["SUBSCRIBE", "ch1", "ch2"]);
    a.read_reply_raw();
    a.read_reply_raw();
    send(&mut a, &["PSUBSCRIBE", "p*"]);
    a.read_reply_raw();
    let mut b = server.client();
    send(&mut b, &["SUBSCRIBE", "ch1"]);
    b.read_reply_raw();
    send(&mut b, &["PSUBSCRIBE", "p*", "q*"]);
    b.read_reply_raw();
    b.read_reply_raw();
    let mut c = server.client();
    let mut channels: Vec<Reply> = c.cmd(&["PUBSUB", "CHANNELS"]).as_array().to_vec();
    channels.sort_by_key(|r| r.as_bulk().to_vec());
    assert_eq!(channels, [Reply::bulk("ch1"), Reply::bulk("ch2")]);
    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS", "*2"]), Reply::bulks(&["ch2"]));
    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS", "x*"]), Reply::Array(vec![]));
    assert_bytes_eq!(
        c.cmd_raw(&["PUBSUB", "NUMSUB", "ch1", "nosuch"]),
        "*4\r\n$3\r\nch1\r\n:2\r\n$6\r\nnosuch\r\n:0\r\n"
    );
    assert_bytes_eq!(c.cmd_raw(&["PUBSUB", "NUMSUB"]), "*0\r\n");
    // Distinct patterns, whoever holds them.
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), Reply::int(2));
    assert_eq!(
        c.info_field("stats", "pubsub_channels").as_deref(),
        Some("2")
    );
    assert_eq!(
        c.info_field("stats", "pubsub_patterns").as_deref(),
        Some("2")
    );
    assert_eq!(
        c.info_field("stats", "pubsubshard_channels").as_deref(),
        Some("0")
    );
    assert_eq!(c.cmd(&["PUBSUB", "SHARDCHANNELS"]), Reply::Array(vec![]));
    // RESP3 does not turn NUMSUB into a map.
    c.cmd(&["HELLO", "3"]);
    assert_bytes_eq!(
        c.cmd_raw(&["PUBSUB", "NUMSUB", "ch2"]),
        "*2\r\n$3\r\nch2\r\n:1\r\n"
    );
    c.cmd(&["HELLO", "2"]);
    let help = c.cmd(&["PUBSUB", "HELP"]);
    assert_eq!(help.as_array().len(), 14);
    assert_eq!(
        help.as_array()[0],
        Reply::simple("PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    for (args, error) in [
        (
            &["PUBSUB"][..],
            "ERR wrong number of arguments for 'pubsub' command",
        ),
        (
            &["PUBSUB", "foo"],
            "ERR unknown subcommand 'foo'. Try PUBSUB HELP.",
        ),
        (
            &["PUBSUB", "numpat", "x"],
            "ERR wrong number of arguments for 'pubsub|numpat' command",
        ),
        (
            &["PUBSUB", "channels", "a", "b"],
            "ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.",
        ),
        (
            &["PUBLISH", "a"],
            "ERR wrong number of arguments for 'publish' command",
        ),
        (
            &["SPUBLISH", "a"],
            "ERR wrong number of arguments for 'spublish' command",
        ),
        (
            &["PSUBSCRIBE"],
            "ERR wrong number of arguments for 'psubscribe' command",
        ),
        (
            &["SSUBSCRIBE"],
            "ERR wrong number of arguments for 'ssubscribe' command",
        ),
    ] {
        assert_eq!(c.cmd(args), Reply::err(error), "{args:?}");
    }
}

#[test]
fn subscribe_inside_a_transaction() {
    let server = start();
    let mut client = server.client();
    assert_eq!(client.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(client.cmd(&["SUBSCRIBE", "q"]), Reply::simple("QUEUED"));
    assert_bytes_eq!(
        client.cmd_raw(&["EXEC"]),
        format!("*1\r\n{}", show(&confirmation("subscribe", Some("q"), 1)))
            .replace("\\r\\n", "\r\n")
    );
    // Subscribed now.
    assert!(client.cmd(&["GET", "x"]).is_error());
    let mut publisher = server.client();
    assert_eq!(publisher.cmd(&["PUBLISH", "q", "m"]), Reply::int(1));
    assert_bytes_eq!(
        client.read_reply_raw(),
        "*3\r\n$7\r\nmessage\r\n$1\r\nq\r\n$1\r\nm\r\n"
    );
}

#[test]
fn client_list_shows_subscriptions() {
    let server = start();
    let mut sub = server.client();
    sub.cmd(&["CLIENT", "SETNAME", "listener"]);
    send(&mut sub, &["SUBSCRIBE", "c1", "c2"]);
    sub.read_reply_raw();
    sub.read_reply_raw();
    send(&mut sub, &["PSUBSCRIBE", "p"]);
    sub.read_reply_raw();
    send(&mut sub, &["SSUBSCRIBE", "s"]);
    sub.read_reply_raw();
    let mut other = server.client();
    let list = other.cmd(&["CLIENT", "LIST"]);
    let list = String::from_utf8_lossy(list.as_bulk()).into_owned();
    let line = list
        .lines()
        .find(|line| line.contains("name=listener"))
        .expect("the subscriber is listed");
    assert!(
        line.contains(" flags=P ") && line.contains(" sub=2 psub=1 ssub=1 "),
        "{line}"
    );
    assert_eq!(sub.cmd(&["RESET"]), Reply::simple("RESET"));
    let list = other.cmd(&["CLIENT", "LIST"]);
    let list = String::from_utf8_lossy(list.as_bulk()).into_owned();
    assert!(
        list.contains(" flags=N db=0 sub=0 psub=0 ssub=0 "),
        "{list}"
    );
}

#[test]
fn disconnecting_forgets_every_subscription() {
    let server = start();
    let mut observer = server.client();
    {
        let mut sub = server.client();
        send(&mut sub, &["SUBSCRIBE", "gone"]);
        sub.read_reply_raw();
        send(&mut sub, &["PSUBSCRIBE", "gone.*"]);
        sub.read_reply_raw();
        send(&mut sub, &["SSUBSCRIBE", "gone-s"]);
        sub.read_reply_raw();
        assert_eq!(observer.cmd(&["PUBSUB", "NUMPAT"]), Reply::int(1));
    }
    wait_for_numsub(&mut observer, "gone", 0);
    poll_until(DEADLINE, || {
        (observer.cmd(&["PUBSUB", "NUMPAT"]) == Reply::int(0)
            && observer.cmd(&["PUBSUB", "SHARDNUMSUB", "gone-s"])
                == Reply::Array(vec![Reply::bulk("gone-s"), Reply::int(0)]))
        .then_some(())
    });
    assert_eq!(observer.cmd(&["PUBLISH", "gone", "m"]), Reply::int(0));
    assert_eq!(observer.cmd(&["PUBLISH", "gone.x", "m"]), Reply::int(0));
    assert_eq!(observer.cmd(&["PUBSUB", "CHANNELS"]), Reply::Array(vec![]));
}

/// A message of publisher `p`, number `n`.
fn numbered(p: usize, n: usize) -> String {
    format!("{p}:{n}")
}

#[test]
fn messages_arrive_in_publish_order_under_concurrent_publishers() {
    const PUBLISHERS: usize = 4;
    const MESSAGES: usize = 300;
    let server = start();
    let port = server.port();
    let mut subscribers: Vec<Client> = (0..2)
        .map(|_| {
            let mut sub = server.client();
            send(&mut sub, &["SUBSCRIBE", "order"]);
            sub.read_reply_raw();
            sub
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            thread::spawn(move || {
                let mut publisher = Client::connect(port);
                for n in 0..MESSAGES {
                    assert_eq!(
                        publisher.cmd(&["PUBLISH", "order", &numbered(p, n)]),
                        Reply::int(2)
                    );
                }
            })
        })
        .collect();
    let mut orders = Vec::new();
    for sub in &mut subscribers {
        let mut next = [0usize; PUBLISHERS];
        let mut order = Vec::new();
        for _ in 0..PUBLISHERS * MESSAGES {
            let frame = sub.read_reply();
            let message = String::from_utf8_lossy(frame.as_array()[2].as_bulk()).into_owned();
            let (p, n) = message.split_once(':').expect("p:n");
            let (p, n): (usize, usize) = (p.parse().expect("p"), n.parse().expect("n"));
            // Each publisher's messages in the order it sent them.
            assert_eq!(n, next[p], "publisher {p}'s messages out of order");
            next[p] += 1;
            order.push(message);
        }
        orders.push(order);
    }
    for publisher in publishers {
        publisher.join().expect("a publisher failed");
    }
    // And every subscriber sees the same interleaving.
    assert_eq!(orders[0], orders[1]);
}

#[test]
fn a_subscriber_that_does_not_read_is_dropped_and_the_others_go_on() {
    let server = start();
    let mut admin = server.client();
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0"
        ]),
        Reply::ok()
    );
    let limits = admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]);
    assert!(
        String::from_utf8_lossy(limits.as_array()[1].as_bulk()).ends_with("pubsub 1048576 0 0"),
        "{limits:?}"
    );
    // The slow one never reads; the fast one reads everything on a thread,
    // checking that nothing is lost or reordered, until the message "end".
    let mut slow = server.client();
    send(&mut slow, &["SUBSCRIBE", "flood"]);
    slow.read_reply_raw();
    let mut fast = server.client();
    send(&mut fast, &["SUBSCRIBE", "flood"]);
    fast.read_reply_raw();
    let reader = thread::spawn(move || {
        let mut count = 0usize;
        loop {
            let frame = fast.read_reply();
            let message = frame.as_array()[2].as_bulk();
            if message == b"end" {
                return (fast, count);
            }
            let n: usize = String::from_utf8_lossy(&message[..8])
                .parse()
                .expect("a numbered message");
            assert_eq!(n, count, "the fast subscriber lost or reordered a message");
            count += 1;
        }
    });
    // 64 KiB messages: the slow client's socket buffers fill, then its
    // outbox passes 1 MiB, and PUBLISH counts one receiver fewer.
    let payload = "x".repeat(64 * 1024);
    let mut sent = 0usize;
    let mut publish = |admin: &mut Client| {
        let receivers = admin
            .cmd(&["PUBLISH", "flood", &format!("{sent:08}{payload}")])
            .as_int();
        sent += 1;
        receivers
    };
    poll_until(DEADLINE, || (publish(&mut admin) == 1).then_some(()));
    // The publisher goes on, undisturbed.
    for _ in 0..10 {
        assert_eq!(publish(&mut admin), 1);
    }
    let sent = sent;
    // The slow client's connection ends: what the kernel held, then EOF.
    let mut buf = vec![0u8; 1 << 16];
    let mut stream = slow.stream().try_clone().expect("clone");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the slow subscriber was not disconnected: {e}"),
        }
    }
    wait_for_numsub(&mut admin, "flood", 1);
    assert_eq!(admin.cmd(&["PUBLISH", "flood", "end"]), Reply::int(1));
    let (mut fast, count) = reader.join().expect("the fast subscriber failed");
    assert_eq!(count, sent, "the fast subscriber got every message");
    assert_eq!(fast.cmd(&["PING"]).as_array()[0], Reply::bulk("pong"));
}

#[test]
fn the_soft_limit_drops_a_subscriber_that_stays_behind_past_its_seconds() {
    let server = start();
    let mut admin = server.client();
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 256kb 1"
        ]),
        Reply::ok()
    );
    let mut slow = server.client();
    send(&mut slow, &["SUBSCRIBE", "soft"]);
    slow.read_reply_raw();
    // No hard limit: only staying over the soft one for more than its
    // second drops it.
    let payload = "x".repeat(64 * 1024);
    poll_until(DEADLINE, || {
        (admin.cmd(&["PUBLISH", "soft", &payload]) == Reply::int(0)).then_some(())
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut stream = slow.stream().try_clone().expect("clone");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the slow subscriber was not disconnected: {e}"),
        }
    }
    wait_for_numsub(&mut admin, "soft", 0);
}

#[test]
fn publish_reaches_the_subscribers_of_replicas() {
    let master = start();
    let port = master.port().to_string();
    let replica = Server::start_with(BIN, &["--save", "", "--replicaof", "127.0.0.1", &port]);
    let mut on_replica = replica.client();
    poll_until(DEADLINE, || {
        on_replica
            .info_field("replication", "master_link_status")
            .filter(|status| status == "up")
    });
    let mut sub = replica.client();
    send(&mut sub, &["SUBSCRIBE", "rc"]);
    sub.read_reply_raw();
    send(&mut sub, &["SSUBSCRIBE", "sc"]);
    sub.read_reply_raw();
    let mut publisher = master.client();
    // Nobody listens on the master itself.
    assert_eq!(publisher.cmd(&["PUBLISH", "rc", "hello"]), Reply::int(0));
    assert_eq!(publisher.cmd(&["SPUBLISH", "sc", "hi"]), Reply::int(0));
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$5\r\nhello\r\n"
    );
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$8\r\nsmessage\r\n$2\r\nsc\r\n$2\r\nhi\r\n"
    );
    // Inside a transaction too.
    publisher.cmd(&["MULTI"]);
    publisher.cmd(&["SET", "k", "v"]);
    publisher.cmd(&["PUBLISH", "rc", "in-exec"]);
    assert_eq!(
        publisher.cmd(&["EXEC"]),
        Reply::Array(vec![Reply::ok(), Reply::int(0)])
    );
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$7\r\nmessage\r\n$2\r\nrc\r\n$7\r\nin-exec\r\n"
    );
}

#[test]
fn redis_cli_prints_what_it_is_subscribed_to() {
    require_program!("redis-cli");
    let server = start();
    let mut child = Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "SUBSCRIBE", "cli"])
        .env("REDISCLI_HISTFILE", "/dev/null")
        .env("REDISCLI_RCFILE", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, read) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut publisher = server.client();
    wait_for_numsub(&mut publisher, "cli", 1);
    assert_eq!(
        publisher.cmd(&["PUBLISH", "cli", "hello there"]),
        Reply::int(1)
    );
    let mut seen = Vec::new();
    while !seen.iter().any(|line: &String| line == "hello there") {
        match read.recv_timeout(DEADLINE) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen,
        ["subscribe", "cli", "1", "message", "cli", "hello there"],
        "redis-cli's output"
    );
}

/// A redis-py script: PubSub objects, channel and pattern handlers' data,
/// and the messages' types.
const PY_PUBSUB: &str = r##"
import sys, time
import redis

r = redis.Redis(port=int(sys.argv[1]))
p = r.pubsub()
p.subscribe("py")
p.psubscribe("py.*")
def next_message():
    deadline = time.time() + 20
    while time.time() < deadline:
        m = p.get_message(timeout=1.0)
        if m is not None:
            return m
    raise SystemExit("no message")
assert next_message() == {"type": "subscribe", "pattern": None, "channel": b"py", "data": 1}
assert next_message() == {"type": "psubscribe", "pattern": None, "channel": b"py.*", "data": 2}
assert r.publish("py", "one") == 1
assert r.publish("py.x", "two") == 1
assert next_message() == {"type": "message", "pattern": None, "channel": b"py", "data": b"one"}
assert next_message() == {"type": "pmessage", "pattern": b"py.*", "channel": b"py.x", "data": b"two"}
assert r.pubsub_numsub("py") == [(b"py", 1)]
assert r.pubsub_numpat() == 1
p.unsubscribe()
p.punsubscribe()
assert next_message()["type"] == "unsubscribe"
assert next_message() == {"type": "punsubscribe", "pattern": None, "channel": b"py.*", "data": 0}
p.close()
r3 = redis.Redis(port=int(sys.argv[1]), protocol=3)
p3 = r3.pubsub()
p3.subscribe("three")
assert p3.get_message(timeout=5.0)["type"] == "subscribe"
assert r.publish("three", "x") == 1
assert p3.get_message(timeout=5.0) == {"type": "message", "pattern": None, "channel": b"three", "data": b"x"}
print("OK")
"##;

#[test]
fn redis_py_pubsub_works() {
    let python = require_program!("python3");
    let has_redis_py = Command::new(&python)
        .args(["-c", "import redis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !has_redis_py {
        skip_for_missing_tool!("python3 with redis-py is not available");
    }
    let server = start();
    let script = server.dir().join("pubsub.py");
    fs::write(&script, PY_PUBSUB).expect("cannot write the python script");
    let output = Command::new(&python)
        .arg(&script)
        .arg(server.port().to_string())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("OK\n"),
        "the redis-py script failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------
// Keyspace notifications
// ---------------------------------------------------------------------------

/// Reads `count` pmessage frames and returns (channel, message) pairs.
fn notifications(sub: &mut Client, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|_| {
            let frame = sub.read_reply();
            let parts = frame.as_array();
            assert_eq!(parts[0], Reply::bulk("pmessage"), "{frame:?}");
            (
                String::from_utf8_lossy(parts[2].as_bulk()).into_owned(),
                String::from_utf8_lossy(parts[3].as_bulk()).into_owned(),
            )
        })
        .collect()
}

/// The pairs both channels carry for `event` on `key` in database `db`,
/// the keyspace channel first.
fn announced(db: usize, key: &str, event: &str) -> [(String, String); 2] {
    [
        (format!("__keyspace@{db}__:{key}"), event.to_string()),
        (format!("__keyevent@{db}__:{event}"), key.to_string()),
    ]
}

/// An event a step expects: database, key, event.
type Announced = (usize, &'static str, &'static str);

/// A client subscribed to every notification.
fn listener(server: &Server) -> Client {
    let mut sub = server.client();
    send(&mut sub, &["PSUBSCRIBE", "__key*__:*"]);
    sub.read_reply_raw();
    sub
}

#[test]
fn notify_keyspace_events_is_read_back_as_redis_writes_it() {
    let server = start();
    let mut client = server.client();
    assert_eq!(
        client.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        Reply::bulks(&["notify-keyspace-events", ""])
    );
    for (set, shown) in [
        ("KEA", "AKE"),
        ("Ex", "xE"),
        ("gK$", "g$K"),
        ("KEn", "nKE"),
        ("En$", "$nE"),
        ("KEAnm", "AKEm"),
        ("KEAn", "AKE"),
    ] {
        assert_eq!(
            client.cmd(&["CONFIG", "SET", "notify-keyspace-events", set]),
            Reply::ok()
        );
        assert_eq!(
            client.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
            Reply::bulks(&["notify-keyspace-events", shown]),
            "{set}"
        );
    }
    assert_eq!(
        client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEq"]),
        Reply::err("ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    );
}

#[test]
fn changes_are_announced_on_both_channels_in_order() {
    let server = start();
    let mut client = server.client();
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = listener(&server);
    // Each command, then the events it announces.
    let script: &[(&[&str], &[Announced])] = &[
        (&["SET", "k", "v"], &[(0, "k", "set")]),
        (
            &["SET", "t", "1", "EX", "10"],
            &[(0, "t", "set"), (0, "t", "expire")],
        ),
        (&["EXPIRE", "k", "100"], &[(0, "k", "expire")]),
        (&["PERSIST", "k"], &[(0, "k", "persist")]),
        (&["DEL", "k", "nokey"], &[(0, "k", "del")]),
        (&["INCR", "n"], &[(0, "n", "incrby")]),
        (&["INCRBYFLOAT", "n", "1.5"], &[(0, "n", "incrbyfloat")]),
        (&["APPEND", "n", "x"], &[(0, "n", "append")]),
        (&["SETRANGE", "n", "0", "y"], &[(0, "n", "setrange")]),
        (
            &["RENAME", "n", "m"],
            &[(0, "n", "rename_from"), (0, "m", "rename_to")],
        ),
        (&["EXPIRE", "m", "0"], &[(0, "m", "del")]),
        (
            &["MSET", "a", "1", "b", "2"],
            &[(0, "a", "set"), (0, "b", "set")],
        ),
        (&["GETDEL", "b"], &[(0, "b", "del")]),
        (&["GETEX", "a", "EX", "100"], &[(0, "a", "expire")]),
        (
            &["MOVE", "a", "2"],
            &[(0, "a", "move_from"), (2, "a", "move_to")],
        ),
        (&["SET", "c", "1"], &[(0, "c", "set")]),
        (&["COPY", "c", "d", "DB", "3"], &[(3, "d", "copy_to")]),
        // No event: a failed write, a flush, a read.
        (&["GET", "c"], &[]),
        (&["FLUSHALL"], &[]),
        (&["SELECT", "1"], &[]),
        (&["SET", "k1", "v"], &[(1, "k1", "set")]),
    ];
    for (command, events) in script {
        client.cmd(command);
        let expected: Vec<(String, String)> = events
            .iter()
            .flat_map(|&(db, key, event)| announced(db, key, event))
            .collect();
        assert_eq!(
            notifications(&mut sub, expected.len()),
            expected,
            "{command:?}"
        );
    }
    // `n` adds `new` before the first change of a key; without K or E,
    // nothing at all is published.
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
    client.cmd(&["SET", "newk", "1"]);
    let expected: Vec<_> = announced(1, "newk", "new")
        .into_iter()
        .chain(announced(1, "newk", "set"))
        .collect();
    assert_eq!(notifications(&mut sub, 4), expected);
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "A"]);
    client.cmd(&["SET", "quiet", "1"]);
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "E$"]);
    client.cmd(&["SET", "loud", "1"]);
    client.cmd(&["DEL", "loud"]);
    // Then nothing more: the next frame is a marker published by hand.
    client.cmd(&["PUBLISH", "__keyevent@9__:marker", "end"]);
    assert_eq!(
        notifications(&mut sub, 2),
        [
            ("__keyevent@1__:set".to_string(), "loud".to_string()),
            ("__keyevent@9__:marker".to_string(), "end".to_string())
        ]
    );
}

#[test]
fn expired_keys_are_announced_whether_read_or_not() {
    let server = start();
    let mut client = server.client();
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
    let mut sub = server.client();
    send(&mut sub, &["SUBSCRIBE", "__keyevent@0__:expired"]);
    sub.read_reply_raw();
    // Nobody reads this one: active expiry finds it.
    client.cmd(&["SET", "unread", "v", "PX", "20"]);
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$6\r\nunread\r\n"
    );
    // This one is read once its time is up (by whichever expiry comes first).
    client.cmd(&["SET", "read", "v", "PX", "20"]);
    poll_until(DEADLINE, || {
        (client.cmd(&["GET", "read"]) == Reply::Nil).then_some(())
    });
    assert_bytes_eq!(
        sub.read_reply_raw(),
        "*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$4\r\nread\r\n"
    );
}

/// A command and the (event, key) pairs it announces.
type TypedStep = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// Lists, hashes and sets announce their changes as Redis 7.0.15 does: the
/// command's event, `new` first when it creates its key, `del` after it
/// when it empties it, nothing when it changes nothing. (The script and its
/// events were recorded from redis-server 7.0.15 with `KEA` plus `n`.)
#[test]
fn list_hash_and_set_changes_are_announced_as_redis_announces_them() {
    let server = start();
    let mut client = server.client();
    client.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
    let mut sub = server.client();
    send(&mut sub, &["PSUBSCRIBE", "__keyevent@*__:*"]);
    sub.read_reply_raw();
    // Each command, then the (event, key) pairs it announces, in order.
    let script: &[TypedStep] = &[
        (
            &["LPUSH", "l", "a", "b", "c"],
            &[("new", "l"), ("lpush", "l")],
        ),
        (&["RPUSH", "l", "d"], &[("rpush", "l")]),
        (&["LPUSHX", "nol", "a"], &[]),
        (&["RPUSHX", "l", "e"], &[("rpush", "l")]),
        (&["LINSERT", "l", "BEFORE", "a", "x"], &[("linsert", "l")]),
        (&["LINSERT", "l", "BEFORE", "zz", "x"], &[]),
        (&["LSET", "l", "0", "y"], &[("lset", "l")]),
        (&["LREM", "l", "0", "zz"], &[]),
        (&["LREM", "l", "1", "y"], &[("lrem", "l")]),
        (&["LTRIM", "l", "0", "-1"], &[("ltrim", "l")]),
        (&["LTRIM", "l", "0", "1"], &[("ltrim", "l")]),
        (&["LPOP", "l", "0"], &[]),
        (&["LPOP", "l"], &[("lpop", "l")]),
        (&["RPOP", "l", "1"], &[("rpop", "l"), ("del", "l")]),
        (&["RPOP", "l"], &[]),
        (
            &["RPUSH", "l", "a", "b", "c"],
            &[("new", "l"), ("rpush", "l")],
        ),
        (
            &["LMPOP", "2", "nol", "l", "LEFT", "COUNT", "5"],
            &[("lpop", "l"), ("del", "l")],
        ),
        (
            &["RPUSH", "src", "a", "b"],
            &[("new", "src"), ("rpush", "src")],
        ),
        (
            &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
            &[("new", "dst"), ("rpush", "dst"), ("lpop", "src")],
        ),
        (
            &["RPOPLPUSH", "src", "dst"],
            &[("lpush", "dst"), ("rpop", "src"), ("del", "src")],
        ),
        (
            &["RPOPLPUSH", "dst", "dst"],
            &[("lpush", "dst"), ("rpop", "dst")],
        ),
        (
            &["LMOVE", "dst", "dst", "LEFT", "LEFT"],
            &[("lpush", "dst"), ("lpop", "dst")],
        ),
        (&["RPUSH", "one", "x"], &[("new", "one"), ("rpush", "one")]),
        (
            &["LMOVE", "one", "one", "LEFT", "RIGHT"],
            &[("rpush", "one"), ("lpop", "one")],
        ),
        (
            &["LTRIM", "one", "5", "10"],
            &[("ltrim", "one"), ("del", "one")],
        ),
        (
            &["HSET", "h", "f", "v", "g", "w"],
            &[("new", "h"), ("hset", "h")],
        ),
        (&["HSET", "h", "f", "v"], &[("hset", "h")]),
        (&["HMSET", "h", "f", "v2"], &[("hset", "h")]),
        (&["HSETNX", "h", "f", "v"], &[]),
        (&["HSETNX", "h", "n", "v"], &[("hset", "h")]),
        (
            &["HSETNX", "h2", "n", "v"],
            &[("new", "h2"), ("hset", "h2")],
        ),
        (&["HINCRBY", "h", "i", "1"], &[("hincrby", "h")]),
        (
            &["HINCRBY", "h3", "i", "1"],
            &[("new", "h3"), ("hincrby", "h3")],
        ),
        (
            &["HINCRBYFLOAT", "h", "fl", "1.5"],
            &[("hincrbyfloat", "h")],
        ),
        (&["HINCRBYFLOAT", "h", "f", "1.5"], &[]),
        (&["HDEL", "h", "nofield"], &[]),
        (&["HDEL", "h", "f", "g", "i", "fl"], &[("hdel", "h")]),
        (&["HDEL", "h", "n"], &[("hdel", "h"), ("del", "h")]),
        (
            &["SADD", "s", "a", "b", "c"],
            &[("new", "s"), ("sadd", "s")],
        ),
        (&["SADD", "s", "a"], &[]),
        (&["SREM", "s", "zz"], &[]),
        (&["SREM", "s", "a"], &[("srem", "s")]),
        (&["SPOP", "s", "0"], &[]),
        (&["SPOP", "s"], &[("spop", "s")]),
        (&["SPOP", "s", "5"], &[("spop", "s"), ("del", "s")]),
        (
            &["SADD", "s1", "a", "b", "c"],
            &[("new", "s1"), ("sadd", "s1")],
        ),
        (
            &["SADD", "s2", "b", "c", "d"],
            &[("new", "s2"), ("sadd", "s2")],
        ),
        (
            &["SINTERSTORE", "d1", "s1", "s2"],
            &[("new", "d1"), ("sinterstore", "d1")],
        ),
        (&["SINTERSTORE", "d1", "s1", "s2"], &[("sinterstore", "d1")]),
        (&["SINTERSTORE", "d1", "s1", "nokey"], &[("del", "d1")]),
        (
            &["SUNIONSTORE", "d2", "s1", "s2"],
            &[("new", "d2"), ("sunionstore", "d2")],
        ),
        (
            &["SDIFFSTORE", "d3", "s1", "s2"],
            &[("new", "d3"), ("sdiffstore", "d3")],
        ),
        (&["SDIFFSTORE", "d3", "s2", "s1", "s2"], &[("del", "d3")]),
        (&["SDIFFSTORE", "d3", "nokey", "s1"], &[]),
        (&["SET", "str", "v"], &[("new", "str"), ("set", "str")]),
        (
            &["SINTERSTORE", "str", "s1", "s2"],
            &[("sinterstore", "str")],
        ),
        (&["SET", "str", "v"], &[("set", "str")]),
        (&["SUNIONSTORE", "str", "nokey"], &[("del", "str")]),
        (
            &["SMOVE", "s1", "s2", "a"],
            &[("srem", "s1"), ("sadd", "s2")],
        ),
        (&["SMOVE", "s1", "s2", "b"], &[("srem", "s1")]),
        (
            &["SMOVE", "s1", "s3", "c"],
            &[("srem", "s1"), ("del", "s1"), ("new", "s3"), ("sadd", "s3")],
        ),
        (&["SMOVE", "s2", "s2", "a"], &[]),
        (&["SMOVE", "s2", "s3", "zz"], &[]),
        (&["RPUSH", "gl", "a"], &[("new", "gl"), ("rpush", "gl")]),
        (
            &["RENAME", "gl", "gl2"],
            &[("new", "gl2"), ("rename_from", "gl"), ("rename_to", "gl2")],
        ),
        (
            &["COPY", "gl2", "gl3"],
            &[("new", "gl3"), ("copy_to", "gl3")],
        ),
        (
            &["MOVE", "gl3", "2"],
            &[("new", "gl3"), ("move_from", "gl3"), ("move_to", "gl3")],
        ),
        (&["EXPIRE", "gl2", "100"], &[("expire", "gl2")]),
        (&["PERSIST", "gl2"], &[("persist", "gl2")]),
        (&["DEL", "gl2"], &[("del", "gl2")]),
        (&["HSET", "gh", "f", "v"], &[("new", "gh"), ("hset", "gh")]),
        (&["EXPIRE", "gh", "0"], &[("del", "gh")]),
        (&["SADD", "gs", "a"], &[("new", "gs"), ("sadd", "gs")]),
        (&["PEXPIRE", "gs", "1"], &[("expire", "gs")]),
    ];
    for (command, events) in script {
        client.cmd(command);
        // A fence: everything announced before it belongs to `command`.
        client.cmd(&["PUBLISH", "__keyevent@0__:fence", "-"]);
        let mut got = Vec::new();
        loop {
            let frame = sub.read_reply();
            let parts = frame.as_array();
            let channel = String::from_utf8_lossy(parts[2].as_bulk()).into_owned();
            let key = String::from_utf8_lossy(parts[3].as_bulk()).into_owned();
            let event = channel.rsplit(':').next().unwrap_or_default().to_string();
            if event == "fence" {
                break;
            }
            got.push((event, key));
        }
        let expected: Vec<(String, String)> = events
            .iter()
            .map(|&(event, key)| (event.to_string(), key.to_string()))
            .collect();
        assert_eq!(got, expected, "{command:?}");
    }
}

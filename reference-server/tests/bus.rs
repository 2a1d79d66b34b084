//! `--redis`: two server nodes (in-process, separate hubs) over a real
//! `redis-server` on a free port. Rooms span both nodes with one gap-free
//! seq; history and resume come from Redis; garbage on the bus is counted
//! and dropped; a Redis restart is survived with /healthz degraded meanwhile.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A `redis-server` child on a free port, killed on drop.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start(port: Option<u16>, dir: Option<&Path>) -> Redis {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match dir {
            // The restart test keeps state across restarts, as production would.
            Some(d) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(d),
            None => cmd.args(["--appendonly", "no"]),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let r = Redis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn node(redis: &Redis) -> TestServer {
    let url = redis.url();
    start(&["--redis", &url, "--rate-limit", "0"]).await
}

/// Reads chats until `n` arrived; returns their seqs and texts in order.
async fn chats(c: &mut Client, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = c.next().await;
        if v["type"] == "chat" {
            out.push((
                v["seq"].as_u64().unwrap(),
                v["text"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

fn contiguous(seqs: &[(u64, String)], first: u64) {
    for (i, (s, _)) in seqs.iter().enumerate() {
        assert_eq!(*s, first + i as u64, "gap or reorder in {seqs:?}");
    }
}

#[tokio::test]
async fn rooms_span_nodes_with_one_gap_free_seq() {
    let redis = Redis::start(None, None);
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut a1 = a.joined("?user=a1", "r").await;
    let mut a2 = a.joined("?user=a2", "r").await;
    let mut b1 = b.joined("?user=b1", "r").await;
    let mut b2 = b.joined("?user=b2", "r").await;
    // Both senders fire without waiting, interleaving at Redis.
    for i in 0..50 {
        for (c, who) in [(&mut a1, "a"), (&mut b1, "b")] {
            let m = json!({"type":"chat","room":"r","id":i,"text":format!("{who}{i}"),"ts":1});
            c.send(m).await;
        }
    }
    for c in [&mut a2, &mut b2] {
        let got = chats(c, 100).await;
        contiguous(&got, 1);
        // Each sender's own order is kept.
        for who in ["a", "b"] {
            let mine: Vec<_> = got.iter().filter(|(_, t)| t.starts_with(who)).collect();
            let texts: Vec<String> = (0..50).map(|i| format!("{who}{i}")).collect();
            assert_eq!(
                mine.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
                texts
            );
        }
    }
    // Senders get the other's 50 (not their own) and 50 acks; acks and
    // deliveries together are exactly seqs 1..=100, and arrive in seq
    // order (an ack comes at its seq's place among the deliveries).
    let mut all = Vec::new();
    for (c, other) in [(&mut a1, "b"), (&mut b1, "a")] {
        let mut seen = Vec::new();
        let mut order = Vec::new();
        let mut acks = 0;
        while seen.len() < 50 || acks < 50 {
            let v = c.next().await;
            match v["type"].as_str() {
                Some("chat") => {
                    assert!(v["text"].as_str().unwrap().starts_with(other), "{v}");
                    seen.push(v["seq"].as_u64().unwrap());
                    order.push(v["seq"].as_u64().unwrap());
                }
                Some("ack") => {
                    acks += 1;
                    all.push(v["seq"].as_u64().unwrap());
                    order.push(v["seq"].as_u64().unwrap());
                }
                _ => {}
            }
        }
        assert_eq!(order, (1..=100).collect::<Vec<u64>>(), "acks out of place");
        all.extend(seen);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (1..=100).collect::<Vec<u64>>());
    // Nothing more: no duplicates anywhere.
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        assert!(c.barrier().await.iter().all(|v| v["type"] != "chat"));
    }
    assert!(a.metric("bus_published_total").await >= 50.0);
    assert_eq!(a.metric("bus_duplicates_total").await, 0.0);

    // A later joiner on either node starts at the room's seq.
    let mut late = b.client("?user=late").await.0;
    assert_eq!(late.join("r").await["seq"], 100);
}

#[tokio::test]
async fn resume_on_another_node_replays_from_redis() {
    let redis = Redis::start(None, None);
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut writer = a.joined("?user=w", "h").await;
    for i in 0..5 {
        writer.chat("h", json!(i), &format!("m{i}")).await;
    }
    drop(writer);
    // The room had no members on node b; a client "reconnecting" there resumes.
    let mut c = b.joined("?user=r", "h").await;
    c.send(json!({"type":"resume","room":"h","after":2})).await;
    let got = chats(&mut c, 3).await;
    assert_eq!(
        got,
        vec![(3, "m2".into()), (4, "m3".into()), (5, "m4".into())]
    );
    let resumed = c.expect("resumed").await;
    assert_eq!(
        (resumed["replayed"].as_u64(), resumed["complete"].as_bool()),
        (Some(3), Some(true))
    );
    assert_eq!(redis.cli(&["LLEN", "bench:{h}:history"]), "5");
}

/// The next frame of type `kind`, skipping presence frames.
async fn next_of(c: &mut Client, kind: &str) -> Value {
    loop {
        let v = c.next().await;
        if v["type"] != "presence" {
            assert_eq!(v["type"], kind, "{v}");
            return v;
        }
    }
}

async fn deliver_probe(a: &mut Client, b: &mut Client, text: &str) -> Value {
    a.send(json!({"type":"chat","room":"g","id":text,"text":text,"ts":1}))
        .await;
    assert_eq!(next_of(a, "ack").await["id"], text);
    let v = next_of(b, "chat").await;
    assert_eq!(v["text"], text);
    v
}

#[tokio::test]
async fn garbage_on_the_bus_is_counted_and_dropped() {
    let redis = Redis::start(None, None);
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ca = a.joined("?user=a", "g").await;
    let mut cb = b.joined("?user=b", "g").await;
    let first = deliver_probe(&mut ca, &mut cb, "one").await;
    for junk in [
        "garbage",
        "b2 c 99 {}",
        "b1 c nope {}",
        "b1 c 7 {\"n\":1}",
        "b1 q",
    ] {
        redis.cli(&["PUBLISH", "bench:{g}:chat", junk]);
    }
    let second = deliver_probe(&mut ca, &mut cb, "two").await;
    assert_eq!(second["seq"].as_u64(), first["seq"].as_u64().map(|s| s + 1));
    assert!(
        cb.barrier().await.iter().all(|v| v["type"] == "presence"),
        "junk reached a client"
    );
    b.wait_metric("bus_foreign_version_total", |v| v >= 2.0)
        .await;
    b.wait_metric("bus_malformed_total", |v| v >= 3.0).await;
}

async fn health(addr: SocketAddr) -> u16 {
    http_get(addr, "/healthz", &[]).await.0
}

#[tokio::test]
async fn redis_restart_degrades_then_recovers() {
    let dir = tempfile_dir("bus-restart");
    let redis = Redis::start(None, Some(&dir));
    let port = redis.port;
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut ca = a.joined("?user=a", "g").await;
    let mut cb = b.joined("?user=b", "g").await;
    deliver_probe(&mut ca, &mut cb, "before").await;
    assert_eq!(health(a.addr).await, 200);

    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(a.addr).await != 503 || health(b.addr).await != 503 {
        assert!(Instant::now() < deadline, "/healthz never said degraded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.metric("bus_up").await, 0.0);

    let _redis = Redis::start(Some(port), Some(&dir));
    while health(a.addr).await != 200 || health(b.addr).await != 200 {
        assert!(Instant::now() < deadline, "nodes did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.metric("bus_reconnects_total").await >= 1.0);
    // The seq survived (append-only file) and delivery works again, in order.
    let v = deliver_probe(&mut ca, &mut cb, "after").await;
    assert_eq!(v["seq"], 2);
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn unreachable_redis_exits_unless_optional() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["--listen", "127.0.0.1:0", "--redis", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach Redis") && err.contains("--redis-optional"),
        "{err}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &url,
            "--redis-optional",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// The next presence frame (other frames skipped), within 10 s.
async fn presence(c: &mut Client) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = c.try_next(left).await.expect("a presence frame");
        if v["type"] == "presence" {
            return (
                v["user"].as_str().unwrap().into(),
                v["status"].as_str().unwrap().into(),
            );
        }
    }
}

#[tokio::test]
async fn presence_is_room_wide() {
    let redis = Redis::start(None, None);
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut watcher = a.joined("?user=w", "p").await;
    let mut bob_b = b.joined("?user=bob", "p").await;
    assert_eq!(
        presence(&mut watcher).await,
        ("bob".into(), "online".into())
    );
    // Bob's second connection, on the other node: still one user online.
    let bob_a = a.joined("?user=bob", "p").await;
    bob_b.send(json!({"type":"leave","room":"p"})).await;
    bob_b.expect("left").await;
    assert!(watcher
        .barrier()
        .await
        .iter()
        .all(|v| v["type"] != "presence"));
    drop(bob_a);
    assert_eq!(
        presence(&mut watcher).await,
        ("bob".into(), "offline".into())
    );
    assert_eq!(redis.cli(&["HGET", "bench:{p}:presence", "bob"]), "");
}

#[tokio::test]
async fn a_dead_nodes_members_leave_its_rooms() {
    let redis = Redis::start(None, None);
    let url = redis.url();
    let mut ghost_node = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &url,
            "--redis-node-ttl",
            "500ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(ghost_node.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let b = start(&["--redis", &url, "--redis-node-ttl", "500ms"]).await;
    let mut watcher = b.joined("?user=w", "d").await;
    let mut ghost = Client::connect(&format!("ws://{addr}/ws?user=ghost"), &[])
        .await
        .unwrap();
    ghost.expect("welcome").await;
    ghost.join("d").await;
    assert_eq!(
        presence(&mut watcher).await,
        ("ghost".into(), "online".into())
    );
    // Killed: no leave is ever sent; the liveness TTL has to do it.
    ghost_node.kill().unwrap();
    ghost_node.wait().unwrap();
    assert_eq!(
        presence(&mut watcher).await,
        ("ghost".into(), "offline".into())
    );
    assert_eq!(redis.cli(&["HGET", "bench:{d}:presence", "ghost"]), "");
}

//! `--processes N`: N processes share one port through SO_REUSEPORT, a
//! killed one is restarted, and SIGTERM drains them all (exit 0).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn spawn_supervisor(extra: &[&str]) -> (Child, SocketAddr) {
    spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .args(["--listen", "127.0.0.1:0", "--drain-timeout", "3s"])
            .args(extra),
    )
}

/// `(process index, pid)` of whichever process answered this scrape.
async fn who_answers(addr: SocketAddr) -> (u32, u32) {
    let (status, body) = http_get(addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    // Under a supervisor the body is the whole server's; its first line
    // names the process that answered. Alone, process_info does.
    let line = body
        .lines()
        .find(|l| l.starts_with("# answered by "))
        .or_else(|| body.lines().find(|l| l.starts_with("process_info{")))
        .unwrap_or_else(|| panic!("no process_info in\n{body}"));
    let label = |name: &str| -> u32 {
        let start = line.find(&format!("{name}=\"")).expect("label") + name.len() + 2;
        let end = start + line[start..].find('"').expect("closing quote");
        line[start..end].parse().expect("a number")
    };
    (label("process"), label("pid"))
}

/// [`who_answers`], but `None` for a connection reset: one the kernel had
/// queued on a listener that was just killed is reset (SO_REUSEPORT does
/// not hand queued connections to the other listeners).
async fn try_who_answers(addr: SocketAddr) -> Option<(u32, u32)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().find(|l| l.starts_with("# answered by "))?;
    let label = |name: &str| -> Option<u32> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        line[start..end].parse().ok()
    };
    Some((label("process")?, label("pid")?))
}

/// Pids seen over `n` fresh connections (each scrape is a new TCP connection
/// with a new source port, so the kernel's reuse-port hash spreads them).
async fn pids_seen(addr: SocketAddr, n: usize) -> BTreeSet<(u32, u32)> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(who_answers(addr).await);
    }
    seen
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[tokio::test]
async fn processes_share_the_port_restart_and_drain() {
    let (mut sup, addr) = spawn_supervisor(&["--processes", "2"]);
    // 64 connections all hashed to one of two listeners: probability 2^-63.
    let first = pids_seen(addr, 64).await;
    let indices: BTreeSet<u32> = first.iter().map(|p| p.0).collect();
    assert_eq!(indices, BTreeSet::from([0, 1]), "{first:?}");
    assert_eq!(first.len(), 2, "one pid per process: {first:?}");

    // Any one scrape answers for both: summed and per-process series.
    let (_, body) = http_get(addr, "/metrics", &[]).await;
    assert_eq!(metric_value(&body, "server_processes"), Some(2.0), "{body}");
    let per: Vec<f64> = (0..2)
        .map(|i| metric_value(&body, &format!("connections_total{{process=\"{i}\"}}")).unwrap())
        .collect();
    assert_eq!(
        metric_value(&body, "connections_total"),
        Some(per[0] + per[1])
    );
    for (_, pid) in &first {
        assert!(body.contains(&format!("pid=\"{pid}\"}} 1")), "{body}");
    }
    let (status, health) = http_get(addr, "/healthz", &[]).await;
    assert_eq!((status, health.trim()), (200, "ok (2 processes)"));

    // Kill process 0 hard; the supervisor starts a new one in its slot.
    let victim = first.iter().find(|p| p.0 == 0).unwrap().1;
    // SAFETY: plain kill(2) on a child of our child.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let restarted = loop {
        let mut seen = BTreeSet::new();
        for _ in 0..16 {
            seen.extend(try_who_answers(addr).await);
        }
        if let Some(p) = seen.iter().find(|p| p.0 == 0 && p.1 != victim) {
            break p.1;
        }
        assert!(
            Instant::now() < deadline,
            "process 0 not restarted: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!alive(victim));

    // A client on either process gets 1012 on SIGTERM; everything exits.
    let mut c = Client::connect(&format!("ws://{addr}/ws"), &[])
        .await
        .unwrap();
    c.expect("welcome").await;
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(sup.id() as i32, libc::SIGTERM) };
    assert_eq!(c.expect_close().await, 1012);
    let status = tokio::task::spawn_blocking(move || sup.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let other = first.iter().find(|p| p.0 == 1).unwrap().1;
    assert!(
        !alive(restarted) && !alive(other),
        "children outlived the supervisor"
    );
}

#[tokio::test]
async fn reuse_port_lets_two_servers_bind_one_address() {
    let (mut a, addr) = spawn_supervisor(&["--reuse-port"]);
    let mut b = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["--listen", &addr.to_string(), "--reuse-port"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn second server");
    let mut line = String::new();
    BufReader::new(b.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("listening on {addr}"));
    let pids: BTreeSet<u32> = pids_seen(addr, 64).await.iter().map(|p| p.1).collect();
    assert_eq!(pids, BTreeSet::from([a.id(), b.id()]));
    for c in [&mut a, &mut b] {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
}

#[test]
fn processes_out_of_range_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["--processes", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--processes"));
}

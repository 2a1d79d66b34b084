//! `bench serve --processes 2 --redis URL` as the target of `bench run`,
//! over a real redis-server on a free port: rooms span both processes, and
//! one process is SIGKILLed mid-run. Its clients reconnect (to the
//! survivor or the restarted process) and resume from Redis history, so
//! nothing is lost, duplicated or out of order.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis(port: u16) -> Redis {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis(child)
}

/// The pid of process `index` from the whole-server /metrics.
fn pid_of(port: u16, index: u32) -> Option<i32> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let want = format!("process_info{{process=\"{index}\",pid=\"");
    let line = body.lines().find(|l| l.starts_with(&want))?;
    line[want.len()..].split('"').next()?.parse().ok()
}

#[test]
fn a_killed_process_loses_nothing_with_resume() {
    let rport = free_port();
    let _redis = redis(rport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "scaleout-kill"
seed = 21
[target]
protocol = "chat"
[target.server]
command = ["{bench}", "serve", "--listen", "127.0.0.1:{port}", "--processes", "2",
           "--redis", "redis://127.0.0.1:{rport}", "--rate-limit", "0"]
url = "ws://127.0.0.1:{port}/ws"
[[stages]]
duration = "500ms"
target = 30
[[stages]]
duration = "5s"
target = 30
[rooms]
count = 3
per_client = 1
[[clients]]
name = "member"
chat_rate = "4/s"
reconnect_backoff = {{ initial = "50ms", max = "300ms", jitter = 0.5 }}
resume = true
[run]
drain = "2s"
"#,
        bench = common::BENCH
    );
    let plan = common::plan(&toml, dir.path());
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        let pid = pid_of(port, 0).expect("process 0 in /metrics");
        // SAFETY: kill(2) on a server process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        pid
    });
    let r = common::run(&plan).results;
    killer.join().unwrap();
    let c = &r.counters;
    eprintln!("counters after the kill: {c:?}");
    // 30 connections all on process 1 has probability 2^-30.
    assert!(c.reconnects >= 1, "nobody was on the killed process: {c:?}");
    assert!(c.deliveries_received > 500, "{c:?}");
    assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 0, 0), "{c:?}");
    common::assert_accounting(&r);
}

/// Clients, rooms and a fault list for the `[[faults]]` tests below; bench
/// starts redis-server itself (`[target.redis]`) and the bundled server as
/// two processes over it.
fn scaleout_toml(name: &str, hold: &str, faults: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 33
[target]
protocol = "chat"
[target.server]
processes = 2
args = ["--rate-limit", "0"]
[target.redis]
[[stages]]
duration = "500ms"
target = 30
[[stages]]
duration = "{hold}"
target = 30
[rooms]
count = 3
per_client = 1
[[clients]]
name = "member"
chat_rate = "4/s"
reconnect_backoff = {{ initial = "50ms", max = "300ms", jitter = 0.5 }}
resume = true
[run]
drain = "2s"
{faults}
"#
    )
}

#[test]
fn kill_process_faults_lose_nothing_and_every_process_is_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"
[[faults]]
at = "2s"
action = "kill_process"
process = 0
[[faults]]
at = "4s"
action = "kill_process"
process = 1
"#;
    let plan = common::plan(&scaleout_toml("kill-process", "6s", faults), dir.path());
    let r = common::run(&plan).results;
    let c = &r.counters;
    eprintln!("counters: {c:?}\nprocesses: {:?}", r.server.processes);
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    // Both processes were killed once: at least one client was on one of them.
    assert!(c.reconnects >= 1, "{c:?}");
    assert!(c.deliveries_received > 500, "{c:?}");
    assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 0, 0), "{c:?}");
    // One chat service over Redis: a reconnect to the other process is no
    // server restart, so nothing is written off as lost at a restart.
    assert_eq!((c.server_restarts, c.lost_at_restart), (0, 0), "{c:?}");
    common::assert_accounting(&r);
    // The supervisor, both original children, their two replacements, and Redis.
    let procs = &r.server.processes;
    let roles = |role: &str| procs.iter().filter(|p| p.role == role).count();
    assert_eq!(roles("supervisor"), 1, "{procs:?}");
    assert_eq!(roles("redis"), 1, "{procs:?}");
    assert!(roles("process") >= 4, "{procs:?}");
    for index in [0, 1] {
        assert!(
            procs
                .iter()
                .any(|p| p.index == Some(index) && p.rss_peak_bytes > 0),
            "{procs:?}"
        );
    }
    // The summed RSS covers the children, not the supervisor alone.
    let supervisor = procs.iter().find(|p| p.role == "supervisor").unwrap();
    assert!(r.server.rss_peak_bytes.unwrap() > supervisor.rss_peak_bytes);
    common::assert_schema_valid(dir.path());
}

#[test]
fn a_redis_restart_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let faults = r#"
[[faults]]
at = "2s"
action = "restart_redis"
restart_after = "1500ms"
"#;
    let plan = common::plan(&scaleout_toml("redis-restart", "6s", faults), dir.path());
    let r = common::run(&plan).results;
    let c = &r.counters;
    eprintln!("counters: {c:?}");
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    let refused = c.errors.get("UNAVAILABLE").copied().unwrap_or(0);
    // Chats sent while Redis was down were refused, each one answered.
    assert!(refused > 0, "{c:?}");
    assert_eq!(c.acks_received + refused, c.chat_sent, "{c:?}");
    // What was sequenced reached everyone, once and in order.
    assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 0, 0), "{c:?}");
    assert!(c.deliveries_received > 300, "{c:?}");
    common::assert_accounting(&r);
    let redis: Vec<_> = r
        .server
        .processes
        .iter()
        .filter(|p| p.role == "redis")
        .collect();
    assert_eq!(
        redis.len(),
        2,
        "the first redis-server and the restarted one: {redis:?}"
    );
}

//! Ctrl-C during `bench run`: the run stops cleanly, the bundled server is
//! stopped, and results.json is still written, marked interrupted, with
//! everything measured so far.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

#[test]
fn sigint_writes_interrupted_results() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long.toml");
    std::fs::write(
        &scenario,
        r#"
name = "long"
[target]
protocol = "chat"
[[stages]]
duration = "1s"
target = 20
[[stages]]
duration = "60s"
target = 20
[rooms]
count = 2
[[clients]]
name = "talker"
chat_rate = "5/s"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(common::BENCH)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bench run did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Interrupted runs cannot be trusted: exit code 5.
    assert_eq!(status.code(), Some(5), "{status:?}");
    let r = common::read_results(&out);
    assert!(r.interrupted);
    assert!(
        r.interrupt_reason
            .as_deref()
            .unwrap_or("")
            .contains("SIGINT"),
        "{:?}",
        r.interrupt_reason
    );
    assert!(r.duration_s < 30.0, "{}", r.duration_s);
    assert!(r.counters.chat_sent > 0 && r.counters.deliveries_received > 0);
    assert!(r.metrics.contains_key("delivery_latency"));
    assert!(!r.timeseries.is_empty());
    // The bundled server was stopped, not left behind.
    for pid in &r.server.pids {
        let alive = unsafe { libc::kill(*pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "bundled server {pid} still running");
    }
}

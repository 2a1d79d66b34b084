//! A target that dies mid-run stops the run cleanly: results are kept and
//! marked interrupted with the reason. (Its own test binary, because it
//! kills every child process of the test process.)

use std::time::Duration;

mod common;

/// Child processes of this test process (the spawned server).
fn child_servers() -> Vec<i32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{me}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

#[test]
fn target_crash_stops_the_run_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::plan(
        r#"
name = "crash"
[target]
protocol = "chat"
[[stages]]
duration = "300ms"
target = 10
[[stages]]
duration = "30s"
target = 10
[rooms]
count = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
reconnect_backoff = { initial = "100ms", max = "200ms", jitter = 0.1 }
"#,
        dir.path(),
    );
    let killer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        for pid in child_servers() {
            // SAFETY: killing a child process this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    });
    let r = common::run(&plan).results;
    killer.join().unwrap();
    assert!(r.interrupted);
    let reason = r.interrupt_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("exited") || reason.contains("refused"),
        "{reason}"
    );
    assert!(r.duration_s < 20.0, "{}", r.duration_s);
    assert!(
        r.counters.chat_sent > 0,
        "measurements before the crash kept"
    );
    assert!(common::read_results(dir.path()).interrupted);
}

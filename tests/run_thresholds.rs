//! Thresholds decide the exit code: 0 when all pass, 3 when any fails, and
//! the results say which.

use std::process::Command;

mod common;

fn scenario(thresholds: &str) -> String {
    format!(
        r#"
name = "thresholds"
[target]
protocol = "chat"
[[stages]]
duration = "2s"
target = 10
[rooms]
count = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
[run]
drain = "500ms"
[thresholds]
{thresholds}
"#
    )
}

fn run_cli(thresholds: &str) -> (Option<i32>, bench::results::RunResults) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, scenario(thresholds)).unwrap();
    let out = dir.path().join("out");
    let status = Command::new(common::BENCH)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .status()
        .unwrap();
    (status.code(), common::read_results(&out))
}

#[test]
fn passing_thresholds_exit_zero() {
    let (code, r) = run_cli(
        r#""delivery.lost" = "== 0"
"delivery_latency.p99" = "< 60s""#,
    );
    assert_eq!(r.thresholds.len(), 2);
    assert!(r.thresholds.iter().all(|t| t.pass), "{:?}", r.thresholds);
    // 0, unless the loaded machine made the generator flag itself (5).
    assert!(
        code == Some(0) || (code == Some(5) && r.generator.saturated),
        "{code:?} {:?}",
        r.generator
    );
}

#[test]
fn failing_threshold_exits_three_and_is_named() {
    let (code, r) = run_cli(
        r#""delivery.lost" = "== 0"
"counters.chat_sent" = "< 1""#,
    );
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.pass).collect();
    assert_eq!(failed.len(), 1, "{:?}", r.thresholds);
    assert_eq!(failed[0].metric, "counters.chat_sent");
    assert!(failed[0].value.unwrap_or(0.0) >= 1.0);
    assert!(
        code == Some(3) || (code == Some(5) && r.generator.saturated),
        "{code:?}"
    );
}

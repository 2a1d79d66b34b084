//! Thresholds decide the exit code: 0 when all pass, 3 when any fails, and
//! the results say which.
//!
//! The clients are lurkers (no chats). The generator's self-check flags a
//! run as saturated (exit 5) when sends start late or its CPU is maxed out;
//! without sends and with 10 idle clients neither can happen even on a
//! loaded machine, so these tests can demand exactly 0 and 3 without
//! loosening the self-check. (Which thresholds are met by a chatting run is
//! covered by the threshold unit tests and the other e2e tests.)

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
name = "lurker"
chat_rate = 0
[run]
drain = "500ms"
[thresholds]
{thresholds}
"#
    )
}

/// Exit code and results; a run the generator flagged is reported with its
/// reasons, since it would explain an unexpected 5.
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
"connect_time.p99" = "< 60s""#,
    );
    assert_eq!(r.thresholds.len(), 2);
    assert!(r.thresholds.iter().all(|t| t.pass), "{:?}", r.thresholds);
    assert_eq!(code, Some(0), "{}", why(&r));
}

#[test]
fn failing_threshold_exits_three_and_is_named() {
    let (code, r) = run_cli(
        r#""delivery.lost" = "== 0"
"counters.connections_opened" = "< 1""#,
    );
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.pass).collect();
    assert_eq!(failed.len(), 1, "{:?}", r.thresholds);
    assert_eq!(failed[0].metric, "counters.connections_opened");
    assert!(failed[0].value.unwrap_or(0.0) >= 1.0, "{:?}", failed[0]);
    assert_eq!(code, Some(3), "{}", why(&r));
}

/// Why a run may have exited 5: interrupted or generator saturated.
fn why(r: &bench::results::RunResults) -> String {
    format!(
        "interrupted: {:?}; saturated: {} {:?}",
        r.interrupt_reason, r.generator.saturated, r.generator.saturation_reasons
    )
}

//! `bench run --repeat N` keeps every repeat's values for noise-aware
//! compare, and writes every requested format (JUnit, Markdown) too.

use std::process::Command;

mod common;

const SCENARIO: &str = r#"
name = "repeat"
[target]
protocol = "chat"
[[stages]]
duration = "1s"
target = 6
[rooms]
count = 1
[[clients]]
chat_rate = "4/s"
[run]
drain = "500ms"
[output]
formats = ["json", "junit", "markdown"]
[thresholds]
"delivery.lost" = "== 0"
"#;

#[test]
fn repeats_are_recorded_and_every_format_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let out = dir.path().join("out");
    let status = Command::new(common::BENCH)
        .args(["run", "--quiet", "--repeat", "3", "--out"])
        .arg(&out)
        .arg(&path)
        .status()
        .unwrap();
    let r = common::read_results(&out);
    assert!(
        status.code() == Some(0) || (status.code() == Some(5) && r.generator.saturated),
        "{status:?}"
    );
    assert_eq!(r.repeats.len(), 3, "{:?}", r.repeats);
    for values in &r.repeats {
        assert!(
            values.get("delivery_latency.p99").is_some_and(|v| *v > 0.0),
            "{values:?}"
        );
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("delivery.lost"), "{junit}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("delivery.lost"), "{md}");
}

#[test]
fn repeat_zero_is_a_usage_error() {
    let status = Command::new(common::BENCH)
        .args(["run", "--repeat", "0", "scenarios/quickstart.toml"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}

//! Clients that keep dropping and reconnecting with `resume = true`: every
//! gap left by the downtime is filled by the replay, so nothing is lost.

mod common;

#[test]
fn reconnects_with_resume_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = &common::run_completed(
        r#"
name = "reconnect-resume"
seed = 13
[target]
protocol = "chat"
[[stages]]
duration = "500ms"
target = 30
[[stages]]
duration = "4s"
target = 30
[rooms]
count = 3
per_client = 2
[[clients]]
name = "mobile"
chat_rate = "4/s"
reconnect_every = "1s"
reconnect_backoff = { initial = "50ms", max = "200ms", jitter = 0.5 }
resume = true
[run]
drain = "1s"
"#,
        dir.path(),
    );
    let c = &r.counters;
    assert!(c.reconnects >= 30, "too few reconnects to judge: {c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.duplicates, 0, "{c:?}");
    // Replays happened and were measured apart from live deliveries.
    assert!(
        r.metrics.contains_key("replay_latency"),
        "{:?}",
        r.metrics.keys()
    );
    let rt = &r.metrics["reconnect_time"];
    assert!(rt.count as u64 >= c.reconnects / 2, "{rt:?} vs {c:?}");
    assert!(c.deliveries_received > 1000, "{c:?}");
    common::assert_schema_valid(dir.path());
}

#[test]
fn reconnects_without_resume_do_not_count_downtime_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::plan(
        r#"
name = "reconnect-no-resume"
seed = 14
[target]
protocol = "chat"
[[stages]]
duration = "3s"
target = 20
[rooms]
count = 2
per_client = 1
[[clients]]
name = "mobile"
chat_rate = "4/s"
reconnect_every = "1s"
resume = false
[run]
drain = "1s"
"#,
        dir.path(),
    );
    let r = common::run(&plan).results;
    let c = &r.counters;
    common::assert_accounting(&r);
    assert!(c.reconnects >= 10, "{c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert!(!r.metrics.contains_key("replay_latency"));
}

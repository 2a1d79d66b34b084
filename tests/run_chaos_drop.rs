//! A server that drops a known share of deliveries: `lost` must match it.

mod common;

#[test]
fn lost_matches_the_injected_drop_share() {
    let dir = tempfile::tempdir().unwrap();
    let r = &common::run_completed(
        r#"
name = "chaos-drop"
seed = 11
[target]
protocol = "chat"
[target.server]
args = ["--chaos-drop", "0.1", "--chaos-seed", "7"]
[[stages]]
duration = "1s"
target = 40
[[stages]]
duration = "3s"
target = 40
[rooms]
count = 4
per_client = 1
[[clients]]
name = "talker"
chat_rate = "5/s"
typing = true
[run]
drain = "1s"
"#,
        dir.path(),
    );
    let c = &r.counters;
    assert!(
        c.deliveries_expected > 3000,
        "too few deliveries to judge: {c:?}"
    );
    let share = c.lost as f64 / c.deliveries_expected as f64;
    // 10% injected; binomial noise on ~5000 deliveries is well under 1%.
    assert!(
        (0.07..=0.13).contains(&share),
        "lost share {share:.4}: {c:?}"
    );
    assert_eq!(c.duplicates, 0, "{c:?}");
    // Acks are not dropped, so every chat is acked.
    assert_eq!(c.acks_received, c.chat_sent, "{c:?}");
    // The file on disk says the same, in the documented schema.
    assert_eq!(common::read_results(dir.path()).counters.lost, c.lost);
    common::assert_schema_valid(dir.path());
}

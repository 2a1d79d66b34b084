//! A server that freezes for D every P. Measured from the intended send
//! time, about D/(2P) of deliveries must exceed D/2 and the p99 must be
//! close to D. The generator keeps sending through the stalls (open model),
//! so its own lateness cannot hide or shrink them.

mod common;

#[test]
fn stall_shows_up_in_share_and_p99() {
    let dir = tempfile::tempdir().unwrap();
    // P = 1 s, D = 200 ms: expected share above 100 ms ≈ 0.1, p99 ≈ 200 ms.
    let r = &common::run_completed(
        r#"
name = "chaos-stall"
seed = 12
[target]
protocol = "chat"
[target.server]
args = ["--chaos-stall", "1s:200ms"]
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
name = "talker"
chat_rate = "8/s"
[run]
drain = "1s"
"#,
        dir.path(),
    );
    let c = &r.counters;
    assert!(c.deliveries_received > 2000, "{c:?}");

    let share = common::share_above(r, "delivery_latency", 100.0);
    assert!(
        (0.05..=0.2).contains(&share),
        "share above D/2 = {share:.3}"
    );
    let p99 = r.metrics["delivery_latency"].p99;
    assert!(
        (120.0..=450.0).contains(&p99),
        "p99 {p99} ms, expected ≈ 200"
    );

    // Open model: sends kept their schedule through the stalls. ~30 clients
    // × 8/s × ~5.25 s ≈ 1260 intended sends, all sent (a stall during a
    // client's join may cost it a first send, which is counted as skipped).
    assert!((900..=1700).contains(&c.chat_sent), "{c:?}");
    assert!(c.chat_skipped_offline * 50 <= c.chat_sent, "{c:?}");
    // The generator was not the one stalling: its own lag stays far below D/2.
    let lag_share = common::share_above(r, "schedule_lag", 100.0);
    assert!(lag_share < 0.01, "generator itself late: {lag_share}");
    // Acks stall too (the server is frozen), measured the same way.
    assert!(
        r.metrics["ack_latency"].max >= 120.0,
        "{:?}",
        r.metrics["ack_latency"]
    );
}

//! Test-only fault injection: each flag produces the fault it documents.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn chaos_drop_leaves_gaps_that_resume_refills() {
    let srv = start(&[
        "--chaos-drop",
        "0.5",
        "--chaos-seed",
        "42",
        "--rate-limit",
        "0",
    ])
    .await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    let n = 40u64;
    for i in 1..=n {
        let ack = a.chat("r", json!(i), "m").await;
        assert_eq!(ack["seq"], i, "the sender is always acked");
    }
    let live: Vec<u64> = b
        .barrier()
        .await
        .iter()
        .map(|v| v["seq"].as_u64().expect("chat"))
        .collect();
    assert!(!live.is_empty() && (live.len() as u64) < n, "{live:?}");
    assert!(live.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        srv.metric("chaos_dropped_total").await as u64 + live.len() as u64,
        n
    );
    // Dropped deliveries are still in history: resume fills every gap.
    b.send(json!({"type":"resume","room":"r","after":0})).await;
    for seq in 1..=n {
        assert_eq!(b.expect("chat").await["seq"], seq);
    }
    assert_eq!(b.expect("resumed").await["complete"], true);
}

#[tokio::test]
async fn chaos_delay_holds_each_delivery_back() {
    let srv = start(&["--chaos-delay", "300ms"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    let t0 = Instant::now();
    a.chat("r", json!(1), "late").await;
    assert_eq!(b.expect("chat").await["text"], "late");
    // A lower bound only: the delay is injected, so it cannot be shorter.
    assert!(
        t0.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn chaos_stall_freezes_but_everything_still_arrives_in_order() {
    let srv = start(&["--chaos-stall", "300ms:150ms"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    for i in 1..=10u64 {
        a.chat("r", json!(i), "s").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for seq in 1..=10 {
        assert_eq!(b.expect("chat").await["seq"], seq);
    }
}

#[tokio::test]
async fn chaos_pad_holds_memory_per_connection() {
    let srv = start(&["--chaos-pad", "1MiB"]).await;
    let before = srv.metric("process_resident_memory_bytes").await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(srv.client("").await);
    }
    let after = srv.metric("process_resident_memory_bytes").await;
    assert!(
        after - before >= 15.0 * 1024.0 * 1024.0,
        "RSS grew only {} bytes",
        after - before
    );
}

#[tokio::test]
async fn chaos_overload_delays_deliveries_above_the_rate() {
    let srv = start(&["--chaos-overload", "2:400ms", "--rate-limit", "0"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    // Below the knee nothing is delayed; push the rate above it.
    for i in 0..20u64 {
        a.chat("r", json!(i), "load").await;
    }
    srv.wait_metric("deliveries_per_second", |v| v > 2.0).await;
    let t0 = Instant::now();
    a.chat("r", json!("probe"), "probe").await;
    loop {
        if b.next().await["id"] == "probe" {
            break;
        }
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(390),
        "{:?}",
        t0.elapsed()
    );
}

//! Limits and liveness: rate limiting and abuse, oversized frames, invalid
//! UTF-8, the connection cap, heartbeat timeouts, and the close codes they use.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wire::ws::{Message as RawMessage, OpCode};

#[tokio::test]
async fn rate_limit_refuses_excess_frames_with_their_id() {
    let srv = start(&[
        "--rate-limit",
        "1",
        "--rate-burst",
        "3",
        "--rate-abuse-limit",
        "1000",
    ])
    .await;
    let mut a = srv.joined("?user=a", "r").await; // the join used one token
    for i in 0..10 {
        a.send(json!({"type":"chat","room":"r","id":i,"text":"x","ts":0}))
            .await;
    }
    let (mut acks, mut limited) = (0, Vec::new());
    for _ in 0..10 {
        let v = a.next().await;
        match v["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(v["code"], "RATE_LIMITED");
                limited.push(v["id"].as_u64().expect("id echoed"));
            }
            _ => panic!("unexpected {v}"),
        }
    }
    // 2 tokens left after the join, plus 1/s refill while sending (slack for a slow machine).
    assert!((2..=6).contains(&acks), "acks {acks}");
    assert!(limited.len() >= 4, "{limited:?}");
    assert_eq!(srv.metric("rate_limited_total").await, limited.len() as f64);
}

#[tokio::test]
async fn repeated_abuse_closes_1008() {
    let srv = start(&[
        "--rate-limit",
        "1",
        "--rate-burst",
        "1",
        "--rate-abuse-limit",
        "5",
    ])
    .await;
    let (mut a, _) = srv.client("?user=a").await;
    for i in 0..20 {
        a.send(json!({"type":"ping","ts":i})).await;
    }
    assert_eq!(a.expect_close().await, 1008);
    assert_eq!(srv.metric("rate_limit_closes_total").await, 1.0);
}

#[tokio::test]
async fn oversized_message_closes_1009() {
    let srv = start(&["--max-message-size", "1KiB"]).await;
    let (mut a, _) = srv.client("").await;
    a.send_text(&format!(
        r#"{{"type":"ping","ts":1,"pad":"{}"}}"#,
        "x".repeat(2000)
    ))
    .await;
    assert_eq!(a.expect("error").await["code"], "TOO_LARGE");
    assert_eq!(a.expect_close().await, 1009);
}

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let srv = start(&[]).await;
    let mut raw = RawClient::connect(srv.addr, "/ws?user=r").await;
    assert!(
        matches!(raw.next().await, Some(RawMessage::Text(_))),
        "welcome"
    );
    raw.send_frame(OpCode::Text, &[b'{', 0xff, 0xfe, b'}'])
        .await;
    assert_eq!(raw.expect_close().await, 1007);
}

#[tokio::test]
async fn client_close_is_echoed_1000() {
    let srv = start(&[]).await;
    let mut raw = RawClient::connect(srv.addr, "/ws").await;
    raw.next().await;
    raw.send_frame(OpCode::Close, &wire::ws::close_payload(1000, "bye"))
        .await;
    assert_eq!(raw.expect_close().await, 1000);
    srv.wait_metric("connections_current", |v| v == 0.0).await;
}

#[tokio::test]
async fn connection_cap_answers_503_but_health_still_works() {
    let srv = start(&["--max-connections", "2"]).await;
    let _a = srv.client("").await;
    let _b = srv.client("").await;
    let (status, body) = refused(&srv.url(""), &[]).await;
    assert_eq!(status, 503);
    assert!(body.contains("limit"));
    assert_eq!(http_get(srv.addr, "/healthz", &[]).await.0, 200);
    drop(_a);
    // A slot frees up once a connection goes away.
    srv.wait_metric("connections_current", |v| v < 2.0).await;
    let mut ok = None;
    for _ in 0..50 {
        if let Ok(c) = Client::connect(&srv.url(""), &[]).await {
            ok = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok.expect("a freed slot").expect("welcome").await;
}

#[tokio::test]
async fn silent_client_is_terminated_by_heartbeat() {
    let srv = start(&[
        "--heartbeat-interval",
        "200ms",
        "--heartbeat-timeout",
        "200ms",
    ])
    .await;
    let mut raw = RawClient::connect(srv.addr, "/ws").await;
    let mut pings = 0;
    loop {
        match raw.next().await.expect("close before EOF") {
            RawMessage::Ping(_) => pings += 1,
            RawMessage::Close(c) => {
                assert_eq!(c.map(|c| c.code), Some(1001));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(pings, 1);
    assert_eq!(srv.metric("heartbeat_timeouts_total").await, 1.0);
}

#[tokio::test]
async fn responsive_client_survives_many_heartbeats() {
    let srv = start(&["--heartbeat-interval", "100ms", "--heartbeat-timeout", "2s"]).await;
    let (mut a, w) = srv.client("").await;
    assert_eq!(w["heartbeat_ms"], 100);
    // Reading lets tungstenite answer the pings.
    assert!(a.try_next(Duration::from_millis(700)).await.is_none());
    a.barrier().await;
    assert_eq!(srv.metric("heartbeat_timeouts_total").await, 0.0);
}

#[tokio::test]
async fn echo_endpoint_is_off_by_default_and_echoes_on_the_same_codec_when_on() {
    let srv = start(&[]).await;
    assert_eq!(http_get(srv.addr, "/echo", &[]).await.0, 404);
    let srv = start(&["--echo"]).await;
    let mut raw = RawClient::connect(srv.addr, "/echo").await;
    raw.send_frame(OpCode::Binary, &[0, 1, 2, 255]).await;
    raw.send_frame(OpCode::Ping, b"p").await;
    raw.send_frame(OpCode::Text, "héllo".as_bytes()).await;
    assert_eq!(
        raw.next().await,
        Some(RawMessage::Binary(bytes::Bytes::from_static(&[
            0, 1, 2, 255
        ])))
    );
    assert_eq!(
        raw.next().await,
        Some(RawMessage::Pong(bytes::Bytes::from_static(b"p")))
    );
    assert_eq!(
        raw.next().await,
        Some(RawMessage::Text(bytes::Bytes::from("héllo")))
    );
    // Violations close with the codec's code, as on /ws.
    raw.send_frame(OpCode::Text, &[0xff]).await;
    assert_eq!(raw.expect_close().await, 1007);
    let mut raw = RawClient::connect(srv.addr, "/echo").await;
    raw.send_frame(OpCode::Close, &wire::ws::close_payload(4001, "bye"))
        .await;
    assert_eq!(raw.expect_close().await, 4001);
}

//! Protocol v1: every row of the client → server table, presence by user,
//! resume (complete and incomplete), and the error frames for bad input.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn welcome_then_join_chat_ack_and_fanout() {
    let srv = start(&[]).await;
    let (mut a, welcome) = srv.client("?user=alice").await;
    assert_eq!(welcome["user"], "alice");
    assert!(welcome["conn"].as_u64().is_some());
    assert_eq!(welcome["heartbeat_ms"], 30_000);
    let joined = a.join("r1").await;
    assert_eq!(joined["seq"], 0);
    assert_eq!(joined["members"], 1);

    let mut b = srv.joined("?user=bob", "r1").await;
    let p = a.expect("presence").await;
    assert_eq!(
        p,
        json!({"type":"presence","room":"r1","user":"bob","status":"online"})
    );

    let ack = a.chat("r1", json!("m-1"), "hello").await;
    assert_eq!(ack["seq"], 1);
    let got = b.expect("chat").await;
    assert_eq!(
        got,
        json!({"type":"chat","room":"r1","seq":1,"from":"alice","id":"m-1","text":"hello","ts":1.5})
    );
    // The sender never gets its own chat back.
    assert!(a.barrier().await.is_empty());

    // `ts` is echoed untouched, whatever JSON number it is.
    a.send_text(r#"{"type":"chat","room":"r1","id":2,"text":"x","ts":1.250e3}"#)
        .await;
    a.expect("ack").await;
    let mut raw = String::new();
    while !raw.contains("1.250e3") {
        b.next().await;
        raw = b.raw_frames.last().cloned().unwrap_or_default();
    }
    assert!(raw.contains(r#""id":2"#));
    drop((a, b));
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn joined_reports_latest_seq_and_member_count() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "room").await;
    for i in 0..3 {
        a.chat("room", json!(i), "t").await;
    }
    let (mut b, _) = srv.client("?user=b").await;
    let j = b.join("room").await;
    assert_eq!(
        (j["seq"].as_u64(), j["members"].as_u64()),
        (Some(3), Some(2))
    );
    // Joining again is idempotent: same answer, no second presence.
    let j = b.join("room").await;
    assert_eq!(j["members"], 2);
    a.expect("presence").await;
    assert!(a.barrier().await.is_empty());
}

#[tokio::test]
async fn leave_sends_left_and_offline_and_stops_delivery() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    b.send(json!({"type":"leave","room":"r"})).await;
    assert_eq!(b.expect("left").await, json!({"type":"left","room":"r"}));
    assert_eq!(
        a.expect("presence").await,
        json!({"type":"presence","room":"r","user":"b","status":"offline"})
    );
    a.chat("r", json!(1), "after leave").await;
    assert!(b.barrier().await.is_empty(), "left member still receives");
    // Leaving again: not in the room.
    b.send(json!({"type":"leave","room":"r"})).await;
    assert_eq!(b.expect("error").await["code"], "NOT_IN_ROOM");
}

#[tokio::test]
async fn disconnect_counts_as_leaving() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    drop(b);
    let p = a.expect("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("b"), Some("offline"))
    );
}

#[tokio::test]
async fn presence_is_per_user_across_two_connections() {
    let srv = start(&[]).await;
    let mut watcher = srv.joined("?user=w", "r").await;
    let mut tab1 = srv.joined("?user=u", "r").await;
    assert_eq!(watcher.expect("presence").await["status"], "online");
    let mut tab2 = srv.joined("?user=u", "r").await;
    // Second tab: no second `online`; members counts connections.
    assert!(watcher.barrier().await.is_empty());
    tab2.send(json!({"type":"leave","room":"r"})).await;
    tab2.expect("left").await;
    assert!(
        watcher.barrier().await.is_empty(),
        "offline while a tab remains"
    );
    // Both tabs still get chat while joined: tab1 gets watcher's chat.
    watcher.chat("r", json!("c"), "hi").await;
    assert_eq!(tab1.expect("chat").await["text"], "hi");
    drop(tab1);
    let p = watcher.expect("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("u"), Some("offline"))
    );
}

#[tokio::test]
async fn typing_reaches_others_only() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    a.send(json!({"type":"typing","room":"r"})).await;
    assert_eq!(
        b.expect("typing").await,
        json!({"type":"typing","room":"r","user":"a"})
    );
    assert!(a.barrier().await.is_empty());
    // Typing is never stored: a resume replays nothing.
    b.send(json!({"type":"resume","room":"r","after":0})).await;
    let r = b.expect("resumed").await;
    assert_eq!(
        (r["replayed"].as_u64(), r["complete"].as_bool()),
        (Some(0), Some(true))
    );
}

#[tokio::test]
async fn ping_gets_pong_with_ts_untouched() {
    let srv = start(&[]).await;
    let (mut a, _) = srv.client("").await;
    a.send_text(r#"{"type":"ping","ts":123456789.125}"#).await;
    a.expect("pong").await;
    assert!(a.raw_frames.last().unwrap().contains("123456789.125"));
}

#[tokio::test]
async fn resume_complete_and_incomplete() {
    let srv = start(&["--history-len", "5"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    for i in 1..=8 {
        a.chat("r", json!(i), &format!("m{i}")).await;
    }
    // History keeps seq 4..=8. After 5: 6,7,8 replayed, complete.
    a.send(json!({"type":"resume","room":"r","after":5})).await;
    for seq in 6..=8 {
        let c = a.expect("chat").await;
        assert_eq!(c["seq"], seq);
        assert_eq!(c["text"], format!("m{seq}"));
        assert_eq!(c["from"], "a");
    }
    let r = a.expect("resumed").await;
    assert_eq!(
        r,
        json!({"type":"resumed","room":"r","replayed":3,"complete":true})
    );
    // After 1: seq 2 and 3 are gone, so incomplete, but 4..=8 are replayed.
    a.send(json!({"type":"resume","room":"r","after":1})).await;
    for seq in 4..=8 {
        assert_eq!(a.expect("chat").await["seq"], seq);
    }
    let r = a.expect("resumed").await;
    assert_eq!(
        (r["replayed"].as_u64(), r["complete"].as_bool()),
        (Some(5), Some(false))
    );
    // Up to date: nothing to replay, complete.
    a.send(json!({"type":"resume","room":"r","after":8})).await;
    let r = a.expect("resumed").await;
    assert_eq!(
        (r["replayed"].as_u64(), r["complete"].as_bool()),
        (Some(0), Some(true))
    );
}

#[tokio::test]
async fn resume_after_reconnect_refills_a_gap() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    a.chat("r", json!(1), "one").await;
    assert_eq!(b.expect("chat").await["seq"], 1);
    drop(b);
    assert_eq!(a.expect("presence").await["status"], "offline");
    a.chat("r", json!(2), "two").await;
    a.chat("r", json!(3), "three").await;
    let mut b = srv.joined("?user=b", "r").await;
    b.send(json!({"type":"resume","room":"r","after":1})).await;
    assert_eq!(b.expect("chat").await["text"], "two");
    assert_eq!(b.expect("chat").await["text"], "three");
    assert_eq!(b.expect("resumed").await["complete"], true);
}

#[tokio::test]
async fn bad_frames_get_error_codes_and_keep_the_connection() {
    let srv = start(&[
        "--max-text-len",
        "16",
        "--max-room-len",
        "8",
        "--max-rooms-per-conn",
        "2",
    ])
    .await;
    let (mut a, _) = srv.client("?user=a").await;
    let cases: Vec<(&str, &str, Option<serde_json::Value>)> = vec![
        ("{not json", "PARSE_ERROR", None),
        (
            r#"{"type":"dance","id":"d1"}"#,
            "INVALID_MESSAGE",
            Some(json!("d1")),
        ),
        (r#"{"room":"r"}"#, "INVALID_MESSAGE", None),
        (
            r#"{"type":"chat","room":"r","id":5,"text":"x"}"#,
            "INVALID_MESSAGE",
            Some(json!(5)),
        ),
        (
            r#"{"type":"chat","room":"r","id":6,"text":"x","ts":"yesterday"}"#,
            "INVALID_MESSAGE",
            Some(json!(6)),
        ),
        (
            r#"{"type":"chat","room":"r","id":7,"text":"x","ts":1}"#,
            "NOT_IN_ROOM",
            Some(json!(7)),
        ),
        (r#"{"type":"typing","room":"r"}"#, "NOT_IN_ROOM", None),
        (
            r#"{"type":"resume","room":"r","after":0}"#,
            "NOT_IN_ROOM",
            None,
        ),
        (
            r#"{"type":"join","room":"much-too-long"}"#,
            "INVALID_MESSAGE",
            None,
        ),
        (r#"{"type":"join","room":""}"#, "INVALID_MESSAGE", None),
        (r#"{"type":"auth","token":"x"}"#, "INVALID_MESSAGE", None),
    ];
    for (frame, code, id) in cases {
        a.send_text(frame).await;
        let e = a.expect("error").await;
        assert_eq!(e["code"], code, "for {frame}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        match id {
            Some(id) => assert_eq!(e["id"], id, "for {frame}"),
            None => assert!(e.get("id").is_none(), "for {frame}: {e}"),
        }
    }
    a.join("r").await;
    a.send(json!({"type":"chat","room":"r","id":"long","text":"x".repeat(17),"ts":1}))
        .await;
    let e = a.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("TOO_LARGE"), Some("long"))
    );
    a.join("r2").await;
    a.send(json!({"type":"join","room":"r3"})).await;
    assert_eq!(a.expect("error").await["code"], "INVALID_MESSAGE");
    // Binary frames are refused with an error, not silently.
    a.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await
    .unwrap();
    assert_eq!(a.expect("error").await["code"], "INVALID_MESSAGE");
    // Still alive after all of that.
    a.chat("r", json!("ok"), "fine").await;
    assert!(srv.metric("error_frames_total").await >= 14.0);
}

use futures_util::SinkExt;

#[tokio::test]
async fn http_routes_health_metrics_and_404() {
    let srv = start(&[]).await;
    let (status, body) = http_get(srv.addr, "/healthz", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let _a = srv.joined("?user=a", "lobby").await;
    let (status, body) = http_get(srv.addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    for name in [
        "connections_current",
        "connections_total",
        "frames_in_total",
        "frames_out_total",
        "deliveries_total",
        "rooms_current",
        "rate_limited_total",
        "slow_consumer_closes_total",
        "heartbeat_timeouts_total",
        "auth_failures_total",
        "process_resident_memory_bytes",
    ] {
        assert!(metric_value(&body, name).is_some(), "missing {name}");
    }
    assert_eq!(metric_value(&body, "connections_current"), Some(1.0));
    assert_eq!(metric_value(&body, "rooms_current"), Some(1.0));
    assert!(metric_value(&body, "process_resident_memory_bytes").unwrap() > 0.0);
    assert_eq!(http_get(srv.addr, "/nope", &[]).await.0, 404);
    // /ws without an upgrade is a plain 400.
    assert_eq!(http_get(srv.addr, "/ws", &[]).await.0, 400);
}

#[tokio::test]
async fn empty_rooms_keep_history_for_the_ttl_then_go() {
    let srv = start(&["--room-ttl", "300ms"]).await;
    let mut a = srv.joined("?user=a", "kept").await;
    a.chat("kept", json!(1), "remember me").await;
    srv.joined("?user=a", "empty").await; // no history: dropped at once when left
    a.send(json!({"type":"leave","room":"kept"})).await;
    a.expect("left").await;
    srv.wait_metric("rooms_current", |v| v == 1.0).await;
    // Within the TTL the history is still there.
    a.join("kept").await;
    a.send(json!({"type":"resume","room":"kept","after":0}))
        .await;
    assert_eq!(a.expect("chat").await["text"], "remember me");
    assert_eq!(a.expect("resumed").await["complete"], true);
    a.send(json!({"type":"leave","room":"kept"})).await;
    a.expect("left").await;
    srv.wait_metric("rooms_current", |v| v == 0.0).await;
    let j = a.join("kept").await;
    assert_eq!(j["seq"], 0, "a forgotten room starts over");
}

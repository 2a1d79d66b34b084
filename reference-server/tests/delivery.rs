//! Delivery: batching on and off, backpressure against a reader that stops,
//! and graceful shutdown (1012) of an in-process server.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Sends `n` chats to `room` in one write, so they reach the server together.
async fn burst(c: &mut Client, room: &str, n: u64, text: &str) {
    for i in 1..=n {
        let v = json!({"type":"chat","room":room,"id":i,"text":text,"ts":i});
        c.ws.feed(Message::text(v.to_string())).await.unwrap();
    }
    c.ws.flush().await.unwrap();
}

#[tokio::test]
async fn batching_coalesces_in_order_up_to_batch_max() {
    let srv = start(&["--batch-window", "300ms", "--batch-max", "4"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    burst(&mut a, "r", 10, "hi").await;
    for seq in 1..=10 {
        let c = b.expect("chat").await;
        assert_eq!(c["seq"], seq);
    }
    let batches: Vec<serde_json::Value> = b
        .raw_frames
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "batch")
        .collect();
    assert!(!batches.is_empty(), "no batch frames: {:?}", b.raw_frames);
    for batch in &batches {
        let n = batch["messages"].as_array().unwrap().len();
        assert!((2..=4).contains(&n), "batch of {n}");
    }
    // The sender's acks are batched too.
    for _ in 0..10 {
        a.expect("ack").await;
    }
    assert!(srv.metric("frames_out_total").await < srv.metric("messages_out_total").await);
}

#[tokio::test]
async fn without_batching_every_message_is_its_own_frame() {
    let srv = start(&[]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    burst(&mut a, "r", 10, "hi").await;
    for seq in 1..=10 {
        assert_eq!(b.expect("chat").await["seq"], seq);
    }
    assert!(b
        .raw_frames
        .iter()
        .all(|f| !f.contains(r#""type":"batch""#)));
    assert_eq!(
        srv.metric("frames_out_total").await,
        srv.metric("messages_out_total").await
    );
}

/// The next message that is not the slow reader `x` going offline.
async fn skip_offline(c: &mut Client) -> serde_json::Value {
    loop {
        let v = c.next().await;
        if v["type"] == "presence" && v["user"] == "x" && v["status"] == "offline" {
            continue;
        }
        return v;
    }
}

#[tokio::test]
async fn slow_consumer_is_closed_1013_while_others_get_everything() {
    let srv = start(&[
        "--rate-limit",
        "0",
        "--max-queue-frames",
        "64",
        "--max-queue-bytes",
        "512KiB",
    ])
    .await;
    let mut sender = srv.joined("?user=s", "r").await;
    let mut fast = srv.joined("?user=f", "r").await;
    sender.expect("presence").await;
    // The slow reader joins, then never reads until the server gives up on it.
    let mut slow = RawClient::connect_small_rcvbuf(srv.addr, "/ws?user=x").await;
    slow.send_frame(wire::ws::OpCode::Text, br#"{"type":"join","room":"r"}"#)
        .await;
    sender.expect("presence").await;
    fast.expect("presence").await;

    let text = "y".repeat(16 * 1024 - 64);
    // ~13 MB in steps the fast reader keeps up with: far beyond the slow
    // reader's socket buffers plus its 512 KiB queue.
    let (steps, step) = (100u64, 8u64);
    let mut slow_closed = false;
    for k in 0..steps {
        for i in 1..=step {
            let id = k * step + i;
            let v = json!({"type":"chat","room":"r","id":id,"text":text,"ts":id});
            sender.ws.feed(Message::text(v.to_string())).await.unwrap();
        }
        sender.ws.flush().await.unwrap();
        for i in 1..=step {
            // The slow reader's `offline` may arrive at any point once it is closed.
            assert_eq!(skip_offline(&mut sender).await["type"], "ack");
            let c = skip_offline(&mut fast).await;
            assert_eq!(c["type"], "chat");
            assert_eq!(c["seq"], k * step + i, "the fast reader saw a gap");
        }
        if !slow_closed && srv.metric("slow_consumer_closes_total").await == 1.0 {
            // Reading again right away (the server lingers a moment for a
            // slow reader), it finds the old data and then the 1013 close.
            assert_eq!(slow.expect_close().await, 1013);
            slow_closed = true;
        }
    }
    assert!(slow_closed, "the slow reader was never closed");
    srv.wait_metric("connections_current", |v| v == 2.0).await;
}

#[tokio::test]
async fn typing_is_shed_before_chat_under_backpressure() {
    let srv = start(&[
        "--rate-limit",
        "0",
        "--max-queue-frames",
        "100000",
        "--max-queue-bytes",
        "64KiB",
    ])
    .await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut slow = RawClient::connect_small_rcvbuf(srv.addr, "/ws?user=x").await;
    slow.send_frame(wire::ws::OpCode::Text, br#"{"type":"join","room":"r"}"#)
        .await;
    a.expect("presence").await;
    let big = "z".repeat(16 * 1024 - 64);
    // Typing floods interleaved with ~6.4 MB of chat (more than the server's
    // socket send buffer takes): once the queue is half full, typing is dropped.
    for round in 0..800u64 {
        a.ws.feed(Message::text(
            json!({"type":"typing","room":"r"}).to_string(),
        ))
        .await
        .unwrap();
        if round % 2 == 0 {
            let v = json!({"type":"chat","room":"r","id":round,"text":big,"ts":0});
            a.ws.feed(Message::text(v.to_string())).await.unwrap();
        }
    }
    a.ws.flush().await.unwrap();
    srv.wait_metric("typing_shed_total", |v| v > 0.0).await;
    drop(slow);
}

#[tokio::test]
async fn graceful_shutdown_sends_1012_after_queued_messages() {
    let srv = start(&["--drain-timeout", "3s"]).await;
    let mut a = srv.joined("?user=a", "r").await;
    let mut b = srv.joined("?user=b", "r").await;
    a.expect("presence").await;
    a.chat("r", json!(1), "last words").await;
    let addr = srv.addr;
    let stopping = tokio::spawn(srv.shutdown());
    assert_eq!(b.expect("chat").await["text"], "last words");
    assert_eq!(b.expect_close().await, 1012);
    assert_eq!(a.expect_close().await, 1012);
    stopping.await.unwrap().expect("run returns Ok");
    // Not accepting any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_gives_up_on_unresponsive_clients_after_drain_timeout() {
    let srv = start(&["--drain-timeout", "300ms"]).await;
    // Holds the connection but never reads or answers the close.
    let _silent = RawClient::connect(srv.addr, "/ws").await;
    tokio::time::timeout(Duration::from_secs(10), srv.shutdown())
        .await
        .expect("bounded by the drain timeout")
        .unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_its_replies_is_closed_1013() {
    let srv = start(&["--rate-limit", "0", "--max-queue-frames", "64"]).await;
    let mut raw = RawClient::connect_small_rcvbuf(srv.addr, "/ws?user=flood").await;
    // Each pong echoes a 1000-digit `ts`: ~10 MB of replies nobody reads.
    let ping = format!(r#"{{"type":"ping","ts":1.{}}}"#, "7".repeat(1000));
    let frame = wire::ws::client_frame(wire::ws::OpCode::Text, ping.as_bytes());
    let mut burst = Vec::with_capacity(frame.len() * 100);
    for _ in 0..100 {
        burst.extend_from_slice(&frame);
    }
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for _ in 0..100 {
            if raw.stream.write_all(&burst).await.is_err() {
                break;
            }
        }
        raw
    });
    srv.wait_metric("slow_consumer_closes_total", |v| v == 1.0)
        .await;
    let mut raw = writer.await.unwrap();
    // The server closed while the client was still writing, so the kernel
    // may reset the connection before the 1013 frame is read; if a close
    // frame does arrive, it says 1013.
    while let Some(m) = raw.next_or_reset().await {
        if let wire::ws::Message::Close(c) = m {
            assert_eq!(c.map(|c| c.code), Some(1013));
            break;
        }
    }
    srv.wait_metric("connections_current", |v| v == 0.0).await;
}

//! Hostile input against the reference server, in raw bytes: every case
//! asserts the close code or HTTP status, that a fresh client is still
//! served afterwards, and that the server's RSS stayed bounded. Also the
//! regression tests for the defects of issue #13 (close-wait memory DoS,
//! slowloris handshakes, pipelined frames, binary rate limiting, lingering
//! close, `id` limits).
//!
//! The server runs in this test process, so "RSS" is the process's, shared
//! by the cases running in parallel: the bound is generous (a defect like
//! the close-wait buffer grew by gigabytes), never a tight figure.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::ws::{close_code, close_payload, encode_frame, Decoder, Message, OpCode, Role};

/// Process RSS may grow by at most this much during one case.
const RSS_BOUND: f64 = 256.0 * 1024.0 * 1024.0;

/// A hostile case's server, with the RSS it started at.
struct Case {
    srv: TestServer,
    rss0: f64,
}

impl Case {
    async fn start(flags: &[&str]) -> Case {
        let srv = start(flags).await;
        let rss0 = srv.metric("process_resident_memory_bytes").await;
        Case { srv, rss0 }
    }

    /// The checks every case ends with: a fresh client is served (welcome,
    /// join, chat ack) and RSS did not run away.
    async fn still_serves(&self) {
        let mut c = self.srv.joined("?user=fresh", "after").await;
        c.send(json!({"type":"chat","room":"after","id":"f1","text":"hi","ts":1}))
            .await;
        assert_eq!(c.expect("ack").await["id"], "f1");
        let rss = self.srv.metric("process_resident_memory_bytes").await;
        assert!(
            rss - self.rss0 < RSS_BOUND,
            "RSS grew from {} to {} MiB",
            self.rss0 / 1048576.0,
            rss / 1048576.0
        );
    }

    async fn bad_input(&self, kind: &str) -> f64 {
        self.srv
            .metric(&format!("bad_input_total{{kind=\"{kind}\"}}"))
            .await
    }
}

fn upgrade_request(addr: SocketAddr, target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A masked client frame with explicit first byte (FIN, RSV, opcode).
fn raw_frame(b0: u8, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(
        OpCode::Text,
        payload,
        Some([0x11, 0x22, 0x33, 0x44]),
        &mut out,
    );
    out[0] = b0;
    out
}

/// A raw upgraded connection: the 101 head is consumed, frames decoded.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
    dec: Decoder,
}

impl Raw {
    /// Sends the upgrade request followed by `pipelined` in one write.
    async fn open(addr: SocketAddr, target: &str, pipelined: &[u8]) -> Raw {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req = upgrade_request(addr, target).into_bytes();
        req.extend_from_slice(pipelined);
        s.write_all(&req).await.expect("write");
        let mut buf = BytesMut::new();
        loop {
            if let Some(end) = find_head_end(&buf) {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                let _ = buf.split_to(end);
                break;
            }
            let n = tokio::time::timeout(STEP, s.read_buf(&mut buf))
                .await
                .expect("101 in time")
                .expect("read");
            assert!(n > 0, "EOF before the 101");
        }
        Raw {
            s,
            buf,
            dec: Decoder::new(Role::Client, 1 << 24),
        }
    }

    /// Opens `/ws?user=...` and reads the welcome.
    async fn welcomed(addr: SocketAddr, user: &str) -> Raw {
        let mut r = Raw::open(addr, &format!("/ws?user={user}"), b"").await;
        assert_eq!(r.json().await["type"], "welcome");
        r
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("write");
    }

    /// The next message; None at EOF or reset.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(m) = self.dec.decode(&mut self.buf).expect("valid server frames") {
                return Some(m);
            }
            match tokio::time::timeout(STEP, self.s.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return None,
                Err(_) => panic!("nothing from the server within {STEP:?}"),
            }
        }
    }

    /// The next text message as JSON (pings skipped).
    async fn json(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(t)) => return serde_json::from_slice(&t).expect("JSON"),
                Some(Message::Ping(_)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code and the texts before it.
    async fn close_code(&mut self) -> (u16, Vec<Value>) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Some(Message::Close(c)) => return (c.map_or(1005, |c| c.code), texts),
                Some(Message::Text(t)) => texts.push(serde_json::from_slice(&t).expect("JSON")),
                Some(_) => {}
                None => panic!("connection ended without a close frame (after {texts:?})"),
            }
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Reads a plain HTTP answer to whatever was sent; returns the status.
async fn http_status(s: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(STEP * 3, s.read_to_end(&mut buf))
        .await
        .expect("answer in time");
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

// ---- defects of issue #13, item 5 ----

#[tokio::test]
async fn close_wait_discards_input_within_a_budget() {
    let case = Case::start(&[]).await;
    let addr = case.srv.addr;
    // Eight peers each send an RSV1 frame, then up to 64 MB of junk as fast
    // as they can (512 MB in all, over the RSS bound). Before the fix the
    // close wait buffered all of it; now each is dropped after its budget.
    let floods = (0..8).map(|_| {
        tokio::spawn(async move {
            let mut r = Raw::welcomed(addr, "flood").await;
            r.send(&raw_frame(0xC1, b"x")).await;
            let junk = vec![0xA5u8; 64 * 1024];
            for _ in 0..1024 {
                if r.s.write_all(&junk).await.is_err() {
                    break; // the server gave up on us: reset
                }
            }
        })
    });
    for f in floods {
        f.await.unwrap();
    }
    case.srv
        .wait_metric("bad_input_total{kind=\"close_flood\"}", |v| v >= 1.0)
        .await;
    // A peer that sends a little after its violation still reads the close.
    let mut r = Raw::welcomed(addr, "a").await;
    r.send(&raw_frame(0xC1, b"x")).await;
    r.send(&vec![0u8; 100 * 1024]).await;
    assert_eq!(r.close_code().await.0, close_code::PROTOCOL_ERROR);
    case.still_serves().await;
}

#[tokio::test]
async fn handshake_sockets_do_not_hold_connection_slots() {
    let case = Case::start(&["--max-connections", "2"]).await;
    // Idle sockets that never send a byte...
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(case.srv.addr).await.unwrap());
    }
    // ...do not stop real clients: the cap counts upgraded connections.
    let _a = case.srv.client("?user=a").await;
    let _b = case.srv.client("?user=b").await;
    let (status, _) = refused(&case.srv.url(""), &[]).await;
    assert_eq!(status, 503, "the third upgrade is over the cap");
    assert!(case.bad_input("connection_limit").await >= 1.0);
}

#[tokio::test]
async fn slowloris_is_bounded_by_the_handshake_budget_and_timeout() {
    let case = Case::start(&["--max-handshakes", "8", "--handshake-timeout", "500ms"]).await;
    let addr = case.srv.addr;
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    // Over the budget, a new socket is answered 503 without being read
    // (or 408 if the slow heads already timed out on a loaded machine).
    let mut over = TcpStream::connect(addr).await.unwrap();
    let status = http_status(&mut over).await;
    assert!(status == 503 || status == 408, "{status}");
    // The slow heads get 408 once the handshake timeout passes.
    for s in &mut idle {
        assert_eq!(http_status(s).await, 408);
    }
    assert!(case.bad_input("handshake_timeout").await >= 8.0);
    if status == 503 {
        assert!(case.bad_input("handshake_budget").await >= 1.0);
    }
    case.still_serves().await;
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let case = Case::start(&[]).await;
    let mut s = TcpStream::connect(case.srv.addr).await.unwrap();
    let mut req = String::from("GET /ws HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        req.push_str(&format!("X-Pad-{i}: {}\r\n", "p".repeat(1000)));
    }
    req.push_str("\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    assert_eq!(http_status(&mut s).await, 431);
    assert!(case.bad_input("http_too_large").await >= 1.0);
    case.still_serves().await;
}

#[tokio::test]
async fn frames_pipelined_with_the_upgrade_are_decoded_at_once() {
    let case = Case::start(&[]).await;
    let mut ping = BytesMut::new();
    encode_frame(OpCode::Ping, b"early", Some([1, 2, 3, 4]), &mut ping);
    let mut r = Raw::open(case.srv.addr, "/ws?user=p", &ping).await;
    let mut got_pong = false;
    let mut got_welcome = false;
    while !(got_pong && got_welcome) {
        match r.next().await.expect("frames without sending more") {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"early");
                got_pong = true;
            }
            Message::Text(t) => {
                let v: Value = serde_json::from_slice(&t).unwrap();
                assert_eq!(v["type"], "welcome");
                got_welcome = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    case.still_serves().await;
}

#[tokio::test]
async fn first_message_auth_pipelined_with_the_upgrade_is_handled() {
    let srv = start(&["--jwt-secret", SECRET]).await;
    let auth = json!({"type":"auth","token":token("u1", None, 60)}).to_string();
    let mut frame = BytesMut::new();
    encode_frame(
        OpCode::Text,
        auth.as_bytes(),
        Some([5, 6, 7, 8]),
        &mut frame,
    );
    let mut r = Raw::open(srv.addr, "/ws", &frame).await;
    let v = r.json().await;
    assert_eq!(v["type"], "welcome", "{v}");
    assert_eq!(v["user"], "u1");
}

#[tokio::test]
async fn binary_frames_count_toward_the_rate_limit() {
    let case = Case::start(&[
        "--rate-limit",
        "1",
        "--rate-burst",
        "3",
        "--rate-abuse-limit",
        "1000",
    ])
    .await;
    let mut r = Raw::welcomed(case.srv.addr, "bin").await;
    let mut burst = BytesMut::new();
    for _ in 0..20 {
        encode_frame(OpCode::Binary, b"\x00\x01", Some([9, 9, 9, 9]), &mut burst);
    }
    r.send(&burst).await;
    let mut limited = 0;
    for _ in 0..20 {
        let v = r.json().await;
        assert_eq!(v["type"], "error");
        if v["code"] == "RATE_LIMITED" {
            limited += 1;
        } else {
            assert_eq!(v["code"], "INVALID_MESSAGE");
        }
    }
    assert!(
        limited >= 10,
        "only {limited} of 20 binary frames were limited"
    );
    assert!(case.srv.metric("rate_limited_total").await >= 10.0);
    case.still_serves().await;
}

#[tokio::test]
async fn peer_still_writing_an_oversized_message_sees_1009() {
    let case = Case::start(&[]).await; // 64 KiB limit
    let mut r = Raw::welcomed(case.srv.addr, "big").await;
    // 200 KB in one frame, written in full before reading anything.
    let payload = format!(
        r#"{{"type":"ping","ts":1,"pad":"{}"}}"#,
        "x".repeat(200_000)
    );
    let mut frame = BytesMut::new();
    encode_frame(
        OpCode::Text,
        payload.as_bytes(),
        Some([1, 1, 1, 1]),
        &mut frame,
    );
    for chunk in frame.chunks(8 * 1024) {
        r.send(chunk).await;
    }
    let (code, texts) = r.close_code().await;
    assert_eq!(code, close_code::TOO_BIG);
    assert!(texts.iter().any(|t| t["code"] == "TOO_LARGE"), "{texts:?}");
    assert!(case.bad_input("ws_too_big").await >= 1.0);
    case.still_serves().await;
}

#[tokio::test]
async fn slow_consumer_that_reads_late_still_sees_1013() {
    let case = Case::start(&[
        "--rate-limit",
        "0",
        "--max-queue-frames",
        "64",
        "--max-queue-bytes",
        "64KiB",
    ])
    .await;
    let srv = &case.srv;
    let mut slow = RawClient::connect_small_rcvbuf(srv.addr, "/ws?user=x").await;
    slow.send_frame(OpCode::Text, br#"{"type":"join","room":"r"}"#)
        .await;
    let mut sender = srv.joined("?user=s", "r").await;
    let text = "y".repeat(8 * 1024);
    let mut n = 0u64;
    while srv.metric("slow_consumer_closes_total").await < 1.0 {
        assert!(n < 20_000, "the slow reader was never closed");
        for _ in 0..16 {
            n += 1;
            let v = json!({"type":"chat","room":"r","id":n,"text":text,"ts":n});
            sender.send(v).await;
        }
        while sender.try_next(Duration::from_millis(1)).await.is_some() {}
    }
    // The slow reader wakes up a second later: it reads its old data and
    // then, whenever it gets there, the 1013 close.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(slow.expect_close().await, close_code::TRY_AGAIN_LATER);
    case.still_serves().await;
}

#[tokio::test]
async fn chat_id_is_length_limited_and_errors_never_echo_non_scalar_ids() {
    let case = Case::start(&[]).await;
    let mut c = case.srv.joined("?user=i", "r").await;
    let long = "i".repeat(60_000);
    c.send(json!({"type":"chat","room":"r","id":long,"text":"x","ts":1}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(e["code"], "INVALID_MESSAGE");
    assert!(e.get("id").is_none(), "a 60 KB id was echoed");
    // A deeply nested `id` on a frame that fails is not reflected either.
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    c.send_text(&format!(r#"{{"type":"leave","room":"nope","id":{deep}}}"#))
        .await;
    let e = c.expect("error").await;
    assert!(e.get("id").is_none(), "non-scalar id echoed: {e}");
    // A short scalar id still is.
    c.send(json!({"type":"leave","room":"nope","id":"k1"}))
        .await;
    assert_eq!(c.expect("error").await["id"], "k1");
    case.still_serves().await;
}

// ---- item 4: the hostile-input list ----

/// Sends `bytes` after the welcome and returns the close code.
async fn close_for(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let mut r = Raw::welcomed(addr, "h").await;
    r.send(bytes).await;
    r.close_code().await.0
}

#[tokio::test]
async fn frame_level_violations_close_with_the_right_code() {
    let case = Case::start(&[]).await;
    let addr = case.srv.addr;
    let mut unmasked = BytesMut::new();
    encode_frame(
        OpCode::Text,
        br#"{"type":"ping","ts":1}"#,
        None,
        &mut unmasked,
    );
    let mut huge = BytesMut::new();
    huge.put_u8(0x82);
    huge.put_u8(0xFF);
    huge.put_u64(1 << 63);
    huge.put_slice(&[1, 2, 3, 4]);
    let mut frag_ping = raw_frame(0x09, b"p"); // ping without FIN
    frag_ping[0] = 0x09;
    let mut long_ping = BytesMut::new();
    encode_frame(
        OpCode::Ping,
        &[b'p'; 126],
        Some([1, 2, 3, 4]),
        &mut long_ping,
    );
    let mut bad_utf8 = BytesMut::new();
    encode_frame(
        OpCode::Text,
        &[b'"', 0xC3, 0x28, b'"'],
        Some([4, 3, 2, 1]),
        &mut bad_utf8,
    );
    let mut one_byte_close = BytesMut::new();
    encode_frame(
        OpCode::Close,
        &[0x03],
        Some([1, 2, 3, 4]),
        &mut one_byte_close,
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("2^63 length", huge.to_vec(), 1002),
        ("unmasked client frame", unmasked.to_vec(), 1002),
        ("RSV1", raw_frame(0xC1, b"{}").to_vec(), 1002),
        ("RSV2", raw_frame(0xA1, b"{}").to_vec(), 1002),
        ("RSV3", raw_frame(0x91, b"{}").to_vec(), 1002),
        ("opcode 0x3", raw_frame(0x83, b"x").to_vec(), 1002),
        ("opcode 0xB", raw_frame(0x8B, b"x").to_vec(), 1002),
        ("fragmented ping", frag_ping.to_vec(), 1002),
        ("ping of 126 bytes", long_ping.to_vec(), 1002),
        ("invalid UTF-8", bad_utf8.to_vec(), 1007),
        ("1-byte close payload", one_byte_close.to_vec(), 1002),
        (
            "continuation without a message",
            raw_frame(0x80, b"x").to_vec(),
            1002,
        ),
    ];
    for (what, bytes, want) in &cases {
        assert_eq!(close_for(addr, bytes).await, *want, "{what}");
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
        let mut f = BytesMut::new();
        encode_frame(
            OpCode::Close,
            &close_payload(code, ""),
            Some([1, 2, 3, 4]),
            &mut f,
        );
        assert_eq!(close_for(addr, &f).await, 1002, "close code {code}");
    }
    assert!(case.bad_input("ws_protocol").await >= 19.0);
    assert!(case.bad_input("ws_invalid_utf8").await >= 1.0);
    case.still_serves().await;
}

#[tokio::test]
async fn endless_continuations_are_bounded_by_max_message_size() {
    let case = Case::start(&["--max-message-size", "256KiB"]).await;
    let mut r = Raw::welcomed(case.srv.addr, "cont").await;
    r.send(&raw_frame(0x01, b"[")).await; // text, no FIN
    let chunk = raw_frame(0x00, &[b' '; 4096]); // continuation, no FIN
    let mut sent = 0usize;
    let mut closed = None;
    // Far more than the limit unless the server stops us: 64 MB.
    for _ in 0..16_384 {
        if r.s.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
        if sent > 512 * 1024 {
            closed = Some(r.close_code().await.0);
            break;
        }
    }
    assert_eq!(closed, Some(close_code::TOO_BIG), "after {sent} bytes");
    case.still_serves().await;
}

#[tokio::test]
async fn deeply_nested_json_gets_an_error_frame_not_a_crash() {
    let case = Case::start(&["--max-message-size", "1MiB"]).await;
    let mut c = case.srv.joined("?user=n", "r").await;
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    c.send_text(&deep).await;
    assert_eq!(c.expect("error").await["code"], "PARSE_ERROR");
    let obj = format!(
        r#"{{"type":"ping","ts":1,"x":{}1{}}}"#,
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    c.send_text(&obj).await;
    // Nesting inside an unknown field is skipped without recursion.
    assert_eq!(c.expect("pong").await["ts"], 1);
    let chat = format!(
        r#"{{"type":"chat","room":"r","id":1,"ts":1,"text":{}"x"{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    c.send_text(&chat).await;
    assert_eq!(c.expect("error").await["code"], "PARSE_ERROR");
    assert!(case.bad_input("json").await >= 2.0);
    case.still_serves().await;
}

#[tokio::test]
async fn one_client_joining_10k_rooms_is_capped() {
    let case = Case::start(&["--rate-limit", "0"]).await;
    let mut r = Raw::welcomed(case.srv.addr, "rooms").await;
    let mut burst = BytesMut::new();
    for i in 0..10_000 {
        let j = format!(r#"{{"type":"join","room":"r{i}"}}"#);
        encode_frame(OpCode::Text, j.as_bytes(), Some([1, 2, 3, 4]), &mut burst);
    }
    // Written while reading, so neither side's buffers fill up.
    let (mut rd, mut wr) = r.s.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&burst).await.map(|_| wr) });
    let mut buf = std::mem::take(&mut r.buf);
    let (mut joined, mut refused) = (0, 0);
    while joined + refused < 10_000 {
        if let Some(m) = r.dec.decode(&mut buf).unwrap() {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_slice(&t).unwrap();
                match v["type"].as_str() {
                    Some("joined") => joined += 1,
                    Some("error") => refused += 1,
                    _ => {}
                }
            }
            continue;
        }
        let n = tokio::time::timeout(STEP, rd.read_buf(&mut buf))
            .await
            .expect("answers in time")
            .unwrap();
        assert!(n > 0, "closed after {joined} joins and {refused} refusals");
    }
    let _wr = writer.await.unwrap().unwrap();
    assert_eq!(joined, 100, "the default --max-rooms-per-conn");
    assert_eq!(refused, 9_900);
    assert!(case.srv.metric("rooms_current").await <= 101.0);
    case.still_serves().await;
}

fn forged_tokens() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = format!(r#"{{"sub":"mallory","exp":{}}}"#, now_secs() + 600);
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
    let good = token("mallory", None, 600);
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = b64(r#"{"sub":"admin","exp":9999999999}"#);
    parts[1] = &forged_payload;
    let forged = parts.join(".");
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub":"mallory","exp": now_secs() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret"),
    )
    .unwrap();
    vec![
        ("alg none", none),
        ("forged payload", forged),
        ("wrong key", other_key),
        ("expired", token("mallory", None, -120)),
        ("garbage", "a.b.c".into()),
    ]
}

#[tokio::test]
async fn bad_jwts_are_refused_on_upgrade_and_in_the_first_frame() {
    let srv = start(&["--jwt-secret", SECRET]).await;
    for (what, t) in forged_tokens() {
        let (status, _) = refused(&srv.url(&format!("?token={t}")), &[]).await;
        assert_eq!(status, 401, "{what} on the upgrade");
        let auth = json!({"type":"auth","token":t}).to_string();
        let mut frame = BytesMut::new();
        encode_frame(
            OpCode::Text,
            auth.as_bytes(),
            Some([1, 2, 3, 4]),
            &mut frame,
        );
        let mut r = Raw::open(srv.addr, "/ws", &frame).await;
        let (code, texts) = r.close_code().await;
        assert_eq!(code, close_code::POLICY, "{what} in the auth frame");
        assert!(
            texts.iter().any(|t| t["code"] == "UNAUTHORIZED"),
            "{what}: {texts:?}"
        );
    }
    assert!(srv.metric("bad_input_total{kind=\"auth\"}").await >= 5.0);
    // A valid token still works.
    let ok = token("alice", None, 60);
    let (_, welcome) = srv.client(&format!("?token={ok}")).await;
    assert_eq!(welcome["user"], "alice");
}

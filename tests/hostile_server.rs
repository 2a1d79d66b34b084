//! The generator against servers that misbehave the way a broken deployment
//! would: each case runs the real `bench run` binary against a small
//! in-test server (raw tokio TCP plus the shared `wire::ws` primitives) and
//! checks that the answer is never a silent pass: exit code 5, the failure
//! counted under its reason in results.json, the generator's memory bounded
//! (a 1 GiB length header must not become a 1 GiB buffer), and the run
//! ending (the wall-time bound only catches hangs: it is the run plus
//! `connect_timeout` plus the engine's 10 s finishing grace).

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wire::ws::{close_payload, handshake, server_frame, OpCode};

mod common;

/// How the in-test server misbehaves after reading the upgrade request.
#[derive(Debug, Clone, Copy)]
enum Mode {
    WrongAccept,
    /// Header lines forever (well, until the client gives up).
    EndlessHandshake,
    /// Never answers the upgrade.
    SilentHandshake,
    /// A text frame header announcing 1 GiB.
    HugeLength,
    /// A text fragment, then a continuation whose length is 2^64 − 10.
    Continuation2To64,
    RsvBits,
    MaskedServerFrame,
    UnknownOpcode,
    /// Pseudo-random bytes (fixed seed) right after the 101.
    Garbage,
    /// A valid `welcome`, then silence: never a `joined`.
    WelcomeNoJoined,
    /// A close frame carrying 1005, which must never be sent.
    Close1005,
}

/// Run length of every case: one quick ramp, then a short hold.
const HOLD_S: f64 = 2.0;
const CONNECT_TIMEOUT_S: f64 = 1.0;
/// The engine's own bound on finishing after the run (`FINISH_GRACE`).
const FINISH_GRACE_S: f64 = 10.0;
/// Far below what decoding a 1 GiB header into a buffer would take.
const MAX_GENERATOR_RSS: u64 = 256 << 20;

fn welcome() -> bytes::Bytes {
    server_frame(
        OpCode::Text,
        br#"{"type":"welcome","user":"u0","conn":1,"heartbeat_ms":30000}"#,
    )
}

/// What the server sends after a valid 101 in each frame-level mode.
fn after_upgrade(mode: Mode) -> Vec<u8> {
    let mut out = BytesMut::new();
    match mode {
        Mode::HugeLength => {
            out.put_u8(0x81);
            out.put_u8(127);
            out.put_u64(1 << 30);
            out.put_slice(&[b'x'; 512]);
        }
        Mode::Continuation2To64 => {
            out.put_u8(0x01); // text, not FIN
            out.put_u8(3);
            out.put_slice(b"abc");
            out.put_u8(0x80); // continuation, FIN
            out.put_u8(127);
            out.put_u64(u64::MAX - 9);
            out.put_slice(b"def");
        }
        Mode::RsvBits => {
            out.put_slice(&welcome());
            out[0] |= 0x40;
        }
        Mode::MaskedServerFrame => {
            let payload = br#"{"type":"welcome","user":"u0","conn":1,"heartbeat_ms":1}"#;
            out.put_u8(0x81);
            out.put_u8(0x80 | payload.len() as u8);
            out.put_slice(&[0, 0, 0, 0]);
            out.put_slice(payload);
        }
        Mode::UnknownOpcode => {
            out.put_u8(0x83);
            out.put_u8(2);
            out.put_slice(b"hi");
        }
        Mode::Garbage => {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..4096 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.put_u8(x as u8);
            }
        }
        Mode::WelcomeNoJoined => out.put_slice(&welcome()),
        Mode::Close1005 => out.put_slice(&server_frame(OpCode::Close, &close_payload(1005, ""))),
        Mode::WrongAccept | Mode::EndlessHandshake | Mode::SilentHandshake => {}
    }
    out.to_vec()
}

async fn serve_conn(mut s: TcpStream, mode: Mode) {
    let Ok((req, _)) = handshake::read_request(&mut s).await else {
        return;
    };
    let key = req
        .headers
        .iter()
        .find(|(k, _)| k == "sec-websocket-key")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match mode {
        Mode::WrongAccept => {
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
        }
        Mode::EndlessHandshake => {
            if s.write_all(b"HTTP/1.1 101 Switching Protocols\r\n")
                .await
                .is_err()
            {
                return;
            }
            // Bounded: far more than any client head limit.
            for i in 0..200_000u32 {
                let line = format!("X-Endless-{i}: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
                if s.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Mode::SilentHandshake => {}
        _ => {
            let head = handshake::switching_protocols(&key);
            let mut out = head.into_bytes();
            out.extend(after_upgrade(mode));
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    }
    // Swallow whatever the client sends until it goes away.
    let mut sink = [0u8; 4096];
    while let Ok(n) = s.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Starts the hostile server on its own thread; returns its address.
fn hostile(mode: Mode) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = tx.send(listener.local_addr().expect("addr"));
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_conn(s, mode));
            }
        });
    });
    rx.recv().expect("server address")
}

/// Runs bench against `mode`; asserts the invariants every case shares and
/// returns the results.
fn run_against(mode: Mode) -> bench::results::RunResults {
    let addr = hostile(mode);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.toml");
    let scenario = format!(
        r#"
name = "hostile"
[target]
url = "ws://{addr}/ws"
protocol = "chat"
[[stages]]
duration = "100ms"
target = 4
[[stages]]
duration = "{HOLD_S}s"
target = 4
[rooms]
count = 1
[[clients]]
name = "c"
chat_rate = 0
reconnect_backoff = {{ initial = "100ms", max = "200ms", jitter = 0.1 }}
[run]
workers = 1
connect_timeout = "{CONNECT_TIMEOUT_S}s"
drain = "200ms"
"#
    );
    std::fs::write(&path, scenario).unwrap();
    let out = dir.path().join("out");
    let t0 = Instant::now();
    let status = Command::new(common::BENCH)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .status()
        .unwrap();
    let wall = t0.elapsed();
    let r = common::read_results(&out);
    assert_eq!(status.code(), Some(5), "{mode:?}: {:?}", r.validity);
    assert!(!r.validity.valid, "{mode:?}");
    assert!(r.readiness.planned >= 4, "{mode:?}: {:?}", r.readiness);
    assert_eq!(r.readiness.ready, 0, "{mode:?}: {:?}", r.readiness);
    assert!(
        r.generator.rss_peak_bytes < MAX_GENERATOR_RSS,
        "{mode:?}: generator RSS {} bytes",
        r.generator.rss_peak_bytes
    );
    // A hang check, not a performance assertion.
    let bound = Duration::from_secs_f64(0.1 + HOLD_S + CONNECT_TIMEOUT_S + FINISH_GRACE_S);
    assert!(wall <= bound, "{mode:?}: took {wall:?}");
    common::assert_schema_valid(&out);
    r
}

/// Never-ready clients counted under one of `reasons`, and nothing else.
fn assert_failed_as(r: &bench::results::RunResults, reasons: &[&str]) {
    let counted: u64 = reasons
        .iter()
        .filter_map(|k| r.readiness.failed.get(*k))
        .sum();
    assert_eq!(
        counted,
        r.readiness.planned - r.readiness.ready,
        "expected {reasons:?}: {:?}",
        r.readiness.failed
    );
}

/// A protocol error is also in `counters.errors.protocol`.
fn assert_protocol(r: &bench::results::RunResults) {
    assert_failed_as(r, &["protocol"]);
    assert!(
        r.counters.errors.get("protocol").copied().unwrap_or(0) >= 1,
        "{:?}",
        r.counters.errors
    );
}

#[test]
fn wrong_accept_key_is_a_handshake_failure() {
    let r = run_against(Mode::WrongAccept);
    assert_failed_as(&r, &["handshake"]);
    assert!(
        r.counters
            .connections_failed
            .get("handshake")
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn endless_handshake_is_cut_off() {
    let r = run_against(Mode::EndlessHandshake);
    assert_failed_as(&r, &["handshake", "timeout"]);
}

#[test]
fn silent_handshake_times_out() {
    let r = run_against(Mode::SilentHandshake);
    assert_failed_as(&r, &["timeout"]);
}

#[test]
fn a_1_gib_length_header_is_refused_without_allocating_it() {
    assert_protocol(&run_against(Mode::HugeLength));
}

#[test]
fn a_2_to_64_continuation_is_a_protocol_error_not_a_panic() {
    let r = run_against(Mode::Continuation2To64);
    assert_protocol(&r);
    assert_eq!(r.validity.panics, 0, "{:?}", r.validity);
}

#[test]
fn reserved_bits_are_a_protocol_error() {
    assert_protocol(&run_against(Mode::RsvBits));
}

#[test]
fn masked_server_frames_are_a_protocol_error() {
    assert_protocol(&run_against(Mode::MaskedServerFrame));
}

#[test]
fn unknown_opcodes_are_a_protocol_error() {
    assert_protocol(&run_against(Mode::UnknownOpcode));
}

#[test]
fn garbage_after_the_upgrade_never_passes() {
    // Random bytes may happen to form a frame header whose payload never
    // comes: then the client is simply never ready.
    let r = run_against(Mode::Garbage);
    assert_failed_as(&r, &["protocol", "not_ready"]);
}

#[test]
fn welcome_without_joined_is_never_ready() {
    let r = run_against(Mode::WelcomeNoJoined);
    assert_failed_as(&r, &["not_ready"]);
    assert!(
        r.counters
            .connections_failed
            .get("ready_timeout")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{:?}",
        r.counters.connections_failed
    );
    assert!(r.validity.reasons.iter().any(|w| w.contains("never ready")));
}

#[test]
fn close_1005_on_the_wire_is_a_protocol_error() {
    let r = run_against(Mode::Close1005);
    assert_protocol(&r);
    assert!(
        !r.counters.closes.contains_key("1005"),
        "{:?}",
        r.counters.closes
    );
}

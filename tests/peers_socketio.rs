//! Interop tests of the `socketio` dialect against the REAL Node Socket.IO
//! server (`scripts/peers/socketio-server.js`, npm `socket.io` v4) and the
//! Redis-adapter cluster (`socketio-redis.js` + a real redis-server).

mod peers_common;

use std::sync::Arc;
use std::time::Duration;

use bench::dialect::socketio::packet::{placeholder, Packet, PacketType};
use bench::dialect::socketio::{SocketIo, SocketIoOptions, Transport};
use bench::dialect::{Action, Dialect, Event, Incoming, Outbox};
use bench::engine::link::sio_client::{Endpoint, SioClient};
use bytes::{Bytes, BytesMut};
use peers_common::{jwt, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::ws::{handshake::client_handshake, Decoder, Message, Role};

const WAIT: Duration = Duration::from_secs(10);

/// What the tests assert on, owned.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Welcome,
    Rejected(String),
    Joined {
        room: String,
        members: u64,
    },
    Ack {
        id: String,
        seq: u64,
    },
    Chat {
        room: String,
        seq: u64,
        id: String,
        ts_us: Option<u64>,
    },
    Typing(String),
    Presence {
        user: String,
        online: bool,
    },
    Pong(Option<u64>),
    Error(String),
    Other,
}

fn own(ev: &Event<'_>) -> Got {
    match ev {
        Event::Welcome { .. } => Got::Welcome,
        Event::Rejected { reason } => Got::Rejected(reason.to_string()),
        Event::Joined { room, members, .. } => Got::Joined {
            room: room.to_string(),
            members: *members,
        },
        Event::Ack { id, seq } => Got::Ack {
            id: id.to_string(),
            seq: *seq,
        },
        Event::Chat {
            room,
            seq,
            id,
            ts_us,
            ..
        } => Got::Chat {
            room: room.to_string(),
            seq: *seq,
            id: id.to_string(),
            ts_us: *ts_us,
        },
        Event::Typing { user, .. } => Got::Typing(user.to_string()),
        Event::Presence { user, online, .. } => Got::Presence {
            user: user.to_string(),
            online: *online,
        },
        Event::Pong { ts_us } => Got::Pong(*ts_us),
        Event::Error { code, .. } => Got::Error(code.to_string()),
        _ => Got::Other,
    }
}

fn opts(namespace: &str, transport: Transport) -> Arc<SocketIoOptions> {
    Arc::new(SocketIoOptions {
        namespace: namespace.into(),
        transport,
        ..SocketIoOptions::default()
    })
}

/// Collects events until one matches `stop`; returns all of them.
async fn collect_until(c: &mut SioClient, stop: impl Fn(&Got) -> bool) -> Vec<Got> {
    let mut seen = Vec::new();
    c.until(WAIT, |_, ev| {
        let g = own(ev);
        let done = stop(&g);
        if g != Got::Other {
            seen.push(g);
        }
        done
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}; events so far: {seen:?}"));
    seen
}

async fn connected(peer: &Peer, o: &Arc<SocketIoOptions>, token: Option<&str>) -> SioClient {
    let mut c = SioClient::connect(&Endpoint::new(peer.addr), Arc::clone(o), token)
        .await
        .expect("connect");
    let got = collect_until(&mut c, |g| matches!(g, Got::Welcome | Got::Rejected(_))).await;
    assert_eq!(got.last(), Some(&Got::Welcome), "{got:?}");
    c
}

async fn join(c: &mut SioClient, room: &str) -> u64 {
    c.act(&Action::Join { room });
    let got = collect_until(c, |g| matches!(g, Got::Joined { .. } | Got::Error(_))).await;
    match got.last() {
        Some(Got::Joined { room: r, members }) if r == room => *members,
        other => panic!("join {room}: {other:?}"),
    }
}

/// Sender sends `n` chats; returns the acks' seqs in order.
async fn send_chats(c: &mut SioClient, room: &str, tag: &str, n: u64) -> Vec<u64> {
    for i in 0..n {
        c.act(&Action::Chat {
            room,
            id: &format!("{tag}.{i}"),
            text: "hello",
            ts_us: 1_700_000_000_000_000 + i,
        });
    }
    let mut seqs = Vec::new();
    let mut acks = 0;
    c.until(WAIT, |_, ev| {
        if let Event::Ack { id, seq } = ev {
            assert_eq!(id.as_ref(), format!("{tag}.{acks}"), "acks in order");
            seqs.push(*seq);
            acks += 1;
        }
        acks == n
    })
    .await
    .expect("acks");
    seqs
}

async fn receive_chats(c: &mut SioClient, n: usize) -> Vec<Got> {
    let mut chats = Vec::new();
    c.until(WAIT, |_, ev| {
        if let g @ Got::Chat { .. } = own(ev) {
            chats.push(g);
        }
        chats.len() == n
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}: got {} of {n} chats", chats.len()));
    chats
}

#[tokio::test]
async fn join_chat_ack_and_fanout_counts() {
    let peer = Peer::start("socketio-server.js", &[]);
    let o = opts("/", Transport::Websocket);
    let mut a = connected(&peer, &o, None).await;
    let mut b = connected(&peer, &o, None).await;
    let mut c = connected(&peer, &o, None).await;
    assert_eq!(join(&mut a, "r1").await, 1);
    assert_eq!(join(&mut b, "r1").await, 2);
    assert_eq!(join(&mut c, "r1").await, 3);
    // `a` saw b and c come online.
    let mut online = 0;
    a.until(WAIT, |_, ev| {
        online += matches!(ev, Event::Presence { online: true, .. }) as u32;
        online == 2
    })
    .await
    .expect("two presence events");

    let seqs = send_chats(&mut a, "r1", "a", 5).await;
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    for member in [&mut b, &mut c] {
        let chats = receive_chats(member, 5).await;
        for (i, g) in chats.iter().enumerate() {
            assert_eq!(
                g,
                &Got::Chat {
                    room: "r1".into(),
                    seq: i as u64 + 1,
                    id: format!("a.{i}"),
                    ts_us: Some(1_700_000_000_000_000 + i as u64),
                }
            );
        }
    }
    // The sender gets no copy of its own chat: its next chat is seq 6 and
    // the only chat event it ever sees is b's seq 7.
    assert_eq!(send_chats(&mut a, "r1", "a2", 1).await, [6]);
    assert_eq!(send_chats(&mut b, "r1", "b", 1).await, [7]);
    let chats = receive_chats(&mut a, 1).await;
    assert!(
        matches!(&chats[0], Got::Chat { seq: 7, id, .. } if id == "b.0"),
        "{chats:?}"
    );

    // Typing reaches the others; chat to a room never joined is refused.
    a.act(&Action::Typing { room: "r1" });
    a.flush().await.expect("send typing");
    let got = collect_until(&mut b, |g| matches!(g, Got::Typing(_))).await;
    assert!(matches!(got.last(), Some(Got::Typing(_))));
    a.act(&Action::Chat {
        room: "elsewhere",
        id: "x",
        text: "t",
        ts_us: 1,
    });
    let got = collect_until(&mut a, |g| matches!(g, Got::Error(_))).await;
    assert_eq!(got.last(), Some(&Got::Error("NOT_IN_ROOM".into())));
    assert_eq!(a.core().pending_acks(), 0);
}

#[tokio::test]
async fn heartbeat_kept_alive_past_several_intervals() {
    let peer = Peer::start(
        "socketio-server.js",
        &["--ping-interval", "200ms", "--ping-timeout", "1s"],
    );
    let o = opts("/", Transport::Websocket);
    let mut a = connected(&peer, &o, None).await;
    let h = a.core().handshake().expect("open packet").clone();
    assert_eq!(h.ping_interval, Duration::from_millis(200));
    assert_eq!(h.ping_timeout, Duration::from_millis(1000));
    // Answer 6 server pings (> 1 s of 200 ms intervals; the server drops a
    // client whose pong is 1 s late, generous for a loaded CI machine)...
    tokio::time::timeout(WAIT, async {
        while a.core().pings_answered < 6 {
            a.next(&mut |_, _| {}).await.expect("still connected");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} pings", a.core().pings_answered));
    // ...and the session is still alive: the app-level ping is acked.
    a.act(&Action::Ping { ts_us: 42 });
    let got = collect_until(&mut a, |g| matches!(g, Got::Pong(_))).await;
    assert_eq!(got.last(), Some(&Got::Pong(Some(42))));
}

#[tokio::test]
async fn namespaces_are_separate() {
    let peer = Peer::start("socketio-server.js", &[]);
    let chat_ns = opts("/chat", Transport::Websocket);
    let root_ns = opts("/", Transport::Websocket);
    let mut a = connected(&peer, &chat_ns, None).await;
    let mut b = connected(&peer, &chat_ns, None).await;
    let mut c = connected(&peer, &root_ns, None).await;
    let mut d = connected(&peer, &root_ns, None).await;
    assert_eq!(join(&mut a, "lobby").await, 1);
    assert_eq!(join(&mut b, "lobby").await, 2);
    // Same room name in `/`: separate members and a separate seq.
    assert_eq!(join(&mut c, "lobby").await, 1);
    assert_eq!(join(&mut d, "lobby").await, 2);
    assert_eq!(send_chats(&mut a, "lobby", "a", 3).await, [1, 2, 3]);
    assert_eq!(receive_chats(&mut b, 3).await.len(), 3);
    assert_eq!(send_chats(&mut d, "lobby", "d", 1).await, [1]);
    // c's first chat event is d's: nothing leaked across namespaces.
    let chats = receive_chats(&mut c, 1).await;
    assert!(
        matches!(&chats[0], Got::Chat { seq: 1, id, .. } if id == "d.0"),
        "{chats:?}"
    );
}

#[tokio::test]
async fn auth_middleware_rejects_bad_tokens_by_reason() {
    let secret = "s3cret";
    let peer = Peer::start("socketio-server.js", &["--jwt-secret", secret]);
    for ns in ["/", "/chat"] {
        let o = opts(ns, Transport::Websocket);
        let bad = jwt("other-secret", "mallory", 60);
        let expired = jwt(secret, "late", -60);
        for (token, reason) in [
            (Some(bad.as_str()), "invalid token signature"),
            (Some(expired.as_str()), "token expired"),
            (None, "missing token"),
        ] {
            let mut c = SioClient::connect(&Endpoint::new(peer.addr), Arc::clone(&o), token)
                .await
                .expect("transport connects; the namespace is refused");
            // An action sent before the refusal is never delivered.
            c.act(&Action::Join { room: "r" });
            let got = collect_until(&mut c, |g| matches!(g, Got::Welcome | Got::Rejected(_))).await;
            assert_eq!(got.last(), Some(&Got::Rejected(reason.into())), "{ns}");
            assert!(!c.core().is_connected());
        }
        let good = jwt(secret, "alice", 60);
        let mut c = connected(&peer, &o, Some(&good)).await;
        assert_eq!(join(&mut c, "r").await, 1);
    }

    let peer = Peer::start("socketio-server.js", &["--token", "letmein"]);
    let o = opts("/", Transport::Websocket);
    let mut c = SioClient::connect(&Endpoint::new(peer.addr), Arc::clone(&o), Some("nope"))
        .await
        .expect("connect");
    let got = collect_until(&mut c, |g| matches!(g, Got::Welcome | Got::Rejected(_))).await;
    assert_eq!(got.last(), Some(&Got::Rejected("invalid token".into())));
    connected(&peer, &o, Some("letmein")).await;
}

#[tokio::test]
async fn long_polling_with_and_without_upgrade() {
    let peer = Peer::start(
        "socketio-server.js",
        &["--ping-interval", "300ms", "--ping-timeout", "2s"],
    );
    let mut p = connected(&peer, &opts("/chat", Transport::Polling), None).await;
    assert!(!p.is_websocket());
    let mut u = connected(&peer, &opts("/chat", Transport::PollingUpgrade), None).await;
    assert!(u.is_websocket());
    let mut w = connected(&peer, &opts("/chat", Transport::Websocket), None).await;
    assert_eq!(join(&mut p, "r").await, 1);
    assert_eq!(join(&mut u, "r").await, 2);
    assert_eq!(join(&mut w, "r").await, 3);
    // Polling sender → WebSocket receivers, and back.
    assert_eq!(send_chats(&mut p, "r", "p", 4).await, [1, 2, 3, 4]);
    assert_eq!(receive_chats(&mut u, 4).await.len(), 4);
    assert_eq!(receive_chats(&mut w, 4).await.len(), 4);
    assert_eq!(send_chats(&mut w, "r", "w", 3).await, [5, 6, 7]);
    let chats = receive_chats(&mut p, 3).await;
    let seqs: Vec<u64> = chats
        .iter()
        .map(|g| match g {
            Got::Chat { seq, .. } => *seq,
            _ => 0,
        })
        .collect();
    assert_eq!(seqs, [5, 6, 7]);
    // The polling client answers heartbeats over HTTP and stays connected.
    tokio::time::timeout(WAIT, async {
        while p.core().pings_answered < 3 {
            p.next(&mut |_, _| {})
                .await
                .expect("polling still connected");
        }
    })
    .await
    .expect("three pings over polling");
    p.act(&Action::Ping { ts_us: 7 });
    let got = collect_until(&mut p, |g| matches!(g, Got::Pong(_))).await;
    assert_eq!(got.last(), Some(&Got::Pong(Some(7))));
}

#[tokio::test]
async fn binary_attachments_round_trip() {
    let peer = Peer::start("socketio-server.js", &[]);
    for transport in [Transport::Websocket, Transport::Polling] {
        let o = opts("/chat", transport);
        let mut a = connected(&peer, &o, None).await;
        let blob: Vec<u8> = (0..=255u8).collect();
        a.emit(Packet::event(
            "/chat",
            "echo",
            vec![
                serde_json::json!({"name": "blob", "data": placeholder(0)}),
                placeholder(1),
            ],
            Some(900),
            vec![
                Bytes::from(blob.clone()),
                Bytes::from_static(b"\x00\x01two"),
            ],
        ));
        let mut echoed = None;
        a.until(WAIT, |p, _| {
            if let Some(p) = p.filter(|p| p.id == Some(900)) {
                let args = p.ack_args();
                echoed = Some((
                    p.kind,
                    p.attachment(&args[0]["data"]).cloned(),
                    p.attachment(&args[1]).cloned(),
                ));
            }
            echoed.is_some()
        })
        .await
        .expect("binary ack");
        let (kind, first, second) = echoed.expect("set above");
        assert_eq!(kind, PacketType::BinaryAck, "{transport:?}");
        assert_eq!(first.as_deref(), Some(&blob[..]));
        assert_eq!(second.as_deref(), Some(&b"\x00\x01two"[..]));
    }

    // Chat text sent as an attachment (BINARY_EVENT) is fanned out as one.
    let o = Arc::new(SocketIoOptions {
        binary_text: true,
        ..SocketIoOptions::default()
    });
    let mut a = connected(&peer, &o, None).await;
    let mut b = connected(&peer, &o, None).await;
    join(&mut a, "bin").await;
    join(&mut b, "bin").await;
    assert_eq!(send_chats(&mut a, "bin", "a", 2).await, [1, 2]);
    let mut got = Vec::new();
    b.until(WAIT, |p, ev| {
        if let (Some(p), Event::Chat { seq, .. }) = (p, ev) {
            let (_, args) = p.event_parts().expect("event");
            got.push((p.kind, *seq, p.attachment(&args[0]["text"]).cloned()));
        }
        got.len() == 2
    })
    .await
    .expect("binary chats");
    for (i, (kind, seq, text)) in got.into_iter().enumerate() {
        assert_eq!(kind, PacketType::BinaryEvent);
        assert_eq!(seq, i as u64 + 1);
        assert_eq!(text.as_deref(), Some(&b"hello"[..]));
    }
}

/// Drives the dialect exactly as the engine does: `Dialect::upgrade_target`,
/// a boxed `Session`, `Outbox` frames and `Incoming` messages.
#[tokio::test]
async fn dialect_session_over_raw_websocket() {
    let peer = Peer::start("socketio-server.js", &["--token", "t0k"]);
    let dialect = SocketIo::new(SocketIoOptions {
        namespace: "/chat".into(),
        ..SocketIoOptions::default()
    });
    let target = dialect.upgrade_target("");
    assert_eq!(target, "/socket.io/?EIO=4&transport=websocket");
    let mut stream = TcpStream::connect(peer.addr).await.expect("tcp");
    let mut rbuf = client_handshake(&mut stream, &peer.addr.to_string(), &target, &[])
        .await
        .expect("upgrade");
    let mut session = dialect.session();
    let mut out = Outbox::new();
    session.on_open(&mut out);
    session.encode(&Action::Auth { token: "t0k" }, &mut out);
    session.encode(&Action::Join { room: "raw" }, &mut out);
    session.encode(&Action::Ping { ts_us: 99 }, &mut out);
    let mut decoder = Decoder::new(Role::Client, 1 << 20);
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < 3 {
            if !out.is_empty() {
                let (bytes, _) = out.take();
                stream.write_all(&bytes).await.expect("write");
            }
            let msg = loop {
                if let Some(m) = decoder.decode(&mut rbuf).expect("frame") {
                    break m;
                }
                let mut chunk = BytesMut::with_capacity(4096);
                assert!(stream.read_buf(&mut chunk).await.expect("read") > 0, "eof");
                rbuf.extend_from_slice(&chunk);
            };
            let incoming = match &msg {
                Message::Text(t) => Incoming::Text(t),
                Message::Binary(b) => Incoming::Binary(b),
                other => panic!("unexpected {other:?}"),
            };
            session
                .decode(incoming, &mut out, &mut |ev| {
                    let g = own(&ev);
                    if g != Got::Other {
                        got.push(g);
                    }
                })
                .expect("decode");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; got {got:?}"));
    assert_eq!(
        got,
        [
            Got::Welcome,
            Got::Joined {
                room: "raw".into(),
                members: 1
            },
            Got::Pong(Some(99)),
        ]
    );
}

#[tokio::test]
async fn redis_adapter_across_two_processes() {
    let peer = Peer::start("socketio-redis.js", &["--workers", "2"]);
    let o = opts("/", Transport::Websocket);
    // Cluster round-robin puts consecutive connections on both workers.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connected(&peer, &o, None).await);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            join(c, "shared").await,
            i as u64 + 1,
            "members across processes"
        );
    }
    let (sender, receivers) = clients.split_first_mut().expect("4 clients");
    assert_eq!(send_chats(sender, "shared", "s", 5).await, [1, 2, 3, 4, 5]);
    for r in receivers.iter_mut() {
        let chats = receive_chats(r, 5).await;
        let seqs: Vec<u64> = chats
            .iter()
            .map(|g| match g {
                Got::Chat { seq, .. } => *seq,
                _ => 0,
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }
    // A second sender on the other worker continues the same room sequence.
    assert_eq!(send_chats(&mut receivers[0], "shared", "t", 1).await, [6]);
}

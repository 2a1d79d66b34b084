//! Protocol v1 conformance of the Node `ws` peer (`scripts/peers/ws-server.js`):
//! the frames the spec (docs/protocol.md, issue 2) prescribes, each one also
//! parsed with the shared `wire::protocol` types. Every check
//! runs against the peer AND the bundled reference server (`bench serve`),
//! so the two are shown to send bench the same frames.

mod peers_common;

use std::time::Duration;

use bytes::BytesMut;
use peers_common::{jwt, Peer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::protocol::{RawFrame, ServerFrame};
use wire::ws::HandshakeError;
use wire::ws::{client_frame, handshake::client_handshake, Decoder, Message, OpCode, Role};

const WAIT: Duration = Duration::from_secs(5);

struct V1 {
    stream: TcpStream,
    rbuf: BytesMut,
    decoder: Decoder,
}

impl V1 {
    async fn try_open(
        peer: &Peer,
        target: &str,
        headers: &[(String, String)],
    ) -> Result<V1, HandshakeError> {
        let mut stream = TcpStream::connect(peer.addr).await?;
        let rbuf = client_handshake(&mut stream, &peer.addr.to_string(), target, headers).await?;
        Ok(V1 {
            stream,
            rbuf,
            decoder: Decoder::new(Role::Client, 1 << 20),
        })
    }

    async fn open(peer: &Peer, user: &str) -> V1 {
        V1::try_open(peer, &format!("/ws?user={user}"), &[])
            .await
            .expect("upgrade")
    }

    async fn send(&mut self, v: Value) {
        self.send_raw(v.to_string().as_bytes()).await;
    }

    async fn send_raw(&mut self, text: &[u8]) {
        self.stream
            .write_all(&client_frame(OpCode::Text, text))
            .await
            .expect("write");
    }

    async fn message(&mut self) -> Message {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.decoder.decode(&mut self.rbuf).expect("valid frame") {
                    Some(Message::Ping(p)) => {
                        let _ = self.stream.write_all(&client_frame(OpCode::Pong, &p)).await;
                    }
                    Some(m) => return m,
                    None => {
                        if self.stream.read_buf(&mut self.rbuf).await.expect("read") == 0 {
                            return Message::Close(None);
                        }
                    }
                }
            }
        })
        .await
        .expect("a frame within 5 s")
    }

    /// The next frame as JSON, checked against the shared v1 types.
    async fn recv(&mut self) -> Value {
        let msg = self.message().await;
        let Message::Text(t) = msg else {
            panic!("expected a text frame, got {msg:?}")
        };
        let raw: RawFrame<'_> = serde_json::from_slice(&t).expect("JSON");
        if let Err(e) = ServerFrame::from_raw(raw) {
            panic!(
                "not a v1 server frame: {} ({e})",
                String::from_utf8_lossy(&t)
            );
        }
        let mut v: Value = serde_json::from_slice(&t).expect("JSON");
        // `pong.now_us` (the server's clock) is optional: the reference
        // server sends it, the peer does not; compared without it.
        if v["type"] == "pong" {
            if let Some(o) = v.as_object_mut() {
                if let Some(now) = o.remove("now_us") {
                    assert!(now.is_u64(), "now_us is µs since the epoch: {now}");
                }
            }
        }
        v
    }

    /// Asserts no frame is pending by round-tripping a ping.
    async fn nothing_pending(&mut self) {
        self.send(json!({"type":"ping","ts":424242})).await;
        assert_eq!(self.recv().await, json!({"type":"pong","ts":424242}));
    }
}

/// A `welcome` without its per-connection `conn` and per-process
/// `instance` (both checked for shape here), so it compares as specified.
fn without_conn(mut v: Value) -> Value {
    assert!(v["conn"].is_u64(), "welcome has a numeric conn: {v}");
    assert!(
        v["instance"].as_str().is_some_and(|i| !i.is_empty()),
        "welcome has an instance id: {v}"
    );
    let o = v.as_object_mut().expect("object");
    o.remove("conn");
    o.remove("instance");
    v
}

#[tokio::test]
async fn every_v1_row_as_specified() {
    for peer in [Peer::start("ws-server.js", &[]), Peer::reference(&[])] {
        every_v1_row_as_specified_on(&peer).await;
    }
}

async fn every_v1_row_as_specified_on(peer: &Peer) {
    let mut a = V1::open(peer, "alice").await;
    assert_eq!(
        without_conn(a.recv().await),
        json!({"type":"welcome","user":"alice","heartbeat_ms":30000})
    );
    a.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(
        a.recv().await,
        json!({"type":"joined","room":"r","seq":0,"members":1})
    );

    let mut b = V1::open(peer, "bob").await;
    b.recv().await;
    b.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(
        b.recv().await,
        json!({"type":"joined","room":"r","seq":0,"members":2})
    );
    assert_eq!(
        a.recv().await,
        json!({"type":"presence","room":"r","user":"bob","status":"online"})
    );
    // bob's second tab: no second presence.
    let mut b2 = V1::open(peer, "bob").await;
    b2.recv().await;
    b2.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(
        b2.recv().await,
        json!({"type":"joined","room":"r","seq":0,"members":3})
    );
    a.nothing_pending().await;

    a.send(json!({"type":"chat","room":"r","id":"m1","text":"hi","ts":123}))
        .await;
    assert_eq!(a.recv().await, json!({"type":"ack","id":"m1","seq":1}));
    let chat =
        json!({"type":"chat","room":"r","seq":1,"from":"alice","id":"m1","text":"hi","ts":123});
    assert_eq!(b.recv().await, chat);
    assert_eq!(b2.recv().await, chat);
    a.send(json!({"type":"chat","room":"r","id":2,"text":"","ts":1.5}))
        .await;
    assert_eq!(a.recv().await, json!({"type":"ack","id":2,"seq":2}));
    assert_eq!(b.recv().await["ts"], json!(1.5));
    assert_eq!(b2.recv().await["seq"], json!(2));

    a.send(json!({"type":"typing","room":"r"})).await;
    let typing = json!({"type":"typing","room":"r","user":"alice"});
    assert_eq!(b.recv().await, typing);
    assert_eq!(b2.recv().await, typing);
    a.nothing_pending().await;

    b.send(json!({"type":"ping","ts":5})).await;
    assert_eq!(b.recv().await, json!({"type":"pong","ts":5}));

    // Presence offline only when bob's last connection leaves.
    b2.send(json!({"type":"leave","room":"r"})).await;
    assert_eq!(b2.recv().await, json!({"type":"left","room":"r"}));
    a.nothing_pending().await;
    b.send(json!({"type":"leave","room":"r"})).await;
    assert_eq!(b.recv().await, json!({"type":"left","room":"r"}));
    assert_eq!(
        a.recv().await,
        json!({"type":"presence","room":"r","user":"bob","status":"offline"})
    );

    a.send(json!({"type":"resume","room":"r","after":1})).await;
    assert_eq!(
        a.recv().await,
        json!({"type":"chat","room":"r","seq":2,"from":"alice","id":2,"text":"","ts":1.5})
    );
    assert_eq!(
        a.recv().await,
        json!({"type":"resumed","room":"r","replayed":1,"complete":true})
    );

    // Disconnecting counts as leaving.
    b.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(b.recv().await["members"], json!(2));
    assert_eq!(a.recv().await["status"], json!("online"));
    drop(b);
    assert_eq!(a.recv().await["status"], json!("offline"));
}

#[tokio::test]
async fn error_frames_carry_codes_and_ids() {
    for peer in [Peer::start("ws-server.js", &[]), Peer::reference(&[])] {
        error_frames_carry_codes_and_ids_on(&peer).await;
    }
}

async fn error_frames_carry_codes_and_ids_on(peer: &Peer) {
    let mut a = V1::open(peer, "alice").await;
    a.recv().await;
    a.send_raw(b"{nope").await;
    let e = a.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("PARSE_ERROR"))
    );
    assert!(e.get("id").is_none());
    a.send(json!({"type":"dance","id":7})).await;
    let e = a.recv().await;
    assert_eq!(
        (e["code"].as_str(), &e["id"]),
        (Some("INVALID_MESSAGE"), &json!(7))
    );
    a.send(json!({"type":"chat","room":"r","id":"e1","text":"x","ts":"no"}))
        .await;
    let e = a.recv().await;
    assert_eq!(
        (e["code"].as_str(), &e["id"]),
        (Some("INVALID_MESSAGE"), &json!("e1"))
    );
    a.send(json!({"type":"chat","room":"x","id":"e2","text":"x","ts":1}))
        .await;
    let e = a.recv().await;
    assert_eq!(
        (e["code"].as_str(), &e["id"]),
        (Some("NOT_IN_ROOM"), &json!("e2"))
    );
    a.send(json!({"type":"leave","room":"x"})).await;
    assert_eq!(a.recv().await["code"], json!("NOT_IN_ROOM"));
    // Still serving afterwards.
    a.nothing_pending().await;
}

#[tokio::test]
async fn resume_reports_incomplete_history() {
    for peer in [
        Peer::start("ws-server.js", &["--history-len", "2"]),
        Peer::reference(&["--history-len", "2"]),
    ] {
        resume_reports_incomplete_history_on(&peer).await;
    }
}

async fn resume_reports_incomplete_history_on(peer: &Peer) {
    let mut a = V1::open(peer, "alice").await;
    a.recv().await;
    a.send(json!({"type":"join","room":"h"})).await;
    a.recv().await;
    for i in 1..=4 {
        a.send(json!({"type":"chat","room":"h","id":i,"text":"t","ts":i}))
            .await;
        assert_eq!(a.recv().await["seq"], json!(i));
    }
    a.send(json!({"type":"resume","room":"h","after":0})).await;
    assert_eq!(a.recv().await["seq"], json!(3));
    assert_eq!(a.recv().await["seq"], json!(4));
    assert_eq!(
        a.recv().await,
        json!({"type":"resumed","room":"h","replayed":2,"complete":false})
    );
    a.send(json!({"type":"resume","room":"h","after":2})).await;
    a.recv().await;
    a.recv().await;
    assert_eq!(a.recv().await["complete"], json!(true));
}

#[tokio::test]
async fn auth_by_query_header_and_first_frame() {
    let secret = "k3y";
    for peer in [
        Peer::start("ws-server.js", &["--jwt-secret", secret]),
        Peer::reference(&["--jwt-secret", secret]),
    ] {
        auth_on(&peer, secret).await;
    }
}

async fn auth_on(peer: &Peer, secret: &str) {
    let bad = jwt("wrong", "eve", 60);
    match V1::try_open(peer, &format!("/ws?token={bad}"), &[]).await {
        Err(HandshakeError::Status { status, body }) => {
            assert_eq!((status, body.as_str()), (401, "invalid token signature"))
        }
        other => panic!("expected 401, got {:?}", other.map(|_| "upgrade")),
    }
    let expired = jwt(secret, "old", -10);
    let auth = [("Authorization".to_owned(), format!("Bearer {expired}"))];
    match V1::try_open(peer, "/ws", &auth).await {
        Err(HandshakeError::Status { status, body }) => {
            assert_eq!((status, body.as_str()), (401, "token expired"))
        }
        other => panic!("expected 401, got {:?}", other.map(|_| "upgrade")),
    }

    let good = jwt(secret, "alice", 60);
    let mut q = V1::try_open(peer, &format!("/ws?token={good}"), &[])
        .await
        .expect("query auth");
    assert_eq!(q.recv().await["user"], json!("alice"));
    let auth = [("Authorization".to_owned(), format!("Bearer {good}"))];
    let mut h = V1::try_open(peer, "/ws", &auth).await.expect("header auth");
    assert_eq!(h.recv().await["user"], json!("alice"));

    // First-frame auth: nothing is served before it.
    let mut f = V1::open(peer, "ignored").await;
    f.send(json!({"type":"auth","token":jwt(secret, "carol", 60)}))
        .await;
    assert_eq!(f.recv().await["user"], json!("carol"));
    let mut n = V1::open(peer, "ignored").await;
    n.send(json!({"type":"join","room":"r"})).await;
    let e = n.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (
            Some("UNAUTHORIZED"),
            Some("the first frame must be an `auth` frame")
        )
    );
    match n.message().await {
        Message::Close(Some(c)) => assert_eq!(c.code, 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
}

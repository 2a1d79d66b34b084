//! permessage-deflate on the reference server, on the wire: what the 101
//! answers, that frames really go out compressed (RSV1), that compressed
//! input is inflated, and that hostile input gets the right close code: a
//! zip bomb 1009 (bounded by the *inflated* size), RSV1 without the
//! extension 1002.

mod common;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::ws::deflate::{Agreed, Deflater, Offer};
use wire::ws::handshake::client_handshake_ext;
use wire::ws::{client_frame, Decoder, Message, OpCode, Role};

struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    dec: Decoder,
    agreed: Option<Agreed>,
}

async fn open(addr: std::net::SocketAddr, user: &str, offer: Option<&str>) -> (Raw, Vec<String>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let headers: Vec<(String, String)> = offer
        .map(|o| ("Sec-WebSocket-Extensions".to_owned(), o.to_owned()))
        .into_iter()
        .collect();
    let (buf, ext) = client_handshake_ext(
        &mut stream,
        &addr.to_string(),
        &format!("/ws?user={user}"),
        &headers,
    )
    .await
    .unwrap();
    let values: Vec<&str> = ext.iter().map(String::as_str).collect();
    let agreed = Offer {
        client_max_window_bits: Some(None),
        ..Offer::default()
    }
    .check_response(&values)
    .unwrap();
    let mut dec = Decoder::new(Role::Client, 1 << 20);
    dec.set_inflater(agreed.map(|a| a.inflater(false)));
    let raw = Raw {
        stream,
        buf,
        dec,
        agreed,
    };
    (raw, ext)
}

impl Raw {
    /// Reads until `want` bytes are buffered (raw, not decoded).
    async fn fill(&mut self, want: usize) {
        while self.buf.len() < want {
            let n = tokio::time::timeout(common::STEP, self.stream.read_buf(&mut self.buf))
                .await
                .expect("in time")
                .unwrap();
            assert!(n > 0, "server closed");
        }
    }

    async fn message(&mut self) -> Message {
        loop {
            if let Some(m) = self.dec.decode(&mut self.buf).expect("valid frames") {
                return m;
            }
            let n = self.buf.len();
            self.fill(n + 1).await;
        }
    }

    async fn text_of_type(&mut self, kind: &str) -> String {
        loop {
            if let Message::Text(t) = self.message().await {
                let s = String::from_utf8(t.to_vec()).unwrap();
                if s.contains(&format!(r#""type":"{kind}""#)) {
                    return s;
                }
            }
        }
    }

    async fn close_code(&mut self) -> u16 {
        loop {
            match self.message().await {
                Message::Close(c) => return c.map_or(1005, |c| c.code),
                _ => continue,
            }
        }
    }
}

const OFFER: &str = "permessage-deflate; client_max_window_bits";

#[tokio::test]
async fn negotiates_and_compresses_both_ways() {
    let server = common::start(&["--deflate", "--deflate-threshold", "0B"]).await;
    let (mut a, ext) = open(server.addr, "a", Some(OFFER)).await;
    assert_eq!(
        ext,
        ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
    );
    // The welcome is the first frame: compressed (RSV1 + FIN + text).
    a.fill(2).await;
    assert_eq!(a.buf[0], 0xC1, "welcome frame header {:#x}", a.buf[0]);
    a.text_of_type("welcome").await;
    let (mut b, _) = open(server.addr, "b", Some(OFFER)).await;
    b.text_of_type("welcome").await;
    let mut tx = a.agreed.expect("agreed").deflater(false);
    for (c, room) in [(&mut a, "r"), (&mut b, "r")] {
        c.stream
            .write_all(&tx.frame(
                OpCode::Text,
                format!(r#"{{"type":"join","room":"{room}"}}"#).as_bytes(),
                Some([1, 2, 3, 4]),
            ))
            .await
            .unwrap();
        c.text_of_type("joined").await;
    }
    let chat = r#"{"type":"chat","room":"r","id":1,"text":"hello hello hello hello","ts":5}"#;
    let frame = tx.frame(OpCode::Text, chat.as_bytes(), Some([9, 9, 9, 9]));
    assert!(frame.len() < chat.len());
    a.stream.write_all(&frame).await.unwrap();
    a.text_of_type("ack").await;
    let got = b.text_of_type("chat").await;
    assert!(got.contains("hello hello hello hello"), "{got}");
    // A client may still send uncompressed messages on a deflate connection.
    b.stream
        .write_all(&client_frame(
            OpCode::Text,
            br#"{"type":"typing","room":"r"}"#,
        ))
        .await
        .unwrap();
    a.text_of_type("typing").await;
    assert_eq!(server.metric("deflate_connections_total").await, 2.0);
}

#[tokio::test]
async fn a_zip_bomb_closes_with_1009() {
    let server = common::start(&["--deflate"]).await;
    let (mut a, _) = open(server.addr, "a", Some(OFFER)).await;
    a.text_of_type("welcome").await;
    // 4 MiB of spaces in well under the 64 KiB frame limit.
    let bomb =
        Deflater::stateless(15).frame(OpCode::Text, &vec![b' '; 4 << 20], Some([1, 2, 3, 4]));
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    a.stream.write_all(&bomb).await.unwrap();
    assert_eq!(a.close_code().await, 1009);
}

#[tokio::test]
async fn without_deflate_the_offer_is_ignored_and_rsv1_is_a_protocol_error() {
    let server = common::start(&[]).await;
    let (mut a, ext) = open(server.addr, "a", Some(OFFER)).await;
    assert!(ext.is_empty(), "{ext:?}");
    a.text_of_type("welcome").await;
    let frame = Deflater::stateless(15).frame(
        OpCode::Text,
        br#"{"type":"join","room":"r"}"#,
        Some([1, 2, 3, 4]),
    );
    a.stream.write_all(&frame).await.unwrap();
    assert_eq!(a.close_code().await, 1002);
}

#[tokio::test]
async fn an_invalid_offer_is_declined() {
    let server = common::start(&["--deflate"]).await;
    let (mut a, ext) = open(
        server.addr,
        "a",
        Some("permessage-deflate; server_max_window_bits=16"),
    )
    .await;
    assert!(ext.is_empty(), "{ext:?}");
    a.text_of_type("welcome").await;
}

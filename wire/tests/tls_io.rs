//! `WsIo` over TLS on a real loopback pair (rustls both sides, as bench and
//! `bench serve` build them): many small frames coalesced into few records,
//! a message larger than one record, bytes decrypted after the handshake
//! reaching the codec, and close_notify read as end of stream.

use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use wire::ws::{client_frame, server_frame, Counted, Fill, Message, OpCode, Role, WsIo};

async fn pair() -> (WsIo, WsIo) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let cc = rustls::ClientConfig::builder_with_provider(wire::ws::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let sc = rustls::ServerConfig::builder_with_provider(wire::ws::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cc));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(sc));
    let name = ServerName::try_from("localhost").unwrap();
    let (c, s) = tokio::join!(
        connector.connect(name, Counted(c.unwrap())),
        acceptor.accept(Counted(s.unwrap().0))
    );
    let c = WsIo::new(c.unwrap(), Role::Client, 1 << 20, 8192, BytesMut::new());
    let s = WsIo::new(s.unwrap(), Role::Server, 1 << 20, 4096, BytesMut::new());
    (c, s)
}

/// Reads until `n` messages are decoded (or the peer ends the stream).
async fn read(io: &mut WsIo, n: usize) -> (Vec<Message>, bool) {
    let mut got = Vec::new();
    loop {
        while let Some(m) = io.decode().unwrap() {
            got.push(m);
        }
        if got.len() >= n {
            return (got, false);
        }
        io.stream().readable().await.unwrap();
        loop {
            match io.fill().unwrap() {
                Fill::Data => {}
                Fill::WouldBlock => break,
                Fill::Eof => {
                    while let Some(m) = io.decode().unwrap() {
                        got.push(m);
                    }
                    return (got, true);
                }
            }
        }
    }
}

#[tokio::test]
async fn frames_cross_tls_both_ways_and_close_notify_ends_the_stream() {
    let (mut c, mut s) = pair().await;
    // 200 small frames and one message of 100 KiB (several records).
    let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    for i in 0..200 {
        c.queue(client_frame(OpCode::Text, format!("m{i}").as_bytes()));
    }
    c.queue(client_frame(OpCode::Binary, &big));
    c.flush().await.unwrap();
    assert_eq!(c.pending_bytes(), 0);
    let (got, eof) = read(&mut s, 201).await;
    assert!(!eof);
    assert_eq!(got.len(), 201);
    for (i, m) in got[..200].iter().enumerate() {
        assert_eq!(*m, Message::Text(format!("m{i}").into_bytes().into()));
    }
    assert_eq!(got[200], Message::Binary(big.clone().into()));
    // An idle connection holds no codec read buffer.
    assert!(!s.has_buffered_input());

    s.queue(server_frame(OpCode::Text, b"back"));
    s.flush().await.unwrap();
    let (got, _) = read(&mut c, 1).await;
    assert_eq!(got, vec![Message::Text(bytes::Bytes::from_static(b"back"))]);

    // close_notify, then FIN: the server reads the end of the stream.
    c.shutdown_write().await.unwrap();
    let (got, eof) = read(&mut s, 1).await;
    assert!(got.is_empty() && eof);
}

#[tokio::test]
async fn garbage_after_the_handshake_is_an_error_not_a_hang() {
    let (c, mut s) = pair().await;
    // Raw bytes that are not a TLS record, written under the client's TLS.
    let raw = c.stream();
    raw.writable().await.unwrap();
    raw.try_write(b"\x17\x03\x03\x00\x05hello").unwrap();
    // Bounded so a regression fails instead of hanging the suite.
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            s.stream().readable().await.unwrap();
            match s.fill() {
                Ok(Fill::Data | Fill::WouldBlock) => continue,
                Ok(Fill::Eof) => panic!("garbage read as end of stream"),
                Err(e) => break e,
            }
        }
    })
    .await
    .expect("the garbage is reported");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

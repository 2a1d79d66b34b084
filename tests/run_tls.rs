//! `wss://` end to end: bench against the bundled server with a throwaway
//! self-signed certificate (exact delivery accounting), against `bench
//! serve --tls-cert` with certificates made here by rcgen (unknown CA, name
//! mismatch, expired, insecure), plaintext against a TLS port both ways, a
//! TLS server that stalls mid-handshake or answers garbage, and TLS garbage
//! to the server.

mod common;
mod peers_common;

use std::io::{Read, Write};
use std::path::Path;

use bench::exit::Outcome;
use peers_common::Peer;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA and a leaf it signs for `names`; `expired` puts the leaf's
/// validity in the past. Written as PEM into `dir`: ca.pem, cert.pem, key.pem.
fn certs(dir: &Path, names: &[&str], expired: bool) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

fn tls_server(dir: &Path) -> Peer {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    Peer::reference(&["--tls-cert", &cert, "--tls-key", &key])
}

/// A short run of `clients` lurkers against `url` with a `[target.tls]` table.
fn scenario(url: &str, tls: &str, clients: u32) -> String {
    format!(
        r#"
name = "tls"
seed = 3
[target]
url = "{url}"
{tls}
[[stages]]
duration = "200ms"
target = {clients}
[[stages]]
duration = "600ms"
target = {clients}
[rooms]
count = 1
[[clients]]
chat_rate = 0
[run]
connect_timeout = "2s"
drain = "200ms"
"#
    )
}

fn run(toml: &str) -> bench::run::RunReport {
    let out = tempfile::tempdir().unwrap();
    common::run(&common::plan(toml, out.path()))
}

/// Every attempt failed for `reason`, and the run is invalid (exit 5).
fn all_failed(toml: &str, reason: &str) {
    let rep = run(toml);
    let c = &rep.results.counters;
    assert_eq!(c.connections_opened, 0, "{c:?}");
    assert!(
        c.connections_failed.get(reason).copied().unwrap_or(0) > 0,
        "{reason}: {c:?}"
    );
    assert_eq!(c.connections_failed.len(), 1, "only {reason}: {c:?}");
    assert_eq!(rep.outcome, Outcome::InvalidRun, "{reason}");
    assert!(
        bench::results::tls::explain(reason).is_some(),
        "{reason} is explained"
    );
}

#[test]
fn bundled_server_over_tls_accounts_every_delivery() {
    let out = tempfile::tempdir().unwrap();
    let toml = r#"
name = "tls-bundled"
seed = 5
[target]
protocol = "chat"
[target.server]
tls = true
[target.tls]
resume = true
[[stages]]
duration = "300ms"
target = 12
[[stages]]
duration = "1500ms"
target = 12
[rooms]
count = 2
[[clients]]
chat_rate = "5/s"
message_size = "200B"
reconnect_every = "700ms"
[run]
drain = "400ms"
"#;
    let r = common::run_completed(toml, out.path());
    let c = &r.counters;
    assert!(c.connections_opened >= 12, "{c:?}");
    assert!(c.connections_failed.is_empty(), "{c:?}");
    assert_eq!(c.tls_connections, c.connections_opened, "{c:?}");
    assert!(c.deliveries_received > 0 && c.lost == 0, "{c:?}");
    // Reconnects find the tickets of earlier sessions (the welcome that made
    // a client ready came after its server's tickets).
    assert!(c.reconnects > 0 && c.tls_resumed > 0, "{c:?}");
    // TLS records cost bytes on top of the WebSocket frames.
    assert!(c.tls_wire_bytes_sent > c.bytes_sent, "{c:?}");
    assert!(c.tls_wire_bytes_received > c.bytes_received, "{c:?}");
    for m in ["tcp_connect_time", "tls_handshake_time", "upgrade_time"] {
        assert_eq!(r.metrics[m].count, c.tls_connections, "{m}");
    }
    let tls = r.tls.as_ref().expect("tls section");
    assert!(!tls.insecure && tls.resume);
    assert_eq!(r.scenario["target"]["tls"]["self_signed"], true);
    common::assert_schema_valid(out.path());
}

#[test]
fn certificate_failures_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["localhost", "127.0.0.1"], false);
    let server = tls_server(dir.path());
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let ca = dir.path().join("ca.pem").display().to_string();
    // No ca_file: the webpki roots do not know this CA.
    all_failed(&scenario(&url, "", 3), "tls_unknown_ca");
    // The right CA, but a name the certificate does not carry.
    let wrong = format!("[target.tls]\nca_file = \"{ca}\"\nserver_name = \"wrong.example\"");
    all_failed(&scenario(&url, &wrong, 3), "tls_name_mismatch");
    // The right CA: every client gets through.
    let good = format!("[target.tls]\nca_file = \"{ca}\"");
    let rep = run(&scenario(&url, &good, 3));
    assert_eq!(
        rep.results.counters.connections_opened, 3,
        "{:?}",
        rep.results.counters
    );
    assert_eq!(rep.outcome, Outcome::Pass);
}

#[test]
fn an_expired_certificate_is_counted_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["127.0.0.1"], true);
    let server = tls_server(dir.path());
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let ca = dir.path().join("ca.pem").display().to_string();
    all_failed(
        &scenario(&url, &format!("[target.tls]\nca_file = \"{ca}\""), 2),
        "tls_expired",
    );
}

#[test]
fn insecure_connects_to_an_unknown_ca_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["127.0.0.1"], false);
    let server = tls_server(dir.path());
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let out = tempfile::tempdir().unwrap();
    let rep = common::run(&common::plan(
        &scenario(&url, "[target.tls]\ninsecure = true", 3),
        out.path(),
    ));
    assert_eq!(rep.results.counters.connections_opened, 3);
    let written = common::read_results(out.path());
    assert!(written.tls.expect("tls section").insecure);
    assert_eq!(written.scenario["target"]["tls"]["insecure"], true);
}

#[test]
fn plaintext_and_tls_mixed_up_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["127.0.0.1"], false);
    let server = tls_server(dir.path());
    // ws:// to the TLS port: the server answers in plaintext that it wants TLS.
    let url = format!("ws://127.0.0.1:{}/ws", server.addr.port());
    all_failed(&scenario(&url, "", 2), "tls_required");
    // wss:// to a plaintext port: the ClientHello gets an HTTP 400.
    let plain = Peer::reference(&[]);
    let url = format!("wss://127.0.0.1:{}/ws", plain.addr.port());
    all_failed(&scenario(&url, "", 2), "tls_plaintext_server");
}

#[test]
fn a_server_that_stalls_mid_handshake_fails_within_connect_timeout() {
    // Accepts, reads the ClientHello, and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut socks = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < until && socks.len() < 8 {
            match listener.accept() {
                Ok((s, _)) => socks.push(s),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        socks
    });
    let toml = scenario(&format!("wss://127.0.0.1:{port}/ws"), "", 2)
        .replace("connect_timeout = \"2s\"", "connect_timeout = \"500ms\"");
    all_failed(&toml, "tls_handshake");
    drop(held);
}

#[test]
fn a_server_that_answers_garbage_is_a_tls_handshake_failure() {
    // Answers every connection with a malformed handshake record, then holds it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut socks = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < until && socks.len() < 8 {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"\x16\x03\x03\x00\x04\xff\xff\xff\xff");
                    socks.push(s);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        socks
    });
    all_failed(
        &scenario(&format!("wss://127.0.0.1:{port}/ws"), "", 2),
        "tls_handshake",
    );
    drop(held);
}

#[test]
fn tls_garbage_does_not_hurt_the_server() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["127.0.0.1"], false);
    let server = tls_server(dir.path());
    let junk: [&[u8]; 3] = [
        // A handshake record header followed by nonsense.
        b"\x16\x03\x01\x00\x40 not a client hello at all, just bytes....................",
        // An oversized record length.
        b"\x16\x03\x03\xff\xff\x01\x02\x03",
        // Random-looking binary.
        &[0x16, 0x00, 0xfe, 0x13, 0x37, 0x00, 0x00, 0x42],
    ];
    for bytes in junk {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(bytes).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        // The server answers with an alert (or nothing) and closes.
        let _ = s.read_to_end(&mut sink);
        assert!(
            sink.len() < 1024,
            "no more than an alert: {} bytes",
            sink.len()
        );
    }
    // And it still serves real clients.
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let ca = dir.path().join("ca.pem").display().to_string();
    let rep = run(&scenario(
        &url,
        &format!("[target.tls]\nca_file = \"{ca}\""),
        3,
    ));
    assert_eq!(rep.results.counters.connections_opened, 3);
}

#[test]
fn bad_tls_configuration_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let parse = |toml: &str| {
        bench::scenario::parse(toml, "t.toml", None, &Default::default())
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
    };
    let missing = scenario(
        "wss://127.0.0.1:1/ws",
        "[target.tls]\nca_file = \"/nonexistent/ca.pem\"",
        1,
    );
    let e = parse(&missing);
    assert!(
        e.contains("t.toml:7:") && e.contains("`ca_file`") && e.contains("cannot read"),
        "{e}"
    );
    let not_pem = out.path().join("x.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let e = parse(&scenario(
        "wss://127.0.0.1:1/ws",
        &format!("[target.tls]\nca_file = \"{}\"", not_pem.display()),
        1,
    ));
    assert!(
        e.contains("t.toml:7:") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = parse(&scenario(
        "ws://127.0.0.1:1/ws",
        "[target.tls]\ninsecure = true",
        1,
    ));
    assert!(e.contains("wss://"), "{e}");
}

//! `wss://` against the Node `ws` peer (node:https, so OpenSSL on the other
//! side) with a self-signed certificate made here: bench trusts it through
//! `[target.tls] ca_file`, and every connection gets through.

mod common;
mod peers_common;

use peers_common::Peer;

#[test]
fn bench_over_wss_against_the_node_ws_peer() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let peer = Peer::start("ws-server.js", &["--tls-cert", &c, "--tls-key", &k]);
    let toml = format!(
        r#"
name = "peer-wss"
seed = 9
[target]
url = "wss://127.0.0.1:{port}/ws"
[target.tls]
ca_file = "{c}"
[[stages]]
duration = "200ms"
target = 6
[[stages]]
duration = "1s"
target = 6
[rooms]
count = 1
[[clients]]
chat_rate = "4/s"
message_size = "100B"
[run]
drain = "300ms"
"#,
        port = peer.addr.port()
    );
    let out = tempfile::tempdir().unwrap();
    let r = common::run_completed(&toml, out.path());
    let c = &r.counters;
    assert_eq!(c.connections_opened, 6, "{c:?}");
    assert_eq!(c.tls_connections, 6, "{c:?}");
    assert!(c.deliveries_received > 0 && c.lost == 0, "{c:?}");
    assert_eq!(c.acks_received, c.chat_sent, "{c:?}");
}

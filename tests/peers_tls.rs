//! `wss://` against the Node peers (node:https, so OpenSSL on the other
//! side) with a self-signed certificate made here: bench trusts it through
//! `[target.tls] ca_file`, and every connection gets through: the `ws`
//! peer (chat), and the Socket.IO peer over each transport (WebSocket,
//! long polling over https with reqwest, polling upgraded to WebSocket).

mod common;
mod peers_common;

use peers_common::Peer;

/// A self-signed leaf for 127.0.0.1 in `dir`: (cert.pem, key.pem) paths.
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn bench_over_wss_against_the_node_ws_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = self_signed(dir.path());
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

#[test]
fn bench_over_tls_against_the_socketio_peer_on_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = self_signed(dir.path());
    let peer = Peer::start("socketio-server.js", &["--tls-cert", &c, "--tls-key", &k]);
    for transport in ["websocket", "polling", "polling_upgrade"] {
        let toml = format!(
            r#"
name = "peer-sio-tls"
seed = 9
[target]
protocol = "socketio"
url = "wss://127.0.0.1:{port}/"
[target.tls]
ca_file = "{c}"
[target.socketio]
transport = "{transport}"
[[stages]]
duration = "200ms"
target = 4
[[stages]]
duration = "1200ms"
target = 4
[rooms]
count = 1
[[clients]]
chat_rate = "4/s"
message_size = "100B"
[run]
drain = "500ms"
"#,
            port = peer.addr.port()
        );
        let out = tempfile::tempdir().unwrap();
        let r = common::run_completed(&toml, out.path());
        let c = &r.counters;
        assert_eq!(c.connections_opened, 4, "{transport}: {c:?}");
        assert!(c.connections_failed.is_empty(), "{transport}: {c:?}");
        assert!(
            c.deliveries_received > 0 && c.lost == 0,
            "{transport}: {c:?}"
        );
        assert_eq!(c.acks_received, c.chat_sent, "{transport}: {c:?}");
        // Over polling, reqwest does the TLS: no stage breakdown.
        let stages = u64::from(transport != "polling") * 4;
        assert_eq!(c.tls_connections, stages, "{transport}: {c:?}");
    }
}

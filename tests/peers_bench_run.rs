//! End to end: `bench run` drives the real Node peers through
//! `[target.server] command`, with `protocol = "socketio"` against the
//! Socket.IO server and `protocol = "chat"` against the `ws` server, and
//! accounts every delivery (none lost, every chat acked); also with the
//! Socket.IO transports `polling` and `polling_upgrade`.

mod peers_common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// How one run is set up.
struct Setup<'a> {
    protocol: &'a str,
    script: &'a str,
    url_path: &'a str,
    /// Extra flags for the peer.
    server_args: &'a str,
    clients: u32,
    /// Appended to the scenario (e.g. a `[target.socketio]` table).
    extra: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            protocol: "socketio",
            script: "socketio-server.js",
            url_path: "/",
            server_args: "",
            clients: 20,
            extra: "",
        }
    }
}

fn run(name: &str, setup: &Setup) -> Value {
    let Setup {
        protocol,
        script,
        url_path,
        server_args,
        clients,
        extra,
    } = setup;
    // Fails clearly when node_modules is missing (see peers_common).
    let dir = peers_common::peers_dir();
    assert!(
        dir.join("node_modules/socket.io").exists() && dir.join("node_modules/ws").exists(),
        "scripts/peers/node_modules is missing: run `npm ci` in scripts/peers"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let script = dir.join(script);
    let scenario = format!(
        r#"
name = "{name}"
seed = 3
[target]
protocol = "{protocol}"
[target.server]
command = ["node", "{script}", "--port", "{port}"{server_args}]
url = "ws://127.0.0.1:{port}{url_path}"
ready_timeout = "30s"
[[stages]]
duration = "1s"
target = {clients}
[[stages]]
duration = "2s"
target = {clients}
[rooms]
count = 4
per_client = 2
[[clients]]
chat_rate = "2/s"
ping_interval = "500ms"
typing = true
[run]
drain = "1s"
{extra}
"#,
        script = script.display()
    );
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario).expect("write scenario");
    let out = tmp.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&file)
        .status()
        .expect("run bench");
    // 5 = the run completed but the generator flagged itself saturated,
    // which a loaded CI machine may do; the accounting below still holds.
    assert!(
        matches!(status.code(), Some(0 | 5)),
        "bench run exited with {status}"
    );
    let results = std::fs::read(Path::new(&out).join("results.json")).expect("results.json");
    serde_json::from_slice(&results).expect("results JSON")
}

fn assert_accounting(r: &Value, clients: u64) {
    let c = &r["counters"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("counter {k}: {c}"));
    assert_eq!(r["interrupted"], Value::Bool(false));
    assert_eq!(n("connections_opened"), clients, "{c}");
    assert!(n("chat_sent") > 0, "{c}");
    assert_eq!(n("acks_received"), n("chat_sent"), "{c}");
    assert!(n("deliveries_received") > 0, "{c}");
    assert_eq!(n("deliveries_received"), n("deliveries_expected"), "{c}");
    assert_eq!((n("lost"), n("duplicates")), (0, 0), "{c}");
    assert_eq!(c["errors"], serde_json::json!({}), "{c}");
    for metric in [
        "ack_latency",
        "delivery_latency",
        "ping_rtt",
        "connect_time",
    ] {
        assert!(
            r["metrics"][metric]["count"].as_u64().unwrap_or(0) > 0,
            "{metric} measured: {}",
            r["metrics"]
        );
    }
}

#[test]
fn bench_run_drives_the_socketio_peer() {
    assert_accounting(&run("sio", &Setup::default()), 20);
}

#[test]
fn bench_run_drives_the_ws_peer() {
    let setup = Setup {
        protocol: "chat",
        script: "ws-server.js",
        url_path: "/ws",
        ..Setup::default()
    };
    assert_accounting(&run("ws", &setup), 20);
}

/// permessage-deflate against `ws`'s own zlib implementation: the peer
/// keeps context takeover both ways, so the generator's history-replay
/// compressor and inflater are checked against a real LZ77 window.
#[test]
fn bench_run_drives_the_ws_peer_with_permessage_deflate() {
    let setup = Setup {
        protocol: "chat",
        script: "ws-server.js",
        url_path: "/ws",
        server_args: r#", "--deflate""#,
        extra: "[target.deflate]\nclient_max_window_bits = 12\n",
        ..Setup::default()
    };
    let r = run("ws-deflate", &setup);
    assert_accounting(&r, 20);
    let c = &r["counters"];
    assert_eq!(c["deflate_connections"], 20, "{c}");
    let ratio = |k: &str| r["compression"][k].as_f64().unwrap_or(0.0);
    assert!(ratio("ratio_sent") > 1.0, "{}", r["compression"]);
    assert!(ratio("ratio_received") > 1.0, "{}", r["compression"]);
}

/// The peer allows polling only, so every client really long-polls.
#[test]
fn bench_run_drives_the_socketio_peer_over_long_polling() {
    let setup = Setup {
        server_args: r#", "--transports", "polling""#,
        clients: 10,
        extra: "[target.socketio]\ntransport = \"polling\"\n",
        ..Setup::default()
    };
    let r = run("sio-polling", &setup);
    assert_accounting(&r, 10);
    assert_eq!(r["scenario"]["target"]["socketio"]["transport"], "polling");
}

#[test]
fn bench_run_drives_the_socketio_peer_polling_then_upgraded() {
    let setup = Setup {
        clients: 10,
        extra: "[target.socketio]\ntransport = \"polling_upgrade\"\n",
        ..Setup::default()
    };
    let r = run("sio-upgrade", &setup);
    assert_accounting(&r, 10);
    assert_eq!(
        r["scenario"]["target"]["socketio"]["transport"],
        "polling_upgrade"
    );
}

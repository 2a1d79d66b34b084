//! End to end: `bench run` drives servers written the way tutorials write
//! them (`scripts/peers/json-broadcast.js`, `json-rooms.js`,
//! `socketio-tutorial.js`), which number nothing, so bench accounts every
//! delivery itself (generator-side accounting, docs/metrics.md). Each peer
//! counts what it delivered and what it dropped (`--drop-every N`), and
//! bench's figures must match: every delivery seen, and the dropped ones
//! as `lost` (within 1 %). Plus scenario mistakes in `[target.json]`: exit
//! 2 with file:line.

mod peers_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use peers_common::Peer;
use serde_json::Value;

/// The peer's own counts (`GET /stats`).
fn stats(addr: SocketAddr) -> Value {
    let mut s = TcpStream::connect(addr).expect("connect to /stats");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    let body = resp.split("\r\n\r\n").nth(1).expect("body");
    serde_json::from_str(body).expect("stats JSON")
}

/// Runs bench against `peer` with a scenario made of `target` (the
/// `[target.*]` tables after `[target] url`) and `rooms`.
fn run(peer: &Peer, target: &str, rooms: &str, clients: &str) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = format!(
        r#"
name = "json-e2e"
seed = 5
[target]
url = "ws://{addr}/"
{target}
[[stages]]
duration = "1s"
target = 20
[[stages]]
duration = "3s"
target = 20
{rooms}
[[clients]]
chat_rate = "2/s"
message_size = "24..96"
{clients}
[run]
drain = "2s"
"#,
        addr = peer.addr
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
    // 5: the generator flagged itself saturated on a loaded machine; the
    // accounting still holds. 3: a threshold (none here) cannot fail.
    assert!(
        matches!(status.code(), Some(0 | 5)),
        "bench run exited with {status}"
    );
    let results = std::fs::read(out.join("results.json")).expect("results.json");
    serde_json::from_slice(&results).expect("results JSON")
}

fn n(r: &Value, k: &str) -> u64 {
    r["counters"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {k}: {}", r["counters"]))
}

/// results.json of a json run still follows docs/results-schema.json.
fn assert_schema(r: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results-schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema JSON");
    let v = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let errors: Vec<String> = v
        .iter_errors(r)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// bench saw every delivery the peer made, and nothing is called lost.
fn assert_all_delivered(r: &Value, peer: &Value) {
    let c = &r["counters"];
    assert_eq!(r["interrupted"], Value::Bool(false));
    assert_eq!(n(r, "connections_opened"), 20, "{c}");
    assert!(n(r, "chat_sent") > 0, "{c}");
    assert_eq!(
        peer["messages"].as_u64(),
        Some(n(r, "chat_sent")),
        "{peer} {c}"
    );
    assert!(n(r, "deliveries_received") > 0, "{c}");
    assert_eq!(
        n(r, "deliveries_received"),
        n(r, "deliveries_expected"),
        "{c}"
    );
    assert_eq!((n(r, "lost"), n(r, "duplicates")), (0, 0), "{c}");
    // Join races (a delivery before bench saw the welcome/join ack) are
    // deliveries the peer made too, counted apart.
    let seen =
        n(r, "deliveries_received") + n(r, "deliveries_unconfirmed") + n(r, "deliveries_late");
    assert_eq!(peer["deliveries"].as_u64(), Some(seen), "{peer} {c}");
    assert_eq!(peer["dropped"].as_u64(), Some(0), "{peer}");
    assert_eq!(c["unmatched"], serde_json::json!({}), "{c}");
    assert_eq!(c["errors"], serde_json::json!({}), "{c}");
    assert!(
        r["metrics"]["delivery_latency"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        r["metrics"]
    );
}

/// The peer's drops are bench's loss, within 1 % (a drop to a client in
/// a join race was never expected, so it cannot be called lost).
fn assert_drops_are_loss(r: &Value, peer: &Value) {
    let c = &r["counters"];
    let dropped = peer["dropped"].as_u64().expect("dropped");
    assert!(dropped > 10, "the peer dropped too little to judge: {peer}");
    let lost = n(r, "lost");
    assert!(
        lost.abs_diff(dropped) <= (dropped / 100).max(1),
        "lost {lost} vs the peer's dropped {dropped}: {c}"
    );
    assert_eq!(
        n(r, "deliveries_expected"),
        n(r, "deliveries_received") + lost,
        "{c}"
    );
    assert_eq!(n(r, "duplicates"), 0, "{c}");
    let seen =
        n(r, "deliveries_received") + n(r, "deliveries_unconfirmed") + n(r, "deliveries_late");
    assert_eq!(peer["deliveries"].as_u64(), Some(seen), "{peer} {c}");
}

const BROADCAST: &str = r#"
protocol = "json"
[target.json]
membership = "all"
echo_to_sender = true
ping_text = "ping"
pong_text = "pong"
[target.json.templates]
chat = { type = "message", message = "{text}" }
[target.json.match]
welcome = { "/type" = "welcome" }
chat = { "/type" = "broadcast" }
[target.json.extract]
text = "/message"
timestamp = "/timestamp"
"#;
const ONE_ROOM: &str = "[rooms]\ncount = 1\nper_client = 1";

#[test]
fn a_broadcast_to_all_server_is_fully_accounted() {
    let peer = Peer::start("json-broadcast.js", &[]);
    let r = run(&peer, BROADCAST, ONE_ROOM, "ping_interval = \"300ms\"");
    assert_all_delivered(&r, &stats(peer.addr));
    assert_schema(&r);
    // The text heartbeat was timed.
    assert!(
        r["metrics"]["ping_rtt"]["count"].as_u64().unwrap_or(0) > 0,
        "{}",
        r["metrics"]
    );
}

#[test]
fn a_broadcast_server_that_drops_messages_shows_them_as_lost() {
    let peer = Peer::start("json-broadcast.js", &["--drop-every", "7"]);
    let r = run(&peer, BROADCAST, ONE_ROOM, "");
    assert_drops_are_loss(&r, &stats(peer.addr));
}

const SECRET: &str = "tutorial-secret";

fn rooms_target() -> String {
    format!(
        r#"
protocol = "json"
[target.auth]
mode = "first_message"
secret = "{SECRET}"
[target.json]
heartbeat = "websocket"
[target.json.templates]
hello = {{ type = "auth", token = "{{token}}" }}
join = {{ type = "room:join", room = "{{room}}" }}
chat = {{ type = "chat:message", room = "{{room}}", text = "{{text}}" }}
pong = {{ type = "pong" }}
[target.json.match]
welcome = {{ "/type" = "welcome" }}
joined = {{ "/type" = "room:joined" }}
ack = {{ "/type" = "chat:sent" }}
chat = {{ "/type" = "chat:message" }}
error = {{ "/type" = "error" }}
ping = {{ "/type" = "ping" }}
[target.json.extract]
room = "/room"
text = "/text"
sender = "/from"
error = "/code"
"#
    )
}
const ROOMS: &str = "[rooms]\ncount = 4\nper_client = 2";

#[test]
fn a_rooms_server_with_first_message_auth_is_fully_accounted() {
    let peer = Peer::start(
        "json-rooms.js",
        &["--jwt-secret", SECRET, "--ping-interval", "300ms"],
    );
    let r = run(&peer, &rooms_target(), ROOMS, "ping_interval = \"300ms\"");
    let s = stats(peer.addr);
    assert_all_delivered(&r, &s);
    assert_eq!(
        n(&r, "acks_received"),
        n(&r, "chat_sent"),
        "{}",
        r["counters"]
    );
    assert!(r["metrics"]["ack_latency"]["count"].as_u64().unwrap_or(0) > 0);
    // WebSocket-level pings timed; the server's JSON pings answered.
    assert!(
        r["metrics"]["ping_rtt"]["count"].as_u64().unwrap_or(0) > 0,
        "{}",
        r["metrics"]
    );
    assert!(s["pongs"].as_u64().unwrap_or(0) > 0, "{s}");
    assert_eq!(s["auth_failures"].as_u64(), Some(0), "{s}");
    assert_schema(&r);
}

#[test]
fn a_rooms_server_that_drops_messages_shows_them_as_lost() {
    let peer = Peer::start(
        "json-rooms.js",
        &["--jwt-secret", SECRET, "--drop-every", "5"],
    );
    let r = run(&peer, &rooms_target(), ROOMS, "");
    assert_drops_are_loss(&r, &stats(peer.addr));
}

const SIO_TUTORIAL: &str = r#"
protocol = "socketio"
[target.socketio]
accounting = "generator"
[target.socketio.events]
join = "room:join"
chat = "message:send"
delivery = "message:new"
[target.socketio.templates]
join = "{room}"
chat = { roomId = "{room}", content = "{text}" }
[target.socketio.fields]
room = "roomId"
text = "content"
"#;

#[test]
fn a_socketio_server_without_seq_or_ts_is_fully_accounted() {
    let peer = Peer::start("socketio-tutorial.js", &[]);
    let r = run(&peer, SIO_TUTORIAL, ROOMS, "");
    assert_all_delivered(&r, &stats(peer.addr));
    assert_eq!(
        n(&r, "acks_received"),
        n(&r, "chat_sent"),
        "{}",
        r["counters"]
    );
}

#[test]
fn a_socketio_server_that_drops_messages_shows_them_as_lost() {
    let peer = Peer::start("socketio-tutorial.js", &["--drop-every", "6"]);
    let r = run(&peer, SIO_TUTORIAL, ROOMS, "");
    assert_drops_are_loss(&r, &stats(peer.addr));
}

/// Mistakes in `[target.json]` stop `bench run` before any socket opens,
/// with exit 2, the file:line and a suggestion.
#[test]
fn target_json_mistakes_exit_2_with_file_and_line() {
    let cases = [
        (
            "[target.json.templates]\nchat = { t = \"{txt}\" }\n[target.json.match]\nchat = { \"/type\" = \"b\" }",
            ":8:8: bad `chat` in [target.json.templates]: unknown placeholder `{txt}`; did you mean `{text}`?",
        ),
        (
            "[target.json.templates]\nchat = { t = \"{text}\" }\n[target.json.match]\nchat = { \"/type\" = \"b\" }\n[target.json.extract]\nroom = \"room\"",
            ":12:8: bad `room` in [target.json.extract]: \"room\" is not a JSON pointer: it must start with `/`, e.g. \"/room\"",
        ),
        (
            "[target.json.templates]\nchat = { t = \"{text}\" }\n[target.json.match]\nchat = {}",
            ":10:8: bad `chat` in [target.json.match]: an empty matcher can never tell frames apart",
        ),
        (
            "[target.json.templates]\nchat = { t = \"{text}\" }\n[target.json.match]\nchat = { \"/t\" = 1 }\n[rooms]\ncount = 3",
            ":12:1: [target.json] membership = \"all\" (a server that broadcasts to every client) needs [rooms] count = 1",
        ),
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    for (extra, want) in cases {
        let file = tmp.path().join("s.toml");
        let text = format!(
            "name = \"t\"\n[target]\nprotocol = \"json\"\nurl = \"ws://127.0.0.1:9/\"\n\
             [target.json]\nmembership = \"all\"\n{extra}\n[[stages]]\nduration = \"1s\"\ntarget = 1\n[[clients]]\n"
        );
        std::fs::write(&file, &text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_bench"))
            .arg("run")
            .arg(&file)
            .output()
            .expect("run bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        let at = format!("{}{want}", file.display());
        assert!(stderr.contains(&at), "{text}\nwant {at}\ngot {stderr}");
    }
}

/// A server frozen for 800 ms (it holds every broadcast, then sends them)
/// shows the stall in the corrected delivery latency, measured from each
/// message's intended send time; nothing is lost, only late.
#[test]
fn a_stalled_broadcast_server_shows_the_stall_in_delivery_latency() {
    let peer = Peer::start(
        "json-broadcast.js",
        &["--stall-after", "1500ms", "--stall-for", "800ms"],
    );
    let r = run(&peer, BROADCAST, ONE_ROOM, "");
    assert_all_delivered(&r, &stats(peer.addr));
    let max = r["metrics"]["delivery_latency"]["max"]
        .as_f64()
        .expect("max");
    assert!(
        max >= 700.0,
        "the 800 ms stall is missing from delivery_latency: {}",
        r["metrics"]["delivery_latency"]
    );
}

/// Frames no matcher knows are counted by kind and the first few kept as
/// samples: here the peer's greeting, with no `welcome` matcher.
#[test]
fn unmatched_frames_are_counted_and_sampled() {
    let peer = Peer::start("json-broadcast.js", &[]);
    let target = BROADCAST.replace("welcome = { \"/type\" = \"welcome\" }\n", "");
    let r = run(&peer, &target, ONE_ROOM, "");
    let c = &r["counters"];
    assert_eq!(
        c["unmatched"]["no_match"], 20,
        "one greeting per client: {c}"
    );
    let samples = c["unmatched_samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 5, "{c}");
    assert!(
        samples[0]
            .as_str()
            .is_some_and(|s| s.starts_with(r#"no_match: {"type":"welcome""#)),
        "{c}"
    );
    // Without a greeting to wait for, clients are ready at once and nothing is lost.
    assert_eq!((n(&r, "lost"), n(&r, "duplicates")), (0, 0), "{c}");
    assert_eq!(
        n(&r, "deliveries_received"),
        n(&r, "deliveries_expected"),
        "{c}"
    );
}

/// Clients that reconnect every ~second (close 1000, connect, re-auth,
/// rejoin): messages sent while a client was away were never owed to it,
/// and ones in flight when it left are leave races, not loss.
#[test]
fn reconnect_churn_is_not_loss() {
    let peer = Peer::start("json-rooms.js", &["--jwt-secret", SECRET]);
    let r = run(&peer, &rooms_target(), ROOMS, "reconnect_every = \"1s\"");
    let c = &r["counters"];
    assert!(n(&r, "reconnects") > 10, "the scenario churned: {c}");
    assert_eq!((n(&r, "lost"), n(&r, "duplicates")), (0, 0), "{c}");
    assert_eq!(
        n(&r, "deliveries_received"),
        n(&r, "deliveries_expected"),
        "{c}"
    );
    assert!(n(&r, "deliveries_received") > 0, "{c}");
}

/// `bench probe` against the broadcast peer guesses a `[target.json]`
/// that runs as is: from a URL to a measured run.
#[test]
fn probe_guesses_a_table_that_runs() {
    let peer = Peer::start("json-broadcast.js", &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "probe",
            &format!("ws://{}/", peer.addr),
            "--wait",
            "500ms",
            "--send",
        ])
        .arg(r#"{"type":"message","message":"hello from bench"}"#)
        .output()
        .expect("run bench probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#"#   < {"type":"welcome""#), "{stdout}");
    assert!(
        stdout.contains(r#"chat = { "/type" = "broadcast" }"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"welcome = { "/type" = "welcome" }"#),
        "{stdout}"
    );
    assert!(stdout.contains("text = \"/message\""), "{stdout}");
    // The guess, pasted under [target], measures the server.
    let target = format!("protocol = \"json\"\n{stdout}");
    let r = run(&peer, &target, ONE_ROOM, "");
    let c = &r["counters"];
    assert!(n(&r, "deliveries_received") > 0, "{c}");
    assert_eq!((n(&r, "lost"), n(&r, "duplicates")), (0, 0), "{c}");
    assert_eq!(
        n(&r, "deliveries_received"),
        n(&r, "deliveries_expected"),
        "{c}"
    );
}

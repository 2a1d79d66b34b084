//! `protocol = "json"` against the bundled reference server, with
//! `[target.json]` describing protocol v1 as a generic JSON server: the
//! generator-side accounting must agree with what the v1 dialect's seq
//! accounting says about the same server (nothing lost, every chat acked,
//! every delivery expected), and every frame the server sends is matched.
//! This is also the pairing `scripts/bench-json-dialect` measures.

use std::process::Command;

use serde_json::Value;

const SCENARIO: &str = r#"
name = "json-on-v1"
seed = 7
[target]
protocol = "json"
[[stages]]
duration = "1s"
target = 30
[[stages]]
duration = "3s"
target = 30
[rooms]
count = 4
per_client = 2
[[clients]]
chat_rate = "2/s"
typing = true
ping_interval = "300ms"
[run]
drain = "2s"
[target.json]
[target.json.templates]
join = { type = "join", room = "{room}" }
chat = { type = "chat", room = "{room}", id = "{id}", text = "{text}", ts = "{ts_us}" }
typing = { type = "typing", room = "{room}" }
ping = { type = "ping", ts = "{ts_us}" }
[target.json.match]
welcome = { "/type" = "welcome" }
joined = { "/type" = "joined" }
ack = { "/type" = "ack" }
chat = { "/type" = "chat" }
presence = { "/type" = "presence" }
error = { "/type" = "error" }
pong = { "/type" = "pong" }
[target.json.extract]
room = "/room"
id = "/id"
text = "/text"
sender = "/from"
error = "/code"
"#;

#[test]
fn json_dialect_accounts_the_reference_server_like_v1() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, SCENARIO).expect("write");
    let out = tmp.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&file)
        .status()
        .expect("run bench");
    assert!(
        matches!(status.code(), Some(0 | 5)),
        "bench run exited with {status}"
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results"))
            .expect("JSON");
    let c = &r["counters"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k}: {c}"));
    assert_eq!(n("connections_opened"), 30, "{c}");
    assert!(n("chat_sent") > 0, "{c}");
    assert_eq!(n("acks_received"), n("chat_sent"), "{c}");
    assert!(n("deliveries_received") > 0, "{c}");
    assert_eq!(n("deliveries_received"), n("deliveries_expected"), "{c}");
    assert_eq!(
        (n("lost"), n("duplicates"), n("deliveries_late")),
        (0, 0, 0),
        "{c}"
    );
    assert_eq!(c["errors"], serde_json::json!({}), "{c}");
    // Only the typing frames (no matcher for them here) are unmatched.
    for (kind, count) in c["unmatched"].as_object().expect("unmatched") {
        assert_eq!(kind, "no_match", "{c}");
        assert!(count.as_u64().unwrap_or(0) > 0);
    }
    for s in c["unmatched_samples"].as_array().into_iter().flatten() {
        assert!(
            s.as_str().is_some_and(|s| s.contains(r#""type":"typing""#)),
            "{c}"
        );
    }
    for metric in [
        "delivery_latency",
        "delivery_latency_service",
        "ack_latency",
        "ping_rtt",
    ] {
        assert!(
            r["metrics"][metric]["count"].as_u64().unwrap_or(0) > 0,
            "{metric}: {}",
            r["metrics"]
        );
    }
}

//! permessage-deflate end to end: `bench run` against the bundled reference
//! server with `[target] deflate`, in both server modes (shared compression
//! without context takeover, per-connection history with it), and an offer
//! the server declines. Every delivery is accounted and the compression
//! figures come out of real compressed frames.

mod common;

fn scenario(name: &str, deflate: &str, server_args: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 7
[target]
protocol = "chat"
deflate = {deflate}
[target.server]
args = [{server_args}]
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
ping_interval = "400ms"
typing = true
[run]
drain = "400ms"
"#
    )
}

fn run(name: &str, deflate: &str, server_args: &str) -> bench::results::RunResults {
    let dir = tempfile::tempdir().unwrap();
    let r = common::run(&common::plan(
        &scenario(name, deflate, server_args),
        dir.path(),
    ))
    .results;
    assert!(!r.interrupted, "{name}: {:?}", r.interrupt_reason);
    let c = &r.counters;
    assert_eq!(c.connections_opened, 12, "{name}: {c:?}");
    assert!(c.deliveries_received > 0 && c.lost == 0, "{name}: {c:?}");
    assert_eq!(c.acks_received, c.chat_sent, "{name}: {c:?}");
    assert!(c.errors.is_empty(), "{name}: {c:?}");
    common::assert_accounting(&r);
    r
}

#[test]
fn bundled_server_without_context_takeover() {
    // `deflate = true` adds `--deflate` to the bundled server's flags.
    let r = run("deflate-shared", "true", "");
    assert!(r.scenario["target"]["endpoint"]["args"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == "--deflate")));
    let c = &r.counters;
    assert_eq!(c.deflate_connections, 12, "{c:?}");
    let z = r.compression.expect("compression figures");
    assert_eq!(z.connections, 12);
    // 200-byte filler text and repetitive JSON compress well either way.
    assert!(z.ratio_sent.unwrap() > 1.2, "{z:?}");
    assert!(z.ratio_received.unwrap() > 1.2, "{z:?}");
    assert!(c.wire_bytes_received < c.payload_bytes_received, "{c:?}");
}

#[test]
fn bundled_server_with_context_takeover_and_small_windows() {
    let r = run(
        "deflate-takeover",
        "{ client_max_window_bits = 9, server_max_window_bits = 10 }",
        r#""--deflate", "--deflate-context-takeover", "--deflate-threshold", "0B""#,
    );
    let z = r.compression.expect("compression figures");
    assert_eq!(z.connections, 12);
    assert!(z.ratio_sent.unwrap() > 1.2, "{z:?}");
    assert!(z.ratio_received.unwrap() > 1.2, "{z:?}");
}

#[test]
fn a_declined_offer_runs_uncompressed() {
    let r = run("deflate-declined", "true", r#""--deflate=false""#);
    let c = &r.counters;
    assert_eq!(c.deflate_connections, 0, "{c:?}");
    let z = r.compression.expect("compression figures");
    assert_eq!(z.connections, 0);
    // Uncompressed: the wire carries the payload plus frame headers.
    assert!(z.ratio_received.unwrap() < 1.0, "{z:?}");
    assert!(
        c.payload_bytes_sent > 0 && c.wire_bytes_sent > c.payload_bytes_sent,
        "{c:?}"
    );
}

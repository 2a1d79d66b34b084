//! Targets and connection paths: JWT auth in each mode, a rejected token
//! failing the stage, and a `[target.server] command`. Every run is a second or two against real `bench serve` processes.

mod common;

fn auth_scenario(mode: &str) -> String {
    format!(
        r#"
name = "auth-{mode}"
[target]
protocol = "chat"
auth = {{ mode = "{mode}", secret = "right-secret" }}
[target.server]
args = ["--jwt-secret", "right-secret"]
[[stages]]
duration = "300ms"
target = 10
[[stages]]
duration = "1500ms"
target = 10
[rooms]
count = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
ping_interval = "300ms"
[run]
drain = "300ms"
"#
    )
}

#[test]
fn jwt_auth_works_in_every_mode() {
    for mode in ["query", "header", "first_message"] {
        let dir = tempfile::tempdir().unwrap();
        let r = common::run(&common::plan(&auth_scenario(mode), dir.path())).results;
        let c = &r.counters;
        assert!(!r.interrupted, "{mode}: {:?}", r.interrupt_reason);
        assert_eq!(c.connections_opened, 10, "{mode}: {c:?}");
        assert!(c.connections_failed.is_empty(), "{mode}: {c:?}");
        assert!(c.deliveries_received > 0 && c.lost == 0, "{mode}: {c:?}");
        assert!(r.metrics["ping_rtt"].count > 0, "{mode}: no ping_rtt");
        common::assert_accounting(&r);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rejected_tokens_fail_the_stage_and_interrupt() {
    // A server command (not the bundled server, whose secret the validator
    // cross-checks) with a secret the scenario does not know.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "auth-rejected"
[target]
protocol = "chat"
auth = {{ mode = "query", secret = "wrong-secret" }}
[target.server]
command = ["{bench}", "serve", "--listen", "127.0.0.1:{port}", "--jwt-secret", "right-secret"]
url = "ws://127.0.0.1:{port}/ws"
[[stages]]
duration = "300ms"
target = 10
[[stages]]
duration = "3s"
target = 10
[rooms]
count = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
"#,
        bench = common::BENCH
    );
    let r = common::run(&common::plan(&toml, dir.path())).results;
    let c = &r.counters;
    assert_eq!(c.connections_opened, 0, "{c:?}");
    assert!(
        c.connections_failed.get("http_401").copied().unwrap_or(0) >= 10,
        "{c:?}"
    );
    assert!(r.interrupted);
    let reason = r.interrupt_reason.unwrap_or_default();
    assert!(reason.contains("failed:"), "{reason}");
}

#[test]
fn command_target_is_started_sampled_and_stopped() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "command"
[target]
protocol = "chat"
[target.server]
command = ["{bench}", "serve", "--listen", "127.0.0.1:{port}"]
url = "ws://127.0.0.1:{port}/ws"
[[stages]]
duration = "300ms"
target = 8
[[stages]]
duration = "1500ms"
target = 8
[rooms]
count = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
[run]
drain = "300ms"
"#,
        bench = common::BENCH
    );
    let r = common::run(&common::plan(&toml, dir.path())).results;
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    assert_eq!(r.counters.connections_opened, 8);
    assert_eq!(r.server.pids.len(), 1);
    assert!(r.server.rss_peak_bytes.unwrap_or(0) > 0);
    let alive = unsafe { libc::kill(r.server.pids[0] as libc::pid_t, 0) } == 0;
    assert!(!alive, "server command left running");
}

#[test]
fn server_heartbeat_pings_are_answered() {
    // The server pings every 100 ms and drops a connection with no pong
    // within 300 ms: clients that answer stay connected for the whole run.
    let dir = tempfile::tempdir().unwrap();
    let r = common::run(&common::plan(
        r#"
name = "heartbeat"
[target]
protocol = "chat"
[target.server]
args = ["--heartbeat-interval", "100ms", "--heartbeat-timeout", "300ms"]
[[stages]]
duration = "200ms"
target = 10
[[stages]]
duration = "2s"
target = 10
[rooms]
count = 1
[[clients]]
name = "lurker"
chat_rate = "0/s"
[run]
drain = "200ms"
"#,
        dir.path(),
    ))
    .results;
    let c = &r.counters;
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    assert_eq!(c.connections_opened, 10, "{c:?}");
    assert_eq!(c.closes.get("1000").copied(), Some(10), "{c:?}");
    assert_eq!(c.reconnects, 0, "{c:?}");
    // Server pings arrived (each counts as a received frame).
    assert!(c.frames_received >= 10 * 10, "{c:?}");
}

#[test]
fn bundled_server_with_two_processes() {
    // Without --redis each process has its own rooms, so this only checks
    // that bench starts, reaches and stops the supervised pair (one pinging
    // client per room; nothing crosses processes).
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
name = "two-processes"
[target]
protocol = "chat"
[target.server]
processes = 2
[[stages]]
duration = "300ms"
target = 20
[[stages]]
duration = "1200ms"
target = 20
[rooms]
count = 20
[[clients]]
name = "pinger"
ping_interval = "200ms"
[run]
drain = "300ms"
"#;
    let r = common::run(&common::plan(toml, dir.path())).results;
    let c = &r.counters;
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    assert_eq!(c.connections_opened, 20, "{c:?}");
    assert!(c.connections_failed.is_empty(), "{c:?}");
    assert!(r.metrics["ping_rtt"].count > 0, "no ping_rtt");
}

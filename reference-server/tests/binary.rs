//! The `reference-server` binary: the `listening on` line, the secret from
//! `BENCH_JWT_SECRET`, `--config` files, and graceful SIGTERM/SIGINT (1012, exit 0).

mod common;

use std::process::{Child, Command};

use common::*;

/// Starts the binary; returns the child and the `/ws` URL on its port.
fn spawn_ws(server: &mut Command) -> (Child, String) {
    let (child, addr) = spawn_listening(server);
    (child, format!("ws://{addr}/ws"))
}

#[tokio::test]
async fn prints_listening_line_reads_env_secret_and_drains_on_sigterm() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_reference-server"));
    server
        .args(["--listen", "127.0.0.1:0", "--drain-timeout", "3s"])
        .env("BENCH_JWT_SECRET", SECRET);
    let (mut child, url) = spawn_ws(&mut server);
    // The secret came from the environment: no token means first-frame auth,
    // a bad one is refused.
    assert_eq!(refused(&format!("{url}?token=bad"), &[]).await.0, 401);
    let mut c = Client::connect(&format!("{url}?token={}", token("env", None, 60)), &[])
        .await
        .unwrap();
    assert_eq!(c.expect("welcome").await["user"], "env");

    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(c.expect_close().await, 1012);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_flags_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["--chaos-drop", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chaos-drop"));
}

#[tokio::test]
async fn config_file_is_read_and_flags_win() {
    let dir = std::env::temp_dir().join(format!("rs-bin-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        "heartbeat-interval = \"250ms\"\nlisten = \"127.0.0.1:1\"\nallowed-origins = [\"https://ok.example\"]\n",
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_reference-server"));
    server
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("BENCH_JWT_SECRET");
    let (mut child, url) = spawn_ws(&mut server);
    assert_eq!(
        refused(&url, &[("Origin", "https://bad.example")]).await.0,
        403
    );
    let mut c = Client::connect(&url, &[("Origin", "https://ok.example")])
        .await
        .unwrap();
    assert_eq!(c.expect("welcome").await["heartbeat_ms"], 250);
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(c.expect_close().await, 1012);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

//! The `reference-server` binary: the `listening on` line, the secret from
//! `BENCH_JWT_SECRET`, and a graceful SIGTERM (1012, exit 0).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[tokio::test]
async fn prints_listening_line_reads_env_secret_and_drains_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["--listen", "127.0.0.1:0", "--drain-timeout", "3s"])
        .env("BENCH_JWT_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let url = format!("ws://{addr}/ws");
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

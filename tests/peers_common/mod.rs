//! Shared by the `peers_*` interop tests: starts a real Node peer from
//! `scripts/peers/` on port 0 and reads its `listening on HOST:PORT` line.
//! Fails (never skips) when node_modules is missing: `scripts/test` installs
//! them with `npm ci`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/peers")
}

/// A running peer; stopped with SIGTERM (so it can stop its own children,
/// e.g. redis-server) when dropped.
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let dir = peers_dir();
        for module in ["ws", "socket.io", "@socket.io/redis-adapter", "redis"] {
            assert!(
                dir.join("node_modules").join(module).exists(),
                "scripts/peers/node_modules/{module} is missing: run `npm ci` in scripts/peers \
                 (scripts/test does this before the tests)"
            );
        }
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(script)).args(["--port", "0"]).args(args);
        cmd.current_dir(&dir);
        Peer::spawn(cmd, &format!("node {script}"))
    }

    /// The bundled reference server (`bench serve`), for side-by-side checks.
    pub fn reference(args: &[&str]) -> Peer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        Peer::spawn(cmd, "bench serve")
    }

    fn spawn(mut cmd: Command, what: &str) -> Peer {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}` (is node installed?): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            // Keep draining stdout so the peer never blocks on a full pipe.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !sent {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        let _ = tx.send(addr.to_owned());
                        sent = true;
                    }
                }
                line.clear();
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!("`{what}` did not print `listening on HOST:PORT` (exit: {status:?})");
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("bad listening address {addr:?}: {e}"));
        assert!(addr.ip().is_loopback(), "{what} bound {addr}, not loopback");
        Peer { child, addr }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child process by its pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HS256 JWT for the peers' `--jwt-secret` auth.
pub fn jwt(secret: &str, sub: &str, ttl_secs: i64) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + ttl_secs;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign JWT")
}

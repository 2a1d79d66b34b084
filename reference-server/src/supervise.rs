//! `--processes N`: N server processes of this same executable on one
//! address (`SO_REUSEPORT`, the kernel spreads new connections), under a
//! supervisor that restarts a dead one and shuts all down gracefully.
//!
//! The supervisor binds the address itself *without listening*: that keeps
//! the port (port 0 resolves to a real one here, once) while taking no
//! connections, since only listening sockets join the kernel's reuse-port
//! group. Children get the original arguments with `--listen ADDR
//! --reuse-port --processes 1` in place of the supervisor's, and the
//! environment variable [`PROCESS_ENV`] with their index, which `/metrics`
//! reports as the `process` label.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::config::Config;

/// Names a child's index (0-based) in its environment.
pub const PROCESS_ENV: &str = "BENCH_SERVER_PROCESS";
/// A child that dies sooner than this after its start counts as failing.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// Consecutive quick failures of one slot after which the supervisor gives up.
const MAX_FAILURES: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// This process's index under a supervisor, if it runs under one.
pub fn process_index() -> Option<usize> {
    std::env::var(PROCESS_ENV).ok()?.parse().ok()
}

/// Runs the supervisor until SIGTERM/SIGINT; prints `listening on ADDR`
/// once every child listens.
pub fn run(config: &Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the supervisor runtime")?;
    rt.block_on(supervise(config))
}

/// One child process and its restart state.
struct Slot {
    index: usize,
    child: Option<Child>,
    started: Instant,
    failures: u32,
    restart_at: Option<Instant>,
    restarts: u64,
}

/// What every spawn needs.
struct Launch {
    /// Where children publish their private metrics ports ([`crate::cluster`]).
    rundir: PathBuf,
    exe: PathBuf,
    args: Vec<OsString>,
    ready: mpsc::UnboundedSender<usize>,
}

impl Launch {
    fn spawn(&self, slot: &mut Slot) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .env(PROCESS_ENV, slot.index.to_string())
            .env(crate::cluster::RUNDIR_ENV, &self.rundir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // A child must not outlive a supervisor killed with SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start server process {}", slot.index))?;
        if let Some(out) = child.stdout.take() {
            let ready = self.ready.clone();
            let index = slot.index;
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("listening on ") {
                        let _ = ready.send(index);
                    }
                }
            });
        }
        slot.child = Some(child);
        slot.started = Instant::now();
        slot.restart_at = None;
        Ok(())
    }
}

/// The child's arguments: ours without `--listen`, `--processes` and
/// `--reuse-port`, then the fixed ones.
fn child_args(ours: impl IntoIterator<Item = OsString>, addr: SocketAddr) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in ours {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--listen" || s == "--processes" {
            skip_value = true;
        } else if s == "--reuse-port" || s.starts_with("--listen=") || s.starts_with("--processes=")
        {
        } else {
            out.push(a);
        }
    }
    out.extend(
        [
            "--listen",
            &addr.to_string(),
            "--reuse-port",
            "--processes",
            "1",
        ]
        .map(OsString::from),
    );
    out
}

/// Binds `addr` with SO_REUSEPORT and does not listen (see the module doc).
fn reserve(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

async fn supervise(config: &Config) -> anyhow::Result<()> {
    // Installed before any child starts: a SIGTERM during start-up still
    // stops the children gracefully.
    let shutdown = crate::server::shutdown_signal();
    let reserved =
        reserve(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = reserved.local_addr()?;
    let rundir = std::env::temp_dir().join(format!("bench-server-{}", std::process::id()));
    std::fs::create_dir_all(&rundir)
        .with_context(|| format!("cannot create {}", rundir.display()))?;
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let launch = Launch {
        rundir: rundir.clone(),
        exe: std::env::current_exe().context("cannot find this executable")?,
        args: child_args(std::env::args_os().skip(1), addr),
        ready: ready_tx,
    };
    let mut slots: Vec<Slot> = (0..config.processes)
        .map(|index| Slot {
            index,
            child: None,
            started: Instant::now(),
            failures: 0,
            restart_at: None,
            restarts: 0,
        })
        .collect();
    for slot in &mut slots {
        launch.spawn(slot)?;
    }
    let result = async {
        wait_ready(&mut slots, &mut ready_rx).await?;
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}")?;
            out.flush()?;
        }
        tracing::info!(%addr, processes = slots.len(), "supervisor: all processes listening");
        watch(&mut slots, &launch, &mut ready_rx, shutdown).await
    }
    .await;
    stop_all(&mut slots, config.drain_timeout + Duration::from_secs(2)).await;
    drop(reserved);
    let _ = std::fs::remove_dir_all(&rundir);
    result
}

async fn wait_ready(
    slots: &mut [Slot],
    ready: &mut mpsc::UnboundedReceiver<usize>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut seen = vec![false; slots.len()];
    while seen.iter().any(|s| !s) {
        if let Ok(Some(i)) = tokio::time::timeout(POLL, ready.recv()).await {
            if let Some(s) = seen.get_mut(i) {
                *s = true;
            }
        }
        for slot in slots.iter_mut() {
            if let Some(Ok(Some(st))) = slot.child.as_mut().map(Child::try_wait) {
                bail!(
                    "server process {} exited before listening ({st})",
                    slot.index
                );
            }
        }
        if Instant::now() > deadline {
            bail!("server processes were not all listening within {READY_TIMEOUT:?}");
        }
    }
    Ok(())
}

/// Restarts dead children (with backoff) until a shutdown signal.
async fn watch(
    slots: &mut [Slot],
    launch: &Launch,
    ready: &mut mpsc::UnboundedReceiver<usize>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tick.tick() => {}
            Some(_) = ready.recv() => {}
        }
        let now = Instant::now();
        for slot in slots.iter_mut() {
            if let Some(Ok(Some(st))) = slot.child.as_mut().map(Child::try_wait) {
                slot.child = None;
                let quick = now.saturating_duration_since(slot.started) < HEALTHY_AFTER;
                slot.failures = if quick { slot.failures + 1 } else { 0 };
                if slot.failures > MAX_FAILURES {
                    bail!(
                        "server process {} failed {} times in a row ({st}); giving up",
                        slot.index,
                        slot.failures
                    );
                }
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << slot.failures.min(16))
                    .min(MAX_BACKOFF);
                tracing::warn!(process = slot.index, %st, ?backoff, "server process died; restarting");
                slot.restart_at = Some(now + backoff);
            }
            if slot.restart_at.is_some_and(|t| t <= now) {
                slot.restarts += 1;
                if let Err(e) = launch.spawn(slot) {
                    tracing::warn!(process = slot.index, "restart failed: {e:#}");
                    slot.failures += 1;
                    slot.restart_at = Some(now + MAX_BACKOFF);
                }
            }
        }
    }
}

/// SIGTERM to every child (each drains its connections), then SIGKILL to
/// those still running after `grace`.
async fn stop_all(slots: &mut [Slot], grace: Duration) {
    for slot in slots.iter() {
        if let Some(pid) = slot.child.as_ref().and_then(Child::id) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + grace;
    for slot in slots.iter_mut() {
        let Some(child) = slot.child.as_mut() else {
            continue;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, child.wait()).await.is_err() {
            tracing::warn!(process = slot.index, "did not stop in time; killing");
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_args_replace_listen_processes_and_reuse_port() {
        let ours = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--processes=3",
            "--reuse-port",
            "--history-len",
            "7",
            "--processes",
            "3",
        ]
        .map(OsString::from);
        let got = child_args(ours, "127.0.0.1:9000".parse().unwrap());
        let got: Vec<_> = got
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "serve",
                "--history-len",
                "7",
                "--listen",
                "127.0.0.1:9000",
                "--reuse-port",
                "--processes",
                "1"
            ]
        );
    }
}

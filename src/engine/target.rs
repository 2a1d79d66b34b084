//! The system under test: an existing URL, the bundled reference server
//! (`bench serve` as a child process on a free loopback port), or any
//! command. Spawned servers are always stopped: SIGTERM, then kill.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::redis::RedisProc;
use crate::scenario::{Endpoint, TargetPlan, WsUrl};

/// Environment variable naming the `bench` executable used for the bundled
/// server (tests run inside the test harness, whose `current_exe` is not bench).
pub const BENCH_EXE_ENV: &str = "BENCH_EXE";
const BUNDLED_READY_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A reachable target, plus the child process when bench started it.
pub struct Target {
    pub url: WsUrl,
    pub addr: SocketAddr,
    pub child: Option<Child>,
    /// How it was started, so a fault can start it again.
    spec: Option<Endpoint>,
    /// Stopped on purpose by a `[[faults]]` entry: its exit is no failure.
    planned_down: bool,
    /// `[target.redis]`: stopped after the server (fields drop after `drop`).
    pub redis: Option<RedisProc>,
    /// The bundled server's throwaway certificate (`[target.server] tls`),
    /// which the generator trusts; its files go when the target does.
    pub self_signed: Option<SelfSigned>,
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written to a
/// private temporary directory for `bench serve --tls-cert/--tls-key`.
pub struct SelfSigned {
    pub cert: rustls_pki_types::CertificateDer<'static>,
    dir: PathBuf,
}

impl SelfSigned {
    /// The certificate's PEM file (worker processes of `--processes` trust it).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn generate() -> anyhow::Result<Self> {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let ck = rcgen::generate_simple_self_signed(names)
            .context("cannot generate a self-signed certificate")?;
        let dir = std::env::temp_dir().join(format!(
            "bench-tls-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key = dir.join("key.pem");
        std::fs::write(dir.join("cert.pem"), ck.cert.pem())?;
        std::fs::write(&key, ck.signing_key.serialize_pem())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self {
            cert: ck.cert.der().clone(),
            dir,
        })
    }

    fn args(&self) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.dir.join("cert.pem").display().to_string(),
            "--tls-key".into(),
            self.dir.join("key.pem").display().to_string(),
        ]
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Target {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once a spawned target has exited (not when a fault
    /// stopped it).
    pub fn exited(&mut self) -> Option<String> {
        if self.planned_down {
            return None;
        }
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            _ => None,
        }
    }

    /// A fault: SIGKILL (`graceful = false`) or SIGTERM (the bundled server
    /// then closes every connection with 1012 and exits). Does not wait.
    pub fn fault_stop(&mut self, graceful: bool) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        self.planned_down = true;
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let sig = if graceful {
            libc::SIGTERM
        } else {
            libc::SIGKILL
        };
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
    }

    /// A fault: SIGKILL to the server process with index `index`, a child
    /// of the supervisor bench started (`bench serve --processes N`).
    /// Returns its pid.
    pub fn kill_process(&mut self, index: u32) -> Result<u32, String> {
        let sup = self.pid().ok_or("no server process bench started")?;
        let pid = super::proctree::child_with_index(sup, index).ok_or_else(|| {
            format!("the server (pid {sup}) has no process {index} now (is it a `--processes` supervisor?)")
        })?;
        // SAFETY: kill(2) on a child of our own child; no memory is involved.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
        Ok(pid)
    }

    /// Waits up to `limit` for a stopped child to exit.
    pub fn wait_exit(&mut self, limit: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// After a fault: starts the server again with the same flags on the
    /// same address (a graceful stop still draining is killed first).
    /// Returns the new pid.
    pub fn fault_restart(&mut self) -> anyhow::Result<u32> {
        if let Some(mut old) = self.child.take() {
            if !matches!(old.try_wait(), Ok(Some(_))) {
                let _ = old.kill();
            }
            let _ = old.wait();
        }
        let spec = self
            .spec
            .clone()
            .context("only a server bench started can be restarted")?;
        let again = match &spec {
            Endpoint::Bundled { args, .. } => {
                let mut args = args.clone();
                if let Some(s) = &self.self_signed {
                    args.extend(s.args());
                }
                spawn_bundled(&args, self.url.secure, &self.addr.to_string())?
            }
            other => start(other)?,
        };
        let mut again = again;
        self.child = again.child.take();
        self.planned_down = false;
        self.pid().context("the restarted server has no pid")
    }

    /// Stops a spawned target: SIGTERM, wait up to a grace period, then kill.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_child(child, STOP_GRACE);
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`; waits for the exit so the port is
/// free again. Shared by the target and the `[target.redis]` server.
pub(super) fn stop_child(mut child: std::process::Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child server runs in its own process group, so a terminal's Ctrl-C
/// reaches bench alone: bench closes its clients first, then stops the
/// server itself (a server told to shut down by the same Ctrl-C would send
/// 1012 closes that the results would count as errors). If bench dies
/// without stopping it, the kernel sends the server SIGTERM.
pub(super) fn detached(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd
}

pub fn bench_exe() -> anyhow::Result<PathBuf> {
    match std::env::var_os(BENCH_EXE_ENV) {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().context("cannot find the bench executable"),
    }
}

fn resolve(url: &WsUrl) -> anyhow::Result<SocketAddr> {
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", url.host))?
        .next()
        .with_context(|| format!("{} has no address", url.host))
}

/// Reads the child's stdout on a thread (so it never blocks on a full pipe),
/// forwarding the `listening on HOST:PORT` address once.
fn watch_stdout(child: &mut Child) -> mpsc::Receiver<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    if let Ok(a) = addr.trim().parse::<SocketAddr>() {
                        let _ = tx.send(a);
                    }
                }
            }
        });
    }
    rx
}

/// Starts `[target.redis]` (if any) and then the server, giving the
/// bundled server `--redis URL`.
pub fn start_plan(plan: &TargetPlan) -> anyhow::Result<Target> {
    let Some(rp) = &plan.redis else {
        return start(&plan.endpoint);
    };
    let redis = RedisProc::start(rp).context("starting [target.redis]")?;
    let endpoint = match &plan.endpoint {
        Endpoint::Bundled { args, tls } => {
            let mut args = args.clone();
            args.extend(["--redis".to_owned(), redis.url.clone()]);
            Endpoint::Bundled { args, tls: *tls }
        }
        other => other.clone(),
    };
    let mut target = start(&endpoint)?;
    target.redis = Some(redis);
    Ok(target)
}

/// Brings the target up (or just resolves it) and returns where to connect.
pub fn start(endpoint: &Endpoint) -> anyhow::Result<Target> {
    match endpoint {
        Endpoint::Url(url) => Ok(Target {
            addr: resolve(url)?,
            url: url.clone(),
            child: None,
            spec: None,
            planned_down: false,
            redis: None,
            self_signed: None,
        }),
        Endpoint::Bundled { args, tls } => {
            let own_cert = args.iter().any(|a| a.starts_with("--tls-cert"));
            let self_signed = (*tls && !own_cert).then(SelfSigned::generate).transpose()?;
            let mut args = args.clone();
            if let Some(s) = &self_signed {
                args.extend(s.args());
            }
            let mut t = spawn_bundled(&args, *tls, "127.0.0.1:0")?;
            if let Some(Endpoint::Bundled { args: a, .. }) = &mut t.spec {
                // Restarts add the same files again.
                a.truncate(a.len() - if self_signed.is_some() { 4 } else { 0 });
            }
            t.self_signed = self_signed;
            Ok(t)
        }
        Endpoint::Command {
            argv,
            url,
            ready_timeout,
        } => {
            let (prog, rest) = argv.split_first().context("empty server command")?;
            let mut child = detached(&mut Command::new(prog))
                .args(rest)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("cannot start server command `{prog}`"))?;
            let rx = watch_stdout(&mut child);
            let mut target = Target {
                addr: resolve(url)?,
                url: url.clone(),
                child: Some(child),
                spec: Some(endpoint.clone()),
                planned_down: false,
                redis: None,
                self_signed: None,
            };
            let deadline = Instant::now() + *ready_timeout;
            loop {
                // Ready when it says so, or when its port accepts a TCP connection.
                if rx.try_recv().is_ok()
                    || TcpStream::connect_timeout(&target.addr, Duration::from_millis(200)).is_ok()
                {
                    return Ok(target);
                }
                if let Some(st) = target.exited() {
                    bail!("server command `{prog}` exited before it was ready ({st})");
                }
                if Instant::now() > deadline {
                    bail!("server command `{prog}` was not ready within {ready_timeout:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `bench serve --listen LISTEN ARGS...`, waiting for its `listening on`.
fn spawn_bundled(args: &[String], tls: bool, listen: &str) -> anyhow::Result<Target> {
    let exe = bench_exe()?;
    let mut child = detached(&mut Command::new(&exe))
        .arg("serve")
        .args(["--listen", listen])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start the bundled server ({})", exe.display()))?;
    let rx = watch_stdout(&mut child);
    let mut target = Target {
        url: WsUrl {
            secure: tls,
            host: "127.0.0.1".into(),
            port: 0,
            path: "/ws".into(),
        },
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        child: Some(child),
        spec: Some(Endpoint::Bundled {
            args: args.to_vec(),
            tls,
        }),
        planned_down: false,
        redis: None,
        self_signed: None,
    };
    let deadline = Instant::now() + BUNDLED_READY_TIMEOUT;
    loop {
        if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
            target.addr = addr;
            target.url.host = addr.ip().to_string();
            target.url.port = addr.port();
            return Ok(target);
        }
        if let Some(st) = target.exited() {
            bail!("the bundled server exited before listening ({st})");
        }
        if Instant::now() > deadline {
            bail!(
                "the bundled server did not print `listening on` within {BUNDLED_READY_TIMEOUT:?}"
            );
        }
    }
}

//! `[target.redis]`: the redis-server bench starts before the server and
//! stops after it, so a scenario can restart it mid-run (`restart_redis`).
//!
//! Bench's own invocation listens on a free loopback port with the
//! append-only file on, in a temporary directory: a Redis that restarted
//! empty would start every room's seq at 1 again (docs/server.md), which is
//! not the fault being tested. A `command` is run as written.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::scenario::RedisPlan;

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A redis-server bench started.
pub struct RedisProc {
    argv: Vec<String>,
    pub url: String,
    addr: SocketAddr,
    child: Option<Child>,
    /// Bench's own invocation's data directory, removed at the end.
    dir: Option<std::path::PathBuf>,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// `redis://HOST:PORT[/...]` → the address to probe.
fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("redis://").context("not a redis:// URL")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {hostport}"))?
        .next()
        .with_context(|| format!("{hostport} has no address"))
}

impl RedisProc {
    /// Starts it and waits until it accepts TCP connections.
    pub fn start(plan: &RedisPlan) -> anyhow::Result<Self> {
        let (argv, url, dir) = match (&plan.command, &plan.url) {
            (Some(argv), Some(url)) => (argv.clone(), url.clone(), None),
            _ => {
                let port = free_port()?;
                let dir =
                    std::env::temp_dir().join(format!("bench-redis-{}-{port}", std::process::id()));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let argv = [
                    "redis-server",
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--dir",
                    &dir.to_string_lossy(),
                ]
                .map(String::from)
                .to_vec();
                (argv, format!("redis://127.0.0.1:{port}"), Some(dir))
            }
        };
        let mut r = Self {
            addr: addr_of(&url)?,
            argv,
            url,
            child: None,
            dir,
        };
        r.spawn()?;
        Ok(r)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let (prog, rest) = self.argv.split_first().context("empty redis command")?;
        let mut child = super::target::detached(&mut Command::new(prog))
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start `{prog}` (is redis-server installed?)"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                bail!("`{prog}` exited before it listened on {} ({st})", self.addr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "`{prog}` did not listen on {} within {READY_TIMEOUT:?}",
                    self.addr
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM (Redis writes its append-only file and exits), SIGKILL after
    /// a grace period; waits for the exit so the port is free again.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            super::target::stop_child(child, STOP_GRACE);
        }
    }

    /// Starts it again with the same arguments; returns the new pid.
    pub fn restart(&mut self) -> anyhow::Result<u32> {
        self.stop();
        self.spawn()?;
        self.pid().context("the restarted redis-server has no pid")
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_resolve_to_their_address() {
        let a = addr_of("redis://127.0.0.1:6390").unwrap();
        assert_eq!(a, "127.0.0.1:6390".parse().unwrap());
        let b = addr_of("redis://:pw@127.0.0.1:7000/2").unwrap();
        assert_eq!(b.port(), 7000);
        assert!(addr_of("http://x").is_err());
    }
}

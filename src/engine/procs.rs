//! `bench run --processes N`: the coordinator's side of worker processes.
//!
//! The coordinator starts the target once, then spawns N copies of this
//! binary as `bench run SCENARIO --shard I/N --worker-stream ...`: each runs
//! shard I of the clients (the slicing of `shard`) against the
//! coordinator's target URL and writes its record stream (`stream`) on
//! stdout. One reader thread per worker decodes the lines and forwards them
//! to the aggregator as [`WorkerMsg::Part`]; a worker whose stream ends
//! without an `end` record is reported as dead with its exit status.
//!
//! Also here: the per-process socket budget (`RLIMIT_NOFILE`) that picks
//! the process count when the scenario leaves it automatic.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use super::shard::ShardSpec;
use super::stream::{self, Record};
use super::worker::WorkerMsg;
use crate::scenario::WsUrl;

/// Hidden test hook: the worker process of this shard index aborts after
/// its first second (the dead-worker test).
pub const DIE_ENV: &str = "BENCH_TEST_DIE_SHARD";
/// The coordinator's throwaway certificate (`[target.server] tls = true`),
/// a PEM file each worker process trusts as the coordinator does.
pub const WORKER_CA_ENV: &str = "BENCH_WORKER_CA";
/// File descriptors a process keeps for itself (stdio, the runtime, the
/// sampler's /proc reads, DNS, ...) besides one per client socket.
const FD_RESERVE: u64 = 256;
/// How long worker processes get to load the scenario before the agreed start.
pub const SPAWN_MARGIN: Duration = Duration::from_millis(1_500);

/// What the coordinator needs to start its workers.
#[derive(Debug, Clone)]
pub struct ProcsRun {
    pub count: u32,
    /// The scenario file the workers load (the same one as the coordinator).
    pub scenario: PathBuf,
    pub seed: u64,
    /// The coordinator's `--url`, so workers validate the scenario exactly
    /// as it did (a URL target skips the bundled server's checks).
    pub url: Option<String>,
}

/// An event of one worker process, as the aggregator receives it.
#[derive(Debug)]
pub enum PartEvent {
    Record(Record),
    /// The stream ended; `Some(status)` when it ended without `end` (dead),
    /// or a line failed to decode.
    Closed(Option<String>),
}

/// The running worker processes.
pub struct Procs {
    children: Vec<Child>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit now in force (`None` if it cannot be read).
pub fn raise_nofile() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(lim.rlim_cur as u64)
}

/// Client sockets one process may hold under an fd limit of `nofile`.
pub fn clients_per_process(nofile: u64) -> u64 {
    nofile.saturating_sub(FD_RESERVE).max(64)
}

/// The automatic process count: as many as the clients need under the fd
/// limit (raised to the hard limit first), at least one.
pub fn auto_count(peak_clients: u32, nofile: Option<u64>) -> u32 {
    let per = clients_per_process(nofile.unwrap_or(1024));
    (u64::from(peak_clients).div_ceil(per)).clamp(1, 4096) as u32
}

impl Procs {
    /// Spawns every worker; each starts its clients at `start_at_ms`.
    pub fn spawn(
        run: &ProcsRun,
        url: &WsUrl,
        ca: Option<&std::path::Path>,
        start_at_ms: u64,
        tx: &mpsc::UnboundedSender<WorkerMsg>,
    ) -> anyhow::Result<Self> {
        let exe = super::target::bench_exe()?;
        let mut procs = Procs {
            children: Vec::new(),
        };
        for i in 0..run.count {
            let shard = ShardSpec {
                index: i,
                count: run.count,
            };
            let spawned = Command::new(&exe)
                .arg("run")
                .arg(&run.scenario)
                .args(["--worker-stream", "--quiet"])
                .args(["--shard", &shard.to_string()])
                .args(["--start-at", &start_at_ms.to_string()])
                .args(["--seed", &run.seed.to_string()])
                .args(["--worker-url", &url.to_string()])
                .envs(ca.map(|p| (WORKER_CA_ENV, p)))
                .args(run.url.iter().flat_map(|u| ["--url", u.as_str()]))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    procs.kill();
                    return Err(e).with_context(|| {
                        format!("cannot start worker process {shard} ({})", exe.display())
                    });
                }
            };
            let stdout = child.stdout.take().context("worker stdout")?;
            let tx = tx.clone();
            let idx = i as usize;
            std::thread::Builder::new()
                .name(format!("bench-proc-{i}"))
                .spawn(move || read_worker(idx, stdout, tx))
                .context("cannot start a worker reader thread")?;
            procs.children.push(child);
        }
        Ok(procs)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Asks every worker to stop (SIGTERM: they stop their clients and
    /// still send their `end`).
    pub fn stop(&self) {
        for c in &self.children {
            // SAFETY: kill(2) on the pid of a child we spawned and did not reap.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Exit status of worker `i`, waiting up to `limit` for it.
    pub fn status(&mut self, i: usize, limit: Duration) -> String {
        let Some(c) = self.children.get_mut(i) else {
            return "unknown".into();
        };
        let deadline = Instant::now() + limit;
        loop {
            match c.try_wait() {
                Ok(Some(st)) => return st.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return "still running".into(),
                Err(e) => return e.to_string(),
            }
        }
    }

    /// Reaps every worker, killing those that do not exit within `grace`.
    pub fn reap(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn kill(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Forwards one worker's decoded records until its stream ends.
fn read_worker(
    idx: usize,
    stdout: std::process::ChildStdout,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) {
    let mut ended = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match stream::decode(&line) {
            Ok(r) => {
                ended |= matches!(r, Record::End(_));
                let _ = tx.send(WorkerMsg::Part(idx, PartEvent::Record(r)));
            }
            Err(e) => {
                let why = format!("sent an unreadable record ({e})");
                let _ = tx.send(WorkerMsg::Part(idx, PartEvent::Closed(Some(why))));
                return;
            }
        }
    }
    let why = (!ended).then(|| "exited before finishing".to_owned());
    let _ = tx.send(WorkerMsg::Part(idx, PartEvent::Closed(why)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_count_follows_the_fd_budget() {
        assert_eq!(auto_count(1_000, Some(20_000)), 1);
        assert_eq!(auto_count(19_744, Some(20_000)), 1);
        assert_eq!(auto_count(19_745, Some(20_000)), 2);
        assert_eq!(auto_count(100_000, Some(20_000)), 6);
        assert_eq!(auto_count(0, None), 1);
        assert!(raise_nofile().is_some_and(|n| n > 0));
    }
}

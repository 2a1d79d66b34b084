//! Once-a-second resource sampling: RSS and CPU of the server process(es)
//! and of the generator itself (sysinfo), and whole-machine CPU from
//! `/proc/stat`, including softirq time, which loopback TCP burns without
//! charging it to any process.
//!
//! The server is every sampled PID plus its children, found again at every
//! sample (a supervisor's restarted child has a new PID): the summed figures
//! cover a whole `--processes N` server, and each process is also kept
//! apart for `server.processes` in results.json. A redis-server bench
//! started is sampled the same way but never summed into the server.

use std::collections::BTreeMap;
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::results::ProcessStats;

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// Summed over the sampled server processes; None when there are none.
    pub server_rss: Option<u64>,
    /// % of one core, summed over server processes.
    pub server_cpu: Option<f64>,
    pub generator_rss: u64,
    /// % of one core.
    pub generator_cpu: f64,
    /// % of all cores busy (machine-wide), softirq included.
    pub machine_cpu: f64,
    pub softirq: f64,
}

impl Sample {
    /// Samples of several shards taken in the same second: generator
    /// figures add up (they are different processes), the server's are the
    /// highest any shard saw (shards on one host sample the same server),
    /// machine figures are the mean (shards may be on different machines).
    pub fn combine(parts: &[Sample]) -> Sample {
        let n = parts.len().max(1) as f64;
        let max_opt = |f: fn(&Sample) -> Option<f64>| parts.iter().filter_map(f).reduce(f64::max);
        Sample {
            server_rss: parts.iter().filter_map(|s| s.server_rss).max(),
            server_cpu: max_opt(|s| s.server_cpu),
            generator_rss: parts.iter().map(|s| s.generator_rss).sum(),
            generator_cpu: parts.iter().map(|s| s.generator_cpu).sum(),
            machine_cpu: parts.iter().map(|s| s.machine_cpu).sum::<f64>() / n,
            softirq: parts.iter().map(|s| s.softirq).sum::<f64>() / n,
        }
    }
}

pub struct Sampler {
    sys: System,
    /// The server PIDs bench was given or started (roots; their children
    /// are found at each sample).
    server: Vec<Pid>,
    redis: Vec<Pid>,
    own: Pid,
    /// Worker processes (`--processes`): their RSS and CPU count as the generator's.
    generators: Vec<Pid>,
    prev_stat: Option<[u64; 3]>,
    /// Every process sampled so far, by PID.
    procs: BTreeMap<u32, ProcAcc>,
    /// Per-process CPU means count samples from here on (the warm-up is out).
    window_from: Option<Instant>,
}

/// One process's figures over the run.
#[derive(Debug, Clone, Default)]
struct ProcAcc {
    role: &'static str,
    index: Option<u32>,
    /// sysinfo's first CPU figure of a PID has no previous one to differ
    /// from; it is skipped.
    seen: u32,
    rss_peak: u64,
    rss_last: u64,
    cpu_sum: f64,
    cpu_n: u32,
    cpu_peak: f64,
}

/// (total, idle incl. iowait, softirq) jiffies from the first line of /proc/stat.
fn read_proc_stat() -> Option<[u64; 3]> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    if v.len() < 7 {
        return None;
    }
    let total = v.iter().take(8).sum();
    Some([total, v[3] + v[4], v[6]])
}

impl Sampler {
    /// `pids`: server processes to sample; `name`: also every process with that exact name.
    pub fn new(mut pids: Vec<u32>, name: Option<&str>) -> Self {
        let mut sys = System::new();
        if let Some(name) = name {
            sys.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing(),
            );
            pids.extend(
                sys.processes_by_exact_name(name.as_ref())
                    .map(|p| p.pid().as_u32()),
            );
        }
        pids.sort_unstable();
        pids.dedup();
        let mut s = Self {
            sys,
            server: pids.into_iter().map(Pid::from_u32).collect(),
            redis: Vec::new(),
            own: Pid::from_u32(std::process::id()),
            generators: Vec::new(),
            prev_stat: read_proc_stat(),
            procs: BTreeMap::new(),
            window_from: None,
        };
        let members = s.server_members();
        s.refresh(&members);
        s
    }

    /// A restarted server: sample `new` instead of `old` from now on.
    pub fn replace_pid(&mut self, old: Option<u32>, new: u32) {
        if let Some(old) = old {
            self.server.retain(|p| p.as_u32() != old);
        }
        let new = Pid::from_u32(new);
        if !self.server.contains(&new) {
            self.server.push(new);
        }
    }

    /// Samples these redis-server PIDs too, apart from the server.
    pub fn add_redis(&mut self, pids: impl IntoIterator<Item = u32>) {
        for p in pids {
            let p = Pid::from_u32(p);
            if !self.redis.contains(&p) {
                self.redis.push(p);
            }
        }
    }

    /// A restarted redis-server.
    pub fn replace_redis_pid(&mut self, old: Option<u32>, new: u32) {
        if let Some(old) = old {
            self.redis.retain(|p| p.as_u32() != old);
        }
        self.add_redis([new]);
    }

    /// Per-process CPU means start here (the end of the warm-up).
    pub fn window_from(&mut self, t: Instant) {
        self.window_from = Some(t);
    }

    /// Worker processes whose RSS and CPU add to the generator's own.
    pub fn add_generators(&mut self, pids: Vec<u32>) {
        self.generators.extend(pids.into_iter().map(Pid::from_u32));
        let members = self.server_members();
        self.refresh(&members);
    }

    pub fn server_pids(&self) -> Vec<u32> {
        self.server.iter().map(|p| p.as_u32()).collect()
    }

    /// Every process sampled, by PID: the server's (roots and children)
    /// and Redis.
    pub fn processes(&self) -> Vec<ProcessStats> {
        self.procs
            .iter()
            .map(|(pid, a)| ProcessStats {
                pid: *pid,
                role: a.role.to_owned(),
                index: a.index,
                rss_peak_bytes: a.rss_peak,
                rss_last_bytes: a.rss_last,
                cpu_percent_mean: (a.cpu_n > 0).then(|| a.cpu_sum / f64::from(a.cpu_n)),
                cpu_percent_peak: a.cpu_peak,
                samples: a.seen,
            })
            .collect()
    }

    /// The server's processes now, each with its role: a root with
    /// children is a supervisor, its children are processes, except a
    /// redis-server child (a peer's own Redis), which is `redis`.
    fn server_members(&self) -> Vec<(Pid, &'static str)> {
        let mut out = Vec::new();
        for root in &self.server {
            let kids = super::proctree::children(root.as_u32());
            let role = if kids.is_empty() {
                "server"
            } else {
                "supervisor"
            };
            out.push((*root, role));
            for k in kids {
                let role = if super::proctree::is_redis(k) {
                    "redis"
                } else {
                    "process"
                };
                let k = Pid::from_u32(k);
                if k != self.own && !self.server.contains(&k) {
                    out.push((k, role));
                }
            }
        }
        out
    }

    fn refresh(&mut self, members: &[(Pid, &'static str)]) {
        // No duplicates: sysinfo drops a pid refreshed twice in one call as dead.
        let mut all: Vec<Pid> = members.iter().map(|(p, _)| *p).collect();
        all.extend(self.redis.iter().copied());
        all.extend(self.generators.iter().copied());
        all.push(self.own);
        all.sort_unstable();
        all.dedup();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&all),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }

    /// Records one process's sample; returns (rss, cpu) when it is alive.
    fn record(&mut self, pid: Pid, role: &'static str, in_window: bool) -> Option<(u64, f64)> {
        let p = self.sys.process(pid)?;
        let (rss, cpu) = (p.memory(), f64::from(p.cpu_usage()));
        let a = self.procs.entry(pid.as_u32()).or_default();
        if a.index.is_none() && role == "process" {
            a.index = super::proctree::index_of(pid.as_u32());
        }
        // A root's role can change (its children appear after it starts).
        if a.role != "supervisor" {
            a.role = role;
        }
        a.seen += 1;
        a.rss_peak = a.rss_peak.max(rss);
        a.rss_last = rss;
        if a.seen > 1 && in_window {
            a.cpu_sum += cpu;
            a.cpu_n += 1;
            a.cpu_peak = a.cpu_peak.max(cpu);
        }
        Some((rss, cpu))
    }

    /// Takes one sample (CPU figures cover the time since the previous one).
    pub fn sample(&mut self) -> Sample {
        let members = self.server_members();
        self.refresh(&members);
        let in_window = self.window_from.is_none_or(|t| Instant::now() >= t);
        let mut out = Sample::default();
        let mut alive = Vec::new();
        for (pid, role) in members {
            let seen = self.record(pid, role, in_window);
            if role != "redis" {
                alive.extend(seen);
            }
        }
        if !alive.is_empty() {
            out.server_rss = Some(alive.iter().map(|(r, _)| r).sum());
            out.server_cpu = Some(alive.iter().map(|(_, c)| c).sum());
        }
        for pid in self.redis.clone() {
            self.record(pid, "redis", in_window);
        }
        for pid in std::iter::once(&self.own).chain(&self.generators) {
            if let Some(p) = self.sys.process(*pid) {
                out.generator_rss += p.memory();
                out.generator_cpu += f64::from(p.cpu_usage());
            }
        }
        if let (Some(prev), Some(cur)) = (self.prev_stat, read_proc_stat()) {
            let dt = cur[0].saturating_sub(prev[0]).max(1) as f64;
            let idle = cur[1].saturating_sub(prev[1]) as f64;
            out.machine_cpu = (100.0 * (1.0 - idle / dt)).clamp(0.0, 100.0);
            out.softirq = 100.0 * cur[2].saturating_sub(prev[2]) as f64 / dt;
            self.prev_stat = Some(cur);
        }
        out
    }
}

/// The memory fit of a run: [`LinearFit::least_squares`](crate::results::LinearFit::least_squares),
/// but with at least three samples (two always fit perfectly, saying nothing).
pub fn linear_fit(points: &[(f64, f64)]) -> Option<crate::results::LinearFit> {
    if points.len() < 3 {
        return None;
    }
    crate::results::LinearFit::least_squares(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_line_and_refuses_no_spread() {
        let pts: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 7.0)).collect();
        let f = linear_fit(&pts).unwrap();
        assert!((f.slope - 3.0).abs() < 1e-9 && (f.intercept - 7.0).abs() < 1e-9);
        assert!((f.r2 - 1.0).abs() < 1e-9);
        assert!(linear_fit(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
        let mut s = Sampler::new(vec![std::process::id()], None);
        let x = s.sample();
        assert!(x.server_rss.unwrap() > 0 && x.generator_rss > 0);
    }
}

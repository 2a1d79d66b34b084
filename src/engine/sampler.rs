//! Once-a-second resource sampling: RSS and CPU of the server process(es)
//! and of the generator itself (sysinfo), and whole-machine CPU from
//! `/proc/stat`, including softirq time, which loopback TCP burns without
//! charging it to any process.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

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
    server: Vec<Pid>,
    own: Pid,
    /// Worker processes (`--processes`): their RSS and CPU count as the generator's.
    generators: Vec<Pid>,
    prev_stat: Option<[u64; 3]>,
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
            own: Pid::from_u32(std::process::id()),
            generators: Vec::new(),
            prev_stat: read_proc_stat(),
        };
        s.refresh();
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

    /// Worker processes whose RSS and CPU add to the generator's own.
    pub fn add_generators(&mut self, pids: Vec<u32>) {
        self.generators.extend(pids.into_iter().map(Pid::from_u32));
        self.refresh();
    }

    pub fn server_pids(&self) -> Vec<u32> {
        self.server.iter().map(|p| p.as_u32()).collect()
    }

    fn refresh(&mut self) {
        // No duplicates: sysinfo drops a pid refreshed twice in one call as dead.
        let mut all = self.server.clone();
        for p in std::iter::once(&self.own).chain(&self.generators) {
            if !all.contains(p) {
                all.push(*p);
            }
        }
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&all),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }

    /// Takes one sample (CPU figures cover the time since the previous one).
    pub fn sample(&mut self) -> Sample {
        self.refresh();
        let mut out = Sample::default();
        if !self.server.is_empty() {
            let procs: Vec<_> = self
                .server
                .iter()
                .filter_map(|p| self.sys.process(*p))
                .collect();
            if !procs.is_empty() {
                out.server_rss = Some(procs.iter().map(|p| p.memory()).sum());
                out.server_cpu = Some(procs.iter().map(|p| f64::from(p.cpu_usage())).sum());
            }
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

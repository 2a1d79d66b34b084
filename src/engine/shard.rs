//! Slicing a run into shards: which clients a shard (a worker process of
//! `bench run --processes N`, or a `bench run --shard I/N` on another
//! machine) owns, what identifies a run across shards, and how a shard
//! reports itself.
//!
//! One slicing function serves both `--processes` and `--shard`: client `i`
//! belongs to shard `i % N`; inside a shard, to worker thread
//! `(i / N) % workers`. Every per-client table (schedule, population, room)
//! is indexed by the global client index, so N shards together run exactly
//! the clients, schedules and rooms one process would.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::exit::UsageError;
use crate::scenario::Plan;

/// Shard `index` of `count` (0-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

/// The environment variable Kubernetes Indexed Jobs set on every pod.
pub const JOB_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The shard total for `--shard auto` when the flag does not give it.
pub const SHARDS_ENV: &str = "BENCH_SHARDS";

impl ShardSpec {
    /// The whole run as one shard.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// Parses `I/N`, `auto/N` or `auto` (index from `JOB_COMPLETION_INDEX`,
    /// total from `BENCH_SHARDS`). `env` looks variables up (tests pass
    /// their own).
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, UsageError> {
        let bad = |why: String| UsageError(format!("--shard {s}: {why}"));
        let (i, n) = match s.split_once('/') {
            Some((i, n)) => (i.trim().to_owned(), Some(n.trim().to_owned())),
            None => (s.trim().to_owned(), None),
        };
        let index = if i == "auto" {
            env(JOB_INDEX_ENV)
                .ok_or_else(|| bad(format!("auto needs {JOB_INDEX_ENV} in the environment")))?
        } else {
            i
        };
        let count = match n {
            Some(n) => n,
            None => env(SHARDS_ENV).ok_or_else(|| {
                bad(format!(
                    "give the total as I/N or auto/N, or set {SHARDS_ENV}"
                ))
            })?,
        };
        let index: u32 = index
            .parse()
            .map_err(|_| bad(format!("shard index \"{index}\" is not a whole number")))?;
        let count: u32 = count
            .parse()
            .map_err(|_| bad(format!("shard total \"{count}\" is not a whole number")))?;
        if count == 0 {
            return Err(bad("the shard total must be at least 1".into()));
        }
        if index >= count {
            return Err(bad(format!(
                "shard index {index} is out of range: indices run from 0 to {} (0-based)",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// Does this shard own client `i`?
    pub fn owns(&self, i: u32) -> bool {
        i % self.count.max(1) == self.index
    }

    /// The clients worker thread `w` of `workers` runs in this shard:
    /// `(first, stride)`, i.e. `first, first + stride, ...`.
    pub fn worker_slice(&self, w: usize, workers: usize) -> (u32, u32) {
        let n = self.count.max(1);
        (self.index + n * w as u32, n * workers.max(1) as u32)
    }

    /// Clients of `peak` this shard owns.
    pub fn clients(&self, peak: u32) -> u32 {
        let n = self.count.max(1);
        peak / n + u32::from(self.index < peak % n)
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where a shard's record stream goes.
#[derive(Debug, Clone)]
pub enum ShardSink {
    /// A worker process of `--processes`: records as lines on stdout.
    Stdout,
    /// `--shard`: a shard file (written as `<file>.partial`, renamed at the end).
    File(PathBuf),
}

/// How to run one shard.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub spec: ShardSpec,
    /// Start clients at this UNIX-epoch millisecond (all shards agree on it).
    pub start_at_ms: Option<u64>,
    pub sink: ShardSink,
    /// What merge needs to rebuild the plan: the scenario text and the
    /// overrides it ran with.
    pub scenario: ScenarioSource,
}

/// The scenario as the shard loaded it, so `bench merge` can rebuild the
/// same plan (thresholds, stages, names) without the original file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioSource {
    pub name: String,
    pub text: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub thresholds: Vec<String>,
}

/// A shard that started later than this after `--start-at` is flagged.
pub const LATE_START_TOLERANCE_MS: u64 = 1_000;

/// What identifies "the same run" across shards: a hash of the resolved
/// plan without what may differ per shard (output directory, file path,
/// the worker-process target rewrite). FNV-1a over canonical JSON
/// (`serde_json` maps are sorted), stable across machines and builds.
pub fn scenario_hash(plan: &Plan) -> String {
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        for k in ["output", "source", "thresholds"] {
            m.remove(k);
        }
        // Per machine: threads default to its cores.
        if let Some(run) = m.get_mut("run").and_then(|r| r.as_object_mut()) {
            run.remove("workers");
            run.remove("processes");
        }
    }
    let text = v.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// UNIX-epoch milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            ShardSpec::parse("1/3", no_env).unwrap(),
            ShardSpec { index: 1, count: 3 }
        );
        let e = ShardSpec::parse("3/2", no_env).unwrap_err().0;
        assert!(e.contains("out of range"), "{e}");
        assert!(ShardSpec::parse("0/0", no_env).is_err());
        assert!(ShardSpec::parse("x/2", no_env).is_err());
        assert!(ShardSpec::parse("auto/2", no_env).is_err());
        let env = |k: &str| match k {
            JOB_INDEX_ENV => Some("2".to_owned()),
            SHARDS_ENV => Some("4".to_owned()),
            _ => None,
        };
        assert_eq!(
            ShardSpec::parse("auto/3", env).unwrap(),
            ShardSpec { index: 2, count: 3 }
        );
        assert_eq!(
            ShardSpec::parse("auto", env).unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
    }

    #[test]
    fn shards_and_workers_cover_every_client_once() {
        let peak = 103u32;
        let mut seen = vec![0u32; peak as usize];
        for s in 0..3 {
            let spec = ShardSpec { index: s, count: 3 };
            let mut owned = 0;
            for w in 0..2 {
                let (first, stride) = spec.worker_slice(w, 2);
                for i in (first..peak).step_by(stride as usize) {
                    assert!(spec.owns(i));
                    seen[i as usize] += 1;
                    owned += 1;
                }
            }
            assert_eq!(owned, spec.clients(peak));
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}

//! `bench capacity --nodes 1,2,3`: the measured scale-out. After the
//! search, the same scenario runs once per cluster size at one fixed load
//! against the bundled server as N processes (`--processes N`, one port)
//! over a redis-server bench starts afresh for each size. Each run gives
//! the server CPU per unit of work summed over the nodes (the sampler sees
//! the supervisor's children) and Redis's CPU per unit of work; the bus
//! overhead is fitted over them ([`super::scaleout`]). On one machine the
//! nodes share the cores, so this measures cost, not capacity per node.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::driver::StepSpec;
use super::model;
use super::scaleout::{self, BusOverhead, NodeCost};
use crate::engine::redis::RedisProc;
use crate::engine::target;
use crate::engine::EngineOptions;
use crate::scenario::{Endpoint, Plan, RedisPlan};

/// The most processes one cluster size may have (the server's own limit).
pub const MAX_NODES: u32 = reference_server::config::MAX_PROCESSES as u32;

/// One cluster size, at the fixed load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStep {
    pub nodes: u32,
    pub clients: u32,
    pub work_per_s: f64,
    /// Summed over the supervisor and its children (% of one core).
    pub server_cpu_percent_mean: Option<f64>,
    pub redis_cpu_percent_mean: Option<f64>,
    pub server_cpu_us_per_work: Option<f64>,
    pub redis_cpu_us_per_work: Option<f64>,
    pub delivery_p99_ms: Option<f64>,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub machine_cpu_percent_mean: f64,
    /// bench's self-check flagged the generator (its figures are suspect).
    pub generator_saturated: bool,
    /// The run was valid (not interrupted, self-check clean).
    pub valid: bool,
    /// This size's results.json, relative to the capacity output dir.
    pub results_file: Option<String>,
}

/// The largest size predicted from the smaller ones, against its measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holdout {
    pub nodes: u32,
    pub fitted_from: Vec<u32>,
    pub predicted_us: f64,
    pub measured_us: f64,
    /// (predicted − measured) / measured.
    pub relative_error: f64,
}

/// What `--nodes` measured and fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleOutMeasurement {
    /// The fixed load (clients with `--vary clients`, else % of the chat rate).
    pub load: u32,
    pub steps: Vec<NodeStep>,
    /// Over every valid size with a CPU figure.
    pub fit: Option<BusOverhead>,
    /// With three sizes or more.
    pub holdout: Option<Holdout>,
}

/// What [`measure`] needs.
pub struct NodesRun<'a> {
    /// The scenario's plan with the bundled server (before the search's
    /// runner pointed it at a URL).
    pub base: &'a Plan,
    pub bundled_args: &'a [String],
    pub sizes: &'a [u32],
    pub spec: StepSpec,
    pub out_dir: &'a Path,
    pub stop: &'a dyn Fn() -> bool,
}

fn node_dir(out_dir: &Path, nodes: u32) -> std::path::PathBuf {
    out_dir.join("nodes").join(format!("nodes-{nodes}"))
}

/// Runs one step per cluster size; stops early (keeping what it has) when
/// the user interrupts.
pub fn measure(run: &NodesRun) -> anyhow::Result<ScaleOutMeasurement> {
    let mut steps = Vec::new();
    for &n in run.sizes {
        if (run.stop)() {
            break;
        }
        steps.push(
            measure_one(run, n).with_context(|| format!("measuring {n} node(s) over Redis"))?,
        );
    }
    Ok(summarize(run.spec.load, steps))
}

fn measure_one(run: &NodesRun, n: u32) -> anyhow::Result<NodeStep> {
    // A fresh Redis per size: no keys or history carried over.
    let redis = RedisProc::start(&RedisPlan {
        command: None,
        url: None,
    })?;
    let mut args = run.bundled_args.to_vec();
    args.extend([
        "--processes".to_owned(),
        n.to_string(),
        "--redis".to_owned(),
        redis.url.clone(),
    ]);
    let mut server = target::start(&Endpoint::Bundled { args, tls: false })?;
    let mut plan = super::runner::step_plan(run.base, &run.spec, &[], run.out_dir);
    plan.target.endpoint = Endpoint::Url(server.url.clone());
    plan.target.redis = None;
    plan.target.server_pids = server.pid().into_iter().collect();
    plan.target.redis_pids = redis.pid().into_iter().collect();
    plan.output.dir = node_dir(run.out_dir, n);
    plan.name = format!("{}-nodes-{n}", run.base.name);
    let report = crate::run::run_plan(&plan, &EngineOptions { quiet: true });
    server.stop();
    drop(redis);
    let report = report?;
    let r = &report.results;
    let work = model::work_per_s(r.throughput.chat_sent_per_s, r.throughput.deliveries_per_s);
    let redis_cpu = r.server.redis_cpu_percent_mean();
    let results_file = report
        .exported
        .written
        .iter()
        .find(|(name, _)| *name == "json")
        .and_then(|(_, p)| p.strip_prefix(run.out_dir).ok())
        .map(|p| p.display().to_string());
    Ok(NodeStep {
        nodes: n,
        clients: run.spec.clients,
        work_per_s: work,
        server_cpu_percent_mean: r.server.cpu_percent_mean,
        redis_cpu_percent_mean: redis_cpu,
        server_cpu_us_per_work: model::cpu_us_per_work(r.server.cpu_percent_mean, work),
        redis_cpu_us_per_work: model::cpu_us_per_work(redis_cpu, work),
        delivery_p99_ms: r.metrics.get("delivery_latency").map(|m| m.p99),
        lost: r.counters.lost,
        duplicates: r.counters.duplicates,
        out_of_order: r.counters.out_of_order,
        machine_cpu_percent_mean: r.machine.cpu_percent_mean,
        generator_saturated: r.generator.saturated,
        valid: r.validity.valid,
        results_file,
    })
}

fn costs(steps: &[NodeStep]) -> Vec<NodeCost> {
    steps
        .iter()
        .filter(|s| s.valid)
        .filter_map(|s| {
            Some(NodeCost {
                nodes: s.nodes,
                server_cpu_us_per_work: s.server_cpu_us_per_work?,
                bus_cpu_us_per_work: s.redis_cpu_us_per_work,
            })
        })
        .collect()
}

/// The fit over every valid size and, with three or more, the largest
/// predicted from the others.
pub fn summarize(load: u32, steps: Vec<NodeStep>) -> ScaleOutMeasurement {
    let all = costs(&steps);
    let fit = scaleout::fit(&all);
    let holdout = all
        .iter()
        .max_by_key(|c| c.nodes)
        .filter(|_| all.len() >= 3)
        .and_then(|largest| {
            let rest: Vec<NodeCost> = all
                .iter()
                .filter(|c| c.nodes != largest.nodes)
                .copied()
                .collect();
            let f = scaleout::fit(&rest)?;
            let predicted = f.cost_at(largest.nodes);
            let measured = largest.server_cpu_us_per_work;
            Some(Holdout {
                nodes: largest.nodes,
                fitted_from: rest.iter().map(|c| c.nodes).collect(),
                predicted_us: predicted,
                measured_us: measured,
                relative_error: (predicted - measured) / measured,
            })
        });
    ScaleOutMeasurement {
        load,
        steps,
        fit,
        holdout,
    }
}

/// Checks `--nodes` against the scenario: the sizes, and a server bench can
/// scale out (the bundled reference server, without flags that fix its
/// processes or bus). Returns the bundled server's flags.
pub fn check(sizes: &[u32], plan: &Plan) -> Result<Vec<String>, String> {
    if let Some(bad) = sizes.iter().find(|n| !(1..=MAX_NODES).contains(*n)) {
        return Err(format!(
            "--nodes: {bad} is not a cluster size (1 to {MAX_NODES})"
        ));
    }
    let mut distinct = sizes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(
            "--nodes needs at least two different cluster sizes to fit the bus overhead, e.g. --nodes 1,2,3".into(),
        );
    }
    let Endpoint::Bundled { args, .. } = &plan.target.endpoint else {
        return Err("--nodes needs a server that can scale out, which bench starts itself as N processes over a redis-server it starts: the bundled reference server (no [target] url, --url or [target.server] command)".into());
    };
    for flag in ["--processes", "--redis", "--reuse-port"] {
        if args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            return Err(format!(
                "--nodes sets the server's processes and Redis itself: remove `{flag}` from [target.server] (processes = N is written as `--processes` there)"
            ));
        }
    }
    if plan.target.redis.is_some() {
        return Err(
            "--nodes starts a fresh redis-server for each cluster size: remove [target.redis]"
                .into(),
        );
    }
    Ok(args.clone())
}

/// The fixed load of the node runs: `--nodes-load`, else half the capacity
/// found (on one machine N nodes, Redis and the generator share the cores
/// that one node saturated), else the search's lowest load.
pub fn fixed_load(explicit: Option<u32>, capacity: Option<u32>, min: u32) -> u32 {
    explicit.unwrap_or_else(|| capacity.map_or(min, |c| (c / 2).max(min)))
}

/// How long the node runs take, for the terminal.
pub fn duration(sizes: &[u32], spec: &StepSpec, drain: Duration) -> Duration {
    (spec.warmup + spec.measure + drain + Duration::from_secs(2)) * sizes.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PlanOverrides;

    fn step(nodes: u32, us: f64, valid: bool) -> NodeStep {
        NodeStep {
            nodes,
            clients: 100,
            work_per_s: 1000.0,
            server_cpu_percent_mean: Some(us / 10.0),
            redis_cpu_percent_mean: Some(1.0),
            server_cpu_us_per_work: Some(us),
            redis_cpu_us_per_work: Some(10.0),
            delivery_p99_ms: Some(5.0),
            lost: 0,
            duplicates: 0,
            out_of_order: 0,
            machine_cpu_percent_mean: 50.0,
            generator_saturated: !valid,
            valid,
            results_file: None,
        }
    }

    #[test]
    fn the_largest_size_is_predicted_from_the_others() {
        let m = summarize(
            100,
            vec![
                step(1, 10.0, true),
                step(2, 13.0, true),
                step(3, 17.0, true),
            ],
        );
        let h = m.holdout.unwrap();
        assert_eq!((h.nodes, h.fitted_from.clone()), (3, vec![1, 2]));
        assert!((h.predicted_us - 16.0).abs() < 1e-9, "{h:?}");
        assert!((h.relative_error - (16.0 - 17.0) / 17.0).abs() < 1e-9);
        assert_eq!(m.fit.unwrap().measured.len(), 3);
        // An invalid size is left out of the fit and of the holdout.
        let m = summarize(
            100,
            vec![
                step(1, 10.0, true),
                step(2, 13.0, true),
                step(3, 99.0, false),
            ],
        );
        assert!(m.holdout.is_none());
        assert_eq!(m.fit.unwrap().measured.len(), 2);
    }

    #[test]
    fn nodes_need_sizes_and_a_server_that_scales_out() {
        let plan = |extra: &str| {
            let text = format!("[[stages]]\nduration = \"1s\"\ntarget = 1\n[[clients]]\n{extra}");
            crate::scenario::parse(&text, "s.toml", None, &PlanOverrides::default()).unwrap()
        };
        assert!(check(&[1, 2, 3], &plan("")).is_ok());
        assert!(check(&[2, 2], &plan(""))
            .unwrap_err()
            .contains("two different"));
        assert!(check(&[0, 1], &plan("")).unwrap_err().contains("0 is not"));
        let url = plan("[target]\nurl = \"ws://127.0.0.1:9/ws\"\n");
        assert!(check(&[1, 2], &url).unwrap_err().contains("can scale out"));
        let procs = plan("[target.server]\nprocesses = 2\n");
        assert!(check(&[1, 2], &procs).unwrap_err().contains("--processes"));
        assert_eq!(fixed_load(None, Some(800), 10), 400);
        assert_eq!(fixed_load(None, None, 10), 10);
        assert_eq!(fixed_load(Some(50), Some(800), 10), 50);
    }
}

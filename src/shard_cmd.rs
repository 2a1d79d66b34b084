//! `bench run --shard I/N` (one shard of a run spread over machines, or a
//! worker process of `--processes`) and `bench merge` (shard files → one
//! results.json and report, exactly as if one process had run).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::engine::parts::{self, ShardFile};
use crate::engine::shard::{ScenarioSource, ShardRun, ShardSink, ShardSpec};
use crate::engine::stream::{self, Record};
use crate::engine::{self, EngineOptions};
use crate::exit::{Outcome, UsageError};
use crate::run::RunArgs;
use crate::scenario::{self, Endpoint, PlanOverrides};

fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

/// The shard file name of shard `spec` (what `bench merge DIR` reads).
pub fn shard_file_name(spec: ShardSpec) -> String {
    format!("shard-{}-of-{}.jsonl", spec.index, spec.count)
}

/// `bench run --shard`.
pub fn run_shard(args: &RunArgs, spec: &str) -> anyhow::Result<Outcome> {
    let spec = ShardSpec::parse(spec, |k| std::env::var(k).ok()).map_err(anyhow::Error::new)?;
    if args.processes.is_some() {
        return Err(usage(
            "--shard and --processes cannot be combined: a shard is one process".into(),
        ));
    }
    if args.repeat > 1 {
        return Err(usage("--shard runs once: --repeat is not supported".into()));
    }
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| {
        usage(format!(
            "cannot read scenario {}: {e}",
            args.scenario.display()
        ))
    })?;
    let name = args.scenario.display().to_string();
    let overrides = PlanOverrides {
        out_dir: args.out.clone(),
        thresholds: args.thresholds.clone(),
        seed: args.seed,
        target_url: args.url.clone(),
    };
    let mut plan = scenario::parse(&text, &name, Some(&args.scenario), &overrides)?;
    if spec.count > 1 && plan.target.generator_accounting() {
        return Err(usage(format!(
            "--shard {spec}: delivery accounting done by the generator (protocol = \"json\", or \
             [target.socketio] accounting = \"generator\") needs every client in one process, \
             so such a run cannot be sharded"
        )));
    }
    if let Some(u) = &args.worker_url {
        // A worker process: the coordinator owns the server and its faults.
        let url =
            scenario::units::parse_ws_url(u).map_err(|e| usage(format!("--worker-url: {e}")))?;
        plan.target.endpoint = Endpoint::Url(url);
        plan.faults.clear();
        plan.target.redis = None;
        if let (Some(tls), Ok(ca)) = (
            plan.target.tls.as_mut(),
            std::env::var(crate::engine::procs::WORKER_CA_ENV),
        ) {
            let certs = scenario::read_certs(std::path::Path::new(&ca))
                .map_err(|e| anyhow::anyhow!("the coordinator's certificate {ca}: {e}"))?;
            tls.ca_certs.extend(certs);
        }
        plan.target.server_pids.clear();
        plan.target.server_process = None;
    } else if spec.count > 1 && !matches!(plan.target.endpoint, Endpoint::Url(_)) {
        return Err(usage(format!(
            "--shard {spec}: every shard must load the same server; set [target] url or --url \
             (a bundled or command server would be one server per shard)"
        )));
    }
    let sink = if args.worker_stream {
        ShardSink::Stdout
    } else {
        ShardSink::File(plan.output.dir.join(shard_file_name(spec)))
    };
    let run = ShardRun {
        spec,
        start_at_ms: args.start_at,
        sink,
        scenario: ScenarioSource {
            name,
            text,
            seed: args.seed,
            url: args.url.clone(),
            thresholds: args.thresholds.clone(),
        },
    };
    let quiet = args.quiet || args.worker_stream;
    let results = engine::execute_shard(&plan, &EngineOptions { quiet }, &run)?;
    if !quiet {
        let c = &results.counters;
        eprintln!(
            "shard {spec}: {} clients connected, {} chats sent, {} deliveries received{}",
            results.readiness.connected,
            c.chat_sent,
            c.deliveries_received,
            results
                .interrupt_reason
                .as_ref()
                .map_or(String::new(), |r| format!("; stopped early: {r}"))
        );
    }
    Ok(if results.is_invalid() {
        Outcome::InvalidRun
    } else {
        Outcome::Pass
    })
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard files, or directories holding them (`shard-*.jsonl`).
    #[arg(required = true, value_name = "DIR|FILE")]
    pub inputs: Vec<PathBuf>,
    /// Output directory for results.json and report.html (default: the
    /// scenario's `[output] dir`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Extra threshold, e.g. `delivery_latency.p99<50ms` (repeatable).
    #[arg(long = "threshold", value_name = "COND")]
    pub thresholds: Vec<String>,
    /// No summary table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `bench merge`.
pub fn execute_merge(args: MergeArgs) -> anyhow::Result<Outcome> {
    let mut paths = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot list {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_shard_file(p))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(usage(format!(
                    "{}: no shard files (shard-*.jsonl) in it",
                    input.display()
                )));
            }
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    let files: Vec<(PathBuf, ShardFile)> = paths
        .into_iter()
        .map(|p| read_shard(&p).map(|f| (p, f)))
        .collect::<anyhow::Result<_>>()?;
    let first = &files[0].1.header;
    check_compatible(&files)?;
    let src = &first.scenario;
    let mut thresholds = src.thresholds.clone();
    thresholds.extend(args.thresholds.iter().cloned());
    let overrides = PlanOverrides {
        out_dir: args.out.clone(),
        thresholds,
        seed: src.seed,
        target_url: src.url.clone(),
    };
    let plan = scenario::parse(&src.text, &src.name, None, &overrides)
        .context("the scenario recorded in the shard files")?;
    let count = first.shard.count;
    let col = parts::merge_files(&plan, count, files.into_iter().map(|(_, f)| f).collect());
    let results = engine::build::results(&plan, col);
    Ok(crate::run::finish_results(&plan, results, args.quiet)?.outcome)
}

fn is_shard_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("shard-") && (name.ends_with(".jsonl") || name.ends_with(".partial"))
}

/// Reads a shard file; a line that does not decode ends it (a shard that
/// crashed mid-write), but a file that does not start with a header is
/// not a shard file at all.
fn read_shard(path: &Path) -> anyhow::Result<ShardFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read shard file {}: {e}", path.display())))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = match lines.next().map(stream::decode) {
        Some(Ok(Record::Header(h))) => *h,
        Some(Err(e)) => return Err(usage(format!("{}: {e}", path.display()))),
        _ => {
            return Err(usage(format!(
                "{}: not a shard file (no header record)",
                path.display()
            )))
        }
    };
    let mut records = Vec::new();
    for line in lines {
        match stream::decode(line) {
            Ok(Record::Header(_)) => {
                return Err(usage(format!("{}: a second header record", path.display())))
            }
            Ok(r) => records.push(r),
            Err(e) => {
                eprintln!(
                    "warning: {}: stops at an unreadable record ({e})",
                    path.display()
                );
                break;
            }
        }
    }
    Ok(ShardFile { header, records })
}

/// Shards of one run only: same bench version, scenario, seed, histogram
/// settings and shard total, and each shard index once.
fn check_compatible(files: &[(PathBuf, ShardFile)]) -> anyhow::Result<()> {
    let (p0, f0) = &files[0];
    let h0 = &f0.header;
    for (p, f) in &files[1..] {
        let h = &f.header;
        let differs = |what: &str, a: String, b: String| {
            usage(format!(
                "{} and {} are not shards of one run: {what} differs ({a} vs {b})",
                p0.display(),
                p.display()
            ))
        };
        if h.bench_version != h0.bench_version {
            return Err(differs(
                "bench version",
                h0.bench_version.clone(),
                h.bench_version.clone(),
            ));
        }
        if h.scenario_hash != h0.scenario_hash {
            return Err(differs(
                "scenario",
                h0.scenario_hash.clone(),
                h.scenario_hash.clone(),
            ));
        }
        if h.seed != h0.seed {
            return Err(differs("seed", h0.seed.to_string(), h.seed.to_string()));
        }
        if h.histogram != h0.histogram {
            return Err(differs(
                "histogram settings",
                format!("{:?}", h0.histogram),
                format!("{:?}", h.histogram),
            ));
        }
        if h.shard.count != h0.shard.count {
            return Err(differs(
                "shard total",
                h0.shard.count.to_string(),
                h.shard.count.to_string(),
            ));
        }
    }
    for (i, (p, f)) in files.iter().enumerate() {
        if let Some((q, _)) = files[..i]
            .iter()
            .find(|(_, g)| g.header.shard.index == f.header.shard.index)
        {
            return Err(usage(format!(
                "duplicate shard {}: {} and {} are the same shard",
                f.header.shard,
                q.display(),
                p.display()
            )));
        }
    }
    Ok(())
}

//! `bench run`: load the scenario into a validated plan, execute it, check
//! thresholds, write every requested format, print the summary, and turn
//! the outcome into an exit code.

use std::path::PathBuf;

use crate::engine::{self, EngineOptions};
use crate::exit::Outcome;
use crate::export::{ExportManager, ExportReport, Exporter};
use crate::results::RunResults;
use crate::scenario::{self, Plan, PlanOverrides};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Output directory (overrides `[output] dir`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Extra threshold, e.g. `delivery_latency.p99<50ms` (repeatable).
    #[arg(long = "threshold", value_name = "COND")]
    pub thresholds: Vec<String>,
    /// Seed for every client's schedule (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Target URL (overrides `[target] url`; disables the bundled server).
    #[arg(long)]
    pub url: Option<String>,
    /// No live view and no summary table (results are still written).
    #[arg(long, short)]
    pub quiet: bool,
    /// Run the scenario N times; results.json keeps every repeat's values
    /// for noise-aware `bench compare` and the median repeat's summary.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Spread the clients over N worker processes of this binary
    /// (overrides `[run] processes`; default: automatic from the fd limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: Option<u32>,
    /// Run only shard I of N (0-based) and write a shard file for `bench
    /// merge`; `auto/N` or `auto` take I from JOB_COMPLETION_INDEX (and N
    /// from BENCH_SHARDS).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// With --shard: start the clients at this UNIX-epoch millisecond.
    #[arg(long, value_name = "EPOCH_MS", requires = "shard")]
    pub start_at: Option<u64>,
    /// Internal: a worker process of --processes streams its records on stdout.
    #[arg(long, hide = true, requires = "shard")]
    pub worker_stream: bool,
    /// Internal: the coordinator's target, for a worker process.
    #[arg(long, hide = true, value_name = "URL", requires = "worker_stream")]
    pub worker_url: Option<String>,
}

/// What one run produced, for callers that want more than the exit code.
pub struct RunReport {
    pub results: RunResults,
    pub outcome: Outcome,
    pub exported: ExportReport,
}

pub fn execute(args: RunArgs) -> anyhow::Result<Outcome> {
    // Client sockets are file descriptors: take all the kernel allows.
    let nofile = engine::procs::raise_nofile();
    if let Some(spec) = &args.shard {
        return crate::shard_cmd::run_shard(&args, spec);
    }
    let overrides_url = args.url.clone();
    let overrides = PlanOverrides {
        out_dir: args.out,
        thresholds: args.thresholds,
        seed: args.seed,
        target_url: args.url,
    };
    let plan = scenario::load(&args.scenario, &overrides)?;
    let opts = EngineOptions { quiet: args.quiet };
    let processes = args
        .processes
        .or(plan.run.processes)
        .unwrap_or_else(|| engine::procs::auto_count(plan.peak_clients(), nofile));
    if processes > 1 && plan.target.generator_accounting() {
        return Err(anyhow::Error::new(crate::exit::UsageError(format!(
            "{processes} generator processes, but delivery accounting done by the generator \
             (protocol = \"json\", or [target.socketio] accounting = \"generator\") needs every \
             client in one process: set [run] processes = 1 (or --processes 1) and at most \
             {} clients for this file-descriptor limit",
            engine::procs::clients_per_process(nofile.unwrap_or(1024))
        ))));
    }
    let report = if processes > 1 {
        let procs = engine::procs::ProcsRun {
            count: processes,
            scenario: args.scenario.clone(),
            seed: plan.seed,
            url: overrides_url,
        };
        if !args.quiet {
            eprintln!("running {processes} worker processes");
        }
        run_plan_with(&plan, &opts, args.repeat, |p| {
            engine::execute_processes(p, &opts, &procs)
        })?
    } else {
        run_plan_repeated(&plan, &opts, args.repeat)?
    };
    Ok(report.outcome)
}

/// Executes a validated plan end to end: engine → thresholds → export → summary.
pub fn run_plan(plan: &Plan, opts: &EngineOptions) -> anyhow::Result<RunReport> {
    run_plan_repeated(plan, opts, 1)
}

/// [`run_plan`] with the engine run `repeat` times (see `compare::repeats`).
pub fn run_plan_repeated(
    plan: &Plan,
    opts: &EngineOptions,
    repeat: u32,
) -> anyhow::Result<RunReport> {
    run_plan_with(plan, opts, repeat, |p| engine::execute(p, opts))
}

/// [`run_plan_repeated`] with the engine call given (threads or worker processes).
fn run_plan_with(
    plan: &Plan,
    opts: &EngineOptions,
    repeat: u32,
    engine_run: impl Fn(&Plan) -> anyhow::Result<RunResults>,
) -> anyhow::Result<RunReport> {
    let results = if repeat > 1 {
        crate::compare::repeats::run_repeated(repeat, |i| {
            if !opts.quiet {
                eprintln!("repeat {i}/{repeat}");
            }
            engine_run(plan)
        })?
    } else {
        engine_run(plan)?
    };
    finish_results(plan, results, opts.quiet)
}

/// Thresholds, export, summary and outcome of finished results (a run or
/// a `bench merge`).
pub fn finish_results(
    plan: &Plan,
    mut results: RunResults,
    quiet: bool,
) -> anyhow::Result<RunReport> {
    results.thresholds = crate::thresholds::evaluate(&plan.thresholds, &results);
    // Repeats may have combined interrupted / saturated flags: fold them in.
    results.seal_validity();

    let mut manager = ExportManager::new();
    for f in &plan.output.formats {
        manager.add(exporter_for(*f));
    }
    let exported = manager.export_all(&results, &plan.output.dir);
    for (name, e) in &exported.failed {
        eprintln!("error: writing {name} failed: {e:#}");
    }
    if !quiet {
        print_summary(&results, &exported);
    }

    let mut outcome = Outcome::Pass;
    if !crate::thresholds::all_passed(&results.thresholds) {
        outcome = outcome.worst(Outcome::ThresholdsFailed);
    }
    if results.is_invalid() {
        outcome = outcome.worst(Outcome::InvalidRun);
    }
    if !exported.failed.is_empty() {
        outcome = outcome.worst(Outcome::Failure);
    }
    Ok(RunReport {
        results,
        outcome,
        exported,
    })
}

/// The exporter for a format.
fn exporter_for(format: scenario::Format) -> Box<dyn Exporter> {
    match format {
        scenario::Format::Json => Box::new(crate::export::json::JsonExporter),
        scenario::Format::Html => Box::new(crate::report::HtmlExporter),
        scenario::Format::Junit => Box::new(crate::export::junit::JunitExporter),
        scenario::Format::Markdown => Box::new(crate::export::markdown::MarkdownExporter),
    }
}

/// The summary table, then where the files went.
fn print_summary(r: &RunResults, exported: &ExportReport) {
    crate::summary::print(r);
    for (name, path) in &exported.written {
        println!("{name}: {}", path.display());
    }
}

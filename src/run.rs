//! `bench run`: load the scenario into a validated plan, execute it, check
//! thresholds, write every requested format, print the summary, and turn
//! the outcome into an exit code.

use std::path::{Path, PathBuf};

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
}

/// What one run produced, for callers that want more than the exit code.
pub struct RunReport {
    pub results: RunResults,
    pub outcome: Outcome,
    pub exported: ExportReport,
}

pub fn execute(args: RunArgs) -> anyhow::Result<Outcome> {
    let overrides = PlanOverrides {
        out_dir: args.out,
        thresholds: args.thresholds,
        seed: args.seed,
        target_url: args.url,
    };
    let plan = scenario::load(&args.scenario, &overrides)?;
    let report = run_plan(&plan, &EngineOptions { quiet: args.quiet })?;
    Ok(report.outcome)
}

/// Executes a validated plan end to end: engine → thresholds → export → summary.
pub fn run_plan(plan: &Plan, opts: &EngineOptions) -> anyhow::Result<RunReport> {
    let mut results = engine::execute(plan, opts)?;
    results.thresholds = crate::thresholds::evaluate(&plan.thresholds, &results);

    let mut manager = ExportManager::new();
    for f in &plan.output.formats {
        if let Some(ex) = exporter_for(*f) {
            manager.add(ex);
        }
    }
    let exported = manager.export_all(&results, &plan.output.dir);
    for (name, e) in &exported.failed {
        eprintln!("error: writing {name} failed: {e:#}");
    }
    if !opts.quiet {
        print_summary(&results, &exported);
    }

    let mut outcome = Outcome::Pass;
    if !crate::thresholds::all_passed(&results.thresholds) {
        outcome = outcome.worst(Outcome::ThresholdsFailed);
    }
    if results.interrupted || results.generator.saturated {
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

/// The exporter for a format, when this build has one.
fn exporter_for(format: scenario::Format) -> Option<Box<dyn Exporter>> {
    match format {
        // Until `export::json` lands: a plain pretty-printed results.json.
        scenario::Format::Json => Some(Box::new(ResultsJson)),
        _ => None,
    }
}

struct ResultsJson;

impl Exporter for ResultsJson {
    fn name(&self) -> &'static str {
        "json"
    }

    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("results.json");
        let text = serde_json::to_string_pretty(results)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// A short end-of-run summary (the full table lives in `summary.rs`).
fn print_summary(r: &RunResults, exported: &ExportReport) {
    let c = &r.counters;
    println!(
        "{}: {:.1}s, {} connections, {} chat sent, {} deliveries ({} expected, {} lost, {} duplicates)",
        r.name,
        r.duration_s,
        c.connections_opened,
        c.chat_sent,
        c.deliveries_received,
        c.deliveries_expected,
        c.lost,
        c.duplicates
    );
    for (name, m) in &r.metrics {
        println!(
            "  {name:<26} p50 {:>9.2} ms  p99 {:>9.2} ms  max {:>9.2} ms  (n={})",
            m.p50, m.p99, m.max, m.count
        );
    }
    for t in &r.thresholds {
        let v = t
            .value
            .map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3}"));
        println!(
            "  threshold {} {} → {} ({v})",
            t.metric,
            t.condition,
            if t.pass { "pass" } else { "FAIL" }
        );
    }
    if r.generator.saturated {
        println!(
            "  WARNING: generator saturated: {}",
            r.generator.saturation_reasons.join("; ")
        );
    }
    if let Some(reason) = &r.interrupt_reason {
        println!("  INTERRUPTED: {reason}");
    }
    for (name, path) in &exported.written {
        println!("  {name}: {}", path.display());
    }
}

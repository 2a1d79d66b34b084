//! `bench compare` and `bench baseline`: the commands around the
//! `compare` library. They read and write results files, print the
//! terminal table and write the JUnit and Markdown documents (`export`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::{
    combine_repeats, compare_runs, files, gates, repeats, verdict, Comparison, Verdict,
};
use crate::exit::{Outcome, UsageError};
use crate::export::{junit, markdown};
use crate::format;
use crate::results::RunResults;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Baseline results (e.g. reports/baselines/quickstart.json).
    pub baseline: PathBuf,
    /// Current results.json to judge against the baseline.
    pub current: PathBuf,
    /// Largest tolerated worsening per metric, e.g.
    /// 'delivery_latency.p99=10%,memory_per_connection=5%'. Overrides the
    /// default tolerance of a default-gated metric or gates a new one.
    #[arg(long, value_name = "METRIC=PCT%,...")]
    pub max_regression: Vec<String>,
    /// Gate only the metrics named in --max-regression (drop the default set).
    #[arg(long, requires = "max_regression")]
    pub only: bool,
    /// Write a JUnit XML report: one testcase per threshold and per gated metric.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the comparison as a Markdown table (for a pull-request comment).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// When the current run passes (exit 0), make it the new baseline. A
    /// missing baseline is created from the current run.
    #[arg(long)]
    pub update: bool,
    /// Print only the verdict line, not the table.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Save a run's results as a baseline (refuses interrupted or saturated
    /// runs). Several results files of one scenario are combined into one
    /// baseline with repeats, as `bench run --repeat N` would.
    Save {
        /// The results.json to save, or several to combine as repeats.
        #[arg(required = true, num_args = 1..)]
        results: Vec<PathBuf>,
        /// Where to save it [default: reports/baselines/<scenario name>.json].
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
        /// Save even an interrupted or saturated run.
        #[arg(long)]
        allow_invalid: bool,
    },
}

/// `bench compare`.
pub fn execute(args: CompareArgs) -> anyhow::Result<Outcome> {
    let mut explicit = Vec::new();
    for spec in &args.max_regression {
        for (metric, pct) in gates::parse_max_regression(spec)? {
            if explicit.iter().any(|(m, _): &(String, f64)| *m == metric) {
                return Err(UsageError(format!("--max-regression: {metric} given twice")).into());
            }
            explicit.push((metric, pct));
        }
    }
    let gates = gates::resolve_gates(&explicit, args.only);

    let current = files::load_results(&args.current)?;
    if args.update && !args.baseline.exists() {
        return create_missing_baseline(&current, &args.baseline);
    }
    let baseline = files::load_results(&args.baseline)?;
    let baseline_invalid = verdict::invalid_reasons(&baseline);
    if !baseline_invalid.is_empty() {
        return Err(UsageError(format!(
            "the baseline {} cannot be trusted ({}); save a valid run as the baseline",
            args.baseline.display(),
            baseline_invalid.join("; ")
        ))
        .into());
    }
    check_explicit_metrics_exist(&gates, &baseline, &current)?;

    let comparison = compare_runs(&baseline, &current, &gates);
    let outcome = comparison.outcome();
    let table = markdown::comparison_markdown(&comparison);

    print_warnings(&comparison);
    if !args.quiet {
        print!("{}", terminal_table(&comparison));
    }
    println!("{}", verdict_line(&comparison, outcome));
    if let Some(path) = &args.junit {
        write_file(path, &junit::comparison_junit(&comparison))?;
    }
    if let Some(path) = &args.markdown {
        write_file(path, &table)?;
    }
    append_step_summary(&table);

    if args.update {
        if outcome == Outcome::Pass {
            files::write_results(&current, &args.baseline)?;
            println!("baseline updated: {}", args.baseline.display());
        } else {
            println!(
                "baseline not updated (exit {}): only a passing run replaces it",
                outcome.code()
            );
        }
    }
    Ok(outcome)
}

/// Non-fatal notes on stderr: setups that differ, metrics not measured.
fn print_warnings(comparison: &Comparison) {
    for warning in &comparison.warnings {
        eprintln!("warning: {warning}");
    }
    let unmeasured = comparison
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::NotMeasured);
    for row in unmeasured {
        let missing_in = match (row.baseline, row.current) {
            (None, None) => "either run",
            (None, Some(_)) => "the baseline",
            _ => "the current run",
        };
        eprintln!(
            "warning: {} was not measured in {missing_in}; it is not gated",
            row.metric
        );
    }
}

/// `compare --update` with no baseline yet: the current run becomes it,
/// if it is one that `--update` would accept (valid, thresholds passed).
fn create_missing_baseline(current: &RunResults, path: &Path) -> anyhow::Result<Outcome> {
    let invalid = verdict::invalid_reasons(current);
    if !invalid.is_empty() {
        eprintln!(
            "error: no baseline at {} and the current run cannot be trusted ({}); not saving it",
            path.display(),
            invalid.join("; ")
        );
        return Ok(Outcome::InvalidRun);
    }
    if current.thresholds.iter().any(|t| !t.pass) {
        eprintln!(
            "error: no baseline at {} and the current run failed its thresholds; not saving it",
            path.display()
        );
        return Ok(Outcome::ThresholdsFailed);
    }
    files::write_results(current, path)?;
    println!(
        "no baseline at {}: saved the current run as the baseline (nothing to compare yet)",
        path.display()
    );
    Ok(Outcome::Pass)
}

/// A metric the user named must be one bench knows; otherwise it is a
/// typo, and silently gating nothing would be worse. A known metric that
/// neither run measured is only a warning (it shows as "not measured").
fn check_explicit_metrics_exist(
    gates: &[gates::Gate],
    baseline: &RunResults,
    current: &RunResults,
) -> anyhow::Result<()> {
    let run_latencies: Vec<&str> = baseline
        .metrics
        .keys()
        .chain(current.metrics.keys())
        .map(String::as_str)
        .collect();
    for gate in gates.iter().filter(|g| g.explicit) {
        if gates::is_known_metric(&gate.metric, &run_latencies) {
            continue;
        }
        let mut candidates: Vec<String> = repeats::repeat_values(current).into_keys().collect();
        candidates.extend(gates::DEFAULT_GATES.iter().map(|g| g.0.to_string()));
        let nearest = candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(c, &gate.metric), c))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(UsageError(format!(
            "--max-regression: unknown metric `{}`{nearest}",
            gate.metric
        ))
        .into());
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Appends the Markdown table to `$GITHUB_STEP_SUMMARY` when GitHub Actions
/// set it. A failure here is a warning: the gate's verdict matters more.
fn append_step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{markdown}"));
    if let Err(e) = result {
        eprintln!(
            "warning: cannot append to $GITHUB_STEP_SUMMARY ({}): {e}",
            Path::new(&path).display()
        );
    }
}

fn verdict_line(c: &Comparison, outcome: Outcome) -> String {
    let head = match outcome {
        Outcome::Pass => "PASS".to_string(),
        Outcome::Regression => "REGRESSION".to_string(),
        Outcome::ThresholdsFailed => "THRESHOLDS FAILED".to_string(),
        Outcome::InvalidRun => "INVALID RUN".to_string(),
        other => format!("{other:?}"),
    };
    let mut line = format!(
        "{head}: {} regressed, {} improved, {} within noise, {} not measured",
        c.count(Verdict::Regressed),
        c.count(Verdict::Improved),
        c.count(Verdict::WithinNoise),
        c.count(Verdict::NotMeasured)
    );
    let failed = c.thresholds.iter().filter(|t| !t.pass).count();
    if failed > 0 {
        line.push_str(&format!("; {failed} threshold(s) failed"));
    }
    for why in &c.invalid_reasons {
        line.push_str(&format!("\n  invalid: {why}"));
    }
    line
}

/// The comparison as an aligned plain-text table for terminals and CI logs.
fn terminal_table(c: &Comparison) -> String {
    let header = [
        "metric", "baseline", "current", "delta", "verdict", "evidence",
    ];
    let rows: Vec<[String; 6]> = c
        .rows
        .iter()
        .map(|r| {
            [
                r.metric.clone(),
                format::optional(&r.metric, r.baseline),
                format::optional(&r.metric, r.current),
                format::delta(r),
                r.verdict.label().to_string(),
                format::evidence(r),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Numbers right-aligned, words left-aligned.
            if (1..=3).contains(&i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

/// Loads one results file as is, or several runs of one scenario combined
/// into one result with `repeats` (see [`repeats::combine_repeats`]).
fn load_as_repeats(paths: &[PathBuf]) -> anyhow::Result<RunResults> {
    let mut runs = Vec::with_capacity(paths.len());
    for path in paths {
        runs.push(files::load_results(path)?);
    }
    if runs.len() == 1 {
        return Ok(runs.remove(0));
    }
    for (path, run) in paths.iter().zip(&runs) {
        if !run.repeats.is_empty() {
            return Err(UsageError(format!(
                "{} already holds {} repeats; combine single runs only",
                path.display(),
                run.repeats.len()
            ))
            .into());
        }
        if run.name != runs[0].name {
            return Err(UsageError(format!(
                "{} is scenario `{}`, but {} is `{}`: repeats must be runs of one scenario",
                path.display(),
                run.name,
                paths[0].display(),
                runs[0].name
            ))
            .into());
        }
    }
    Ok(combine_repeats(runs)?)
}

/// `bench baseline ...`.
pub fn execute_baseline(cmd: BaselineCommand) -> anyhow::Result<Outcome> {
    match cmd {
        BaselineCommand::Save {
            results,
            to,
            allow_invalid,
        } => {
            let run = load_as_repeats(&results)?;
            let invalid = verdict::invalid_reasons(&run);
            if !invalid.is_empty() && !allow_invalid {
                let names: Vec<String> = results.iter().map(|p| p.display().to_string()).collect();
                eprintln!(
                    "error: {} cannot be trusted as a baseline ({}); re-run it, or pass --allow-invalid",
                    names.join(", "),
                    invalid.join("; ")
                );
                return Ok(Outcome::InvalidRun);
            }
            let to = to.unwrap_or_else(|| files::default_baseline_path(&run));
            files::write_results(&run, &to)?;
            let repeats = match run.repeats.len() {
                0 | 1 => {
                    "a single run: compare will use the wider single-run tolerances".to_string()
                }
                n if n < verdict::MIN_REPEATS => format!(
                    "{n} repeats: fewer than {}, so compare will use the single-run tolerances",
                    verdict::MIN_REPEATS
                ),
                n => format!("{n} repeats"),
            };
            println!("saved baseline {} ({repeats})", to.display());
            Ok(Outcome::Pass)
        }
    }
}

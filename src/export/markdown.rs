//! Markdown summaries for pull-request comments and `$GITHUB_STEP_SUMMARY`:
//! a comparison table for `bench compare`, and a run summary exporter
//! (`summary.md`) for `bench run`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::Outcome;
use crate::export::Exporter;
use crate::format;
use crate::results::verdict::{invalid_reasons, Comparison, Verdict, ALPHA, CI_LEVEL, MIN_REPEATS};
use crate::results::{RunResults, ThresholdResult};

/// Writes `summary.md` into a run's output directory.
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn name(&self) -> &'static str {
        "markdown"
    }

    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("summary.md");
        std::fs::write(&path, run_markdown(results))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

fn verdict_cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "🔴 regressed",
        Verdict::Improved => "🟢 improved",
        Verdict::WithinNoise => "⚪ within noise",
        Verdict::NotMeasured => "➖ not measured",
    }
}

/// Table cells must not contain a raw `|` or a newline.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The `bench compare` table, ready for a PR comment.
pub fn comparison_markdown(c: &Comparison) -> String {
    let outcome = c.outcome();
    let headline = match outcome {
        Outcome::Pass => "✅ no regression".to_string(),
        Outcome::Regression => format!("❌ {} metric(s) regressed", c.count(Verdict::Regressed)),
        Outcome::ThresholdsFailed => "❌ thresholds failed".to_string(),
        Outcome::InvalidRun => "⚠️ invalid run".to_string(),
        other => format!("{other:?}"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### bench compare: {headline}\n\n`{}` against baseline `{}` (exit {})\n",
        cell(&c.current_name),
        cell(&c.baseline_name),
        outcome.code()
    );
    for why in &c.invalid_reasons {
        let _ = writeln!(out, "> ⚠️ **Invalid run:** {}\n", cell(why));
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "> ℹ️ {}\n", cell(warning));
    }
    out.push_str("| metric | baseline | current | Δ | tolerance | verdict | evidence |\n");
    out.push_str("|---|---:|---:|---:|---:|---|---|\n");
    for r in &c.rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {:.0} % | {} | {} |",
            cell(&r.metric),
            cell(&format::optional(&r.metric, r.baseline)),
            cell(&format::optional(&r.metric, r.current)),
            cell(&format::delta(r)),
            r.tolerance_pct,
            verdict_cell(r.verdict),
            cell(&format::evidence(r)),
        );
    }
    if !c.thresholds.is_empty() {
        out.push('\n');
        out.push_str(&thresholds_table(&c.thresholds));
    }
    let _ = writeln!(
        out,
        "\n<sub>Regressed = worse by more than the tolerance and the noise floor. With ≥ {MIN_REPEATS} \
         repeats on both sides it must also be significant: one-sided Mann-Whitney p ≤ {ALPHA}, and \
         the whole {:.0} % bootstrap CI of the difference of medians beyond the tolerance. Single \
         runs use wider tolerances. See docs/ci.md.</sub>",
        CI_LEVEL * 100.0
    );
    out
}

fn thresholds_table(thresholds: &[ThresholdResult]) -> String {
    let mut out = String::from("| threshold | measured | result |\n|---|---:|---|\n");
    for t in thresholds {
        let measured = t.value.map_or_else(
            || "not measured".to_string(),
            |v| format::value(&t.metric, v),
        );
        let _ = writeln!(
            out,
            "| `{} {}` | {} | {} |",
            cell(&t.metric),
            cell(&t.condition),
            cell(&measured),
            if t.pass { "✅ pass" } else { "❌ fail" }
        );
    }
    out
}

/// A one-run summary: validity, key latencies, delivery and memory, thresholds.
fn run_markdown(r: &RunResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### bench run `{}`\n\n{:.1} s{}\n",
        cell(&r.name),
        r.duration_s,
        if r.repeats.len() > 1 {
            format!(", median of {} repeats", r.repeats.len())
        } else {
            String::new()
        }
    );
    for why in invalid_reasons(r) {
        let _ = writeln!(out, "> ⚠️ **Invalid run:** {}\n", cell(&why));
    }
    out.push_str("| latency | p50 | p90 | p99 | p99.9 | max | count |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for (name, m) in &r.metrics {
        let _ = writeln!(
            out,
            "| `{}` | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
            cell(name),
            m.p50,
            m.p90,
            m.p99,
            m.p999,
            m.max,
            m.count
        );
    }
    out.push('\n');
    out.push_str("| measure | value |\n|---|---:|\n");
    let rows = [
        "throughput.deliveries_per_s",
        "throughput.chat_sent_per_s",
        "delivery.lost",
        "delivery.loss_rate",
        "errors.rate",
        "memory_per_connection",
        "server.rss_peak_bytes",
        "server.cpu_percent_mean",
        "generator.cpu_percent_mean",
    ];
    for metric in rows {
        if let Some(v) = r.metric_value(metric) {
            let _ = writeln!(out, "| `{metric}` | {} |", format::value(metric, v));
        }
    }
    if !r.thresholds.is_empty() {
        out.push('\n');
        out.push_str(&thresholds_table(&r.thresholds));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LatencySummary;

    #[test]
    fn run_summary_has_latencies_and_thresholds() {
        let mut r = RunResults {
            name: "demo|x".into(),
            duration_s: 10.0,
            ..Default::default()
        };
        r.metrics.insert(
            "delivery_latency".into(),
            LatencySummary {
                p99: 12.5,
                count: 40,
                ..Default::default()
            },
        );
        r.thresholds.push(ThresholdResult {
            metric: "delivery_latency.p99".into(),
            condition: "< 10ms".into(),
            value: Some(12.5),
            pass: false,
        });
        r.generator.saturated = true;
        let md = run_markdown(&r);
        assert!(md.contains("demo\\|x"), "{md}");
        assert!(
            md.contains("| `delivery_latency` | 0.00 ms | 0.00 ms | 12.50 ms"),
            "{md}"
        );
        assert!(
            md.contains("| `delivery_latency.p99 < 10ms` | 12.50 ms | ❌ fail |"),
            "{md}"
        );
        assert!(
            md.contains("Invalid run:** the load generator was saturated"),
            "{md}"
        );
    }
}

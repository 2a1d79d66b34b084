//! The comparison page (`bench report a.json b.json ...`): the runs side by
//! side, a table of deltas against the first run, and every chart with the
//! runs overlaid.

use super::charts::{self, RunRef};
use super::html::{self, cell, cell_with, Row};
use super::page::Status;
use super::template::{escape, html, render};
use crate::compare::gates::{direction_of, Direction};
use crate::results::RunResults;
use crate::scenario::metrics::{metric_unit, MetricUnit};

const PAGE: &str = include_str!("templates/compare.html");

/// One run to compare, with the label that names it in legends and tables.
#[derive(Debug, Clone)]
pub struct LabeledRun {
    pub label: String,
    pub results: RunResults,
}

/// Renders the comparison of two or more runs; the first is the baseline.
pub fn render_comparison(runs: &[LabeledRun]) -> anyhow::Result<String> {
    anyhow::ensure!(runs.len() >= 2, "a comparison needs at least two runs");
    let refs: Vec<RunRef<'_>> = runs
        .iter()
        .map(|r| RunRef {
            label: &r.label,
            results: &r.results,
        })
        .collect();
    let charts = charts::all(&refs);
    let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    let environment: String = runs
        .iter()
        .map(|r| {
            format!(
                "<h3>{}</h3>{}",
                escape(&r.label),
                html::environment(&r.results.environment)
            )
        })
        .collect();
    let main = render(
        "compare.html",
        PAGE,
        &[
            ("runs", html(runs_table(runs)?)),
            ("deltas", html(deltas_table(runs)?)),
            ("toc", html(html::toc(&charts))),
            ("charts", html(html::charts(&charts)?)),
            ("environment", html(environment)),
        ],
    )?;
    html::page(html::Page {
        name: "compare.html",
        title: &format!("bench comparison: {}", labels.join(" vs ")),
        heading: &format!("bench comparison of {} runs", runs.len()),
        subtitle: &labels.join(" · "),
        command: None,
        main,
    })
}

fn runs_table(runs: &[LabeledRun]) -> anyhow::Result<String> {
    let rows: Vec<Row> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let status = Status::of(&r.results);
            let class = match status {
                Status::Pass => "pass",
                Status::ThresholdsFailed | Status::Invalid => "fail",
                Status::NoThresholds => "",
            };
            Row {
                class: "",
                cells: vec![
                    cell(if i == 0 {
                        format!("{} (baseline)", r.label)
                    } else {
                        r.label.clone()
                    }),
                    cell(r.results.name.clone()),
                    cell(r.results.started_at.clone()),
                    cell(format!("{:.1} s", r.results.duration_s)),
                    cell_with(status.headline(&r.results), class),
                ],
            }
        })
        .collect();
    html::table(
        "runs",
        "Runs compared",
        &["run", "scenario", "started", "duration", "verdict"],
        &[0, 1, 2, 4],
        &rows,
    )
}

/// The metrics compared, in table order; their direction is the one
/// `bench compare` gates with ([`direction_of`]).
fn compared_metrics(base: &RunResults) -> Vec<String> {
    let mut out = Vec::new();
    for name in base.metrics.keys() {
        for stat in ["p50", "p99", "p999", "max"] {
            out.push(format!("{name}.{stat}"));
        }
    }
    for path in [
        "throughput.chat_sent_per_s",
        "throughput.deliveries_per_s",
        "throughput.deliveries_per_s_peak",
        "delivery.lost",
        "delivery.loss_rate",
        "errors.count",
        "errors.rate",
        "memory_per_connection",
        "server.rss_peak_bytes",
        "server.cpu_percent_mean",
        "generator.cpu_percent_mean",
    ] {
        out.push(path.to_string());
    }
    out
}

fn deltas_table(runs: &[LabeledRun]) -> anyhow::Result<String> {
    let base = &runs[0];
    let mut head: Vec<String> = vec![
        "metric".into(),
        "better".into(),
        format!("{} (baseline)", base.label),
    ];
    for r in &runs[1..] {
        head.push(r.label.clone());
        head.push(format!("Δ {}", r.label));
    }
    let mut rows = Vec::new();
    for path in compared_metrics(&base.results) {
        let better = direction_of(&path);
        let base_value = base.results.metric_value(&path);
        let others: Vec<Option<f64>> = runs[1..]
            .iter()
            .map(|r| r.results.metric_value(&path))
            .collect();
        if base_value.is_none() && others.iter().all(Option::is_none) {
            continue;
        }
        let mut cells = vec![
            cell(path.clone()),
            cell(match better {
                Direction::LowerIsBetter => "lower",
                Direction::HigherIsBetter => "higher",
            }),
            cell(fmt_metric(&path, base_value)),
        ];
        for value in others {
            cells.push(cell(fmt_metric(&path, value)));
            cells.push(delta_cell(base_value, value, better));
        }
        rows.push(Row { class: "", cells });
    }
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    html::table(
        "deltas",
        "Key metrics (latency in ms)",
        &head_refs,
        &[0, 1],
        &rows,
    )
}

fn delta_cell(base: Option<f64>, value: Option<f64>, better: Direction) -> html::Cell {
    let (Some(b), Some(v)) = (base, value) else {
        return cell("–");
    };
    let diff = v - b;
    let rel = if b != 0.0 { Some(diff / b.abs()) } else { None };
    let text = match rel {
        _ if diff == 0.0 => "0 %".to_string(),
        Some(rel) => format!("{}{:.1} %", if diff >= 0.0 { "+" } else { "" }, rel * 100.0),
        None => format!(
            "{}{}",
            if diff > 0.0 { "+" } else { "" },
            charts::canvas::short_number(diff)
        ),
    };
    // Changes under 1 % are left uncoloured: too small to call either way.
    let significant = rel.map_or(diff != 0.0, |r| r.abs() >= 0.01);
    let improved = match better {
        Direction::LowerIsBetter => diff < 0.0,
        Direction::HigherIsBetter => diff > 0.0,
    };
    let class = match (significant, improved) {
        (false, _) => "",
        (true, true) => "better",
        (true, false) => "worse",
    };
    cell_with(text, class)
}

/// A value in its metric's unit; latencies of metrics a run adds (not in
/// the catalogue) are ms like the rest.
fn fmt_metric(path: &str, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "–".into();
    };
    match metric_unit(path) {
        Ok(MetricUnit::PerSecond) => html::per_second(v),
        Ok(MetricUnit::Fraction) => html::percent(v),
        Ok(MetricUnit::Bytes) => html::bytes(v),
        Ok(MetricUnit::Percent) => format!("{v:.1} %"),
        Ok(MetricUnit::Count) => html::grouped(v as i64),
        Ok(MetricUnit::Millis) | Err(_) => html::ms(v),
    }
}

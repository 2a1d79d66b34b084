//! The comparison page (`bench report a.json b.json ...`): the runs side by
//! side, a table of deltas against the first run, and every chart with the
//! runs overlaid.

use super::charts::{self, RunRef};
use super::html::{self, cell, cell_with, Row};
use super::page::Status;
use super::template::{escape, html, render};
use crate::results::RunResults;

const PAGE: &str = include_str!("templates/compare.html");

/// One run to compare, with the label that names it in legends and tables.
#[derive(Debug, Clone)]
pub struct LabeledRun {
    pub label: String,
    pub results: RunResults,
}

/// Whether a bigger value of a metric is good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
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

/// The metrics compared, with their direction, in table order.
fn compared_metrics(base: &RunResults) -> Vec<(String, Better)> {
    let mut out = Vec::new();
    for name in base.metrics.keys() {
        for stat in ["p50", "p99", "p999", "max"] {
            out.push((format!("{name}.{stat}"), Better::Lower));
        }
    }
    for (path, better) in [
        ("throughput.chat_sent_per_s", Better::Higher),
        ("throughput.deliveries_per_s", Better::Higher),
        ("throughput.deliveries_per_s_peak", Better::Higher),
        ("delivery.lost", Better::Lower),
        ("delivery.loss_rate", Better::Lower),
        ("errors.count", Better::Lower),
        ("errors.rate", Better::Lower),
        ("memory_per_connection", Better::Lower),
        ("server.rss_peak_bytes", Better::Lower),
        ("server.cpu_percent_mean", Better::Lower),
        ("generator.cpu_percent_mean", Better::Lower),
    ] {
        out.push((path.to_string(), better));
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
    for (path, better) in compared_metrics(&base.results) {
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
                Better::Lower => "lower",
                Better::Higher => "higher",
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

fn delta_cell(base: Option<f64>, value: Option<f64>, better: Better) -> html::Cell {
    let (Some(b), Some(v)) = (base, value) else {
        return cell("–");
    };
    let diff = v - b;
    let rel = if b != 0.0 { Some(diff / b.abs()) } else { None };
    let text = match rel {
        _ if diff == 0.0 => "0 %".to_string(),
        Some(rel) => format!("{}{:.1} %", if diff >= 0.0 { "+" } else { "" }, rel * 100.0),
        None if diff == 0.0 => "0".to_string(),
        None => format!(
            "{}{}",
            if diff > 0.0 { "+" } else { "" },
            charts::canvas::short_number(diff)
        ),
    };
    // Changes under 1 % are left uncoloured: too small to call either way.
    let significant = rel.map_or(diff != 0.0, |r| r.abs() >= 0.01);
    let improved = match better {
        Better::Lower => diff < 0.0,
        Better::Higher => diff > 0.0,
    };
    let class = match (significant, improved) {
        (false, _) => "",
        (true, true) => "better",
        (true, false) => "worse",
    };
    cell_with(text, class)
}

fn fmt_metric(path: &str, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "–".into();
    };
    if path.starts_with("throughput.") {
        html::per_second(v)
    } else if path.contains("rate") {
        html::percent(v)
    } else if path.contains("bytes") || path == "memory_per_connection" {
        html::bytes(v)
    } else if path.contains("cpu_percent") {
        format!("{v:.1} %")
    } else if path.starts_with("delivery.") || path.starts_with("errors.") {
        html::grouped(v as i64)
    } else {
        html::ms(v)
    }
}

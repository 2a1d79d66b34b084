//! The report's charts: one function per chart, one chart per file, all
//! drawn through [`canvas`]. Every function takes one run (a report) or
//! several (a comparison, overlaid run over run) and always returns a
//! [`Chart`]; missing data yields an explicit "no data" panel, never a panic.

pub mod canvas;
mod clients;
mod connect_stages;
mod errors;
mod latency_over_time;
mod memory_per_connection;
mod percentile_distribution;
mod server_resources;
mod throughput;

pub use clients::clients;
pub use connect_stages::connect_stages;
pub use errors::errors;
pub use latency_over_time::{latency_over_time, LatencyKind};
pub use memory_per_connection::memory_per_connection;
pub use percentile_distribution::percentile_distribution;
pub use server_resources::server_resources;
pub use throughput::throughput;

use crate::results::{RunResults, Snapshot};
use canvas::{color, Marker, RGBColor, XyChart};

/// One run as the charts see it: its results and the label used in legends.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    pub label: &'a str,
    pub results: &'a RunResults,
}

/// A rendered chart, ready to be placed in a page.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable identifier (`latency-delivery`, `throughput`, ...), used as the
    /// HTML id and by tests.
    pub id: String,
    pub title: String,
    /// A complete `<svg>` element.
    pub svg: String,
    /// False when the chart is a "no data" panel.
    pub has_data: bool,
    /// One line of context shown under the chart, if any.
    pub note: Option<String>,
}

impl Chart {
    pub(crate) fn from_xy(
        id: impl Into<String>,
        xy: &canvas::XyChart,
        note: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            title: xy.title.clone(),
            svg: xy.to_svg(),
            has_data: xy.has_data(),
            note,
        }
    }
}

/// Every chart of a report (or comparison), in page order.
pub fn all(runs: &[RunRef<'_>]) -> Vec<Chart> {
    let mut charts = vec![
        latency_over_time(runs, LatencyKind::Delivery),
        latency_over_time(runs, LatencyKind::Ack),
    ];
    for metric in distribution_metrics(runs) {
        charts.push(percentile_distribution(runs, &metric));
    }
    let tls = runs
        .iter()
        .any(|r| r.results.metrics.contains_key("tls_handshake_time"));
    if tls {
        charts.push(connect_stages(runs));
    }
    charts.push(throughput(runs));
    charts.push(clients(runs));
    charts.push(server_resources(runs));
    charts.push(memory_per_connection(runs));
    charts.push(errors(runs));
    charts
}

/// Latency metrics that get a distribution chart: every corrected metric
/// (service-time variants are overlaid on their corrected twin). The two
/// headline metrics always get one, so their absence shows as "no data".
fn distribution_metrics(runs: &[RunRef<'_>]) -> Vec<String> {
    let mut names: Vec<String> = vec!["delivery_latency".into(), "ack_latency".into()];
    for run in runs {
        for name in run.results.metrics.keys() {
            let stage = connect_stages::STAGES.iter().any(|(m, _)| m == name);
            if !name.ends_with("_service") && !stage && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// A chart against time since the start, with the stage boundaries
/// marked: the frame every over-time chart draws in.
fn over_time(runs: &[RunRef<'_>], title: &str, y_label: &str) -> XyChart {
    let mut xy = XyChart::new(title, "time since start (s)", y_label);
    xy.markers = stage_markers(runs);
    xy
}

/// A series' colour: one run gives each series its own colour (`own`); a
/// comparison gives each run one colour (`run_index`) so runs stay apart.
fn series_color(runs: &[RunRef<'_>], own: usize, run_index: usize) -> RGBColor {
    color(if runs.len() == 1 { own } else { run_index })
}

/// Stage boundaries of the first run (comparisons share a scenario shape).
fn stage_markers(runs: &[RunRef<'_>]) -> Vec<Marker> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .results
        .stages
        .iter()
        .map(|s| Marker {
            x: s.start_s,
            label: format!("stage {} → {}", s.index + 1, s.target),
        })
        .collect()
}

/// Series label: the bare name for one run, `run · name` when comparing.
fn label(runs: &[RunRef<'_>], run: &RunRef<'_>, name: &str) -> String {
    if runs.len() > 1 {
        format!("{} · {name}", run.label)
    } else {
        name.to_string()
    }
}

/// Per-second rate of a per-interval counter: `(t, value / interval)`.
fn rates<'a>(
    timeseries: &'a [Snapshot],
    value: impl Fn(&Snapshot) -> f64 + 'a,
) -> impl Iterator<Item = (f64, Option<f64>)> + 'a {
    let mut prev_t = None;
    timeseries.iter().map(move |s| {
        let dt = match prev_t {
            Some(p) if s.t > p => s.t - p,
            None if s.t > 0.0 && s.t <= 1.0 => s.t,
            _ => 1.0,
        };
        prev_t = Some(s.t);
        (s.t, Some(value(s) / dt))
    })
}

//! Chart: the HDR percentile distribution of one latency metric on a log
//! "nines" axis (50 %, 90 %, 99 %, 99.9 %, 99.99 %), corrected and
//! service-time curves overlaid.

use super::canvas::{color, percentile_x, Series, Stroke, XScale, XyChart};
use super::{label, Chart, RunRef};

pub fn percentile_distribution(runs: &[RunRef<'_>], metric: &str) -> Chart {
    let title = format!("{} percentile distribution", pretty(metric));
    let mut xy = XyChart::new(title, "percentile (log scale of nines)", "latency (ms)");
    xy.x_scale = XScale::PercentileLog;
    let service = format!("{metric}_service");
    // Only latencies with a service-time twin are "corrected"; others
    // (connect time, ping RTT) are plain measurements.
    let has_service = runs
        .iter()
        .any(|r| r.results.metrics.contains_key(&service));
    let main_variant = if has_service { "corrected" } else { "measured" };
    for (ri, run) in runs.iter().enumerate() {
        let variants = [
            (metric, main_variant, Stroke::Line(2), 0usize),
            (service.as_str(), "service time", Stroke::Dashed(2), 1usize),
        ];
        for (name, variant, stroke, vi) in variants {
            let Some(summary) = run.results.metrics.get(name) else {
                continue;
            };
            let colour = if runs.len() == 1 {
                color(vi)
            } else {
                color(ri)
            };
            let points = summary
                .distribution
                .iter()
                .map(|&(pct, ms)| match percentile_x(pct) {
                    Some(x) => (x, Some(ms)),
                    None => (f64::NAN, None),
                })
                .filter(|(x, _)| x.is_finite());
            xy.series.push(Series::from_points(
                label(runs, run, variant),
                colour,
                stroke,
                points,
            ));
        }
    }
    let note = has_service.then(|| {
        "Corrected: from the intended send time (coordinated omission corrected). Service time: from the actual send."
            .to_string()
    });
    Chart::from_xy(format!("distribution-{metric}"), &xy, note)
}

/// `delivery_latency` → `Delivery latency`.
fn pretty(metric: &str) -> String {
    let spaced = metric.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

//! Chart: the latency SLO metrics of every step against its load, with each
//! SLO's limit as a dashed line and the knee (the capacity found) marked.

use super::{by_load, load_axis, load_range, Chart};
use crate::capacity::model::{CapacityResults, StepRecord};
use crate::capacity::search::StepVerdict;
use crate::report::charts::canvas::{color, Marker, Series, Stroke, XyChart};
use crate::scenario::metrics::{metric_unit, MetricUnit};
use crate::scenario::Threshold;

pub fn latency_against_load(r: &CapacityResults, slos: &[Threshold]) -> Chart {
    let mut xy = XyChart::new("Latency against load", load_axis(r.vary), "latency (ms)");
    let steps = by_load(&r.steps);
    let latency_slos: Vec<&Threshold> = slos
        .iter()
        .filter(|t| metric_unit(&t.metric) == Ok(MetricUnit::Millis))
        .collect();
    if latency_slos.is_empty() {
        // No latency SLO: show the headline fan-out latency anyway.
        xy.series.push(Series::from_points(
            "delivery_latency.p99",
            color(0),
            Stroke::Line(2),
            steps.iter().map(|s| (f64::from(s.load), s.delivery_p99_ms)),
        ));
    }
    for (i, slo) in latency_slos.iter().enumerate() {
        let measured = |s: &&StepRecord| {
            s.slos
                .iter()
                .find(|c| c.metric == slo.metric)
                .and_then(|c| c.value)
        };
        xy.series.push(Series::from_points(
            slo.metric.clone(),
            color(i * 2),
            Stroke::Line(2),
            steps.iter().map(|s| (f64::from(s.load), measured(s))),
        ));
        xy.series.push(Series::from_points(
            format!("{} (step did not pass)", slo.metric),
            color(1),
            Stroke::Points(4),
            steps
                .iter()
                .filter(|s| !matches!(s.verdict, StepVerdict::Pass))
                .map(|s| (f64::from(s.load), measured(s))),
        ));
        if let Some((_, hi)) = load_range(&r.steps) {
            xy.series.push(Series::from_points(
                format!("SLO {} {}", slo.metric, slo.condition),
                color(3),
                Stroke::Dashed(2),
                [(0.0, Some(slo.value)), (hi, Some(slo.value))],
            ));
        }
    }
    if let Some(c) = r.capacity {
        xy.markers.push(Marker {
            x: f64::from(c),
            label: format!("knee: capacity {c}"),
        });
    }
    let note = Some(
        "Each point is one step's measurement window (warm-up excluded). The knee is the highest load that met every SLO."
            .to_string(),
    );
    Chart::from_xy("capacity-latency", &xy, note)
}

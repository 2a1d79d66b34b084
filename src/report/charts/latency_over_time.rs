//! Chart: latency percentiles (p50, p90, p99, max) per second, with stage
//! boundaries, for delivery latency or ack latency (corrected variant).

use super::canvas::{color, Series, Stroke};
use super::{label, over_time, Chart, RunRef};
use crate::results::{Pcts, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKind {
    Delivery,
    Ack,
}

impl LatencyKind {
    fn pick(self, s: &Snapshot) -> &Pcts {
        match self {
            LatencyKind::Delivery => &s.delivery_latency,
            LatencyKind::Ack => &s.ack_latency,
        }
    }
}

pub fn latency_over_time(runs: &[RunRef<'_>], kind: LatencyKind) -> Chart {
    let (id, title) = match kind {
        LatencyKind::Delivery => (
            "latency-delivery",
            "Fan-out delivery latency over time (corrected)",
        ),
        LatencyKind::Ack => ("latency-ack", "Ack latency over time (corrected)"),
    };
    let mut xy = over_time(runs, title, "latency (ms)");
    type Stat = (&'static str, fn(&Pcts) -> f64);
    let stats: [Stat; 4] = [
        ("p50", |p| p.p50),
        ("p90", |p| p.p90),
        ("p99", |p| p.p99),
        ("max", |p| p.max),
    ];
    for (ri, run) in runs.iter().enumerate() {
        let ts = &run.results.timeseries;
        for (si, (name, get)) in stats.iter().enumerate() {
            // Comparisons keep p50 and p99 only, so overlaid runs stay legible.
            let (colour, stroke) = if runs.len() == 1 {
                let colour = [color(2), color(0), color(1), color(7)][si];
                (colour, Stroke::Line(if *name == "max" { 1 } else { 2 }))
            } else {
                match *name {
                    "p99" => (color(ri), Stroke::Line(2)),
                    "p50" => (color(ri), Stroke::Dashed(2)),
                    _ => continue,
                }
            };
            let points = ts.iter().map(|s| {
                let p = kind.pick(s);
                (s.t, (p.count > 0).then(|| get(p)))
            });
            xy.series.push(Series::from_points(
                label(runs, run, name),
                colour,
                stroke,
                points,
            ));
        }
    }
    let note = Some(
        "Measured from each message's intended send time, so generator lateness cannot hide latency; seconds with no samples are gaps."
            .to_string(),
    );
    Chart::from_xy(id, &xy, note)
}

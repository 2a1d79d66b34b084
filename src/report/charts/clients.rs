//! Chart: connected clients over time against the stages' targets (the
//! linear ramps the scenario asked for).

use super::canvas::{Series, Stroke};
use super::{label, over_time, series_color, Chart, RunRef};
use crate::results::RunResults;

pub fn clients(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = over_time(runs, "Connected clients vs stage targets", "clients");
    for (ri, run) in runs.iter().enumerate() {
        let ts = &run.results.timeseries;
        xy.series.push(Series::from_points(
            label(runs, run, "connected"),
            series_color(runs, 0, ri),
            Stroke::Line(2),
            ts.iter().map(|s| (s.t, Some(s.clients_connected as f64))),
        ));
        xy.series.push(Series::from_points(
            label(runs, run, "target"),
            series_color(runs, 7, ri),
            Stroke::Dashed(2),
            target_curve(run.results),
        ));
    }
    Chart::from_xy("clients", &xy, None)
}

/// The target ramp: exact corners from the stages when known, otherwise
/// the per-second targets the engine recorded.
fn target_curve(results: &RunResults) -> Vec<(f64, Option<f64>)> {
    if results.stages.is_empty() {
        return results
            .timeseries
            .iter()
            .map(|s| (s.t, Some(s.clients_target)))
            .collect();
    }
    let mut points = Vec::with_capacity(results.stages.len() + 1);
    let mut previous = 0.0;
    for stage in &results.stages {
        if points.is_empty() {
            points.push((stage.start_s, Some(previous)));
        }
        previous = f64::from(stage.target);
        points.push((stage.end_s, Some(previous)));
    }
    points
}

//! Chart: server RSS against connected clients, one point per second, with
//! the least-squares line whose slope is the memory per connection.

use super::canvas::{color, Series, Stroke, XyChart};
use super::{label, Chart, RunRef};
use crate::results::{LinearFit, RunResults};

const MIB: f64 = 1024.0 * 1024.0;

pub fn memory_per_connection(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = XyChart::new(
        "Server memory per connection",
        "connected clients",
        "server RSS (MiB)",
    );
    for (ri, run) in runs.iter().enumerate() {
        let points: Vec<(f64, f64)> = samples(run.results).collect();
        let scatter = Series::from_points(
            label(runs, run, "RSS sample"),
            color(if runs.len() == 1 { 0 } else { ri }),
            Stroke::Points(3),
            points.iter().map(|&(x, y)| (x, Some(y / MIB))),
        );
        let Some(fit) = run.results.server.memory_fit.or_else(|| fit(&points)) else {
            xy.series.push(scatter);
            continue;
        };
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
        if !(lo.is_finite() && hi.is_finite()) {
            xy.series.push(scatter);
            continue;
        }
        let line = [lo, hi].map(|x| (x, Some((fit.intercept + fit.slope * x) / MIB)));
        let text = format!(
            "fit: {:.1} KiB/connection, r² {:.2}",
            fit.slope / 1024.0,
            fit.r2
        );
        xy.series.push(Series::from_points(
            label(runs, run, &text),
            color(if runs.len() == 1 { 1 } else { ri }),
            Stroke::Line(2),
            line,
        ));
        // Points after the line, so the fit never hides the samples.
        xy.series.push(scatter);
    }
    let note = Some(
        "Memory per connection is the slope of RSS against connected clients (least squares), not RSS divided by clients."
            .to_string(),
    );
    Chart::from_xy("memory-per-connection", &xy, note)
}

/// (clients, RSS bytes) for every second where the server was sampled.
fn samples(results: &RunResults) -> impl Iterator<Item = (f64, f64)> + '_ {
    results
        .timeseries
        .iter()
        .filter_map(|s| Some((s.clients_connected as f64, s.server_rss_bytes? as f64)))
}

/// Least-squares fit, for results that carry samples but no stored fit.
fn fit(points: &[(f64, f64)]) -> Option<LinearFit> {
    LinearFit::least_squares(points)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_recovers_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i) * 100.0, 5e6 + 8192.0 * f64::from(i) * 100.0))
            .collect();
        let f = fit(&pts).expect("fit");
        assert!((f.slope - 8192.0).abs() < 1e-6);
        assert!((f.r2 - 1.0).abs() < 1e-9);
        assert!(fit(&[(1.0, 1.0)]).is_none());
    }
}

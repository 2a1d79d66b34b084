//! Chart: server work per second (chat messages in + deliveries out) of
//! every step against its load, with the Universal Scalability Law curve
//! fitted to it.

use super::{by_load, load_axis, load_range, Chart};
use crate::capacity::model::CapacityResults;
use crate::report::charts::canvas::{color, Marker, Series, Stroke, XyChart};

/// Points on the fitted curve.
const CURVE_POINTS: usize = 60;

pub fn throughput_against_load(r: &CapacityResults) -> Chart {
    let mut xy = XyChart::new(
        "Server work against load",
        load_axis(r.vary),
        "work per second (messages in + deliveries out)",
    );
    let mut note = "Universal Scalability Law: X(N) = λN / (1 + σ(N−1) + κN(N−1)), with X the server's work per second: each chat message in and each delivery out counts one unit.".to_string();
    if let (Some(u), Some((_, hi))) = (&r.usl, load_range(&r.steps)) {
        let end = u.peak_load.map_or(hi, |p| p.min(hi * 2.0)).max(hi) * 1.1;
        let curve = (0..=CURVE_POINTS).map(|i| {
            let n = end * i as f64 / CURVE_POINTS as f64;
            (n, Some(u.throughput(n)))
        });
        xy.series.push(Series::from_points(
            format!(
                "USL fit: σ {:.4}, κ {:.2e}, R² {:.2}",
                u.sigma, u.kappa, u.r2
            ),
            color(1),
            Stroke::Line(2),
            curve,
        ));
        if let Some(peak) = u.peak_load.filter(|p| *p <= end) {
            xy.markers.push(Marker {
                x: peak,
                label: format!("USL peak {peak:.0}"),
            });
        }
        note.push_str(&format!(
            " Fitted over {} steps (generator-limited steps left out); λ {:.2} work/s per unit of load.",
            u.points, u.lambda
        ));
        if let Some(w) = u.fit_warning() {
            note.push_str(&format!(" Warning: {w}."));
        }
    } else {
        note.push_str(" Not fitted: it needs at least three steps with work that the generator did not limit.");
    }
    let steps = by_load(&r.steps);
    xy.series.push(Series::from_points(
        "measured work/s",
        color(0),
        Stroke::Points(4),
        steps
            .iter()
            .map(|s| (f64::from(s.load), Some(s.work_per_s))),
    ));
    xy.series.push(Series::from_points(
        "of which deliveries/s",
        color(2),
        Stroke::Points(3),
        steps
            .iter()
            .map(|s| (f64::from(s.load), Some(s.deliveries_per_s))),
    ));
    Chart::from_xy("capacity-throughput", &xy, Some(note))
}

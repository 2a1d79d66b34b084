//! Chart: the server's peak RSS in every step against the clients connected,
//! with the least-squares line whose slope is the memory per connection.

use super::Chart;
use crate::capacity::model::CapacityResults;
use crate::report::charts::canvas::{color, Series, Stroke, XyChart};

const MIB: f64 = 1024.0 * 1024.0;

pub fn memory_against_connections(r: &CapacityResults) -> Chart {
    let mut xy = XyChart::new(
        "Server memory against connections",
        "connected clients (step peak)",
        "server RSS (MiB)",
    );
    let points = r.memory_points();
    if let Some(fit) = &r.memory_fit {
        let hi = points.iter().map(|p| p.0).fold(0.0, f64::max);
        xy.series.push(Series::from_points(
            format!(
                "fit: {:.1} KiB/connection, r² {:.2}",
                fit.slope / 1024.0,
                fit.r2
            ),
            color(1),
            Stroke::Line(2),
            [0.0, hi].map(|x| (x, Some(fit.predict(x) / MIB))),
        ));
    }
    xy.series.push(Series::from_points(
        "step peak RSS",
        color(0),
        Stroke::Points(4),
        points.iter().map(|&(x, y)| (x, Some(y / MIB))),
    ));
    let note = Some(
        "The server was started once for the whole search (when bench started it), so its RSS is comparable across steps; RSS is not returned to the OS after a load falls, so read the slope over increasing loads."
            .to_string(),
    );
    Chart::from_xy("capacity-memory", &xy, note)
}

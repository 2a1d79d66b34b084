//! Chart: server CPU time per unit of work (µs per message in or delivery
//! out) of every step against its load. Flat means each unit costs the
//! same at every load; rising means contention or coherency cost per unit.

use super::{by_load, load_axis, Chart};
use crate::capacity::model::CapacityResults;
use crate::report::charts::canvas::{color, Series, Stroke, XyChart};

pub fn cpu_per_work(r: &CapacityResults) -> Chart {
    let mut xy = XyChart::new(
        "Server CPU per unit of work",
        load_axis(r.vary),
        "server CPU per unit of work (µs)",
    );
    xy.series.push(Series::from_points(
        "server CPU µs per message in or delivery out",
        color(0),
        Stroke::Line(2),
        by_load(&r.steps)
            .iter()
            .map(|s| (f64::from(s.load), s.server_cpu_us_per_work)),
    ));
    let note = Some(
        "Mean server CPU over the measurement window (every sampled server process: a supervisor and its children are summed; a redis-server is not) divided by its work per second. Includes the per-message cost of acks and typing frames; on a shared machine it also includes time the server lost to other processes' cache and scheduler effects."
            .to_string(),
    );
    Chart::from_xy("capacity-cpu-per-work", &xy, note)
}

//! Chart: server CPU per unit of work, summed over the nodes, against the
//! cluster size (`--nodes`), measured and fitted (c(n) = c₁(1 + β(n − 1))),
//! with Redis's CPU per unit of work beside it.

use super::Chart;
use crate::capacity::model::CapacityResults;
use crate::report::charts::canvas::{color, Series, Stroke, XyChart};

pub fn scale_out(r: &CapacityResults) -> Option<Chart> {
    let m = r.scale_out.as_ref()?;
    let mut xy = XyChart::new(
        "Scale-out: CPU per unit of work against nodes",
        "nodes (server processes over one redis-server)",
        "CPU per unit of work (µs)",
    );
    xy.series.push(Series::from_points(
        "server, summed over the nodes (measured)",
        color(0),
        Stroke::Points(5),
        m.steps
            .iter()
            .filter(|s| s.valid)
            .map(|s| (f64::from(s.nodes), s.server_cpu_us_per_work)),
    ));
    xy.series.push(Series::from_points(
        "Redis (measured)",
        color(2),
        Stroke::Points(4),
        m.steps
            .iter()
            .filter(|s| s.valid)
            .map(|s| (f64::from(s.nodes), s.redis_cpu_us_per_work)),
    ));
    let mut note = format!(
        "Each size ran the same scenario at load {} for one warm-up and measurement window, against a fresh redis-server. On one machine the nodes share its cores: this is the cost of a unit of work, not a node's capacity.",
        m.load
    );
    if let Some(f) = &m.fit {
        let hi = m.steps.iter().map(|s| s.nodes).max().unwrap_or(1);
        xy.series.push(Series::from_points(
            format!(
                "fit c₁ {:.2} µs · β {:.3} (R² {:.2})",
                f.single_node_us, f.beta, f.r2
            ),
            color(1),
            Stroke::Dashed(2),
            (1..=hi).map(|n| (f64::from(n), Some(f.cost_at(n)))),
        ));
    } else {
        note.push_str(" Not fitted: it needs two valid sizes.");
    }
    if let Some(h) = &m.holdout {
        note.push_str(&format!(
            " {} nodes predicted from {:?}: {:.2} µs, measured {:.2} µs ({:+.1}%).",
            h.nodes,
            h.fitted_from,
            h.predicted_us,
            h.measured_us,
            h.relative_error * 100.0
        ));
    }
    Some(Chart::from_xy("capacity-scale-out", &xy, Some(note)))
}

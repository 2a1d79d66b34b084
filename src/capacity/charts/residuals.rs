//! Chart: how far each fitted step lies from the USL curve, in % of the
//! curve, against its load. A good fit scatters evenly around zero; a trend
//! (rising, or a bow) shows the model's shape is wrong for this workload.

use super::{load_axis, Chart};
use crate::capacity::model::CapacityResults;
use crate::report::charts::canvas::{color, Series, Stroke, XyChart};

pub fn usl_residuals(r: &CapacityResults) -> Chart {
    let mut xy = XyChart::new(
        "USL residuals",
        load_axis(r.vary),
        "measured − fitted work (% of fitted)",
    );
    let mut note =
        "Each fitted step's gap to the USL curve. Even scatter around 0 is noise; a trend means the model's shape does not fit.".to_string();
    if let Some(u) = &r.usl {
        let hi = u.residuals.iter().map(|p| p.load).fold(0.0, f64::max);
        xy.series.push(Series::from_points(
            "0 (on the curve)",
            color(3),
            Stroke::Dashed(1),
            [(0.0, Some(0.0)), (hi, Some(0.0))],
        ));
        xy.series.push(Series::from_points(
            format!("residual (R² {:.3})", u.r2),
            color(0),
            Stroke::Points(4),
            u.residuals
                .iter()
                .map(|p| (p.load, Some(p.share() * 100.0))),
        ));
        if let Some(w) = u.fit_warning() {
            note.push_str(&format!(" Warning: {w}."));
        }
    } else {
        note.push_str(" No fit yet.");
    }
    Chart::from_xy("capacity-residuals", &xy, Some(note))
}

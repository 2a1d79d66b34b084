//! Chart: problems per second: error frames and failed connects, closes
//! by close code, and lost messages, with the run's totals in the note.

use super::canvas::{color, Series, Stroke};
use super::{label, over_time, rates, series_color, Chart, RunRef};

pub fn errors(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = over_time(
        runs,
        "Errors, closes and lost messages over time",
        "events per second",
    );
    let single = runs.len() == 1;
    for (ri, run) in runs.iter().enumerate() {
        let ts = &run.results.timeseries;
        let pick = |own: usize| series_color(runs, own, ri);
        xy.series.push(Series::from_points(
            label(runs, run, "errors/s"),
            pick(1),
            Stroke::Line(2),
            rates(ts, |s| s.errors as f64),
        ));
        xy.series.push(Series::from_points(
            label(runs, run, "lost messages/s"),
            pick(4),
            Stroke::Dashed(2),
            rates(ts, |s| s.lost as f64),
        ));
        if single {
            // Closes get their own axis: a planned ramp-down closes every
            // client and would flatten the error lines to zero. One line per
            // close code, so a burst of 1013s stands apart from ramp-down 1000s.
            let codes: std::collections::BTreeSet<&String> =
                ts.iter().flat_map(|s| s.closes_by_code.keys()).collect();
            if codes.is_empty() {
                // Results written before closes were split by code.
                xy.series.push(
                    Series::from_points(
                        "closes/s (right axis)",
                        color(0),
                        Stroke::Line(1),
                        rates(ts, |s| s.closes as f64),
                    )
                    .on_right_axis(),
                );
            }
            for (ci, code) in codes.into_iter().enumerate() {
                xy.series.push(
                    Series::from_points(
                        format!("closes {code}/s (right axis)"),
                        color(5 + ci),
                        Stroke::Line(1),
                        rates(ts, |s| {
                            s.closes_by_code.get(code).copied().unwrap_or(0) as f64
                        }),
                    )
                    .on_right_axis(),
                );
            }
            xy.y2_label = Some("closes per second".into());
            xy.series.push(Series::from_points(
                "failed connects/s",
                color(3),
                Stroke::Dashed(2),
                rates(ts, |s| s.connects_failed as f64),
            ));
        }
    }
    let closes: Vec<String> = runs
        .iter()
        .map(|run| {
            let by_code = &run.results.counters.closes;
            let list = if by_code.is_empty() {
                "none".to_string()
            } else {
                by_code
                    .iter()
                    .map(|(code, n)| format!("{code} × {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if single {
                format!("Closes by code over the run: {list}.")
            } else {
                format!("{}: closes by code {list}.", run.label)
            }
        })
        .collect();
    Chart::from_xy("errors", &xy, Some(closes.join(" ")))
}

//! Chart: throughput per second: chat messages sent and deliveries received
//! (messages/s, left axis) and bytes sent/received (MB/s, right axis).

use super::canvas::{color, Series, Stroke};
use super::{label, over_time, rates, series_color, Chart, RunRef};

pub fn throughput(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = over_time(runs, "Throughput over time", "messages per second");
    let single = runs.len() == 1;
    for (ri, run) in runs.iter().enumerate() {
        let ts = &run.results.timeseries;
        let pick = |own: usize| series_color(runs, own, ri);
        xy.series.push(Series::from_points(
            label(runs, run, "deliveries/s"),
            pick(2),
            Stroke::Line(2),
            rates(ts, |s| s.deliveries as f64),
        ));
        xy.series.push(Series::from_points(
            label(runs, run, "messages sent/s"),
            pick(0),
            if single {
                Stroke::Line(2)
            } else {
                Stroke::Dashed(2)
            },
            rates(ts, |s| s.chat_sent as f64),
        ));
        if single {
            xy.series.push(
                Series::from_points(
                    "bytes received (MB/s)",
                    color(3),
                    Stroke::Dashed(2),
                    rates(ts, |s| s.bytes_received as f64 / 1e6),
                )
                .on_right_axis(),
            );
            xy.series.push(
                Series::from_points(
                    "bytes sent (MB/s)",
                    color(4),
                    Stroke::Dashed(2),
                    rates(ts, |s| s.bytes_sent as f64 / 1e6),
                )
                .on_right_axis(),
            );
            xy.y2_label = Some("bytes (MB/s)".into());
        }
    }
    Chart::from_xy("throughput", &xy, None)
}

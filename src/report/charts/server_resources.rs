//! Chart: the server's RSS (MiB, left axis) and CPU (%, right axis) over
//! time, with the generator's and the whole machine's CPU for context
//! (all in % of one core).

use super::canvas::{color, Series, Stroke};
use super::{label, over_time, series_color, Chart, RunRef};

const MIB: f64 = 1024.0 * 1024.0;

pub fn server_resources(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = over_time(runs, "Server memory and CPU over time", "server RSS (MiB)");
    xy.y2_label = Some("CPU (% of one core)".into());
    let single = runs.len() == 1;
    for (ri, run) in runs.iter().enumerate() {
        let ts = &run.results.timeseries;
        let pick = |own: usize| series_color(runs, own, ri);
        xy.series.push(Series::from_points(
            label(runs, run, "server RSS"),
            pick(0),
            Stroke::Line(2),
            ts.iter()
                .map(|s| (s.t, s.server_rss_bytes.map(|b| b as f64 / MIB))),
        ));
        xy.series.push(
            Series::from_points(
                label(runs, run, "server CPU"),
                pick(1),
                Stroke::Dashed(2),
                ts.iter().map(|s| (s.t, s.server_cpu_percent)),
            )
            .on_right_axis(),
        );
        if single {
            xy.series.push(
                Series::from_points(
                    "generator CPU",
                    color(3),
                    Stroke::Dashed(1),
                    ts.iter().map(|s| (s.t, Some(s.generator_cpu_percent))),
                )
                .on_right_axis(),
            );
            // /proc/stat gives % of all cores; scale it to the process
            // unit (% of one core) so both share the axis honestly.
            let cores = run.results.machine.cores.max(1) as f64;
            xy.series.push(
                Series::from_points(
                    format!("machine CPU, {cores} cores (incl. softirq)"),
                    color(7),
                    Stroke::Dashed(1),
                    ts.iter()
                        .map(|s| (s.t, Some(s.machine_cpu_percent * cores))),
                )
                .on_right_axis(),
            );
        }
    }
    // Nothing sampled from the server means there is no server story to tell.
    let server_sampled = runs.iter().any(|r| {
        r.results
            .timeseries
            .iter()
            .any(|s| s.server_rss_bytes.is_some() || s.server_cpu_percent.is_some())
    });
    if !server_sampled {
        xy.series.clear();
    }
    // Only the single-run chart draws machine CPU, so only it explains it.
    let note = single.then(|| {
        "CPU is in % of one core (200 % = two cores busy). Machine CPU includes softirq, which loopback TCP does not charge to any process."
            .to_string()
    });
    Chart::from_xy("server-resources", &xy, note)
}

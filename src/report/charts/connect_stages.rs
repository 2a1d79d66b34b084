//! Chart: `wss://` connection setup by stage — the percentile
//! distributions of the TCP connect, the TLS handshake and the WebSocket
//! upgrade overlaid, so the stage that dominates `connect_time` shows.

use super::canvas::{color, percentile_x, Series, Stroke, XScale, XyChart};
use super::{label, Chart, RunRef};

/// The stages, in order, with their legend names.
pub const STAGES: [(&str, &str); 3] = [
    ("tcp_connect_time", "TCP connect"),
    ("tls_handshake_time", "TLS handshake"),
    ("upgrade_time", "WebSocket upgrade"),
];

pub fn connect_stages(runs: &[RunRef<'_>]) -> Chart {
    let mut xy = XyChart::new(
        "Connection setup by stage (wss://)",
        "percentile (log scale of nines)",
        "time (ms)",
    );
    xy.x_scale = XScale::PercentileLog;
    for run in runs {
        for (si, (metric, name)) in STAGES.iter().enumerate() {
            let Some(summary) = run.results.metrics.get(*metric) else {
                continue;
            };
            let points = summary
                .distribution
                .iter()
                .filter_map(|&(pct, ms)| percentile_x(pct).map(|x| (x, Some(ms))));
            let stroke = if runs.len() == 1 {
                Stroke::Line(2)
            } else {
                Stroke::Dashed(2)
            };
            xy.series.push(Series::from_points(
                label(runs, run, name),
                color(si),
                stroke,
                points,
            ));
        }
    }
    let note = Some(
        "Each stage timed on its own: TCP connect, then the TLS handshake (full or resumed), then the HTTP upgrade to WebSocket."
            .to_string(),
    );
    Chart::from_xy("connect-stages".to_string(), &xy, note)
}

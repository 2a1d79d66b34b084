//! Which metrics `bench compare` gates, in which direction, and how much
//! worsening each tolerates: the documented defaults and the
//! `--max-regression 'metric=10%,...'` syntax that overrides or extends them.

use serde::Serialize;

use crate::exit::UsageError;
pub use crate::results::verdict::Direction;
// One catalogue of latency metrics for thresholds and gates alike; runs
// may add more, which [`is_known_metric`] also accepts.
use crate::scenario::metrics::LATENCY_METRICS;

/// One gated metric and its tolerances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    /// A path understood by `RunResults::metric_value`.
    pub metric: String,
    pub direction: Direction,
    /// Largest tolerated worsening (percent of the baseline) when both sides
    /// have at least `MIN_REPEATS` repeats and the statistics can separate
    /// noise from change.
    pub tolerance_pct: f64,
    /// Largest tolerated worsening when either side is a single run: wider,
    /// because one run says nothing about run-to-run noise.
    pub single_run_tolerance_pct: f64,
    /// Absolute changes at or below this (in the metric's unit: ms, bytes,
    /// a fraction) are always within noise, whatever the percentage says;
    /// it keeps 0.3 ms → 0.4 ms from reading as "+33 %".
    pub noise_floor: f64,
    /// Named on the command line (an unknown explicit metric is a usage error).
    pub explicit: bool,
}

/// The default gated set: `(metric, tolerance %, single-run tolerance %, noise floor)`.
/// Documented in docs/ci.md; keep the two in step.
pub const DEFAULT_GATES: &[(&str, f64, f64, f64)] = &[
    ("delivery_latency.p50", 10.0, 25.0, 0.5),
    ("delivery_latency.p99", 10.0, 25.0, 1.0),
    ("ack_latency.p99", 10.0, 25.0, 1.0),
    ("connect_time.p99", 20.0, 50.0, 2.0),
    ("memory_per_connection", 5.0, 15.0, 256.0),
    ("throughput.deliveries_per_s", 5.0, 10.0, 0.0),
    ("errors.rate", 10.0, 25.0, 0.001),
    ("delivery.loss_rate", 10.0, 25.0, 0.0001),
];

/// The default gates, all marked implicit.
pub fn default_gates() -> Vec<Gate> {
    DEFAULT_GATES
        .iter()
        .map(|&(metric, tol, single, floor)| Gate {
            metric: metric.to_string(),
            direction: direction_of(metric),
            tolerance_pct: tol,
            single_run_tolerance_pct: single,
            noise_floor: floor,
            explicit: false,
        })
        .collect()
}

/// Throughput and "how much got done" counters are higher-is-better;
/// everything else (latency, memory, CPU, errors, lost) is lower-is-better.
pub fn direction_of(metric: &str) -> Direction {
    const HIGHER: &[&str] = &[
        "counters.chat_sent",
        "counters.acks_received",
        "counters.deliveries_received",
        "counters.connections_opened",
    ];
    if metric.starts_with("throughput.") || HIGHER.contains(&metric) {
        Direction::HigherIsBetter
    } else {
        Direction::LowerIsBetter
    }
}

/// Noise floor for a metric outside the default table, by its kind.
fn default_noise_floor(metric: &str) -> f64 {
    use crate::scenario::metrics::MetricUnit;
    if let Some(&(_, _, _, floor)) = DEFAULT_GATES.iter().find(|g| g.0 == metric) {
        return floor;
    }
    // By unit, from the one metric catalogue, so a name like
    // `counters.bytes_sent` gets the byte floor whatever its spelling.
    match crate::scenario::metrics::metric_unit(metric) {
        Ok(MetricUnit::Millis) => 0.5,
        Ok(MetricUnit::Fraction) => 0.0001,
        Ok(MetricUnit::Bytes) => 4096.0,
        Ok(MetricUnit::Percent) => 2.0,
        Ok(MetricUnit::Count | MetricUnit::PerSecond) | Err(_) => 0.0,
    }
}

/// Whether `path` names a metric `RunResults::metric_value` understands,
/// measured or not: the difference between a typo (usage error) and a
/// metric this run did not measure (e.g. memory without a ramp).
pub fn is_known_metric(path: &str, extra_latency_names: &[&str]) -> bool {
    use crate::results::{LatencySummary, RunResults};
    let mut probe = RunResults::default();
    probe.server.rss_peak_bytes = Some(0);
    probe.server.memory_per_connection_bytes = Some(0.0);
    probe.server.cpu_percent_mean = Some(0.0);
    probe.server.cpu_percent_peak = Some(0.0);
    probe.generator.memory_per_client_bytes = Some(0.0);
    for name in LATENCY_METRICS.iter().chain(extra_latency_names) {
        probe
            .metrics
            .insert((*name).to_string(), LatencySummary::default());
    }
    probe.metric_value(path).is_some()
}

/// Parses `--max-regression 'delivery_latency.p99=10%, memory_per_connection=5%'`
/// into `(metric, percent)` pairs. The `%` is required so that `10` can never
/// be misread as a fraction or an absolute value.
pub fn parse_max_regression(spec: &str) -> Result<Vec<(String, f64)>, UsageError> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| {
            UsageError(format!(
                "--max-regression: `{item}`: {why} (expected METRIC=PCT%, e.g. delivery_latency.p99=10%)"
            ))
        };
        let (metric, pct) = item.split_once('=').ok_or_else(|| bad("missing `=`"))?;
        let metric = metric.trim();
        if metric.is_empty()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(bad("bad metric name"));
        }
        let number = pct
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| bad("the tolerance needs a `%` sign"))?;
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| bad("the tolerance is not a number"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(bad("the tolerance must be a non-negative percentage"));
        }
        if out.iter().any(|(m, _)| m == metric) {
            return Err(bad("metric given twice"));
        }
        out.push((metric.to_string(), value));
    }
    if out.is_empty() {
        return Err(UsageError(
            "--max-regression is empty (expected METRIC=PCT%,...)".into(),
        ));
    }
    Ok(out)
}

/// The gates to apply: the defaults (unless `only_explicit`), with every
/// explicit `(metric, pct)` overriding a default's tolerance or adding a
/// gate. An explicit tolerance is used as given for single runs too.
pub fn resolve_gates(explicit: &[(String, f64)], only_explicit: bool) -> Vec<Gate> {
    let mut gates = if only_explicit {
        Vec::new()
    } else {
        default_gates()
    };
    for (metric, pct) in explicit {
        let gate = Gate {
            metric: metric.clone(),
            direction: direction_of(metric),
            tolerance_pct: *pct,
            single_run_tolerance_pct: *pct,
            noise_floor: default_noise_floor(metric),
            explicit: true,
        };
        match gates.iter_mut().find(|g| g.metric == *metric) {
            Some(existing) => *existing = gate,
            None => gates.push(gate),
        }
    }
    gates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_floors_follow_the_metric_unit() {
        assert_eq!(default_noise_floor("counters.bytes_sent"), 4096.0);
        assert_eq!(default_noise_floor("server.rss_peak_bytes"), 4096.0);
        assert_eq!(default_noise_floor("ping_rtt.p99"), 0.5);
        assert_eq!(default_noise_floor("server.cpu_percent_mean"), 2.0);
        assert_eq!(default_noise_floor("delivery.lost"), 0.0);
    }

    #[test]
    fn parses_a_list_with_spaces() {
        let got = parse_max_regression(" delivery_latency.p99=10%, memory_per_connection = 5.5 % ")
            .unwrap();
        assert_eq!(
            got,
            vec![
                ("delivery_latency.p99".to_string(), 10.0),
                ("memory_per_connection".to_string(), 5.5)
            ]
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "delivery_latency.p99",
            "delivery_latency.p99=10",
            "delivery_latency.p99=ten%",
            "delivery_latency.p99=-3%",
            "=5%",
            "a b=5%",
            "x=1%,x=2%",
        ] {
            assert!(parse_max_regression(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn explicit_overrides_and_extends_defaults() {
        let gates = resolve_gates(
            &[
                ("delivery_latency.p99".into(), 3.0),
                ("server.cpu_percent_mean".into(), 20.0),
            ],
            false,
        );
        assert_eq!(gates.len(), DEFAULT_GATES.len() + 1);
        let p99 = gates
            .iter()
            .find(|g| g.metric == "delivery_latency.p99")
            .unwrap();
        assert_eq!(
            (p99.tolerance_pct, p99.single_run_tolerance_pct),
            (3.0, 3.0)
        );
        assert!(p99.explicit);
        assert_eq!(p99.noise_floor, 1.0);
        let only = resolve_gates(&[("ack_latency.p50".into(), 7.0)], true);
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].noise_floor, 0.5);
    }

    #[test]
    fn known_metrics() {
        for ok in [
            "delivery_latency.p99",
            "reconnect_time.p50",
            "memory_per_connection",
            "server.cpu_percent_mean",
            "counters.lost",
            "errors.rate",
        ] {
            assert!(is_known_metric(ok, &[]), "{ok}");
        }
        for bad in [
            "delivery_latency.p98",
            "memory",
            "server.nope",
            "custom.p99",
        ] {
            assert!(!is_known_metric(bad, &[]), "{bad}");
        }
        assert!(is_known_metric("custom.p99", &["custom"]));
    }

    #[test]
    fn directions() {
        assert_eq!(
            direction_of("throughput.deliveries_per_s"),
            Direction::HigherIsBetter
        );
        assert_eq!(
            direction_of("delivery_latency.p99"),
            Direction::LowerIsBetter
        );
        assert_eq!(
            direction_of("memory_per_connection"),
            Direction::LowerIsBetter
        );
        assert_eq!(direction_of("delivery.lost"), Direction::LowerIsBetter);
        assert_eq!(
            direction_of("counters.deliveries_received"),
            Direction::HigherIsBetter
        );
    }
}

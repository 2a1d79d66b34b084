//! The metric paths a threshold may name, their canonical units, and the
//! parser for conditions such as `"< 50ms"`, `"< 0.1%"` or `">= 1000/s"`.
//!
//! Paths are those `RunResults::metric_value` resolves. Values are
//! normalised to the metric's canonical unit (ms for latencies, a fraction
//! for rates, bytes, counts, events per second, percent of one core for
//! CPU), so evaluation is a plain comparison.

use wire::units::parse_duration;

use super::plan::{CmpOp, Threshold};
use super::units::{parse_bytes, parse_rate};
use crate::results::Counters;

/// Latency metrics the engine records (corrected variants plain, service-time
/// variants ending in `_service`).
pub const LATENCY_METRICS: &[&str] = &[
    "connect_time",
    "ack_latency",
    "ack_latency_service",
    "delivery_latency",
    "delivery_latency_service",
    "replay_latency",
    "ping_rtt",
    "reconnect_time",
    "schedule_lag",
    "tcp_connect_time",
    "tls_handshake_time",
    "upgrade_time",
];

/// Statistics of a latency summary.
pub const LATENCY_STATS: &[&str] = &["count", "min", "mean", "p50", "p90", "p99", "p999", "max"];

/// The unit a metric's value is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    Millis,
    Fraction,
    Count,
    Bytes,
    PerSecond,
    /// Percent of one core (CPU).
    Percent,
}

impl MetricUnit {
    fn example(self) -> &'static str {
        match self {
            Self::Millis => "\"< 50ms\"",
            Self::Fraction => "\"< 0.1%\"",
            Self::Count => "\"== 0\"",
            Self::Bytes => "\"<= 2KiB\"",
            Self::PerSecond => "\">= 1000/s\"",
            Self::Percent => "\"< 80%\"",
        }
    }
}

/// Every fixed (non-latency) path and its unit.
fn fixed_metrics() -> Vec<(String, MetricUnit)> {
    use MetricUnit::*;
    let mut out: Vec<(String, MetricUnit)> = [
        ("errors.rate", Fraction),
        ("errors.count", Count),
        ("delivery.lost", Count),
        ("delivery.duplicates", Count),
        ("delivery.out_of_order", Count),
        ("delivery.loss_rate", Fraction),
        ("readiness.never_ready_share", Fraction),
        ("readiness.never_ready", Count),
        ("memory_per_connection", Bytes),
        ("throughput.chat_sent_per_s", PerSecond),
        ("throughput.deliveries_per_s", PerSecond),
        ("throughput.deliveries_per_s_peak", PerSecond),
        ("throughput.bytes_received_per_s", PerSecond),
        ("server.rss_peak_bytes", Bytes),
        ("server.memory_per_connection_bytes", Bytes),
        ("server.cpu_percent_mean", Percent),
        ("server.cpu_percent_peak", Percent),
        ("generator.cpu_percent_mean", Percent),
        ("generator.rss_peak_bytes", Bytes),
        ("generator.memory_per_client_bytes", Bytes),
    ]
    .into_iter()
    .map(|(p, u)| (p.to_owned(), u))
    .collect();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(Counters::default()) {
        for name in fields.keys() {
            let unit = if name.starts_with("bytes_") {
                Bytes
            } else {
                Count
            };
            out.push((format!("counters.{name}"), unit));
        }
    }
    out
}

/// Every metric path a threshold may use.
fn metric_paths() -> Vec<String> {
    let mut out: Vec<String> = LATENCY_METRICS
        .iter()
        .flat_map(|m| LATENCY_STATS.iter().map(move |s| format!("{m}.{s}")))
        .collect();
    out.extend(fixed_metrics().into_iter().map(|(p, _)| p));
    out
}

/// The unit of a metric path, or an error naming the nearest valid path.
pub fn metric_unit(path: &str) -> Result<MetricUnit, String> {
    if let Some((name, stat)) = path.split_once('.') {
        if LATENCY_METRICS.contains(&name) {
            return match stat {
                "count" => Ok(MetricUnit::Count),
                s if LATENCY_STATS.contains(&s) => Ok(MetricUnit::Millis),
                _ => Err(format!(
                    "unknown statistic `{stat}` of `{name}`{}",
                    super::diag::suggestion(stat, LATENCY_STATS)
                )),
            };
        }
    }
    if let Some((_, unit)) = fixed_metrics().into_iter().find(|(p, _)| p == path) {
        return Ok(unit);
    }
    if LATENCY_METRICS.contains(&path) {
        return Err(format!("`{path}` needs a statistic, e.g. `{path}.p99`"));
    }
    let paths = metric_paths();
    Err(match super::diag::nearest(path, paths.iter().map(String::as_str)) {
        Some(best) => format!("unknown metric `{path}`; did you mean `{best}`?"),
        None => format!(
            "unknown metric `{path}`; write `<latency>.<stat>` (e.g. `delivery_latency.p99`) or a counter \
             such as `errors.rate` or `delivery.lost` (docs/scenario.md lists them all)"
        ),
    })
}

/// Parses a condition for a metric of the given unit: `(op, value)`.
fn parse_condition(condition: &str, unit: MetricUnit) -> Result<(CmpOp, f64), String> {
    let s = condition.trim();
    let (op, rest) = [
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("==", CmpOp::Eq),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ]
    .into_iter()
    .find_map(|(text, op)| s.strip_prefix(text).map(|rest| (op, rest.trim())))
    .ok_or_else(|| {
        let hint = if s.starts_with('=') || s.starts_with('!') {
            " (`=` is written `==`; there is no `!=`)"
        } else {
            ""
        };
        format!(
            "condition `{s}` must start with <, <=, >, >= or ==, e.g. {}{hint}",
            unit.example()
        )
    })?;
    if rest.is_empty() {
        return Err(format!(
            "condition `{s}` has no value, e.g. {}",
            unit.example()
        ));
    }
    let value = parse_value(rest, unit).map_err(|why| format!("condition `{s}`: {why}"))?;
    Ok((op, value))
}

fn parse_value(v: &str, unit: MetricUnit) -> Result<f64, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    match unit {
        MetricUnit::Millis => parse_duration(v)
            .map(|d| d.as_secs_f64() * 1e3)
            .map_err(|e| {
                if e.why == "missing unit" {
                    format!("`{v}` has no unit; latencies need one, e.g. \"< 50ms\"")
                } else {
                    e.to_string()
                }
            }),
        MetricUnit::Fraction => match v.strip_suffix('%') {
            Some(p) => number(p)
                .filter(|p| *p <= 100.0)
                .map(|p| p / 100.0)
                .ok_or_else(|| format!("`{v}` is not a percentage from 0% to 100%")),
            None => match number(v) {
                Some(f) if f <= 1.0 => Ok(f),
                Some(_) => Err(format!(
                    "a rate is a fraction from 0 to 1; write `{v}%` for a percentage"
                )),
                None => Err(format!("`{v}` is not a fraction or a percentage like 0.1%")),
            },
        },
        MetricUnit::Count => {
            number(v).ok_or_else(|| format!("`{v}` is not a count (a number ≥ 0, no unit)"))
        }
        MetricUnit::Bytes => parse_bytes(v),
        MetricUnit::PerSecond => match number(v) {
            Some(n) => Ok(n),
            None => parse_rate(v),
        },
        MetricUnit::Percent => number(v.strip_suffix('%').unwrap_or(v))
            .ok_or_else(|| format!("`{v}` is not a percentage like 80%")),
    }
}

/// Parses one threshold: checks the metric path and normalises the value.
pub fn parse_threshold(metric: &str, condition: &str) -> Result<Threshold, String> {
    let metric = metric.trim();
    let unit = metric_unit(metric)?;
    let (op, value) = parse_condition(condition, unit)?;
    Ok(Threshold {
        metric: metric.to_owned(),
        op,
        value,
        condition: condition.trim().to_owned(),
    })
}

/// Splits a command-line threshold `metric<op>condition`
/// (`delivery_latency.p99<50ms`) into metric and condition.
pub fn split_flag(flag: &str) -> Option<(&str, &str)> {
    let at = flag.find(['<', '>', '=', '!'])?;
    Some((flag[..at].trim(), flag[at..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_metric_can_also_be_gated() {
        // Thresholds and `bench compare` gates name metrics the same way;
        // a path valid in one and a typo in the other would confuse users.
        for path in metric_paths() {
            assert!(
                crate::compare::gates::is_known_metric(&path, &[]),
                "{path} is a threshold metric but not a known gate metric"
            );
        }
    }

    fn ok(metric: &str, cond: &str) -> (CmpOp, f64) {
        let t = parse_threshold(metric, cond).unwrap();
        (t.op, t.value)
    }

    #[test]
    fn normalises_to_canonical_units() {
        assert_eq!(ok("delivery_latency.p99", "< 50ms"), (CmpOp::Lt, 50.0));
        assert_eq!(ok("delivery_latency.p99", "<1s"), (CmpOp::Lt, 1000.0));
        assert_eq!(ok("ack_latency_service.max", "<= 250us"), (CmpOp::Le, 0.25));
        assert_eq!(ok("errors.rate", "< 0.1%"), (CmpOp::Lt, 0.001));
        assert_eq!(ok("errors.rate", "< 0.001"), (CmpOp::Lt, 0.001));
        assert_eq!(ok("delivery.lost", "== 0"), (CmpOp::Eq, 0.0));
        assert_eq!(ok("memory_per_connection", "<= 2KiB"), (CmpOp::Le, 2048.0));
        assert_eq!(
            ok("throughput.deliveries_per_s", ">= 1000/s"),
            (CmpOp::Ge, 1000.0)
        );
        assert_eq!(ok("throughput.chat_sent_per_s", "> 60/m"), (CmpOp::Gt, 1.0));
        assert_eq!(ok("generator.cpu_percent_mean", "< 80%"), (CmpOp::Lt, 80.0));
        assert_eq!(ok("counters.bytes_sent", "< 1MB"), (CmpOp::Lt, 1e6));
        assert_eq!(ok("delivery_latency.count", ">= 1000"), (CmpOp::Ge, 1000.0));
    }

    #[test]
    fn rejects_bad_conditions_and_metrics() {
        let err = |m: &str, c: &str| parse_threshold(m, c).unwrap_err();
        assert_eq!(
            err("delivery_latncy.p99", "< 1ms"),
            "unknown metric `delivery_latncy.p99`; did you mean `delivery_latency.p99`?"
        );
        assert!(err("delivery_latency.p98", "< 1ms").contains("unknown statistic `p98`"));
        assert!(err("delivery_latency.p99", "< 50").contains("latencies need one"));
        assert!(err("delivery_latency.p99", "50ms").contains("must start with"));
        assert!(err("delivery.lost", "= 0").contains("`=` is written `==`"));
        assert!(err("errors.rate", "< 5").contains("write `5%`"));
        assert!(err("delivery.lost", "== 0ms").contains("not a count"));
        assert!(err("delivery.lost", "<").contains("has no value"));
    }

    #[test]
    fn splits_flags() {
        assert_eq!(
            split_flag("delivery_latency.p99<50ms"),
            Some(("delivery_latency.p99", "<50ms"))
        );
        assert_eq!(
            split_flag("delivery.lost == 0"),
            Some(("delivery.lost", "== 0"))
        );
        assert_eq!(split_flag("nothing"), None);
    }
}

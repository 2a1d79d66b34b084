//! Human formatting of metric values and comparison rows, shared by the
//! terminal table, the Markdown table and the JUnit messages.

use crate::results::verdict::{Evidence, MetricComparison, Verdict};

/// What kind of quantity a metric path holds, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Millis,
    Bytes,
    Fraction,
    PerSecond,
    Percent,
    Plain,
}

fn kind_of(metric: &str) -> Kind {
    let (head, tail) = metric.split_once('.').unwrap_or((metric, ""));
    match (head, tail) {
        ("memory_per_connection", _) => Kind::Bytes,
        ("errors" | "delivery", "rate" | "loss_rate") => Kind::Fraction,
        ("throughput", _) => Kind::PerSecond,
        (_, t) if t.ends_with("bytes") => Kind::Bytes,
        (_, t) if t.starts_with("cpu_percent") => Kind::Percent,
        ("errors" | "delivery" | "counters" | "server" | "generator", _) => Kind::Plain,
        (_, "p50" | "p90" | "p99" | "p999" | "mean" | "min" | "max") => Kind::Millis,
        _ => Kind::Plain,
    }
}

/// A metric value in its natural unit: `12.35 ms`, `4.2 KiB`, `0.120 %`, `9,870/s`.
pub fn value(metric: &str, v: f64) -> String {
    match kind_of(metric) {
        Kind::Millis => format!("{v:.2} ms"),
        Kind::Bytes => bytes(v),
        Kind::Fraction => format!("{:.3} %", v * 100.0),
        Kind::PerSecond => format!("{v:.1}/s"),
        Kind::Percent => format!("{v:.1} %"),
        Kind::Plain => {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        }
    }
}

/// A signed difference in the metric's unit (for confidence intervals).
fn signed(metric: &str, v: f64) -> String {
    let magnitude = value(metric, v.abs());
    // No "-0.00 ms": a value that rounds to zero gets no sign.
    let rounds_to_zero = !magnitude.chars().any(|c| c.is_ascii_digit() && c != '0');
    let sign = if rounds_to_zero {
        "±"
    } else if v >= 0.0 {
        "+"
    } else {
        "-"
    };
    format!("{sign}{magnitude}")
}

fn bytes(v: f64) -> String {
    let a = v.abs();
    if a >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", v / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{:.2} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// `+12.3 %`, `-4.0 %`, or `new` when the baseline was zero.
pub fn delta(row: &MetricComparison) -> String {
    match (row.delta_pct, row.baseline, row.current) {
        (Some(p), _, _) => format!("{p:+.1} %"),
        (None, Some(b), Some(c)) if b == c => "0.0 %".to_string(),
        (None, Some(_), Some(_)) => "new".to_string(),
        _ => "–".to_string(),
    }
}

pub fn optional(metric: &str, v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| value(metric, v))
}

/// How the verdict was reached, e.g. `5 vs 5 repeats, p=0.004, 95 % CI +8.1 ms..+9.0 ms`.
pub fn evidence(row: &MetricComparison) -> String {
    match row.evidence {
        Evidence::Repeats {
            baseline_n,
            current_n,
            p_worse,
            p_better,
            ci,
        } => {
            let p = if row.verdict == Verdict::Improved {
                p_better
            } else {
                p_worse
            };
            format!(
                "{baseline_n} vs {current_n} repeats, p={p:.3}, 95 % CI {}..{}",
                signed(&row.metric, ci.low),
                signed(&row.metric, ci.high)
            )
        }
        Evidence::SingleRun => "single run".to_string(),
        Evidence::None => "missing".to_string(),
    }
}

/// One-sentence explanation of a row, used in JUnit failure messages.
pub fn sentence(row: &MetricComparison) -> String {
    format!(
        "{}: {} (baseline {}, current {}, delta {}, tolerance {:.1} %, {})",
        row.metric,
        row.verdict.label(),
        optional(&row.metric, row.baseline),
        optional(&row.metric, row.current),
        delta(row),
        row.tolerance_pct,
        evidence(row)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(value("delivery_latency.p99", 12.345), "12.35 ms");
        assert_eq!(value("memory_per_connection", 4300.0), "4.20 KiB");
        assert_eq!(value("errors.rate", 0.0012), "0.120 %");
        assert_eq!(value("throughput.deliveries_per_s", 9870.0), "9870.0/s");
        assert_eq!(value("server.rss_peak_bytes", 3.0 * 1048576.0), "3.00 MiB");
        assert_eq!(value("delivery.lost", 3.0), "3");
        assert_eq!(signed("delivery_latency.p99", -1.5), "-1.50 ms");
        assert_eq!(signed("delivery_latency.p99", -0.001), "±0.00 ms");
    }
}

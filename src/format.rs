//! Human formatting of numbers, shared by every output: the terminal
//! summary (`summary.rs`), the HTML report and capacity page (`report::html`
//! re-exports the primitives), and the comparison's terminal table,
//! Markdown and JUnit messages (metric values and comparison rows).
//!
//! Where outputs differ on purpose, the variant is named here rather than
//! copied: the terminal summary is terser (`ms_terse`, `percent_terse`), and
//! comparison rows show bytes with two decimals (`bytes_with(v, 2)`).

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
        Kind::Bytes => bytes_with(v, 2),
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

/// Milliseconds with sensible precision: `0.412`, `12.3`, `1,204`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 1000.0 {
        grouped(v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An integer with thousands separators: `1,234,567`, `-1,000`.
pub fn grouped(n: i64) -> String {
    let digits = thousands(n.unsigned_abs());
    if n < 0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in binary units: `8.0 KiB`, `212.4 MiB`.
pub fn bytes(v: f64) -> String {
    bytes_with(v, 1)
}

/// Bytes in binary units with `decimals` digits after the point (whole bytes stay whole).
pub fn bytes_with(v: f64, decimals: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.decimals$} {}", UNITS[unit])
    }
}

/// A rate such as messages/s: `12,345/s`, `3.50/s`.
pub fn per_second(v: f64) -> String {
    if v >= 100.0 {
        format!("{}/s", grouped(v.round() as i64))
    } else {
        format!("{v:.2}/s")
    }
}

/// A fraction as a percentage: `0.012 %`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 0.01 {
        format!("{p:.4} %")
    } else {
        format!("{p:.2} %")
    }
}

/// Milliseconds for the terminal summary: `0.41`, `12.3`, `1204`.
pub fn ms_terse(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A fraction as a percentage without the space, for the terminal summary: `0.012%`.
pub fn percent_terse(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 {
        "0%".into()
    } else if p < 0.01 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
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

    #[test]
    fn primitives_and_their_terse_variants() {
        assert_eq!(
            (ms(0.4123), ms(12.34), ms(1204.4)),
            ("0.412".into(), "12.3".into(), "1,204".into())
        );
        assert_eq!(
            (ms_terse(0.4123), ms_terse(12.34), ms_terse(1204.4)),
            ("0.41".into(), "12.3".into(), "1204".into())
        );
        assert_eq!(
            (percent(0.00005), percent_terse(0.00005)),
            ("0.0050 %".into(), "0.0050%".into())
        );
        assert_eq!(
            (bytes(2048.0), bytes_with(2048.0, 2), bytes(100.0)),
            ("2.0 KiB".into(), "2.00 KiB".into(), "100 B".into())
        );
        assert_eq!(
            (grouped(-1000), thousands(1_234_567)),
            ("-1,000".into(), "1,234,567".into())
        );
        assert_eq!(
            (per_second(12_345.4), per_second(3.5)),
            ("12,345/s".into(), "3.50/s".into())
        );
    }
}

//! Threshold evaluation: the plan's conditions against a finished run.
//!
//! Values were normalised to each metric's canonical unit when the plan was
//! validated, so this is a lookup and a comparison. A metric the run never
//! measured fails (with no value): a threshold that cannot be checked must
//! not pass silently.

use crate::results::{RunResults, ThresholdResult};
use crate::scenario::Threshold;

/// Evaluates every threshold, in plan order.
pub fn evaluate(thresholds: &[Threshold], results: &RunResults) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = results.metric_value(&t.metric).filter(|v| v.is_finite());
            ThresholdResult {
                metric: t.metric.clone(),
                condition: t.condition.clone(),
                value,
                pass: value.is_some_and(|v| t.op.holds(v, t.value)),
            }
        })
        .collect()
}

/// True when every threshold passed (also when there are none).
pub fn all_passed(results: &[ThresholdResult]) -> bool {
    results.iter().all(|r| r.pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LatencySummary;
    use crate::scenario::metrics::parse_threshold;

    fn results() -> RunResults {
        let mut r = RunResults::default();
        r.metrics.insert(
            "delivery_latency".into(),
            LatencySummary {
                count: 1000,
                p99: 42.5,
                ..Default::default()
            },
        );
        r.counters.frames_sent = 1000;
        r.counters.connections_opened = 100;
        r.counters.errors.insert("RATE_LIMITED".into(), 11);
        r.counters.lost = 0;
        r.counters.deliveries_expected = 500;
        r.throughput.deliveries_per_s = 1500.0;
        r
    }

    fn check(metric: &str, condition: &str) -> ThresholdResult {
        let t = parse_threshold(metric, condition).unwrap();
        evaluate(&[t], &results()).remove(0)
    }

    #[test]
    fn passes_and_fails_on_the_canonical_values() {
        let r = check("delivery_latency.p99", "< 50ms");
        assert_eq!((r.pass, r.value), (true, Some(42.5)));
        assert!(!check("delivery_latency.p99", "< 40ms").pass);
        assert!(!check("delivery_latency.p99", "< 0.04s").pass);
        assert!(check("delivery_latency.p99", "<= 42.5ms").pass);
        assert!(check("delivery.lost", "== 0").pass);
        assert!(check("throughput.deliveries_per_s", ">= 1000/s").pass);
        assert!(!check("throughput.deliveries_per_s", ">= 2000/s").pass);
        // 11 error frames over 1,100 operations = 1 %.
        assert!(check("errors.rate", "<= 1%").pass);
        assert!(!check("errors.rate", "< 1%").pass);
        assert_eq!(check("errors.rate", "< 1%").condition, "< 1%");
    }

    #[test]
    fn an_unmeasured_metric_fails_without_a_value() {
        let r = check("reconnect_time.p99", "< 1s");
        assert_eq!((r.pass, r.value), (false, None));
        let r = check("memory_per_connection", "<= 2KiB");
        assert_eq!((r.pass, r.value), (false, None));
    }

    #[test]
    fn all_passed_needs_every_result() {
        let t = vec![
            parse_threshold("delivery.lost", "== 0").unwrap(),
            parse_threshold("delivery_latency.p99", "< 1ms").unwrap(),
        ];
        let out = evaluate(&t, &results());
        assert_eq!(out.len(), 2);
        assert!(!all_passed(&out));
        assert!(all_passed(&out[..1]));
        assert!(all_passed(&[]));
    }
}

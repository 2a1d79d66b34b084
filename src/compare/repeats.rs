//! `bench run --repeat N`: folding N runs of one scenario into the single
//! `RunResults` that is written and later compared.
//!
//! The combined results are those of the **median repeat**, the one whose
//! `delivery_latency.p99` is the median of the N (the lower median for even
//! N; when no repeat has that metric, `throughput.deliveries_per_s`, then
//! the first repeat). Its metrics, counters, timeseries and thresholds are
//! kept whole, because they describe one real run rather than an average of
//! runs. Beside them, `repeats[i]` holds the values of every comparable
//! metric in repeat `i`, which is what `bench compare` tests for noise.
//! The combined run is interrupted or saturated if any repeat was.

use std::collections::BTreeMap;

use crate::results::RunResults;

/// Metric paths recorded per repeat besides `<latency>.<stat>` for every
/// latency metric in the run.
const RECORDED_METRICS: &[&str] = &[
    "errors.rate",
    "errors.count",
    "delivery.lost",
    "delivery.loss_rate",
    "delivery.duplicates",
    "delivery.out_of_order",
    "memory_per_connection",
    "throughput.chat_sent_per_s",
    "throughput.deliveries_per_s",
    "throughput.deliveries_per_s_peak",
    "throughput.bytes_received_per_s",
    "server.rss_peak_bytes",
    "server.cpu_percent_mean",
    "server.cpu_percent_peak",
    "generator.cpu_percent_mean",
    "generator.rss_peak_bytes",
];

/// Latency statistics recorded per repeat.
const LATENCY_STATS: &[&str] = &["p50", "p90", "p99", "p999", "mean", "max"];

/// Metrics that choose the median repeat, in order of preference.
const MEDIAN_KEYS: &[&str] = &["delivery_latency.p99", "throughput.deliveries_per_s"];

#[derive(Debug, thiserror::Error)]
pub enum RepeatError {
    #[error("no runs to combine")]
    Empty,
}

/// The comparable metric values of one run, as stored in `repeats[i]`.
pub fn repeat_values(run: &RunResults) -> BTreeMap<String, f64> {
    let latency_paths = run
        .metrics
        .keys()
        .flat_map(|name| LATENCY_STATS.iter().map(move |s| format!("{name}.{s}")));
    latency_paths
        .chain(RECORDED_METRICS.iter().map(|s| s.to_string()))
        .filter_map(|path| {
            let v = run.metric_value(&path)?;
            v.is_finite().then_some((path, v))
        })
        .collect()
}

/// Index of the median repeat (see the module docs).
fn median_repeat_index(values: &[BTreeMap<String, f64>]) -> usize {
    for key in MEDIAN_KEYS {
        let mut ranked: Vec<(f64, usize)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.get(*key).map(|v| (*v, i)))
            .collect();
        if ranked.len() == values.len() && !ranked.is_empty() {
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            return ranked[(ranked.len() - 1) / 2].1;
        }
    }
    0
}

/// Combines N runs of the same scenario into one `RunResults` with
/// `repeats` filled; see the module docs for what is kept.
pub fn combine_repeats(runs: Vec<RunResults>) -> Result<RunResults, RepeatError> {
    if runs.is_empty() {
        return Err(RepeatError::Empty);
    }
    let values: Vec<BTreeMap<String, f64>> = runs.iter().map(repeat_values).collect();
    let median = median_repeat_index(&values);

    let interrupt_reasons: Vec<String> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.interrupted)
        .map(|(i, r)| {
            let why = r.interrupt_reason.as_deref().unwrap_or("interrupted");
            format!("repeat {}: {why}", i + 1)
        })
        .collect();
    let saturation_reasons: Vec<String> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.generator.saturated)
        .flat_map(|(i, r)| {
            let reasons = if r.generator.saturation_reasons.is_empty() {
                vec!["saturated".to_string()]
            } else {
                r.generator.saturation_reasons.clone()
            };
            reasons
                .into_iter()
                .map(move |why| format!("repeat {}: {why}", i + 1))
        })
        .collect();

    let mut combined = runs.into_iter().nth(median).ok_or(RepeatError::Empty)?;
    combined.repeats = values;
    if !interrupt_reasons.is_empty() {
        combined.interrupted = true;
        combined.interrupt_reason = Some(interrupt_reasons.join("; "));
    }
    if !saturation_reasons.is_empty() {
        combined.generator.saturated = true;
        combined.generator.saturation_reasons = saturation_reasons;
    }
    Ok(combined)
}

/// `bench run --repeat N`: calls `run_once(i)` for i in 1..=N and combines
/// the results. An interrupted repeat (Ctrl-C, target down) stops the
/// series: later repeats could not be compared with it, and the user asked
/// to stop. The combined result is then marked interrupted.
pub fn run_repeated(
    n: u32,
    mut run_once: impl FnMut(u32) -> anyhow::Result<RunResults>,
) -> anyhow::Result<RunResults> {
    let mut runs = Vec::with_capacity(n as usize);
    for i in 1..=n.max(1) {
        let run = run_once(i)?;
        let stop = run.interrupted;
        runs.push(run);
        if stop {
            break;
        }
    }
    Ok(combine_repeats(runs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LatencySummary;

    fn run(p99: f64, mem: f64) -> RunResults {
        let mut r = RunResults {
            name: format!("p99={p99}"),
            ..Default::default()
        };
        r.metrics.insert(
            "delivery_latency".into(),
            LatencySummary {
                p50: p99 / 2.0,
                p99,
                ..Default::default()
            },
        );
        r.server.memory_per_connection_bytes = Some(mem);
        r.throughput.deliveries_per_s = 1000.0;
        r
    }

    #[test]
    fn keeps_the_median_repeat_and_records_every_repeat() {
        let combined =
            combine_repeats(vec![run(30.0, 1.0), run(10.0, 2.0), run(20.0, 3.0)]).unwrap();
        assert_eq!(combined.name, "p99=20");
        assert_eq!(combined.repeats.len(), 3);
        let p99s: Vec<f64> = combined
            .repeats
            .iter()
            .map(|m| m["delivery_latency.p99"])
            .collect();
        assert_eq!(p99s, vec![30.0, 10.0, 20.0]);
        assert_eq!(combined.repeats[2]["memory_per_connection"], 3.0);
        assert_eq!(combined.repeats[0]["delivery_latency.p50"], 15.0);
        assert!(!combined.interrupted);
        // The server's CPU was not sampled: absent, not zero.
        assert!(!combined.repeats[0].contains_key("server.cpu_percent_mean"));
    }

    #[test]
    fn even_counts_take_the_lower_median() {
        let combined = combine_repeats(vec![
            run(40.0, 0.0),
            run(10.0, 0.0),
            run(30.0, 0.0),
            run(20.0, 0.0),
        ])
        .unwrap();
        assert_eq!(combined.name, "p99=20");
    }

    #[test]
    fn any_invalid_repeat_invalidates_the_whole() {
        let mut bad = run(10.0, 0.0);
        bad.interrupted = true;
        bad.interrupt_reason = Some("target down".into());
        let mut sat = run(11.0, 0.0);
        sat.generator.saturated = true;
        let combined = combine_repeats(vec![run(12.0, 0.0), bad, sat]).unwrap();
        assert!(combined.interrupted);
        assert_eq!(
            combined.interrupt_reason.as_deref(),
            Some("repeat 2: target down")
        );
        assert!(combined.generator.saturated);
        assert_eq!(
            combined.generator.saturation_reasons,
            vec!["repeat 3: saturated"]
        );
    }

    #[test]
    fn run_repeated_stops_at_an_interrupted_repeat() {
        let mut calls = Vec::new();
        let combined = run_repeated(5, |i| {
            calls.push(i);
            let mut r = run(10.0 * i as f64, 0.0);
            r.interrupted = i == 2;
            Ok(r)
        })
        .unwrap();
        assert_eq!(calls, vec![1, 2]);
        assert_eq!(combined.repeats.len(), 2);
        assert!(combined.interrupted);
        let all = run_repeated(3, |i| Ok(run(i as f64, 0.0))).unwrap();
        assert_eq!(all.repeats.len(), 3);
        assert_eq!(all.name, "p99=2");
    }

    #[test]
    fn empty_is_an_error() {
        assert!(combine_repeats(vec![]).is_err());
    }
}

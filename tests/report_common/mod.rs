//! TEST DATA ONLY: builds realistic, fully populated `RunResults` in code
//! for the report tests. Nothing here is a measurement; the shapes imitate
//! a 60 s ramp/steady/ramp-down chat run (latencies drawn from seeded
//! log-normal distributions, recorded into real HdrHistograms, with a
//! stall at t = 35 s) so every chart has something to draw.
#![allow(dead_code)]
// Fixtures assign field by field on defaults on purpose: fields the model
// gains later then need no change here.
#![allow(clippy::field_reassign_with_default)]

pub mod chromium;
pub mod inspect;

use std::collections::BTreeMap;

use bench::results::*;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};

/// A complete run; `speedup` scales latencies down (for comparisons).
pub fn fixture_run(name: &str, seed: u64, speedup: f64) -> RunResults {
    let mut rng = StdRng::seed_from_u64(seed);
    let duration = 60usize;
    let stages = vec![
        StageWindow {
            index: 0,
            start_s: 0.0,
            end_s: 20.0,
            target: 1000,
        },
        StageWindow {
            index: 1,
            start_s: 20.0,
            end_s: 50.0,
            target: 1000,
        },
        StageWindow {
            index: 2,
            start_s: 50.0,
            end_s: 60.0,
            target: 0,
        },
    ];
    let target_at = |t: f64| -> f64 {
        if t <= 20.0 {
            50.0 * t
        } else if t <= 50.0 {
            1000.0
        } else {
            1000.0 - 100.0 * (t - 50.0)
        }
    };

    let mut delivery = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    let mut delivery_service = delivery.clone();
    let mut ack = delivery.clone();
    let mut ack_service = delivery.clone();
    let mut connect = delivery.clone();
    let base = LogNormal::new((2.0f64 / speedup).ln(), 0.5).expect("lognormal");
    let ack_base = LogNormal::new((0.8f64 / speedup).ln(), 0.4).expect("lognormal");
    let connect_dist = LogNormal::new(1.5f64.ln(), 0.3).expect("lognormal");

    let mut timeseries = Vec::new();
    let mut totals = Counters::default();
    for sec in 1..=duration {
        let t = sec as f64;
        let stalled = sec == 35;
        let target = target_at(t);
        let connected = (target * 0.995).round() as u64;
        let chat_sent = connected / 2;
        let deliveries = chat_sent * 9;
        let mut sec_delivery = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
        let mut sec_ack = sec_delivery.clone();
        // Sample a bounded number of values per second; the counts above
        // are what the counters say.
        let samples = (deliveries / 20).min(400);
        for _ in 0..samples {
            let service_ms: f64 = base.sample(&mut rng);
            let lateness_ms = if stalled { 250.0 } else { 0.0 };
            let corrected_us = ((service_ms + lateness_ms) * 1000.0).max(1.0) as u64;
            let service_us = (service_ms * 1000.0).max(1.0) as u64;
            let _ = sec_delivery.record(corrected_us);
            let _ = delivery.record(corrected_us);
            let _ = delivery_service.record(service_us);
            let a: f64 = ack_base.sample(&mut rng);
            let a_us = ((a + lateness_ms / 2.0) * 1000.0).max(1.0) as u64;
            let _ = sec_ack.record(a_us);
            let _ = ack.record(a_us);
            let _ = ack_service.record((a * 1000.0).max(1.0) as u64);
        }
        if sec <= 20 {
            for _ in 0..50 {
                let c: f64 = connect_dist.sample(&mut rng);
                let _ = connect.record((c * 1000.0) as u64);
            }
        }
        let errors = u64::from(stalled) * 3 + u64::from(sec % 17 == 0);
        let closes = if sec > 50 {
            100
        } else {
            u64::from(sec % 13 == 0) * 2
        };
        let lost = u64::from(stalled) * 4;
        let rss = 24.0 * 1024.0 * 1024.0
            + 9.0 * 1024.0 * connected as f64
            + 200_000.0 * ((sec * 7919) % 11) as f64 / 11.0;
        // Field by field on a default, so new model fields do not break the fixture.
        let mut snap = Snapshot::default();
        snap.t = t;
        snap.stage = stages.iter().position(|s| t <= s.end_s).unwrap_or(2);
        snap.clients_connected = connected;
        snap.clients_target = target;
        snap.chat_sent = chat_sent;
        snap.deliveries = deliveries;
        snap.bytes_sent = chat_sent * 180;
        snap.bytes_received = deliveries * 210;
        snap.errors = errors;
        snap.closes = closes;
        if closes > 0 {
            let code = if sec > 50 { "1000" } else { "1013" };
            snap.closes_by_code = BTreeMap::from([(code.to_string(), closes)]);
        }
        snap.lost = lost;
        snap.connects_failed = u64::from(sec == 7);
        snap.delivery_latency = pcts(&sec_delivery);
        snap.ack_latency = pcts(&sec_ack);
        snap.server_rss_bytes = Some(rss as u64);
        snap.server_cpu_percent =
            Some(5.0 + connected as f64 / 25.0 + if stalled { 40.0 } else { 0.0 });
        snap.generator_cpu_percent = 8.0 + connected as f64 / 30.0;
        snap.machine_cpu_percent = 10.0 + connected as f64 / 20.0;
        snap.softirq_percent = 3.0 + connected as f64 / 200.0;
        totals.chat_sent += chat_sent;
        totals.deliveries_received += deliveries - lost;
        totals.deliveries_expected += deliveries;
        totals.bytes_sent += snap.bytes_sent;
        totals.bytes_received += snap.bytes_received;
        totals.lost += lost;
        timeseries.push(snap);
    }
    totals.connections_opened = 1012;
    totals.connections_failed = BTreeMap::from([("timeout".to_string(), 1)]);
    totals.closes = BTreeMap::from([
        ("1000".to_string(), 1000),
        ("1006".to_string(), 8),
        ("abnormal".to_string(), 4),
    ]);
    totals.reconnects = 12;
    totals.frames_sent = totals.chat_sent + 2000;
    totals.frames_received = totals.deliveries_received + totals.chat_sent;
    totals.acks_received = totals.chat_sent - 3;
    totals.errors = BTreeMap::from([("rate_limited".to_string(), 6)]);
    totals.duplicates = 0;
    totals.out_of_order = 2;
    totals.late_sends = 14;

    let metrics = BTreeMap::from([
        ("delivery_latency".to_string(), summary(&delivery)),
        (
            "delivery_latency_service".to_string(),
            summary(&delivery_service),
        ),
        ("ack_latency".to_string(), summary(&ack)),
        ("ack_latency_service".to_string(), summary(&ack_service)),
        ("connect_time".to_string(), summary(&connect)),
    ]);
    let p99 = metrics["delivery_latency"].p99;
    let thresholds = vec![
        ThresholdResult {
            metric: "delivery_latency.p99".into(),
            condition: "< 50ms".into(),
            value: Some(p99),
            pass: p99 < 50.0,
        },
        ThresholdResult {
            metric: "errors.rate".into(),
            condition: "< 0.1%".into(),
            value: Some(totals.error_rate()),
            pass: totals.error_rate() < 0.001,
        },
        ThresholdResult {
            metric: "delivery.lost".into(),
            condition: "== 0".into(),
            value: Some(totals.lost as f64),
            pass: totals.lost == 0,
        },
    ];
    let peak_deliveries = timeseries.iter().map(|s| s.deliveries).max().unwrap_or(0) as f64;
    // Field by field on defaults, so fields added to the model later do not
    // break the fixture.
    let mut r = RunResults::default();
    r.schema_version = SCHEMA_VERSION;
    r.name = name.to_string();
    r.started_at = "2026-11-24T04:00:00Z".into();
    r.duration_s = duration as f64;
    r.metrics = metrics;
    r.throughput.chat_sent_per_s = totals.chat_sent as f64 / duration as f64;
    r.throughput.deliveries_per_s = totals.deliveries_received as f64 / duration as f64;
    r.throughput.deliveries_per_s_peak = peak_deliveries;
    r.throughput.bytes_received_per_s = totals.bytes_received as f64 / duration as f64;
    r.counters = totals;
    r.server.pids = vec![4242];
    r.server.rss_peak_bytes = timeseries.iter().filter_map(|s| s.server_rss_bytes).max();
    r.server.memory_per_connection_bytes = Some(9216.0);
    r.server.memory_fit = Some(LinearFit {
        slope: 9216.0,
        intercept: 25_265_000.0,
        r2: 0.998,
        points: duration,
    });
    r.server.cpu_percent_mean = Some(35.0);
    r.server.cpu_percent_peak = Some(85.0);
    r.generator.cpu_percent_mean = 30.0;
    r.generator.cpu_percent_peak = 41.0;
    r.generator.rss_peak_bytes = 48 * 1024 * 1024;
    r.generator.memory_per_client_bytes = Some(3100.0);
    r.generator.recording_cpu_share = Some(0.021);
    r.machine.cpu_percent_mean = 45.0;
    r.machine.softirq_percent_mean = 5.5;
    r.machine.cores = 2;
    r.thresholds = thresholds;
    r.stages = stages;
    r.timeseries = timeseries;
    r.scenario = serde_json::json!({
        "name": name,
        "seed": 42,
        "target": { "protocol": "chat", "url": null, "server": { "args": ["--batch-window", "5ms"] } },
        "stages": [
            { "duration": "20s", "target": 1000 },
            { "duration": "30s", "target": 1000 },
            { "duration": "10s", "target": 0 }
        ],
        "rooms": { "count": 100, "per_client": 1, "distribution": "zipf", "exponent": 1.1 },
        "clients": [ { "weight": 1, "chat_rate": "0.5/s", "message_size": [20, 200] } ],
        "thresholds": { "delivery_latency.p99": "< 50ms", "errors.rate": "< 0.1%", "delivery.lost": "== 0" }
    });
    r.environment.bench_version = "0.1.0".into();
    r.environment.git_commit = Some("0123456789abcdef".into());
    r.environment.cpu_model = "Test Fixture CPU @ 2.0GHz".into();
    r.environment.cores = 2;
    r.environment.os = "Debian GNU/Linux 13".into();
    r.environment.kernel = "6.1.0-test".into();
    r
}

/// The same run, interrupted and with a saturated generator.
pub fn troubled_run() -> RunResults {
    let mut r = fixture_run("troubled <run> & co", 7, 1.0);
    r.interrupted = true;
    r.interrupt_reason = Some("Ctrl-C".into());
    r.generator.saturated = true;
    r.generator.saturation_reasons = vec!["schedule lag p99 120 ms".into()];
    r
}

fn pcts(h: &Histogram<u64>) -> Pcts {
    if h.is_empty() {
        return Pcts::default();
    }
    Pcts {
        count: h.len(),
        p50: h.value_at_quantile(0.5) as f64 / 1000.0,
        p90: h.value_at_quantile(0.9) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
        max: h.max() as f64 / 1000.0,
    }
}

fn summary(h: &Histogram<u64>) -> LatencySummary {
    let ms = |us: u64| us as f64 / 1000.0;
    // Points at 0, 10, 20, ... then ever more nines, like HdrHistogram's
    // percentile output: ticks per half-distance to 100 %.
    let mut distribution = Vec::new();
    let mut k = 0.0f64;
    while k <= 5.0 {
        let q = 1.0 - 10f64.powf(-k);
        distribution.push((q * 100.0, ms(h.value_at_quantile(q))));
        k += 0.1;
    }
    distribution.push((100.0, ms(h.max())));
    LatencySummary {
        count: h.len(),
        min: ms(h.min()),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        distribution,
        hdr: None,
    }
}

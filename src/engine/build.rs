//! Turning what was measured into [`RunResults`]: latency summaries from the
//! merged histograms, counters with tail loss, throughput, resource fits and
//! the generator's self-check.

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::metrics::{Interval, MetricId};
use super::panic::PanicLog;
use super::readiness::{not_ready_rule, ReadyBook};
use super::sampler::{linear_fit, Sample};
use super::schedule;
use super::worker::RoomTotals;
use crate::results::*;
use crate::scenario::Plan;

/// A share of late sends (see `LAG_TOLERANCE_US`) above this marks the
/// generator as saturated. Timer granularity (1 ms) and a busy machine make
/// an occasional late send normal; a generator that cannot keep up is late
/// for far more than this.
const LATE_SHARE_LIMIT: f64 = 0.05;
/// A schedule-lag p99 above this (µs) marks the generator as saturated.
const LAG_P99_LIMIT_US: u64 = 50_000;
/// Generator CPU (% of one core per worker thread) above this marks it saturated.
const CPU_LIMIT_PER_WORKER: f64 = 90.0;

/// One second of the run as the aggregator keeps it: counters and the
/// percentiles the timeseries shows, not the histograms (those go into the
/// run totals), so a long soak does not grow by a histogram set per second.
#[derive(Debug, Clone)]
pub struct Second {
    pub second: u64,
    pub counters: Counters,
    pub connected: u64,
    pub delivery: Pcts,
    pub ack: Pcts,
    pub sample: Sample,
}

impl Second {
    pub fn new(iv: Interval, sample: Sample) -> Self {
        Self {
            second: iv.second,
            delivery: pcts(iv.hist(MetricId::DeliveryLatency)),
            ack: pcts(iv.hist(MetricId::AckLatency)),
            counters: iv.counters,
            connected: iv.connected,
            sample,
        }
    }
}

/// Everything the aggregator collected.
pub struct Collected {
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: Option<String>,
    pub totals: Interval,
    pub seconds: Vec<Second>,
    pub rooms: RoomTotals,
    pub server_pids: Vec<u32>,
    /// Every sampled process ([`ServerStats::processes`]).
    pub processes: Vec<crate::results::ProcessStats>,
    pub ready: ReadyBook,
    pub panics: PanicLog,
    /// Distinct server instance ids seen.
    pub instances: usize,
    /// Multi-process or merged runs: one entry per shard.
    pub shards: Vec<ShardInfo>,
    /// Validity reasons found while merging parts (dead or missing shards,
    /// late starts, clock offsets).
    pub invalid: Vec<String>,
    /// Generator processes whose CPU the self-check sums.
    pub generator_processes: usize,
    /// Generator-side accounting: deliveries still missing when the drain ended.
    pub ledger_tail: super::ledger::Missing,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let q = |p: f64| ms(h.value_at_quantile(p));
    let mut hdr = Vec::new();
    let encoded = V2Serializer::new()
        .serialize(h, &mut hdr)
        .ok()
        .map(|_| base64::engine::general_purpose::STANDARD.encode(&hdr));
    LatencySummary {
        count: h.len(),
        min: ms(h.min()),
        mean: h.mean() / 1000.0,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: ms(h.max()),
        distribution: [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0,
        ]
        .iter()
        .map(|&p| (p, ms(h.value_at_quantile(p / 100.0))))
        .collect(),
        hdr: encoded,
    }
}

fn pcts(h: &Histogram<u64>) -> Pcts {
    if h.is_empty() {
        return Pcts::default();
    }
    Pcts {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

pub fn snapshot(plan: &Plan, s: &Second) -> Snapshot {
    let c = &s.counters;
    let t_us = s.second * 1_000_000;
    Snapshot {
        t: s.second as f64,
        stage: schedule::stage_at(&plan.stages, t_us.saturating_sub(1)),
        clients_connected: s.connected,
        clients_target: schedule::target_at(&plan.stages, t_us),
        chat_sent: c.chat_sent,
        deliveries: c.deliveries_received,
        bytes_sent: c.bytes_sent,
        bytes_received: c.bytes_received,
        errors: c.errors_total(),
        closes: c.closes.values().sum(),
        closes_by_code: c.closes.clone(),
        lost: c.lost,
        connects_failed: c.connections_failed_total(),
        delivery_latency: s.delivery,
        ack_latency: s.ack,
        server_rss_bytes: s.sample.server_rss,
        server_cpu_percent: s.sample.server_cpu,
        generator_cpu_percent: s.sample.generator_cpu,
        machine_cpu_percent: s.sample.machine_cpu,
        softirq_percent: s.sample.softirq,
    }
}

/// The generator's self-check: was it the bottleneck?
fn self_check(
    plan: &Plan,
    c: &Counters,
    lag: &Histogram<u64>,
    cpu_mean: f64,
    processes: usize,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if c.chat_sent > 0 {
        let late = c.late_sends as f64 / c.chat_sent as f64;
        if late > LATE_SHARE_LIMIT || lag.value_at_quantile(0.99) > LAG_P99_LIMIT_US {
            reasons.push(format!(
                "{:.1}% of sends started more than {} ms after their intended time (schedule lag p99 {:.1} ms)",
                late * 100.0,
                super::ctx::LAG_TOLERANCE_US / 1000,
                ms(lag.value_at_quantile(0.99))
            ));
        }
    }
    let threads = plan.run.workers.max(1) * processes.max(1);
    let limit = CPU_LIMIT_PER_WORKER * threads as f64;
    if cpu_mean >= limit {
        reasons.push(format!(
            "generator CPU averaged {cpu_mean:.0}% with {threads} worker thread(s)"
        ));
    }
    reasons
}

/// When the generator flagged itself on a machine with no CPU to spare,
/// say so: the cure is a quieter machine or more cores, not fewer clients.
fn machine_hint(reasons: &mut Vec<String>, machine_cpu_mean: f64) {
    if !reasons.is_empty() && machine_cpu_mean >= 95.0 {
        reasons.push(format!(
            "the whole machine averaged {machine_cpu_mean:.0}% CPU: generator and server competed for cores"
        ));
    }
}

/// A memory slope is only reported when the fit explains the data: enough
/// points and R² ≥ 0.5 (a run without a ramp has no slope to speak of; the
/// raw fit stays in `memory_fit` either way).
fn reliable(f: &LinearFit) -> bool {
    f.points >= 5 && f.r2 >= 0.5
}

/// `run.measure_after` in whole seconds (rounded up): intervals ending at or
/// before it are warm-up, kept out of whole-run metrics.
pub fn measure_after_s(plan: &Plan) -> u64 {
    let d = plan.run.measure_after;
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The seconds whole-run means and peaks cover: all of them, or with
/// `measure_after` only the measurement window (after the warm-up, up to the
/// end of the last stage, so the drain does not dilute CPU means).
fn in_window(plan: &Plan, s: &Second) -> bool {
    let after = measure_after_s(plan);
    after == 0 || (s.second > after && s.second as f64 <= plan.duration().as_secs_f64().ceil())
}

pub fn results(plan: &Plan, col: Collected) -> RunResults {
    let totals = &col.totals;
    let mut counters = totals.counters.clone();
    let tail = col.rooms.tail_lost() + col.ledger_tail.lost;
    counters.leave_races += col.ledger_tail.leave_races;
    counters.lost += tail;
    counters.lost_tail += tail;
    counters.deliveries_expected = counters.deliveries_received + counters.lost;
    // Restarts: new instance ids, or (servers without one) the most seq
    // restarts any room saw.
    let epochs = col.rooms.epoch.iter().copied().max().unwrap_or(0) as u64;
    counters.server_restarts = (col.instances.saturating_sub(1) as u64).max(epochs);

    let mut metrics = std::collections::BTreeMap::new();
    for id in MetricId::ALL {
        let h = totals.hist(id);
        if !h.is_empty() {
            metrics.insert(id.name().to_owned(), summarize(h));
        }
    }

    let all_seconds: Vec<&Second> = col.seconds.iter().collect();
    let samples: Vec<&Second> = col.seconds.iter().filter(|s| in_window(plan, s)).collect();
    // Memory is fitted while clients only come (ramp-up and hold): freed
    // memory is rarely returned to the OS, so ramp-down points would bend
    // the line without saying anything about the cost of a connection.
    // Over every second, warm-up included: the ramp is where clients vary.
    let rising = all_seconds
        .windows(2)
        .position(|w| w[1].connected < w[0].connected)
        .map_or(all_seconds.len(), |i| i + 1);
    let server_points: Vec<(f64, f64)> = all_seconds[..rising]
        .iter()
        .filter_map(|s| s.sample.server_rss.map(|r| (s.connected as f64, r as f64)))
        .collect();
    let gen_points: Vec<(f64, f64)> = all_seconds[..rising]
        .iter()
        .map(|s| (s.connected as f64, s.sample.generator_rss as f64))
        .collect();
    let server_fit = linear_fit(&server_points);
    let gen_fit = linear_fit(&gen_points);
    let server_cpu: Vec<f64> = samples.iter().filter_map(|s| s.sample.server_cpu).collect();
    let gen_cpu_mean = mean(samples.iter().map(|s| s.sample.generator_cpu)).unwrap_or(0.0);
    let machine_cpu_mean = mean(samples.iter().map(|s| s.sample.machine_cpu)).unwrap_or(0.0);
    let mut reasons = self_check(
        plan,
        &counters,
        totals.hist(MetricId::ScheduleLag),
        gen_cpu_mean,
        col.generator_processes,
    );
    machine_hint(&mut reasons, machine_cpu_mean);

    // With a warm-up excluded, rates are per second of the measurement window
    // (deliveries in the drain stand in for those of warm-up sends counted in it).
    let dur = match measure_after_s(plan) {
        0 => col.duration_s,
        after => col.duration_s.min(plan.duration().as_secs_f64()) - after as f64,
    }
    .max(1e-3);
    let per_s_peak = samples
        .iter()
        .map(|s| s.counters.deliveries_received as f64)
        .fold(0.0, f64::max);

    let mut t0 = 0.0;
    let stages = plan
        .stages
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let start_s = t0;
            t0 += s.duration.as_secs_f64();
            StageWindow {
                index,
                start_s,
                end_s: t0,
                target: s.target,
            }
        })
        .collect();

    let readiness = col.ready.summary();
    let mut rules = Vec::new();
    if col.panics.count > 0 {
        rules.push(format!(
            "{} panic(s) in client tasks: {}",
            col.panics.count,
            col.panics.messages.join("; ")
        ));
    }
    rules.extend(not_ready_rule(&readiness, plan.run.max_not_ready));
    rules.extend(col.invalid);
    let validity = Validity {
        valid: rules.is_empty(),
        reasons: rules,
        panics: col.panics.count,
        panic_messages: col.panics.messages,
    };

    let compression = plan
        .target
        .deflate
        .map(|_| Compression::from_counters(&counters));
    let tls = plan
        .target
        .tls
        .as_ref()
        .map(|t| crate::results::tls::TlsStats::from_counters(&counters, t.insecure, t.resume));
    let mut results = RunResults {
        schema_version: SCHEMA_VERSION,
        name: plan.name.clone(),
        started_at: col.started_at,
        duration_s: col.duration_s,
        interrupted: col.interrupted.is_some(),
        interrupt_reason: col.interrupted,
        metrics,
        throughput: Throughput {
            chat_sent_per_s: counters.chat_sent as f64 / dur,
            deliveries_per_s: counters.deliveries_received as f64 / dur,
            deliveries_per_s_peak: per_s_peak,
            bytes_received_per_s: counters.bytes_received as f64 / dur,
        },
        counters,
        server: ServerStats {
            pids: col.server_pids,
            rss_peak_bytes: samples.iter().filter_map(|s| s.sample.server_rss).max(),
            memory_per_connection_bytes: server_fit.filter(reliable).map(|f| f.slope),
            memory_fit: server_fit,
            cpu_percent_mean: mean(server_cpu.iter().copied()),
            cpu_percent_peak: server_cpu.iter().copied().reduce(f64::max),
            processes: col.processes,
        },
        generator: GeneratorStats {
            cpu_percent_mean: gen_cpu_mean,
            cpu_percent_peak: samples
                .iter()
                .map(|s| s.sample.generator_cpu)
                .fold(0.0, f64::max),
            rss_peak_bytes: samples
                .iter()
                .map(|s| s.sample.generator_rss)
                .max()
                .unwrap_or(0),
            memory_per_client_bytes: gen_fit.filter(reliable).map(|f| f.slope),
            saturated: !reasons.is_empty(),
            saturation_reasons: reasons,
            recording_cpu_share: None,
            pacing: None,
        },
        machine: MachineStats {
            cpu_percent_mean: machine_cpu_mean,
            softirq_percent_mean: mean(samples.iter().map(|s| s.sample.softirq)).unwrap_or(0.0),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        thresholds: Vec::new(),
        stages,
        timeseries: all_seconds.iter().map(|s| snapshot(plan, s)).collect(),
        compression,
        tls,
        repeats: Vec::new(),
        scenario: serde_json::to_value(plan).unwrap_or_default(),
        environment: Environment::collect(),
        validity,
        readiness,
        shards: col.shards,
    };
    results.seal_validity();
    results
}

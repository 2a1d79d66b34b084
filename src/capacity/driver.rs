//! Runs the capacity search: one bounded step per load, each judged against
//! the SLOs, with `capacity.json` rewritten after every step. The step
//! itself is behind [`StepRunner`] so the loop is tested without sockets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::model::{self, CapacityResults, Limit, StepRecord, Vary};
use super::projection;
use super::rooms::RoomsSetup;
use super::search::{Search, SearchEnd, StepVerdict};
use super::usl;
use crate::results::{LinearFit, RunResults, ThresholdResult};
use crate::scenario::Threshold;

/// What one step should run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSpec {
    pub index: usize,
    pub load: u32,
    pub clients: u32,
    /// Rooms in the step (what the runner's plan derives, for the record).
    pub rooms: u32,
    pub chat_rate_scale: f64,
    pub warmup: Duration,
    pub measure: Duration,
}

/// Runs one step and returns results covering its measurement window.
pub trait StepRunner {
    fn run_step(&mut self, spec: &StepSpec) -> anyhow::Result<StepRun>;

    /// True once the user asked the search to stop (Ctrl-C), checked before
    /// every step so a signal between steps is not lost.
    fn stop_requested(&self) -> bool {
        false
    }
}

pub struct StepRun {
    pub results: RunResults,
    /// Where the step's own results.json was written, if anywhere.
    pub results_file: Option<PathBuf>,
    /// The user stopped the step (Ctrl-C): it says nothing about the load.
    /// A step the engine stopped itself (a failed stage, a target refusing
    /// every connection) is judged instead: that load is over the limit.
    pub stopped_by_user: bool,
}

/// Everything the loop needs besides the runner.
pub struct DriverConfig {
    pub out_dir: PathBuf,
    pub slos: Vec<Threshold>,
    pub vary: Vary,
    /// Scenario peak clients and per-client chat rate, the base the load scales.
    pub base_clients: u32,
    pub base_chat_rate: f64,
    pub warmup: Duration,
    pub measure: Duration,
    pub budget: Duration,
    /// Time a step takes beyond warm-up and measurement (the scenario's
    /// drain), counted against the budget.
    pub step_overhead: Duration,
    pub target_users: Option<u64>,
    pub machine_memory_bytes: u64,
    /// The scenario's room count, and how rooms follow the clients (None:
    /// they do not change, `--vary chat_rate`).
    pub base_rooms: u32,
    pub rooms: Option<RoomsSetup>,
}

impl DriverConfig {
    pub fn spec(&self, index: usize, load: u32) -> StepSpec {
        let (clients, chat_rate_scale) = match self.vary {
            Vary::Clients => (load, 1.0),
            Vary::ChatRate => (self.base_clients, f64::from(load) / 100.0),
        };
        let rooms = self
            .rooms
            .as_ref()
            .map_or(self.base_rooms, |r| r.rooms_at(clients));
        StepSpec {
            index,
            load,
            clients,
            rooms,
            chat_rate_scale,
            warmup: self.warmup,
            measure: self.measure,
        }
    }
}

/// Share of a step's clients that may fail to connect (or stay
/// disconnected through the measurement window) before the step fails.
const CONNECT_FAILURE_SHARE: f64 = 0.01;

/// Judges one step: generator saturation first (the step says nothing
/// about the target), then a run the engine had to stop, then clients that
/// could not connect, then each SLO.
pub fn judge(
    results: &RunResults,
    slos: &[Threshold],
    spec: &StepSpec,
) -> (StepVerdict, Vec<ThresholdResult>) {
    // The run's own threshold evaluation: a non-finite value is "not measured" and fails.
    let checked = crate::thresholds::evaluate(slos, results);
    if results.generator.saturated {
        let reason = results.generator.saturation_reasons.join("; ");
        return (StepVerdict::GeneratorLimited { reason }, checked);
    }
    if results.interrupted {
        let why = results
            .interrupt_reason
            .as_deref()
            .unwrap_or("no reason recorded");
        let reason = format!("the run was stopped: {why}");
        return (StepVerdict::Fail { reason }, checked);
    }
    // Connections are judged over the whole step (warm-up included: that is
    // when clients connect); the counters only cover the measurement window.
    let failed: u64 = results.timeseries.iter().map(|s| s.connects_failed).sum();
    let allowed = (f64::from(spec.clients) * CONNECT_FAILURE_SHARE).floor() as u64;
    if failed > allowed {
        let reason = format!(
            "{failed} connection attempts failed for {} clients",
            spec.clients
        );
        return (StepVerdict::Fail { reason }, checked);
    }
    let warmup_s = spec.warmup.as_secs_f64().ceil();
    let connected = results
        .timeseries
        .iter()
        .filter(|s| s.t > warmup_s)
        .map(|s| s.clients_connected)
        .max()
        .unwrap_or(0);
    if (connected as f64) < f64::from(spec.clients) * (1.0 - CONNECT_FAILURE_SHARE) {
        let reason = format!(
            "only {connected} of {} clients were connected in the measurement window",
            spec.clients
        );
        return (StepVerdict::Fail { reason }, checked);
    }
    if let Some(broken) = checked.iter().find(|c| !c.pass) {
        let shown = broken
            .value
            .map_or("not measured".to_owned(), |v| format!("{v:.3}"));
        let reason = format!("{} {} (was {shown})", broken.metric, broken.condition);
        return (StepVerdict::Fail { reason }, checked);
    }
    (StepVerdict::Pass, checked)
}

fn record(
    spec: &StepSpec,
    run: &StepRun,
    verdict: StepVerdict,
    slos: Vec<ThresholdResult>,
    cfg: &DriverConfig,
) -> StepRecord {
    let r = &run.results;
    let p99 = |name: &str| r.metrics.get(name).filter(|m| m.count > 0).map(|m| m.p99);
    let work = model::work_per_s(r.throughput.chat_sent_per_s, r.throughput.deliveries_per_s);
    StepRecord {
        index: spec.index,
        load: spec.load,
        clients: spec.clients,
        rooms: spec.rooms,
        chat_rate: cfg.base_chat_rate * spec.chat_rate_scale,
        verdict,
        slos,
        delivery_p99_ms: p99("delivery_latency"),
        ack_p99_ms: p99("ack_latency"),
        deliveries_per_s: r.throughput.deliveries_per_s,
        chat_sent_per_s: r.throughput.chat_sent_per_s,
        work_per_s: work,
        server_cpu_us_per_work: model::cpu_us_per_work(r.server.cpu_percent_mean, work),
        clients_connected_peak: r
            .timeseries
            .iter()
            .map(|s| s.clients_connected)
            .max()
            .unwrap_or(0),
        connections_failed: r.timeseries.iter().map(|s| s.connects_failed).sum(),
        server_cpu_percent_mean: r.server.cpu_percent_mean,
        server_rss_peak_bytes: r.server.rss_peak_bytes,
        machine_cpu_percent_mean: r.machine.cpu_percent_mean,
        generator_cpu_percent_mean: r.generator.cpu_percent_mean,
        generator_saturated: r.generator.saturated,
        duration_s: r.duration_s,
        results_file: run.results_file.as_ref().map(|p| {
            p.strip_prefix(&cfg.out_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        }),
    }
}

/// True when a step lost more clients to connection failures than the judge allows.
fn connections_short(step: &StepRecord) -> bool {
    let allowed = (f64::from(step.clients) * CONNECT_FAILURE_SHARE).floor() as u64;
    step.connections_failed > allowed
        || (step.clients_connected_peak as f64)
            < f64::from(step.clients) * (1.0 - CONNECT_FAILURE_SHARE)
}

/// Names what ran out first at the lowest failing step (or the last step).
fn attribute_limit(steps: &[StepRecord], cores: usize, machine_memory_bytes: u64) -> Option<Limit> {
    let first_fail = steps
        .iter()
        .filter(|s| !matches!(s.verdict, StepVerdict::Pass))
        .min_by_key(|s| s.load)
        .or_else(|| steps.iter().max_by_key(|s| s.load))?;
    let limiting_metric = match &first_fail.verdict {
        StepVerdict::Fail { .. } => first_fail
            .slos
            .iter()
            .find(|c| !c.pass)
            .map(|c| c.metric.clone())
            .or(Some("connections".to_owned())),
        _ => None,
    };
    let all_cores = 100.0 * cores.max(1) as f64;
    let server_cpu = first_fail.server_cpu_percent_mean.unwrap_or(0.0);
    let (saturated_first, detail) = if first_fail.generator_saturated {
        ("generator", "the load generator fell behind its schedule; the target's capacity is at least the highest passing load".to_owned())
    } else if first_fail
        .server_rss_peak_bytes
        .is_some_and(|rss| rss as f64 > 0.7 * machine_memory_bytes as f64)
    {
        (
            "server_memory",
            "server RSS passed 70% of the machine's memory".to_owned(),
        )
    } else if connections_short(first_fail) && server_cpu < 0.85 * 100.0 {
        (
            "connections",
            format!(
                "the target refused or dropped connections ({} failed attempts, {} of {} clients connected at most) while its CPU was at {server_cpu:.0}%: a connection limit, file descriptors or the accept backlog",
                first_fail.connections_failed, first_fail.clients_connected_peak, first_fail.clients
            ),
        )
    } else if server_cpu >= 0.85 * 100.0 {
        // A single-threaded event loop saturates at one core: 85% of one core is already the wall.
        (
            "server_cpu",
            format!("server CPU at {server_cpu:.0}% (100% = one core)"),
        )
    } else if first_fail.machine_cpu_percent_mean >= 0.9 * 100.0 {
        ("machine_cpu", format!(
            "machine CPU at {:.0}% of {:.0}% while the server used {server_cpu:.0}%: the generator, the server and loopback softirq share the cores",
            first_fail.machine_cpu_percent_mean * all_cores / 100.0,
            all_cores
        ))
    } else {
        (
            "unknown",
            "no resource was saturated; the SLO broke first (queueing, locks or fault injection)"
                .to_owned(),
        )
    };
    Some(Limit {
        limiting_metric,
        saturated_first: saturated_first.to_owned(),
        detail,
    })
}

/// Runs the search to its end, the budget, or an interruption; returns the
/// final results (already written to `capacity.json`).
pub fn drive(
    cfg: &DriverConfig,
    search: &mut Search,
    runner: &mut dyn StepRunner,
    mut results: CapacityResults,
    on_step: &mut dyn FnMut(&CapacityResults),
) -> anyhow::Result<CapacityResults> {
    let started = Instant::now();
    let step_time = cfg.warmup + cfg.measure + cfg.step_overhead;
    while let Some(load) = search.next_load() {
        if started.elapsed() + step_time > cfg.budget {
            search.stop(SearchEnd::OutOfBudget);
            break;
        }
        if runner.stop_requested() {
            results.interrupted = true;
            break;
        }
        let spec = cfg.spec(results.steps.len(), load);
        let run = runner.run_step(&spec)?;
        if run.stopped_by_user || runner.stop_requested() {
            // A step cut short says nothing about the load; keep what is complete.
            results.interrupted = true;
            break;
        }
        let (verdict, slos) = judge(&run.results, &cfg.slos, &spec);
        search.record(load, &verdict);
        results.steps.push(record(&spec, &run, verdict, slos, cfg));
        conclude(cfg, search, &mut results);
        results.write(&cfg.out_dir)?;
        on_step(&results);
    }
    results.end = search.end().cloned();
    conclude(cfg, search, &mut results);
    results.write(&cfg.out_dir)?;
    Ok(results)
}

/// Recomputes every derived field from the steps so far.
fn conclude(cfg: &DriverConfig, search: &Search, results: &mut CapacityResults) {
    results.capacity = search.highest_pass();
    results.end = search.end().cloned();
    let cores = results.environment.cores;
    results.limit = attribute_limit(&results.steps, cores, cfg.machine_memory_bytes);
    results.usl = usl::fit(&results.usl_points());
    results.memory_fit = LinearFit::least_squares(&results.memory_points());
    reproject(cfg, results);
}

/// The projection from the capacity, the memory fit and, once `--nodes`
/// measured it, the bus overhead.
pub fn reproject(cfg: &DriverConfig, results: &mut CapacityResults) {
    let conservative = matches!(
        results.end,
        Some(SearchEnd::GeneratorLimited | SearchEnd::AtLeastMax | SearchEnd::OutOfBudget) | None
    );
    let bus = results.scale_out.as_ref().and_then(|s| s.fit.clone());
    results.projection = match (cfg.target_users, cfg.vary, results.capacity) {
        (Some(users), Vary::Clients, Some(capacity)) => {
            // Work per user at the capacity step, for the bus's projected load.
            let work_per_user = results
                .steps
                .iter()
                .find(|s| s.load == capacity)
                .filter(|s| s.clients > 0)
                .map(|s| s.work_per_s / f64::from(s.clients));
            projection::project(&projection::ProjectionInputs {
                target_users: users,
                capacity_users: u64::from(capacity),
                memory: results.memory_fit.as_ref(),
                machine_memory_bytes: cfg.machine_memory_bytes,
                conservative,
                bus: bus.as_ref(),
                work_per_user,
            })
        }
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::search::SearchConfig;
    use crate::results::LatencySummary;
    use crate::scenario::CmpOp;

    /// A synthetic target: latency jumps past `limit` clients; RSS grows
    /// 3 KiB per client; throughput follows a known USL curve.
    struct Synthetic {
        limit: u32,
        interrupt_at_step: Option<usize>,
    }

    impl StepRunner for Synthetic {
        fn run_step(&mut self, spec: &StepSpec) -> anyhow::Result<StepRun> {
            let mut r = RunResults {
                duration_s: 1.0,
                ..Default::default()
            };
            let p99 = if spec.clients <= self.limit {
                10.0
            } else {
                120.0
            };
            r.metrics.insert(
                "delivery_latency".into(),
                LatencySummary {
                    count: 1000,
                    p99,
                    ..Default::default()
                },
            );
            // Work (messages in + deliveries out, 1:9) follows a known USL curve.
            let n = f64::from(spec.clients);
            let work = 50.0 * n / (1.0 + 0.02 * (n - 1.0) + 0.00001 * n * (n - 1.0));
            r.throughput.chat_sent_per_s = work / 10.0;
            r.throughput.deliveries_per_s = work * 0.9;
            r.server.cpu_percent_mean = Some(work / 100.0);
            r.server.rss_peak_bytes = Some(8_000_000 + 3072 * u64::from(spec.clients));
            r.counters.connections_opened = u64::from(spec.clients);
            r.timeseries.push(crate::results::Snapshot {
                t: 1.0,
                clients_connected: u64::from(spec.clients),
                ..Default::default()
            });
            Ok(StepRun {
                results: r,
                results_file: None,
                stopped_by_user: self.interrupt_at_step == Some(spec.index),
            })
        }
    }

    fn setup(dir: &std::path::Path) -> (DriverConfig, Search, CapacityResults) {
        let cfg = DriverConfig {
            out_dir: dir.to_path_buf(),
            slos: vec![Threshold {
                metric: "delivery_latency.p99".into(),
                op: CmpOp::Lt,
                value: 50.0,
                condition: "< 50ms".into(),
            }],
            vary: Vary::Clients,
            base_clients: 100,
            base_chat_rate: 1.0,
            warmup: Duration::ZERO,
            measure: Duration::ZERO,
            budget: Duration::from_secs(60),
            step_overhead: Duration::ZERO,
            target_users: Some(100_000),
            machine_memory_bytes: 24 << 30,
            base_rooms: 1,
            rooms: None,
        };
        let search_cfg = SearchConfig {
            min: 50,
            max: 5_000,
            growth: 2.0,
            resolution: 0.05,
            max_steps: 30,
        };
        let results = CapacityResults::new(
            "synthetic".into(),
            String::new(),
            Vary::Clients,
            vec!["delivery_latency.p99 < 50ms".into()],
            search_cfg,
            Default::default(),
        );
        (cfg, Search::new(search_cfg), results)
    }

    /// The step judge evaluates SLOs as `thresholds::evaluate` does: a
    /// non-finite value is not a measurement, so the step fails on it.
    #[test]
    fn a_non_finite_slo_value_fails_the_step_as_not_measured() {
        let mut r = RunResults {
            duration_s: 1.0,
            ..Default::default()
        };
        r.metrics.insert(
            "delivery_latency".into(),
            crate::results::LatencySummary {
                count: 10,
                p99: f64::NAN,
                ..Default::default()
            },
        );
        let slos =
            [crate::scenario::metrics::parse_threshold("delivery_latency.p99", "> 1ms").unwrap()];
        let spec = StepSpec {
            index: 0,
            load: 1,
            clients: 0,
            rooms: 1,
            chat_rate_scale: 1.0,
            warmup: Duration::ZERO,
            measure: Duration::from_secs(1),
        };
        let (verdict, checked) = judge(&r, &slos, &spec);
        assert_eq!((checked[0].value, checked[0].pass), (None, false));
        let StepVerdict::Fail { reason } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.contains("not measured"), "{reason}");
    }

    #[test]
    fn finds_the_synthetic_limit_and_fits_models() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, mut search, results) = setup(dir.path());
        let mut runner = Synthetic {
            limit: 600,
            interrupt_at_step: None,
        };
        let out = drive(&cfg, &mut search, &mut runner, results, &mut |_| {}).unwrap();
        let cap = out.capacity.unwrap();
        assert!((570..=600).contains(&cap), "capacity {cap}");
        assert_eq!(out.end, Some(SearchEnd::Converged));
        let limit = out.limit.clone().unwrap();
        assert_eq!(
            limit.limiting_metric.as_deref(),
            Some("delivery_latency.p99")
        );
        let mem = out.memory_fit.unwrap();
        assert!((mem.slope - 3072.0).abs() < 1.0, "{mem:?}");
        let usl = out.usl.clone().unwrap();
        assert!(usl.r2 > 0.999 && usl.fit_warning().is_none(), "{usl:?}");
        assert_eq!(usl.residuals.len(), out.steps.len());
        // 1% of one core per 100 units/s of work: 100 µs of CPU per unit.
        for s in &out.steps {
            let us = s.server_cpu_us_per_work.unwrap();
            assert!((us - 100.0).abs() < 1e-6, "{us}");
        }
        assert!(
            (usl.sigma - 0.02).abs() < 0.002 && (usl.kappa - 0.00001).abs() < 2e-6,
            "{usl:?}"
        );
        let p = out.projection.clone().unwrap();
        assert_eq!(p.instances, Some(100_000u64.div_ceil(u64::from(cap))));
        let on_disk: CapacityResults =
            serde_json::from_slice(&std::fs::read(dir.path().join("capacity.json")).unwrap())
                .unwrap();
        assert_eq!(on_disk.steps.len(), out.steps.len());

        // The page shows the verdict, every step and three charts with data.
        let html = crate::capacity::page::render_page(&out, &cfg.slos).unwrap();
        assert!(html.contains(&format!("Capacity: {cap} clients")));
        for id in [
            "capacity-latency",
            "capacity-throughput",
            "capacity-residuals",
            "capacity-cpu-per-work",
            "capacity-memory",
        ] {
            assert!(
                html.contains(&format!("data-chart=\"{id}\" data-has-data=\"true\"")),
                "{id}"
            );
        }
        assert!(html.contains("SLO delivery_latency.p99 &lt; 50ms"));
        assert!(html.contains(&format!("knee: capacity {cap}")));
        assert!(html.contains("Assumptions:"));
    }

    #[test]
    fn an_interrupted_search_keeps_its_completed_steps() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, mut search, results) = setup(dir.path());
        let mut runner = Synthetic {
            limit: 600,
            interrupt_at_step: Some(3),
        };
        let out = drive(&cfg, &mut search, &mut runner, results, &mut |_| {}).unwrap();
        assert!(out.interrupted);
        let on_disk: CapacityResults =
            serde_json::from_slice(&std::fs::read(dir.path().join("capacity.json")).unwrap())
                .unwrap();
        assert!(on_disk.interrupted);
        assert_eq!(
            on_disk.steps.iter().map(|s| s.load).collect::<Vec<_>>(),
            [50, 100, 200]
        );
    }
}

//! The scenario engine: starts the target, runs the simulated clients on
//! worker threads, aggregates their per-second metric intervals, samples
//! resources, shows the live view, and returns [`RunResults`].
//!
//! Stopping: Ctrl-C (SIGINT/SIGTERM), the target dying (unless a
//! `[[faults]]` entry stopped it), a target unreachable for longer than
//! `[run] max_unreachable`, or a failed stage (too many failed first
//! connects) stop the clients at once; the results still cover everything
//! measured and are marked interrupted with the reason. The other validity
//! rules (panics, `max_not_ready`) are judged on the results (`build`).

pub mod build;
pub mod client;
pub mod clock;
pub mod ctx;
pub mod drain;
pub mod faults;
pub mod ledger;
pub mod link;
pub mod live;
pub mod metrics;
pub mod offset;
pub mod pacing;
pub mod panic;
pub mod parts;
pub mod procs;
pub mod proctree;
pub mod readiness;
pub mod redis;
pub mod rng;
pub mod sampler;
pub mod schedule;
pub mod shard;
pub mod stream;
pub mod target;
pub mod timer;
pub mod tracker;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::results::RunResults;
use crate::scenario::Plan;
use build::{Collected, Second};
use metrics::{Interval, MetricId};
use worker::{RoomTotals, WorkerMsg};

/// How the engine presents itself; nothing here changes what is measured.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// No live view or progress lines.
    pub quiet: bool,
}

/// Connection attempts needed before a failure share can fail a stage.
const MIN_ATTEMPTS_TO_JUDGE: u64 = 10;
/// Extra time allowed after the drain for workers to finish.
const FINISH_GRACE: Duration = Duration::from_secs(10);
/// After a stop request, how long to wait for workers to report.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs a validated plan and returns its results. Must not be called from
/// inside a tokio runtime (it builds its own).
pub fn execute(plan: &Plan, opts: &EngineOptions) -> anyhow::Result<RunResults> {
    execute_with_dialect(plan, opts, crate::dialect::for_target(&plan.target)?)
}

/// [`execute`] with a given dialect instead of the plan's (tests wrap the
/// real one to inject faults the wire cannot, e.g. a panicking decoder).
pub fn execute_with_dialect(
    plan: &Plan,
    opts: &EngineOptions,
    dialect: Arc<dyn crate::dialect::Dialect>,
) -> anyhow::Result<RunResults> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the aggregator runtime")?;
    rt.block_on(run(plan, opts, dialect, parts::Mode::Local))
}

/// Runs one shard of a plan (`bench run --shard`, or a worker process of
/// `--processes`), streaming its records to the shard's sink.
pub fn execute_shard(
    plan: &Plan,
    opts: &EngineOptions,
    shard: &shard::ShardRun,
) -> anyhow::Result<RunResults> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the aggregator runtime")?;
    let dialect = crate::dialect::for_target(&plan.target)?;
    rt.block_on(run(plan, opts, dialect, parts::Mode::Shard(shard)))
}

/// Runs a plan on `procs.count` worker processes (`--processes`).
pub fn execute_processes(
    plan: &Plan,
    opts: &EngineOptions,
    procs: &procs::ProcsRun,
) -> anyhow::Result<RunResults> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the aggregator runtime")?;
    let dialect = crate::dialect::for_target(&plan.target)?;
    rt.block_on(run(plan, opts, dialect, parts::Mode::Coordinator(procs)))
}

/// The run's TLS client on a `wss://` target, trusting the bundled
/// server's throwaway certificate if it made one. `insecure` says so loudly.
fn tls_client(
    plan: &Plan,
    target: &target::Target,
) -> anyhow::Result<Option<link::tls::TlsClient>> {
    let Some(t) = &plan.target.tls else {
        return Ok(None);
    };
    if t.insecure {
        eprintln!(
            "WARNING: [target.tls] insecure = true: the server's certificate is NOT verified (recorded in results.json)"
        );
    }
    let extra: Vec<_> = target.self_signed.iter().map(|s| s.cert.clone()).collect();
    link::tls::TlsClient::new(t, &target.url.host, &extra).map(Some)
}

async fn run(
    plan: &Plan,
    opts: &EngineOptions,
    dialect: Arc<dyn crate::dialect::Dialect>,
    mode: parts::Mode<'_>,
) -> anyhow::Result<RunResults> {
    panic::quiet_hook();
    let mut live = live::LiveView::new(opts.quiet);
    let mut target = target::start_plan(&plan.target)?;
    let mut pids = plan.target.server_pids.clone();
    pids.extend(target.pid());
    let mut sampler = sampler::Sampler::new(pids, plan.target.server_process.as_deref());
    sampler.add_redis(plan.target.redis_pids.iter().copied());
    sampler.add_redis(target.redis.as_ref().and_then(|r| r.pid()));

    let (tx, mut rx) = mpsc::unbounded_channel();
    // Worker processes start first and everybody starts clients together.
    let mut start = parts::Start::prepare(&mode, &target, &tx)?;
    if let Some(p) = &start.procs {
        sampler.add_generators(p.pids());
    }
    start.wait(&target).await;
    let clock = clock::Clock::start_now();
    sampler.window_from(clock.start + Duration::from_secs(build::measure_after_s(plan)));
    let started_at = chrono::Utc::now().to_rfc3339();
    let host = format!("{}:{}", target.url.host, target.url.port);
    let tls = tls_client(plan, &target)?;
    let mut run_ctx = ctx::RunCtx::new(
        Arc::new(plan.clone()),
        dialect,
        target.addr,
        host,
        &target.url.path,
        clock,
    )
    .with_tls(tls);
    run_ctx.shard = mode.spec();
    let ctx = Arc::new(run_ctx);

    // Faults due at 0 s (a target down at start) happen before any client.
    let mut faults = faults::Faults::new(plan, clock.start);
    faults.at_start(&mut target, &mut sampler, &mut live);

    let threads = plan.run.workers.max(1);
    // Worker processes drain on their own: the coordinator runs no threads.
    let workers = start.procs.as_ref().map_or(threads, |_| 0);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drain, goal_rx) = drain::DrainCoord::new(workers, plan.rooms.count as usize);
    let mut handles = Vec::new();
    for w in 0..workers {
        handles.push(worker::spawn(
            ctx.clone(),
            w,
            workers,
            stop_rx.clone(),
            goal_rx.clone(),
            tx.clone(),
        )?);
    }
    drop(tx);

    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;

    let mut agg = Aggregator::new(workers, plan.rooms.count as usize, drain);
    agg.measure_after_s = build::measure_after_s(plan);
    let mut procs = start.attach(&mut agg, plan, &mode)?;
    let parts_total = procs.as_ref().map_or(workers, |p| p.count());
    let mut interrupted: Option<String> = None;
    let mut stop_deadline: Option<Instant> = None;
    let hard_end = clock.start + plan.duration() + plan.run.drain + FINISH_GRACE;
    // Finalize second k a little after the workers' tick for it.
    let mut tick = tokio::time::interval_at(
        (clock.start + Duration::from_millis(1_200)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused_streak = 0usize;

    while agg.done < parts_total {
        let mut reason: Option<String> = None;
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => agg.take(m),
                None => break,
            },
            _ = tick.tick() => {
                let sample = sampler.sample();
                let due = clock.start.elapsed().as_secs().saturating_sub(parts::LAG_S);
                refused_streak = on_tick(plan, &mut agg, &mut live, sample, due, refused_streak);
                reason = stop_reason(plan, &mut agg, &mut target, &clock, refused_streak);
                if Instant::now() > hard_end && interrupted.is_none() {
                    reason = Some("clients did not finish after the drain period".into());
                }
                if stop_deadline.is_some_and(|d| Instant::now() > d) {
                    live.note("workers did not stop in time; writing what was measured");
                    break;
                }
            }
            _ = faults.due() => {
                for fired in faults.fire(&mut target, &mut sampler) {
                    match fired {
                        faults::Fired::Note(n) => live.note(&n),
                        faults::Fired::Failed(why) => reason = Some(why),
                    }
                }
            }
            _ = sigint.recv() => reason = Some("interrupted (SIGINT)".into()),
            _ = sigterm.recv() => reason = Some("interrupted (SIGTERM)".into()),
        }
        if let Some(r) = reason {
            if interrupted.is_none() {
                live.note(&format!("stopping: {r}"));
                interrupted = Some(r);
                let _ = stop_tx.send(true);
                if let Some(p) = &procs {
                    p.stop();
                }
                stop_deadline = Some(Instant::now() + STOP_GRACE);
            } else {
                // A second signal: stop waiting.
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    while let Ok(m) = rx.try_recv() {
        agg.take(m);
    }
    let duration_s = clock.start.elapsed().as_secs_f64();
    let last_sample = sampler.sample();
    agg.finalize_all(last_sample);
    live.finish();
    if let Some(p) = &mut procs {
        p.finish(&mut agg);
    }
    target.stop();
    for h in handles {
        if h.is_finished() {
            let _ = h.join();
        }
    }
    // Every client has finished: what is still open was never delivered.
    let ledger_tail = ctx.ledger.as_ref().map(|l| l.finish()).unwrap_or_default();
    let run = Finished {
        started_at,
        duration_s,
        interrupted,
        ledger_tail,
    };
    assemble(plan, &sampler, agg, run)
}

/// Seconds that finished: each into the live view, and the count of
/// consecutive seconds of nothing but refused connects (returned).
fn on_tick(
    plan: &Plan,
    agg: &mut Aggregator,
    live: &mut live::LiveView,
    sample: sampler::Sample,
    due: u64,
    mut refused_streak: usize,
) -> usize {
    while let Some(iv) = agg.finalize_next(sample, due) {
        let c = &iv.counters;
        // A second of only refused connects, with nobody connected.
        refused_streak = if c.connections_failed.get("refused").copied().unwrap_or(0) > 0
            && c.connections_opened == 0
            && iv.connected == 0
        {
            refused_streak + 1
        } else {
            0
        };
        let snap = build::snapshot(plan, iv);
        live.update(&live::LiveLine {
            t: snap.t,
            stage: snap.stage,
            stages: plan.stages.len(),
            connected: snap.clients_connected,
            target: snap.clients_target,
            chat_per_s: snap.chat_sent,
            deliveries_per_s: snap.deliveries,
            p99_ms: agg.p99_so_far(),
            errors: agg.totals.counters.errors_total(),
        });
        if agg.parts.is_none() {
            break;
        }
    }
    refused_streak
}

/// Why the run must stop now, if it must: a dead worker process, no
/// ephemeral ports left, the target gone or refusing everything, or too
/// many first connection attempts failing.
fn stop_reason(
    plan: &Plan,
    agg: &mut Aggregator,
    target: &mut target::Target,
    clock: &clock::Clock,
    refused_streak: usize,
) -> Option<String> {
    if let Some(why) = agg.part_failure() {
        return Some(why);
    }
    if let Some(why) = agg.ports_exhausted() {
        return Some(why);
    }
    if let Some(st) = target.exited() {
        return Some(format!("the target server exited ({st})"));
    }
    if let Some(max) = plan
        .run
        .max_unreachable
        .filter(|m| refused_streak as f64 > m.as_secs_f64())
    {
        return Some(format!(
            "the target refused every connection for {refused_streak} s, longer than max_unreachable {}",
            wire::units::format_duration(max)
        ));
    }
    let share = plan.run.abort_on_connect_failure_share?;
    // Attempts of clients never ready yet, warm-up included: reconnects
    // after a drop are the scenario working.
    let (opened, failed) = agg.connects;
    let attempts = failed + opened;
    if attempts >= MIN_ATTEMPTS_TO_JUDGE && failed as f64 / attempts as f64 >= share {
        let t = clock.run_us(Instant::now());
        return Some(format!(
            "stage {} failed: {failed} of {attempts} first connection attempts failed",
            schedule::stage_at(&plan.stages, t) + 1
        ));
    }
    None
}

/// What the run loop knows at its end, besides the aggregate.
struct Finished {
    started_at: String,
    duration_s: f64,
    interrupted: Option<String>,
    /// Generator-side accounting: what was still open when every client finished.
    ledger_tail: ledger::Missing,
}

/// The aggregate, the samples and the end state become the run's results.
fn assemble(
    plan: &Plan,
    sampler: &sampler::Sampler,
    mut agg: Aggregator,
    run: Finished,
) -> anyhow::Result<RunResults> {
    let Finished {
        started_at,
        duration_s,
        interrupted,
        ledger_tail,
    } = run;
    let server_pids = sampler.server_pids();
    let processes = sampler.processes();
    let pacing = timer::pacing_stats(plan.run.pacing, &agg.pacing, duration_s);
    let (book, out) = (agg.parts.take(), agg.out.take());
    let instances: Vec<String> = agg.instances.iter().cloned().collect();
    let mut col = Collected {
        started_at,
        duration_s,
        interrupted,
        totals: agg.totals,
        seconds: agg.seconds,
        rooms: agg.rooms,
        ready: agg.ready,
        panics: agg.panics,
        instances: agg.instances.len(),
        server_pids,
        processes,
        shards: Vec::new(),
        invalid: Vec::new(),
        generator_processes: 1,
        ledger_tail,
    };
    parts::finish(&mut col, book, out, instances)?;
    let mut results = build::results(plan, col);
    results.generator.pacing = Some(pacing);
    Ok(results)
}

/// Merges worker intervals by second and into whole-run totals.
struct Aggregator {
    totals: Interval,
    pending: BTreeMap<u64, Interval>,
    seconds: Vec<Second>,
    next_second: u64,
    rooms: RoomTotals,
    done: usize,
    /// Connected clients per worker (latest), so partial seconds stay right.
    workers: usize,
    /// Intervals ending at or before this second stay out of `totals`
    /// (`run.measure_after`: a warm-up that whole-run metrics exclude).
    measure_after_s: u64,
    /// Attempts of clients never ready yet (ready, failed), warm-up included.
    connects: (u64, u64),
    ready: readiness::ReadyBook,
    panics: panic::PanicLog,
    /// Server instance ids seen in `welcome`, over all workers.
    instances: std::collections::BTreeSet<String>,
    drain: drain::DrainCoord,
    /// Each finished worker's pacing mode and timer counts.
    pacing: Vec<(timer::PacingMode, timer::TimerStats)>,
    /// Worker processes, or shards being merged (see `parts`).
    parts: Option<parts::PartBook>,
    /// This process's own record stream, when it runs as a shard.
    out: Option<parts::Out>,
}

impl Aggregator {
    fn new(workers: usize, rooms: usize, drain: drain::DrainCoord) -> Self {
        let mut totals = Interval::new(0);
        totals.parts = 0;
        Self {
            totals,
            pending: BTreeMap::new(),
            seconds: Vec::new(),
            next_second: 1,
            rooms: RoomTotals::new(rooms),
            done: 0,
            workers,
            measure_after_s: 0,
            connects: (0, 0),
            ready: readiness::ReadyBook::default(),
            panics: panic::PanicLog::default(),
            instances: Default::default(),
            drain,
            pacing: Vec::new(),
            parts: None,
            out: None,
        }
    }

    fn add(&mut self, iv: Interval) {
        self.connects.0 += iv.unready_ok;
        self.connects.1 += iv.unready_failed;
        // Parts' totals arrive exact in their `end`; theirs seconds only
        // feed the timeseries and the live view.
        if let Some(p) = &mut self.parts {
            p.running.merge(&iv);
        } else if iv.second > self.measure_after_s {
            self.totals.merge(&iv);
        }
        let second = iv.second.max(self.next_second);
        let mut iv = iv;
        // A late interval joins the second it is counted in.
        iv.second = second;
        match self.pending.get_mut(&second) {
            Some(p) => p.merge(&iv),
            None => {
                self.pending.insert(second, iv);
            }
        }
    }

    fn take(&mut self, m: WorkerMsg) {
        match m {
            WorkerMsg::Tick(iv) => self.add(*iv),
            WorkerMsg::Drain(w, report) => self.drain.report(w, report),
            WorkerMsg::Part(i, ev) => self.take_part(i, ev),
            WorkerMsg::Done(end) => {
                let end = *end;
                self.add(end.last);
                self.rooms.merge(&end.rooms);
                self.ready.merge(&end.ready);
                self.panics.merge(&end.panics);
                self.instances.extend(end.instances);
                self.pacing.push(end.pacing);
                self.done += 1;
            }
        }
    }

    /// Closes the oldest pending second with this resource sample. With
    /// parts, only once every running part has sent it (or it is older
    /// than `due`, so a stuck part cannot freeze the view).
    fn finalize_next(&mut self, sample: sampler::Sample, due: u64) -> Option<&Second> {
        let k = self.next_second;
        if !self.parts_ready(k) && k > due {
            return None;
        }
        let mut iv = self.pending.remove(&k)?;
        self.next_second = k + 1;
        let _ = self.workers;
        if let Some(c) = self.live_connected() {
            iv.connected = c;
        }
        self.emit(&iv, &sample);
        self.seconds.push(Second::new(iv, sample));
        self.seconds.last()
    }

    fn finalize_all(&mut self, sample: sampler::Sample) {
        let rest = std::mem::take(&mut self.pending);
        for (_, iv) in rest {
            self.emit(&iv, &sample);
            self.seconds.push(Second::new(iv, sample));
        }
    }

    fn p99_so_far(&self) -> Option<f64> {
        let totals = self.parts.as_ref().map_or(&self.totals, |p| &p.running);
        let h = totals.hist(MetricId::DeliveryLatency);
        (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
    }
}

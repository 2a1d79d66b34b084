//! Runs made of parts: this process as one shard (its record stream), the
//! coordinator of `--processes` (worker processes as parts, merged live),
//! and `bench merge` (shard files as parts, merged offline). The two merges
//! share one path: decoded [`Record`]s go through
//! [`Aggregator::take_part`], so a merge of shard files and a multi-process
//! run combine exactly the same way.
//!
//! Exactness: whole-run totals are each part's own `end` totals summed
//! (histogram addition), never re-derived from per-second data; seconds are
//! merged by their second number.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use super::build::Collected;
use super::metrics::Interval;
use super::procs::{PartEvent, Procs, ProcsRun};
use super::sampler::Sample;
use super::shard::{self, ShardRun, ShardSink, ShardSpec};
use super::stream::{self, ClockEstimate, Header, HistSettings, Record, ShardEnd};
use super::target::Target;
use super::worker::WorkerMsg;
use super::Aggregator;
use crate::results::ShardInfo;
use crate::scenario::Plan;

/// Seconds the coordinator waits for a lagging part before closing a second without it.
pub const LAG_S: u64 = 3;
/// Clock offsets of shards may differ by this much (plus the probes'
/// uncertainty, half of each round trip) before a merged run is flagged.
pub const CLOCK_SPREAD_BOUND_MS: f64 = 2.0;

/// How this process takes part in a run.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// One process, worker threads only.
    Local,
    /// One shard of a bigger run; records go to the shard's sink.
    Shard(&'a ShardRun),
    /// The coordinator of `--processes`.
    Coordinator(&'a ProcsRun),
}

impl Mode<'_> {
    /// The clients this process runs itself.
    pub fn spec(&self) -> ShardSpec {
        match self {
            Mode::Shard(r) => r.spec,
            _ => ShardSpec::WHOLE,
        }
    }
}

/// Before the clock starts: worker processes spawned, the agreed start.
pub struct Start {
    pub procs: Option<Procs>,
    start_at_ms: Option<u64>,
    clock: Option<ClockEstimate>,
    /// A shard estimates its clock offset to the target before starting.
    probe_clock: bool,
}

impl Start {
    pub fn prepare(
        mode: &Mode,
        target: &Target,
        tx: &mpsc::UnboundedSender<WorkerMsg>,
    ) -> anyhow::Result<Self> {
        Ok(match mode {
            Mode::Local => Self {
                procs: None,
                start_at_ms: None,
                clock: None,
                probe_clock: false,
            },
            Mode::Shard(r) => Self {
                procs: None,
                start_at_ms: r.start_at_ms,
                clock: None,
                probe_clock: true,
            },
            Mode::Coordinator(p) => {
                let at = shard::now_ms() + super::procs::SPAWN_MARGIN.as_millis() as u64;
                Self {
                    procs: Some(Procs::spawn(
                        p,
                        &target.url,
                        target
                            .self_signed
                            .as_ref()
                            .map(|s| s.cert_path())
                            .as_deref(),
                        at,
                        tx,
                    )?),
                    start_at_ms: Some(at),
                    clock: None,
                    probe_clock: false,
                }
            }
        })
    }

    /// A shard probes its clock offset, then everybody sleeps until the
    /// agreed start (if any, and not already past).
    pub async fn wait(&mut self, target: &Target) {
        if self.probe_clock {
            self.clock = super::offset::estimate(target).await;
        }
        if let Some(at) = self.start_at_ms {
            let now = shard::now_ms();
            if at > now {
                tokio::time::sleep(Duration::from_millis(at - now)).await;
            }
        }
    }

    /// After the clock started: the shard's stream opens with its header;
    /// the coordinator's book of parts is set up.
    pub(super) fn attach(
        self,
        agg: &mut Aggregator,
        plan: &Plan,
        mode: &Mode,
    ) -> anyhow::Result<Option<ProcsHandle>> {
        let started_at_ms = shard::now_ms();
        let late_ms = self
            .start_at_ms
            .map_or(0, |at| started_at_ms.saturating_sub(at));
        match mode {
            Mode::Local => Ok(None),
            Mode::Shard(r) => {
                let header = Header {
                    format: stream::FORMAT.into(),
                    version: stream::VERSION,
                    bench_version: env!("CARGO_PKG_VERSION").into(),
                    scenario_hash: shard::scenario_hash(plan),
                    seed: plan.seed,
                    shard: r.spec,
                    histogram: HistSettings::current(),
                    scenario: r.scenario.clone(),
                    start_at_ms: r.start_at_ms,
                    started_at_ms,
                    late_ms,
                    clock: self.clock,
                };
                let mut out = Out::open(&r.sink, r.spec)?;
                out.write(&Record::Header(Box::new(header)));
                agg.out = Some(out);
                Ok(None)
            }
            Mode::Coordinator(p) => {
                agg.parts = Some(PartBook::new(p.count, false));
                Ok(self.procs.map(|procs| ProcsHandle { procs }))
            }
        }
    }
}

/// The coordinator's worker processes while the run lasts.
pub struct ProcsHandle {
    procs: Procs,
}

impl ProcsHandle {
    pub fn count(&self) -> usize {
        self.procs.pids().len()
    }

    pub fn stop(&self) {
        self.procs.stop();
    }

    /// Reaps the workers and adds each dead one's exit status to its entry.
    pub(super) fn finish(&mut self, agg: &mut Aggregator) {
        let Some(book) = agg.parts.as_mut() else {
            return;
        };
        for (i, info) in book.infos.iter_mut().enumerate() {
            if info.status == "dead" {
                let st = self.procs.status(i, Duration::from_secs(2));
                let why = info.detail.clone().unwrap_or_default();
                info.detail = Some(format!("{why} ({st})"));
            }
        }
        self.procs.reap(Duration::from_secs(5));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartState {
    Running,
    Finished,
    Dead,
}

/// What the aggregator knows about each part.
pub struct PartBook {
    count: u32,
    state: Vec<PartState>,
    /// Highest second each part has sent.
    seen: Vec<u64>,
    /// Clients connected in each part's latest second (live merge: a
    /// second closed without a late part still counts its clients).
    connected: Vec<u64>,
    pub infos: Vec<ShardInfo>,
    clocks: Vec<Option<ClockEstimate>>,
    /// Seconds merged so far (the live p99; totals come from `end`s).
    pub running: Interval,
    /// A part died or stopped early: the run stops (taken once).
    alert: Option<String>,
    /// Per second, every part's resource sample (offline merge only).
    samples: Option<BTreeMap<u64, Vec<Sample>>>,
}

impl PartBook {
    pub fn new(count: u32, keep_samples: bool) -> Self {
        let mut running = Interval::new(0);
        running.parts = 0;
        Self {
            count,
            state: vec![PartState::Running; count as usize],
            seen: vec![0; count as usize],
            connected: vec![0; count as usize],
            infos: (0..count)
                .map(|index| ShardInfo {
                    index,
                    count,
                    status: "missing".into(),
                    ..ShardInfo::default()
                })
                .collect(),
            clocks: vec![None; count as usize],
            running,
            alert: None,
            samples: keep_samples.then(BTreeMap::new),
        }
    }

    fn name(&self, i: usize) -> String {
        format!("shard {i}/{}", self.count)
    }

    /// Reasons the merged run is invalid: dead or missing parts, late
    /// starts, clock offsets too far apart.
    fn invalid(&self) -> Vec<String> {
        let mut out = Vec::new();
        for info in &self.infos {
            let name = format!("shard {}/{}", info.index, info.count);
            match info.status.as_str() {
                "dead" => out.push(format!(
                    "{name} died: {}; the other shards' data is kept",
                    info.detail.as_deref().unwrap_or("no end record")
                )),
                "missing" => out.push(format!("{name} is missing: no shard file")),
                _ => {}
            }
            if info.late_ms > shard::LATE_START_TOLERANCE_MS {
                out.push(format!(
                    "{name} started {} ms after the agreed --start-at (tolerance {} ms)",
                    info.late_ms,
                    shard::LATE_START_TOLERANCE_MS
                ));
            }
        }
        out.extend(clock_spread(&self.clocks));
        out
    }
}

/// Flags shards whose clock offsets differ by more than the bound plus
/// the uncertainty of the two estimates.
pub fn clock_spread(clocks: &[Option<ClockEstimate>]) -> Option<String> {
    let known: Vec<(usize, ClockEstimate)> = clocks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    let mut worst: Option<(f64, usize, usize)> = None;
    for (a, ca) in &known {
        for (b, cb) in &known {
            let diff = (ca.offset_us - cb.offset_us) as f64 / 1000.0;
            let slack = CLOCK_SPREAD_BOUND_MS + (ca.rtt_us + cb.rtt_us) as f64 / 2000.0;
            if diff > slack && worst.is_none_or(|w| diff > w.0) {
                worst = Some((diff, *a, *b));
            }
        }
    }
    worst.map(|(d, a, b)| {
        format!(
            "clock offsets to the target differ by {d:.1} ms between shard {a} and shard {b} \
             (bound {CLOCK_SPREAD_BOUND_MS} ms plus probe uncertainty): cross-shard latencies are skewed by up to that much"
        )
    })
}

impl Aggregator {
    /// One event of part `i` (a worker process or a shard file).
    pub(super) fn take_part(&mut self, i: usize, ev: PartEvent) {
        let Some(book) = self.parts.as_mut() else {
            return;
        };
        if i >= book.state.len() {
            return;
        }
        match ev {
            PartEvent::Record(Record::Header(h)) => {
                let info = &mut book.infos[i];
                info.status = "ok".into();
                info.started_at_ms = h.started_at_ms;
                info.late_ms = h.late_ms;
                info.clock_offset_ms = h.clock.map(|c| c.offset_us as f64 / 1000.0);
                info.clock_rtt_ms = h.clock.map(|c| c.rtt_us as f64 / 1000.0);
                book.clocks[i] = h.clock;
            }
            PartEvent::Record(Record::Second(iv, sample)) => {
                book.seen[i] = book.seen[i].max(iv.second);
                book.connected[i] = iv.connected;
                if let Some(s) = &mut book.samples {
                    s.entry(iv.second).or_default().push(sample);
                }
                self.add(*iv);
            }
            PartEvent::Record(Record::End(end)) => self.part_end(i, *end),
            PartEvent::Closed(why) => {
                let book = self.parts.as_mut().expect("checked above");
                if book.state[i] == PartState::Running {
                    book.state[i] = PartState::Dead;
                    let why = why.unwrap_or_else(|| "ended without an end record".into());
                    book.alert = Some(format!("{} {why}", book.name(i)));
                    book.infos[i].status = "dead".into();
                    book.infos[i].detail = Some(why);
                    self.done += 1;
                }
            }
        }
    }

    fn part_end(&mut self, i: usize, end: ShardEnd) {
        self.totals.merge(&end.totals);
        self.rooms.merge(&end.rooms);
        self.ready.merge(&end.ready);
        self.panics.merge(&end.panics);
        self.instances.extend(end.instances);
        self.done += 1;
        let Some(book) = self.parts.as_mut() else {
            return;
        };
        book.state[i] = PartState::Finished;
        if let Some(r) = end.interrupted {
            book.infos[i].status = "interrupted".into();
            book.alert = Some(format!("{} stopped: {r}", book.name(i)));
            book.infos[i].detail = Some(r);
        }
    }

    /// Has every running part sent second `k`?
    pub(super) fn parts_ready(&self, k: u64) -> bool {
        self.parts.as_ref().is_none_or(|b| {
            b.state
                .iter()
                .zip(&b.seen)
                .all(|(s, &seen)| *s != PartState::Running || seen >= k)
        })
    }

    /// Live merge only (offline, every second is complete): the gauge of a
    /// closing second is each part's latest, since a part whose second
    /// arrives late would otherwise be missing from one second and
    /// counted twice in the next.
    pub(super) fn live_connected(&self) -> Option<u64> {
        let b = self.parts.as_ref()?;
        b.samples.is_none().then(|| b.connected.iter().sum())
    }

    /// A part died or stopped early (once): the whole run stops.
    pub(super) fn part_failure(&mut self) -> Option<String> {
        self.parts.as_mut()?.alert.take()
    }

    /// Connects failing with EADDRNOTAVAIL: the ephemeral ports of the
    /// source addresses in use are exhausted. One clear reason instead of
    /// a pile of connect failures.
    pub(super) fn ports_exhausted(&self) -> Option<String> {
        let last = self.seconds.last()?;
        let n = last
            .counters
            .connections_failed
            .get("addr_unavailable")
            .copied()
            .unwrap_or(0);
        (n > 0).then(|| {
            format!(
                "ran out of local ports: {n} connection attempt(s) failed with EADDRNOTAVAIL in second {}; \
                 spread the clients over more source addresses with `[run] source_addresses` \
                 (e.g. source_addresses = \"127.0.0.0/24\" on loopback)",
                last.second
            )
        })
    }

    /// This process's finalized second goes into its own record stream.
    pub(super) fn emit(&mut self, iv: &Interval, sample: &Sample) {
        if let Some(out) = &mut self.out {
            out.write_line(&stream::encode_second(iv, sample));
            out.seconds += 1;
            if out.die_after_first && out.seconds == 1 {
                // The dead-worker test: a worker crashing mid-run.
                std::process::abort();
            }
        }
    }
}

/// A shard's own record stream (stdout of a worker process, or a file).
pub struct Out {
    w: Box<dyn Write + Send>,
    /// (partial path, final path) of a shard file.
    file: Option<(PathBuf, PathBuf)>,
    failed: Option<std::io::Error>,
    seconds: u64,
    die_after_first: bool,
}

impl Out {
    fn open(sink: &ShardSink, spec: ShardSpec) -> anyhow::Result<Self> {
        let die_after_first = matches!(sink, ShardSink::Stdout)
            && std::env::var(super::procs::DIE_ENV).ok() == Some(spec.index.to_string());
        let (w, file): (Box<dyn Write + Send>, _) = match sink {
            ShardSink::Stdout => (Box::new(std::io::stdout()), None),
            ShardSink::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let partial = path.with_extension("partial");
                let f = std::fs::File::create(&partial)
                    .with_context(|| format!("cannot write {}", partial.display()))?;
                (
                    Box::new(std::io::BufWriter::new(f)),
                    Some((partial, path.clone())),
                )
            }
        };
        Ok(Self {
            w,
            file,
            failed: None,
            seconds: 0,
            die_after_first,
        })
    }

    fn write(&mut self, r: &Record) {
        self.write_line(&stream::encode(r));
    }

    fn write_line(&mut self, line: &str) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self
            .w
            .write_all(line.as_bytes())
            .and_then(|_| self.w.flush())
        {
            self.failed = Some(e);
        }
    }

    /// Writes `end` and, for a file, moves it into place.
    fn close(mut self, end: ShardEnd) -> anyhow::Result<Option<PathBuf>> {
        self.write(&Record::End(Box::new(end)));
        if let Some(e) = self.failed.take() {
            return Err(e).context("cannot write the shard stream");
        }
        drop(self.w);
        match self.file {
            Some((partial, path)) => {
                std::fs::rename(&partial, &path)
                    .with_context(|| format!("cannot move the shard file to {}", path.display()))?;
                Ok(Some(path))
            }
            None => Ok(None),
        }
    }
}

/// After the run: a shard writes its `end`; a coordinator's parts become
/// the results' `shards` and validity reasons.
pub fn finish(
    col: &mut Collected,
    book: Option<PartBook>,
    out: Option<Out>,
    instances: Vec<String>,
) -> anyhow::Result<()> {
    if let Some(out) = out {
        let end = ShardEnd {
            totals: col.totals.clone(),
            rooms: col.rooms.clone(),
            ready: col.ready.clone(),
            panics: col.panics.clone(),
            instances,
            interrupted: col.interrupted.clone(),
            duration_s: col.duration_s,
            started_at: col.started_at.clone(),
        };
        if let Some(path) = out.close(end)? {
            eprintln!("shard file: {}", path.display());
        }
    }
    if let Some(book) = book {
        col.invalid.extend(book.invalid());
        col.generator_processes = book.count as usize;
        col.shards = book.infos;
    }
    Ok(())
}

/// One shard as `bench merge` read it.
pub struct ShardFile {
    pub header: Header,
    /// Seconds and (when it finished) `end`, in file order.
    pub records: Vec<Record>,
}

/// `bench merge`: the shards through the same [`Aggregator::take_part`]
/// path as a multi-process run. Shards absent from `files` count as
/// missing; shards without `end` as dead.
pub fn merge_files(plan: &Plan, count: u32, files: Vec<ShardFile>) -> Collected {
    let (drain, _goal) = super::drain::DrainCoord::new(0, plan.rooms.count as usize);
    let mut agg = Aggregator::new(0, plan.rooms.count as usize, drain);
    agg.measure_after_s = super::build::measure_after_s(plan);
    agg.parts = Some(PartBook::new(count, true));
    let mut started_at: Option<String> = None;
    let mut duration_s: f64 = 0.0;
    let mut reasons = Vec::new();
    for f in files {
        let i = f.header.shard.index as usize;
        agg.take_part(i, PartEvent::Record(Record::Header(Box::new(f.header))));
        for r in f.records {
            if let Record::End(e) = &r {
                duration_s = duration_s.max(e.duration_s);
                if started_at.as_ref().is_none_or(|s| e.started_at < *s) {
                    started_at = Some(e.started_at.clone());
                }
                if let Some(why) = &e.interrupted {
                    reasons.push(format!("shard {i}/{count}: {why}"));
                }
            }
            agg.take_part(i, PartEvent::Record(r));
        }
        agg.take_part(i, PartEvent::Closed(None));
    }
    let mut book = agg.parts.take().expect("set above");
    let samples = book.samples.take().unwrap_or_default();
    let keys: Vec<u64> = agg.pending.keys().copied().collect();
    for k in keys {
        agg.next_second = k;
        let sample = samples
            .get(&k)
            .map_or_else(Sample::default, |s| Sample::combine(s));
        agg.finalize_next(sample, u64::MAX);
    }
    let instances = agg.instances.len();
    let mut col = Collected {
        started_at: started_at.unwrap_or_default(),
        duration_s,
        interrupted: (!reasons.is_empty()).then(|| reasons.join("; ")),
        totals: agg.totals,
        seconds: agg.seconds,
        rooms: agg.rooms,
        ready: agg.ready,
        panics: agg.panics,
        instances,
        server_pids: Vec::new(),
        processes: Vec::new(),
        shards: Vec::new(),
        invalid: Vec::new(),
        generator_processes: count as usize,
        ledger_tail: Default::default(),
    };
    col.invalid.extend(book.invalid());
    col.shards = std::mem::take(&mut book.infos);
    col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(offset_us: i64, rtt_us: u64) -> Option<ClockEstimate> {
        Some(ClockEstimate {
            offset_us,
            rtt_us,
            probes: 5,
        })
    }

    #[test]
    fn clock_spread_beyond_bound_and_uncertainty_is_flagged() {
        assert!(clock_spread(&[est(0, 100), est(1_500, 100), None]).is_none());
        let why = clock_spread(&[est(0, 100), est(50_000, 100)]).unwrap();
        assert!(why.contains("50.0 ms between shard 1 and shard 0"), "{why}");
        // A wide probe round trip widens the slack: 3 ms apart, ±2 ms each.
        assert!(clock_spread(&[est(0, 4_000), est(3_000, 4_000)]).is_none());
    }
}

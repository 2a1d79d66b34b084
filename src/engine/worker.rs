//! A worker: one OS thread with a single-threaded tokio runtime that owns a
//! shard of the clients (client `i` belongs to worker `i % workers`) and one
//! lock-free [`Recorder`]. Every second it sends the aggregator an
//! [`Interval`]; at the end, its last interval plus its room totals.
//!
//! Workers only talk to the aggregator through [`WorkerMsg`], which is what
//! lets worker *processes* replace threads later.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::client::{self, RunCtxRef};
use super::ctx::RunCtx;
use super::drain::{DrainBook, DrainGoal, DrainReport, PROBE};
use super::metrics::{Interval, Recorder};
use super::panic::PanicLog;
use super::readiness::ReadyBook;
use super::timer::{PacingMode, TimerStats, WorkerTimer};

/// Per-room numbers for tail-loss accounting; merged by elementwise sum/max.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RoomTotals {
    /// Highest seq any of our senders got acked, per room.
    pub max_acked: Vec<u64>,
    /// Receivers still joined after the drain, per room.
    pub receivers: Vec<u64>,
    /// Sum of those receivers' last seqs, per room.
    pub sum_last: Vec<u64>,
    /// Highest last seq among them, per room.
    pub max_last: Vec<u64>,
    /// Server restarts seen per room (the epoch the numbers above belong to).
    pub epoch: Vec<u32>,
    /// Highest seq this worker's receivers saw in the current epoch.
    pub seen_top: Vec<u64>,
    /// The top seq of the epoch before the last restart (max of acked and seen).
    pub old_top: Vec<u64>,
}

impl RoomTotals {
    pub fn new(rooms: usize) -> Self {
        Self {
            max_acked: vec![0; rooms],
            receivers: vec![0; rooms],
            sum_last: vec![0; rooms],
            max_last: vec![0; rooms],
            epoch: vec![0; rooms],
            seen_top: vec![0; rooms],
            old_top: vec![0; rooms],
        }
    }

    /// A receiver got `seq` in `room` (for the restart accounting).
    #[inline]
    pub fn saw(&mut self, room: u32, seq: u64) {
        if let Some(m) = self.seen_top.get_mut(room as usize) {
            *m = (*m).max(seq);
        }
    }

    /// A receiver tracking `room` in epoch `seen` saw its seqs start over.
    /// The first such receiver opens a new epoch: the room's top seq so far
    /// (what the old server's history reached, as far as this worker knows)
    /// is kept, and acks start over. Returns (old top, new epoch).
    pub fn restarted(&mut self, room: u32, seen: u32) -> (u64, u32) {
        let r = room as usize;
        if r >= self.epoch.len() {
            return (0, seen);
        }
        if seen >= self.epoch[r] {
            self.old_top[r] = self.max_acked[r].max(self.seen_top[r]);
            self.max_acked[r] = 0;
            self.seen_top[r] = 0;
            self.epoch[r] = seen + 1;
        }
        (self.old_top[r], self.epoch[r])
    }

    pub fn current_epoch(&self, room: u32) -> u32 {
        self.epoch.get(room as usize).copied().unwrap_or(0)
    }

    pub fn acked(&mut self, room: u32, seq: u64) {
        if let Some(m) = self.max_acked.get_mut(room as usize) {
            *m = (*m).max(seq);
        }
    }

    pub fn add_receiver(&mut self, room: u32, last: u64) {
        let r = room as usize;
        if r < self.receivers.len() {
            self.receivers[r] += 1;
            self.sum_last[r] += last;
            self.max_last[r] = self.max_last[r].max(last);
        }
    }

    pub fn merge(&mut self, o: &RoomTotals) {
        for r in 0..self.max_acked.len().min(o.max_acked.len()) {
            // Seq tops of an older server epoch say nothing about the newer one.
            if o.epoch[r] > self.epoch[r] {
                self.epoch[r] = o.epoch[r];
                self.max_acked[r] = o.max_acked[r];
                self.max_last[r] = o.max_last[r];
            } else if o.epoch[r] == self.epoch[r] {
                self.max_acked[r] = self.max_acked[r].max(o.max_acked[r]);
                self.max_last[r] = self.max_last[r].max(o.max_last[r]);
            }
            self.receivers[r] += o.receivers[r];
            self.sum_last[r] += o.sum_last[r];
        }
    }

    /// Deliveries owed to receivers still joined at the end but never seen:
    /// per room, every receiver should have reached the highest seq known.
    pub fn tail_lost(&self) -> u64 {
        (0..self.receivers.len())
            .map(|r| {
                let top = self.max_acked[r].max(self.max_last[r]);
                (self.receivers[r] * top).saturating_sub(self.sum_last[r])
            })
            .sum()
    }
}

/// What a worker's clients share (single-threaded: `RefCell`, no locks).
pub struct WorkerState {
    pub rec: RefCell<Recorder>,
    pub rooms: RefCell<RoomTotals>,
    pub drain: RefCell<DrainBook>,
    /// The aggregator's current drain goal.
    pub goal: watch::Receiver<DrainGoal>,
    /// Client stride of this worker (workers × shards): client `i` is
    /// local index `i / workers` here.
    pub workers: u32,
    /// Readiness of this worker's clients, recorded as each one finishes.
    pub ready: RefCell<ReadyBook>,
    pub panics: RefCell<PanicLog>,
    /// Server instance ids seen in `welcome` (bounded; see `MAX_INSTANCES`).
    pub instances: RefCell<BTreeSet<String>>,
    /// Session timers (the send schedule), see `engine::timer`.
    pub timer: WorkerTimer,
}

/// Distinct server instance ids a worker remembers.
pub const MAX_INSTANCES: usize = 64;

pub enum WorkerMsg {
    Tick(Box<Interval>),
    /// After the last stage: this worker's drain state (worker index, report).
    Drain(usize, DrainReport),
    Done(Box<WorkerEnd>),
    /// From worker process (or merged shard) `i`: see `procs`.
    Part(usize, super::procs::PartEvent),
}

/// What a worker reports once all its clients have finished.
pub struct WorkerEnd {
    pub last: Interval,
    pub rooms: RoomTotals,
    pub ready: ReadyBook,
    pub panics: PanicLog,
    pub instances: BTreeSet<String>,
    /// The pacing mode this worker ran in and what its timer did.
    pub pacing: (PacingMode, TimerStats),
}

/// Starts worker `w` of `n` on its own thread.
pub fn spawn(
    ctx: Arc<RunCtx>,
    w: usize,
    n: usize,
    stop: watch::Receiver<bool>,
    goal: watch::Receiver<DrainGoal>,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("bench-worker-{w}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: worker {w} cannot start its runtime: {e}");
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(ctx, w, n, stop, goal, tx));
        })
}

async fn run(
    ctx: Arc<RunCtx>,
    w: usize,
    n: usize,
    stop: watch::Receiver<bool>,
    goal: watch::Receiver<DrainGoal>,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) {
    let peak = ctx.plan.peak_clients();
    // This worker's clients within this process's shard (see `shard`).
    let (first, stride) = ctx.shard.worker_slice(w, n);
    let local_clients = (peak as usize).div_ceil(stride as usize);
    let timer = WorkerTimer::new(ctx.plan.run.pacing);
    if timer.mode() != ctx.plan.run.pacing {
        eprintln!(
            "warning: worker {w} cannot create a timerfd; pacing falls back to tokio timers (1 ms)"
        );
    }
    tokio::task::spawn_local(timer.clone().drive());
    let state = Rc::new(WorkerState {
        rec: RefCell::new(Recorder::new()),
        rooms: RefCell::new(RoomTotals::new(ctx.room_names.len())),
        drain: RefCell::new(DrainBook::new(local_clients, ctx.room_names.len())),
        goal,
        workers: stride,
        ready: RefCell::new(ReadyBook::new(ctx.plan.stages.len())),
        panics: RefCell::new(PanicLog::default()),
        instances: RefCell::new(BTreeSet::new()),
        timer,
    });
    let shared = Rc::new(RunCtxRef(ctx.clone()));
    let mut clients = tokio::task::JoinSet::new();
    for i in (first..peak).step_by(stride as usize) {
        clients.spawn_local(client::run(shared.clone(), state.clone(), i, stop.clone()));
    }
    // Per-second intervals, aligned with the run start.
    let mut second = 1u64;
    let mut tick = tokio::time::interval_at(
        (ctx.clock.start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Drain reports from the end of the last stage on.
    let mut probe = tokio::time::interval_at(ctx.clock.instant_of_run_us(ctx.end_us).into(), PROBE);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let report = |state: &WorkerState| {
        let gen = state.goal.borrow().gen;
        state
            .drain
            .borrow()
            .report(gen, &state.rooms.borrow().max_acked)
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {
                second += 1;
                if let Some(l) = &ctx.ledger {
                    // Deliveries still missing after the window: lost.
                    let m = l.expire(w, ctx.clock.now_epoch_us());
                    let mut rec = state.rec.borrow_mut();
                    rec.counters().lost += m.lost;
                    rec.counters().leave_races += m.leave_races;
                }
                let iv = state.rec.borrow_mut().rotate(second);
                let _ = tx.send(WorkerMsg::Tick(Box::new(iv)));
            }
            _ = probe.tick() => {
                let _ = tx.send(WorkerMsg::Drain(w, report(&state)));
            }
            done = clients.join_next() => match done {
                None => break,
                // Clients catch their own panics; this is the last resort.
                Some(Err(e)) if e.is_panic() => {
                    let msg = super::panic::message(e.into_panic().as_ref());
                    state.panics.borrow_mut().add(msg);
                    let mut rec = state.rec.borrow_mut();
                    Recorder::count_in(&mut rec.counters().errors, "panic");
                }
                Some(_) => {}
            }
        }
    }
    // Every client has finished: nobody here is draining any more.
    let _ = tx.send(WorkerMsg::Drain(w, report(&state)));
    let last = state.rec.borrow_mut().rotate(second + 1);
    let end = WorkerEnd {
        last,
        rooms: state.rooms.borrow().clone(),
        ready: state.ready.borrow().clone(),
        panics: state.panics.borrow().clone(),
        instances: state.instances.borrow().clone(),
        pacing: (state.timer.mode(), state.timer.stats()),
    };
    let _ = tx.send(WorkerMsg::Done(Box::new(end)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restart opens a new epoch once per room; the old epoch's tops
    /// never leak into the new one's tail loss, even across workers.
    #[test]
    fn restarts_keep_epochs_apart() {
        let mut a = RoomTotals::new(1);
        let mut b = RoomTotals::new(1);
        a.acked(0, 500);
        a.saw(0, 498);
        b.acked(0, 499);
        // Two receivers of worker a see the restart: one new epoch.
        assert_eq!(a.restarted(0, 0), (500, 1));
        assert_eq!(a.restarted(0, 0), (500, 1));
        assert_eq!(a.current_epoch(0), 1);
        a.acked(0, 7);
        a.add_receiver(0, 7);
        // Worker b never saw the restart: its old top must not count.
        a.merge(&b);
        assert_eq!(a.tail_lost(), 0);
        assert_eq!(a.max_acked[0], 7);
    }

    #[test]
    fn tail_loss_merges_across_workers() {
        let mut a = RoomTotals::new(2);
        let mut b = RoomTotals::new(2);
        a.acked(0, 10);
        a.add_receiver(0, 10);
        a.add_receiver(0, 7); // 3 behind
        b.add_receiver(0, 9); // 1 behind
        b.add_receiver(1, 4); // nobody acked more, but a receiver saw 5
        b.add_receiver(1, 5);
        a.merge(&b);
        assert_eq!(a.tail_lost(), 3 + 1 + 1);
    }
}

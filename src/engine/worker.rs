//! A worker: one OS thread with a single-threaded tokio runtime that owns a
//! shard of the clients (client `i` belongs to worker `i % workers`) and one
//! lock-free [`Recorder`]. Every second it sends the aggregator an
//! [`Interval`]; at the end, its last interval plus its room totals.
//!
//! Workers only talk to the aggregator through [`WorkerMsg`], which is what
//! lets worker *processes* replace threads later.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::client::{self, RunCtxRef};
use super::ctx::RunCtx;
use super::metrics::{Interval, Recorder};

/// Per-room numbers for tail-loss accounting; merged by elementwise sum/max.
#[derive(Debug, Clone, Default)]
pub struct RoomTotals {
    /// Highest seq any of our senders got acked, per room.
    pub max_acked: Vec<u64>,
    /// Receivers still joined after the drain, per room.
    pub receivers: Vec<u64>,
    /// Sum of those receivers' last seqs, per room.
    pub sum_last: Vec<u64>,
    /// Highest last seq among them, per room.
    pub max_last: Vec<u64>,
}

impl RoomTotals {
    pub fn new(rooms: usize) -> Self {
        Self {
            max_acked: vec![0; rooms],
            receivers: vec![0; rooms],
            sum_last: vec![0; rooms],
            max_last: vec![0; rooms],
        }
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
            self.max_acked[r] = self.max_acked[r].max(o.max_acked[r]);
            self.receivers[r] += o.receivers[r];
            self.sum_last[r] += o.sum_last[r];
            self.max_last[r] = self.max_last[r].max(o.max_last[r]);
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
}

pub enum WorkerMsg {
    Tick(Box<Interval>),
    Done(Box<Interval>, RoomTotals),
}

/// Starts worker `w` of `n` on its own thread.
pub fn spawn(
    ctx: Arc<RunCtx>,
    w: usize,
    n: usize,
    stop: watch::Receiver<bool>,
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
            local.block_on(&rt, run(ctx, w, n, stop, tx));
        })
}

async fn run(
    ctx: Arc<RunCtx>,
    w: usize,
    n: usize,
    stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) {
    let state = Rc::new(WorkerState {
        rec: RefCell::new(Recorder::new()),
        rooms: RefCell::new(RoomTotals::new(ctx.room_names.len())),
    });
    let shared = Rc::new(RunCtxRef(ctx.clone()));
    let peak = ctx.plan.peak_clients();
    let mut clients = tokio::task::JoinSet::new();
    for i in (w as u32..peak).step_by(n.max(1)) {
        clients.spawn_local(client::run(shared.clone(), state.clone(), i, stop.clone()));
    }
    // Per-second intervals, aligned with the run start.
    let mut second = 1u64;
    let mut tick = tokio::time::interval_at(
        (ctx.clock.start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                second += 1;
                let iv = state.rec.borrow_mut().rotate(second);
                let _ = tx.send(WorkerMsg::Tick(Box::new(iv)));
            }
            done = clients.join_next() => {
                if done.is_none() {
                    break;
                }
            }
        }
    }
    let last = state.rec.borrow_mut().rotate(second + 1);
    let rooms = state.rooms.borrow().clone();
    let _ = tx.send(WorkerMsg::Done(Box::new(last), rooms));
}

//! The adaptive drain: after the last stage, clients stop sending and keep
//! receiving only until every still-joined receiver has caught up to the
//! highest seq known in each of its rooms, or until `[run] drain` expires.
//!
//! Coordination goes through messages only, so workers can become processes:
//! - each draining client marks itself in its worker's [`DrainBook`] as
//!   caught up (against a goal generation) or behind, every [`PROBE`];
//! - each worker sends the aggregator a [`DrainReport`] every [`PROBE`]:
//!   per-room tops (highest seq acked to its senders or seen by its
//!   receivers) and how many of its drainers are behind the current goal;
//! - the aggregator ([`DrainCoord`]) merges the tops into a [`DrainGoal`];
//!   when the tops grow it publishes a new generation, and once every worker
//!   reports no drainer behind the current generation it publishes `done`.
//!
//! A client with chats still waiting for their ack counts as behind: the
//! tops are not final while a chat is in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How often draining clients re-check themselves and workers report.
pub const PROBE: Duration = Duration::from_millis(100);

/// What the aggregator publishes to every worker during the drain.
#[derive(Debug, Clone, Default)]
pub struct DrainGoal {
    /// Bumped whenever `top` grows.
    pub gen: u64,
    /// Per room: the highest seq any sender got acked or any receiver saw.
    pub top: Arc<Vec<u64>>,
    /// Every receiver caught up: clients stop draining now.
    pub done: bool,
}

/// Drain status of one client in its worker's book.
const NOT_DRAINING: u64 = 0;
const BEHIND: u64 = 1;
/// `CAUGHT_UP + gen`: caught up against goal generation `gen`.
const CAUGHT_UP: u64 = 2;

/// Per-worker drain bookkeeping, written by its clients (single-threaded).
#[derive(Debug, Clone, Default)]
pub struct DrainBook {
    /// Status per local client index (`client / workers`).
    status: Vec<u64>,
    /// Per room: the highest seq this worker's draining receivers saw.
    seen: Vec<u64>,
}

impl DrainBook {
    pub fn new(clients: usize, rooms: usize) -> Self {
        Self {
            status: vec![NOT_DRAINING; clients],
            seen: vec![0; rooms],
        }
    }

    /// This client will drain at the end of the last stage (it is ready in
    /// the final window) but has not checked itself yet.
    pub fn will_drain(&mut self, local: usize) {
        if let Some(s) = self.status.get_mut(local) {
            *s = BEHIND;
        }
    }

    /// This client no longer drains (left, dropped or finished).
    pub fn gone(&mut self, local: usize) {
        if let Some(s) = self.status.get_mut(local) {
            *s = NOT_DRAINING;
        }
    }

    /// A draining client's check against goal generation `gen`.
    pub fn checked(&mut self, local: usize, gen: u64, caught_up: bool) {
        if let Some(s) = self.status.get_mut(local) {
            *s = if caught_up { CAUGHT_UP + gen } else { BEHIND };
        }
    }

    pub fn saw(&mut self, room: u32, seq: u64) {
        if let Some(s) = self.seen.get_mut(room as usize) {
            *s = (*s).max(seq);
        }
    }

    /// The worker's report against goal generation `gen`; `acked` is its
    /// senders' highest acked seq per room.
    pub fn report(&self, gen: u64, acked: &[u64]) -> DrainReport {
        let draining = self.status.iter().filter(|&&s| s != NOT_DRAINING).count() as u64;
        let behind = self
            .status
            .iter()
            .filter(|&&s| s != NOT_DRAINING && s != CAUGHT_UP + gen)
            .count() as u64;
        let top = self
            .seen
            .iter()
            .zip(acked.iter().chain(std::iter::repeat(&0)))
            .map(|(&s, &a)| s.max(a))
            .collect();
        DrainReport {
            gen,
            draining,
            behind,
            top,
        }
    }
}

/// One worker's drain state, as the aggregator sees it.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// The goal generation the counts were made against.
    pub gen: u64,
    pub draining: u64,
    /// Draining clients not (yet) caught up against `gen`.
    pub behind: u64,
    /// Per room: highest seq acked or seen in this worker.
    pub top: Vec<u64>,
}

/// The aggregator's side: merges reports, publishes goals.
pub struct DrainCoord {
    tx: watch::Sender<DrainGoal>,
    reports: Vec<Option<DrainReport>>,
    top: Vec<u64>,
    gen: u64,
    done: bool,
}

impl DrainCoord {
    pub fn new(workers: usize, rooms: usize) -> (Self, watch::Receiver<DrainGoal>) {
        let (tx, rx) = watch::channel(DrainGoal {
            gen: 0,
            top: Arc::new(vec![0; rooms]),
            done: false,
        });
        let coord = Self {
            tx,
            reports: vec![None; workers],
            top: vec![0; rooms],
            gen: 0,
            done: false,
        };
        (coord, rx)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes worker `w`'s report; publishes a new goal or `done` as due.
    pub fn report(&mut self, w: usize, rep: DrainReport) {
        let mut grew = false;
        for (t, &r) in self.top.iter_mut().zip(&rep.top) {
            if r > *t {
                *t = r;
                grew = true;
            }
        }
        if let Some(slot) = self.reports.get_mut(w) {
            *slot = Some(rep);
        }
        if self.done {
            return;
        }
        if grew {
            self.gen += 1;
            let goal = DrainGoal {
                gen: self.gen,
                top: Arc::new(self.top.clone()),
                done: false,
            };
            let _ = self.tx.send(goal);
            return;
        }
        let settled = self.reports.iter().all(|r| {
            r.as_ref()
                .is_some_and(|r| r.draining == 0 || (r.gen == self.gen && r.behind == 0))
        });
        if settled {
            self.done = true;
            self.tx.send_modify(|g| g.done = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_only_when_every_worker_caught_up_with_the_latest_goal() {
        let (mut coord, rx) = DrainCoord::new(2, 1);
        let mut a = DrainBook::new(2, 1);
        let mut b = DrainBook::new(1, 1);
        a.will_drain(0);
        a.will_drain(1);
        b.will_drain(0);
        // Worker a's sender got seq 5 acked: a new goal, nobody done.
        coord.report(0, a.report(0, &[5]));
        assert_eq!((rx.borrow().gen, rx.borrow().top[0]), (1, 5));
        a.checked(0, 1, true);
        a.checked(1, 1, true);
        coord.report(0, a.report(1, &[5]));
        // Worker b has not reported yet.
        assert!(!coord.is_done());
        b.checked(0, 1, false);
        coord.report(1, b.report(1, &[0]));
        assert!(!coord.is_done());
        // b's receiver reaches 5, checked against an older goal: still behind.
        b.checked(0, 0, true);
        coord.report(1, b.report(1, &[0]));
        assert!(!coord.is_done());
        b.checked(0, 1, true);
        b.saw(0, 5);
        coord.report(1, b.report(1, &[0]));
        assert!(coord.is_done() && rx.borrow().done);
    }

    #[test]
    fn a_worker_without_drainers_never_blocks_and_a_higher_seen_seq_raises_the_goal() {
        let (mut coord, rx) = DrainCoord::new(2, 2);
        let idle = DrainBook::new(3, 2);
        coord.report(1, idle.report(0, &[0, 0]));
        let mut a = DrainBook::new(1, 2);
        a.will_drain(0);
        a.saw(1, 9);
        coord.report(0, a.report(0, &[0, 0]));
        assert_eq!(rx.borrow().top.as_slice(), &[0, 9]);
        a.checked(0, 1, true);
        coord.report(0, a.report(1, &[0, 0]));
        assert!(coord.is_done());
    }
}

//! `[[faults]]`: what bench does to the server it started, on the run's
//! clock. Each fault is a stop (SIGKILL for `kill`; SIGTERM for
//! `restart_graceful`, on which the bundled server closes every connection
//! with 1012) and, with `restart_after`, a start of the same server with the
//! same flags on the same address. A stopped server's exit is planned, so
//! it does not stop the run; the clients' reconnects and the validity rules
//! (`max_unreachable`, `max_not_ready`) judge what follows.
//!
//! Later fault kinds (killing one node of a multi-process server) add
//! actions here; the event list stays the same shape.

use std::time::Instant;

use super::live::LiveView;
use super::sampler::Sampler;
use super::target::Target;
use crate::scenario::{FaultAction, Plan};

/// How long a server stopped at 0 s may take to exit before clients start.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
enum Event {
    Stop(FaultAction),
    Start,
}

/// The run's fault events in time order, and how far it has got.
pub struct Faults {
    events: Vec<(Instant, Event)>,
    next: usize,
}

/// What firing an event did, for the live view (and the run's stop reason).
pub enum Fired {
    Note(String),
    /// The server could not be started again: the run cannot go on.
    Failed(String),
}

impl Faults {
    pub fn new(plan: &Plan, start: Instant) -> Self {
        let mut events = Vec::new();
        for f in &plan.faults {
            events.push((start + f.at, Event::Stop(f.action)));
            if let Some(after) = f.restart_after {
                events.push((start + f.at + after, Event::Start));
            }
        }
        events.sort_by_key(|(t, _)| *t);
        Self { events, next: 0 }
    }

    /// When the next event is due (`None`: no more).
    pub fn next_at(&self) -> Option<Instant> {
        self.events.get(self.next).map(|(t, _)| *t)
    }

    /// Waits for the next event (forever when there is none). Cancel-safe.
    pub async fn due(&self) {
        match self.next_at() {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    }

    /// Fires the events due at the very start and waits (bounded) for a
    /// stopped server to be gone, so no client reaches it.
    pub fn at_start(&mut self, target: &mut Target, sampler: &mut Sampler, live: &mut LiveView) {
        if self.next_at().is_some_and(|t| t <= Instant::now()) {
            for fired in self.fire(target, sampler) {
                let (Fired::Note(n) | Fired::Failed(n)) = fired;
                live.note(&n);
            }
            target.wait_exit(START_WAIT);
        }
    }

    /// Fires every event that is due.
    pub fn fire(&mut self, target: &mut Target, sampler: &mut Sampler) -> Vec<Fired> {
        let mut out = Vec::new();
        while let Some(&(t, ev)) = self.events.get(self.next) {
            if t > Instant::now() {
                break;
            }
            self.next += 1;
            match ev {
                Event::Stop(action) => {
                    let graceful = action == FaultAction::RestartGraceful;
                    target.fault_stop(graceful);
                    out.push(Fired::Note(format!(
                        "fault: server stopped ({})",
                        if graceful { "SIGTERM" } else { "SIGKILL" }
                    )));
                }
                Event::Start => {
                    let old = target.pid();
                    let t0 = Instant::now();
                    match target.fault_restart() {
                        Ok(pid) => {
                            sampler.replace_pid(old, pid);
                            out.push(Fired::Note(format!(
                                "fault: server started again (pid {pid}, {} ms)",
                                t0.elapsed().as_millis()
                            )));
                        }
                        Err(e) => out.push(Fired::Failed(format!(
                            "the server could not be restarted after a fault: {e:#}"
                        ))),
                    }
                }
            }
        }
        out
    }
}

//! `[[faults]]`: what bench does to the servers it started, on the run's
//! clock. `kill` and `restart_graceful` stop the server (SIGKILL; SIGTERM,
//! on which the bundled server closes every connection with 1012) and, with
//! `restart_after`, start it again with the same flags on the same address.
//! `kill_process` SIGKILLs one child of a multi-process server, which its
//! supervisor starts again. `restart_redis` stops the `[target.redis]`
//! redis-server and starts it again after `restart_after`. A stop bench
//! planned does not stop the run; the clients' reconnects and the validity
//! rules (`max_unreachable`, `max_not_ready`) judge what follows.

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
    KillProcess(u32),
    RedisStart,
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
            let at = start + f.at;
            match f.action {
                FaultAction::KillProcess => {
                    events.push((at, Event::KillProcess(f.process.unwrap_or(0))));
                }
                FaultAction::RestartRedis => {
                    events.push((at, Event::Stop(f.action)));
                    events.push((at + f.restart_after.unwrap_or_default(), Event::RedisStart));
                }
                FaultAction::Kill | FaultAction::RestartGraceful => {
                    events.push((at, Event::Stop(f.action)));
                    if let Some(after) = f.restart_after {
                        events.push((at + after, Event::Start));
                    }
                }
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
            out.push(fire_one(ev, target, sampler));
        }
        out
    }
}

fn fire_one(ev: Event, target: &mut Target, sampler: &mut Sampler) -> Fired {
    match ev {
        Event::Stop(FaultAction::RestartRedis) => {
            let Some(redis) = target.redis.as_mut() else {
                return Fired::Note("fault: no redis-server to stop".into());
            };
            let t0 = Instant::now();
            redis.stop();
            Fired::Note(format!(
                "fault: redis-server stopped (SIGTERM, {} ms)",
                t0.elapsed().as_millis()
            ))
        }
        Event::Stop(action) => {
            let graceful = action == FaultAction::RestartGraceful;
            target.fault_stop(graceful);
            Fired::Note(format!(
                "fault: server stopped ({})",
                if graceful { "SIGTERM" } else { "SIGKILL" }
            ))
        }
        Event::KillProcess(index) => match target.kill_process(index) {
            Ok(pid) => Fired::Note(format!(
                "fault: server process {index} killed (SIGKILL, pid {pid})"
            )),
            // The supervisor may be restarting it from an earlier kill.
            Err(why) => Fired::Note(format!("fault: cannot kill process {index}: {why}")),
        },
        Event::RedisStart => {
            let Some(redis) = target.redis.as_mut() else {
                return Fired::Note("fault: no redis-server to start".into());
            };
            let old = redis.pid();
            let t0 = Instant::now();
            match redis.restart() {
                Ok(pid) => {
                    sampler.replace_redis_pid(old, pid);
                    Fired::Note(format!(
                        "fault: redis-server started again (pid {pid}, {} ms)",
                        t0.elapsed().as_millis()
                    ))
                }
                Err(e) => Fired::Failed(format!(
                    "redis-server could not be restarted after a fault: {e:#}"
                )),
            }
        }
        Event::Start => {
            let old = target.pid();
            let t0 = Instant::now();
            match target.fault_restart() {
                Ok(pid) => {
                    sampler.replace_pid(old, pid);
                    Fired::Note(format!(
                        "fault: server started again (pid {pid}, {} ms)",
                        t0.elapsed().as_millis()
                    ))
                }
                Err(e) => Fired::Failed(format!(
                    "the server could not be restarted after a fault: {e:#}"
                )),
            }
        }
    }
}

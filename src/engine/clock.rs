//! The run clock: one monotonic anchor mapped to UNIX-epoch microseconds.
//!
//! Every timestamp the engine puts on the wire (`ts`) or subtracts from a
//! receive time comes from here, so sender and receiver in one process share
//! a clock that NTP steps cannot bend mid-run. Separate worker processes
//! would each anchor to the wall clock at start (same host: same clock).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    epoch_us_at_start: u64,
}

impl Clock {
    pub fn start_now() -> Self {
        let start = Instant::now();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start,
            epoch_us_at_start: epoch.as_micros() as u64,
        }
    }

    /// µs since the run started.
    pub fn run_us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    /// µs since the UNIX epoch of an instant.
    pub fn epoch_us(&self, at: Instant) -> u64 {
        self.epoch_us_at_start + self.run_us(at)
    }

    /// µs since the UNIX epoch of a run offset.
    pub fn epoch_of_run_us(&self, run_us: u64) -> u64 {
        self.epoch_us_at_start + run_us
    }

    pub fn now_epoch_us(&self) -> u64 {
        self.epoch_us(Instant::now())
    }

    pub fn instant_of_run_us(&self, run_us: u64) -> Instant {
        self.start + Duration::from_micros(run_us)
    }
}

//! Open-model pacing: when each client *intends* to send.
//!
//! A [`Pacer`] yields intended send times (µs since the run start). The
//! client sends at that time; when it is late it still sends and records the
//! lateness (schedule lag), and latencies are measured from the intended
//! time, which is what corrects for coordinated omission.

use super::rng::SplitMix64;

/// A source of intended send times.
pub trait Pacer {
    /// The next intended send time after the previous one, µs since run
    /// start; `None` when this client never sends.
    fn next_at(&mut self) -> Option<u64>;
}

/// Poisson arrivals: exponential gaps with mean `1 / rate`, from a seeded
/// per-client generator, so a seed fixes the whole schedule.
#[derive(Debug, Clone)]
pub struct Poisson {
    /// Mean gap in µs; 0 = never sends.
    mean_gap_us: f64,
    at_us: f64,
    rng: SplitMix64,
}

impl Poisson {
    /// `rate` per second, starting from `from_us`.
    pub fn new(rate_per_s: f64, from_us: u64, rng: SplitMix64) -> Self {
        let mean_gap_us = if rate_per_s > 0.0 {
            1e6 / rate_per_s
        } else {
            0.0
        };
        Self {
            mean_gap_us,
            at_us: from_us as f64,
            rng,
        }
    }
}

impl Pacer for Poisson {
    fn next_at(&mut self) -> Option<u64> {
        if self.mean_gap_us <= 0.0 {
            return None;
        }
        self.at_us += self.rng.exp(self.mean_gap_us);
        Some(self.at_us as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::Stream;

    #[test]
    fn seeded_schedule_is_reproducible_and_has_the_rate() {
        let mk = || Poisson::new(50.0, 1_000, SplitMix64::for_client(42, 9, Stream::Chat));
        let a: Vec<u64> = std::iter::from_fn({
            let mut p = mk();
            move || p.next_at()
        })
        .take(5000)
        .collect();
        let b: Vec<u64> = std::iter::from_fn({
            let mut p = mk();
            move || p.next_at()
        })
        .take(5000)
        .collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        let rate = 5000.0 / ((a[4999] - 1_000) as f64 / 1e6);
        assert!((rate - 50.0).abs() < 3.0, "{rate}");
        assert_eq!(Poisson::new(0.0, 0, SplitMix64::new(1)).next_at(), None);
    }
}

//! Fault injection (TEST ONLY, off by default): known faults the harness
//! must detect. Delay, drop, stall, per-connection padding and an overload
//! knee. Every decision is a pure function of configuration, time and
//! message identity, so runs are reproducible and nothing here takes a lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::ConfigError;
use wire::units::parse_duration;

#[derive(Debug, Clone, Default)]
pub struct ChaosConfig {
    /// Added to every chat delivery.
    pub delay: Duration,
    /// Share of chat deliveries dropped (0..=1).
    pub drop: f64,
    pub seed: u64,
    pub stall: Option<Stall>,
    /// Extra heap bytes held by every connection.
    pub pad: usize,
    pub overload: Option<Overload>,
}

impl ChaosConfig {
    pub fn is_active(&self) -> bool {
        !self.delay.is_zero()
            || self.drop > 0.0
            || self.stall.is_some()
            || self.pad > 0
            || self.overload.is_some()
    }
}

/// Every `period`, the delivery path freezes for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub period: Duration,
    pub duration: Duration,
}

impl Stall {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let (p, d) = s.split_once(':').ok_or_else(|| {
            ConfigError(format!(
                "--chaos-stall `{s}`: write PERIOD:DURATION, e.g. `2s:200ms`"
            ))
        })?;
        let period = parse_duration(p).map_err(|e| ConfigError(format!("--chaos-stall: {e}")))?;
        let duration = parse_duration(d).map_err(|e| ConfigError(format!("--chaos-stall: {e}")))?;
        if period.is_zero() || duration.is_zero() || duration >= period {
            return Err(ConfigError(format!(
                "--chaos-stall `{s}`: need 0 < DURATION < PERIOD"
            )));
        }
        Ok(Self { period, duration })
    }

    /// When `now` is inside a stall, the instant the stall ends. Stalls occupy
    /// the last `duration` of every `period` counted from `origin`.
    pub fn stalled_until(&self, origin: Instant, now: Instant) -> Option<Instant> {
        let since = now.saturating_duration_since(origin).as_nanos();
        let period = self.period.as_nanos();
        let phase = since % period;
        let free = period - self.duration.as_nanos();
        (phase >= free).then(|| now + Duration::from_nanos((period - phase) as u64))
    }
}

/// Above `rate` deliveries/s, every delivery gets `delay` more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overload {
    pub rate: f64,
    pub delay: Duration,
}

impl Overload {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let usage = || {
            ConfigError(format!(
                "--chaos-overload `{s}`: write RATE:DELAY, e.g. `50000:20ms`"
            ))
        };
        let (r, d) = s.split_once(':').ok_or_else(usage)?;
        let rate: f64 = r.trim().parse().map_err(|_| usage())?;
        let delay = parse_duration(d).map_err(|e| ConfigError(format!("--chaos-overload: {e}")))?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(usage());
        }
        Ok(Self { rate, delay })
    }
}

/// Runtime state for fault injection, shared by all connections.
#[derive(Debug)]
pub struct Chaos {
    pub config: ChaosConfig,
    origin: Instant,
    /// Set by the metrics sampler when the delivery rate exceeds the overload knee.
    overloaded: AtomicBool,
    drop_threshold: u64,
}

impl Chaos {
    pub fn new(config: ChaosConfig) -> Self {
        let drop_threshold = (config.drop.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
        Self {
            config,
            origin: Instant::now(),
            overloaded: AtomicBool::new(false),
            drop_threshold,
        }
    }

    /// True when the delivery of `seq` in `room` to connection `conn` is dropped.
    /// A hash of (seed, room, seq, conn) so the same run drops the same messages.
    pub fn drops(&self, room: &str, seq: u64, conn: u64) -> bool {
        if self.drop_threshold == 0 {
            return false;
        }
        let mut h = self.config.seed ^ 0x9E37_79B9_7F4A_7C15;
        for chunk in room.as_bytes().chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            h = splitmix(h ^ u64::from_le_bytes(w));
        }
        h = splitmix(h ^ seq);
        h = splitmix(h ^ conn);
        self.config.drop >= 1.0 || h < self.drop_threshold
    }

    /// Extra delay for a chat delivery queued now.
    pub fn delivery_delay(&self) -> Duration {
        let mut d = self.config.delay;
        if let Some(o) = self.config.overload {
            if self.overloaded.load(Ordering::Relaxed) {
                d += o.delay;
            }
        }
        d
    }

    pub fn delays_deliveries(&self) -> bool {
        !self.config.delay.is_zero() || self.config.overload.is_some()
    }

    pub fn stalled_until(&self, now: Instant) -> Option<Instant> {
        self.config
            .stall
            .and_then(|s| s.stalled_until(self.origin, now))
    }

    /// Called by the once-per-100ms sampler with the delivery rate of the last second.
    pub fn observe_rate(&self, deliveries_per_sec: f64) {
        if let Some(o) = self.config.overload {
            self.overloaded
                .store(deliveries_per_sec > o.rate, Ordering::Relaxed);
        }
    }

    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// The per-connection padding (touched, so it is resident).
    pub fn pad(&self) -> Option<Box<[u8]>> {
        (self.config.pad > 0).then(|| vec![0xA5u8; self.config.pad].into_boxed_slice())
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_window_is_the_end_of_each_period() {
        let s = Stall::parse("1s:200ms").unwrap();
        let o = Instant::now();
        assert!(s.stalled_until(o, o + Duration::from_millis(500)).is_none());
        let until = s.stalled_until(o, o + Duration::from_millis(900)).unwrap();
        assert_eq!(until, o + Duration::from_secs(1));
        assert!(Stall::parse("1s").is_err());
        assert!(Stall::parse("1s:2s").is_err());
    }

    #[test]
    fn drop_share_is_close_to_configured_and_deterministic() {
        let c = Chaos::new(ChaosConfig {
            drop: 0.25,
            seed: 7,
            ..Default::default()
        });
        let dropped = (0..10_000).filter(|&s| c.drops("room", s, 3)).count();
        assert!((2_000..3_000).contains(&dropped), "{dropped}");
        let again = (0..10_000).filter(|&s| c.drops("room", s, 3)).count();
        assert_eq!(dropped, again);
        let none = Chaos::new(ChaosConfig::default());
        assert!(!(0..1000).any(|s| none.drops("r", s, 1)));
    }

    #[test]
    fn overload_parses() {
        let o = Overload::parse("50000:20ms").unwrap();
        assert_eq!(o.rate, 50000.0);
        assert_eq!(o.delay, Duration::from_millis(20));
        assert!(Overload::parse("x:1ms").is_err());
    }
}

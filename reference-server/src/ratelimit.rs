//! Per-connection token bucket for inbound frames, plus the abuse counter
//! that turns repeated violations into a 1008 close.

use std::time::{Duration, Instant};

/// What to do with one inbound frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse this frame with `RATE_LIMITED`.
    Limited,
    /// Too many refusals within the window: close with 1008.
    Abusive,
}

#[derive(Debug)]
pub struct RateLimiter {
    tokens: f32,
    last: Instant,
    abuse_count: u32,
    abuse_since: Instant,
}

/// The limits, shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tokens per second; 0 disables limiting.
    pub rate: f64,
    pub burst: u32,
    pub abuse_limit: u32,
    pub abuse_window: Duration,
}

impl RateLimiter {
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            tokens: limits.burst as f32,
            last: now,
            abuse_count: 0,
            abuse_since: now,
        }
    }

    pub fn check(&mut self, limits: &Limits, now: Instant) -> Verdict {
        if limits.rate <= 0.0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens as f64 + elapsed * limits.rate).min(limits.burst as f64) as f32;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.abuse_since) > limits.abuse_window {
            self.abuse_since = now;
            self.abuse_count = 0;
        }
        self.abuse_count += 1;
        if limits.abuse_limit > 0 && self.abuse_count >= limits.abuse_limit {
            Verdict::Abusive
        } else {
            Verdict::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_then_abuse() {
        let limits = Limits {
            rate: 10.0,
            burst: 3,
            abuse_limit: 3,
            abuse_window: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(&limits, t0);
        for _ in 0..3 {
            assert_eq!(rl.check(&limits, t0), Verdict::Allow);
        }
        assert_eq!(rl.check(&limits, t0), Verdict::Limited);
        assert_eq!(
            rl.check(&limits, t0 + Duration::from_millis(150)),
            Verdict::Allow
        );
        assert_eq!(
            rl.check(&limits, t0 + Duration::from_millis(150)),
            Verdict::Limited
        );
        assert_eq!(
            rl.check(&limits, t0 + Duration::from_millis(150)),
            Verdict::Abusive
        );
    }

    #[test]
    fn zero_rate_disables() {
        let limits = Limits {
            rate: 0.0,
            burst: 0,
            abuse_limit: 1,
            abuse_window: Duration::from_secs(1),
        };
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(&limits, t0);
        assert!((0..1000).all(|_| rl.check(&limits, t0) == Verdict::Allow));
    }
}

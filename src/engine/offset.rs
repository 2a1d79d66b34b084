//! A shard's clock offset to the target, recorded per shard so `bench
//! merge` can flag shards whose clocks disagree (fan-out latency across
//! hosts subtracts one host's send time from another's receive time).
//!
//! Not estimated from the wire yet: protocol v1's `pong` echoes the
//! client's `ts` but carries no server time, so an NTP-style estimate
//! (offset = server time − midpoint of send and receive) has nothing to
//! read. Until the protocol grows a server timestamp, the only source is
//! [`OFFSET_ENV`], which tests (and operators who measured offsets with
//! chrony/ntpq) use to record a known offset. docs/distributed.md says so.

use super::stream::ClockEstimate;
use super::target::Target;

/// Records this offset (µs, target clock minus shard clock) for the shard,
/// optionally `offset_us/rtt_us`.
pub const OFFSET_ENV: &str = "BENCH_CLOCK_OFFSET_US";

/// The clock estimate of this shard against `target`, if one is known.
pub fn estimate(_target: &Target) -> Option<ClockEstimate> {
    let raw = std::env::var(OFFSET_ENV).ok()?;
    let (off, rtt) = match raw.split_once('/') {
        Some((o, r)) => (o.trim().parse().ok()?, r.trim().parse().ok()?),
        None => (raw.trim().parse().ok()?, 0),
    };
    Some(ClockEstimate {
        offset_us: off,
        rtt_us: rtt,
        probes: 0,
    })
}

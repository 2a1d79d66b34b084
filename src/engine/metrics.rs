//! Per-worker metric recording and mergeable per-second snapshots.
//!
//! Each worker owns one [`Recorder`] (no locks on the hot path). Every second
//! it hands over an [`Interval`]: HdrHistograms (µs) plus counters for that
//! second, and starts a fresh one. [`Interval::merge`] is exact (histogram
//! addition, counter sums), so intervals from several workers — or, later,
//! several worker processes — combine into the same totals a single
//! recorder would have produced.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::results::Counters;

/// Highest latency a histogram tracks (10 min, in µs); larger values are clamped.
pub const MAX_TRACKABLE_US: u64 = 600_000_000;
/// Lowest discernible value (µs) and significant digits of every histogram.
pub const LOWEST_US: u64 = 1;
pub const SIGFIG: u8 = 3;

/// Every latency the engine records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricId {
    ConnectTime,
    AckLatency,
    AckLatencyService,
    DeliveryLatency,
    DeliveryLatencyService,
    /// Deliveries that arrived as resume replays (seq at or below the rejoin seq).
    ReplayLatency,
    PingRtt,
    ReconnectTime,
    /// How late sends started compared with their intended time.
    ScheduleLag,
    /// `wss://` only: the stages of `connect_time` (TCP connect, TLS
    /// handshake, WebSocket upgrade).
    TcpConnectTime,
    TlsHandshakeTime,
    UpgradeTime,
}

impl MetricId {
    pub const ALL: [MetricId; 12] = [
        Self::ConnectTime,
        Self::AckLatency,
        Self::AckLatencyService,
        Self::DeliveryLatency,
        Self::DeliveryLatencyService,
        Self::ReplayLatency,
        Self::PingRtt,
        Self::ReconnectTime,
        Self::ScheduleLag,
        Self::TcpConnectTime,
        Self::TlsHandshakeTime,
        Self::UpgradeTime,
    ];

    /// The key in `results.metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConnectTime => "connect_time",
            Self::AckLatency => "ack_latency",
            Self::AckLatencyService => "ack_latency_service",
            Self::DeliveryLatency => "delivery_latency",
            Self::DeliveryLatencyService => "delivery_latency_service",
            Self::ReplayLatency => "replay_latency",
            Self::PingRtt => "ping_rtt",
            Self::ReconnectTime => "reconnect_time",
            Self::ScheduleLag => "schedule_lag",
            Self::TcpConnectTime => "tcp_connect_time",
            Self::TlsHandshakeTime => "tls_handshake_time",
            Self::UpgradeTime => "upgrade_time",
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits over 1 µs ..= 10 min.
    Histogram::new_with_bounds(LOWEST_US, MAX_TRACKABLE_US, SIGFIG)
        .expect("constant bounds are valid")
}

/// Counters plus histograms for one interval (normally one second) of one
/// or more workers.
#[derive(Debug, Clone)]
pub struct Interval {
    /// 1-based second of the run this interval ends at.
    pub second: u64,
    pub hists: Vec<Histogram<u64>>,
    pub counters: Counters,
    /// Clients connected (sessions established) at the end of the interval.
    pub connected: u64,
    /// How many workers' intervals were merged into this one.
    pub parts: u32,
    /// Connection attempts by clients never ready before: those that
    /// became ready, and those that failed (connect or readiness). What
    /// `[run] abort_on_connect_failure_share` judges.
    pub unready_ok: u64,
    pub unready_failed: u64,
}

impl Interval {
    pub fn new(second: u64) -> Self {
        Self {
            second,
            hists: MetricId::ALL.iter().map(|_| new_histogram()).collect(),
            counters: Counters::default(),
            connected: 0,
            parts: 1,
            unready_ok: 0,
            unready_failed: 0,
        }
    }

    pub fn hist(&self, id: MetricId) -> &Histogram<u64> {
        &self.hists[id as usize]
    }

    /// Exact merge: histogram addition and counter sums.
    pub fn merge(&mut self, other: &Interval) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            // Same bounds on both sides: addition cannot fail.
            let _ = a.add(b);
        }
        merge_counters(&mut self.counters, &other.counters);
        self.connected += other.connected;
        self.parts += other.parts;
        self.unready_ok += other.unready_ok;
        self.unready_failed += other.unready_failed;
    }
}

fn merge_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

pub fn merge_counters(a: &mut Counters, b: &Counters) {
    a.connections_opened += b.connections_opened;
    merge_map(&mut a.connections_failed, &b.connections_failed);
    merge_map(&mut a.closes, &b.closes);
    a.reconnects += b.reconnects;
    a.frames_sent += b.frames_sent;
    a.frames_received += b.frames_received;
    a.bytes_sent += b.bytes_sent;
    a.bytes_received += b.bytes_received;
    a.deflate_connections += b.deflate_connections;
    a.payload_bytes_sent += b.payload_bytes_sent;
    a.wire_bytes_sent += b.wire_bytes_sent;
    a.payload_bytes_received += b.payload_bytes_received;
    a.wire_bytes_received += b.wire_bytes_received;
    a.chat_sent += b.chat_sent;
    a.acks_received += b.acks_received;
    a.deliveries_received += b.deliveries_received;
    a.deliveries_expected += b.deliveries_expected;
    a.lost += b.lost;
    a.lost_tail += b.lost_tail;
    a.duplicates += b.duplicates;
    a.out_of_order += b.out_of_order;
    merge_map(&mut a.errors, &b.errors);
    a.late_sends += b.late_sends;
    a.chat_skipped_offline += b.chat_skipped_offline;
    a.resume_overlap += b.resume_overlap;
    a.lost_at_restart += b.lost_at_restart;
    a.seq_resets += b.seq_resets;
    a.server_restarts += b.server_restarts;
    a.tls_connections += b.tls_connections;
    a.tls_resumed += b.tls_resumed;
    a.tls_wire_bytes_sent += b.tls_wire_bytes_sent;
    a.tls_wire_bytes_received += b.tls_wire_bytes_received;
    a.deliveries_unconfirmed += b.deliveries_unconfirmed;
    a.deliveries_late += b.deliveries_late;
    a.leave_races += b.leave_races;
    merge_map(&mut a.unmatched, &b.unmatched);
    for s in &b.unmatched_samples {
        if a.unmatched_samples.len() < crate::results::MAX_UNMATCHED_SAMPLES {
            a.unmatched_samples.push(s.clone());
        }
    }
}

/// A worker's live recorder: the current interval plus gauges.
#[derive(Debug)]
pub struct Recorder {
    pub cur: Interval,
    pub connected: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            cur: Interval::new(1),
            connected: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, id: MetricId, us: u64) {
        self.cur.hists[id as usize].saturating_record(us.clamp(1, MAX_TRACKABLE_US));
    }

    #[inline]
    pub fn counters(&mut self) -> &mut Counters {
        &mut self.cur.counters
    }

    pub fn count_in(map: &mut BTreeMap<String, u64>, key: &str) {
        match map.get_mut(key) {
            Some(v) => *v += 1,
            None => {
                map.insert(key.to_owned(), 1);
            }
        }
    }

    /// Ends the current interval and returns it; the next one ends at `next_second`.
    pub fn rotate(&mut self, next_second: u64) -> Interval {
        let mut done = std::mem::replace(&mut self.cur, Interval::new(next_second));
        done.connected = self.connected;
        // This worker thread's TLS connections counted their bytes here.
        let (received, sent) = wire::ws::tls::take_wire_bytes();
        done.counters.tls_wire_bytes_received += received;
        done.counters.tls_wire_bytes_sent += sent;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_exact() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        let mut whole = Recorder::new();
        for v in [10u64, 2_000, 50_000] {
            a.record(MetricId::DeliveryLatency, v);
            whole.record(MetricId::DeliveryLatency, v);
        }
        for v in [7u64, 90_000_000] {
            b.record(MetricId::DeliveryLatency, v);
            whole.record(MetricId::DeliveryLatency, v);
        }
        a.counters().lost += 2;
        Recorder::count_in(&mut a.counters().errors, "RATE_LIMITED");
        Recorder::count_in(&mut b.counters().errors, "RATE_LIMITED");
        let mut m = a.rotate(2);
        m.merge(&b.rotate(2));
        let w = whole.rotate(2);
        let (hm, hw) = (
            m.hist(MetricId::DeliveryLatency),
            w.hist(MetricId::DeliveryLatency),
        );
        assert_eq!(hm.len(), 5);
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(hm.value_at_quantile(q), hw.value_at_quantile(q));
        }
        assert_eq!(m.counters.lost, 2);
        assert_eq!(m.counters.errors["RATE_LIMITED"], 2);
        assert_eq!(m.parts, 2);
    }
}

//! Server counters and their Prometheus text rendering for `GET /metrics`.
//!
//! Plain relaxed atomics. Hot paths add in bulk (one add per fan-out or per
//! queue drain, not per message) so two cores do not fight over one line.
//!
//! Bad input of every kind is counted in `bad_input_total{kind=...}` and
//! logged at most once per second per kind, so a flood of garbage can
//! neither hide in the metrics nor fill the log.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The kinds of bad input the server answers (see docs/server.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadInput {
    /// Unparsable HTTP request head (400).
    HttpMalformed,
    /// Request head over 16 KiB (431).
    HttpTooLarge,
    /// Request head not complete within --handshake-timeout (408).
    HandshakeTimeout,
    /// More sockets in the handshake than --max-handshakes (503).
    HandshakeBudget,
    /// Upgrade over --max-connections (503).
    ConnectionLimit,
    /// RFC 6455 violation: mask, RSV, opcode, control frame, close frame (1002).
    WsProtocol,
    /// Message over --max-message-size (1009).
    WsTooBig,
    /// Invalid UTF-8 in a text message or close reason (1007).
    WsInvalidUtf8,
    /// A text frame that is not JSON.
    Json,
    /// JSON that is not a valid v1 request (unknown type, bad field, limits).
    InvalidMessage,
    /// Refused token or failed first-frame auth.
    Auth,
    /// A frame over the rate limit.
    RateLimited,
    /// A closing peer that kept sending past the close budget.
    CloseFlood,
    /// A failed TLS handshake on a `--tls-cert` port (garbage, alert, timeout).
    TlsHandshake,
    /// Plaintext (HTTP) on a `--tls-cert` port: answered 400 in plaintext.
    TlsPlaintext,
}

impl BadInput {
    const ALL: [BadInput; 15] = [
        Self::HttpMalformed,
        Self::HttpTooLarge,
        Self::HandshakeTimeout,
        Self::HandshakeBudget,
        Self::ConnectionLimit,
        Self::WsProtocol,
        Self::WsTooBig,
        Self::WsInvalidUtf8,
        Self::Json,
        Self::InvalidMessage,
        Self::Auth,
        Self::RateLimited,
        Self::CloseFlood,
        Self::TlsHandshake,
        Self::TlsPlaintext,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::HttpMalformed => "http_malformed",
            Self::HttpTooLarge => "http_too_large",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HandshakeBudget => "handshake_budget",
            Self::ConnectionLimit => "connection_limit",
            Self::WsProtocol => "ws_protocol",
            Self::WsTooBig => "ws_too_big",
            Self::WsInvalidUtf8 => "ws_invalid_utf8",
            Self::Json => "json",
            Self::InvalidMessage => "invalid_message",
            Self::Auth => "auth",
            Self::RateLimited => "rate_limited",
            Self::CloseFlood => "close_flood",
            Self::TlsHandshake => "tls_handshake",
            Self::TlsPlaintext => "tls_plaintext",
        }
    }
}

/// Per-kind counters plus the second each kind was last logged.
#[derive(Debug, Default)]
pub struct BadInputCounters {
    counts: [AtomicU64; BadInput::ALL.len()],
    /// Seconds since process start (+1; 0 = never) of the last log line.
    logged: [AtomicU64; BadInput::ALL.len()],
}

impl BadInputCounters {
    /// Counts one occurrence and logs it unless this kind was logged this second.
    pub fn record(&self, kind: BadInput, detail: &dyn std::fmt::Display) {
        let i = kind as usize;
        let n = self.counts[i].fetch_add(1, Ordering::Relaxed) + 1;
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_secs() + 1;
        let last = self.logged[i].load(Ordering::Relaxed);
        if last != now
            && self.logged[i]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::info!(kind = kind.label(), total = n, "bad input: {detail}");
        }
    }

    pub fn get(&self, kind: BadInput) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_current: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected_total: AtomicU64,
    pub frames_in_total: AtomicU64,
    pub frames_out_total: AtomicU64,
    pub messages_out_total: AtomicU64,
    pub deliveries_total: AtomicU64,
    pub rooms_current: AtomicU64,
    pub rate_limited_total: AtomicU64,
    pub rate_limit_closes_total: AtomicU64,
    pub slow_consumer_closes_total: AtomicU64,
    pub typing_shed_total: AtomicU64,
    pub heartbeat_timeouts_total: AtomicU64,
    pub auth_failures_total: AtomicU64,
    pub protocol_errors_total: AtomicU64,
    pub error_frames_total: AtomicU64,
    pub chaos_dropped_total: AtomicU64,
    pub bad_input: BadInputCounters,
    pub deflate_connections_total: AtomicU64,
    /// Completed TLS handshakes, and those that resumed a session.
    pub tls_handshakes_total: AtomicU64,
    pub tls_resumed_total: AtomicU64,
    /// Deliveries per second over the last second (f64 bits), kept by the sampler.
    pub delivery_rate_bits: AtomicU64,
    /// 1 when `--redis` is set: the `bus_*` series are rendered.
    pub bus_enabled: AtomicU64,
    pub bus_up: AtomicU64,
    pub bus_published_total: AtomicU64,
    pub bus_publish_failures_total: AtomicU64,
    pub bus_received_total: AtomicU64,
    pub bus_malformed_total: AtomicU64,
    pub bus_foreign_version_total: AtomicU64,
    pub bus_duplicates_total: AtomicU64,
    pub bus_gaps_total: AtomicU64,
    pub bus_recovered_total: AtomicU64,
    pub bus_lost_total: AtomicU64,
    pub bus_reconnects_total: AtomicU64,
    /// Publish pipeline round trips: sum in µs and count.
    pub bus_rtt_us_sum: AtomicU64,
    pub bus_rtt_count: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Decrements a gauge.
pub fn add_neg(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn delivery_rate(&self) -> f64 {
        f64::from_bits(self.delivery_rate_bits.load(Ordering::Relaxed))
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 20] = [
            (
                "connections_current",
                "gauge",
                "Open WebSocket connections.",
                g(&self.connections_current),
            ),
            (
                "connections_total",
                "counter",
                "WebSocket connections accepted since start.",
                g(&self.connections_total),
            ),
            (
                "connections_rejected_total",
                "counter",
                "Upgrades refused (limit, auth, origin, shutdown).",
                g(&self.connections_rejected_total),
            ),
            (
                "frames_in_total",
                "counter",
                "WebSocket data frames received from clients.",
                g(&self.frames_in_total),
            ),
            (
                "frames_out_total",
                "counter",
                "WebSocket data frames written to clients (a batch counts once).",
                g(&self.frames_out_total),
            ),
            (
                "messages_out_total",
                "counter",
                "Protocol messages written to clients (each batch member counts).",
                g(&self.messages_out_total),
            ),
            (
                "deliveries_total",
                "counter",
                "Chat messages queued to a recipient other than the sender.",
                g(&self.deliveries_total),
            ),
            (
                "rooms_current",
                "gauge",
                "Rooms currently known (members or retained history).",
                g(&self.rooms_current),
            ),
            (
                "rate_limited_total",
                "counter",
                "Frames refused with RATE_LIMITED.",
                g(&self.rate_limited_total),
            ),
            (
                "rate_limit_closes_total",
                "counter",
                "Connections closed 1008 for repeated rate-limit abuse.",
                g(&self.rate_limit_closes_total),
            ),
            (
                "slow_consumer_closes_total",
                "counter",
                "Connections closed 1013 because their outbound queue stayed over its bound.",
                g(&self.slow_consumer_closes_total),
            ),
            (
                "typing_shed_total",
                "counter",
                "Typing frames dropped under backpressure.",
                g(&self.typing_shed_total),
            ),
            (
                "heartbeat_timeouts_total",
                "counter",
                "Connections terminated for a missing pong.",
                g(&self.heartbeat_timeouts_total),
            ),
            (
                "auth_failures_total",
                "counter",
                "Rejected tokens and missing, invalid or late auth frames.",
                g(&self.auth_failures_total),
            ),
            (
                "protocol_errors_total",
                "counter",
                "Connections failed for WebSocket protocol violations (1002/1007/1009).",
                g(&self.protocol_errors_total),
            ),
            (
                "error_frames_total",
                "counter",
                "Error frames sent to clients.",
                g(&self.error_frames_total),
            ),
            (
                "chaos_dropped_total",
                "counter",
                "Chat deliveries dropped by --chaos-drop (test only).",
                g(&self.chaos_dropped_total),
            ),
            (
                "deflate_connections_total",
                "counter",
                "Connections that negotiated permessage-deflate.",
                g(&self.deflate_connections_total),
            ),
            (
                "tls_handshakes_total",
                "counter",
                "Completed TLS handshakes (--tls-cert).",
                g(&self.tls_handshakes_total),
            ),
            (
                "tls_resumed_total",
                "counter",
                "TLS handshakes that resumed a session (tickets).",
                g(&self.tls_resumed_total),
            ),
        ];
        write_rows(&mut out, &rows);
        let _ = writeln!(
            out,
            "# HELP deliveries_per_second Chat deliveries per second over the last second.\n# TYPE deliveries_per_second gauge\ndeliveries_per_second {:.1}",
            self.delivery_rate()
        );
        let _ = writeln!(
            out,
            "# HELP bad_input_total Bad input answered, by kind (see docs/server.md).\n# TYPE bad_input_total counter"
        );
        for kind in BadInput::ALL {
            let _ = writeln!(
                out,
                "bad_input_total{{kind=\"{}\"}} {}",
                kind.label(),
                self.bad_input.get(kind)
            );
        }
        if g(&self.bus_enabled) == 1 {
            self.render_bus(&mut out);
        }
        let process = crate::supervise::process_index().unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP process_info This process: its index under --processes (0 alone) and pid.\n# TYPE process_info gauge\nprocess_info{{process=\"{process}\",pid=\"{}\"}} 1",
            std::process::id()
        );
        let rss = process_rss_bytes().unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident set size of the server process.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
        out
    }
}

impl Metrics {
    fn render_bus(&self, out: &mut String) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 12] = [
            (
                "bus_up",
                "gauge",
                "1 while the Redis bus is connected.",
                g(&self.bus_up),
            ),
            (
                "bus_published_total",
                "counter",
                "Chats sequenced and published through Redis by this process.",
                g(&self.bus_published_total),
            ),
            (
                "bus_publish_failures_total",
                "counter",
                "Chats not published (Redis down or publish queue full); the sender got no ack.",
                g(&self.bus_publish_failures_total),
            ),
            (
                "bus_received_total",
                "counter",
                "Messages received from the bus.",
                g(&self.bus_received_total),
            ),
            (
                "bus_malformed_total",
                "counter",
                "Bus messages dropped as malformed.",
                g(&self.bus_malformed_total),
            ),
            (
                "bus_foreign_version_total",
                "counter",
                "Bus messages dropped for another bus version (or not ours).",
                g(&self.bus_foreign_version_total),
            ),
            (
                "bus_duplicates_total",
                "counter",
                "Bus chats dropped because their seq was already delivered.",
                g(&self.bus_duplicates_total),
            ),
            (
                "bus_gaps_total",
                "counter",
                "Seq gaps seen on the bus (refilled from history).",
                g(&self.bus_gaps_total),
            ),
            (
                "bus_recovered_total",
                "counter",
                "Chats delivered from Redis history to fill gaps after a reconnect.",
                g(&self.bus_recovered_total),
            ),
            (
                "bus_lost_total",
                "counter",
                "Chats that history no longer held when a gap was refilled.",
                g(&self.bus_lost_total),
            ),
            (
                "bus_reconnects_total",
                "counter",
                "Reconnections to Redis after a lost connection.",
                g(&self.bus_reconnects_total),
            ),
            (
                "bus_rtt_seconds_count",
                "counter",
                "Publish pipeline round trips.",
                g(&self.bus_rtt_count),
            ),
        ];
        write_rows(out, &rows);
        let _ = writeln!(
            out,
            "# HELP bus_rtt_seconds_sum Total time of publish pipeline round trips (divide by the count for the mean).\n# TYPE bus_rtt_seconds_sum counter\nbus_rtt_seconds_sum {:.6}",
            g(&self.bus_rtt_us_sum) as f64 / 1e6
        );
    }
}

/// Resident set size from /proc/self/statm (Linux); None elsewhere.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096))
}

/// Prometheus text for plain series: `(name, type, help, value)` each.
fn write_rows(out: &mut String, rows: &[(&str, &str, &str, u64)]) {
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_required_metric() {
        let m = Metrics::default();
        inc(&m.connections_total);
        let text = m.render();
        for name in [
            "connections_current",
            "connections_total 1",
            "frames_in_total",
            "frames_out_total",
            "deliveries_total",
            "rooms_current",
            "rate_limited_total",
            "slow_consumer_closes_total",
            "heartbeat_timeouts_total",
            "auth_failures_total",
            "process_resident_memory_bytes",
            "bad_input_total{kind=\"ws_protocol\"} 0",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
        assert!(process_rss_bytes().unwrap_or(0) > 0);
    }
}

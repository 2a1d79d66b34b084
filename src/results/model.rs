//! `results.json`: the versioned result of one run.
//!
//! This is the contract between the engine (which fills it), the exporters
//! (JSON, HTML, JUnit, Markdown), `bench compare` and `bench capacity`.
//! `docs/results-schema.json` describes the same shape; bump
//! [`SCHEMA_VERSION`] on any incompatible change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub name: String,
    /// RFC 3339 wall-clock start.
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    /// Why the run stopped early (Ctrl-C, target down, failed stage, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_reason: Option<String>,
    /// Latency summaries in ms. Corrected variants use the plain name
    /// (`delivery_latency`); service-time variants end in `_service`.
    pub metrics: BTreeMap<String, LatencySummary>,
    pub counters: Counters,
    pub throughput: Throughput,
    pub server: ServerStats,
    pub generator: GeneratorStats,
    pub machine: MachineStats,
    pub thresholds: Vec<ThresholdResult>,
    pub stages: Vec<StageWindow>,
    pub timeseries: Vec<Snapshot>,
    /// permessage-deflate figures, when the scenario offered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// TLS figures, when the target was `wss://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TlsStats>,
    /// With `--repeat N`: the gated metric values of each repeat, for noise-aware compare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<BTreeMap<String, f64>>,
    /// The resolved plan, as run.
    pub scenario: serde_json::Value,
    pub environment: Environment,
    /// Whether the run can be trusted, and if not, why (every rule in
    /// docs/scenario.md "When a run is invalid"). Absent in older files.
    #[serde(default)]
    pub validity: Validity,
    /// Per stage: clients planned, connected, ready, failed (with reasons).
    #[serde(default, skip_serializing_if = "Readiness::is_empty")]
    pub readiness: Readiness,
    /// Runs of several processes or machines (`--processes`, `bench merge`):
    /// one entry per shard, with its start and clock offset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardInfo>,
}

/// One shard of a multi-process or multi-machine run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// "ok", "dead" (a worker process that exited before finishing),
    /// "missing" (no shard file) or "interrupted".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// UNIX-epoch ms its clients started.
    #[serde(default)]
    pub started_at_ms: u64,
    /// How late after the agreed `--start-at` it started.
    #[serde(default)]
    pub late_ms: u64,
    /// Target clock minus shard clock (ms), NTP-style from ping/pong, and
    /// the round trip of the probe it came from (± half of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_rtt_ms: Option<f64>,
}

/// The verdict of the validity rules (docs/scenario.md). `valid` is false
/// exactly when `reasons` is non-empty; interrupted and saturated runs
/// are invalid too and say so here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validity {
    pub valid: bool,
    /// One line per broken rule, e.g. "3 of 200 planned clients (1.5%) were never ready (max 1%)".
    pub reasons: Vec<String>,
    /// Panics caught in client tasks (each is also `counters.errors.panic`).
    #[serde(default)]
    pub panics: u64,
    /// The first distinct panic messages (at most a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panic_messages: Vec<String>,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            valid: true,
            reasons: Vec::new(),
            panics: 0,
            panic_messages: Vec::new(),
        }
    }
}

/// Client readiness over the run: every planned client ends either ready
/// at least once or counted under the reason it never was.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Readiness {
    pub planned: u64,
    /// Clients whose WebSocket upgrade succeeded at least once.
    pub connected: u64,
    /// Clients that became ready (welcomed and joined every room) at least once.
    pub ready: u64,
    /// Planned clients never ready, by the last reason: `handshake`,
    /// `protocol`, `timeout`, `refused`, `not_ready`, `panic`, `not_started`.
    pub failed: BTreeMap<String, u64>,
    /// (planned − ready) / planned.
    pub never_ready_share: f64,
    /// The same per stage (a client belongs to the stage its first window starts in).
    pub stages: Vec<StageReadiness>,
}

impl Readiness {
    pub fn is_empty(&self) -> bool {
        self.planned == 0 && self.stages.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageReadiness {
    pub index: usize,
    pub planned: u64,
    pub connected: u64,
    pub ready: u64,
    pub failed: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    /// (percentile, ms) points of the HDR distribution, for percentile plots.
    #[serde(default)]
    pub distribution: Vec<(f64, f64)>,
    /// The full histogram (HdrHistogram V2 + base64), for exact merging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub connections_opened: u64,
    /// Failed connection attempts by reason: `refused`, `timeout`, `http_401`, ...
    pub connections_failed: BTreeMap<String, u64>,
    /// Closes received, by close code (`"1000"`, `"1013"`, ..., `"abnormal"` for TCP drops).
    pub closes: BTreeMap<String, u64>,
    pub reconnects: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub chat_sent: u64,
    pub acks_received: u64,
    pub deliveries_received: u64,
    pub deliveries_expected: u64,
    /// Per-room seq gaps that no resume filled, plus the tail still missing
    /// when the drain ended (`lost_tail`).
    pub lost: u64,
    /// The part of `lost` that was still missing at the end of the drain:
    /// seqs after a still-joined receiver's last one, up to the highest seq
    /// known in the room. Lost, or later than the drain; gaps are not in it.
    #[serde(default)]
    pub lost_tail: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Error frames received, by code.
    pub errors: BTreeMap<String, u64>,
    /// Sends that started later than intended by more than the lag tolerance.
    pub late_sends: u64,
    /// Intended chat sends that fell while their client was disconnected
    /// (reconnecting), so were not sent; counted rather than skipped silently.
    #[serde(default)]
    pub chat_skipped_offline: u64,
    /// Already-received chats that a resume replayed again (the replay
    /// overlaps live delivery after the rejoin); deduplicated as a real
    /// client would, so not counted as `duplicates`.
    #[serde(default)]
    pub resume_overlap: u64,
    /// Seqs a receiver was owed by a server instance that then restarted
    /// (its open gaps when the new epoch was seen): lost with the old
    /// server's history, counted apart from `lost`.
    #[serde(default)]
    pub lost_at_restart: u64,
    /// Room tracks reset because the server's seqs started over (a
    /// `joined.seq` below the last seen, or a new instance id).
    #[serde(default)]
    pub seq_resets: u64,
    /// New server instances seen after the first (distinct `welcome.instance` ids − 1).
    #[serde(default)]
    pub server_restarts: u64,
    /// Connections on which permessage-deflate was negotiated.
    #[serde(default)]
    pub deflate_connections: u64,
    /// Data messages sent: payload bytes before compression, and the same
    /// messages as frames on the wire (headers, masked, compressed if so).
    #[serde(default)]
    pub payload_bytes_sent: u64,
    #[serde(default)]
    pub wire_bytes_sent: u64,
    /// Data messages received: payload bytes after inflating, and the
    /// bytes their frames took on the wire.
    #[serde(default)]
    pub payload_bytes_received: u64,
    #[serde(default)]
    pub wire_bytes_received: u64,
    /// `wss://` connections opened, and those whose TLS session was resumed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_connections: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_resumed: u64,
    /// Raw TCP bytes of `wss://` connections: TLS records (WebSocket frames
    /// plus record overhead), handshakes and alerts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_wire_bytes_sent: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_wire_bytes_received: u64,
    /// Generator-side accounting: deliveries to a client that was not yet a
    /// confirmed member when the message was sent (join/leave races); not
    /// deliveries, not loss.
    #[serde(default)]
    pub deliveries_unconfirmed: u64,
    /// Generator-side accounting: deliveries that arrived after their
    /// message's delivery window had closed (already counted in `lost`).
    #[serde(default)]
    pub deliveries_late: u64,
    /// Generator-side accounting: deliveries owed to a member that left
    /// the room (or was dropped) after the message was sent, before it
    /// arrived (leave races); not counted in `lost` or `deliveries_expected`.
    #[serde(default)]
    pub leave_races: u64,
    /// Frames no matcher recognised, by kind: `non_json`, `binary`,
    /// `no_match`, `no_id` (a chat delivery without bench's id).
    #[serde(default)]
    pub unmatched: BTreeMap<String, u64>,
    /// The first few unmatched frames (`kind: frame`, truncated), so the
    /// matchers can be fixed; at most [`MAX_UNMATCHED_SAMPLES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_samples: Vec<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Unmatched frames kept as samples in `counters.unmatched_samples`.
pub const MAX_UNMATCHED_SAMPLES: usize = 5;

impl Counters {
    pub fn connections_failed_total(&self) -> u64 {
        self.connections_failed.values().sum()
    }

    pub fn error_frames_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Errors: failed connections, error frames, and closes that were not
    /// normal (1000), going-away (1001) or planned by the scenario.
    pub fn errors_total(&self) -> u64 {
        let bad_closes: u64 = self
            .closes
            .iter()
            .filter(|(code, _)| !matches!(code.as_str(), "1000" | "1001"))
            .map(|(_, n)| n)
            .sum();
        self.connections_failed_total() + self.error_frames_total() + bad_closes
    }

    /// Errors per operation (connection attempts plus frames sent).
    pub fn error_rate(&self) -> f64 {
        let ops = self.connections_opened + self.connections_failed_total() + self.frames_sent;
        if ops == 0 {
            0.0
        } else {
            self.errors_total() as f64 / ops as f64
        }
    }
}

/// What permessage-deflate did: ratios are payload bytes over wire bytes
/// of data messages (above 1: compression saved bandwidth); `None` when no
/// data message went that way.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Compression {
    /// Connections that negotiated the extension, of `connections_opened`.
    pub connections: u64,
    pub ratio_sent: Option<f64>,
    pub ratio_received: Option<f64>,
}

impl Compression {
    pub fn from_counters(c: &Counters) -> Self {
        let ratio = |payload: u64, wire: u64| (wire > 0).then(|| payload as f64 / wire as f64);
        Self {
            connections: c.deflate_connections,
            ratio_sent: ratio(c.payload_bytes_sent, c.wire_bytes_sent),
            ratio_received: ratio(c.payload_bytes_received, c.wire_bytes_received),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Throughput {
    pub chat_sent_per_s: f64,
    pub deliveries_per_s: f64,
    pub deliveries_per_s_peak: f64,
    pub bytes_received_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerStats {
    pub pids: Vec<u32>,
    pub rss_peak_bytes: Option<u64>,
    /// Slope of RSS against connected clients (least squares), bytes.
    pub memory_per_connection_bytes: Option<f64>,
    pub memory_fit: Option<LinearFit>,
    pub cpu_percent_mean: Option<f64>,
    pub cpu_percent_peak: Option<f64>,
    /// Every process sampled, by PID: the server's (a supervisor and its
    /// children count in the figures above) and a redis-server bench
    /// started (`role = "redis"`, not in the figures above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessStats>,
}

/// One sampled process over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessStats {
    pub pid: u32,
    /// `server` (one process), `supervisor` (`--processes N`), `process`
    /// (one of its children), `redis`.
    pub role: String,
    /// A supervisor child's index (`BENCH_SERVER_PROCESS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub rss_peak_bytes: u64,
    pub rss_last_bytes: u64,
    /// % of one core over the measurement window; `None` when the process
    /// was not alive for two samples in it.
    pub cpu_percent_mean: Option<f64>,
    pub cpu_percent_peak: f64,
    /// Seconds it was sampled in (a killed process has fewer).
    pub samples: u32,
}

impl ServerStats {
    /// The mean CPU of the sampled redis-server(s), summed (% of one core).
    pub fn redis_cpu_percent_mean(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .processes
            .iter()
            .filter(|p| p.role == "redis")
            .filter_map(|p| p.cpu_percent_mean)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
    pub points: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorStats {
    pub cpu_percent_mean: f64,
    pub cpu_percent_peak: f64,
    pub rss_peak_bytes: u64,
    pub memory_per_client_bytes: Option<f64>,
    /// True when the generator, not the target, limited the run.
    pub saturated: bool,
    pub saturation_reasons: Vec<String>,
    /// Share of generator CPU spent recording metrics, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_cpu_share: Option<f64>,
    /// How the send schedule was timed (`[run] pacing`). Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingStats>,
}

/// The timer behind the send schedule and what it cost (docs/metrics.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PacingStats {
    /// `[run] pacing` as asked for: "timerfd" or "tokio".
    pub requested: String,
    /// The mode every worker ran in; "mixed" when some fell back to tokio.
    pub mode: String,
    /// Timer granularity in µs: 1000 for tokio's wheel (deadlines rounded
    /// up to the next ms), 1 for a timerfd (ns resolution, recorded in µs).
    pub resolution_us: f64,
    /// CPU a worker may burn waiting for a deadline, µs per second: 0, no
    /// mode spins (waits are in epoll).
    pub spin_budget_us_per_s: f64,
    /// timerfd expiries per second of the run, all workers (each wakes a
    /// worker thread at most once; 0 in tokio mode).
    pub timer_expiries_per_s: f64,
    /// `timerfd_settime` calls per second of the run, all workers.
    pub timer_arms_per_s: f64,
    /// Sessions woken by the timerfd per second, all workers.
    pub timer_wakes_per_s: f64,
    /// Of those, woken early by another session's poll on a busy worker
    /// (before the fd's expiry came round the run queue).
    #[serde(default)]
    pub timer_inline_wakes_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineStats {
    /// Whole-machine CPU busy %, from /proc/stat, including softirq.
    pub cpu_percent_mean: f64,
    pub softirq_percent_mean: f64,
    pub cores: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub metric: String,
    pub condition: String,
    /// The measured value (None when the metric was not measured, which fails).
    pub value: Option<f64>,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageWindow {
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub target: u32,
}

/// Short percentile summary used in per-second snapshots.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Pcts {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since the run started (end of this interval).
    pub t: f64,
    pub stage: usize,
    pub clients_connected: u64,
    pub clients_target: f64,
    pub chat_sent: u64,
    pub deliveries: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub errors: u64,
    pub closes: u64,
    /// The same closes by close code (`"1000"`, `"1013"`, ..., `"abnormal"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub closes_by_code: BTreeMap<String, u64>,
    pub lost: u64,
    pub connects_failed: u64,
    pub delivery_latency: Pcts,
    pub ack_latency: Pcts,
    pub server_rss_bytes: Option<u64>,
    pub server_cpu_percent: Option<f64>,
    pub generator_cpu_percent: f64,
    pub machine_cpu_percent: f64,
    pub softirq_percent: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub bench_version: String,
    pub git_commit: Option<String>,
    pub cpu_model: String,
    pub cores: usize,
    pub os: String,
    pub kernel: String,
}

/// How `invalid_reasons` words the two reasons that outputs show on their
/// own lines (interruption, saturation), so they can leave them out of the
/// one-line rule summary.
const INTERRUPTED: &str = "the run was interrupted";
const SATURATED: &str = "the load generator was saturated";

impl RunResults {
    /// Every reason this run cannot be trusted (empty when it can):
    /// interrupted, generator saturated, and the validity rules.
    pub fn invalid_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.interrupted {
            reasons.push(match &self.interrupt_reason {
                Some(why) => format!("{INTERRUPTED}: {why}"),
                None => INTERRUPTED.to_string(),
            });
        }
        if self.generator.saturated {
            let why = self.generator.saturation_reasons.join("; ");
            reasons.push(if why.is_empty() {
                SATURATED.to_string()
            } else {
                format!("{SATURATED}: {why}")
            });
        }
        for r in &self.validity.reasons {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        reasons
    }

    /// The validity rules beyond interruption and saturation, which the
    /// terminal summary and the report show on lines of their own.
    pub fn rule_reasons(&self) -> Vec<&str> {
        self.validity
            .reasons
            .iter()
            .map(String::as_str)
            .filter(|w| !w.starts_with(INTERRUPTED) && !w.starts_with(SATURATED))
            .collect()
    }

    pub fn is_invalid(&self) -> bool {
        self.interrupted || self.generator.saturated || !self.validity.reasons.is_empty()
    }

    /// Folds interrupted / saturated into `validity` (idempotent), so the
    /// record says in one place whether the run can be trusted.
    pub fn seal_validity(&mut self) {
        self.validity.reasons = self.invalid_reasons();
        self.validity.valid = self.validity.reasons.is_empty();
    }

    /// Resolves a metric path used by thresholds, compare and capacity:
    /// `<latency>.<stat>` (e.g. `delivery_latency.p99`, in ms),
    /// `errors.rate`, `errors.count`, `delivery.lost`, `delivery.duplicates`,
    /// `readiness.never_ready_share`, `readiness.never_ready`,
    /// `delivery.out_of_order`, `delivery.loss_rate`, `counters.<name>`,
    /// `throughput.<field>`, `server.<field>`, `generator.<field>`,
    /// and `memory_per_connection` (bytes, server).
    pub fn metric_value(&self, path: &str) -> Option<f64> {
        let c = &self.counters;
        let (head, tail) = path.split_once('.').unwrap_or((path, ""));
        match (head, tail) {
            ("errors", "rate") => Some(c.error_rate()),
            ("errors", "count") => Some(c.errors_total() as f64),
            ("delivery", "lost") => Some(c.lost as f64),
            ("delivery", "duplicates") => Some(c.duplicates as f64),
            ("delivery", "out_of_order") => Some(c.out_of_order as f64),
            ("delivery", "loss_rate") => Some(if c.deliveries_expected == 0 {
                0.0
            } else {
                c.lost as f64 / c.deliveries_expected as f64
            }),
            ("memory_per_connection", "") => self.server.memory_per_connection_bytes,
            ("readiness", "never_ready_share") => Some(self.readiness.never_ready_share),
            ("readiness", "never_ready") => {
                Some(self.readiness.planned.saturating_sub(self.readiness.ready) as f64)
            }
            ("throughput", field) => match field {
                "chat_sent_per_s" => Some(self.throughput.chat_sent_per_s),
                "deliveries_per_s" => Some(self.throughput.deliveries_per_s),
                "deliveries_per_s_peak" => Some(self.throughput.deliveries_per_s_peak),
                "bytes_received_per_s" => Some(self.throughput.bytes_received_per_s),
                _ => None,
            },
            ("server", field) => match field {
                "rss_peak_bytes" => self.server.rss_peak_bytes.map(|v| v as f64),
                "memory_per_connection_bytes" => self.server.memory_per_connection_bytes,
                "cpu_percent_mean" => self.server.cpu_percent_mean,
                "cpu_percent_peak" => self.server.cpu_percent_peak,
                _ => None,
            },
            ("generator", field) => match field {
                "cpu_percent_mean" => Some(self.generator.cpu_percent_mean),
                "rss_peak_bytes" => Some(self.generator.rss_peak_bytes as f64),
                "memory_per_client_bytes" => self.generator.memory_per_client_bytes,
                _ => None,
            },
            ("counters", name) => {
                let v = serde_json::to_value(c).ok()?;
                match v.get(name)? {
                    serde_json::Value::Number(n) => n.as_f64(),
                    serde_json::Value::Object(m) => {
                        Some(m.values().filter_map(|x| x.as_f64()).sum())
                    }
                    _ => None,
                }
            }
            (name, stat) => {
                let m = self.metrics.get(name)?;
                Some(match stat {
                    "count" => m.count as f64,
                    "min" => m.min,
                    "mean" => m.mean,
                    "p50" => m.p50,
                    "p90" => m.p90,
                    "p99" => m.p99,
                    "p999" => m.p999,
                    "max" => m.max,
                    _ => return None,
                })
            }
        }
    }
}

//! The validated run plan: what `bench run` executes.
//!
//! Stage two of the two-stage configuration (raw TOML + flags → `Plan`).
//! Everything here has been checked; engine code never re-validates and never
//! sees a raw string where a typed value belongs. No socket opens before a
//! `Plan` exists.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub seed: u64,
    /// The scenario file this plan came from, if any.
    pub source: Option<PathBuf>,
    pub target: TargetPlan,
    pub stages: Vec<Stage>,
    pub rooms: RoomPlan,
    pub populations: Vec<Population>,
    pub thresholds: Vec<Threshold>,
    pub output: OutputPlan,
    pub run: RunOptions,
    /// `[[faults]]`, in time order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
}

/// Something bench does to the server it started, at a point of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    #[serde(serialize_with = "human_duration")]
    pub at: Duration,
    pub action: FaultAction,
    /// Start the server again (same port, same flags) this long after;
    /// for `restart_redis`, start Redis again this long after.
    #[serde(serialize_with = "human_duration_opt")]
    pub restart_after: Option<Duration>,
    /// `kill_process`: the index of the server process to kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// SIGKILL: connections drop without a close frame.
    Kill,
    /// SIGTERM: the bundled server closes every connection with 1012 first.
    RestartGraceful,
    /// SIGKILL to one process of a multi-process server (a child of the
    /// supervisor bench started); the supervisor starts it again.
    KillProcess,
    /// SIGTERM to the redis-server bench started, then a start again.
    RestartRedis,
}

impl Plan {
    /// Total scheduled duration of all stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Highest client count any stage reaches.
    pub fn peak_clients(&self) -> u32 {
        self.stages.iter().map(|s| s.target).max().unwrap_or(0)
    }

    /// Replaces the stages; with a constant room size the room count
    /// follows the new peak, so rooms stay `size` members.
    pub fn set_stages(&mut self, stages: Vec<Stage>) {
        self.stages = stages;
        if let Some(size) = self.rooms.size {
            self.rooms.count =
                RoomPlan::count_for(size, self.rooms.per_client, self.peak_clients());
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetPlan {
    pub endpoint: Endpoint,
    pub protocol: Protocol,
    pub auth: Option<AuthPlan>,
    /// Extra processes to sample (server_pid / server_process), besides a spawned child.
    pub server_pids: Vec<u32>,
    pub server_process: Option<String>,
    /// `[target.socketio]` (only with `protocol = "socketio"`; `None` means
    /// the defaults). Its static `auth` payload is never serialized.
    pub socketio: Option<super::socketio::SocketIoOptions>,
    /// `[target.json]` (required with `protocol = "json"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<super::json::JsonOptions>,
    /// `[target] deflate`: offer permessage-deflate with these parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deflate: Option<DeflatePlan>,
    /// `[target.redis]`: a redis-server bench starts before the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisPlan>,
    /// redis-server processes to sample apart from the server (set by
    /// `bench capacity` for the Redis it started).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redis_pids: Vec<u32>,
    /// `wss://`: the TLS client's options (`None`: plain `ws://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPlan>,
}

impl TargetPlan {
    /// Delivery accounting done by the generator (`protocol = "json"`, or
    /// Socket.IO with `accounting = "generator"`): its ledger is shared by
    /// the worker threads of one process, so such a run cannot be split
    /// over processes or shards.
    pub fn generator_accounting(&self) -> bool {
        self.json.is_some()
            || self
                .socketio
                .as_ref()
                .is_some_and(|s| s.accounting == super::socketio::Accounting::Generator)
    }
}

/// A redis-server bench starts: its own invocation (`redis-server` on a
/// free loopback port, AOF on, in a temporary directory) or a command
/// listening at a known URL. The bundled server gets `--redis URL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisPlan {
    /// `None`: bench's own invocation.
    pub command: Option<Vec<String>>,
    /// Where `command` listens (`redis://HOST:PORT`); `None` with bench's own.
    pub url: Option<String>,
}

/// `[target.tls]`, validated: the certificates are read and parsed already.
#[derive(Debug, Clone, Serialize)]
pub struct TlsPlan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Its certificates (DER), trusted instead of the webpki roots.
    #[serde(skip)]
    pub ca_certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// No certificate verification at all.
    pub insecure: bool,
    /// SNI and the name the certificate must carry (default: the URL's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// Offer session resumption (TLS 1.3 tickets, TLS 1.2 tickets / ids).
    pub resume: bool,
    /// The bundled server makes a throwaway self-signed certificate, which
    /// the generator trusts.
    pub self_signed: bool,
}

/// The permessage-deflate offer (RFC 7692 §7.1) every client makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeflatePlan {
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_max_window_bits: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_max_window_bits: Option<u8>,
}

impl DeflatePlan {
    pub fn offer(&self) -> wire::ws::deflate::Offer {
        wire::ws::deflate::Offer {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits,
            client_max_window_bits: Some(self.client_max_window_bits),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// An already-running server.
    Url(WsUrl),
    /// Start the bundled reference server (`bench serve`) on a free loopback
    /// port; `tls`: with a throwaway self-signed certificate.
    Bundled {
        args: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
    },
    /// Start an arbitrary server command (e.g. a Node peer), then connect to `url`.
    Command {
        argv: Vec<String>,
        url: WsUrl,
        #[serde(serialize_with = "human_duration")]
        ready_timeout: Duration,
    },
}

/// A parsed `ws://` / `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WsUrl {
    pub secure: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, e.g. `/ws?x=1`.
    pub path: String,
}

impl std::fmt::Display for WsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Reference protocol v1 (JSON text frames).
    Chat,
    /// Engine.IO v4 + Socket.IO v5.
    Socketio,
    /// Any JSON-over-WebSocket server, shaped by `[target.json]`.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Query,
    Header,
    FirstMessage,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthPlan {
    pub mode: AuthMode,
    /// HS256 secret, already resolved from `env:NAME` if given that way.
    #[serde(skip_serializing)]
    pub secret: String,
    /// Lifetime of each minted token (`exp` = now + ttl).
    #[serde(serialize_with = "human_duration")]
    pub ttl: Duration,
}

/// One `[[stages]]` entry: ramp linearly to `target` clients over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stage {
    #[serde(serialize_with = "human_duration")]
    pub duration: Duration,
    pub target: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomPlan {
    /// Rooms in the run. With `size` it is derived from the peak clients
    /// ([`RoomPlan::count_for`]), so it is always the effective count.
    pub count: u32,
    pub per_client: u32,
    pub distribution: RoomDistribution,
    /// Room names are `{prefix}{index}`.
    pub prefix: String,
    /// Constant room size (members per room): the count follows the clients
    /// and clients fill rooms in index order. `None`: a fixed `count`.
    pub size: Option<u32>,
}

impl RoomPlan {
    /// Rooms `clients` clients need at `size` members per room: one layer
    /// of ⌈clients / size⌉ rooms per room a client joins.
    pub fn count_for(size: u32, per_client: u32, clients: u32) -> u32 {
        clients
            .max(1)
            .div_ceil(size.max(1))
            .saturating_mul(per_client.max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomDistribution {
    Uniform,
    Zipf { exponent: f64 },
}

/// One `[[clients]]` population.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub name: String,
    /// Normalised share of all clients (weights sum to 1).
    pub share: f64,
    /// Mean chat messages per second per client (Poisson); 0 = lurker.
    pub chat_rate: f64,
    pub message_size: SizeRange,
    pub typing: bool,
    /// Mean time between planned disconnects (exponential); None = never.
    #[serde(serialize_with = "human_duration_opt")]
    pub reconnect_every: Option<Duration>,
    pub reconnect_backoff: Backoff,
    pub resume: bool,
    /// Application-level ping every this often, for `ping_rtt`; None = off.
    #[serde(serialize_with = "human_duration_opt")]
    pub ping_interval: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SizeRange {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backoff {
    #[serde(serialize_with = "human_duration")]
    pub initial: Duration,
    #[serde(serialize_with = "human_duration")]
    pub max: Duration,
    /// Fraction of each delay randomised, 0..=1.
    pub jitter: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CmpOp {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
}

impl CmpOp {
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Self::Lt => lhs < rhs,
            Self::Le => lhs <= rhs,
            Self::Gt => lhs > rhs,
            Self::Ge => lhs >= rhs,
            Self::Eq => lhs == rhs,
        }
    }
}

/// A pass/fail condition on one metric path of the results.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    /// A path understood by `RunResults::metric_value`, e.g. `delivery_latency.p99`.
    pub metric: String,
    pub op: CmpOp,
    /// In the metric's canonical unit: ms for latencies, a fraction for rates, bytes, counts.
    pub value: f64,
    /// The condition as the user wrote it, e.g. `< 50ms`.
    pub condition: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Html,
    Junit,
    Markdown,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputPlan {
    pub dir: PathBuf,
    pub formats: Vec<Format>,
}

/// How the generator's session timers fire (`[run] pacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PacingMode {
    /// A per-worker `timerfd` with absolute deadlines: µs precision.
    #[default]
    Timerfd,
    /// tokio's timer wheel: 1 ms granularity, deadlines rounded up.
    Tokio,
}

impl PacingMode {
    pub fn name(self) -> &'static str {
        match self {
            PacingMode::Timerfd => "timerfd",
            PacingMode::Tokio => "tokio",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    /// Worker tasks/threads that own shards of the clients.
    pub workers: usize,
    /// Source addresses to spread client sockets over (ephemeral port
    /// limit): `[run] source_addresses`, or its old name `source_addrs`.
    pub source_addrs: Vec<IpAddr>,
    /// Which of the two keys gave them (for messages).
    #[serde(skip)]
    pub source_key: &'static str,
    /// `[run] processes`: worker processes; `None` picks them from the fd limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    #[serde(serialize_with = "human_duration")]
    pub connect_timeout: Duration,
    /// After the last stage: keep receiving this long so in-flight deliveries count.
    #[serde(serialize_with = "human_duration")]
    pub drain: Duration,
    /// Stop the run early when this share of connection attempts has failed.
    pub abort_on_connect_failure_share: Option<f64>,
    /// The run is invalid when more than this share of planned clients
    /// were never ready (`None`: no bound).
    pub max_not_ready: Option<f64>,
    /// The run stops, invalid, when the target refused every connection
    /// for longer than this (`None`: no bound).
    #[serde(serialize_with = "human_duration_opt")]
    pub max_unreachable: Option<Duration>,
    /// Whole-run metrics (histograms, counters, throughput, resource means)
    /// cover only the seconds after this; the timeseries still covers all.
    /// Zero for `bench run`; `bench capacity` sets it to each step's warm-up.
    /// Not a scenario key.
    #[serde(
        serialize_with = "human_duration",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub measure_after: Duration,
    /// How session timers (the send schedule) are driven.
    pub pacing: PacingMode,
}

/// Durations serialize as the scenario file writes them (`"30s"`,
/// `"250ms"`), so `results.json`'s `scenario` reads like the input.
pub(crate) fn human_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&wire::units::format_duration(*d))
}

fn human_duration_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human_duration(d, s),
        None => s.serialize_none(),
    }
}

/// Command-line values that override or extend the scenario file
/// (`--out`, `--threshold`, `--seed`, `--url`). Applied during validation,
/// so the resulting [`Plan`] is still fully checked.
#[derive(Debug, Clone, Default)]
pub struct PlanOverrides {
    pub out_dir: Option<PathBuf>,
    /// Extra thresholds as written on the command line, e.g. `delivery_latency.p99<50ms`.
    pub thresholds: Vec<String>,
    pub seed: Option<u64>,
    /// Replaces `[target] url` (and so disables the bundled server).
    pub target_url: Option<String>,
}

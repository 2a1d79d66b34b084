//! Server configuration: command-line flags, the `BENCH_JWT_SECRET`
//! environment variable and an optional TOML file, resolved into one
//! [`Config`]. Precedence: flag/env > file > built-in default.
//!
//! Flags are `Option`s so that an omitted flag can fall back to the file;
//! the defaults shown in `--help` are written into the help text and a unit
//! test checks them against [`Config::default`] so they cannot drift.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The handshake budget never defaults below this, however small the
/// connection cap: idle sockets must not lock a small server's clients out.
const MIN_HANDSHAKES: usize = 1024;

use serde::Deserialize;

use crate::chaos::{ChaosConfig, Overload, Stall};
use wire::units::{parse_duration, parse_size};

/// Flags shared by the `reference-server` binary and `bench serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// TOML file with the same keys as these flags (e.g. `heartbeat-interval = "10s"`); flags win
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HS256 secret; when set, every connection must present a JWT [default: none, auth off]
    #[arg(
        long,
        env = "BENCH_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<String>,
    /// WebSocket ping interval [default: 30s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// Close a connection whose pong is this late [default: 10s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
    /// Time allowed for the first-frame `auth` when no token came with the upgrade [default: 5s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub auth_timeout: Option<Duration>,
    /// Frames per second per connection (token bucket refill); 0 disables [default: 20]
    #[arg(long, value_name = "PER_SEC")]
    pub rate_limit: Option<f64>,
    /// Token bucket size [default: 40]
    #[arg(long, value_name = "FRAMES")]
    pub rate_burst: Option<u32>,
    /// Rate-limited frames within --rate-abuse-window that close the connection with 1008 [default: 100]
    #[arg(long, value_name = "FRAMES")]
    pub rate_abuse_limit: Option<u32>,
    /// Window for counting rate-limit abuse [default: 10s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub rate_abuse_window: Option<Duration>,
    /// Coalesce outbound frames into `batch` frames for this long; 0 = off [default: 0]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub batch_window: Option<Duration>,
    /// Most messages in one `batch` frame [default: 64]
    #[arg(long, value_name = "N")]
    pub batch_max: Option<usize>,
    /// Largest inbound WebSocket message; bigger closes with 1009 [default: 64KiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_message_size: Option<u64>,
    /// Offer permessage-deflate (RFC 7692) to clients that ask for it [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub deflate: Option<bool>,
    /// With --deflate, messages smaller than this go uncompressed [default: 64B]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub deflate_threshold: Option<u64>,
    /// With --deflate, keep the LZ77 window across messages (per-connection history, better ratio); off = server_no_context_takeover and client_no_context_takeover, shared compression [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub deflate_context_takeover: Option<bool>,
    /// Most open WebSocket connections; more get HTTP 503 [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most rooms one connection may be in [default: 100]
    #[arg(long, value_name = "N")]
    pub max_rooms_per_conn: Option<usize>,
    /// Longest room name, in bytes [default: 128]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_room_len: Option<u64>,
    /// Longest chat text, in bytes; longer gets TOO_LARGE [default: 16KiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_text_len: Option<u64>,
    /// Outbound queue bound per connection, in bytes; over it after shedding typing closes with 1013 [default: 1MiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_queue_bytes: Option<u64>,
    /// Outbound queue bound per connection, in frames [default: 4096]
    #[arg(long, value_name = "N")]
    pub max_queue_frames: Option<usize>,
    /// Chat messages kept per room for `resume` [default: 100]
    #[arg(long, value_name = "N")]
    pub history_len: Option<usize>,
    /// How long an empty room keeps its history before it is forgotten [default: 5m]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub room_ttl: Option<Duration>,
    /// Comma-separated `Origin` values allowed to upgrade; others get 403 [default: any]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Time allowed for the HTTP request head; slower clients get 408 [default: 10s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,
    /// Most sockets still in the HTTP handshake (not counted in --max-connections); more get 503 at once; defaults to --max-connections (at least 1024), so a connect storm up to the cap is never refused [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_handshakes: Option<usize>,
    /// How long a closing connection waits to deliver its close frame and read the peer's [default: 5s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub close_timeout: Option<Duration>,
    /// On SIGTERM/SIGINT, wait at most this long for connections to close [default: 5s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// Also serve `/echo`, a plain RFC 6455 echo on the same codec (a conformance aid for Autobahn; no auth) [default: off]
    #[arg(long)]
    pub echo: bool,
    /// Worker threads; 0 = one per core [default: 0]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Bind with SO_REUSEPORT so several processes can share one --listen address; the kernel spreads connections
    #[arg(long)]
    pub reuse_port: bool,
    /// Run N server processes on one port (SO_REUSEPORT) under a supervisor that restarts a dead one [default: 1]
    #[arg(long, value_name = "N")]
    pub processes: Option<usize>,
    /// Redis URL of the cross-process room bus, e.g. `redis://127.0.0.1:6379` [default: none, rooms are local]
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Start even when --redis cannot be reached (rooms stay local until it is; /healthz says degraded)
    #[arg(long)]
    pub redis_optional: bool,
    /// A node that has not refreshed its liveness key in Redis for this long is presumed dead; its members leave their rooms [default: 10s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub redis_node_ttl: Option<Duration>,
    /// Log filter for stderr (tracing syntax, e.g. `info` or `reference_server=debug`) [default: warn]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Serve TLS (`wss://`, `https://`) with this certificate chain (PEM); needs --tls-key [default: plaintext]
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// TEST ONLY: extra delay added to every chat delivery [default: 0]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub chaos_delay: Option<Duration>,
    /// TEST ONLY: share (0..1) of chat deliveries silently dropped; history keeps them [default: 0]
    #[arg(long, value_name = "SHARE")]
    pub chaos_drop: Option<f64>,
    /// TEST ONLY: seed for --chaos-drop [default: 0]
    #[arg(long, value_name = "N")]
    pub chaos_seed: Option<u64>,
    /// TEST ONLY: every PERIOD, freeze all delivery for DURATION, e.g. `2s:200ms` [default: off]
    #[arg(long, value_name = "PERIOD:DURATION")]
    pub chaos_stall: Option<String>,
    /// TEST ONLY: extra heap bytes held per connection [default: 0]
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub chaos_pad: Option<u64>,
    /// TEST ONLY: above RATE deliveries/s (last second), add DELAY to every delivery, e.g. `50000:20ms` [default: off]
    #[arg(long, value_name = "RATE:DELAY")]
    pub chaos_overload: Option<String>,
}

/// Upper bound of `--processes` (each process holds its own runtime and threads).
pub const MAX_PROCESSES: usize = 64;

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub jwt_secret: Option<String>,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub auth_timeout: Duration,
    pub rate_limit: f64,
    pub rate_burst: u32,
    pub rate_abuse_limit: u32,
    pub rate_abuse_window: Duration,
    pub batch_window: Duration,
    pub batch_max: usize,
    pub max_message_size: usize,
    pub deflate: bool,
    pub deflate_threshold: usize,
    pub deflate_context_takeover: bool,
    pub max_connections: usize,
    pub max_rooms_per_conn: usize,
    pub max_room_len: usize,
    pub max_text_len: usize,
    pub max_queue_bytes: usize,
    pub max_queue_frames: usize,
    pub history_len: usize,
    pub room_ttl: Duration,
    pub allowed_origins: Vec<String>,
    pub handshake_timeout: Duration,
    pub max_handshakes: usize,
    pub close_timeout: Duration,
    pub drain_timeout: Duration,
    pub echo: bool,
    pub workers: usize,
    pub reuse_port: bool,
    pub processes: usize,
    pub redis: Option<String>,
    pub redis_optional: bool,
    pub redis_node_ttl: Duration,
    pub log: String,
    /// `--tls-cert` and `--tls-key`: the port speaks TLS only.
    pub tls: Option<TlsFiles>,
    pub chaos: ChaosConfig,
}

/// The PEM files of `--tls-cert` / `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(5),
            rate_limit: 20.0,
            rate_burst: 40,
            rate_abuse_limit: 100,
            rate_abuse_window: Duration::from_secs(10),
            batch_window: Duration::ZERO,
            batch_max: 64,
            max_message_size: 64 * 1024,
            deflate: false,
            deflate_threshold: 64,
            deflate_context_takeover: false,
            max_connections: 10_000,
            max_rooms_per_conn: 100,
            max_room_len: 128,
            max_text_len: 16 * 1024,
            max_queue_bytes: 1024 * 1024,
            max_queue_frames: 4096,
            history_len: 100,
            room_ttl: Duration::from_secs(300),
            allowed_origins: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 10_000,
            close_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            echo: false,
            workers: 0,
            reuse_port: false,
            processes: 1,
            redis: None,
            redis_optional: false,
            redis_node_ttl: Duration::from_secs(10),
            log: "warn".into(),
            tls: None,
            chaos: ChaosConfig::default(),
        }
    }
}

/// A configuration mistake by the user (bad flag value, bad file): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The TOML file: the same names as the flags (kebab-case).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    jwt_secret: Option<String>,
    heartbeat_interval: Option<String>,
    heartbeat_timeout: Option<String>,
    auth_timeout: Option<String>,
    rate_limit: Option<f64>,
    rate_burst: Option<u32>,
    rate_abuse_limit: Option<u32>,
    rate_abuse_window: Option<String>,
    batch_window: Option<String>,
    batch_max: Option<usize>,
    max_message_size: Option<SizeValue>,
    deflate: Option<bool>,
    deflate_threshold: Option<SizeValue>,
    deflate_context_takeover: Option<bool>,
    max_connections: Option<usize>,
    max_rooms_per_conn: Option<usize>,
    max_room_len: Option<SizeValue>,
    max_text_len: Option<SizeValue>,
    max_queue_bytes: Option<SizeValue>,
    max_queue_frames: Option<usize>,
    history_len: Option<usize>,
    room_ttl: Option<String>,
    allowed_origins: Option<Vec<String>>,
    handshake_timeout: Option<String>,
    max_handshakes: Option<usize>,
    close_timeout: Option<String>,
    drain_timeout: Option<String>,
    echo: Option<bool>,
    workers: Option<usize>,
    reuse_port: Option<bool>,
    processes: Option<usize>,
    redis: Option<String>,
    redis_optional: Option<bool>,
    redis_node_ttl: Option<String>,
    log: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    chaos_delay: Option<String>,
    chaos_drop: Option<f64>,
    chaos_seed: Option<u64>,
    chaos_stall: Option<String>,
    chaos_pad: Option<SizeValue>,
    chaos_overload: Option<String>,
}

/// A size in a TOML file: either an integer or a string like `"64KiB"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

fn file_duration(key: &str, v: Option<String>) -> Result<Option<Duration>, ConfigError> {
    v.map(|s| parse_duration(&s).map_err(|e| ConfigError(format!("`{key}`: {e}"))))
        .transpose()
}

fn file_size(key: &str, v: Option<SizeValue>) -> Result<Option<u64>, ConfigError> {
    v.map(|s| match s {
        SizeValue::Bytes(n) => Ok(n),
        SizeValue::Text(t) => parse_size(&t).map_err(|e| ConfigError(format!("`{key}`: {e}"))),
    })
    .transpose()
}

impl ServerArgs {
    /// Reads the TOML file, if any, and resolves everything into a [`Config`].
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut file_args = match &self.config {
            Some(path) => load_file(path)?,
            None => ServerArgs::default(),
        };
        file_args.overlay(self.clone());
        file_args.into_config()
    }

    /// Every field set in `over` replaces the one in `self`.
    fn overlay(&mut self, over: ServerArgs) {
        self.echo |= over.echo;
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            listen,
            config,
            jwt_secret,
            heartbeat_interval,
            heartbeat_timeout,
            auth_timeout,
            rate_limit,
            rate_burst,
            rate_abuse_limit,
            rate_abuse_window,
            batch_window,
            batch_max,
            max_message_size,
            deflate,
            deflate_threshold,
            deflate_context_takeover,
            max_connections,
            max_rooms_per_conn,
            max_room_len,
            max_text_len,
            max_queue_bytes,
            max_queue_frames,
            history_len,
            room_ttl,
            allowed_origins,
            handshake_timeout,
            max_handshakes,
            close_timeout,
            drain_timeout,
            workers,
            processes,
            redis,
            redis_node_ttl,
            log,
            tls_cert,
            tls_key,
            chaos_delay,
            chaos_drop,
            chaos_seed,
            chaos_stall,
            chaos_pad,
            chaos_overload
        );
        self.reuse_port |= over.reuse_port;
        self.redis_optional |= over.redis_optional;
    }

    fn into_config(self) -> Result<Config, ConfigError> {
        let d = Config::default();
        let usize_of = |v: Option<u64>, default: usize| v.map_or(default, |n| n as usize);
        let chaos = ChaosConfig {
            delay: self.chaos_delay.unwrap_or_default(),
            drop: self.chaos_drop.unwrap_or(0.0),
            seed: self.chaos_seed.unwrap_or(0),
            stall: self.chaos_stall.as_deref().map(Stall::parse).transpose()?,
            pad: usize_of(self.chaos_pad, 0),
            overload: self
                .chaos_overload
                .as_deref()
                .map(Overload::parse)
                .transpose()?,
        };
        let c = Config {
            listen: self.listen.unwrap_or(d.listen),
            jwt_secret: self.jwt_secret.filter(|s| !s.is_empty()),
            heartbeat_interval: self.heartbeat_interval.unwrap_or(d.heartbeat_interval),
            heartbeat_timeout: self.heartbeat_timeout.unwrap_or(d.heartbeat_timeout),
            auth_timeout: self.auth_timeout.unwrap_or(d.auth_timeout),
            rate_limit: self.rate_limit.unwrap_or(d.rate_limit),
            rate_burst: self.rate_burst.unwrap_or(d.rate_burst),
            rate_abuse_limit: self.rate_abuse_limit.unwrap_or(d.rate_abuse_limit),
            rate_abuse_window: self.rate_abuse_window.unwrap_or(d.rate_abuse_window),
            batch_window: self.batch_window.unwrap_or(d.batch_window),
            batch_max: self.batch_max.unwrap_or(d.batch_max),
            max_message_size: usize_of(self.max_message_size, d.max_message_size),
            deflate: self.deflate.unwrap_or(d.deflate),
            deflate_threshold: usize_of(self.deflate_threshold, d.deflate_threshold),
            deflate_context_takeover: self
                .deflate_context_takeover
                .unwrap_or(d.deflate_context_takeover),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_rooms_per_conn: self.max_rooms_per_conn.unwrap_or(d.max_rooms_per_conn),
            max_room_len: usize_of(self.max_room_len, d.max_room_len),
            max_text_len: usize_of(self.max_text_len, d.max_text_len),
            max_queue_bytes: usize_of(self.max_queue_bytes, d.max_queue_bytes),
            max_queue_frames: self.max_queue_frames.unwrap_or(d.max_queue_frames),
            history_len: self.history_len.unwrap_or(d.history_len),
            room_ttl: self.room_ttl.unwrap_or(d.room_ttl),
            allowed_origins: self
                .allowed_origins
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            handshake_timeout: self.handshake_timeout.unwrap_or(d.handshake_timeout),
            // A storm as large as the connection cap must not be refused;
            // slow heads still time out and never hold connection slots.
            max_handshakes: self.max_handshakes.unwrap_or_else(|| {
                self.max_connections
                    .map_or(d.max_handshakes, |n| n.max(MIN_HANDSHAKES))
            }),
            close_timeout: self.close_timeout.unwrap_or(d.close_timeout),
            drain_timeout: self.drain_timeout.unwrap_or(d.drain_timeout),
            echo: self.echo,
            workers: self.workers.unwrap_or(d.workers),
            reuse_port: self.reuse_port,
            processes: self.processes.unwrap_or(d.processes),
            redis: self.redis.filter(|s| !s.trim().is_empty()),
            redis_optional: self.redis_optional,
            redis_node_ttl: self.redis_node_ttl.unwrap_or(d.redis_node_ttl),
            log: self.log.unwrap_or(d.log),
            tls: match (self.tls_cert, self.tls_key) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (Some(_), None) => return Err(ConfigError("--tls-cert needs --tls-key".into())),
                (None, Some(_)) => return Err(ConfigError("--tls-key needs --tls-cert".into())),
            },
            chaos,
        };
        c.validate()?;
        Ok(c)
    }
}

fn load_file(path: &Path) -> Result<ServerArgs, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let f: FileConfig = toml::from_str(&text)
        .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.message())))?;
    let listen = f
        .listen
        .map(|s| {
            s.parse::<SocketAddr>()
                .map_err(|e| ConfigError(format!("`listen`: `{s}`: {e}")))
        })
        .transpose()?;
    Ok(ServerArgs {
        listen,
        config: None,
        jwt_secret: f.jwt_secret,
        heartbeat_interval: file_duration("heartbeat-interval", f.heartbeat_interval)?,
        heartbeat_timeout: file_duration("heartbeat-timeout", f.heartbeat_timeout)?,
        auth_timeout: file_duration("auth-timeout", f.auth_timeout)?,
        rate_limit: f.rate_limit,
        rate_burst: f.rate_burst,
        rate_abuse_limit: f.rate_abuse_limit,
        rate_abuse_window: file_duration("rate-abuse-window", f.rate_abuse_window)?,
        batch_window: file_duration("batch-window", f.batch_window)?,
        batch_max: f.batch_max,
        max_message_size: file_size("max-message-size", f.max_message_size)?,
        deflate: f.deflate,
        deflate_threshold: file_size("deflate-threshold", f.deflate_threshold)?,
        deflate_context_takeover: f.deflate_context_takeover,
        max_connections: f.max_connections,
        max_rooms_per_conn: f.max_rooms_per_conn,
        max_room_len: file_size("max-room-len", f.max_room_len)?,
        max_text_len: file_size("max-text-len", f.max_text_len)?,
        max_queue_bytes: file_size("max-queue-bytes", f.max_queue_bytes)?,
        max_queue_frames: f.max_queue_frames,
        history_len: f.history_len,
        room_ttl: file_duration("room-ttl", f.room_ttl)?,
        allowed_origins: f.allowed_origins,
        handshake_timeout: file_duration("handshake-timeout", f.handshake_timeout)?,
        max_handshakes: f.max_handshakes,
        close_timeout: file_duration("close-timeout", f.close_timeout)?,
        drain_timeout: file_duration("drain-timeout", f.drain_timeout)?,
        echo: f.echo.unwrap_or(false),
        workers: f.workers,
        reuse_port: f.reuse_port.unwrap_or(false),
        processes: f.processes,
        redis: f.redis,
        redis_optional: f.redis_optional.unwrap_or(false),
        redis_node_ttl: file_duration("redis-node-ttl", f.redis_node_ttl)?,
        log: f.log,
        tls_cert: f.tls_cert,
        tls_key: f.tls_key,
        chaos_delay: file_duration("chaos-delay", f.chaos_delay)?,
        chaos_drop: f.chaos_drop,
        chaos_seed: f.chaos_seed,
        chaos_stall: f.chaos_stall,
        chaos_pad: file_size("chaos-pad", f.chaos_pad)?,
        chaos_overload: f.chaos_overload,
    })
}

impl Config {
    /// Rejects values that would make the server misbehave rather than fail loudly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout.is_zero() {
            return bad("--heartbeat-interval and --heartbeat-timeout must be above 0");
        }
        if self.auth_timeout.is_zero() || self.handshake_timeout.is_zero() {
            return bad("--auth-timeout and --handshake-timeout must be above 0");
        }
        if !(self.rate_limit.is_finite() && self.rate_limit >= 0.0) {
            return bad("--rate-limit must be a number >= 0 (0 disables)");
        }
        if self.rate_limit > 0.0 && self.rate_burst == 0 {
            return bad("--rate-burst must be at least 1 when --rate-limit is on");
        }
        if self.batch_max == 0 {
            return bad("--batch-max must be at least 1");
        }
        if self.max_message_size < 128 {
            return bad("--max-message-size must be at least 128 bytes");
        }
        if self.max_connections == 0 || self.max_rooms_per_conn == 0 || self.max_handshakes == 0 {
            return bad(
                "--max-connections, --max-handshakes and --max-rooms-per-conn must be at least 1",
            );
        }
        if self.max_room_len == 0 || self.max_queue_frames == 0 || self.max_queue_bytes < 1024 {
            return bad("--max-room-len and --max-queue-frames must be at least 1, --max-queue-bytes at least 1KiB");
        }
        if !(1..=MAX_PROCESSES).contains(&self.processes) {
            return Err(ConfigError(format!(
                "--processes must be 1 to {MAX_PROCESSES}"
            )));
        }
        if self.redis_node_ttl < Duration::from_millis(100) {
            return bad("--redis-node-ttl must be at least 100ms");
        }
        if let Some(files) = &self.tls {
            crate::tls::server_config(files)?;
        }
        if let Some(url) = &self.redis {
            if !(url.starts_with("redis://") || url.starts_with("unix://")) {
                return bad("--redis must be a redis:// or unix:// URL");
            }
        }
        if !(0.0..=1.0).contains(&self.chaos.drop) {
            return bad("--chaos-drop must be a share between 0 and 1");
        }
        Ok(())
    }
}

/// Runs the server until SIGTERM/SIGINT and returns the process outcome:
/// 0 after a graceful shutdown, 2 for a configuration error, 1 otherwise.
/// Prints exactly one `listening on HOST:PORT` line to stdout once accepting.
pub fn serve_blocking<O: From<u8>>(args: ServerArgs) -> O {
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return O::from(2);
        }
    };
    crate::server::init_logging(&config.log);
    let outcome = if config.processes > 1 {
        crate::supervise::run(&config)
    } else {
        crate::server::serve_until_signal(config)
    };
    match outcome {
        Ok(()) => O::from(0),
        Err(e) => {
            eprintln!("error: {e:#}");
            O::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use wire::units::{format_duration, format_size};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    #[test]
    fn help_shows_the_real_defaults() {
        let help = Cli::command().render_long_help().to_string();
        let d = Config::default();
        let expect = [
            format!("[default: {}]", d.listen),
            format!("[default: {}]", format_duration(d.heartbeat_interval)),
            format!("[default: {}]", format_duration(d.heartbeat_timeout)),
            format!("[default: {}]", format_duration(d.auth_timeout)),
            format!("[default: {}]", d.rate_limit),
            format!("[default: {}]", d.rate_burst),
            format!("[default: {}]", d.rate_abuse_limit),
            format!("[default: {}]", d.batch_max),
            format!("[default: {}]", format_size(d.max_message_size as u64)),
            format!("[default: {}]", d.max_connections),
            format!("[default: {}]", d.deflate),
            format!("[default: {}]", format_size(d.deflate_threshold as u64)),
            format!("[default: {}]", d.max_rooms_per_conn),
            format!("[default: {}]", format_size(d.max_room_len as u64)),
            format!("[default: {}]", format_size(d.max_text_len as u64)),
            format!("[default: {}]", format_size(d.max_queue_bytes as u64)),
            format!("[default: {}]", d.max_queue_frames),
            format!("[default: {}]", d.history_len),
            format!("[default: {}]", format_duration(d.room_ttl)),
            format!("[default: {}]", format_duration(d.drain_timeout)),
            format!("[default: {}]", format_duration(d.close_timeout)),
            format!("[default: {}]", d.max_handshakes),
            format!("[default: {}]", d.log),
            format!("[default: {}]", d.processes),
            format!("[default: {}]", format_duration(d.redis_node_ttl)),
        ];
        for e in expect {
            assert!(help.contains(&e), "help lacks {e}:\n{help}");
        }
    }

    #[test]
    fn file_then_flags_take_precedence() {
        let dir = std::env::temp_dir().join(format!("rs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "heartbeat-interval = \"7s\"\nrate-limit = 5\nmax-message-size = \"8KiB\"\nchaos-stall = \"2s:200ms\"\n",
        )
        .unwrap();
        let cli =
            Cli::try_parse_from(["x", "--config", path.to_str().unwrap(), "--rate-limit", "9"])
                .unwrap();
        let c = cli.args.resolve().unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(7));
        assert_eq!(c.rate_limit, 9.0);
        assert_eq!(c.max_message_size, 8192);
        let stall = c.chaos.stall.unwrap();
        assert_eq!(stall.period, Duration::from_secs(2));
        assert_eq!(stall.duration, Duration::from_millis(200));

        std::fs::write(&path, "heartbeat-intervl = \"7s\"\n").unwrap();
        let err = cli.args.resolve().unwrap_err().to_string();
        assert!(err.contains("heartbeat-intervl"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Sizes use the one rule of docs/units.md: `K` = `KiB` = 1024, `KB` = 1000.
    #[test]
    fn size_flags_share_the_scenario_units() {
        let size = |v: &str| {
            let cli = Cli::try_parse_from(["x", "--max-message-size", v]).unwrap();
            cli.args.resolve().unwrap().max_message_size
        };
        assert_eq!(size("64KB"), 64_000);
        assert_eq!(size("64K"), 65_536);
        assert_eq!(size("64KiB"), 65_536);
        assert!(Cli::try_parse_from(["x", "--max-message-size", "64kb"]).is_err());
    }

    #[test]
    fn rejects_bad_values() {
        let cli = Cli::try_parse_from(["x", "--chaos-drop", "1.5"]).unwrap();
        assert!(cli.args.resolve().is_err());
        let cli = Cli::try_parse_from(["x", "--chaos-stall", "200ms:2s"]).unwrap();
        assert!(cli.args.resolve().is_err());
        assert!(Cli::try_parse_from(["x", "--heartbeat-interval", "10"]).is_err());
        let c = Cli::try_parse_from(["x", "--deflate", "--deflate-threshold", "1KiB"]).unwrap();
        let c = c.args.resolve().unwrap();
        assert!(c.deflate && !c.deflate_context_takeover);
        assert_eq!(c.deflate_threshold, 1024);
        let c = Cli::try_parse_from(["x", "--deflate=false"]).unwrap();
        assert!(!c.args.resolve().unwrap().deflate);
    }
}

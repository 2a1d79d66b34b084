//! What every client of a run shares: the plan, the dialect, the resolved
//! target address, the clock and precomputed per-client tables. Built once,
//! before any socket opens, and shared read-only by all workers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use super::ledger::Ledger;
use super::schedule;
use crate::dialect::{Caps, Dialect};
use crate::scenario::socketio::Accounting;
use crate::scenario::{json, AuthMode, Plan};

/// Sends later than this past their intended time count as `late_sends`.
pub const LAG_TOLERANCE_US: u64 = 10_000;

pub struct RunCtx {
    pub plan: Arc<Plan>,
    pub dialect: Arc<dyn Dialect>,
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Upgrade request target before per-client query parameters.
    pub target: String,
    pub clock: Clock,
    /// End of the last stage, µs since run start.
    pub end_us: u64,
    pub drain: Duration,
    /// `{prefix}{index}` for every room.
    pub room_names: Vec<String>,
    /// Population of each client index.
    pub populations: Vec<u8>,
    /// Source addresses usable for this target (same loopback-ness).
    pub sources: Vec<IpAddr>,
    /// The slice of the clients this process runs (`--processes`, `--shard`).
    pub shard: super::shard::ShardSpec,
    /// `wss://`: the run's TLS client (set with [`RunCtx::with_tls`]).
    pub tls: Option<super::link::tls::TlsClient>,
    /// What the server confirms (greeting, joins, acks).
    pub caps: Caps,
    /// Generator-side accounting, for servers that number nothing.
    pub ledger: Option<Ledger>,
}

impl RunCtx {
    pub fn new(
        plan: Arc<Plan>,
        dialect: Arc<dyn Dialect>,
        addr: SocketAddr,
        host: String,
        url_path: &str,
        clock: Clock,
    ) -> Self {
        let shares: Vec<f64> = plan.populations.iter().map(|p| p.share).collect();
        let populations = schedule::populations(&shares, plan.peak_clients());
        let room_names = (0..plan.rooms.count)
            .map(|r| format!("{}{r}", plan.rooms.prefix))
            .collect();
        let mut sources: Vec<IpAddr> = plan
            .run
            .source_addrs
            .iter()
            .copied()
            .filter(|s| s.is_loopback() == addr.ip().is_loopback() && s.is_ipv4() == addr.is_ipv4())
            .collect();
        if sources.is_empty() && addr.ip().is_loopback() && addr.is_ipv4() {
            sources = auto_sources(plan.peak_clients());
        }
        let t = &plan.target;
        let generator = match (&t.json, &t.socketio) {
            (Some(j), _) => Some((j.delivery_window, j.echo_to_sender)),
            (None, Some(s)) if s.accounting == Accounting::Generator => {
                Some((json::DEFAULT_DELIVERY_WINDOW, s.echo_to_sender))
            }
            _ => None,
        };
        let ledger = generator.map(|(window, echo)| {
            Ledger::new(plan.run.workers, plan.rooms.count as usize, window, echo)
        });
        Self {
            caps: dialect.caps(),
            ledger,
            target: dialect.upgrade_target(url_path),
            end_us: plan.duration().as_micros() as u64,
            drain: plan.run.drain,
            dialect,
            addr,
            host,
            clock,
            room_names,
            populations,
            sources,
            plan,
            shard: super::shard::ShardSpec::WHOLE,
            tls: None,
        }
    }

    pub fn with_tls(mut self, tls: Option<super::link::tls::TlsClient>) -> Self {
        self.tls = tls;
        self
    }

    pub fn source_for(&self, client: u32) -> Option<IpAddr> {
        (!self.sources.is_empty()).then(|| self.sources[client as usize % self.sources.len()])
    }

    /// Room index from a room name we generated.
    pub fn room_index(&self, name: &str) -> Option<u32> {
        name.strip_prefix(self.plan.rooms.prefix.as_str())?
            .parse()
            .ok()
    }

    /// The request target and extra headers for client `i`, with auth applied.
    pub fn upgrade_request(&self, i: u32) -> (String, Vec<(String, String)>, Option<String>) {
        let user = format!("u{i}");
        let sep = if self.target.contains('?') { '&' } else { '?' };
        let Some(auth) = &self.plan.target.auth else {
            return (format!("{}{sep}user={user}", self.target), Vec::new(), None);
        };
        let token = mint_token(&auth.secret, &user, auth.ttl);
        match auth.mode {
            AuthMode::Query => (
                format!("{}{sep}token={token}", self.target),
                Vec::new(),
                None,
            ),
            AuthMode::Header => (
                self.target.clone(),
                vec![("Authorization".into(), format!("Bearer {token}"))],
                None,
            ),
            AuthMode::FirstMessage => (self.target.clone(), Vec::new(), Some(token)),
        }
    }
}

/// Clients per source address before the ephemeral port range (~28k on
/// Linux by default) gets tight.
const CLIENTS_PER_SOURCE: u32 = 20_000;

/// For big loopback runs without `run.source_addrs`: 127.0.0.1, .2, ... so
/// that each source address stays well inside the ephemeral port range.
/// Small runs use the default (unbound) source.
fn auto_sources(peak: u32) -> Vec<IpAddr> {
    if peak <= CLIENTS_PER_SOURCE {
        return Vec::new();
    }
    let n = peak.div_ceil(CLIENTS_PER_SOURCE).min(250) as u8;
    (1..=n).map(|i| IpAddr::from([127, 0, 0, i])).collect()
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
}

/// An HS256 JWT for one simulated user.
pub fn mint_token(secret: &str, user: &str, ttl: Duration) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + ttl.as_secs().max(1);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &Claims { sub: user, exp },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

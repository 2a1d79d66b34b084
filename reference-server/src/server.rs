//! The server as a library (mini-redis style): [`run`] takes a bound
//! listener, a configuration and a shutdown future, so tests and `bench`
//! can run it in-process. [`serve_until_signal`] is the process entry used
//! by the binary and `bench serve`.
//!
//! Two budgets guard the listener: `--max-handshakes` sockets may be in the
//! HTTP handshake at once (more are answered 503 without being read, and a
//! head slower than `--handshake-timeout` gets 408), and `--max-connections`
//! caps *upgraded* connections (over the cap, upgrades get 503). So idle or
//! slow sockets cannot take the slots of real clients. On shutdown the server stops accepting, asks every connection to close with
//! 1012, and waits at most `drain_timeout` for them.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

use crate::auth::Verifier;
use crate::chaos::Chaos;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::{self, Metrics};
use crate::peer::{CloseRequest, Peer, QueueLimits};
use crate::ratelimit::Limits;
use wire::ws::close_code;

const LISTEN_BACKLOG: u32 = 4096;

/// State shared by every connection task.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub hub: Hub,
    pub chaos: Arc<Chaos>,
    pub verifier: Option<Verifier>,
    pub rate_limits: Limits,
    /// Upgraded-connection slots (`--max-connections`).
    pub slots: Arc<Semaphore>,
    registry: Mutex<HashMap<u64, Arc<Peer>>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    drain_deadline: OnceLock<Instant>,
}

impl Shared {
    pub fn new(config: Config) -> Self {
        let metrics = Arc::new(Metrics::default());
        let chaos = Arc::new(Chaos::new(config.chaos.clone()));
        let limits = QueueLimits {
            max_bytes: config.max_queue_bytes,
            max_frames: config.max_queue_frames,
            batch_max: config.batch_max,
        };
        let mut hub = Hub::new(
            config.history_len,
            config.room_ttl,
            limits,
            metrics.clone(),
            chaos.clone(),
        );
        // With batching, batches are per connection: each compresses its own.
        if config.deflate && config.batch_window.is_zero() {
            hub.shared_deflate_threshold = Some(config.deflate_threshold);
        }
        Self {
            hub,
            verifier: config.jwt_secret.as_deref().map(Verifier::new),
            rate_limits: Limits {
                rate: config.rate_limit,
                burst: config.rate_burst,
                abuse_limit: config.rate_abuse_limit,
                abuse_window: config.rate_abuse_window,
            },
            slots: Arc::new(Semaphore::new(config.max_connections)),
            registry: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            drain_deadline: OnceLock::new(),
            metrics,
            chaos,
            config,
        }
    }

    pub fn alloc_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// When shutdown is draining, the instant by which connections must be gone.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.get().copied()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Peer>>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection; `None` once shutdown has begun.
    pub fn register(&self, id: u64, shared_deflate: bool) -> Option<Arc<Peer>> {
        let peer = Arc::new(Peer::new(id).with_shared_deflate(shared_deflate));
        let mut reg = self.registry();
        // Checked under the registry lock, which shutdown also takes, so no
        // connection can slip in unseen.
        if self.is_shutting_down() {
            return None;
        }
        reg.insert(id, peer.clone());
        drop(reg);
        metrics::inc(&self.metrics.connections_total);
        metrics::inc(&self.metrics.connections_current);
        Some(peer)
    }

    pub fn unregister(&self, id: u64) {
        if self.registry().remove(&id).is_some() {
            metrics::add_neg(&self.metrics.connections_current, 1);
        }
    }

    fn begin_shutdown(&self) {
        let deadline = Instant::now() + self.config.drain_timeout;
        let _ = self.drain_deadline.set(deadline);
        let reg = self.registry();
        self.shutting_down.store(true, Ordering::Release);
        for peer in reg.values() {
            peer.request_close(CloseRequest {
                code: close_code::RESTARTING,
                reason: "server restarting",
                flush_first: true,
            });
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then drains connections
/// (close 1012) for at most `config.drain_timeout`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    config.validate()?;
    let max = config.max_connections;
    if config.chaos.is_active() {
        tracing::warn!(chaos = ?config.chaos, "fault injection is ON (test only): figures from this server do not describe it");
    }
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        auth = config.jwt_secret.is_some(),
        batch_window = ?config.batch_window,
        max_connections = max,
        "reference server accepting connections"
    );
    let shared = Arc::new(Shared::new(config));
    let mut background = vec![
        tokio::spawn(sample_rates(shared.clone())),
        tokio::spawn(reap_rooms(shared.clone())),
    ];
    background.extend(crate::bus::start(&shared)?);
    background.extend(crate::cluster::start(&shared).await?);
    let handshakes = Arc::new(Semaphore::new(shared.config.max_handshakes));
    let tls = match &shared.config.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            files,
        )?)),
        None => None,
    };
    let result = tokio::select! {
        r = accept_loop(&listener, &shared, &handshakes, tls.as_ref()) => r,
        _ = shutdown => Ok(()),
    };
    drop(listener);
    tracing::info!(
        open = shared.metrics.connections_current.load(Ordering::Relaxed),
        "shutting down: closing connections with 1012"
    );
    shared.begin_shutdown();
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let drained =
        tokio::time::timeout(shared.config.drain_timeout, shared.slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            open = shared.metrics.connections_current.load(Ordering::Relaxed),
            "drain timeout: closing remaining connections"
        );
    }
    for task in background {
        task.abort();
    }
    result
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    handshakes: &Arc<Semaphore>,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // EMFILE and friends: shed load briefly rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match handshakes.clone().try_acquire_owned() {
            Ok(permit) => match tls {
                Some(acceptor) => {
                    tokio::spawn(crate::tls::serve(stream, shared, permit, acceptor.clone()));
                }
                None => {
                    tokio::spawn(crate::http::serve_socket(stream, shared, permit));
                }
            },
            Err(_) => {
                // Every handshake slot is taken (a slowloris, or a real
                // storm): answer without reading, so the socket is freed now.
                metrics::inc(&shared.metrics.connections_rejected_total);
                shared.metrics.bad_input.record(
                    metrics::BadInput::HandshakeBudget,
                    &"handshake budget full; answered 503",
                );
                tokio::spawn(crate::http::refuse_busy(stream));
            }
        }
    }
}

/// Keeps `deliveries_per_second` (last second, 100 ms steps) and feeds the
/// chaos overload knee.
async fn sample_rates(shared: Arc<Shared>) {
    let mut ring = [0u64; 10];
    let mut i = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = shared.metrics.deliveries_total.load(Ordering::Relaxed);
        let oldest = ring[i];
        ring[i] = now;
        i = (i + 1) % ring.len();
        let rate = now.saturating_sub(oldest) as f64;
        shared
            .metrics
            .delivery_rate_bits
            .store(rate.to_bits(), Ordering::Relaxed);
        shared.chaos.observe_rate(rate);
    }
}

async fn reap_rooms(shared: Arc<Shared>) {
    let period =
        (shared.config.room_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        shared.hub.reap(Instant::now());
    }
}

/// Binds with a deep accept backlog (bursts of thousands of connects).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(addr, false)
}

/// [`bind`], optionally with SO_REUSEPORT (`--reuse-port`: several
/// processes listen on one address and the kernel spreads connections).
pub fn bind_with(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises the soft open-files limit to the hard limit (each connection is a fd).
pub fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(lim.rlim_cur as u64)
    }
}

/// Quiet by default: warnings and errors to stderr.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Builds a runtime, binds, prints `listening on HOST:PORT`, and serves
/// until SIGTERM or SIGINT.
pub fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        tokio::runtime::Handle::try_current().is_err(),
        "serve_until_signal builds its own runtime; inside one, call server::run instead"
    );
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.workers > 0 {
        builder.worker_threads(config.workers);
    }
    let rt = builder
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if let Some(limit) = raise_fd_limit() {
        if (limit as usize) < config.max_connections + 64 {
            tracing::warn!(
                limit,
                max_connections = config.max_connections,
                "open-files limit is below --max-connections; raise `ulimit -n`"
            );
        }
    }
    rt.block_on(async move {
        if let Some(url) = &config.redis {
            match crate::bus::probe(url).await {
                Ok(()) => {}
                Err(e) if config.redis_optional => {
                    tracing::warn!("{e:#}; starting degraded (--redis-optional)");
                }
                Err(e) => return Err(e.context("use --redis-optional to start without it")),
            }
        }
        let shutdown = shutdown_signal();
        let listener = bind_with(config.listen, config.reuse_port)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}")?;
            out.flush()?;
        }
        run(listener, config, shutdown).await
    })?;
    // Connections still open after the drain timeout are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when first polled, so a signal right after the `listening
/// on` line is not lost (call it inside the runtime).
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

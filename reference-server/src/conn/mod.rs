//! One upgraded WebSocket connection: a single small task that reads and
//! answers client frames, drains its outbound queue (batching if enabled),
//! keeps the heartbeat, and closes with the right code.
//!
//! Memory: an idle connection holds no read buffer (`WsIo` drops it), an
//! empty outbound queue (no allocation), one timer and a handful of words of
//! state; everything per-message is allocated on demand and freed.

mod batch;
pub mod echo;
pub mod linger;
mod requests;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future as _;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::auth::RoomAcl;
use crate::deflate::ConnDeflate;
use crate::hub::{encode, Room};
use crate::metrics;
use crate::peer::{CloseRequest, Outgoing, Peer};
use crate::ratelimit::RateLimiter;
use crate::server::Shared;
use wire::protocol::{ErrorCode, ServerFrame};
use wire::ws::{close_code, close_payload, server_frame, Fill, OpCode, WsIo};

/// Messages handled per wake-up before output gets a turn.
const READ_BUDGET: usize = 64;
/// Least input a closing connection reads and drops before giving up on a
/// clean close (also at least twice `--max-message-size`).
const CLOSE_READ_BUDGET: usize = 1024 * 1024;

/// How the main loop ended.
#[derive(Debug)]
enum End {
    /// The peer closed or vanished; nothing more to send.
    Done,
    /// The server closes with this code.
    Close {
        code: u16,
        reason: Cow<'static, str>,
        flush_first: bool,
    },
}

impl End {
    fn close(code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        End::Close {
            code,
            reason: reason.into(),
            flush_first: true,
        }
    }
}

impl From<CloseRequest> for End {
    fn from(r: CloseRequest) -> Self {
        End::Close {
            code: r.code,
            reason: Cow::Borrowed(r.reason),
            flush_first: r.flush_first,
        }
    }
}

/// Who the connection belongs to once authenticated.
#[derive(Debug)]
pub struct Identity {
    pub user: Arc<str>,
    pub acl: RoomAcl,
}

pub struct Conn {
    io: WsIo,
    peer: Arc<Peer>,
    shared: Arc<Shared>,
    /// `None` until the first-frame `auth` succeeds.
    identity: Option<Identity>,
    rooms: Vec<Arc<Room>>,
    limiter: RateLimiter,
    hb_deadline: Instant,
    /// When the unanswered ping was sent.
    ping_sent: Option<Instant>,
    auth_deadline: Option<Instant>,
    batch_since: Option<Instant>,
    input_pending: bool,
    /// Set by a protocol error: the rest of the input cannot be decoded.
    input_broken: bool,
    /// permessage-deflate, when negotiated (boxed: most connections have none).
    deflate: Option<Box<ConnDeflate>>,
    _pad: Option<Box<[u8]>>,
    /// The connection slot, released when the connection is dropped.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

enum Event {
    Woken,
    Readable(io::Result<()>),
    Writable(io::Result<()>),
    Timer,
}

enum Pull {
    Close(CloseRequest),
    /// Nothing more to pull now; wake again at this instant, if any.
    Wait(Option<Instant>),
}

impl Conn {
    pub fn new(
        io: WsIo,
        peer: Arc<Peer>,
        shared: Arc<Shared>,
        identity: Option<Identity>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Self {
        let now = Instant::now();
        let cfg = &shared.config;
        let auth_deadline = identity.is_none().then(|| now + cfg.auth_timeout);
        // Bytes that came with the upgrade request (a pipelined `auth` or
        // ping) are decoded at once, not when more data arrives.
        let input_pending = io.has_buffered_input();
        Self {
            limiter: RateLimiter::new(&shared.rate_limits, now),
            hb_deadline: now + cfg.heartbeat_interval,
            _pad: shared.chaos.pad(),
            io,
            peer,
            identity: None,
            rooms: Vec::new(),
            ping_sent: None,
            auth_deadline,
            batch_since: None,
            input_pending,
            input_broken: false,
            deflate: None,
            _permit: permit,
            shared,
        }
        .with_identity(identity)
    }

    pub fn with_deflate(mut self, deflate: Option<ConnDeflate>) -> Self {
        self.deflate = deflate.map(Box::new);
        self
    }

    /// Compresses a data frame on its way to the socket when deflate is on.
    fn queue_data(&mut self, frame: bytes::Bytes) {
        let frame = match self.deflate.as_deref_mut() {
            Some(d) => d.outgoing(frame),
            None => frame,
        };
        self.io.queue(frame);
    }

    fn with_identity(mut self, identity: Option<Identity>) -> Self {
        if let Some(id) = identity {
            self.authenticated(id);
        }
        self
    }

    fn authenticated(&mut self, id: Identity) {
        self.auth_deadline = None;
        let welcome = encode(&ServerFrame::Welcome {
            user: id.user.as_ref().into(),
            conn: self.peer.id,
            heartbeat_ms: self.shared.config.heartbeat_interval.as_millis() as u64,
            instance: Some(crate::instance::id().into()),
        });
        self.identity = Some(id);
        self.shared.hub.reply(&self.peer, welcome);
    }

    /// Runs the connection to its end, then leaves every room.
    ///
    /// Not an `async fn`: those store their by-value arguments twice in the
    /// future (rust-lang/rust#62958); an `async move` block that uses the
    /// captured `Conn` in place keeps one copy per idle connection.
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send {
        let mut conn = self;
        async move {
            let end = match conn.main_loop().await {
                Ok(end) => end,
                Err(e) => {
                    tracing::debug!(conn = conn.peer.id, "connection i/o error: {e}");
                    End::Done
                }
            };
            if let End::Close { code, reason, .. } = &end {
                tracing::debug!(conn = conn.peer.id, code, %reason, "server closes connection");
            }
            // Boxed: the closing state is needed once, so it should not
            // enlarge every idle connection's task.
            Box::pin(conn.finish(end)).await;
            // `Drop` leaves the rooms and unregisters.
        }
    }

    async fn finish(&mut self, end: End) {
        let cfg = &self.shared.config;
        let linger = match self.shared.drain_deadline() {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => cfg.close_timeout,
        };
        if let End::Close {
            code,
            reason,
            flush_first,
        } = end
        {
            self.close(code, &reason, flush_first, linger).await;
        } else if self.io.pending_bytes() > 0 {
            // E.g. the reply to the peer's close frame.
            if let Ok(Ok(())) = tokio::time::timeout(linger, self.io.flush()).await {
                let _ = self.io.shutdown_write().await;
            }
        }
    }

    async fn main_loop(&mut self) -> io::Result<End> {
        let far = far_future();
        let sleep = tokio::time::sleep_until(far.into());
        tokio::pin!(sleep);
        let mut armed = far;
        let peer = self.peer.clone();
        loop {
            let now = Instant::now();
            if let Some(end) = self.check_timers(now) {
                return Ok(end);
            }
            let mut next = self.hb_deadline;
            if let Some(a) = self.auth_deadline {
                next = next.min(a);
            }
            let stalled = self.shared.chaos.stalled_until(now);
            if let Some(until) = stalled {
                next = next.min(until);
            } else {
                match self.pull(now) {
                    Pull::Close(req) => return Ok(req.into()),
                    Pull::Wait(Some(t)) => next = next.min(t),
                    Pull::Wait(None) => {}
                }
            }
            if self.io.pending_bytes() > 0 && stalled.is_none() {
                self.io.try_flush()?;
            }
            if next != armed {
                sleep.as_mut().reset(next.into());
                armed = next;
            }
            let reading = stalled.is_none();
            let writing = self.io.pending_bytes() > 0 && stalled.is_none();
            let input_pending = self.input_pending;
            // Polled by hand rather than with `select!`: no per-branch futures
            // live in the task, which keeps an idle connection small.
            let event = std::future::poll_fn(|cx| {
                if peer.poll_woken(cx).is_ready() {
                    return Poll::Ready(Event::Woken);
                }
                if reading {
                    if input_pending {
                        return Poll::Ready(Event::Readable(Ok(())));
                    }
                    if let Poll::Ready(r) = self.io.stream().poll_read_ready(cx) {
                        return Poll::Ready(Event::Readable(r));
                    }
                }
                if writing {
                    if let Poll::Ready(r) = self.io.stream().poll_write_ready(cx) {
                        return Poll::Ready(Event::Writable(r));
                    }
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Timer);
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Woken => {
                    // Let the producers that are ready right now run first, so
                    // a burst (a join storm, a busy room) leaves as one write
                    // instead of one write per message.
                    tokio::task::yield_now().await;
                }
                Event::Timer => {}
                Event::Writable(r) => r?,
                Event::Readable(r) => {
                    r?;
                    if let Some(end) = self.read_input()? {
                        return Ok(end);
                    }
                    // A client that keeps us busy must still let the worker
                    // run other connections.
                    tokio::task::consume_budget().await;
                }
            }
        }
    }

    /// Heartbeat and auth deadlines.
    fn check_timers(&mut self, now: Instant) -> Option<End> {
        if self.auth_deadline.is_some_and(|d| now >= d) {
            return Some(self.auth_failed("no auth frame within the auth timeout"));
        }
        if now >= self.hb_deadline {
            if self.ping_sent.is_some() {
                metrics::inc(&self.shared.metrics.heartbeat_timeouts_total);
                return Some(End::Close {
                    code: close_code::GOING_AWAY,
                    reason: "heartbeat timeout".into(),
                    flush_first: false,
                });
            }
            self.io.queue(server_frame(OpCode::Ping, b""));
            self.ping_sent = Some(now);
            self.hb_deadline = now + self.shared.config.heartbeat_timeout;
        }
        None
    }

    /// Moves ready frames from the shared queue to the socket's write queue.
    fn pull(&mut self, now: Instant) -> Pull {
        let cfg = &self.shared.config;
        let batching = !cfg.batch_window.is_zero();
        let mut ob = self.peer.lock();
        if let Some(req) = ob.close {
            if req.flush_first {
                let items = std::mem::take(&mut ob.queue);
                ob.bytes = 0;
                drop(ob);
                self.write_items(items, false);
            }
            return Pull::Close(req);
        }
        if ob.queue.is_empty() {
            self.batch_since = None;
            return Pull::Wait(None);
        }
        if self.io.pending_bytes() > 0 {
            // Only pull once the socket took everything: the backlog stays in
            // the bounded queue, where backpressure applies.
            return Pull::Wait(None);
        }
        if batching {
            let due = *self.batch_since.get_or_insert(now) + cfg.batch_window;
            if now < due && ob.queue.len() < cfg.batch_max {
                return Pull::Wait(Some(due));
            }
        }
        let ready = ob
            .queue
            .iter()
            .take_while(|o| o.not_before.is_none_or(|t| t <= now))
            .count();
        let items = if ready == ob.queue.len() {
            ob.bytes = 0;
            std::mem::take(&mut ob.queue)
        } else {
            let items: VecDeque<Outgoing> = ob.queue.drain(..ready).collect();
            ob.bytes -= items.iter().map(|o| o.frame.len()).sum::<usize>();
            items
        };
        let next = ob.queue.front().and_then(|o| o.not_before);
        drop(ob);
        self.batch_since = None;
        self.write_items(items, batching);
        Pull::Wait(next)
    }

    fn write_items(&mut self, items: VecDeque<Outgoing>, batching: bool) {
        if items.is_empty() {
            return;
        }
        let m = &self.shared.metrics;
        metrics::add(&m.messages_out_total, items.len() as u64);
        if !batching {
            metrics::add(&m.frames_out_total, items.len() as u64);
            for o in items {
                self.queue_data(o.frame);
            }
            return;
        }
        let max = self.shared.config.batch_max;
        let mut frames = 0u64;
        let items: Vec<Outgoing> = items.into();
        for chunk in items.chunks(max) {
            frames += 1;
            if chunk.len() == 1 {
                self.queue_data(chunk[0].frame.clone());
            } else {
                self.queue_data(batch::batch_frame(chunk));
            }
        }
        metrics::add(&self.shared.metrics.frames_out_total, frames);
    }

    /// Reads and handles buffered input; stops after a budget so output gets a turn.
    fn read_input(&mut self) -> io::Result<Option<End>> {
        let mut handled = 0;
        loop {
            loop {
                let msg = match self.io.decode() {
                    Ok(Some(msg)) => msg,
                    Ok(None) => break,
                    Err(e) => {
                        self.input_broken = true;
                        metrics::inc(&self.shared.metrics.protocol_errors_total);
                        let kind = match e.close_code() {
                            close_code::TOO_BIG => metrics::BadInput::WsTooBig,
                            close_code::INVALID_PAYLOAD => metrics::BadInput::WsInvalidUtf8,
                            _ => metrics::BadInput::WsProtocol,
                        };
                        self.shared.metrics.bad_input.record(kind, &e);
                        if e.close_code() == close_code::TOO_BIG {
                            self.error(ErrorCode::TooLarge, &e.to_string(), None);
                        }
                        return Ok(Some(End::close(e.close_code(), e.to_string())));
                    }
                };
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(msg)));
                match result {
                    Ok(Some(end)) => return Ok(Some(end)),
                    Ok(None) => {}
                    Err(_) => {
                        tracing::error!(conn = self.peer.id, "handler panicked");
                        return Ok(Some(End::close(
                            close_code::INTERNAL_ERROR,
                            "internal error",
                        )));
                    }
                }
                handled += 1;
                if handled >= READ_BUDGET {
                    self.input_pending = true;
                    return Ok(None);
                }
            }
            match self.io.fill()? {
                Fill::Data => {}
                Fill::WouldBlock => {
                    self.input_pending = false;
                    return Ok(None);
                }
                Fill::Eof => return Ok(Some(End::Done)),
            }
        }
    }

    /// Queues a close frame (after the shared queue, if `flush_first`; always
    /// after what the socket buffer already holds) and lingers per RFC 6455
    /// §7.1.1 so the peer reads it wherever it is in its stream.
    async fn close(&mut self, code: u16, reason: &str, flush_first: bool, linger: Duration) {
        if flush_first {
            let items = {
                let mut ob = self.peer.lock();
                ob.bytes = 0;
                std::mem::take(&mut ob.queue)
            };
            self.write_items(items, false);
        } else {
            // The backlog is dropped; free it now, not when the task ends.
            let mut ob = self.peer.lock();
            ob.bytes = 0;
            ob.queue = VecDeque::new();
        }
        self.io
            .queue(server_frame(OpCode::Close, &close_payload(code, reason)));
        let cfg = &self.shared.config;
        let l = linger::Linger {
            deadline: tokio::time::Instant::now() + linger,
            budget: CLOSE_READ_BUDGET.max(cfg.max_message_size.saturating_mul(2)),
            decodable: !self.input_broken,
        };
        let outcome = linger::lingering_close(&mut self.io, l).await;
        if let Ok(linger::Outcome::Flooded) = outcome {
            self.shared.metrics.bad_input.record(
                metrics::BadInput::CloseFlood,
                &"peer kept sending past the close budget",
            );
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(id) = &self.identity {
            for room in self.rooms.drain(..) {
                self.shared.hub.leave(&self.peer, &id.user, &room, false);
            }
        }
        self.shared.unregister(self.peer.id);
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod size_tests {
    /// Guards the idle-connection footprint: the task's future must hold the
    /// `Conn` once (not twice, rust-lang/rust#62958) plus a small loop state.
    #[test]
    fn connection_future_holds_conn_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let stream = tokio::net::TcpStream::connect(l.local_addr().unwrap())
                .await
                .unwrap();
            let shared =
                std::sync::Arc::new(crate::server::Shared::new(crate::config::Config::default()));
            let io = wire::ws::WsIo::new(
                stream,
                wire::ws::Role::Server,
                1024,
                4096,
                bytes::BytesMut::new(),
            );
            let peer = std::sync::Arc::new(crate::peer::Peer::new(1));
            let conn = super::Conn::new(io, peer, shared, None, None);
            let conn_size = std::mem::size_of_val(&conn);
            let run = conn.run();
            let run_size = std::mem::size_of_val(&run);
            assert!(
                run_size < conn_size * 2,
                "connection future {run_size} B for a {conn_size} B Conn"
            );
        });
    }
}

//! A client's connection to the target, whatever carries it: a WebSocket
//! (every protocol), or for Socket.IO with `transport = "polling"` an
//! Engine.IO long-polling session over HTTP (`reqwest`), or with
//! `"polling_upgrade"` a polling handshake upgraded to WebSocket.
//!
//! The client loop sees one interface: wait until readable, decode messages,
//! send the session's outbox, close. Over polling, each received Engine.IO
//! packet is handed to the same [`Session`](crate::dialect::Session) as the
//! WebSocket message that would carry it, so events, latency and loss are
//! accounted exactly as over WebSocket.
//!
//! Transports that are not a plain WebSocket live here: [`polling`], and
//! [`sio_client`], the standalone Socket.IO client the interop tests use.
//!
//! Cost: a polling client owns its own HTTP client (its source address and
//! auth header are per client), up to two HTTP connections (the held GET and
//! the POSTs) and two tasks — several times a WebSocket client's memory.

pub mod polling;
pub mod probe;
pub mod sio_client;
pub mod tls;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpSocket;
use tokio::time::{timeout, timeout_at};
use wire::ws::deflate::{Agreed, Deflater};
use wire::ws::{
    client_frame, close_payload, Counted, Fill, HandshakeError, Message, OpCode, ProtocolError,
    Role, WsIo,
};

use super::ctx::RunCtx;
use crate::dialect::socketio::engineio::{request_target, EnginePacket};
use crate::dialect::socketio::Transport;
use crate::dialect::Outbox;
use crate::scenario::Protocol;
use polling::{HandshakeStatus, PollingConn};

/// Largest message a client accepts (bigger ones end the connection, 1009).
const MAX_MESSAGE: usize = 16 << 20;
const READ_CHUNK: usize = 8192;
/// How long a leaving client waits for the server's side of the close.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);

// WebSocket is the common case: boxing it would cost every client an
// allocation to save bytes only in the rare polling one.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    /// `backlog`: Engine.IO packets that arrived over polling before an
    /// upgrade; decoded before anything read from the socket.
    Ws {
        io: WsIo,
        backlog: VecDeque<EnginePacket>,
        /// permessage-deflate was negotiated.
        deflated: bool,
        /// The compressor, until [`Link::outbox`] hands it to the session's outbox.
        deflater: Option<Box<Deflater>>,
    },
    Polling(Box<PollLink>),
}

pub struct PollLink {
    conn: PollingConn,
    /// Received packets not yet decoded.
    inbox: VecDeque<EnginePacket>,
}

/// What waiting on the link produced.
pub enum Ready {
    Readable,
    Writable,
    Error,
}

/// An Engine.IO packet as the WebSocket message that would carry it.
fn as_message(p: EnginePacket) -> Message {
    match p {
        EnginePacket::Binary(b) => Message::Binary(b),
        other => Message::Text(Bytes::from(other.encode_text().unwrap_or_default())),
    }
}

impl Link {
    /// The outbox in the shape this link sends; it takes the link's
    /// compressor, so call it once per connection.
    pub fn outbox(&mut self) -> Outbox {
        match self {
            Link::Ws { deflater, .. } => Outbox::with_deflate(deflater.take()),
            Link::Polling(_) => Outbox::unframed(),
        }
    }

    /// Whether permessage-deflate was negotiated on this connection.
    pub fn deflated(&self) -> bool {
        matches!(self, Link::Ws { deflated: true, .. })
    }

    pub fn pending_bytes(&self) -> usize {
        match self {
            Link::Ws { io, .. } => io.pending_bytes(),
            Link::Polling(_) => 0,
        }
    }

    /// Writes what the socket takes now (polling sends from its own task).
    pub fn try_flush(&mut self) -> std::io::Result<bool> {
        match self {
            Link::Ws { io, .. } => io.try_flush(),
            Link::Polling(_) => Ok(true),
        }
    }

    /// Whether decoding can go on without waiting.
    pub fn has_backlog(&self) -> bool {
        match self {
            Link::Ws { backlog, .. } => !backlog.is_empty(),
            Link::Polling(p) => !p.inbox.is_empty(),
        }
    }

    /// Waits for input (or, over WebSocket with `want_write`, for room to
    /// write). Cancel-safe.
    pub async fn ready(&mut self, want_write: bool) -> Ready {
        match self {
            Link::Ws { io, .. } => {
                // One readiness future for both directions keeps each idle
                // client's task small.
                let interest = if want_write {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                match io.stream().ready(interest).await {
                    Ok(r) if r.is_readable() || r.is_read_closed() => Ready::Readable,
                    Ok(_) => Ready::Writable,
                    Err(_) => Ready::Error,
                }
            }
            Link::Polling(p) => match p.conn.recv().await {
                Ok(batch) => {
                    p.inbox.extend(batch);
                    Ready::Readable
                }
                Err(_) => Ready::Error,
            },
        }
    }

    /// The next complete message already received, if any, with the bytes
    /// it took on the wire (over polling: its payload).
    pub fn decode(&mut self) -> Result<Option<(Message, usize)>, ProtocolError> {
        let sized = |m: Message| {
            let n = match &m {
                Message::Text(b) | Message::Binary(b) => b.len(),
                _ => 0,
            };
            (m, n)
        };
        match self {
            Link::Ws { io, backlog, .. } => match backlog.pop_front() {
                Some(p) => Ok(Some(sized(as_message(p)))),
                None => io.decode_sized(),
            },
            Link::Polling(p) => Ok(p.inbox.pop_front().map(as_message).map(sized)),
        }
    }

    /// Reads more from the socket; the flag says a short read emptied it
    /// (see `WsIo::fill_drained`). Polling: everything arrives through `ready`.
    pub fn fill_drained(&mut self) -> std::io::Result<(Fill, bool)> {
        match self {
            Link::Ws { io, .. } => io.fill_drained(),
            Link::Polling(_) => Ok((Fill::WouldBlock, false)),
        }
    }

    /// Drops the WebSocket read buffer while nothing is pending.
    pub fn release_if_empty(&mut self) {
        if let Link::Ws { io, .. } = self {
            io.release_if_empty();
        }
    }

    /// A WebSocket control frame (pong, close echo); polling has none.
    pub fn queue_control(&mut self, op: OpCode, payload: &[u8]) {
        if let Link::Ws { io, .. } = self {
            io.queue(client_frame(op, payload));
        }
    }

    /// Sends the outbox. Returns (messages, bytes) for the counters.
    pub fn send(&mut self, ob: &mut Outbox) -> (u32, usize) {
        match self {
            Link::Ws { io, .. } => {
                let (bytes, frames) = ob.take();
                let n = bytes.len();
                io.queue(bytes);
                (frames, n)
            }
            Link::Polling(p) => {
                let msgs = ob.take_unframed();
                let n = msgs.iter().map(|(_, b)| b.len()).sum();
                let count = msgs.len() as u32;
                let packets = msgs
                    .into_iter()
                    .filter_map(|(binary, b)| {
                        if binary {
                            Some(EnginePacket::Binary(b))
                        } else {
                            EnginePacket::decode_text(b).ok()
                        }
                    })
                    .collect();
                // A stopped writer also ends the reader: seen by `ready`.
                let _ = p.conn.send(packets);
                (count, n)
            }
        }
    }

    /// Best effort, without waiting (interrupt): close frame / close packet.
    pub fn abort(&mut self, code: u16, reason: &str) {
        match self {
            Link::Ws { io, .. } => {
                io.queue(client_frame(OpCode::Close, &close_payload(code, reason)));
                let _ = io.try_flush();
            }
            Link::Polling(p) => {
                let _ = p.conn.send(vec![EnginePacket::Close]);
            }
        }
    }

    /// Closes with `code` and waits up to [`CLOSE_WAIT`] for the server's
    /// side (the close echo; for polling, the POST of the close packet and
    /// the answer to the held GET), so the TCP close is orderly.
    pub async fn close(self, code: u16) {
        match self {
            Link::Ws { mut io, .. } => {
                io.queue(client_frame(OpCode::Close, &close_payload(code, "")));
                let _ = timeout(CLOSE_WAIT, async {
                    if io.flush().await.is_err() {
                        return;
                    }
                    loop {
                        if io.stream().readable().await.is_err() {
                            return;
                        }
                        match io.fill() {
                            Ok(Fill::Data) => {}
                            Ok(Fill::WouldBlock) => continue,
                            _ => return,
                        }
                        while let Ok(Some(m)) = io.decode() {
                            if matches!(m, Message::Close(_)) {
                                return;
                            }
                        }
                    }
                })
                .await;
            }
            Link::Polling(p) => {
                let _ = p.conn.send(vec![EnginePacket::Close]);
                let _ = timeout(CLOSE_WAIT, p.conn.pause(CLOSE_WAIT)).await;
            }
        }
    }
}

fn io_reason(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "refused",
        TimedOut => "timeout",
        AddrNotAvailable | AddrInUse => "addr_unavailable",
        ConnectionReset | ConnectionAborted | BrokenPipe => "reset",
        _ => "io",
    }
}

/// The Engine.IO transport of this run (WebSocket unless Socket.IO says otherwise).
fn transport(ctx: &RunCtx) -> Transport {
    match (&ctx.plan.target.protocol, &ctx.plan.target.socketio) {
        (Protocol::Socketio, Some(o)) => o.transport,
        _ => Transport::Websocket,
    }
}

/// How a `wss://` connection's setup went: each stage's time (µs) and
/// whether the TLS session was resumed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stages {
    pub tcp_us: u64,
    pub tls_us: u64,
    pub upgrade_us: u64,
    pub resumed: bool,
}

/// A connected link, the first-message auth token to send, and (over TLS)
/// the setup's stages.
pub type Connected = (Link, Option<String>, Option<Stages>);

/// Connects client `i` on the run's transport. Returns the link and, for
/// first-message auth, the token to send. Errors are failure reasons
/// (`refused`, `timeout`, `http_403`, `tls_unknown_ca`, ...).
pub async fn connect(ctx: &RunCtx, i: u32) -> Result<Connected, String> {
    let deadline = Instant::now() + ctx.plan.run.connect_timeout;
    let (target, headers, token) = ctx.upgrade_request(i);
    let mut stages = None;
    let link = match transport(ctx) {
        Transport::Websocket => {
            let (io, agreed, st) = connect_ws(ctx, i, &target, &headers, deadline).await?;
            stages = st;
            Link::ws(io, VecDeque::new(), agreed)
        }
        t @ (Transport::Polling | Transport::PollingUpgrade) => {
            let (path, query) = engine_path_query(&target);
            let (conn, initial) = open_polling(ctx, i, path, query, &headers, deadline).await?;
            if t == Transport::Polling {
                Link::Polling(Box::new(PollLink {
                    conn,
                    inbox: initial.into(),
                }))
            } else {
                let (link, st) =
                    upgrade(ctx, i, conn, initial, (path, query), &headers, deadline).await?;
                stages = st;
                link
            }
        }
    };
    Ok((link, token, stages))
}

/// The Engine.IO path and the user's query from a WebSocket request target
/// built by `request_target` (`/socket.io/?EIO=4&transport=websocket&user=u1`).
fn engine_path_query(target: &str) -> (&str, &str) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .strip_prefix("EIO=4&transport=websocket")
        .unwrap_or(query);
    (path, query.strip_prefix('&').unwrap_or(query))
}

impl Link {
    fn ws(io: WsIo, backlog: VecDeque<EnginePacket>, agreed: Option<Agreed>) -> Self {
        Link::Ws {
            io,
            backlog,
            deflated: agreed.is_some(),
            deflater: agreed.map(|a| Box::new(a.deflater(false))),
        }
    }
}

/// TCP connect (from the client's source address), the TLS handshake on
/// `wss://`, then the WebSocket handshake, offering permessage-deflate when
/// the plan says so; the agreement comes back (and the decoder already
/// inflates), with the stages' times over TLS.
async fn connect_ws(
    ctx: &RunCtx,
    i: u32,
    target: &str,
    headers: &[(String, String)],
    deadline: Instant,
) -> Result<(WsIo, Option<Agreed>, Option<Stages>), String> {
    let offer = ctx.plan.target.deflate.as_ref().map(|d| d.offer());
    let mut headers = headers.to_vec();
    if let Some(o) = &offer {
        headers.push(("Sec-WebSocket-Extensions".into(), o.header_value()));
    }
    let t0 = Instant::now();
    let stream = tcp_connect(ctx, i, deadline).await?;
    let Some(tls) = &ctx.tls else {
        let mut stream = stream;
        let leftover = ws_upgrade(ctx, &mut stream, target, &headers, deadline).await?;
        let (io, agreed) = ws_io(stream, leftover, offer.as_ref())?;
        return Ok((io, agreed, None));
    };
    let t1 = Instant::now();
    let mut stream = match timeout_at(deadline.into(), tls.handshake(Counted(stream))).await {
        Err(_) => return Err(tls::reason::HANDSHAKE.into()),
        Ok(Err(reason)) => return Err(reason.into()),
        Ok(Ok(s)) => s,
    };
    let t2 = Instant::now();
    let resumed = tls::resumed(&stream);
    let leftover = ws_upgrade(ctx, &mut stream, target, &headers, deadline).await?;
    let stages = Stages {
        tcp_us: (t1 - t0).as_micros() as u64,
        tls_us: (t2 - t1).as_micros() as u64,
        upgrade_us: t2.elapsed().as_micros() as u64,
        resumed,
    };
    let (io, agreed) = ws_io(stream, leftover, offer.as_ref())?;
    Ok((io, agreed, Some(stages)))
}

async fn tcp_connect(
    ctx: &RunCtx,
    i: u32,
    deadline: Instant,
) -> Result<tokio::net::TcpStream, String> {
    let sock = if ctx.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_reason(&e).to_owned())?;
    if let Some(src) = ctx.source_for(i) {
        sock.bind((src, 0).into())
            .map_err(|e| io_reason(&e).to_owned())?;
    }
    let stream = match timeout_at(deadline.into(), sock.connect(ctx.addr)).await {
        Err(_) => return Err("timeout".into()),
        Ok(Err(e)) => return Err(io_reason(&e).into()),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The WebSocket handshake on a connected (maybe TLS) stream: bytes read
/// past the 101 head, and the server's extension answers.
async fn ws_upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &RunCtx,
    stream: &mut S,
    target: &str,
    headers: &[(String, String)],
    deadline: Instant,
) -> Result<(BytesMut, Vec<String>), String> {
    let hs = timeout_at(
        deadline.into(),
        wire::ws::handshake::client_handshake_ext(stream, &ctx.host, target, headers),
    )
    .await;
    match hs {
        Err(_) => Err("timeout".into()),
        Ok(Err(HandshakeError::Status { status, .. })) => Err(format!("http_{status}")),
        Ok(Err(HandshakeError::TlsAnswer)) => Err(tls::reason::REQUIRED.into()),
        Ok(Err(HandshakeError::Io(e))) => Err(io_reason(&e).into()),
        Ok(Err(HandshakeError::Closed)) => Err("reset".into()),
        Ok(Err(_)) => Err("handshake".into()),
        Ok(Ok(l)) => Ok(l),
    }
}

/// The codec over the upgraded stream, once the server's answer to the
/// deflate offer is checked.
fn ws_io(
    stream: impl Into<wire::ws::Transport>,
    (leftover, extensions): (BytesMut, Vec<String>),
    offer: Option<&wire::ws::deflate::Offer>,
) -> Result<(WsIo, Option<Agreed>), String> {
    let values: Vec<&str> = extensions.iter().map(String::as_str).collect();
    // An answer that breaks the offer (or accepts what was not offered)
    // fails the connection (RFC 6455 §9.1, RFC 7692 §5).
    let agreed = match offer {
        Some(o) => o
            .check_response(&values)
            .map_err(|_| "deflate".to_owned())?,
        None if !values.is_empty() => return Err("handshake".into()),
        None => None,
    };
    let mut io = WsIo::new(stream, Role::Client, MAX_MESSAGE, READ_CHUNK, leftover);
    io.set_inflater(agreed.map(|a| a.inflater(false)));
    Ok((io, agreed))
}

/// The polling handshake, with this client's own HTTP client (source
/// address, auth header). Returns the connection and the handshake's packets.
async fn open_polling(
    ctx: &RunCtx,
    i: u32,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    deadline: Instant,
) -> Result<(PollingConn, Vec<EnginePacket>), String> {
    let mut default_headers = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) else {
            return Err("bad_header".into());
        };
        default_headers.insert(k, v);
    }
    // reqwest builds a rustls config even for http: it needs the provider.
    wire::ws::tls::provider();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(ctx.plan.run.connect_timeout)
        .pool_max_idle_per_host(2)
        .default_headers(default_headers);
    if let Some(src) = ctx.source_for(i) {
        builder = builder.local_address(src);
    }
    // Over https the URL keeps the scenario's host (the certificate names
    // it), resolved to the target's address; plain http goes to the address.
    let origin = match &ctx.tls {
        Some(tls) => {
            builder = builder.use_preconfigured_tls(tls.config().as_ref().clone());
            let host = ctx
                .host
                .rsplit_once(':')
                .map_or(ctx.host.as_str(), |(h, _)| h);
            builder = builder.resolve(host.trim_start_matches('[').trim_end_matches(']'), ctx.addr);
            format!("https://{}", ctx.host)
        }
        None => format!("http://{}", ctx.addr),
    };
    let http = builder.build().map_err(|_| "http_client".to_owned())?;
    match timeout_at(
        deadline.into(),
        PollingConn::open(&http, &origin, path, query),
    )
    .await
    {
        Err(_) => Err("timeout".into()),
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(polling_reason(&e)),
    }
}

fn polling_reason(e: &anyhow::Error) -> String {
    if let Some(s) = e.downcast_ref::<HandshakeStatus>() {
        return format!("http_{}", s.status);
    }
    if let Some(reason) = e.chain().find_map(tls::failure_in) {
        return reason.into();
    }
    match e.chain().find_map(|c| c.downcast_ref::<reqwest::Error>()) {
        Some(r) if r.is_timeout() => "timeout".into(),
        Some(r) if r.is_connect() => "refused".into(),
        Some(_) => "io".into(),
        None => "handshake".into(),
    }
}

/// Polling → WebSocket: a WebSocket with the `sid`, `2probe` → `3probe`,
/// pause polling (the server answers the held GET), `5`. Packets that came
/// over polling meanwhile (the open packet first) are decoded before
/// anything read from the WebSocket.
async fn upgrade(
    ctx: &RunCtx,
    i: u32,
    conn: PollingConn,
    initial: Vec<EnginePacket>,
    (path, query): (&str, &str),
    headers: &[(String, String)],
    deadline: Instant,
) -> Result<(Link, Option<Stages>), String> {
    if !conn.handshake.upgrades.iter().any(|u| u == "websocket") {
        return Err("no_upgrade".into());
    }
    let target = request_target(path, query, "websocket", Some(conn.sid()));
    let (mut io, agreed, stages) = connect_ws(ctx, i, &target, headers, deadline).await?;
    io.queue(client_frame(OpCode::Text, b"2probe"));
    let probed = timeout_at(deadline.into(), async {
        io.flush().await.map_err(|e| io_reason(&e).to_owned())?;
        loop {
            if let Some(m) = io.decode().map_err(|_| "upgrade".to_owned())? {
                return match m {
                    Message::Text(t) if t.as_ref() == b"3probe" => Ok(()),
                    _ => Err("upgrade".to_owned()),
                };
            }
            io.stream()
                .readable()
                .await
                .map_err(|e| io_reason(&e).to_owned())?;
            match io.fill() {
                Ok(Fill::Data | Fill::WouldBlock) => {}
                _ => return Err("reset".to_owned()),
            }
        }
    })
    .await;
    match probed {
        Err(_) => return Err("timeout".into()),
        Ok(Err(reason)) => return Err(reason),
        Ok(Ok(())) => {}
    }
    let wait = deadline.saturating_duration_since(Instant::now());
    let late = conn.pause(wait).await.map_err(|_| "upgrade".to_owned())?;
    io.queue(client_frame(OpCode::Text, b"5"));
    let backlog = initial
        .into_iter()
        .chain(late)
        .filter(|p| !matches!(p, EnginePacket::Noop))
        .collect();
    Ok((Link::ws(io, backlog, agreed), stages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_target_splits_into_path_and_user_query() {
        assert_eq!(
            engine_path_query("/socket.io/?EIO=4&transport=websocket&user=u3"),
            ("/socket.io/", "user=u3")
        );
        assert_eq!(
            engine_path_query("/io/?EIO=4&transport=websocket"),
            ("/io/", "")
        );
    }

    #[test]
    fn unframed_outbox_keeps_engine_packets_whole() {
        let mut out = Outbox::unframed();
        out.text(b"42[\"chat\",{}]");
        out.binary(b"\x01\x02");
        assert!(!out.is_empty());
        assert_eq!(out.take().0.len(), 0, "nothing framed");
        let msgs = out.take_unframed();
        assert_eq!(
            msgs,
            [
                (false, Bytes::from_static(b"42[\"chat\",{}]")),
                (true, Bytes::from_static(b"\x01\x02"))
            ]
        );
        assert!(out.is_empty());
        // And back: what a polling GET delivers reaches the session as the
        // WebSocket message that would have carried it.
        assert_eq!(
            as_message(EnginePacket::Message(Bytes::from_static(b"2[\"x\"]"))),
            Message::Text(Bytes::from_static(b"42[\"x\"]"))
        );
    }
}

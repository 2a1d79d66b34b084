//! The HTTP side of the one port: `/healthz`, `/metrics`, and the checks an
//! upgrade to `/ws` must pass (connection limit, origin, token) before the
//! 101 answer, and `/echo` when `--echo` is on. Refusals are plain HTTP
//! responses with a body saying why.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::RoomAcl;
use crate::conn::{Conn, Identity};
use crate::metrics;
use crate::metrics::BadInput;
use crate::server::Shared;
use wire::ws::handshake::{http_response, read_request, switching_protocols_ext};
use wire::ws::{HandshakeError, Request, Role, WsIo};

/// Longest `?user=` accepted when auth is off.
const MAX_USER_LEN: usize = 128;
/// How long a refusal may take to write and drain.
const BUSY_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Read chunk for upgraded connections: small, since frames are small and
/// the buffer is released whenever it empties.
const READ_CHUNK: usize = 4096;

/// A stream the HTTP side serves: plain TCP, or TLS after its handshake.
pub trait Stream:
    AsyncRead + AsyncWrite + Unpin + Send + Into<wire::ws::Transport> + 'static
{
}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + Into<wire::ws::Transport> + 'static> Stream for S {}

/// Serves one accepted connection. `handshake` is its handshake slot,
/// held until the upgrade (or the HTTP answer); the connection slot
/// (`--max-connections`) is taken only when an upgrade is accepted.
pub async fn serve_socket<S: Stream>(
    mut stream: S,
    shared: Arc<Shared>,
    handshake: OwnedSemaphorePermit,
) {
    let head = tokio::time::timeout(shared.config.handshake_timeout, read_request(&mut stream));
    let head = head.await;
    if head.as_ref().map_or(true, |r| r.is_err()) {
        // Refusals below are bounded by BUSY_LINGER on their own; the slot
        // goes to the next socket now.
        drop(handshake);
        return refuse_head(stream, &shared, head).await;
    }
    let Ok(Ok((req, leftover))) = head else {
        return;
    };
    let bad = &shared.metrics.bad_input;
    match (req.method.as_str(), req.path()) {
        ("GET", "/healthz") => match crate::cluster::health(&shared).await {
            Ok(body) => {
                let _ = respond(&mut stream, 200, "OK", &body).await;
            }
            Err(why) => {
                let body = format!("{why}\n");
                let _ = respond(&mut stream, 503, "Service Unavailable", &body).await;
            }
        },
        ("GET", "/metrics") => {
            let body = crate::cluster::metrics(&shared).await;
            let resp = http_response(200, "OK", "text/plain; version=0.0.4", &body);
            let _ = stream.write_all(resp.as_bytes()).await;
        }
        (_, path) if path == "/ws" || (path == "/echo" && shared.config.echo) => {
            let echo = path == "/echo";
            let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                metrics::inc(&shared.metrics.connections_rejected_total);
                bad.record(BadInput::ConnectionLimit, &"connection limit reached");
                let body = "connection limit reached\n";
                let _ = respond(&mut stream, 503, "Service Unavailable", body).await;
                return;
            };
            let id = shared.alloc_conn_id();
            let checked = if echo {
                echo_upgrade(&req)
            } else {
                check_upgrade(&req, &shared, id)
            };
            match checked {
                Ok((key, identity)) => {
                    drop(handshake);
                    let deflate = crate::deflate::negotiate(&req, &shared.config);
                    let up = Upgrade {
                        leftover,
                        permit,
                        id,
                        echo,
                        key,
                        identity,
                        deflate,
                    };
                    upgrade(stream, shared, up).await
                }
                Err((status, reason, body)) => {
                    tracing::debug!(status, body = body.trim(), "upgrade refused");
                    metrics::inc(&shared.metrics.connections_rejected_total);
                    let _ = respond(&mut stream, status, reason, &body).await;
                }
            }
        }
        _ => {
            let routes = if shared.config.echo {
                "routes: /ws, /echo, /healthz, /metrics\n"
            } else {
                "routes: /ws, /healthz, /metrics\n"
            };
            let _ = respond(&mut stream, 404, "Not Found", routes).await;
        }
    }
}

type Head = Result<Result<(Request, bytes::BytesMut), HandshakeError>, tokio::time::error::Elapsed>;

/// Answers a request head that failed: 431 too large, 400 malformed, 408
/// too slow; a socket that closed or failed gets nothing.
async fn refuse_head<S: Stream>(mut stream: S, shared: &Shared, head: Head) {
    let bad = &shared.metrics.bad_input;
    let (status, reason, body) = match head {
        Ok(Ok(_)) | Ok(Err(HandshakeError::Closed | HandshakeError::Io(_))) => return,
        Ok(Err(HandshakeError::TooLarge)) => {
            bad.record(BadInput::HttpTooLarge, &"request head over 16 KiB");
            (
                431,
                "Request Header Fields Too Large",
                "request head too large\n",
            )
        }
        Ok(Err(e)) => {
            bad.record(BadInput::HttpMalformed, &e);
            (400, "Bad Request", "malformed HTTP request\n")
        }
        Err(_) => {
            bad.record(
                BadInput::HandshakeTimeout,
                &"no complete request head in time",
            );
            let body = "request head not received within the handshake timeout\n";
            (408, "Request Timeout", body)
        }
    };
    let _ = tokio::time::timeout(BUSY_LINGER * 2, respond(&mut stream, status, reason, body)).await;
}

/// Over the handshake budget: 503 without reading the request, then a
/// short drain so the answer is not lost to a RST.
pub async fn refuse_busy(mut stream: TcpStream) {
    let body = "too many connections in the handshake; retry\n";
    let _ = tokio::time::timeout(
        BUSY_LINGER,
        respond(&mut stream, 503, "Service Unavailable", body),
    )
    .await;
}

type Refusal = (u16, &'static str, String);

/// Decides whether an upgrade may proceed, and as whom (`None` = the first
/// frame must be `auth`).
fn check_upgrade(
    req: &Request,
    shared: &Shared,
    id: u64,
) -> Result<(String, Option<Identity>), Refusal> {
    let key = req.websocket_key().ok_or((
        400,
        "Bad Request",
        "expected a WebSocket upgrade (GET with Upgrade: websocket)\n".into(),
    ))?;
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err((
            426,
            "Upgrade Required",
            "Sec-WebSocket-Version must be 13\n".into(),
        ));
    }
    if shared.is_shutting_down() {
        return Err((
            503,
            "Service Unavailable",
            "server is shutting down\n".into(),
        ));
    }
    let origins = &shared.config.allowed_origins;
    if !origins.is_empty() {
        if let Some(origin) = req.header("origin") {
            if !origins.iter().any(|o| o == origin.trim()) {
                return Err((
                    403,
                    "Forbidden",
                    format!("origin `{origin}` is not allowed\n"),
                ));
            }
        }
    }
    let identity = match &shared.verifier {
        Some(verifier) => {
            let token = req.query("token").or_else(|| {
                req.header("authorization").and_then(|h| {
                    let (scheme, token) = h.trim().split_once(' ')?;
                    scheme
                        .eq_ignore_ascii_case("bearer")
                        .then(|| token.trim().to_owned())
                })
            });
            match token {
                Some(t) => match verifier.verify(&t) {
                    Ok(claims) => Some(Identity {
                        user: Arc::from(claims.sub),
                        acl: RoomAcl::from_claims(claims.rooms),
                    }),
                    Err(e) => {
                        metrics::inc(&shared.metrics.auth_failures_total);
                        shared.metrics.bad_input.record(BadInput::Auth, &e);
                        return Err((401, "Unauthorized", format!("{e}\n")));
                    }
                },
                None => None,
            }
        }
        None => {
            let user = match req.query("user").filter(|u| !u.is_empty()) {
                Some(u) if u.len() > MAX_USER_LEN => {
                    return Err((
                        400,
                        "Bad Request",
                        format!("`user` is longer than {MAX_USER_LEN} bytes\n"),
                    ))
                }
                Some(u) => Arc::from(u),
                None => Arc::from(format!("anon-{id}")),
            };
            Some(Identity {
                user,
                acl: RoomAcl::any(),
            })
        }
    };
    Ok((key.to_owned(), identity))
}

/// An accepted upgrade, ready for the 101 answer.
struct Upgrade {
    leftover: bytes::BytesMut,
    permit: OwnedSemaphorePermit,
    id: u64,
    echo: bool,
    key: String,
    identity: Option<Identity>,
    /// The permessage-deflate agreement and its response header.
    deflate: Option<(wire::ws::deflate::Agreed, String)>,
}

/// `/echo` (with `--echo`): any valid upgrade, no auth, no origin check.
fn echo_upgrade(req: &Request) -> Result<(String, Option<Identity>), Refusal> {
    let key = req.websocket_key().ok_or((
        400,
        "Bad Request",
        "expected a WebSocket upgrade (GET with Upgrade: websocket)\n".into(),
    ))?;
    Ok((key.to_owned(), None))
}

async fn upgrade<S: Stream>(mut stream: S, shared: Arc<Shared>, up: Upgrade) {
    let ext = up.deflate.as_ref().map(|(_, h)| h.as_str());
    if stream
        .write_all(switching_protocols_ext(&up.key, ext).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let agreed = up.deflate.map(|(a, _)| a);
    let shared_deflate = agreed
        .as_ref()
        .is_some_and(crate::deflate::takes_shared_frames);
    let Some(peer) = shared.register(up.id, shared_deflate) else {
        // Shutdown began during the handshake: say so in WebSocket terms.
        let frame = wire::ws::server_frame(
            wire::ws::OpCode::Close,
            &wire::ws::close_payload(wire::ws::close_code::RESTARTING, "server restarting"),
        );
        let _ = stream.write_all(&frame).await;
        return;
    };
    let mut io = WsIo::new(
        stream,
        Role::Server,
        shared.config.max_message_size,
        READ_CHUNK,
        up.leftover,
    );
    let deflate = agreed.map(|a| {
        metrics::inc(&shared.metrics.deflate_connections_total);
        io.set_inflater(Some(a.inflater(true)));
        crate::deflate::ConnDeflate::new(&a, shared.config.deflate_threshold)
    });
    // A fresh task for the connection's life: the handshake task's larger
    // future (request head, HTTP state) is freed instead of idling with it.
    if up.echo {
        tokio::spawn(crate::conn::echo::run(io, peer, shared, up.permit, deflate));
    } else {
        let conn = Conn::new(io, peer, shared, up.identity, Some(up.permit)).with_deflate(deflate);
        tokio::spawn(conn.run());
    }
}

pub(crate) async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    reason: &str,
    body: &str,
) -> std::io::Result<()> {
    stream
        .write_all(http_response(status, reason, "text/plain; charset=utf-8", body).as_bytes())
        .await?;
    stream.shutdown().await?;
    // Read (and drop) what the client still sends for a moment: closing a
    // socket with unread input sends a RST, which can destroy the answer
    // before the client reads it.
    let mut scratch = [0u8; 1024];
    let drain = async {
        let mut left = 64 * 1024usize;
        while left > 0 {
            match tokio::io::AsyncReadExt::read(stream, &mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(BUSY_LINGER, drain).await;
    Ok(())
}

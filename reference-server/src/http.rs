//! The HTTP side of the one port: `/healthz`, `/metrics`, and the checks an
//! upgrade to `/ws` must pass (connection limit, origin, token) before the
//! 101 answer. Refusals are plain HTTP responses with a body saying why.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::RoomAcl;
use crate::conn::{Conn, Identity};
use crate::metrics;
use crate::server::Shared;
use wire::ws::handshake::{http_response, read_request, switching_protocols};
use wire::ws::{Request, Role, WsIo};

/// Longest `?user=` accepted when auth is off.
const MAX_USER_LEN: usize = 128;
/// Read chunk for upgraded connections: small, since frames are small and
/// the buffer is released whenever it empties.
const READ_CHUNK: usize = 4096;

/// Serves one accepted TCP connection. `permit` is the connection slot;
/// without one, an upgrade gets 503 (health and metrics still answer).
pub async fn serve_socket(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
) {
    let head = tokio::time::timeout(shared.config.handshake_timeout, read_request(&mut stream));
    let (req, leftover) = match head.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!("bad request head: {e}");
            let _ = respond(&mut stream, 400, "Bad Request", "malformed HTTP request\n").await;
            return;
        }
        Err(_) => return,
    };
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
        (_, "/ws") => {
            let Some(permit) = permit else {
                metrics::inc(&shared.metrics.connections_rejected_total);
                let _ = respond(
                    &mut stream,
                    503,
                    "Service Unavailable",
                    "connection limit reached\n",
                )
                .await;
                return;
            };
            let id = shared.alloc_conn_id();
            match check_upgrade(&req, &shared, id) {
                Ok((key, identity)) => {
                    upgrade(stream, leftover, shared, permit, id, &key, identity).await
                }
                Err((status, reason, body)) => {
                    tracing::debug!(status, body = body.trim(), "upgrade refused");
                    metrics::inc(&shared.metrics.connections_rejected_total);
                    let _ = respond(&mut stream, status, reason, &body).await;
                }
            }
        }
        _ => {
            let _ = respond(
                &mut stream,
                404,
                "Not Found",
                "routes: /ws, /healthz, /metrics\n",
            )
            .await;
        }
    }
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

async fn upgrade(
    mut stream: TcpStream,
    leftover: bytes::BytesMut,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    id: u64,
    key: &str,
    identity: Option<Identity>,
) {
    if stream
        .write_all(switching_protocols(key).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let Some(peer) = shared.register(id) else {
        // Shutdown began during the handshake: say so in WebSocket terms.
        let frame = wire::ws::server_frame(
            wire::ws::OpCode::Close,
            &wire::ws::close_payload(wire::ws::close_code::RESTARTING, "server restarting"),
        );
        let _ = stream.write_all(&frame).await;
        return;
    };
    let io = WsIo::new(
        stream,
        Role::Server,
        shared.config.max_message_size,
        READ_CHUNK,
        leftover,
    );
    let conn = Conn::new(io, peer, shared, identity, Some(permit));
    // A fresh task for the connection's life: the handshake task's larger
    // future (request head, HTTP state) is freed instead of idling with it.
    tokio::spawn(conn.run());
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    body: &str,
) -> std::io::Result<()> {
    stream
        .write_all(http_response(status, reason, "text/plain; charset=utf-8", body).as_bytes())
        .await?;
    stream.shutdown().await
}

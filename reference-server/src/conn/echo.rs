//! `/echo` (only with `--echo`): an RFC 6455 echo on the same codec,
//! handshake and lingering close as `/ws`, for conformance testing
//! (Autobahn's fuzzingclient, see docs/conformance.md). Text and binary
//! messages come back as they arrived; pings get pongs; a close is answered
//! with the same code; violations close with the codec's code.
//!
//! Output is written before more input is read, so a peer that never reads
//! holds at most one message in the server.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use wire::ws::{close_code, close_payload, server_frame, Fill, Message, OpCode, WsIo};

use super::linger::{lingering_close, Linger};
use crate::deflate::ConnDeflate;
use crate::metrics::{self, BadInput};
use crate::peer::Peer;
use crate::server::Shared;

/// Serves one echo connection to its end.
pub async fn run(
    mut io: WsIo,
    peer: Arc<Peer>,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    mut deflate: Option<ConnDeflate>,
) {
    let end = echo_loop(&mut io, &shared, deflate.as_mut()).await;
    let cfg = &shared.config;
    if let Ok(Some((code, reason, decodable))) = end {
        io.queue(server_frame(OpCode::Close, &close_payload(code, &reason)));
        let l = Linger {
            deadline: tokio::time::Instant::now() + cfg.close_timeout,
            budget: (2 * cfg.max_message_size).max(1 << 20),
            decodable,
        };
        let _ = lingering_close(&mut io, l).await;
    } else if io.pending_bytes() > 0 {
        let flushed = tokio::time::timeout(cfg.close_timeout, io.flush()).await;
        if let Ok(Ok(())) = flushed {
            let _ = io.shutdown_write().await;
        }
    }
    shared.unregister(peer.id);
    drop(permit);
}

/// Echoes until the peer closes (`None`, our close answer queued) or a
/// violation (`Some((code, reason, input still decodable))`).
async fn echo_loop(
    io: &mut WsIo,
    shared: &Shared,
    mut deflate: Option<&mut ConnDeflate>,
) -> std::io::Result<Option<(u16, String, bool)>> {
    // Data frames go through permessage-deflate when it was negotiated.
    let mut data = |op: OpCode, p: &[u8]| {
        let frame = server_frame(op, p);
        match deflate.as_deref_mut() {
            Some(d) => d.outgoing(frame),
            None => frame,
        }
    };
    loop {
        loop {
            let msg = match io.decode() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    metrics::inc(&shared.metrics.protocol_errors_total);
                    let kind = match e.close_code() {
                        close_code::TOO_BIG => BadInput::WsTooBig,
                        close_code::INVALID_PAYLOAD => BadInput::WsInvalidUtf8,
                        _ => BadInput::WsProtocol,
                    };
                    shared.metrics.bad_input.record(kind, &e);
                    return Ok(Some((e.close_code(), e.to_string(), false)));
                }
            };
            match msg {
                Message::Text(p) => io.queue(data(OpCode::Text, &p)),
                Message::Binary(p) => io.queue(data(OpCode::Binary, &p)),
                Message::Ping(p) => io.queue(server_frame(OpCode::Pong, &p)),
                Message::Pong(_) => {}
                Message::Close(frame) => {
                    let payload = frame.map(|f| close_payload(f.code, "")).unwrap_or_default();
                    io.queue(server_frame(OpCode::Close, &payload));
                    return Ok(None);
                }
            }
            io.flush().await?;
        }
        match io.fill()? {
            Fill::Data => {}
            Fill::WouldBlock => io.stream().readable().await?,
            Fill::Eof => return Ok(None),
        }
    }
}

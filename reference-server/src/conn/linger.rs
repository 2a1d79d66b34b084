//! The lingering close of RFC 6455 §7.1.1, shared by chat and echo
//! connections: once our close frame is queued (after whatever output was
//! already buffered), write it out while *reading and dropping* the peer's
//! input, wait for the peer's close frame or EOF, then half-close TCP.
//!
//! Reading matters twice over. A peer that is still writing (a 200 KB
//! message after a 1009) would otherwise block both sides' writes; and a
//! socket closed with unread input sends a RST, which makes the peer's
//! kernel discard our close frame before the peer reads it. Input is never
//! buffered beyond one message (and not at all once it cannot be decoded),
//! and both the bytes read and the time are bounded.

use std::io;
use std::task::Poll;

use tokio::time::Instant;
use wire::ws::{Fill, Message, WsIo};

/// Bounds for one lingering close.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    pub deadline: Instant,
    /// Most bytes read (and dropped) before giving up on a clean close.
    pub budget: usize,
    /// False after a protocol error: input is discarded unparsed.
    pub decodable: bool,
}

/// How the lingering close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Our close was written and the peer answered (close frame or EOF).
    Clean,
    /// The deadline passed first.
    TimedOut,
    /// The peer sent more than the budget while we were closing.
    Flooded,
}

enum Ready {
    Read(io::Result<()>),
    Write(io::Result<()>),
}

/// Runs the close handshake on `io`, whose close frame is already queued.
pub async fn lingering_close(io: &mut WsIo, mut l: Linger) -> io::Result<Outcome> {
    let mut read = 0usize;
    let mut peer_done = false;
    loop {
        let flushed = io.try_flush()?;
        if flushed && peer_done {
            // Close TCP first (§7.1.1); errors here change nothing.
            let _ = io.shutdown_write().await;
            return Ok(Outcome::Clean);
        }
        let wait = std::future::poll_fn(|cx| {
            if !flushed {
                if let Poll::Ready(r) = io.stream().poll_write_ready(cx) {
                    return Poll::Ready(Ready::Write(r));
                }
            }
            if !peer_done {
                if let Poll::Ready(r) = io.stream().poll_read_ready(cx) {
                    return Poll::Ready(Ready::Read(r));
                }
            }
            Poll::Pending
        });
        let Ok(ready) = tokio::time::timeout_at(l.deadline, wait).await else {
            return Ok(Outcome::TimedOut);
        };
        match ready {
            Ready::Write(r) => r?,
            Ready::Read(r) => {
                r?;
                let (fill, n) = read_some(io, &mut l, &mut peer_done)?;
                read = read.saturating_add(n);
                if fill == Fill::Eof {
                    peer_done = true;
                }
                if read > l.budget {
                    return Ok(Outcome::Flooded);
                }
            }
        }
    }
}

/// One read: decoded (to spot the peer's close) while the stream is still
/// well-formed, discarded raw otherwise. Returns the bytes read.
fn read_some(io: &mut WsIo, l: &mut Linger, peer_done: &mut bool) -> io::Result<(Fill, usize)> {
    if !l.decodable {
        return io.discard();
    }
    let before = io.buffered_len();
    let fill = io.fill()?;
    let n = io.buffered_len().saturating_sub(before);
    loop {
        match io.decode() {
            Ok(Some(Message::Close(_))) => {
                *peer_done = true;
                break;
            }
            // Application data after our close is dropped unhandled.
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                l.decodable = false;
                let _ = io.discard()?;
                break;
            }
        }
    }
    Ok((fill, n))
}

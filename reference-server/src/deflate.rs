//! permessage-deflate on the server: what to answer an offer, and which
//! frames go out compressed.
//!
//! Two modes (`--deflate-context-takeover`):
//! - off (default): every response carries `server_no_context_takeover` and
//!   `client_no_context_takeover`. A room message is then compressed once,
//!   in the hub, and the same bytes are queued to every member that agreed
//!   to the full 15-bit window, just like plain frames. Nothing is kept per
//!   connection between messages.
//! - on: each connection compresses its own output and keeps the last
//!   2^window_bits bytes of history per direction (see `wire::ws::deflate`);
//!   fan-out then costs one compression per recipient.
//!
//! Frames below `--deflate-threshold` and control frames go uncompressed.

use bytes::Bytes;
use wire::ws::deflate::{self, Agreed, Deflater, ServerPolicy};
use wire::ws::{OpCode, Request};

use crate::config::Config;

/// The agreement and the `Sec-WebSocket-Extensions` answer, when deflate is
/// on and the request offers an acceptable `permessage-deflate`.
pub fn negotiate(req: &Request, cfg: &Config) -> Option<(Agreed, String)> {
    if !cfg.deflate {
        return None;
    }
    let policy = ServerPolicy {
        server_no_context_takeover: !cfg.deflate_context_takeover,
        client_no_context_takeover: !cfg.deflate_context_takeover,
    };
    deflate::accept(&req.header_values("sec-websocket-extensions"), policy)
}

/// Whether the hub may queue its shared compressed bytes to this connection:
/// no context takeover and the full window those bytes were made with.
pub fn takes_shared_frames(agreed: &Agreed) -> bool {
    agreed.server_no_context_takeover && agreed.server_max_window_bits == 15
}

/// The opcode and payload of an unmasked, uncompressed data frame as
/// `server_frame` encodes it; `None` for control or compressed frames.
fn data_payload(frame: &[u8]) -> Option<(OpCode, &[u8])> {
    let b0 = *frame.first()?;
    if b0 & 0x70 != 0 {
        return None;
    }
    let opcode = match b0 & 0x0F {
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        _ => return None,
    };
    let header = match frame.get(1)? & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    Some((opcode, frame.get(header..)?))
}

/// The frame compressed once for every no-takeover member, or `None` when
/// it stays as is (below the threshold, or not a data frame).
pub fn shared_frame(frame: &[u8], threshold: usize) -> Option<Bytes> {
    let (opcode, payload) = data_payload(frame)?;
    (payload.len() >= threshold).then(|| Deflater::stateless(15).frame(opcode, payload, None))
}

/// A connection's compressor: what the connection compresses itself
/// (replies, batches, everything with context takeover).
#[derive(Debug)]
pub struct ConnDeflate {
    deflater: Deflater,
    threshold: usize,
}

impl ConnDeflate {
    pub fn new(agreed: &Agreed, threshold: usize) -> Self {
        Self {
            deflater: agreed.deflater(true),
            threshold,
        }
    }

    /// The frame to write: compressed if it is an uncompressed data frame
    /// at or above the threshold, otherwise unchanged (already-compressed
    /// shared frames pass through).
    pub fn outgoing(&mut self, frame: Bytes) -> Bytes {
        match data_payload(&frame) {
            Some((opcode, payload)) if payload.len() >= self.threshold => {
                self.deflater.frame(opcode, payload, None)
            }
            _ => frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use wire::ws::{server_frame, Decoder, Message, Role};

    fn agreed(takeover: bool) -> Agreed {
        Agreed {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    #[test]
    fn compresses_data_frames_over_the_threshold_only() {
        let a = agreed(false);
        let mut c = ConnDeflate::new(&a, 16);
        let small = server_frame(OpCode::Text, b"short");
        assert_eq!(c.outgoing(small.clone()), small);
        let ping = server_frame(OpCode::Ping, &[b'p'; 40]);
        assert_eq!(c.outgoing(ping.clone()), ping);
        let text = br#"{"type":"chat","text":"hello hello hello hello hello"}"#;
        let big = c.outgoing(server_frame(OpCode::Text, text));
        assert_eq!(big[0], 0xC1);
        assert!(big.len() < text.len());
        // A shared compressed frame passes through a connection untouched.
        let shared = shared_frame(&server_frame(OpCode::Text, text), 16).unwrap();
        assert_eq!(c.outgoing(shared.clone()), shared);
        assert_eq!(shared, big);
        let mut d = Decoder::new(Role::Client, 1 << 16);
        d.set_inflater(Some(a.inflater(false)));
        let mut buf = BytesMut::from(&shared[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Some(Message::Text(Bytes::from_static(text)))
        );
        assert!(takes_shared_frames(&a) && !takes_shared_frames(&agreed(true)));
    }
}

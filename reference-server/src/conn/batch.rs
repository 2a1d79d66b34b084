//! `batch` frames: several queued server frames coalesced into one
//! WebSocket frame by copying their encoded JSON, without re-serializing.

use bytes::{BufMut, Bytes, BytesMut};

use crate::peer::Outgoing;
use wire::ws::OpCode;

/// Combines several queued frames into one `batch` frame without re-encoding
/// them: each queued frame's JSON payload is copied after its header.
pub(super) fn batch_frame(items: &[Outgoing]) -> Bytes {
    const HEAD: &[u8] = br#"{"type":"batch","messages":["#;
    const TAIL: &[u8] = b"]}";
    let payloads: Vec<&[u8]> = items.iter().map(|o| frame_payload(&o.frame)).collect();
    let len =
        HEAD.len() + TAIL.len() + payloads.iter().map(|p| p.len()).sum::<usize>() + payloads.len()
            - 1;
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(0x80 | OpCode::Text as u8);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out.put_slice(HEAD);
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(p);
    }
    out.put_slice(TAIL);
    out.freeze()
}

/// The payload of an unmasked server frame produced by `server_frame`.
fn frame_payload(frame: &[u8]) -> &[u8] {
    let header = match frame.get(1).map(|b| b & 0x7F) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return &[],
    };
    frame.get(header..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::ws::{server_frame, Message};

    #[test]
    fn batch_frame_wraps_payloads_in_order() {
        let a = server_frame(OpCode::Text, br#"{"type":"pong","ts":1}"#);
        let big = format!(r#"{{"type":"pong","ts":{}}}"#, "1".repeat(300));
        let b = server_frame(OpCode::Text, big.as_bytes());
        let frame = batch_frame(&[Outgoing::now(a), Outgoing::now(b)]);
        let mut buf = BytesMut::from(&frame[..]);
        let mut d = wire::ws::Decoder::new(wire::ws::Role::Client, 1 << 20);
        let Some(Message::Text(text)) = d.decode(&mut buf).unwrap() else {
            panic!("not text")
        };
        let mut n = 0;
        wire::protocol::for_each_server_frame(&text, |f| {
            assert_eq!(f.kind.as_deref(), Some("pong"));
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 2);
    }
}

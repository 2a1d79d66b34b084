//! RFC 6455 frame encoding and incremental decoding.
//!
//! The decoder works on a caller-owned `BytesMut` so that a connection can
//! drop its read buffer entirely while idle (the memory target is a few KiB
//! per connection, far below tungstenite's 128 KiB default read buffer).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::deflate::Inflater;

/// Which side of the connection we are: servers require masked input and
/// send unmasked frames; clients do the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl OpCode {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A complete, reassembled message. `Text` payloads are valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: String,
}

/// Standard close codes used by protocol v1.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const RESTARTING: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A violation that ends the connection; `close_code` says how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("reserved bits set")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpCode(u8),
    #[error("frame masking does not match the peer's role")]
    BadMask,
    #[error("control frame is fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    #[error("message of {0} bytes exceeds the limit")]
    TooBig(u64),
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    #[error("malformed close frame")]
    BadClose,
    #[error("close code {0} must not appear on the wire")]
    BadCloseCode(u16),
    #[error("64-bit payload length has its most significant bit set")]
    BadLength,
    #[error("compressed message does not inflate")]
    BadCompression,
}

impl ProtocolError {
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooBig(_) => close_code::TOO_BIG,
            Self::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}

/// Incremental decoder. Holds only the in-progress fragmented message, if any.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message_size: usize,
    fragment: Option<(OpCode, BytesMut)>,
    /// permessage-deflate, when negotiated: RSV1 marks a compressed message.
    inflater: Option<Box<Inflater>>,
    /// The message in `fragment` has RSV1 set on its first frame.
    fragment_compressed: bool,
}

struct Header {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: u64,
    compressed: bool,
}

impl Decoder {
    pub fn new(role: Role, max_message_size: usize) -> Self {
        Self {
            role,
            max_message_size,
            fragment: None,
            inflater: None,
            fragment_compressed: false,
        }
    }

    /// Turns on permessage-deflate for received messages (RFC 7692 §6.2).
    pub fn set_inflater(&mut self, inflater: Option<Inflater>) {
        self.inflater = inflater.map(Box::new);
    }

    /// True while a fragmented message is being reassembled.
    pub fn is_mid_message(&self) -> bool {
        self.fragment.is_some()
    }

    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::UnknownOpCode(b0 & 0x0F))?;
        // RSV1 only on the first frame of a data message, and only with deflate.
        let compressed = b0 & 0x40 != 0
            && self.inflater.is_some()
            && matches!(opcode, OpCode::Text | OpCode::Binary);
        if b0 & 0x70 != 0 && !(compressed && b0 & 0x30 == 0) {
            return Err(ProtocolError::ReservedBits);
        }
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(ProtocolError::BadMask);
        }
        let (payload_len, mut header_len) = match b1 & 0x7F {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut len = [0u8; 8];
                len.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(len);
                // RFC 6455 §5.2: the most significant bit must be 0.
                if len >> 63 != 0 {
                    return Err(ProtocolError::BadLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode.is_control() && (!fin || payload_len > 125) {
            return Err(ProtocolError::BadControlFrame);
        }
        let mask = if masked {
            if buf.len() < header_len + 4 {
                return Ok(None);
            }
            let mut m = [0u8; 4];
            m.copy_from_slice(&buf[header_len..header_len + 4]);
            header_len += 4;
            Some(m)
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len,
            payload_len,
            compressed,
        }))
    }

    /// Decodes the next complete message from `buf`, consuming its bytes.
    /// Returns `Ok(None)` when more input is needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some(h) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let in_progress = self.fragment.as_ref().map_or(0, |(_, b)| b.len() as u64);
            // Saturating: a peer controls `payload_len` (up to 2^63 - 1), and
            // the sum must never wrap past the limit check.
            let message_len = in_progress.saturating_add(h.payload_len);
            if !h.opcode.is_control() && message_len > self.max_message_size as u64 {
                return Err(ProtocolError::TooBig(message_len));
            }
            let total = h.header_len + h.payload_len as usize;
            if buf.len() < total {
                // Reserve up front so a large frame is read without repeated regrowth.
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(h.payload_len as usize);
            if let Some(mask) = h.mask {
                apply_mask(&mut payload, mask);
            }
            if let Some(msg) = self.assemble(h.fin, h.opcode, h.compressed, payload)? {
                return Ok(Some(msg));
            }
        }
    }

    fn assemble(
        &mut self,
        fin: bool,
        opcode: OpCode,
        compressed: bool,
        payload: BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        match opcode {
            OpCode::Ping => Ok(Some(Message::Ping(payload.freeze()))),
            OpCode::Pong => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => parse_close(&payload).map(|c| Some(Message::Close(c))),
            OpCode::Continuation => {
                let Some((_, ref mut acc)) = self.fragment else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                acc.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let (first, acc) = self
                    .fragment
                    .take()
                    .ok_or(ProtocolError::UnexpectedContinuation)?;
                let compressed = std::mem::take(&mut self.fragment_compressed);
                let acc = self.inflate(compressed, acc)?;
                finish_data(first, acc).map(Some)
            }
            OpCode::Text | OpCode::Binary => {
                if self.fragment.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if fin {
                    finish_data(opcode, self.inflate(compressed, payload)?).map(Some)
                } else {
                    self.fragment = Some((opcode, payload));
                    self.fragment_compressed = compressed;
                    Ok(None)
                }
            }
        }
    }
}

impl Decoder {
    /// Inflates a compressed message, bounded by the message size limit.
    fn inflate(&mut self, compressed: bool, payload: BytesMut) -> Result<BytesMut, ProtocolError> {
        match (compressed, self.inflater.as_deref_mut()) {
            (true, Some(inf)) => inf.inflate(&payload, self.max_message_size),
            _ => Ok(payload),
        }
    }
}

fn finish_data(opcode: OpCode, payload: BytesMut) -> Result<Message, ProtocolError> {
    if opcode == OpCode::Text {
        std::str::from_utf8(&payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Message::Text(payload.freeze()))
    } else {
        Ok(Message::Binary(payload.freeze()))
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::BadClose),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_allowed_on_wire(code) {
                return Err(ProtocolError::BadCloseCode(code));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| ProtocolError::InvalidUtf8)?
                .to_owned();
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Whether a received close frame may carry `code` (RFC 6455 §7.4): the
/// defined codes except those reserved for local use (1004-1006, 1015), the
/// later IANA-registered 1012-1014, and the 3000-4999 application range.
pub fn close_code_allowed_on_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `data` with the 4-byte mask, word-at-a-time for the bulk.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let mask_word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let mut w = [0u8; 4];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u32::from_ne_bytes(w) ^ mask_word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Appends one complete (FIN) frame to `out`. `mask` must be `Some` for
/// client-to-server frames and `None` for server-to-client frames.
pub fn encode_frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>, out: &mut BytesMut) {
    let len = payload.len();
    out.reserve(len + 14);
    out.put_u8(0x80 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(mask_bit | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
    match mask {
        Some(m) => {
            out.put_slice(&m);
            let start = out.len();
            out.put_slice(payload);
            apply_mask(&mut out[start..], m);
        }
        None => out.put_slice(payload),
    }
}

/// An unmasked server frame as shareable bytes: encoded once, queued to many.
pub fn server_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    encode_frame(opcode, payload, None, &mut out);
    out.freeze()
}

/// A masked client frame with a fresh random mask.
pub fn client_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 14);
    encode_frame(opcode, payload, Some(rand::random()), &mut out);
    out.freeze()
}

/// The payload of a close frame: code then UTF-8 reason (truncated to fit 125 bytes).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = Vec::with_capacity(2 + end);
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(role_out: Option<[u8; 4]>, role_in: Role, payload: &[u8]) -> Message {
        let mut buf = BytesMut::new();
        encode_frame(OpCode::Text, payload, role_out, &mut buf);
        let mut d = Decoder::new(role_in, 1 << 20);
        d.decode(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn roundtrips_all_length_encodings() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload = vec![b'a'; len];
            let m = roundtrip(Some([1, 2, 3, 4]), Role::Server, &payload);
            assert_eq!(m, Message::Text(Bytes::from(payload.clone())));
            let m = roundtrip(None, Role::Client, &payload);
            assert_eq!(m, Message::Text(Bytes::from(payload)));
        }
    }

    #[test]
    fn decodes_byte_by_byte_and_reassembles_fragments() {
        let mut wire = BytesMut::new();
        // "hel" + ping + "lo" as a fragmented text message with an interleaved control frame.
        let m = Some([9, 8, 7, 6]);
        let mut first = BytesMut::new();
        encode_frame(OpCode::Text, b"hel", m, &mut first);
        first[0] &= 0x7F; // clear FIN
        wire.extend_from_slice(&first);
        encode_frame(OpCode::Ping, b"p", m, &mut wire);
        encode_frame(OpCode::Continuation, b"lo", m, &mut wire);
        let mut d = Decoder::new(Role::Server, 1024);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(msg) = d.decode(&mut buf).unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(
            got,
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Text(Bytes::from_static(b"hello"))
            ]
        );
    }

    #[test]
    fn rejects_violations_with_the_right_close_code() {
        let mut d = Decoder::new(Role::Server, 10);
        let mut buf = BytesMut::new();
        encode_frame(OpCode::Text, b"unmasked", None, &mut buf);
        assert_eq!(d.decode(&mut buf).unwrap_err(), ProtocolError::BadMask);

        let mut d = Decoder::new(Role::Server, 10);
        let mut buf = BytesMut::new();
        encode_frame(OpCode::Text, &[b'x'; 11], Some([0; 4]), &mut buf);
        assert_eq!(d.decode(&mut buf).unwrap_err().close_code(), 1009);

        let mut d = Decoder::new(Role::Server, 10);
        let mut buf = BytesMut::new();
        encode_frame(OpCode::Text, &[0xff, 0xfe], Some([0; 4]), &mut buf);
        assert_eq!(d.decode(&mut buf).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn crafted_lengths_fail_cleanly_instead_of_overflowing() {
        // A text fragment, then a continuation claiming 2^64 - 10 bytes.
        for role in [Role::Server, Role::Client] {
            let mask = (role == Role::Server).then_some([1, 2, 3, 4]);
            let mut buf = BytesMut::new();
            encode_frame(OpCode::Text, b"abc", mask, &mut buf);
            buf[0] &= 0x7F;
            buf.put_u8(0x80);
            buf.put_u8(if mask.is_some() { 0xFF } else { 0x7F });
            buf.put_u64(u64::MAX - 9);
            if let Some(m) = mask {
                buf.put_slice(&m);
            }
            let mut d = Decoder::new(role, 1 << 20);
            assert_eq!(d.decode(&mut buf).unwrap_err(), ProtocolError::BadLength);
        }
        // The largest legal 64-bit length after a fragment is still only too big.
        let mut buf = BytesMut::new();
        encode_frame(OpCode::Text, b"abc", None, &mut buf);
        buf[0] &= 0x7F;
        buf.put_u8(0x80);
        buf.put_u8(0x7F);
        buf.put_u64(u64::MAX >> 1);
        let mut d = Decoder::new(Role::Client, 1 << 20);
        assert_eq!(d.decode(&mut buf).unwrap_err().close_code(), 1009);
    }

    #[test]
    fn close_codes_reserved_for_local_use_are_protocol_errors() {
        for (code, ok) in [
            (1000, true),
            (1001, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1011, true),
            (1012, true),
            (1015, false),
            (999, false),
            (2999, false),
            (3000, true),
            (4999, true),
            (5000, false),
        ] {
            let mut buf = BytesMut::new();
            encode_frame(OpCode::Close, &close_payload(code, "x"), None, &mut buf);
            let got = Decoder::new(Role::Client, 1024).decode(&mut buf);
            if ok {
                assert!(matches!(got, Ok(Some(Message::Close(Some(c)))) if c.code == code));
            } else {
                let err = got.unwrap_err();
                assert_eq!(err, ProtocolError::BadCloseCode(code));
                assert_eq!(err.close_code(), 1002);
            }
        }
    }

    #[test]
    fn close_payload_roundtrips_and_truncates_on_char_boundary() {
        let reason = "é".repeat(100);
        let p = close_payload(1008, &reason);
        assert!(p.len() <= 125);
        let c = parse_close(&p).unwrap().unwrap();
        assert_eq!(c.code, 1008);
        assert!(reason.starts_with(&c.reason));
    }
}

//! permessage-deflate (RFC 7692): negotiation of the extension parameters
//! and per-message compression, both sides.
//!
//! Memory: no zlib state lives per connection. Every (de)compression runs on
//! a per-thread `flate2` state that is reset first. Context takeover is kept
//! as the last 2^window_bits bytes of uncompressed history and replayed into
//! the reset state with `set_dictionary`; that is exactly what the peer's
//! LZ77 window holds, so back-references stay valid. An idle connection thus
//! holds at most its history (nothing at all without context takeover)
//! instead of a ~300 KiB deflate state and a ~40 KiB inflate state.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{encode_frame, OpCode, ProtocolError};

/// The extension token.
pub const NAME: &str = "permessage-deflate";
/// The tail a sync flush ends with, stripped on send and appended on receive (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// zlib level 1: on chat-sized messages level 6 costs ~3x the CPU (about
/// 25 µs against 5 µs for 300 bytes with zlib-rs) for ~15% smaller output.
const LEVEL: u32 = 1;
/// The compressor replays at most this much history. Back-references may
/// reach less far than the peer's window (it holds more, never less), so a
/// shorter dictionary is valid; it bounds the per-message `set_dictionary`
/// cost and the memory an idle connection keeps for sending.
const MAX_SEND_HISTORY: usize = 8 * 1024;
/// Inflated output starts at up to this much and doubles, capped at the limit,
/// so a zip bomb never makes us allocate more than the limit allows.
const INFLATE_STEP: usize = 16 * 1024;

/// An offer or response that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("permessage-deflate parameter `{0}` is unknown")]
    UnknownParam(String),
    #[error("permessage-deflate parameter `{0}` appears twice")]
    Duplicate(String),
    #[error("permessage-deflate parameter `{0}` has an invalid value")]
    BadValue(String),
    #[error("the server's permessage-deflate response breaks the offer: {0}")]
    Violates(&'static str),
    #[error("the server accepted an extension that was not offered: {0}")]
    NotOffered(String),
}

/// The four parameters of §7.1, as offered or agreed. `None` window bits in
/// an offer means "not mentioned"; `Some(None)` for `client_max_window_bits`
/// means the parameter without a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<Option<u8>>,
}

/// What was agreed: how each side compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// Server policy: parameters forced in every response whatever the offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerPolicy {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
}

fn window_bits(name: &str, v: &str) -> Result<u8, NegotiationError> {
    // Values may be quoted strings (§7.1, RFC 6455 §9.1); they must be 1*DIGIT 8..15.
    let v = v.trim().trim_matches('"');
    match v.parse::<u8>() {
        Ok(b @ 8..=15) if v.bytes().all(|c| c.is_ascii_digit()) && !v.starts_with('0') => Ok(b),
        _ => Err(NegotiationError::BadValue(name.to_owned())),
    }
}

/// Parses the parameters of one `permessage-deflate` element (the part after
/// the token). Unknown or repeated parameters and bad values are errors (§7).
pub fn parse_params(params: &str) -> Result<Offer, NegotiationError> {
    let mut o = Offer::default();
    let mut seen = [false; 4];
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p, None),
        };
        let slot = match name {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(NegotiationError::UnknownParam(name.to_owned())),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(NegotiationError::Duplicate(name.to_owned()));
        }
        match (slot, value) {
            (0, None) => o.server_no_context_takeover = true,
            (1, None) => o.client_no_context_takeover = true,
            (2, Some(v)) => o.server_max_window_bits = Some(window_bits(name, v)?),
            (3, None) => o.client_max_window_bits = Some(None),
            (3, Some(v)) => o.client_max_window_bits = Some(Some(window_bits(name, v)?)),
            _ => return Err(NegotiationError::BadValue(name.to_owned())),
        }
    }
    Ok(o)
}

/// Splits `Sec-WebSocket-Extensions` values into (token, params) elements.
fn elements<'a>(values: &'a [&'a str]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once(';') {
            Some((t, p)) => (t.trim(), p),
            None => (e, ""),
        })
}

/// Server side: picks the first acceptable `permessage-deflate` offer among
/// the request's `Sec-WebSocket-Extensions` values, declining invalid ones
/// (§7.1: a server must decline an offer it cannot parse). Returns what was
/// agreed and the response header value.
pub fn accept(values: &[&str], policy: ServerPolicy) -> Option<(Agreed, String)> {
    elements(values)
        .filter(|(t, _)| t.eq_ignore_ascii_case(NAME))
        .find_map(|(_, p)| parse_params(p).ok())
        .map(|o| {
            let agreed = Agreed {
                server_no_context_takeover: o.server_no_context_takeover
                    || policy.server_no_context_takeover,
                client_no_context_takeover: o.client_no_context_takeover
                    || policy.client_no_context_takeover,
                server_max_window_bits: o.server_max_window_bits.unwrap_or(15),
                // The client promised at most this window; without a value, 15.
                client_max_window_bits: o.client_max_window_bits.flatten().unwrap_or(15),
            };
            let mut resp = String::from(NAME);
            if agreed.server_no_context_takeover {
                resp.push_str("; server_no_context_takeover");
            }
            if agreed.client_no_context_takeover {
                resp.push_str("; client_no_context_takeover");
            }
            if let Some(b) = o.server_max_window_bits {
                resp.push_str(&format!("; server_max_window_bits={b}"));
            }
            (agreed, resp)
        })
}

impl Offer {
    /// The client's `Sec-WebSocket-Extensions` value. `client_max_window_bits`
    /// is always offered (with no value unless one is set): we can honour any
    /// window the server picks.
    pub fn header_value(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        match self.client_max_window_bits.flatten() {
            Some(b) => s.push_str(&format!("; client_max_window_bits={b}")),
            None => s.push_str("; client_max_window_bits"),
        }
        s
    }

    /// Client side: checks the server's response against this offer (§7.1).
    /// `values` empty means the server declined: `Ok(None)`.
    pub fn check_response(&self, values: &[&str]) -> Result<Option<Agreed>, NegotiationError> {
        let mut agreed = None;
        for (token, params) in elements(values) {
            if !token.eq_ignore_ascii_case(NAME) || agreed.is_some() {
                return Err(NegotiationError::NotOffered(token.to_owned()));
            }
            let r = parse_params(params)?;
            if self.server_no_context_takeover && !r.server_no_context_takeover {
                return Err(NegotiationError::Violates(
                    "server_no_context_takeover was offered but not accepted",
                ));
            }
            let server_bits = match (self.server_max_window_bits, r.server_max_window_bits) {
                (Some(_), None) => {
                    return Err(NegotiationError::Violates(
                        "server_max_window_bits was offered but not accepted",
                    ))
                }
                (Some(mine), Some(theirs)) if theirs > mine => {
                    return Err(NegotiationError::Violates(
                        "server_max_window_bits is larger than offered",
                    ))
                }
                (_, b) => b.unwrap_or(15),
            };
            // `header_value` always offers client_max_window_bits.
            let offered_client_bits = Some(self.client_max_window_bits.flatten().unwrap_or(15));
            let client_bits = match (offered_client_bits, r.client_max_window_bits) {
                (None, Some(_)) => {
                    return Err(NegotiationError::Violates(
                        "client_max_window_bits in the response but not in the offer",
                    ))
                }
                (_, Some(None)) => {
                    return Err(NegotiationError::BadValue(
                        "client_max_window_bits".to_owned(),
                    ))
                }
                (Some(mine), Some(Some(theirs))) if theirs > mine => {
                    return Err(NegotiationError::Violates(
                        "client_max_window_bits is larger than offered",
                    ))
                }
                (mine, Some(Some(theirs))) => theirs.min(mine.unwrap_or(15)),
                (mine, None) => mine.unwrap_or(15),
            };
            agreed = Some(Agreed {
                server_no_context_takeover: r.server_no_context_takeover,
                client_no_context_takeover: r.client_no_context_takeover
                    || self.client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
            });
        }
        Ok(agreed)
    }
}

impl Agreed {
    /// The compressor for what `server` (or the client) sends.
    pub fn deflater(&self, server: bool) -> Deflater {
        let (no_takeover, bits) = if server {
            (self.server_no_context_takeover, self.server_max_window_bits)
        } else {
            (self.client_no_context_takeover, self.client_max_window_bits)
        };
        Deflater {
            bits,
            history: (!no_takeover).then(Vec::new),
        }
    }

    /// The decompressor for what the peer sends.
    pub fn inflater(&self, server: bool) -> Inflater {
        let (no_takeover, bits) = if server {
            (self.client_no_context_takeover, self.client_max_window_bits)
        } else {
            (self.server_no_context_takeover, self.server_max_window_bits)
        };
        Inflater {
            bits,
            history: (!no_takeover).then(Vec::new),
        }
    }
}

thread_local! {
    /// One reset-and-reuse compressor per window size (index bits - 8).
    static COMPRESSORS: RefCell<[Option<Box<Compress>>; 8]> = const { RefCell::new([const { None }; 8]) };
    static DECOMPRESSOR: RefCell<Option<Box<Decompress>>> = const { RefCell::new(None) };
}

/// Appends `data` to a history of at most `cap` bytes, keeping the newest.
fn remember(history: &mut Vec<u8>, data: &[u8], cap: usize) {
    if data.len() >= cap {
        history.clear();
        history.extend_from_slice(&data[data.len() - cap..]);
    } else {
        let excess = (history.len() + data.len()).saturating_sub(cap);
        history.drain(..excess);
        history.extend_from_slice(data);
    }
}

/// Compresses outgoing messages. `history` is `Some` with context takeover.
#[derive(Debug, Clone)]
pub struct Deflater {
    bits: u8,
    history: Option<Vec<u8>>,
}

impl Deflater {
    /// A compressor without context takeover and the full 15-bit window:
    /// the one a server shares among every connection that agreed to
    /// `server_no_context_takeover` with no smaller window.
    pub fn stateless(bits: u8) -> Self {
        Self {
            bits,
            history: None,
        }
    }

    pub fn takes_over_context(&self) -> bool {
        self.history.is_some()
    }

    pub fn window_bits(&self) -> u8 {
        self.bits
    }

    /// Bytes held between messages (the context-takeover history).
    pub fn held_bytes(&self) -> usize {
        self.history.as_ref().map_or(0, Vec::capacity)
    }

    /// One message's compressed payload, the sync-flush tail removed (§7.2.1).
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        // zlib cannot compress with a 256-byte window (it silently uses 512);
        // stored blocks make no back-references, so they fit any window.
        let (zbits, level) = if self.bits <= 8 {
            (9, Compression::none())
        } else {
            (self.bits, Compression::new(LEVEL))
        };
        let out = COMPRESSORS.with(|cell| {
            let mut all = cell.borrow_mut();
            let slot = &mut all[usize::from(self.bits.clamp(8, 15) - 8)];
            let c = slot.get_or_insert_with(|| {
                Box::new(Compress::new_with_window_bits(level, false, zbits))
            });
            c.reset();
            if let Some(h) = self.history.as_deref().filter(|h| !h.is_empty()) {
                // Cannot fail on a freshly reset raw-deflate stream.
                let _ = c.set_dictionary(h);
            }
            let mut out = Vec::with_capacity(payload.len() / 2 + 64);
            let start_in = c.total_in();
            // Bounded: every pass consumes input or fills the spare output.
            for _ in 0..(payload.len() / 64 + 64) {
                let consumed = (c.total_in() - start_in) as usize;
                if out.capacity() - out.len() < 64 {
                    out.reserve(64.max(payload.len() - consumed));
                }
                if c.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                    .is_err()
                {
                    break;
                }
                // A sync flush is complete once input is used up and it left output space unused.
                if (c.total_in() - start_in) as usize == payload.len() && out.len() < out.capacity()
                {
                    break;
                }
            }
            out
        });
        if let Some(h) = &mut self.history {
            remember(h, payload, MAX_SEND_HISTORY.min(1 << self.bits));
        }
        strip_tail(out)
    }

    /// A complete compressed data frame (RSV1 set). `mask`: see `encode_frame`.
    pub fn frame(&mut self, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Bytes {
        let compressed = self.compress(payload);
        let mut out = BytesMut::with_capacity(compressed.len() + 14);
        encode_frame(opcode, &compressed, mask, &mut out);
        out[0] |= 0x40;
        out.freeze()
    }
}

fn strip_tail(mut out: Vec<u8>) -> Vec<u8> {
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// Decompresses incoming messages. `history` is `Some` with context takeover.
#[derive(Debug, Clone)]
pub struct Inflater {
    bits: u8,
    history: Option<Vec<u8>>,
}

impl Inflater {
    pub fn held_bytes(&self) -> usize {
        self.history.as_ref().map_or(0, Vec::capacity)
    }

    /// Inflates one message's payload; more than `max` bytes of output is
    /// `TooBig` (close 1009) however small the input, and corrupt input is
    /// `BadCompression`.
    pub fn inflate(&mut self, payload: &[u8], max: usize) -> Result<BytesMut, ProtocolError> {
        let out = DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let d = slot.get_or_insert_with(|| Box::new(Decompress::new(false)));
            d.reset(false);
            if let Some(h) = self.history.as_deref().filter(|h| !h.is_empty()) {
                d.set_dictionary(h)
                    .map_err(|_| ProtocolError::BadCompression)?;
            }
            inflate_bounded(d, payload, max)
        })?;
        if let Some(h) = &mut self.history {
            // The peer may refer back across its whole window.
            remember(h, &out, 1 << self.bits);
        }
        Ok(BytesMut::from(&out[..]))
    }
}

fn inflate_bounded(
    d: &mut Decompress,
    payload: &[u8],
    max: usize,
) -> Result<Vec<u8>, ProtocolError> {
    let start_in = d.total_in();
    let mut out: Vec<u8> = Vec::new();
    // The payload, then the stripped tail; each fed until consumed.
    for input in [payload, &TAIL[..]] {
        let base = (d.total_in() - start_in) as usize;
        loop {
            let used = (d.total_in() - start_in) as usize - base;
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Err(ProtocolError::TooBig(out.len() as u64));
                }
                // Doubling, but never past the limit (plain `reserve` could).
                let first = (payload.len() * 4).clamp(256, INFLATE_STEP);
                let step = out.capacity().max(first).min(max + 1 - out.len());
                out.reserve_exact(step.max(1));
            }
            let before = (d.total_in(), out.len());
            let status = d
                .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::BadCompression)?;
            if out.len() > max {
                return Err(ProtocolError::TooBig(out.len() as u64));
            }
            let used = (d.total_in() - start_in) as usize - base;
            if status == Status::StreamEnd {
                // A final block ends the message's stream (§7.2.3.3); the
                // rest of the input, at most our tail, is ignored.
                return Ok(out);
            }
            let progress = (d.total_in(), out.len()) != before;
            if used == input.len() && out.len() < out.capacity() {
                break;
            }
            if !progress && out.len() < out.capacity() {
                return Err(ProtocolError::BadCompression);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7692_hello_examples() {
        // §7.2.3.1: "Hello" in one compressed message.
        let mut inf = Inflater {
            bits: 15,
            history: None,
        };
        let got = inf
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
            .unwrap();
        assert_eq!(&got[..], b"Hello");
        // §7.2.3.2: the second "Hello" sent with context takeover refers back.
        let mut inf = Inflater {
            bits: 15,
            history: Some(Vec::new()),
        };
        inf.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100)
            .unwrap();
        let got = inf.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], 100).unwrap();
        assert_eq!(&got[..], b"Hello");
        // §7.2.3.3: a stored (uncompressed) block.
        let got = Inflater {
            bits: 15,
            history: None,
        }
        .inflate(
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            100,
        )
        .unwrap();
        assert_eq!(&got[..], b"Hello");
        // §7.2.3.4: a final block with BFINAL set.
        let got = Inflater {
            bits: 15,
            history: None,
        }
        .inflate(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], 100)
        .unwrap();
        assert_eq!(&got[..], b"Hello");
        // §7.2.3.1 again, the other way: our compressor emits exactly those bytes.
        let mut def = Deflater::stateless(15);
        assert_eq!(
            def.compress(b"Hello"),
            vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }

    #[test]
    fn context_takeover_shrinks_repeats_and_roundtrips() {
        let agreed = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 15,
        };
        let mut tx = agreed.deflater(true);
        let mut rx = agreed.inflater(false);
        assert!(tx.takes_over_context());
        let msg = br#"{"type":"chat","room":"lobby","text":"the same text again and again"}"#;
        let first = tx.compress(msg);
        let second = tx.compress(msg);
        assert!(
            second.len() < first.len() / 2,
            "{} vs {}",
            second.len(),
            first.len()
        );
        assert_eq!(&rx.inflate(&first, 1024).unwrap()[..], &msg[..]);
        assert_eq!(&rx.inflate(&second, 1024).unwrap()[..], &msg[..]);
        // History never exceeds the window.
        for _ in 0..50 {
            let c = tx.compress(&[b'z'; 700]);
            assert_eq!(&rx.inflate(&c, 1024).unwrap()[..], &[b'z'; 700][..]);
        }
        assert!(tx.held_bytes() <= 2048 && rx.held_bytes() <= 2048);
        // The client side keeps no history when it agreed to no takeover.
        assert!(!agreed.deflater(false).takes_over_context());
    }

    #[test]
    fn every_window_size_roundtrips() {
        let text: Vec<u8> = (0..5000u32)
            .map(|i| b"abcdefghij"[(i * 7 % 10) as usize] ^ (i / 300) as u8)
            .collect();
        for bits in 8..=15 {
            let mut tx = Deflater {
                bits,
                history: Some(Vec::new()),
            };
            let mut rx = Inflater {
                bits,
                history: Some(Vec::new()),
            };
            for _ in 0..3 {
                let c = tx.compress(&text);
                assert_eq!(
                    &rx.inflate(&c, 1 << 20).unwrap()[..],
                    &text[..],
                    "bits {bits}"
                );
            }
        }
        let mut tx = Deflater::stateless(15);
        assert_eq!(
            &Inflater {
                bits: 15,
                history: None
            }
            .inflate(&tx.compress(b""), 10)
            .unwrap()[..],
            b""
        );
    }

    #[test]
    fn zip_bomb_is_too_big_and_garbage_is_bad_compression() {
        // ~100:1 at level 1: far below the 64 KiB frame limit it must pass.
        let bomb = Deflater::stateless(15).compress(&vec![0u8; 4 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let mut rx = Inflater {
            bits: 15,
            history: None,
        };
        let err = rx.inflate(&bomb, 64 * 1024).unwrap_err();
        assert_eq!(err.close_code(), 1009);
        assert_eq!(
            rx.inflate(&[0xff, 0xff, 0xff, 0x00], 1024).unwrap_err(),
            ProtocolError::BadCompression
        );
        // Exactly at the limit is fine.
        let ok = Deflater::stateless(15).compress(&[7u8; 4096]);
        assert_eq!(rx.inflate(&ok, 4096).unwrap().len(), 4096);
    }

    #[test]
    fn server_accepts_first_valid_offer_and_declines_invalid_ones() {
        let p = ServerPolicy::default();
        assert_eq!(accept(&[], p), None);
        assert_eq!(accept(&["x-webkit-deflate-frame"], p), None);
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; foo",
        ] {
            assert_eq!(accept(&[bad], p), None, "{bad}");
        }
        let (a, resp) = accept(
            &["permessage-deflate; server_max_window_bits=20, permessage-deflate; client_max_window_bits=\"12\"; server_max_window_bits=10"],
            p,
        )
        .unwrap();
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (10, 12)
        );
        assert!(!a.server_no_context_takeover);
        let forced = ServerPolicy {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        };
        let (a, resp) = accept(
            &["foo", "permessage-deflate; client_max_window_bits"],
            forced,
        )
        .unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(a.server_no_context_takeover && a.client_no_context_takeover);
    }

    #[test]
    fn client_checks_the_response_against_its_offer() {
        let offer = Offer {
            server_no_context_takeover: true,
            server_max_window_bits: Some(12),
            ..Offer::default()
        };
        assert_eq!(offer.header_value(), "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits");
        assert_eq!(offer.check_response(&[]), Ok(None));
        let a = offer
            .check_response(&["permessage-deflate; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.server_max_window_bits, a.client_max_window_bits),
            (11, 9)
        );
        for bad in [
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=13",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12, permessage-deflate",
            "x-other",
        ] {
            assert!(offer.check_response(&[bad]).is_err(), "{bad}");
        }
        let plain = Offer {
            client_max_window_bits: Some(Some(10)),
            ..Offer::default()
        };
        assert!(plain
            .check_response(&["permessage-deflate; client_max_window_bits=11"])
            .is_err());
        let a = plain
            .check_response(&["permessage-deflate; client_max_window_bits=9"])
            .unwrap();
        assert_eq!(a.map(|a| a.client_max_window_bits), Some(9));
    }

    fn decoder(deflate: bool) -> super::super::frame::Decoder {
        let mut d = super::super::frame::Decoder::new(super::super::frame::Role::Client, 64 * 1024);
        if deflate {
            d.set_inflater(Some(Inflater {
                bits: 15,
                history: None,
            }));
        }
        d
    }

    #[test]
    fn decoder_takes_rsv1_only_on_first_data_frame_with_deflate() {
        use super::super::frame::Message;
        let frame = Deflater::stateless(15).frame(OpCode::Text, b"Hello", None);
        assert_eq!(
            &frame[..],
            &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(
            decoder(false).decode(&mut buf).unwrap_err(),
            ProtocolError::ReservedBits
        );
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(
            decoder(true).decode(&mut buf).unwrap(),
            Some(Message::Text(Bytes::from_static(b"Hello")))
        );
        // Fragmented (§7.2.3.5 style): RSV1 on the first frame only.
        let mut buf = BytesMut::from(
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ][..],
        );
        assert_eq!(
            decoder(true).decode(&mut buf).unwrap(),
            Some(Message::Text(Bytes::from_static(b"Hello")))
        );
        // RSV1 on a continuation, on a control frame, or RSV2/RSV3: protocol errors.
        for bad in [
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ][..],
            &[0xc9, 0x00][..],
            &[0xe1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[0xd1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
        ] {
            let mut buf = BytesMut::from(bad);
            assert_eq!(
                decoder(true).decode(&mut buf).unwrap_err().close_code(),
                1002
            );
        }
        // Uncompressed messages still pass on a deflate connection.
        let mut buf = BytesMut::from(&[0x81, 0x02, b'h', b'i'][..]);
        assert_eq!(
            decoder(true).decode(&mut buf).unwrap(),
            Some(Message::Text(Bytes::from_static(b"hi")))
        );
    }

    #[test]
    fn decoder_bounds_the_inflated_size() {
        let frame = Deflater::stateless(15).frame(OpCode::Binary, &vec![0u8; 1 << 20], None);
        assert!(frame.len() < 64 * 1024);
        let mut buf = BytesMut::from(&frame[..]);
        let err = decoder(true).decode(&mut buf).unwrap_err();
        assert!(matches!(err, ProtocolError::TooBig(_)), "{err:?}");
        assert_eq!(err.close_code(), 1009);
        // Inflated text is still checked for UTF-8.
        let frame = Deflater::stateless(15).frame(OpCode::Text, &[0xff, 0xfe], None);
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(
            decoder(true).decode(&mut buf).unwrap_err().close_code(),
            1007
        );
    }
}

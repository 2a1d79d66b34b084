//! Engine.IO v4 packets: the transport layer under Socket.IO.
//!
//! Over WebSocket every text frame is one packet: a type digit followed by
//! its data (`4` + Socket.IO packet, `2` ping, `3` pong, `0` + open JSON); a
//! binary frame is a message packet carrying raw bytes. Over HTTP long
//! polling a body holds several packets separated by `\x1e`, binary ones as
//! `b` + base64. Spec: <https://socket.io/docs/v4/engine-io-protocol/>.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

/// The request path and query every Engine.IO v4 client uses.
pub const DEFAULT_PATH: &str = "/socket.io/";

/// Separates packets in a long-polling payload (ASCII record separator).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// One Engine.IO packet. Text data is kept as raw bytes (valid UTF-8 when it
/// came from a text frame) so the Socket.IO layer can parse without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket {
    Open(Bytes),
    Close,
    Ping(Bytes),
    Pong(Bytes),
    /// A text message (a Socket.IO packet).
    Message(Bytes),
    /// A binary message (a Socket.IO attachment).
    Binary(Bytes),
    Upgrade,
    Noop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("empty Engine.IO packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownType(char),
    #[error("bad base64 in a binary polling packet")]
    BadBase64,
    #[error("malformed open packet: {0}")]
    BadOpen(String),
}

impl EnginePacket {
    /// Decodes one text packet (a WebSocket text frame or one polling record).
    pub fn decode_text(data: Bytes) -> Result<Self, EngineError> {
        let Some(&kind) = data.first() else {
            return Err(EngineError::Empty);
        };
        let rest = data.slice(1..);
        Ok(match kind {
            b'0' => Self::Open(rest),
            b'1' => Self::Close,
            b'2' => Self::Ping(rest),
            b'3' => Self::Pong(rest),
            b'4' => Self::Message(rest),
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            b'b' => Self::Binary(Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(&rest)
                    .map_err(|_| EngineError::BadBase64)?,
            )),
            other => return Err(EngineError::UnknownType(other as char)),
        })
    }

    /// Encodes a packet as WebSocket text (`None` for binary messages, which
    /// travel as raw binary frames over WebSocket).
    pub fn encode_text(&self) -> Option<Vec<u8>> {
        let (kind, data): (u8, &[u8]) = match self {
            Self::Open(d) => (b'0', d),
            Self::Close => (b'1', b""),
            Self::Ping(d) => (b'2', d),
            Self::Pong(d) => (b'3', d),
            Self::Message(d) => (b'4', d),
            Self::Upgrade => (b'5', b""),
            Self::Noop => (b'6', b""),
            Self::Binary(_) => return None,
        };
        let mut out = Vec::with_capacity(1 + data.len());
        out.push(kind);
        out.extend_from_slice(data);
        Some(out)
    }

    /// Encodes a packet as one long-polling record (binary as `b` + base64).
    pub fn encode_polling(&self, out: &mut Vec<u8>) {
        match self {
            Self::Binary(d) => {
                out.push(b'b');
                out.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(d)
                        .as_bytes(),
                );
            }
            other => out.extend_from_slice(&other.encode_text().unwrap_or_default()),
        }
    }
}

/// Splits a long-polling response body into packets.
pub fn decode_polling_payload(body: Bytes) -> Result<Vec<EnginePacket>, EngineError> {
    let mut packets = Vec::new();
    let mut start = 0;
    for i in 0..=body.len() {
        if i == body.len() || body[i] == RECORD_SEPARATOR {
            if i > start {
                packets.push(EnginePacket::decode_text(body.slice(start..i))?);
            }
            start = i + 1;
        }
    }
    Ok(packets)
}

/// Joins packets into one long-polling request body.
pub fn encode_polling_payload<'p>(packets: impl IntoIterator<Item = &'p EnginePacket>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEPARATOR);
        }
        p.encode_polling(&mut out);
    }
    out
}

/// The server's open packet: session id and heartbeat contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub sid: String,
    pub upgrades: Vec<String>,
    /// The server sends a ping this often...
    pub ping_interval: Duration,
    /// ...and drops us if our pong is not back within this much more.
    pub ping_timeout: Duration,
    /// Largest payload the server accepts per message or polling request.
    pub max_payload: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHandshake {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: Option<u64>,
}

impl Handshake {
    pub fn parse(json: &[u8]) -> Result<Self, EngineError> {
        let raw: RawHandshake =
            serde_json::from_slice(json).map_err(|e| EngineError::BadOpen(e.to_string()))?;
        Ok(Self {
            sid: raw.sid,
            upgrades: raw.upgrades,
            ping_interval: Duration::from_millis(raw.ping_interval),
            ping_timeout: Duration::from_millis(raw.ping_timeout),
            max_payload: raw.max_payload,
        })
    }
}

/// Builds the Engine.IO request target: `path` (default `/socket.io/`) plus
/// `EIO=4&transport=...`, any user query, and the session id once known.
pub fn request_target(path: &str, user_query: &str, transport: &str, sid: Option<&str>) -> String {
    // Like the JavaScript client (`addTrailingSlash`), so `/socket.io`
    // reaches a server listening on `/socket.io/`.
    let path = if path.is_empty() || path == "/" {
        DEFAULT_PATH.to_owned()
    } else if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    };
    let mut t = format!("{path}?EIO=4&transport={transport}");
    if let Some(sid) = sid {
        t.push_str("&sid=");
        t.push_str(sid);
    }
    if !user_query.is_empty() {
        t.push('&');
        t.push_str(user_query);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_packet_parses() {
        let p = EnginePacket::decode_text(Bytes::from_static(
            br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        ))
        .unwrap();
        let EnginePacket::Open(json) = p else {
            panic!("not open: {p:?}")
        };
        let h = Handshake::parse(&json).unwrap();
        assert_eq!(h.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(h.ping_interval, Duration::from_millis(25000));
        assert_eq!(h.ping_timeout, Duration::from_millis(20000));
        assert_eq!(h.upgrades, ["websocket"]);
        assert_eq!(h.max_payload, Some(1_000_000));
    }

    #[test]
    fn text_packets_roundtrip() {
        for p in [
            EnginePacket::Ping(Bytes::new()),
            EnginePacket::Pong(Bytes::from_static(b"probe")),
            EnginePacket::Message(Bytes::from_static(b"2[\"hi\"]")),
            EnginePacket::Close,
            EnginePacket::Upgrade,
            EnginePacket::Noop,
        ] {
            let enc = p.encode_text().unwrap();
            assert_eq!(EnginePacket::decode_text(Bytes::from(enc)).unwrap(), p);
        }
        assert_eq!(
            EnginePacket::decode_text(Bytes::from_static(b"9")),
            Err(EngineError::UnknownType('9'))
        );
        assert_eq!(
            EnginePacket::decode_text(Bytes::new()),
            Err(EngineError::Empty)
        );
    }

    #[test]
    fn polling_payload_splits_and_decodes_binary() {
        let body = Bytes::from_static(b"4hello\x1e2\x1ebAQID");
        let packets = decode_polling_payload(body).unwrap();
        assert_eq!(
            packets,
            [
                EnginePacket::Message(Bytes::from_static(b"hello")),
                EnginePacket::Ping(Bytes::new()),
                EnginePacket::Binary(Bytes::from_static(&[1, 2, 3])),
            ]
        );
        assert_eq!(encode_polling_payload(&packets), b"4hello\x1e2\x1ebAQID");
    }

    #[test]
    fn request_target_defaults_path() {
        assert_eq!(
            request_target("", "", "websocket", None),
            "/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            request_target("/custom/", "token=a", "polling", Some("s1")),
            "/custom/?EIO=4&transport=polling&sid=s1&token=a"
        );
        assert_eq!(
            request_target("/socket.io", "", "websocket", None),
            "/socket.io/?EIO=4&transport=websocket"
        );
    }
}

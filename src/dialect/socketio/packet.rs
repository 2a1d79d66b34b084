//! Socket.IO v5 packets, carried inside Engine.IO message packets.
//!
//! Text form: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, e.g.
//! `2/chat,12["chat",{"room":"r"}]`. BINARY_EVENT / BINARY_ACK put
//! `{"_placeholder":true,"num":i}` where each binary value was, and the
//! attachments follow as separate binary Engine.IO messages, in order.
//! Spec: <https://socket.io/docs/v4/socket-io-protocol/>.

use bytes::Bytes;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    fn from_digit(d: u8) -> Option<Self> {
        Some(match d {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// Most binary attachments one packet may announce (Socket.IO itself has no
/// limit; a peer-chosen count must not size an allocation).
pub const MAX_ATTACHMENTS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty Socket.IO packet")]
    Empty,
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownType(char),
    #[error("bad attachment count")]
    BadAttachments,
    #[error("bad JSON payload: {0}")]
    BadJson(String),
    #[error("payload is not UTF-8")]
    NotUtf8,
    #[error("binary frame without a pending binary packet")]
    UnexpectedAttachment,
    #[error("event payload must be a non-empty array starting with a name")]
    BadEvent,
}

/// One Socket.IO packet. For binary packets `attachments` holds the binary
/// parts once reassembled; `data` still has the placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    pub nsp: String,
    pub id: Option<u64>,
    pub data: Option<Value>,
    pub attachments: Vec<Bytes>,
}

impl Packet {
    pub fn new(kind: PacketType, nsp: &str) -> Self {
        Self {
            kind,
            nsp: nsp.to_owned(),
            id: None,
            data: None,
            attachments: Vec::new(),
        }
    }

    /// `CONNECT` to a namespace, with an optional `auth` object.
    pub fn connect(nsp: &str, auth: Option<Value>) -> Self {
        Self {
            data: auth,
            ..Self::new(PacketType::Connect, nsp)
        }
    }

    /// An event `[name, ...args]`. Pass attachments to make it a
    /// BINARY_EVENT; `args` must then contain matching [`placeholder`]s.
    pub fn event(
        nsp: &str,
        name: &str,
        args: Vec<Value>,
        id: Option<u64>,
        attachments: Vec<Bytes>,
    ) -> Self {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(name.to_owned()));
        data.extend(args);
        let kind = if attachments.is_empty() {
            PacketType::Event
        } else {
            PacketType::BinaryEvent
        };
        Self {
            kind,
            nsp: nsp.to_owned(),
            id,
            data: Some(Value::Array(data)),
            attachments,
        }
    }

    /// Encodes the text part; the attachments (if any) must be sent right
    /// after it, each as a binary Engine.IO message.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push((b'0' + self.kind as u8) as char);
        if self.kind.is_binary() {
            out.push_str(&self.attachments.len().to_string());
            out.push('-');
        }
        if self.nsp != "/" && !self.nsp.is_empty() {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    /// Decodes a text packet. For binary packets returns the number of
    /// attachments still to come (see [`Reassembler`]).
    pub fn decode(text: &[u8]) -> Result<(Self, usize), PacketError> {
        let text = std::str::from_utf8(text).map_err(|_| PacketError::NotUtf8)?;
        let bytes = text.as_bytes();
        let first = *bytes.first().ok_or(PacketError::Empty)?;
        let kind = PacketType::from_digit(first).ok_or(PacketError::UnknownType(first as char))?;
        let mut i = 1;
        let mut attachments = 0usize;
        if kind.is_binary() {
            let dash = text[i..].find('-').ok_or(PacketError::BadAttachments)? + i;
            attachments = text[i..dash]
                .parse()
                .ok()
                // The count comes from the peer: bounded, never an allocation size.
                .filter(|&n| n <= MAX_ATTACHMENTS)
                .ok_or(PacketError::BadAttachments)?;
            i = dash + 1;
        }
        let mut nsp = "/";
        if bytes.get(i) == Some(&b'/') {
            let end = text[i..].find(',').map_or(text.len(), |c| c + i);
            nsp = &text[i..end];
            i = (end + 1).min(text.len());
        }
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let id = if digits > 0 {
            text[i..i + digits].parse().ok()
        } else {
            None
        };
        i += digits;
        let data = if i < text.len() {
            Some(
                serde_json::from_str(&text[i..])
                    .map_err(|e| PacketError::BadJson(e.to_string()))?,
            )
        } else {
            None
        };
        Ok((
            Self {
                kind,
                nsp: nsp.to_owned(),
                id,
                data,
                attachments: Vec::with_capacity(attachments.min(8)),
            },
            attachments,
        ))
    }

    /// For EVENT / BINARY_EVENT: the event name and its arguments.
    pub fn event_parts(&self) -> Result<(&str, &[Value]), PacketError> {
        match &self.data {
            Some(Value::Array(items)) => match items.split_first() {
                Some((Value::String(name), args)) => Ok((name, args)),
                _ => Err(PacketError::BadEvent),
            },
            _ => Err(PacketError::BadEvent),
        }
    }

    /// For ACK / BINARY_ACK: the acknowledgement arguments.
    pub fn ack_args(&self) -> &[Value] {
        match &self.data {
            Some(Value::Array(items)) => items,
            _ => &[],
        }
    }

    /// The attachment a `{"_placeholder":true,"num":i}` value stands for.
    pub fn attachment(&self, value: &Value) -> Option<&Bytes> {
        let obj = value.as_object()?;
        if obj.get("_placeholder") != Some(&Value::Bool(true)) {
            return None;
        }
        let num = usize::try_from(obj.get("num")?.as_u64()?).ok()?;
        self.attachments.get(num)
    }
}

/// The JSON that stands in for attachment `num` of a binary packet.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({"_placeholder": true, "num": num})
}

/// Collects the binary frames that follow a BINARY_EVENT / BINARY_ACK header.
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: Option<(Packet, usize)>,
}

impl Reassembler {
    /// Feeds a text packet: returns it at once unless attachments must follow.
    pub fn text(&mut self, text: &[u8]) -> Result<Option<Packet>, PacketError> {
        let (packet, expected) = Packet::decode(text)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.pending = Some((packet, expected));
        Ok(None)
    }

    /// Feeds one binary frame; returns the packet once its last attachment arrived.
    pub fn binary(&mut self, data: Bytes) -> Result<Option<Packet>, PacketError> {
        let Some((packet, expected)) = self.pending.as_mut() else {
            return Err(PacketError::UnexpectedAttachment);
        };
        packet.attachments.push(data);
        if packet.attachments.len() < *expected {
            return Ok(None);
        }
        Ok(self.pending.take().map(|(p, _)| p))
    }

    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `socketio_packet` fuzz target: a binary packet that
    /// announced ~6e18 attachments made `decode` allocate for all of them.
    #[test]
    fn huge_attachment_count_is_an_error_not_an_allocation() {
        let text = b"62226026222602620-/a,9[{\"_placeholder\":true,\"num\":0}]";
        assert_eq!(
            Packet::decode(text).unwrap_err(),
            PacketError::BadAttachments
        );
        let text = format!("5{}-[\"x\"]", MAX_ATTACHMENTS + 1);
        assert_eq!(
            Packet::decode(text.as_bytes()).unwrap_err(),
            PacketError::BadAttachments
        );
        let text = format!("5{MAX_ATTACHMENTS}-[\"x\"]");
        assert_eq!(Packet::decode(text.as_bytes()).unwrap().1, MAX_ATTACHMENTS);
    }

    #[test]
    fn encodes_per_spec_examples() {
        assert_eq!(Packet::connect("/", None).encode(), "0");
        assert_eq!(
            Packet::connect("/admin", Some(json!({"token":"123"}))).encode(),
            r#"0/admin,{"token":"123"}"#
        );
        assert_eq!(
            Packet::event("/", "foo", vec![], Some(12), vec![]).encode(),
            r#"212["foo"]"#
        );
        let bin = Packet::event(
            "/",
            "hello",
            vec![placeholder(0)],
            None,
            vec![Bytes::from_static(&[1, 2, 3])],
        );
        assert_eq!(
            bin.encode(),
            r#"51-["hello",{"_placeholder":true,"num":0}]"#
        );
    }

    #[test]
    fn decodes_namespace_id_and_data() {
        let (p, n) = Packet::decode(br#"3/admin,13["bar"]"#).unwrap();
        assert_eq!(n, 0);
        assert_eq!(p.kind, PacketType::Ack);
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.id, Some(13));
        assert_eq!(p.ack_args(), &[json!("bar")]);

        let (p, _) = Packet::decode(br#"0{"sid":"abc"}"#).unwrap();
        assert_eq!((p.kind, p.nsp.as_str()), (PacketType::Connect, "/"));
        assert_eq!(p.data, Some(json!({"sid":"abc"})));

        let (p, _) = Packet::decode(br#"4/chat,{"message":"bad","data":{"code":"X"}}"#).unwrap();
        assert_eq!(p.kind, PacketType::ConnectError);
        assert_eq!(p.nsp, "/chat");

        let (p, _) = Packet::decode(b"1/chat,").unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.data),
            (PacketType::Disconnect, "/chat", None)
        );

        assert!(matches!(
            Packet::decode(b"9"),
            Err(PacketError::UnknownType('9'))
        ));
        assert!(matches!(
            Packet::decode(b"2[nope"),
            Err(PacketError::BadJson(_))
        ));
    }

    #[test]
    fn reassembles_binary_ack() {
        let mut r = Reassembler::default();
        assert!(r
            .text(br#"62-/chat,7[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#)
            .unwrap()
            .is_none());
        assert!(r.is_waiting());
        assert!(r.binary(Bytes::from_static(b"zero")).unwrap().is_none());
        let p = r.binary(Bytes::from_static(b"one")).unwrap().unwrap();
        assert_eq!((p.kind, p.id), (PacketType::BinaryAck, Some(7)));
        let args = p.ack_args();
        assert_eq!(p.attachment(&args[0]).unwrap().as_ref(), b"one");
        assert_eq!(p.attachment(&args[1]).unwrap().as_ref(), b"zero");
        assert!(!r.is_waiting());
        assert_eq!(
            r.binary(Bytes::new()),
            Err(PacketError::UnexpectedAttachment)
        );
    }

    #[test]
    fn event_parts_need_a_name() {
        let (p, _) = Packet::decode(br#"2["chat",{"a":1}]"#).unwrap();
        let (name, args) = p.event_parts().unwrap();
        assert_eq!((name, args.len()), ("chat", 1));
        let (p, _) = Packet::decode(b"2[1]").unwrap();
        assert_eq!(p.event_parts(), Err(PacketError::BadEvent));
    }
}

//! Wire protocol v1: JSON text frames shared by the server and the load
//! generator, so the two cannot drift apart. `docs/protocol.md` is the
//! human-readable reference for everything here.
//!
//! Parsing goes through one flat, borrowing struct ([`RawFrame`]) rather than
//! a serde-tagged enum: tagged enums buffer every field and cannot borrow
//! `RawValue`s, and the generator parses up to millions of frames a second.
//! `ts` and `id` are kept as raw JSON so the server echoes them untouched.
//!
//! Client frames are encoded in one place ([`ClientMsg`], `encode`) and
//! server messages decoded, as a client reads them, in one place
//! ([`decode_server_message`], `decode`, with its one-pass fast path in
//! `fast`). The server parses client frames with [`ClientFrame::parse`];
//! [`ServerFrame::from_raw`] is the strict form of a server frame that the
//! conformance tests hold the server to.

mod decode;
mod encode;
mod fast;

pub use decode::{
    check_fast_path_against_full_parse, decode_server_message, parse_ts_us, MessageError, Received,
};
pub use encode::{push_json_str, ClientMsg, Scalar};

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const PROTOCOL_VERSION: u32 = 1;

/// Error codes carried by `{"type":"error"}` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ParseError,
    InvalidMessage,
    Unauthorized,
    Forbidden,
    NotInRoom,
    RateLimited,
    TooLarge,
    /// The chat could not be sequenced (the server's message bus is down);
    /// it got no seq, so no member misses it.
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        Self::ParseError,
        Self::InvalidMessage,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotInRoom,
        Self::RateLimited,
        Self::TooLarge,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ParseError => "PARSE_ERROR",
            Self::InvalidMessage => "INVALID_MESSAGE",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotInRoom => "NOT_IN_ROOM",
            Self::RateLimited => "RATE_LIMITED",
            Self::TooLarge => "TOO_LARGE",
            Self::Unavailable => "UNAVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Every field any v1 frame can carry, all optional and borrowed where possible.
#[derive(Debug, Default, Deserialize)]
pub struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub ts: Option<&'a RawValue>,
    pub after: Option<u64>,
    #[serde(borrow)]
    pub token: Option<Cow<'a, str>>,
    pub seq: Option<u64>,
    #[serde(borrow)]
    pub from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user: Option<Cow<'a, str>>,
    pub status: Option<PresenceStatus>,
    pub members: Option<u64>,
    pub conn: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    #[serde(borrow)]
    pub instance: Option<Cow<'a, str>>,
    pub replayed: Option<u64>,
    pub complete: Option<bool>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub messages: Option<Vec<&'a RawValue>>,
    /// `pong`: the server's clock (µs since the UNIX epoch), for clock-offset estimates.
    pub now_us: Option<u64>,
}

/// Why a frame could not be turned into a typed message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    /// The offending frame's `id`, when it had one, echoed in the error frame.
    pub id: Option<Box<RawValue>>,
}

impl FrameError {
    fn invalid(message: impl Into<String>, id: Option<&RawValue>) -> Self {
        Self {
            code: ErrorCode::InvalidMessage,
            message: message.into(),
            id: id.filter(|v| echoable_id(v)).map(|v| v.to_owned()),
        }
    }
}

fn is_json_number(v: &RawValue) -> bool {
    serde_json::from_str::<serde_json::Number>(v.get()).is_ok()
}

fn is_scalar_id(v: &RawValue) -> bool {
    matches!(v.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}

/// Longest chat `id`, in bytes of its JSON text (quotes included): it is
/// fanned out to every member and echoed in errors, so it must stay small.
pub const MAX_ID_LEN: usize = 128;

/// Whether an `id` may be echoed back: a string or number of at most
/// [`MAX_ID_LEN`] bytes. Anything else (objects, arrays, long strings) is
/// never reflected to the client.
pub fn echoable_id(v: &RawValue) -> bool {
    is_scalar_id(v) && v.get().len() <= MAX_ID_LEN
}

fn required<T>(v: Option<T>, field: &str, id: Option<&RawValue>) -> Result<T, FrameError> {
    v.ok_or_else(|| FrameError::invalid(format!("missing field `{field}`"), id))
}

/// Client → server frames, as the server parses them (encoded by [`ClientMsg`]).
#[derive(Debug, Clone)]
pub enum ClientFrame<'a> {
    Auth {
        token: Cow<'a, str>,
    },
    Join {
        room: Cow<'a, str>,
    },
    Leave {
        room: Cow<'a, str>,
    },
    Chat {
        room: Cow<'a, str>,
        id: &'a RawValue,
        text: Cow<'a, str>,
        ts: &'a RawValue,
    },
    Typing {
        room: Cow<'a, str>,
    },
    Resume {
        room: Cow<'a, str>,
        after: u64,
    },
    Ping {
        ts: &'a RawValue,
    },
}

impl<'a> ClientFrame<'a> {
    /// Parses and validates one client text frame.
    pub fn parse(text: &'a [u8]) -> Result<Self, FrameError> {
        let raw: RawFrame<'a> = serde_json::from_slice(text).map_err(|e| FrameError {
            code: ErrorCode::ParseError,
            message: e.to_string(),
            id: None,
        })?;
        Self::from_raw(raw)
    }

    pub fn from_raw(raw: RawFrame<'a>) -> Result<Self, FrameError> {
        let id = raw.id;
        let kind = required(raw.kind, "type", id)?;
        let room = || required(raw.room.clone(), "room", id);
        Ok(match kind.as_ref() {
            "auth" => ClientFrame::Auth {
                token: required(raw.token, "token", id)?,
            },
            "join" => ClientFrame::Join { room: room()? },
            "leave" => ClientFrame::Leave { room: room()? },
            "typing" => ClientFrame::Typing { room: room()? },
            "resume" => ClientFrame::Resume {
                room: room()?,
                after: required(raw.after, "after", id)?,
            },
            "chat" => {
                let msg_id = required(id, "id", id)?;
                if !is_scalar_id(msg_id) {
                    return Err(FrameError::invalid("`id` must be a string or a number", id));
                }
                if msg_id.get().len() > MAX_ID_LEN {
                    let msg = format!("`id` is longer than {MAX_ID_LEN} bytes");
                    return Err(FrameError::invalid(msg, id));
                }
                let ts = required(raw.ts, "ts", id)?;
                if !is_json_number(ts) {
                    return Err(FrameError::invalid("`ts` must be a number", id));
                }
                ClientFrame::Chat {
                    room: room()?,
                    id: msg_id,
                    text: required(raw.text, "text", id)?,
                    ts,
                }
            }
            "ping" => {
                let ts = required(raw.ts, "ts", id)?;
                if !is_json_number(ts) {
                    return Err(FrameError::invalid("`ts` must be a number", id));
                }
                ClientFrame::Ping { ts }
            }
            other => return Err(FrameError::invalid(format!("unknown type `{other}`"), id)),
        })
    }

    /// The frame as compact JSON, through the one client encoder.
    pub fn to_json(&self) -> String {
        self.as_msg().to_json()
    }

    fn as_msg(&self) -> ClientMsg<'_> {
        match self {
            ClientFrame::Auth { token } => ClientMsg::Auth { token },
            ClientFrame::Join { room } => ClientMsg::Join { room },
            ClientFrame::Leave { room } => ClientMsg::Leave { room },
            ClientFrame::Chat { room, id, text, ts } => ClientMsg::Chat {
                room,
                id: Scalar::Raw(id.get()),
                text,
                ts: Scalar::Raw(ts.get()),
            },
            ClientFrame::Typing { room } => ClientMsg::Typing { room },
            ClientFrame::Resume { room, after } => ClientMsg::Resume {
                room,
                after: *after,
            },
            ClientFrame::Ping { ts } => ClientMsg::Ping {
                ts: Scalar::Raw(ts.get()),
            },
        }
    }
}

/// Server → client frames (everything except `batch`, see [`batch_payload`]),
/// as the server writes them.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        user: Cow<'a, str>,
        conn: u64,
        heartbeat_ms: u64,
        /// This server process's id, new at every start: a client that sees
        /// it change knows the server restarted (its rooms' seqs start over).
        /// Optional on decode: servers that predate it omit it.
        #[serde(skip_serializing_if = "Option::is_none")]
        instance: Option<Cow<'a, str>>,
    },
    Joined {
        room: Cow<'a, str>,
        seq: u64,
        members: u64,
    },
    Left {
        room: Cow<'a, str>,
    },
    Presence {
        room: Cow<'a, str>,
        user: Cow<'a, str>,
        status: PresenceStatus,
    },
    Ack {
        id: &'a RawValue,
        seq: u64,
    },
    Chat {
        room: Cow<'a, str>,
        seq: u64,
        from: Cow<'a, str>,
        id: &'a RawValue,
        text: Cow<'a, str>,
        ts: &'a RawValue,
    },
    Typing {
        room: Cow<'a, str>,
        user: Cow<'a, str>,
    },
    Resumed {
        room: Cow<'a, str>,
        replayed: u64,
        complete: bool,
    },
    Pong {
        ts: &'a RawValue,
        /// The server's clock when it answered (µs since the UNIX epoch);
        /// optional, so a client must accept a pong without it.
        #[serde(skip_serializing_if = "Option::is_none")]
        now_us: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
    },
}

impl<'a> ServerFrame<'a> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks one non-batch server frame strictly: every field the spec
    /// requires, a known error code (the conformance tests' check; clients
    /// read frames leniently with [`decode_server_message`]).
    pub fn from_raw(raw: RawFrame<'a>) -> Result<Self, FrameError> {
        let id = raw.id;
        let kind = required(raw.kind, "type", id)?;
        let room = || required(raw.room.clone(), "room", id);
        let user = || required(raw.user.clone(), "user", id);
        Ok(match kind.as_ref() {
            "welcome" => ServerFrame::Welcome {
                user: user()?,
                conn: required(raw.conn, "conn", id)?,
                heartbeat_ms: required(raw.heartbeat_ms, "heartbeat_ms", id)?,
                instance: raw.instance.clone(),
            },
            "joined" => ServerFrame::Joined {
                room: room()?,
                seq: required(raw.seq, "seq", id)?,
                members: required(raw.members, "members", id)?,
            },
            "left" => ServerFrame::Left { room: room()? },
            "presence" => ServerFrame::Presence {
                room: room()?,
                user: user()?,
                status: required(raw.status, "status", id)?,
            },
            "ack" => ServerFrame::Ack {
                id: required(id, "id", id)?,
                seq: required(raw.seq, "seq", id)?,
            },
            "chat" => ServerFrame::Chat {
                room: room()?,
                seq: required(raw.seq, "seq", id)?,
                from: required(raw.from, "from", id)?,
                id: required(id, "id", id)?,
                text: required(raw.text, "text", id)?,
                ts: required(raw.ts, "ts", id)?,
            },
            "typing" => ServerFrame::Typing {
                room: room()?,
                user: user()?,
            },
            "resumed" => ServerFrame::Resumed {
                room: room()?,
                replayed: required(raw.replayed, "replayed", id)?,
                complete: required(raw.complete, "complete", id)?,
            },
            "pong" => ServerFrame::Pong {
                ts: required(raw.ts, "ts", id)?,
                now_us: raw.now_us,
            },
            "error" => {
                let code = required(raw.code, "code", id)?;
                ServerFrame::Error {
                    code: ErrorCode::parse(&code).ok_or_else(|| {
                        FrameError::invalid(format!("unknown error code `{code}`"), id)
                    })?,
                    message: raw.message.unwrap_or_default(),
                    id,
                }
            }
            other => return Err(FrameError::invalid(format!("unknown type `{other}`"), id)),
        })
    }
}

/// Builds `{"type":"batch","messages":[m1,m2,...]}` from already-encoded frames,
/// without re-parsing them.
pub fn batch_payload<'m>(messages: impl IntoIterator<Item = &'m [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"type":"batch","messages":["#);
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Calls `f` for every frame in a server text message, unwrapping `batch`.
pub fn for_each_server_frame<'a>(
    text: &'a [u8],
    mut f: impl FnMut(RawFrame<'a>),
) -> Result<(), serde_json::Error> {
    let raw: RawFrame<'a> = serde_json::from_slice(text)?;
    if raw.kind.as_deref() == Some("batch") {
        for m in raw.messages.unwrap_or_default() {
            f(serde_json::from_str(m.get())?);
        }
    } else {
        f(raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn chat_roundtrips_with_ts_untouched() {
        let json = br#"{"type":"chat","room":"r1","id":7,"text":"hi","ts":1.50e3}"#;
        let f = ClientFrame::parse(json).unwrap();
        let ClientFrame::Chat { room, id, text, ts } = &f else {
            panic!("not chat: {f:?}")
        };
        assert_eq!((room.as_ref(), text.as_ref()), ("r1", "hi"));
        assert_eq!((id.get(), ts.get()), ("7", "1.50e3"));
        let out = ServerFrame::Chat {
            room: room.clone(),
            seq: 3,
            from: "u".into(),
            id,
            text: text.clone(),
            ts,
        }
        .to_json();
        assert_eq!(
            out,
            r#"{"type":"chat","room":"r1","seq":3,"from":"u","id":7,"text":"hi","ts":1.50e3}"#
        );
    }

    #[test]
    fn invalid_frames_get_codes_and_keep_id() {
        assert_eq!(
            ClientFrame::parse(b"{nope").unwrap_err().code,
            ErrorCode::ParseError
        );
        let e = ClientFrame::parse(br#"{"type":"chat","room":"r","id":"a1","text":"x","ts":"no"}"#)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert_eq!(e.id.unwrap().get(), r#""a1""#);
        let e = ClientFrame::parse(br#"{"type":"dance"}"#).unwrap_err();
        assert!(e.message.contains("dance"));
    }

    /// `welcome.instance` is sent when set and optional on decode.
    #[test]
    fn welcome_instance_is_optional() {
        let w = ServerFrame::Welcome {
            user: "u".into(),
            conn: 1,
            heartbeat_ms: 5,
            instance: Some("a1-b2".into()),
        };
        let json = w.to_json();
        assert!(json.contains(r#""instance":"a1-b2""#), "{json}");
        let raw: RawFrame = serde_json::from_str(&json).unwrap();
        match ServerFrame::from_raw(raw).unwrap() {
            ServerFrame::Welcome { instance, .. } => assert_eq!(instance.as_deref(), Some("a1-b2")),
            other => panic!("{other:?}"),
        }
        let old = r#"{"type":"welcome","user":"u","conn":1,"heartbeat_ms":5}"#;
        let raw: RawFrame = serde_json::from_str(old).unwrap();
        match ServerFrame::from_raw(raw).unwrap() {
            ServerFrame::Welcome { instance, .. } => assert_eq!(instance, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_unwraps_in_order() {
        let a = ServerFrame::Pong {
            ts: raw("1"),
            now_us: None,
        }
        .to_json();
        let b = ServerFrame::Left { room: "r".into() }.to_json();
        let batch = batch_payload([a.as_bytes(), b.as_bytes()]);
        let mut kinds = Vec::new();
        for_each_server_frame(&batch, |f| kinds.push(f.kind.unwrap().into_owned())).unwrap();
        assert_eq!(kinds, ["pong", "left"]);
    }

    #[test]
    fn error_frame_omits_absent_id() {
        let e = ServerFrame::Error {
            code: ErrorCode::NotInRoom,
            message: "join first".into(),
            id: None,
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"NOT_IN_ROOM","message":"join first"}"#
        );
    }
}

//! The one encoder of client frames: compact JSON written by hand in one
//! pass (no serde, one allocation sized up front), used by the load
//! generator's hot path and by [`super::ClientFrame::to_json`].

use std::fmt::Write as _;

/// A scalar JSON value to write: the generator holds ids as text and
/// timestamps as integers, the server's parsed frames hold raw JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// Written as a JSON string literal.
    Str(&'a str),
    Uint(u64),
    /// Already valid JSON, written as is.
    Raw(&'a str),
}

impl Scalar<'_> {
    fn len_hint(&self) -> usize {
        match self {
            Scalar::Str(s) | Scalar::Raw(s) => s.len() + 2,
            Scalar::Uint(_) => 20,
        }
    }

    fn write(&self, out: &mut String) {
        match *self {
            Scalar::Str(s) => push_json_str(out, s),
            Scalar::Uint(v) => {
                let _ = write!(out, "{v}");
            }
            Scalar::Raw(s) => out.push_str(s),
        }
    }
}

/// A client → server frame to encode (see `docs/protocol.md`).
#[derive(Debug, Clone, Copy)]
pub enum ClientMsg<'a> {
    Auth {
        token: &'a str,
    },
    Join {
        room: &'a str,
    },
    Leave {
        room: &'a str,
    },
    Chat {
        room: &'a str,
        id: Scalar<'a>,
        text: &'a str,
        ts: Scalar<'a>,
    },
    Typing {
        room: &'a str,
    },
    Resume {
        room: &'a str,
        after: u64,
    },
    Ping {
        ts: Scalar<'a>,
    },
}

/// Appends `s` as a JSON string literal (`"`, `\` and control characters escaped).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn with_room(kind: &str, room: &str, extra: usize) -> String {
    let mut s = String::with_capacity(32 + room.len() + extra);
    s.push_str(r#"{"type":""#);
    s.push_str(kind);
    s.push_str(r#"","room":"#);
    push_json_str(&mut s, room);
    s
}

impl ClientMsg<'_> {
    /// The frame as compact JSON, fields in the order of `docs/protocol.md`.
    pub fn to_json(&self) -> String {
        let mut s = match *self {
            ClientMsg::Auth { token } => {
                let mut s = String::with_capacity(24 + token.len());
                s.push_str(r#"{"type":"auth","token":"#);
                push_json_str(&mut s, token);
                s
            }
            ClientMsg::Join { room } => with_room("join", room, 0),
            ClientMsg::Leave { room } => with_room("leave", room, 0),
            ClientMsg::Typing { room } => with_room("typing", room, 0),
            ClientMsg::Resume { room, after } => {
                let mut s = with_room("resume", room, 32);
                let _ = write!(s, r#","after":{after}"#);
                s
            }
            ClientMsg::Chat { room, id, text, ts } => {
                let mut s = String::with_capacity(
                    64 + room.len() + id.len_hint() + text.len() + ts.len_hint(),
                );
                s.push_str(r#"{"type":"chat","room":"#);
                push_json_str(&mut s, room);
                s.push_str(r#","id":"#);
                id.write(&mut s);
                s.push_str(r#","text":"#);
                push_json_str(&mut s, text);
                s.push_str(r#","ts":"#);
                ts.write(&mut s);
                s
            }
            ClientMsg::Ping { ts } => {
                let mut s = String::with_capacity(24 + ts.len_hint());
                s.push_str(r#"{"type":"ping","ts":"#);
                ts.write(&mut s);
                s
            }
        };
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientFrame;

    #[test]
    fn every_frame_parses_back_as_what_was_written() {
        let msgs = [
            ClientMsg::Auth { token: "a.b\"c" },
            ClientMsg::Join { room: "r1" },
            ClientMsg::Chat {
                room: "r\n1",
                id: Scalar::Str("3.7.120"),
                text: "hé \"x\" \\ \u{1}",
                ts: Scalar::Uint(1_700_000_000_000_000),
            },
            ClientMsg::Chat {
                room: "r",
                id: Scalar::Raw("7"),
                text: "",
                ts: Scalar::Raw("1.5e3"),
            },
            ClientMsg::Typing { room: "r1" },
            ClientMsg::Resume {
                room: "r1",
                after: u64::MAX,
            },
            ClientMsg::Ping {
                ts: Scalar::Uint(5),
            },
            ClientMsg::Leave { room: "" },
        ];
        for m in msgs {
            let json = m.to_json();
            let parsed =
                ClientFrame::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
            // Re-encoding the parsed frame gives the same bytes.
            assert_eq!(parsed.to_json(), json);
            // And serde reads the same values.
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            if let ClientMsg::Chat { text, room, .. } = m {
                assert_eq!(
                    (v["text"].as_str(), v["room"].as_str()),
                    (Some(text), Some(room))
                );
            }
        }
        assert_eq!(
            ClientMsg::Chat {
                room: "r1",
                id: Scalar::Str("3.7.120"),
                text: "hé \"x\"",
                ts: Scalar::Uint(1_700_000_000_000_000),
            }
            .to_json(),
            r#"{"type":"chat","room":"r1","id":"3.7.120","text":"hé \"x\"","ts":1700000000000000}"#
        );
    }
}

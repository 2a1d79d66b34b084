//! Reference protocol v1 (`protocol = "chat"`): JSON text frames from
//! `wire::protocol`, with `batch` frames unwrapped in order.
//! Stateless per connection: v1 echoes chat ids, so no ack map is needed.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::value::RawValue;
use wire::protocol::{for_each_server_frame, PresenceStatus, RawFrame};

use super::{parse_ts_us, Action, DecodeError, Dialect, Event, Incoming, Outbox, Session};

/// Protocol v1 as spoken by the bundled reference server.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatV1;

impl Dialect for ChatV1 {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn upgrade_target(&self, url_path: &str) -> String {
        if url_path.is_empty() {
            "/ws".to_owned()
        } else {
            url_path.to_owned()
        }
    }

    fn session(&self) -> Box<dyn Session> {
        // A zero-sized session: boxing it allocates nothing.
        Box::new(ChatSession)
    }
}

#[derive(Debug, Default)]
struct ChatSession;

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
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

fn frame_with_room(kind: &str, room: &str) -> String {
    let mut s = String::with_capacity(32 + room.len());
    s.push_str(r#"{"type":""#);
    s.push_str(kind);
    s.push_str(r#"","room":"#);
    push_json_str(&mut s, room);
    s
}

/// An id as the engine wrote it: JSON strings lose their quotes, numbers stay as written.
fn id_text(raw: &RawValue) -> Cow<'_, str> {
    let s = raw.get();
    match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        Some(_) => Cow::Owned(serde_json::from_str::<String>(s).unwrap_or_default()),
        None => Cow::Borrowed(s),
    }
}

impl Session for ChatSession {
    fn on_open(&mut self, _out: &mut Outbox) {}

    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox) {
        let json = match *action {
            Action::Auth { token } => {
                let mut s = String::from(r#"{"type":"auth","token":"#);
                push_json_str(&mut s, token);
                s
            }
            Action::Join { room } => frame_with_room("join", room),
            Action::Leave { room } => frame_with_room("leave", room),
            Action::Typing { room } => frame_with_room("typing", room),
            Action::Resume { room, after } => {
                let mut s = frame_with_room("resume", room);
                let _ = write!(s, r#","after":{after}"#);
                s
            }
            Action::Chat {
                room,
                id,
                text,
                ts_us,
            } => {
                let mut s = String::with_capacity(64 + room.len() + id.len() + text.len());
                s.push_str(r#"{"type":"chat","room":"#);
                push_json_str(&mut s, room);
                s.push_str(r#","id":"#);
                push_json_str(&mut s, id);
                s.push_str(r#","text":"#);
                push_json_str(&mut s, text);
                let _ = write!(s, r#","ts":{ts_us}"#);
                s
            }
            Action::Ping { ts_us } => {
                let mut s = String::from(r#"{"type":"ping","ts":"#);
                let _ = write!(s, "{ts_us}");
                s
            }
        };
        let mut json = json;
        json.push('}');
        out.text(json.as_bytes());
    }

    fn decode(
        &mut self,
        msg: Incoming<'_>,
        _out: &mut Outbox,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Incoming::Text(text) = msg else {
            return Err(DecodeError {
                dialect: "chat",
                why: "binary message in a text-only protocol".into(),
            });
        };
        let Some(mut skip) = super::chat_fast::decode(text, sink) else {
            return Ok(());
        };
        let mut bad: Option<String> = None;
        for_each_server_frame(text, |raw| {
            if skip > 0 {
                // Already emitted by the fast path.
                skip -= 1;
                return;
            }
            match to_event(raw) {
                Ok(ev) => sink(ev),
                Err(why) => bad = Some(why),
            }
        })
        .map_err(|e| DecodeError {
            dialect: "chat",
            why: e.to_string(),
        })?;
        match bad {
            Some(why) => Err(DecodeError {
                dialect: "chat",
                why,
            }),
            None => Ok(()),
        }
    }
}

/// For the fuzz target `chat_fast` (fuzz/, outside the workspace): panics
/// unless the fast path agrees with the full serde parse on `text`, i.e.
/// every frame it emits is the event the full parse yields for that frame,
/// and when it claims the whole message, the full parse accepts it too.
#[doc(hidden)]
pub fn check_fast_path_against_full_parse(text: &[u8]) {
    let mut fast = Vec::new();
    let claimed = super::chat_fast::decode(text, &mut |e| fast.push(format!("{e:?}")));
    let mut full = Vec::new();
    let parsed = for_each_server_frame(text, |raw| {
        full.push(to_event(raw).map(|e| format!("{e:?}")))
    });
    match claimed {
        None => {
            assert!(parsed.is_ok(), "fast path took a message serde rejects");
            let full: Vec<String> = full
                .into_iter()
                .map(|r| r.expect("fast path took a frame to_event rejects"))
                .collect();
            assert_eq!(fast, full);
        }
        Some(k) => {
            assert_eq!(
                fast.len(),
                k,
                "fast path emitted {} but reported {k}",
                fast.len()
            );
            if parsed.is_ok() {
                assert!(
                    full.len() >= k,
                    "fast path emitted frames serde does not see"
                );
                for (f, s) in fast.iter().zip(&full) {
                    assert_eq!(Some(f), s.as_ref().ok());
                }
            }
        }
    }
}

fn need<T>(v: Option<T>, field: &str, kind: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("`{kind}` frame without `{field}`"))
}

/// One v1 server frame → event. Kept permissive: extra fields are ignored.
fn to_event(raw: RawFrame<'_>) -> Result<Event<'_>, String> {
    let kind = need(raw.kind, "type", "?")?;
    let k = kind.as_ref();
    Ok(match k {
        "chat" => Event::Chat {
            room: need(raw.room, "room", k)?,
            seq: need(raw.seq, "seq", k)?,
            from: raw.from.unwrap_or_default(),
            id: need(raw.id, "id", k).map(id_text)?,
            ts_us: raw.ts.and_then(|t| parse_ts_us(t.get())),
        },
        "ack" => Event::Ack {
            id: need(raw.id, "id", k).map(id_text)?,
            seq: need(raw.seq, "seq", k)?,
        },
        "joined" => Event::Joined {
            room: need(raw.room, "room", k)?,
            seq: need(raw.seq, "seq", k)?,
            members: raw.members.unwrap_or(0),
        },
        "welcome" => Event::Welcome {
            user: raw.user.unwrap_or_default(),
            instance: raw.instance,
        },
        "left" => Event::Left {
            room: need(raw.room, "room", k)?,
        },
        "presence" => Event::Presence {
            room: need(raw.room, "room", k)?,
            user: raw.user.unwrap_or_default(),
            online: raw.status == Some(PresenceStatus::Online),
        },
        "typing" => Event::Typing {
            room: need(raw.room, "room", k)?,
            user: raw.user.unwrap_or_default(),
        },
        "resumed" => Event::Resumed {
            room: need(raw.room, "room", k)?,
            replayed: raw.replayed.unwrap_or(0),
            complete: raw.complete.unwrap_or(false),
        },
        "pong" => Event::Pong {
            ts_us: raw.ts.and_then(|t| parse_ts_us(t.get())),
        },
        "error" => Event::Error {
            code: raw.code.unwrap_or(Cow::Borrowed("UNKNOWN")),
            id: raw.id.map(id_text),
        },
        _ => Event::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use wire::protocol::{batch_payload, ClientFrame};
    use wire::ws::{Decoder, Message, Role};

    fn sent(out: &mut Outbox) -> Vec<String> {
        let (wire, _) = out.take();
        let mut buf = BytesMut::from(&wire[..]);
        let mut d = Decoder::new(Role::Server, 1 << 20);
        let mut v = Vec::new();
        while let Some(Message::Text(t)) = d.decode(&mut buf).unwrap() {
            v.push(String::from_utf8(t.to_vec()).unwrap());
        }
        v
    }

    #[test]
    fn encodes_frames_the_server_accepts() {
        let mut s = ChatV1.session();
        let mut out = Outbox::new();
        for a in [
            Action::Auth { token: "a.b\"c" },
            Action::Join { room: "r1" },
            Action::Chat {
                room: "r1",
                id: "3.7.120",
                text: "hé \"x\"",
                ts_us: 1_700_000_000_000_000,
            },
            Action::Typing { room: "r1" },
            Action::Resume {
                room: "r1",
                after: 9,
            },
            Action::Ping { ts_us: 5 },
            Action::Leave { room: "r1" },
        ] {
            s.encode(&a, &mut out);
        }
        let frames = sent(&mut out);
        assert_eq!(frames.len(), 7);
        for f in &frames {
            ClientFrame::parse(f.as_bytes()).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        assert_eq!(
            frames[2],
            r#"{"type":"chat","room":"r1","id":"3.7.120","text":"hé \"x\"","ts":1700000000000000}"#
        );
    }

    /// The fast path (chat_fast) must agree with the full serde parse on
    /// everything it accepts.
    #[test]
    fn fast_path_matches_the_full_parse() {
        let chats: [&[u8]; 3] = [
            br#"{"type":"chat","room":"r-1","seq":42,"from":"u7","id":"3.9.120","text":"hi","ts":1700000000000001}"#,
            r#"{"type":"chat","room":"hé","seq":0,"from":"","id":"","text":"","ts":0}"#.as_bytes(),
            br#"{"ts":9,"text":"x","id":"a","from":"b","seq":18446744073709551615,"room":"c","type":"chat"}"#,
        ];
        let presence: [&[u8]; 4] = [
            br#"{"type":"ack","id":"1.3.0","seq":5}"#,
            br#"{"type":"presence","room":"r-1","user":"u9","status":"online"}"#,
            br#"{"type":"presence","room":"r-1","user":"u9","status":"offline"}"#,
            br#"{"type":"presence","room":"r-1"}"#,
        ];
        let batch = batch_payload(chats.iter().chain(&presence).copied());
        for text in chats.iter().chain(&presence).copied().chain([&batch[..]]) {
            let mut fast = Vec::new();
            assert!(
                crate::dialect::chat_fast::decode(text, &mut |e| fast.push(format!("{e:?}")))
                    .is_none()
            );
            let mut full = Vec::new();
            for_each_server_frame(text, |raw| {
                full.push(format!("{:?}", to_event(raw).unwrap()))
            })
            .unwrap();
            assert_eq!(fast, full);
        }
    }

    /// A batch the fast path covers only in part: every frame once, in order.
    #[test]
    fn mixed_batches_decode_every_frame_once() {
        let chat =
            br#"{"type":"chat","room":"r","seq":4,"from":"u","id":"1.2.3","text":"t","ts":17}"#;
        let welcome = br#"{"type":"welcome","user":"u","conn":1,"heartbeat_ms":5}"#;
        let batch = batch_payload([&chat[..], &welcome[..], &chat[..], &welcome[..]]);
        let mut s = ChatV1.session();
        let mut kinds = Vec::new();
        s.decode(Incoming::Text(&batch), &mut Outbox::new(), &mut |e| {
            kinds.push(format!("{e:?}").split(' ').next().unwrap_or("").to_owned())
        })
        .unwrap();
        assert_eq!(kinds, ["Chat", "Welcome", "Chat", "Welcome"]);
    }

    #[test]
    fn decodes_batches_in_order_with_ids_unquoted() {
        let chat =
            br#"{"type":"chat","room":"r","seq":4,"from":"u","id":"1.2.3","text":"t","ts":17}"#;
        let ack = br#"{"type":"ack","id":"1.3.0","seq":5}"#;
        let batch = batch_payload([&chat[..], &ack[..]]);
        let mut s = ChatV1.session();
        let mut events = Vec::new();
        s.decode(Incoming::Text(&batch), &mut Outbox::new(), &mut |e| {
            events.push(format!("{e:?}"))
        })
        .unwrap();
        assert_eq!(events.len(), 2);
        assert!(events[0].contains("seq: 4") && events[0].contains("\"1.2.3\""));
        assert!(events[0].contains("ts_us: Some(17)"));
        assert!(events[1].starts_with("Ack") && events[1].contains("seq: 5"));
        assert!(s
            .decode(Incoming::Text(b"{nope"), &mut Outbox::new(), &mut |_| {})
            .is_err());
    }
}

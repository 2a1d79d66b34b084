//! Reference protocol v1 (`protocol = "chat"`): JSON text frames from
//! `wire::protocol`, encoded and decoded there (`batch` frames unwrapped in
//! order); this module only maps actions and events onto them.
//! Stateless per connection: v1 echoes chat ids, so no ack map is needed.

use wire::protocol::{decode_server_message, ClientMsg, Received, Scalar};

use super::{Action, DecodeError, Dialect, Event, Incoming, Outbox, Session};

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

/// The wire form of an action.
fn to_msg<'a>(action: &Action<'a>) -> ClientMsg<'a> {
    match *action {
        Action::Auth { token } => ClientMsg::Auth { token },
        Action::Join { room } => ClientMsg::Join { room },
        Action::Leave { room } => ClientMsg::Leave { room },
        Action::Typing { room } => ClientMsg::Typing { room },
        Action::Resume { room, after } => ClientMsg::Resume { room, after },
        Action::Chat {
            room,
            id,
            text,
            ts_us,
        } => ClientMsg::Chat {
            room,
            id: Scalar::Str(id),
            text,
            ts: Scalar::Uint(ts_us),
        },
        Action::Ping { ts_us } => ClientMsg::Ping {
            ts: Scalar::Uint(ts_us),
        },
    }
}

/// A decoded server frame as an engine event.
fn to_event(frame: Received<'_>) -> Event<'_> {
    match frame {
        Received::Welcome { user, instance } => Event::Welcome { user, instance },
        Received::Joined { room, seq, members } => Event::Joined { room, seq, members },
        Received::Left { room } => Event::Left { room },
        Received::Ack { id, seq } => Event::Ack { id, seq },
        Received::Chat {
            room,
            seq,
            from,
            id,
            ts_us,
        } => Event::Chat {
            room,
            seq,
            from,
            id,
            ts_us,
        },
        Received::Typing { room, user } => Event::Typing { room, user },
        Received::Presence { room, user, online } => Event::Presence { room, user, online },
        Received::Resumed {
            room,
            replayed,
            complete,
        } => Event::Resumed {
            room,
            replayed,
            complete,
        },
        Received::Pong { ts_us, .. } => Event::Pong { ts_us },
        Received::Error { code, id } => Event::Error { code, id },
        Received::Unknown => Event::Ignored,
    }
}

impl Session for ChatSession {
    fn on_open(&mut self, _out: &mut Outbox) {}

    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox) {
        out.text(to_msg(action).to_json().as_bytes());
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
        decode_server_message(text, &mut |frame| sink(to_event(frame))).map_err(|e| DecodeError {
            dialect: "chat",
            why: e.0,
        })
    }
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

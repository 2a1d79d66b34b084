//! `protocol = "json"`: any WebSocket server whose frames are JSON text,
//! shaped by `[target.json]` (options: `scenario::json`; templates,
//! pointers and matchers: `dialect::shapes`, shared with Socket.IO).
//!
//! Outgoing: each action fills its template (an action without one sends
//! nothing). Incoming: each text frame is parsed once and tried against the
//! matchers in a fixed order (welcome, joined, ack, chat, presence, error,
//! ping, pong); the first that matches decides the event. Frames nothing
//! matches, non-JSON and binary frames become `Event::Unmatched`, never a
//! decode error. A chat delivery is an `Event::Delivery`: such servers
//! number nothing, so the generator accounts it (`engine::ledger`).
//!
//! Servers that confirm nothing are fine: without a join or ack matcher the
//! session remembers nothing (see [`Caps`]); with one but no `room`/`id`
//! extractor, confirmations are paired with requests in order (FIFO).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use super::shapes::{fill, Lazy, Vars, View};
use super::{Action, Caps, DecodeError, Dialect, Event, Incoming, Outbox, Session};
use crate::scenario::json::{Heartbeat, JsonOptions, Membership};

/// Most requests remembered for in-order pairing with their confirmation.
const MAX_PENDING: usize = 4096;
/// Bytes of an unmatched frame kept as a sample.
const SAMPLE_BYTES: usize = 200;

/// The JSON dialect, shared by every connection of a run.
#[derive(Debug, Clone)]
pub struct Json {
    opts: Arc<JsonOptions>,
}

impl Json {
    pub fn new(opts: JsonOptions) -> Self {
        Self {
            opts: Arc::new(opts),
        }
    }
}

impl Dialect for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn upgrade_target(&self, url_path: &str) -> String {
        if url_path.is_empty() {
            "/".to_owned()
        } else {
            url_path.to_owned()
        }
    }

    fn session(&self) -> Box<dyn Session> {
        Box::new(JsonSession {
            opts: Arc::clone(&self.opts),
            client: 0,
            user: String::new(),
            joins: VecDeque::new(),
            acks: VecDeque::new(),
            pings: VecDeque::new(),
        })
    }

    fn caps(&self) -> Caps {
        let m = &self.opts.matchers;
        Caps {
            welcomes: m.welcome.is_some(),
            confirms_joins: self.opts.membership == Membership::Rooms && m.joined.is_some(),
            acks_chats: m.ack.is_some(),
        }
    }
}

/// Per-connection state: requests awaiting an in-order confirmation.
#[derive(Debug)]
struct JsonSession {
    opts: Arc<JsonOptions>,
    client: u32,
    user: String,
    joins: VecDeque<String>,
    acks: VecDeque<String>,
    /// Intended times of our pings not answered yet.
    pings: VecDeque<u64>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() >= MAX_PENDING {
        q.pop_front();
    }
    q.push_back(v);
}

fn sample(bytes: &[u8]) -> Cow<'_, str> {
    let mut end = bytes.len().min(SAMPLE_BYTES);
    while end > 0 && std::str::from_utf8(&bytes[..end]).is_err() {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end])
}

impl JsonSession {
    fn vars<'a>(&'a self) -> Vars<'a> {
        Vars {
            client: Some(self.client),
            user: Some(&self.user),
            ..Vars::default()
        }
    }

    fn send(out: &mut Outbox, template: &Value, vars: &Vars<'_>) {
        // A filled template is plain JSON: serializing it cannot fail.
        if let Ok(bytes) = serde_json::to_vec(&fill(template, vars)) {
            out.text(&bytes);
        }
    }

    /// One parsed frame → one event.
    fn classify<'v>(&mut self, v: &impl View<'v>, raw: &'v str, out: &mut Outbox) -> Event<'v> {
        let opts = Arc::clone(&self.opts);
        let (m, x) = (&opts.matchers, &opts.extract);
        let is =
            |k: &Option<crate::scenario::shapes::Matcher>| k.as_ref().is_some_and(|k| v.matches(k));
        if is(&m.welcome) {
            return Event::Welcome {
                user: v.str_at(x.sender.as_deref()).unwrap_or_default(),
                instance: None,
            };
        }
        if is(&m.joined) {
            let room = v
                .str_at(x.room.as_deref())
                .inspect(|r| self.joins.retain(|j| j != r.as_ref()))
                .or_else(|| self.joins.pop_front().map(Cow::Owned));
            return match room {
                Some(room) => Event::Joined {
                    room,
                    seq: 0,
                    members: 0,
                },
                None => Event::Ignored,
            };
        }
        if is(&m.ack) {
            let id = v
                .str_at(x.id.as_deref())
                .or_else(|| self.acks.pop_front().map(Cow::Owned));
            return match id {
                Some(id) => Event::Ack { id, seq: 0 },
                None => Event::Ignored,
            };
        }
        if v.matches(&m.chat) {
            return Event::Delivery {
                room: v.str_at(x.room.as_deref()),
                id: v.str_at(x.id.as_deref()),
                // Without a text pointer, bench's id is looked for in the whole frame.
                text: match &x.text {
                    Some(p) => v.str_at(Some(p)),
                    None => Some(Cow::Borrowed(raw)),
                },
            };
        }
        if is(&m.presence) {
            return Event::Presence {
                room: v.str_at(x.room.as_deref()).unwrap_or_default(),
                user: v.str_at(x.sender.as_deref()).unwrap_or_default(),
                online: true,
            };
        }
        if is(&m.error) {
            return Event::Error {
                code: v
                    .str_at(x.error.as_deref())
                    .unwrap_or(Cow::Borrowed("error")),
                id: v.str_at(x.id.as_deref()),
            };
        }
        if is(&m.ping) {
            if let Some(pong) = &opts.templates.pong {
                Self::send(out, pong, &self.vars());
            }
            return Event::Replied;
        }
        if is(&m.pong) {
            return Event::Pong {
                // Our own ping's time, else one the server echoed back.
                ts_us: self
                    .pings
                    .pop_front()
                    .or_else(|| v.ts_at(x.timestamp.as_deref())),
            };
        }
        Event::Unmatched {
            kind: "no_match",
            sample: sample(raw.as_bytes()),
        }
    }
}

impl Session for JsonSession {
    fn bind(&mut self, client: u32) {
        self.client = client;
        self.user = format!("u{client}");
    }

    /// The hello goes first, unless it waits for the first-message token.
    fn on_open(&mut self, out: &mut Outbox) {
        if let Some(hello) = &self.opts.templates.hello {
            if !self.opts.hello_has_token() {
                Self::send(out, hello, &self.vars());
            }
        }
    }

    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox) {
        let opts = Arc::clone(&self.opts);
        let t = &opts.templates;
        let base = self.vars();
        match *action {
            Action::Auth { token } => {
                if let Some(hello) = &t.hello {
                    Self::send(
                        out,
                        hello,
                        &Vars {
                            token: Some(token),
                            ..base
                        },
                    );
                }
            }
            Action::Join { room } => {
                if let Some(join) = &t.join {
                    Self::send(
                        out,
                        join,
                        &Vars {
                            room: Some(room),
                            ..base
                        },
                    );
                    if opts.matchers.joined.is_some() {
                        push_bounded(&mut self.joins, room.to_owned());
                    }
                }
            }
            Action::Leave { room } => {
                if let Some(leave) = &t.leave {
                    Self::send(
                        out,
                        leave,
                        &Vars {
                            room: Some(room),
                            ..base
                        },
                    );
                }
            }
            Action::Typing { room } => {
                if let Some(typing) = &t.typing {
                    Self::send(
                        out,
                        typing,
                        &Vars {
                            room: Some(room),
                            ..base
                        },
                    );
                }
            }
            Action::Chat {
                room,
                id,
                text,
                ts_us,
            } => {
                let vars = Vars {
                    room: Some(room),
                    id: Some(id),
                    text: Some(text),
                    ts: Some(ts_us),
                    ..base
                };
                Self::send(out, &t.chat, &vars);
                if opts.matchers.ack.is_some() {
                    push_bounded(&mut self.acks, id.to_owned());
                }
            }
            // No replay protocol to speak of: a json server has no seqs.
            Action::Resume { .. } => {}
            Action::Ping { ts_us } => match &opts.heartbeat {
                Heartbeat::Websocket => out.ping(ts_us.to_string().as_bytes()),
                Heartbeat::Text(p) => {
                    out.text(p.ping.as_bytes());
                    push_bounded(&mut self.pings, ts_us);
                }
                Heartbeat::Json => {
                    if let Some(ping) = &t.ping {
                        Self::send(
                            out,
                            ping,
                            &Vars {
                                ts: Some(ts_us),
                                ..base
                            },
                        );
                        push_bounded(&mut self.pings, ts_us);
                    }
                }
            },
        }
    }

    fn decode(
        &mut self,
        msg: Incoming<'_>,
        out: &mut Outbox,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let text = match msg {
            Incoming::Text(t) => t,
            Incoming::Binary(b) => {
                sink(Event::Unmatched {
                    kind: "binary",
                    sample: Cow::Owned(format!("<{} bytes of binary>", b.len())),
                });
                return Ok(());
            }
        };
        if let Heartbeat::Text(p) = &self.opts.heartbeat {
            if text == p.pong.as_bytes() {
                sink(Event::Pong {
                    ts_us: self.pings.pop_front(),
                });
                return Ok(());
            }
        }
        let not_json = |sink: &mut dyn FnMut(Event<'_>)| {
            sink(Event::Unmatched {
                kind: "non_json",
                sample: sample(text),
            })
        };
        let Ok(raw) = std::str::from_utf8(text) else {
            not_json(sink);
            return Ok(());
        };
        // Fast path: a borrowed, lazily read object; else the full parse.
        if let Some(lazy) = Lazy::parse(raw) {
            let ev = self.classify(&lazy, raw, out);
            sink(ev);
            return Ok(());
        }
        let Ok(v) = serde_json::from_str::<Value>(raw) else {
            not_json(sink);
            return Ok(());
        };
        let ev = self.classify(&&v, raw, out);
        sink(ev);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use wire::ws::{Decoder, Message, Role};

    fn options(extra: &str) -> JsonOptions {
        let text = format!(
            r#"
{extra}
[templates]
hello = {{ type = "hello", user = "{{user}}" }}
join = {{ type = "room:join", room = "{{room}}" }}
chat = {{ type = "chat:message", room = "{{room}}", text = "{{text}}", at = "{{ts_ms}}" }}
ping = {{ type = "ping", at = "{{ts_us}}" }}
pong = {{ type = "pong" }}
[match]
welcome = {{ "/type" = "welcome" }}
joined = {{ "/type" = "joined" }}
ack = {{ "/type" = "ack" }}
chat = {{ "/type" = "chat:message" }}
error = {{ "/type" = "error" }}
ping = {{ "/type" = "ping" }}
pong = {{ "/type" = "pong" }}
[extract]
text = "/text"
room = "/room"
error = "/code"
"#
        );
        JsonOptions::from_toml(&toml::from_str(&text).unwrap()).unwrap()
    }

    fn sent(out: &mut Outbox) -> Vec<String> {
        let (wire, _) = out.take();
        let mut buf = BytesMut::from(&wire[..]);
        let mut d = Decoder::new(Role::Server, 1 << 20);
        let mut v = Vec::new();
        while let Ok(Some(m)) = d.decode(&mut buf) {
            match m {
                Message::Text(t) => v.push(String::from_utf8(t.to_vec()).unwrap()),
                Message::Ping(p) => v.push(format!("PING {}", String::from_utf8_lossy(&p))),
                _ => {}
            }
        }
        v
    }

    fn decode(s: &mut Box<dyn Session>, msgs: &[Incoming<'_>]) -> (Vec<String>, Vec<String>) {
        let mut out = Outbox::new();
        let mut events = Vec::new();
        for m in msgs {
            s.decode(*m, &mut out, &mut |e| events.push(format!("{e:?}")))
                .unwrap();
        }
        (events, sent(&mut out))
    }

    #[test]
    fn templates_fill_and_caps_follow_the_matchers() {
        let d = Json::new(options(""));
        assert_eq!(
            d.caps(),
            Caps {
                welcomes: true,
                confirms_joins: true,
                acks_chats: true
            }
        );
        let mut s = d.session();
        s.bind(7);
        let mut out = Outbox::new();
        s.on_open(&mut out);
        s.encode(&Action::Join { room: "r1" }, &mut out);
        s.encode(
            &Action::Chat {
                room: "r1",
                id: "7.1.0",
                text: "~7.1.0~ hi",
                ts_us: 1_700_000_000_123_456,
            },
            &mut out,
        );
        s.encode(
            &Action::Resume {
                room: "r1",
                after: 3,
            },
            &mut out,
        );
        assert_eq!(
            sent(&mut out),
            [
                r#"{"type":"hello","user":"u7"}"#,
                r#"{"room":"r1","type":"room:join"}"#,
                r#"{"at":1700000000123,"room":"r1","text":"~7.1.0~ hi","type":"chat:message"}"#,
            ]
        );
    }

    #[test]
    fn frames_become_events_in_matcher_order() {
        let d = Json::new(options(""));
        let mut s = d.session();
        let mut out = Outbox::new();
        s.encode(&Action::Join { room: "r1" }, &mut out);
        s.encode(
            &Action::Chat {
                room: "r1",
                id: "0.1.5",
                text: "t",
                ts_us: 1,
            },
            &mut out,
        );
        s.encode(&Action::Ping { ts_us: 99 }, &mut out);
        let (events, replies) = decode(
            &mut s,
            &[
                Incoming::Text(br#"{"type":"welcome"}"#),
                Incoming::Text(br#"{"type":"joined"}"#),
                Incoming::Text(br#"{"type":"ack"}"#),
                Incoming::Text(br#"{"type":"chat:message","room":"r1","text":"~3.4.0~ x"}"#),
                Incoming::Text(br#"{"type":"chat:message","text":5}"#),
                Incoming::Text(br#"{"type":"error","code":"RATE"}"#),
                Incoming::Text(br#"{"type":"ping"}"#),
                Incoming::Text(br#"{"type":"pong"}"#),
                Incoming::Text(br#"{"type":"other"}"#),
                Incoming::Text(b"not json"),
                Incoming::Binary(b"\x00\x01"),
                Incoming::Text(br#"{"type":"ack"}"#),
            ],
        );
        assert_eq!(
            events,
            [
                r#"Welcome { user: "", instance: None }"#,
                r#"Joined { room: "r1", seq: 0, members: 0 }"#,
                r#"Ack { id: "0.1.5", seq: 0 }"#,
                r#"Delivery { room: Some("r1"), id: None, text: Some("~3.4.0~ x") }"#,
                r#"Delivery { room: None, id: None, text: Some("5") }"#,
                r#"Error { code: "RATE", id: None }"#,
                "Replied",
                "Pong { ts_us: Some(99) }",
                r#"Unmatched { kind: "no_match", sample: "{\"type\":\"other\"}" }"#,
                r#"Unmatched { kind: "non_json", sample: "not json" }"#,
                r#"Unmatched { kind: "binary", sample: "<2 bytes of binary>" }"#,
                "Ignored",
            ]
        );
        assert_eq!(replies, [r#"{"type":"pong"}"#]);
    }

    #[test]
    fn text_and_websocket_heartbeats() {
        let mut s = Json::new(options("ping_text = \"ping\"\npong_text = \"pong\"")).session();
        let mut out = Outbox::new();
        s.encode(&Action::Ping { ts_us: 5 }, &mut out);
        assert_eq!(sent(&mut out), ["ping"]);
        let (events, _) = decode(&mut s, &[Incoming::Text(b"pong")]);
        assert_eq!(events, ["Pong { ts_us: Some(5) }"]);

        let mut s = Json::new(options("heartbeat = \"websocket\"")).session();
        s.encode(&Action::Ping { ts_us: 42 }, &mut out);
        assert_eq!(sent(&mut out), ["PING 42"]);
    }

    #[test]
    fn without_a_text_pointer_the_whole_frame_is_searched() {
        let text = r#"
membership = "all"
[templates]
chat = { type = "message", message = "{text}" }
[match]
chat = { "/type" = "broadcast" }
"#;
        let d = Json::new(JsonOptions::from_toml(&toml::from_str(text).unwrap()).unwrap());
        assert_eq!(
            d.caps(),
            Caps {
                welcomes: false,
                confirms_joins: false,
                acks_chats: false
            }
        );
        let mut s = d.session();
        let (events, _) = decode(
            &mut s,
            &[Incoming::Text(
                br#"{"type":"broadcast","message":"~1.2.3~ t","timestamp":"2024-01-01T00:00:00Z"}"#,
            )],
        );
        assert!(
            events[0].contains(r#"text: Some("{\"type\":\"broadcast\",\"message\":\"~1.2.3~ t\""#),
            "{events:?}"
        );
    }
}

//! The Socket.IO client state machine, independent of the transport: Engine
//! packets in, Engine packets out (through [`Wire`]), normalized [`Event`]s
//! to the engine. The WebSocket [`Session`](super::session) and the long
//! polling transport (`polling.rs`) both drive this.
//!
//! Lifecycle: wait for the Engine.IO open packet → send CONNECT to the
//! namespace (with `auth`) → on the CONNECT ack report `Welcome` and flush the
//! actions queued meanwhile; a CONNECT_ERROR is reported as `Rejected` with
//! the middleware's message. Engine.IO pings are answered with pongs at once.
//!
//! Acks: every join/leave/chat/resume/ping is emitted with an ack id; the ack
//! is mapped back to the action (a chat ack becomes `Ack{id, seq}` with the
//! engine's chat id, a ping ack becomes `Pong{ts_us}`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::engineio::{EnginePacket, Handshake};
use super::packet::{placeholder, Packet, PacketType, Reassembler};
use super::SocketIoOptions;
use crate::dialect::shapes::{fill, Vars};
use crate::dialect::{parse_ts_us, Action, DecodeError, Event, Outbox};
use crate::scenario::socketio::Accounting;

/// Where encoded Engine.IO packets go: WebSocket frames or a polling batch.
pub trait Wire {
    fn text(&mut self, payload: &[u8]);
    fn binary(&mut self, payload: &[u8]);
}

impl Wire for Outbox {
    fn text(&mut self, payload: &[u8]) {
        Outbox::text(self, payload);
    }
    fn binary(&mut self, payload: &[u8]) {
        Outbox::binary(self, payload);
    }
}

/// Packets for a long-polling POST body.
impl Wire for Vec<EnginePacket> {
    fn text(&mut self, payload: &[u8]) {
        // Payloads from the core always start with the Engine.IO type digit.
        if let Ok(p) = EnginePacket::decode_text(Bytes::copy_from_slice(payload)) {
            self.push(p);
        }
    }
    fn binary(&mut self, payload: &[u8]) {
        self.push(EnginePacket::Binary(Bytes::copy_from_slice(payload)));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitOpen,
    AwaitConnect,
    Connected,
    Closed,
}

/// What an outstanding ack id stands for.
#[derive(Debug)]
enum Pending {
    Join(String),
    Leave(String),
    Chat(String),
    Resume(String),
    Ping,
}

/// An encoded Socket.IO packet waiting for the CONNECT ack.
#[derive(Debug)]
struct Queued {
    text: Vec<u8>,
    attachments: Vec<Bytes>,
}

const DIALECT: &str = "socketio";

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError {
        dialect: DIALECT,
        why: why.into(),
    }
}

#[derive(Debug)]
pub struct SioCore {
    opts: Arc<SocketIoOptions>,
    state: State,
    handshake: Option<Box<Handshake>>,
    token: Option<String>,
    queued: Vec<Queued>,
    next_ack: u64,
    pending: HashMap<u64, Pending>,
    reassembler: Reassembler,
    /// Engine.IO pings answered so far (the server-driven heartbeat).
    pub pings_answered: u64,
}

impl SioCore {
    pub fn new(opts: Arc<SocketIoOptions>) -> Self {
        Self {
            opts,
            state: State::AwaitOpen,
            handshake: None,
            token: None,
            queued: Vec::new(),
            next_ack: 0,
            pending: HashMap::new(),
            reassembler: Reassembler::default(),
            pings_answered: 0,
        }
    }

    /// The server's open packet, once received.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_deref()
    }

    /// Whether the namespace CONNECT was acknowledged.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Acks still outstanding (for tests and leak checks).
    pub fn pending_acks(&self) -> usize {
        self.pending.len()
    }

    /// Encodes one engine action; queued until the namespace is connected.
    pub fn encode(&mut self, action: &Action<'_>, wire: &mut dyn Wire) {
        let opts = Arc::clone(&self.opts);
        let (name, template, vars, pending) = match *action {
            Action::Auth { token } => {
                // Goes into the CONNECT packet's `auth`; too late once it was sent.
                self.token = Some(token.to_owned());
                return;
            }
            Action::Join { room } => (
                &opts.events.join,
                &opts.templates.join,
                Vars {
                    room: Some(room),
                    ..Vars::default()
                },
                Some(Pending::Join(room.to_owned())),
            ),
            Action::Leave { room } => (
                &opts.events.leave,
                &opts.templates.leave,
                Vars {
                    room: Some(room),
                    ..Vars::default()
                },
                Some(Pending::Leave(room.to_owned())),
            ),
            Action::Typing { room } => (
                &opts.events.typing,
                &opts.templates.typing,
                Vars {
                    room: Some(room),
                    ..Vars::default()
                },
                None,
            ),
            Action::Resume { room, after } => (
                &opts.events.resume,
                &opts.templates.resume,
                Vars {
                    room: Some(room),
                    after: Some(after),
                    ..Vars::default()
                },
                Some(Pending::Resume(room.to_owned())),
            ),
            Action::Ping { ts_us } => (
                &opts.events.ping,
                &opts.templates.ping,
                Vars {
                    ts: Some(ts_us),
                    ..Vars::default()
                },
                Some(Pending::Ping),
            ),
            Action::Chat {
                room,
                id,
                text,
                ts_us,
            } => (
                &opts.events.chat,
                &opts.templates.chat,
                Vars {
                    room: Some(room),
                    id: Some(id),
                    text: Some(text),
                    ts: Some(ts_us),
                    ..Vars::default()
                },
                Some(Pending::Chat(id.to_owned())),
            ),
        };
        let mut attachments = Vec::new();
        let ph;
        let mut vars = vars;
        if opts.binary_text {
            if let (Action::Chat { text, .. }, Some(_)) = (action, vars.text) {
                attachments.push(Bytes::copy_from_slice(text.as_bytes()));
                ph = placeholder(0);
                vars.text_value = Some(&ph);
            }
        }
        let arg = fill(template, &vars);
        let id = pending.map(|p| {
            let id = self.next_ack;
            self.next_ack = self.next_ack.wrapping_add(1);
            self.pending.insert(id, p);
            id
        });
        let packet = Packet::event(&opts.namespace, name, vec![arg], id, attachments);
        self.send_packet(packet, wire);
    }

    /// Sends an arbitrary packet (e.g. an event with binary attachments);
    /// queued like actions until connected. Its ack reaches
    /// [`SioCore::on_engine`]'s sink as `(Some(packet), Event::Ignored)`.
    pub fn emit_raw(&mut self, packet: Packet, wire: &mut dyn Wire) {
        self.send_packet(packet, wire);
    }

    fn send_packet(&mut self, packet: Packet, wire: &mut dyn Wire) {
        let mut text = Vec::with_capacity(64);
        text.push(b'4');
        text.extend_from_slice(packet.encode().as_bytes());
        if self.state == State::Connected {
            wire.text(&text);
            for a in &packet.attachments {
                wire.binary(a);
            }
        } else {
            self.queued.push(Queued {
                text,
                attachments: packet.attachments,
            });
        }
    }

    /// Decodes one WebSocket data message.
    pub fn decode_ws(
        &mut self,
        text: Option<&[u8]>,
        binary: Option<&[u8]>,
        wire: &mut dyn Wire,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let packet = match (text, binary) {
            (Some(t), _) => EnginePacket::decode_text(Bytes::copy_from_slice(t))
                .map_err(|e| bad(e.to_string()))?,
            (None, Some(b)) => EnginePacket::Binary(Bytes::copy_from_slice(b)),
            (None, None) => return Ok(()),
        };
        self.on_engine(packet, wire, &mut |_, ev| sink(ev))
    }

    /// Handles one Engine.IO packet. `sink` gets every event, with the
    /// Socket.IO packet behind it when there is one (so callers can read
    /// attachments or acks of `emit_raw`, which arrive as `Event::Ignored`).
    pub fn on_engine(
        &mut self,
        packet: EnginePacket,
        wire: &mut dyn Wire,
        sink: &mut dyn FnMut(Option<&Packet>, Event<'_>),
    ) -> Result<(), DecodeError> {
        match packet {
            EnginePacket::Open(json) => {
                let h = Handshake::parse(&json).map_err(|e| bad(e.to_string()))?;
                self.handshake = Some(Box::new(h));
                if self.state == State::AwaitOpen {
                    self.state = State::AwaitConnect;
                    let connect = Packet::connect(&self.opts.namespace, self.auth_payload());
                    let mut text = b"4".to_vec();
                    text.extend_from_slice(connect.encode().as_bytes());
                    wire.text(&text);
                }
                sink(None, Event::Replied);
            }
            EnginePacket::Ping(data) => {
                let mut pong = Vec::with_capacity(1 + data.len());
                pong.push(b'3');
                pong.extend_from_slice(&data);
                wire.text(&pong);
                self.pings_answered += 1;
                sink(None, Event::Replied);
            }
            EnginePacket::Close => {
                self.state = State::Closed;
                sink(
                    None,
                    Event::Close {
                        code: 1000,
                        reason: Cow::Borrowed("engine.io close"),
                    },
                );
            }
            EnginePacket::Pong(_) | EnginePacket::Upgrade | EnginePacket::Noop => {
                sink(None, Event::Ignored)
            }
            EnginePacket::Message(text) => {
                if let Some(p) = self
                    .reassembler
                    .text(&text)
                    .map_err(|e| bad(e.to_string()))?
                {
                    self.on_packet(p, wire, sink)?;
                }
            }
            EnginePacket::Binary(data) => {
                if let Some(p) = self
                    .reassembler
                    .binary(data)
                    .map_err(|e| bad(e.to_string()))?
                {
                    self.on_packet(p, wire, sink)?;
                }
            }
        }
        Ok(())
    }

    fn auth_payload(&self) -> Option<Value> {
        let mut auth = match &self.opts.auth {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if let Some(token) = &self.token {
            auth.insert(
                self.opts.auth_token_field.clone(),
                Value::String(token.clone()),
            );
        }
        (!auth.is_empty()).then_some(Value::Object(auth))
    }

    fn on_packet(
        &mut self,
        p: Packet,
        wire: &mut dyn Wire,
        sink: &mut dyn FnMut(Option<&Packet>, Event<'_>),
    ) -> Result<(), DecodeError> {
        if p.nsp != self.opts.namespace {
            sink(Some(&p), Event::Ignored);
            return Ok(());
        }
        match p.kind {
            PacketType::Connect => {
                self.state = State::Connected;
                let sid = p
                    .data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                sink(
                    None,
                    Event::Welcome {
                        user: Cow::Borrowed(sid),
                        instance: None,
                    },
                );
                for q in std::mem::take(&mut self.queued) {
                    wire.text(&q.text);
                    for a in &q.attachments {
                        wire.binary(a);
                    }
                }
            }
            PacketType::ConnectError => {
                self.state = State::Closed;
                self.queued.clear();
                let reason = match &p.data {
                    Some(Value::Object(m)) => m
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("connect error")
                        .to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    _ => "connect error".to_owned(),
                };
                sink(
                    Some(&p),
                    Event::Rejected {
                        reason: Cow::Owned(reason),
                    },
                );
            }
            PacketType::Disconnect => {
                self.state = State::Closed;
                sink(
                    None,
                    Event::Close {
                        code: 1000,
                        reason: Cow::Borrowed("io server disconnect"),
                    },
                );
            }
            PacketType::Event | PacketType::BinaryEvent => {
                if let Some(id) = p.id {
                    // The server asked for an ack; answer with no arguments.
                    let ack = Packet {
                        id: Some(id),
                        data: Some(Value::Array(Vec::new())),
                        ..Packet::new(PacketType::Ack, &self.opts.namespace)
                    };
                    let mut text = b"4".to_vec();
                    text.extend_from_slice(ack.encode().as_bytes());
                    wire.text(&text);
                }
                self.on_event(&p, sink)?;
            }
            PacketType::Ack | PacketType::BinaryAck => self.on_ack(&p, sink)?,
        }
        Ok(())
    }

    fn on_event(
        &self,
        p: &Packet,
        sink: &mut dyn FnMut(Option<&Packet>, Event<'_>),
    ) -> Result<(), DecodeError> {
        let (name, args) = p.event_parts().map_err(|e| bad(e.to_string()))?;
        let f = &self.opts.fields;
        let ev = &self.opts.events;
        let arg = args.first().unwrap_or(&Value::Null);
        let generator = self.opts.accounting == Accounting::Generator;
        let chat = name == *ev.delivery.as_ref().unwrap_or(&ev.chat);
        let event = if chat && generator {
            // The server's seq and ts (if any) are not needed: bench's id is
            // in `id` or inside the text (see `engine::ledger`).
            Event::Delivery {
                room: str_field(arg, &f.room),
                id: str_field(arg, &f.id),
                text: str_field(arg, &f.text),
            }
        } else if chat {
            Event::Chat {
                room: str_field(arg, &f.room).ok_or_else(|| missing(name, &f.room))?,
                seq: arg
                    .get(&f.seq)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing(name, &f.seq))?,
                from: str_field(arg, &f.from).unwrap_or_default(),
                id: str_field(arg, &f.id).ok_or_else(|| missing(name, &f.id))?,
                ts_us: ts_field(arg, &f.ts),
            }
        } else if name == ev.typing {
            Event::Typing {
                room: str_field(arg, &f.room).ok_or_else(|| missing(name, &f.room))?,
                user: str_field(arg, &f.user).unwrap_or_default(),
            }
        } else if name == ev.presence {
            Event::Presence {
                room: str_field(arg, &f.room).ok_or_else(|| missing(name, &f.room))?,
                user: str_field(arg, &f.user).unwrap_or_default(),
                online: arg.get(&f.status).and_then(Value::as_str) != Some("offline"),
            }
        } else {
            Event::Ignored
        };
        sink(Some(p), event);
        Ok(())
    }

    fn on_ack(
        &mut self,
        p: &Packet,
        sink: &mut dyn FnMut(Option<&Packet>, Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(pending) = p.id.and_then(|id| self.pending.remove(&id)) else {
            sink(Some(p), Event::Ignored);
            return Ok(());
        };
        let f = &self.opts.fields;
        let arg = p.ack_args().first().unwrap_or(&Value::Null);
        if let Some(code) = arg.get(&f.error).filter(|v| !v.is_null()) {
            let code = code
                .as_str()
                .map_or_else(|| Cow::Owned(code.to_string()), Cow::Borrowed);
            let id = match &pending {
                Pending::Chat(id) => Some(Cow::Borrowed(id.as_str())),
                _ => None,
            };
            sink(Some(p), Event::Error { code, id });
            return Ok(());
        }
        let seq = arg.get(&f.seq).and_then(Value::as_u64);
        let event = match &pending {
            Pending::Join(room) => Event::Joined {
                room: Cow::Borrowed(room),
                seq: seq.unwrap_or(0),
                members: arg.get(&f.members).and_then(Value::as_u64).unwrap_or(0),
            },
            Pending::Leave(room) => Event::Left {
                room: Cow::Borrowed(room),
            },
            Pending::Chat(id) => Event::Ack {
                id: Cow::Borrowed(id),
                seq: match (seq, self.opts.accounting) {
                    (Some(seq), _) => seq,
                    // Generator accounting needs no seq from the ack.
                    (None, Accounting::Generator) => 0,
                    (None, Accounting::Seq) => return Err(missing("chat ack", &f.seq)),
                },
            },
            Pending::Resume(room) => Event::Resumed {
                room: Cow::Borrowed(room),
                replayed: arg.get("replayed").and_then(Value::as_u64).unwrap_or(0),
                complete: arg
                    .get("complete")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            Pending::Ping => Event::Pong {
                ts_us: ts_value(arg),
            },
        };
        sink(Some(p), event);
        Ok(())
    }
}

fn missing(what: &str, field: &str) -> DecodeError {
    bad(format!("`{what}` without `{field}`"))
}

/// A string field, or a number rendered as text (ids may be either).
fn str_field<'v>(v: &'v Value, key: &str) -> Option<Cow<'v, str>> {
    match v.get(key)? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

fn ts_value(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => parse_ts_us(&n.to_string()),
        _ => None,
    }
}

fn ts_field(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(ts_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a core with Engine.IO text packets; returns (sent, events).
    fn run(core: &mut SioCore, incoming: &[&str]) -> (Vec<EnginePacket>, Vec<String>) {
        let mut sent: Vec<EnginePacket> = Vec::new();
        let mut events = Vec::new();
        for text in incoming {
            let p = EnginePacket::decode_text(Bytes::copy_from_slice(text.as_bytes())).unwrap();
            core.on_engine(p, &mut sent, &mut |_, ev| events.push(format!("{ev:?}")))
                .unwrap();
        }
        (sent, events)
    }

    fn texts(sent: &[EnginePacket]) -> Vec<String> {
        sent.iter()
            .map(|p| String::from_utf8(p.encode_text().unwrap()).unwrap())
            .collect()
    }

    const OPEN: &str = r#"0{"sid":"s1","upgrades":[],"pingInterval":300,"pingTimeout":200}"#;

    #[test]
    fn connects_with_auth_then_flushes_queued_actions() {
        let mut core = SioCore::new(Arc::new(SocketIoOptions {
            namespace: "/chat".into(),
            auth: Some(serde_json::json!({"v": 1})),
            ..SocketIoOptions::default()
        }));
        let mut early: Vec<EnginePacket> = Vec::new();
        core.encode(&Action::Auth { token: "jwt" }, &mut early);
        core.encode(&Action::Join { room: "r" }, &mut early);
        assert!(early.is_empty(), "nothing before the CONNECT ack");
        let (sent, events) = run(&mut core, &[OPEN]);
        assert_eq!(texts(&sent), [r#"40/chat,{"token":"jwt","v":1}"#]);
        assert_eq!(events, ["Replied"]);
        let (sent, events) = run(&mut core, &[r#"40/chat,{"sid":"abc"}"#, "2"]);
        assert_eq!(texts(&sent), [r#"42/chat,0["join",{"room":"r"}]"#, "3"]);
        assert_eq!(events[0], r#"Welcome { user: "abc", instance: None }"#);
        assert_eq!(core.pings_answered, 1);
    }

    #[test]
    fn acks_map_back_to_actions() {
        let mut core = SioCore::new(Arc::new(SocketIoOptions::default()));
        run(&mut core, &[OPEN, "40"]);
        let mut sent: Vec<EnginePacket> = Vec::new();
        core.encode(&Action::Join { room: "r" }, &mut sent);
        core.encode(
            &Action::Chat {
                room: "r",
                id: "c.1",
                text: "t",
                ts_us: 10,
            },
            &mut sent,
        );
        core.encode(&Action::Ping { ts_us: 77 }, &mut sent);
        core.encode(
            &Action::Chat {
                room: "x",
                id: "c.2",
                text: "t",
                ts_us: 11,
            },
            &mut sent,
        );
        assert_eq!(
            texts(&sent)[1],
            r#"421["chat",{"id":"c.1","room":"r","text":"t","ts":10}]"#
        );
        let (_, events) = run(
            &mut core,
            &[
                r#"430[{"seq":4,"members":2}]"#,
                r#"431[{"seq":5}]"#,
                r#"432[77]"#,
                r#"433[{"error":"NOT_IN_ROOM","message":"no"}]"#,
                r#"42["chat",{"room":"r","seq":6,"from":"u","id":9,"text":"t","ts":12}]"#,
                r#"42["presence",{"room":"r","user":"u","status":"offline"}]"#,
                r#"42["other",1]"#,
            ],
        );
        assert_eq!(
            events,
            [
                r#"Joined { room: "r", seq: 4, members: 2 }"#,
                r#"Ack { id: "c.1", seq: 5 }"#,
                "Pong { ts_us: Some(77) }",
                r#"Error { code: "NOT_IN_ROOM", id: Some("c.2") }"#,
                r#"Chat { room: "r", seq: 6, from: "u", id: "9", ts_us: Some(12) }"#,
                r#"Presence { room: "r", user: "u", online: false }"#,
                "Ignored",
            ]
        );
        assert_eq!(core.pending_acks(), 0);
    }

    #[test]
    fn connect_error_is_rejected_by_reason() {
        let mut core = SioCore::new(Arc::new(SocketIoOptions::default()));
        let (_, events) = run(
            &mut core,
            &[
                OPEN,
                r#"44{"message":"invalid signature","data":{"code":"UNAUTHORIZED"}}"#,
            ],
        );
        assert_eq!(events[1], r#"Rejected { reason: "invalid signature" }"#);
        assert!(!core.is_connected());
    }

    #[test]
    fn binary_chat_text_goes_as_attachment() {
        let mut core = SioCore::new(Arc::new(SocketIoOptions {
            binary_text: true,
            ..SocketIoOptions::default()
        }));
        run(&mut core, &[OPEN, "40"]);
        let mut sent: Vec<EnginePacket> = Vec::new();
        core.encode(
            &Action::Chat {
                room: "r",
                id: "1",
                text: "bytes",
                ts_us: 3,
            },
            &mut sent,
        );
        assert_eq!(
            String::from_utf8(sent[0].encode_text().unwrap()).unwrap(),
            r#"451-0["chat",{"id":"1","room":"r","text":{"_placeholder":true,"num":0},"ts":3}]"#
        );
        assert_eq!(sent[1], EnginePacket::Binary(Bytes::from_static(b"bytes")));
    }
}

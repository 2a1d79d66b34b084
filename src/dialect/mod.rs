//! Protocol dialects: how engine actions become WebSocket messages and how
//! incoming messages become normalized [`Event`]s.
//!
//! The engine speaks in [`Action`]s (join, chat, ping, ...) and listens for
//! [`Event`]s (joined, ack, chat, pong, ...). A [`Dialect`] is the shared,
//! immutable description of one protocol (e.g. reference v1, Socket.IO); each
//! connection gets its own [`Session`] holding per-connection state such as
//! Socket.IO ack-id maps or an Engine.IO open/connect exchange.
//!
//! Sessions write outgoing frames into an [`Outbox`] (already masked and
//! framed, ready to queue on the socket) and report what they understood to
//! an event sink. They never touch the socket, the clock or the metrics.

pub mod chat;
pub mod json;
pub(crate) mod shapes;
pub mod socketio;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wire::ws::{encode_frame, OpCode};

use crate::scenario::{Protocol, TargetPlan};

/// Shared with Socket.IO: integer µs, floats tolerated.
pub use wire::protocol::parse_ts_us;

/// Something the engine wants a client to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// First-message authentication (query/header auth never reaches the dialect).
    Auth {
        token: &'a str,
    },
    Join {
        room: &'a str,
    },
    Leave {
        room: &'a str,
    },
    /// `ts_us`: the *intended* send time, µs since the UNIX epoch.
    /// `id` is opaque to the dialect and must come back unchanged in
    /// [`Event::Ack`] and in other members' [`Event::Chat`].
    Chat {
        room: &'a str,
        id: &'a str,
        text: &'a str,
        ts_us: u64,
    },
    Typing {
        room: &'a str,
    },
    /// Ask for the messages of `room` with seq > `after`.
    Resume {
        room: &'a str,
        after: u64,
    },
    /// Application-level ping; `ts_us` must come back in [`Event::Pong`].
    Ping {
        ts_us: u64,
    },
}

/// Something a client received, normalized across dialects.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The session is established (v1 `welcome`, Socket.IO CONNECT ack):
    /// the engine may now join rooms.
    Welcome {
        user: Cow<'a, str>,
        /// The server instance id (v1 `welcome.instance`), when it sends one.
        instance: Option<Cow<'a, str>>,
    },
    /// A join was accepted; `seq` is the room's latest seq at join time.
    Joined {
        room: Cow<'a, str>,
        seq: u64,
        members: u64,
    },
    Left {
        room: Cow<'a, str>,
    },
    /// Our own chat `id` was accepted with room seq `seq`.
    Ack {
        id: Cow<'a, str>,
        seq: u64,
    },
    /// Another member's chat. `ts_us` is `None` when the sender's `ts` was
    /// not an integer µs timestamp (then no latency can be computed).
    Chat {
        room: Cow<'a, str>,
        seq: u64,
        from: Cow<'a, str>,
        id: Cow<'a, str>,
        ts_us: Option<u64>,
    },
    Typing {
        room: Cow<'a, str>,
        user: Cow<'a, str>,
    },
    Presence {
        room: Cow<'a, str>,
        user: Cow<'a, str>,
        online: bool,
    },
    Resumed {
        room: Cow<'a, str>,
        replayed: u64,
        complete: bool,
    },
    Pong {
        ts_us: Option<u64>,
    },
    /// An error frame; `code` is the server's code string (e.g. `RATE_LIMITED`).
    Error {
        code: Cow<'a, str>,
        id: Option<Cow<'a, str>>,
    },
    /// The server refused the session at the application level (e.g. a
    /// Socket.IO CONNECT_ERROR); counted as a failed connection by `reason`.
    Rejected {
        reason: Cow<'a, str>,
    },
    /// The server ended the session at the application level (e.g. a
    /// Socket.IO DISCONNECT packet). WebSocket close frames are handled by
    /// the engine and never reach the dialect.
    Close {
        code: u16,
        reason: Cow<'a, str>,
    },
    /// A chat delivery from a server that numbers nothing (no per-room
    /// seq): accounted by the generator from bench's id, found in `id` or
    /// inside `text` (see `engine::ledger`).
    Delivery {
        room: Option<Cow<'a, str>>,
        id: Option<Cow<'a, str>>,
        text: Option<Cow<'a, str>>,
    },
    /// A frame no matcher recognised, by kind (`non_json`, `binary`,
    /// `no_match`), with its start for `results.json` samples.
    Unmatched {
        kind: &'static str,
        sample: Cow<'a, str>,
    },
    /// A dialect-level frame was answered from the session itself (e.g. an
    /// Engine.IO pong): counted, nothing else to do.
    Replied,
    /// A frame that is valid but carries nothing the engine measures.
    Ignored,
}

/// A data message as received from the socket (control frames never reach the dialect).
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// Why a message could not be understood. Counted under `errors["decode"]`.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {dialect} message: {why}")]
pub struct DecodeError {
    pub dialect: &'static str,
    pub why: String,
}

/// Outgoing WebSocket frames of one connection, already framed and masked
/// as a client must send them.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: BytesMut,
    frames: u32,
    /// Unframed mode (transports that are not WebSocket, e.g. Engine.IO long
    /// polling): each message as is, `true` when binary.
    unframed: Option<Vec<(bool, Bytes)>>,
    /// permessage-deflate, when negotiated: data frames go out compressed.
    deflate: Option<Box<wire::ws::deflate::Deflater>>,
    /// Payload bytes of the messages written, before compression.
    payload: u64,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// A framed outbox that compresses every data message with `deflate`.
    pub fn with_deflate(deflate: Option<Box<wire::ws::deflate::Deflater>>) -> Self {
        Self {
            deflate,
            ..Self::default()
        }
    }

    fn data(&mut self, op: OpCode, payload: &[u8]) {
        self.frames += 1;
        self.payload += payload.len() as u64;
        match (&mut self.unframed, &mut self.deflate) {
            (Some(msgs), _) => msgs.push((op == OpCode::Binary, Bytes::copy_from_slice(payload))),
            (None, Some(d)) => {
                self.buf
                    .extend_from_slice(&d.frame(op, payload, Some(rand::random())))
            }
            (None, None) => encode_frame(op, payload, Some(rand::random()), &mut self.buf),
        }
    }

    /// Payload bytes written since the last call, before compression.
    pub fn take_payload_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.payload)
    }

    /// An outbox that keeps messages unframed; read it with [`Outbox::take_unframed`].
    pub fn unframed() -> Self {
        Self {
            unframed: Some(Vec::new()),
            ..Self::default()
        }
    }

    pub fn text(&mut self, payload: &[u8]) {
        self.data(OpCode::Text, payload);
    }

    /// An RFC 6455 ping (never compressed; dropped on unframed transports).
    pub fn ping(&mut self, payload: &[u8]) {
        if self.unframed.is_none() {
            self.frames += 1;
            encode_frame(OpCode::Ping, payload, Some(rand::random()), &mut self.buf);
        }
    }

    pub fn binary(&mut self, payload: &[u8]) {
        self.data(OpCode::Binary, payload);
    }

    /// Takes the messages of an unframed outbox (empty for a framed one).
    pub fn take_unframed(&mut self) -> Vec<(bool, Bytes)> {
        self.frames = 0;
        self.unframed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Takes everything written so far: (wire bytes, frame count). The
    /// buffer goes with it, so an idle connection keeps no allocation.
    pub fn take(&mut self) -> (Bytes, u32) {
        let frames = std::mem::take(&mut self.frames);
        (std::mem::take(&mut self.buf).freeze(), frames)
    }
}

/// One protocol, shared by all connections of a run.
pub trait Dialect: Send + Sync {
    /// Short name for logs and results, e.g. `chat`.
    fn name(&self) -> &'static str;
    /// The HTTP request target for the upgrade, given the URL's path and
    /// query (e.g. Socket.IO appends `?EIO=4&transport=websocket`).
    fn upgrade_target(&self, url_path: &str) -> String;
    /// Fresh per-connection state.
    fn session(&self) -> Box<dyn Session>;
    /// What the server is known to send back (v1 and Socket.IO: everything).
    fn caps(&self) -> Caps {
        Caps::default()
    }
}

/// What a dialect's server confirms. Without a confirmation the engine
/// assumes the step done as soon as it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// A greeting (`Event::Welcome`) before joins.
    pub welcomes: bool,
    /// Join confirmations (`Event::Joined`).
    pub confirms_joins: bool,
    /// Chat acks (`Event::Ack`).
    pub acks_chats: bool,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            welcomes: true,
            confirms_joins: true,
            acks_chats: true,
        }
    }
}

/// Per-connection protocol state. Called from one task only.
pub trait Session: Send {
    /// Tells the session which client it serves (`{client}`, `{user}` in
    /// templates). Called once, before [`Session::on_open`].
    fn bind(&mut self, _client: u32) {}
    /// Right after the WebSocket handshake, before any action. A dialect
    /// that needs an exchange first (Engine.IO open → Socket.IO CONNECT)
    /// starts it here or on the first incoming message, and keeps actions
    /// queued until it is done.
    fn on_open(&mut self, out: &mut Outbox);
    /// Encodes one action into zero or more frames.
    fn encode(&mut self, action: &Action<'_>, out: &mut Outbox);
    /// Decodes one incoming data message into zero or more events, in order.
    /// Replies the dialect owes the server (Engine.IO pong) go to `out`.
    fn decode(
        &mut self,
        msg: Incoming<'_>,
        out: &mut Outbox,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError>;
}

/// The dialect for a target's protocol.
pub fn for_target(target: &TargetPlan) -> anyhow::Result<Arc<dyn Dialect>> {
    match target.protocol {
        Protocol::Chat => Ok(Arc::new(chat::ChatV1)),
        // Without `[target.socketio]`: v1-shaped events on `/` over WebSocket.
        Protocol::Socketio => Ok(Arc::new(socketio::SocketIo::new(
            target.socketio.clone().unwrap_or_default(),
        ))),
        Protocol::Json => {
            let opts = target
                .json
                .clone()
                .ok_or_else(|| anyhow::anyhow!("protocol = \"json\" without [target.json]"))?;
            Ok(Arc::new(json::Json::new(opts)))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse, PlanOverrides};

    /// Moved from `scenario` (which knows nothing of dialects): a
    /// `[target.socketio]` plan builds the Socket.IO dialect.
    #[test]
    fn socketio_plan_builds_the_socketio_dialect() {
        let text = "[[stages]]\nduration = \"10s\"\ntarget = 10\n[[clients]]\n[target]\n\
                    protocol = \"socketio\"\nurl = \"ws://127.0.0.1:9/\"\n\
                    [target.socketio]\nnamespace = \"/chat\"\ntransport = \"polling\"\n";
        let plan = parse(text, "s.toml", None, &PlanOverrides::default()).unwrap();
        let dialect = super::for_target(&plan.target).unwrap();
        assert_eq!(dialect.name(), "socketio");
    }
}

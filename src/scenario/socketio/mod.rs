//! What a scenario can tune about the Socket.IO dialect: namespace, `auth`
//! payload, transport, event names, outgoing payload templates and the field
//! names read from incoming events. The defaults mirror protocol v1, which is
//! what `scripts/peers/socketio-server.js` speaks, so it needs no mapping.
//!
//! They are part of the plan, so the scenario owns them: the loader hands
//! the raw `[target.socketio]` table to [`SocketIoOptions::from_toml`]
//! (`toml.rs`), which checks every key (see `docs/socketio.md`); the
//! dialect (`dialect::socketio`) reads them.

mod toml;

pub use self::toml::TOP;

use serde::Serialize;
use serde_json::{json, Value};

/// How Engine.IO carries packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// WebSocket from the first request (`transport=websocket`).
    #[default]
    Websocket,
    /// HTTP long polling only.
    Polling,
    /// Long-polling handshake, then the standard probe/upgrade to WebSocket.
    PollingUpgrade,
}

/// Event names, one per engine action plus the server's broadcasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventNames {
    pub join: String,
    pub leave: String,
    pub chat: String,
    pub typing: String,
    pub resume: String,
    /// App-level ping, acked with its argument: how ping RTT is measured.
    pub ping: String,
    /// Server → client.
    pub presence: String,
    /// Server → client: the event a chat arrives as, when the server
    /// renames it (e.g. `message:send` in, `message:new` out); `None` = `chat`.
    pub delivery: Option<String>,
}

impl Default for EventNames {
    fn default() -> Self {
        Self {
            join: "join".into(),
            leave: "leave".into(),
            chat: "chat".into(),
            typing: "typing".into(),
            resume: "resume".into(),
            ping: "ping".into(),
            presence: "presence".into(),
            delivery: None,
        }
    }
}

/// JSON templates for the single argument of each emitted event. A string
/// that is exactly `"{ts}"` or `"{after}"` becomes a number; `{room}`, `{id}`,
/// `{text}`, `{token}` inside strings are replaced by the action's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Templates {
    pub join: Value,
    pub leave: Value,
    pub chat: Value,
    pub typing: Value,
    pub resume: Value,
    pub ping: Value,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            join: json!({"room": "{room}"}),
            leave: json!({"room": "{room}"}),
            chat: json!({"room": "{room}", "id": "{id}", "text": "{text}", "ts": "{ts}"}),
            typing: json!({"room": "{room}"}),
            resume: json!({"room": "{room}", "after": "{after}"}),
            ping: json!("{ts}"),
        }
    }
}

/// Field names read from incoming events and acks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fields {
    pub room: String,
    pub seq: String,
    pub from: String,
    pub id: String,
    pub ts: String,
    pub members: String,
    pub user: String,
    pub status: String,
    /// Ack field that marks a refusal, e.g. `{"error":"NOT_IN_ROOM"}`.
    pub error: String,
    /// Chat text (read only with `accounting = "generator"`, where bench's
    /// message id travels inside the text).
    pub text: String,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            room: "room".into(),
            seq: "seq".into(),
            from: "from".into(),
            id: "id".into(),
            ts: "ts".into(),
            members: "members".into(),
            user: "user".into(),
            status: "status".into(),
            error: "error".into(),
            text: "text".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketIoOptions {
    /// Socket.IO namespace, e.g. `/chat`.
    pub namespace: String,
    pub transport: Transport,
    /// Static `auth` object sent with CONNECT. A token from `[target] auth`
    /// (first-message mode) is added under `auth_token_field`. Never
    /// serialized: it often carries a token, and the plan goes to results.
    #[serde(skip)]
    pub auth: Option<Value>,
    pub auth_token_field: String,
    pub events: EventNames,
    pub templates: Templates,
    pub fields: Fields,
    /// Send chat text as a binary attachment (BINARY_EVENT) instead of a string.
    pub binary_text: bool,
    /// Who accounts deliveries: the server's per-room `seq` (v1), or the
    /// generator itself, for servers that echo no `seq`/`ts` (docs/metrics.md).
    pub accounting: Accounting,
    /// With generator accounting: the server sends a chat back to its sender too.
    pub echo_to_sender: bool,
}

/// How deliveries are accounted (see docs/metrics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Accounting {
    /// From the server's per-room seq (protocol v1 semantics).
    #[default]
    Seq,
    /// From bench's own ids and membership knowledge.
    Generator,
}

impl Default for SocketIoOptions {
    fn default() -> Self {
        Self {
            namespace: "/".into(),
            transport: Transport::default(),
            auth: None,
            auth_token_field: "token".into(),
            events: EventNames::default(),
            templates: Templates::default(),
            fields: Fields::default(),
            binary_text: false,
            accounting: Accounting::Seq,
            echo_to_sender: false,
        }
    }
}

impl From<crate::scenario::shapes::KeyError> for OptionError {
    fn from(e: crate::scenario::shapes::KeyError) -> Self {
        Self {
            key: e.key,
            why: e.why,
        }
    }
}

/// A bad option value, with the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[target.socketio] {key}: {why}")]
pub struct OptionError {
    /// Relative to `[target.socketio]`, e.g. `events.chat`.
    pub key: String,
    pub why: String,
}

impl SocketIoOptions {
    pub fn validate(&self) -> Result<(), OptionError> {
        if !self.namespace.starts_with('/') || self.namespace.contains(',') {
            return Err(OptionError {
                key: "namespace".into(),
                why: format!(
                    "must start with `/` and contain no `,`, got {:?}",
                    self.namespace
                ),
            });
        }
        if let Some(auth) = &self.auth {
            if !auth.is_object() {
                return Err(OptionError {
                    key: "auth".into(),
                    why: "must be a table (the Socket.IO auth object)".into(),
                });
            }
        }
        let e = &self.events;
        for (key, name) in [
            ("events.join", &e.join),
            ("events.leave", &e.leave),
            ("events.chat", &e.chat),
            ("events.typing", &e.typing),
            ("events.resume", &e.resume),
            ("events.ping", &e.ping),
            ("events.presence", &e.presence),
            ("events.delivery", e.delivery.as_ref().unwrap_or(&e.chat)),
        ] {
            // Socket.IO reserves these on the client side.
            if name.is_empty()
                || ["connect", "connect_error", "disconnect", "disconnecting"]
                    .contains(&name.as_str())
            {
                return Err(OptionError {
                    key: key.into(),
                    why: format!("{name:?} is empty or reserved by Socket.IO"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let mut o = SocketIoOptions {
            namespace: "chat".into(),
            ..SocketIoOptions::default()
        };
        assert_eq!(o.validate().unwrap_err().key, "namespace");
        o.namespace = "/chat".into();
        o.events.chat = "disconnect".into();
        assert_eq!(o.validate().unwrap_err().key, "events.chat");
        o.events.chat = "message".into();
        assert!(o.validate().is_ok());
    }
}

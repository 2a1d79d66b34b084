//! What a scenario says about a raw JSON-over-WebSocket server
//! (`protocol = "json"`, `[target.json]`): outgoing templates, incoming
//! matchers (a value at a JSON pointer), extractors (JSON pointers),
//! heartbeat and the generator-side accounting options. Part of the plan,
//! so the scenario owns them; `dialect::json` applies them. Templates,
//! pointers and matchers are the shared machinery of [`super::shapes`],
//! also used by `[target.socketio]`. Keys: docs/json.md.

mod toml;

pub use self::toml::TOP;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::shapes::Matcher;

/// Outgoing frame templates; `None` means "never sent".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonTemplates {
    /// Sent first, right after the upgrade (e.g. `{type = "auth", token = "{token}"}`).
    pub hello: Option<Value>,
    pub join: Option<Value>,
    pub leave: Option<Value>,
    pub chat: Value,
    pub typing: Option<Value>,
    /// The client's application-level ping.
    pub ping: Option<Value>,
    /// The reply to a server ping (`match.ping`).
    pub pong: Option<Value>,
}

/// How each kind of incoming frame is recognised; tried in this order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonMatchers {
    pub welcome: Option<Matcher>,
    pub joined: Option<Matcher>,
    pub ack: Option<Matcher>,
    pub chat: Matcher,
    pub presence: Option<Matcher>,
    pub error: Option<Matcher>,
    /// A server ping, answered with `templates.pong`.
    pub ping: Option<Matcher>,
    /// The answer to our `templates.ping`.
    pub pong: Option<Matcher>,
}

/// JSON pointers read from matched frames; each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JsonExtractors {
    pub room: Option<String>,
    pub text: Option<String>,
    pub id: Option<String>,
    pub sender: Option<String>,
    pub seq: Option<String>,
    pub timestamp: Option<String>,
    /// The error code of an `error` frame.
    pub error: Option<String>,
}

/// Who receives a chat, as the server delivers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// Members of the chat's room (joined with `templates.join`).
    #[default]
    Rooms,
    /// Every connected client: a broadcast server with no rooms
    /// (`[rooms] count = 1`, no join frames).
    All,
}

/// A plain-text heartbeat: `ping` sent, `pong` expected back as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextPing {
    pub ping: String,
    pub pong: String,
}

/// How `ping_interval` pings are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Heartbeat {
    /// `templates.ping`, answered by a frame matching `match.pong`.
    #[default]
    Json,
    /// RFC 6455 ping control frames; RTT from the pong.
    Websocket,
    /// Plain text frames (e.g. `ping` → `pong`).
    Text(TextPing),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonOptions {
    pub templates: JsonTemplates,
    #[serde(rename = "match")]
    pub matchers: JsonMatchers,
    pub extract: JsonExtractors,
    pub membership: Membership,
    /// The server sends a chat back to its sender as well.
    pub echo_to_sender: bool,
    pub heartbeat: Heartbeat,
    /// How long a sent chat waits for its deliveries before the missing
    /// ones count as lost (the generator's in-flight window).
    #[serde(serialize_with = "super::plan::human_duration")]
    pub delivery_window: Duration,
}

/// Default in-flight window for generator-side accounting.
pub const DEFAULT_DELIVERY_WINDOW: Duration = Duration::from_secs(10);

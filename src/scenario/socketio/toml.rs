//! `[target.socketio]` → [`SocketIoOptions`]: every key checked, unknown
//! keys named with the nearest valid one. The scenario loader keeps the raw
//! table as a `toml::Value` and calls [`SocketIoOptions::from_toml`]; the
//! error's `key` is relative to `[target.socketio]` (e.g. `events.chat`), so
//! the loader can locate it in the file. Keys: docs/socketio.md.

use toml::Value;

use super::{Accounting, OptionError, SocketIoOptions, Transport};
use crate::scenario::shapes::{self, boolean, check_template, string, to_json, PLACEHOLDERS};

fn err(key: impl Into<String>, why: impl Into<String>) -> OptionError {
    shapes::err(key, why).into()
}

fn table<'v>(
    v: &'v Value,
    key: &str,
    allowed: &[&str],
) -> Result<&'v toml::map::Map<String, Value>, OptionError> {
    Ok(shapes::table(v, key, allowed)?)
}

/// The keys of `[target.socketio]` itself (docs are checked against them).
pub const TOP: &[&str] = &[
    "namespace",
    "transport",
    "auth",
    "auth_token_field",
    "binary_text",
    "events",
    "templates",
    "fields",
    "accounting",
    "echo_to_sender",
];
const EVENTS: &[&str] = &[
    "join", "leave", "chat", "typing", "resume", "ping", "presence", "delivery",
];
const TEMPLATES: &[&str] = &["join", "leave", "chat", "typing", "resume", "ping"];
const FIELDS: &[&str] = &[
    "room", "seq", "from", "id", "ts", "members", "user", "status", "error", "text",
];
const TRANSPORTS: &[&str] = &["websocket", "polling", "polling_upgrade"];

impl SocketIoOptions {
    /// Builds and validates options from the `[target.socketio]` table.
    pub fn from_toml(v: &Value) -> Result<Self, OptionError> {
        let t = table(v, "", TOP)?;
        let mut o = SocketIoOptions::default();
        if let Some(v) = t.get("namespace") {
            o.namespace = string(v, "namespace")?;
        }
        if let Some(v) = t.get("accounting") {
            o.accounting = match shapes::choice(v, "accounting", &["seq", "generator"])? {
                "seq" => Accounting::Seq,
                _ => Accounting::Generator,
            };
        }
        if let Some(v) = t.get("echo_to_sender") {
            o.echo_to_sender = boolean(v, "echo_to_sender")?;
        }
        if let Some(v) = t.get("transport") {
            let s = string(v, "transport")?;
            o.transport = match s.as_str() {
                "websocket" => Transport::Websocket,
                "polling" => Transport::Polling,
                "polling_upgrade" => Transport::PollingUpgrade,
                other => {
                    return Err(err(
                        "transport",
                        format!(
                            "unknown transport \"{other}\"{}",
                            crate::scenario::diag::value_suggestion(other, TRANSPORTS)
                        ),
                    ))
                }
            };
        }
        if let Some(v) = t.get("auth") {
            if !v.is_table() {
                return Err(err("auth", "must be a table (the Socket.IO auth object)"));
            }
            o.auth = Some(to_json(v));
        }
        if let Some(v) = t.get("auth_token_field") {
            o.auth_token_field = string(v, "auth_token_field")?;
        }
        if let Some(v) = t.get("binary_text") {
            o.binary_text = boolean(v, "binary_text")?;
        }
        if let Some(v) = t.get("events") {
            for (k, v) in table(v, "events", EVENTS)? {
                let key = format!("events.{k}");
                let name = string(v, &key)?;
                let e = &mut o.events;
                if k == "delivery" {
                    e.delivery = Some(name);
                    continue;
                }
                let slot = match k.as_str() {
                    "join" => &mut e.join,
                    "leave" => &mut e.leave,
                    "chat" => &mut e.chat,
                    "typing" => &mut e.typing,
                    "resume" => &mut e.resume,
                    "ping" => &mut e.ping,
                    _ => &mut e.presence,
                };
                *slot = name;
            }
        }
        if let Some(v) = t.get("templates") {
            for (k, v) in table(v, "templates", TEMPLATES)? {
                let tp = &mut o.templates;
                let slot = match k.as_str() {
                    "join" => &mut tp.join,
                    "leave" => &mut tp.leave,
                    "chat" => &mut tp.chat,
                    "typing" => &mut tp.typing,
                    "resume" => &mut tp.resume,
                    _ => &mut tp.ping,
                };
                let value = to_json(v);
                check_template(&value, &format!("templates.{k}"), PLACEHOLDERS)?;
                *slot = value;
            }
        }
        if let Some(v) = t.get("fields") {
            for (k, v) in table(v, "fields", FIELDS)? {
                let key = format!("fields.{k}");
                let name = string(v, &key)?;
                let f = &mut o.fields;
                let slot = match k.as_str() {
                    "room" => &mut f.room,
                    "seq" => &mut f.seq,
                    "from" => &mut f.from,
                    "id" => &mut f.id,
                    "ts" => &mut f.ts,
                    "members" => &mut f.members,
                    "user" => &mut f.user,
                    "status" => &mut f.status,
                    "text" => &mut f.text,
                    _ => &mut f.error,
                };
                *slot = name;
            }
        }
        o.validate()?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<SocketIoOptions, OptionError> {
        let v: Value = toml::from_str(text).unwrap();
        SocketIoOptions::from_toml(&v)
    }

    #[test]
    fn every_key_is_understood() {
        let o = parse(
            r#"
namespace = "/chat"
transport = "polling_upgrade"
auth = { app = "x", n = 2 }
auth_token_field = "jwt"
binary_text = true
[events]
chat = "message"
presence = "status"
[templates]
chat = { body = "{text}", at = "{ts}", room = "{room}" }
[fields]
seq = "n"
ts = "at"
"#,
        )
        .unwrap();
        assert_eq!(o.namespace, "/chat");
        assert_eq!(o.transport, Transport::PollingUpgrade);
        assert_eq!(o.auth, Some(json!({"app": "x", "n": 2})));
        assert_eq!(o.auth_token_field, "jwt");
        assert!(o.binary_text);
        assert_eq!(
            (o.events.chat.as_str(), o.events.join.as_str()),
            ("message", "join")
        );
        assert_eq!(o.events.presence, "status");
        assert_eq!(
            o.templates.chat,
            json!({"body":"{text}","at":"{ts}","room":"{room}"})
        );
        assert_eq!((o.fields.seq.as_str(), o.fields.ts.as_str()), ("n", "at"));
        assert_eq!(parse("").unwrap(), SocketIoOptions::default());
    }

    #[test]
    fn mistakes_name_the_key_and_suggest() {
        let e = parse(r#"namepsace = "/x""#).unwrap_err();
        assert_eq!(e.key, "namepsace");
        assert!(e.why.contains("did you mean `namespace`"), "{e}");
        let e = parse("[events]\nchta = \"x\"").unwrap_err();
        assert_eq!(e.key, "events.chta");
        assert!(e.why.contains("`chat`"), "{e}");
        let e = parse(r#"transport = "pollng""#).unwrap_err();
        assert!(e.why.contains(r#"did you mean "polling""#), "{e}");
        let e = parse(r#"namespace = "chat""#).unwrap_err();
        assert_eq!(e.key, "namespace");
        let e = parse("[events]\nchat = 3").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.why.as_str()),
            ("events.chat", "must be a string")
        );
        let e = parse(r#"auth = "token""#).unwrap_err();
        assert_eq!(e.key, "auth");
    }
}

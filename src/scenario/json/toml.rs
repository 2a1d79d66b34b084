//! `[target.json]` → [`JsonOptions`]: every key checked, unknown keys
//! named with the nearest valid one, templates checked for unknown
//! placeholders and pointers for RFC 6901 syntax. The error's `key` is
//! relative to `[target.json]` so the loader can locate it in the file.

use toml::Value;

use super::{
    Heartbeat, JsonExtractors, JsonMatchers, JsonOptions, JsonTemplates, Membership, TextPing,
    DEFAULT_DELIVERY_WINDOW,
};
use crate::scenario::shapes::{
    boolean, check_pointer, check_template, choice, err, string, table, to_json, uses, KeyError,
    Matcher, PLACEHOLDERS,
};

/// The keys of `[target.json]` itself (docs are checked against them).
pub const TOP: &[&str] = &[
    "templates",
    "match",
    "extract",
    "membership",
    "echo_to_sender",
    "heartbeat",
    "ping_text",
    "pong_text",
    "delivery_window",
];
const TEMPLATES: &[&str] = &["hello", "join", "leave", "chat", "typing", "ping", "pong"];
const MATCHERS: &[&str] = &[
    "welcome", "joined", "ack", "chat", "presence", "error", "ping", "pong",
];
const EXTRACTORS: &[&str] = &["room", "text", "id", "sender", "seq", "timestamp", "error"];

impl JsonOptions {
    /// Builds and validates options from the `[target.json]` table.
    pub fn from_toml(v: &Value) -> Result<Self, KeyError> {
        let t = table(v, "", TOP)?;
        let templates = templates(t.get("templates"))?;
        let matchers = matchers(t.get("match"))?;
        let extract = extractors(t.get("extract"))?;
        let membership = match t.get("membership") {
            None => Membership::Rooms,
            Some(v) => match choice(v, "membership", &["rooms", "all"])? {
                "rooms" => Membership::Rooms,
                _ => Membership::All,
            },
        };
        let echo_to_sender = t
            .get("echo_to_sender")
            .map(|v| boolean(v, "echo_to_sender"))
            .transpose()?
            .unwrap_or(false);
        let heartbeat = heartbeat(t)?;
        let delivery_window = match t.get("delivery_window") {
            None => DEFAULT_DELIVERY_WINDOW,
            Some(v) => {
                let s = string(v, "delivery_window")?;
                let d = wire::units::parse_duration(&s)
                    .map_err(|e| err("delivery_window", e.to_string()))?;
                if d.is_zero() {
                    return Err(err("delivery_window", "must be longer than 0 s"));
                }
                d
            }
        };
        let o = JsonOptions {
            templates,
            matchers,
            extract,
            membership,
            echo_to_sender,
            heartbeat,
            delivery_window,
        };
        o.cross_check()?;
        Ok(o)
    }

    /// Combinations that would make a run measure nothing.
    fn cross_check(&self) -> Result<(), KeyError> {
        let chat = &self.templates.chat;
        let (has_text, has_id) = (uses(chat, "text"), uses(chat, "id"));
        if !has_text && !has_id {
            return Err(err(
                "templates.chat",
                "the chat template must carry `{text}` or `{id}`: bench finds its message id there to account deliveries",
            ));
        }
        if !has_text && self.extract.id.is_none() {
            return Err(err(
                "templates.chat",
                "with only `{id}` in the chat template, set `extract.id` to the pointer the server echoes it at (or put `{text}` in the template)",
            ));
        }
        match self.membership {
            Membership::Rooms if self.templates.join.is_none() => Err(err(
                "templates.join",
                "missing: with membership = \"rooms\" clients must join their rooms; for a server that broadcasts to every client set membership = \"all\" and [rooms] count = 1",
            )),
            Membership::All if self.templates.join.is_some() || self.templates.leave.is_some() => {
                Err(err(
                    "membership",
                    "membership = \"all\" sends no join or leave; remove templates.join/leave or use membership = \"rooms\"",
                ))
            }
            _ => Ok(()),
        }?;
        if self.matchers.ping.is_some() != self.templates.pong.is_some() {
            return Err(err(
                if self.matchers.ping.is_some() { "templates.pong" } else { "match.ping" },
                "a server ping needs both `match.ping` (to recognise it) and `templates.pong` (the reply)",
            ));
        }
        Ok(())
    }

    /// Whether the hello frame carries the first-message auth token.
    pub fn hello_has_token(&self) -> bool {
        self.templates
            .hello
            .as_ref()
            .is_some_and(|h| uses(h, "token"))
    }
}

fn templates(v: Option<&Value>) -> Result<JsonTemplates, KeyError> {
    let Some(v) = v else {
        return Err(err(
            "templates.chat",
            "missing: `[target.json.templates] chat = { ... }` says how a chat message is sent",
        ));
    };
    let mut t = JsonTemplates::default();
    let mut chat = None;
    for (k, v) in table(v, "templates", TEMPLATES)? {
        let key = format!("templates.{k}");
        let value = to_json(v);
        check_template(&value, &key, PLACEHOLDERS)?;
        match k.as_str() {
            "hello" => t.hello = Some(value),
            "join" => t.join = Some(value),
            "leave" => t.leave = Some(value),
            "typing" => t.typing = Some(value),
            "ping" => t.ping = Some(value),
            "pong" => t.pong = Some(value),
            _ => chat = Some(value),
        }
    }
    t.chat = chat.ok_or_else(|| err("templates.chat", "missing: say how a chat message is sent, e.g. chat = { type = \"message\", text = \"{text}\" }"))?;
    Ok(t)
}

fn matchers(v: Option<&Value>) -> Result<JsonMatchers, KeyError> {
    let missing = || {
        err(
            "match.chat",
            "missing: say how a chat delivery is recognised, e.g. chat = { \"/type\" = \"broadcast\" }",
        )
    };
    let Some(v) = v else {
        return Err(missing());
    };
    let mut m = JsonMatchers::default();
    let mut chat = None;
    for (k, v) in table(v, "match", MATCHERS)? {
        let matcher = Some(Matcher::from_toml(v, &format!("match.{k}"))?);
        match k.as_str() {
            "welcome" => m.welcome = matcher,
            "joined" => m.joined = matcher,
            "ack" => m.ack = matcher,
            "presence" => m.presence = matcher,
            "error" => m.error = matcher,
            "ping" => m.ping = matcher,
            "pong" => m.pong = matcher,
            _ => chat = matcher,
        }
    }
    m.chat = chat.ok_or_else(missing)?;
    Ok(m)
}

fn extractors(v: Option<&Value>) -> Result<JsonExtractors, KeyError> {
    let mut e = JsonExtractors::default();
    let Some(v) = v else {
        return Ok(e);
    };
    for (k, v) in table(v, "extract", EXTRACTORS)? {
        let key = format!("extract.{k}");
        let p = string(v, &key)?;
        check_pointer(&p, &key)?;
        let slot = match k.as_str() {
            "room" => &mut e.room,
            "text" => &mut e.text,
            "id" => &mut e.id,
            "sender" => &mut e.sender,
            "seq" => &mut e.seq,
            "timestamp" => &mut e.timestamp,
            _ => &mut e.error,
        };
        *slot = Some(p);
    }
    Ok(e)
}

fn heartbeat(t: &toml::map::Map<String, Value>) -> Result<Heartbeat, KeyError> {
    let text = |k: &str| t.get(k).map(|v| string(v, k)).transpose();
    let (ping, pong) = (text("ping_text")?, text("pong_text")?);
    let kind = t
        .get("heartbeat")
        .map(|v| choice(v, "heartbeat", &["json", "websocket", "text"]))
        .transpose()?;
    match (kind, ping, pong) {
        (Some("text") | None, Some(ping), Some(pong)) => {
            Ok(Heartbeat::Text(TextPing { ping, pong }))
        }
        (Some("text"), _, _) | (None, Some(_), None) | (None, None, Some(_)) => Err(err(
            "heartbeat",
            "a text heartbeat needs both `ping_text` (sent) and `pong_text` (the server's answer)",
        )),
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(err(
            "ping_text",
            "`ping_text`/`pong_text` only apply with heartbeat = \"text\"",
        )),
        (Some("websocket"), None, None) => Ok(Heartbeat::Websocket),
        _ => Ok(Heartbeat::Json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<JsonOptions, KeyError> {
        let v: Value = ::toml::from_str(text).unwrap();
        JsonOptions::from_toml(&v)
    }

    const BROADCAST: &str = r#"
membership = "all"
[templates]
chat = { type = "message", message = "{text}", at = "{ts_ms}" }
[match]
chat = { "/type" = "broadcast" }
welcome = { "/type" = "welcome" }
[extract]
text = "/message"
timestamp = "/timestamp"
"#;

    #[test]
    fn a_broadcast_server_parses() {
        let o = parse(BROADCAST).unwrap();
        assert_eq!(o.membership, Membership::All);
        assert_eq!(o.templates.chat["message"], json!("{text}"));
        assert_eq!(
            o.matchers.chat.fields[0],
            ("/type".into(), json!("broadcast"))
        );
        assert_eq!(o.extract.text.as_deref(), Some("/message"));
        assert_eq!(o.heartbeat, Heartbeat::Json);
        assert_eq!(o.delivery_window, DEFAULT_DELIVERY_WINDOW);
        assert!(!o.echo_to_sender);
    }

    #[test]
    fn heartbeats() {
        let o = parse(&format!("heartbeat = \"websocket\"\n{BROADCAST}")).unwrap();
        assert_eq!(o.heartbeat, Heartbeat::Websocket);
        let o = parse(&format!(
            "ping_text = \"ping\"\npong_text = \"pong\"\n{BROADCAST}"
        ))
        .unwrap();
        assert_eq!(
            o.heartbeat,
            Heartbeat::Text(TextPing {
                ping: "ping".into(),
                pong: "pong".into()
            })
        );
        assert_eq!(
            parse(&format!("ping_text = \"ping\"\n{BROADCAST}"))
                .unwrap_err()
                .key,
            "heartbeat"
        );
        let e = parse(&format!("heartbeat = \"websockte\"\n{BROADCAST}")).unwrap_err();
        assert!(e.why.contains("did you mean \"websocket\""), "{}", e.why);
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("[templates]\nchat = { t = \"{txt}\" }\n[match]\nchat = { \"/t\" = 1 }", "templates.chat", "did you mean `{text}`"),
            ("[templates]\nchat = { t = \"{text}\" }\njoin = { r = \"{room}\" }\n[match]\nchat = {}", "match.chat", "can never tell"),
            ("[templates]\nchat = { t = \"{text}\" }\njoin = { r = \"{room}\" }\n[match]\nchat = { \"/t\" = 1 }\n[extract]\nroom = \"room\"", "extract.room", "\"/room\""),
            ("[templates]\nchat = { t = \"{text}\" }\n[match]\nchat = { \"/t\" = 1 }", "templates.join", "membership = \"all\""),
            ("[templates]\nchat = { t = \"hi\" }\n[match]\nchat = { \"/t\" = 1 }", "templates.chat", "`{text}` or `{id}`"),
            ("[templates]\nchat = { t = \"{text}\" }\n", "match.chat", "missing"),
            ("[templats]\nchat = 1", "templats", "did you mean `templates`"),
            ("[templates]\nchat = { t = \"{text}\" }\njoin = 1\n[match]\nchat = { \"/t\" = 1 }\nping = { \"/t\" = \"ping\" }", "templates.pong", "server ping"),
            ("delivery_window = \"0s\"\n[templates]\nchat = { t = \"{text}\" }\njoin = 1\n[match]\nchat = { \"/t\" = 1 }", "delivery_window", "longer"),
        ];
        for (text, key, why) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.why.contains(why), "{text}: {e}");
        }
    }
}

//! `bench probe URL`: from "I have a URL" to a running scenario. Connects
//! once (the socket side is `engine::link::probe`), optionally sends a
//! message or two (`--send`), prints the first frames the server sends and
//! a starter `[target.json]` table with matchers and extractors guessed
//! from them. The guess is a start, not a verdict: every line says what it
//! was guessed from, and the output is valid TOML to paste into a scenario.

use std::fmt::Write as _;
use std::net::ToSocketAddrs;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::engine::link::probe::{first_frames, Frame, ProbeSpec};
use crate::exit::{Outcome, UsageError};
use crate::scenario::units::parse_ws_url;

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The server's WebSocket URL, e.g. ws://127.0.0.1:8080/chat
    pub url: String,
    /// A text frame to send right after connecting (repeatable), e.g. a
    /// chat message, so the server's broadcast shape can be guessed.
    #[arg(long = "send", value_name = "TEXT")]
    pub send: Vec<String>,
    /// Stop after this many frames.
    #[arg(long, default_value_t = 20)]
    pub frames: usize,
    /// Stop when no frame came for this long.
    #[arg(long, default_value = "2s")]
    pub wait: String,
}

/// Keys that usually say what kind of message a frame is.
const DISCRIMINATORS: &[&str] = &["type", "event", "action", "kind", "op", "cmd"];
const FRAME_SHOWN: usize = 200;

pub fn execute(args: ProbeArgs) -> anyhow::Result<Outcome> {
    let url = parse_ws_url(&args.url)
        .map_err(|why| anyhow::Error::new(UsageError(format!("URL {}: {why}", args.url))))?;
    let wait = wire::units::parse_duration(&args.wait)
        .map_err(|e| anyhow::Error::new(UsageError(format!("--wait: {e}"))))?;
    if url.secure {
        return Err(anyhow::Error::new(UsageError(
            "wss:// is not supported by bench".into(),
        )));
    }
    let host = format!("{}:{}", url.host, url.port);
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("resolve {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))?;
    let target = if url.path.is_empty() {
        "/".to_owned()
    } else {
        url.path.clone()
    };
    let spec = ProbeSpec {
        addr,
        host: &host,
        target: &target,
        send: &args.send,
        max_frames: args.frames.max(1),
        idle: wait.max(Duration::from_millis(100)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let frames = rt.block_on(first_frames(&spec))?;
    print!("{}", starter(&args.url, &frames, &args.send));
    Ok(Outcome::Pass)
}

/// A frame's kind: (pointer, value) of its discriminator key, if any.
fn discriminator(v: &Value) -> Option<(String, Value)> {
    let o = v.as_object()?;
    DISCRIMINATORS.iter().find_map(|k| {
        o.get(*k)
            .filter(|v| v.is_string())
            .map(|v| (format!("/{k}"), v.clone()))
    })
}

/// Every string leaf as (pointer, value).
fn leaves(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        Value::Object(m) => {
            for (k, v) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                leaves(v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A timestamp-looking field of `v`: an RFC 3339 string or a key named like one.
fn timestamp_pointer(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    o.iter().find_map(|(k, val)| {
        let named = [
            "timestamp",
            "ts",
            "time",
            "sentAt",
            "sent_at",
            "createdAt",
            "created_at",
            "date",
        ]
        .contains(&k.as_str());
        let iso = val
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
        (named || iso).then(|| format!("/{k}"))
    })
}

/// JSON as an inline TOML value (JSON string escapes are valid TOML ones).
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// A matcher line for a frame kind.
fn matcher(name: &str, (p, v): &(String, Value)) -> String {
    format!(
        "{name} = {{ {} = {} }}\n",
        Value::String(p.clone()),
        inline(v)
    )
}

/// What a kind name suggests it is.
fn role_of(kind: &str) -> Option<&'static str> {
    let k = kind.to_ascii_lowercase();
    [
        ("welcome", "welcome"),
        ("hello", "welcome"),
        ("connected", "welcome"),
        ("join", "joined"),
        ("ack", "ack"),
        ("sent", "ack"),
        ("error", "error"),
        ("presence", "presence"),
        ("pong", "pong"),
        ("ping", "ping"),
    ]
    .iter()
    .find(|(needle, _)| k.contains(needle))
    .map(|(_, role)| *role)
}

/// The frames as comments, then a starter `[target.json]` guessed from them.
pub fn starter(url: &str, frames: &[Frame], sent: &[String]) -> String {
    let mut out = format!("# bench probe {url}: {} frame(s) received\n", frames.len());
    let parsed: Vec<Option<Value>> = frames
        .iter()
        .map(|f| match f {
            Frame::Text(t) => serde_json::from_str(t).ok(),
            Frame::Binary(_) => None,
        })
        .collect();
    for (f, v) in frames.iter().zip(&parsed) {
        let shown = match f {
            Frame::Text(t) if t.len() > FRAME_SHOWN => {
                let mut end = FRAME_SHOWN;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &t[..end])
            }
            Frame::Text(t) => t.clone(),
            Frame::Binary(n) => format!("<{n} bytes of binary>"),
        };
        let note = if v.is_some() { "" } else { "  (not JSON)" };
        let _ = writeln!(out, "#   < {}{note}", shown.replace('\n', " "));
    }
    // The strings we sent, to find our message in what came back.
    let sent_json: Vec<Value> = sent
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    let mut sent_leaves = Vec::new();
    for v in &sent_json {
        leaves(v, "", &mut sent_leaves);
    }
    sent_leaves.retain(|(_, s)| s.len() >= 3 && !DISCRIMINATORS.iter().any(|d| s == d));
    let mut chat: Option<(usize, String, String)> = None; // (frame, pointer, our sent pointer)
    for (i, v) in parsed.iter().enumerate() {
        let Some(v) = v else { continue };
        let mut got = Vec::new();
        leaves(v, "", &mut got);
        let hit = got.iter().find_map(|(p, s)| {
            sent_leaves
                .iter()
                .find(|(_, mine)| s.contains(mine.as_str()))
                .map(|(mp, _)| (p.clone(), mp.clone()))
        });
        if let Some((p, mine)) = hit {
            chat = Some((i, p, mine));
            break;
        }
    }
    out.push_str("\n[target.json]\n");
    let chat_frame = chat.as_ref().and_then(|(i, _, _)| parsed[*i].as_ref());
    let has_room = chat_frame
        .and_then(Value::as_object)
        .is_some_and(|o| o.contains_key("room") || o.contains_key("roomId"));
    if has_room {
        out.push_str("membership = \"rooms\"   # the chat frame names a room\n");
    } else {
        out.push_str("# No room in the chat frame: a broadcast to every client; set [rooms] count = 1, per_client = 1.\nmembership = \"all\"\n");
    }
    if chat.is_some() {
        out.push_str("# Our own message came back to us.\necho_to_sender = true\n");
    }
    out.push_str("\n[target.json.templates]\n");
    match (&chat, sent_json.first()) {
        (Some((_, _, mine)), _) => {
            let mut t = sent_json
                .iter()
                .find(|v| v.pointer(mine).is_some())
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(slot) = t.pointer_mut(mine) {
                *slot = Value::String("{text}".into());
            }
            for key in ["/room", "/roomId"] {
                if let Some(slot) = t.pointer_mut(key) {
                    *slot = Value::String("{room}".into());
                }
            }
            let _ = writeln!(out, "# From --send, with the echoed text as {{text}}.\nchat = {}", inline(&t));
        }
        (None, Some(v)) => {
            let _ = writeln!(out, "# Your --send did not come back; edit this to carry {{text}}.\nchat = {}", inline(v));
        }
        (None, None) => out.push_str(
            "# Run again with --send '<a chat message as your client sends it>' to guess this.\nchat = { type = \"message\", text = \"{text}\" }\n",
        ),
    }
    if has_room {
        out.push_str("join = { type = \"join\", room = \"{room}\" }   # a guess: how does your client join?\n");
    }
    out.push_str("\n[target.json.match]\n");
    let mut seen_kinds: Vec<Value> = Vec::new();
    let mut roles: Vec<&str> = Vec::new();
    match chat
        .as_ref()
        .and_then(|(i, _, _)| parsed[*i].as_ref())
        .and_then(discriminator)
    {
        Some(d) => {
            out.push_str(&matcher("chat", &d));
            seen_kinds.push(d.1.clone());
            roles.push("chat");
        }
        None => out.push_str("chat = { \"/type\" = \"FILL ME\" }   # no chat delivery seen\n"),
    }
    for (i, v) in parsed.iter().enumerate() {
        let Some(d) = v.as_ref().and_then(discriminator) else {
            continue;
        };
        if seen_kinds.contains(&d.1) {
            continue;
        }
        seen_kinds.push(d.1.clone());
        let kind = d.1.as_str().unwrap_or_default();
        let role = role_of(kind).or((i == 0).then_some("welcome"));
        match role.filter(|r| !roles.contains(r)) {
            Some(r) => {
                roles.push(r);
                out.push_str(&matcher(r, &d));
            }
            None => {
                let _ = write!(out, "# seen, not matched: {}", matcher("?", &d));
            }
        }
    }
    out.push_str("\n[target.json.extract]\n");
    match &chat {
        Some((_, p, _)) => {
            let _ = writeln!(out, "text = {}", Value::String(p.clone()));
        }
        None => out.push_str("# text = \"/message\"\n"),
    }
    if has_room {
        let p = if chat_frame.is_some_and(|f| f.get("room").is_some()) {
            "/room"
        } else {
            "/roomId"
        };
        let _ = writeln!(out, "room = \"{p}\"");
    }
    if let Some(p) = chat_frame.and_then(timestamp_pointer) {
        let _ = writeln!(out, "timestamp = {}", Value::String(p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::json::JsonOptions;

    #[test]
    fn a_broadcast_server_is_guessed() {
        let frames = [
            Frame::Text(r#"{"type":"welcome","message":"hi","timestamp":"2024-01-01T00:00:00.000Z"}"#.into()),
            Frame::Text(r#"{"type":"broadcast","message":"hello there","timestamp":"2024-01-01T00:00:01.000Z"}"#.into()),
            Frame::Text("not json".into()),
            Frame::Binary(3),
        ];
        let sent = [r#"{"type":"message","message":"hello there"}"#.to_owned()];
        let s = starter("ws://x/", &frames, &sent);
        assert!(s.contains("#   < not json  (not JSON)"), "{s}");
        assert!(s.contains("#   < <3 bytes of binary>"), "{s}");
        assert!(s.contains(r#"chat = { "/type" = "broadcast" }"#), "{s}");
        assert!(s.contains(r#"welcome = { "/type" = "welcome" }"#), "{s}");
        assert!(
            s.contains(r#"chat = { "message" = "{text}", "type" = "message" }"#),
            "{s}"
        );
        assert!(
            s.contains("text = \"/message\"") && s.contains("timestamp = \"/timestamp\""),
            "{s}"
        );
        assert!(
            s.contains("membership = \"all\"") && s.contains("echo_to_sender = true"),
            "{s}"
        );
        // The starter is a valid [target.json].
        let doc: toml::Value = toml::from_str(&s).unwrap();
        JsonOptions::from_toml(&doc["target"]["json"]).unwrap();
    }

    #[test]
    fn nothing_sent_still_gives_valid_toml() {
        let s = starter(
            "ws://x/",
            &[Frame::Text(r#"{"event":"hello"}"#.into())],
            &[],
        );
        assert!(s.contains(r#"welcome = { "/event" = "hello" }"#), "{s}");
        let doc: toml::Value = toml::from_str(&s).unwrap();
        assert!(doc["target"]["json"]["match"]["chat"].is_table());
    }
}

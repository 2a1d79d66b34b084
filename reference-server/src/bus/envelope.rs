//! The bus's own message format (node to node through Redis; no client
//! ever sees it), encoded and decoded only here.
//!
//! `b1 c SEQ JSON` is a chat: the Lua script in [`super::script`] prefixes
//! the `b1 c ` and the seq it assigned to the JSON body built by
//! [`chat_body`]. `b1 p on JSON` / `b1 p off JSON` is a room-wide presence
//! change ([`presence_event`]; also built by the REAP script). Anything that does not start with `b1 ` is from another
//! bus version (or garbage) and is dropped and counted, never delivered.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Version tag every message of this bus starts with.
pub const VERSION: &str = "b1";

/// A chat's body as published: origin node and connection (so the origin
/// node skips the sender), then the client's fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChatBody<'a> {
    #[serde(borrow)]
    pub n: Cow<'a, str>,
    pub c: u64,
    #[serde(borrow)]
    pub f: Cow<'a, str>,
    #[serde(borrow)]
    pub i: &'a RawValue,
    #[serde(borrow)]
    pub x: Cow<'a, str>,
    #[serde(borrow)]
    pub t: &'a RawValue,
}

/// Encodes the JSON body the script publishes (after `b1 c SEQ `).
pub fn chat_body(body: &ChatBody<'_>) -> String {
    // Serializing borrowed strings and raw JSON cannot fail.
    serde_json::to_string(body).unwrap_or_default()
}

/// A presence change's body: origin node and connection (0 = none, from
/// a reaped node) and the user.
#[derive(Debug, Serialize, Deserialize)]
pub struct PresenceBody<'a> {
    #[serde(borrow)]
    pub n: Cow<'a, str>,
    pub c: u64,
    #[serde(borrow)]
    pub u: Cow<'a, str>,
}

/// The whole `b1 p on|off JSON` message.
pub fn presence_event(online: bool, node: &str, conn: u64, user: &str) -> String {
    let body = PresenceBody {
        n: node.into(),
        c: conn,
        u: user.into(),
    };
    let word = if online { "on" } else { "off" };
    format!(
        "{VERSION} p {word} {}",
        serde_json::to_string(&body).unwrap_or_default()
    )
}

/// A decoded bus message.
#[derive(Debug)]
pub enum Decoded<'a> {
    Chat {
        seq: u64,
        body: ChatBody<'a>,
    },
    Presence {
        online: bool,
        body: PresenceBody<'a>,
    },
}

/// Why a message was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not `b1 ...`: another bus version or not ours at all.
    ForeignVersion,
    /// `b1 ...` but not well formed.
    Malformed,
}

pub fn decode(payload: &[u8]) -> Result<Decoded<'_>, Reject> {
    let text = std::str::from_utf8(payload).map_err(|_| Reject::Malformed)?;
    let Some(rest) = text.strip_prefix(VERSION).and_then(|r| r.strip_prefix(' ')) else {
        return Err(Reject::ForeignVersion);
    };
    let (kind, rest) = rest.split_once(' ').ok_or(Reject::Malformed)?;
    match kind {
        "c" => {
            let (seq, json) = rest.split_once(' ').ok_or(Reject::Malformed)?;
            let seq: u64 = seq.parse().map_err(|_| Reject::Malformed)?;
            if seq == 0 {
                return Err(Reject::Malformed);
            }
            let body: ChatBody<'_> = serde_json::from_str(json).map_err(|_| Reject::Malformed)?;
            Ok(Decoded::Chat { seq, body })
        }
        "p" => {
            let (word, json) = rest.split_once(' ').ok_or(Reject::Malformed)?;
            let online = match word {
                "on" => true,
                "off" => false,
                _ => return Err(Reject::Malformed),
            };
            let body = serde_json::from_str(json).map_err(|_| Reject::Malformed)?;
            Ok(Decoded::Presence { online, body })
        }
        _ => Err(Reject::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_chat_and_rejects_the_rest() {
        let id = RawValue::from_string("7".into()).unwrap();
        let ts = RawValue::from_string("1.5".into()).unwrap();
        let body = chat_body(&ChatBody {
            n: "node-a".into(),
            c: 3,
            f: "al\"ice".into(),
            i: &id,
            x: "hi\nthere".into(),
            t: &ts,
        });
        let wire = format!("b1 c 42 {body}");
        let Ok(Decoded::Chat { seq, body }) = decode(wire.as_bytes()) else {
            panic!("not decoded");
        };
        assert_eq!((seq, body.c, body.f.as_ref()), (42, 3, "al\"ice"));
        assert_eq!(
            (body.i.get(), body.t.get(), body.x.as_ref()),
            ("7", "1.5", "hi\nthere")
        );
        let ev = presence_event(false, "n1", 4, "bob");
        let Ok(Decoded::Presence { online, body }) = decode(ev.as_bytes()) else {
            panic!("presence not decoded: {ev}");
        };
        assert_eq!((online, body.c, body.u.as_ref()), (false, 4, "bob"));
        assert_eq!(decode(b"b1 p maybe {}").unwrap_err(), Reject::Malformed);
        assert_eq!(decode(b"b2 c 1 {}").unwrap_err(), Reject::ForeignVersion);
        assert_eq!(decode(b"garbage").unwrap_err(), Reject::ForeignVersion);
        assert_eq!(decode(b"b1 c x {}").unwrap_err(), Reject::Malformed);
        assert_eq!(decode(b"b1 c 0 {}").unwrap_err(), Reject::Malformed);
        assert_eq!(decode(b"b1 c 5 {\"n\":1}").unwrap_err(), Reject::Malformed);
        assert_eq!(decode(b"b1 z").unwrap_err(), Reject::Malformed);
        assert_eq!(
            decode(&[0x62, 0x31, 0x20, 0xff]).unwrap_err(),
            Reject::Malformed
        );
    }
}

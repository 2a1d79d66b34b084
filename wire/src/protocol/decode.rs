//! The one decoder of server messages as a client reads them: every frame
//! of a text message (a `batch` unwrapped in order) as a [`Received`].
//!
//! Two implementations, one meaning: the one-pass scanner in
//! [`super::fast`] covers the hottest frames; anything it declines goes
//! through the full serde parse into [`RawFrame`]. The tests below check
//! that both give the same frames on many generated messages.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::{for_each_server_frame, PresenceStatus, RawFrame};

/// One server frame, normalized for a client. Lenient: fields a client can
/// do without take defaults (`from`, `user` → "", `members`, `replayed` →
/// 0, `complete` → false); ids come as text (a JSON string loses its
/// quotes, a number stays as written).
#[derive(Debug, Clone, PartialEq)]
pub enum Received<'a> {
    /// `instance`: the server process's id (`welcome.instance`), when sent.
    Welcome {
        user: Cow<'a, str>,
        instance: Option<Cow<'a, str>>,
    },
    Joined {
        room: Cow<'a, str>,
        seq: u64,
        members: u64,
    },
    Left {
        room: Cow<'a, str>,
    },
    Ack {
        id: Cow<'a, str>,
        seq: u64,
    },
    /// `ts_us`: the echoed `ts` read by [`parse_ts_us`]; `None` when absent
    /// or not a non-negative number.
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
        /// The server's clock, when it sent one.
        now_us: Option<u64>,
    },
    /// `code` as the server wrote it (`UNKNOWN` when absent).
    Error {
        code: Cow<'a, str>,
        id: Option<Cow<'a, str>>,
    },
    /// A frame of a type this version does not know.
    Unknown,
}

/// Why (part of) a server message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MessageError(pub String);

/// Parses a JSON number that should be integer µs; tolerates `1.0e6`-style floats.
pub fn parse_ts_us(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok().or_else(|| {
        raw.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    })
}

/// An id as the client wrote it: JSON strings lose their quotes, numbers stay as written.
fn id_text(raw: &RawValue) -> Cow<'_, str> {
    let s = raw.get();
    match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        Some(_) => Cow::Owned(serde_json::from_str::<String>(s).unwrap_or_default()),
        None => Cow::Borrowed(s),
    }
}

fn need<T>(v: Option<T>, field: &str, kind: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("`{kind}` frame without `{field}`"))
}

impl<'a> Received<'a> {
    /// The full-parse path: one flat serde frame → frame. Extra fields are ignored.
    pub(crate) fn from_raw(raw: RawFrame<'a>) -> Result<Self, String> {
        let kind = need(raw.kind, "type", "?")?;
        let k = kind.as_ref();
        Ok(match k {
            "chat" => Received::Chat {
                room: need(raw.room, "room", k)?,
                seq: need(raw.seq, "seq", k)?,
                from: raw.from.unwrap_or_default(),
                id: need(raw.id, "id", k).map(id_text)?,
                ts_us: raw.ts.and_then(|t| parse_ts_us(t.get())),
            },
            "ack" => Received::Ack {
                id: need(raw.id, "id", k).map(id_text)?,
                seq: need(raw.seq, "seq", k)?,
            },
            "joined" => Received::Joined {
                room: need(raw.room, "room", k)?,
                seq: need(raw.seq, "seq", k)?,
                members: raw.members.unwrap_or(0),
            },
            "welcome" => Received::Welcome {
                user: raw.user.unwrap_or_default(),
                instance: raw.instance,
            },
            "left" => Received::Left {
                room: need(raw.room, "room", k)?,
            },
            "presence" => Received::Presence {
                room: need(raw.room, "room", k)?,
                user: raw.user.unwrap_or_default(),
                online: raw.status == Some(PresenceStatus::Online),
            },
            "typing" => Received::Typing {
                room: need(raw.room, "room", k)?,
                user: raw.user.unwrap_or_default(),
            },
            "resumed" => Received::Resumed {
                room: need(raw.room, "room", k)?,
                replayed: raw.replayed.unwrap_or(0),
                complete: raw.complete.unwrap_or(false),
            },
            "pong" => Received::Pong {
                ts_us: raw.ts.and_then(|t| parse_ts_us(t.get())),
                now_us: raw.now_us,
            },
            "error" => Received::Error {
                code: raw.code.unwrap_or(Cow::Borrowed("UNKNOWN")),
                id: raw.id.map(id_text),
            },
            _ => Received::Unknown,
        })
    }
}

/// Emits every frame of one server text message through `sink`, in order,
/// unwrapping `batch`. A frame that cannot be decoded is skipped and
/// reported after the others (the last such error wins); a message that is
/// not JSON is reported after the frames the fast path already emitted.
pub fn decode_server_message<'a>(
    text: &'a [u8],
    mut sink: impl FnMut(Received<'a>),
) -> Result<(), MessageError> {
    // Generic rather than `dyn`: the caller's mapping inlines into the scanner.
    let Some(mut skip) = super::fast::decode(text, &mut sink) else {
        return Ok(());
    };
    let mut bad: Option<String> = None;
    for_each_server_frame(text, |raw| {
        if skip > 0 {
            // Already emitted by the fast path.
            skip -= 1;
            return;
        }
        match Received::from_raw(raw) {
            Ok(frame) => sink(frame),
            Err(why) => bad = Some(why),
        }
    })
    .map_err(|e| MessageError(e.to_string()))?;
    match bad {
        Some(why) => Err(MessageError(why)),
        None => Ok(()),
    }
}

/// For the fuzz target `chat_fast` (fuzz/, outside the workspace): panics
/// unless the fast path agrees with the full serde parse on `text`: every
/// frame it emits is the frame the full parse yields, and when it claims the
/// whole message, the full parse accepts it too.
#[doc(hidden)]
pub fn check_fast_path_against_full_parse(text: &[u8]) {
    let mut fast = Vec::new();
    let claimed = super::fast::decode(text, &mut |f: Received<'_>| fast.push(format!("{f:?}")));
    let mut full = Vec::new();
    let parsed = for_each_server_frame(text, |raw| {
        full.push(Received::from_raw(raw).map(|f| format!("{f:?}")))
    });
    match claimed {
        None => {
            assert!(parsed.is_ok(), "fast path took a message serde rejects");
            let full: Vec<String> = full
                .into_iter()
                .map(|r| r.expect("fast path took a frame the full parse rejects"))
                .collect();
            assert_eq!(fast, full);
        }
        Some(k) => {
            assert_eq!(
                fast.len(),
                k,
                "fast path emitted {} but reported {k}",
                fast.len()
            );
            if parsed.is_ok() {
                assert!(
                    full.len() >= k,
                    "fast path emitted frames serde does not see"
                );
                for (f, s) in fast.iter().zip(&full) {
                    assert_eq!(Some(f), s.as_ref().ok());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch_payload;

    /// Every frame through the full parse only.
    fn full(text: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        for_each_server_frame(text, |raw| {
            v.push(format!("{:?}", Received::from_raw(raw).unwrap()))
        })
        .unwrap();
        v
    }

    /// The fast path must agree with the full serde parse on everything it accepts.
    #[test]
    fn fast_path_matches_the_full_parse() {
        let chats: [&[u8]; 3] = [
            br#"{"type":"chat","room":"r-1","seq":42,"from":"u7","id":"3.9.120","text":"hi","ts":1700000000000001}"#,
            r#"{"type":"chat","room":"hé","seq":0,"from":"","id":"","text":"","ts":0}"#.as_bytes(),
            br#"{"ts":9,"text":"x","id":"a","from":"b","seq":18446744073709551615,"room":"c","type":"chat"}"#,
        ];
        let presence: [&[u8]; 4] = [
            br#"{"type":"ack","id":"1.3.0","seq":5}"#,
            br#"{"type":"presence","room":"r-1","user":"u9","status":"online"}"#,
            br#"{"type":"presence","room":"r-1","user":"u9","status":"offline"}"#,
            br#"{"type":"presence","room":"r-1"}"#,
        ];
        let batch = batch_payload(chats.iter().chain(&presence).copied());
        for text in chats.iter().chain(&presence).copied().chain([&batch[..]]) {
            let mut fast = Vec::new();
            assert!(
                super::super::fast::decode(text, &mut |e| fast.push(format!("{e:?}"))).is_none()
            );
            assert_eq!(fast, full(text));
        }
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'s>(&mut self, of: &[&'s str]) -> &'s str {
            of[(self.next() % of.len() as u64) as usize]
        }

        /// A JSON string literal, sometimes with what the fast path declines.
        fn string(&mut self) -> String {
            let body = match self.next() % 48 {
                0 => "a\\\"b",
                1 => "tab\\tx",
                _ => self.pick(&["", "r-1", "hé ü", "u7", "3.9.120"]),
            };
            format!("\"{body}\"")
        }

        /// A JSON number: mostly u64, sometimes a float, a negative or an exponent.
        fn number(&mut self) -> String {
            match self.next() % 40 {
                0 => "1.5e3".to_owned(),
                1 => "-4".to_owned(),
                2 => "17.0".to_owned(),
                3 => u64::MAX.to_string(),
                _ => (self.next() % 2_000_000_000_000_000).to_string(),
            }
        }

        /// An unsigned integer, sometimes the largest or with a leading zero's neighbour.
        fn uint(&mut self) -> String {
            match self.next() % 6 {
                0 => u64::MAX.to_string(),
                1 => "0".to_owned(),
                _ => (self.next() % 100_000).to_string(),
            }
        }

        /// A value for field `k`, of the type the protocol gives it.
        fn value(&mut self, k: &str) -> String {
            match k {
                "seq" | "members" | "replayed" | "conn" | "heartbeat_ms" => self.uint(),
                "ts" => self.number(),
                "id" if self.next() % 24 == 0 => self.number(),
                "status" => format!("\"{}\"", self.pick(&["online", "offline"])),
                "complete" => self.pick(&["true", "false"]).to_owned(),
                "code" => "\"RATE_LIMITED\"".to_owned(),
                _ => self.string(),
            }
        }

        /// One server frame with its fields shuffled and sometimes missing.
        fn frame(&mut self) -> String {
            let kind = self.pick(&[
                "chat", "chat", "chat", "chat", "chat", "chat", "ack", "ack", "ack", "presence",
                "presence", "presence", "joined", "welcome", "left", "typing", "resumed", "pong",
                "error", "other",
            ]);
            let mut fields = vec![format!(r#""type":"{kind}""#)];
            let keys: &[&str] = match kind {
                "chat" => &["room", "seq", "from", "id", "text", "ts"],
                "ack" => &["id", "seq"],
                "presence" => &["room", "user", "status"],
                "joined" => &["room", "seq", "members"],
                "welcome" => &["user", "conn", "heartbeat_ms"],
                "resumed" => &["room", "replayed", "complete"],
                "typing" => &["room", "user"],
                "pong" => &["ts"],
                "error" => &["code", "message", "id"],
                _ => &["room"],
            };
            for &k in keys {
                // Each field present with probability 15/16.
                if self.next() % 32 != 0 {
                    let v = self.value(k);
                    fields.push(format!(r#""{k}":{v}"#));
                }
            }
            if self.next() % 16 == 0 {
                // A field the kind does not have (a duplicate is a JSON error).
                let k = match self.pick(&["members", "extra", "user"]) {
                    k if keys.contains(&k) => "extra",
                    k => k,
                };
                let v = self.value(k);
                fields.push(format!(r#""{k}":{v}"#));
            }
            // Shuffle all but sometimes keep `type` first, as the server writes it.
            let n = fields.len();
            for i in (1..n).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                fields.swap(i, j);
            }
            format!("{{{}}}", fields.join(","))
        }
    }

    /// Property: on thousands of generated messages (single frames and
    /// batches of up to 8), the one decoder emits exactly what the full parse
    /// does, whichever path each frame takes.
    #[test]
    fn decoder_agrees_with_the_full_parse_on_generated_messages() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let (mut fast, mut total) = (0usize, 0usize);
        for _ in 0..20_000 {
            let frames: Vec<String> = (0..=g.next() % 8).map(|_| g.frame()).collect();
            let text = if frames.len() == 1 {
                frames[0].clone().into_bytes()
            } else {
                batch_payload(frames.iter().map(|f| f.as_bytes()))
            };
            let mut expected = Vec::new();
            let mut expected_err = None;
            for_each_server_frame(&text, |raw| match Received::from_raw(raw) {
                Ok(f) => expected.push(format!("{f:?}")),
                Err(e) => expected_err = Some(e),
            })
            .unwrap();
            let mut got = Vec::new();
            let r = decode_server_message(&text, &mut |f| got.push(format!("{f:?}")));
            let text = String::from_utf8_lossy(&text);
            assert_eq!(got, expected, "{text}");
            assert_eq!(r.err().map(|e| e.0), expected_err, "{text}");
            total += expected.len();
            let mut emitted = 0;
            super::super::fast::decode(text.as_bytes(), &mut |_| emitted += 1);
            fast += emitted;
        }
        // The generator must exercise both paths, or the property says little.
        assert!(
            fast > total / 10 && fast < total * 9 / 10,
            "{fast} of {total}"
        );
    }

    /// A batch the fast path covers only in part: every frame once, in order.
    #[test]
    fn mixed_batches_decode_every_frame_once() {
        let chat =
            br#"{"type":"chat","room":"r","seq":4,"from":"u","id":"1.2.3","text":"t","ts":17}"#;
        let welcome = br#"{"type":"welcome","user":"u","conn":1,"heartbeat_ms":5}"#;
        let batch = batch_payload([&chat[..], &welcome[..], &chat[..], &welcome[..]]);
        let mut kinds = Vec::new();
        decode_server_message(&batch, &mut |e| {
            kinds.push(format!("{e:?}").split(' ').next().unwrap_or("").to_owned())
        })
        .unwrap();
        assert_eq!(kinds, ["Chat", "Welcome", "Chat", "Welcome"]);
    }

    #[test]
    fn bad_json_is_an_error_after_what_was_emitted() {
        assert!(decode_server_message(b"{nope", &mut |_| {}).is_err());
        let e = decode_server_message(br#"{"type":"ack","seq":1}"#, &mut |_| {}).unwrap_err();
        assert_eq!(e.0, "`ack` frame without `id`");
    }
}

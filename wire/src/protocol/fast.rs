//! Fast path of [`super::decode_server_message`] for the hottest v1 server
//! frames: `chat` deliveries, their `ack`s and `presence` (join storms),
//! alone or in a `batch`. A full serde parse into `RawFrame` (19 optional fields,
//! and every batch element scanned twice) was ~55 % of the generator's CPU
//! in a fan-out run; this scanner reads the compact JSON the reference
//! server writes in one pass, borrowing every string.
//!
//! It is deliberately narrow: flat objects, strings without escapes,
//! unsigned integers, no whitespace. Anything else — another frame type,
//! an escape, a float `ts`, a nested value, a duplicate key — makes it
//! *decline* from that frame on; the caller parses the message with serde
//! and skips the frames already emitted, so results never depend on which
//! path ran.

use std::borrow::Cow;

use super::Received;

/// The fields of one chat or presence frame, borrowed from the message.
#[derive(Debug, Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    room: Option<&'a str>,
    seq: Option<u64>,
    from: Option<&'a str>,
    id: Option<&'a str>,
    text: bool,
    ts: Option<u64>,
    user: Option<&'a str>,
    status: Option<&'a str>,
}

/// Index of the first `"`, `\\` or control character in `s`. Eight bytes
/// at a time (SWAR): a chunk with none of them is skipped with a few
/// integer operations; the first chunk with one is searched bytewise.
fn stop_byte(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Nonzero iff some byte of `v` is zero (exact as a yes/no answer).
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let mut at = 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let hit = has_zero(v ^ (ONES * u64::from(b'"')))
            | has_zero(v ^ (ONES * u64::from(b'\\')))
            // Some byte < 0x20 (exact as a yes/no answer for bytes < 0x80;
            // bytes >= 0x80 are masked out by `!v`).
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if hit != 0 {
            return c.iter().position(|&b| stop(b)).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| stop(b))
        .map(|i| at + i)
}

/// Cursor over one message (checked as UTF-8 once, up front, so strings
/// are sliced at their ASCII quotes without further checks).
struct Scan<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.bytes().get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    fn eat_str(&mut self, lit: &[u8]) -> Option<()> {
        self.bytes()[self.at..]
            .starts_with(lit)
            .then(|| self.at += lit.len())
    }

    /// A string without escapes or control characters; the opening quote is next.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        // One pass: stop at the closing quote, or at what we do not handle.
        let len = stop_byte(&self.bytes()[start..])?;
        if self.bytes()[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        self.s.get(start..start + len)
    }

    /// An unsigned integer without sign, fraction or exponent.
    fn uint(&mut self) -> Option<u64> {
        let digits = self.bytes()[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit());
        let mut v: u64 = 0;
        let mut len = 0usize;
        for &b in digits {
            v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            len += 1;
        }
        // JSON forbids leading zeros; serde would reject them.
        if len == 0 || (len > 1 && self.bytes()[self.at] == b'0') {
            return None;
        }
        self.at += len;
        Some(v)
    }

    /// One flat `chat`, `presence` or `ack` object, `{` next; None for anything else.
    fn frame(&mut self) -> Option<Received<'a>> {
        self.eat(b'{')?;
        let mut f = Fields::default();
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            match key {
                "type" if f.kind.is_none() => f.kind = Some(self.string()?),
                "room" if f.room.is_none() => f.room = Some(self.string()?),
                "from" if f.from.is_none() => f.from = Some(self.string()?),
                "id" if f.id.is_none() => f.id = Some(self.string()?),
                "text" if !f.text => {
                    self.string()?;
                    f.text = true;
                }
                "seq" if f.seq.is_none() => f.seq = Some(self.uint()?),
                "ts" if f.ts.is_none() => f.ts = Some(self.uint()?),
                "user" if f.user.is_none() => f.user = Some(self.string()?),
                "status" if f.status.is_none() => f.status = Some(self.string()?),
                _ => return None,
            }
            if self.eat(b'}').is_some() {
                break;
            }
            self.eat(b',')?;
        }
        match f.kind? {
            "chat" => Some(Received::Chat {
                room: Cow::Borrowed(f.room?),
                seq: f.seq?,
                from: Cow::Borrowed(f.from.unwrap_or_default()),
                id: Cow::Borrowed(f.id?),
                ts_us: f.ts,
            }),
            // Every join sends one to each other member: a 10,000-client
            // ramp into rooms of 100 is ~1 M of them.
            "presence" => Some(Received::Presence {
                room: Cow::Borrowed(f.room?),
                user: Cow::Borrowed(f.user.unwrap_or_default()),
                online: match f.status {
                    Some("online") => true,
                    // serde's `PresenceStatus` knows only these two.
                    Some("offline") | None => false,
                    Some(_) => return None,
                },
            }),
            // One per chat sent, often batched with deliveries.
            "ack" => Some(Received::Ack {
                id: Cow::Borrowed(f.id?),
                seq: f.seq?,
            }),
            _ => None,
        }
    }
}

const BATCH_HEAD: &[u8] = br#"{"type":"batch","messages":["#;

/// Emits the frames of `text` through `sink`, in order, for as long as the
/// fast path covers them, and returns how far it got: `None` when it
/// emitted every frame, `Some(k)` when it emitted the first `k` (k may be
/// 0) and the caller must parse the message with serde and skip the first
/// `k` frames. One pass; a declined frame costs only the serde parse.
pub(crate) fn decode<'a>(text: &'a [u8], mut sink: impl FnMut(Received<'a>)) -> Option<usize> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Some(0);
    };
    let mut sc = Scan { s: text, at: 0 };
    if sc.eat_str(BATCH_HEAD).is_none() {
        // A single frame.
        return match sc.frame() {
            Some(ev) if sc.at == text.len() => {
                sink(ev);
                None
            }
            _ => Some(0),
        };
    }
    let mut n = 0usize;
    loop {
        let Some(ev) = sc.frame() else {
            return Some(n);
        };
        sink(ev);
        n += 1;
        if sc.eat(b',').is_none() {
            break;
        }
    }
    if sc.eat_str(b"]}").is_none() || sc.at != text.len() {
        // Malformed after `n` good frames: serde reports it (and skips those).
        return Some(n);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch_payload;

    /// (all emitted, events).
    fn fast(text: &[u8]) -> (bool, Vec<String>) {
        let mut v = Vec::new();
        let r = decode(text, &mut |e| v.push(format!("{e:?}")));
        assert_eq!(r.unwrap_or(v.len()), v.len());
        (r.is_none(), v)
    }

    const CHAT: &[u8] =
        br#"{"type":"chat","room":"r-1","seq":42,"from":"u7","id":"3.9.120","text":"hi there","ts":1700000000000001}"#;

    #[test]
    fn reads_the_servers_chat_frames_alone_and_batched() {
        let (r, v) = fast(CHAT);
        assert!(r && v.len() == 1);
        assert_eq!(
            v[0],
            r#"Chat { room: "r-1", seq: 42, from: "u7", id: "3.9.120", ts_us: Some(1700000000000001) }"#
        );
        let (r, v) = fast(br#"{"type":"ack","id":"1.3.0","seq":5}"#);
        assert!(r && v == [r#"Ack { id: "1.3.0", seq: 5 }"#]);
        let other =
            br#"{"type":"chat","room":"r-2","seq":43,"from":"u8","id":"1.1.0","text":"","ts":5}"#;
        let (r, v) = fast(&batch_payload([CHAT, &other[..]]));
        assert!(r && v.len() == 2);
        assert!(v[1].contains("r-2") && v[1].contains("seq: 43"));
    }

    #[test]
    fn stop_byte_finds_the_first_quote_backslash_or_control() {
        let naive = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut x: u32 = 12345;
        for len in 0..40 {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        // Mostly plain text, sometimes a stop byte or UTF-8 high bytes.
                        match (x >> 16) % 40 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (x >> 8) as u8 % 0x20,
                            3..=6 => 0x80 | (x >> 8) as u8,
                            _ => b'a' + (x >> 8) as u8 % 26,
                        }
                    })
                    .collect();
                assert_eq!(stop_byte(&s), naive(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn declines_what_it_does_not_cover() {
        for text in [
            &br#"{"type":"ack","id":7,"seq":5}"#[..],
            br#"{"type":"presence","room":"r","user":"u","status":"away"}"#,
            br#"{"type":"chat","room":"r","seq":1,"from":"u","id":"1","text":"a\"b","ts":5}"#,
            br#"{"type":"chat","room":"r","seq":1,"from":"u","id":"1","text":"t","ts":5.5}"#,
            b"{\"type\":\"chat\",\"room\":\"r\",\"seq\":1,\"id\":\"1\",\"text\":\"a\tb\",\"ts\":5}",
            br#"{"type":"chat","room":"r","seq":99999999999999999999,"id":"1","text":"t","ts":5}"#,
            br#"{"type":"chat","room":"r","seq":1,"from":"u","id":7,"text":"t","ts":5}"#,
            br#"{"type":"chat","room":"r","seq":01,"from":"u","id":"1","text":"t","ts":5}"#,
            br#"{"type":"chat","room":"r","room":"s","seq":1,"id":"1","text":"t","ts":5}"#,
            br#"{"type": "chat","room":"r","seq":1,"id":"1","text":"t","ts":5}"#,
            br#"{"type":"chat","room":"r","seq":1,"id":"1","text":"t","ts":5,"x":{}}"#,
            br#"{"type":"chat","room":"r","seq":1,"id":"1","text":"t","ts":5} "#,
            br#"{"type":"chat","room":"r","seq":1,"id":"1","text":"t","ts":5"#,
            b"{nope",
            b"",
        ] {
            let (r, v) = fast(text);
            assert!(!r && v.is_empty(), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn a_batch_stops_at_what_it_does_not_cover() {
        let welcome = br#"{"type":"welcome","user":"u","conn":1,"heartbeat_ms":5}"#;
        let (all, v) = fast(&batch_payload([CHAT, &welcome[..], CHAT]));
        assert!(!all && v.len() == 1);
        let mut truncated = batch_payload([CHAT, CHAT]);
        truncated.pop();
        let (all, v) = fast(&truncated);
        assert!(!all && v.len() == 2);
    }
}

//! The dialect side of the shared message-shape machinery (options and
//! their validation: `scenario::shapes`): templates filled with an action's
//! values, JSON pointers read, matchers applied. Used by `socketio` (event
//! arguments) and `json` (whole frames).

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::scenario::shapes::Matcher;

/// Fills a template with an action's values. A string that is exactly one
/// numeric placeholder becomes a number; others are replaced in place.
pub(crate) fn fill(template: &Value, vars: &Vars<'_>) -> Value {
    match template {
        Value::String(s) => vars.substitute(s),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The values an action contributes to a template.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub room: Option<&'a str>,
    pub id: Option<&'a str>,
    pub text: Option<&'a str>,
    /// µs since the UNIX epoch (`{ts}`, `{ts_us}`, `{ts_ms}`, `{iso_time}`).
    pub ts: Option<u64>,
    pub after: Option<u64>,
    pub client: Option<u32>,
    pub user: Option<&'a str>,
    pub token: Option<&'a str>,
    /// When set, an exact `"{text}"` becomes this value (a binary placeholder).
    pub text_value: Option<&'a Value>,
}

fn iso(ts_us: u64) -> String {
    chrono::DateTime::from_timestamp_micros(ts_us as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Vars<'_> {
    fn number(&self, name: &str) -> Option<Option<u64>> {
        Some(match name {
            "{ts}" | "{ts_us}" => self.ts,
            "{ts_ms}" => self.ts.map(|t| t / 1000),
            "{after}" => self.after,
            "{client}" => self.client.map(u64::from),
            _ => return None,
        })
    }

    fn substitute(&self, s: &str) -> Value {
        if let Some(n) = self.number(s) {
            return n.map_or(Value::Null, Value::from);
        }
        if s == "{text}" {
            if let Some(v) = self.text_value {
                return v.clone();
            }
        }
        if !s.contains('{') {
            return Value::String(s.to_owned());
        }
        // Numbers and generated values first, user text last, so text is
        // never re-scanned for placeholders.
        let mut out = s.to_owned();
        for name in ["{ts}", "{ts_us}", "{ts_ms}", "{after}", "{client}"] {
            if out.contains(name) {
                if let Some(Some(n)) = self.number(name) {
                    out = out.replace(name, &n.to_string());
                }
            }
        }
        if out.contains("{iso_time}") {
            if let Some(ts) = self.ts {
                out = out.replace("{iso_time}", &iso(ts));
            }
        }
        for (name, value) in [
            ("{user}", self.user),
            ("{token}", self.token),
            ("{room}", self.room),
            ("{id}", self.id),
            ("{text}", self.text),
        ] {
            if let Some(v) = value {
                out = out.replace(name, v);
            }
        }
        Value::String(out)
    }
}

/// Whether every pointer of `m` holds its value in `v`.
pub(crate) fn matches(m: &Matcher, v: &Value) -> bool {
    m.fields.iter().all(|(p, want)| v.pointer(p) == Some(want))
}

/// A string at `pointer`, or a number rendered as text (ids may be either).
pub(crate) fn str_at<'v>(v: &'v Value, pointer: Option<&str>) -> Option<Cow<'v, str>> {
    match v.pointer(pointer?)? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// A timestamp at `pointer` as µs since the epoch: an integer (s, ms or µs,
/// told apart by magnitude) or an ISO 8601 / RFC 3339 string.
pub(crate) fn ts_at(v: &Value, pointer: Option<&str>) -> Option<u64> {
    match v.pointer(pointer?)? {
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !(x.is_finite() && x > 0.0) {
                return None;
            }
            // Seconds until 2286, ms until the same, else µs.
            Some(if x < 1e10 {
                (x * 1e6) as u64
            } else if x < 1e13 {
                (x * 1e3) as u64
            } else {
                x as u64
            })
        }
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp_micros()).ok()),
        _ => None,
    }
}

/// Read access to one incoming JSON document by pointer, so a dialect
/// can match and extract without caring how the frame was parsed.
pub(crate) trait View<'v> {
    fn matches(&self, m: &Matcher) -> bool;
    fn str_at(&self, pointer: Option<&str>) -> Option<Cow<'v, str>>;
    fn ts_at(&self, pointer: Option<&str>) -> Option<u64>;
}

/// A fully parsed document (the slow path: escaped keys, non-objects).
impl<'v> View<'v> for &'v Value {
    fn matches(&self, m: &Matcher) -> bool {
        matches(m, self)
    }
    fn str_at(&self, pointer: Option<&str>) -> Option<Cow<'v, str>> {
        str_at(self, pointer)
    }
    fn ts_at(&self, pointer: Option<&str>) -> Option<u64> {
        ts_at(self, pointer)
    }
}

/// A JSON object read lazily: its top-level members as borrowed raw
/// slices; nested values are parsed only when a pointer goes into them,
/// and strings are borrowed unless escaped. The per-frame fast path of the
/// json dialect (a full `Value` allocates every key and string).
pub(crate) struct Lazy<'v> {
    top: Vec<(&'v str, &'v RawValue)>,
}

/// An object's members, borrowed (fails on escaped keys: then the slow path).
struct Members<'de>(Vec<(&'de str, &'de RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(8);
                while let Some(k) = m.next_key::<&'de str>()? {
                    out.push((k, m.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn unescape(seg: &str) -> Cow<'_, str> {
    if seg.contains('~') {
        Cow::Owned(seg.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(seg)
    }
}

impl<'v> Lazy<'v> {
    /// `None` unless `text` is a JSON object with plain (unescaped) keys.
    pub(crate) fn parse(text: &'v str) -> Option<Self> {
        serde_json::from_str::<Members<'v>>(text)
            .ok()
            .map(|m| Self { top: m.0 })
    }

    fn node(&self, pointer: &str) -> Option<&'v RawValue> {
        let mut segs = pointer.split('/').skip(1);
        let first = unescape(segs.next()?);
        let mut cur = self.top.iter().find(|(k, _)| *k == first)?.1;
        for seg in segs {
            let seg = unescape(seg);
            let text = cur.get().trim_start();
            cur = if text.starts_with('{') {
                let m: Members<'v> = serde_json::from_str(cur.get()).ok()?;
                m.0.into_iter().find(|(k, _)| *k == seg)?.1
            } else if text.starts_with('[') {
                let a: Vec<&'v RawValue> = serde_json::from_str(cur.get()).ok()?;
                *a.get(seg.parse::<usize>().ok()?)?
            } else {
                return None;
            };
        }
        Some(cur)
    }

    fn string(raw: &'v RawValue) -> Option<Cow<'v, str>> {
        // A string without escapes is its own text between the quotes.
        let t = raw.get();
        if let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if !inner.contains('\\') {
                return Some(Cow::Borrowed(inner));
            }
        }
        match serde_json::from_str::<&'v str>(raw.get()) {
            Ok(s) => Some(Cow::Borrowed(s)),
            Err(_) => serde_json::from_str::<String>(raw.get())
                .ok()
                .map(Cow::Owned),
        }
    }
}

impl<'v> View<'v> for Lazy<'v> {
    fn matches(&self, m: &Matcher) -> bool {
        m.fields.iter().all(|(p, want)| {
            let Some(raw) = self.node(p) else {
                return false;
            };
            match want {
                Value::String(w) => Self::string(raw).is_some_and(|s| s == w.as_str()),
                _ => serde_json::from_str::<Value>(raw.get()).is_ok_and(|v| v == *want),
            }
        })
    }

    fn str_at(&self, pointer: Option<&str>) -> Option<Cow<'v, str>> {
        let raw = self.node(pointer?)?;
        let text = raw.get().trim_start();
        if text.starts_with('"') {
            Self::string(raw)
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Some(Cow::Borrowed(text.trim_end()))
        } else {
            None
        }
    }

    fn ts_at(&self, pointer: Option<&str>) -> Option<u64> {
        let raw = self.node(pointer?)?;
        let v: Value = serde_json::from_str(raw.get()).ok()?;
        ts_at(&v, Some(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::socketio::Templates;
    use serde_json::json;

    #[test]
    fn default_chat_template_mirrors_v1() {
        let t = Templates::default();
        let v = fill(
            &t.chat,
            &Vars {
                room: Some("r1"),
                id: Some("1.2"),
                text: Some("hi {room}"),
                ts: Some(17),
                ..Vars::default()
            },
        );
        assert_eq!(
            v,
            json!({"room":"r1","id":"1.2","text":"hi {room}","ts":17})
        );
        let v = fill(
            &t.resume,
            &Vars {
                room: Some("r"),
                after: Some(4),
                ..Vars::default()
            },
        );
        assert_eq!(v, json!({"room":"r","after":4}));
    }

    #[test]
    fn every_placeholder_fills() {
        let vars = Vars {
            room: Some("r"),
            id: Some("3.1.0"),
            text: Some("{id} t"),
            ts: Some(1_700_000_000_123_456),
            client: Some(3),
            user: Some("u3"),
            token: Some("jwt"),
            ..Vars::default()
        };
        let v = fill(
            &json!({"a": "{ts_us}", "b": "{ts_ms}", "c": "{client}", "d": "{iso_time}",
                    "e": "{user}/{token}/{room}", "f": "{text}", "g": "at {ts_ms}", "h": [1, "{id}"]}),
            &vars,
        );
        assert_eq!(
            v,
            json!({"a": 1_700_000_000_123_456u64, "b": 1_700_000_000_123u64, "c": 3,
                   "d": "2023-11-14T22:13:20.123Z", "e": "u3/jwt/r", "f": "{id} t",
                   "g": "at 1700000000123", "h": [1, "3.1.0"]})
        );
    }

    #[test]
    fn pointers_read_strings_numbers_and_timestamps() {
        let v = json!({"a": {"id": 7, "s": "x", "t": "2023-11-14T22:13:20.123Z"}, "ms": 1_700_000_000_123u64, "s": 1_700_000_000u64, "bad": [1]});
        assert_eq!(str_at(&v, Some("/a/id")).as_deref(), Some("7"));
        assert_eq!(str_at(&v, Some("/a/s")).as_deref(), Some("x"));
        assert_eq!(str_at(&v, Some("/bad")), None, "wrong type");
        assert_eq!(str_at(&v, Some("/nope")), None, "missing");
        assert_eq!(str_at(&v, None), None);
        assert_eq!(ts_at(&v, Some("/a/t")), Some(1_700_000_000_123_000));
        assert_eq!(ts_at(&v, Some("/ms")), Some(1_700_000_000_123_000));
        assert_eq!(ts_at(&v, Some("/s")), Some(1_700_000_000_000_000));
        assert_eq!(ts_at(&v, Some("/a/s")), None);
        let m = Matcher {
            fields: vec![
                ("/a/s".into(), json!("x")),
                ("/s".into(), json!(1_700_000_000u64)),
            ],
        };
        assert!(matches(&m, &v));
        assert!(!matches(&m, &json!({"a": {"s": "x"}})));
        assert!(!matches(&m, &json!("x")));
    }

    /// The lazy fast path reads exactly what the full parse reads.
    #[test]
    fn lazy_view_agrees_with_the_full_parse() {
        let text = r#"{"type":"chat","n":{"a":[1,{"b":"x\"y"}]},"id":7,"s":"a\u00e9","t":"2023-11-14T22:13:20.123Z","ms":1700000000123,"f":true}"#;
        let lazy = Lazy::parse(text).unwrap();
        let full: Value = serde_json::from_str(text).unwrap();
        let full = &full;
        for p in [
            "/type", "/n/a/1/b", "/id", "/s", "/t", "/ms", "/f", "/n/a/0", "/nope", "/n/a/9",
            "/type/x",
        ] {
            assert_eq!(lazy.str_at(Some(p)), full.str_at(Some(p)), "{p}");
            assert_eq!(lazy.ts_at(Some(p)), full.ts_at(Some(p)), "{p}");
        }
        for (p, want) in [
            ("/type", json!("chat")),
            ("/n/a/1/b", json!("x\"y")),
            ("/id", json!(7)),
            ("/f", json!(true)),
            ("/n/a/0", json!(1)),
            ("/type", json!("other")),
            ("/id", json!("7")),
        ] {
            let m = Matcher {
                fields: vec![(p.into(), want)],
            };
            assert_eq!(lazy.matches(&m), full.matches(&m), "{p}");
        }
        assert!(Lazy::parse("[1]").is_none() && Lazy::parse("nope").is_none());
        assert!(
            Lazy::parse(r#"{"a\u0062":1}"#).is_none(),
            "escaped keys take the slow path"
        );
    }
}

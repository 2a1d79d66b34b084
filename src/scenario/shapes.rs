//! What the message-shape options of the `socketio` and `json` dialects
//! share on the scenario side: outgoing templates and their placeholders,
//! JSON pointers, incoming matchers, and the TOML helpers that check them
//! key by key. The dialects apply them (`dialect::shapes`); this module
//! only parses and validates, so a bad template or pointer is an exit-2
//! error at load time, never a surprise on the wire.

use serde::Serialize;
use serde_json::Value as Json;
use toml::Value;

use super::diag::{nearest, suggestion, value_suggestion};

/// A bad option value, with its key relative to the dialect's table
/// (e.g. `templates.chat` under `[target.json]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {why}")]
pub struct KeyError {
    pub key: String,
    pub why: String,
}

pub fn err(key: impl Into<String>, why: impl Into<String>) -> KeyError {
    KeyError {
        key: key.into(),
        why: why.into(),
    }
}

/// Every placeholder a template may use. A string that is exactly one of
/// the numeric ones (`{ts}`, `{ts_us}`, `{ts_ms}`, `{after}`, `{client}`)
/// becomes a JSON number; the others are replaced inside strings.
pub const PLACEHOLDERS: &[&str] = &[
    "room", "text", "id", "client", "user", "token", "ts", "ts_us", "ts_ms", "iso_time", "after",
];

/// The `{name}`s a string uses: `{` + identifier + `}` (other braces are text).
pub fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    s.split('{').skip(1).filter_map(|rest| {
        let name = rest.split_once('}')?.0;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then_some(name)
    })
}

/// Whether `template` uses `{name}` anywhere (keys are never filled).
pub fn uses(template: &Json, name: &str) -> bool {
    match template {
        Json::String(s) => placeholders(s).any(|p| p == name),
        Json::Array(a) => a.iter().any(|v| uses(v, name)),
        Json::Object(m) => m.values().any(|v| uses(v, name)),
        _ => false,
    }
}

/// Rejects a template that names a placeholder outside `allowed`.
pub fn check_template(template: &Json, key: &str, allowed: &[&str]) -> Result<(), KeyError> {
    let mut bad = None;
    walk_strings(template, &mut |s| {
        for p in placeholders(s) {
            if bad.is_none() && !allowed.contains(&p) {
                bad = Some(p.to_owned());
            }
        }
    });
    let Some(p) = bad else {
        return Ok(());
    };
    let hint = match nearest(&p, allowed.iter().copied()) {
        Some(best) => format!("; did you mean `{{{best}}}`?"),
        None => format!(
            "; placeholders are {}",
            allowed
                .iter()
                .map(|a| format!("`{{{a}}}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(err(key, format!("unknown placeholder `{{{p}}}`{hint}")))
}

fn walk_strings(v: &Json, f: &mut dyn FnMut(&str)) {
    match v {
        Json::String(s) => f(s),
        Json::Array(a) => a.iter().for_each(|v| walk_strings(v, f)),
        Json::Object(m) => m.values().for_each(|v| walk_strings(v, f)),
        _ => {}
    }
}

/// Checks an RFC 6901 JSON pointer: empty (the whole document) or `/`-led
/// segments, where `~` is only ever `~0` or `~1`.
pub fn check_pointer(p: &str, key: &str) -> Result<(), KeyError> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(err(
            key,
            format!("{p:?} is not a JSON pointer: it must start with `/`, e.g. \"/{p}\""),
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(err(
                key,
                format!("{p:?} is not a JSON pointer: `~` must be `~0` (a `~`) or `~1` (a `/`)"),
            ));
        }
    }
    Ok(())
}

/// Recognises one kind of incoming frame: every pointer must hold its value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Matcher {
    pub fields: Vec<(String, Json)>,
}

impl Matcher {
    /// `{ "/type" = "broadcast", ... }`; an empty table could never tell
    /// frames apart, so it is refused.
    pub fn from_toml(v: &Value, key: &str) -> Result<Self, KeyError> {
        let t = v.as_table().ok_or_else(|| {
            err(
                key,
                "must be a table of JSON pointer = value, e.g. { \"/type\" = \"broadcast\" }",
            )
        })?;
        if t.is_empty() {
            return Err(err(
                key,
                "an empty matcher can never tell frames apart; give at least one JSON pointer = value, e.g. { \"/type\" = \"broadcast\" }",
            ));
        }
        let mut fields = Vec::with_capacity(t.len());
        for (p, v) in t {
            check_pointer(p, &format!("{key}.{p}"))?;
            fields.push((p.clone(), to_json(v)));
        }
        Ok(Self { fields })
    }
}

/// A table whose keys must all be in `allowed`; an unknown key is named
/// with the nearest valid one (`why` starts with "unknown key").
pub fn table<'v>(
    v: &'v Value,
    key: &str,
    allowed: &[&str],
) -> Result<&'v toml::map::Map<String, Value>, KeyError> {
    let t = v.as_table().ok_or_else(|| err(key, "must be a table"))?;
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            let full = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            return Err(err(full, format!("unknown key{}", suggestion(k, allowed))));
        }
    }
    Ok(t)
}

pub fn string(v: &Value, key: &str) -> Result<String, KeyError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| err(key, "must be a string"))
}

pub fn boolean(v: &Value, key: &str) -> Result<bool, KeyError> {
    v.as_bool().ok_or_else(|| err(key, "must be true or false"))
}

/// One of `choices`, with a suggestion for a near miss.
pub fn choice<'c>(v: &Value, key: &str, choices: &[&'c str]) -> Result<&'c str, KeyError> {
    let s = string(v, key)?;
    choices.iter().copied().find(|c| *c == s).ok_or_else(|| {
        err(
            key,
            format!("unknown value \"{s}\"{}", value_suggestion(&s, choices)),
        )
    })
}

/// TOML → JSON for payloads and templates (datetimes become strings).
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_identifiers_in_braces() {
        let names: Vec<_> = placeholders("a {room} {x y} {} {ts_ms}}{").collect();
        assert_eq!(names, ["room", "ts_ms"]);
        assert!(uses(&json!({"a": ["{id}"]}), "id"));
        assert!(!uses(&json!({"{id}": 1}), "id"), "keys are never filled");
    }

    #[test]
    fn unknown_placeholders_are_named_with_a_suggestion() {
        let e =
            check_template(&json!({"t": "{romo}"}), "templates.chat", PLACEHOLDERS).unwrap_err();
        assert_eq!(e.key, "templates.chat");
        assert!(e.why.contains("unknown placeholder `{romo}`"), "{}", e.why);
        assert!(e.why.contains("did you mean `{room}`?"), "{}", e.why);
        assert!(check_template(
            &json!(["{ts_us}", 3, {"x": "{iso_time}"}]),
            "k",
            PLACEHOLDERS
        )
        .is_ok());
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        for ok in ["", "/type", "/a/0/b", "/a~1b", "/~0"] {
            assert!(check_pointer(ok, "k").is_ok(), "{ok}");
        }
        let e = check_pointer("type", "extract.room").unwrap_err();
        assert!(
            e.why.contains("must start with `/`, e.g. \"/type\""),
            "{}",
            e.why
        );
        assert!(check_pointer("/a~2", "k").is_err());
        assert!(check_pointer("/a~", "k").is_err());
    }

    #[test]
    fn matchers_refuse_empty_tables_and_bad_pointers() {
        let v: Value =
            toml::from_str("m = {}\nn = { type = \"x\" }\no = { \"/type\" = \"b\" }").unwrap();
        let e = Matcher::from_toml(&v["m"], "match.chat").unwrap_err();
        assert!(e.why.contains("can never tell frames apart"), "{}", e.why);
        let e = Matcher::from_toml(&v["n"], "match.chat").unwrap_err();
        assert_eq!(e.key, "match.chat.type");
        let m = Matcher::from_toml(&v["o"], "match.chat").unwrap();
        assert_eq!(m.fields, [("/type".to_owned(), json!("b"))]);
    }
}

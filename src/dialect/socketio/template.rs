//! Outgoing payload templates of the Socket.IO dialect filled with an
//! action's values (the templates themselves are scenario options,
//! [`Templates`](crate::scenario::socketio::Templates)).

use serde_json::Value;

/// Fills a template with an action's values (see [`Templates`]).
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
    pub ts: Option<u64>,
    pub after: Option<u64>,
    /// When set, an exact `"{text}"` becomes this value (a binary placeholder).
    pub text_value: Option<&'a Value>,
}

impl Vars<'_> {
    fn substitute(&self, s: &str) -> Value {
        match s {
            "{ts}" => return self.ts.map_or(Value::Null, Value::from),
            "{after}" => return self.after.map_or(Value::Null, Value::from),
            "{text}" if self.text_value.is_some() => {
                return self.text_value.cloned().unwrap_or(Value::Null)
            }
            _ => {}
        }
        if !s.contains('{') {
            return Value::String(s.to_owned());
        }
        // Numbers first and user text last, so text is never re-scanned.
        let mut out = s.to_owned();
        if let Some(ts) = self.ts {
            out = out.replace("{ts}", &ts.to_string());
        }
        if let Some(after) = self.after {
            out = out.replace("{after}", &after.to_string());
        }
        for (name, value) in [
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
}

//! A deliberately small template engine: `{{name}}` placeholders in
//! `include_str!` templates, filled from named values. Text values are
//! HTML-escaped; only values built by this module's callers from other
//! rendered templates (or plotters' SVG) go in as trusted HTML.
//! A placeholder without a value, or a value without a placeholder, is an
//! error, so a template and its caller cannot silently drift apart.

use std::borrow::Cow;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template `{template}` has no value for placeholder `{name}`")]
    Missing { template: String, name: String },
    #[error("template `{template}` has no placeholder `{name}`")]
    Unused { template: String, name: String },
    #[error("template `{template}` has an unclosed `{{{{`")]
    Unclosed { template: String },
}

/// A value to substitute.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// Plain text; escaped on output.
    Text(Cow<'a, str>),
    /// Already-safe HTML (rendered fragments, SVG).
    Html(Cow<'a, str>),
}

pub fn text<'a>(s: impl Into<Cow<'a, str>>) -> Value<'a> {
    Value::Text(s.into())
}

pub fn html<'a>(s: impl Into<Cow<'a, str>>) -> Value<'a> {
    Value::Html(s.into())
}

/// Fills `template` (named `name` in errors) with `values`.
pub fn render(
    name: &str,
    template: &str,
    values: &[(&str, Value<'_>)],
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            template: name.to_string(),
        })?;
        let key = after[..end].trim();
        let idx =
            values
                .iter()
                .position(|(k, _)| *k == key)
                .ok_or_else(|| TemplateError::Missing {
                    template: name.to_string(),
                    name: key.to_string(),
                })?;
        used[idx] = true;
        match &values[idx].1 {
            Value::Text(t) => escape_into(&mut out, t),
            Value::Html(h) => out.push_str(h),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(TemplateError::Unused {
            template: name.to_string(),
            name: values[i].0.to_string(),
        });
    }
    Ok(out)
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_escapes() {
        let out = render(
            "t",
            "<p>{{ a }}</p>{{b}}",
            &[("a", text("<x> & \"y\"")), ("b", html("<b>ok</b>"))],
        )
        .expect("render");
        assert_eq!(out, "<p>&lt;x&gt; &amp; &quot;y&quot;</p><b>ok</b>");
    }

    #[test]
    fn reports_drift_between_template_and_values() {
        assert!(matches!(
            render("t", "{{a}}", &[]),
            Err(TemplateError::Missing { .. })
        ));
        assert!(matches!(
            render("t", "x", &[("a", text("1"))]),
            Err(TemplateError::Unused { .. })
        ));
        assert!(matches!(
            render("t", "{{a", &[]),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}

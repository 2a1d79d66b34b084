//! Scenario diagnostics: byte spans → `file:line:col`, and the error
//! wording every scenario problem shares.
//!
//! Every message starts with a location so editors and CI logs can jump to
//! it, then names the key and the table it lives in.

use std::ops::Range;

use crate::exit::UsageError;

/// The scenario text and how to name it in messages.
pub struct Source<'a> {
    /// The file as the user gave it (e.g. `scenarios/x.toml`).
    pub name: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// `file:line:col` for a span, or just `file` without one.
    pub fn location(&self, span: Option<&Range<usize>>) -> String {
        match span {
            Some(span) => {
                let (line, col) = self.line_col(span.start);
                format!("{}:{line}:{col}", self.name)
            }
            None => self.name.to_owned(),
        }
    }

    /// A usage error (exit code 2) located at `span`.
    pub fn error(
        &self,
        span: Option<&Range<usize>>,
        message: impl std::fmt::Display,
    ) -> anyhow::Error {
        usage(format!("{}: {message}", self.location(span)))
    }
}

/// Wraps a finished message as a usage error (exit code 2).
pub fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(message))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The valid key closest to a mistyped one, if any is close enough to be a
/// plausible typo.
pub fn nearest<'k>(wrong: &str, candidates: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let wrong_lower = wrong.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&wrong_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or `; expected one of `a`, `b`` — the tail of an
/// "unknown name" message.
pub fn suggestion(wrong: &str, candidates: &[&str]) -> String {
    match nearest(wrong, candidates.iter().copied()) {
        Some(best) => format!("; did you mean `{best}`?"),
        None => format!("; expected one of {}", backticked(candidates)),
    }
}

/// Like [`suggestion`], for string values: `; did you mean "x"?`.
pub fn value_suggestion(wrong: &str, candidates: &[&str]) -> String {
    match nearest(wrong, candidates.iter().copied()) {
        Some(best) => format!("; did you mean \"{best}\"?"),
        None => format!(
            "; expected one of {}",
            candidates
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `a`, `b`, `c`
fn backticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let src = Source {
            name: "x.toml",
            text: "a = 1\nµ = \"é\" x\n",
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // `x` after two 2-byte characters: byte 15, column 9.
        assert_eq!(src.line_col(src.text.find('x').unwrap()), (2, 9));
        assert_eq!(src.location(Some(&(6..7))), "x.toml:2:1");
        assert_eq!(src.location(None), "x.toml");
    }

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["chat_rate", "message_size", "typing"];
        assert_eq!(nearest("chat_rat", keys), Some("chat_rate"));
        assert_eq!(nearest("Typing", keys), Some("typing"));
        assert_eq!(nearest("zzz", keys), None);
        assert_eq!(
            suggestion("zzz", &keys),
            "; expected one of `chat_rate`, `message_size`, `typing`"
        );
    }
}

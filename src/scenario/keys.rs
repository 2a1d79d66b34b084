//! The document walk: rejects unknown keys (with a suggestion) and records
//! where every key, value and table sits, so later stages can point at the
//! exact line and column of whatever they reject.
//!
//! Paths name positions in the file: `rooms.count`, `clients[1].chat_rate`,
//! `stages[0]` (a table), `output.formats[2]` (an array element).

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use super::diag::{suggestion, Source};
use super::raw::{self, field_names};

/// Where one path sits in the file.
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// The key itself (`chat_rate`), or a table's header.
    pub key: Option<Range<usize>>,
    /// The value (`"0.5/s"`), or a whole table.
    pub value: Option<Range<usize>>,
}

/// Every path of the document and its place.
#[derive(Debug, Default)]
pub struct Index {
    places: HashMap<String, Place>,
    /// Paths in document order, for span → path lookups.
    order: Vec<String>,
}

impl Index {
    /// Best span to blame a value: the value, else its key.
    pub fn value_span(&self, path: &str) -> Option<&Range<usize>> {
        let place = self.places.get(path)?;
        place.value.as_ref().or(place.key.as_ref())
    }

    /// Best span to blame a key or a table: the key/header, else the value.
    pub fn key_span(&self, path: &str) -> Option<&Range<usize>> {
        let place = self.places.get(path)?;
        place.key.as_ref().or(place.value.as_ref())
    }

    /// The innermost recorded path whose value contains `span`.
    pub fn path_at(&self, span: &Range<usize>) -> Option<&str> {
        self.order
            .iter()
            .filter_map(|p| {
                let v = self.places[p].value.as_ref()?;
                (v.start <= span.start && span.end <= v.end.max(v.start + 1))
                    .then_some((v.end - v.start, p.as_str()))
            })
            .min_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    }

    fn record(&mut self, path: String, place: Place) {
        if !self.places.contains_key(&path) {
            self.order.push(path.clone());
        }
        self.places.insert(path, place);
    }
}

/// A `[thresholds]` entry before its metric and condition are checked.
#[derive(Debug, Clone)]
pub struct RawThreshold {
    /// The metric path, with dotted-key tables joined (`delivery_latency.p99`).
    pub metric: String,
    pub key_span: Option<Range<usize>>,
    /// The condition, or the TOML type found instead of a string.
    pub condition: Result<String, &'static str>,
    pub value_span: Option<Range<usize>>,
}

/// The keys a table may hold, by its path with indices removed; `None` for
/// tables whose keys are free (`thresholds`) or for leaves.
fn known_keys(table: &str) -> Option<&'static [&'static str]> {
    Some(match table {
        "" => field_names::<raw::RawScenario>(),
        "target" => field_names::<raw::RawTarget>(),
        "target.server" => field_names::<raw::RawServer>(),
        "target.auth" => field_names::<raw::RawAuth>(),
        "target.deflate" => field_names::<raw::RawDeflate>(),
        "target.redis" => field_names::<raw::RawRedis>(),
        "target.tls" => field_names::<raw::RawTls>(),
        "stages" => field_names::<raw::RawStage>(),
        "rooms" => field_names::<raw::RawRooms>(),
        "clients" => field_names::<raw::RawClient>(),
        "clients.reconnect_backoff" => field_names::<raw::RawBackoff>(),
        "output" => field_names::<raw::RawOutput>(),
        "run" => field_names::<raw::RawRun>(),
        "faults" => field_names::<raw::RawFault>(),
        _ => return None,
    })
}

/// Where a key lives, as messages say it: `in [[clients]]`,
/// `in [target.server]`, `at the top level`.
pub fn table_display(table: &str) -> String {
    match table {
        "" => "at the top level".into(),
        "stages" | "clients" | "faults" => format!("in [[{table}]]"),
        "clients.reconnect_backoff" => "in `reconnect_backoff` of [[clients]]".into(),
        _ => format!("in [{table}]"),
    }
}

/// Removes array indices: `clients[1].reconnect_backoff` → `clients.reconnect_backoff`.
pub fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Walks the document: returns the index and the thresholds, or the
/// earliest unknown key in the file.
pub fn walk(doc: &toml_edit::Table, src: &Source) -> anyhow::Result<(Index, Vec<RawThreshold>)> {
    let mut walker = Walker {
        index: Index::default(),
        thresholds: Vec::new(),
        unknown: Vec::new(),
    };
    walker.table(doc, "", "", src);
    if let Some((_, err)) = walker.unknown.into_iter().min_by_key(|(at, _)| *at) {
        return Err(err);
    }
    Ok((walker.index, walker.thresholds))
}

struct Walker {
    index: Index,
    thresholds: Vec<RawThreshold>,
    /// Unknown keys found, by offset; the earliest is reported.
    unknown: Vec<(usize, anyhow::Error)>,
}

/// Tables whose keys another module checks (`[target.socketio]`, see
/// `SocketIoOptions::from_toml`): every key is recorded, none rejected here.
fn checked_elsewhere(table: &str) -> bool {
    table == "target.socketio"
        || table.starts_with("target.socketio.")
        || table == "target.json"
        || table.starts_with("target.json.")
}

impl Walker {
    fn table(&mut self, table: &dyn TableLike, path: &str, norm: &str, src: &Source) {
        if checked_elsewhere(norm) {
            for (key, item) in table.iter() {
                let key_span = table.get_key_value(key).and_then(|(k, _)| k.span());
                self.item(item, key_span, join(path, key), &join(norm, key), src);
            }
            return;
        }
        let Some(known) = known_keys(norm) else {
            return;
        };
        for (key, item) in table.iter() {
            let key_span = table.get_key_value(key).and_then(|(k, _)| k.span());
            if !known.contains(&key) {
                // A `[header]` is blamed from its `[`, not from the name inside.
                let blame = match item {
                    Item::Table(t) if !t.is_dotted() => t.span().or_else(|| key_span.clone()),
                    Item::ArrayOfTables(a) => a
                        .iter()
                        .next()
                        .and_then(|t| t.span())
                        .or_else(|| key_span.clone()),
                    _ => key_span.clone(),
                };
                let at = blame.as_ref().map_or(0, |s| s.start);
                let err = src.error(
                    blame.as_ref(),
                    format!(
                        "unknown key `{key}` {}{}",
                        table_display(norm),
                        suggestion(key, known)
                    ),
                );
                self.unknown.push((at, err));
                continue;
            }
            let child = join(path, key);
            let child_norm = join(norm, key);
            if child_norm == "thresholds" {
                self.index.record(
                    child.clone(),
                    Place {
                        key: key_span.clone(),
                        value: item.span(),
                    },
                );
                self.thresholds_table(item, "", key_span);
                continue;
            }
            self.item(item, key_span, child, &child_norm, src);
        }
    }

    fn item(
        &mut self,
        item: &Item,
        key_span: Option<Range<usize>>,
        path: String,
        norm: &str,
        src: &Source,
    ) {
        let is_table = known_keys(norm).is_some() || checked_elsewhere(norm);
        match item {
            Item::ArrayOfTables(array) if is_table => {
                // Blame the whole array on its first `[[header]]` line.
                let first = array.iter().next().and_then(|t| t.span());
                self.index.record(
                    path.clone(),
                    Place {
                        key: first.or(key_span),
                        value: array.span(),
                    },
                );
                for (i, t) in array.iter().enumerate() {
                    let elem = format!("{path}[{i}]");
                    self.index.record(
                        elem.clone(),
                        Place {
                            key: t.span(),
                            value: t.span(),
                        },
                    );
                    self.table(t, &elem, norm, src);
                }
            }
            Item::Value(Value::Array(array)) => {
                self.index.record(
                    path.clone(),
                    Place {
                        key: key_span,
                        value: array.span(),
                    },
                );
                for (i, v) in array.iter().enumerate() {
                    let elem = format!("{path}[{i}]");
                    self.index.record(
                        elem.clone(),
                        Place {
                            key: v.span(),
                            value: v.span(),
                        },
                    );
                    if let (Value::InlineTable(t), true) = (v, is_table) {
                        self.table(t, &elem, norm, src);
                    }
                }
            }
            _ => {
                // Dotted keys (`target.url = ...`) make tables without a header;
                // blame their first key instead.
                let header = match item {
                    Item::Table(t) if !t.is_dotted() => t.span().or_else(|| key_span.clone()),
                    _ => key_span.clone(),
                };
                self.index.record(
                    path.clone(),
                    Place {
                        key: header,
                        value: item.span().or(key_span),
                    },
                );
                if is_table {
                    if let Some(t) = item.as_table_like() {
                        self.table(t, &path, norm, src);
                    }
                }
            }
        }
    }

    /// `[thresholds]` keys are metric paths; unquoted dotted keys
    /// (`delivery_latency.p99 = ...`) arrive as nested tables and are joined.
    fn thresholds_table(&mut self, item: &Item, prefix: &str, outer_key: Option<Range<usize>>) {
        let Some(table) = item.as_table_like() else {
            self.thresholds.push(RawThreshold {
                metric: prefix.to_owned(),
                key_span: outer_key,
                condition: Err(type_name(item)),
                value_span: item.span(),
            });
            return;
        };
        for (key, child) in table.iter() {
            let key_span = table.get_key_value(key).and_then(|(k, _)| k.span());
            let metric = join(prefix, key);
            // The leftmost segment of a dotted key is where the line starts.
            let blame = if prefix.is_empty() {
                key_span.clone()
            } else {
                outer_key.clone()
            };
            match child {
                Item::Value(Value::String(s)) => self.thresholds.push(RawThreshold {
                    metric,
                    key_span: blame,
                    condition: Ok(s.value().clone()),
                    value_span: s.span(),
                }),
                other if other.is_table_like() => self.thresholds_table(other, &metric, blame),
                other => self.thresholds.push(RawThreshold {
                    metric,
                    key_span: blame,
                    condition: Err(type_name(other)),
                    value_span: other.span(),
                }),
            }
        }
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => v.type_name(),
        Item::Table(_) => "table",
        Item::ArrayOfTables(_) => "array of tables",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk_str(text: &str) -> anyhow::Result<(Index, Vec<RawThreshold>)> {
        let src = Source {
            name: "t.toml",
            text,
        };
        let doc = toml_edit::ImDocument::parse(text).unwrap();
        walk(doc.as_table(), &src)
    }

    #[test]
    fn indexes_keys_values_and_tables() {
        let text = "name = \"x\"\n[[clients]]\nweight = 2\n[[clients]]\nchat_rate = \"1/s\"\n";
        let (index, _) = walk_str(text).unwrap();
        let src = Source {
            name: "t.toml",
            text,
        };
        let at = |span: Option<&Range<usize>>| src.location(span);
        assert_eq!(at(index.key_span("clients[1]")), "t.toml:4:1");
        assert_eq!(at(index.value_span("clients[1].chat_rate")), "t.toml:5:13");
        assert_eq!(at(index.key_span("clients[0].weight")), "t.toml:3:1");
        let value = index.value_span("clients[1].chat_rate").unwrap().clone();
        assert_eq!(index.path_at(&value), Some("clients[1].chat_rate"));
    }

    #[test]
    fn reports_the_earliest_unknown_key() {
        let err = walk_str("[rooms]\ncuont = 3\n[[clients]]\nchat_rat = 1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml:2:1: unknown key `cuont` in [rooms]; did you mean `count`?"
        );
    }

    #[test]
    fn joins_dotted_threshold_keys() {
        let (_, t) = walk_str(
            "[thresholds]\n\"errors.rate\" = \"< 1%\"\ndelivery_latency.p99 = \"< 50ms\"\n",
        )
        .unwrap();
        let metrics: Vec<_> = t.iter().map(|t| t.metric.as_str()).collect();
        assert_eq!(metrics, ["errors.rate", "delivery_latency.p99"]);
        assert_eq!(t[1].condition.as_deref(), Ok("< 50ms"));
    }

    #[test]
    fn docs_describe_every_key() {
        let docs = include_str!("../../docs/scenario.md");
        for table in [
            "",
            "target",
            "target.server",
            "target.auth",
            "stages",
            "rooms",
            "clients",
            "clients.reconnect_backoff",
            "output",
            "run",
            "faults",
        ] {
            for key in known_keys(table).unwrap() {
                // A row in a key table, or a section for a table-valued key.
                let section = format!("[{}]", join(table, key));
                assert!(
                    docs.contains(&format!("| `{key}` |")) || docs.contains(&section),
                    "docs/scenario.md has no table row for `{key}` {}",
                    table_display(table)
                );
            }
        }
        // `[target.socketio]` keys are checked by the dialect's own parser.
        assert!(docs.contains("### `[target.socketio]`"));
        for key in crate::scenario::socketio::TOP {
            assert!(
                docs.contains(&format!("| `{key}` |")),
                "docs/scenario.md has no table row for `{key}` in [target.socketio]"
            );
        }
        assert!(docs.contains("### `[target.json]`"));
        let json_docs = include_str!("../../docs/json.md");
        for key in crate::scenario::json::TOP {
            assert!(
                docs.contains(&format!("| `{key}` |"))
                    && json_docs.contains(&format!("| `{key}` |")),
                "docs/scenario.md or docs/json.md has no table row for `{key}` in [target.json]"
            );
        }
    }

    #[test]
    fn strips_indices() {
        assert_eq!(
            strip_indices("clients[12].reconnect_backoff.max"),
            "clients.reconnect_backoff.max"
        );
    }
}

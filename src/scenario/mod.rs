//! Scenarios: TOML (+ flags) → validated [`Plan`].
//!
//! Two stages, as in ripgrep's config: the file is first read as written
//! (`raw`, with every key checked against the known ones in `keys`), then
//! typed, defaulted and cross-checked into a [`Plan`] (`validate`). Every
//! error is an [`crate::exit::UsageError`] that names the file, line,
//! column and key, and suggests the nearest valid key or value.
//! Nothing here opens a socket.

mod diag;
mod keys;
pub mod metrics;
pub mod plan;
mod raw;
pub mod units;
mod validate;

pub use plan::*;
pub use validate::{default_output_dir, defaults};

use std::path::Path;

use diag::{usage, Source};

/// Reads, parses and validates a scenario file into a [`Plan`].
pub fn load(path: &Path, overrides: &PlanOverrides) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read scenario {}: {e}", path.display())))?;
    let name = path.display().to_string();
    parse(&text, &name, Some(path), overrides)
}

/// Validates scenario text; `name` is how messages refer to it.
pub fn parse(
    text: &str,
    name: &str,
    path: Option<&Path>,
    overrides: &PlanOverrides,
) -> anyhow::Result<Plan> {
    let src = Source { name, text };
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        src.error(
            e.span().as_ref(),
            format!(
                "invalid TOML: {}",
                e.message().trim_end().replace('\n', "; ")
            ),
        )
    })?;
    let (index, thresholds) = keys::walk(doc.as_table(), &src)?;
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| type_error(&src, &index, &e))?;
    let validator = validate::Validator {
        src: &src,
        index: &index,
        path: path.map(Path::to_path_buf),
    };
    let mut plan = validator.plan(raw, overrides)?;
    plan.thresholds = validator.thresholds(thresholds, overrides)?;
    Ok(plan)
}

/// Rewrites a serde type error (`invalid type: string "x", expected u32`)
/// as `file:L:C: bad `key` in [table]: expected ..., found ...`.
fn type_error(src: &Source, index: &keys::Index, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim_end();
    let friendly = friendly_type_message(message);
    let Some(span) = e.span() else {
        return src.error(None, friendly);
    };
    match index.path_at(&span) {
        Some(path) => {
            let norm = keys::strip_indices(path);
            let (table, key) = norm.rsplit_once('.').unwrap_or(("", &norm));
            src.error(
                Some(&span),
                format!("bad `{key}` {}: {friendly}", keys::table_display(table)),
            )
        }
        None => src.error(Some(&span), friendly),
    }
}

/// `invalid type: string "x", expected u32` → `expected a whole number ≥ 0, found string "x"`.
fn friendly_type_message(message: &str) -> String {
    fn expected(what: &str) -> &str {
        match what {
            "u32" | "u64" | "usize" => "a whole number ≥ 0",
            "f64" | "f32" => "a number",
            "a boolean" => "true or false",
            "a string" => "a string",
            "a sequence" => "an array",
            other => other,
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, what)) = rest.split_once(", expected ") {
            return format!("expected {}, found {found}", expected(what));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, what)) = rest.split_once(", expected ") {
            return format!("{found} is out of range; expected {}", expected(what));
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[[stages]]\nduration = \"10s\"\ntarget = 10\n[[clients]]\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let plan = parse(
            MINIMAL,
            "min.toml",
            Some(Path::new("dir/min.toml")),
            &PlanOverrides::default(),
        )
        .unwrap();
        assert_eq!(plan.name, "min");
        assert_eq!(plan.seed, defaults::SEED);
        assert!(matches!(plan.target.endpoint, Endpoint::Bundled { ref args } if args.is_empty()));
        assert_eq!(plan.target.protocol, Protocol::Chat);
        assert_eq!(plan.rooms.count, 1);
        assert_eq!(plan.populations.len(), 1);
        assert_eq!(plan.populations[0].name, "clients-1");
        assert_eq!(plan.populations[0].share, 1.0);
        assert_eq!(plan.populations[0].chat_rate, 0.0);
        assert_eq!(
            plan.populations[0].ping_interval,
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(plan.output.formats, vec![Format::Json, Format::Html]);
        assert!(plan.output.dir.starts_with("reports"));
        assert!(plan.output.dir.to_string_lossy().contains("min-"));
        assert_eq!(plan.run.abort_on_connect_failure_share, Some(0.5));
        assert!(plan.run.workers >= 1);
    }

    #[test]
    fn overrides_apply() {
        let text = format!("{MINIMAL}[thresholds]\n\"delivery_latency.p99\" = \"< 50ms\"\n\"errors.rate\" = \"< 1%\"\n");
        let overrides = PlanOverrides {
            out_dir: Some("out/x".into()),
            thresholds: vec![
                "delivery_latency.p99<=20ms".into(),
                "delivery.lost==0".into(),
            ],
            seed: Some(7),
            target_url: Some("ws://127.0.0.1:9/ws".into()),
        };
        let plan = parse(&text, "o.toml", None, &overrides).unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.output.dir, std::path::PathBuf::from("out/x"));
        assert!(matches!(plan.target.endpoint, Endpoint::Url(ref u) if u.port == 9));
        let t: Vec<_> = plan
            .thresholds
            .iter()
            .map(|t| (t.metric.as_str(), t.op, t.value))
            .collect();
        assert_eq!(
            t,
            [
                ("delivery_latency.p99", CmpOp::Le, 20.0),
                ("errors.rate", CmpOp::Lt, 0.01),
                ("delivery.lost", CmpOp::Eq, 0.0)
            ]
        );
    }

    #[test]
    fn friendly_messages() {
        assert_eq!(
            friendly_type_message("invalid type: string \"x\", expected u32"),
            "expected a whole number ≥ 0, found string \"x\""
        );
        assert_eq!(
            friendly_type_message("invalid value: integer `-1`, expected u32"),
            "integer `-1` is out of range; expected a whole number ≥ 0"
        );
    }
}

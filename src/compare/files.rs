//! Reading results files for comparison and writing baselines.
//!
//! Everything wrong with an input file (missing, unreadable, not JSON,
//! another schema version) is the user's to fix, so it is a `UsageError`
//! (exit 2).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::UsageError;
use crate::results::{RunResults, SCHEMA_VERSION};

/// Loads a `results.json`, checking its schema version before its shape so
/// that a file from another bench version gets the clearer message.
pub fn load_results(path: &Path) -> anyhow::Result<RunResults> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("{} is not valid JSON results: {e}", path.display())))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(UsageError(format!(
                "{} has results schema version {v}, but this bench reads version {SCHEMA_VERSION}; \
                 re-run it (or re-save the baseline) with this bench",
                path.display()
            ))
            .into())
        }
        None => {
            return Err(UsageError(format!(
                "{} has no `schema_version`: is it a bench results.json?",
                path.display()
            ))
            .into())
        }
    }
    serde_json::from_value(value).map_err(|e| {
        UsageError(format!(
            "{} does not match results schema version {SCHEMA_VERSION}: {e}",
            path.display()
        ))
        .into()
    })
}

/// Writes results as pretty JSON, creating parent directories.
pub fn write_results(results: &RunResults, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(results).context("cannot serialize results")?;
    // Atomic, so a crash never leaves a half-written baseline.
    crate::atomic::write_atomic(path, (json + "\n").as_bytes())
}

/// Default baseline location for a run: `reports/baselines/<name>.json`,
/// with the scenario name reduced to a safe file name.
pub fn default_baseline_path(results: &RunResults) -> PathBuf {
    let safe: String = results
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if safe.is_empty() {
        "baseline".into()
    } else {
        safe
    };
    PathBuf::from("reports/baselines").join(format!("{name}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_names_are_sanitized() {
        let r = RunResults {
            name: "chat fan-out/10k".into(),
            ..Default::default()
        };
        assert_eq!(
            default_baseline_path(&r),
            PathBuf::from("reports/baselines/chat_fan-out_10k.json")
        );
        assert_eq!(
            default_baseline_path(&RunResults::default()),
            PathBuf::from("reports/baselines/baseline.json")
        );
    }
}

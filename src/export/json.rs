//! `results.json`: the run's full results, pretty-printed, in the versioned
//! shape of `docs/results-schema.json`. Every other format and `bench
//! report` / `bench compare` can be rebuilt from this file.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Exporter;
use crate::exit::UsageError;
use crate::results::{RunResults, SCHEMA_VERSION};

/// The file name inside the output directory.
pub const FILE_NAME: &str = "results.json";

/// Writes `results.json`.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn name(&self) -> &'static str {
        "json"
    }

    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join(FILE_NAME);
        let mut json = serde_json::to_vec_pretty(results).context("serializing results")?;
        json.push(b'\n');
        super::write_atomic(&path, &json)?;
        Ok(path)
    }
}

/// Reads a `results.json`, refusing files written by a newer schema. Every
/// problem with the file is the user's to fix, hence a `UsageError`.
/// (`bench compare` reads through `compare::files::load_results`, which is
/// stricter: both sides must have exactly this schema version.)
pub fn read(path: &Path) -> anyhow::Result<RunResults> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let results: RunResults = serde_json::from_str(&raw).map_err(|e| {
        UsageError(format!(
            "{} is not a bench results.json: {e}",
            path.display()
        ))
    })?;
    if results.schema_version > SCHEMA_VERSION {
        return Err(UsageError(format!(
            "{} uses results schema v{}, newer than this bench understands (v{SCHEMA_VERSION}); upgrade bench",
            path.display(),
            results.schema_version
        ))
        .into());
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pretty_json_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let results = RunResults {
            schema_version: SCHEMA_VERSION,
            name: "t".into(),
            interrupted: true,
            ..Default::default()
        };
        let path = JsonExporter.export(&results, dir.path()).unwrap();
        assert_eq!(path, dir.path().join("results.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\n  \"schema_version\": 1,"));
        let back = read(&path).unwrap();
        assert_eq!((back.name.as_str(), back.interrupted), ("t", true));
        assert!(!dir.path().join(".results.json.tmp").exists());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let results = RunResults {
            schema_version: SCHEMA_VERSION + 1,
            ..Default::default()
        };
        let path = JsonExporter.export(&results, dir.path()).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("newer than this bench"), "{err}");
    }
}

//! Result exporters: one per format behind [`Exporter`], driven by
//! [`ExportManager`]. Each exporter runs even when another fails, so a
//! broken HTML template never costs the user their `results.json`.

pub mod json;
pub mod junit;
pub mod markdown;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::results::RunResults;

/// Writes `contents` to `path` through a temp file beside it and a rename,
/// creating parent directories: a reader (or a crash mid-write) never sees
/// a truncated file where a good one was expected.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Writes one format of a run's results into the output directory.
pub trait Exporter {
    /// Short format name, e.g. `json`, for logs and errors.
    fn name(&self) -> &'static str;
    /// Writes the file(s) and returns the main path written.
    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf>;
}

/// Runs a list of exporters, collecting every success and every failure.
#[derive(Default)]
pub struct ExportManager {
    exporters: Vec<Box<dyn Exporter>>,
}

/// What an [`ExportManager::export_all`] call produced.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub written: Vec<(&'static str, PathBuf)>,
    pub failed: Vec<(&'static str, anyhow::Error)>,
}

impl ExportManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, exporter: Box<dyn Exporter>) -> &mut Self {
        self.exporters.push(exporter);
        self
    }

    pub fn export_all(&self, results: &RunResults, dir: &Path) -> ExportReport {
        let mut report = ExportReport::default();
        if let Err(e) = std::fs::create_dir_all(dir) {
            for ex in &self.exporters {
                report.failed.push((
                    ex.name(),
                    anyhow::anyhow!("cannot create {}: {e}", dir.display()),
                ));
            }
            return report;
        }
        for ex in &self.exporters {
            match ex.export(results, dir) {
                Ok(path) => report.written.push((ex.name(), path)),
                Err(e) => report.failed.push((ex.name(), e)),
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_dirs_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/out.txt");
        write_atomic(&path, b"first").expect("first write");
        write_atomic(&path, b"second").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read back"), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["out.txt"]);
    }
}

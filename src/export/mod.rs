//! Result exporters: one per format behind [`Exporter`], driven by
//! [`ExportManager`]. Each exporter runs even when another fails, so a
//! broken HTML template never costs the user their `results.json`.

pub mod json;
pub mod junit;
pub mod markdown;

use std::path::{Path, PathBuf};

use crate::results::RunResults;

pub use crate::atomic::write_atomic;

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

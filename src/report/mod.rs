//! `bench report`: the HTML report of a run (also written by `bench run`
//! through [`HtmlExporter`]) and the comparison of several runs.
//!
//! Layout: [`page`] and [`compare`] assemble pages from `templates/`
//! (via [`template`]); [`charts`] holds one file per chart, all drawn by
//! `charts::canvas` with plotters' SVG backend. The output is one HTML
//! file with inline CSS and SVG, a CSP that forbids every fetch, and no
//! JavaScript.

pub mod charts;
mod compare;
pub(crate) mod html;
mod page;
pub mod template;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use compare::{render_comparison, LabeledRun};
pub use page::render_report;

use crate::exit::Outcome;
use crate::export::Exporter;
use crate::results::RunResults;

/// File name of the report inside a run's output directory.
pub const REPORT_FILE: &str = "report.html";

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// One results.json renders its report; two or more render a comparison
    /// (the first is the baseline).
    #[arg(required = true, value_name = "RESULTS_JSON")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the HTML. Default: `report.html` next to a single
    /// input, `comparison.html` next to the first of several.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn execute(args: ReportArgs) -> anyhow::Result<Outcome> {
    let runs = args
        .inputs
        .iter()
        .map(|p| crate::export::json::read(p).map(|r| (p.as_path(), r)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (html, default_name) = match runs.as_slice() {
        [(_, only)] => (render_report(only)?, REPORT_FILE),
        _ => {
            let labels = unique_labels(&runs);
            let labeled: Vec<LabeledRun> = runs
                .into_iter()
                .zip(labels)
                .map(|((_, results), label)| LabeledRun { label, results })
                .collect();
            (render_comparison(&labeled)?, "comparison.html")
        }
    };
    let output = args.output.unwrap_or_else(|| {
        args.inputs[0]
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(default_name)
    });
    crate::export::write_atomic(&output, html.as_bytes())?;
    println!("wrote {}", output.display());
    Ok(Outcome::Pass)
}

/// Legend labels for compared files: the run directory's name (or the file
/// stem when it is not `results.json`), made unique with `#n`.
fn unique_labels(runs: &[(&Path, RunResults)]) -> Vec<String> {
    let mut labels: Vec<String> = runs
        .iter()
        .map(|(path, results)| {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let dir = path
                .parent()
                .and_then(Path::file_name)
                .and_then(|s| s.to_str());
            match (stem, dir) {
                ("results", Some(dir)) if !dir.is_empty() => dir.to_string(),
                ("results", _) | ("", _) => page::display_name(results),
                (stem, _) => stem.to_string(),
            }
        })
        .collect();
    for i in 0..labels.len() {
        if labels[..i].contains(&labels[i]) {
            labels[i] = format!("{} #{}", labels[i], i + 1);
        }
    }
    labels
}

/// Writes `report.html` into a run's output directory; `bench run`
/// registers it with the `ExportManager`.
#[derive(Debug, Default, Clone, Copy)]
pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn name(&self) -> &'static str {
        "html"
    }

    fn export(&self, results: &RunResults, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join(REPORT_FILE);
        let html = render_report(results).context("rendering the HTML report")?;
        crate::export::write_atomic(&path, html.as_bytes())?;
        Ok(path)
    }
}

//! Command line: one subcommand per job. Each subcommand's flags live beside
//! the code that runs it; this file only lists them.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version,
    about = "Load generator and benchmarking harness for real-time WebSocket services"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing would only complicate clap
pub enum Command {
    /// Run a scenario and write results.json, report.html and a summary.
    Run(crate::run::RunArgs),
    /// Start the bundled reference chat server (same flags as `reference-server`).
    Serve(reference_server::config::ServerArgs),
    /// Regenerate an HTML report from results.json, or compare several runs.
    Report(crate::report::ReportArgs),
    /// Compare a run against a baseline: improved, regressed or within noise.
    Compare(crate::compare_cmd::CompareArgs),
    /// Save or update a baseline.
    #[command(subcommand)]
    Baseline(crate::compare_cmd::BaselineCommand),
    /// Find the highest load that meets the SLOs, and project instance counts.
    Capacity(crate::capacity::CapacityArgs),
    /// Merge shard files (`bench run --shard`) into one results.json and report.
    Merge(crate::shard_cmd::MergeArgs),
    /// Connect once, print the first frames and a starter [target.json].
    Probe(crate::probe::ProbeArgs),
}

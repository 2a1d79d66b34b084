//! `bench`: a load generator and benchmarking harness for real-time
//! WebSocket services. `main.rs` only parses the command line; everything
//! else lives here so tests can drive it in-process.

pub mod atomic;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod compare_cmd;
pub mod dialect;
pub mod engine;
pub mod exit;
pub mod export;
pub mod format;
pub mod probe;
pub mod report;
pub mod results;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod shard_cmd;
pub mod summary;
pub mod thresholds;

use exit::Outcome;

/// Runs one parsed command line and returns what it concluded. Errors are
/// printed here, once, with their context chain.
pub fn main_with(cli: cli::Cli) -> Outcome {
    use cli::Command;
    let result = match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Serve(args) => return reference_server::config::serve_blocking(args),
        Command::Report(args) => report::execute(args),
        Command::Compare(args) => compare_cmd::execute(args),
        Command::Baseline(cmd) => compare_cmd::execute_baseline(cmd),
        Command::Capacity(args) => capacity::execute(args),
        Command::Merge(args) => shard_cmd::execute_merge(args),
        Command::Probe(args) => probe::execute(args),
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.downcast_ref::<exit::UsageError>()
                .map_or(Outcome::Failure, |_| Outcome::Usage)
        }
    }
}

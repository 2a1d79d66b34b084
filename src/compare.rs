//! `bench compare` and `bench baseline` (placeholder until its issue lands).

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Save a run's results as a baseline.
    Save {},
}

pub fn execute(_args: CompareArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench compare` is not implemented yet")
}

pub fn execute_baseline(_cmd: BaselineCommand) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench baseline` is not implemented yet")
}

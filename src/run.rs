//! `bench run` (placeholder until its issue lands).

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn execute(_args: RunArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench run` is not implemented yet")
}

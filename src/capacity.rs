//! `bench capacity` (placeholder until its issue lands).

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {}

pub fn execute(_args: CapacityArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench capacity` is not implemented yet")
}

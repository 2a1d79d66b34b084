//! `bench capacity`: the highest load that meets the SLOs, a scalability
//! model fitted to the steps, and an instance-count projection.

pub mod driver;
pub mod model;
pub mod projection;
pub mod search;
pub mod usl;

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {}

pub fn execute(_args: CapacityArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench capacity` is not implemented yet")
}

//! `bench report` (placeholder until its issue lands).

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

pub fn execute(_args: ReportArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("`bench report` is not implemented yet")
}

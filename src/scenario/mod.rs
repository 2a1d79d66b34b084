//! Scenarios: TOML (+ flags) → validated [`Plan`].

pub mod plan;

pub use plan::*;

use std::path::Path;

/// Reads, parses and validates a scenario file into a [`Plan`]
/// (placeholder until the scenario work lands).
pub fn load(path: &Path, _overrides: &PlanOverrides) -> anyhow::Result<Plan> {
    anyhow::bail!(
        "scenario loading is not implemented yet: {}",
        path.display()
    )
}

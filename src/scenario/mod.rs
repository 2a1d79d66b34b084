//! Scenarios: TOML (+ flags) → validated [`Plan`].

pub mod plan;

pub use plan::*;

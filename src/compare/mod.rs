//! Noise-aware regression gates against a saved baseline (the library
//! behind `bench compare` and `bench baseline`).
//!
//! - [`gates`]: the gated metrics, directions and tolerances (`--max-regression`).
//! - [`stats`]: medians, bootstrap intervals, Mann-Whitney U.
//! - [`verdict`]: the pure comparison engine (improved / regressed / within noise).
//! - [`repeats`]: combining `bench run --repeat N` runs into one result.
//! - [`files`]: loading results and writing baselines.
//!
//! The command itself (`bench compare`, `bench baseline`: files, terminal,
//! JUnit and Markdown outputs) is `crate::compare_cmd`; verdict types are
//! `crate::results::verdict` and formatting `crate::format`, so `compare`
//! and `export` never import each other.

pub mod files;
pub mod gates;
pub mod repeats;
pub mod stats;
pub mod verdict;

pub use repeats::combine_repeats;
pub use verdict::{compare_runs, Comparison, Verdict};

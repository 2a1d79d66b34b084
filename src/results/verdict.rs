//! What a comparison concluded, as data: verdicts, evidence, rows and the
//! whole comparison. Computed by `compare::verdict`, rendered by the
//! terminal, `export::junit` and `export::markdown`; it lives here so
//! neither `compare` nor `export` imports the other.

use serde::Serialize;

use crate::exit::Outcome;
use crate::results::{RunResults, ThresholdResult};

/// Fewest repeats per side for the statistical test. With 3 vs 3 the exact
/// Mann-Whitney p-value can reach 0.05 (complete separation, 1 of 20
/// arrangements); with 2 vs 2 it never goes below 1/6.
pub const MIN_REPEATS: usize = 3;
/// One-sided significance level of the rank test.
pub const ALPHA: f64 = 0.05;
/// Confidence level of the bootstrap interval.
pub const CI_LEVEL: f64 = 0.95;

/// Which way a metric gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// A two-sided percentile confidence interval (computed in `compare::stats`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    WithinNoise,
    /// Missing on one side or both (e.g. no server sampling): not gated.
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::WithinNoise => "within noise",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// How a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Rank test and bootstrap over the repeats.
    Repeats {
        baseline_n: usize,
        current_n: usize,
        /// One-sided Mann-Whitney p-value for "current is worse".
        p_worse: f64,
        /// One-sided Mann-Whitney p-value for "current is better".
        p_better: f64,
        /// Bootstrap CI of median(current) - median(baseline), metric units.
        ci: Interval,
    },
    /// At least one side is a single value.
    SingleRun,
    /// Nothing to compare.
    None,
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub metric: String,
    pub direction: Direction,
    /// Median of the repeats, or the single value.
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Signed `(current - baseline) / |baseline|` in percent; `None` when the
    /// baseline is zero or a side is missing.
    pub delta_pct: Option<f64>,
    /// The tolerance that applied (repeat or single-run), percent.
    pub tolerance_pct: f64,
    pub noise_floor: f64,
    pub evidence: Evidence,
    pub verdict: Verdict,
}

/// Why a run cannot be trusted, if it cannot (interrupted, generator saturated).
pub fn invalid_reasons(results: &RunResults) -> Vec<String> {
    results.invalid_reasons()
}

/// Everything `bench compare` concluded.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline_name: String,
    pub current_name: String,
    pub rows: Vec<MetricComparison>,
    /// The current run's own thresholds, reported (and gated) alongside.
    pub thresholds: Vec<ThresholdResult>,
    /// Non-empty when the current run cannot be trusted.
    pub invalid_reasons: Vec<String>,
    /// Things worth knowing that do not change the verdict, e.g. that the
    /// two runs used different scenarios.
    pub warnings: Vec<String>,
}

impl Comparison {
    pub fn regressed(&self) -> impl Iterator<Item = &MetricComparison> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// Exit outcome: invalid run (5) over regression (4) over failed
    /// thresholds (3) over pass (0).
    pub fn outcome(&self) -> Outcome {
        let mut outcome = Outcome::Pass;
        if self.thresholds.iter().any(|t| !t.pass) {
            outcome = outcome.worst(Outcome::ThresholdsFailed);
        }
        if self.regressed().next().is_some() {
            outcome = outcome.worst(Outcome::Regression);
        }
        if !self.invalid_reasons.is_empty() {
            outcome = outcome.worst(Outcome::InvalidRun);
        }
        outcome
    }
}

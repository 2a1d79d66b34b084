//! Process exit codes, shared by every subcommand (documented in README and docs/ci.md).

use std::process::ExitCode;

/// What a command concluded; `main` maps it to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Pass = 0,
    /// An unexpected runtime failure (I/O, crash of bench itself).
    Failure = 1,
    /// Bad command line or scenario/configuration.
    Usage = 2,
    /// One or more thresholds/SLOs failed.
    ThresholdsFailed = 3,
    /// A gated metric regressed against the baseline.
    Regression = 4,
    /// The run cannot be trusted: generator saturated, interrupted, target
    /// down, a client panicked, or too many clients never ready (the rules
    /// are in docs/scenario.md, "When a run is invalid").
    InvalidRun = 5,
}

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The more severe of two outcomes (an invalid run outranks a failed threshold).
    pub fn worst(self, other: Outcome) -> Outcome {
        fn rank(o: Outcome) -> u8 {
            match o {
                Outcome::Pass => 0,
                Outcome::ThresholdsFailed => 1,
                Outcome::Regression => 2,
                Outcome::InvalidRun => 3,
                Outcome::Usage => 4,
                Outcome::Failure => 5,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<u8> for Outcome {
    /// Maps a raw code back to an outcome; unknown codes are failures.
    fn from(code: u8) -> Self {
        match code {
            0 => Self::Pass,
            2 => Self::Usage,
            3 => Self::ThresholdsFailed,
            4 => Self::Regression,
            5 => Self::InvalidRun,
            _ => Self::Failure,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o.code())
    }
}

/// A bad command line, scenario or configuration: maps to exit code 2.
/// Wrap user-input errors in this (with `anyhow`) so `main` can tell them
/// from runtime failures.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

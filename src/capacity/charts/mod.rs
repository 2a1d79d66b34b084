//! The charts of `capacity.html`, one per file, drawn with the
//! report's canvas (`report::charts::canvas`) and returned as the report's
//! [`Chart`], so the page reuses the report's figure markup and style.

mod cpu_per_work;
mod latency;
mod memory;
mod residuals;
mod scale_out;
mod throughput;

pub use cpu_per_work::cpu_per_work;
pub use latency::latency_against_load;
pub use memory::memory_against_connections;
pub use residuals::usl_residuals;
pub use scale_out::scale_out;
pub use throughput::throughput_against_load;

pub use crate::report::charts::Chart;

use super::model::{StepRecord, Vary};

/// The x-axis label for a load.
fn load_axis(vary: Vary) -> &'static str {
    match vary {
        Vary::Clients => "load (connected clients)",
        Vary::ChatRate => "load (% of the scenario's chat rate)",
    }
}

/// Steps sorted by load, the order lines are drawn in.
fn by_load(steps: &[StepRecord]) -> Vec<&StepRecord> {
    let mut sorted: Vec<&StepRecord> = steps.iter().collect();
    sorted.sort_by_key(|s| s.load);
    sorted
}

/// Lowest and highest load, when there is any step.
fn load_range(steps: &[StepRecord]) -> Option<(f64, f64)> {
    let lo = steps.iter().map(|s| s.load).min()?;
    let hi = steps.iter().map(|s| s.load).max()?;
    Some((f64::from(lo), f64::from(hi)))
}

//! The capacity search as a pure state machine: grow the load geometrically
//! until a step fails, then bisect between the highest pass and the lowest
//! failure until they are within the resolution. Kept free of I/O so it can
//! be tested against synthetic systems with a known limit.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    pub min: u32,
    pub max: u32,
    /// Load multiplier between steps until the first failure (> 1).
    pub growth: f64,
    /// Stop bisecting when the bracket is narrower than this share of the
    /// highest passing load (and never narrower than one unit).
    pub resolution: f64,
    /// Hard cap on steps, whatever else happens.
    pub max_steps: usize,
}

/// How one step ended, as far as the search is concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepVerdict {
    Pass,
    /// An SLO failed or clients could not connect: the load is over the limit.
    Fail {
        reason: String,
    },
    /// The generator, not the target, limited the step: nothing can be
    /// concluded about the target at this load or above.
    GeneratorLimited {
        reason: String,
    },
}

/// Why the search ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchEnd {
    /// Highest pass and lowest failure are within the resolution.
    Converged,
    /// Even the minimum load failed.
    BelowMin,
    /// The maximum load passed; the capacity is at least that.
    AtLeastMax,
    /// The generator saturated first; the highest pass is only a lower bound.
    GeneratorLimited,
    /// The step cap or the time budget ran out.
    OutOfBudget,
}

#[derive(Debug, Clone)]
pub struct Search {
    cfg: SearchConfig,
    highest_pass: Option<u32>,
    lowest_fail: Option<u32>,
    steps: usize,
    end: Option<SearchEnd>,
}

impl Search {
    pub fn new(cfg: SearchConfig) -> Self {
        Self {
            cfg,
            highest_pass: None,
            lowest_fail: None,
            steps: 0,
            end: None,
        }
    }

    pub fn highest_pass(&self) -> Option<u32> {
        self.highest_pass
    }

    pub fn lowest_fail(&self) -> Option<u32> {
        self.lowest_fail
    }

    pub fn end(&self) -> Option<&SearchEnd> {
        self.end.as_ref()
    }

    /// Ends the search from outside (time budget, interruption).
    pub fn stop(&mut self, why: SearchEnd) {
        self.end.get_or_insert(why);
    }

    /// The next load to run, or `None` once the search has ended.
    pub fn next_load(&mut self) -> Option<u32> {
        if self.end.is_some() {
            return None;
        }
        if self.steps >= self.cfg.max_steps {
            self.end = Some(SearchEnd::OutOfBudget);
            return None;
        }
        let next = match (self.highest_pass, self.lowest_fail) {
            (None, None) => self.cfg.min,
            (None, Some(_)) => {
                self.end = Some(SearchEnd::BelowMin);
                return None;
            }
            (Some(pass), None) => {
                if pass >= self.cfg.max {
                    self.end = Some(SearchEnd::AtLeastMax);
                    return None;
                }
                let grown = (f64::from(pass) * self.cfg.growth).ceil() as u32;
                grown.clamp(pass + 1, self.cfg.max)
            }
            (Some(pass), Some(fail)) => {
                let width = (f64::from(pass) * self.cfg.resolution).max(1.0);
                if f64::from(fail - pass) <= width {
                    self.end = Some(SearchEnd::Converged);
                    return None;
                }
                pass + (fail - pass) / 2
            }
        };
        Some(next)
    }

    pub fn record(&mut self, load: u32, verdict: &StepVerdict) {
        self.steps += 1;
        match verdict {
            StepVerdict::Pass => {
                self.highest_pass = Some(self.highest_pass.map_or(load, |p| p.max(load)));
            }
            StepVerdict::Fail { .. } => {
                self.lowest_fail = Some(self.lowest_fail.map_or(load, |f| f.min(load)));
            }
            StepVerdict::GeneratorLimited { .. } => {
                self.end = Some(SearchEnd::GeneratorLimited);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SearchConfig {
        SearchConfig {
            min: 10,
            max: 10_000,
            growth: 2.0,
            resolution: 0.05,
            max_steps: 40,
        }
    }

    /// Runs the search against a system that passes up to `limit`.
    fn run(cfg: SearchConfig, limit: u32, generator_limit: u32) -> (Search, Vec<u32>) {
        let mut s = Search::new(cfg);
        let mut loads = Vec::new();
        while let Some(load) = s.next_load() {
            loads.push(load);
            let verdict = if load > generator_limit {
                StepVerdict::GeneratorLimited {
                    reason: "lag".into(),
                }
            } else if load <= limit {
                StepVerdict::Pass
            } else {
                StepVerdict::Fail {
                    reason: "p99".into(),
                }
            };
            s.record(load, &verdict);
        }
        (s, loads)
    }

    #[test]
    fn brackets_then_bisects_to_the_limit() {
        let (s, loads) = run(cfg(), 737, u32::MAX);
        assert_eq!(s.end(), Some(&SearchEnd::Converged));
        let pass = s.highest_pass().unwrap();
        assert!(
            pass <= 737 && f64::from(737 - pass) <= 0.05 * f64::from(pass),
            "{pass}"
        );
        assert_eq!(&loads[..7], &[10, 20, 40, 80, 160, 320, 640]);
        assert!(loads.len() < 15, "{loads:?}");
    }

    #[test]
    fn reports_the_ends_of_the_range() {
        assert_eq!(run(cfg(), 5, u32::MAX).0.end(), Some(&SearchEnd::BelowMin));
        let (s, loads) = run(cfg(), u32::MAX, u32::MAX);
        assert_eq!(s.end(), Some(&SearchEnd::AtLeastMax));
        assert_eq!(loads.last(), Some(&10_000));
    }

    #[test]
    fn generator_limit_stops_with_a_lower_bound() {
        let (s, _) = run(cfg(), 5_000, 300);
        assert_eq!(s.end(), Some(&SearchEnd::GeneratorLimited));
        assert_eq!(s.highest_pass(), Some(160));
    }

    #[test]
    fn step_cap_bounds_the_search() {
        let (s, loads) = run(
            SearchConfig {
                max_steps: 3,
                ..cfg()
            },
            737,
            u32::MAX,
        );
        assert_eq!(s.end(), Some(&SearchEnd::OutOfBudget));
        assert_eq!(loads.len(), 3);
    }
}

//! The real [`StepRunner`]: each step is the scenario's plan with its
//! stages replaced by a warm-up ramp and a hold at the step's load, run by
//! the engine with `run.measure_after` set to the warm-up, so the step's
//! metrics cover only its measurement window.
//!
//! A server bench starts (the bundled one, or a `[target.server] command`)
//! is started once for the whole search, not per step, so its memory and
//! CPU are comparable from step to step; every step's plan points at its
//! URL and samples its PID.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::driver::{StepRun, StepRunner, StepSpec};
use crate::engine::target::{self, Target};
use crate::engine::EngineOptions;
use crate::scenario::{Endpoint, Format, Plan, Stage, Threshold};

/// Directory of step `index` under the capacity output directory.
pub(super) fn step_dir(out_dir: &Path, index: usize) -> PathBuf {
    out_dir.join("steps").join(format!("step-{:02}", index + 1))
}

/// Builds the plan of one step from the scenario's plan.
pub(super) fn step_plan(base: &Plan, spec: &StepSpec, slos: &[Threshold], out_dir: &Path) -> Plan {
    let mut plan = base.clone();
    // Whole seconds: the engine's metric intervals are one second long.
    let warmup = Duration::from_secs(spec.warmup.as_secs_f64().ceil() as u64);
    // set_stages re-derives the room count when rooms have a constant size.
    plan.set_stages(vec![
        Stage {
            duration: warmup,
            target: spec.clients,
        },
        Stage {
            duration: spec.measure,
            target: spec.clients,
        },
    ]);
    plan.run.measure_after = warmup;
    for p in &mut plan.populations {
        p.chat_rate *= spec.chat_rate_scale;
    }
    plan.thresholds = slos.to_vec();
    plan.output.dir = step_dir(out_dir, spec.index);
    plan.output.formats = vec![Format::Json];
    plan.name = format!("{}-step-{:02}", base.name, spec.index + 1);
    plan
}

/// Runs steps with the engine against one long-lived target.
pub struct EngineStepRunner {
    base: Plan,
    slos: Vec<Threshold>,
    out_dir: PathBuf,
    /// The server started for the whole search, if bench started one.
    server: Option<Target>,
    stop: Arc<AtomicBool>,
}

impl EngineStepRunner {
    /// Starts the scenario's server once (when bench is to start it) and
    /// rewrites the base plan to connect to it and sample it.
    pub fn new(
        mut base: Plan,
        slos: Vec<Threshold>,
        out_dir: PathBuf,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let server = match &base.target.endpoint {
            Endpoint::Url(_) => None,
            endpoint @ (Endpoint::Bundled { .. } | Endpoint::Command { .. }) => {
                let started = target::start(endpoint).context("starting the target server")?;
                base.target.endpoint = Endpoint::Url(started.url.clone());
                base.target.server_pids.extend(started.pid());
                Some(started)
            }
        };
        Ok(Self {
            base,
            slos,
            out_dir,
            server,
            stop,
        })
    }

    /// The server's URL and PID when bench started it.
    pub fn server(&self) -> Option<(String, Option<u32>)> {
        self.server.as_ref().map(|t| (t.url.to_string(), t.pid()))
    }
}

impl StepRunner for EngineStepRunner {
    fn run_step(&mut self, spec: &StepSpec) -> anyhow::Result<StepRun> {
        if let Some(st) = self.server.as_mut().and_then(Target::exited) {
            anyhow::bail!("the target server exited between steps ({st})");
        }
        let plan = step_plan(&self.base, spec, &self.slos, &self.out_dir);
        let report = crate::run::run_plan(&plan, &EngineOptions { quiet: true })
            .with_context(|| format!("running step {}", spec.index + 1))?;
        let results_file = report
            .exported
            .written
            .iter()
            .find(|(name, _)| *name == "json")
            .map(|(_, path)| path.clone());
        Ok(StepRun {
            stopped_by_user: self.stop.load(Ordering::SeqCst),
            results: report.results,
            results_file,
        })
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Drop for EngineStepRunner {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }
}

/// Sets the returned flag on SIGINT or SIGTERM. The engine watches the same
/// signals during a step; this flag also catches one between steps.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let f = flag.clone();
        // SAFETY: the action only stores to an atomic, which is async-signal-safe.
        unsafe { signal_hook_registry::register(sig, move || f.store(true, Ordering::SeqCst)) }
            .context("cannot watch SIGINT/SIGTERM")?;
    }
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PlanOverrides;

    #[test]
    fn a_step_plan_replaces_stages_and_scales_the_chat_rate() {
        let text =
            "[[stages]]\nduration = \"10s\"\ntarget = 10\n[[clients]]\nchat_rate = \"2/s\"\n";
        let base = crate::scenario::parse(text, "s.toml", None, &PlanOverrides::default()).unwrap();
        let spec = StepSpec {
            index: 2,
            load: 150,
            clients: 40,
            rooms: 1,
            chat_rate_scale: 1.5,
            warmup: Duration::from_millis(2500),
            measure: Duration::from_secs(4),
        };
        let plan = step_plan(&base, &spec, &[], Path::new("out"));
        assert_eq!(
            plan.stages,
            [
                Stage {
                    duration: Duration::from_secs(3),
                    target: 40
                },
                Stage {
                    duration: Duration::from_secs(4),
                    target: 40
                }
            ]
        );
        assert_eq!(plan.run.measure_after, Duration::from_secs(3));
        assert_eq!(plan.populations[0].chat_rate, 3.0);
        assert_eq!(plan.output.dir, Path::new("out/steps/step-03"));
        assert_eq!(plan.output.formats, [Format::Json]);
    }

    #[test]
    fn a_step_plan_derives_its_rooms_from_a_constant_size() {
        let text =
            "[[stages]]\nduration = \"10s\"\ntarget = 100\n[rooms]\nsize = 20\n[[clients]]\n";
        let base = crate::scenario::parse(text, "s.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(base.rooms.count, 5);
        let spec = StepSpec {
            index: 0,
            load: 410,
            clients: 410,
            rooms: 21,
            chat_rate_scale: 1.0,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(1),
        };
        let plan = step_plan(&base, &spec, &[], Path::new("out"));
        assert_eq!(plan.rooms.count, 21);
    }
}

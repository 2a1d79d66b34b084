//! `bench capacity`: the highest load that meets the SLOs, a scalability
//! model fitted to the steps, and an instance-count projection.
//!
//! [`execute`] validates the flags, starts the target once
//! ([`runner::EngineStepRunner`]) and hands the loop to [`driver::drive`],
//! which rewrites `capacity.json` after every step; this module also
//! rewrites `capacity.html` ([`page`]) and prints one line per step
//! ([`terminal`]).

pub mod charts;
pub mod driver;
pub mod model;
pub mod nodes;
pub mod page;
pub mod projection;
pub mod rooms;
pub mod runner;
pub mod scaleout;
pub mod search;
pub mod terminal;
pub mod usl;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::exit::{Outcome, UsageError};
use crate::scenario::metrics::{parse_threshold, split_flag};
use crate::scenario::{self, Endpoint, Plan, PlanOverrides, Threshold};
use model::{CapacityResults, Vary};
use search::{Search, SearchConfig, SearchEnd};

/// File name of the HTML page inside the capacity output directory.
pub const PAGE_FILE: &str = "capacity.html";

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The scenario file (TOML); its `[[stages]]` are replaced by the search's steps.
    pub scenario: PathBuf,
    /// A service-level objective every step must meet, written like
    /// `--threshold`: `delivery_latency.p99<50ms` (repeatable, at least one).
    #[arg(long = "slo", value_name = "COND", required = true)]
    pub slos: Vec<String>,
    /// What the search varies: connected clients, or each client's chat rate
    /// (load in % of the scenario's rate, with its peak client count).
    #[arg(long, value_enum, default_value_t = Vary::Clients)]
    pub vary: Vary,
    /// Lowest load to try [default: 10].
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,
    /// Highest load to try [default: 20000 clients, or 10000 (%) of the chat rate].
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// With `--vary clients`: keep each room's members constant (the room
    /// count follows the clients) or the scenario's room count [default:
    /// constant-size, derived from the scenario; fixed-count for zipf rooms].
    #[arg(long, value_enum, value_name = "MODE")]
    pub rooms: Option<rooms::RoomsMode>,
    /// Project how many instances this many users need (with `--vary clients`).
    #[arg(long, value_name = "N")]
    pub target_users: Option<u64>,
    /// Warm-up of every step (ramp to the load; not measured), rounded up to whole seconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub warmup: Duration,
    /// Measurement window of every step (hold the load; every SLO is judged on it).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub measure: Duration,
    /// Time budget of the whole search; no step starts that cannot end within it.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub budget: Duration,
    /// Load multiplier between steps until the first failure.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Stop bisecting when passing and failing loads are this close (share of the load).
    #[arg(long, default_value_t = 0.05)]
    pub resolution: f64,
    /// Most steps the search may run.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub max_steps: usize,
    /// Cluster sizes to measure the cross-node fan-out cost at (e.g. 1,2,3),
    /// after the search: the bundled server as N processes over a
    /// redis-server bench starts, at one fixed load (docs/capacity.md).
    #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
    pub nodes: Vec<u32>,
    /// The fixed load of the `--nodes` runs [default: half the capacity found].
    #[arg(long, value_name = "N")]
    pub nodes_load: Option<u32>,
    /// Target URL (overrides `[target] url`; disables the bundled server).
    #[arg(long)]
    pub url: Option<String>,
    /// Output directory [default: reports/capacity-<name>-<timestamp>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No per-step lines and no summary (files are still written).
    #[arg(long, short)]
    pub quiet: bool,
}

fn duration(s: &str) -> Result<Duration, String> {
    wire::units::parse_duration(s).map_err(|e| e.to_string())
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Checks the search flags; every problem is a usage error (exit 2).
fn search_config(args: &CapacityArgs) -> anyhow::Result<SearchConfig> {
    let (default_min, default_max) = match args.vary {
        Vary::Clients => (10, 20_000),
        Vary::ChatRate => (10, 10_000),
    };
    let min = args.min.unwrap_or(default_min);
    let max = args.max.unwrap_or(default_max.max(min));
    if min == 0 {
        return Err(usage("--min must be at least 1"));
    }
    if max < min {
        return Err(usage(format!(
            "--max ({max}) must not be below --min ({min})"
        )));
    }
    if !(args.growth > 1.0 && args.growth.is_finite()) {
        return Err(usage(format!(
            "--growth must be above 1, not {}",
            args.growth
        )));
    }
    if !(args.resolution > 0.0 && args.resolution < 1.0) {
        return Err(usage(format!(
            "--resolution must be between 0 and 1 (e.g. 0.05), not {}",
            args.resolution
        )));
    }
    if args.max_steps == 0 {
        return Err(usage("--max-steps must be at least 1"));
    }
    if args.measure.is_zero() {
        return Err(usage("--measure must be longer than 0"));
    }
    if args.budget < args.warmup + args.measure {
        return Err(usage(format!(
            "--budget ({}) cannot fit a single step of --warmup + --measure",
            wire::units::format_duration(args.budget)
        )));
    }
    if args.nodes.is_empty() && args.nodes_load.is_some() {
        return Err(usage("--nodes-load applies only with --nodes"));
    }
    if args.nodes_load == Some(0) {
        return Err(usage("--nodes-load must be at least 1"));
    }
    if args.target_users.is_some() && args.vary != Vary::Clients {
        return Err(usage(
            "--target-users needs --vary clients (a projection counts users, not chat rates)",
        ));
    }
    Ok(SearchConfig {
        min,
        max,
        growth: args.growth,
        resolution: args.resolution,
        max_steps: args.max_steps,
    })
}

/// A step below the room size runs one partly filled room, a lighter
/// workload than the rest: the default `--min` is raised to the size (never
/// above `--max`); an explicit lower `--min` is kept, and the rooms note
/// says which steps are affected.
fn fit_min_to_rooms(
    mut cfg: SearchConfig,
    args: &CapacityArgs,
    rooms: Option<&mut rooms::RoomsSetup>,
) -> SearchConfig {
    let Some(setup) = rooms else {
        return cfg;
    };
    let Some(size) = setup.size else {
        return cfg;
    };
    if args.min.is_none() && cfg.min < size {
        cfg.min = size.min(cfg.max);
        setup
            .note
            .push_str(&format!("; --min defaults to the room size, {}", cfg.min));
    }
    if cfg.min < size {
        setup.note.push_str(&format!(
            "; steps below {size} clients run one partly filled room (a lighter workload per client)"
        ));
    }
    cfg
}

/// Parses `--slo` flags with the `--threshold` parser.
fn parse_slos(flags: &[String], plan: &Plan) -> anyhow::Result<Vec<Threshold>> {
    let sampled = !matches!(plan.target.endpoint, Endpoint::Url(_))
        || !plan.target.server_pids.is_empty()
        || plan.target.server_process.is_some();
    let mut out: Vec<Threshold> = Vec::new();
    for flag in flags {
        let (metric, condition) = split_flag(flag).ok_or_else(|| {
            usage(format!(
                "--slo `{flag}`: expected <metric><condition>, e.g. 'delivery_latency.p99<50ms'"
            ))
        })?;
        let parsed = parse_threshold(metric, condition)
            .map_err(|why| usage(format!("--slo `{flag}`: {why}")))?;
        if !sampled
            && (parsed.metric.starts_with("server.") || parsed.metric == "memory_per_connection")
        {
            return Err(usage(format!(
                "--slo `{flag}`: `{}` needs the server to be sampled: set [target] server_pid or server_process",
                parsed.metric
            )));
        }
        match out.iter_mut().find(|o| o.metric == parsed.metric) {
            Some(existing) => *existing = parsed,
            None => out.push(parsed),
        }
    }
    Ok(out)
}

/// Share-weighted mean chat rate per client of the scenario.
fn mean_chat_rate(plan: &Plan) -> f64 {
    plan.populations.iter().map(|p| p.share * p.chat_rate).sum()
}

fn machine_memory_bytes() -> u64 {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    sys.total_memory()
}

pub fn execute(args: CapacityArgs) -> anyhow::Result<Outcome> {
    let search_cfg = search_config(&args)?;
    let overrides = PlanOverrides {
        out_dir: None,
        thresholds: Vec::new(),
        seed: None,
        target_url: args.url.clone(),
    };
    let mut plan = scenario::load(&args.scenario, &overrides)?;
    let mut rooms = rooms::apply(&mut plan, args.vary, args.rooms)?;
    let search_cfg = fit_min_to_rooms(search_cfg, &args, rooms.as_mut());
    let slos = parse_slos(&args.slos, &plan)?;
    let bundled_args = if args.nodes.is_empty() {
        None
    } else {
        Some(nodes::check(&args.nodes, &plan).map_err(usage)?)
    };
    let node_base = bundled_args.as_ref().map(|_| plan.clone());
    if args.vary == Vary::ChatRate && mean_chat_rate(&plan) <= 0.0 {
        return Err(usage(format!(
            "--vary chat_rate: every client in {} is a lurker (chat_rate 0); there is no rate to scale",
            args.scenario.display()
        )));
    }
    let out_dir = args.out.clone().unwrap_or_else(|| {
        scenario::default_output_dir(&format!("capacity-{}", plan.name), chrono::Utc::now())
    });
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;

    let cfg = driver::DriverConfig {
        out_dir: out_dir.clone(),
        slos: slos.clone(),
        vary: args.vary,
        base_clients: plan.peak_clients().max(1),
        base_chat_rate: mean_chat_rate(&plan),
        warmup: Duration::from_secs(args.warmup.as_secs_f64().ceil() as u64),
        measure: args.measure,
        budget: args.budget,
        step_overhead: plan.run.drain,
        target_users: args.target_users,
        machine_memory_bytes: machine_memory_bytes(),
        base_rooms: plan.rooms.count,
        rooms: rooms.clone(),
    };
    let mut results = CapacityResults::new(
        plan.name.clone(),
        chrono::Utc::now().to_rfc3339(),
        args.vary,
        slos.iter()
            .map(|t| format!("{} {}", t.metric, t.condition))
            .collect(),
        search_cfg,
        crate::results::Environment::collect(),
    );
    results.rooms = rooms;
    // Written before the first step, so even a search stopped at once leaves a file.
    results.write(&out_dir)?;

    let stop = runner::stop_flag()?;
    let mut steps = runner::EngineStepRunner::new(plan, slos, out_dir.clone(), stop.clone())?;
    if !args.quiet {
        terminal::header(&results, &cfg, steps.server().as_ref(), &out_dir);
    }
    let mut search = Search::new(search_cfg);
    let quiet = args.quiet;
    let mut on_step = |r: &CapacityResults| {
        if let Err(e) = write_page(r, &cfg, &out_dir) {
            eprintln!("error: writing {PAGE_FILE} failed: {e:#}");
        }
        if !quiet {
            if let Some(step) = r.steps.last() {
                terminal::step_line(step, r.vary);
            }
        }
    };
    let outcome = driver::drive(&cfg, &mut search, &mut steps, results, &mut on_step);
    drop(steps); // stops the server bench started
    let mut results = outcome?;
    if let (Some(bundled_args), Some(base)) = (&bundled_args, &node_base) {
        if !results.interrupted {
            let load = nodes::fixed_load(args.nodes_load, results.capacity, search_cfg.min);
            let spec = cfg.spec(0, load);
            if !args.quiet {
                println!(
                    "scale-out: {} cluster size(s) at load {load} over a fresh redis-server each, about {} s",
                    args.nodes.len(),
                    nodes::duration(&args.nodes, &spec, base.run.drain).as_secs()
                );
            }
            let stop_flag = stop.clone();
            let measured = nodes::measure(&nodes::NodesRun {
                base,
                bundled_args,
                sizes: &args.nodes,
                spec,
                out_dir: &out_dir,
                stop: &move || stop_flag.load(std::sync::atomic::Ordering::SeqCst),
            })?;
            results.scale_out = Some(measured);
            driver::reproject(&cfg, &mut results);
            results.write(&out_dir)?;
            if !args.quiet {
                terminal::scale_out(&results);
            }
        }
    }
    let page = write_page(&results, &cfg, &out_dir);
    if !args.quiet {
        terminal::summary(&results, &out_dir);
    }
    page.with_context(|| format!("writing {PAGE_FILE}"))?;
    Ok(outcome_of(&results))
}

fn write_page(
    results: &CapacityResults,
    cfg: &driver::DriverConfig,
    dir: &Path,
) -> anyhow::Result<()> {
    let html = page::render_page(results, &cfg.slos)?;
    crate::export::write_atomic(&dir.join(PAGE_FILE), html.as_bytes())
}

/// 0: a capacity was found; 3: even the minimum load failed; 5: the result
/// cannot be trusted as the target's (generator-limited or interrupted).
fn outcome_of(results: &CapacityResults) -> Outcome {
    if results.interrupted {
        return Outcome::InvalidRun;
    }
    match results.end {
        Some(SearchEnd::GeneratorLimited) => Outcome::InvalidRun,
        Some(SearchEnd::BelowMin) => Outcome::ThresholdsFailed,
        _ if results.capacity.is_none() => Outcome::ThresholdsFailed,
        _ => Outcome::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CapacityArgs,
    }

    fn args(extra: &[&str]) -> CapacityArgs {
        let mut argv = vec!["bench", "s.toml", "--slo", "errors.rate<1%"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    fn usage_message(extra: &[&str]) -> String {
        let e = search_config(&args(extra)).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e:#}");
        e.to_string()
    }

    #[test]
    fn flags_are_checked_as_usage_errors() {
        let cfg = search_config(&args(&["--vary", "chat_rate", "--min", "50"])).unwrap();
        assert_eq!((cfg.min, cfg.max, cfg.max_steps), (50, 10_000, 30));
        assert!(usage_message(&["--min", "0"]).contains("--min"));
        assert!(usage_message(&["--min", "9", "--max", "8"]).contains("--max (8)"));
        assert!(usage_message(&["--growth", "1"]).contains("--growth"));
        assert!(usage_message(&["--resolution", "1.5"]).contains("--resolution"));
        assert!(usage_message(&["--budget", "3s"]).contains("--budget"));
        assert!(
            usage_message(&["--vary", "chat-rate", "--target-users", "9"])
                .contains("--target-users")
        );
        assert!(usage_message(&["--nodes-load", "10"]).contains("only with --nodes"));
    }

    #[test]
    fn the_default_min_is_raised_to_the_room_size() {
        let setup = || rooms::RoomsSetup {
            mode: rooms::RoomsMode::ConstantSize,
            size: Some(40),
            count: None,
            per_client: 2,
            note: "rooms".into(),
        };
        let a = args(&[]);
        let mut s = setup();
        let cfg = fit_min_to_rooms(search_config(&a).unwrap(), &a, Some(&mut s));
        assert_eq!(cfg.min, 40);
        assert!(
            s.note.contains("--min defaults to the room size, 40"),
            "{}",
            s.note
        );
        let a = args(&["--min", "10"]);
        let mut s = setup();
        let cfg = fit_min_to_rooms(search_config(&a).unwrap(), &a, Some(&mut s));
        assert_eq!(cfg.min, 10);
        assert!(s.note.contains("partly filled room"), "{}", s.note);
    }

    #[test]
    fn slos_use_the_threshold_parser() {
        let text = "[target]\nurl = \"ws://127.0.0.1:9/ws\"\n[[stages]]\nduration = \"1s\"\ntarget = 1\n[[clients]]\n";
        let plan = scenario::parse(text, "s.toml", None, &PlanOverrides::default()).unwrap();
        let slos = parse_slos(
            &[
                "delivery_latency.p99<50ms".into(),
                "errors.rate<0.1%".into(),
            ],
            &plan,
        )
        .unwrap();
        assert_eq!(slos[0].value, 50.0);
        assert_eq!(slos[1].value, 0.001);
        for bad in [
            "nonsense",
            "delivery_latency.p99<fast",
            "server.cpu_percent_mean<80%",
        ] {
            let e = parse_slos(&[bad.into()], &plan).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some());
            assert!(e.to_string().starts_with(&format!("--slo `{bad}`")), "{e}");
        }
    }
}

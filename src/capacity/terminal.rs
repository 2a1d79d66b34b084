//! What `bench capacity` prints: a header, one line per step as it ends,
//! and a closing summary (capacity, limit, USL, memory, projection). Plain
//! lines only, so CI logs stay readable.

use std::path::Path;

use super::driver::DriverConfig;
use super::model::{CapacityResults, StepRecord, Vary};
use super::search::{SearchEnd, StepVerdict};
use crate::report::html::{bytes, grouped, ms, per_second};

/// The unit a load is counted in.
pub fn load_unit(vary: Vary) -> &'static str {
    match vary {
        Vary::Clients => "clients",
        Vary::ChatRate => "% chat rate",
    }
}

pub fn header(
    r: &CapacityResults,
    cfg: &DriverConfig,
    server: Option<&(String, Option<u32>)>,
    out: &Path,
) {
    println!(
        "capacity search: {} · vary {} from {} to {} · SLOs: {}",
        r.name,
        load_unit(r.vary),
        r.search.min,
        r.search.max,
        r.slos.join(", ")
    );
    println!(
        "each step: {} s warm-up + {} s measured · budget {} · results in {}",
        cfg.warmup.as_secs(),
        cfg.measure.as_secs_f64(),
        wire::units::format_duration(cfg.budget),
        out.display()
    );
    if let Some(rooms) = &r.rooms {
        println!("{}", rooms.note);
    }
    if let Some((url, pid)) = server {
        let pid = pid.map_or("unknown".into(), |p| p.to_string());
        println!("server started once for the whole search: {url} (pid {pid})");
    }
}

fn verdict_text(v: &StepVerdict) -> String {
    match v {
        StepVerdict::Pass => "PASS".into(),
        StepVerdict::Fail { reason } => format!("FAIL  {reason}"),
        StepVerdict::GeneratorLimited { reason } => format!("GENERATOR-LIMITED  {reason}"),
    }
}

/// One line per finished step.
pub fn step_line(s: &StepRecord, vary: Vary) {
    let p99 = s
        .delivery_p99_ms
        .map_or("–".into(), |v| format!("{} ms", ms(v)));
    let cpu = s
        .server_cpu_percent_mean
        .map_or("–".into(), |c| format!("{c:.0}%"));
    let rss = s
        .server_rss_peak_bytes
        .map_or("–".into(), |b| bytes(b as f64));
    let per_work = s
        .server_cpu_us_per_work
        .map_or("–".into(), |us| format!("{us:.1} µs"));
    println!(
        "step {:>2}  {:>7} {:<11}  delivery p99 {:>9}  {:>11} deliveries  {:>11} work  server cpu {:>4} ({:>8}/unit) rss {:>10}  {}",
        s.index + 1,
        grouped(i64::from(s.load)),
        load_unit(vary),
        p99,
        per_second(s.deliveries_per_s),
        per_second(s.work_per_s),
        cpu,
        per_work,
        rss,
        verdict_text(&s.verdict)
    );
}

fn end_text(end: Option<&SearchEnd>) -> &'static str {
    match end {
        Some(SearchEnd::Converged) => {
            "converged: the limit lies between it and the lowest failing load"
        }
        Some(SearchEnd::BelowMin) => "even --min failed the SLOs",
        Some(SearchEnd::AtLeastMax) => "--max still passed: the capacity is at least this",
        Some(SearchEnd::GeneratorLimited) => {
            "the load generator saturated first: this is a lower bound, not the server's capacity"
        }
        Some(SearchEnd::OutOfBudget) => {
            "the time budget or --max-steps ran out before the search converged"
        }
        None => "the search did not finish",
    }
}

pub fn summary(r: &CapacityResults, out: &Path) {
    println!();
    if r.interrupted {
        println!(
            "INTERRUPTED after {} completed step(s); they are kept.",
            r.steps.len()
        );
    }
    match r.capacity {
        Some(c) => println!(
            "capacity: {} {} ({})",
            grouped(i64::from(c)),
            load_unit(r.vary),
            end_text(r.end.as_ref())
        ),
        None => println!("capacity: none found ({})", end_text(r.end.as_ref())),
    }
    if let Some(l) = &r.limit {
        println!(
            "limit: {} · saturated first: {} ({})",
            l.limiting_metric.as_deref().unwrap_or("none"),
            l.saturated_first,
            l.detail
        );
    }
    match &r.usl {
        Some(u) => {
            let peak = match (u.peak_load, u.peak_throughput) {
                (Some(n), Some(x)) => format!(
                    "peak {} work/s at {} {}",
                    grouped(x.round() as i64),
                    grouped(n.round() as i64),
                    load_unit(r.vary)
                ),
                _ => "no peak (κ = 0)".into(),
            };
            println!(
                "USL over work (messages in + deliveries out): σ {:.4} · κ {:.2e} · λ {:.2} · {peak} · R² {:.3} over {} steps",
                u.sigma, u.kappa, u.lambda, u.r2, u.points
            );
            if let Some(w) = u.fit_warning() {
                println!("  {w}");
            }
        }
        None => println!("USL: not fitted (needs 3 steps with throughput)"),
    }
    if let Some(m) = &r.memory_fit {
        println!(
            "server memory: {} per connection + {} base (R² {:.3}, {} steps)",
            bytes(m.slope),
            bytes(m.intercept),
            m.r2,
            m.points
        );
    }
    if let Some(p) = &r.projection {
        println!(
            "projection ({}): {} users need {} instance(s) of this machine, {}-bound ({} users per instance within the SLOs{}){}",
            p.scale_out_label(),
            grouped(p.target_users as i64),
            p.instances_text(),
            match p.bound {
                super::projection::Bound::Cpu => "CPU",
                super::projection::Bound::Memory => "memory",
            },
            grouped(p.users_per_instance_slo as i64),
            p.users_per_instance_memory
                .map_or(String::new(), |m| format!(", {} by memory", grouped(m as i64))),
            if p.conservative { "; conservative" } else { "" }
        );
        for a in &p.assumptions {
            println!("  assumes: {a}");
        }
    }
    println!(
        "wrote {} and {}",
        out.join("capacity.json").display(),
        out.join(super::PAGE_FILE).display()
    );
}

/// The `--nodes` measurement: one line per cluster size, the fit and the
/// holdout check.
pub fn scale_out(r: &CapacityResults) {
    let Some(m) = &r.scale_out else {
        return;
    };
    let us = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    for s in &m.steps {
        println!(
            "  {} node(s): work {}/s · server CPU {} µs/unit (summed over nodes) · Redis {} µs/unit · p99 {} ms · lost {} dup {} ooo {} · machine CPU {:.0}%{}",
            s.nodes,
            grouped(s.work_per_s.round() as i64),
            us(s.server_cpu_us_per_work),
            us(s.redis_cpu_us_per_work),
            us(s.delivery_p99_ms),
            s.lost,
            s.duplicates,
            s.out_of_order,
            s.machine_cpu_percent_mean,
            if s.valid { "" } else { " · INVALID (left out of the fit)" }
        );
    }
    match &m.fit {
        Some(f) => println!(
            "  bus overhead: c₁ {:.2} µs/unit, β {:.3} per extra node (R² {:.3} over {} sizes)",
            f.single_node_us,
            f.beta,
            f.r2,
            f.measured.len()
        ),
        None => println!("  bus overhead: not fitted (needs two valid cluster sizes)"),
    }
    if let Some(h) = &m.holdout {
        println!(
            "  {} nodes predicted from {:?}: {:.2} µs/unit, measured {:.2} ({:+.1}%)",
            h.nodes,
            h.fitted_from,
            h.predicted_us,
            h.measured_us,
            h.relative_error * 100.0
        );
    }
}

//! `capacity.html`: the verdict (capacity, how the search ended, what
//! limited it), the steps, the charts, the fitted models and the
//! projection with its assumptions. Built from the report's style, table,
//! figure and flag templates, so it reads like a run report.

use super::charts;
use super::model::CapacityResults;
use super::projection::{Bound, ScaleOut};
use super::search::{SearchEnd, StepVerdict};
use super::terminal::load_unit;
use crate::report::html::{self, cell, cell_with, Row};
use crate::report::template::{self, html as trusted};
use crate::scenario::Threshold;

const PAGE: &str = include_str!("templates/capacity.html");

/// Renders the whole page; `slos` draws the SLO lines on the latency chart.
pub fn render_page(r: &CapacityResults, slos: &[Threshold]) -> anyhow::Result<String> {
    let mut charts = vec![
        charts::latency_against_load(r, slos),
        charts::throughput_against_load(r),
        charts::usl_residuals(r),
        charts::cpu_per_work(r),
        charts::memory_against_connections(r),
    ];
    charts.extend(charts::scale_out(r));
    let subtitle = format!(
        "Started {} · {} step(s) · varying {} · SLOs: {}",
        r.started_at,
        r.steps.len(),
        load_unit(r.vary),
        r.slos.join(", ")
    );
    let title = format!("bench capacity: {}", r.name);
    let main = template::render(
        "capacity.html",
        PAGE,
        &[
            ("verdict", trusted(verdict(r)?)),
            ("steps", trusted(steps(r)?)),
            ("toc", trusted(html::toc(&charts))),
            ("charts", trusted(html::charts(&charts)?)),
            ("model", trusted(model(r)?)),
            (
                "projection",
                trusted(format!("{}\n{}", scale_out(r)?, projection(r)?)),
            ),
            ("environment", trusted(html::environment(&r.environment))),
        ],
    )?;
    html::page(html::Page {
        name: "capacity.html",
        title: &title,
        heading: &title,
        subtitle: &subtitle,
        command: Some("bench capacity"),
        main,
    })
}

fn end_text(end: Option<&SearchEnd>) -> &'static str {
    match end {
        Some(SearchEnd::Converged) => "converged within the resolution",
        Some(SearchEnd::BelowMin) => "even the minimum load failed",
        Some(SearchEnd::AtLeastMax) => "the maximum load still passed (capacity is at least this)",
        Some(SearchEnd::GeneratorLimited) => "the load generator saturated first (a lower bound)",
        Some(SearchEnd::OutOfBudget) => "the time budget or step cap ran out",
        None => "still running or stopped",
    }
}

fn verdict(r: &CapacityResults) -> anyhow::Result<String> {
    let unit = load_unit(r.vary);
    let generator_limited = r.end == Some(SearchEnd::GeneratorLimited);
    let (class, headline) = match (r.capacity, &r.end) {
        _ if r.interrupted => (
            "invalid",
            format!(
                "INTERRUPTED after {} step(s): highest passing load so far {}",
                r.steps.len(),
                r.capacity.map_or("none".into(), |c| format!(
                    "{} {unit}",
                    html::grouped(c.into())
                ))
            ),
        ),
        (Some(c), _) if generator_limited => (
            "invalid",
            format!(
                "At least {} {unit}: the generator, not the server, was the limit",
                html::grouped(c.into())
            ),
        ),
        (Some(c), Some(SearchEnd::AtLeastMax)) => (
            "pass",
            format!("Capacity: at least {} {unit}", html::grouped(c.into())),
        ),
        (Some(c), Some(_)) => (
            "pass",
            format!("Capacity: {} {unit}", html::grouped(c.into())),
        ),
        (Some(c), None) => (
            "neutral",
            format!(
                "Searching: {} {unit} passed so far",
                html::grouped(c.into())
            ),
        ),
        (None, Some(_)) => ("fail", "No load met the SLOs".to_string()),
        (None, None) => ("neutral", "Searching: no step has passed yet".to_string()),
    };
    let mut flags = String::new();
    if r.interrupted {
        flags.push_str(&html::flag(
            "fail",
            "Interrupted.",
            "The search was stopped; every completed step is kept below.",
        )?);
    }
    if generator_limited {
        flags.push_str(&html::flag(
            "warn",
            "Generator-limited.",
            "The load generator fell behind before the server broke an SLO. The figure is a lower bound on the server's capacity, never the capacity itself.",
        )?);
    }
    let mut figures: Vec<(&str, String)> = vec![
        ("search ended", end_text(r.end.as_ref()).to_string()),
        ("steps", r.steps.len().to_string()),
    ];
    if let Some(l) = &r.limit {
        figures.push((
            "limiting metric",
            l.limiting_metric.clone().unwrap_or_else(|| "none".into()),
        ));
        figures.push(("saturated first", l.saturated_first.replace('_', " ")));
    }
    if let Some(p) = &r.projection {
        figures.push((
            "instances needed",
            format!(
                "{} for {} users{}",
                p.instances_text(),
                html::grouped(p.target_users as i64),
                match p.scale_out {
                    ScaleOut::AssumedLinear => " (linear scale-out assumed)",
                    ScaleOut::Measured { .. } => "",
                }
            ),
        ));
    }
    let mut detail = match &r.limit {
        Some(l) => format!("<p class=\"hint\">{}</p>", template::escape(&l.detail)),
        None => String::new(),
    };
    if let Some(rooms) = &r.rooms {
        detail.push_str(&format!(
            "<p class=\"hint\">{}</p>",
            template::escape(&rooms.note)
        ));
    }
    html::verdict(class, &headline, flags, &figures, detail)
}

fn steps(r: &CapacityResults) -> anyhow::Result<String> {
    if r.steps.is_empty() {
        return Ok("<p class=\"hint\">No step has finished yet.</p>".into());
    }
    let opt_ms = |v: Option<f64>| v.map_or("–".into(), html::ms);
    let rows: Vec<Row> = r
        .steps
        .iter()
        .map(|s| {
            let (result, class, why) = match &s.verdict {
                StepVerdict::Pass => ("pass", "pass", String::new()),
                StepVerdict::Fail { reason } => ("FAIL", "fail", reason.clone()),
                StepVerdict::GeneratorLimited { reason } => {
                    ("generator-limited", "fail", reason.clone())
                }
            };
            Row {
                class: "",
                cells: vec![
                    cell((s.index + 1).to_string()),
                    cell(html::grouped(s.load.into())),
                    cell(html::grouped(s.clients_connected_peak as i64)),
                    cell(html::grouped(s.rooms.into())),
                    cell(format!("{:.2}", s.chat_rate)),
                    cell(opt_ms(s.delivery_p99_ms)),
                    cell(opt_ms(s.ack_p99_ms)),
                    cell(html::per_second(s.deliveries_per_s)),
                    cell(html::per_second(s.work_per_s)),
                    cell(
                        s.server_cpu_us_per_work
                            .map_or("–".into(), |us| format!("{us:.1}")),
                    ),
                    cell(html::grouped(s.connections_failed as i64)),
                    cell(
                        s.server_cpu_percent_mean
                            .map_or("–".into(), |c| format!("{c:.0} %")),
                    ),
                    cell(
                        s.server_rss_peak_bytes
                            .map_or("–".into(), |b| html::bytes(b as f64)),
                    ),
                    cell(format!("{:.0} %", s.machine_cpu_percent_mean)),
                    cell_with(result, class),
                    cell_with(why, "wrap"),
                ],
            }
        })
        .collect();
    html::table(
        "steps",
        "Every step in the order it ran; figures cover its measurement window only (connections: the whole step).",
        &[
            "step",
            "load",
            "connected",
            "rooms",
            "chat/s per client",
            "delivery p99 (ms)",
            "ack p99 (ms)",
            "deliveries",
            "work (in + out)",
            "server CPU per unit of work (µs)",
            "failed connects",
            "server CPU (of one core)",
            "server RSS peak",
            "machine CPU",
            "result",
            "why",
        ],
        &[14, 15],
        &rows,
    )
}

fn model(r: &CapacityResults) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    match &r.usl {
        Some(u) => {
            rows.push(("USL σ (contention)", format!("{:.5}", u.sigma)));
            rows.push(("USL κ (coherency)", format!("{:.3e}", u.kappa)));
            rows.push((
                "USL fitted to",
                "server work per second: chat messages in + deliveries out, one unit each, over the steps the generator did not limit".into(),
            ));
            rows.push((
                "USL λ (work/s per unit of load, uncontended)",
                format!("{:.3}", u.lambda),
            ));
            rows.push((
                "USL predicted peak",
                match (u.peak_load, u.peak_throughput) {
                    (Some(n), Some(x)) => format!(
                        "{} work/s at {} {}",
                        html::grouped(x.round() as i64),
                        html::grouped(n.round() as i64),
                        load_unit(r.vary)
                    ),
                    _ => "none (κ = 0: throughput never falls)".into(),
                },
            ));
            rows.push((
                "USL fit quality",
                match u.fit_warning() {
                    Some(w) => format!("R² {:.3} over {} steps: {w}", u.r2, u.points),
                    None => format!("R² {:.3} over {} steps", u.r2, u.points),
                },
            ));
        }
        None => rows.push((
            "USL",
            "not fitted: it needs at least three steps with throughput".into(),
        )),
    }
    let cpu: Vec<f64> = r
        .steps
        .iter()
        .filter_map(|s| s.server_cpu_us_per_work)
        .collect();
    if let (Some(lo), Some(hi)) = (
        cpu.iter().copied().reduce(f64::min),
        cpu.iter().copied().reduce(f64::max),
    ) {
        rows.push((
            "server CPU per unit of work",
            format!(
                "{lo:.1} to {hi:.1} µs over {} steps (per step in the table above)",
                cpu.len()
            ),
        ));
    }
    match &r.memory_fit {
        Some(m) => {
            rows.push(("server memory per connection", html::bytes(m.slope)));
            rows.push(("server memory base (intercept)", html::bytes(m.intercept)));
            rows.push((
                "memory fit quality",
                format!("R² {:.3} over {} steps", m.r2, m.points),
            ));
        }
        None => rows.push((
            "memory fit",
            "not fitted: it needs two steps with a sampled server at different client counts"
                .into(),
        )),
    }
    html::key_value_table("model", "Fitted models", ["parameter", "value"], rows)
}

/// The `--nodes` measurement: one row per cluster size.
fn scale_out(r: &CapacityResults) -> anyhow::Result<String> {
    let Some(m) = &r.scale_out else {
        return Ok(String::new());
    };
    let num = |v: Option<f64>, d: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.d$}"));
    let rows: Vec<html::Row> = m
        .steps
        .iter()
        .map(|s| html::Row {
            class: if s.valid { "" } else { "fail" },
            cells: vec![
                html::cell(s.nodes.to_string()),
                html::cell(html::grouped(s.work_per_s.round() as i64)),
                html::cell(num(s.server_cpu_percent_mean, 0)),
                html::cell(num(s.server_cpu_us_per_work, 2)),
                html::cell(num(s.redis_cpu_percent_mean, 0)),
                html::cell(num(s.redis_cpu_us_per_work, 2)),
                html::cell(num(s.delivery_p99_ms, 1)),
                html::cell(format!(
                    "{} / {} / {}",
                    s.lost, s.duplicates, s.out_of_order
                )),
                html::cell(format!("{:.0}", s.machine_cpu_percent_mean)),
                html::cell(if s.valid {
                    "yes".to_owned()
                } else {
                    "no: left out of the fit".to_owned()
                }),
            ],
        })
        .collect();
    let table = html::table(
        "scale-out",
        &format!(
            "Measured scale-out (--nodes) at load {}: the bundled server as N processes over a fresh redis-server per size; CPU in % of one core, summed over the nodes.",
            m.load
        ),
        &[
            "nodes",
            "work/s",
            "server CPU %",
            "server µs / unit",
            "Redis CPU %",
            "Redis µs / unit",
            "delivery p99 (ms)",
            "lost / dup / out of order",
            "machine CPU %",
            "valid",
        ],
        &[7, 9],
        &rows,
    )?;
    let holdout = m.holdout.as_ref().map_or(String::new(), |h| {
        format!(
            "<p>{} nodes predicted from {:?}: {:.2} µs per unit, measured {:.2} µs ({:+.1}%).</p>",
            h.nodes,
            h.fitted_from,
            h.predicted_us,
            h.measured_us,
            h.relative_error * 100.0
        )
    });
    Ok(format!("{table}\n{holdout}"))
}

fn projection(r: &CapacityResults) -> anyhow::Result<String> {
    let Some(p) = &r.projection else {
        return Ok("<p class=\"hint\">No projection: pass --target-users N with --vary clients, and the search needs a passing load.</p>".into());
    };
    let bound = match p.bound {
        Bound::Cpu => "CPU (the SLO limit binds first)",
        Bound::Memory => "memory",
    };
    let rows = vec![
        ("target users", html::grouped(p.target_users as i64)),
        ("instances of this machine", p.instances_text()),
        ("scale-out model", p.scale_out_label().to_string()),
        ("bound by", bound.to_string()),
        (
            "users per instance within the SLOs",
            html::grouped(p.users_per_instance_slo as i64),
        ),
        (
            "users per instance by memory",
            p.users_per_instance_memory
                .map_or("no memory fit".into(), |m| html::grouped(m as i64)),
        ),
        (
            "bus (Redis) CPU at the target",
            p.bus_cores_at_target
                .map_or("not measured (run with --nodes)".into(), |c| {
                    format!(
                        "{c:.2} cores{}",
                        if c > 1.0 {
                            ": one Redis is the bottleneck"
                        } else {
                            ""
                        }
                    )
                }),
        ),
        (
            "conservative",
            if p.conservative {
                "yes: the capacity is a lower bound".into()
            } else {
                "no".into()
            },
        ),
    ];
    let table = html::key_value_table("projection", "Instances needed", ["", "value"], rows)?;
    let assumptions: String = p
        .assumptions
        .iter()
        .map(|a| format!("<li>{}</li>", template::escape(a)))
        .collect();
    Ok(format!(
        "{table}\n<p>Assumptions:</p>\n<ul class=\"assumptions\">{assumptions}</ul>"
    ))
}

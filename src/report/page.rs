//! The single-run report: verdict, summary tables, charts, then the
//! scenario and environment, in that order.

use super::charts::{self, RunRef};
use super::html::{self, cell, cell_with, Row};
use super::template::{escape, html, render};
use crate::results::RunResults;

const PAGE: &str = include_str!("templates/report.html");

/// Renders the complete, self-contained HTML report of one run.
pub fn render_report(results: &RunResults) -> anyhow::Result<String> {
    let name = display_name(results);
    let run = RunRef {
        label: &name,
        results,
    };
    let charts = charts::all(&[run]);
    let subtitle = format!(
        "Started {} · {:.1} s · schema v{}",
        if results.started_at.is_empty() {
            "at an unknown time"
        } else {
            &results.started_at
        },
        results.duration_s,
        results.schema_version
    );
    let title = format!("bench report: {name}");
    let main = render(
        "report.html",
        PAGE,
        &[
            ("verdict", html(verdict(results)?)),
            ("summary", html(summary(results)?)),
            ("toc", html(html::toc(&charts))),
            ("charts", html(html::charts(&charts)?)),
            ("scenario", html(scenario(&results.scenario))),
            ("environment", html(html::environment(&results.environment))),
        ],
    )?;
    html::page(html::Page {
        name: "report.html",
        title: &title,
        heading: &title,
        subtitle: &subtitle,
        command: None,
        main,
    })
}

pub(crate) fn display_name(results: &RunResults) -> String {
    if results.name.trim().is_empty() {
        "unnamed run".into()
    } else {
        results.name.clone()
    }
}

/// How a run ended, for headlines and CSS classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pass,
    ThresholdsFailed,
    NoThresholds,
    Invalid,
}

impl Status {
    pub(crate) fn of(r: &RunResults) -> Self {
        if r.is_invalid() {
            Status::Invalid
        } else if r.thresholds.iter().any(|t| !t.pass) {
            Status::ThresholdsFailed
        } else if r.thresholds.is_empty() {
            Status::NoThresholds
        } else {
            Status::Pass
        }
    }

    pub(crate) fn class(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::ThresholdsFailed => "fail",
            Status::NoThresholds => "neutral",
            Status::Invalid => "invalid",
        }
    }

    pub(crate) fn headline(self, r: &RunResults) -> String {
        let total = r.thresholds.len();
        let failed = r.thresholds.iter().filter(|t| !t.pass).count();
        let gates = match (total, failed) {
            (0, _) => "no thresholds set".to_string(),
            (n, 0) => format!("all {n} thresholds passed"),
            (n, f) => format!("{f} of {n} thresholds failed"),
        };
        match self {
            Status::Pass => format!("PASS: {gates}"),
            Status::ThresholdsFailed => format!("FAIL: {gates}"),
            Status::NoThresholds => "Completed: no thresholds set".to_string(),
            Status::Invalid => format!("NOT TRUSTWORTHY: {gates}, but see below"),
        }
    }
}

fn verdict(r: &RunResults) -> anyhow::Result<String> {
    let status = Status::of(r);
    let mut flags = String::new();
    if r.interrupted {
        let reason = r
            .interrupt_reason
            .clone()
            .unwrap_or_else(|| "no reason recorded".into());
        flags.push_str(&html::flag(
            "fail",
            "Interrupted.",
            format!(
                "The run stopped early ({reason}). Everything measured in its {:.1} s is included.",
                r.duration_s
            ),
        )?);
    }
    if r.generator.saturated {
        let reasons = if r.generator.saturation_reasons.is_empty() {
            "no detail recorded".to_string()
        } else {
            r.generator.saturation_reasons.join("; ")
        };
        flags.push_str(&html::flag(
            "warn",
            "Generator saturated.",
            format!(
                "The load generator, not the target, limited this run ({reasons}). Its figures describe the generator as much as the server."
            ),
        )?);
    }
    // The validity rules beyond interruption and saturation (shown above).
    let rules = r.rule_reasons();
    if !rules.is_empty() {
        flags.push_str(&html::flag("fail", "Invalid run.", rules.join("; "))?);
    }
    let c = &r.counters;
    let peak_clients = r
        .timeseries
        .iter()
        .map(|s| s.clients_connected)
        .max()
        .unwrap_or(0);
    let mut figures = vec![
        ("duration", format!("{:.1} s", r.duration_s)),
        ("peak clients", html::grouped(peak_clients as i64)),
        (
            "deliveries",
            html::per_second(r.throughput.deliveries_per_s),
        ),
    ];
    if let Some(m) = r.metrics.get("delivery_latency") {
        figures.push(("delivery p99", format!("{} ms", html::ms(m.p99))));
    }
    if let Some(m) = r.metrics.get("ack_latency") {
        figures.push(("ack p99", format!("{} ms", html::ms(m.p99))));
    }
    figures.push(("lost messages", html::grouped(c.lost as i64)));
    figures.push(("error rate", html::percent(c.error_rate())));
    if let Some(b) = r.server.memory_per_connection_bytes {
        figures.push(("server memory / conn", html::bytes(b)));
    }
    let thresholds = if r.thresholds.is_empty() {
        String::new()
    } else {
        let rows: Vec<Row> = r
            .thresholds
            .iter()
            .map(|t| Row {
                class: "",
                cells: vec![
                    cell(t.metric.clone()),
                    cell(t.condition.clone()),
                    cell(t.value.map_or("not measured".into(), format_value)),
                    if t.pass {
                        cell_with("pass", "pass")
                    } else {
                        cell_with("FAIL", "fail")
                    },
                ],
            })
            .collect();
        html::table(
            "thresholds",
            "Thresholds",
            &["metric", "condition", "measured", "result"],
            &[0, 1],
            &rows,
        )?
    };
    html::verdict(
        status.class(),
        &status.headline(r),
        flags,
        &figures,
        thresholds,
    )
}

/// Threshold values come in the metric's own unit; show them compactly.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        html::grouped(v as i64)
    } else if v.abs() < 0.01 {
        format!("{v:.6}")
    } else {
        format!("{v:.3}")
    }
}

/// The run summary: the latency table, then counters and resources.
fn summary(r: &RunResults) -> anyhow::Result<String> {
    let latency = latency_table(r)?;
    let mut rows = counter_rows(r);
    rows.extend(resource_rows(r));
    rows.extend(compression_rows(r));
    rows.extend(tls_rows(r));
    let counters = html::key_value_table(
        "counters",
        "Counters and resources",
        ["counter", "value"],
        rows,
    )?;
    Ok(format!("{latency}\n{counters}"))
}

/// One row per latency metric, its service-time twin right below it.
fn latency_table(r: &RunResults) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for (name, m) in &r.metrics {
        if name.ends_with("_service") {
            continue;
        }
        let service = r.metrics.get(&format!("{name}_service"));
        let variant = if service.is_some() {
            "corrected"
        } else {
            "measured"
        };
        rows.push(latency_row(name, variant, m, ""));
        if let Some(s) = service {
            rows.push(latency_row("", "service time", s, "variant-service"));
        }
    }
    // Service-time metrics whose corrected twin is missing still get a row.
    for (name, m) in &r.metrics {
        if let Some(base) = name.strip_suffix("_service") {
            if !r.metrics.contains_key(base) {
                rows.push(latency_row(base, "service time", m, "variant-service"));
            }
        }
    }
    if rows.is_empty() {
        return Ok("<p class=\"hint\">No latency was recorded in this run.</p>".to_string());
    }
    html::table(
        "latency",
        "Latency (ms). Corrected: from the intended send time; service time: from the actual send.",
        &[
            "metric", "variant", "p50", "p90", "p99", "p99.9", "max", "count",
        ],
        &[0, 1],
        &rows,
    )
}

/// Connections, messages, loss, errors and traffic.
fn counter_rows(r: &RunResults) -> Vec<(&'static str, String)> {
    let c = &r.counters;
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}: {}", html::grouped(*v as i64)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let n = |v: u64| html::grouped(v as i64);
    let loss_rate = if c.deliveries_expected == 0 {
        0.0
    } else {
        c.lost as f64 / c.deliveries_expected as f64
    };
    vec![
        ("connections opened", n(c.connections_opened)),
        ("connections failed", join(&c.connections_failed)),
        ("closes by code", join(&c.closes)),
        ("reconnects", n(c.reconnects)),
        ("chat messages sent", n(c.chat_sent)),
        ("acks received", n(c.acks_received)),
        (
            "deliveries received / expected",
            format!(
                "{} / {}",
                n(c.deliveries_received),
                n(c.deliveries_expected)
            ),
        ),
        (
            "lost messages",
            format!("{} ({})", n(c.lost), html::percent(loss_rate)),
        ),
        (
            "lost at the end of the drain",
            format!(
                "{} (part of lost: still missing when the drain ended)",
                n(c.lost_tail)
            ),
        ),
        ("duplicates", n(c.duplicates)),
        ("out of order", n(c.out_of_order)),
        ("error frames", join(&c.errors)),
        (
            "error rate",
            format!(
                "{} ({} errors)",
                html::percent(c.error_rate()),
                n(c.errors_total())
            ),
        ),
        ("late sends", n(c.late_sends)),
        (
            "frames sent / received",
            format!("{} / {}", n(c.frames_sent), n(c.frames_received)),
        ),
        (
            "bytes sent / received",
            format!(
                "{} / {}",
                html::bytes(c.bytes_sent as f64),
                html::bytes(c.bytes_received as f64)
            ),
        ),
    ]
}

/// Throughput and the resources of server, generator and machine.
fn resource_rows(r: &RunResults) -> Vec<(&'static str, String)> {
    let opt_bytes = |v: Option<f64>| v.map_or("not sampled".into(), html::bytes);
    let opt_pct = |v: Option<f64>| v.map_or("not sampled".into(), |p| format!("{p:.1} %"));
    let mut rows = vec![
        (
            "messages sent",
            html::per_second(r.throughput.chat_sent_per_s),
        ),
        (
            "deliveries (mean / peak)",
            format!(
                "{} / {}",
                html::per_second(r.throughput.deliveries_per_s),
                html::per_second(r.throughput.deliveries_per_s_peak)
            ),
        ),
        (
            "server RSS peak",
            opt_bytes(r.server.rss_peak_bytes.map(|b| b as f64)),
        ),
        (
            "server memory per connection",
            opt_bytes(r.server.memory_per_connection_bytes),
        ),
        (
            "server CPU (mean / peak, % of one core)",
            format!(
                "{} / {}",
                opt_pct(r.server.cpu_percent_mean),
                opt_pct(r.server.cpu_percent_peak)
            ),
        ),
        (
            "generator CPU (mean / peak, % of one core)",
            format!(
                "{:.1} % / {:.1} %",
                r.generator.cpu_percent_mean, r.generator.cpu_percent_peak
            ),
        ),
        (
            "generator RSS peak",
            html::bytes(r.generator.rss_peak_bytes as f64),
        ),
        (
            "machine CPU (mean, of all cores)",
            format!(
                "{:.1} % of {} cores ({:.1} % softirq)",
                r.machine.cpu_percent_mean, r.machine.cores, r.machine.softirq_percent_mean
            ),
        ),
    ];
    // Several processes (a supervisor and its children, Redis): each one.
    if r.server.processes.len() > 1 {
        let text: Vec<String> = r
            .server
            .processes
            .iter()
            .map(|p| {
                let who = match p.index {
                    Some(i) => format!("{} {i}", p.role),
                    None => p.role.clone(),
                };
                format!(
                    "{who} (pid {}): {}, {}",
                    p.pid,
                    html::bytes(p.rss_peak_bytes as f64),
                    opt_pct(p.cpu_percent_mean)
                )
            })
            .collect();
        rows.push((
            "processes (RSS peak, CPU mean; Redis not in the server sums)",
            text.join("; "),
        ));
    }
    rows
}

/// permessage-deflate figures, when the run offered it.
fn tls_rows(r: &RunResults) -> Vec<(&'static str, String)> {
    let Some(t) = &r.tls else {
        return Vec::new();
    };
    let c = &r.counters;
    let n = |v: u64| html::grouped(v as i64);
    let ratio = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}×"));
    let share = t
        .resumed_share
        .map_or("-".into(), |s| format!("{:.1} %", s * 100.0));
    let mut rows = vec![
        (
            "TLS certificate verification",
            if t.insecure {
                "OFF (insecure = true)".to_string()
            } else {
                "on".to_string()
            },
        ),
        (
            "TLS handshakes / resumed",
            format!("{} / {} ({share})", n(t.connections), n(t.resumed)),
        ),
        (
            "TLS wire bytes sent / received",
            format!(
                "{} / {}",
                html::bytes(c.tls_wire_bytes_sent as f64),
                html::bytes(c.tls_wire_bytes_received as f64)
            ),
        ),
        (
            "TLS / WebSocket bytes sent / received",
            format!(
                "{} / {}",
                ratio(t.wire_ratio_sent),
                ratio(t.wire_ratio_received)
            ),
        ),
    ];
    if !t.resume {
        rows[1].1.push_str(", resumption off");
    }
    rows
}

fn compression_rows(r: &RunResults) -> Vec<(&'static str, String)> {
    let Some(z) = &r.compression else {
        return Vec::new();
    };
    let c = &r.counters;
    let n = |v: u64| html::grouped(v as i64);
    let ratio = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}×"));
    let bytes = |payload: u64, wire: u64| {
        format!(
            "{} / {}",
            html::bytes(payload as f64),
            html::bytes(wire as f64)
        )
    };
    vec![
        (
            "permessage-deflate connections",
            format!("{} of {}", n(z.connections), n(c.connections_opened)),
        ),
        (
            "compression ratio (payload / wire) sent / received",
            format!("{} / {}", ratio(z.ratio_sent), ratio(z.ratio_received)),
        ),
        (
            "payload / wire bytes sent",
            bytes(c.payload_bytes_sent, c.wire_bytes_sent),
        ),
        (
            "payload / wire bytes received",
            bytes(c.payload_bytes_received, c.wire_bytes_received),
        ),
    ]
}

fn latency_row(
    name: &str,
    variant: &str,
    m: &crate::results::LatencySummary,
    class: &'static str,
) -> Row {
    Row {
        class,
        cells: vec![
            cell(name),
            cell(variant),
            cell(html::ms(m.p50)),
            cell(html::ms(m.p90)),
            cell(html::ms(m.p99)),
            cell(html::ms(m.p999)),
            cell(html::ms(m.max)),
            cell(html::grouped(m.count as i64)),
        ],
    }
}

fn scenario(plan: &serde_json::Value) -> String {
    if plan.is_null() {
        return "<p class=\"hint\">The scenario was not recorded in these results.</p>".into();
    }
    let pretty = serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("unprintable: {e}"));
    format!("<pre class=\"scenario\">{}</pre>", escape(&pretty))
}

//! The end-of-run summary printed to the terminal: latencies (corrected
//! from the intended send time, and service time), counters, losses,
//! throughput, server and generator resources, and threshold verdicts.
//!
//! Plain text; colour only when stdout is a terminal and `NO_COLOR` is not
//! set, so CI logs stay clean.

use std::fmt::Write as _;
use std::io::IsTerminal;

// Counts and byte sizes read the same in the terminal and the HTML report.
use crate::format::{bytes, ms_terse as ms, percent_terse as percent, thousands};
use crate::results::{LatencySummary, RunResults, ThresholdResult};
use crate::scenario::metrics::{metric_unit, MetricUnit};

/// Latency metrics in display order; any others recorded follow them.
const LATENCY_ORDER: &[&str] = &[
    "delivery_latency",
    "ack_latency",
    "connect_time",
    "ping_rtt",
    "reconnect_time",
    "replay_latency",
    "schedule_lag",
];

/// Prints the summary to stdout, coloured when that is a terminal.
pub fn print(results: &RunResults) {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render(results, color));
}

/// The summary as text.
pub fn render(results: &RunResults, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    let w = &mut out;
    header(w, results, paint);
    latencies(w, results);
    counters(w, results);
    tls(w, results);
    other_counters(w, results, SHOWN_COUNTERS);
    resources(w, results);
    thresholds(w, &results.thresholds, paint);
    out
}

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn red(self, t: &str) -> String {
        self.wrap("1;31", t)
    }
    fn green(self, t: &str) -> String {
        self.wrap("32", t)
    }
    fn yellow(self, t: &str) -> String {
        self.wrap("1;33", t)
    }
    fn bold(self, t: &str) -> String {
        self.wrap("1", t)
    }
}

fn header(w: &mut String, r: &RunResults, paint: Paint) {
    let _ = writeln!(
        w,
        "{} — {:.1} s",
        paint.bold(&format!("bench run \"{}\"", r.name)),
        r.duration_s
    );
    if r.interrupted {
        let why = r.interrupt_reason.as_deref().unwrap_or("stopped early");
        let _ = writeln!(
            w,
            "{}",
            paint.yellow(&format!(
                "INTERRUPTED ({why}): the results cover the run until then."
            ))
        );
    }
    if r.generator.saturated {
        let _ = writeln!(
            w,
            "{}",
            paint.red(
                "WARNING: the load generator was saturated; these results are not trustworthy."
            )
        );
        for reason in &r.generator.saturation_reasons {
            let _ = writeln!(w, "  - {reason}");
        }
    }
    let rules = r.rule_reasons();
    if !rules.is_empty() {
        let _ = writeln!(
            w,
            "{}",
            paint.red(&format!("INVALID RUN: {}", rules.join("; ")))
        );
    }
}

fn latencies(w: &mut String, r: &RunResults) {
    let mut names: Vec<&str> = LATENCY_ORDER
        .iter()
        .copied()
        .filter(|n| r.metrics.contains_key(*n) || r.metrics.contains_key(&format!("{n}_service")))
        .collect();
    for name in r.metrics.keys() {
        let base = name.strip_suffix("_service").unwrap_or(name);
        if !names.contains(&base) {
            names.push(base);
        }
    }
    if names.is_empty() {
        let _ = writeln!(w, "\nlatency: nothing measured");
        return;
    }
    let _ = writeln!(
        w,
        "\n{:<34}{:>11}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}",
        "latency (ms)", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    for name in names {
        if let Some(m) = r.metrics.get(name) {
            latency_row(w, name, m);
        }
        if let Some(m) = r.metrics.get(&format!("{name}_service")) {
            latency_row(w, "  service time", m);
        }
    }
    if r.metrics.keys().any(|k| k.ends_with("_service")) {
        let _ = writeln!(
            w,
            "  (plain rows: from the intended send time, corrected for coordinated omission;\n   service rows: from the actual send)"
        );
    }
}

fn latency_row(w: &mut String, name: &str, m: &LatencySummary) {
    let _ = writeln!(
        w,
        "  {:<32}{:>11}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}",
        name,
        thousands(m.count),
        ms(m.min),
        ms(m.mean),
        ms(m.p50),
        ms(m.p90),
        ms(m.p99),
        ms(m.p999),
        ms(m.max)
    );
}

fn counters(w: &mut String, r: &RunResults) {
    let c = &r.counters;
    let t = &r.throughput;
    let _ = writeln!(w, "\nmessages");
    let _ = writeln!(
        w,
        "  chat sent        {:>14}   {}/s",
        thousands(c.chat_sent),
        rate(t.chat_sent_per_s)
    );
    let _ = writeln!(w, "  acks received    {:>14}", thousands(c.acks_received));
    let _ = writeln!(
        w,
        "  deliveries       {:>14}   of {} expected; {}/s mean, {}/s peak",
        thousands(c.deliveries_received),
        thousands(c.deliveries_expected),
        rate(t.deliveries_per_s),
        rate(t.deliveries_per_s_peak)
    );
    let tail = if c.lost_tail > 0 {
        format!(
            "; {} still missing when the drain ended",
            thousands(c.lost_tail)
        )
    } else {
        String::new()
    };
    let loss = if c.deliveries_expected > 0 {
        format!(
            "   ({} of expected{tail})",
            percent(c.lost as f64 / c.deliveries_expected as f64)
        )
    } else {
        String::new()
    };
    let _ = writeln!(w, "  lost             {:>14}{loss}", thousands(c.lost));
    let _ = writeln!(w, "  duplicates       {:>14}", thousands(c.duplicates));
    let _ = writeln!(w, "  out of order     {:>14}", thousands(c.out_of_order));
    if c.late_sends > 0 {
        let _ = writeln!(
            w,
            "  late sends       {:>14}   (started later than intended)",
            thousands(c.late_sends)
        );
    }
    if !c.unmatched.is_empty() {
        // [target.json] frames no matcher knew: the first few are in results.json.
        let kinds: Vec<String> = c
            .unmatched
            .iter()
            .map(|(k, n)| format!("{k} {}", thousands(*n)))
            .collect();
        let _ = writeln!(
            w,
            "  unmatched        {:>14}   ({}; samples in results.json)",
            thousands(c.unmatched.values().sum()),
            kinds.join(", ")
        );
    }
    let _ = writeln!(w, "connections");
    let _ = writeln!(
        w,
        "  opened           {:>14}",
        thousands(c.connections_opened)
    );
    let _ = writeln!(
        w,
        "  failed           {:>14}{}",
        thousands(c.connections_failed_total()),
        breakdown(&c.connections_failed)
    );
    for reason in c.connections_failed.keys() {
        let hint = crate::results::tls::explain(reason).or_else(|| {
            // Plaintext to a TLS port that just hangs up (no answer we can read).
            (reason == "reset" && c.connections_opened == 0 && r.tls.is_none()).then_some(
                "the server closed before answering the upgrade: if it speaks TLS on that port, use a wss:// url",
            )
        });
        if let Some(hint) = hint {
            let _ = writeln!(w, "    {reason}: {hint}");
        }
    }
    let closes: u64 = c.closes.values().sum();
    let _ = writeln!(
        w,
        "  closes           {:>14}{}",
        thousands(closes),
        breakdown(&c.closes)
    );
    let _ = writeln!(w, "  reconnects       {:>14}", thousands(c.reconnects));
    let _ = writeln!(
        w,
        "  errors           {:>14}   rate {}{}",
        thousands(c.errors_total()),
        percent(c.error_rate()),
        if c.errors.is_empty() {
            String::new()
        } else {
            format!(
                "   error frames{}",
                breakdown(&c.errors)
                    .trim_start_matches(' ')
                    .replacen('(', " (", 1)
            )
        }
    );
    let _ = writeln!(w, "traffic");
    let _ = writeln!(
        w,
        "  frames           {:>14} sent {:>14} received",
        thousands(c.frames_sent),
        thousands(c.frames_received)
    );
    let _ = writeln!(
        w,
        "  bytes            {:>14} sent {:>14} received   {}/s in",
        bytes(c.bytes_sent as f64),
        bytes(c.bytes_received as f64),
        bytes(t.bytes_received_per_s)
    );
    if let Some(z) = &r.compression {
        let ratio = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            w,
            "  deflate          {:>14} of {} connections   payload/wire {} sent, {} received",
            thousands(z.connections),
            thousands(c.connections_opened),
            ratio(z.ratio_sent),
            ratio(z.ratio_received)
        );
        let _ = writeln!(
            w,
            "  payload / wire   {} / {} sent, {} / {} received",
            bytes(c.payload_bytes_sent as f64),
            bytes(c.wire_bytes_sent as f64),
            bytes(c.payload_bytes_received as f64),
            bytes(c.wire_bytes_received as f64)
        );
    }
}

/// `wss://`: verification, resumption, the connect stages and the bytes
/// TLS added on the wire.
fn tls(w: &mut String, r: &RunResults) {
    let Some(t) = &r.tls else {
        return;
    };
    let c = &r.counters;
    let _ = writeln!(w, "tls");
    if t.insecure {
        let _ = writeln!(
            w,
            "  INSECURE: certificates were not verified ([target.tls] insecure = true)"
        );
    }
    let share = t.resumed_share.map_or("-".into(), percent);
    let _ = writeln!(
        w,
        "  handshakes       {:>14}   resumed {} ({share}){}",
        thousands(t.connections),
        thousands(t.resumed),
        if t.resume { "" } else { "   resume off" }
    );
    let p50 = |k: &str| r.metrics.get(k).map_or("-".into(), |m| ms(m.p50));
    let p99 = |k: &str| r.metrics.get(k).map_or("-".into(), |m| ms(m.p99));
    let _ = writeln!(
        w,
        "  connect p50/p99  tcp {} / {}   tls {} / {}   upgrade {} / {} ms",
        p50("tcp_connect_time"),
        p99("tcp_connect_time"),
        p50("tls_handshake_time"),
        p99("tls_handshake_time"),
        p50("upgrade_time"),
        p99("upgrade_time")
    );
    let ratio = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}x"));
    let _ = writeln!(
        w,
        "  on the wire      {} sent, {} received   (TLS/WebSocket bytes {} sent, {} received)",
        bytes(c.tls_wire_bytes_sent as f64),
        bytes(c.tls_wire_bytes_received as f64),
        ratio(t.wire_ratio_sent),
        ratio(t.wire_ratio_received)
    );
}

/// Counters the sections above already show.
const SHOWN_COUNTERS: &[&str] = &[
    "connections_opened",
    "connections_failed",
    "closes",
    "reconnects",
    "frames_sent",
    "frames_received",
    "bytes_sent",
    "bytes_received",
    "chat_sent",
    "acks_received",
    "deliveries_received",
    "deliveries_expected",
    "lost",
    "lost_tail",
    "duplicates",
    "out_of_order",
    "errors",
    "late_sends",
    "deflate_connections",
    "payload_bytes_sent",
    "wire_bytes_sent",
    "payload_bytes_received",
    "wire_bytes_received",
    "tls_connections",
    "tls_resumed",
    "tls_wire_bytes_sent",
    "tls_wire_bytes_received",
    "unmatched",
];

/// Any other non-zero counter, so counters added to the model later are
/// never hidden from the summary.
fn other_counters(w: &mut String, r: &RunResults, shown: &[&str]) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&r.counters) else {
        return;
    };
    let others: Vec<(String, u64)> = fields
        .into_iter()
        .filter(|(k, _)| !shown.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k, v.as_u64()?)))
        .filter(|(_, v)| *v > 0)
        .collect();
    if others.is_empty() {
        return;
    }
    let _ = writeln!(w, "other counters");
    for (name, value) in others {
        let _ = writeln!(
            w,
            "  {:<17}{:>14}",
            name.replace('_', " "),
            thousands(value)
        );
    }
}

fn resources(w: &mut String, r: &RunResults) {
    let s = &r.server;
    let na = || "n/a".to_owned();
    let pids = if s.pids.is_empty() {
        "not sampled".to_owned()
    } else {
        format!(
            "pid {}",
            s.pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let per_conn = match (s.memory_per_connection_bytes, &s.memory_fit) {
        (Some(b), Some(fit)) => {
            format!("{} (fit r² {:.3}, {} points)", bytes(b), fit.r2, fit.points)
        }
        (Some(b), None) => bytes(b),
        _ => na(),
    };
    let _ = writeln!(w, "\nserver ({pids})");
    let _ = writeln!(
        w,
        "  rss peak {}   memory/connection {per_conn}   cpu mean {} peak {}",
        s.rss_peak_bytes.map_or_else(na, |b| bytes(b as f64)),
        s.cpu_percent_mean.map_or_else(na, cpu),
        s.cpu_percent_peak.map_or_else(na, cpu),
    );
    let g = &r.generator;
    let _ = writeln!(w, "generator");
    let _ = writeln!(
        w,
        "  rss peak {}   memory/client {}   cpu mean {} peak {}{}",
        bytes(g.rss_peak_bytes as f64),
        g.memory_per_client_bytes.map_or_else(na, bytes),
        cpu(g.cpu_percent_mean),
        cpu(g.cpu_percent_peak),
        if g.saturated { "   SATURATED" } else { "" }
    );
    let m = &r.machine;
    let _ = writeln!(
        w,
        "machine\n  cpu mean {} (softirq {}) on {} cores",
        cpu(m.cpu_percent_mean),
        cpu(m.softirq_percent_mean),
        m.cores
    );
}

fn thresholds(w: &mut String, results: &[ThresholdResult], paint: Paint) {
    if results.is_empty() {
        return;
    }
    let _ = writeln!(w, "\nthresholds");
    let width = results
        .iter()
        .map(|t| t.metric.len() + t.condition.len() + 1)
        .max()
        .unwrap_or(0);
    for t in results {
        let verdict = if t.pass {
            paint.green("PASS")
        } else {
            paint.red("FAIL")
        };
        let value = match t.value {
            Some(v) => format_value(&t.metric, v),
            None => "not measured".to_owned(),
        };
        let cond = format!("{} {}", t.metric, t.condition);
        let _ = writeln!(w, "  {verdict}  {cond:<width$}   {value}");
    }
    let failed = results.iter().filter(|t| !t.pass).count();
    let line = format!("{} passed, {failed} failed", results.len() - failed);
    let _ = writeln!(
        w,
        "  {}",
        if failed == 0 {
            paint.green(&line)
        } else {
            paint.red(&line)
        }
    );
}

/// A metric value in its unit, for threshold lines.
fn format_value(metric: &str, v: f64) -> String {
    match metric_unit(metric) {
        Ok(MetricUnit::Millis) => format!("{}ms", ms(v)),
        Ok(MetricUnit::Fraction) => percent(v),
        Ok(MetricUnit::Count) => thousands(v.round() as u64),
        Ok(MetricUnit::Bytes) => bytes(v),
        Ok(MetricUnit::PerSecond) => format!("{}/s", rate(v)),
        Ok(MetricUnit::Percent) => cpu(v),
        Err(_) => format!("{v}"),
    }
}

fn breakdown(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}: {}", thousands(*v)))
        .collect();
    format!("   ({})", parts.join(", "))
}

fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        thousands(v.round() as u64)
    }
}

fn cpu(p: f64) -> String {
    format!("{p:.0}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::*;

    fn lat(count: u64, base: f64) -> LatencySummary {
        LatencySummary {
            count,
            min: base,
            mean: base * 2.0,
            p50: base * 1.5,
            p90: base * 3.0,
            p99: base * 10.0,
            p999: base * 20.0,
            max: base * 40.0,
            ..Default::default()
        }
    }

    fn sample() -> RunResults {
        let mut r = RunResults {
            name: "quickstart".into(),
            duration_s: 30.04,
            ..Default::default()
        };
        r.metrics
            .insert("delivery_latency".into(), lat(1_234_567, 1.25));
        r.metrics
            .insert("delivery_latency_service".into(), lat(1_234_567, 0.5));
        r.metrics.insert("connect_time".into(), lat(1000, 3.0));
        let c = &mut r.counters;
        c.chat_sent = 3000;
        c.acks_received = 3000;
        c.deliveries_received = 1_234_560;
        c.deliveries_expected = 1_234_567;
        c.lost = 7;
        c.connections_opened = 1000;
        c.connections_failed.insert("refused".into(), 2);
        c.closes.insert("1000".into(), 998);
        c.errors.insert("RATE_LIMITED".into(), 3);
        c.frames_sent = 4000;
        c.frames_received = 1_240_000;
        c.bytes_sent = 512_000;
        c.bytes_received = 150_000_000;
        r.throughput = Throughput {
            chat_sent_per_s: 100.0,
            deliveries_per_s: 41_152.2,
            deliveries_per_s_peak: 45_000.0,
            bytes_received_per_s: 5_000_000.0,
        };
        r.server = ServerStats {
            pids: vec![4242],
            rss_peak_bytes: Some(64 * 1024 * 1024),
            memory_per_connection_bytes: Some(3174.4),
            memory_fit: Some(LinearFit {
                slope: 3174.4,
                intercept: 1e7,
                r2: 0.9987,
                points: 30,
            }),
            cpu_percent_mean: Some(41.6),
            cpu_percent_peak: Some(88.0),
            processes: Vec::new(),
        };
        r.generator = GeneratorStats {
            cpu_percent_mean: 35.0,
            cpu_percent_peak: 99.5,
            rss_peak_bytes: 40 * 1024 * 1024,
            memory_per_client_bytes: Some(3500.0),
            saturated: true,
            saturation_reasons: vec!["schedule lag p99 24ms > 10ms".into()],
            recording_cpu_share: None,
            pacing: None,
        };
        r.machine = MachineStats {
            cpu_percent_mean: 80.0,
            softirq_percent_mean: 9.0,
            cores: 2,
        };
        r.thresholds = vec![
            ThresholdResult {
                metric: "delivery_latency.p99".into(),
                condition: "< 50ms".into(),
                value: Some(12.5),
                pass: true,
            },
            ThresholdResult {
                metric: "delivery.lost".into(),
                condition: "== 0".into(),
                value: Some(7.0),
                pass: false,
            },
            ThresholdResult {
                metric: "reconnect_time.p99".into(),
                condition: "< 1s".into(),
                value: None,
                pass: false,
            },
        ];
        r
    }

    #[test]
    fn plain_summary() {
        let text = render(&sample(), false);
        let expected = r#"bench run "quickstart" — 30.0 s
WARNING: the load generator was saturated; these results are not trustworthy.
  - schedule lag p99 24ms > 10ms

latency (ms)                            count     min    mean     p50     p90     p99   p99.9     max
  delivery_latency                  1,234,567    1.25    2.50    1.88    3.75    12.5    25.0    50.0
    service time                    1,234,567    0.50    1.00    0.75    1.50    5.00    10.0    20.0
  connect_time                          1,000    3.00    6.00    4.50    9.00    30.0    60.0     120
  (plain rows: from the intended send time, corrected for coordinated omission;
   service rows: from the actual send)

messages
  chat sent                 3,000   100/s
  acks received             3,000
  deliveries            1,234,560   of 1,234,567 expected; 41,152/s mean, 45,000/s peak
  lost                          7   (0.0006% of expected)
  duplicates                    0
  out of order                  0
connections
  opened                    1,000
  failed                        2   (refused: 2)
  closes                      998   (1000: 998)
  reconnects                    0
  errors                        5   rate 0.10%   error frames (RATE_LIMITED: 3)
traffic
  frames                    4,000 sent      1,240,000 received
  bytes                 500.0 KiB sent      143.1 MiB received   4.8 MiB/s in

server (pid 4242)
  rss peak 64.0 MiB   memory/connection 3.1 KiB (fit r² 0.999, 30 points)   cpu mean 42% peak 88%
generator
  rss peak 40.0 MiB   memory/client 3.4 KiB   cpu mean 35% peak 100%   SATURATED
machine
  cpu mean 80% (softirq 9%) on 2 cores

thresholds
  PASS  delivery_latency.p99 < 50ms   12.5ms
  FAIL  delivery.lost == 0            7
  FAIL  reconnect_time.p99 < 1s       not measured
  1 passed, 2 failed
"#;
        assert_eq!(text, expected, "got:\n{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_only_when_asked() {
        let text = render(&sample(), true);
        assert!(text.contains("\x1b[32mPASS\x1b[0m"));
        assert!(text.contains("\x1b[1;31mFAIL\x1b[0m"));
    }

    #[test]
    fn an_empty_run_renders() {
        let text = render(&RunResults::default(), false);
        assert!(text.contains("latency: nothing measured"));
        assert!(text.contains("server (not sampled)"));
        assert!(!text.contains("thresholds"));
    }

    #[test]
    fn compression_is_summarized_when_offered() {
        let mut r = sample();
        assert!(!render(&r, false).contains("deflate"));
        r.counters.connections_opened = 10;
        r.counters.payload_bytes_sent = 2048;
        r.counters.wire_bytes_sent = 1024;
        r.compression = Some(Compression {
            connections: 9,
            ratio_sent: Some(2.0),
            ratio_received: None,
        });
        let text = render(&r, false);
        assert!(
            text.contains("deflate                       9 of 10 connections   payload/wire 2.00x sent, - received"),
            "{text}"
        );
        assert!(
            text.contains("payload / wire   2.0 KiB / 1.0 KiB sent"),
            "{text}"
        );
    }

    #[test]
    fn interrupted_runs_say_so() {
        let r = RunResults {
            interrupted: true,
            interrupt_reason: Some("Ctrl-C".into()),
            ..Default::default()
        };
        assert!(render(&r, false).contains("INTERRUPTED (Ctrl-C)"));
    }

    #[test]
    fn invalid_runs_say_why_in_one_line() {
        let mut r = RunResults {
            validity: crate::results::Validity {
                valid: false,
                reasons: vec!["3 of 200 planned clients (1.5%) were never ready".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        r.seal_validity();
        let text = render(&r, false);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("INVALID RUN")).collect();
        assert_eq!(
            lines,
            ["INVALID RUN: 3 of 200 planned clients (1.5%) were never ready"]
        );
        assert!(r.is_invalid());
    }

    #[test]
    fn every_counter_the_model_has_is_shown_or_listed() {
        let fields = serde_json::to_value(Counters::default()).unwrap();
        for name in fields.as_object().unwrap().keys() {
            // Shown in their own sections, or printed generically when non-zero.
            assert!(
                SHOWN_COUNTERS.contains(&name.as_str()) || fields[name].is_u64(),
                "counter `{name}` would never appear in the summary"
            );
        }
    }

    #[test]
    fn unlisted_counters_are_printed_when_non_zero() {
        let mut text = String::new();
        let r = sample();
        other_counters(&mut text, &r, &["lost"]);
        assert!(text.starts_with("other counters\n"), "{text}");
        assert!(
            text.contains("  chat sent                 3,000\n"),
            "{text}"
        );
        assert!(!text.contains("lost"), "{text}");
        assert!(
            !text.contains("duplicates"),
            "zero counters are left out: {text}"
        );
    }

    #[test]
    fn the_tail_is_shown_as_part_of_lost() {
        let mut r = sample();
        r.counters.lost_tail = 3;
        let text = render(&r, false);
        assert!(
            text.contains("of expected; 3 still missing when the drain ended)"),
            "{text}"
        );
        // Shown with `lost`, not again under other counters.
        assert!(!text.contains("lost tail"), "{text}");
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(2048.0), "2.0 KiB");
        assert_eq!(percent(0.001), "0.10%");
        assert_eq!(format_value("errors.rate", 0.5), "50.00%");
        assert_eq!(format_value("memory_per_connection", 3072.0), "3.0 KiB");
    }
}

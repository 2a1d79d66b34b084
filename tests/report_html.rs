//! Structure of the generated HTML: every chart present with data, nothing
//! fetched from anywhere, hostile names escaped, empty runs still render,
//! the exporter and the `bench report` command (single and comparison).

mod report_common;

use std::process::Command;

use bench::export::ExportManager;
use bench::report::{render_comparison, render_report, HtmlExporter, LabeledRun};
use bench::results::RunResults;
use report_common::inspect::{chart_ids, data_marks, figure, has_text, referenced_urls};

const SINGLE_RUN_CHARTS: [&str; 10] = [
    "latency-delivery",
    "latency-ack",
    "distribution-delivery_latency",
    "distribution-ack_latency",
    "distribution-connect_time",
    "throughput",
    "clients",
    "server-resources",
    "memory-per-connection",
    "errors",
];

fn assert_self_contained(html: &str) {
    for url in referenced_urls(html) {
        assert!(
            url.starts_with('#') || url.starts_with("data:"),
            "report references an external resource: {url}"
        );
    }
    assert!(
        !html.contains("<script"),
        "the report must need no JavaScript"
    );
    assert!(!html.contains("@import"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    // The only http(s) strings allowed are XML namespaces, which are never fetched.
    for (i, _) in html
        .match_indices("http://")
        .chain(html.match_indices("https://"))
    {
        let before = &html[i.saturating_sub(7)..i];
        assert!(
            before.ends_with("xmlns=\""),
            "unexpected URL near: {}",
            &html[i.saturating_sub(40)..(i + 60).min(html.len())]
        );
    }
}

#[test]
fn report_has_every_section_and_chart_with_data() {
    let run = report_common::fixture_run("quickstart", 1, 1.0);
    let html = render_report(&run).expect("render");
    assert_self_contained(&html);

    // Order: verdict, summary, charts, scenario, environment.
    let order = [
        "id=\"verdict\"",
        "id=\"summary\"",
        "id=\"charts\"",
        "id=\"scenario\"",
        "id=\"environment\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| {
            html.find(s)
                .unwrap_or_else(|| panic!("missing section {s}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "sections out of order: {positions:?}"
    );

    assert_eq!(chart_ids(&html), SINGLE_RUN_CHARTS);
    for id in SINGLE_RUN_CHARTS {
        let fig = figure(&html, id).unwrap_or_else(|| panic!("chart {id} missing"));
        assert!(
            fig.contains("data-has-data=\"true\""),
            "chart {id} has no data"
        );
        assert!(
            fig.contains("<svg") && fig.contains("viewBox"),
            "chart {id} has no SVG"
        );
        let marks = data_marks(fig, 3);
        assert!(marks >= 1, "chart {id} has no data paths");
        // Title, axis labels and legend are SVG text.
        assert!(
            fig.matches("<text").count() >= 6,
            "chart {id} lacks title/axes/legend"
        );
    }
    // Units on the axes.
    for unit in [
        "latency (ms)",
        "time since start (s)",
        "messages per second",
        "server RSS (MiB)",
        "CPU (% of one core)",
        "connected clients",
        "events per second",
    ] {
        assert!(has_text(&html, unit), "axis unit {unit} missing");
    }
    // Percentile axis ticks.
    let dist = figure(&html, "distribution-delivery_latency").expect("dist");
    for tick in ["50%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(has_text(dist, tick), "percentile tick {tick} missing");
    }
    assert!(has_text(dist, "corrected") && has_text(dist, "service time"));
    // Stage boundaries are marked on the time charts.
    let lat = figure(&html, "latency-delivery").expect("latency");
    assert!(has_text(lat, "stage 2 → 1000"), "stage markers missing");
    // Legend entries of the latency chart.
    for s in ["p50", "p90", "p99", "max"] {
        assert!(has_text(lat, s), "legend {s} missing");
    }
    // Closes are drawn per close code.
    let errors = figure(&html, "errors").expect("errors");
    for code in ["closes 1000/s*", "closes 1013/s*"] {
        assert!(has_text(errors, code), "legend {code} missing");
    }
    // Memory per connection carries its fitted slope.
    assert!(has_text(
        figure(&html, "memory-per-connection").expect("mem"),
        "fit: 9.0 KiB/connection*"
    ));
}

#[test]
fn summary_and_verdict_reflect_the_results() {
    let run = report_common::fixture_run("quickstart", 1, 1.0);
    let html = render_report(&run).expect("render");
    let summary = &html[html.find("id=\"summary\"").expect("summary")
        ..html.find("id=\"charts\"").expect("charts")];
    for col in ["p50", "p90", "p99", "p99.9", "max", "count"] {
        assert!(
            summary.contains(&format!(">{col}</th>")),
            "summary column {col} missing"
        );
    }
    for metric in ["delivery_latency", "ack_latency", "connect_time"] {
        assert!(
            summary.contains(&format!("<td class=\"text\">{metric}</td>")),
            "metric {metric} missing"
        );
    }
    assert_eq!(
        summary.matches("service time</td>").count(),
        2,
        "service rows for delivery and ack"
    );
    let count = run.metrics["delivery_latency"].count;
    assert!(
        summary.contains(&bench_grouped(count)),
        "delivery count missing"
    );
    // The fixture loses 4 messages, so the lost threshold fails.
    let verdict = &html[html.find("id=\"verdict\"").expect("verdict")
        ..html.find("id=\"summary\"").expect("summary")];
    assert!(verdict.contains("class=\"verdict fail\""));
    assert!(
        verdict.contains("FAIL: 1 of 3 thresholds failed")
            || verdict.contains("FAIL: 2 of 3 thresholds failed")
    );
    assert!(verdict.contains("delivery.lost"));
    assert!(!verdict.contains("Interrupted."));
    assert!(!verdict.contains("Generator saturated."));
    assert!(
        html.contains("&quot;distribution&quot;: &quot;zipf&quot;"),
        "scenario JSON shown"
    );
    assert!(html.contains("Test Fixture CPU"), "environment shown");
}

fn bench_grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn interrupted_and_saturated_runs_are_flagged_and_names_escaped() {
    let html = render_report(&report_common::troubled_run()).expect("render");
    assert!(html.contains("class=\"verdict invalid\""));
    assert!(html.contains("Interrupted.") && html.contains("Ctrl-C"));
    assert!(html.contains("Generator saturated.") && html.contains("schedule lag p99 120 ms"));
    assert!(html.contains("troubled &lt;run&gt; &amp; co"));
    assert!(!html.contains("<run>"));
    assert_self_contained(&html);
}

/// A run broken by a validity rule (not interrupted, not saturated) is
/// flagged invalid with its reason in one line.
#[test]
fn runs_broken_by_a_validity_rule_say_why() {
    let mut run = report_common::fixture_run("rules", 1, 1.0);
    run.validity.reasons = vec!["1 panic(s) in client tasks: boom".into()];
    run.seal_validity();
    let html = render_report(&run).expect("render");
    assert!(html.contains("class=\"verdict invalid\""));
    assert!(html.contains("Invalid run.") && html.contains("1 panic(s) in client tasks: boom"));
}

#[test]
fn empty_results_render_no_data_panels_without_panicking() {
    let empty = RunResults::default();
    let html = render_report(&empty).expect("render");
    assert_self_contained(&html);
    let ids = chart_ids(&html);
    assert!(ids.len() >= 8, "{ids:?}");
    for id in &ids {
        let fig = figure(&html, id).expect("figure");
        assert!(fig.contains("data-has-data=\"false\""), "{id} claims data");
        assert!(
            fig.contains("no data recorded"),
            "{id} lacks a no-data panel"
        );
    }
    assert!(html.contains("No latency was recorded"));
    // A comparison with an empty run renders too, with the other run's data.
    let runs = vec![
        LabeledRun {
            label: "empty".into(),
            results: RunResults::default(),
        },
        LabeledRun {
            label: "full".into(),
            results: report_common::fixture_run("quickstart", 1, 1.0),
        },
    ];
    let cmp = render_comparison(&runs).expect("comparison with an empty run");
    assert!(figure(&cmp, "throughput")
        .expect("throughput")
        .contains("data-has-data=\"true\""));
    assert!(html.contains("not recorded in these results"));

    // Partial data: a timeseries with no latency samples and no server samples.
    let mut partial = report_common::fixture_run("partial", 3, 1.0);
    partial.metrics.clear();
    for s in &mut partial.timeseries {
        s.delivery_latency = Default::default();
        s.ack_latency = Default::default();
        s.server_rss_bytes = None;
        s.server_cpu_percent = None;
    }
    partial.server = Default::default();
    let html = render_report(&partial).expect("render");
    for id in [
        "latency-delivery",
        "latency-ack",
        "server-resources",
        "memory-per-connection",
    ] {
        assert!(
            figure(&html, id)
                .expect(id)
                .contains("data-has-data=\"false\""),
            "{id}"
        );
    }
    for id in ["throughput", "clients", "errors"] {
        assert!(
            figure(&html, id)
                .expect(id)
                .contains("data-has-data=\"true\""),
            "{id}"
        );
    }
}

#[test]
fn comparison_overlays_runs_and_tabulates_deltas() {
    let runs = vec![
        LabeledRun {
            label: "before".into(),
            results: report_common::fixture_run("quickstart", 1, 1.0),
        },
        LabeledRun {
            label: "after".into(),
            results: report_common::fixture_run("quickstart", 2, 2.0),
        },
    ];
    let html = render_comparison(&runs).expect("render");
    assert_self_contained(&html);
    let ids = chart_ids(&html);
    for id in SINGLE_RUN_CHARTS {
        assert!(ids.iter().any(|i| i == id), "comparison lacks chart {id}");
        let fig = figure(&html, id).expect(id);
        assert!(fig.contains("data-has-data=\"true\""), "{id}");
        // Both runs appear in every legend, with a line each.
        assert!(
            has_text(fig, "before · *") && has_text(fig, "after · *"),
            "{id} is not overlaid"
        );
        assert!(data_marks(fig, 3) >= 2, "{id} lacks one data path per run");
    }
    let deltas = &html
        [html.find("id=\"deltas\"").expect("deltas")..html.find("id=\"charts\"").expect("charts")];
    assert!(deltas.contains("<td class=\"text\">delivery_latency.p99</td>"));
    // The second run is twice as fast: its p99 delta is an improvement.
    let row = deltas
        .split("<tr>")
        .find(|r| r.contains("<td class=\"text\">delivery_latency.p50</td>"))
        .expect("p50 row");
    assert!(row.contains("class=\"better\""), "{row}");
    assert!(deltas.contains("before (baseline)"));
    assert!(
        render_comparison(&runs[..1]).is_err(),
        "one run is not a comparison"
    );
}

#[test]
fn exporter_writes_report_html() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut manager = ExportManager::new();
    manager.add(Box::new(HtmlExporter));
    let report = manager.export_all(
        &report_common::fixture_run("quickstart", 1, 1.0),
        dir.path(),
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let path = dir.path().join("report.html");
    assert_eq!(report.written, vec![("html", path.clone())]);
    let html = std::fs::read_to_string(path).expect("read");
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn bench_report_command_single_comparison_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |sub: &str, r: &RunResults| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).expect("mkdir");
        let p = d.join("results.json");
        std::fs::write(&p, serde_json::to_string(r).expect("json")).expect("write");
        p
    };
    let a = write("run-a", &report_common::fixture_run("quickstart", 1, 1.0));
    let b = write("run-b", &report_common::fixture_run("quickstart", 2, 1.5));
    let bench = env!("CARGO_BIN_EXE_bench");

    let st = Command::new(bench)
        .arg("report")
        .arg(&a)
        .output()
        .expect("spawn");
    assert!(st.status.success(), "{st:?}");
    assert!(String::from_utf8_lossy(&st.stdout).contains("report.html"));
    let html = std::fs::read_to_string(dir.path().join("run-a/report.html"))
        .expect("report next to input");
    assert_eq!(chart_ids(&html), SINGLE_RUN_CHARTS);

    let out = dir.path().join("cmp/out.html");
    let st = Command::new(bench)
        .arg("report")
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("spawn");
    assert!(st.status.success(), "{st:?}");
    let html = std::fs::read_to_string(&out).expect("comparison written");
    assert!(
        has_text(&html, "run-a · *") && has_text(&html, "run-b · *"),
        "labels from run directories"
    );

    let missing = Command::new(bench)
        .arg("report")
        .arg(dir.path().join("nope.json"))
        .output()
        .expect("spawn");
    assert_eq!(
        missing.status.code(),
        Some(2),
        "missing input is a usage error"
    );
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").expect("write");
    let bad = Command::new(bench)
        .arg("report")
        .arg(&garbage)
        .output()
        .expect("spawn");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a bench results.json"));
}

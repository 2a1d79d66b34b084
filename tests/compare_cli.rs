//! `bench compare` and `bench baseline save` through the real binary, on
//! results files built in code: every exit code, the JUnit file (parsed
//! back as XML), the Markdown file and `$GITHUB_STEP_SUMMARY`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bench::results::{LatencySummary, RunResults, ThresholdResult, SCHEMA_VERSION};

/// A plausible single run: latencies in ms, memory in bytes per connection.
fn run(name: &str, p99: f64, mem: f64, deliveries_per_s: f64) -> RunResults {
    let mut r = RunResults {
        schema_version: SCHEMA_VERSION,
        name: name.into(),
        started_at: "2026-11-24T05:00:00Z".into(),
        duration_s: 10.0,
        ..Default::default()
    };
    for (metric, scale) in [
        ("delivery_latency", 1.0),
        ("ack_latency", 0.5),
        ("connect_time", 0.2),
    ] {
        r.metrics.insert(
            metric.into(),
            LatencySummary {
                count: 1000,
                min: 0.1,
                mean: p99 * scale / 3.0,
                p50: p99 * scale / 4.0,
                p90: p99 * scale / 2.0,
                p99: p99 * scale,
                p999: p99 * scale * 1.5,
                max: p99 * scale * 2.0,
                ..Default::default()
            },
        );
    }
    r.server.memory_per_connection_bytes = Some(mem);
    r.throughput.deliveries_per_s = deliveries_per_s;
    r.counters.connections_opened = 50;
    r.counters.frames_sent = 5000;
    r.counters.deliveries_expected = 50_000;
    r.counters.deliveries_received = 50_000;
    r
}

/// The baseline shape most tests compare against: p99 20 ms, 8 KiB per
/// connection, 10,000 deliveries/s.
fn typical(name: &str) -> RunResults {
    run(name, 20.0, 8192.0, 10_000.0)
}

/// A threshold verdict as `bench run` records it.
fn threshold(metric: &str, condition: &str, value: f64, pass: bool) -> ThresholdResult {
    ThresholdResult {
        metric: metric.into(),
        condition: condition.into(),
        value: Some(value),
        pass,
    }
}

/// A run with `repeats` filled from the given per-repeat p99 values.
fn repeated(name: &str, p99s: &[f64]) -> RunResults {
    let runs: Vec<RunResults> = p99s
        .iter()
        .map(|&p| run(name, p, 8192.0, 10_000.0))
        .collect();
    bench::compare::combine_repeats(runs).expect("non-empty")
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn write(&self, name: &str, r: &RunResults) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_string_pretty(r).unwrap()).unwrap();
        path
    }
}

/// A results file as `bench` wrote it.
fn read_results(path: &Path) -> RunResults {
    let json = std::fs::read_to_string(path).expect("results file written");
    serde_json::from_str(&json).expect("results file parses")
}

/// `bench compare BASELINE CURRENT EXTRA...`.
fn compare(dir: &Dir, baseline: &Path, current: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "compare",
        baseline.to_str().expect("utf-8 path"),
        current.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    bench(dir, &args)
}

fn bench(dir: &Dir, args: &[&str]) -> Output {
    bench_env(dir, args, None)
}

fn bench_env(dir: &Dir, args: &[&str], step_summary: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.args(args).current_dir(dir.0.path());
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    if let Some(p) = step_summary {
        cmd.env("GITHUB_STEP_SUMMARY", p);
    }
    cmd.output().expect("run bench")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_code(out: &Output, expected: i32) {
    assert_eq!(code(out), expected, "output:\n{}", text(out));
}

/// Asserts that bench's output (stdout and stderr) mentions `wanted`.
fn assert_says(out: &Output, wanted: &str) {
    let t = text(out);
    assert!(t.contains(wanted), "expected `{wanted}` in:\n{t}");
}

/// The Markdown table row of one metric.
fn markdown_row<'a>(table: &'a str, metric: &str) -> &'a str {
    let start = format!("| `{metric}`");
    table
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row for {metric} in:\n{table}"))
}

/// testcase name → (failure message, skipped) from a JUnit file.
fn junit_cases(path: &Path) -> BTreeMap<String, (Option<String>, bool)> {
    let xml = std::fs::read_to_string(path).expect("junit written");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    assert_eq!(doc.root_element().tag_name().name(), "testsuites");
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let name = case.attribute("name").expect("testcase name").to_string();
            let failure = case
                .children()
                .find(|c| c.has_tag_name("failure"))
                .map(|f| f.attribute("message").unwrap_or_default().to_string());
            let skipped = case.children().any(|c| c.has_tag_name("skipped"));
            (name, (failure, skipped))
        })
        .collect()
}

#[test]
fn identical_runs_pass() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    let cur = d.write("cur.json", &typical("chat"));
    let out = compare(&d, &base, &cur, &[]);
    assert_code(&out, 0);
    let t = text(&out);
    assert!(t.contains("delivery_latency.p99"), "{t}");
    assert!(t.contains("within noise"), "{t}");
    assert!(t.contains("PASS"), "{t}");
}

#[test]
fn latency_regression_exits_4_with_junit_markdown_and_step_summary() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    let mut current = run("chat", 45.0, 8192.0, 10_000.0);
    current.thresholds = vec![
        threshold("delivery_latency.p99", "< 100ms", 45.0, true),
        threshold("delivery.lost", "== 0", 0.0, true),
    ];
    let cur = d.write("cur.json", &current);
    let junit = d.path("out/junit.xml");
    let md = d.path("out/compare.md");
    let summary = d.path("step_summary.md");
    std::fs::write(&summary, "previous step\n").unwrap();
    let out = bench_env(
        &d,
        &[
            "compare",
            base.to_str().unwrap(),
            cur.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
        Some(&summary),
    );
    assert_code(&out, 4);
    assert_says(&out, "REGRESSION");

    let cases = junit_cases(&junit);
    // One testcase per gated metric, per threshold, plus validity.
    for name in [
        "delivery_latency.p50",
        "delivery_latency.p99",
        "ack_latency.p99",
        "memory_per_connection",
        "throughput.deliveries_per_s",
        "delivery_latency.p99 < 100ms",
        "delivery.lost == 0",
        "run is valid",
    ] {
        assert!(cases.contains_key(name), "no testcase {name}: {cases:?}");
    }
    let (failure, _) = &cases["delivery_latency.p99"];
    let message = failure.as_deref().expect("p99 testcase fails");
    assert!(message.contains("regressed"), "{message}");
    assert!(message.contains("20.00 ms"), "baseline value in {message}");
    assert!(message.contains("45.00 ms"), "current value in {message}");
    assert!(message.contains("+125.0 %"), "delta in {message}");
    assert_eq!(cases["memory_per_connection"].0, None);
    assert_eq!(cases["delivery_latency.p99 < 100ms"].0, None);
    assert_eq!(cases["run is valid"].0, None);

    let table = std::fs::read_to_string(&md).unwrap();
    let p99_row = markdown_row(&table, "delivery_latency.p99");
    assert!(
        p99_row.contains("20.00 ms") && p99_row.contains("45.00 ms"),
        "{p99_row}"
    );
    assert!(p99_row.contains("regressed"), "{p99_row}");
    assert!(table.contains("metric(s) regressed"), "{table}");

    let appended = std::fs::read_to_string(&summary).unwrap();
    assert!(appended.starts_with("previous step\n"), "{appended}");
    assert!(appended.contains(table.trim_end()), "{appended}");
}

#[test]
fn improvements_and_memory_and_throughput_regressions() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    let better = d.write("better.json", &run("chat", 10.0, 8192.0, 10_000.0));
    let out = compare(&d, &base, &better, &[]);
    assert_code(&out, 0);
    assert_says(&out, "improved");

    let fat = d.write("fat.json", &run("chat", 20.0, 8192.0 * 1.5, 10_000.0));
    let junit = d.path("junit.xml");
    let out = compare(&d, &base, &fat, &["--junit", junit.to_str().unwrap()]);
    assert_code(&out, 4);
    let cases = junit_cases(&junit);
    let message = cases["memory_per_connection"]
        .0
        .clone()
        .expect("memory fails");
    assert!(
        message.contains("8.00 KiB") && message.contains("12.00 KiB"),
        "{message}"
    );
    assert_eq!(cases["delivery_latency.p99"].0, None);

    let slow = d.write("slow.json", &run("chat", 20.0, 8192.0, 7_000.0));
    let out = compare(&d, &base, &slow, &[]);
    assert_code(&out, 4);
    assert_says(&out, "throughput.deliveries_per_s");
}

#[test]
fn max_regression_overrides_and_only() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    // +15 %: inside the default single-run tolerance (25 %).
    let cur = d.write("cur.json", &run("chat", 23.0, 8192.0, 10_000.0));
    let (b, c) = (base.to_str().unwrap(), cur.to_str().unwrap());
    assert_code(&bench(&d, &["compare", b, c]), 0);
    let tight = bench(
        &d,
        &[
            "compare",
            b,
            c,
            "--max-regression",
            "delivery_latency.p99=10%",
        ],
    );
    assert_code(&tight, 4);
    // --only: gate just what was named; the +15 % latency is not gated at all.
    let only = bench(
        &d,
        &[
            "compare",
            b,
            c,
            "--only",
            "--max-regression",
            "memory_per_connection=5%",
        ],
    );
    assert_code(&only, 0);
    let t = text(&only);
    assert!(t.contains("memory_per_connection"), "{t}");
    assert!(!t.contains("delivery_latency.p99"), "{t}");
}

#[test]
fn repeats_use_statistics() {
    let d = Dir::new();
    let base = d.write(
        "base.json",
        &repeated("chat", &[20.0, 24.0, 18.0, 22.0, 21.0]),
    );
    // Same distribution, shuffled and jittered: within noise.
    let same = d.write(
        "same.json",
        &repeated("chat", &[23.0, 19.0, 21.5, 18.5, 22.0]),
    );
    let out = compare(&d, &base, &same, &[]);
    assert_code(&out, 0);
    assert_says(&out, "5 vs 5 repeats");
    // A clear shift: every repeat far above every baseline repeat.
    let worse = d.write(
        "worse.json",
        &repeated("chat", &[40.0, 42.0, 39.0, 41.0, 43.0]),
    );
    let md = d.path("cmp.md");
    let out = compare(&d, &base, &worse, &["--markdown", md.to_str().unwrap()]);
    assert_code(&out, 4);
    let table = std::fs::read_to_string(&md).unwrap();
    let row = markdown_row(&table, "delivery_latency.p99");
    assert!(
        row.contains("regressed") && row.contains("5 vs 5 repeats, p=0.004"),
        "{row}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    let good = d.write("good.json", &typical("chat"));
    let g = good.to_str().unwrap();

    let missing = bench(&d, &["compare", "nope.json", g]);
    assert_code(&missing, 2);
    assert_says(&missing, "nope.json");

    for spec in ["delivery_latency.p99=10", "delivery_latency.p99", "x=abc%"] {
        let out = bench(&d, &["compare", g, g, "--max-regression", spec]);
        assert_code(&out, 2);
        assert_says(&out, "--max-regression");
    }

    let typo = bench(
        &d,
        &[
            "compare",
            g,
            g,
            "--max-regression",
            "delivery_latency.p98=10%",
        ],
    );
    assert_code(&typo, 2);
    assert_says(&typo, "did you mean `delivery_latency.p99`");

    // A known metric this run did not measure is not a usage error.
    let mut no_memory = typical("chat");
    no_memory.server.memory_per_connection_bytes = None;
    let nm = d.write("no-memory.json", &no_memory);
    let nm = nm.to_str().unwrap();
    let out = bench(
        &d,
        &[
            "compare",
            nm,
            nm,
            "--max-regression",
            "memory_per_connection=5%",
        ],
    );
    assert_code(&out, 0);
    assert_says(&out, "memory_per_connection was not measured in either run");

    let mut future = serde_json::to_value(typical("chat")).unwrap();
    future["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
    std::fs::write(d.path("future.json"), future.to_string()).unwrap();
    let out = bench(&d, &["compare", "future.json", g]);
    assert_code(&out, 2);
    assert_says(&out, "schema version");

    std::fs::write(d.path("junk.json"), "not json").unwrap();
    assert_code(&bench(&d, &["compare", g, "junk.json"]), 2);

    // A baseline that cannot be trusted is a configuration problem.
    let mut bad = typical("chat");
    bad.interrupted = true;
    let bad = d.write("bad-base.json", &bad);
    assert_code(&bench(&d, &["compare", bad.to_str().unwrap(), g]), 2);

    // clap's own errors use the same code.
    assert_code(&bench(&d, &["compare", g]), 2);
    assert_code(&bench(&d, &["baseline", "save", "nope.json"]), 2);
}

#[test]
fn invalid_current_run_exits_5_and_failed_thresholds_exit_3() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    let b = base.to_str().unwrap();

    let mut interrupted = typical("chat");
    interrupted.interrupted = true;
    interrupted.interrupt_reason = Some("target down".into());
    let cur = d.write("interrupted.json", &interrupted);
    let junit = d.path("junit.xml");
    let out = bench(
        &d,
        &[
            "compare",
            b,
            cur.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_code(&out, 5);
    assert_says(&out, "target down");
    let cases = junit_cases(&junit);
    let msg = cases["run is valid"].0.clone().expect("validity fails");
    assert!(msg.contains("interrupted: target down"), "{msg}");

    let mut saturated = run("chat", 60.0, 8192.0, 10_000.0);
    saturated.generator.saturated = true;
    saturated.generator.saturation_reasons = vec!["schedule lag p99 1.2s".into()];
    let cur = d.write("saturated.json", &saturated);
    // Invalid outranks the regression it also shows.
    assert_code(&bench(&d, &["compare", b, cur.to_str().unwrap()]), 5);

    let mut failing = typical("chat");
    failing
        .thresholds
        .push(threshold("delivery_latency.p99", "< 10ms", 20.0, false));
    let cur = d.write("failing.json", &failing);
    let out = bench(
        &d,
        &[
            "compare",
            b,
            cur.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_code(&out, 3);
    let cases = junit_cases(&junit);
    let msg = cases["delivery_latency.p99 < 10ms"]
        .0
        .clone()
        .expect("threshold fails");
    assert!(msg.contains("measured 20.00 ms"), "{msg}");
}

#[test]
fn unwritable_output_is_a_failure_exit_1() {
    let d = Dir::new();
    let base = d.write("base.json", &typical("chat"));
    std::fs::create_dir(d.path("a-directory")).unwrap();
    let b = base.to_str().unwrap();
    let out = bench(
        &d,
        &[
            "compare",
            b,
            b,
            "--junit",
            d.path("a-directory").to_str().unwrap(),
        ],
    );
    assert_code(&out, 1);
}

#[test]
fn update_replaces_the_baseline_only_when_passing() {
    let d = Dir::new();
    let baseline = d.path("baselines/chat.json");
    let first = d.write("first.json", &typical("first"));
    let bl = baseline.to_str().unwrap();

    // No baseline yet: --update creates it.
    let out = bench(&d, &["compare", bl, first.to_str().unwrap(), "--update"]);
    assert_code(&out, 0);
    let saved: RunResults = read_results(&baseline);
    assert_eq!(saved.name, "first");

    // A passing run replaces it.
    let second = d.write("second.json", &run("second", 19.0, 8192.0, 10_000.0));
    assert_code(
        &bench(&d, &["compare", bl, second.to_str().unwrap(), "--update"]),
        0,
    );
    let saved: RunResults = read_results(&baseline);
    assert_eq!(saved.name, "second");

    // A regressed run does not.
    let third = d.write("third.json", &run("third", 60.0, 8192.0, 10_000.0));
    let out = bench(&d, &["compare", bl, third.to_str().unwrap(), "--update"]);
    assert_code(&out, 4);
    assert_says(&out, "baseline not updated");
    let saved: RunResults = read_results(&baseline);
    assert_eq!(saved.name, "second");

    // No baseline yet and a current run that --update would not accept:
    // nothing is created.
    let missing = d.path("baselines/none.json");
    let mut bad = typical("bad");
    bad.generator.saturated = true;
    let bad = d.write("bad.json", &bad);
    let out = compare(&d, &missing, &bad, &["--update"]);
    assert_code(&out, 5);
    let mut failing = typical("failing");
    failing
        .thresholds
        .push(threshold("delivery.lost", "== 0", 3.0, false));
    let failing = d.write("failing.json", &failing);
    let out = compare(&d, &missing, &failing, &["--update"]);
    assert_code(&out, 3);
    assert!(!missing.exists());
}

#[test]
fn baseline_save() {
    let d = Dir::new();
    let results = d.write("results.json", &typical("chat quickstart"));
    let r = results.to_str().unwrap();

    let out = bench(&d, &["baseline", "save", r]);
    assert_code(&out, 0);
    let default = d.path("reports/baselines/chat_quickstart.json");
    let saved: RunResults = read_results(&default);
    assert_eq!(saved.name, "chat quickstart");
    assert_says(&out, "single run");

    let to = d.path("elsewhere/base.json");
    let rep = d.write("rep.json", &repeated("chat", &[20.0, 21.0, 22.0]));
    let out = bench(
        &d,
        &[
            "baseline",
            "save",
            rep.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_code(&out, 0);
    assert_says(&out, "3 repeats");
    let saved: RunResults = read_results(&to);
    assert_eq!(saved.repeats.len(), 3);

    // Several single runs of one scenario become one baseline with repeats.
    let singles: Vec<PathBuf> = [20.0, 22.0, 21.0]
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            d.write(
                &format!("single-{i}.json"),
                &run("chat", p, 8192.0, 10_000.0),
            )
        })
        .collect();
    let combined = d.path("combined.json");
    let mut args = vec!["baseline", "save"];
    args.extend(singles.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--to", combined.to_str().unwrap()]);
    let out = bench(&d, &args);
    assert_code(&out, 0);
    assert_says(&out, "3 repeats");
    let saved: RunResults = read_results(&combined);
    let p99s: Vec<f64> = saved
        .repeats
        .iter()
        .map(|m| m["delivery_latency.p99"])
        .collect();
    assert_eq!(p99s, vec![20.0, 22.0, 21.0]);
    assert_eq!(
        saved.metrics["delivery_latency"].p99, 21.0,
        "the median repeat's summary"
    );
    // Runs of different scenarios, or already-combined files, do not mix.
    let other = d.write("other.json", &typical("other"));
    let s0 = singles[0].to_str().unwrap();
    assert_code(
        &bench(&d, &["baseline", "save", s0, other.to_str().unwrap()]),
        2,
    );
    assert_code(
        &bench(&d, &["baseline", "save", s0, combined.to_str().unwrap()]),
        2,
    );

    let mut sat = typical("sat");
    sat.generator.saturated = true;
    let sat = d.write("sat.json", &sat);
    let dest = d.path("sat-base.json");
    let s = sat.to_str().unwrap();
    let out = bench(&d, &["baseline", "save", s, "--to", dest.to_str().unwrap()]);
    assert_code(&out, 5);
    assert!(!dest.exists());
    let out = bench(
        &d,
        &[
            "baseline",
            "save",
            s,
            "--to",
            dest.to_str().unwrap(),
            "--allow-invalid",
        ],
    );
    assert_code(&out, 0);
    assert!(dest.exists());
}

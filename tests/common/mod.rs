//! Shared helpers for the `run_*` end-to-end tests: scenarios written as
//! TOML, validated by the real loader, run against the real bundled server
//! (`bench serve`, spawned from the built `bench` binary).

#![allow(dead_code)]

use std::path::Path;

use bench::engine::EngineOptions;
use bench::results::RunResults;
use bench::run::{run_plan, RunReport};
use bench::scenario::{self, Plan, PlanOverrides};

/// The `bench` binary Cargo built for these tests.
pub const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// Validates scenario text, writing results under `out`.
pub fn plan(toml: &str, out: &Path) -> Plan {
    let overrides = PlanOverrides {
        out_dir: Some(out.to_path_buf()),
        ..PlanOverrides::default()
    };
    scenario::parse(toml, "test.toml", None, &overrides)
        .unwrap_or_else(|e| panic!("scenario does not validate: {e:#}\n{toml}"))
}

/// Runs a plan in-process against the bundled server.
pub fn run(plan: &Plan) -> RunReport {
    // In-process runs live inside the test harness: point the bundled
    // server at the real bench binary.
    std::env::set_var(bench::engine::target::BENCH_EXE_ENV, BENCH);
    run_plan(plan, &EngineOptions { quiet: true }).expect("run failed")
}

/// Plans `toml` with results under `out`, runs it in-process, and checks
/// what every run that is meant to complete must satisfy: not interrupted,
/// and the loss-accounting identities hold. Returns the results.
pub fn run_completed(toml: &str, out: &Path) -> RunResults {
    let r = run(&plan(toml, out)).results;
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    assert_accounting(&r);
    r
}

/// Reads back the written results.json.
pub fn read_results(dir: &Path) -> RunResults {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).expect("results.json parses")
}

/// The share of a latency metric's recorded values above `ms`, from the
/// exact histogram stored in results.json.
pub fn share_above(r: &RunResults, metric: &str, ms: f64) -> f64 {
    use base64::Engine as _;
    use hdrhistogram::serialization::Deserializer;
    let m = r
        .metrics
        .get(metric)
        .unwrap_or_else(|| panic!("{metric} not measured"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(m.hdr.as_ref().expect("hdr stored"))
        .expect("base64");
    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .expect("hdr deserializes");
    let above: u64 = h
        .iter_recorded()
        .filter(|v| v.value_iterated_to() as f64 > ms * 1000.0)
        .map(|v| v.count_at_value())
        .sum();
    above as f64 / h.len().max(1) as f64
}

/// Loss-accounting identities every run must satisfy.
pub fn assert_accounting(r: &RunResults) {
    let c = &r.counters;
    assert_eq!(
        c.deliveries_expected,
        c.deliveries_received + c.lost,
        "expected = received + lost: {c:?}"
    );
    assert!(c.acks_received <= c.chat_sent, "{c:?}");
    assert!(c.lost_tail <= c.lost, "lost_tail is part of lost: {c:?}");
    let m = &r.metrics["delivery_latency"];
    assert!(m.min <= m.p50 && m.p50 <= m.p99 && m.p99 <= m.max, "{m:?}");
}

/// The written results.json validates against docs/results-schema.json.
pub fn assert_schema_valid(dir: &Path) {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results-schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema"))
            .expect("schema json");
    let instance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results"))
            .expect("results json");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "results.json violates the schema: {errors:#?}"
    );
}

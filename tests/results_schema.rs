//! `results.json` against `docs/results-schema.json`: a fully populated
//! result (every optional field set, every map non-empty, a real resolved
//! plan) written by the JSON exporter must validate; broken ones must not.

use std::collections::BTreeMap;
use std::path::Path;

use bench::export::json::JsonExporter;
use bench::export::Exporter;
use bench::results::*;
use bench::scenario::{self, PlanOverrides};
use serde_json::{json, Value};

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results-schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema itself is valid")
}

fn errors(instance: &Value) -> Vec<String> {
    let v = validator();
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn latency(base: f64) -> LatencySummary {
    LatencySummary {
        count: 1000,
        min: base,
        mean: base * 2.0,
        p50: base * 2.0,
        p90: base * 3.0,
        p99: base * 5.0,
        p999: base * 8.0,
        max: base * 10.0,
        distribution: vec![(50.0, base * 2.0), (99.0, base * 5.0), (100.0, base * 10.0)],
        hdr: Some("HISTFAAAAB54nJNpmSzMwMDAzQABMJqRCUSL".into()),
    }
}

/// Every field of the model set, including all the optional ones.
fn full() -> RunResults {
    let scenario_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reconnect-churn.toml");
    let overrides = PlanOverrides {
        thresholds: vec!["delivery_latency.p99<50ms".into()],
        ..Default::default()
    };
    let mut plan = scenario::load(&scenario_path, &overrides).unwrap();
    // The optional `[target.socketio]` too (its `auth` is never written).
    plan.target.socketio = Some(bench::dialect::socketio::SocketIoOptions {
        auth: Some(serde_json::json!({ "token": "t" })),
        ..Default::default()
    });
    plan.target.deflate = Some(bench::scenario::DeflatePlan {
        client_no_context_takeover: true,
        server_no_context_takeover: false,
        client_max_window_bits: Some(12),
        server_max_window_bits: Some(10),
    });
    plan.target.tls = Some(bench::scenario::TlsPlan {
        ca_file: Some("ca.pem".into()),
        ca_certs: Vec::new(),
        insecure: false,
        server_name: Some("chat.example".into()),
        alpn: vec!["http/1.1".into()],
        resume: true,
        self_signed: false,
    });
    let mut metrics = BTreeMap::new();
    for (i, name) in [
        "connect_time",
        "tcp_connect_time",
        "tls_handshake_time",
        "upgrade_time",
        "ack_latency",
        "ack_latency_service",
        "delivery_latency",
        "delivery_latency_service",
        "ping_rtt",
        "reconnect_time",
        "schedule_lag",
    ]
    .iter()
    .enumerate()
    {
        metrics.insert(name.to_string(), latency(0.1 * (i + 1) as f64));
    }
    let pcts = Pcts {
        count: 10,
        p50: 1.0,
        p90: 2.0,
        p99: 3.0,
        max: 4.0,
    };
    let snapshot = |t: f64| Snapshot {
        t,
        stage: 0,
        clients_connected: 100,
        clients_target: 120.5,
        chat_sent: 10,
        deliveries: 400,
        bytes_sent: 1000,
        bytes_received: 40_000,
        errors: 1,
        closes: 2,
        closes_by_code: BTreeMap::from([("1000".to_owned(), 2)]),
        lost: 0,
        connects_failed: 1,
        delivery_latency: pcts,
        ack_latency: pcts,
        server_rss_bytes: Some(50_000_000),
        server_cpu_percent: Some(35.5),
        generator_cpu_percent: 20.0,
        machine_cpu_percent: 60.0,
        softirq_percent: 5.0,
    };
    let mut repeat = BTreeMap::new();
    repeat.insert("delivery_latency.p99".to_string(), 12.5);
    RunResults {
        schema_version: SCHEMA_VERSION,
        name: plan.name.clone(),
        started_at: "2026-11-24T05:00:00Z".into(),
        duration_s: 60.25,
        interrupted: true,
        interrupt_reason: Some("Ctrl-C".into()),
        metrics,
        counters: counters(),
        throughput: Throughput {
            chat_sent_per_s: 400.0,
            deliveries_per_s: 63_000.0,
            deliveries_per_s_peak: 70_000.0,
            bytes_received_per_s: 6.6e6,
        },
        server: ServerStats {
            pids: vec![4242],
            rss_peak_bytes: Some(80_000_000),
            memory_per_connection_bytes: Some(3100.5),
            memory_fit: Some(LinearFit {
                slope: 3100.5,
                intercept: 1.2e7,
                r2: 0.998,
                points: 60,
            }),
            cpu_percent_mean: Some(45.0),
            cpu_percent_peak: Some(90.0),
            processes: vec![
                ProcessStats {
                    pid: 4242,
                    role: "supervisor".into(),
                    index: None,
                    rss_peak_bytes: 9_000_000,
                    rss_last_bytes: 8_000_000,
                    cpu_percent_mean: Some(0.5),
                    cpu_percent_peak: 1.0,
                    samples: 60,
                },
                ProcessStats {
                    pid: 4243,
                    role: "process".into(),
                    index: Some(0),
                    rss_peak_bytes: 40_000_000,
                    rss_last_bytes: 39_000_000,
                    cpu_percent_mean: None,
                    cpu_percent_peak: 0.0,
                    samples: 1,
                },
            ],
        },
        generator: GeneratorStats {
            cpu_percent_mean: 30.0,
            cpu_percent_peak: 70.0,
            rss_peak_bytes: 60_000_000,
            memory_per_client_bytes: Some(3500.0),
            saturated: true,
            saturation_reasons: vec!["schedule lag p99 above 10ms".into()],
            recording_cpu_share: Some(0.03),
            pacing: Some(PacingStats {
                requested: "timerfd".into(),
                mode: "timerfd".into(),
                resolution_us: 1.0,
                spin_budget_us_per_s: 0.0,
                timer_expiries_per_s: 140.0,
                timer_arms_per_s: 141.0,
                timer_wakes_per_s: 260.0,
                timer_inline_wakes_per_s: 20.0,
            }),
        },
        machine: MachineStats {
            cpu_percent_mean: 75.0,
            softirq_percent_mean: 8.0,
            cores: 2,
        },
        thresholds: vec![
            ThresholdResult {
                metric: "delivery_latency.p99".into(),
                condition: "<50ms".into(),
                value: Some(0.5),
                pass: true,
            },
            ThresholdResult {
                metric: "reconnect_time.p99".into(),
                condition: "< 1s".into(),
                value: None,
                pass: false,
            },
        ],
        stages: vec![
            StageWindow {
                index: 0,
                start_s: 0.0,
                end_s: 10.0,
                target: 2000,
            },
            StageWindow {
                index: 1,
                start_s: 10.0,
                end_s: 60.0,
                target: 2000,
            },
        ],
        timeseries: vec![snapshot(1.0), snapshot(2.0)],
        compression: Some(Compression {
            connections: 2000,
            ratio_sent: Some(1.8),
            ratio_received: None,
        }),
        tls: Some(bench::results::tls::TlsStats::from_counters(
            &counters(),
            false,
            true,
        )),
        repeats: vec![repeat.clone(), repeat],
        scenario: serde_json::to_value(&plan).unwrap(),
        environment: Environment::collect(),
        validity: Validity {
            valid: false,
            reasons: vec!["1 panic(s) in client tasks: boom".into()],
            panics: 1,
            panic_messages: vec!["boom".into()],
        },
        readiness: Readiness {
            planned: 2000,
            connected: 1999,
            ready: 1998,
            failed: [("refused".to_string(), 1), ("panic".to_string(), 1)].into(),
            never_ready_share: 0.001,
            stages: vec![StageReadiness {
                index: 0,
                planned: 2000,
                connected: 1999,
                ready: 1998,
                failed: [("refused".to_string(), 1), ("panic".to_string(), 1)].into(),
            }],
        },
        shards: vec![bench::results::ShardInfo {
            index: 0,
            count: 2,
            status: "ok".into(),
            detail: None,
            started_at_ms: 1_790_000_000_000,
            late_ms: 3,
            clock_offset_ms: Some(0.25),
            clock_rtt_ms: Some(0.1),
        }],
    }
}

/// Set field by field, so counters added to the model later still compile
/// here (and, being undeclared in the schema, fail the validation below).
#[allow(clippy::field_reassign_with_default)]
fn counters() -> Counters {
    let mut c = Counters::default();
    c.connections_opened = 2100;
    c.deflate_connections = 2000;
    c.payload_bytes_sent = 8_000_000;
    c.wire_bytes_sent = 5_000_000;
    c.payload_bytes_received = 390_000_000;
    c.wire_bytes_received = 200_000_000;
    c.connections_failed = [("refused".to_string(), 3), ("http_401".to_string(), 1)].into();
    c.closes = [("1000".to_string(), 2000), ("abnormal".to_string(), 5)].into();
    c.reconnects = 6000;
    c.frames_sent = 100_000;
    c.frames_received = 4_000_000;
    c.bytes_sent = 9_000_000;
    c.bytes_received = 400_000_000;
    c.chat_sent = 24_000;
    c.acks_received = 23_990;
    c.deliveries_received = 3_800_000;
    c.deliveries_expected = 3_800_000;
    c.lost = 0;
    c.duplicates = 2;
    c.out_of_order = 1;
    c.errors = [("RATE_LIMITED".to_string(), 4)].into();
    c.late_sends = 7;
    c.chat_skipped_offline = 3;
    c.resume_overlap = 2;
    c.lost_at_restart = 12;
    c.seq_resets = 40;
    c.server_restarts = 1;
    c.tls_connections = 2100;
    c.tls_resumed = 700;
    c.tls_wire_bytes_sent = 9_500_000;
    c.tls_wire_bytes_received = 410_000_000;
    c
}

fn written(results: &RunResults) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = JsonExporter.export(results, dir.path()).unwrap();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_fully_populated_result_validates() {
    let value = written(&full());
    // Every optional field really is present, so the schema saw all of it.
    for key in [
        "interrupt_reason",
        "repeats",
        "validity",
        "readiness",
        "tls",
    ] {
        assert!(value.get(key).is_some(), "{key} missing");
    }
    assert!(value["metrics"]["delivery_latency"].get("hdr").is_some());
    assert!(value["generator"].get("recording_cpu_share").is_some());
    assert_eq!(value["generator"]["pacing"]["mode"], "timerfd");
    assert_eq!(value["scenario"]["target"]["socketio"]["namespace"], "/");
    assert_eq!(errors(&value), Vec::<String>::new());
    // And it reads back into the model.
    let back: RunResults = serde_json::from_value(value).unwrap();
    assert_eq!(back.counters.reconnects, 6000);
}

#[test]
fn a_minimal_result_with_nulls_validates() {
    let plan = scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml"),
        // A running server by URL: the other endpoint shape in `scenario`.
        &PlanOverrides {
            target_url: Some("ws://127.0.0.1:9000/ws".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        name: "quickstart".into(),
        started_at: "2026-11-24T05:00:00Z".into(),
        scenario: serde_json::to_value(&plan).unwrap(),
        environment: Environment::collect(),
        ..Default::default()
    };
    let value = written(&results);
    assert!(value["server"]["rss_peak_bytes"].is_null());
    assert_eq!(value["scenario"]["target"]["endpoint"]["kind"], "url");
    assert_eq!(errors(&value), Vec::<String>::new());
}

#[test]
fn broken_results_are_rejected() {
    let good = written(&full());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        edit(&mut v);
        v
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "missing counter",
            broken(&|v| {
                v["counters"].as_object_mut().unwrap().remove("lost");
            }),
        ),
        ("wrong type", broken(&|v| v["interrupted"] = json!("yes"))),
        (
            "unknown top-level field",
            broken(&|v| v["extra"] = json!(1)),
        ),
        (
            "unknown pacing mode",
            broken(&|v| v["generator"]["pacing"]["mode"] = json!("spin")),
        ),
        (
            "newer schema version",
            broken(&|v| v["schema_version"] = json!(2)),
        ),
        (
            "negative count",
            broken(&|v| v["metrics"]["delivery_latency"]["count"] = json!(-1)),
        ),
        (
            "NaN became null",
            broken(&|v| v["metrics"]["ping_rtt"]["p99"] = Value::Null),
        ),
        (
            "threshold without pass",
            broken(&|v| {
                v["thresholds"][0].as_object_mut().unwrap().remove("pass");
            }),
        ),
        (
            "snapshot missing latency",
            broken(&|v| {
                v["timeseries"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("delivery_latency");
            }),
        ),
        (
            "secret leaked into the plan",
            broken(&|v| {
                v["scenario"]["target"]["auth"] =
                    json!({"mode": "query", "ttl": "1h", "secret": "x"});
            }),
        ),
        (
            "plan duration not human",
            broken(&|v| v["scenario"]["stages"][0]["duration"] = json!({"secs": 10, "nanos": 0})),
        ),
    ];
    for (what, value) in cases {
        assert!(!errors(&value).is_empty(), "schema accepted: {what}");
    }
}

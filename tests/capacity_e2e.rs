//! `bench capacity` end to end, as a child process against the bundled
//! reference server: the search finds an injected connection limit, and
//! Ctrl-C keeps the steps already completed. Loads are small (≤ 150
//! clients) and steps short (1 s warm-up + 2 s measured).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bench::capacity::model::CapacityResults;
use bench::capacity::search::{SearchEnd, StepVerdict};

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// Lurkers (no chat) in a few rooms, against a bundled server that refuses
/// connections beyond `max_connections`. Lurkers keep the generator idle, so
/// a busy machine cannot turn the result into "generator-limited".
fn lurker_scenario(dir: &Path, max_connections: u32) -> std::path::PathBuf {
    let path = dir.join("limit.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "capacity-limit"
seed = 11
[target.server]
args = ["--max-connections", "{max_connections}"]
[[stages]]
duration = "5s"
target = 50
[rooms]
count = 4
[[clients]]
name = "lurker"
chat_rate = 0
[run]
drain = "300ms"
"#
        ),
    )
    .unwrap();
    path
}

fn read_capacity(out: &Path) -> CapacityResults {
    let text = std::fs::read_to_string(out.join("capacity.json")).expect("capacity.json written");
    serde_json::from_str(&text).expect("capacity.json parses")
}

/// Waits for a child with a deadline, killing it if it overruns.
fn wait_bounded(mut child: std::process::Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server caps connections at 120; with an errors SLO the search must
/// find a capacity within 10% of 120 (the search's resolution is 5%).
#[test]
fn finds_an_injected_connection_limit() {
    const LIMIT: u32 = 120;
    let dir = tempfile::tempdir().unwrap();
    let scenario = lurker_scenario(dir.path(), LIMIT);
    let out = dir.path().join("out");
    let child = Command::new(BENCH)
        .arg("capacity")
        .arg(&scenario)
        .args(["--slo", "errors.rate<1%", "--vary", "clients"])
        .args(["--min", "50", "--max", "150", "--growth", "3"])
        .args(["--warmup", "1s", "--measure", "2s", "--resolution", "0.05"])
        .args([
            "--max-steps",
            "8",
            "--budget",
            "2m",
            "--target-users",
            "10000",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(child, Duration::from_secs(90), "bench capacity");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let r = read_capacity(&out);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/results-schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let schema = jsonschema::validator_for(&schema).unwrap();
    let capacity = r.capacity.expect("a capacity was found");
    let tolerance = f64::from(LIMIT) * 0.10;
    assert!(
        (f64::from(capacity) - f64::from(LIMIT)).abs() <= tolerance,
        "capacity {capacity} is not within 10% of the injected limit {LIMIT}\n{stdout}"
    );
    assert_eq!(r.end, Some(SearchEnd::Converged), "{stdout}");
    assert!(!r.interrupted);
    // Every load above the limit failed on connections, every load at or
    // below it passed.
    let mut server_pids = Vec::new();
    for s in &r.steps {
        match &s.verdict {
            StepVerdict::Pass => assert!(s.load <= LIMIT, "{} passed: {stdout}", s.load),
            StepVerdict::Fail { .. } => assert!(s.load > LIMIT, "{} failed: {stdout}", s.load),
            other => panic!("step {} was {other:?}\n{stdout}", s.load),
        }
        let file = s.results_file.as_ref().expect("each step has results.json");
        let step: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap();
        assert!(schema.is_valid(&step), "{file} does not match the schema");
        assert_eq!(step["scenario"]["run"]["measure_after"], "1s");
        server_pids.push(step["server"]["pids"].clone());
    }
    // One server for the whole search: every step sampled the same process.
    assert_eq!(server_pids[0].as_array().map(Vec::len), Some(1));
    assert!(
        server_pids.iter().all(|p| *p == server_pids[0]),
        "{server_pids:?}"
    );
    assert!(r.steps.iter().any(|s| s.connections_failed > 0));
    let limit = r.limit.as_ref().expect("the limit is attributed");
    assert_eq!(limit.limiting_metric.as_deref(), Some("errors.rate"));
    assert_eq!(limit.saturated_first, "connections", "{}", limit.detail);
    let projection = r.projection.as_ref().expect("a projection");
    assert_eq!(
        projection.instances,
        Some(10_000u64.div_ceil(u64::from(capacity)))
    );
    // The page and the terminal summary say the same.
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    for id in ["capacity-latency", "capacity-throughput", "capacity-memory"] {
        assert!(html.contains(&format!("data-chart=\"{id}\"")), "{id}");
    }
    assert!(html.contains(&format!("Capacity: {capacity} clients")));
    assert!(
        stdout.contains(&format!("capacity: {capacity} clients")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("step ")).count(),
        r.steps.len()
    );
}

/// SIGINT during a step: the steps already completed stay in
/// capacity.json, which is marked interrupted, and the exit code is 5.
#[test]
fn an_interrupted_search_keeps_its_completed_steps() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = lurker_scenario(dir.path(), 10_000);
    let out = dir.path().join("out");
    let child = Command::new(BENCH)
        .arg("capacity")
        .arg(&scenario)
        .args(["--slo", "errors.rate<1%"])
        .args(["--min", "10", "--max", "160"])
        .args(["--warmup", "1s", "--measure", "2s", "--budget", "2m"])
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for the first completed step, then interrupt the next.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let done = std::fs::read_to_string(out.join("capacity.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<CapacityResults>(&t).ok())
            .is_some_and(|r| !r.steps.is_empty());
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no step completed within 40 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let output = wait_bounded(child, Duration::from_secs(20), "interrupted bench capacity");
    assert_eq!(
        output.status.code(),
        Some(5),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = read_capacity(&out);
    assert!(r.interrupted);
    assert!(!r.steps.is_empty());
    // Only whole steps are kept, each with its own results.json; the
    // interrupted step is not among them.
    for (i, s) in r.steps.iter().enumerate() {
        assert_eq!(s.index, i);
        assert!(out.join(s.results_file.as_ref().unwrap()).is_file());
    }
    assert!(r.steps.iter().all(|s| s.verdict == StepVerdict::Pass));
    // The one server started for the search was sampled in every step and
    // stopped at the end, not left behind.
    let step: bench::results::RunResults = serde_json::from_str(
        &std::fs::read_to_string(out.join(r.steps[0].results_file.as_ref().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(step.server.pids.len(), 1);
    for s in &r.steps {
        assert!(s.server_rss_peak_bytes.is_some(), "server not sampled");
    }
    let pid = step.server.pids[0] as libc::pid_t;
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the bundled server {pid} is still running");
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    assert!(html.contains("INTERRUPTED"));
}

/// `run.measure_after` (what every capacity step sets): whole-run counters
/// and histograms leave out the warm-up, the timeseries keeps it.
#[test]
fn measure_after_leaves_the_warm_up_out_of_whole_run_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "window"
[[stages]]
duration = "1s"
target = 20
[[stages]]
duration = "3s"
target = 20
[rooms]
count = 2
[[clients]]
chat_rate = 0
[run]
drain = "200ms"
"#;
    let overrides = bench::scenario::PlanOverrides {
        out_dir: Some(dir.path().join("out")),
        ..Default::default()
    };
    let mut plan = bench::scenario::parse(text, "window.toml", None, &overrides).unwrap();
    plan.run.measure_after = Duration::from_secs(2);
    std::env::set_var(bench::engine::target::BENCH_EXE_ENV, BENCH);
    let report =
        bench::run::run_plan(&plan, &bench::engine::EngineOptions { quiet: true }).unwrap();
    let r = report.results;
    assert!(!r.interrupted, "{:?}", r.interrupt_reason);
    // All 20 clients connected (the timeseries covers the whole run) ...
    let peak = r.timeseries.iter().map(|s| s.clients_connected).max();
    assert_eq!(peak, Some(20));
    assert!(r
        .timeseries
        .iter()
        .any(|s| s.t <= 2.0 && s.clients_connected > 0));
    // ... but the ramp that connected them is not in the whole-run figures.
    assert!(
        r.counters.connections_opened < 20,
        "{} connects counted",
        r.counters.connections_opened
    );
    let connects_in_window = r.metrics.get("connect_time").map_or(0, |m| m.count);
    assert_eq!(connects_in_window, r.counters.connections_opened);
    // The resolved plan in results.json records the window.
    assert_eq!(r.scenario["run"]["measure_after"], "2s");
}

/// Runs a one-step search at 40 chatting clients of a scenario written
/// for 20 clients in 2 rooms; returns the results and stdout. One step, so
/// a busy machine that makes it generator-limited cannot cut the search
/// short: rooms and fan-out are recorded whatever the verdict.
fn one_step_chat_search(dir: &Path, extra: &[&str]) -> (CapacityResults, String) {
    let path = dir.join("chat.toml");
    std::fs::write(
        &path,
        r#"
name = "capacity-rooms"
seed = 5
[[stages]]
duration = "5s"
target = 20
[rooms]
count = 2
[[clients]]
chat_rate = "2/s"
[run]
drain = "3s"
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let child = Command::new(BENCH)
        .arg("capacity")
        .arg(&path)
        .args(["--slo", "errors.rate<1%", "--slo", "delivery.lost==0"])
        .args(["--min", "40", "--max", "40"])
        .args(["--warmup", "1s", "--measure", "2s", "--budget", "1m"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(child, Duration::from_secs(60), "bench capacity (rooms)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let r = read_capacity(&out);
    for s in &r.steps {
        // Per-room accounting (drain, loss) follows the derived room count.
        let file = out.join(s.results_file.as_ref().expect("results.json"));
        let step: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(step["scenario"]["rooms"]["count"], s.rooms, "{stdout}");
        assert_eq!(step["counters"]["lost"], 0, "{stdout}");
    }
    (r, stdout)
}

/// Deliveries per chat message in a step: the fan-out the server did.
fn fan_out(s: &bench::capacity::model::StepRecord) -> f64 {
    s.deliveries_per_s / s.chat_sent_per_s
}

/// By default `--vary clients` keeps the scenario's members per room (10
/// here), so at twice the scenario's clients there are twice the rooms and
/// the fan-out per message stays 9; with `--rooms fixed-count` the 2 rooms
/// grow and the fan-out doubles to 19.
#[test]
fn rooms_keep_a_constant_size_unless_asked_for_a_fixed_count() {
    let dir = tempfile::tempdir().unwrap();
    let (r, stdout) = one_step_chat_search(dir.path(), &[]);
    let rooms = r.rooms.as_ref().expect("rooms recorded");
    assert_eq!(rooms.size, Some(10), "{stdout}");
    assert!(stdout.contains("rooms: constant size of 10 members, derived"));
    assert_eq!(
        r.steps
            .iter()
            .map(|s| (s.load, s.rooms))
            .collect::<Vec<_>>(),
        [(40, 4)],
        "{stdout}"
    );
    for s in &r.steps {
        assert!(
            (fan_out(s) - 9.0).abs() < 1.0,
            "fan-out {}: {stdout}",
            fan_out(s)
        );
        // Work is messages in + deliveries out; the server was sampled, so
        // its CPU per unit of work is known.
        assert!((s.work_per_s - s.chat_sent_per_s - s.deliveries_per_s).abs() < 1e-9);
        assert!(s.server_cpu_us_per_work.is_some(), "{stdout}");
    }
    let html = std::fs::read_to_string(dir.path().join("out/capacity.html")).unwrap();
    for id in ["capacity-residuals", "capacity-cpu-per-work"] {
        assert!(html.contains(&format!("data-chart=\"{id}\"")), "{id}");
    }
    assert!(html.contains("rooms: constant size of 10 members"));

    let dir = tempfile::tempdir().unwrap();
    let (r, stdout) = one_step_chat_search(dir.path(), &["--rooms", "fixed-count"]);
    assert_eq!(r.rooms.as_ref().and_then(|x| x.count), Some(2));
    assert_eq!(
        r.steps
            .iter()
            .map(|s| (s.load, s.rooms))
            .collect::<Vec<_>>(),
        [(40, 2)],
        "{stdout}"
    );
    assert!((fan_out(&r.steps[0]) - 19.0).abs() < 2.0, "{stdout}");
}

/// `--nodes` needs a server bench can scale out: against a URL it is a
/// usage error (exit 2) before any step runs.
#[test]
fn nodes_without_a_server_that_scales_out_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url.toml");
    std::fs::write(
        &path,
        "[target]\nurl = \"ws://127.0.0.1:9/ws\"\n[[stages]]\nduration = \"5s\"\ntarget = 20\n[[clients]]\n",
    )
    .unwrap();
    let child = Command::new(BENCH)
        .arg("capacity")
        .arg(&path)
        .args(["--slo", "errors.rate<1%", "--nodes", "1,2"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(child, Duration::from_secs(30), "bench capacity --nodes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--nodes needs a server that can scale out"),
        "{stderr}"
    );
}

/// `--nodes 1,2`: after a one-step search, the scenario runs at one load
/// against 1 and 2 server processes over a fresh redis-server each; every
/// size records the server CPU summed over its processes and Redis's CPU,
/// and with both sizes valid the projection uses the fitted bus overhead.
#[test]
fn nodes_measure_every_cluster_size_over_redis() {
    let dir = tempfile::tempdir().unwrap();
    let (r, stdout) = one_step_chat_search(
        dir.path(),
        &[
            "--nodes",
            "1,2",
            "--nodes-load",
            "20",
            "--target-users",
            "1000",
        ],
    );
    let m = r.scale_out.as_ref().expect("scale_out recorded");
    assert_eq!(m.load, 20, "{stdout}");
    let sizes: Vec<u32> = m.steps.iter().map(|s| s.nodes).collect();
    assert_eq!(sizes, [1, 2], "{stdout}");
    for s in &m.steps {
        assert!(s.work_per_s > 0.0, "{s:?}");
        assert!(s.server_cpu_us_per_work.is_some(), "{s:?}");
        assert!(s.redis_cpu_percent_mean.is_some(), "{s:?}");
        assert_eq!((s.lost, s.duplicates, s.out_of_order), (0, 0, 0), "{s:?}");
        assert!(s.results_file.is_some(), "{s:?}");
    }
    if m.steps.iter().all(|s| s.valid) {
        assert!(m.fit.is_some(), "{m:?}");
        let p = r.projection.as_ref().expect("projection");
        assert!(
            matches!(
                p.scale_out,
                bench::capacity::projection::ScaleOut::Measured { .. }
            ),
            "{p:?}"
        );
    }
    assert!(stdout.contains("node(s): work"), "{stdout}");
}

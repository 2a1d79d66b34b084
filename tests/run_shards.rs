//! Multi-process and multi-machine runs, end to end with the real binary:
//! `bench run --processes N`, `bench run --shard I/N` emulating a
//! Kubernetes Indexed Job (JOB_COMPLETION_INDEX, one shared directory),
//! `bench merge`, and the refusals (exit 2) and invalid runs (exit 5).
//!
//! What the exactness test proves: the merged results.json equals a direct
//! merge of the very intervals the shards recorded (counters identical,
//! histograms identical, so percentiles equal — within one bucket a
//! fortiori), and the counters the scenario fixes (clients, connections,
//! planned clients) equal a one-process run with the same seed. Counters
//! that depend on timing (a send falling just after the stage end, a
//! latency) differ between any two live runs, one process or not, so they
//! are compared through the same-intervals merge, not across runs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use bench::engine::metrics::{Interval, MetricId};
use bench::engine::stream::{self, Record};
use bench::results::RunResults;

const SCENARIO: &str = r#"
name = "shards"
seed = 11
[target]
protocol = "chat"
[[stages]]
duration = "1s"
target = 30
[[stages]]
duration = "2s"
target = 30
[rooms]
count = 3
per_client = 1
[[clients]]
name = "talker"
chat_rate = "2/s"
[run]
drain = "5s"
"#;

/// A `bench serve` on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(common::BENCH)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bench serve starts");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let addr = loop {
            let line = lines.next().expect("server prints its address").unwrap();
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                break a.trim().to_owned();
            }
        };
        Server {
            child,
            url: format!("ws://{addr}/ws"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::BENCH);
    cmd.args(args)
        .env(bench::engine::target::BENCH_EXE_ENV, common::BENCH);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("bench runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read(dir: &Path) -> RunResults {
    common::read_results(dir)
}

fn write_scenario(dir: &Path, text: &str) -> String {
    let p = dir.join("s.toml");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Every record of a shard file.
fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| stream::decode(l).expect("record decodes"))
        .collect()
}

/// Exit 0, or exit 5 for one reason only: the generator saturated (these
/// tests run on a loaded 2-core machine, where sends can start late). Any
/// other invalidity fails the test.
fn assert_ok_or_saturated(o: &Output, r: &RunResults) {
    let saturated_only = !r.validity.reasons.is_empty()
        && r.validity
            .reasons
            .iter()
            .all(|x| x.starts_with("the load generator was saturated"));
    match code(o) {
        0 => assert!(r.validity.valid, "{:?}", r.validity.reasons),
        5 if saturated_only => {
            eprintln!("note: saturated on this machine: {:?}", r.validity.reasons)
        }
        c => panic!("exit {c}: {:?}\n{}", r.validity.reasons, stderr(o)),
    }
}

fn now_ms() -> u64 {
    bench::engine::shard::now_ms()
}

/// Two shards as an Indexed Job would run them (same image, same args,
/// JOB_COMPLETION_INDEX set per pod, one shared volume), then `bench merge`.
#[test]
fn indexed_job_emulation_merges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), SCENARIO);
    let shared = dir.path().join("shared");
    let server = Server::start();
    let start_at = (now_ms() + 1_500).to_string();
    let shared_s = shared.to_string_lossy().into_owned();
    let args = [
        "run",
        &scenario,
        "--shard",
        "auto/2",
        "--start-at",
        &start_at,
        "--url",
        &server.url,
        "--out",
        &shared_s,
        "--quiet",
    ];
    // Injected clock offsets (µs/rtt µs), within the documented bound.
    let pods: Vec<Child> = [("0", "0/100"), ("1", "1500/100")]
        .iter()
        .map(|(index, offset)| {
            Command::new(common::BENCH)
                .args(args)
                .env("JOB_COMPLETION_INDEX", index)
                .env("BENCH_CLOCK_OFFSET_US", offset)
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in pods {
        // 5 only when the loaded test machine saturated the generator (checked below).
        let st = p.wait().unwrap().code();
        assert!(matches!(st, Some(0 | 5)), "a shard failed: {st:?}");
    }
    let files: Vec<_> = (0..2)
        .map(|i| shared.join(format!("shard-{i}-of-2.jsonl")))
        .collect();
    assert!(files.iter().all(|f| f.exists()), "shard files written");

    let merged = dir.path().join("merged");
    let o = bench(
        &["merge", &shared_s, "--out", &merged.to_string_lossy(), "-q"],
        &[],
    );
    let r = read(&merged);
    assert_ok_or_saturated(&o, &r);
    assert_eq!(r.shards.len(), 2);
    assert!(r.shards.iter().all(|s| s.status == "ok"));
    assert_eq!(r.shards[1].clock_offset_ms, Some(1.5));

    // The direct merge of the recorded totals, outside merge's code.
    let mut direct = Interval::new(0);
    direct.parts = 0;
    let mut seconds = 0;
    for f in &files {
        for rec in records(f) {
            match rec {
                Record::End(e) => direct.merge(&e.totals),
                Record::Second(..) => seconds += 1,
                Record::Header(_) => {}
            }
        }
    }
    assert!(seconds >= 6, "each shard streamed its seconds");
    let (m, d) = (&r.counters, &direct.counters);
    assert_eq!(m.chat_sent, d.chat_sent);
    assert_eq!(m.acks_received, d.acks_received);
    assert_eq!(m.deliveries_received, d.deliveries_received);
    assert_eq!(m.connections_opened, d.connections_opened);
    assert_eq!(m.frames_received, d.frames_received);
    assert_eq!(m.bytes_received, d.bytes_received);
    assert!(m.deliveries_received > 100, "{m:?}");
    for id in [MetricId::DeliveryLatency, MetricId::AckLatency] {
        let h = direct.hist(id);
        let s = &r.metrics[id.name()];
        assert_eq!(s.count, h.len(), "{}", id.name());
        assert_eq!(s.p99, h.value_at_quantile(0.99) as f64 / 1000.0);
        assert_eq!(s.max, h.max() as f64 / 1000.0);
    }

    // What the scenario fixes equals a one-process run with the same seed.
    let one = dir.path().join("one");
    let o = bench(
        &[
            "run",
            &scenario,
            "--url",
            &server.url,
            "--out",
            &one.to_string_lossy(),
            "-q",
            "--processes",
            "1",
        ],
        &[],
    );
    let single = read(&one);
    assert_ok_or_saturated(&o, &single);
    assert_eq!(single.counters.connections_opened, m.connections_opened);
    assert_eq!(single.readiness.planned, r.readiness.planned);
    assert_eq!(single.readiness.ready, r.readiness.ready);
    assert_eq!((single.counters.lost, m.lost), (0, 0));

    // Thresholds and `bench compare` work on the merged result.
    let o = bench(
        &[
            "merge",
            &files[0].to_string_lossy(),
            &files[1].to_string_lossy(),
            "--out",
            &dir.path().join("gated").to_string_lossy(),
            "-q",
            "--threshold",
            "delivery_latency.count<1",
        ],
        &[],
    );
    // 3 for the failed threshold (5 outranks it when the machine saturated the generator).
    let want = if r.validity.valid { 3 } else { 5 };
    assert_eq!(code(&o), want, "a failed threshold: {}", stderr(&o));
    let o = bench(
        &[
            "compare",
            &one.join("results.json").to_string_lossy(),
            &merged.join("results.json").to_string_lossy(),
        ],
        &[],
    );
    if single.validity.valid && r.validity.valid {
        assert!(matches!(code(&o), 0 | 4), "compare runs: {}", stderr(&o));
    } else {
        // A saturated (loaded machine) run is refused as a baseline, by rule.
        assert!(stderr(&o).contains("cannot be trusted"), "{}", stderr(&o));
    }

    // One shard alone: the other is missing, the run invalid.
    let o = bench(
        &[
            "merge",
            &files[0].to_string_lossy(),
            "--out",
            &dir.path().join("half").to_string_lossy(),
            "-q",
        ],
        &[],
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let half = read(&dir.path().join("half"));
    assert!(
        half.validity
            .reasons
            .iter()
            .any(|r| r.contains("shard 1/2 is missing")),
        "{:?}",
        half.validity.reasons
    );

    // The same shard twice: refused.
    let copy = dir.path().join("shard-0-copy.jsonl");
    std::fs::copy(&files[0], &copy).unwrap();
    let o = bench(
        &[
            "merge",
            &files[0].to_string_lossy(),
            &copy.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("duplicate shard 0/2"), "{}", stderr(&o));

    // A different seed: refused.
    let other = dir.path().join("shard-1-other-seed.jsonl");
    let text =
        std::fs::read_to_string(&files[1])
            .unwrap()
            .replacen("\"seed\":11,", "\"seed\":12,", 1);
    std::fs::write(&other, text).unwrap();
    let o = bench(
        &[
            "merge",
            &files[0].to_string_lossy(),
            &other.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("seed differs"), "{}", stderr(&o));

    // Shard 1's clock 50 ms off (injected into its header): flagged.
    let skewed_dir = dir.path().join("skewed");
    std::fs::create_dir_all(&skewed_dir).unwrap();
    // ... and shard 0 started 5 s after the agreed instant.
    let text = set_late_ms(&std::fs::read_to_string(&files[0]).unwrap(), 5_000);
    std::fs::write(skewed_dir.join("shard-0-of-2.jsonl"), text).unwrap();
    let text = std::fs::read_to_string(&files[1]).unwrap().replacen(
        "\"offset_us\":1500,",
        "\"offset_us\":50000,",
        1,
    );
    std::fs::write(skewed_dir.join("shard-1-of-2.jsonl"), text).unwrap();
    let out = dir.path().join("skewed-out");
    let o = bench(
        &[
            "merge",
            &skewed_dir.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
            "-q",
        ],
        &[],
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let skewed = read(&out);
    assert!(
        skewed
            .validity
            .reasons
            .iter()
            .any(|r| r.contains("clock offsets to the target differ by 50.0 ms")),
        "{:?}",
        skewed.validity.reasons
    );
    assert!(
        skewed
            .validity
            .reasons
            .iter()
            .any(|r| r.contains("shard 0/2 started 5000 ms after the agreed --start-at")),
        "{:?}",
        skewed.validity.reasons
    );
}

/// The shard file with its header's `late_ms` replaced.
fn set_late_ms(text: &str, late: u64) -> String {
    let key = "\"late_ms\":";
    let at = text.find(key).expect("header has late_ms") + key.len();
    let end = at + text[at..].find([',', '}']).unwrap();
    format!("{}{late}{}", &text[..at], &text[end..])
}

#[test]
fn processes_run_as_one_and_a_dead_worker_invalidates_naming_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), SCENARIO);
    let ok = dir.path().join("ok");
    let o = bench(
        &[
            "run",
            &scenario,
            "--processes",
            "2",
            "--out",
            &ok.to_string_lossy(),
            "-q",
        ],
        &[],
    );
    let r = read(&ok);
    assert_ok_or_saturated(&o, &r);
    assert_eq!(r.shards.len(), 2);
    assert_eq!(r.counters.connections_opened, 30);
    assert_eq!(r.readiness.planned, 30);
    assert!(r.counters.deliveries_received > 100);
    assert_eq!(r.counters.lost, 0);
    // One bundled server for both workers: one server pid sampled.
    assert_eq!(r.server.pids.len(), 1);
    // Each worker probed its clock against the bundled server (same host,
    // same clock): the server's stamp falls inside the probe's round trip,
    // so the estimate is within half of it.
    for sh in &r.shards {
        let (off, rtt) = (sh.clock_offset_ms.unwrap(), sh.clock_rtt_ms.unwrap());
        assert!(off.abs() <= rtt / 2.0 + 0.001, "{sh:?}");
    }
    assert!(!r.timeseries.is_empty());

    // With --url the workers validate as the coordinator did: the bundled
    // server's limits (here too small) do not apply to a URL target.
    let small = dir.path().join("small.toml");
    std::fs::write(
        &small,
        format!("{SCENARIO}[target.server]\nargs = [\"--max-connections\", \"10\"]\n"),
    )
    .unwrap();
    let small = small.to_string_lossy().into_owned();
    let server = Server::start();
    let by_url = dir.path().join("by-url");
    let o = bench(
        &[
            "run",
            &small,
            "--processes",
            "2",
            "--url",
            &server.url,
            "--out",
            &by_url.to_string_lossy(),
            "-q",
        ],
        &[],
    );
    let r = read(&by_url);
    assert_ok_or_saturated(&o, &r);
    assert_eq!(r.counters.connections_opened, 30);

    let dead = dir.path().join("dead");
    let o = bench(
        &[
            "run",
            &scenario,
            "--processes",
            "2",
            "--out",
            &dead.to_string_lossy(),
            "-q",
        ],
        &[("BENCH_TEST_DIE_SHARD", "1")],
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let r = read(&dead);
    assert!(
        r.validity
            .reasons
            .iter()
            .any(|x| x.contains("shard 1/2 died")),
        "{:?}",
        r.validity.reasons
    );
    assert_eq!(r.shards[1].status, "dead");
    // The surviving worker's data is kept.
    assert!(r.counters.connections_opened > 0);
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), SCENARIO);
    let o = bench(&["run", &scenario, "--shard", "3/2"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("out of range"), "{}", stderr(&o));
    let o = bench(&["run", &scenario, "--processes", "0"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = bench(&["run", &scenario, "--shard", "auto"], &[]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("JOB_COMPLETION_INDEX"),
        "{}",
        stderr(&o)
    );
    // Sharding a bundled server would give every shard its own server.
    let o = bench(&["run", &scenario, "--shard", "0/2"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("[target] url"), "{}", stderr(&o));

    let with = |extra: &str| write_scenario(dir.path(), &format!("{SCENARIO}{extra}\n"));
    let o = bench(&["run", &with("processes = 0")], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("processes"), "{}", stderr(&o));
    // TEST-NET-1 is nobody's address.
    // (A non-loopback target, so the address is judged by locality, not reach.)
    let o = bench(
        &[
            "run",
            &with("source_addresses = \"192.0.2.1\""),
            "--url",
            "ws://192.0.2.9:9/ws",
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not an address of this machine"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["run", &with("source_addresses = \"127.0.0.0/8\"")], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("at most"), "{}", stderr(&o));

    let o = bench(&["merge", &dir.path().to_string_lossy()], &[]);
    assert_eq!(code(&o), 2, "no shard files: {}", stderr(&o));

    // Generator-side accounting shares one ledger between the worker
    // threads of one process: it cannot be split (refused before any socket).
    let json = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/json-rooms.toml");
    let o = bench(&["run", json, "--processes", "2"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("one process"), "{}", stderr(&o));
    let o = bench(
        &["run", json, "--shard", "0/2", "--url", "ws://127.0.0.1:9/"],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be sharded"), "{}", stderr(&o));
}

//! `[[faults]]` against the bundled server: the shipped fault scenarios
//! pass their own thresholds (a restart is an event, not duplicates or
//! loss; the run stays valid), and a target that is down and stays down is
//! never a pass.
//!
//! Runs the real `bench` binary. A run the generator flags as saturated (a
//! loaded machine, not a bench defect) is re-run, like in gate_e2e; every
//! other outcome is asserted as it is.

use std::path::Path;
use std::process::Command;

use bench::results::RunResults;

mod common;

const ATTEMPTS: usize = 3;

/// One bench run at a time: five concurrent runs on a small machine would
/// saturate the generator themselves.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `scenario` (a path or TOML text written to a file) and returns the
/// exit code and results, retrying only saturated runs.
fn run(scenario: &Path) -> (Option<i32>, RunResults) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let status = Command::new(common::BENCH)
            .arg("run")
            .arg(scenario)
            .arg("--out")
            .arg(&out)
            .arg("--quiet")
            .status()
            .unwrap();
        let r = common::read_results(&out);
        common::assert_schema_valid(&out);
        if !r.generator.saturated {
            return (status.code(), r);
        }
        eprintln!(
            "saturated, re-running: {:?}",
            r.generator.saturation_reasons
        );
        last = Some((status.code(), r));
    }
    last.unwrap()
}

fn shipped(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// A valid run whose every threshold passed.
fn assert_passes(code: Option<i32>, r: &RunResults) {
    assert!(r.validity.valid, "{:?}", r.validity);
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.pass).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(code, Some(0));
    assert_eq!(r.readiness.ready, r.readiness.planned, "{:?}", r.readiness);
    common::assert_accounting(r);
}

#[test]
fn kill_and_restart_is_one_restart_without_duplicates() {
    let (code, r) = run(&shipped("fault-kill-restart.toml"));
    assert_passes(code, &r);
    let c = &r.counters;
    assert_eq!(c.server_restarts, 1);
    assert!(c.seq_resets > 0, "{c:?}");
    assert!(c.closes.get("abnormal").copied().unwrap_or(0) > 0, "{c:?}");
    assert!(r.metrics["reconnect_time"].count > 0);
}

#[test]
fn graceful_restart_closes_with_1012_and_is_one_restart() {
    let (code, r) = run(&shipped("fault-graceful-restart.toml"));
    assert_passes(code, &r);
    let c = &r.counters;
    assert_eq!(c.server_restarts, 1);
    assert!(c.closes.get("1012").copied().unwrap_or(0) > 0, "{c:?}");
}

#[test]
fn a_target_down_at_start_is_waited_for_when_the_scenario_says_so() {
    let (code, r) = run(&shipped("fault-target-down-at-start.toml"));
    assert_passes(code, &r);
    assert!(
        r.counters
            .connections_failed
            .get("refused")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

/// Without history persistence, what receivers had not yet received when
/// the server died is gone: delayed deliveries make sure there is some.
#[test]
fn deliveries_in_flight_at_a_kill_are_lost_at_restart_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped("fault-kill-restart.toml"))
        .unwrap()
        .replace(
            "protocol = \"chat\"",
            "protocol = \"chat\"\n[target.server]\nargs = [\"--chaos-delay\", \"300ms\"]",
        );
    let path = dir.path().join("delayed.toml");
    std::fs::write(&path, text).unwrap();
    let (_, r) = run(&path);
    let c = &r.counters;
    assert!(c.lost_at_restart > 0, "{c:?}");
    assert_eq!(
        (c.lost, c.duplicates, c.server_restarts),
        (0, 0, 1),
        "{c:?}"
    );
}

/// The same target down at start, but it never comes back and the default
/// abort rules apply: exit 5, every client counted as refused.
#[test]
fn a_target_that_stays_down_is_an_invalid_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped("fault-target-down-at-start.toml"))
        .unwrap()
        .replace("restart_after = \"2s\"\n", "")
        .replace("abort_on_connect_failure_share = false\n", "");
    let path = dir.path().join("down.toml");
    std::fs::write(&path, text).unwrap();
    let (code, r) = run(&path);
    assert_eq!(code, Some(5), "{:?}", r.validity);
    assert!(r.interrupted, "stopped early");
    assert_eq!(r.readiness.ready, 0);
    assert!(
        r.readiness.failed.get("refused").copied().unwrap_or(0) > 0,
        "{:?}",
        r.readiness
    );
}

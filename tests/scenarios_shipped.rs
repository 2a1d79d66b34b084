//! Every scenario shipped in `scenarios/` must validate, and the ones the
//! README and issue name must exist with the shape they promise.

use std::path::{Path, PathBuf};

use bench::scenario::{self, Endpoint, FaultAction, PlanOverrides, RoomDistribution};

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> scenario::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    scenario::load(&path, &PlanOverrides::default()).unwrap()
}

#[test]
fn every_shipped_scenario_validates() {
    let files = shipped();
    assert!(
        files.len() >= 5,
        "expected at least 5 scenarios, found {files:?}"
    );
    for path in files {
        let plan = scenario::load(&path, &PlanOverrides::default())
            .unwrap_or_else(|e| panic!("{} does not validate: {e:#}", path.display()));
        assert!(!plan.name.is_empty());
        assert!(
            !plan.thresholds.is_empty(),
            "{}: no thresholds",
            path.display()
        );
    }
}

#[test]
fn shipped_scenarios_have_the_promised_shape() {
    let quick = load("quickstart.toml");
    assert_eq!(quick.peak_clients(), 1000);
    assert_eq!(quick.duration().as_secs(), 30);
    assert!(matches!(quick.target.endpoint, Endpoint::Bundled { .. }));

    let fanout = load("fanout.toml");
    assert!(fanout.rooms.count <= 10);
    match &fanout.target.endpoint {
        Endpoint::Bundled { args, .. } => assert!(args.iter().any(|a| a == "--batch-window")),
        other => panic!("fanout must use the bundled server with batching, got {other:?}"),
    }

    let soak = load("soak-15k.toml");
    assert_eq!(soak.peak_clients(), 15_000);
    assert!(soak.run.source_addrs.len() >= 2);

    let churn = load("reconnect-churn.toml");
    assert!(churn
        .populations
        .iter()
        .all(|p| p.resume && p.reconnect_every.is_some()));

    let spike = load("spike.toml");
    let targets: Vec<u32> = spike.stages.iter().map(|s| s.target).collect();
    let base = targets[0];
    assert!(
        targets.iter().any(|t| *t >= base * 5),
        "no spike in {targets:?}"
    );
    assert_eq!(*targets.last().unwrap(), base, "spike must come back down");
    assert!(matches!(
        spike.rooms.distribution,
        RoomDistribution::Zipf { .. }
    ));

    // Issue #12's target: ten node kills in a 60 s run, over Redis, with resume.
    let kills = load("fault-node-kill.toml");
    assert_eq!(kills.duration().as_secs(), 60);
    assert!(kills.target.redis.is_some());
    let killed: Vec<_> = kills
        .faults
        .iter()
        .filter(|f| f.action == FaultAction::KillProcess)
        .collect();
    assert_eq!(killed.len(), 10);
    assert!(kills.populations.iter().all(|p| p.resume));
    let restart = load("fault-redis-restart.toml");
    assert!(restart.target.redis.is_some());
    assert!(restart
        .faults
        .iter()
        .any(|f| f.action == FaultAction::RestartRedis && f.restart_after.is_some()));
}

#[test]
fn the_resolved_plan_serializes_readably() {
    let plan = load("reconnect-churn.toml");
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["stages"][0]["duration"], "10s");
    assert_eq!(json["populations"][0]["reconnect_every"], "20s");
    assert_eq!(
        json["populations"][0]["reconnect_backoff"]["initial"],
        "200ms"
    );
    assert_eq!(json["target"]["endpoint"]["kind"], "bundled");
}

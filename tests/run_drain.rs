//! The adaptive drain: after the last stage clients stop sending and the
//! drain ends as soon as every receiver has caught up (not after the whole
//! `[run] drain`); deliveries still missing when it ends are `lost_tail`.

mod common;

const STAGES_S: f64 = 3.0;

fn scenario(server_args: &str, drain: &str) -> String {
    format!(
        r#"
name = "drain"
seed = 5
[target]
protocol = "chat"
[target.server]
args = [{server_args}]
[[stages]]
duration = "1s"
target = 20
[[stages]]
duration = "2s"
target = 20
[rooms]
count = 2
per_client = 1
[[clients]]
name = "talker"
chat_rate = "4/s"
[run]
drain = "{drain}"
"#
    )
}

#[test]
fn drain_ends_once_every_receiver_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let r = &common::run_completed(&scenario("", "30s"), dir.path());
    let c = &r.counters;
    assert!(c.deliveries_received > 500, "too few deliveries: {c:?}");
    // Nothing is dropped, so every receiver catches up and nothing is lost.
    assert_eq!((c.lost, c.lost_tail), (0, 0), "{c:?}");
    // A functional bound, not a performance figure: a fixed drain would
    // take the whole 30 s; catching up takes well under a second even on a
    // loaded machine, so 20 s leaves a wide margin.
    assert!(
        r.duration_s < STAGES_S + 20.0,
        "the drain did not end early: run took {:.1} s",
        r.duration_s
    );
    common::assert_schema_valid(dir.path());
}

#[test]
fn deliveries_missing_at_the_end_of_the_drain_are_lost_tail() {
    let dir = tempfile::tempdir().unwrap();
    // Half of all deliveries are dropped: nearly every receiver misses some
    // of the last messages of its room, which no drain can bring.
    let r = &common::run_completed(
        &scenario(r#""--chaos-drop", "0.5", "--chaos-seed", "3""#, "1s"),
        dir.path(),
    );
    let c = &r.counters;
    assert!(c.deliveries_expected > 500, "too few deliveries: {c:?}");
    let share = c.lost as f64 / c.deliveries_expected as f64;
    assert!((0.4..=0.6).contains(&share), "lost share {share:.3}: {c:?}");
    // With 20 receivers each missing its room's last message with p = 0.5,
    // P(no tail at all) is 2^-20.
    assert!(c.lost_tail > 0, "{c:?}");
    // The tail is the trailing part only; the rest of the drops are gaps.
    assert!(c.lost_tail < c.lost / 2, "{c:?}");
    assert_eq!(
        common::read_results(dir.path()).counters.lost_tail,
        c.lost_tail
    );
    common::assert_schema_valid(dir.path());
}

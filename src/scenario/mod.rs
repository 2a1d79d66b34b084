//! Scenarios: TOML (+ flags) → validated [`Plan`].
//!
//! Two stages, as in ripgrep's config: the file is first read as written
//! (`raw`, with every key checked against the known ones in `keys`), then
//! typed, defaulted and cross-checked into a [`Plan`] (`validate`). Every
//! error is an [`crate::exit::UsageError`] that names the file, line,
//! column and key, and suggests the nearest valid key or value.
//! Nothing here opens a socket.

mod bundled;
mod diag;
pub mod json;
mod keys;
pub mod metrics;
pub mod plan;
mod raw;
pub mod shapes;
pub mod socketio;
pub mod units;
mod validate;
pub use validate::read_certs;

pub use plan::*;
pub use validate::{default_output_dir, defaults};

use std::path::Path;

use diag::{usage, Source};

/// Reads, parses and validates a scenario file into a [`Plan`].
pub fn load(path: &Path, overrides: &PlanOverrides) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read scenario {}: {e}", path.display())))?;
    let name = path.display().to_string();
    parse(&text, &name, Some(path), overrides)
}

/// Validates scenario text; `name` is how messages refer to it.
pub fn parse(
    text: &str,
    name: &str,
    path: Option<&Path>,
    overrides: &PlanOverrides,
) -> anyhow::Result<Plan> {
    let src = Source { name, text };
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        src.error(
            e.span().as_ref(),
            format!(
                "invalid TOML: {}",
                e.message().trim_end().replace('\n', "; ")
            ),
        )
    })?;
    let (index, thresholds) = keys::walk(doc.as_table(), &src)?;
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| type_error(&src, &index, &e))?;
    let validator = validate::Validator {
        src: &src,
        index: &index,
        path: path.map(Path::to_path_buf),
    };
    let mut plan = validator.plan(raw, overrides)?;
    plan.thresholds = validator.thresholds(thresholds, overrides, &plan.target)?;
    Ok(plan)
}

/// Rewrites a serde type error (`invalid type: string "x", expected u32`)
/// as `file:L:C: bad `key` in [table]: expected ..., found ...`.
fn type_error(src: &Source, index: &keys::Index, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim_end();
    let friendly = friendly_type_message(message);
    let Some(span) = e.span() else {
        return src.error(None, friendly);
    };
    match index.path_at(&span) {
        Some(path) => {
            let norm = keys::strip_indices(path);
            let (table, key) = norm.rsplit_once('.').unwrap_or(("", &norm));
            src.error(
                Some(&span),
                format!("bad `{key}` {}: {friendly}", keys::table_display(table)),
            )
        }
        None => src.error(Some(&span), friendly),
    }
}

/// `invalid type: string "x", expected u32` → `expected a whole number ≥ 0, found string "x"`.
fn friendly_type_message(message: &str) -> String {
    fn expected(what: &str) -> &str {
        match what {
            "u32" | "u64" | "usize" => "a whole number ≥ 0",
            "f64" | "f32" => "a number",
            "a boolean" => "true or false",
            "a string" => "a string",
            "a sequence" => "an array",
            other => other,
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, what)) = rest.split_once(", expected ") {
            return format!("expected {}, found {found}", expected(what));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, what)) = rest.split_once(", expected ") {
            return format!("{found} is out of range; expected {}", expected(what));
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[[stages]]\nduration = \"10s\"\ntarget = 10\n[[clients]]\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let plan = parse(
            MINIMAL,
            "min.toml",
            Some(Path::new("dir/min.toml")),
            &PlanOverrides::default(),
        )
        .unwrap();
        assert_eq!(plan.name, "min");
        assert_eq!(plan.seed, defaults::SEED);
        assert!(
            matches!(plan.target.endpoint, Endpoint::Bundled { ref args, .. } if args.is_empty())
        );
        assert_eq!(plan.target.protocol, Protocol::Chat);
        assert_eq!(plan.rooms.count, 1);
        assert_eq!(plan.populations.len(), 1);
        assert_eq!(plan.populations[0].name, "clients-1");
        assert_eq!(plan.populations[0].share, 1.0);
        assert_eq!(plan.populations[0].chat_rate, 0.0);
        assert_eq!(
            plan.populations[0].ping_interval,
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(plan.output.formats, vec![Format::Json, Format::Html]);
        assert!(plan.output.dir.starts_with("reports"));
        assert!(plan.output.dir.to_string_lossy().contains("min-"));
        assert_eq!(plan.run.abort_on_connect_failure_share, Some(0.5));
        assert!(plan.run.workers >= 1);
    }

    #[test]
    fn overrides_apply() {
        let text = format!("{MINIMAL}[thresholds]\n\"delivery_latency.p99\" = \"< 50ms\"\n\"errors.rate\" = \"< 1%\"\n");
        let overrides = PlanOverrides {
            out_dir: Some("out/x".into()),
            thresholds: vec![
                "delivery_latency.p99<=20ms".into(),
                "delivery.lost==0".into(),
            ],
            seed: Some(7),
            target_url: Some("ws://127.0.0.1:9/ws".into()),
        };
        let plan = parse(&text, "o.toml", None, &overrides).unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.output.dir, std::path::PathBuf::from("out/x"));
        assert!(matches!(plan.target.endpoint, Endpoint::Url(ref u) if u.port == 9));
        let t: Vec<_> = plan
            .thresholds
            .iter()
            .map(|t| (t.metric.as_str(), t.op, t.value))
            .collect();
        assert_eq!(
            t,
            [
                ("delivery_latency.p99", CmpOp::Le, 20.0),
                ("errors.rate", CmpOp::Lt, 0.01),
                ("delivery.lost", CmpOp::Eq, 0.0)
            ]
        );
    }

    #[test]
    fn every_key_is_understood() {
        std::env::set_var("BENCH_SCENARIO_UNIT_TEST_SECRET", "s3cret");
        let text = r#"
name = "full"
seed = 99
[target]
protocol = "chat"
server_pid = [10, 11]
server_process = "node"
[target.server]
command = ["node", "peer.js", "--port", "9100"]
url = "ws://127.0.0.1:9100/chat"
ready_timeout = "20s"
[target.auth]
mode = "first_message"
secret = "env:BENCH_SCENARIO_UNIT_TEST_SECRET"
ttl = "10m"
[[stages]]
duration = "1m"
target = 10
[[stages]]
duration = "0"
target = 50
[rooms]
count = 8
per_client = 3
distribution = "zipf"
exponent = 1.5
prefix = "r"
[[clients]]
name = "a"
weight = 3
chat_rate = "30/m"
message_size = "32..=64"
typing = true
reconnect_every = "45s"
reconnect_backoff = { initial = "1s", max = "8s", jitter = 0.25 }
resume = true
ping_interval = 0
[[clients]]
name = "b"
chat_rate = "1/10s"
message_size = "1KiB"
[clients.reconnect_backoff]
max = "1m"
[thresholds]
delivery_latency.p99 = "< 50ms"
"memory_per_connection" = "<= 2KiB"
[output]
dir = "out/full"
formats = ["markdown", "junit"]
[run]
workers = 3
source_addrs = ["127.0.0.2", "127.0.0.3"]
connect_timeout = "3s"
drain = "0"
abort_on_connect_failure_share = "25%"
"#;
        let plan = parse(text, "full.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!((plan.name.as_str(), plan.seed), ("full", 99));
        assert_eq!(plan.target.server_pids, [10, 11]);
        assert_eq!(plan.target.server_process.as_deref(), Some("node"));
        match &plan.target.endpoint {
            Endpoint::Command {
                argv,
                url,
                ready_timeout,
            } => {
                assert_eq!(argv[1], "peer.js");
                assert_eq!((url.port, url.path.as_str()), (9100, "/chat"));
                assert_eq!(ready_timeout.as_secs(), 20);
            }
            other => panic!("{other:?}"),
        }
        let auth = plan.target.auth.as_ref().unwrap();
        assert_eq!(
            (auth.mode, auth.secret.as_str(), auth.ttl.as_secs()),
            (AuthMode::FirstMessage, "s3cret", 600)
        );
        assert_eq!(
            plan.stages[1],
            Stage {
                duration: std::time::Duration::ZERO,
                target: 50
            }
        );
        assert_eq!(
            plan.rooms.distribution,
            RoomDistribution::Zipf { exponent: 1.5 }
        );
        assert_eq!(
            (
                plan.rooms.count,
                plan.rooms.per_client,
                plan.rooms.prefix.as_str()
            ),
            (8, 3, "r")
        );
        let [a, b] = &plan.populations[..] else {
            panic!()
        };
        assert_eq!((a.share, b.share), (0.75, 0.25));
        assert_eq!((a.chat_rate, b.chat_rate), (0.5, 0.1));
        assert_eq!(a.message_size, SizeRange { min: 32, max: 64 });
        assert_eq!(
            b.message_size,
            SizeRange {
                min: 1024,
                max: 1024
            }
        );
        assert!(a.typing && a.resume && !b.typing && !b.resume);
        assert_eq!(a.reconnect_every, Some(std::time::Duration::from_secs(45)));
        assert_eq!(a.ping_interval, None);
        assert_eq!(a.reconnect_backoff.jitter, 0.25);
        assert_eq!(b.reconnect_backoff.max.as_secs(), 60);
        assert_eq!(b.reconnect_backoff.initial.as_millis(), 500);
        assert_eq!(plan.thresholds[0].metric, "delivery_latency.p99");
        assert_eq!(plan.thresholds[1].value, 2048.0);
        assert_eq!(
            plan.output.formats,
            [Format::Json, Format::Markdown, Format::Junit]
        );
        assert_eq!(plan.output.dir, std::path::PathBuf::from("out/full"));
        assert_eq!(plan.run.workers, 3);
        assert_eq!(plan.run.source_addrs.len(), 2);
        assert_eq!(plan.run.drain, std::time::Duration::ZERO);
        assert_eq!(plan.run.abort_on_connect_failure_share, Some(0.25));
        // The secret never reaches results.json.
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("s3cret"));
    }

    #[test]
    fn server_thresholds_need_a_sampled_server() {
        let text = format!(
            "{MINIMAL}[target]\nurl = \"ws://127.0.0.1:9/\"\nserver_process = \"node\"\n[thresholds]\n\"server.cpu_percent_mean\" = \"< 80%\"\n"
        );
        let plan = parse(&text, "s.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.thresholds[0].value, 80.0);
        let overrides = PlanOverrides {
            target_url: Some("ws://127.0.0.1:9/".into()),
            thresholds: vec!["memory_per_connection<=4KiB".into()],
            ..Default::default()
        };
        let err = parse(MINIMAL, "s.toml", None, &overrides)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--threshold `memory_per_connection<=4KiB`: `memory_per_connection` needs the server to be sampled"), "{err}");
    }

    #[test]
    fn socketio_table_reaches_the_plan() {
        use crate::scenario::socketio::Transport;
        let text = format!(
            "{MINIMAL}[target]\nprotocol = \"socketio\"\nurl = \"ws://127.0.0.1:9/\"\n\
             [target.socketio]\nnamespace = \"/chat\"\ntransport = \"polling\"\n\
             auth = {{ token = \"t0ps3cret\" }}\n[target.socketio.events]\nchat = \"msg\"\n"
        );
        let plan = parse(&text, "s.toml", None, &PlanOverrides::default()).unwrap();
        let sio = plan.target.socketio.as_ref().unwrap();
        assert_eq!(
            (
                sio.namespace.as_str(),
                sio.transport,
                sio.events.chat.as_str()
            ),
            ("/chat", Transport::Polling, "msg")
        );
        assert!(sio.auth.is_some());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["target"]["socketio"]["transport"], "polling");
        assert!(!json.to_string().contains("t0ps3cret"));
        // Without the table: no options in the plan (the dialect's defaults).
        let plain =
            format!("{MINIMAL}[target]\nprotocol = \"socketio\"\nurl = \"ws://127.0.0.1:9/\"\n");
        let plan = parse(&plain, "s.toml", None, &PlanOverrides::default()).unwrap();
        assert!(plan.target.socketio.is_none());
    }

    #[test]
    fn abort_share_can_be_disabled() {
        let text = format!("{MINIMAL}[run]\nabort_on_connect_failure_share = false\n");
        let plan = parse(&text, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.run.abort_on_connect_failure_share, None);
    }

    #[test]
    fn validity_bounds_have_defaults_and_can_be_disabled() {
        use std::time::Duration;
        let plan = parse(MINIMAL, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.run.max_not_ready, Some(0.01));
        assert_eq!(plan.run.max_unreachable, Some(Duration::from_secs(5)));
        let text = format!("{MINIMAL}[run]\nmax_not_ready = false\nmax_unreachable = false\n");
        let plan = parse(&text, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(
            (plan.run.max_not_ready, plan.run.max_unreachable),
            (None, None)
        );
        let text = format!("{MINIMAL}[run]\nmax_not_ready = \"5%\"\nmax_unreachable = \"2s\"\n");
        let plan = parse(&text, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.run.max_not_ready, Some(0.05));
        assert_eq!(plan.run.max_unreachable, Some(Duration::from_secs(2)));
        let bad = format!("{MINIMAL}[run]\nmax_unreachable = 3\n");
        let e = parse(&bad, "a.toml", None, &PlanOverrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("max_unreachable"), "{e:#}");
    }

    #[test]
    fn pacing_defaults_to_timerfd_and_rejects_unknown_modes() {
        let plan = parse(MINIMAL, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.run.pacing, PacingMode::Timerfd);
        let text = format!("{MINIMAL}[run]\npacing = \"tokio\"\n");
        let plan = parse(&text, "a.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.run.pacing, PacingMode::Tokio);
        let bad = format!("{MINIMAL}[run]\npacing = \"spin\"\n");
        let e = parse(&bad, "a.toml", None, &PlanOverrides::default()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("`pacing` in [run]") && msg.contains("a.toml:"),
            "{msg}"
        );
    }

    #[test]
    fn faults_are_checked_and_sorted() {
        use std::time::Duration;
        let text = format!(
            "{MINIMAL}[[faults]]\nat = \"3s\"\naction = \"restart_graceful\"\n\
             [[faults]]\nat = \"1s\"\naction = \"kill\"\nrestart_after = \"500ms\"\n"
        );
        let plan = parse(&text, "f.toml", None, &PlanOverrides::default()).unwrap();
        let got: Vec<_> = plan
            .faults
            .iter()
            .map(|f| (f.at, f.action, f.restart_after))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Duration::from_secs(1),
                    FaultAction::Kill,
                    Some(Duration::from_millis(500))
                ),
                (Duration::from_secs(3), FaultAction::RestartGraceful, None),
            ]
        );
        let typo = format!("{MINIMAL}[[faults]]\nat = \"1s\"\naction = \"kil\"\n");
        let e = format!(
            "{:#}",
            parse(&typo, "f.toml", None, &PlanOverrides::default()).unwrap_err()
        );
        assert!(
            e.contains("unknown value \"kil\"") && e.contains("kill"),
            "{e}"
        );
        let late = format!("{MINIMAL}[[faults]]\nat = \"1h\"\naction = \"kill\"\n");
        let e = format!(
            "{:#}",
            parse(&late, "f.toml", None, &PlanOverrides::default()).unwrap_err()
        );
        assert!(e.contains("within the stages"), "{e}");
        let url = format!(
            "{MINIMAL}[target]\nurl = \"ws://127.0.0.1:9/ws\"\n[[faults]]\nat = \"1s\"\naction = \"kill\"\n"
        );
        let e = format!(
            "{:#}",
            parse(&url, "f.toml", None, &PlanOverrides::default()).unwrap_err()
        );
        assert!(e.contains("server bench starts"), "{e}");
    }

    #[test]
    fn node_and_redis_faults_need_what_they_act_on() {
        let err = |extra: &str| {
            let text = format!("{MINIMAL}{extra}");
            format!(
                "{:#}",
                parse(&text, "f.toml", None, &PlanOverrides::default()).unwrap_err()
            )
        };
        let two = "[target.server]\nprocesses = 2\n";
        let kill = |p: &str| format!("[[faults]]\nat = \"1s\"\naction = \"kill_process\"\n{p}");
        let e = err(&kill(""));
        assert!(e.contains("several processes"), "{e}");
        let e = err(&format!("{two}{}", kill("process = 2\n")));
        assert!(
            e.contains("`process` in [[faults]]") && e.contains("0 to 1"),
            "{e}"
        );
        let e = err(&format!("{two}{}", kill("restart_after = \"1s\"\n")));
        assert!(e.contains("supervisor starts"), "{e}");
        let e = err("[[faults]]\nat = \"1s\"\naction = \"restart_redis\"\n");
        assert!(e.contains("[target.redis]"), "{e}");
        let e = err("[[faults]]\nat = \"1s\"\naction = \"kill\"\nprocess = 1\n");
        assert!(e.contains("only with action = \"kill_process\""), "{e}");
        let e = err("[target]\nurl = \"ws://127.0.0.1:9/ws\"\n[target.redis]\n");
        assert!(e.contains("nothing is started"), "{e}");
        let e = err("[target.server]\nargs = [\"--redis\", \"redis://x:1\"]\n[target.redis]\n");
        assert!(e.contains("remove `--redis`"), "{e}");
        let e = err("[target.redis]\ncommand = [\"redis-server\"]\n");
        assert!(e.contains("url"), "{e}");
        let text = format!(
            "{MINIMAL}{two}[target.redis]\n{}[[faults]]\nat = \"2s\"\naction = \"restart_redis\"\n",
            kill("process = 1\n")
        );
        let plan = parse(&text, "f.toml", None, &PlanOverrides::default()).unwrap();
        assert_eq!(plan.faults[0].process, Some(1));
        assert_eq!(plan.faults[1].action, FaultAction::RestartRedis);
        assert_eq!(
            plan.faults[1].restart_after,
            Some(std::time::Duration::from_secs(1))
        );
        assert!(plan.target.redis.is_some());
    }

    #[test]
    fn friendly_messages() {
        assert_eq!(
            friendly_type_message("invalid type: string \"x\", expected u32"),
            "expected a whole number ≥ 0, found string \"x\""
        );
        assert_eq!(
            friendly_type_message("invalid value: integer `-1`, expected u32"),
            "integer `-1` is out of range; expected a whole number ≥ 0"
        );
    }
}

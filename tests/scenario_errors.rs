//! Scenario mistakes and the exact messages they produce: file, line,
//! column, key, and the nearest valid key or value. Every error must be a
//! usage error (exit code 2).

use bench::exit::UsageError;
use bench::scenario::{self, PlanOverrides};

/// A valid scenario; each case edits or appends to it.
const BASE: &str = r#"name = "t"

[[stages]]
duration = "10s"
target = 100

[[clients]]
name = "talkers"
chat_rate = "0.5/s"
"#;

fn error_of(text: &str, overrides: &PlanOverrides) -> String {
    let err =
        scenario::parse(text, "scenarios/x.toml", None, overrides).expect_err("should be rejected");
    assert!(
        err.downcast_ref::<UsageError>().is_some(),
        "not a usage error: {err:#}"
    );
    err.to_string()
}

fn error(text: &str) -> String {
    error_of(text, &PlanOverrides::default())
}

fn with(extra: &str) -> String {
    error(&format!("{BASE}{extra}"))
}

#[test]
fn base_is_valid() {
    scenario::parse(BASE, "scenarios/x.toml", None, &PlanOverrides::default()).unwrap();
}

/// Keys before the first table belong to the top level.
fn top(extra: &str) -> String {
    error(&format!("{extra}\n{BASE}"))
}

/// Appended to `BASE` (so line numbers start at 10).
const APPENDED: &[(&str, &str)] = &[
    (
        "[target.deflate]\nserver_max_window_bits = 16",
        "scenarios/x.toml:11:26: bad `server_max_window_bits` in [target.deflate]: 16 is not a window size; RFC 7692 allows 8 to 15",
    ),
    (
        "[target.deflate]\nclient_no_context_takover = true",
        "scenarios/x.toml:11:1: unknown key `client_no_context_takover` in [target.deflate]; did you mean `client_no_context_takeover`?",
    ),
    (
        "[target.socketio]\ntransport = \"polling\"",
        "scenarios/x.toml:10:1: [target.socketio] applies only with [target] protocol = \"socketio\"",
    ),
    (
        "[target]\nprotocol = \"socketio\"\n[target.socketio]\ntransport = \"pollng\"",
        "scenarios/x.toml:13:13: bad `transport` in [target.socketio]: unknown transport \"pollng\"; did you mean \"polling\"?",
    ),
    (
        "[target]\nprotocol = \"socketio\"\n[target.socketio]\nnamespace = \"/chat\"\n[target.socketio.events]\nchatt = \"msg\"",
        "scenarios/x.toml:15:1: unknown key `chatt` in [target.socketio.events]; did you mean `chat`?",
    ),
    (
        "[[clients]]\nchat_rat = \"1/s\"",
        "scenarios/x.toml:11:1: unknown key `chat_rat` in [[clients]]; did you mean `chat_rate`?",
    ),
    (
        "[rooms]\ncount = 3\nper_client = 5",
        "scenarios/x.toml:12:14: bad `per_client` in [rooms]: 5 is more than `count` (3): a client cannot join the same room twice",
    ),
    (
        "[rooms]\ncount = 3\nsize = 20",
        "scenarios/x.toml:12:1: `size` and `count` in [rooms] are exclusive: `count` fixes the number of rooms, `size` fixes the members per room and derives the count from the clients",
    ),
    (
        "[rooms]\nsize = 0",
        "scenarios/x.toml:11:8: bad `size` in [rooms]: a room needs at least 1 member",
    ),
    (
        "[rooms]\nsize = 101",
        "scenarios/x.toml:11:8: bad `size` in [rooms]: 101 members per room is more than the clients (peak 100); use `count = 1` for one room of everyone",
    ),
    (
        "[rooms]\nsize = 10\ndistribution = \"zipf\"",
        "scenarios/x.toml:12:16: bad `distribution` in [rooms]: `zipf` skews room sizes on purpose, which `size` (every room the same size) rules out; use `count` with zipf",
    ),
    (
        "[rooms]\ndistribution = \"zipff\"",
        "scenarios/x.toml:11:16: bad `distribution` in [rooms]: unknown value \"zipff\"; did you mean \"zipf\"?",
    ),
    (
        "[rooms]\nexponent = 1.2",
        "scenarios/x.toml:11:1: `exponent` in [rooms] applies only with distribution = \"zipf\"",
    ),
    (
        "[rooms]\ndistribution = \"zipf\"\nexponent = -1",
        "scenarios/x.toml:12:12: bad `exponent` in [rooms]: the zipf exponent must be greater than 0 (1.0 is classic zipf)",
    ),
    (
        "[[stages]]\nduration = \"10\"\ntarget = 5",
        "scenarios/x.toml:11:12: bad `duration` in [[stages]]: invalid duration `10`: missing unit (write e.g. `30s`, `250ms`, `2m`, `1h`)",
    ),
    (
        "[[stages]]\nduration = \"10 parsecs\"\ntarget = 5",
        "scenarios/x.toml:11:12: bad `duration` in [[stages]]: invalid duration `10 parsecs`: unknown unit (write e.g. `30s`, `250ms`, `2m`, `1h`)",
    ),
    (
        "[[stages]]\ntarget = 5",
        "scenarios/x.toml:10:1: missing `duration` in [[stages]] (how long this stage ramps, e.g. \"30s\")",
    ),
    (
        "[[stages]]\nduration = \"5s\"",
        "scenarios/x.toml:10:1: missing `target` in [[stages]] (the number of connected clients at the end of the stage)",
    ),
    (
        "[[stages]]\nduration = \"5s\"\ntarget = -5",
        "scenarios/x.toml:12:10: bad `target` in [[stages]]: integer `-5` is out of range; expected a whole number ≥ 0",
    ),
    (
        "[[stages]]\nduration = \"5s\"\ntarget = \"lots\"",
        "scenarios/x.toml:12:10: bad `target` in [[stages]]: expected a whole number ≥ 0, found string \"lots\"",
    ),
    (
        "[[clients]]\nname = \"b\"\nchat_rate = \"fast\"",
        "scenarios/x.toml:12:13: bad `chat_rate` in [[clients]]: `fast` is not a rate; write e.g. \"0.5/s\", \"30/m\", \"1/10s\" or 0",
    ),
    (
        "[[clients]]\nname = \"b\"\nchat_rate = 2",
        "scenarios/x.toml:12:13: bad `chat_rate` in [[clients]]: a rate needs a time unit; write e.g. \"0.5/s\" or \"30/m\" (0 for a lurker)",
    ),
    (
        "[[clients]]\nname = \"b\"\nchat_rate = \"1/fortnight\"",
        "scenarios/x.toml:12:13: bad `chat_rate` in [[clients]]: `1/fortnight` is not a rate: unknown time unit `fortnight`; write e.g. \"0.5/s\", \"30/m\", \"1/10s\" or 0",
    ),
    (
        "[[clients]]\nname = \"b\"\nweight = 0",
        "scenarios/x.toml:12:10: bad `weight` in [[clients]]: 0 is not greater than 0 (remove a population you do not want)",
    ),
    (
        "[[clients]]\nname = \"talkers\"",
        "scenarios/x.toml:11:8: bad `name` in [[clients]]: another [[clients]] is already named \"talkers\"",
    ),
    (
        "[[clients]]\nname = \"b\"\nmessage_size = \"256..32\"",
        "scenarios/x.toml:12:16: bad `message_size` in [[clients]]: the range `256..32` is empty: 256 is larger than 32",
    ),
    (
        "[[clients]]\nname = \"b\"\nmessage_size = 0",
        "scenarios/x.toml:12:16: bad `message_size` in [[clients]]: `0` must be a whole number of bytes from 1 to 16MiB",
    ),
    (
        "[[clients]]\nname = \"b\"\nmessage_size = true",
        "scenarios/x.toml:12:16: bad `message_size` in [[clients]]: expected a size like 64 or \"32..256\", found boolean",
    ),
    (
        "[[clients]]\nname = \"b\"\nreconnect_every = 30",
        "scenarios/x.toml:12:19: bad `reconnect_every` in [[clients]]: a duration needs a unit; write e.g. \"30s\" (or 0 for never)",
    ),
    (
        "[[clients]]\nname = \"b\"\nreconnect_backoff = { initial = \"1s\", max = \"100ms\" }",
        "scenarios/x.toml:12:45: bad `max` in `reconnect_backoff` of [[clients]]: 100ms is shorter than `initial` (1s)",
    ),
    (
        "[[clients]]\nname = \"b\"\nreconnect_backoff = { initial = \"1s\", maxx = \"10s\" }",
        "scenarios/x.toml:12:39: unknown key `maxx` in `reconnect_backoff` of [[clients]]; did you mean `max`?",
    ),
    (
        "[[clients]]\nname = \"b\"\nreconnect_backoff = { jitter = 2.0 }",
        "scenarios/x.toml:12:32: bad `jitter` in `reconnect_backoff` of [[clients]]: 2 is not a fraction from 0 to 1",
    ),
    (
        "[[clients]]\nname = \"b\"\ntyping = \"yes\"",
        "scenarios/x.toml:12:10: bad `typing` in [[clients]]: expected true or false, found string \"yes\"",
    ),
    (
        "[target]\nurl = \"http://127.0.0.1:8080/\"",
        "scenarios/x.toml:11:7: bad `url` in [target]: `http://127.0.0.1:8080/` is an HTTP URL; write ws:// or wss:// instead of http://",
    ),
    (
        "[target]\nurl = \"ws://127.0.0.1:99999/\"",
        "scenarios/x.toml:11:7: bad `url` in [target]: `ws://127.0.0.1:99999/` has an invalid port `99999`",
    ),
    (
        "[target]\nprotocol = \"chatt\"",
        "scenarios/x.toml:11:12: bad `protocol` in [target]: unknown value \"chatt\"; did you mean \"chat\"?",
    ),
    (
        "[target]\nurl = \"ws://127.0.0.1:8080/\"\n[target.server]\nargs = [\"--batch-window\", \"5ms\"]",
        "scenarios/x.toml:13:1: `args` in [target.server] configures the bundled server, which is not started when [target] url is set",
    ),
    (
        "[target.server]\ncommand = [\"node\", \"server.js\"]",
        "scenarios/x.toml:10:1: missing `url` in [target.server] (where the server started by `command` listens, e.g. \"ws://127.0.0.1:9000/\")",
    ),
    (
        "[target.server]\ncommand = []\nurl = \"ws://127.0.0.1:9000/\"",
        "scenarios/x.toml:11:11: bad `command` in [target.server]: the command is empty; write e.g. [\"node\", \"server.js\"]",
    ),
    (
        "[target.server]\nurl = \"ws://127.0.0.1:9000/\"",
        "scenarios/x.toml:11:1: `url` in [target.server] needs `command`; to use a server that is already running, set [target] url",
    ),
    (
        "[target.server]\ncommand = [\"node\", \"s.js\"]\nurl = \"ws://127.0.0.1:9000/\"\nready_timeout = \"soon\"",
        "scenarios/x.toml:13:17: bad `ready_timeout` in [target.server]: invalid duration `soon`: not a number (write e.g. `30s`, `250ms`, `2m`, `1h`)",
    ),
    (
        "[target.auth]\nmode = \"cookie\"\nsecret = \"s\"",
        "scenarios/x.toml:11:8: bad `mode` in [target.auth]: unknown value \"cookie\"; expected one of \"query\", \"header\", \"first_message\"",
    ),
    (
        "[target.auth]\nmode = \"header\"",
        "scenarios/x.toml:10:1: missing `secret` in [target.auth] (the HS256 key, inline or \"env:NAME\")",
    ),
    (
        "[target.auth]\nsecret = \"env:BENCH_TEST_SURELY_UNSET_VAR\"",
        "scenarios/x.toml:11:10: bad `secret` in [target.auth]: environment variable `BENCH_TEST_SURELY_UNSET_VAR` is not set (or not UTF-8)",
    ),
    (
        "[target]\nserver_pid = \"1234\"",
        "scenarios/x.toml:11:14: bad `server_pid` in [target]: expected a process id or an array of them, found string",
    ),
    (
        "[target]\nserver_pid = [1234, -1]",
        "scenarios/x.toml:11:21: bad `server_pid` in [target]: -1 is not a process id",
    ),
    (
        "[thresholds]\n\"delivery_latncy.p99\" = \"< 50ms\"",
        "scenarios/x.toml:11:1: bad `delivery_latncy.p99` in [thresholds]: unknown metric `delivery_latncy.p99`; did you mean `delivery_latency.p99`?",
    ),
    (
        "[thresholds]\n\"delivery_latency.p98\" = \"< 50ms\"",
        "scenarios/x.toml:11:1: bad `delivery_latency.p98` in [thresholds]: unknown statistic `p98` of `delivery_latency`; did you mean `p99`?",
    ),
    (
        "[thresholds]\n\"delivery_latency.p99\" = \"< 50\"",
        "scenarios/x.toml:11:26: bad `delivery_latency.p99` in [thresholds]: condition `< 50`: `50` has no unit; latencies need one, e.g. \"< 50ms\"",
    ),
    (
        "[thresholds]\n\"delivery_latency.p99\" = 50",
        "scenarios/x.toml:11:26: bad `delivery_latency.p99` in [thresholds]: expected a condition string like \"< 50ms\", found integer",
    ),
    (
        "[thresholds]\n\"errors.rate\" = \"< 5\"",
        "scenarios/x.toml:11:17: bad `errors.rate` in [thresholds]: condition `< 5`: a rate is a fraction from 0 to 1; write `5%` for a percentage",
    ),
    (
        "[thresholds]\n\"delivery.lost\" = \"= 0\"",
        "scenarios/x.toml:11:19: bad `delivery.lost` in [thresholds]: condition `= 0` must start with <, <=, >, >= or ==, e.g. \"== 0\" (`=` is written `==`; there is no `!=`)",
    ),
    (
        "[thresholds]\nmemory_per_connection = \"<= 2 quarts\"",
        "scenarios/x.toml:11:25: bad `memory_per_connection` in [thresholds]: condition `<= 2 quarts`: `2 quarts` has an unknown size unit `quarts` (use B, KB, MB, GB, KiB, MiB or GiB)",
    ),
    (
        "[thresholds]\n\"throughput.deliveries_per_s\" = \">= 1000/fortnight\"",
        "scenarios/x.toml:11:33: bad `throughput.deliveries_per_s` in [thresholds]: condition `>= 1000/fortnight`: `1000/fortnight` is not a rate: unknown time unit `fortnight`; write e.g. \"0.5/s\", \"30/m\", \"1/10s\" or 0",
    ),
    (
        "[output]\nformats = [\"json\", \"htm\"]",
        "scenarios/x.toml:11:20: bad `formats` in [output]: unknown value \"htm\"; did you mean \"html\"?",
    ),
    (
        "[output]\nformats = [\"html\", \"html\"]",
        "scenarios/x.toml:11:20: bad `formats` in [output]: \"html\" is listed twice",
    ),
    (
        "[output]\ndir = \"\"",
        "scenarios/x.toml:11:7: bad `dir` in [output]: the directory is empty",
    ),
    (
        "[run]\nworkers = 0",
        "scenarios/x.toml:11:11: bad `workers` in [run]: there must be at least 1 worker",
    ),
    (
        "[run]\nsource_addrs = [\"127.0.0.1\", \"127.0.0.300\"]",
        "scenarios/x.toml:11:30: bad `source_addrs` in [run]: \"127.0.0.300\" is not an IP address (e.g. \"127.0.0.2\")",
    ),
    (
        "[run]\nsource_addrs = [\"127.0.0.1\", \"127.0.0.1\"]",
        "scenarios/x.toml:11:30: bad `source_addrs` in [run]: 127.0.0.1 is listed twice",
    ),
    (
        "[run]\nconnect_timeout = \"0\"",
        "scenarios/x.toml:11:19: bad `connect_timeout` in [run]: must be longer than 0",
    ),
    (
        "[run]\nabort_on_connect_failure_share = 1.5",
        "scenarios/x.toml:11:34: bad `abort_on_connect_failure_share` in [run]: 1.5 is not a share in (0, 1]; use false to never abort",
    ),
    (
        "[run]\nabort_on_connect_failure_share = true",
        "scenarios/x.toml:11:34: bad `abort_on_connect_failure_share` in [run]: expected a share like 0.5 or \"50%\" (false to never abort), found boolean",
    ),
    (
        "[run]\nworkres = 2",
        "scenarios/x.toml:11:1: unknown key `workres` in [run]; did you mean `workers`?",
    ),
    (
        "[rooms]\ncount = 2\n[rooms]\ncount = 3",
        "scenarios/x.toml:12:1: invalid TOML: invalid table header; duplicate key `rooms` in document root",
    ),
    (
        "[[stages]\n",
        "scenarios/x.toml:10:9: invalid TOML: invalid table header; expected `.`, `]]`",
    ),
    (
        "[client]\nname = \"x\"",
        "scenarios/x.toml:10:1: unknown key `client` at the top level; did you mean `clients`?",
    ),
    (
        "[target]\nurll = \"ws://h/\"",
        "scenarios/x.toml:11:1: unknown key `urll` in [target]; did you mean `url`?",
    ),
    (
        "[target.servr]\nargs = []",
        "scenarios/x.toml:10:1: unknown key `servr` in [target]; did you mean `server`?",
    ),
    (
        "[output]\nformat = [\"json\"]",
        "scenarios/x.toml:11:1: unknown key `format` in [output]; did you mean `formats`?",
    ),
    (
        "[[clients]]\nname = \"b\"\nreconnect_backoff = { initial = \"0\" }",
        "scenarios/x.toml:12:33: bad `initial` in `reconnect_backoff` of [[clients]]: must be longer than 0 (a zero backoff hammers a failing server)",
    ),
    (
        "[thresholds]\nbogus = \"< 1\"",
        "scenarios/x.toml:11:1: bad `bogus` in [thresholds]: unknown metric `bogus`; write `<latency>.<stat>` (e.g. `delivery_latency.p99`) or a counter such as `errors.rate` or `delivery.lost` (docs/scenario.md lists them all)",
    ),
    (
        "[thresholds]\ndelivery_latency.p99 = \"50ms\"",
        "scenarios/x.toml:11:24: bad `delivery_latency.p99` in [thresholds]: condition `50ms` must start with <, <=, >, >= or ==, e.g. \"< 50ms\"",
    ),
    (
        "[thresholds]\n\"delivery_latency\" = \"< 50ms\"",
        "scenarios/x.toml:11:1: bad `delivery_latency` in [thresholds]: `delivery_latency` needs a statistic, e.g. `delivery_latency.p99`",
    ),
    (
        "[target.server]\nargs = [\"--batch-windw\", \"5ms\"]",
        "scenarios/x.toml:11:8: bad `args` in [target.server]: unexpected argument '--batch-windw' found; a similar argument exists: '--batch-window'",
    ),
    (
        "[target.server]\nargs = [\"--batch-window\", \"5\"]",
        "scenarios/x.toml:11:8: bad `args` in [target.server]: invalid value '5' for '--batch-window <DUR>': invalid duration `5`: missing unit (write e.g. `30s`, `250ms`, `2m`, `1h`)",
    ),
    (
        "[target.server]\nargs = [\"--rate-limit\", \"5\", \"--listen\", \"127.0.0.1:1\"]",
        "scenarios/x.toml:11:30: bad `args` in [target.server]: bench picks the bundled server's address itself (a free loopback port); remove `--listen`",
    ),
    (
        "[[clients]]\nname = \"b\"\nmessage_size = \"1..32KiB\"",
        "scenarios/x.toml:12:16: bad `message_size` in [[clients]]: 32768 bytes is more than the bundled server accepts (--max-text-len 16384): those messages would be rejected with TOO_LARGE; raise it with [target.server] args = [\"--max-text-len\", \"32768\"]",
    ),
    (
        "[rooms]\ncount = 500\nper_client = 101",
        "scenarios/x.toml:12:14: bad `per_client` in [rooms]: 101 is more than the bundled server allows (--max-rooms-per-conn 100); raise it with [target.server] args = [\"--max-rooms-per-conn\", \"101\"]",
    ),
    (
        "[rooms]\nprefix = \"a-very-long-prefix-a-very-long-prefix-a-very-long-prefix-a-very-long-prefix-a-very-long-prefix-a-very-long-prefix-a-very-long-prefix-\"",
        "scenarios/x.toml:11:10: bad `prefix` in [rooms]: room names reach 134 bytes, more than the bundled server allows (--max-room-len 128); use a shorter prefix",
    ),
    (
        "[[stages]]\nduration = \"10s\"\ntarget = 12000",
        "scenarios/x.toml:12:10: bad `target` in [[stages]]: 12000 clients is more than the bundled server accepts (--max-connections 10000); raise it with [target.server] args = [\"--max-connections\", \"12000\"]",
    ),
    (
        "[target.auth]\nsecret = \"abc\"",
        "scenarios/x.toml:10:1: [target.auth] is set but the bundled server does not check tokens; set BENCH_JWT_SECRET (or --jwt-secret in [target.server] args) to the same secret, or remove [target.auth]",
    ),
    (
        "[target.server]\nargs = [\"--jwt-secret\", \"abc\"]",
        "scenarios/x.toml:11:1: the bundled server requires a JWT (--jwt-secret or BENCH_JWT_SECRET) but [target.auth] is not set; add [target.auth] with the same secret",
    ),
    (
        "[target.server]\nargs = [\"--jwt-secret\", \"abc\"]\n[target.auth]\nsecret = \"xyz\"",
        "scenarios/x.toml:13:10: bad `secret` in [target.auth]: differs from the bundled server's --jwt-secret (or BENCH_JWT_SECRET): every connection would be rejected",
    ),
    (
        "[run]\nsource_addrs = [\"127.0.0.2\", \"::1\"]",
        "scenarios/x.toml:11:30: bad `source_addrs` in [run]: ::1 cannot reach the target 127.0.0.1: the address families differ",
    ),
    (
        "[target]\nurl = \"ws://127.0.0.1:9000/\"\n[thresholds]\nmemory_per_connection = \"<= 4KiB\"",
        "scenarios/x.toml:13:1: `memory_per_connection` needs the server to be sampled: set [target] server_pid or server_process (bench samples only servers it starts itself)",
    ),
    (
        "[run]\nsource_addrs = [\"127.0.0.2\", \"10.1.2.3\"]",
        "scenarios/x.toml:11:30: bad `source_addrs` in [run]: 10.1.2.3 cannot reach the target 127.0.0.1: one is a loopback address and the other is not",
    ),
];

/// Put before `BASE`: top-level keys.
const PREPENDED: &[(&str, &str)] = &[
    (
        "bogus = 1",
        "scenarios/x.toml:1:1: unknown key `bogus` at the top level; expected one of `name`, `seed`, `target`, `stages`, `rooms`, `clients`, `thresholds`, `output`, `run`, `faults`",
    ),
    (
        "seed = -1",
        "scenarios/x.toml:1:8: bad `seed` at the top level: integer `-1` is out of range; expected a whole number ≥ 0",
    ),
    (
        "seed = \"x\"",
        "scenarios/x.toml:1:8: bad `seed` at the top level: expected a whole number ≥ 0, found string \"x\"",
    ),
    (
        "stage = 1",
        "scenarios/x.toml:1:1: unknown key `stage` at the top level; did you mean `stages`?",
    ),
    (
        "Name = \"x\"",
        "scenarios/x.toml:1:1: unknown key `Name` at the top level; did you mean `name`?",
    ),
];

/// Whole files.
const WHOLE: &[(&str, &str)] = &[
    (
        "[[clients]]\n",
        "scenarios/x.toml: no [[stages]]; add at least one, e.g.\n  [[stages]]\n  duration = \"30s\"\n  target = 1000",
    ),
    (
        "[[stages]]\nduration = \"1s\"\ntarget = 1\n",
        "scenarios/x.toml: no [[clients]]; add at least one population, e.g.\n  [[clients]]\n  chat_rate = \"0.5/s\"",
    ),
    (
        "stages = []\n[[clients]]\n",
        "scenarios/x.toml:1:1: `stages` is empty; add at least one, e.g.\n  [[stages]]\n  duration = \"30s\"\n  target = 1000",
    ),
    (
        "[[stages]]\nduration = \"0\"\ntarget = 5\n[[clients]]\n",
        "scenarios/x.toml:1:1: the stages last 0s in total; give at least one a `duration`",
    ),
    (
        "[[stages]]\nduration = \"5s\"\ntarget = 0\n[[clients]]\n",
        "scenarios/x.toml:1:1: no stage has any clients: every `target` is 0",
    ),
    (
        "clients = []\n[[stages]]\nduration = \"5s\"\ntarget = 1\n",
        "scenarios/x.toml:1:1: `clients` is empty; add at least one population, e.g.\n  [[clients]]\n  chat_rate = \"0.5/s\"",
    ),
    (
        "name = \"\"\n[[stages]]\nduration = \"1s\"\ntarget = 1\n[[clients]]\n",
        "scenarios/x.toml:1:8: bad `name` at the top level: the name is empty",
    ),
    (
        "name = \"x\"\nname = \"y\"\n",
        "scenarios/x.toml:2:1: invalid TOML: duplicate key `name` in document root",
    ),
    (
        "[[stages]\n",
        "scenarios/x.toml:1:9: invalid TOML: invalid table header; expected `.`, `]]`",
    ),
];

/// `--threshold` flags on top of `BASE`.
const FLAGS: &[(&str, &str)] = &[
    (
        "delivery_latency.p99",
        "--threshold `delivery_latency.p99`: expected <metric><condition>, e.g. 'delivery_latency.p99<50ms'",
    ),
    (
        "delivery_latency.p99<50",
        "--threshold `delivery_latency.p99<50`: condition `<50`: `50` has no unit; latencies need one, e.g. \"< 50ms\"",
    ),
    (
        "dlivery_latency.p99<50ms",
        "--threshold `dlivery_latency.p99<50ms`: unknown metric `dlivery_latency.p99`; did you mean `delivery_latency.p99`?",
    ),
    (
        "errors.rate<200%",
        "--threshold `errors.rate<200%`: condition `<200%`: `200%` is not a percentage from 0% to 100%",
    ),
];

fn check(cases: &[(&str, &str)], render: impl Fn(&str) -> String) {
    let mut wrong = Vec::new();
    for (input, want) in cases {
        let got = render(input);
        if got != *want {
            wrong.push(format!("input: {input:?}\n want: {want}\n  got: {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong messages:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn mistakes_in_tables() {
    check(APPENDED, with);
}

#[test]
fn mistakes_at_the_top_level() {
    check(PREPENDED, top);
}

#[test]
fn mistakes_in_whole_files() {
    check(WHOLE, error);
}

#[test]
fn mistakes_in_threshold_flags() {
    check(FLAGS, |flag| {
        let overrides = PlanOverrides {
            thresholds: vec![flag.to_owned()],
            ..Default::default()
        };
        error_of(BASE, &overrides)
    });
}

#[test]
fn bad_url_flag() {
    let overrides = PlanOverrides {
        target_url: Some("http://127.0.0.1:1/".into()),
        ..Default::default()
    };
    assert_eq!(
        error_of(BASE, &overrides),
        "--url: `http://127.0.0.1:1/` is an HTTP URL; write ws:// or wss:// instead of http://"
    );
}

#[test]
fn errors_name_the_file_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, format!("{BASE}chat_rat = \"1/s\"\n")).unwrap();
    let err = scenario::load(&path, &PlanOverrides::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:10:1: unknown key `chat_rat` in [[clients]]; did you mean `chat_rate`?",
            path.display()
        )
    );
    let missing = dir.path().join("nope.toml");
    let err = scenario::load(&missing, &PlanOverrides::default()).unwrap_err();
    assert!(err.downcast_ref::<UsageError>().is_some());
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read scenario {}", missing.display())));
}

#[test]
fn server_processes_is_checked() {
    let e = with("[target.server]\nprocesses = 0\n");
    assert!(
        e.contains("`processes` in [target.server]") && e.contains("1 to 64"),
        "{e}"
    );
    let e = with("[target.server]\nprocesses = 2\nargs = [\"--processes\", \"3\"]\n");
    assert!(e.contains("keep one"), "{e}");
    let e = with("[target]\nurl = \"ws://127.0.0.1:1/ws\"\n[target.server]\nprocesses = 2\n");
    assert!(e.contains("`processes` in [target.server]"), "{e}");
    let ok = format!("{BASE}[target.server]\nprocesses = 2\n");
    let plan = scenario::parse(&ok, "scenarios/x.toml", None, &PlanOverrides::default()).unwrap();
    assert!(matches!(
        plan.target.endpoint,
        scenario::Endpoint::Bundled { ref args, .. } if args == &["--processes", "2"]
    ));
}

//! Stage two: raw scenario + command-line overrides → validated [`Plan`].
//!
//! Applies defaults, types every value and checks cross-field rules. Each
//! rejection points at the offending key or value (via the document
//! [`Index`]) and says what would be accepted instead. The target and the
//! client populations have their own files.

mod clients;
mod sources;
mod target;
mod tls;
pub use tls::read_certs;

use std::path::PathBuf;
use std::time::Duration;

use wire::units::parse_duration;

use super::diag::{usage, value_suggestion, Source};
use super::keys::{strip_indices, table_display, Index, RawThreshold};
use super::metrics::{parse_threshold, split_flag};
use super::plan::*;
use super::raw::*;
use super::units::{
    parse_optional_duration, parse_rate, parse_size_range, parse_ws_url, size_from_int,
};

/// Defaults, in one place so docs/scenario.md can be checked against them.
pub mod defaults {
    pub const SEED: u64 = 1;
    pub const READY_TIMEOUT: &str = "10s";
    pub const AUTH_TTL: &str = "1h";
    pub const ROOM_COUNT: u32 = 1;
    pub const ROOMS_PER_CLIENT: u32 = 1;
    pub const ROOM_PREFIX: &str = "room-";
    pub const ZIPF_EXPONENT: f64 = 1.0;
    pub const WEIGHT: f64 = 1.0;
    pub const MESSAGE_SIZE: u32 = 64;
    pub const BACKOFF_INITIAL: &str = "500ms";
    pub const BACKOFF_MAX: &str = "30s";
    pub const BACKOFF_JITTER: f64 = 0.5;
    pub const PING_INTERVAL: &str = "10s";
    pub const CONNECT_TIMEOUT: &str = "10s";
    pub const DRAIN: &str = "5s";
    pub const ABORT_ON_CONNECT_FAILURE_SHARE: f64 = 0.5;
    pub const MAX_NOT_READY: f64 = 0.01;
    pub const MAX_UNREACHABLE: &str = "5s";
    pub const OUTPUT_ROOT: &str = "reports";
}

const PROTOCOLS: &[&str] = &["chat", "socketio", "json"];
const AUTH_MODES: &[&str] = &["query", "header", "first_message"];
const DISTRIBUTIONS: &[&str] = &["uniform", "zipf"];
const FORMATS: &[&str] = &["json", "html", "junit", "markdown"];
const FAULT_ACTIONS: &[&str] = &["kill", "restart_graceful", "kill_process", "restart_redis"];

pub struct Validator<'a> {
    pub src: &'a Source<'a>,
    pub index: &'a Index,
    /// The scenario file path, for `Plan::source` and the default name.
    pub path: Option<PathBuf>,
}

type Result<T> = anyhow::Result<T>;

impl Validator<'_> {
    /// `file:L:C: bad `key` in [table]: why`, at the value.
    fn bad(&self, path: &str, why: impl std::fmt::Display) -> anyhow::Error {
        let norm = strip_indices(path);
        let (table, key) = norm.rsplit_once('.').unwrap_or(("", &norm));
        self.src.error(
            self.index.value_span(path),
            format!("bad `{key}` {}: {why}", table_display(table)),
        )
    }

    /// `file:L:C: missing `key` in [table]hint`, at the table header.
    fn missing(&self, table_path: &str, key: &str, hint: &str) -> anyhow::Error {
        let span = self.index.key_span(table_path);
        self.src.error(
            span,
            format!(
                "missing `{key}` {}{hint}",
                table_display(&strip_indices(table_path))
            ),
        )
    }

    /// A cross-field problem, blamed on one key.
    fn at_key(&self, path: &str, message: impl std::fmt::Display) -> anyhow::Error {
        self.src.error(self.index.key_span(path), message)
    }

    fn duration(&self, path: &str, raw: Option<&String>, default: &str) -> Result<Duration> {
        parse_duration(raw.map_or(default, String::as_str)).map_err(|e| self.bad(path, e))
    }

    fn choice<'c>(&self, path: &str, value: &str, choices: &[&'c str]) -> Result<&'c str> {
        choices
            .iter()
            .copied()
            .find(|c| *c == value)
            .ok_or_else(|| {
                self.bad(
                    path,
                    format!(
                        "unknown value \"{value}\"{}",
                        value_suggestion(value, choices)
                    ),
                )
            })
    }

    pub fn plan(&self, raw: RawScenario, overrides: &PlanOverrides) -> Result<Plan> {
        let name = self.name(raw.name)?;
        let seed = overrides.seed.or(raw.seed).unwrap_or(defaults::SEED);
        let (target, bundled) = self.target(raw.target.unwrap_or_default(), overrides)?;
        let stages = self.stages(raw.stages)?;
        let rooms = self.rooms(raw.rooms.unwrap_or_default(), &stages)?;
        let populations = self.populations(raw.clients)?;
        let output = self.output(raw.output.unwrap_or_default(), &name, overrides)?;
        let run = self.run(raw.run.unwrap_or_default(), &target.endpoint)?;
        let processes = bundled.as_ref().map(|c| c.processes);
        if let Some(config) = bundled {
            self.fits_bundled_server(&config, &target, &stages, &rooms, &populations)?;
        }
        self.broadcast_rooms(&target, &rooms)?;
        if let (Protocol::Json, Some(i)) =
            (target.protocol, populations.iter().position(|p| p.resume))
        {
            return Err(self.at_key(
                &format!("clients[{i}].resume"),
                "`resume` needs a server with per-room seqs to resume from; protocol = \"json\" has none",
            ));
        }
        let total: Duration = stages.iter().map(|s| s.duration).sum();
        let faults = self.faults(raw.faults.unwrap_or_default(), &target, total, processes)?;
        Ok(Plan {
            name,
            seed,
            source: self.path.clone(),
            target,
            stages,
            rooms,
            populations,
            thresholds: Vec::new(),
            output,
            run,
            faults,
        })
    }

    /// `[[faults]]`: only for a server bench starts (it must be able to
    /// stop and start it), each within the stages.
    fn faults(
        &self,
        raw: Vec<RawFault>,
        target: &TargetPlan,
        total: Duration,
        processes: Option<usize>,
    ) -> Result<Vec<Fault>> {
        let mut out = Vec::new();
        for (i, f) in raw.into_iter().enumerate() {
            let at_path = format!("faults[{i}].at");
            if matches!(target.endpoint, Endpoint::Url(_)) {
                return Err(self.bad(
                    &format!("faults[{i}].action"),
                    "faults need a server bench starts itself (the bundled server or [target.server] command), not a URL",
                ));
            }
            let Some(at_raw) = f.at.as_ref() else {
                return Err(self.missing(&format!("faults[{i}]"), "at", " (e.g. at = \"5s\")"));
            };
            let at = self.duration(&at_path, Some(at_raw), "0s")?;
            if at >= total {
                return Err(self.bad(&at_path, "must fall within the stages"));
            }
            let action_path = format!("faults[{i}].action");
            let Some(action_raw) = f.action.as_deref() else {
                return Err(self.missing(
                    &format!("faults[{i}]"),
                    "action",
                    " (\"kill\", \"restart_graceful\", \"kill_process\" or \"restart_redis\")",
                ));
            };
            let action = match self.choice(&action_path, action_raw, FAULT_ACTIONS)? {
                "kill" => FaultAction::Kill,
                "kill_process" => FaultAction::KillProcess,
                "restart_redis" => FaultAction::RestartRedis,
                _ => FaultAction::RestartGraceful,
            };
            let restart_path = format!("faults[{i}].restart_after");
            let mut restart_after = match &f.restart_after {
                None => None,
                Some(r) => Some(self.duration(&restart_path, Some(r), "0s")?),
            };
            let process = self.fault_process(i, &f, action, target, processes)?;
            match action {
                FaultAction::KillProcess if restart_after.is_some() => {
                    return Err(self.at_key(
                        &restart_path,
                        "the supervisor starts a killed process again itself; `restart_after` does not apply to kill_process",
                    ))
                }
                FaultAction::RestartRedis => {
                    if target.redis.is_none() {
                        return Err(self.bad(
                            &action_path,
                            "restart_redis needs a redis-server bench starts: add [target.redis]",
                        ));
                    }
                    restart_after.get_or_insert(Duration::from_secs(1));
                }
                _ => {}
            }
            out.push(Fault {
                at,
                action,
                restart_after,
                process,
            });
        }
        out.sort_by_key(|f| f.at);
        Ok(out)
    }

    /// `process` of a fault: only with `kill_process` (default 0), and below
    /// the bundled server's process count. A command is not checked: its
    /// processes are found at run time.
    fn fault_process(
        &self,
        i: usize,
        f: &RawFault,
        action: FaultAction,
        target: &TargetPlan,
        processes: Option<usize>,
    ) -> Result<Option<u32>> {
        let path = format!("faults[{i}].process");
        if action != FaultAction::KillProcess {
            if f.process.is_some() {
                return Err(self.at_key(
                    &path,
                    "`process` applies only with action = \"kill_process\"",
                ));
            }
            return Ok(None);
        }
        let index = f.process.unwrap_or(0);
        if matches!(target.endpoint, Endpoint::Bundled { .. }) {
            let n = processes.unwrap_or(1);
            if n < 2 {
                return Err(self.bad(
                    &format!("faults[{i}].action"),
                    "kill_process needs a server of several processes: set [target.server] processes = 2 or more",
                ));
            }
            if index < 0 || index >= n as i64 {
                return Err(self.bad(
                    &path,
                    format!("must be 0 to {} (the server has {n} processes)", n - 1),
                ));
            }
        } else if index < 0 || index >= i64::from(u16::MAX) {
            return Err(self.bad(&path, "must be a process index, 0 or more"));
        }
        Ok(Some(index as u32))
    }

    fn name(&self, raw: Option<String>) -> Result<String> {
        let name = match raw {
            Some(n) => n,
            None => self
                .path
                .as_ref()
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
        };
        if name.trim().is_empty() {
            return Err(self.bad("name", "the name is empty"));
        }
        Ok(name)
    }

    /// A required array of tables (`[[stages]]`, `[[clients]]`): missing or
    /// empty is an error that shows `example`.
    pub(super) fn required_tables<T>(
        &self,
        raw: Option<Vec<T>>,
        key: &str,
        add: &str,
        example: &str,
    ) -> Result<Vec<T>> {
        match raw {
            None => Err(usage(format!(
                "{}: no [[{key}]]; add {add}, {example}",
                self.src.name
            ))),
            Some(r) if r.is_empty() => {
                Err(self.at_key(key, format!("`{key}` is empty; add {add}, {example}")))
            }
            Some(r) => Ok(r),
        }
    }

    fn stages(&self, raw: Option<Vec<RawStage>>) -> Result<Vec<Stage>> {
        let example = "e.g.\n  [[stages]]\n  duration = \"30s\"\n  target = 1000";
        let raw = self.required_tables(raw, "stages", "at least one", example)?;
        let stages = raw
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("stages[{i}]");
                let duration = s.duration.ok_or_else(|| {
                    self.missing(
                        &at,
                        "duration",
                        " (how long this stage ramps, e.g. \"30s\")",
                    )
                })?;
                let duration = parse_duration(&duration)
                    .map_err(|e| self.bad(&format!("{at}.duration"), e))?;
                let target = s.target.ok_or_else(|| {
                    self.missing(
                        &at,
                        "target",
                        " (the number of connected clients at the end of the stage)",
                    )
                })?;
                Ok(Stage { duration, target })
            })
            .collect::<Result<Vec<_>>>()?;
        if stages.iter().all(|s| s.duration.is_zero()) {
            return Err(self.at_key(
                "stages",
                "the stages last 0s in total; give at least one a `duration`",
            ));
        }
        if stages.iter().all(|s| s.target == 0) {
            return Err(self.at_key("stages", "no stage has any clients: every `target` is 0"));
        }
        Ok(stages)
    }

    /// `size` (members per room) or `count`; with `size` the count is
    /// derived from the stages' peak clients.
    fn room_count(&self, r: &RawRooms, per_client: u32, stages: &[Stage]) -> Result<u32> {
        let Some(size) = r.size else {
            let count = r.count.unwrap_or(defaults::ROOM_COUNT);
            if count == 0 {
                return Err(self.bad("rooms.count", "there must be at least 1 room"));
            }
            return Ok(count);
        };
        if r.count.is_some() {
            return Err(self.at_key(
                "rooms.size",
                "`size` and `count` in [rooms] are exclusive: `count` fixes the number of rooms, `size` fixes the members per room and derives the count from the clients",
            ));
        }
        let peak = stages.iter().map(|s| s.target).max().unwrap_or(0);
        if size == 0 {
            return Err(self.bad("rooms.size", "a room needs at least 1 member"));
        }
        if size > peak {
            return Err(self.bad(
                "rooms.size",
                format!("{size} members per room is more than the clients (peak {peak}); use `count = 1` for one room of everyone"),
            ));
        }
        if r.distribution.as_deref() == Some("zipf") {
            return Err(self.bad(
                "rooms.distribution",
                "`zipf` skews room sizes on purpose, which `size` (every room the same size) rules out; use `count` with zipf",
            ));
        }
        Ok(RoomPlan::count_for(size, per_client, peak))
    }

    fn rooms(&self, r: RawRooms, stages: &[Stage]) -> Result<RoomPlan> {
        let per_client = r.per_client.unwrap_or(defaults::ROOMS_PER_CLIENT);
        if per_client == 0 {
            return Err(self.bad("rooms.per_client", "each client must join at least 1 room"));
        }
        let count = self.room_count(&r, per_client, stages)?;
        if per_client > count {
            return Err(self.bad(
                "rooms.per_client",
                format!("{per_client} is more than `count` ({count}): a client cannot join the same room twice"),
            ));
        }
        let distribution = match self.choice(
            "rooms.distribution",
            r.distribution.as_deref().unwrap_or("uniform"),
            DISTRIBUTIONS,
        )? {
            "zipf" => {
                let exponent = r.exponent.unwrap_or(defaults::ZIPF_EXPONENT);
                if !(exponent.is_finite() && exponent > 0.0) {
                    return Err(self.bad(
                        "rooms.exponent",
                        "the zipf exponent must be greater than 0 (1.0 is classic zipf)",
                    ));
                }
                RoomDistribution::Zipf { exponent }
            }
            _ => {
                if r.exponent.is_some() {
                    return Err(self.at_key(
                        "rooms.exponent",
                        "`exponent` in [rooms] applies only with distribution = \"zipf\"",
                    ));
                }
                RoomDistribution::Uniform
            }
        };
        let prefix = r.prefix.unwrap_or_else(|| defaults::ROOM_PREFIX.into());
        if prefix.chars().any(char::is_control) {
            return Err(self.bad(
                "rooms.prefix",
                "room names cannot contain control characters",
            ));
        }
        Ok(RoomPlan {
            count,
            per_client,
            distribution,
            prefix,
            size: r.size,
        })
    }

    /// Thresholds from the file, then `--threshold` flags (a flag replaces a
    /// file entry on the same metric).
    pub fn thresholds(
        &self,
        raw: Vec<RawThreshold>,
        overrides: &PlanOverrides,
        target: &TargetPlan,
    ) -> Result<Vec<Threshold>> {
        // Server metrics exist only for a server bench starts or is told about;
        // a threshold on them would fail as "not measured" after the whole run.
        let sampled = !matches!(target.endpoint, Endpoint::Url(_))
            || !target.server_pids.is_empty()
            || target.server_process.is_some();
        let unsampled = |metric: &str| {
            (!sampled && (metric.starts_with("server.") || metric == "memory_per_connection")).then(|| {
                format!(
                    "`{metric}` needs the server to be sampled: set [target] server_pid or server_process \
                     (bench samples only servers it starts itself)"
                )
            })
        };
        let mut out: Vec<Threshold> = Vec::new();
        for t in raw {
            let condition = t.condition.map_err(|found| {
                self.src.error(
                    t.value_span.as_ref().or(t.key_span.as_ref()),
                    format!(
                        "bad `{}` in [thresholds]: expected a condition string like \"< 50ms\", found {found}",
                        t.metric
                    ),
                )
            })?;
            let parsed = parse_threshold(&t.metric, &condition).map_err(|why| {
                let span = if why.starts_with("condition") {
                    t.value_span.as_ref()
                } else {
                    t.key_span.as_ref()
                };
                self.src
                    .error(span, format!("bad `{}` in [thresholds]: {why}", t.metric))
            })?;
            if let Some(why) = unsampled(&parsed.metric) {
                return Err(self.src.error(t.key_span.as_ref(), why));
            }
            if out.iter().any(|o| o.metric == parsed.metric) {
                return Err(self.src.error(
                    t.key_span.as_ref(),
                    format!("`{}` appears twice in [thresholds]", parsed.metric),
                ));
            }
            out.push(parsed);
        }
        for flag in &overrides.thresholds {
            let (metric, condition) = split_flag(flag).ok_or_else(|| {
                usage(format!(
                    "--threshold `{flag}`: expected <metric><condition>, e.g. 'delivery_latency.p99<50ms'"
                ))
            })?;
            let parsed = parse_threshold(metric, condition)
                .map_err(|why| usage(format!("--threshold `{flag}`: {why}")))?;
            if let Some(why) = unsampled(&parsed.metric) {
                return Err(usage(format!("--threshold `{flag}`: {why}")));
            }
            match out.iter_mut().find(|o| o.metric == parsed.metric) {
                Some(existing) => *existing = parsed,
                None => out.push(parsed),
            }
        }
        Ok(out)
    }

    fn output(&self, o: RawOutput, name: &str, overrides: &PlanOverrides) -> Result<OutputPlan> {
        let dir = match (&overrides.out_dir, o.dir) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) if d.trim().is_empty() => {
                return Err(self.bad("output.dir", "the directory is empty"))
            }
            (None, Some(d)) => PathBuf::from(d),
            (None, None) => default_output_dir(name, chrono::Utc::now()),
        };
        let mut formats = Vec::new();
        for (i, f) in o
            .formats
            .unwrap_or_else(|| vec!["json".into(), "html".into()])
            .iter()
            .enumerate()
        {
            let at = format!("output.formats[{i}]");
            let format = match self.choice(&at, f, FORMATS)? {
                "json" => Format::Json,
                "html" => Format::Html,
                "junit" => Format::Junit,
                _ => Format::Markdown,
            };
            if formats.contains(&format) {
                return Err(self.bad(&at, format!("\"{f}\" is listed twice")));
            }
            formats.push(format);
        }
        // results.json is the record every other format and `bench report`
        // are built from, so it is always written.
        if !formats.contains(&Format::Json) {
            formats.insert(0, Format::Json);
        }
        Ok(OutputPlan { dir, formats })
    }

    fn run(&self, r: RawRun, endpoint: &Endpoint) -> Result<RunOptions> {
        let workers = match r.workers {
            Some(0) => return Err(self.bad("run.workers", "there must be at least 1 worker")),
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let (source_addrs, source_key) = self.source_addresses(&r, endpoint)?;
        let processes = match r.processes {
            Some(0) => {
                return Err(self.bad(
                    "run.processes",
                    "there must be at least 1 process (leave it out for automatic)",
                ))
            }
            other => other,
        };
        let connect_timeout = self.duration(
            "run.connect_timeout",
            r.connect_timeout.as_ref(),
            defaults::CONNECT_TIMEOUT,
        )?;
        if connect_timeout.is_zero() {
            return Err(self.bad("run.connect_timeout", "must be longer than 0"));
        }
        let drain = self.duration("run.drain", r.drain.as_ref(), defaults::DRAIN)?;
        let abort_on_connect_failure_share = self.share_or_false(
            "run.abort_on_connect_failure_share",
            r.abort_on_connect_failure_share.as_ref(),
            defaults::ABORT_ON_CONNECT_FAILURE_SHARE,
            false,
            "to never abort",
        )?;
        let max_not_ready = self.share_or_false(
            "run.max_not_ready",
            r.max_not_ready.as_ref(),
            defaults::MAX_NOT_READY,
            true,
            "for no bound",
        )?;
        let max_unreachable = match &r.max_unreachable {
            Some(toml::Value::Boolean(false)) => None,
            Some(toml::Value::String(s)) => {
                Some(self.duration("run.max_unreachable", Some(s), defaults::MAX_UNREACHABLE)?)
            }
            None => Some(self.duration("run.max_unreachable", None, defaults::MAX_UNREACHABLE)?),
            Some(other) => {
                return Err(self.bad(
                    "run.max_unreachable",
                    format!(
                        "expected a duration like \"5s\" (false for no bound), found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        let pacing = match r.pacing.as_deref().map(str::trim) {
            None | Some("timerfd") => PacingMode::Timerfd,
            Some("tokio") => PacingMode::Tokio,
            Some(other) => {
                return Err(self.bad(
                    "run.pacing",
                    format!("\"{other}\" is not a pacing mode (\"timerfd\" or \"tokio\")"),
                ))
            }
        };
        Ok(RunOptions {
            workers,
            pacing,
            source_addrs,
            source_key,
            processes,
            connect_timeout,
            drain,
            abort_on_connect_failure_share,
            max_not_ready,
            max_unreachable,
            measure_after: Duration::ZERO,
        })
    }
}

impl Validator<'_> {
    /// A share as `0.5`, `"50%"` or `false` (→ `None`). With `zero_ok`
    /// the share may be 0 (a bound nothing may pass), otherwise in (0, 1].
    fn share_or_false(
        &self,
        path: &str,
        raw: Option<&toml::Value>,
        default: f64,
        zero_ok: bool,
        none_means: &str,
    ) -> Result<Option<f64>> {
        let share = match raw {
            None => default,
            Some(toml::Value::Boolean(false)) => return Ok(None),
            Some(toml::Value::Integer(n)) => *n as f64,
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::String(s)) => s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0)
                .ok_or_else(|| {
                    self.bad(path, format!("\"{s}\" is not a percentage like \"50%\""))
                })?,
            Some(other) => {
                return Err(self.bad(
                    path,
                    format!(
                        "expected a share like 0.5 or \"50%\" (false {none_means}), found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        let low_ok = if zero_ok { share >= 0.0 } else { share > 0.0 };
        if !(low_ok && share <= 1.0) {
            let range = if zero_ok { "[0, 1]" } else { "(0, 1]" };
            return Err(self.bad(
                path,
                format!("{share} is not a share in {range}; use false {none_means}"),
            ));
        }
        Ok(Some(share))
    }
}

/// `reports/<name>-<UTC timestamp>/`, with the name made safe for a path.
pub fn default_output_dir(name: &str, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    PathBuf::from(defaults::OUTPUT_ROOT).join(format!("{safe}-{}", now.format("%Y%m%dT%H%M%SZ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// docs/scenario.md's default column says what `defaults` says.
    #[test]
    fn documented_defaults_match() {
        use defaults::*;
        let docs = include_str!("../../../docs/scenario.md");
        let q = |s: &str| format!("`\"{s}\"`");
        let n = |v: f64| format!("`{v}`");
        let rows: Vec<(&str, String)> = vec![
            ("seed", format!("`{SEED}`")),
            ("ready_timeout", q(READY_TIMEOUT)),
            ("ttl", q(AUTH_TTL)),
            ("count", format!("`{ROOM_COUNT}`")),
            ("per_client", format!("`{ROOMS_PER_CLIENT}`")),
            ("prefix", q(ROOM_PREFIX)),
            ("exponent", format!("`{ZIPF_EXPONENT:.1}`")),
            ("weight", n(WEIGHT)),
            ("message_size", format!("`{MESSAGE_SIZE}`")),
            ("initial", q(BACKOFF_INITIAL)),
            ("max", q(BACKOFF_MAX)),
            ("jitter", n(BACKOFF_JITTER)),
            ("ping_interval", q(PING_INTERVAL)),
            ("connect_timeout", q(CONNECT_TIMEOUT)),
            ("drain", q(DRAIN)),
            (
                "abort_on_connect_failure_share",
                n(ABORT_ON_CONNECT_FAILURE_SHARE),
            ),
            ("max_not_ready", q("1%")),
            ("max_unreachable", q(MAX_UNREACHABLE)),
            ("dir", format!("`{OUTPUT_ROOT}/<name>-<UTC timestamp>/`")),
        ];
        for (key, default) in rows {
            let row = docs.lines().find(|l| {
                l.starts_with(&format!("| `{key}` |")) && l.contains(&format!("| {default} |"))
            });
            assert!(
                row.is_some(),
                "docs/scenario.md: no `{key}` row with default {default}"
            );
        }
    }

    #[test]
    fn default_dir_is_safe_and_timestamped() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            default_output_dir("my run/1", now),
            PathBuf::from("reports/my-run-1-20260102T030405Z")
        );
    }
}

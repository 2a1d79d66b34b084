//! Stage two: raw scenario + command-line overrides → validated [`Plan`].
//!
//! Applies defaults, types every value and checks cross-field rules. Each
//! rejection points at the offending key or value (via the document
//! [`Index`]) and says what would be accepted instead.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reference_server::units::parse_duration;

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
    pub const DRAIN: &str = "2s";
    pub const ABORT_ON_CONNECT_FAILURE_SHARE: f64 = 0.5;
    pub const OUTPUT_ROOT: &str = "reports";
}

const PROTOCOLS: &[&str] = &["chat", "socketio"];
const AUTH_MODES: &[&str] = &["query", "header", "first_message"];
const DISTRIBUTIONS: &[&str] = &["uniform", "zipf"];
const FORMATS: &[&str] = &["json", "html", "junit", "markdown"];

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
        let target = self.target(raw.target.unwrap_or_default(), overrides)?;
        let stages = self.stages(raw.stages)?;
        let rooms = self.rooms(raw.rooms.unwrap_or_default())?;
        let populations = self.populations(raw.clients)?;
        let output = self.output(raw.output.unwrap_or_default(), &name, overrides)?;
        let run = self.run(raw.run.unwrap_or_default())?;
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
        })
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

    fn target(&self, t: RawTarget, overrides: &PlanOverrides) -> Result<TargetPlan> {
        let protocol = match self.choice(
            "target.protocol",
            t.protocol.as_deref().unwrap_or("chat"),
            PROTOCOLS,
        )? {
            "socketio" => Protocol::Socketio,
            _ => Protocol::Chat,
        };
        let server = t.server.unwrap_or_default();
        let endpoint = if let Some(url) = &overrides.target_url {
            // `--url` points at a running server: nothing is started.
            Endpoint::Url(parse_ws_url(url).map_err(|why| usage(format!("--url: {why}")))?)
        } else if let Some(argv) = server.command {
            if argv.is_empty() || argv[0].trim().is_empty() {
                return Err(self.bad(
                    "target.server.command",
                    "the command is empty; write e.g. [\"node\", \"server.js\"]",
                ));
            }
            if server.args.is_some() {
                return Err(self.at_key(
                    "target.server.args",
                    "`args` in [target.server] configures the bundled server; with `command`, put the flags in the command itself",
                ));
            }
            let url = match (&server.url, &t.url) {
                (Some(_), Some(_)) => {
                    return Err(self.at_key(
                        "target.url",
                        "`url` is set in both [target] and [target.server]; keep the one in [target.server]",
                    ))
                }
                (Some(u), None) => parse_ws_url(u).map_err(|why| self.bad("target.server.url", why))?,
                (None, Some(u)) => parse_ws_url(u).map_err(|why| self.bad("target.url", why))?,
                (None, None) => {
                    return Err(self.missing(
                        "target.server",
                        "url",
                        " (where the server started by `command` listens, e.g. \"ws://127.0.0.1:9000/\")",
                    ))
                }
            };
            let ready_timeout = self.duration(
                "target.server.ready_timeout",
                server.ready_timeout.as_ref(),
                defaults::READY_TIMEOUT,
            )?;
            if ready_timeout.is_zero() {
                return Err(self.bad("target.server.ready_timeout", "must be longer than 0"));
            }
            Endpoint::Command {
                argv,
                url,
                ready_timeout,
            }
        } else {
            if server.url.is_some() {
                return Err(self.at_key(
                    "target.server.url",
                    "`url` in [target.server] needs `command`; to use a server that is already running, set [target] url",
                ));
            }
            if server.ready_timeout.is_some() {
                return Err(self.at_key(
                    "target.server.ready_timeout",
                    "`ready_timeout` in [target.server] applies only with `command`",
                ));
            }
            match &t.url {
                Some(url) => {
                    if server.args.is_some() {
                        return Err(self.at_key(
                            "target.server.args",
                            "`args` in [target.server] configures the bundled server, which is not started when [target] url is set",
                        ));
                    }
                    Endpoint::Url(parse_ws_url(url).map_err(|why| self.bad("target.url", why))?)
                }
                None => Endpoint::Bundled {
                    args: server.args.unwrap_or_default(),
                },
            }
        };
        let auth = t.auth.map(|a| self.auth(a)).transpose()?;
        let server_pids = match &t.server_pid {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.pid(&format!("target.server_pid[{i}]"), v))
                .collect::<Result<_>>()?,
            Some(v) => vec![self.pid("target.server_pid", v)?],
        };
        let server_process = match t.server_process {
            Some(p) if p.trim().is_empty() => {
                return Err(self.bad("target.server_process", "the process name is empty"))
            }
            other => other,
        };
        Ok(TargetPlan {
            endpoint,
            protocol,
            auth,
            server_pids,
            server_process,
        })
    }

    fn pid(&self, path: &str, v: &toml::Value) -> Result<u32> {
        match v {
            toml::Value::Integer(n) if *n > 0 && *n <= i64::from(u32::MAX) => Ok(*n as u32),
            toml::Value::Integer(n) => Err(self.bad(path, format!("{n} is not a process id"))),
            other => Err(self.bad(
                path,
                format!(
                    "expected a process id or an array of them, found {}",
                    other.type_str()
                ),
            )),
        }
    }

    fn auth(&self, a: RawAuth) -> Result<AuthPlan> {
        let mode = match self.choice(
            "target.auth.mode",
            a.mode.as_deref().unwrap_or("query"),
            AUTH_MODES,
        )? {
            "header" => AuthMode::Header,
            "first_message" => AuthMode::FirstMessage,
            _ => AuthMode::Query,
        };
        let raw_secret = a.secret.ok_or_else(|| {
            self.missing(
                "target.auth",
                "secret",
                " (the HS256 key, inline or \"env:NAME\")",
            )
        })?;
        let secret = match raw_secret.strip_prefix("env:") {
            Some(var) => std::env::var(var.trim()).map_err(|_| {
                self.bad(
                    "target.auth.secret",
                    format!(
                        "environment variable `{}` is not set (or not UTF-8)",
                        var.trim()
                    ),
                )
            })?,
            None => raw_secret,
        };
        if secret.is_empty() {
            return Err(self.bad("target.auth.secret", "the secret is empty"));
        }
        let ttl = self.duration("target.auth.ttl", a.ttl.as_ref(), defaults::AUTH_TTL)?;
        if ttl < Duration::from_secs(1) {
            return Err(self.bad("target.auth.ttl", "tokens must live at least 1s"));
        }
        Ok(AuthPlan { mode, secret, ttl })
    }

    fn stages(&self, raw: Option<Vec<RawStage>>) -> Result<Vec<Stage>> {
        let example = "e.g.\n  [[stages]]\n  duration = \"30s\"\n  target = 1000";
        let raw = match raw {
            None => {
                return Err(usage(format!(
                    "{}: no [[stages]]; add at least one, {example}",
                    self.src.name
                )))
            }
            Some(r) if r.is_empty() => {
                return Err(self.at_key(
                    "stages",
                    format!("`stages` is empty; add at least one, {example}"),
                ))
            }
            Some(r) => r,
        };
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

    fn rooms(&self, r: RawRooms) -> Result<RoomPlan> {
        let count = r.count.unwrap_or(defaults::ROOM_COUNT);
        if count == 0 {
            return Err(self.bad("rooms.count", "there must be at least 1 room"));
        }
        let per_client = r.per_client.unwrap_or(defaults::ROOMS_PER_CLIENT);
        if per_client == 0 {
            return Err(self.bad("rooms.per_client", "each client must join at least 1 room"));
        }
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
        })
    }

    fn populations(&self, raw: Option<Vec<RawClient>>) -> Result<Vec<Population>> {
        let example = "e.g.\n  [[clients]]\n  chat_rate = \"0.5/s\"";
        let raw = match raw {
            None => {
                return Err(usage(format!(
                    "{}: no [[clients]]; add at least one population, {example}",
                    self.src.name
                )))
            }
            Some(r) if r.is_empty() => {
                return Err(self.at_key(
                    "clients",
                    format!("`clients` is empty; add at least one population, {example}"),
                ))
            }
            Some(r) => r,
        };
        let mut names = HashSet::new();
        let mut pops = Vec::with_capacity(raw.len());
        for (i, c) in raw.into_iter().enumerate() {
            let at = |key: &str| format!("clients[{i}].{key}");
            let name = c.name.unwrap_or_else(|| format!("clients-{}", i + 1));
            if name.trim().is_empty() {
                return Err(self.bad(&at("name"), "the name is empty"));
            }
            if !names.insert(name.clone()) {
                return Err(self.bad(
                    &at("name"),
                    format!("another [[clients]] is already named \"{name}\""),
                ));
            }
            let weight = c.weight.unwrap_or(defaults::WEIGHT);
            if !(weight.is_finite() && weight > 0.0) {
                return Err(self.bad(
                    &at("weight"),
                    format!("{weight} is not greater than 0 (remove a population you do not want)"),
                ));
            }
            let chat_rate = match &c.chat_rate {
                None => 0.0,
                Some(toml::Value::String(s)) => {
                    parse_rate(s).map_err(|why| self.bad(&at("chat_rate"), why))?
                }
                Some(toml::Value::Integer(0)) => 0.0,
                Some(toml::Value::Float(f)) if *f == 0.0 => 0.0,
                Some(toml::Value::Integer(_) | toml::Value::Float(_)) => return Err(self.bad(
                    &at("chat_rate"),
                    "a rate needs a time unit; write e.g. \"0.5/s\" or \"30/m\" (0 for a lurker)",
                )),
                Some(other) => {
                    return Err(self.bad(
                        &at("chat_rate"),
                        format!("expected a rate like \"0.5/s\", found {}", other.type_str()),
                    ))
                }
            };
            let message_size = match &c.message_size {
                None => Ok(SizeRange {
                    min: defaults::MESSAGE_SIZE,
                    max: defaults::MESSAGE_SIZE,
                }),
                Some(toml::Value::Integer(n)) => size_from_int(*n),
                Some(toml::Value::String(s)) => parse_size_range(s),
                Some(other) => Err(format!(
                    "expected a size like 64 or \"32..256\", found {}",
                    other.type_str()
                )),
            }
            .map_err(|why| self.bad(&at("message_size"), why))?;
            let opt_duration = |key: &str,
                                v: Option<&toml::Value>,
                                default: Option<&str>|
             -> Result<Option<Duration>> {
                match (v, default) {
                    (Some(v), _) => {
                        parse_optional_duration(v).map_err(|why| self.bad(&at(key), why))
                    }
                    (None, Some(d)) => Ok(parse_duration(d).ok()),
                    (None, None) => Ok(None),
                }
            };
            let reconnect_every =
                opt_duration("reconnect_every", c.reconnect_every.as_ref(), None)?;
            let ping_interval = opt_duration(
                "ping_interval",
                c.ping_interval.as_ref(),
                Some(defaults::PING_INTERVAL),
            )?;
            let reconnect_backoff = self.backoff(i, c.reconnect_backoff.unwrap_or_default())?;
            pops.push(Population {
                name,
                share: weight,
                chat_rate,
                message_size,
                typing: c.typing.unwrap_or(false),
                reconnect_every,
                reconnect_backoff,
                resume: c.resume.unwrap_or(false),
                ping_interval,
            });
        }
        let total: f64 = pops.iter().map(|p| p.share).sum();
        for p in &mut pops {
            p.share /= total;
        }
        Ok(pops)
    }

    fn backoff(&self, i: usize, b: RawBackoff) -> Result<Backoff> {
        let at = |key: &str| format!("clients[{i}].reconnect_backoff.{key}");
        let initial = self.duration(
            &at("initial"),
            b.initial.as_ref(),
            defaults::BACKOFF_INITIAL,
        )?;
        let max = self.duration(&at("max"), b.max.as_ref(), defaults::BACKOFF_MAX)?;
        if initial.is_zero() {
            return Err(self.bad(
                &at("initial"),
                "must be longer than 0 (a zero backoff hammers a failing server)",
            ));
        }
        if max < initial {
            return Err(self.bad(
                &at("max"),
                format!(
                    "{} is shorter than `initial` ({})",
                    reference_server::units::format_duration(max),
                    reference_server::units::format_duration(initial)
                ),
            ));
        }
        let jitter = b.jitter.unwrap_or(defaults::BACKOFF_JITTER);
        if !(0.0..=1.0).contains(&jitter) {
            return Err(self.bad(
                &at("jitter"),
                format!("{jitter} is not a fraction from 0 to 1"),
            ));
        }
        Ok(Backoff {
            initial,
            max,
            jitter,
        })
    }

    /// Thresholds from the file, then `--threshold` flags (a flag replaces a
    /// file entry on the same metric).
    pub fn thresholds(
        &self,
        raw: Vec<RawThreshold>,
        overrides: &PlanOverrides,
    ) -> Result<Vec<Threshold>> {
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

    fn run(&self, r: RawRun) -> Result<RunOptions> {
        let workers = match r.workers {
            Some(0) => return Err(self.bad("run.workers", "there must be at least 1 worker")),
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let mut source_addrs: Vec<IpAddr> = Vec::new();
        for (i, a) in r.source_addrs.unwrap_or_default().iter().enumerate() {
            let at = format!("run.source_addrs[{i}]");
            let ip: IpAddr = a.trim().parse().map_err(|_| {
                self.bad(
                    &at,
                    format!("\"{a}\" is not an IP address (e.g. \"127.0.0.2\")"),
                )
            })?;
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(self.bad(&at, format!("{ip} cannot be a source address")));
            }
            if source_addrs.contains(&ip) {
                return Err(self.bad(&at, format!("{ip} is listed twice")));
            }
            source_addrs.push(ip);
        }
        let connect_timeout = self.duration(
            "run.connect_timeout",
            r.connect_timeout.as_ref(),
            defaults::CONNECT_TIMEOUT,
        )?;
        if connect_timeout.is_zero() {
            return Err(self.bad("run.connect_timeout", "must be longer than 0"));
        }
        let drain = self.duration("run.drain", r.drain.as_ref(), defaults::DRAIN)?;
        let share_path = "run.abort_on_connect_failure_share";
        let abort_on_connect_failure_share = match &r.abort_on_connect_failure_share {
            None => Some(defaults::ABORT_ON_CONNECT_FAILURE_SHARE),
            Some(toml::Value::Boolean(false)) => None,
            Some(toml::Value::Integer(n)) => Some(*n as f64),
            Some(toml::Value::Float(f)) => Some(*f),
            Some(toml::Value::String(s)) => Some(
                s.trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0)
                    .ok_or_else(|| {
                        self.bad(
                            share_path,
                            format!("\"{s}\" is not a percentage like \"50%\""),
                        )
                    })?,
            ),
            Some(other) => {
                return Err(self.bad(
                    share_path,
                    format!(
                        "expected a share like 0.5 or \"50%\" (false to never abort), found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        if let Some(share) = abort_on_connect_failure_share {
            if !(share > 0.0 && share <= 1.0) {
                return Err(self.bad(
                    share_path,
                    format!("{share} is not a share in (0, 1]; use false to never abort"),
                ));
            }
        }
        Ok(RunOptions {
            workers,
            source_addrs,
            connect_timeout,
            drain,
            abort_on_connect_failure_share,
        })
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

    #[test]
    fn default_dir_is_safe_and_timestamped() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            default_output_dir("my run/1", now),
            PathBuf::from("reports/my-run-1-20260102T030405Z")
        );
    }
}

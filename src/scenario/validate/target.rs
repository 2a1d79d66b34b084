//! Validation of `[target]`: endpoint (URL, bundled server, command),
//! protocol, auth and sampled PIDs, and the plan against the bundled
//! server's limits.

use reference_server::config::Config as ServerConfig;

use crate::scenario::json::{JsonOptions, Membership};
use crate::scenario::socketio::SocketIoOptions;

use super::*;

impl Validator<'_> {
    /// The target, and the bundled server's resolved configuration when
    /// bench is to start it.
    pub(super) fn target(
        &self,
        t: RawTarget,
        overrides: &PlanOverrides,
    ) -> Result<(TargetPlan, Option<ServerConfig>)> {
        let mut bundled = None;
        let protocol = match self.choice(
            "target.protocol",
            t.protocol.as_deref().unwrap_or("chat"),
            PROTOCOLS,
        )? {
            "socketio" => Protocol::Socketio,
            "json" => Protocol::Json,
            _ => Protocol::Chat,
        };
        let server = t.server.unwrap_or_default();
        let server_tls = server.tls;
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
            if server.args.is_some() || server.processes.is_some() {
                let key = if server.args.is_some() {
                    "args"
                } else {
                    "processes"
                };
                return Err(self.at_key(
                    &format!("target.server.{key}"),
                    format!("`{key}` in [target.server] configures the bundled server; with `command`, put the flags in the command itself"),
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
                    if server.args.is_some() || server.processes.is_some() {
                        let key = if server.args.is_some() {
                            "args"
                        } else {
                            "processes"
                        };
                        return Err(self.at_key(
                            &format!("target.server.{key}"),
                            format!("`{key}` in [target.server] configures the bundled server, which is not started when [target] url is set"),
                        ));
                    }
                    Endpoint::Url(parse_ws_url(url).map_err(|why| self.bad("target.url", why))?)
                }
                None => {
                    let mut args = server.args.unwrap_or_default();
                    // The embedded server answers a deflate offer unless told otherwise.
                    if t.deflate
                        .as_ref()
                        .is_some_and(|d| !matches!(d, RawDeflateValue::On(false)))
                        && !args
                            .iter()
                            .any(|a| a == "--deflate" || a.starts_with("--deflate="))
                    {
                        args.push("--deflate".into());
                    }
                    if let Some(n) = server.processes {
                        let max = reference_server::config::MAX_PROCESSES as i64;
                        if !(1..=max).contains(&n) {
                            return Err(self.bad(
                                "target.server.processes",
                                format!("must be 1 to {max} (server processes sharing the port)"),
                            ));
                        }
                        if args
                            .iter()
                            .any(|a| a == "--processes" || a.starts_with("--processes="))
                        {
                            return Err(self.at_key(
                                "target.server.processes",
                                "`processes` is set both here and as `--processes` in `args`; keep one",
                            ));
                        }
                        args.extend(["--processes".to_owned(), n.to_string()]);
                    }
                    let config =
                        crate::scenario::bundled::resolve(&args).map_err(|(at, why)| match at {
                            Some(i) => self.bad(&format!("target.server.args[{i}]"), why),
                            None => self.bad("target.server.args", why),
                        })?;
                    bundled = Some(config);
                    Endpoint::Bundled {
                        args,
                        tls: server_tls.unwrap_or(false),
                    }
                }
            }
        };
        let (secure, self_signed) = match &endpoint {
            Endpoint::Url(u) | Endpoint::Command { url: u, .. } => (u.secure, false),
            Endpoint::Bundled { args, tls } => (
                *tls,
                *tls && !args.iter().any(|a| a.starts_with("--tls-cert")),
            ),
        };
        if server_tls.is_some() && !matches!(endpoint, Endpoint::Bundled { .. }) {
            return Err(self.at_key(
                "target.server.tls",
                "`tls` in [target.server] is for the bundled server; for another server use a wss:// url",
            ));
        }
        let tls = self.tls(t.tls, secure, self_signed)?;
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
        let socketio = match &t.socketio {
            None => None,
            Some(_) if protocol != Protocol::Socketio => {
                return Err(self.at_key(
                    "target.socketio",
                    "[target.socketio] applies only with [target] protocol = \"socketio\"",
                ))
            }
            Some(v) => Some(SocketIoOptions::from_toml(v).map_err(|e| {
                let path = if e.key.is_empty() {
                    "target.socketio".to_owned()
                } else {
                    format!("target.socketio.{}", e.key)
                };
                match e.why.strip_prefix("unknown key") {
                    // Worded and placed like the loader's own unknown keys.
                    Some(hint) => {
                        let (table, key) = path.rsplit_once('.').unwrap_or(("", &path));
                        let at = format!("unknown key `{key}` {}{hint}", table_display(table));
                        self.at_key(&path, at)
                    }
                    None => self.bad(&path, e.why),
                }
            })?),
        };
        let redis = t.redis.map(|r| self.redis(r, &endpoint)).transpose()?;
        let json = self.json_options(t.json.as_ref(), protocol, auth.as_ref())?;
        let deflate = t.deflate.map(|d| self.deflate(d)).transpose()?.flatten();
        if deflate.is_some()
            && socketio
                .as_ref()
                .is_some_and(|o| o.transport == crate::scenario::socketio::Transport::Polling)
        {
            return Err(self.at_key(
                "target.deflate",
                "`deflate` is a WebSocket extension; it does not apply with [target.socketio] transport = \"polling\"",
            ));
        }
        Ok((
            TargetPlan {
                endpoint,
                protocol,
                auth,
                server_pids,
                server_process,
                socketio,
                json,
                deflate,
                redis,
                redis_pids: Vec::new(),
                tls,
            },
            bundled,
        ))
    }

    /// `[target.redis]`: only where bench starts the server too; with the
    /// bundled server bench adds `--redis URL` itself.
    fn redis(&self, r: RawRedis, endpoint: &Endpoint) -> Result<RedisPlan> {
        match endpoint {
            Endpoint::Url(_) => {
                return Err(self.at_key(
                    "target.redis",
                    "[target.redis] starts a redis-server for a server bench starts; with [target] url nothing is started",
                ))
            }
            Endpoint::Bundled { args, .. } => {
                if args.iter().any(|a| a == "--redis" || a.starts_with("--redis=")) {
                    return Err(self.at_key(
                        "target.redis",
                        "[target.redis] gives the bundled server `--redis URL` itself; remove `--redis` from [target.server] args",
                    ));
                }
            }
            Endpoint::Command { .. } => {}
        }
        let url = match (&r.command, r.url) {
            (Some(argv), _) if argv.is_empty() || argv[0].trim().is_empty() => {
                return Err(self.bad(
                    "target.redis.command",
                    "the command is empty; write e.g. [\"redis-server\", \"--port\", \"6390\"]",
                ))
            }
            (Some(_), None) => {
                return Err(self.missing(
                    "target.redis",
                    "url",
                    " (where `command` listens, e.g. \"redis://127.0.0.1:6390\")",
                ))
            }
            (None, Some(_)) => {
                return Err(self.at_key(
                    "target.redis.url",
                    "`url` in [target.redis] needs `command`; without it bench starts redis-server on a free port itself",
                ))
            }
            (Some(_), Some(u)) => {
                if !u.starts_with("redis://") {
                    return Err(self.bad("target.redis.url", "must be redis://HOST:PORT"));
                }
                Some(u)
            }
            (None, None) => None,
        };
        Ok(RedisPlan {
            command: r.command,
            url,
        })
    }

    /// A broadcast-to-all server (`membership = "all"`) has one audience:
    /// exactly one room, which every client is in.
    pub(super) fn broadcast_rooms(&self, target: &TargetPlan, rooms: &RoomPlan) -> Result<()> {
        let all = target
            .json
            .as_ref()
            .is_some_and(|j| j.membership == Membership::All);
        if all && (rooms.count != 1 || rooms.per_client != 1 || rooms.size.is_some()) {
            let key = if rooms.size.is_some() {
                "rooms.size"
            } else if rooms.count != 1 {
                "rooms.count"
            } else {
                "rooms.per_client"
            };
            return Err(self.at_key(
                key,
                format!(
                    "[target.json] membership = \"all\" (a server that broadcasts to every client) needs [rooms] count = 1 and per_client = 1, got count = {} and per_client = {}",
                    rooms.count, rooms.per_client
                ),
            ));
        }
        Ok(())
    }

    /// `[target.json]`: required with `protocol = "json"`, refused otherwise.
    fn json_options(
        &self,
        raw: Option<&toml::Value>,
        protocol: Protocol,
        auth: Option<&AuthPlan>,
    ) -> Result<Option<JsonOptions>> {
        let v = match (raw, protocol) {
            (None, Protocol::Json) => {
                return Err(self.missing(
                    "target",
                    "json",
                    ": protocol = \"json\" needs a [target.json] table with templates and matchers (docs/json.md)",
                ))
            }
            (None, _) => return Ok(None),
            (Some(_), p) if p != Protocol::Json => {
                return Err(self.at_key(
                    "target.json",
                    "[target.json] applies only with [target] protocol = \"json\"",
                ))
            }
            (Some(v), _) => v,
        };
        let o = JsonOptions::from_toml(v).map_err(|e| {
            let path = if e.key.is_empty() {
                "target.json".to_owned()
            } else {
                format!("target.json.{}", e.key)
            };
            match e.why.strip_prefix("unknown key") {
                Some(hint) => {
                    let (table, key) = path.rsplit_once('.').unwrap_or(("", &path));
                    let at = format!("unknown key `{key}` {}{hint}", table_display(table));
                    self.at_key(&path, at)
                }
                None if e.why.starts_with("missing") => {
                    let (table, key) = path.rsplit_once('.').unwrap_or(("", &path));
                    let why = e.why.trim_start_matches("missing").trim_start_matches(':');
                    self.missing(table, key, &format!(":{why}"))
                }
                None => self.bad(&path, e.why),
            }
        })?;
        let first_message = auth.is_some_and(|a| a.mode == AuthMode::FirstMessage);
        if o.hello_has_token() && !first_message {
            return Err(self.bad(
                "target.json.templates.hello",
                "`{token}` needs [target.auth] with mode = \"first_message\" (bench mints the token)",
            ));
        }
        if first_message && !o.hello_has_token() {
            return Err(self.at_key(
                "target.auth",
                "with protocol = \"json\", first-message auth is sent as [target.json.templates] hello; put `{token}` in it",
            ));
        }
        Ok(Some(o))
    }

    /// `deflate = true | false | { ... }`.
    fn deflate(&self, d: RawDeflateValue) -> Result<Option<DeflatePlan>> {
        let p = match d {
            RawDeflateValue::On(on) => return Ok(on.then(DeflatePlan::default)),
            RawDeflateValue::Params(p) => p,
        };
        let bits = |key: &str, v: Option<i64>| -> Result<Option<u8>> {
            match v {
                None => Ok(None),
                Some(b @ 8..=15) => Ok(Some(b as u8)),
                Some(b) => Err(self.bad(
                    &format!("target.deflate.{key}"),
                    format!("{b} is not a window size; RFC 7692 allows 8 to 15"),
                )),
            }
        };
        Ok(Some(DeflatePlan {
            client_no_context_takeover: p.client_no_context_takeover.unwrap_or(false),
            server_no_context_takeover: p.server_no_context_takeover.unwrap_or(false),
            client_max_window_bits: bits("client_max_window_bits", p.client_max_window_bits)?,
            server_max_window_bits: bits("server_max_window_bits", p.server_max_window_bits)?,
        }))
    }

    /// The plan against the bundled server's limits: anything over them
    /// would be rejected frame by frame instead of measured.
    pub(super) fn fits_bundled_server(
        &self,
        config: &ServerConfig,
        target: &TargetPlan,
        stages: &[Stage],
        rooms: &RoomPlan,
        populations: &[Population],
    ) -> Result<()> {
        let raise = |flag: &str, example: &str| {
            format!("raise it with [target.server] args = [\"{flag}\", \"{example}\"]")
        };
        for (i, p) in populations.iter().enumerate() {
            if p.message_size.max as usize > config.max_text_len {
                return Err(self.bad(
                    &format!("clients[{i}].message_size"),
                    format!(
                        "{} bytes is more than the bundled server accepts (--max-text-len {}): those messages would be rejected with TOO_LARGE; {}",
                        p.message_size.max,
                        config.max_text_len,
                        raise("--max-text-len", &format!("{}", p.message_size.max))
                    ),
                ));
            }
        }
        if rooms.per_client as usize > config.max_rooms_per_conn {
            return Err(self.bad(
                "rooms.per_client",
                format!(
                    "{} is more than the bundled server allows (--max-rooms-per-conn {}); {}",
                    rooms.per_client,
                    config.max_rooms_per_conn,
                    raise("--max-rooms-per-conn", &rooms.per_client.to_string())
                ),
            ));
        }
        let longest_room = rooms.prefix.len() + rooms.count.saturating_sub(1).to_string().len();
        if longest_room > config.max_room_len {
            return Err(self.bad(
                "rooms.prefix",
                format!(
                    "room names reach {longest_room} bytes, more than the bundled server allows (--max-room-len {}); use a shorter prefix",
                    config.max_room_len
                ),
            ));
        }
        if let Some((i, peak)) = stages.iter().enumerate().max_by_key(|(_, s)| s.target) {
            if peak.target as usize > config.max_connections {
                return Err(self.bad(
                    &format!("stages[{i}].target"),
                    format!(
                        "{} clients is more than the bundled server accepts (--max-connections {}); {}",
                        peak.target,
                        config.max_connections,
                        raise("--max-connections", &peak.target.to_string())
                    ),
                ));
            }
        }
        match (&config.jwt_secret, &target.auth) {
            (Some(_), None) => Err(self.at_key(
                "target.server.args",
                "the bundled server requires a JWT (--jwt-secret or BENCH_JWT_SECRET) but [target.auth] is not set; add [target.auth] with the same secret",
            )),
            (Some(server), Some(auth)) if *server != auth.secret => Err(self.bad(
                "target.auth.secret",
                "differs from the bundled server's --jwt-secret (or BENCH_JWT_SECRET): every connection would be rejected",
            )),
            (None, Some(_)) => Err(self.at_key(
                "target.auth",
                "[target.auth] is set but the bundled server does not check tokens; set BENCH_JWT_SECRET (or --jwt-secret in [target.server] args) to the same secret, or remove [target.auth]",
            )),
            _ => Ok(()),
        }
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
}

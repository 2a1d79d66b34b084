//! `/metrics` and `/healthz` for the whole server under `--processes N`,
//! whichever process the kernel hands the scrape to.
//!
//! The supervisor gives every child a run directory ([`RUNDIR_ENV`]). Each
//! child listens on a private loopback port (port 0) that serves only its
//! own metrics, and writes that address to `process-I.addr` there. A
//! scrape reads every process's metrics (its own directly, the others'
//! over their private ports) and answers with each series summed across
//! processes plus one `{process="I"}` series per process. A process that
//! does not answer (being restarted) is counted in
//! `server_processes_unreachable` and makes `/healthz` degraded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::server::Shared;

/// Names the supervisor's run directory in a child's environment.
pub const RUNDIR_ENV: &str = "BENCH_SERVER_RUNDIR";
const FETCH_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_BODY: u64 = 1 << 20;

fn rundir() -> Option<PathBuf> {
    std::env::var_os(RUNDIR_ENV).map(PathBuf::from)
}

/// Under a supervisor: binds the private metrics port, publishes it in the
/// run directory and serves it.
pub async fn start(shared: &Arc<Shared>) -> anyhow::Result<Option<JoinHandle<()>>> {
    let (Some(dir), Some(index)) = (rundir(), crate::supervise::process_index()) else {
        return Ok(None);
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tmp = dir.join(format!(".process-{index}.addr"));
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(&tmp, dir.join(format!("process-{index}.addr")))?;
    let shared = shared.clone();
    Ok(Some(tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let body = shared.metrics.render();
            tokio::spawn(async move {
                // One request per connection; its head is not even needed.
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(FETCH_TIMEOUT, s.read(&mut buf)).await;
                let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    })))
}

async fn fetch(addr: &str) -> Option<String> {
    let work = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.ok()?;
        let mut raw = Vec::new();
        (&mut s).take(MAX_BODY).read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (_, body) = text.split_once("\r\n\r\n")?;
        Some(body.to_owned())
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .ok()
        .flatten()
}

/// Every process's metrics text by index; `None` for one that did not answer.
async fn gather(shared: &Shared, dir: &Path) -> BTreeMap<usize, Option<String>> {
    let me = crate::supervise::process_index();
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(i) = name
            .strip_prefix("process-")
            .and_then(|n| n.strip_suffix(".addr"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let text = if Some(i) == me {
            Some(shared.metrics.render())
        } else {
            match std::fs::read_to_string(e.path()) {
                Ok(addr) => fetch(addr.trim()).await,
                Err(_) => None,
            }
        };
        out.insert(i, text);
    }
    out
}

/// `name value` samples of a metrics text (labelled series skipped).
fn samples(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
}

/// The `/metrics` body: this process's own, or the whole server's.
pub async fn metrics(shared: &Shared) -> String {
    let Some(dir) = rundir() else {
        return shared.metrics.render();
    };
    let all = gather(shared, &dir).await;
    let local = shared.metrics.render();
    let mut out = String::with_capacity(local.len() * (all.len() + 1));
    // Which process answered (a plain comment to Prometheus).
    let _ = writeln!(
        out,
        "# answered by process=\"{}\" pid=\"{}\"",
        crate::supervise::process_index().unwrap_or(0),
        std::process::id()
    );
    let mut help = String::new();
    for line in local.lines() {
        if line.starts_with('#') {
            let _ = writeln!(help, "{line}");
            continue;
        }
        let Some((name, _)) = line.split_once(' ') else {
            continue;
        };
        if name.contains('{') {
            // process_info: one line per process below.
            out.push_str(&help);
            help.clear();
            for text in all.values().flatten() {
                for l in text.lines().filter(|l| l.starts_with("process_info{")) {
                    let _ = writeln!(out, "{l}");
                }
            }
            continue;
        }
        out.push_str(&help);
        help.clear();
        let per: Vec<(usize, f64)> = all
            .iter()
            .filter_map(|(i, t)| {
                let t = t.as_deref()?;
                samples(t).find(|(k, _)| *k == name).map(|(_, v)| (*i, v))
            })
            .collect();
        let total: f64 = per.iter().map(|(_, v)| v).sum();
        let _ = writeln!(out, "{name} {total}");
        for (i, v) in per {
            let _ = writeln!(out, "{name}{{process=\"{i}\"}} {v}");
        }
    }
    let unreachable = all.values().filter(|t| t.is_none()).count();
    let _ = writeln!(
        out,
        "# HELP server_processes Server processes that answered this scrape.\n# TYPE server_processes gauge\nserver_processes {}\n# HELP server_processes_unreachable Server processes that did not answer (e.g. being restarted).\n# TYPE server_processes_unreachable gauge\nserver_processes_unreachable {unreachable}",
        all.len() - unreachable
    );
    out
}

/// `/healthz`: `Ok(body)` or `Err(why)` (degraded), for the whole server.
pub async fn health(shared: &Shared) -> Result<String, String> {
    // `bus_up` is rendered only when the process has a bus.
    let bus_down = |text: &str| samples(text).any(|(k, v)| k == "bus_up" && v == 0.0);
    let Some(dir) = rundir() else {
        return match shared.hub.bus() {
            Some(b) if !b.is_up() => Err("degraded: redis bus unreachable".into()),
            _ => Ok("ok".into()),
        };
    };
    let all = gather(shared, &dir).await;
    let missing: Vec<String> = all
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "degraded: process {} not answering",
            missing.join(", ")
        ));
    }
    if all.values().flatten().any(|t| bus_down(t)) {
        return Err("degraded: redis bus unreachable".into());
    }
    Ok(format!("ok ({} processes)", all.len()))
}

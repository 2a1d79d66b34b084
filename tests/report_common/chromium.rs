//! A minimal DevTools-protocol driver for the real headless Chromium:
//! starts the browser on a loopback debugging port, attaches to one page,
//! and records every console message, exception, log entry and network
//! request while the test drives it. Dropping it kills the browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where the Debian `chromium` package puts the browser (`CHROMIUM` overrides).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

pub struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    /// Every event received so far, in order.
    pub events: Vec<Value>,
}

impl Browser {
    /// Starts headless Chromium and opens one blank page.
    pub async fn launch(binary: &Path) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let url = loop {
            let line = lines.next_line().await?.ok_or_else(|| {
                anyhow!(
                    "chromium exited before its DevTools endpoint was up:\n{}",
                    seen.join("\n")
                )
            })?;
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_string();
            }
            seen.push(line);
        };
        // Keep draining stderr so the browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let mut browser = Self {
            _child: child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = browser
            .browser_call("Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .context("no targetId")?
            .to_string();
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        browser.session = attached["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_string();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({})).await?;
        }
        Ok(browser)
    }

    async fn browser_call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.send(None, method, params).await
    }

    /// Calls a method on the attached page.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let session = self.session.clone();
        self.send(Some(session), method, params).await
    }

    async fn send(
        &mut self,
        session: Option<String>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        self.ws.send(Message::Text(msg.to_string().into())).await?;
        loop {
            let v = self.read().await?;
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    bail!("{method} failed: {err}");
                }
                return Ok(v["result"].clone());
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    async fn read(&mut self) -> anyhow::Result<Value> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("DevTools connection closed"),
            }
        }
    }

    /// Waits for the first event named `method` not yet seen after `from`.
    pub async fn wait_event(&mut self, method: &str, from: usize) -> anyhow::Result<Value> {
        loop {
            if let Some(e) = self.events[from.min(self.events.len())..]
                .iter()
                .find(|e| e["method"] == method)
            {
                return Ok(e.clone());
            }
            let v = self.read().await?;
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Navigates and waits for the load event.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<()> {
        let from = self.events.len();
        let nav = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = nav.get("errorText") {
            bail!("navigation to {url} failed: {err}");
        }
        self.wait_event("Page.loadEventFired", from).await?;
        Ok(())
    }

    /// Evaluates an expression in the page and returns its JSON value.
    pub async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            bail!("evaluation threw: {ex}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Sets the viewport (CSS pixels) and whether to emulate a phone.
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await?;
        Ok(())
    }

    /// A PNG of the whole page at the current width.
    pub async fn screenshot_full_page(&mut self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine;
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(1280.0),
            size["height"].as_f64().unwrap_or(1000.0),
        );
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 }
                }),
            )
            .await?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }

    /// Console errors, uncaught exceptions and error log entries (which
    /// include blocked or failed loads and CSP violations) among the events
    /// from index `from` on.
    pub fn problems(&self, from: usize) -> Vec<String> {
        self.events[from.min(self.events.len())..]
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled"
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    Some(format!("console: {}", e["params"]["args"]))
                }
                "Runtime.exceptionThrown" => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                "Log.entryAdded" if e["params"]["entry"]["level"] == "error" => {
                    Some(format!("log: {}", e["params"]["entry"]))
                }
                _ => None,
            })
            .collect()
    }

    /// URLs of every network request the page made, from event `from` on.
    pub fn requests(&self, from: usize) -> Vec<String> {
        self.events[from.min(self.events.len())..]
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(String::from))
            .collect()
    }
}

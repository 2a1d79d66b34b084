//! Engine.IO over HTTP long polling, with a real HTTP client (`reqwest`):
//! a transport, so it lives with the engine's links (`engine::link`) and
//! not in the dialect, which never touches a socket.
//!
//! One task keeps a GET outstanding (the server answers when it has packets
//! or a ping is due); another POSTs outgoing packets, one request at a time
//! (Engine.IO refuses overlapping POSTs) and coalescing whatever queued up
//! meanwhile. Received packets and errors arrive on one channel, so a client
//! loop can `select!` on [`PollingConn::recv`] (cancel-safe) while sending
//! with the non-blocking [`PollingConn::send`]. Correct rather than fast.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dialect::socketio::engineio::{
    decode_polling_payload, encode_polling_payload, request_target, EnginePacket, Handshake,
};

/// How long one request may take: a GET is held by the server for up to
/// pingInterval, so allow that plus the ping timeout and some slack.
fn request_timeout(h: &Handshake) -> Duration {
    h.ping_interval + h.ping_timeout + Duration::from_secs(5)
}

/// The handshake GET was answered with an HTTP error (e.g. 403 from a
/// middleware, 400 when the server does not allow polling).
#[derive(Debug, thiserror::Error)]
#[error("polling handshake: HTTP {status}: {body}")]
pub struct HandshakeStatus {
    pub status: u16,
    pub body: String,
}

#[derive(Debug)]
pub struct PollingConn {
    pub handshake: Handshake,
    /// `http(s)://host:port/path?EIO=4&transport=polling&sid=...&query`.
    url: String,
    inbox: mpsc::UnboundedReceiver<anyhow::Result<Vec<EnginePacket>>>,
    outbox: Option<mpsc::UnboundedSender<Vec<EnginePacket>>>,
    paused: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
}

impl PollingConn {
    /// Performs the polling handshake against `{origin}{path}`, where
    /// `origin` is `http://host:port` or `https://host:port`.
    /// Returns the connection and the packets of the handshake response
    /// (the open packet first), which the caller feeds to its state machine.
    pub async fn open(
        http: &reqwest::Client,
        origin: &str,
        path: &str,
        query: &str,
    ) -> anyhow::Result<(Self, Vec<EnginePacket>)> {
        let first = format!("{origin}{}", request_target(path, query, "polling", None));
        let resp = http
            .get(&first)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("polling handshake GET {first}"))?;
        let status = resp.status();
        let body = resp.bytes().await.context("polling handshake body")?;
        if !status.is_success() {
            return Err(HandshakeStatus {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            }
            .into());
        }
        let packets = decode_polling_payload(body).context("polling handshake payload")?;
        let Some(EnginePacket::Open(json)) = packets.first() else {
            bail!("polling handshake: first packet is not an open packet");
        };
        let handshake = Handshake::parse(json).context("polling handshake")?;
        let url = format!(
            "{origin}{}",
            request_target(path, query, "polling", Some(&handshake.sid))
        );
        let timeout = request_timeout(&handshake);
        let (in_tx, inbox) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let paused = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            http.clone(),
            url.clone(),
            timeout,
            in_tx.clone(),
            Arc::clone(&paused),
        ));
        let writer = tokio::spawn(write_loop(
            http.clone(),
            url.clone(),
            timeout,
            out_rx,
            in_tx,
        ));
        Ok((
            Self {
                handshake,
                url,
                inbox,
                outbox: Some(out_tx),
                paused,
                reader,
                writer: Some(writer),
            },
            packets,
        ))
    }

    pub fn sid(&self) -> &str {
        &self.handshake.sid
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues packets for the next POST. Never blocks.
    pub fn send(&self, packets: Vec<EnginePacket>) -> anyhow::Result<()> {
        if packets.is_empty() {
            return Ok(());
        }
        match &self.outbox {
            Some(tx) => tx
                .send(packets)
                .map_err(|_| anyhow::anyhow!("polling writer has stopped")),
            None => bail!("polling transport was paused for an upgrade"),
        }
    }

    /// The next batch of received packets (one GET response). Cancel-safe.
    pub async fn recv(&mut self) -> anyhow::Result<Vec<EnginePacket>> {
        match self.inbox.recv().await {
            Some(r) => r,
            None => bail!("polling transport closed"),
        }
    }

    /// Upgrade step: stop issuing GETs, let the outstanding one finish (the
    /// server answers it with a noop once the probe succeeded), finish the
    /// POSTs in flight, and return every packet received meanwhile.
    pub async fn pause(mut self, limit: Duration) -> anyhow::Result<Vec<EnginePacket>> {
        self.paused.store(true, Ordering::SeqCst);
        drop(self.outbox.take());
        let writer = self.writer.take();
        let reader = &mut self.reader;
        tokio::time::timeout(limit, async {
            if let Some(w) = writer {
                let _ = w.await;
            }
            let _ = reader.await;
        })
        .await
        .context("polling transport did not pause in time")?;
        let mut packets = Vec::new();
        while let Ok(batch) = self.inbox.try_recv() {
            packets.extend(batch?);
        }
        Ok(packets)
    }
}

impl Drop for PollingConn {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(w) = &self.writer {
            w.abort();
        }
    }
}

async fn read_loop(
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    tx: mpsc::UnboundedSender<anyhow::Result<Vec<EnginePacket>>>,
    paused: Arc<AtomicBool>,
) {
    while !paused.load(Ordering::SeqCst) {
        let result = async {
            let resp = http
                .get(&url)
                .timeout(timeout)
                .send()
                .await
                .context("polling GET")?;
            let status = resp.status();
            let body = resp.bytes().await.context("polling GET body")?;
            if !status.is_success() {
                bail!(
                    "polling GET: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            decode_polling_payload(body).context("polling payload")
        }
        .await;
        let stop = match &result {
            Ok(packets) => packets.iter().any(|p| matches!(p, EnginePacket::Close)),
            Err(_) => true,
        };
        if tx.send(result).is_err() || stop {
            return;
        }
    }
}

async fn write_loop(
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Vec<EnginePacket>>,
    errors: mpsc::UnboundedSender<anyhow::Result<Vec<EnginePacket>>>,
) {
    while let Some(mut packets) = rx.recv().await {
        while let Ok(more) = rx.try_recv() {
            packets.extend(more);
        }
        let body = encode_polling_payload(&packets);
        let result = async {
            let resp = http
                .post(&url)
                .timeout(timeout)
                .header("content-type", "text/plain;charset=UTF-8")
                .body(body)
                .send()
                .await
                .context("polling POST")?;
            let status = resp.status();
            if !status.is_success() {
                let body = resp.bytes().await.unwrap_or_default();
                bail!(
                    "polling POST: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = errors.send(Err(e));
            return;
        }
    }
}

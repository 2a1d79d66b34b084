//! Shared test harness: an in-process server on port 0, a tokio-tungstenite
//! client that unwraps `batch` frames, raw HTTP helpers and JWT minting.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use reference_server::config::ServerArgs;

/// Generous functional timeout for anything the server should do "now".
pub const STEP: Duration = Duration::from_secs(5);
pub const SECRET: &str = "test-secret";

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    args: ServerArgs,
}

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts a server on 127.0.0.1:0 with the given flags (as on the command line).
pub async fn start(flags: &[&str]) -> TestServer {
    let mut argv = vec!["server", "--listen", "127.0.0.1:0"];
    argv.extend_from_slice(flags);
    let config = Flags::try_parse_from(argv)
        .expect("flags parse")
        .args
        .resolve()
        .expect("config resolves");
    let listener = reference_server::server::bind(config.listen).expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(reference_server::server::run(
        listener,
        config,
        async move {
            let _ = rx.await;
        },
    ));
    TestServer {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestServer {
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/ws{}", self.addr, query)
    }

    /// Connects and reads the welcome frame.
    pub async fn client(&self, query: &str) -> (Client, Value) {
        let mut c = Client::connect(&self.url(query), &[])
            .await
            .expect("upgrade");
        let welcome = c.expect("welcome").await;
        (c, welcome)
    }

    /// Connects, reads welcome, joins `room` and reads `joined`.
    pub async fn joined(&self, query: &str, room: &str) -> Client {
        let (mut c, _) = self.client(query).await;
        c.join(room).await;
        c
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("server stops")
            .expect("server task")
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let (status, body) = http_get(self.addr, "/metrics", &[]).await;
        assert_eq!(status, 200);
        metric_value(&body, name).unwrap_or_else(|| panic!("no metric {name} in\n{body}"))
    }

    /// Polls a metric until `pred` holds (bounded by STEP).
    pub async fn wait_metric(&self, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let v = self.metric(name).await;
            if pred(v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "metric {name} stuck at {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub fn metric_value(body: &str, name: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(16 * 1024 * 1024)
        .max_message_size(Some(16 * 1024 * 1024))
        .max_frame_size(Some(16 * 1024 * 1024))
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    /// Raw text of every data frame received (to see batching).
    pub raw_frames: Vec<String>,
}

impl Client {
    pub async fn connect(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true).await?;
        Ok(Client {
            ws,
            pending: VecDeque::new(),
            raw_frames: Vec::new(),
        })
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).await.expect("send");
    }

    /// The next raw WebSocket message (control frames included), or None on timeout.
    pub async fn next_message(&mut self, within: Duration) -> Option<Message> {
        match tokio::time::timeout(within, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(e))) => panic!("websocket error: {e}"),
            Ok(None) => None,
            Err(_) => None,
        }
    }

    /// The next protocol message (batches unwrapped), within `within`.
    pub async fn try_next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_message(left).await? {
                Message::Text(t) => {
                    self.raw_frames.push(t.to_string());
                    let v: Value = serde_json::from_str(&t).expect("server sent JSON");
                    if v["type"] == "batch" {
                        self.pending
                            .extend(v["messages"].as_array().expect("messages").iter().cloned());
                    } else {
                        self.pending.push_back(v);
                    }
                }
                Message::Close(f) => panic!("unexpected close: {f:?}"),
                _ => {}
            }
        }
    }

    pub async fn next(&mut self) -> Value {
        self.try_next(STEP)
            .await
            .expect("a message from the server")
    }

    /// The next message, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.next().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    pub async fn join(&mut self, room: &str) -> Value {
        self.send(json!({"type":"join","room":room})).await;
        let v = self.expect("joined").await;
        assert_eq!(v["room"], room);
        v
    }

    pub async fn chat(&mut self, room: &str, id: Value, text: &str) -> Value {
        self.send(json!({"type":"chat","room":room,"id":id,"text":text,"ts":1.5}))
            .await;
        let ack = self.expect("ack").await;
        assert_eq!(ack["id"], id);
        ack
    }

    /// Round-trips a ping: everything the server queued for us before it has arrived.
    pub async fn barrier(&mut self) -> Vec<Value> {
        let ts = rand_ts();
        self.send(json!({"type":"ping","ts":ts})).await;
        let mut before = Vec::new();
        loop {
            let v = self.next().await;
            if v["type"] == "pong" && v["ts"] == ts {
                return before;
            }
            before.push(v);
        }
    }

    /// Reads until the server's close frame; returns its code. Panics if the
    /// stream ends without one.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => {
                    // Let tungstenite send its queued close reply.
                    let _ = self.ws.flush().await;
                    return f.map_or(1005, |f| u16::from(f.code));
                }
                Ok(Some(Ok(Message::Text(t)))) => self.raw_frames.push(t.to_string()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => panic!("stream error before close frame: {e}"),
                Ok(None) => panic!("stream ended without a close frame"),
                Err(_) => panic!("no close frame within {STEP:?}"),
            }
        }
    }
}

fn rand_ts() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed) as f64 + 0.25
}

/// A plain HTTP/1.1 GET; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An upgrade attempt that the server must refuse: returns status and body.
pub async fn refused(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    match Client::connect(url, headers).await {
        Ok(_) => panic!("upgrade to {url} unexpectedly succeeded"),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `sub`, valid for `ttl_secs` (negative = already expired).
pub fn token(sub: &str, rooms: Option<&[&str]>, ttl_secs: i64) -> String {
    let mut claims = json!({"sub": sub, "exp": (now_secs() as i64 + ttl_secs).max(0)});
    if let Some(r) = rooms {
        claims["rooms"] = json!(r);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A client built on the shared codec, for sending bytes tungstenite would
/// refuse to send (invalid UTF-8) and for not answering pings.
pub struct RawClient {
    pub stream: TcpStream,
    buf: bytes::BytesMut,
    decoder: wire::ws::Decoder,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr, target: &str) -> RawClient {
        Self::connect_with(TcpStream::connect(addr).await.unwrap(), addr, target).await
    }

    /// With a small, fixed receive buffer, so a client that stops reading
    /// backs up into the server quickly (loopback autotuning allows tens of MB).
    pub async fn connect_small_rcvbuf(addr: SocketAddr, target: &str) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Self::connect_with(stream, addr, target).await
    }

    async fn connect_with(mut stream: TcpStream, addr: SocketAddr, target: &str) -> RawClient {
        let buf =
            wire::ws::handshake::client_handshake(&mut stream, &addr.to_string(), target, &[])
                .await
                .expect("handshake");
        RawClient {
            stream,
            buf,
            decoder: wire::ws::Decoder::new(wire::ws::Role::Client, 1 << 24),
        }
    }

    pub async fn send_frame(&mut self, opcode: wire::ws::OpCode, payload: &[u8]) {
        let f = wire::ws::client_frame(opcode, payload);
        self.stream.write_all(&f).await.unwrap();
    }

    /// The next complete message, or None at EOF.
    pub async fn next(&mut self) -> Option<wire::ws::Message> {
        loop {
            if let Some(m) = self
                .decoder
                .decode(&mut self.buf)
                .expect("valid server frames")
            {
                return Some(m);
            }
            let n = tokio::time::timeout(STEP, self.stream.read_buf(&mut self.buf))
                .await
                .expect("server frame in time")
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    /// Like `next`, but a reset connection is an end, not a failure.
    pub async fn next_or_reset(&mut self) -> Option<wire::ws::Message> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(m)) => return Some(m),
                Ok(None) => {}
                Err(_) => return None,
            }
            match tokio::time::timeout(STEP, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return None,
                Err(_) => panic!("no data and no end within {STEP:?}"),
            }
        }
    }

    /// Reads (never answering pings) until a close frame; returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        while let Some(m) = self.next().await {
            if let wire::ws::Message::Close(c) = m {
                return c.map_or(1005, |c| c.code);
            }
        }
        panic!("connection ended without a close frame");
    }
}

/// Starts a server binary and reads its one `listening on HOST:PORT` line;
/// returns the child and that address.
pub fn spawn_listening(server: &mut std::process::Command) -> (std::process::Child, SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = server
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (child, addr)
}

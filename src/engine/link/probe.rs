//! The socket side of `bench probe`: one plain WebSocket connection that
//! optionally sends a few text frames and records what the server sends
//! back, for a bounded number of frames or time. Guessing a `[target.json]`
//! table from them is `crate::probe`'s job; nothing here interprets frames.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::ws::{client_frame, handshake::client_handshake, Decoder, Message, OpCode, Role};

/// One data frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(usize),
}

/// What to do on the connection.
pub struct ProbeSpec<'a> {
    pub addr: SocketAddr,
    pub host: &'a str,
    pub target: &'a str,
    /// Text frames sent right after the upgrade, in order.
    pub send: &'a [String],
    /// Stop after this many data frames...
    pub max_frames: usize,
    /// ...or when no frame came for this long.
    pub idle: Duration,
}

/// Connects, sends, and records up to `max_frames` frames.
pub async fn first_frames(spec: &ProbeSpec<'_>) -> anyhow::Result<Vec<Frame>> {
    let mut stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(spec.addr))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connect {}", spec.addr))?;
    let mut buf = client_handshake(&mut stream, spec.host, spec.target, &[])
        .await
        .with_context(|| format!("WebSocket handshake for {}", spec.target))?;
    for text in spec.send {
        stream
            .write_all(&client_frame(OpCode::Text, text.as_bytes()))
            .await?;
    }
    let mut decoder = Decoder::new(Role::Client, 16 << 20);
    let mut frames = Vec::new();
    while frames.len() < spec.max_frames {
        match decoder.decode(&mut buf)? {
            Some(Message::Text(t)) => {
                frames.push(Frame::Text(String::from_utf8_lossy(&t).into_owned()))
            }
            Some(Message::Binary(b)) => frames.push(Frame::Binary(b.len())),
            Some(Message::Ping(p)) => stream.write_all(&client_frame(OpCode::Pong, &p)).await?,
            Some(Message::Pong(_)) => {}
            Some(Message::Close(_)) => break,
            None => match tokio::time::timeout(spec.idle, stream.read_buf(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e).context("read"),
            },
        }
    }
    let _ = stream
        .write_all(&client_frame(
            OpCode::Close,
            &wire::ws::close_payload(1000, ""),
        ))
        .await;
    Ok(frames)
}

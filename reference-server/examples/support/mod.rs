//! Shared by the example clients: connect from a loopback source address,
//! handshake with the shared codec, wait for a frame type, process stats.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context as _};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wire::protocol::for_each_server_frame;
use wire::ws::deflate::Offer;
use wire::ws::handshake::client_handshake_ext;
use wire::ws::{client_frame, Decoder, Message, OpCode, Role};

pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub dec: Decoder,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
}

/// Connects from 127.0.0.(2 + i % sources), upgrades, and waits for `welcome`.
pub async fn connect(addr: SocketAddr, i: usize, sources: u8, user: &str) -> anyhow::Result<Conn> {
    connect_with(addr, i, sources, user, None).await
}

/// Like [`connect`], offering permessage-deflate when `offer` is set (what
/// the server sends compressed is inflated; what we send stays plain).
pub async fn connect_with(
    addr: SocketAddr,
    i: usize,
    sources: u8,
    user: &str,
    offer: Option<&Offer>,
) -> anyhow::Result<Conn> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % sources.max(1) as usize) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let mut stream = socket.connect(addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let headers: Vec<(String, String)> = offer
        .map(|o| ("Sec-WebSocket-Extensions".to_owned(), o.header_value()))
        .into_iter()
        .collect();
    let (buf, ext) = client_handshake_ext(
        &mut stream,
        &addr.to_string(),
        &format!("/ws?user={user}"),
        &headers,
    )
    .await?;
    let mut dec = Decoder::new(Role::Client, 1 << 24);
    let values: Vec<&str> = ext.iter().map(String::as_str).collect();
    let agreed = match offer {
        Some(o) => o.check_response(&values)?,
        None if !values.is_empty() => bail!("server accepted an extension that was not offered"),
        None => None,
    };
    dec.set_inflater(agreed.map(|a| a.inflater(false)));
    let deflate = agreed.is_some();
    let mut c = Conn {
        stream,
        buf,
        dec,
        deflate,
    };
    c.read_until("welcome").await?;
    Ok(c)
}

impl Conn {
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.stream
            .write_all(&client_frame(OpCode::Text, text.as_bytes()))
            .await?;
        Ok(())
    }

    /// Reads until a frame of `kind` arrives; answers pings on the way.
    pub async fn read_until(&mut self, kind: &str) -> anyhow::Result<()> {
        loop {
            while let Some(msg) = self.dec.decode(&mut self.buf)? {
                match msg {
                    Message::Text(t) => {
                        let mut found = false;
                        for_each_server_frame(&t, |f| found |= f.kind.as_deref() == Some(kind))?;
                        if found {
                            return Ok(());
                        }
                    }
                    Message::Ping(p) => {
                        self.stream
                            .write_all(&client_frame(OpCode::Pong, &p))
                            .await?
                    }
                    Message::Close(c) => bail!("closed by server: {c:?}"),
                    _ => {}
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }

    pub async fn join(&mut self, room: &str) -> anyhow::Result<()> {
        self.send_text(&format!(r#"{{"type":"join","room":"{room}"}}"#))
            .await?;
        self.read_until("joined").await
    }
}

/// VmRSS of a process, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// utime + stime of a process, in seconds.
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after `(comm)`, which may contain spaces.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

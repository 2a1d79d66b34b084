//! Opens many idle, joined connections to a reference server and reports
//! connect+join time and (given `--server-pid`) the server's RSS per
//! connection. Used by `scripts/bench-server-memory`; speaks the shared
//! codec (`reference_server::ws`), not a full load generator.
//!
//! cargo run --release -p reference-server --example connect_many -- \
//!     --addr 127.0.0.1:8080 --connections 15000 --rooms 150 --server-pid PID

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::BytesMut;
use clap::Parser;
use reference_server::protocol::for_each_server_frame;
use reference_server::ws::handshake::client_handshake;
use reference_server::ws::{client_frame, Decoder, Message, OpCode, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};

#[derive(Parser)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Connections to open.
    #[arg(long, default_value_t = 15_000)]
    connections: usize,
    /// Rooms to spread them over (connection i joins room i % rooms).
    #[arg(long, default_value_t = 150)]
    rooms: usize,
    /// Loopback source addresses to spread over (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Keep the connections this long after all joined (seconds).
    #[arg(long, default_value_t = 2.0)]
    hold: f64,
    /// Server process id: report its RSS before and after.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
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
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)` which may contain spaces.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

fn raise_fd_limit() {
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

/// Reads until a frame of `kind` arrives; answers pings on the way.
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    dec: &mut Decoder,
    kind: &str,
) -> anyhow::Result<()> {
    loop {
        while let Some(msg) = dec.decode(buf)? {
            match msg {
                Message::Text(t) => {
                    let mut found = false;
                    for_each_server_frame(&t, |f| found |= f.kind.as_deref() == Some(kind))?;
                    if found {
                        return Ok(());
                    }
                }
                Message::Ping(p) => stream.write_all(&client_frame(OpCode::Pong, &p)).await?,
                Message::Close(c) => bail!("closed by server: {c:?}"),
                _ => {}
            }
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("server closed the connection");
        }
    }
}

async fn one(
    i: usize,
    args: Arc<Args>,
    ready: Arc<AtomicUsize>,
    mut release: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let permit = slots.acquire().await?;
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % args.sources.max(1) as usize) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let mut stream = socket.connect(args.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let host = args.addr.to_string();
    let target = format!("/ws?user=u{i}");
    let mut buf = client_handshake(&mut stream, &host, &target, &[]).await?;
    let mut dec = Decoder::new(Role::Client, 1 << 20);
    read_until(&mut stream, &mut buf, &mut dec, "welcome").await?;
    let join = format!(
        r#"{{"type":"join","room":"room-{}"}}"#,
        i % args.rooms.max(1)
    );
    stream
        .write_all(&client_frame(OpCode::Text, join.as_bytes()))
        .await?;
    read_until(&mut stream, &mut buf, &mut dec, "joined").await?;
    drop(permit);
    ready.fetch_add(1, Ordering::Relaxed);
    // Idle: keep the socket, answer pings, until released.
    buf = BytesMut::new();
    loop {
        tokio::select! {
            _ = release.changed() => return Ok(()),
            r = stream.read_buf(&mut buf) => {
                if r? == 0 {
                    bail!("server closed an idle connection");
                }
                while let Some(msg) = dec.decode(&mut buf)? {
                    if let Message::Ping(p) = msg {
                        stream.write_all(&client_frame(OpCode::Pong, &p)).await?;
                    }
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    raise_fd_limit();
    let args = Arc::new(Args::parse());
    let base = args.server_pid.map(rss_kib).transpose()?;
    let cpu0 = args.server_pid.map(cpu_secs).transpose()?;
    let ready = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        tasks.push(tokio::spawn(one(
            i,
            args.clone(),
            ready.clone(),
            rx.clone(),
            slots.clone(),
        )));
    }
    let deadline = t0 + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < args.connections {
        if Instant::now() > deadline || tasks.iter().any(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let connect_time = t0.elapsed();
    let n = ready.load(Ordering::Relaxed);
    println!(
        "connected+joined {n}/{} in {:.2}s ({:.0}/s)",
        args.connections,
        connect_time.as_secs_f64(),
        n as f64 / connect_time.as_secs_f64()
    );
    if let (Some(pid), Some(cpu0)) = (args.server_pid, cpu0) {
        let used = cpu_secs(pid)? - cpu0;
        println!(
            "server CPU for connect+join: {used:.2}s ({:.0} µs/connection; wall time depends on machine load)",
            used * 1e6 / n.max(1) as f64
        );
    }
    if n < args.connections {
        tx.send(true).ok();
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                bail!("a connection failed: {e:#}");
            }
        }
        bail!("only {n} of {} connections joined", args.connections);
    }
    // Let allocator and kernel settle before sampling.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(pid), Some(base)) = (args.server_pid, base) {
        let after = rss_kib(pid)?;
        let delta = after.saturating_sub(base);
        println!(
            "server RSS {base} KiB -> {after} KiB: +{delta} KiB for {n} connections = {:.2} KiB/connection",
            delta as f64 / n as f64
        );
    }
    tokio::time::sleep(Duration::from_secs_f64(args.hold.max(0.0))).await;
    tx.send(true).ok();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

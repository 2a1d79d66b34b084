//! Opens many idle, joined connections to a reference server and reports
//! connect+join time and (given `--server-pid`) the server's RSS per
//! connection and CPU for the connect phase. Used by
//! `scripts/bench-server-memory`; a measuring aid, not a load generator.
//!
//! cargo run --release -p reference-server --example connect_many -- \
//!     --addr 127.0.0.1:8080 --connections 15000 --rooms 150 --server-pid PID

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use wire::ws::{client_frame, Message, OpCode};

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
    /// Server process id: report its RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Offer permessage-deflate (the server's flags decide context takeover).
    #[arg(long)]
    deflate: bool,
}

/// Connections on which permessage-deflate was negotiated.
static DEFLATED: AtomicUsize = AtomicUsize::new(0);

async fn one(
    i: usize,
    args: Arc<Args>,
    ready: Arc<AtomicUsize>,
    mut release: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let permit = slots.acquire().await?;
    let offer = args.deflate.then(wire::ws::deflate::Offer::default);
    let user = format!("u{i}");
    let mut c = support::connect_with(args.addr, i, args.sources, &user, offer.as_ref()).await?;
    c.join(&format!("room-{}", i % args.rooms.max(1))).await?;
    drop(permit);
    if c.deflate {
        DEFLATED.fetch_add(1, Ordering::Relaxed);
    }
    ready.fetch_add(1, Ordering::Relaxed);
    // Idle: keep the socket, answer pings, until released.
    // Shrink the buffer, but keep bytes already read: presence frames for
    // later joiners can arrive right behind `joined`, possibly half a frame.
    c.buf = bytes::BytesMut::from(&c.buf[..]);
    loop {
        tokio::select! {
            _ = release.changed() => return Ok(()),
            r = c.stream.read_buf(&mut c.buf) => {
                if r? == 0 {
                    bail!("server closed an idle connection");
                }
                while let Some(msg) = c.dec.decode(&mut c.buf)? {
                    if let Message::Ping(p) = msg {
                        c.stream.write_all(&client_frame(OpCode::Pong, &p)).await?;
                    }
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::raise_fd_limit();
    let args = Arc::new(Args::parse());
    let base = args.server_pid.map(support::rss_kib).transpose()?;
    let cpu0 = args.server_pid.map(support::cpu_secs).transpose()?;
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
    if args.deflate {
        println!(
            "permessage-deflate negotiated on {}/{n} connections",
            DEFLATED.load(Ordering::Relaxed)
        );
    }
    if let (Some(pid), Some(cpu0)) = (args.server_pid, cpu0) {
        let used = support::cpu_secs(pid)? - cpu0;
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
        let after = support::rss_kib(pid)?;
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

//! Fan-out throughput of a reference server: ROOMS × MEMBERS connections,
//! one paced sender per room, every other member counts deliveries and
//! their latency from the *intended* send time. A measuring aid for
//! `scripts/bench-server-fanout` until `bench run` covers it; the client
//! shares the machine, so its own CPU use caps what it can observe.
//!
//! cargo run --release -p reference-server --example fanout -- \
//!     --addr 127.0.0.1:8080 --rooms 100 --members 100 --rate 101 --seconds 10

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use wire::ws::{client_frame, Message, OpCode};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Connections per room (one of them sends).
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Chat messages per second per room.
    #[arg(long, default_value_t = 101.0)]
    rate: f64,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Chat text length in bytes.
    #[arg(long, default_value_t = 32)]
    text: usize,
    #[arg(long, default_value_t = 4)]
    sources: u8,
    #[arg(long)]
    server_pid: Option<u32>,
    /// Offer permessage-deflate (the server's flags decide context takeover).
    #[arg(long)]
    deflate: bool,
    /// Chat text of English-like words instead of `xxx…` (which compresses
    /// unrealistically well).
    #[arg(long)]
    prose: bool,
}

/// Deterministic word salad of `len` bytes, different per message.
fn prose(len: usize, seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "the", "meeting", "moved", "to", "three", "o'clock", "see", "you", "there", "thanks", "ok",
        "sounds", "good", "deploy", "finished", "tomorrow",
    ];
    let mut s = String::with_capacity(len + 16);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(WORDS[(x % 16) as usize]);
        s.push(' ');
    }
    s.truncate(len);
    s
}

/// Log-linear latency histogram (µs): 8 sub-buckets per power of two.
#[derive(Clone)]
struct Hist([u64; 512]);

impl Hist {
    fn new() -> Self {
        Hist([0; 512])
    }
    fn index(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let e = 63 - us.leading_zeros() as usize; // >= 3
        ((e - 2) * 8 + ((us >> (e - 3)) & 7) as usize).min(511)
    }
    fn upper(idx: usize) -> u64 {
        if idx < 8 {
            return idx as u64;
        }
        let e = idx / 8 + 2;
        let sub = (idx % 8) as u64;
        ((8 + sub + 1) << (e - 3)) - 1
    }
    fn record(&mut self, us: u64) {
        self.0[Self::index(us)] += 1;
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }
    fn count(&self) -> u64 {
        self.0.iter().sum()
    }
    fn quantile(&self, q: f64) -> u64 {
        let target = (self.count() as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return Self::upper(i);
            }
        }
        0
    }
}

struct Shared {
    base: Instant,
    measuring: AtomicBool,
    stop: AtomicBool,
    hist: Mutex<Hist>,
    deliveries: AtomicUsize,
    ready: AtomicUsize,
}

fn now_us(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// Counts chat messages in one (possibly batched) text frame and records
/// each one's latency from its `ts`, without a full JSON parse.
fn scan(text: &[u8], now: u64, hist: &mut Hist) -> usize {
    let s = std::str::from_utf8(text).unwrap_or("");
    let mut n = 0;
    for (pos, _) in s.match_indices("\"ts\":") {
        if !s[..pos].ends_with(',') {
            continue;
        }
        let digits: &str = s[pos + 5..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("");
        if let Ok(ts) = digits.parse::<u64>() {
            hist.record(now.saturating_sub(ts));
            n += 1;
        }
    }
    n
}

async fn member(
    i: usize,
    args: Arc<Args>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let room = format!("fan-{}", i / args.members);
    let sender = i % args.members == 0;
    let permit = slots.acquire().await?;
    let offer = args.deflate.then(wire::ws::deflate::Offer::default);
    let user = format!("f{i}");
    let mut c = support::connect_with(args.addr, i, args.sources, &user, offer.as_ref()).await?;
    anyhow::ensure!(
        c.deflate == args.deflate,
        "permessage-deflate was not negotiated"
    );
    c.join(&room).await?;
    drop(permit);
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let mut hist = Hist::new();
    let mut count = 0usize;
    let text = "x".repeat(args.text);
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut next_send: Option<tokio::time::Instant> = None;
    let mut seq = 0u64;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let start_sending =
            sender && shared.ready.load(Ordering::Relaxed) >= args.rooms * args.members;
        if start_sending && next_send.is_none() {
            // Spread the rooms' send phases over one period.
            let phase = period.mul_f64((i / args.members) as f64 / args.rooms as f64);
            next_send = Some(tokio::time::Instant::now() + phase);
        }
        let wake =
            next_send.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_millis(50));
        if c.buf.capacity() - c.buf.len() < 4096 {
            c.buf.reserve(16 * 1024);
        }
        tokio::select! {
            r = c.stream.read_buf(&mut c.buf) => {
                if r? == 0 {
                    anyhow::bail!("server closed");
                }
                let now = now_us(shared.base);
                while let Some(msg) = c.dec.decode(&mut c.buf)? {
                    match msg {
                        Message::Text(t) if !sender && shared.measuring.load(Ordering::Relaxed) => {
                            count += scan(&t, now, &mut hist);
                        }
                        Message::Ping(p) => c.stream.write_all(&client_frame(OpCode::Pong, &p)).await?,
                        _ => {}
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if let Some(t) = next_send {
                    // Intended send time, so a stalled sender does not hide latency.
                    let intended = (t.into_std() - shared.base).as_micros() as u64;
                    seq += 1;
                    let text = if args.prose { prose(args.text, seq + i as u64) } else { text.clone() };
                    let frame = format!(
                        r#"{{"type":"chat","room":"{room}","id":{seq},"text":"{text}","ts":{intended}}}"#
                    );
                    c.stream.write_all(&client_frame(OpCode::Text, frame.as_bytes())).await?;
                    next_send = Some(t + period);
                }
            }
        }
    }
    shared.deliveries.fetch_add(count, Ordering::Relaxed);
    shared.hist.lock().unwrap().merge(&hist);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::raise_fd_limit();
    let args = Arc::new(Args::parse());
    let total = args.rooms * args.members;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        hist: Mutex::new(Hist::new()),
        deliveries: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
    });
    let slots = Arc::new(Semaphore::new(256));
    let tasks: Vec<_> = (0..total)
        .map(|i| tokio::spawn(member(i, args.clone(), shared.clone(), slots.clone())))
        .collect();
    let t0 = Instant::now();
    while shared.ready.load(Ordering::Relaxed) < total {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "connect phase timed out"
        );
        if tasks.iter().any(|t| t.is_finished()) {
            anyhow::bail!("a member failed while connecting");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "{total} connections joined in {:.2}s",
        t0.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let cpu0 = args.server_pid.map(support::cpu_secs).transpose()?;
    shared.measuring.store(true, Ordering::Relaxed);
    let m0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let measured = m0.elapsed().as_secs_f64();
    let cpu = match (args.server_pid, cpu0) {
        (Some(pid), Some(c0)) => Some(support::cpu_secs(pid)? - c0),
        _ => None,
    };
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let hist = shared.hist.lock().unwrap().clone();
    let got = shared.deliveries.load(Ordering::Relaxed) as f64;
    let intended = args.rate * args.rooms as f64 * (args.members - 1) as f64;
    println!(
        "deliveries: {:.0}/s observed (intended {:.0}/s) over {measured:.1}s",
        got / measured,
        intended
    );
    println!(
        "latency from intended send: p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        hist.quantile(0.5),
        hist.quantile(0.99),
        hist.quantile(0.999),
        hist.quantile(1.0)
    );
    if let Some(cpu) = cpu {
        println!("server CPU: {:.2} cores", cpu / measured);
        let sent = args.rate * args.rooms as f64 * measured;
        println!(
            "server CPU per chat message: {:.1} µs; per delivery: {:.2} µs",
            cpu * 1e6 / sent.max(1.0),
            cpu * 1e6 / got.max(1.0)
        );
    }
    Ok(())
}

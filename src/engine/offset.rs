//! A shard's clock offset to the target, NTP-style, recorded per shard so
//! `bench merge` can flag shards whose clocks disagree (fan-out latency
//! across hosts subtracts one host's send time from another's receive time).
//!
//! Before its clients start, a shard opens one probe connection and sends
//! [`PROBES`] v1 pings. A `pong` that carries the server's clock (`now_us`,
//! sent by the bundled reference server) gives, for a ping sent at `t0` and
//! its pong received at `t1`, offset = `now_us − (t0 + t1) / 2`, good to
//! ± (t1 − t0) / 2; the probe with the shortest round trip wins. A target
//! whose pong has no server clock (other servers), needs auth, or does not
//! answer gives no estimate, and nothing is checked for that shard.
//!
//! [`OFFSET_ENV`] replaces the probe with a given value (tests inject
//! offsets with it; operators may pass an offset measured otherwise).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wire::protocol::{decode_server_message, ClientMsg, Received, Scalar};
use wire::ws::{client_frame, Decoder, Message, OpCode, Role};

use super::stream::ClockEstimate;
use super::target::Target;

/// Records this offset (µs, target clock minus shard clock) instead of
/// probing, optionally as `offset_us/rtt_us`.
pub const OFFSET_ENV: &str = "BENCH_CLOCK_OFFSET_US";
/// Pings per probe.
pub const PROBES: u32 = 5;
/// The whole probe gives up after this.
const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// The clock estimate of this shard against `target`, if one can be made.
pub async fn estimate(target: &Target) -> Option<ClockEstimate> {
    if let Ok(raw) = std::env::var(OFFSET_ENV) {
        return injected(&raw);
    }
    timeout(PROBE_LIMIT, probe(target)).await.ok().flatten()
}

fn injected(raw: &str) -> Option<ClockEstimate> {
    let (off, rtt) = match raw.split_once('/') {
        Some((o, r)) => (o.trim().parse().ok()?, r.trim().parse().ok()?),
        None => (raw.trim().parse().ok()?, 0),
    };
    Some(ClockEstimate {
        offset_us: off,
        rtt_us: rtt,
        probes: 0,
    })
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One NTP-style sample: (offset, round trip) from send, server and receive times.
pub fn sample(t0: u64, server: u64, t1: u64) -> (i64, u64) {
    let mid = (t0 as i128 + t1 as i128) / 2;
    ((server as i128 - mid) as i64, t1.saturating_sub(t0))
}

async fn probe(target: &Target) -> Option<ClockEstimate> {
    let mut stream = TcpStream::connect(target.addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let host = format!("{}:{}", target.url.host, target.url.port);
    let sep = if target.url.path.contains('?') {
        '&'
    } else {
        '?'
    };
    let path = format!("{}{sep}user=bench-clock-probe", target.url.path);
    let mut buf = wire::ws::handshake::client_handshake(&mut stream, &host, &path, &[])
        .await
        .ok()?;
    let mut decoder = Decoder::new(Role::Client, 1 << 20);
    let mut best: Option<ClockEstimate> = None;
    for _ in 0..PROBES {
        let t0 = now_us();
        let ping = ClientMsg::Ping {
            ts: Scalar::Uint(t0),
        }
        .to_json();
        stream
            .write_all(&client_frame(OpCode::Text, ping.as_bytes()))
            .await
            .ok()?;
        let server = read_pong(&mut stream, &mut decoder, &mut buf, t0).await?;
        let (offset_us, rtt_us) = sample(t0, server, now_us());
        if best.is_none_or(|b| rtt_us < b.rtt_us) {
            best = Some(ClockEstimate {
                offset_us,
                rtt_us,
                probes: PROBES,
            });
        }
    }
    let _ = stream.shutdown().await;
    best
}

/// Reads until the pong for `t0`; its server clock, or `None` when the
/// server sends no clock (or the connection ends).
async fn read_pong(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    t0: u64,
) -> Option<u64> {
    loop {
        while let Some(msg) = decoder.decode(buf).ok()? {
            let Message::Text(text) = msg else { continue };
            let mut found: Option<Option<u64>> = None;
            let _ = decode_server_message(&text, |r| {
                if let Received::Pong { ts_us, now_us } = r {
                    if ts_us == Some(t0) {
                        found = Some(now_us);
                    }
                }
            });
            if let Some(server) = found {
                return server;
            }
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_style_sample_and_injection() {
        // Sent at 1000, server stamped 1600 (its clock 100 ahead of ours at the midpoint 1500).
        assert_eq!(sample(1_000, 1_600, 2_000), (100, 1_000));
        assert_eq!(sample(1_000, 900, 2_000), (-600, 1_000));
        assert_eq!(
            injected("1500/100"),
            Some(ClockEstimate {
                offset_us: 1500,
                rtt_us: 100,
                probes: 0
            })
        );
        assert_eq!(injected("-7").map(|c| c.offset_us), Some(-7));
        assert!(injected("x").is_none());
    }
}

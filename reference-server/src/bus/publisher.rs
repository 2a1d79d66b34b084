//! Sequences and publishes chats (the sender's ack normally comes from the
//! subscriber, in order with the room's deliveries; see
//! `Hub::bus_needs_direct_ack`): every waiting chat (up to [`MAX_BATCH`])
//! goes out in one pipeline of `EVALSHA` calls, one batch in flight at a
//! time, so a connection's chats are sequenced in the order it sent them.
//! Each pipeline starts with `SCRIPT LOAD`, so a restarted (empty) Redis
//! never answers NOSCRIPT. A failed batch is counted and each sender gets
//! `UNAVAILABLE` instead of an ack: those chats never got a seq, so no
//! member can miss them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::{script, ChatCmd};
use crate::hub::encode;
use crate::metrics;
use crate::server::Shared;
use wire::protocol::ServerFrame;

const MAX_BATCH: usize = 512;
const RETRY_AFTER: Duration = Duration::from_millis(200);

pub async fn run(client: redis::Client, mut rx: mpsc::Receiver<ChatCmd>, shared: Arc<Shared>) {
    let sha = redis::Script::new(script::CHAT).get_hash().to_owned();
    let history_len = shared.config.history_len;
    let m = &shared.metrics;
    let mut conn: Option<MultiplexedConnection> = None;
    // The subscriber's reconnect count when `conn` was made: once it moves,
    // Redis went away and `conn` is dead, so it is replaced before use
    // (never after a failed send, which could publish a batch twice).
    let mut generation = 0u64;
    let mut down_since: Option<Instant> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let current = m
            .bus_reconnects_total
            .load(std::sync::atomic::Ordering::Relaxed);
        if current != generation {
            conn = None;
            down_since = None;
        }
        if conn.is_none() && down_since.is_none_or(|t| t.elapsed() >= RETRY_AFTER) {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => {
                    conn = Some(c);
                    generation = current;
                    down_since = None;
                }
                Err(e) => {
                    tracing::debug!("bus publisher cannot connect: {e}");
                    down_since = Some(Instant::now());
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            shared.hub.bus_refuse(&batch);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(script::CHAT).ignore();
        for cmd in &batch {
            let k = script::keys(&cmd.room);
            pipe.cmd("EVALSHA")
                .arg(&sha)
                .arg(2)
                .arg(&k.seq)
                .arg(&k.history)
                .arg(history_len)
                .arg(&k.channel)
                .arg(&cmd.body);
        }
        let t0 = Instant::now();
        match pipe.query_async::<Vec<u64>>(c).await {
            Ok(seqs) if seqs.len() == batch.len() => {
                let us = t0.elapsed().as_micros() as u64;
                metrics::add(&m.bus_rtt_us_sum, us);
                metrics::inc(&m.bus_rtt_count);
                metrics::add(&m.bus_published_total, seqs.len() as u64);
                for (cmd, seq) in batch.iter().zip(seqs) {
                    // Usually the subscriber acks, in the room's order.
                    if shared.hub.bus_needs_direct_ack(&cmd.room, seq) {
                        let ack = encode(&ServerFrame::Ack { id: &cmd.id, seq });
                        shared.hub.reply(&cmd.peer, ack);
                    }
                }
            }
            Ok(seqs) => {
                tracing::warn!(
                    got = seqs.len(),
                    sent = batch.len(),
                    "bus: short pipeline reply"
                );
                shared.hub.bus_refuse(&batch);
            }
            Err(e) => {
                tracing::warn!("bus publish failed: {e}");
                shared.hub.bus_refuse(&batch);
                conn = None;
                down_since = Some(Instant::now());
            }
        }
        batch.clear();
    }
}

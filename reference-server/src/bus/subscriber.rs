//! The node's pub/sub side: one task, one pub/sub connection, the only
//! place that delivers chat to local members.
//!
//! Order: Redis pushes a channel's messages to one subscriber connection
//! in PUBLISH order, which the script makes seq order, and this task
//! handles them one at a time; so no reordering buffer is needed. The room
//! keeps the last seq delivered: a seq at or below it is a duplicate
//! (dropped), one above it + 1 is a gap (only after a lost connection),
//! refilled from the room's history in Redis.
//!
//! Joining: a room's first local member makes this task SUBSCRIBE, then
//! GET the room's seq `s`, then activate the room at `s` (members get
//! `joined{seq: s}`). Every message with seq > `s` was published after the
//! GET, hence after the subscription, so it arrives; those ≤ `s` are dropped.
//!
//! Reconnect: with backoff; every room is subscribed again and caught up
//! from history (what history no longer holds is counted lost).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::envelope::{self, Decoded, Reject};
use super::{script, Ctl};
use crate::hub::{encode, BusOutcome};
use crate::metrics;
use crate::server::Shared;
use wire::protocol::ServerFrame;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Channels per SUBSCRIBE when resubscribing after a reconnect.
const SUBSCRIBE_CHUNK: usize = 256;

type RedisResult<T> = Result<T, redis::RedisError>;

struct Conn {
    sink: PubSubSink,
    stream: PubSubStream,
    cmd: MultiplexedConnection,
}

async fn connect(client: &redis::Client) -> RedisResult<Conn> {
    let (sink, stream) = client.get_async_pubsub().await?.split();
    let cmd = client.get_multiplexed_async_connection().await?;
    Ok(Conn { sink, stream, cmd })
}

struct Node {
    shared: Arc<Shared>,
    node: Arc<str>,
    /// Rooms this node wants subscribed (has local members).
    rooms: HashSet<Arc<str>>,
}

pub async fn run(
    client: redis::Client,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    shared: Arc<Shared>,
    node: Arc<str>,
) {
    let mut me = Node {
        shared,
        node,
        rooms: HashSet::new(),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut retry: Option<Ctl> = None;
    let mut connected_before = false;
    loop {
        let mut conn = match connect(&client).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("bus: cannot connect: {e}");
                // Requests made while down are kept in order in `ctl`.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if let Err(e) = me.resubscribe(&mut conn).await {
            tracing::warn!("bus: resubscribe failed: {e}");
            continue;
        }
        let m = &me.shared.metrics;
        if connected_before {
            metrics::inc(&m.bus_reconnects_total);
            tracing::warn!("bus: reconnected to Redis");
        }
        connected_before = true;
        backoff = FIRST_BACKOFF;
        m.bus_up.store(1, Ordering::Relaxed);
        // `None`: the hub is gone (shutdown); `Some(e)`: Redis was lost.
        let lost = async {
            if let Some(c) = retry.take() {
                if let Err(e) = me.handle(&mut conn, &c).await {
                    retry = Some(c);
                    return Some(e);
                }
            }
            loop {
                tokio::select! {
                    c = ctl.recv() => {
                        let c = c?;
                        if let Err(e) = me.handle(&mut conn, &c).await {
                            retry = Some(c);
                            return Some(e);
                        }
                    }
                    msg = conn.stream.next() => {
                        let Some(msg) = msg else {
                            return Some(redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection closed")));
                        };
                        if let Err(e) = me.on_message(&mut conn, &msg).await {
                            return Some(e);
                        }
                    }
                }
            }
        }
        .await;
        me.shared.metrics.bus_up.store(0, Ordering::Relaxed);
        let Some(lost) = lost else { return };
        tracing::warn!("bus: lost Redis ({lost}); reconnecting");
    }
}

impl Node {
    async fn handle(&mut self, conn: &mut Conn, c: &Ctl) -> RedisResult<()> {
        match c {
            Ctl::Subscribe(room) => {
                if self.rooms.insert(room.clone()) {
                    conn.sink.subscribe(script::channel(room)).await?;
                }
                self.activate(conn, room).await
            }
            Ctl::Unsubscribe(room) => {
                // A member may have joined again since (its Subscribe is queued
                // behind this): then stay subscribed.
                if !self.shared.hub.has_local_members(room) && self.rooms.remove(room) {
                    conn.sink.unsubscribe(script::channel(room)).await?;
                }
                Ok(())
            }
            Ctl::Resume { peer, room, after } => self.resume(conn, peer, room, *after).await,
            Ctl::Presence {
                room,
                user,
                conn: id,
                delta,
            } => super::presence::change(&mut conn.cmd, &self.node, *id, room, user, *delta)
                .await
                .map(drop),
        }
    }

    /// GETs the room's seq and activates the room at it (see the module doc).
    async fn activate(&mut self, conn: &mut Conn, room: &str) -> RedisResult<()> {
        let seq: Option<u64> = redis::cmd("GET")
            .arg(script::keys(room).seq)
            .query_async(&mut conn.cmd)
            .await?;
        self.shared.hub.bus_activate(room, seq.unwrap_or(0));
        Ok(())
    }

    /// After a (re)connect: subscribe every room, activate those still
    /// waiting, catch the others up from history.
    async fn resubscribe(&mut self, conn: &mut Conn) -> RedisResult<()> {
        let rooms: Vec<Arc<str>> = self.rooms.iter().cloned().collect();
        for chunk in rooms.chunks(SUBSCRIBE_CHUNK) {
            let channels: Vec<String> = chunk.iter().map(|r| script::channel(r)).collect();
            conn.sink.subscribe(channels).await?;
        }
        for room in &rooms {
            match self.shared.hub.bus_last_seq(room) {
                Some(last) => self.catch_up(conn, room, last).await?,
                None => self.activate(conn, room).await?,
            }
        }
        Ok(())
    }

    /// Delivers from history every seq after `last`; counts what history
    /// no longer has as lost.
    async fn catch_up(&mut self, conn: &mut Conn, room: &str, last: u64) -> RedisResult<()> {
        let k = script::keys(room);
        let (current, entries): (Option<u64>, Vec<Vec<u8>>) = redis::pipe()
            .cmd("GET")
            .arg(&k.seq)
            .cmd("LRANGE")
            .arg(&k.history)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn.cmd)
            .await?;
        let current = current.unwrap_or(0);
        if current <= last {
            return Ok(());
        }
        let mut recovered = 0u64;
        for raw in &entries {
            if let Ok(Decoded::Chat { seq, body }) = envelope::decode(raw) {
                if seq > last && self.deliver(room, seq, &body, true) == BusOutcome::Delivered {
                    recovered += 1;
                }
            }
        }
        let m = &self.shared.metrics;
        metrics::add(&m.bus_recovered_total, recovered);
        metrics::add(
            &m.bus_lost_total,
            (current - last).saturating_sub(recovered),
        );
        Ok(())
    }

    async fn on_message(&mut self, conn: &mut Conn, msg: &redis::Msg) -> RedisResult<()> {
        let m = &self.shared.metrics;
        metrics::inc(&m.bus_received_total);
        let Some(room) = script::room_of(msg.get_channel_name()) else {
            metrics::inc(&m.bus_malformed_total);
            return Ok(());
        };
        match envelope::decode(msg.get_payload_bytes()) {
            Err(Reject::ForeignVersion) => metrics::inc(&m.bus_foreign_version_total),
            Err(Reject::Malformed) => metrics::inc(&m.bus_malformed_total),
            Ok(Decoded::Chat { seq, body }) => match self.deliver(room, seq, &body, false) {
                BusOutcome::Gap(last) => {
                    metrics::inc(&m.bus_gaps_total);
                    let room = room.to_owned();
                    self.catch_up(conn, &room, last).await?;
                }
                BusOutcome::Duplicate => metrics::inc(&m.bus_duplicates_total),
                BusOutcome::Delivered | BusOutcome::Inactive => {}
            },
            Ok(Decoded::Presence { online, body }) => {
                let skip = (body.n == *self.node).then_some(body.c);
                self.shared.hub.bus_presence(room, &body.u, online, skip);
            }
        }
        Ok(())
    }

    fn deliver(
        &self,
        room: &str,
        seq: u64,
        body: &envelope::ChatBody<'_>,
        allow_gap: bool,
    ) -> BusOutcome {
        let frame = encode(&ServerFrame::Chat {
            room: room.into(),
            seq,
            from: body.f.as_ref().into(),
            id: body.i,
            text: body.x.as_ref().into(),
            ts: body.t,
        });
        let origin =
            (body.n == *self.node).then(|| (body.c, encode(&ServerFrame::Ack { id: body.i, seq })));
        self.shared
            .hub
            .bus_deliver(room, seq, &frame, origin, allow_gap)
    }

    /// Replays history after `after` up to what this node has delivered.
    async fn resume(
        &mut self,
        conn: &mut Conn,
        peer: &Arc<crate::peer::Peer>,
        room: &str,
        after: u64,
    ) -> RedisResult<()> {
        let upto = self.shared.hub.bus_last_seq(room).unwrap_or(0);
        let entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(script::keys(room).history)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn.cmd)
            .await?;
        let hub = &self.shared.hub;
        let mut oldest = None;
        let mut replayed = 0u64;
        for raw in &entries {
            let Ok(Decoded::Chat { seq, body }) = envelope::decode(raw) else {
                continue;
            };
            oldest.get_or_insert(seq);
            if seq > after && seq <= upto {
                let frame = encode(&ServerFrame::Chat {
                    room: room.into(),
                    seq,
                    from: body.f.as_ref().into(),
                    id: body.i,
                    text: body.x.as_ref().into(),
                    ts: body.t,
                });
                hub.reply(peer, frame);
                replayed += 1;
            }
        }
        let complete = after >= upto || oldest.is_some_and(|o| o <= after + 1);
        hub.reply(
            peer,
            encode(&ServerFrame::Resumed {
                room: room.into(),
                replayed,
                complete,
            }),
        );
        Ok(())
    }
}

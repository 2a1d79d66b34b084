//! Incoming-frame handling for one client: decodes each WebSocket message
//! through the dialect and turns its events into measurements (delivery,
//! replay and ack latency, loss, duplicates, order) and into [`Follow`]
//! flags the session loop acts on.
//!
//! Split out of `client.rs` because it is the per-message hot path and a
//! concept of its own; the session loop (connect, join, chat, reconnect)
//! stays there. It is a plain `impl Client` block, so nothing changes per
//! message: no extra allocation, indirection or dispatch.

use std::collections::HashMap;

use bytes::Bytes;
use wire::ws::{close_payload, Message, OpCode};

use super::Client;
use crate::dialect::{Event, Incoming, Outbox, Session};
use crate::engine::ctx::RunCtx;
use crate::engine::ledger::{Ledger, Order, Receipt, SenderWindow, Token};
use crate::engine::link::Link;
use crate::engine::metrics::{MetricId, Recorder};
use crate::engine::tracker::{RoomTrack, SeqOutcome};
use crate::engine::worker::{RoomTotals, WorkerState};
use crate::results::Counters;

/// Flags raised while handling events; acted on after decoding, because
/// the session is busy decoding while events are handled.
#[derive(Default)]
pub(super) struct Follow {
    pub(super) welcomed: bool,
    pub(super) joined: u32,
    pub(super) resumed: u32,
    pub(super) rejected: Option<String>,
    pub(super) closed: Option<u16>,
    /// `welcome.instance`, when the server sent one.
    pub(super) instance: Option<String>,
}

impl Client {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_message(
        &mut self,
        ctx: &RunCtx,
        ws: &WorkerState,
        sess: &mut dyn Session,
        io: &mut Link,
        ob: &mut Outbox,
        // The message and the bytes its frames took on the wire.
        (msg, wire_len): (Message, usize),
        now_us: u64,
        follow: &mut Follow,
    ) {
        let payload_len = |n: usize| {
            n as u64
                + if n < 126 {
                    2
                } else if n < 65536 {
                    4
                } else {
                    10
                }
        };
        let data: Bytes;
        let incoming = match msg {
            Message::Text(b) => {
                data = b;
                Incoming::Text(&data)
            }
            Message::Binary(b) => {
                data = b;
                Incoming::Binary(&data)
            }
            Message::Ping(p) => {
                let mut rec = ws.rec.borrow_mut();
                rec.counters().frames_received += 1;
                rec.counters().bytes_received += payload_len(p.len());
                io.queue_control(OpCode::Pong, &p);
                return;
            }
            Message::Pong(p) => {
                // Our WebSocket-level heartbeat carries its send time.
                if let Some(ts) = std::str::from_utf8(&p)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    let rtt = ctx.clock.now_epoch_us().saturating_sub(ts);
                    ws.rec.borrow_mut().record(MetricId::PingRtt, rtt);
                }
                return;
            }
            Message::Close(c) => {
                let code = c.map_or(1005, |c| c.code);
                io.queue_control(OpCode::Close, &close_payload(code, ""));
                follow.closed = Some(code);
                return;
            }
        };
        let mut rec = ws.rec.borrow_mut();
        let c = rec.counters();
        c.frames_received += 1;
        c.bytes_received += payload_len(data.len());
        c.payload_bytes_received += data.len() as u64;
        c.wire_bytes_received += wire_len as u64;
        let resume = self.pop(ctx).resume;
        let me = self.i;
        let tracks = &mut self.tracks;
        let pending_acks = &mut self.pending_acks;
        let seen = &mut self.seen;
        let mut rooms = ws.rooms.borrow_mut();
        let slot_of = |tracks: &[RoomTrack], room: &str| -> Option<usize> {
            let idx = ctx.room_index(room)?;
            tracks.iter().position(|t| t.room == idx)
        };
        let res = sess.decode(incoming, ob, &mut |ev| match ev {
            Event::Delivery { id, text, .. } => {
                let Some(ledger) = &ctx.ledger else {
                    return;
                };
                let r = Receiver {
                    ledger,
                    me,
                    tracks,
                    seen,
                };
                r.deliver(&mut rec, id.as_deref(), text.as_deref(), now_us);
            }
            Event::Unmatched { kind, sample } => {
                let c = rec.counters();
                Recorder::count_in(&mut c.unmatched, kind);
                if c.unmatched_samples.len() < crate::results::MAX_UNMATCHED_SAMPLES {
                    c.unmatched_samples.push(format!("{kind}: {sample}"));
                }
            }
            Event::Chat {
                room,
                seq,
                id,
                ts_us,
                ..
            } => {
                let Some(slot) = slot_of(tracks, &room) else {
                    return;
                };
                let t = &mut tracks[slot];
                // A resume replays our own messages too: seen, not delivered.
                if id.split('.').next().and_then(|c| c.parse::<u32>().ok()) == Some(me) {
                    t.on_own(seq);
                    return;
                }
                let outcome = t.on_seq(seq);
                if t.tracking {
                    rooms.saw(t.room, seq);
                }
                let replay = seq <= t.replay_upto;
                let c = rec.counters();
                match outcome {
                    SeqOutcome::Duplicate if t.resuming => {
                        c.resume_overlap += 1;
                        return;
                    }
                    SeqOutcome::Duplicate => {
                        c.duplicates += 1;
                        return;
                    }
                    // Before the room's `joined`: settled when it arrives.
                    SeqOutcome::Early => return,
                    SeqOutcome::Filled if !replay => c.out_of_order += 1,
                    _ => {}
                }
                c.deliveries_received += 1;
                if let Some(ts) = ts_us {
                    let lat = now_us.saturating_sub(ts);
                    if replay {
                        rec.record(MetricId::ReplayLatency, lat);
                    } else {
                        rec.record(MetricId::DeliveryLatency, lat);
                        if let Some(lag) = id.rsplit('.').next().and_then(|l| l.parse::<u64>().ok())
                        {
                            rec.record(MetricId::DeliveryLatencyService, lat.saturating_sub(lag));
                        }
                    }
                }
            }
            Event::Ack { id, seq } => {
                rec.counters().acks_received += 1;
                let mut parts = id.split('.');
                let (_, n, lag) = (parts.next(), parts.next(), parts.next());
                let (Some(n), Some(lag)) = (
                    n.and_then(|n| n.parse::<u64>().ok()),
                    lag.and_then(|l| l.parse::<u64>().ok()),
                ) else {
                    return;
                };
                while pending_acks.front().is_some_and(|&(m, _, _)| m < n) {
                    pending_acks.pop_front();
                }
                if let Some(&(m, ts, slot)) = pending_acks.front() {
                    if m == n {
                        pending_acks.pop_front();
                        let lat = now_us.saturating_sub(ts);
                        rec.record(MetricId::AckLatency, lat);
                        rec.record(MetricId::AckLatencyService, lat.saturating_sub(lag));
                        if let Some(t) = tracks.get_mut(slot as usize) {
                            t.on_own(seq);
                            rooms.acked(t.room, seq);
                        }
                    }
                }
            }
            Event::Joined { room, seq, .. } => {
                let Some(slot) = slot_of(tracks, &room) else {
                    return;
                };
                let t = &mut tracks[slot];
                if seq < t.last {
                    // The room's seqs started over: the server restarted.
                    new_epoch(t, &mut rooms, resume, rec.counters());
                }
                let keep = resume && t.tracking;
                if !keep {
                    t.epoch = rooms.current_epoch(t.room);
                }
                let j = t.on_joined(seq, keep);
                if let Some(l) = &ctx.ledger {
                    super::become_member(l, t, now_us);
                }
                let c = rec.counters();
                c.lost += j.lost;
                c.deliveries_received += j.early_delivered;
                follow.joined += 1;
            }
            Event::Resumed { room, .. } => {
                if let Some(slot) = slot_of(tracks, &room) {
                    tracks[slot].resuming = false;
                }
                follow.resumed += 1;
            }
            Event::Welcome { instance, .. } => {
                follow.welcomed = true;
                follow.instance = instance.map(|i| i.into_owned());
            }
            Event::Pong { ts_us: Some(ts) } => {
                rec.record(MetricId::PingRtt, now_us.saturating_sub(ts));
            }
            Event::Error { code, id } => {
                Recorder::count_in(&mut rec.counters().errors, &code);
                // A refused chat (RATE_LIMITED, UNAVAILABLE, ...) gets no ack:
                // it is answered, so the drain does not wait for it.
                let n = id
                    .as_deref()
                    .and_then(|id| id.split('.').nth(1)?.parse::<u64>().ok());
                if let Some(n) = n {
                    pending_acks.retain(|&(m, _, _)| m != n);
                }
            }
            Event::Rejected { reason } => follow.rejected = Some(reason.into_owned()),
            Event::Close { code, .. } => follow.closed = Some(code),
            Event::Left { room } => {
                if let Some(slot) = slot_of(tracks, &room) {
                    if let Some(l) = &ctx.ledger {
                        super::end_membership(l, &mut tracks[slot], Some(now_us));
                    }
                    rec.counters().lost += tracks[slot].stop();
                }
            }
            _ => {}
        });
        if res.is_err() {
            Recorder::count_in(&mut rec.counters().errors, "decode");
        }
    }
}

/// One receiver's side of generator-side accounting (`engine::ledger`).
struct Receiver<'a> {
    ledger: &'a Ledger,
    me: u32,
    tracks: &'a [RoomTrack],
    seen: &'a mut HashMap<u32, SenderWindow>,
}

impl Receiver<'_> {
    /// A chat delivery: bench's id from `id`, else from inside `text`;
    /// deduplicated per sender, then credited to the sender's entry.
    fn deliver(self, rec: &mut Recorder, id: Option<&str>, text: Option<&str>, now_us: u64) {
        let token = id
            .and_then(Token::parse)
            .or_else(|| text.and_then(Token::find));
        let Some(token) = token else {
            Recorder::count_in(&mut rec.counters().unmatched, "no_id");
            return;
        };
        if token.client == self.me && !self.ledger.echo_to_sender {
            // Our own chat, echoed by a server said not to: nothing owed.
            Recorder::count_in(&mut rec.counters().unmatched, "own_echo");
            return;
        }
        let order = self.seen.entry(token.client).or_default().see(token.n);
        let c = rec.counters();
        match order {
            Order::Duplicate => {
                c.duplicates += 1;
                return;
            }
            Order::OutOfOrder => c.out_of_order += 1,
            Order::New => {}
        }
        let tracks = self.tracks;
        let since = |room: u32| {
            tracks
                .iter()
                .find(|t| t.room == room && t.member_since_us != 0)
                .map(|t| t.member_since_us)
        };
        match self.ledger.receive(token, since) {
            Receipt::Credited { intended_us } => {
                c.deliveries_received += 1;
                let lat = now_us.saturating_sub(intended_us);
                rec.record(MetricId::DeliveryLatency, lat);
                rec.record(
                    MetricId::DeliveryLatencyService,
                    lat.saturating_sub(token.lag),
                );
            }
            Receipt::Unconfirmed => c.deliveries_unconfirmed += 1,
            Receipt::Late => c.deliveries_late += 1,
        }
    }
}

/// A new server epoch for one room of one receiver (a new `welcome.instance`,
/// or a `joined.seq` below the last seq seen): tracking starts over, and
/// with `resume` what the old server's history held beyond what this
/// receiver saw (its open gaps, and up to the room's top seq as far as this
/// worker knows) is `lost_at_restart`: the new server cannot replay it.
pub(super) fn new_epoch(t: &mut RoomTrack, rooms: &mut RoomTotals, resume: bool, c: &mut Counters) {
    let owed = resume && t.tracking;
    let last = t.last;
    let (old_top, epoch) = rooms.restarted(t.room, t.epoch);
    let pending = t.reset_epoch(epoch);
    c.seq_resets += 1;
    if owed {
        c.lost_at_restart += pending + old_top.saturating_sub(last);
    } else {
        // Gaps of a room no longer tracked were already given up as lost.
        c.lost += pending;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server without instance ids restarts: the receiver (with resume)
    /// gives up its gap and what the room reached before the restart, and
    /// tracks the new seqs from scratch.
    #[test]
    fn a_seq_reset_is_lost_at_restart_and_tracking_starts_over() {
        let mut rooms = RoomTotals::new(1);
        let mut c = Counters::default();
        let mut t = RoomTrack::new(0);
        t.on_joined(0, true);
        for s in [1, 2, 5] {
            t.on_seq(s); // 3, 4 pending
            rooms.saw(0, s);
        }
        rooms.acked(0, 9); // a sender got 9 acked; this receiver saw up to 5
        t.joined = false; // dropped, resume keeps tracking
        new_epoch(&mut t, &mut rooms, true, &mut c);
        assert_eq!((c.lost_at_restart, c.seq_resets, c.lost), (2 + 4, 1, 0));
        assert_eq!((t.last, t.tracking, t.epoch), (0, false, 1));
        assert_eq!(t.on_joined(2, true).lost, 0);
        assert_eq!(t.on_seq(3), SeqOutcome::New, "not a duplicate of the old 3");

        // Without resume nothing was owed: no lost_at_restart.
        let mut c = Counters::default();
        let mut u = RoomTrack::new(0);
        u.on_joined(0, false);
        u.on_seq(4);
        u.stop();
        new_epoch(&mut u, &mut rooms, false, &mut c);
        assert_eq!((c.lost_at_restart, c.seq_resets), (0, 1));
    }
}

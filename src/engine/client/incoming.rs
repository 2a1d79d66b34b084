//! Incoming-frame handling for one client: decodes each WebSocket message
//! through the dialect and turns its events into measurements (delivery,
//! replay and ack latency, loss, duplicates, order) and into [`Follow`]
//! flags the session loop acts on.
//!
//! Split out of `client.rs` because it is the per-message hot path and a
//! concept of its own; the session loop (connect, join, chat, reconnect)
//! stays there. It is a plain `impl Client` block, so nothing changes per
//! message: no extra allocation, indirection or dispatch.

use std::cell::RefMut;
use std::collections::{HashMap, VecDeque};

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

/// What handling one incoming message needs from its session: the
/// context struct of [`Client::on_message`].
pub(super) struct Inbound<'a> {
    pub(super) ctx: &'a RunCtx,
    pub(super) ws: &'a WorkerState,
    pub(super) sess: &'a mut dyn Session,
    pub(super) io: &'a mut Link,
    pub(super) ob: &'a mut Outbox,
    pub(super) now_us: u64,
    pub(super) follow: &'a mut Follow,
}

/// Header bytes of a frame with an `n`-byte payload, plus the payload.
fn frame_len(n: usize) -> u64 {
    n as u64
        + if n < 126 {
            2
        } else if n < 65536 {
            4
        } else {
            10
        }
}

impl Client {
    /// One WebSocket message and the bytes its frames took on the wire:
    /// control frames are answered here, data goes through the dialect and
    /// each event it yields to [`Events`].
    pub(super) fn on_message(&mut self, inb: &mut Inbound<'_>, (msg, wire_len): (Message, usize)) {
        let (data, text) = match msg {
            Message::Text(b) => (b, true),
            Message::Binary(b) => (b, false),
            control => return on_control(inb, control),
        };
        let incoming = if text {
            Incoming::Text(&data)
        } else {
            Incoming::Binary(&data)
        };
        let ctx = inb.ctx;
        let mut rec = inb.ws.rec.borrow_mut();
        let c = rec.counters();
        c.frames_received += 1;
        c.bytes_received += frame_len(data.len());
        c.payload_bytes_received += data.len() as u64;
        c.wire_bytes_received += wire_len as u64;
        let mut ev = Events {
            ctx,
            resume: self.pop(ctx).resume,
            me: self.i,
            now_us: inb.now_us,
            tracks: &mut self.tracks,
            pending_acks: &mut self.pending_acks,
            seen: &mut self.seen,
            rooms: inb.ws.rooms.borrow_mut(),
            rec,
            follow: &mut *inb.follow,
        };
        if inb
            .sess
            .decode(incoming, inb.ob, &mut |e| ev.on(e))
            .is_err()
        {
            Recorder::count_in(&mut ev.rec.counters().errors, "decode");
        }
    }
}

/// Ping (answered with a pong), pong (our heartbeat's RTT) and close.
fn on_control(inb: &mut Inbound<'_>, msg: Message) {
    match msg {
        Message::Ping(p) => {
            let mut rec = inb.ws.rec.borrow_mut();
            rec.counters().frames_received += 1;
            rec.counters().bytes_received += frame_len(p.len());
            inb.io.queue_control(OpCode::Pong, &p);
        }
        Message::Pong(p) => {
            // Our WebSocket-level heartbeat carries its send time.
            if let Some(ts) = std::str::from_utf8(&p)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                let rtt = inb.ctx.clock.now_epoch_us().saturating_sub(ts);
                inb.ws.rec.borrow_mut().record(MetricId::PingRtt, rtt);
            }
        }
        Message::Close(c) => {
            let code = c.map_or(1005, |c| c.code);
            inb.io
                .queue_control(OpCode::Close, &close_payload(code, ""));
            inb.follow.closed = Some(code);
        }
        Message::Text(_) | Message::Binary(_) => {}
    }
}

/// The events of one message, handled with the worker's recorder and room
/// totals borrowed once for the whole message (not once per event).
struct Events<'a> {
    ctx: &'a RunCtx,
    resume: bool,
    me: u32,
    now_us: u64,
    tracks: &'a mut Vec<RoomTrack>,
    pending_acks: &'a mut VecDeque<(u64, u64, u32)>,
    seen: &'a mut HashMap<u32, SenderWindow>,
    rooms: RefMut<'a, RoomTotals>,
    rec: RefMut<'a, Recorder>,
    follow: &'a mut Follow,
}

impl Events<'_> {
    fn on(&mut self, ev: Event<'_>) {
        match ev {
            Event::Delivery { id, text, .. } => {
                let Some(ledger) = &self.ctx.ledger else {
                    return;
                };
                let r = Receiver {
                    ledger,
                    me: self.me,
                    tracks: self.tracks,
                    seen: self.seen,
                };
                r.deliver(&mut self.rec, id.as_deref(), text.as_deref(), self.now_us);
            }
            Event::Unmatched { kind, sample } => {
                let c = self.rec.counters();
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
            } => self.chat(&room, seq, &id, ts_us),
            Event::Ack { id, seq } => self.ack(&id, seq),
            Event::Joined { room, seq, .. } => self.joined(&room, seq),
            Event::Resumed { room, .. } => {
                if let Some(slot) = self.slot_of(&room) {
                    self.tracks[slot].resuming = false;
                }
                self.follow.resumed += 1;
            }
            Event::Welcome { instance, .. } => {
                self.follow.welcomed = true;
                self.follow.instance = instance.map(|i| i.into_owned());
            }
            Event::Pong { ts_us: Some(ts) } => {
                self.rec
                    .record(MetricId::PingRtt, self.now_us.saturating_sub(ts));
            }
            Event::Error { code, id } => self.error(&code, id.as_deref()),
            Event::Rejected { reason } => self.follow.rejected = Some(reason.into_owned()),
            Event::Close { code, .. } => self.follow.closed = Some(code),
            Event::Left { room } => {
                if let Some(slot) = self.slot_of(&room) {
                    if let Some(l) = &self.ctx.ledger {
                        super::end_membership(l, &mut self.tracks[slot], Some(self.now_us));
                    }
                    self.rec.counters().lost += self.tracks[slot].stop();
                }
            }
            _ => {}
        }
    }

    /// This client's slot for `room`, if it is a member.
    fn slot_of(&self, room: &str) -> Option<usize> {
        let idx = self.ctx.room_index(room)?;
        self.tracks.iter().position(|t| t.room == idx)
    }

    /// A room message: seq tracking (loss, duplicates, order) and latency.
    fn chat(&mut self, room: &str, seq: u64, id: &str, ts_us: Option<u64>) {
        let Some(slot) = self.slot_of(room) else {
            return;
        };
        let t = &mut self.tracks[slot];
        // A resume replays our own messages too: seen, not delivered.
        if id.split('.').next().and_then(|c| c.parse::<u32>().ok()) == Some(self.me) {
            t.on_own(seq);
            return;
        }
        let outcome = t.on_seq(seq);
        if t.tracking {
            self.rooms.saw(t.room, seq);
        }
        let replay = seq <= t.replay_upto;
        let c = self.rec.counters();
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
        let Some(ts) = ts_us else {
            return;
        };
        let lat = self.now_us.saturating_sub(ts);
        if replay {
            self.rec.record(MetricId::ReplayLatency, lat);
        } else {
            self.rec.record(MetricId::DeliveryLatency, lat);
            if let Some(lag) = id.rsplit('.').next().and_then(|l| l.parse::<u64>().ok()) {
                self.rec
                    .record(MetricId::DeliveryLatencyService, lat.saturating_sub(lag));
            }
        }
    }

    /// The ack of one of our chats: ack latency, and its seq is ours.
    fn ack(&mut self, id: &str, seq: u64) {
        self.rec.counters().acks_received += 1;
        let mut parts = id.split('.');
        let (_, n, lag) = (parts.next(), parts.next(), parts.next());
        let (Some(n), Some(lag)) = (
            n.and_then(|n| n.parse::<u64>().ok()),
            lag.and_then(|l| l.parse::<u64>().ok()),
        ) else {
            return;
        };
        let pending = &mut *self.pending_acks;
        while pending.front().is_some_and(|&(m, _, _)| m < n) {
            pending.pop_front();
        }
        let Some(&(m, ts, slot)) = pending.front() else {
            return;
        };
        if m != n {
            return;
        }
        pending.pop_front();
        let lat = self.now_us.saturating_sub(ts);
        self.rec.record(MetricId::AckLatency, lat);
        self.rec
            .record(MetricId::AckLatencyService, lat.saturating_sub(lag));
        if let Some(t) = self.tracks.get_mut(slot as usize) {
            t.on_own(seq);
            self.rooms.acked(t.room, seq);
        }
    }

    /// A `joined`: tracking (re)starts at its seq; a seq below the last
    /// one seen means the server restarted.
    fn joined(&mut self, room: &str, seq: u64) {
        let Some(slot) = self.slot_of(room) else {
            return;
        };
        let t = &mut self.tracks[slot];
        if seq < t.last {
            // The room's seqs started over: the server restarted.
            new_epoch(t, &mut self.rooms, self.resume, self.rec.counters());
        }
        let keep = self.resume && t.tracking;
        if !keep {
            t.epoch = self.rooms.current_epoch(t.room);
        }
        let j = t.on_joined(seq, keep);
        if let Some(l) = &self.ctx.ledger {
            super::become_member(l, t, self.now_us);
        }
        let c = self.rec.counters();
        c.lost += j.lost;
        c.deliveries_received += j.early_delivered;
        self.follow.joined += 1;
    }

    /// A server error. A refused chat (RATE_LIMITED, UNAVAILABLE, ...)
    /// gets no ack: it is answered, so the drain does not wait for it.
    fn error(&mut self, code: &str, id: Option<&str>) {
        Recorder::count_in(&mut self.rec.counters().errors, code);
        let n = id.and_then(|id| id.split('.').nth(1)?.parse::<u64>().ok());
        if let Some(n) = n {
            self.pending_acks.retain(|&(m, _, _)| m != n);
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

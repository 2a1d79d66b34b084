//! One simulated client: connect, join, chat on its seeded schedule,
//! measure everything it sees, reconnect when told or dropped, and leave
//! when its ramp window ends.
//!
//! A client runs as one task on its worker's single-threaded runtime and
//! records into the worker's [`Recorder`] without locks. One connected
//! session's loop lives in [`session`]; handling of each incoming frame
//! (the per-message hot path) in [`incoming`].

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::sleep_until;

use super::ctx::{RunCtx, LAG_TOLERANCE_US};
use super::ledger::{Ledger, SenderWindow, Token};
use super::link::{self, Link};
use super::metrics::{MetricId, Recorder};
use super::pacing::{Pacer, Poisson};
use super::panic;
use super::readiness::{self, reason, ClientOutcome};
use super::rng::{SplitMix64, Stream};
use super::schedule::{self, Window};
use super::tracker::RoomTrack;
use super::worker::WorkerState;
use crate::dialect::{Action, Outbox, Session};
use crate::scenario::Population;

mod incoming;
mod session;

/// Filler for chat texts: sliced, never allocated per message.
static FILLER: &str = "the quick brown fox jumps over the lazy dog 0123456789 ";

/// Why a connected session ended.
enum End {
    /// Stop the whole client (interrupt).
    Stop,
    /// The window ended (ramp-down) or the run's drain finished.
    Finished,
    /// A planned reconnect.
    Planned,
    /// The server or network dropped us; reconnect with backoff.
    Dropped,
}

struct Client {
    i: u32,
    /// Index into the plan's populations.
    pop_idx: usize,
    tracks: Vec<RoomTrack>,
    pacer: Poisson,
    next_chat: Option<u64>,
    content_rng: SplitMix64,
    life_rng: SplitMix64,
    n: u64,
    /// In-flight chats: (n, intended ts µs since epoch, room slot).
    pending_acks: VecDeque<(u64, u64, u32)>,
    text_buf: String,
    /// This client is counted in the worker's `connected` gauge.
    counted: bool,
    /// Readiness over the whole run (see `engine::readiness`).
    outcome: ClientOutcome,
    /// A hash of the server instance id of the last `welcome` that had one
    /// (8 bytes per client instead of a string).
    instance: Option<u64>,
    /// Generator-side accounting: what arrived from each sender (empty otherwise).
    seen: std::collections::HashMap<u32, SenderWindow>,
}

/// Runs client `i` through all its windows. Returns when done or stopped.
pub async fn run(ctx: Rc<RunCtxRef>, ws: Rc<WorkerState>, i: u32, mut stop: watch::Receiver<bool>) {
    let ctx = &ctx.0;
    let pop_index = ctx.populations.get(i as usize).copied().unwrap_or(0) as usize;
    let Some(pop) = ctx.plan.populations.get(pop_index) else {
        return;
    };
    // Planned: a window of positive length (a ramp's last level is reached
    // only at its final instant, which asks for no client).
    let mut windows = schedule::windows(&ctx.plan.stages, i);
    windows.retain(|w| w.end_us > w.start_us);
    let Some(first) = windows.first() else {
        return;
    };
    let stage = schedule::stage_at(&ctx.plan.stages, first.start_us);
    let tracks = schedule::rooms_of(&ctx.plan, i)
        .into_iter()
        .map(RoomTrack::new)
        .collect();
    let seed = ctx.plan.seed;
    let mut c = Client {
        i,
        pacer: Poisson::new(
            pop.chat_rate,
            0,
            SplitMix64::for_client(seed, i.into(), Stream::Chat),
        ),
        pop_idx: pop_index,
        tracks,
        next_chat: None,
        content_rng: SplitMix64::for_client(seed, i.into(), Stream::Content),
        life_rng: SplitMix64::for_client(seed, i.into(), Stream::Life),
        n: 0,
        pending_acks: VecDeque::new(),
        text_buf: String::new(),
        counted: false,
        outcome: ClientOutcome::default(),
        instance: None,
        seen: std::collections::HashMap::new(),
    };
    // A panic outside a session (inside one, `live_window` catches it).
    if let Err(msg) = panic::catch(c.all_windows(ctx, &ws, windows, &mut stop)).await {
        c.on_panic(&ws, msg);
        if std::mem::take(&mut c.counted) {
            ws.rec.borrow_mut().connected -= 1;
        }
        ws.drain.borrow_mut().gone(c.local(&ws));
    }
    ws.ready.borrow_mut().record(stage, c.outcome);
}
/// Generator-side accounting: `t`'s client is a confirmed member from now
/// on (the time is taken before the count grows; see `Ledger::send`).
fn become_member(l: &Ledger, t: &mut RoomTrack, now_us: u64) {
    if t.member_since_us == 0 {
        t.member_since_us = now_us.max(1);
        l.join(t.room);
    }
}

fn end_membership(l: &Ledger, t: &mut RoomTrack, at_us: Option<u64>) {
    if std::mem::take(&mut t.member_since_us) != 0 {
        l.leave(t.room, at_us);
    }
}

/// Wrapper so the context can be shared by `Rc` inside a worker and by `Arc` across them.
pub struct RunCtxRef(pub std::sync::Arc<RunCtx>);

/// What the timers or the socket asked for.
enum Wake {
    Stop,
    Readable,
    Writable,
    Timer,
    IoError,
}

impl Client {
    /// This client's population (borrowed from the context, not copied per client).
    fn pop<'c>(&self, ctx: &'c RunCtx) -> &'c Population {
        &ctx.plan.populations[self.pop_idx]
    }

    /// Runs every window of this client in turn, until done or stopped.
    async fn all_windows(
        &mut self,
        ctx: &RunCtx,
        ws: &WorkerState,
        windows: Vec<Window>,
        stop: &mut watch::Receiver<bool>,
    ) {
        let pop = self.pop(ctx);
        let (rate, seed, i) = (pop.chat_rate, ctx.plan.seed, self.i);
        for w in windows {
            let start = ctx.clock.instant_of_run_us(w.start_us);
            tokio::select! {
                _ = sleep_until(start.into()) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            self.pacer = Poisson::new(
                rate,
                w.start_us,
                SplitMix64::for_client(seed ^ w.start_us, i.into(), Stream::Chat),
            );
            self.next_chat = self.pacer.next_at();
            if self.live_window(ctx, ws, w, stop).await {
                return;
            }
        }
    }

    /// A `welcome` named the server instance: a different one than last
    /// time means a restarted server, whose rooms start over (see
    /// `incoming::new_epoch`), so nothing is resumed from the old seqs.
    fn on_instance(&mut self, ctx: &RunCtx, ws: &WorkerState, instance: Option<String>) {
        let Some(id) = instance else {
            return;
        };
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        };
        if self.instance.is_some_and(|old| old != hash) {
            let resume = self.pop(ctx).resume;
            let mut rooms = ws.rooms.borrow_mut();
            let mut rec = ws.rec.borrow_mut();
            for t in self.tracks.iter_mut().filter(|t| t.tracking || t.last > 0) {
                incoming::new_epoch(t, &mut rooms, resume, rec.counters());
            }
        }
        let mut seen = ws.instances.borrow_mut();
        if seen.len() < super::worker::MAX_INSTANCES {
            seen.insert(id);
        }
        self.instance = Some(hash);
    }

    /// A caught panic: counted (`errors.panic`), its message kept; the
    /// client then goes on as after any failure.
    fn on_panic(&mut self, ws: &WorkerState, msg: String) {
        ws.panics.borrow_mut().add(msg);
        let mut rec = ws.rec.borrow_mut();
        Recorder::count_in(&mut rec.counters().errors, reason::PANIC);
        self.outcome.last_failure = Some(reason::PANIC);
    }

    /// Connects and reconnects within one window. Returns true to stop the client.
    async fn live_window(
        &mut self,
        ctx: &RunCtx,
        ws: &WorkerState,
        w: Window,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let end = ctx.clock.instant_of_run_us(w.end_us);
        let drains = w.end_us >= ctx.end_us;
        let mut attempt: u32 = 0;
        let mut dropped_at: Option<Instant> = None;
        let mut first = true;
        loop {
            if Instant::now() >= end {
                // Still disconnected at the end: whatever is pending is lost.
                self.finish_tracks(ctx, ws, false);
                return false;
            }
            let t0 = Instant::now();
            self.outcome.started = true;
            // Boxed: the handshake future is large (an httparse header array
            // lives across an await) and must not size every idle client's task.
            let conn = tokio::select! {
                r = Box::pin(link::connect(ctx, self.i)) => r,
                _ = stop.changed() => return true,
            };
            match conn {
                Err(reason) => {
                    {
                        let mut rec = ws.rec.borrow_mut();
                        Recorder::count_in(&mut rec.counters().connections_failed, &reason);
                        if !self.outcome.ready {
                            rec.cur.unready_failed += 1;
                        }
                    }
                    self.outcome.last_failure = Some(readiness::connect_category(&reason));
                    attempt += 1;
                    if self.backoff(ctx, attempt, end, stop).await {
                        return true;
                    }
                }
                Ok((io, token, stages)) => {
                    {
                        let mut rec = ws.rec.borrow_mut();
                        rec.counters().connections_opened += 1;
                        rec.counters().deflate_connections += u64::from(io.deflated());
                        rec.record(MetricId::ConnectTime, t0.elapsed().as_micros() as u64);
                        if let Some(st) = stages {
                            rec.counters().tls_connections += 1;
                            rec.counters().tls_resumed += u64::from(st.resumed);
                            rec.record(MetricId::TcpConnectTime, st.tcp_us);
                            rec.record(MetricId::TlsHandshakeTime, st.tls_us);
                            rec.record(MetricId::UpgradeTime, st.upgrade_us);
                        }
                    }
                    if !first {
                        ws.rec.borrow_mut().counters().reconnects += 1;
                    }
                    first = false;
                    self.outcome.connected = true;
                    let was_ready = self.outcome.ready;
                    // `dropped_at` stays set until a session is ready: the
                    // outage ends there, however many attempts it took.
                    let start = session::Start {
                        ctx,
                        ws,
                        end,
                        drains,
                        dropped_at,
                    };
                    let session = self.session(&start, (io, token), &mut attempt, stop);
                    let ended = match panic::catch(session).await {
                        Ok(ended) => ended,
                        Err(msg) => {
                            self.on_panic(ws, msg);
                            self.after_drop(ctx, ws);
                            End::Dropped
                        }
                    };
                    if !was_ready {
                        // An attempt by a client never ready yet: it made it, or it failed.
                        // (One that made it was counted when it became ready.)
                        let mut rec = ws.rec.borrow_mut();
                        if !self.outcome.ready && matches!(ended, End::Dropped | End::Planned) {
                            rec.cur.unready_failed += 1;
                        }
                    }
                    if std::mem::take(&mut self.counted) {
                        // This session was ready: its outage (if any) is over.
                        ws.rec.borrow_mut().connected -= 1;
                        dropped_at = None;
                    }
                    // An outage starts at the drop of a client that was
                    // ready before; `reconnect_time` runs until it is again.
                    let outage = self.outcome.ready;
                    ws.drain.borrow_mut().gone(self.local(ws));
                    match ended {
                        End::Stop => return true,
                        End::Finished => return false,
                        End::Planned => {
                            dropped_at.get_or_insert_with(Instant::now);
                        }
                        End::Dropped => {
                            if outage {
                                dropped_at.get_or_insert_with(Instant::now);
                            }
                            attempt += 1;
                            if self.backoff(ctx, attempt, end, stop).await {
                                return true;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Waits the population's backoff for `attempt`; true when stopped.
    async fn backoff(
        &mut self,
        ctx: &RunCtx,
        attempt: u32,
        end: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let b = self.pop(ctx).reconnect_backoff;
        let exp = 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
        let base = (b.initial.as_secs_f64() * exp).min(b.max.as_secs_f64());
        let delay = base * (1.0 - b.jitter.clamp(0.0, 1.0) * self.life_rng.unit());
        let until = (Instant::now() + Duration::from_secs_f64(delay.max(0.0))).min(end);
        tokio::select! {
            _ = sleep_until(until.into()) => false,
            _ = stop.changed() => true,
        }
    }

    /// Stops tracking every room; adds what is pending to `lost`, and with
    /// `tail` also reports each still-joined room's last seq for tail loss.
    fn finish_tracks(&mut self, ctx: &RunCtx, ws: &WorkerState, tail: bool) {
        self.end_memberships(ctx);
        let mut lost = 0;
        let mut rooms = ws.rooms.borrow_mut();
        for t in &mut self.tracks {
            if tail && t.joined && t.tracking {
                rooms.add_receiver(t.room, t.last);
            }
            lost += t.stop();
        }
        let mut rec = ws.rec.borrow_mut();
        rec.counters().lost += lost;
        self.pending_acks.clear();
    }

    /// This client's index in its worker's tables.
    fn local(&self, ws: &WorkerState) -> usize {
        (self.i / ws.workers.max(1)) as usize
    }

    /// While draining: caught up when no chat of ours awaits its ack and
    /// every joined room has reached the goal's top seq (with generator-side
    /// accounting: no message of the run still waits for a delivery).
    fn drain_check(&self, ctx: &RunCtx, ws: &WorkerState) {
        let goal = ws.goal.borrow();
        let mut book = ws.drain.borrow_mut();
        let mut caught_up = self.pending_acks.is_empty();
        if let Some(l) = &ctx.ledger {
            caught_up &= l.open() == 0;
        }
        for t in self.tracks.iter().filter(|t| t.joined && t.tracking) {
            book.saw(t.room, t.last);
            caught_up &= t.last >= goal.top.get(t.room as usize).copied().unwrap_or(0);
        }
        book.checked(self.local(ws), goal.gen, caught_up);
    }

    /// Generator-side accounting: this client is no longer a member of any room.
    fn end_memberships(&mut self, ctx: &RunCtx) {
        if let Some(l) = &ctx.ledger {
            let now = std::time::Instant::now();
            // Leaves after the last stage (the end of the drain) race with nothing.
            let at = (ctx.clock.run_us(now) < ctx.end_us).then(|| ctx.clock.epoch_us(now));
            for t in &mut self.tracks {
                end_membership(l, t, at);
            }
        }
    }

    /// After a drop: keep room state for a resume, or give it up.
    fn after_drop(&mut self, ctx: &RunCtx, ws: &WorkerState) {
        self.end_memberships(ctx);
        if self.pop(ctx).resume {
            for t in &mut self.tracks {
                t.joined = false;
            }
            self.pending_acks.clear();
        } else {
            self.finish_tracks(ctx, ws, false);
        }
    }

    fn flush_outbox(ws: &WorkerState, io: &mut Link, ob: &mut Outbox) {
        if ob.is_empty() {
            return;
        }
        let payload = ob.take_payload_bytes();
        let (frames, bytes) = io.send(ob);
        let mut rec = ws.rec.borrow_mut();
        let c = rec.counters();
        c.frames_sent += u64::from(frames);
        c.bytes_sent += bytes as u64;
        c.payload_bytes_sent += payload;
        c.wire_bytes_sent += bytes as u64;
    }

    /// Sends every chat whose intended time has come, late ones included.
    fn send_due_chats(
        &mut self,
        ctx: &RunCtx,
        ws: &WorkerState,
        sess: &mut dyn Session,
        ob: &mut Outbox,
        now: Instant,
    ) {
        if self.tracks.is_empty() {
            return;
        }
        let now_run = ctx.clock.run_us(now);
        while let Some(due) = self.next_chat.filter(|&at| at <= now_run) {
            let lag = now_run - due;
            let slot = self.content_rng.below(self.tracks.len() as u64) as u32;
            let room = &ctx.room_names[self.tracks[slot as usize].room as usize];
            let size = {
                let s = self.pop(ctx).message_size;
                s.min + self.content_rng.below(u64::from(s.max - s.min) + 1) as u32
            } as usize;
            if self.pop(ctx).typing {
                sess.encode(&Action::Typing { room }, ob);
            }
            self.n += 1;
            let id = format!("{}.{}.{}", self.i, self.n, lag);
            self.text_buf.clear();
            if ctx.ledger.is_some() {
                // Generator-side accounting finds the id inside the text.
                self.text_buf.push('~');
                self.text_buf.push_str(&id);
                self.text_buf.push_str("~ ");
            }
            while self.text_buf.len() < size {
                let take = (size - self.text_buf.len()).min(FILLER.len());
                self.text_buf.push_str(&FILLER[..take]);
            }
            let ts_us = ctx.clock.epoch_of_run_us(due);
            sess.encode(
                &Action::Chat {
                    room,
                    id: &id,
                    text: &self.text_buf,
                    ts_us,
                },
                ob,
            );
            if ctx.caps.acks_chats {
                self.pending_acks.push_back((self.n, ts_us, slot));
            }
            if let Some(l) = &ctx.ledger {
                let t = &self.tracks[slot as usize];
                let token = Token {
                    client: self.i,
                    n: self.n,
                    lag,
                };
                l.send(token, t.room, ts_us, t.member_since_us != 0, || {
                    ctx.clock.now_epoch_us()
                });
            }
            let mut rec = ws.rec.borrow_mut();
            rec.record(MetricId::ScheduleLag, lag);
            let c = rec.counters();
            c.chat_sent += 1;
            if lag > LAG_TOLERANCE_US {
                c.late_sends += 1;
            }
            self.next_chat = self.pacer.next_at();
        }
        if self.text_buf.capacity() > 4096 {
            self.text_buf = String::new();
        }
    }

    fn dropped(&mut self, ctx: &RunCtx, ws: &WorkerState, code: &str) -> End {
        if !self.counted {
            // Dropped before this session was ready.
            self.outcome.last_failure = Some(reason::NOT_READY);
        }
        {
            let mut rec = ws.rec.borrow_mut();
            Recorder::count_in(&mut rec.counters().closes, code);
        }
        self.after_drop(ctx, ws);
        End::Dropped
    }

    /// Leaves for good (ramp-down or end of run): close 1000.
    async fn leave(&mut self, ws: &WorkerState, io: Link) -> End {
        Box::pin(self.close(ws, io, 1000)).await;
        End::Finished
    }

    /// Sends a close frame, counts it under its code (our close, whatever
    /// the server answers), and waits briefly for the server to finish the
    /// close handshake so the TCP close is orderly.
    async fn close(&mut self, ws: &WorkerState, io: Link, code: u16) {
        {
            let mut rec = ws.rec.borrow_mut();
            Recorder::count_in(&mut rec.counters().closes, &code.to_string());
        }
        io.close(code).await;
    }
}

//! One simulated client: connect, join, chat on its seeded schedule,
//! measure everything it sees, reconnect when told or dropped, and leave
//! when its ramp window ends.
//!
//! A client runs as one task on its worker's single-threaded runtime and
//! records into the worker's [`Recorder`] without locks. Handling of each
//! incoming frame (the per-message hot path) lives in [`incoming`].

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::sleep_until;
use wire::ws::Fill;

use super::ctx::{RunCtx, LAG_TOLERANCE_US};
use super::drain::PROBE;
use super::link::{self, Link, Ready};
use super::metrics::{MetricId, Recorder};
use super::pacing::{Pacer, Poisson};
use super::rng::{SplitMix64, Stream};
use super::schedule::{self, Window};
use super::tracker::RoomTrack;
use super::worker::WorkerState;
use crate::dialect::{Action, Outbox, Session};
use crate::scenario::Population;

mod incoming;

use incoming::Follow;

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
}

/// Runs client `i` through all its windows. Returns when done or stopped.
pub async fn run(ctx: Rc<RunCtxRef>, ws: Rc<WorkerState>, i: u32, mut stop: watch::Receiver<bool>) {
    let ctx = &ctx.0;
    let pop_index = ctx.populations.get(i as usize).copied().unwrap_or(0) as usize;
    let Some(pop) = ctx.plan.populations.get(pop_index) else {
        return;
    };
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
    };
    for w in schedule::windows(&ctx.plan.stages, i) {
        let start = ctx.clock.instant_of_run_us(w.start_us);
        tokio::select! {
            _ = sleep_until(start.into()) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        c.pacer = Poisson::new(
            pop.chat_rate,
            w.start_us,
            SplitMix64::for_client(seed ^ w.start_us, i.into(), Stream::Chat),
        );
        c.next_chat = c.pacer.next_at();
        if c.live_window(ctx, &ws, w, &mut stop).await {
            return;
        }
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
                self.finish_tracks(ws, false);
                return false;
            }
            let t0 = Instant::now();
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
                    }
                    if !first {
                        dropped_at.get_or_insert(t0);
                    }
                    attempt += 1;
                    if self.backoff(ctx, attempt, end, stop).await {
                        return true;
                    }
                }
                Ok((io, token)) => {
                    {
                        let mut rec = ws.rec.borrow_mut();
                        rec.counters().connections_opened += 1;
                        rec.counters().deflate_connections += u64::from(io.deflated());
                        rec.record(MetricId::ConnectTime, t0.elapsed().as_micros() as u64);
                    }
                    if !first {
                        ws.rec.borrow_mut().counters().reconnects += 1;
                    }
                    first = false;
                    let ended = self
                        .session(
                            ctx,
                            ws,
                            (io, token),
                            end,
                            drains,
                            dropped_at.take(),
                            &mut attempt,
                            stop,
                        )
                        .await;
                    if std::mem::take(&mut self.counted) {
                        ws.rec.borrow_mut().connected -= 1;
                    }
                    ws.drain.borrow_mut().gone(self.local(ws));
                    match ended {
                        End::Stop => return true,
                        End::Finished => return false,
                        End::Planned => {
                            dropped_at = Some(Instant::now());
                        }
                        End::Dropped => {
                            dropped_at = Some(Instant::now());
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
    fn finish_tracks(&mut self, ws: &WorkerState, tail: bool) {
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
    /// every joined room has reached the goal's top seq.
    fn drain_check(&self, ws: &WorkerState) {
        let goal = ws.goal.borrow();
        let mut book = ws.drain.borrow_mut();
        let mut caught_up = self.pending_acks.is_empty();
        for t in self.tracks.iter().filter(|t| t.joined && t.tracking) {
            book.saw(t.room, t.last);
            caught_up &= t.last >= goal.top.get(t.room as usize).copied().unwrap_or(0);
        }
        book.checked(self.local(ws), goal.gen, caught_up);
    }

    /// After a drop: keep room state for a resume, or give it up.
    fn after_drop(&mut self, ctx: &RunCtx, ws: &WorkerState) {
        if self.pop(ctx).resume {
            for t in &mut self.tracks {
                t.joined = false;
            }
            self.pending_acks.clear();
        } else {
            self.finish_tracks(ws, false);
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

    #[allow(clippy::too_many_arguments)]
    async fn session(
        &mut self,
        ctx: &RunCtx,
        ws: &WorkerState,
        (mut io, first_msg_token): (Link, Option<String>),
        end: Instant,
        drains: bool,
        dropped_at: Option<Instant>,
        attempt: &mut u32,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let mut ready_flag = false;
        let ready = &mut ready_flag;
        let mut sess: Box<dyn Session> = ctx.dialect.session();
        let mut ob = io.outbox();
        sess.on_open(&mut ob);
        if let Some(token) = &first_msg_token {
            sess.encode(&Action::Auth { token }, &mut ob);
        }
        Self::flush_outbox(ws, &mut io, &mut ob);

        let opened = Instant::now();
        let ready_deadline = opened + ctx.plan.run.connect_timeout;
        let mut joined = 0u32;
        let mut resumes_pending = 0u32;
        let mut welcomed = false;
        let mut next_ping: Option<Instant> = None;
        let mut next_drop: Option<Instant> = None;
        let drain_end = end + ctx.drain;
        // Ready before the end of the last stage: drains after it.
        let mut drainer = false;
        let mut draining = false;
        let mut next_probe = drain_end;
        let mut follow = Follow::default();
        // Bytes read past the handshake head are already buffered.
        let mut buffered = true;

        loop {
            if io.pending_bytes() > 0 && io.try_flush().is_err() {
                return self.dropped(ctx, ws, "abnormal");
            }
            let now = Instant::now();
            // The next timer: chat, ping, planned drop, readiness, window end.
            let mut deadline = if draining {
                drain_end.min(next_probe)
            } else {
                end
            };
            if !*ready {
                deadline = deadline.min(ready_deadline);
            } else if !draining {
                if let Some(at) = self.next_chat {
                    deadline = deadline.min(ctx.clock.instant_of_run_us(at));
                }
                for t in [next_ping, next_drop].into_iter().flatten() {
                    deadline = deadline.min(t);
                }
            }
            let want_write = io.pending_bytes() > 0;
            let wake = if std::mem::take(&mut buffered) {
                Wake::Readable
            } else {
                tokio::select! {
                    biased;
                    _ = stop.changed() => Wake::Stop,
                    // Timers first: sends keep their schedule under a flood of input.
                    _ = sleep_until(deadline.max(now).into()) => Wake::Timer,
                    r = io.ready(want_write) => match r {
                        Ready::Readable => Wake::Readable,
                        Ready::Writable => Wake::Writable,
                        Ready::Error => Wake::IoError,
                    },
                }
            };
            match wake {
                Wake::Stop => {
                    io.abort(1000, "interrupted");
                    self.finish_tracks(ws, false);
                    return End::Stop;
                }
                Wake::IoError => return self.dropped(ctx, ws, "abnormal"),
                Wake::Writable => continue,
                Wake::Timer => {}
                Wake::Readable => {
                    // Decode what is buffered first (the handshake may have
                    // read the welcome already), then read more.
                    let mut reads = 0;
                    let mut drained = false;
                    loop {
                        let now_us = ctx.clock.now_epoch_us();
                        loop {
                            let msg = match io.decode() {
                                Ok(Some((m, wire))) => {
                                    if let wire::ws::Message::Text(b)
                                    | wire::ws::Message::Binary(b) = &m
                                    {
                                        let mut rec = ws.rec.borrow_mut();
                                        let c = rec.counters();
                                        c.payload_bytes_received += b.len() as u64;
                                        c.wire_bytes_received += wire as u64;
                                    }
                                    m
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    io.abort(e.close_code(), "");
                                    let mut rec = ws.rec.borrow_mut();
                                    Recorder::count_in(&mut rec.counters().errors, "protocol");
                                    drop(rec);
                                    return self.dropped(ctx, ws, "abnormal");
                                }
                            };
                            self.on_message(
                                ctx,
                                ws,
                                &mut *sess,
                                &mut io,
                                &mut ob,
                                msg,
                                now_us,
                                &mut follow,
                            );
                            if let Some(code) = follow.closed.take() {
                                let _ = io.try_flush();
                                return self.dropped(ctx, ws, &code.to_string());
                            }
                        }
                        if drained {
                            // A short read emptied the socket: skip the
                            // recv that would only say EAGAIN.
                            io.release_if_empty();
                            break;
                        }
                        reads += 1;
                        if reads > 8 {
                            break;
                        }
                        match io.fill_drained() {
                            Ok((Fill::Data, short)) => drained = short,
                            Ok((Fill::WouldBlock, _)) => break,
                            Ok((Fill::Eof, _)) | Err(_) => {
                                return self.dropped(ctx, ws, "abnormal")
                            }
                        }
                    }
                    // Act on what the events asked for.
                    if let Some(reason) = follow.rejected.take() {
                        let mut rec = ws.rec.borrow_mut();
                        Recorder::count_in(&mut rec.counters().connections_failed, &reason);
                        drop(rec);
                        self.after_drop(ctx, ws);
                        return End::Dropped;
                    }
                    if follow.welcomed && !welcomed {
                        welcomed = true;
                        let resume = self.pop(ctx).resume;
                        // Join, and resume right behind it (pipelined: one round trip).
                        for t in &mut self.tracks {
                            let room = &ctx.room_names[t.room as usize];
                            sess.encode(&Action::Join { room }, &mut ob);
                            if resume && t.tracking {
                                sess.encode(
                                    &Action::Resume {
                                        room,
                                        after: t.last,
                                    },
                                    &mut ob,
                                );
                                t.resuming = true;
                                resumes_pending += 1;
                            }
                        }
                    }
                    follow.welcomed = false;
                    joined += std::mem::take(&mut follow.joined);
                    resumes_pending =
                        resumes_pending.saturating_sub(std::mem::take(&mut follow.resumed));
                    if !*ready
                        && welcomed
                        && joined as usize >= self.tracks.len()
                        && resumes_pending == 0
                    {
                        *ready = true;
                        self.counted = true;
                        *attempt = 0;
                        let now = Instant::now();
                        if let Some(d) = dropped_at {
                            ws.rec
                                .borrow_mut()
                                .record(MetricId::ReconnectTime, (now - d).as_micros() as u64);
                        }
                        ws.rec.borrow_mut().connected += 1;
                        if drains && now < end {
                            drainer = true;
                            ws.drain.borrow_mut().will_drain(self.local(ws));
                        }
                        // Intended sends that fell while we were away: counted, not sent.
                        let now_run = ctx.clock.run_us(now);
                        let mut skipped = 0;
                        while let Some(at) = self.next_chat.filter(|&at| at < now_run) {
                            let _ = at;
                            skipped += 1;
                            self.next_chat = self.pacer.next_at();
                        }
                        ws.rec.borrow_mut().counters().chat_skipped_offline += skipped;
                        next_ping = self
                            .pop(ctx)
                            .ping_interval
                            .filter(|p| !p.is_zero())
                            .map(|p| now + p);
                        next_drop =
                            self.pop(ctx)
                                .reconnect_every
                                .filter(|m| !m.is_zero())
                                .map(|m| {
                                    now + Duration::from_secs_f64(
                                        self.life_rng.exp(m.as_secs_f64()),
                                    )
                                });
                    }
                    Self::flush_outbox(ws, &mut io, &mut ob);
                    continue;
                }
            }
            // Timers.
            let now = Instant::now();
            if draining {
                if now >= drain_end || ws.goal.borrow().done {
                    self.finish_tracks(ws, true);
                    return Box::pin(self.leave(ws, io)).await;
                }
                if now >= next_probe {
                    self.drain_check(ws);
                    next_probe = now + PROBE;
                }
                continue;
            }
            if now >= end {
                if drainer && *ready {
                    draining = true;
                    self.drain_check(ws);
                    next_probe = now + PROBE;
                    continue;
                }
                self.finish_tracks(ws, false);
                return Box::pin(self.leave(ws, io)).await;
            }
            if !*ready {
                if now >= ready_deadline {
                    let mut rec = ws.rec.borrow_mut();
                    Recorder::count_in(&mut rec.counters().connections_failed, "ready_timeout");
                    drop(rec);
                    self.after_drop(ctx, ws);
                    return End::Dropped;
                }
                continue;
            }
            if next_drop.is_some_and(|t| now >= t) {
                self.after_drop(ctx, ws);
                Box::pin(self.close(ws, io, 1000)).await;
                return End::Planned;
            }
            if let Some(t) = next_ping.filter(|&t| now >= t) {
                sess.encode(
                    &Action::Ping {
                        ts_us: ctx.clock.epoch_us(now),
                    },
                    &mut ob,
                );
                let p = self
                    .pop(ctx)
                    .ping_interval
                    .unwrap_or(Duration::from_secs(1));
                next_ping = Some((t + p).max(now));
            }
            self.send_due_chats(ctx, ws, &mut *sess, &mut ob, now);
            Self::flush_outbox(ws, &mut io, &mut ob);
        }
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
            self.pending_acks.push_back((self.n, ts_us, slot));
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

//! One connected session of a client: from the upgrade to its end (drop,
//! planned reconnect, end of the window or of the drain, interrupt).
//!
//! The loop waits for the socket or the next timer; [`Client::read_all`]
//! decodes what arrived, [`Client::act_on_events`] joins after the
//! `welcome` and notices readiness, [`Client::on_timer`] sends chats and
//! pings and decides when the session ends. What lives for the session
//! is in [`State`]; what it was started with is in [`Start`].

use std::time::{Duration, Instant};

use tokio::sync::watch;
use wire::ws::Fill;

use super::incoming::{Follow, Inbound};
use super::{Client, End, Wake};
use crate::dialect::{Action, Outbox, Session};
use crate::engine::ctx::RunCtx;
use crate::engine::drain::PROBE;
use crate::engine::link::{Link, Ready};
use crate::engine::metrics::{MetricId, Recorder};
use crate::engine::pacing::Pacer;
use crate::engine::readiness::reason;
use crate::engine::worker::WorkerState;

/// What a session is started with.
pub(super) struct Start<'a> {
    pub ctx: &'a RunCtx,
    pub ws: &'a WorkerState,
    /// End of the client's window.
    pub end: Instant,
    /// The window reaches the end of the last stage: the client drains.
    pub drains: bool,
    /// When this client's outage began (it was ready before), for `reconnect_time`.
    pub dropped_at: Option<Instant>,
}

/// What lives for one session.
struct State {
    ready: bool,
    ready_deadline: Instant,
    welcomed: bool,
    joined: u32,
    resumes_pending: u32,
    next_ping: Option<Instant>,
    next_drop: Option<Instant>,
    drain_end: Instant,
    /// Ready before the end of the last stage: drains after it.
    drainer: bool,
    draining: bool,
    next_probe: Instant,
    follow: Follow,
}

/// What a timer asked for.
enum TimerAction {
    Continue,
    /// Leave for good (close 1000).
    Leave,
    /// A planned reconnect (close 1000, then reconnect at once).
    Planned,
    /// Give the session up (readiness timeout).
    Drop,
}

impl Client {
    pub(super) async fn session(
        &mut self,
        a: &Start<'_>,
        (mut io, first_msg_token): (Link, Option<String>),
        attempt: &mut u32,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let (ctx, ws) = (a.ctx, a.ws);
        let mut sess: Box<dyn Session> = ctx.dialect.session();
        sess.bind(self.i);
        let mut ob = io.outbox();
        sess.on_open(&mut ob);
        if let Some(token) = &first_msg_token {
            sess.encode(&Action::Auth { token }, &mut ob);
        }
        Self::flush_outbox(ws, &mut io, &mut ob);
        let drain_end = a.end + ctx.drain;
        let mut st = State {
            ready: false,
            ready_deadline: Instant::now() + ctx.plan.run.connect_timeout,
            welcomed: false,
            joined: 0,
            resumes_pending: 0,
            next_ping: None,
            next_drop: None,
            drain_end,
            drainer: false,
            draining: false,
            next_probe: drain_end,
            follow: Follow::default(),
        };
        // A server that sends no greeting: the session is established now.
        st.follow.welcomed = !ctx.caps.welcomes;
        // Bytes read past the handshake head are already buffered.
        let mut buffered = true;
        // One timer and one stop watch for the whole session, not one per
        // wake-up: a received frame then costs no timer or waiter-list work.
        let mut timer = ws.timer.sleep();
        let stopped = stop.changed();
        tokio::pin!(stopped);

        loop {
            if io.pending_bytes() > 0 && io.try_flush().is_err() {
                return self.dropped(ctx, ws, "abnormal");
            }
            timer.reset(self.next_deadline(ctx, &st, a.end));
            let want_write = io.pending_bytes() > 0;
            let wake = if std::mem::take(&mut buffered) {
                Wake::Readable
            } else {
                tokio::select! {
                    biased;
                    _ = &mut stopped => Wake::Stop,
                    // Timers first: sends keep their schedule under a flood of input.
                    _ = &mut timer => Wake::Timer,
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
                    self.finish_tracks(ctx, ws, false);
                    return End::Stop;
                }
                Wake::IoError => return self.dropped(ctx, ws, "abnormal"),
                Wake::Writable => continue,
                Wake::Readable => {
                    if let Some(ended) = self.read_all(a, &mut *sess, &mut io, &mut ob, &mut st) {
                        return ended;
                    }
                    if let Some(ended) =
                        self.act_on_events(a, &mut *sess, &mut ob, &mut st, attempt)
                    {
                        return ended;
                    }
                    Self::flush_outbox(ws, &mut io, &mut ob);
                }
                Wake::Timer => match self.on_timer(a, &mut *sess, &mut ob, &mut st) {
                    TimerAction::Continue => Self::flush_outbox(ws, &mut io, &mut ob),
                    TimerAction::Leave => return Box::pin(self.leave(ws, io)).await,
                    TimerAction::Planned => {
                        self.after_drop(ctx, ws);
                        Box::pin(self.close(ws, io, 1000)).await;
                        return End::Planned;
                    }
                    TimerAction::Drop => {
                        self.after_drop(ctx, ws);
                        return End::Dropped;
                    }
                },
            }
        }
    }

    /// The next timer: chat, ping, planned drop, readiness, window or drain end.
    fn next_deadline(&self, ctx: &RunCtx, st: &State, end: Instant) -> Instant {
        let mut deadline = if st.draining {
            st.drain_end.min(st.next_probe)
        } else {
            end
        };
        if !st.ready {
            deadline = deadline.min(st.ready_deadline);
        } else if !st.draining {
            if let Some(at) = self.next_chat {
                deadline = deadline.min(ctx.clock.instant_of_run_us(at));
            }
            for t in [st.next_ping, st.next_drop].into_iter().flatten() {
                deadline = deadline.min(t);
            }
        }
        deadline
    }

    /// Decodes what is buffered first (the handshake may have read the
    /// welcome already), then reads more, a bounded number of times.
    /// `Some` ends the session.
    fn read_all(
        &mut self,
        a: &Start<'_>,
        sess: &mut dyn Session,
        io: &mut Link,
        ob: &mut Outbox,
        st: &mut State,
    ) -> Option<End> {
        let (ctx, ws) = (a.ctx, a.ws);
        let mut reads = 0;
        let mut drained = false;
        loop {
            let now_us = ctx.clock.now_epoch_us();
            loop {
                let msg = match io.decode() {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        io.abort(e.close_code(), "");
                        let mut rec = ws.rec.borrow_mut();
                        Recorder::count_in(&mut rec.counters().errors, "protocol");
                        drop(rec);
                        let ended = self.dropped(ctx, ws, "abnormal");
                        self.outcome.last_failure = Some(reason::PROTOCOL);
                        return Some(ended);
                    }
                };
                let mut inb = Inbound {
                    ctx,
                    ws,
                    sess: &mut *sess,
                    io: &mut *io,
                    ob: &mut *ob,
                    now_us,
                    follow: &mut st.follow,
                };
                self.on_message(&mut inb, msg);
                if let Some(code) = st.follow.closed.take() {
                    let _ = io.try_flush();
                    return Some(self.dropped(ctx, ws, &code.to_string()));
                }
            }
            if drained {
                // A short read emptied the socket: skip the recv that would
                // only say EAGAIN.
                io.release_if_empty();
                return None;
            }
            reads += 1;
            if reads > 8 {
                return None;
            }
            match io.fill_drained() {
                Ok((Fill::Data, short)) => drained = short,
                Ok((Fill::WouldBlock, _)) => return None,
                Ok((Fill::Eof, _)) | Err(_) => return Some(self.dropped(ctx, ws, "abnormal")),
            }
        }
    }

    /// Acts on what the decoded events asked for: a rejection ends the
    /// session; the `welcome` sends the joins (and resumes); the last
    /// `joined`/`resumed` makes the client ready.
    fn act_on_events(
        &mut self,
        a: &Start<'_>,
        sess: &mut dyn Session,
        ob: &mut Outbox,
        st: &mut State,
        attempt: &mut u32,
    ) -> Option<End> {
        let (ctx, ws) = (a.ctx, a.ws);
        if let Some(why) = st.follow.rejected.take() {
            let mut rec = ws.rec.borrow_mut();
            Recorder::count_in(&mut rec.counters().connections_failed, &why);
            drop(rec);
            self.outcome.last_failure = Some(reason::REJECTED);
            self.after_drop(ctx, ws);
            return Some(End::Dropped);
        }
        if st.follow.welcomed && !st.welcomed {
            st.welcomed = true;
            self.on_instance(ctx, ws, st.follow.instance.take());
            st.resumes_pending += self.join_all(ctx, sess, ob);
            if !ctx.caps.confirms_joins {
                // Nothing will confirm the joins: they count as done when sent.
                st.joined += self.assume_joined(ctx);
            }
        }
        st.follow.welcomed = false;
        st.joined += std::mem::take(&mut st.follow.joined);
        st.resumes_pending = st
            .resumes_pending
            .saturating_sub(std::mem::take(&mut st.follow.resumed));
        if !st.ready
            && st.welcomed
            && st.joined as usize >= self.tracks.len()
            && st.resumes_pending == 0
        {
            self.become_ready(a, st);
            *attempt = 0;
        }
        None
    }

    /// Joins every room, and resumes right behind each join (pipelined:
    /// one round trip). Returns the resumes sent.
    fn join_all(&mut self, ctx: &RunCtx, sess: &mut dyn Session, ob: &mut Outbox) -> u32 {
        let resume = self.pop(ctx).resume;
        let mut resumes = 0;
        for t in &mut self.tracks {
            let room = &ctx.room_names[t.room as usize];
            sess.encode(&Action::Join { room }, ob);
            if resume && t.tracking {
                sess.encode(
                    &Action::Resume {
                        room,
                        after: t.last,
                    },
                    ob,
                );
                t.resuming = true;
                resumes += 1;
            }
        }
        resumes
    }

    /// Joins the server never confirms: tracked and (with generator-side
    /// accounting) members from now on. Returns the rooms.
    fn assume_joined(&mut self, ctx: &RunCtx) -> u32 {
        let now_us = ctx.clock.now_epoch_us();
        for t in &mut self.tracks {
            t.on_joined(0, false);
            if let Some(l) = &ctx.ledger {
                super::become_member(l, t, now_us);
            }
        }
        self.tracks.len() as u32
    }

    /// The client is ready: counted, its outage (if any) measured, timers armed.
    fn become_ready(&mut self, a: &Start<'_>, st: &mut State) {
        let (ctx, ws) = (a.ctx, a.ws);
        st.ready = true;
        self.counted = true;
        if !self.outcome.ready {
            // A first attempt that made it, counted now rather than when
            // the session ends: during a long hold the abort rule must see
            // the successes beside any failures.
            ws.rec.borrow_mut().cur.unready_ok += 1;
        }
        self.outcome.ready = true;
        let now = Instant::now();
        if let Some(d) = a.dropped_at {
            ws.rec
                .borrow_mut()
                .record(MetricId::ReconnectTime, (now - d).as_micros() as u64);
        }
        ws.rec.borrow_mut().connected += 1;
        if a.drains && now < a.end {
            st.drainer = true;
            ws.drain.borrow_mut().will_drain(self.local(ws));
        }
        // Intended sends that fell while we were away: counted, not sent.
        let now_run = ctx.clock.run_us(now);
        let mut skipped = 0;
        while self.next_chat.is_some_and(|at| at < now_run) {
            skipped += 1;
            self.next_chat = self.pacer.next_at();
        }
        ws.rec.borrow_mut().counters().chat_skipped_offline += skipped;
        st.next_ping = self
            .pop(ctx)
            .ping_interval
            .filter(|p| !p.is_zero())
            .map(|p| now + p);
        st.next_drop = self
            .pop(ctx)
            .reconnect_every
            .filter(|m| !m.is_zero())
            .map(|m| now + Duration::from_secs_f64(self.life_rng.exp(m.as_secs_f64())));
    }

    /// Timers: drain progress, end of window, readiness timeout, planned
    /// drop, ping, due chats.
    fn on_timer(
        &mut self,
        a: &Start<'_>,
        sess: &mut dyn Session,
        ob: &mut Outbox,
        st: &mut State,
    ) -> TimerAction {
        let (ctx, ws) = (a.ctx, a.ws);
        let now = Instant::now();
        if st.draining {
            if now >= st.drain_end || ws.goal.borrow().done {
                self.finish_tracks(ctx, ws, true);
                return TimerAction::Leave;
            }
            if now >= st.next_probe {
                self.drain_check(ctx, ws);
                st.next_probe = now + PROBE;
            }
            return TimerAction::Continue;
        }
        if now >= a.end {
            if st.drainer && st.ready {
                st.draining = true;
                self.drain_check(ctx, ws);
                st.next_probe = now + PROBE;
                return TimerAction::Continue;
            }
            self.finish_tracks(ctx, ws, false);
            return TimerAction::Leave;
        }
        if !st.ready {
            if now >= st.ready_deadline {
                let mut rec = ws.rec.borrow_mut();
                Recorder::count_in(&mut rec.counters().connections_failed, "ready_timeout");
                drop(rec);
                self.outcome.last_failure = Some(reason::NOT_READY);
                return TimerAction::Drop;
            }
            return TimerAction::Continue;
        }
        if st.next_drop.is_some_and(|t| now >= t) {
            return TimerAction::Planned;
        }
        if let Some(t) = st.next_ping.filter(|&t| now >= t) {
            sess.encode(
                &Action::Ping {
                    ts_us: ctx.clock.epoch_us(now),
                },
                ob,
            );
            let p = self
                .pop(ctx)
                .ping_interval
                .unwrap_or(Duration::from_secs(1));
            st.next_ping = Some((t + p).max(now));
        }
        self.send_due_chats(ctx, ws, sess, ob, now);
        TimerAction::Continue
    }
}
